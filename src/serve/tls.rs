//! TLS for both endpoints (rustls, with the aws-lc-rs provider already in the tree): the
//! certificate chain and private key from PEM files. The Postgres endpoint then answers
//! SSLRequest (psql `sslmode=require`) and still takes plain connections, as PostgreSQL
//! does without `hostssl` rules; the HTTP endpoint then speaks HTTPS only.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion_postgres::pgwire::tokio::tokio_rustls::rustls;
use datafusion_postgres::pgwire::tokio::tokio_rustls::TlsAcceptor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where the server's certificate chain and key are (PEM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// The acceptor for `files`, or what is wrong with them (the user's to fix).
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, String> {
    let shown = |path: &PathBuf| path.display().to_string();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.certificate)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("TLS certificate {}: {e}", shown(&files.certificate)))?;
    if chain.is_empty() {
        return Err(format!(
            "TLS certificate {}: no certificate in it",
            shown(&files.certificate)
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("TLS key {}: {e}", shown(&files.key)))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("TLS certificate and key do not go together: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
