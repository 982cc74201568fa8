//! OpenID Connect issuers an organization signs its users in with: each issuer's discovery
//! document and JSON Web Key Set are fetched when first needed, cached, and fetched again
//! when a token names a key (`kid`) the cache does not hold, so a provider that rotates its
//! keys is followed without a restart. RS256 and ES256 keys; anything else is refused.
//!
//! A flood of tokens with made-up `kid`s costs the provider at most one fetch per issuer
//! every `MIN_REFETCH` (a key the provider publishes within that time of an earlier
//! rotation is accepted once it passes); a provider that cannot be reached makes its users' requests fail
//! with `Unavailable` (503), never another issuer's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use super::AuthError;
use crate::domain::UserId;

/// How soon an unknown `kid` may make the keys be fetched again.
const MIN_REFETCH: Duration = Duration::from_secs(10);
/// Keys older than this are fetched again on the next token.
const MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// One request to the provider.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// One trusted issuer, as the configuration names it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The `iss` of its tokens; discovery is read from `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// The `aud` its tokens must carry (the client id simtally is registered with).
    pub audience: String,
    /// The claim that carries the user id (default `sub`; often `email`).
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// The organization whose Workspaces may turn single sign-on on with this issuer.
    pub organization: Option<i64>,
}

fn default_user_claim() -> String {
    "sub".to_owned()
}

struct Keys {
    by_kid: HashMap<String, (DecodingKey, Algorithm)>,
    fetched: Option<Instant>,
    /// The last fetch an unknown `kid` caused (the first fetch and age do not count).
    refetched_for_kid: Option<Instant>,
}

struct Issuer {
    config: IssuerConfig,
    keys: RwLock<Keys>,
    /// The discovery document and when it was fetched: read again after `MAX_KEY_AGE`, so
    /// sign-ins (whose endpoints are public) cost the provider no request each.
    discovery: RwLock<Option<(Discovery, Instant)>>,
    /// One fetch at a time per issuer.
    fetching: Mutex<()>,
}

/// The configured issuers and the HTTP client that reads their keys.
pub struct Oidc {
    issuers: Vec<Issuer>,
    client: reqwest::Client,
}

#[derive(Clone, Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint: Option<String>,
}

/// Where a browser signs in with an issuer (authorization code with PKCE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignInEndpoints {
    pub issuer: String,
    pub organization: Option<i64>,
    /// The client id simtally is registered with (the tokens' audience).
    pub client_id: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: String,
}

