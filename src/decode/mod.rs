//! decode: raw bytes from a source -> validated domain values, or a [`Rejection`] that says
//! exactly what was wrong. Nothing here panics on input.

mod directory;
mod event;
mod fast;
mod rejection;
mod scan;
mod usage;

pub use directory::{decode_any_event, decode_directory_event, IncomingEvent};
pub use event::decode_event;
pub use rejection::{Reason, Rejection};
pub use usage::decode_usage;

/// Classifies a serde_json failure. Syntax errors mean the bytes are not JSON at all; data
/// errors mean the JSON had the wrong shape.
fn rejection_from_serde(err: &serde_json::Error) -> Rejection {
    use serde_json::error::Category;
    let message = err.to_string();
    let reason = match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => Reason::NotJson,
        Category::Data if message.starts_with("missing field") => Reason::MissingField,
        Category::Data => Reason::InvalidField,
    };
    Rejection::new(reason, message)
}

/// JSON that is valid but not an object (`[]`, `3`) gets its own reason, not "not JSON".
fn check_is_object(bytes: &[u8]) -> Result<(), Rejection> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        return Ok(());
    }
    match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        Ok(_) => Err(Rejection::new(
            Reason::NotAnObject,
            "expected a JSON object".to_owned(),
        )),
        Err(e) => Err(rejection_from_serde(&e)),
    }
}

/// A field holding a JSON number, kept as its exact text.
fn number_text<'a>(text: &'a str, field: &str) -> Result<&'a str, Rejection> {
    match text.as_bytes().first() {
        Some(b'-' | b'0'..=b'9') => Ok(text),
        _ => Err(Rejection::new(
            Reason::InvalidField,
            format!("{field} must be a number, got {text}"),
        )),
    }
}
