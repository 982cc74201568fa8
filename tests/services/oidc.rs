//! Sign-in through an organization's own identity provider: a local OpenID Connect provider
//! (tests/clients/oidc_provider.py) serves discovery and its key set; simtally checks its
//! RS256 and ES256 tokens, follows a key rotation without a restart, and refuses what the
//! provider did not sign, for whom it was not meant, or after it expired.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::access::{self, write_fixture};
use common::server::{serve_with_oidc, token, Answer, TestServer};
use common::{ingest_files, local_lake, wire};
use reqwest::StatusCode;

/// The provider, killed when dropped.
struct Provider {
    child: Child,
    issuer: String,
    client: reqwest::Client,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    fn start() -> Provider {
        let python = std::env::var("SIMTALLY_TEST_PYTHON").expect(
            "SIMTALLY_TEST_PYTHON: a Python with cryptography (scripts/test.sh installs it)",
        );
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/oidc_provider.py"
        );
        let mut child = Command::new(python)
            .arg(script)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the provider starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Provider {
            child,
            issuer: line.trim().to_owned(),
            client: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let url = format!("{}{path}", self.issuer);
        let request = (self.client.post(url))
            .header("content-type", "application/json")
            .body(body.to_string());
        let response = request.send().await.unwrap();
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }

    /// A token for `email`, signed by the provider's current `alg` key.
    async fn token(&self, alg: &str, email: &str, audience: &str, expires_in: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({
            "iss": self.issuer, "aud": audience, "sub": format!("id-{email}"),
            "email": email, "iat": now, "exp": now + expires_in,
        });
        let minted = self
            .post("/mint", serde_json::json!({"alg": alg, "claims": claims}))
            .await;
        minted["token"].as_str().unwrap().to_owned()
    }

    async fn jwks_fetches(&self) -> u64 {
        let url = format!("{}/stats", self.issuer);
        let response = self.client.get(url).send().await.unwrap();
        let stats: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        stats["jwks_fetches"].as_u64().unwrap()
    }
}

/// The provider, a lake with the access fixture, and a server that trusts the provider
/// (the user id in the `email` claim) beside its built-in issuer.
async fn world() -> (Provider, tempfile::TempDir, TestServer) {
    let provider = Provider::start();
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = write_fixture(dir.path());
    // adam, Administrator of 101 (his default Workspace: his first invitation), turns
    // single sign-on on there: whoever's default 101 is signs in through the provider.
    let sso = access::write(
        &dir.path().join("sso.ndjson"),
        &[wire::by(
            &wire::sso("d-sso-101", "2026-09-30T02:00:00Z", 101, true),
            "adam",
        )],
    );
    ingest_files(&lake, &[usage], &[events, sso]).await;
    let issuers = dir.path().join("issuers.toml");
    let issuer = format!(
        "[[issuer]]\nissuer = \"{}\"\naudience = \"simtally\"\nuser_claim = \"email\"\norganization = 1\n",
        provider.issuer
    );
    std::fs::write(&issuers, issuer).unwrap();
    let server = serve_with_oidc(&lake, dir.path(), &issuers).await;
    (provider, dir, server)
}

async fn workspaces(server: &TestServer, token: &str) -> Answer {
    server.get("/v1/workspaces", Some(token), None).await
}

