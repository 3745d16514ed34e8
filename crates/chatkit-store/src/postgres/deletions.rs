//! Deleted threads announced to every replica: `threads.delete` on one replica must stop a turn that
//! another replica runs on the thread at once, not at that turn's next write (which may be a whole
//! model answer later, with the model call running all along).
//!
//! The deleting statement sends a `NOTIFY` in its own transaction (PostgreSQL delivers it on commit,
//! and only if the thread was deleted). Each store listens on a dedicated one-connection pool, started
//! the first time someone asks for the deletions (a turn starting), and passes the ids of its own
//! schema to its subscribers. Notifications sent while the listening connection is down are missed; the
//! listener reconnects by itself, and a turn that missed one still stops at its next write, which finds
//! the thread gone.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::broadcast;

/// The channel of the notifications; the payload is `<namespace>/<thread id>`, since replicas of other
/// schemas of the same database hear the same channel.
pub(super) const CHANNEL: &str = "chatkit_thread_deleted";
/// Deletions buffered per subscriber before the oldest are dropped (a subscriber only reads ids).
const BUFFER: usize = 256;
const RETRY_START: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// The payload announcing the deletion of `thread_id` in the schema `namespace`.
pub(super) fn payload(namespace: &str, thread_id: &str) -> String {
    format!("{namespace}/{thread_id}")
}

/// The listening side: started lazily, stopped when the store is closed or dropped.
pub(super) struct Deletions {
    connect: PgConnectOptions,
    namespace: String,
    started: OnceLock<Listening>,
}

struct Listening {
    sender: Arc<broadcast::Sender<String>>,
    pool: PgPool,
}

impl std::fmt::Debug for Deletions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deletions").field("listening", &self.started.get().is_some()).finish_non_exhaustive()
    }
}

impl Deletions {
    pub(super) fn new(connect: PgConnectOptions, namespace: String) -> Self {
        Deletions { connect, namespace, started: OnceLock::new() }
    }

    /// A receiver of the ids of deleted threads; starts listening on the first call. `None` outside a
    /// Tokio runtime (nothing could listen).
    pub(super) fn subscribe(&self) -> Option<broadcast::Receiver<String>> {
        if let Some(listening) = self.started.get() {
            return Some(listening.sender.subscribe());
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let listening = self.started.get_or_init(|| {
            let (sender, _) = broadcast::channel(BUFFER);
            let sender = Arc::new(sender);
            let pool = PgPoolOptions::new().max_connections(1).connect_lazy_with(self.connect.clone());
            runtime.spawn(listen(pool.clone(), self.namespace.clone(), Arc::downgrade(&sender)));
            Listening { sender, pool }
        });
        Some(listening.sender.subscribe())
    }

    /// Stops listening (the listener ends when its pool closes).
    pub(super) async fn close(&self) {
        if let Some(listening) = self.started.get() {
            listening.pool.close().await;
        }
    }
}

impl Drop for Deletions {
    fn drop(&mut self) {
        if let Some(listening) = self.started.get()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let pool = listening.pool.clone();
            runtime.spawn(async move { pool.close().await });
        }
    }
}

/// Listens until the pool is closed or nobody can subscribe any more, reconnecting with a growing pause.
async fn listen(pool: PgPool, namespace: String, sender: Weak<broadcast::Sender<String>>) {
    let prefix = format!("{namespace}/");
    let mut pause = RETRY_START;
    loop {
        if pool.is_closed() || sender.strong_count() == 0 {
            return;
        }
        let listener = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = match listener.await {
            Ok(listener) => listener,
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for deleted threads; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_MAX);
                continue;
            }
        };
        pause = RETRY_START;
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    let Some(thread_id) = notification.payload().strip_prefix(&prefix) else { continue };
                    let Some(sender) = sender.upgrade() else { return };
                    // No subscriber right now is no error: no turn runs here.
                    let _ = sender.send(thread_id.to_string());
                }
                // The connection dropped and was made again: deletions in between were missed.
                Ok(None) => tracing::warn!("the connection listening for deleted threads was lost; reconnected"),
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "listening for deleted threads failed; reconnecting");
                    break;
                }
            }
        }
        drop(listener);
        tokio::time::sleep(RETRY_START).await;
    }
}