impl Oidc {
    pub fn new(configs: Vec<IssuerConfig>) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| format!("HTTP client for OpenID Connect: {e}"))?;
        let issuers = (configs.into_iter())
            .map(|config| Issuer {
                config,
                keys: RwLock::new(Keys {
                    by_kid: HashMap::new(),
                    fetched: None,
                    refetched_for_kid: None,
                }),
                discovery: RwLock::new(None),
                fetching: Mutex::new(()),
            })
            .collect();
        Ok(Oidc { issuers, client })
    }

    /// The configuration of the issuer named `iss`, if it is one of them.
    pub fn issuer(&self, iss: &str) -> Option<&IssuerConfig> {
        self.find(iss).map(|i| &i.config)
    }

    fn find(&self, iss: &str) -> Option<&Issuer> {
        self.issuers.iter().find(|i| i.config.issuer == iss)
    }

    /// The user a token of the configured issuer `iss` names, once its signature, issuer,
    /// audience and expiry check out.
    pub async fn verify(&self, iss: &str, token: &str) -> Result<UserId, AuthError> {
        let issuer = self.find(iss).ok_or_else(|| invalid("unknown issuer"))?;
        let header = decode_header(token).map_err(|e| invalid(&e.to_string()))?;
        let kid = header
            .kid
            .ok_or_else(|| invalid("the token names no key (kid)"))?;
        let (key, algorithm) = self.key(issuer, &kid).await?;
        if header.alg != algorithm {
            return Err(invalid("the token's alg does not match its key"));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&issuer.config.issuer]);
        validation.set_audience(&[&issuer.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|e| invalid(&e.to_string()))?
            .claims;
        let claim = &issuer.config.user_claim;
        let user = (claims.get(claim).and_then(|v| v.as_str()))
            .ok_or_else(|| invalid(&format!("the token has no {claim} claim")))?;
        UserId::parse(user).map_err(|e| invalid(&format!("{claim}: {e}")))
    }

    /// The key `kid` of `issuer`: from the cache, or fetched when unknown or old.
    async fn key(&self, issuer: &Issuer, kid: &str) -> Result<(DecodingKey, Algorithm), AuthError> {
        {
            let keys = issuer.keys.read().await;
            let fresh = keys.fetched.is_some_and(|t| t.elapsed() < MAX_KEY_AGE);
            if let (Some(found), true) = (keys.by_kid.get(kid), fresh) {
                return Ok(found.clone());
            }
        }
        let _one = issuer.fetching.lock().await;
        // Another request may have fetched while this one waited.
        let for_kid = {
            let keys = issuer.keys.read().await;
            let fresh = keys.fetched.is_some_and(|t| t.elapsed() < MAX_KEY_AGE);
            match (keys.by_kid.get(kid), fresh) {
                (Some(found), true) => return Ok(found.clone()),
                // Fresh keys without this one: a rotation, or a made-up kid.
                (None, true)
                    if keys
                        .refetched_for_kid
                        .is_some_and(|t| t.elapsed() < MIN_REFETCH) =>
                {
                    return Err(invalid("the token names a key its issuer does not publish"));
                }
                (None, true) => true,
                (_, false) => false,
            }
        };
        let fetched = self.fetch(issuer).await;
        let mut keys = issuer.keys.write().await;
        keys.fetched = Some(Instant::now());
        if for_kid {
            keys.refetched_for_kid = keys.fetched;
        }
        match fetched {
            Ok(by_kid) => keys.by_kid = by_kid,
            // Keys known before stay usable while the provider is away.
            Err(e) if keys.by_kid.contains_key(kid) => {
                tracing::warn!(issuer = %issuer.config.issuer, "keeping cached keys: {e}");
            }
            Err(e) => return Err(e),
        }
        (keys.by_kid.get(kid).cloned())
            .ok_or_else(|| invalid("the token names a key its issuer does not publish"))
    }

    /// The issuer's discovery document, checked to name the issuer.
    async fn discovery(&self, issuer: &Issuer) -> Result<Discovery, AuthError> {
        if let Some((cached, at)) = &*issuer.discovery.read().await {
            if at.elapsed() < MAX_KEY_AGE {
                return Ok(cached.clone());
            }
        }
        let config = &issuer.config;
        let unavailable = |detail: String| AuthError::Unavailable {
            issuer: config.issuer.clone(),
            detail,
        };
        let url = format!(
            "{}/.well-known/openid-configuration",
            config.issuer.trim_end_matches('/')
        );
        let discovery: Discovery = self.get_json(&url).await.map_err(unavailable)?;
        if discovery.issuer != config.issuer {
            return Err(unavailable(format!(
                "its discovery document names issuer {}",
                discovery.issuer
            )));
        }
        *issuer.discovery.write().await = Some((discovery.clone(), Instant::now()));
        Ok(discovery)
    }

    /// Where a browser signs in with each issuer that supports the authorization code
    /// flow; an issuer that cannot be reached now is left out (and logged).
    pub async fn sign_in_endpoints(&self) -> Vec<SignInEndpoints> {
        let mut found = Vec::new();
        for issuer in &self.issuers {
            let config = &issuer.config;
            match self.discovery(issuer).await {
                Ok(Discovery {
                    authorization_endpoint: Some(authorization_endpoint),
                    token_endpoint: Some(token_endpoint),
                    ..
                }) => found.push(SignInEndpoints {
                    issuer: config.issuer.clone(),
                    organization: config.organization,
                    client_id: config.audience.clone(),
                    authorization_endpoint,
                    token_endpoint,
                }),
                Ok(_) => {}
                Err(e) => tracing::warn!(issuer = %config.issuer, "no sign-in through it now: {e}"),
            }
        }
        found
    }

    /// Redeems an authorization code (with the PKCE verifier the browser kept) at the
    /// issuer's token endpoint, and returns the ID token it gives once it checks out.
    pub async fn redeem(
        &self,
        iss: &str,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<String, AuthError> {
        let issuer = self
            .find(iss)
            .ok_or_else(|| invalid("not a configured issuer"))?;
        let config = &issuer.config;
        let discovery = self.discovery(issuer).await?;
        let endpoint = (discovery.token_endpoint)
            .ok_or_else(|| invalid("the issuer has no token endpoint"))?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
            ("client_id", &config.audience),
        ];
        let response = (self.client.post(&endpoint).form(&form).send().await).map_err(|e| {
            AuthError::Unavailable {
                issuer: config.issuer.clone(),
                detail: format!("{endpoint}: {e}"),
            }
        })?;
        if !response.status().is_success() {
            return Err(invalid(&format!(
                "the issuer refused the code (HTTP {})",
                response.status()
            )));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| invalid(&e.to_string()))?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| invalid(&format!("the token endpoint's answer: {e}")))?;
        self.verify(iss, &answer.id_token).await?;
        Ok(answer.id_token)
    }

    async fn fetch(
        &self,
        issuer: &Issuer,
    ) -> Result<HashMap<String, (DecodingKey, Algorithm)>, AuthError> {
        let config = &issuer.config;
        let unavailable = |detail: String| AuthError::Unavailable {
            issuer: config.issuer.clone(),
            detail,
        };
        let discovery = self.discovery(issuer).await?;
        let set: JwkSet = self
            .get_json(&discovery.jwks_uri)
            .await
            .map_err(unavailable)?;
        let mut by_kid = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(algorithm)) = (&jwk.common.key_id, algorithm_of(&jwk.algorithm))
            else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                by_kid.insert(kid.clone(), (key, algorithm));
            }
        }
        tracing::info!(issuer = %config.issuer, keys = by_kid.len(), "fetched signing keys");
        Ok(by_kid)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let response = (self.client.get(url).send().await).map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: HTTP {}", response.status()));
        }
        let body = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
    }
}

/// The signature algorithm a key is for: RS256 for RSA, ES256 for P-256; others are refused.
fn algorithm_of(parameters: &AlgorithmParameters) -> Option<Algorithm> {
    match parameters {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Some(Algorithm::ES256)
        }
        _ => None,
    }
}

fn invalid(detail: &str) -> AuthError {
    AuthError::Invalid(detail.to_owned())
}

/// The `iss` a JWT claims, read without checking its signature (only to choose the issuer
/// whose keys then check it).
pub fn claimed_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(Deserialize)]
    struct Iss {
        iss: Option<String>,
    }
    serde_json::from_slice::<Iss>(&bytes).ok()?.iss
}
