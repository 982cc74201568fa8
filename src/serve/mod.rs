//! serve: the HTTP endpoints. `simtally serve` answers the access-scoped API (see [`api`]);
//! a following ingest serves its operations endpoints, `/metrics` and `/healthz`.

mod api;
mod auth;
mod connections;
mod directory;
mod executor;
mod fairness;
mod invoices;
mod pg;
mod respond;
mod sign_in;
mod state;
mod tls;
mod transfers;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use api::OPENAPI;
pub use auth::{AuthOptions, Authenticator, Caller};
pub use connections::ConnectionLimits;
pub use fairness::FairnessLimits;
pub use state::EventsTopic;
pub use tls::TlsFiles;

use crate::lake::Lake;
use crate::query::LakeSnapshots;
use crate::query::QueryLimits;

/// What `simtally serve` needs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub address: String,
    /// Where to serve the Postgres wire protocol (HOST:PORT), if at all.
    pub postgres_address: Option<String>,
    pub auth: AuthOptions,
    pub limits: QueryLimits,
    /// Threads of the query runtime; 0 means one per core.
    pub query_threads: usize,
    /// Where SIM transfer requests publish their events (none: dry runs only).
    pub events_topic: Option<EventsTopic>,
    /// Queries each caller may run and queue (both endpoints).
    pub fairness: FairnessLimits,
    /// Connections each endpoint holds, and how long an idle one is kept.
    pub connections: ConnectionLimits,
    /// TLS for both endpoints (HTTPS; Postgres SSLRequest), if given.
    pub tls: Option<TlsFiles>,
    /// The price list and invoice directory for operators' `POST /v1/invoice-runs`.
    pub billing: Option<ServedBilling>,
    /// How many Workspaces each organization may have, as ingest counts them: directory
    /// changes over the API are checked against them before they are published.
    pub link_limits: crate::directory::LinkLimits,
}

/// What the server needs to issue invoices for an operator.
#[derive(Clone, Debug)]
pub struct ServedBilling {
    pub prices: std::path::PathBuf,
    /// Issued documents are also written here, as by `simtally invoice`.
    pub out: std::path::PathBuf,
}

/// Errors that stop the server from starting: all the user's to fix.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {address}: {cause}")]
    Bind {
        address: String,
        cause: std::io::Error,
    },
    #[error("token keys: {0}")]
    Key(String),
    #[error("cannot start the query runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot build the Postgres catalogs: {0}")]
    Catalog(String),
    #[error("{0}")]
    Tls(String),
}

/// A server that is listening: where, and how it ends.
pub struct RunningServer {
    pub address: SocketAddr,
    pub postgres_address: Option<SocketAddr>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds the API's address and serves it until `shutdown`.
pub async fn start(
    lake: Lake,
    options: &ServeOptions,
    shutdown: CancellationToken,
) -> Result<RunningServer, ServeError> {
    let threads = match options.query_threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let auth = Arc::new(Authenticator::new(&options.auth)?);
    let runtime = options
        .limits
        .runtime()
        .map_err(|e| ServeError::Runtime(std::io::Error::other(e)))?;
    let tls = options
        .tls
        .as_ref()
        .map(tls::acceptor)
        .transpose()
        .map_err(ServeError::Tls)?;
    let snapshots = LakeSnapshots::new(lake.clone(), runtime);
    // One share per caller across both endpoints.
    let fairness = Arc::new(fairness::Fairness::new(options.fairness));
    let postgres_address = match &options.postgres_address {
        Some(address) => Some(
            pg::start_postgres(
                address,
                snapshots.clone(),
                auth.clone(),
                pg::Limits {
                    query: options.limits,
                    fairness: fairness.clone(),
                    connections: options.connections,
                    tls: tls.clone(),
                },
                shutdown.clone(),
            )
            .await?,
        ),
        None => None,
    };
    if let Some(topic) = &options.events_topic {
        transfers::spawn_retries(
            lake.clone(),
            topic.clone(),
            std::time::Duration::from_secs(10),
            shutdown.clone(),
        );
    }
    let state = Arc::new(state::ApiState {
        events_topic: options.events_topic.clone(),
        billing: options.billing.clone(),
        link_limits: options.link_limits.clone(),
        lake,
        auth,
        limits: options.limits,
        snapshots,
        executor: executor::QueryExecutor::new(threads).map_err(ServeError::Runtime)?,
        fairness,
        counters: state::ApiCounters::default(),
    });
    let bind_error = |cause| ServeError::Bind {
        address: options.address.clone(),
        cause,
    };
    let listener = tokio::net::TcpListener::bind(&options.address)
        .await
        .map_err(bind_error)?;
    let address = listener.local_addr().map_err(bind_error)?;
    let router = api::router(state)
        .layer(axum::middleware::from_fn(connections::track))
        .into_make_service_with_connect_info::<connections::InFlight>();
    let listener =
        connections::HttpListener::new(listener, options.connections, tls).map_err(bind_error)?;
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    });
    Ok(RunningServer {
        address,
        postgres_address,
        task,
    })
}
