//! Start-up: turns a [`Config`] into a running HTTP service. Opens the store (creating the SQLite folder),
//! builds the model provider and the dictation transcriber, assembles the OpenSkies app and the router,
//! binds the listener, prints the banner and serves until SIGINT/SIGTERM with a bounded graceful
//! shutdown (see [`serve`]). `main` and the end-to-end tests both go through [`build`] and [`serve`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use chatkit::{ChatKitServer, Store};
use chatkit_store::{StoreOptions, open_store};
use tokio::net::TcpListener;

use crate::airline::AirlineStore;
use crate::app::{AppSettings, SupportApp};
use crate::auth::Authenticator;
use crate::config::{Config, redact_url};
use crate::connections::{self, ConnectionTimeouts};
use crate::limits::UserLimiter;
use crate::public_url::PublicUrl;
use crate::readiness::Readiness;
use crate::router::{self, AppState, Limits, RouterOptions};
use crate::signed_urls::UrlSigner;

/// The one warning printed when no model key is configured.
pub const NO_KEY_WARNING: &str = "no model key configured: set OPENAI_API_KEY or GEMINI_API_KEY in .env (copy \
                                  .env.example) — chat turns will answer with an error until then";

/// The one warning printed when `AUTH_MODE=none` listens beyond loopback.
pub const OPEN_ACCESS_WARNING: &str = "AUTH_MODE=none on a non-loopback address: anyone who can reach this server \
     reads and writes every conversation as the same anonymous user; set AUTH_MODE=jwt or header (see README)";

/// Why the server could not start. Each renders as one clear line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is unusable (exit code 2).
    #[error("{0}")]
    Config(String),
    /// The database could not be opened or migrated (exit code 1).
    #[error("cannot open the database {url}: {message}")]
    Database {
        /// Redacted URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The listen address could not be bound (exit code 1).
    #[error("{0}")]
    Bind(String),
}

impl StartError {
    /// The process exit code for this error: 2 for bad settings, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Config(_) => 2,
            _ => 1,
        }
    }
}

/// Which model answers chat turns, for the banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSummary {
    /// `openai` / `gemini`.
    pub provider: String,
    /// Model name.
    pub model: String,
}

/// Everything assembled from the configuration, ready to serve.
pub struct Built {
    /// The application router.
    pub router: Router,
    /// The shared handler state (ChatKit server, store, airline state).
    pub state: AppState,
    /// `describe()` of the store (no secrets).
    pub database: String,
    /// The model answering turns, if a key is configured.
    pub model: Option<ModelSummary>,
    /// Whether dictation works.
    pub dictation: bool,
    /// How long clients may keep a connection busy without progress.
    pub timeouts: ConnectionTimeouts,
    /// The authentication mode's name (`none`, `jwt`, `header`).
    pub auth_mode: &'static str,
    /// How long answers in flight may take to finish after a shutdown signal (`SHUTDOWN_GRACE_SECS`).
    pub grace: Duration,
    /// `GET /metrics` (`None` with `METRICS=off`); on the router unless `METRICS_ADDR` is set.
    pub metrics: Option<crate::metrics::MetricsEndpoint>,
    /// How long paging tombstones are kept (`TOMBSTONE_RETENTION_SECS`; zero: forever).
    pub tombstone_retention: Duration,
}

