//! The HTTP API: `/v1/workspaces`, `/v1/reports`, `/v1/reports/{name}`, `/v1/query`,
//! `/v1/invoices` and `/v1/invoice-runs` (see `invoices`), the OpenAPI document, `/healthz`
//! and `/metrics`. Every query goes through [`scoped_session`], so no endpoint can reach a
//! Workspace its caller cannot access.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::respond::{json_response, result_response, ApiError, ResultFormat};
use super::state::{audience_of, can_access, Access, ApiState};
use crate::domain::WorkspaceId;
use crate::query::{run_limited, scoped_session, QueryResult, Report, Scope, Viewer, REPORTS};

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("../../schemas/openapi.json");

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route(
            "/v1/workspaces",
            get(list_workspaces).post(super::directory::create_workspace),
        )
        .route(
            "/v1/workspaces/{workspace}/members",
            get(super::directory::list_members).post(super::directory::invite),
        )
        .route(
            "/v1/workspaces/{workspace}/members/{user}",
            put(super::directory::change_role).delete(super::directory::revoke),
        )
        .route(
            "/v1/workspaces/{workspace}/sso",
            put(super::directory::set_sso),
        )
        .route(
            "/v1/me/default-workspace",
            put(super::directory::set_default_workspace),
        )
        .route(
            "/v1/organizations/{organization}/workspaces",
            post(super::directory::link_workspace),
        )
        .route(
            "/v1/organizations/{organization}/workspaces/{workspace}",
            delete(super::directory::unlink_workspace),
        )
        .route(
            "/v1/organizations/{organization}/superadmin",
            put(super::directory::assign_superadmin),
        )
        .route("/v1/reports", get(list_reports))
        .route("/v1/reports/{name}", get(run_named_report))
        .route("/v1/query", post(run_query))
        .route("/v1/invoices", get(super::invoices::list_invoices))
        .route("/v1/invoices/{id}", get(super::invoices::get_invoice))
        .route("/v1/invoice-runs", post(super::invoices::issue))
        .route(
            "/v1/sim-transfers",
            post(super::transfers::request_transfer),
        )
        .route("/v1/sign-in", get(super::sign_in::providers))
        .route("/v1/sign-in/token", post(super::sign_in::token))
        .route("/openapi.json", get(openapi))
        .route(
            "/",
            get(|| dashboard_file("text/html; charset=utf-8", DASHBOARD_HTML)),
        )
        .route(
            "/dashboard.js",
            get(|| dashboard_file("text/javascript; charset=utf-8", DASHBOARD_JS)),
        )
        .route(
            "/dashboard.css",
            get(|| dashboard_file("text/css; charset=utf-8", DASHBOARD_CSS)),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint; see /openapi.json",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_responses,
        ))
        .with_state(state)
}

async fn count_responses(
    State(state): State<Arc<ApiState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    state.counters.count(response.status());
    response
}

const DASHBOARD_HTML: &str = include_str!("dashboard/index.html");
const DASHBOARD_JS: &str = include_str!("dashboard/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("dashboard/dashboard.css");
/// The page loads nothing from elsewhere and runs no inline script.
const DASHBOARD_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn dashboard_file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, DASHBOARD_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn metrics(State(state): State<Arc<ApiState>>) -> impl IntoResponse {
    crate::openmetrics::response(state.counters.registry())
}

async fn list_workspaces(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (caller, directory, _, access) = audience_of(&state, &headers).await?;
    let workspaces: Vec<_> = directory
        .workspaces()
        .filter(|(id, _)| can_access(&access, *id))
        .map(|(id, entry)| {
            let role = access.as_ref().and_then(|a| a.get(&id)).map(|r| r.as_str());
            json!({
                "workspace_id": id.get(),
                "name": entry.name,
                "organization_id": entry.organization.get(),
                "linked_organization_id": entry.linked_to.map(|o| o.get()),
                "single_sign_on": entry.sso,
                "role": role,
            })
        })
        .collect();
    let (user, default) = match caller {
        Caller::Member(user) => {
            let default = directory.default_workspace(&user).map(|w| w.get());
            (user.to_string(), default)
        }
        Caller::Operator(name) => (name, None),
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"user_id": user, "default_workspace_id": default, "workspaces": workspaces}),
    ))
}

async fn list_reports(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    audience_of(&state, &headers).await?;
    let reports: Vec<_> = REPORTS
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "description": r.description(),
                "min_workspaces": r.min_workspaces(),
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "reports": reports }),
    ))
}

