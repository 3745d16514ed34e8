//! Serving HTTP connections: the accept loop, the timeouts that keep a silent or slow client from holding
//! a connection forever, and the graceful close at shutdown.
//!
//! `axum::serve` has no timeouts at all, so connections are served here with hyper's connection builder
//! (HTTP/1.1, and HTTP/2 with prior knowledge, as before). Three bounds apply:
//!
//! - **idle**: a connection with no request in progress (freshly accepted, or kept alive after a
//!   response) is closed once it has been silent for [`ConnectionTimeouts::idle`];
//! - **header read**: from the first byte of a request, its head must be complete within
//!   [`ConnectionTimeouts::header_read`], else the connection is closed;
//! - **body read**: a request body that sends nothing for [`ConnectionTimeouts::body_read`] fails its
//!   read (the handler answers 408);
//! - **write stall**: a client that takes nothing of a response for [`ConnectionTimeouts::write_stall`]
//!   (the socket's send buffer stays full) is disconnected, which also cancels a chat turn streaming to
//!   it and frees what the response held.
//!
//! hyper's own header-read timeout cannot tell the first two apart (its clock also runs while a
//! kept-alive connection waits for its next request), hence the small watchdog per connection below:
//! the socket reports when bytes arrive, the service when a request starts and when its response has
//! been written, and the watchdog closes the connection when the deadline of the current phase passes.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::Request;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;
use tower_http::timeout::TimeoutBody;

/// How long a client may keep a connection busy without making progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionTimeouts {
    /// From the first byte of a request until its head (request line and headers) is complete.
    pub header_read: Duration,
    /// Longest silence while a request body is being received.
    pub body_read: Duration,
    /// Longest silence of a connection with no request in progress.
    pub idle: Duration,
    /// Longest time a response may wait for the client to take any of it.
    pub write_stall: Duration,
}

/// Tells every connection to finish and stop, and whether they did.
pub(crate) struct Connections {
    /// Cancelled when connections should finish their current request and close.
    drain: CancellationToken,
    /// Cancelled when connections should close at once, whatever they are doing.
    abort: CancellationToken,
    tasks: TaskTracker,
}

impl Connections {
    /// Stops the accept loop (new connections are refused) and asks every connection to close after
    /// its current response; idle kept-alive connections close at once.
    pub(crate) fn begin_drain(&self) {
        self.drain.cancel();
        self.tasks.close();
    }

    /// Resolves once every connection has closed (after [`Connections::begin_drain`]).
    pub(crate) async fn closed(&self) {
        self.tasks.wait().await;
    }

    /// Closes the connections still open at once, whatever they are doing, and waits until they are gone.
    /// A chat stream cut this way counts as its client leaving.
    pub(crate) async fn abort(&self) {
        self.begin_drain();
        self.abort.cancel();
        self.tasks.wait().await;
    }
}

/// Accepts connections on `listener` and serves `router` on each until [`Connections::begin_drain`] is
/// called.
/// Returns the accept loop (a future to run until shutdown) and the handle that drains the connections.
pub(crate) fn accept_loop(
    listener: TcpListener,
    router: Router,
    timeouts: ConnectionTimeouts,
) -> (impl Future<Output = ()> + Send + 'static, Connections) {
    let connections =
        Connections { drain: CancellationToken::new(), abort: CancellationToken::new(), tasks: TaskTracker::new() };
    let drain = connections.drain.clone();
    let abort = connections.abort.clone();
    let tasks = connections.tasks.clone();
    let builder = Arc::new(Builder::new(TokioExecutor::new()));
    let accepting = async move {
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        accept_failed(e).await;
                        continue;
                    }
                },
                () = drain.cancelled() => return,
            };
            // SSE frames are small writes that Nagle would hold back until the client's delayed ACK
            // (~40 ms per turn on a reused connection).
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY on an accepted connection");
            }
            let connection = Connection {
                builder: builder.clone(),
                router: router.clone(),
                timeouts,
                drain: drain.clone(),
                abort: abort.clone(),
            };
            tasks.spawn(connection.serve(tcp, peer));
        }
    };
    (accepting, connections)
}

/// Handles a failed `accept`: errors about one connection are skipped; others (too many open files)
/// are logged and retried after a pause instead of spinning.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept connections; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One accepted connection and what it needs to be served.
struct Connection {
    builder: Arc<Builder<TokioExecutor>>,
    router: Router,
    timeouts: ConnectionTimeouts,
    drain: CancellationToken,
    abort: CancellationToken,
}

