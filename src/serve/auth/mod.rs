//! Who is calling: a bearer JWT from the customer's identity provider (`sub` is the user
//! id), or an operator token signed with a separate key.

mod oidc;

use std::path::Path;

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::ServeError;
use crate::directory::Directory;
use crate::domain::{OrganizationId, UserId};
use oidc::{claimed_issuer, IssuerConfig, Oidc};

/// How tokens are checked. Keys are read once at start; their bytes never reach a log.
#[derive(Clone, Debug, Default)]
pub struct AuthOptions {
    /// HS256: the shared secret, in a file.
    pub hs256_secret_file: Option<std::path::PathBuf>,
    /// RS256: the identity provider's public key (PEM), in a file.
    pub rs256_public_key_file: Option<std::path::PathBuf>,
    /// Tokens with `iss` other than this are refused (when set).
    pub issuer: Option<String>,
    /// Tokens without this `aud` are refused (when set).
    pub audience: Option<String>,
    /// HS256 secret of operator tokens (they may see quarantine and dead letters).
    pub operator_secret_file: Option<std::path::PathBuf>,
    /// OpenID Connect issuers organizations sign their users in with (TOML, `[[issuer]]`
    /// entries: see `oidc::IssuerConfig`).
    pub oidc_issuers_file: Option<std::path::PathBuf>,
}

/// The caller of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Member(UserId),
    Operator(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    /// The identity provider that issued the token could not be asked for its keys.
    #[error("the identity provider {issuer} cannot be reached to check the token: {detail}")]
    Unavailable { issuer: String, detail: String },
    /// A genuine token, but not from the issuer this user must sign in through.
    #[error("{0}")]
    WrongIssuer(String),
}

/// Who issued a token that checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Issued {
    /// The built-in issuer (email and password).
    BuiltIn,
    /// A configured OpenID Connect issuer, for one organization's single sign-on or for
    /// everyone (`organization` unset).
    Oidc {
        issuer: String,
        organization: Option<OrganizationId>,
    },
}

/// A person's tokens must come from their default Workspace's single sign-on when it has it
/// (the identity provider of that Workspace's organization), and otherwise from the
/// built-in issuer or an issuer configured for no organization in particular.
fn check_issuer(directory: &Directory, user: &UserId, issued: &Issued) -> Result<(), AuthError> {
    let required = directory.single_sign_on(user);
    let allowed = match (required, issued) {
        (
            Some((_, organization)),
            Issued::Oidc {
                organization: of, ..
            },
        ) => *of == Some(organization),
        (Some(_), Issued::BuiltIn) => false,
        (
            None,
            Issued::BuiltIn
            | Issued::Oidc {
                organization: None, ..
            },
        ) => true,
        (None, Issued::Oidc { .. }) => false,
    };
    if allowed {
        return Ok(());
    }
    let from = match issued {
        Issued::BuiltIn => "the built-in issuer (email and password)".to_owned(),
        Issued::Oidc { issuer, .. } => format!("issuer {issuer}"),
    };
    Err(AuthError::WrongIssuer(match required {
        Some((workspace, organization)) => format!(
            "user {user} signs in through single sign-on (their default Workspace {workspace} \
             has it: organization {organization}'s identity provider), not with a token of {from}"
        ),
        None => format!(
            "user {user}'s default Workspace has no single sign-on: they sign in with email and \
             password, not with a token of {from}"
        ),
    }))
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    fn subject(&self, token: &str) -> Result<String, jsonwebtoken::errors::Error> {
        decode::<Claims>(token, &self.key, &self.validation).map(|data| data.claims.sub)
    }
}

