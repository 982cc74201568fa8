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

#[test]
fn directory_event_examples_decode() {
    for example in examples("directory-event.schema.json") {
        simtally::decode::decode_directory_event(example.as_bytes())
            .unwrap_or_else(|e| panic!("{example}: {e}"));
    }
}

#[test]
fn the_invoice_example_is_an_invoice_whose_totals_are_its_lines() {
    for example in examples("invoice.schema.json") {
        let invoice: simtally::billing::Invoice =
            serde_json::from_str(&example).unwrap_or_else(|e| panic!("{example}: {e}"));
        assert_eq!(invoice.totals, invoice.totals_of_lines());
        let back: Value = serde_json::to_value(&invoice).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(&example).unwrap());
    }
}

#[test]
fn the_invoice_schema_names_exactly_the_fields_written() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/invoice.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let example = &schema["examples"][0];
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let required = |v: &Value| {
        let mut k: Vec<String> = v["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        k.sort();
        k
    };
    // Fields written only when they say something (absent in documents issued before them).
    let optional = ["allowance_cover", "tariff_version", "billing"];
    let without_optional = |mut k: Vec<String>| {
        k.retain(|key| !optional.contains(&key.as_str()));
        k
    };
    assert_eq!(keys(example), required(&schema));
    assert_eq!(
        without_optional(keys(&schema["properties"])),
        required(&schema)
    );
    for list in ["usage", "sim_fees", "allowances", "adjustments", "totals"] {
        let items = &schema["properties"][list]["items"];
        assert_eq!(keys(&example[list][0]), required(items), "{list}");
        assert_eq!(
            without_optional(keys(&items["properties"])),
            required(items),
            "{list}"
        );
    }
}
