//! How many connections each endpoint holds, and for how long an idle one is kept. Past
//! the maximum, a new connection gets a clear refusal (HTTP 503, Postgres SQLSTATE 53300)
//! and is closed; a connection that sends nothing for the idle timeout (a request half
//! sent, a keep-alive nobody uses, a Postgres session between statements) is closed, so
//! slow or abandoned clients cannot hold the server's slots.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use datafusion_postgres::pgwire::tokio::tokio_rustls;

/// The connection limits of one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 512,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// The requests an HTTP connection is answering now ([`track`] counts them): while there
/// are any, the connection is not idle, however long the query takes.
#[derive(Clone, Debug, Default)]
pub struct InFlight(Arc<AtomicUsize>);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, HttpListener>>
    for InFlight
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, HttpListener>) -> Self {
        stream.io().in_flight.clone()
    }
}

struct Answering(InFlight);

impl Drop for Answering {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Middleware: counts the request as in flight on its connection until it is answered.
pub async fn track(
    axum::extract::ConnectInfo(in_flight): axum::extract::ConnectInfo<InFlight>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    in_flight.0.fetch_add(1, Ordering::Relaxed);
    let _answering = Answering(in_flight);
    next.run(request).await
}

/// A connection that closes itself when its reads wait longer than the idle timeout with
/// no request in flight, and gives its slot back when it ends.
pub struct Guarded<S> {
    inner: S,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    in_flight: InFlight,
    _slot: OwnedSemaphorePermit,
}

impl<S> Guarded<S> {
    fn new(inner: S, idle: Duration, slot: OwnedSemaphorePermit) -> Self {
        Guarded {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            in_flight: InFlight::default(),
            _slot: slot,
        }
    }

    fn active(&mut self) {
        self.timer.as_mut().reset(Instant::now() + self.idle);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.active();
                }
                Poll::Ready(result)
            }
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) if self.in_flight.0.load(Ordering::Relaxed) > 0 => {
                    self.active();
                    let _ = self.timer.as_mut().poll(cx); // wake again after the next period
                    Poll::Pending
                }
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "idle connection closed",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            if n > 0 {
                self.active();
            }
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The HTTP listener under the limits (axum serves its connections). A task of its own
/// accepts connections, takes their slots in the order they came, and does the TLS
/// handshakes (each in a task, so a slow one holds up nobody); `accept` hands over the
/// connections ready to serve.
pub struct HttpListener {
    ready: tokio::sync::mpsc::Receiver<(Guarded<Stream>, SocketAddr)>,
    address: SocketAddr,
}

/// A connection, plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl HttpListener {
    pub fn new(
        inner: TcpListener,
        limits: ConnectionLimits,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> io::Result<Self> {
        let address = inner.local_addr()?;
        let (sender, ready) = tokio::sync::mpsc::channel(64);
        let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        tokio::spawn(accept_http(inner, limits, slots, tls, sender));
        Ok(HttpListener { ready, address })
    }
}

async fn accept_http(
    inner: TcpListener,
    limits: ConnectionLimits,
    slots: Arc<Semaphore>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ready: tokio::sync::mpsc::Sender<(Guarded<Stream>, SocketAddr)>,
) {
    loop {
        let accepted = tokio::select! {
            _ = ready.closed() => return, // the server stopped
            accepted = inner.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait, then try again.
                tracing::warn!("HTTP endpoint: accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::info!(%peer, "HTTP endpoint full: connection refused");
            tokio::spawn(refuse(stream, http_full()));
            continue;
        };
        let (ready, tls) = (ready.clone(), tls.clone());
        let handshake = async move {
            let stream = match tls {
                None => Stream::Plain(stream),
                Some(tls) => {
                    let shake = tokio::time::timeout(limits.idle_timeout, tls.accept(stream));
                    match shake.await {
                        Ok(Ok(stream)) => Stream::Tls(Box::new(stream)),
                        Ok(Err(e)) => return tracing::info!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => return tracing::info!(%peer, "TLS handshake timed out"),
                    }
                }
            };
            let _ = ready
                .send((Guarded::new(stream, limits.idle_timeout, slot), peer))
                .await;
        };
        tokio::spawn(handshake);
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What an HTTP connection past the maximum gets before it is closed.
fn http_full() -> &'static [u8] {
    static ANSWER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    ANSWER.get_or_init(|| {
        let body = "{\"error\":{\"code\":\"too_many_connections\",\
                    \"message\":\"the server holds all the connections it takes; try again\"}}\n";
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    })
}

impl axum::serve::Listener for HttpListener {
    type Io = Guarded<Stream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accepting task ended (it does not, short of a panic): serve nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.address)
    }
}

