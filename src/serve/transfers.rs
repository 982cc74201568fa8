//! `POST /v1/sim-transfers`: a dry run says what would happen to each SIM; a real run
//! accepts every move or, if any SIM cannot move, none, and publishes the accepted moves'
//! events to the events topic (through the lake's transfer outbox).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::auth::Caller;
use super::respond::{json_response, ApiError};
use super::state::{audience_of, ApiState, EventsTopic};
use crate::domain::UtcMillis;
use crate::query::QueryError;
use crate::tables::sim_events;
use crate::transfer::{events, outbox, plan, sim_states, RequestError, TransferRequest};

/// Publishes accepted requests the broker did not take at the time, every `every`.
pub fn spawn_retries(
    lake: crate::lake::Lake,
    topic: EventsTopic,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            match outbox::publish_pending(&lake, &topic.brokers, &topic.topic).await {
                Ok(done) if !done.is_empty() => {
                    tracing::info!(requests = done.len(), "published pending SIM transfers")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("pending SIM transfers not published yet: {e}"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
}

pub async fn request_transfer(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (caller, _, _, access) = audience_of(&state, &headers).await?;
    let (Caller::Member(user), Some(access)) = (caller, access) else {
        return Err(ApiError::forbidden(
            "SIMs are moved by a Workspace's Administrators or its SuperAdmin, not by operator tokens",
        ));
    };
    let request: TransferRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be JSON like {{\"iccids\": [...], \"target_workspace_id\": 102}}: {e}"
        ))
    })?;
    let lake = state.lake.clone();
    let now = UtcMillis::now();
    let (target, plans) = state
        .executor
        .run(state.limits.timeout, async move {
            let stored = sim_events::load(&lake)
                .await
                .map_err(|e| ApiError::from(QueryError::Lake(e)))?;
            let states = sim_states(&stored, now);
            let refused = |e: RequestError| match e {
                RequestError::Invalid(m) => ApiError::bad_request(m),
                RequestError::Forbidden(m) => ApiError::forbidden(m),
            };
            let plans = plan(&request, &states, &access).map_err(refused)?;
            Ok((request.target().map_err(refused)?, (request.dry_run, plans)))
        })
        .await?;
    let (dry_run, plans) = plans;
    let accepted = plans.iter().all(|p| p.error.is_none());
    let request_id = uuid::Uuid::new_v4().to_string();
    let answer = |published: bool| {
        json!({
            "request_id": request_id,
            "dry_run": dry_run,
            "target_workspace_id": target.get(),
            "accepted": accepted,
            "published": published,
            "sims": plans,
        })
    };
    if dry_run {
        return Ok(json_response(StatusCode::OK, &answer(false)));
    }
    if !accepted {
        return Ok(json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &answer(false),
        ));
    }
    let Some(topic) = &state.events_topic else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "events_topic_unavailable",
            "this server publishes no events: start it with --brokers to move SIMs",
        ));
    };
    // Accepted as a whole in one lake commit, then published; what the broker does not take
    // now is published by the retry loop (see `outbox`).
    let messages = events(&plans, target, &request_id, now, &user);
    let actor = crate::domain::Actor::User(user.clone());
    outbox::accept(&state.lake, &request_id, &actor, Some(target), &messages)
        .await
        .map_err(|e| ApiError::from(QueryError::Lake(e)))?;
    tracing::info!(%request_id, sims = plans.len(), %target, %user, "SIM transfer accepted");
    match outbox::publish_pending(&state.lake, &topic.brokers, &topic.topic).await {
        Ok(_) => Ok(json_response(StatusCode::OK, &answer(true))),
        Err(e) => {
            tracing::warn!(%request_id, "SIM transfer accepted, not yet published: {e}");
            Ok(json_response(StatusCode::ACCEPTED, &answer(false)))
        }
    }
}
