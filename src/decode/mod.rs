//! decode: raw bytes from a source -> validated domain values, or a [`Rejection`] that says
//! exactly what was wrong. Nothing here panics on input.

mod directory;
mod event;
mod fast;
mod fields;
mod limits;
mod scan;
mod shape;
mod usage;

use crate::domain::{Reason, Rejection};
pub use directory::{
    decode_any_event, decode_directory_event, encode_directory_event, IncomingEvent,
};
pub use event::decode_event;
pub use limits::InputLimits;
pub use usage::{decode_usage, UsageDecoder};

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

/// Parses a JSON object into `T`, or says why the bytes are not one.
fn parse_object<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Rejection> {
    serde_json::from_slice(bytes).map_err(|e| match check_is_object(bytes) {
        Err(not_an_object) => not_an_object,
        Ok(()) => rejection_from_serde(&e),
    })
}

/// What every event has: a non-empty `event_id` and the instant it happened.
fn event_instant(event_id: &str, timestamp: &str) -> Result<crate::domain::UtcMillis, Rejection> {
    if event_id.is_empty() {
        return Err(Rejection::new(
            Reason::InvalidField,
            "event_id is empty".to_owned(),
        ));
    }
    crate::domain::UtcMillis::parse_rfc3339(timestamp)
        .map_err(|e| Rejection::new(Reason::InvalidTimestamp, format!("timestamp: {e}")))
}

/// A required Workspace id field.
fn workspace_field(
    value: Option<i64>,
    field: &str,
) -> Result<crate::domain::WorkspaceId, Rejection> {
    let id = value
        .ok_or_else(|| Rejection::new(Reason::MissingField, format!("missing field `{field}`")))?;
    crate::domain::WorkspaceId::new(id).ok_or_else(|| {
        Rejection::new(
            Reason::InvalidWorkspace,
            format!("{field} {id} is not a positive integer"),
        )
    })
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