/// Writes `answer` and closes, giving a slow reader a few seconds at most.
async fn refuse(mut stream: TcpStream, answer: &'static [u8]) {
    let write = async {
        stream.write_all(answer).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), write).await;
}

/// The Postgres ErrorResponse for a connection past the maximum: FATAL 53300, as
/// PostgreSQL answers ("sorry, too many clients already").
fn postgres_full() -> &'static [u8] {
    static MESSAGE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    MESSAGE.get_or_init(|| {
        let mut fields = Vec::new();
        for (code, value) in [
            (b'S', "FATAL"),
            (b'V', "FATAL"),
            (b'C', "53300"),
            (b'M', "sorry, too many clients already"),
        ] {
            fields.push(code);
            fields.extend_from_slice(value.as_bytes());
            fields.push(0);
        }
        fields.push(0);
        let mut message = vec![b'E'];
        message.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
        message.extend_from_slice(&fields);
        message
    })
}

/// The Postgres endpoint's connections: their slots, and when each last did something.
pub struct PostgresConnections {
    limits: ConnectionLimits,
    slots: Arc<Semaphore>,
    activity: Mutex<HashMap<SocketAddr, Arc<Activity>>>,
}

#[derive(Default)]
struct Activity {
    state: Mutex<(usize, Option<Instant>)>, // statements running, when the last one ended
}

/// Marks a connection busy while it lives.
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        state.0 = state.0.saturating_sub(1);
        state.1 = Some(Instant::now());
    }
}

impl PostgresConnections {
    pub fn new(limits: ConnectionLimits) -> Self {
        PostgresConnections {
            limits,
            slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            activity: Mutex::new(HashMap::new()),
        }
    }

    /// The connection from `peer` is running a statement until the guard drops.
    pub fn busy(&self, peer: SocketAddr) -> Option<Busy> {
        let activity = self.activity.lock().unwrap_or_else(|p| p.into_inner());
        let found = activity.get(&peer)?.clone();
        found.state.lock().unwrap_or_else(|p| p.into_inner()).0 += 1;
        Some(Busy(found))
    }

    /// Serves one connection just accepted with `serve` under the limits: refused if the
    /// endpoint is full, closed when idle. The slot is taken here, in the order connections
    /// are accepted; the returned future does the rest.
    pub fn serve<F, S>(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        serve: F,
    ) -> impl Future<Output = ()> + Send
    where
        F: FnOnce(TcpStream) -> S + Send + 'static,
        S: Future<Output = io::Result<()>> + Send,
    {
        let slot = self.slots.clone().try_acquire_owned();
        async move {
            match slot {
                Ok(slot) => self.serve_in_slot(stream, peer, serve, slot).await,
                Err(_) => {
                    tracing::info!(%peer, "Postgres endpoint full: connection refused");
                    refuse(stream, postgres_full()).await
                }
            }
        }
    }

    async fn serve_in_slot<F, S>(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        serve: F,
        _slot: OwnedSemaphorePermit,
    ) where
        F: FnOnce(TcpStream) -> S,
        S: Future<Output = io::Result<()>>,
    {
        let activity = Arc::new(Activity::default());
        activity.state.lock().unwrap_or_else(|p| p.into_inner()).1 = Some(Instant::now());
        (self.activity.lock().unwrap_or_else(|p| p.into_inner())).insert(peer, activity.clone());
        tokio::select! {
            ended = serve(stream) => {
                if let Err(e) = ended {
                    tracing::info!(%peer, "Postgres connection ended: {e}");
                }
            }
            _ = idle(&activity, self.limits.idle_timeout) => {
                tracing::info!(%peer, "Postgres connection idle: closed");
            }
        }
        (self.activity.lock().unwrap_or_else(|p| p.into_inner())).remove(&peer);
    }
}

/// Returns once the connection has run nothing for `timeout`.
async fn idle(activity: &Activity, timeout: Duration) {
    loop {
        let (running, last) = *activity.state.lock().unwrap_or_else(|p| p.into_inner());
        let since = last.unwrap_or_else(Instant::now);
        if running == 0 && since.elapsed() >= timeout {
            return;
        }
        let next = match running {
            0 => since + timeout,
            _ => Instant::now() + timeout,
        };
        tokio::time::sleep_until(next).await;
    }
}