pub struct Authenticator {
    /// The built-in issuer: users who sign in with email and password.
    members: Verifier,
    operators: Option<Verifier>,
    /// The organizations' own identity providers.
    oidc: Oidc,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuersFile {
    #[serde(default)]
    issuer: Vec<IssuerConfig>,
}

fn read_issuers(path: &Path) -> Result<Oidc, ServeError> {
    let failed = |e: String| ServeError::Key(format!("--oidc-issuers {}: {e}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
    let file: IssuersFile = toml::from_str(&text).map_err(|e| failed(e.message().to_owned()))?;
    for issuer in &file.issuer {
        let url = url::Url::parse(&issuer.issuer)
            .map_err(|e| failed(format!("{}: {e}", issuer.issuer)))?;
        let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if url.scheme() != "https" && !local {
            return Err(failed(format!(
                "{}: an issuer is reached over https",
                issuer.issuer
            )));
        }
    }
    Oidc::new(file.issuer).map_err(failed)
}

fn read_key(path: &Path, what: &str) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|e| ServeError::Key(format!("{what} {}: {e}", path.display())))
}

fn validation(algorithm: Algorithm, options: &AuthOptions) -> Validation {
    let mut validation = Validation::new(algorithm);
    // A configured issuer or audience must be present, not only right when present.
    let mut required = vec!["exp", "sub"];
    if let Some(issuer) = &options.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    match &options.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// An HS256 secret read from a file; a trailing newline (`echo secret > file`) is not part
/// of it.
fn read_secret(path: &Path, what: &str) -> Result<Vec<u8>, ServeError> {
    let mut secret = read_key(path, what)?;
    secret.truncate(secret.trim_ascii_end().len());
    if secret.len() < 32 {
        return Err(ServeError::Key(format!(
            "{what} {}: an HS256 secret needs at least 32 bytes",
            path.display()
        )));
    }
    Ok(secret)
}

fn secret_key(secret: &[u8], what: &str) -> Result<DecodingKey, ServeError> {
    DecodingKey::from_secret(secret).map_err(|e| ServeError::Key(format!("{what}: {e}")))
}

impl Authenticator {
    pub fn new(options: &AuthOptions) -> Result<Self, ServeError> {
        let operator_secret = match &options.operator_secret_file {
            Some(path) => Some(read_secret(path, "--operator-secret-file")?),
            None => None,
        };
        let members = match (&options.hs256_secret_file, &options.rs256_public_key_file) {
            (Some(path), None) => {
                let secret = read_secret(path, "--jwt-secret-file")?;
                if operator_secret.as_ref() == Some(&secret) {
                    return Err(ServeError::Key(
                        "the operator secret must differ from the users' secret, or every \
                         user's token would be an operator's"
                            .into(),
                    ));
                }
                Verifier {
                    key: secret_key(&secret, "--jwt-secret-file")?,
                    validation: validation(Algorithm::HS256, options),
                }
            }
            (None, Some(path)) => Verifier {
                key: DecodingKey::from_rsa_pem(&read_key(path, "--jwt-public-key-file")?).map_err(
                    |e| ServeError::Key(format!("--jwt-public-key-file {}: {e}", path.display())),
                )?,
                validation: validation(Algorithm::RS256, options),
            },
            _ => {
                return Err(ServeError::Key(
                    "give exactly one of --jwt-secret-file (HS256) and --jwt-public-key-file \
                     (RS256) to verify users' tokens"
                        .into(),
                ))
            }
        };
        let operators = match operator_secret {
            Some(secret) => Some(Verifier {
                key: secret_key(&secret, "--operator-secret-file")?,
                validation: validation(Algorithm::HS256, &AuthOptions::default()),
            }),
            None => None,
        };
        let oidc = match &options.oidc_issuers_file {
            Some(path) => read_issuers(path)?,
            None => Oidc::new(Vec::new()).map_err(ServeError::Key)?,
        };
        Ok(Authenticator {
            members,
            operators,
            oidc,
        })
    }

    /// Where a browser signs in with each configured issuer.
    pub async fn sign_in_endpoints(&self) -> Vec<oidc::SignInEndpoints> {
        self.oidc.sign_in_endpoints().await
    }

    /// An ID token for an authorization code of a configured issuer.
    pub async fn redeem(
        &self,
        issuer: &str,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<String, AuthError> {
        self.oidc.redeem(issuer, code, verifier, redirect_uri).await
    }

    /// The caller named by an `Authorization` header value.
    pub async fn caller(
        &self,
        authorization: Option<&str>,
        directory: &Directory,
    ) -> Result<Caller, AuthError> {
        let token = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::Missing)?;
        self.caller_of_token(token, directory).await
    }

    /// The caller a bare token names (the Postgres endpoint receives it as the password):
    /// an operator, or a person whose token comes from the issuer `directory` says they
    /// sign in through.
    pub async fn caller_of_token(
        &self,
        token: &str,
        directory: &Directory,
    ) -> Result<Caller, AuthError> {
        let (caller, issued) = self.verify(token).await?;
        if let Caller::Member(user) = &caller {
            check_issuer(directory, user, &issued)?;
        }
        Ok(caller)
    }

    /// Checks the token's signature and claims: an operator's, one of an organization's
    /// identity provider (by the token's `iss`), or one of the built-in issuer.
    async fn verify(&self, token: &str) -> Result<(Caller, Issued), AuthError> {
        if let Some(operators) = &self.operators {
            if let Ok(subject) = operators.subject(token) {
                return Ok((Caller::Operator(subject), Issued::BuiltIn));
            }
        }
        if let Some((iss, config)) = claimed_issuer(token)
            .and_then(|iss| self.oidc.issuer(&iss).cloned().map(|config| (iss, config)))
        {
            let user = self.oidc.verify(&iss, token).await?;
            let issued = Issued::Oidc {
                issuer: iss,
                organization: config.organization.and_then(OrganizationId::new),
            };
            return Ok((Caller::Member(user), issued));
        }
        let subject = self
            .members
            .subject(token)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        UserId::parse(&subject)
            .map(|user| (Caller::Member(user), Issued::BuiltIn))
            .map_err(|e| AuthError::Invalid(format!("sub: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    fn testdata(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/jwt")
            .join(name)
    }

    fn rs256_token(claims: serde_json::Value) -> String {
        let private = std::fs::read(testdata("rs256-private.pem")).unwrap();
        let key = EncodingKey::from_rsa_pem(&private).unwrap();
        encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
    }

    fn rs256_options() -> AuthOptions {
        AuthOptions {
            rs256_public_key_file: Some(testdata("rs256-public.pem")),
            issuer: Some("https://sso.example.com".into()),
            audience: Some("simtally".into()),
            ..AuthOptions::default()
        }
    }

    #[tokio::test]
    async fn rs256_tokens_of_the_identity_provider_name_the_user() {
        let auth = Authenticator::new(&rs256_options()).unwrap();
        let exp = chrono::Utc::now().timestamp() + 600;
        let good = rs256_token(serde_json::json!({
            "sub": "olga@example.com", "exp": exp,
            "iss": "https://sso.example.com", "aud": "simtally",
        }));
        assert_eq!(
            auth.caller(Some(&format!("Bearer {good}")), &Directory::default())
                .await
                .unwrap(),
            Caller::Member(UserId::parse("olga@example.com").unwrap())
        );
        let wrong_issuer = rs256_token(serde_json::json!({
            "sub": "olga@example.com", "exp": exp,
            "iss": "https://elsewhere.example.com", "aud": "simtally",
        }));
        assert!(auth
            .caller_of_token(&wrong_issuer, &Directory::default())
            .await
            .is_err());
        let no_audience = rs256_token(serde_json::json!({
            "sub": "olga@example.com", "exp": exp, "iss": "https://sso.example.com",
        }));
        assert!(auth
            .caller_of_token(&no_audience, &Directory::default())
            .await
            .is_err());
        // An HS256 token signed with the public key's bytes (the classic confusion) fails.
        let public = std::fs::read(testdata("rs256-public.pem")).unwrap();
        let confused = encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "olga", "exp": exp, "iss": "https://sso.example.com", "aud": "simtally"}),
            &EncodingKey::from_secret(&public).unwrap(),
        )
        .unwrap();
        assert!(auth
            .caller_of_token(&confused, &Directory::default())
            .await
            .is_err());
    }

    #[test]
    fn keys_are_checked_at_start() {
        assert!(Authenticator::new(&AuthOptions::default()).is_err());
        let both = AuthOptions {
            hs256_secret_file: Some(testdata("rs256-public.pem")),
            ..rs256_options()
        };
        assert!(Authenticator::new(&both).is_err());
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "too-short").unwrap();
        let error = Authenticator::new(&AuthOptions {
            hs256_secret_file: Some(short),
            ..AuthOptions::default()
        })
        .err()
        .unwrap();
        assert!(error.to_string().contains("32 bytes"), "{error}");
        let missing = Authenticator::new(&AuthOptions {
            hs256_secret_file: Some(dir.path().join("nowhere")),
            ..AuthOptions::default()
        })
        .err()
        .unwrap();
        assert!(missing.to_string().contains("nowhere"), "{missing}");
    }
}
