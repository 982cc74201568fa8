//! Browser sign-in through an organization's identity provider: the authorization code flow
//! with PKCE (RFC 7636). The dashboard keeps the code verifier, sends the person to the
//! provider's authorization endpoint with its challenge, and hands the code it gets back to
//! `POST /v1/sign-in/token`, which redeems it at the provider's token endpoint (no browser
//! request leaves the dashboard's origin) and answers the ID token once it checks out.
//! Which issuer a person must sign in through is decided on every request (`auth`), not here.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::respond::{json_response, ApiError};
use super::state::ApiState;

/// `GET /v1/sign-in`: the identity providers a browser can sign in with.
pub async fn providers(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    let providers: Vec<_> = (state.auth.sign_in_endpoints().await.into_iter())
        .map(|p| {
            json!({
                "issuer": p.issuer,
                "organization_id": p.organization,
                "client_id": p.client_id,
                "authorization_endpoint": p.authorization_endpoint,
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"providers": providers}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Redeem {
    issuer: String,
    code: String,
    code_verifier: String,
    redirect_uri: String,
}

/// `POST /v1/sign-in/token`: an authorization code and its PKCE verifier for an ID token.
pub async fn token(State(state): State<Arc<ApiState>>, bytes: Bytes) -> Result<Response, ApiError> {
    let redeem: Redeem = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be JSON like {{\"issuer\": ..., \"code\": ..., \"code_verifier\": ..., \
             \"redirect_uri\": ...}}: {e}"
        ))
    })?;
    // RFC 7636: 43 to 128 characters of [A-Za-z0-9-._~].
    let verifier_ok = (43..=128).contains(&redeem.code_verifier.len())
        && (redeem.code_verifier.bytes())
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !verifier_ok {
        return Err(ApiError::bad_request(
            "code_verifier must have 43 to 128 characters of A-Z, a-z, 0-9, -, ., _, ~",
        ));
    }
    if redeem.code.is_empty() || redeem.code.len() > 2048 {
        return Err(ApiError::bad_request("code must have 1 to 2048 characters"));
    }
    if url::Url::parse(&redeem.redirect_uri).is_err() {
        return Err(ApiError::bad_request("redirect_uri is not a URL"));
    }
    let token = state
        .auth
        .redeem(
            &redeem.issuer,
            &redeem.code,
            &redeem.code_verifier,
            &redeem.redirect_uri,
        )
        .await?;
    Ok(json_response(StatusCode::OK, &json!({"token": token})))
}
