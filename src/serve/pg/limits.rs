//! The limits of one Postgres statement: admission before parsing, one deadline over
//! planning, execution and the streaming of rows, and a panic inside the query engine
//! turned into this caller's error. datafusion-postgres applies the client's
//! `statement_timeout` to planning only, and lets `SET statement_timeout = 0` remove it;
//! here the server's limit always holds, and a client's shorter setting shortens it.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion_postgres::pgwire;
use futures::{FutureExt, StreamExt};
use pgwire::api::results::{QueryResponse, Response};
use pgwire::api::ClientInfo;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::query::Refusal;

use super::settings::STATEMENT_TIMEOUT_KEY;

/// The SQLSTATEs the endpoint answers besides the query engine's.
pub struct SqlState;

impl SqlState {
    pub const INSUFFICIENT_RESOURCES: &'static str = "53000";
    pub const UNDEFINED_OBJECT: &'static str = "42704";
    pub const INVALID_PARAMETER_VALUE: &'static str = "22023";
    pub const CANT_CHANGE_RUNTIME_PARAM: &'static str = "55P02";
    pub const INSUFFICIENT_PRIVILEGE: &'static str = "42501";
}

/// An error with its SQLSTATE, for the client.
pub fn sql_error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        code.to_owned(),
        message,
    )))
}

/// An error raised inside the query engine (a function of ours) that must reach the client
/// with its own SQLSTATE.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SqlStateError {
    pub code: &'static str,
    pub message: String,
}

fn error(code: &str, message: String) -> PgWireError {
    sql_error(code, message)
}

/// A statement refused before planning (`query::admission`).
pub fn too_complex(refusal: Refusal) -> PgWireError {
    error("54001", refusal.to_string()) // statement_too_complex
}

fn canceled(limit: Duration) -> PgWireError {
    error(
        "57014", // query_canceled
        format!(
            "canceling statement due to statement timeout ({} ms); narrow the query",
            limit.as_millis()
        ),
    )
}

fn engine_failed() -> PgWireError {
    tracing::error!("a Postgres query panicked");
    error(
        "XX000",
        "the query engine failed on this statement (a bug in simtally or DataFusion); \
         other queries are not affected"
            .to_owned(),
    )
}

/// The time one statement may take: the server's `limit`, or the session's
/// `statement_timeout` if the client set a shorter one (0 means none: the server's).
pub fn statement_limit<C: ClientInfo + ?Sized>(client: &C, limit: Duration) -> Duration {
    let asked = (client.metadata().get(STATEMENT_TIMEOUT_KEY))
        .and_then(|ms| ms.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis);
    asked.map_or(limit, |asked| asked.min(limit))
}

/// Runs `work` (planning, and whatever execution happens before rows stream) until the
/// deadline; its responses then stream their rows under the same deadline.
/// When a statement must stop: its `limit` ends at `deadline` (it may have started while
/// the statement waited for a slot), or when its client cancels it.
#[derive(Clone)]
pub struct Bounds {
    pub limit: Duration,
    pub deadline: Instant,
    pub cancel: CancellationToken,
}

/// `keep` (the caller's query slot) is held until the last row is sent.
pub async fn limited<F, K>(bounds: Bounds, work: F, keep: K) -> PgWireResult<Vec<Response>>
where
    F: std::future::Future<Output = PgWireResult<Vec<Response>>>,
    K: Send + Sync + 'static,
{
    let responses = run_until(&bounds, work).await?;
    let keep = std::sync::Arc::new(keep);
    Ok(responses
        .into_iter()
        .map(|r| streamed_until(r, bounds.clone(), keep.clone()))
        .collect())
}

/// As [`limited`], for the extended protocol's one response.
pub async fn limited_one<F, K>(bounds: Bounds, work: F, keep: K) -> PgWireResult<Response>
where
    F: std::future::Future<Output = PgWireResult<Response>>,
    K: Send + Sync + 'static,
{
    let response = run_until(&bounds, work).await?;
    Ok(streamed_until(response, bounds, std::sync::Arc::new(keep)))
}

async fn run_until<F, T>(bounds: &Bounds, work: F) -> PgWireResult<T>
where
    F: std::future::Future<Output = PgWireResult<T>>,
{
    let work = tokio::time::timeout_at(bounds.deadline, AssertUnwindSafe(work).catch_unwind());
    tokio::select! {
        _ = bounds.cancel.cancelled() => Err(canceled_by_client()),
        done = work => match done {
            Err(_) => Err(canceled(bounds.limit)),
            Ok(Err(_panic)) => Err(engine_failed()),
            Ok(Ok(result)) => result.map_err(with_sqlstate),
        },
    }
}

fn canceled_by_client() -> PgWireError {
    error(
        "57014",
        "canceling statement due to user request".to_owned(),
    )
}

/// A query engine error with the SQLSTATE PostgreSQL would give (datafusion-postgres
/// answers XX000 for every one), so that clients and tools can tell a typo from a fault.
pub fn with_sqlstate(e: PgWireError) -> PgWireError {
    let PgWireError::ApiError(source) = &e else {
        return e;
    };
    if let Some(syntax) = source.downcast_ref::<ParserError>() {
        return error("42601", format!("syntax error: {syntax}")); // syntax_error
    }
    let Some(engine) = source.downcast_ref::<DataFusionError>() else {
        return e;
    };
    if let DataFusionError::External(inner) = engine.find_root() {
        if let Some(own) = inner.downcast_ref::<SqlStateError>() {
            return error(own.code, own.message.clone());
        }
    }
    let message = engine.to_string();
    let code = match engine.find_root() {
        DataFusionError::ResourcesExhausted(_) => "53200", // out_of_memory
        DataFusionError::SQL(..) => "42601",               // syntax_error
        DataFusionError::SchemaError(..) => "42703",       // undefined_column
        DataFusionError::NotImplemented(_) => "0A000",     // feature_not_supported
        DataFusionError::Plan(plan) if plan.contains("not found") => "42P01", // undefined_table
        DataFusionError::Plan(plan) if plan.contains("function") => "42883", // undefined_function
        DataFusionError::Plan(_) => "42601",
        _ => "XX000",
    };
    error(code, message)
}

/// The response with its rows cut off by `deadline` (57014) and a panic while producing
/// them turned into an error; dropping the rows stream stops the query's work.
fn streamed_until<K: Send + Sync + 'static>(
    response: Response,
    bounds: Bounds,
    keep: std::sync::Arc<K>,
) -> Response {
    let Response::Query(query) = response else {
        return response;
    };
    let QueryResponse {
        command_tag,
        row_schema,
        data_rows,
        ..
    } = query;
    let rows = AssertUnwindSafe(data_rows).catch_unwind();
    let rows = futures::stream::unfold(Some(Box::pin(rows)), move |rows| {
        let (keep, bounds) = (keep.clone(), bounds.clone());
        async move {
            let _kept = keep;
            let mut rows = rows?;
            let next = tokio::time::timeout_at(bounds.deadline, rows.next());
            let next = tokio::select! {
                _ = bounds.cancel.cancelled() => return Some((Err(canceled_by_client()), None)),
                next = next => next,
            };
            match next {
                Err(_) => Some((Err(canceled(bounds.limit)), None)),
                Ok(None) => None,
                Ok(Some(Err(_panic))) => Some((Err(engine_failed()), None)),
                Ok(Some(Ok(row))) => Some((row.map_err(with_sqlstate), Some(rows))),
            }
        }
    });
    let mut limited = QueryResponse::new(row_schema, rows);
    limited.set_command_tag(&command_tag);
    Response::Query(limited)
}