/// Opens the store, builds the providers and the app, and assembles the router (does not bind).
pub async fn build(config: &Config) -> Result<Built, StartError> {
    // The recorder before anything that records: the store and the providers keep the handles of their
    // series from their first use on, and a handle made without a recorder stays a no-op.
    crate::metrics::install_recorder(&config.metrics);
    // Model settings first: a bad choice should stop us before the database is touched.
    let model_config = config.model_config();
    let provider = agents::build_provider(&model_config).map_err(|e| StartError::Config(e.to_string()))?;
    let public_base_url = config.public_url.public_base_url().map_err(StartError::Config)?;
    let proxies = config.public_url.trusted_proxies().map_err(StartError::Config)?;
    // Before the database too: an unreadable key file or a JWKS URL that does not answer is a setting to fix.
    let auth =
        Authenticator::from_settings(&config.auth, proxies.clone()).await.map_err(|e| StartError::Config(e.0))?;
    let store = open_database(config).await?;

    let model =
        provider.as_ref().map(|p| ModelSummary { provider: p.name().to_string(), model: p.model().to_string() });
    let transcriber = agents::build_transcriber(&model_config);
    let dictation = transcriber.is_some();

    let airline = AirlineStore::new(store.clone());
    let settings = AppSettings {
        temperature: config.temperature,
        thread_titles: config.thread_titles.0,
        tool_progress_delay: Duration::from_millis(config.tool_progress_delay_ms),
        ..AppSettings::default()
    };
    let urls = Arc::new(
        UrlSigner::from_settings(&config.signed_urls, store.as_ref())
            .await
            .map_err(|e| StartError::Database { url: redact_url(&config.database_url), message: e.to_string() })?,
    );
    let app =
        SupportApp::new(store.clone(), airline.clone(), provider, transcriber, settings).with_url_signer(urls.clone());
    let chatkit = ChatKitServer::new(store.clone(), Arc::new(app))
        .with_stall_timeout(Duration::from_secs(config.stream_stall_timeout_secs));
    let limits = config.user_limits.resolve(config.auth.auth_mode);
    // Replicas share a PostgreSQL database, so they must share the counts too; a single process counts
    // in memory.
    let user_limits = if config.database_url.trim().starts_with("postgres") {
        UserLimiter::shared(limits, store.clone())
    } else {
        UserLimiter::in_process(limits)
    };
    let state = AppState {
        chatkit,
        store: store.clone(),
        airline,
        limits: Limits { max_body_bytes: config.max_body_bytes, max_upload_bytes: config.max_upload_bytes },
        auth: Arc::new(auth),
        urls,
        user_limits,
        readiness: Readiness::default(),
    };
    let metrics = crate::metrics::endpoint(&config.metrics, store.clone());
    let options = RouterOptions {
        cors: config.cors_origins().map_err(|e| StartError::Config(e.to_string()))?,
        public_url: PublicUrl::new(public_base_url, proxies, format!("http://{}", config.listen_addr())),
        metrics: metrics.clone().filter(|_| config.metrics.metrics_addr.is_none()),
    };
    let router = router::app(state.clone(), &options);
    let auth_mode = state.auth.mode_name();
    Ok(Built {
        router,
        state,
        database: store.describe(),
        model,
        dictation,
        timeouts: config.connection_timeouts(),
        auth_mode,
        grace: Duration::from_secs(config.shutdown_grace_secs),
        metrics,
        tombstone_retention: Duration::from_secs(config.tombstone_retention_secs),
    })
}

/// Opens `DATABASE_URL` with the pool and tracing settings, creating the folder of a SQLite file first.
async fn open_database(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    if let Some(dir) = config.sqlite_parent_dir() {
        std::fs::create_dir_all(&dir).map_err(|e| StartError::Database {
            url: redact_url(&config.database_url),
            message: format!("cannot create the folder {}: {e}", dir.display()),
        })?;
    }
    let mut options = StoreOptions::default();
    if let Some(size) = config.database_pool_size {
        options.max_connections = size;
    }
    // Store spans only while traces are exported: without an exporter they would cost without showing.
    options.trace_operations = config.otel_exporter_otlp_endpoint.is_some();
    open_store(&config.database_url, options)
        .await
        .map_err(|e| StartError::Database { url: redact_url(&config.database_url), message: e.to_string() })
}

/// Binds the configured address; "address in use" and friends become one clear line.
pub async fn bind(config: &Config) -> Result<TcpListener, StartError> {
    let addr = config.listen_addr();
    TcpListener::bind(&addr).await.map_err(|e| {
        StartError::Bind(match e.kind() {
            std::io::ErrorKind::AddrInUse => format!(
                "port {} on {} is already in use (another server running?): stop it or set PORT to a free port, \
                 e.g. PORT={}",
                config.port,
                config.host,
                config.port.wrapping_add(1)
            ),
            std::io::ErrorKind::PermissionDenied => {
                format!("not allowed to listen on {addr}: use a port above 1023 (PORT) or another HOST")
            }
            std::io::ErrorKind::AddrNotAvailable => {
                format!("cannot listen on {addr}: HOST `{}` is not an address of this machine", config.host)
            }
            _ => format!("cannot listen on {addr}: {e}"),
        })
    })
}

/// The URL humans should open for a bound address (`0.0.0.0` shown as `127.0.0.1`).
pub fn public_url(addr: SocketAddr) -> String {
    let ip = addr.ip();
    let host = if ip.is_unspecified() {
        "127.0.0.1".to_string()
    } else if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    format!("http://{host}:{}", addr.port())
}

