//! `/metrics` answers, shared by a follower's operations endpoint and `serve`: a
//! `prometheus-client` registry in the OpenMetrics text format, which Prometheus scrapes as it
//! is.

use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::registry::Registry;

/// The content type of [`text`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric of `registry`, as text.
pub fn text(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// The `/metrics` answer for `registry`.
pub fn response(registry: &Registry) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text(registry))
}