fn ids(answer: &Answer) -> Vec<i64> {
    let listed = answer.json()["workspaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    listed
        .iter()
        .map(|w| w["workspace_id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_sign_in_through_their_organizations_provider_across_a_key_rotation() {
    let (provider, _dir, server) = world().await;

    // Adam (Administrator of 101 and 102 in the fixture) signs in with RS256, then ES256; his
    // user id is the email claim.
    let rs = provider.token("RS256", "adam", "simtally", 600).await;
    let answer = workspaces(&server, &rs).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(ids(&answer), [101, 102]);
    let es = provider.token("ES256", "adam", "simtally", 600).await;
    assert_eq!(ids(&workspaces(&server, &es).await), [101, 102]);
    // The keys were fetched once and are cached.
    assert_eq!(provider.jwks_fetches().await, 1);
    for _ in 0..3 {
        assert_eq!(workspaces(&server, &rs).await.status, StatusCode::OK);
    }
    assert_eq!(provider.jwks_fetches().await, 1);

    // The provider rotates its keys: a token of the new key is accepted without a restart,
    // and one of the withdrawn key no longer is once the set was fetched again.
    provider.post("/rotate", serde_json::json!({})).await;
    let rotated = provider.token("RS256", "adam", "simtally", 600).await;
    let answer = workspaces(&server, &rotated).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(provider.jwks_fetches().await, 2);
    assert_eq!(
        workspaces(&server, &rs).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Not for simtally, expired, tampered with, or of an issuer nobody configured: refused.
    let other_audience = provider.token("RS256", "adam", "another-app", 600).await;
    let expired = provider.token("ES256", "adam", "simtally", -600).await;
    let genuine = provider.token("RS256", "adam", "simtally", 600).await;
    // One signature character changed (not the last: its low bits may be padding).
    let at = genuine.len() - 10;
    let other = if &genuine[at..at + 1] == "A" {
        "B"
    } else {
        "A"
    };
    let tampered = format!("{}{other}{}", &genuine[..at], &genuine[at + 1..]);
    for refused in [other_audience, expired, tampered] {
        let answer = workspaces(&server, &refused).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text());
    }
    // adam's default Workspace has single sign-on: his password (the built-in issuer's
    // token) no longer signs him in. sara's default (201) has none: the built-in issuer
    // signs her in, and organization 1's provider does not.
    let password = workspaces(&server, &token("adam")).await;
    assert_eq!(password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(password.error_code(), "wrong_issuer", "{}", password.text());
    assert_eq!(
        ids(&workspaces(&server, &token("sara")).await),
        [101, 102, 103, 201]
    );
    let sara_sso = provider.token("RS256", "sara", "simtally", 600).await;
    assert_eq!(
        workspaces(&server, &sara_sso).await.error_code(),
        "wrong_issuer"
    );
    // Made-up key ids do not make simtally hammer the provider.
    let fetches = provider.jwks_fetches().await;
    for n in 0..5 {
        let forged = forged_kid(&rotated, &format!("made-up-{n}"));
        assert_eq!(
            workspaces(&server, &forged).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert!(provider.jwks_fetches().await <= fetches + 1);
}

/// `token` with its header's `kid` replaced (the signature no longer matters: no such key).
fn forged_kid(token: &str, kid: &str) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut header: serde_json::Value =
        serde_json::from_slice(&engine.decode(&parts[0]).unwrap()).unwrap();
    header["kid"] = serde_json::json!(kid);
    parts[0] = engine.encode(serde_json::to_vec(&header).unwrap());
    parts.join(".")
}

/// A provider that cannot be reached makes its users' requests fail as unavailable (503),
/// not as a bad token, and nobody else's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_provider_answers_503_for_its_users_only() {
    let (provider, _dir, server) = world().await;
    let minted = provider.token("RS256", "adam", "simtally", 600).await;
    drop(provider);
    let answer = workspaces(&server, &minted).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.text()
    );
    assert_eq!(answer.error_code(), "identity_provider_unavailable");
    assert_eq!(
        workspaces(&server, &token("sara")).await.status,
        StatusCode::OK
    );
}

/// The dashboard signs a person in through their organization's provider in headless
/// Chromium: the authorization code flow with PKCE, the code redeemed through simtally,
/// then the person's Workspaces and charts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_signs_in_through_the_provider_with_pkce() {
    let (provider, _dir, server) = world().await;
    // adam is signed in at his provider (as his browser session there would be).
    provider
        .post("/login-as", serde_json::json!({"email": "adam"}))
        .await;
    let url = format!("{}/?sign_in={}", server.base, provider.issuer);
    let screenshot = std::env::temp_dir().join("simtally-dashboard-sso.png");
    let page = tokio::task::spawn_blocking(move || signed_in_page(&url, &screenshot))
        .await
        .unwrap();
    assert_eq!(page["who"], "adam", "{page}");
    assert_eq!(page["status"], "Showing 2 Workspaces.", "{page}");
    // Back on the dashboard, without the code in the address.
    assert_eq!(page["url"], format!("{}/", server.base));
    let dom = page["dom"].as_str().unwrap();
    assert!(dom.contains("Workspace 101 (101, Administrator)"), "{dom}");
    assert!(dom.contains("data-workspace=\"102\""), "no chart: {dom}");
    assert_eq!(page["console_errors"], serde_json::json!([]), "{page}");

    // A code that was not issued, or a verifier that does not match, gets no token.
    let forged = server
        .post(
            "/v1/sign-in/token",
            "",
            serde_json::json!({
                "issuer": provider.issuer, "code": "made-up", "redirect_uri": server.base,
                "code_verifier": "a".repeat(43),
            }),
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{}", forged.text());
}

/// What the dashboard shows once a browser signed in at `url` (tests/clients/browser_sign_in.py,
/// through ChromeDriver).
fn signed_in_page(url: &str, screenshot: &std::path::Path) -> serde_json::Value {
    let python = std::env::var("SIMTALLY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/browser_sign_in.py"
    );
    let output = Command::new(python)
        .arg(script)
        .arg(url)
        .arg(screenshot)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the driver prints JSON")
}