/// `workspace_id` (repeated, or comma-separated), `from`, `to`.
#[derive(Debug, Default)]
struct ReportParams {
    workspaces: Vec<WorkspaceId>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

impl ReportParams {
    fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut params = ReportParams::default();
        let date = |value: &str, key: &str| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
                ApiError::bad_request(format!("{key}: '{value}' is not a date (YYYY-MM-DD)"))
            })
        };
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "workspace_id" => {
                    for id in value.split(',').filter(|s| !s.trim().is_empty()) {
                        params
                            .workspaces
                            .push(id.parse().map_err(|e| {
                                ApiError::bad_request(format!("workspace_id: {e}"))
                            })?);
                    }
                }
                "from" => params.from = Some(date(&value, "from")?),
                "to" => params.to = Some(date(&value, "to")?),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown parameter '{other}'; use workspace_id, from, to"
                    )))
                }
            }
        }
        if let (Some(from), Some(to)) = (params.from, params.to) {
            if from > to {
                return Err(ApiError::bad_request(format!(
                    "from {from} is after to {to}"
                )));
            }
        }
        Ok(params)
    }
}

/// The Workspaces a request covers: those asked for, each of which must be accessible, or
/// else all the caller can access (for an operator: none listed, meaning all).
fn requested_workspaces(
    asked: &[WorkspaceId],
    access: &Access,
) -> Result<Vec<WorkspaceId>, ApiError> {
    if let Some(denied) = asked.iter().find(|w| !can_access(access, **w)) {
        return Err(ApiError::forbidden(format!(
            "you have no access to Workspace {denied}"
        )));
    }
    if !asked.is_empty() {
        let unique: BTreeSet<WorkspaceId> = asked.iter().copied().collect();
        return Ok(unique.into_iter().collect());
    }
    Ok(match access {
        Some(access) => access.keys().copied().collect(),
        // Operators see every Workspace in the lake, directory or not: no list means all.
        None => Vec::new(),
    })
}

async fn run_named_report(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = ResultFormat::negotiate(&headers)?;
    let (_, _, viewer, access) = audience_of(&state, &headers).await?;
    let report = Report::find(&name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_report",
            format!("unknown report '{name}'; GET /v1/reports lists them"),
        )
    })?;
    let params = ReportParams::parse(query.as_deref())?;
    let workspaces = requested_workspaces(&params.workspaces, &access)?;
    let needed = report.min_workspaces();
    let everything = workspaces.is_empty() && access.is_none();
    if needed > 1 && workspaces.len() < needed && !everything {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_few_workspaces",
            format!(
                "report '{}' combines {needed} or more Workspaces; {} given or accessible",
                report.name,
                workspaces.len()
            ),
        ));
    }
    let scope = Scope {
        workspaces,
        from: params.from,
        to: params.to,
    };
    let result = execute(&state, viewer, scope, report.sql.to_owned()).await?;
    result_response(&result.batches, result.schema, format)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryRequest {
    sql: String,
    #[serde(default)]
    workspace_id: Vec<i64>,
}

async fn run_query(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let format = ResultFormat::negotiate(&headers)?;
    let (_, _, viewer, access) = audience_of(&state, &headers).await?;
    let request: QueryRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be JSON like {{\"sql\": \"SELECT ...\"}}: {e}"
        ))
    })?;
    let asked = request
        .workspace_id
        .iter()
        .map(|id| {
            WorkspaceId::new(*id).ok_or_else(|| {
                ApiError::bad_request(format!("workspace_id {id} is not a positive integer"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let workspaces = match asked.is_empty() {
        true => Vec::new(),
        false => requested_workspaces(&asked, &access)?,
    };
    let scope = Scope {
        workspaces,
        ..Scope::default()
    };
    let result = execute(&state, viewer, scope, request.sql).await?;
    result_response(&result.batches, result.schema, format)
}

/// Opens the caller's session and runs `sql` in it, on the query runtime.
async fn execute(
    state: &Arc<ApiState>,
    viewer: Viewer,
    scope: Scope,
    sql: String,
) -> Result<QueryResult, ApiError> {
    state.counters.count_query();
    let (lake, limits) = (state.snapshots.clone(), state.limits);
    // Waiting for one of the caller's slots counts toward the query's deadline.
    let started = tokio::time::Instant::now();
    let _pass = state.fairness.enter(&viewer.key(), limits.timeout).await?;
    let left = limits.timeout.saturating_sub(started.elapsed());
    let ran = state.executor.run(left, async move {
        let ctx = scoped_session(&lake, &viewer, &scope)?;
        Ok(run_limited(&ctx, &sql, &limits).await?)
    });
    // The deadline the caller knows is the whole one, waiting included.
    ran.await.map_err(|e| match e.code {
        "query_timeout" => crate::query::QueryError::Timeout(limits.timeout).into(),
        _ => e,
    })
}
