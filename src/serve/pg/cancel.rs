//! Postgres CancelRequest: a client (psql's Ctrl-C, a driver's `cancel()`, a BI tool's
//! stop button) opens a second connection with the key it got at startup, and the
//! statement its session is running stops with SQLSTATE 57014, its work dropped.
//! pgwire's own cancellation covers only the planning of a statement, not the streaming of
//! its rows, where a query does its work; so statements here check a token of their own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use datafusion_postgres::pgwire;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::ClientInfo;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;
use tokio_util::sync::CancellationToken;

type Key = (i32, Bytes);

/// Every session's running statement, by the key its client may cancel it with.
#[derive(Default)]
pub struct Cancels {
    sessions: Mutex<HashMap<Key, Arc<Session>>>,
}

/// One session: the token of the statement it runs now.
#[derive(Default)]
pub struct Session {
    current: Mutex<CancellationToken>,
}

impl Session {
    /// A fresh token for a statement that starts now.
    pub fn start(&self) -> CancellationToken {
        let token = CancellationToken::new();
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = token.clone();
        token
    }
}

/// Unregisters the session when the connection ends (kept in its session extensions).
pub struct Registered {
    key: Key,
    cancels: Arc<Cancels>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut sessions = self
            .cancels
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        sessions.remove(&self.key);
    }
}

impl Cancels {
    /// Gives `client`'s session a process id and an unguessable secret (the key it is told
    /// at startup and must present to cancel) and registers it under them.
    pub fn register<C: ClientInfo + ?Sized>(self: &Arc<Self>, client: &mut C) {
        let mut random = [0u8; 8];
        if let Err(e) = getrandom::fill(&mut random) {
            tracing::warn!("no randomness for a Postgres cancel key ({e}); cancel disabled");
            return;
        }
        let pid = i32::from_be_bytes([random[0] & 0x7f, random[1], random[2], random[3]]);
        let secret = SecretKey::I32(i32::from_be_bytes([
            random[4], random[5], random[6], random[7],
        ]));
        client.set_pid_and_secret_key(pid, secret.clone());
        let key = (pid, secret.to_bytes());
        let session = Arc::new(Session::default());
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.insert(key.clone(), session.clone());
        drop(sessions);
        client.session_extensions().insert(session);
        client.session_extensions().insert(Registered {
            key,
            cancels: self.clone(),
        });
    }
}

/// The token of a statement of `client` starting now (a token nobody cancels if the
/// session was never registered).
pub fn statement_token<C: ClientInfo + ?Sized>(client: &C) -> CancellationToken {
    match client.session_extensions().get::<Arc<Session>>() {
        Some(session) => session.start(),
        None => CancellationToken::new(),
    }
}

/// Answers CancelRequests from [`Cancels`].
pub struct CancelStatements(pub Arc<Cancels>);

#[async_trait::async_trait]
impl CancelHandler for CancelStatements {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let key = (request.pid, request.secret_key.to_bytes());
        let sessions = self.0.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(session) = sessions.get(&key) {
            session
                .current
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .cancel();
            tracing::info!(
                pid = request.pid,
                "Postgres statement canceled by its client"
            );
        }
    }
}
