//! What every handler of the HTTP API shares: the server's state, its request counters, and
//! who the caller is and which Workspaces they may see.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};

use super::auth::{Authenticator, Caller};
use super::executor::QueryExecutor;
use super::respond::ApiError;
use crate::directory::Directory;
use crate::domain::WorkspaceId;
use crate::lake::Lake;
use crate::query::{LakeSnapshots, QueryLimits, Viewer};

/// Where a real run publishes its events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventsTopic {
    pub brokers: String,
    pub topic: String,
}

pub struct ApiState {
    pub events_topic: Option<EventsTopic>,
    pub billing: Option<super::ServedBilling>,
    pub link_limits: crate::directory::LinkLimits,
    pub lake: Lake,
    pub auth: Arc<Authenticator>,
    pub limits: QueryLimits,
    /// The lake and directory as queries read them (cached per version).
    pub snapshots: Arc<LakeSnapshots>,
    pub executor: QueryExecutor,
    pub fairness: Arc<super::fairness::Fairness>,
    pub counters: ApiCounters,
}

/// Requests answered, by status class, for `/metrics`.
#[derive(Default)]
pub struct ApiCounters {
    ok: AtomicU64,
    client_errors: AtomicU64,
    server_errors: AtomicU64,
    queries: AtomicU64,
}

impl ApiCounters {
    pub(super) fn count(&self, status: StatusCode) {
        let counter = match status.as_u16() {
            500.. => &self.server_errors,
            400.. => &self.client_errors,
            _ => &self.ok,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_query(&self) {
        self.queries.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "# HELP simtally_api_requests_total API requests answered, by status class.\n\
             # TYPE simtally_api_requests_total counter\n\
             simtally_api_requests_total{{class=\"2xx\"}} {}\n\
             simtally_api_requests_total{{class=\"4xx\"}} {}\n\
             simtally_api_requests_total{{class=\"5xx\"}} {}\n\
             # HELP simtally_api_queries_total Queries and reports run.\n\
             # TYPE simtally_api_queries_total counter\n\
             simtally_api_queries_total {}\n",
            get(&self.ok),
            get(&self.client_errors),
            get(&self.server_errors),
            get(&self.queries),
        )
    }
}

/// What a caller may see now: every Workspace (an operator) or these, with their role.
pub(super) type Access = Option<std::collections::BTreeMap<WorkspaceId, crate::domain::Role>>;

pub(super) fn can_access(access: &Access, workspace: WorkspaceId) -> bool {
    access.as_ref().is_none_or(|a| a.contains_key(&workspace))
}

/// The caller and what they may see now (the directory is read for every request, so a
/// revoked role takes effect at once).
pub(super) async fn audience_of(
    state: &ApiState,
    headers: &HeaderMap,
) -> Result<(Caller, Arc<Directory>, Viewer, Access), ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // The directory first: it says which issuer each person signs in through.
    let directory = state
        .snapshots
        .directory()
        .await
        .map_err(|e| ApiError::from(crate::query::QueryError::Lake(e)))?;
    let caller = state.auth.caller(authorization, &directory).await?;
    let viewer = match &caller {
        Caller::Operator(_) => Viewer::Operator,
        Caller::Member(user) => Viewer::Member(user.clone()),
    };
    let access = viewer.access(&directory);
    Ok((caller, directory, viewer, access))
}