impl Connection {
    async fn serve(self, tcp: TcpStream, peer: SocketAddr) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(WatchedIo { inner: tcp, activity: activity.clone() });
        let router = self.router;
        let body_read = self.timeouts.body_read;
        let service_activity = activity.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let in_progress = service_activity.request_started();
            // What `into_make_service_with_connect_info` would provide: handlers may ask for the peer.
            req.extensions_mut().insert(ConnectInfo(peer));
            let req = req.map(|body| TimeoutBody::new(body_read, body));
            let router = router.clone();
            async move {
                let Ok(response) = router.oneshot(req).await;
                Ok::<_, Infallible>(
                    response.map(|body| Body::new(ResponseBody { inner: body, _in_progress: in_progress })),
                )
            }
        });
        let connection = self.builder.serve_connection_with_upgrades(io, service);
        tokio::pin!(connection);
        let mut draining = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = self.drain.cancelled(), if !draining => {
                    draining = true;
                    connection.as_mut().graceful_shutdown();
                }
                () = self.abort.cancelled() => return,
                reason = activity.expired(&self.timeouts) => {
                    tracing::debug!(peer = %peer, reason, "closing connection");
                    return;
                }
            }
        }
    }
}

/// What a connection is doing, as far as its timeouts are concerned.
#[derive(Debug)]
struct Phase {
    /// Requests whose response has not been written completely yet (several at once on HTTP/2).
    requests: usize,
    /// When the connection last became free of requests (or was accepted).
    idle_since: Instant,
    /// When the first byte of the next request arrived, while no request is in progress.
    head_since: Option<Instant>,
    /// Since when the socket refuses writes (the client does not read), if it does.
    write_blocked_since: Option<Instant>,
}

/// The phase of one connection, shared by its socket, its service and its watchdog.
struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
    /// Mirrors `write_blocked_since.is_some()` so that ordinary writes do not take the lock.
    write_blocked: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Activity {
            phase: Mutex::new(Phase {
                requests: 0,
                idle_since: Instant::now(),
                head_since: None,
                write_blocked_since: None,
            }),
            changed: Notify::new(),
            write_blocked: AtomicBool::new(false),
        }
    }

    fn update(&self, change: impl FnOnce(&mut Phase) -> bool) {
        // A poisoned lock only means a panic elsewhere mid-update; the counters stay usable.
        let changed = change(&mut self.phase.lock().unwrap_or_else(PoisonError::into_inner));
        if changed {
            self.changed.notify_one();
        }
    }

    /// Bytes arrived: when no request is in progress they start the next request's head.
    fn bytes_received(&self) {
        self.update(|phase| {
            if phase.requests == 0 && phase.head_since.is_none() {
                phase.head_since = Some(Instant::now());
                return true;
            }
            false
        });
    }

    /// A write found the socket's send buffer full.
    fn write_blocked(&self) {
        if self.write_blocked.swap(true, Ordering::Relaxed) {
            return;
        }
        self.update(|phase| {
            phase.write_blocked_since.get_or_insert_with(Instant::now);
            true
        });
    }

    /// A write went through: the client is reading.
    fn write_progressed(&self) {
        if !self.write_blocked.swap(false, Ordering::Relaxed) {
            return;
        }
        self.update(|phase| phase.write_blocked_since.take().is_some());
    }

    /// A request head was parsed; the connection is busy until the returned guard is dropped.
    fn request_started(self: &Arc<Self>) -> RequestInProgress {
        self.update(|phase| {
            phase.requests += 1;
            phase.head_since = None;
            true
        });
        RequestInProgress(self.clone())
    }

    /// The deadline of the current phase and what passing it means (`None` while a request is served
    /// and the client takes what is written).
    fn deadline(&self, timeouts: &ConnectionTimeouts) -> Option<(Instant, &'static str)> {
        let phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(since) = phase.write_blocked_since {
            return Some((since + timeouts.write_stall, "the client stopped reading the response"));
        }
        if phase.requests > 0 {
            return None;
        }
        Some(match phase.head_since {
            Some(since) => (since + timeouts.header_read, "request head not received in time"),
            None => (phase.idle_since + timeouts.idle, "idle"),
        })
    }

    /// Resolves when the deadline of the current phase has passed, with the reason.
    async fn expired(&self, timeouts: &ConnectionTimeouts) -> &'static str {
        loop {
            let changed = self.changed.notified();
            match self.deadline(timeouts) {
                Some((deadline, reason)) if deadline <= Instant::now() => return reason,
                Some((deadline, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// Marks a request in progress; dropped when its response body was written (or abandoned).
struct RequestInProgress(Arc<Activity>);

impl Drop for RequestInProgress {
    fn drop(&mut self) {
        self.0.update(|phase| {
            phase.requests = phase.requests.saturating_sub(1);
            if phase.requests == 0 {
                phase.idle_since = Instant::now();
            }
            true
        });
    }
}

/// A response body that keeps its request counted as in progress until hyper has written and dropped it.
struct ResponseBody {
    inner: Body,
    _in_progress: RequestInProgress,
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The accepted socket, reporting to [`Activity`] when bytes arrive.
struct WatchedIo {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for WatchedIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_received();
        }
        result
    }
}

impl WatchedIo {
    /// Tells [`Activity`] whether a write went through or found the send buffer full.
    fn watch_write(&self, result: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match &result {
            Poll::Pending => self.activity.write_blocked(),
            Poll::Ready(Ok(written)) if *written > 0 => self.activity.write_progressed(),
            Poll::Ready(_) => {}
        }
        result
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch_write(result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch_write(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
