//! The examples in `schemas/` are what the documentation promises: each must decode.

use serde_json::Value;
use simtally::decode::{decode_event, decode_usage};

fn examples(file: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(file);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let examples = schema["examples"].as_array().expect("schema has examples");
    assert!(!examples.is_empty());
    examples.iter().map(Value::to_string).collect()
}

#[test]
fn usage_record_examples_decode() {
    for example in examples("usage-record.schema.json") {
        decode_usage(example.as_bytes()).unwrap_or_else(|e| panic!("{example}: {e}"));
    }
}

#[test]
fn lifecycle_event_examples_decode() {
    for example in examples("lifecycle-event.schema.json") {
        decode_event(example.as_bytes()).unwrap_or_else(|e| panic!("{example}: {e}"));
    }
}