/// The start-up banner (printed to stdout).
pub fn banner(built: &Built, addr: SocketAddr, started: Instant) -> String {
    let url = public_url(addr);
    let model = match &built.model {
        Some(m) => format!("{} ({})", m.model, m.provider),
        None => "none configured (set OPENAI_API_KEY or GEMINI_API_KEY in .env)".to_string(),
    };
    format!(
        "OpenSkies support server ready in {} ms\n  URL:       {url}\n  Docs:      {url}/docs\n  ChatKit:   {url}/support/chatkit\n  Database:  {}\n  Model:     {model}\n  Dictation: {}\n",
        started.elapsed().as_millis(),
        built.database,
        if built.dictation { "on" } else { "off" },
    )
}

/// How long, once the grace time is over, the stopped turns get to save their partial answers and end
/// their streams, and then the connections to write those last bytes.
const STOP_WAIT: Duration = Duration::from_millis(750);

/// How long closing the database may take at exit.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// Serves until `shutdown` resolves, then shuts down gracefully:
///
/// 1. `/support/ready` answers 503 (`draining`) and the listener closes: no new connections;
/// 2. requests and chat turns in flight may finish for up to `built.grace`; idle connections close;
/// 3. turns still running then are stopped as a client leaving stops them (partial answer saved,
///    thread lock released) and their clients told the server is restarting; connections still open
///    are closed;
/// 4. the database is closed (SQLite: WAL checkpointed; PostgreSQL: pool closed).
///
/// While it serves, old paging tombstones are pruned in the background (`crate::tombstones`).
pub async fn serve(listener: TcpListener, built: Built, shutdown: impl Future<Output = ()> + Send + 'static) {
    let state = built.state;
    let grace = built.grace;
    let pruning = crate::tombstones::spawn_pruning(state.store.clone(), built.tombstone_retention);
    // Before the first request: a thread deleted through another replica must reach the turns here.
    state.chatkit.watch_store();
    let (accepting, connections) = connections::accept_loop(listener, built.router, built.timeouts);
    state.readiness.serving();
    tokio::select! {
        () = accepting => {}
        () = shutdown => {}
    }
    state.readiness.draining();
    connections.begin_drain();
    let chatkit = &state.chatkit;
    tracing::info!(
        running_turns = chatkit.running_turns(),
        grace_secs = grace.as_secs(),
        "shutting down: no new connections; answers in flight may finish within the grace time"
    );
    let in_flight = async {
        tokio::join!(connections.closed(), chatkit.wait_for_turns());
    };
    if tokio::time::timeout(grace, in_flight).await.is_err() {
        tracing::warn!(
            running_turns = chatkit.running_turns(),
            grace_secs = grace.as_secs(),
            "grace time over: stopping the answers still running (partial answers are kept)"
        );
        chatkit.stop_turns();
        let stopped = async {
            if tokio::time::timeout(STOP_WAIT, chatkit.wait_for_turns()).await.is_ok() {
                // The streams of the stopped turns have ended; let their last bytes go out.
                let _ = tokio::time::timeout(STOP_WAIT, connections.closed()).await;
            }
        };
        stopped.await;
        connections.abort().await;
        if tokio::time::timeout(STOP_WAIT, chatkit.wait_for_turns()).await.is_err() {
            tracing::warn!(running_turns = chatkit.running_turns(), "some chat turns were still running at exit");
        }
    }
    if let Some(pruning) = pruning {
        pruning.abort();
    }
    if tokio::time::timeout(CLOSE_WAIT, state.store.close()).await.is_err() {
        tracing::warn!("the database did not close in time");
    }
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM. From then on a second one ends the process at once
/// (exit status 1), for an operator who does not want to wait for the grace time.
pub async fn shutdown_signal() {
    let mut signals = Signals::new();
    signals.next().await;
    tokio::spawn(async move {
        signals.next().await;
        tracing::warn!("second shutdown signal: exiting at once");
        std::process::exit(1);
    });
}

/// SIGINT and SIGTERM, registered once so that no signal is missed between the first and the second.
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let register = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, signal = name, "cannot listen for a shutdown signal");
                    None
                }
            };
            Signals {
                interrupt: register(SignalKind::interrupt(), "SIGINT"),
                terminate: register(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal.
    #[cfg(unix)]
    async fn next(&mut self) {
        async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
            match signal {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            () = recv(&mut self.interrupt) => {}
            () = recv(&mut self.terminate) => {}
        }
    }

    /// The next signal.
    #[cfg(not(unix))]
    async fn next(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
