//! A running `simtally serve` (in this process, on a real port) and a real HTTP client.

use std::path::Path;

use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::StatusCode;
use simtally::lake::Lake;
use simtally::query::QueryLimits;
use simtally::serve::{start, AuthOptions, ServeOptions};
use tokio_util::sync::CancellationToken;

pub const USER_SECRET: &str = "users-secret-of-the-identity-provider-0123456789";
pub const OPERATOR_SECRET: &str = "operators-secret-kept-apart-from-users-0123456789";

pub struct TestServer {
    pub base: String,
    pub postgres: std::net::SocketAddr,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A token for `sub`, signed with `secret`, expiring in an hour (or in the past).
pub fn token_with(secret: &str, sub: &str, expired: bool) -> String {
    let now = chrono::Utc::now().timestamp();
    let exp = if expired { now - 3600 } else { now + 3600 };
    let claims = serde_json::json!({"sub": sub, "exp": exp, "iat": now});
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

pub fn token(user: &str) -> String {
    token_with(USER_SECRET, user, false)
}

pub fn operator_token() -> String {
    token_with(OPERATOR_SECRET, "ops", false)
}

pub async fn serve(lake: &Lake, dir: &Path, limits: QueryLimits) -> TestServer {
    serve_with_events(lake, dir, limits, None).await
}

/// As [`serve`], publishing SIM transfer events to `events_topic`.
pub async fn serve_with_events(
    lake: &Lake,
    dir: &Path,
    limits: QueryLimits,
    events_topic: Option<simtally::serve::EventsTopic>,
) -> TestServer {
    serve_configured(lake, dir, limits, events_topic, None).await
}

/// As [`serve`], trusting the OpenID Connect issuers of `issuers_file` too.
pub async fn serve_with_oidc(lake: &Lake, dir: &Path, issuers_file: &Path) -> TestServer {
    let file = Some(issuers_file.to_path_buf());
    serve_configured(lake, dir, QueryLimits::default(), None, file).await
}

async fn serve_configured(
    lake: &Lake,
    dir: &Path,
    limits: QueryLimits,
    events_topic: Option<simtally::serve::EventsTopic>,
    oidc_issuers_file: Option<std::path::PathBuf>,
) -> TestServer {
    let user_secret = dir.join("user-secret.txt");
    let operator_secret = dir.join("operator-secret.txt");
    std::fs::write(&user_secret, format!("{USER_SECRET}\n")).unwrap();
    std::fs::write(&operator_secret, OPERATOR_SECRET).unwrap();
    let options = ServeOptions {
        address: "127.0.0.1:0".into(),
        postgres_address: Some("127.0.0.1:0".into()),
        auth: AuthOptions {
            hs256_secret_file: Some(user_secret),
            operator_secret_file: Some(operator_secret),
            oidc_issuers_file,
            ..AuthOptions::default()
        },
        limits,
        query_threads: 2,
        events_topic,
        fairness: simtally::serve::FairnessLimits::default(),
        connections: simtally::serve::ConnectionLimits::default(),
        tls: None,
        billing: Some(simtally::serve::ServedBilling {
            prices: dir.join("prices.toml"),
            out: dir.join("served-invoices"),
        }),
        link_limits: Default::default(),
    };
    let shutdown = CancellationToken::new();
    let server = start(lake.clone(), &options, shutdown.clone())
        .await
        .expect("the server starts");
    TestServer {
        base: format!("http://{}", server.address),
        postgres: server
            .postgres_address
            .expect("the Postgres endpoint listens"),
        client: reqwest::Client::new(),
        shutdown,
    }
}

/// An answer: status, content type and body.
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `error.code` of an error answer.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

impl TestServer {
    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the server answers");
        Answer {
            status: response.status(),
            content_type: response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
            body: response.bytes().await.unwrap().to_vec(),
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>, accept: Option<&str>) -> Answer {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        self.send(request).await
    }

    pub async fn query(&self, token: &str, body: serde_json::Value) -> Answer {
        let request = self
            .client
            .post(format!("{}/v1/query", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string());
        self.send(request).await
    }

    pub async fn post(&self, path: &str, token: &str, body: serde_json::Value) -> Answer {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string());
        self.send(request).await
    }

    /// Any method, with a JSON body if given.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> Answer {
        let mut request = (self.client)
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        self.send(request).await
    }

    pub async fn sql(&self, token: &str, sql: &str) -> Answer {
        self.query(token, serde_json::json!({ "sql": sql })).await
    }
}
