//! What the API answers: results as JSON, CSV or Arrow IPC by `Accept`, and errors as one
//! JSON shape with a stable code.

use arrow::array::RecordBatch;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use datafusion::error::DataFusionError;

use super::auth::AuthError;
use crate::query::QueryError;

pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// An error answer: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut response = json_response(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<super::fairness::Busy> for ApiError {
    fn from(e: super::fairness::Busy) -> Self {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_queries",
            e.to_string(),
        )
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            // The provider, not the caller, is at fault: try again later.
            AuthError::Unavailable { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "identity_provider_unavailable",
                e.to_string(),
            ),
            AuthError::WrongIssuer(_) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "wrong_issuer", e.to_string())
            }
            _ => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        use StatusCode as S;
        let message = e.to_string();
        let (status, code) = match &e {
            QueryError::Sql(inner) => match inner.find_root() {
                DataFusionError::ResourcesExhausted(_) => {
                    (S::UNPROCESSABLE_ENTITY, "resources_exhausted")
                }
                DataFusionError::ObjectStore(_)
                | DataFusionError::IoError(_)
                | DataFusionError::External(_) => (S::SERVICE_UNAVAILABLE, "lake_unavailable"),
                _ => (S::BAD_REQUEST, "query_error"),
            },
            QueryError::UnknownReport(_) => (S::NOT_FOUND, "unknown_report"),
            QueryError::Scope(_) => (S::UNPROCESSABLE_ENTITY, "too_few_workspaces"),
            QueryError::Forbidden(_) => (S::FORBIDDEN, "forbidden_statement"),
            QueryError::TooManyRows(_) => (S::UNPROCESSABLE_ENTITY, "result_too_large"),
            QueryError::Timeout(_) => (S::UNPROCESSABLE_ENTITY, "query_timeout"),
            QueryError::Refused(_) => (S::BAD_REQUEST, "statement_too_complex"),
            QueryError::Lake(_) => (S::SERVICE_UNAVAILABLE, "lake_unavailable"),
            QueryError::Output(_) => (S::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, code, message)
    }
}

/// A JSON document answer.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The result formats, chosen by the `Accept` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultFormat {
    Json,
    Csv,
    Arrow,
}

impl ResultFormat {
    /// The first acceptable type listed wins; no header (or `*/*`) means JSON.
    pub fn negotiate(headers: &HeaderMap) -> Result<Self, ApiError> {
        let Some(accept) = headers.get(header::ACCEPT) else {
            return Ok(ResultFormat::Json);
        };
        let accept = accept.to_str().unwrap_or("");
        for media in accept.split(',') {
            let media = media.split(';').next().unwrap_or("").trim();
            match media {
                "application/json" | "*/*" | "application/*" | "" => return Ok(ResultFormat::Json),
                "text/csv" | "text/*" => return Ok(ResultFormat::Csv),
                ARROW_STREAM => return Ok(ResultFormat::Arrow),
                _ => {}
            }
        }
        Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            format!(
                "cannot answer '{accept}'; ask for application/json, text/csv or {ARROW_STREAM}"
            ),
        ))
    }

    fn content_type(self) -> &'static str {
        match self {
            ResultFormat::Json => "application/json",
            ResultFormat::Csv => "text/csv; charset=utf-8",
            ResultFormat::Arrow => ARROW_STREAM,
        }
    }
}

/// Encodes a query result. JSON is an array of row objects whose decimals keep every digit.
pub fn result_response(
    batches: &[RecordBatch],
    schema: arrow::datatypes::SchemaRef,
    format: ResultFormat,
) -> Result<Response, ApiError> {
    let fail = |e: &dyn std::fmt::Display| ApiError::internal(format!("encoding the result: {e}"));
    let mut body = Vec::new();
    match format {
        ResultFormat::Json => {
            // Explicit nulls: every row object has every column, as clients expect.
            let mut writer = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow::json::writer::JsonArray>(&mut body);
            for batch in batches {
                writer.write(batch).map_err(|e| fail(&e))?;
            }
            writer.finish().map_err(|e| fail(&e))?;
            if body.is_empty() {
                body.extend_from_slice(b"[]");
            }
        }
        ResultFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut body);
            for batch in batches {
                writer.write(batch).map_err(|e| fail(&e))?;
            }
            drop(writer);
            if batches.iter().all(|b| b.num_rows() == 0) {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                body = format!("{}\n", names.join(",")).into_bytes();
            }
        }
        ResultFormat::Arrow => {
            let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut body, &schema)
                .map_err(|e| fail(&e))?;
            for batch in batches {
                writer.write(batch).map_err(|e| fail(&e))?;
            }
            writer.finish().map_err(|e| fail(&e))?;
        }
    }
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}
