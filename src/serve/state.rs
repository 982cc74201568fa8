//! What every handler of the HTTP API shares: the server's state, its request counters, and
//! who the caller is and which Workspaces they may see.

use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

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

/// Requests answered, by status class, and queries run, for `/metrics` (OpenMetrics text).
pub struct ApiCounters {
    registry: Registry,
    /// `simtally_api_requests_total` of the classes 2xx, 4xx and 5xx.
    ok: Counter,
    client_errors: Counter,
    server_errors: Counter,
    queries: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusClass {
    class: &'static str,
}

impl Default for ApiCounters {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("simtally_api");
        let requests = Family::<StatusClass, Counter>::default();
        registry.register(
            "requests",
            "API requests answered, by status class",
            requests.clone(),
        );
        let queries = Counter::default();
        registry.register("queries", "Queries and reports run", queries.clone());
        // Every class from the start, so a rate over a class that has not happened yet is 0.
        let class = |class| requests.get_or_create_owned(&StatusClass { class });
        ApiCounters {
            ok: class("2xx"),
            client_errors: class("4xx"),
            server_errors: class("5xx"),
            queries,
            registry,
        }
    }
}

impl ApiCounters {
    pub(super) fn count(&self, status: StatusCode) {
        let counter = match status.as_u16() {
            500.. => &self.server_errors,
            400.. => &self.client_errors,
            _ => &self.ok,
        };
        counter.inc();
    }

    pub(super) fn count_query(&self) {
        self.queries.inc();
    }

    pub(super) fn registry(&self) -> &Registry {
        &self.registry
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
