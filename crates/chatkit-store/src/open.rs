//! [`open_store`]: picks and opens a [`Store`] implementation from a database URL, with the
//! [`StoreOptions`] shared by every backend. Errors are single clear lines meant for the start-up
//! output, and never contain a password.

use std::sync::Arc;
use std::time::Duration;

use chatkit::store::{MemoryStore, Store, StoreError};

use crate::instrumented::InstrumentedStore;

#[cfg(feature = "postgres")]
use crate::PostgresStore;
#[cfg(feature = "sqlite")]
use crate::{SqliteLocation, SqliteStore};

/// Tuning shared by the store backends (each uses the fields that apply to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// PostgreSQL: pool size. SQLite: number of reader connections (1–16; writes use one more).
    pub max_connections: u32,
    /// PostgreSQL: schema used for every table (created if missing); `None` = the server default
    /// (`public`). Lets tests and several apps share one database.
    pub schema: Option<String>,
    /// How long to wait to connect at start and for a free pooled connection afterwards.
    pub connect_timeout: Duration,
    /// SQLite: how long a statement waits for a lock held by another connection/process.
    pub busy_timeout: Duration,
    /// Runs every store operation in a `store <operation>` tracing span of its own (see
    /// [`InstrumentedStore`]); off by default, for applications that export no traces.
    pub trace_operations: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 10,
            schema: None,
            connect_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            trace_operations: false,
        }
    }
}

/// Opens the store named by `url`, runs its migrations, and checks it answers:
///
/// * `sqlite://path/to/file.db` (relative), `sqlite:///absolute/path.db`, `sqlite::memory:`;
/// * `postgres://…` / `postgresql://…` (pool, migrations under an advisory lock);
/// * `memory://` (the in-memory [`MemoryStore`], nothing persisted).
///
/// A backend whose cargo feature is off answers with an error that names the feature. Every store is
/// returned inside an [`InstrumentedStore`], which measures (and with
/// [`StoreOptions::trace_operations`] traces) its operations.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(unused_variables))]
pub async fn open_store(url: &str, options: StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    let url = url.trim();
    let trace = options.trace_operations;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return Ok(instrumented(Arc::new(PostgresStore::connect(url, &options).await?), "postgres", trace));
        #[cfg(not(feature = "postgres"))]
        return Err(not_built("PostgreSQL", "postgres"));
    }
    #[cfg(feature = "sqlite")]
    if let Some(location) = SqliteLocation::from_url(url) {
        return Ok(instrumented(Arc::new(SqliteStore::open(&location, &options).await?), "sqlite", trace));
    }
    #[cfg(not(feature = "sqlite"))]
    if url.starts_with("sqlite:") {
        return Err(not_built("SQLite", "sqlite"));
    }
    if url.starts_with("memory:") {
        return Ok(instrumented(Arc::new(MemoryStore::new()), "memory", trace));
    }
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or(url);
    Err(StoreError::Database(format!(
        "unsupported database URL scheme `{scheme}`: use sqlite://path/to/file.db, \
         postgres://user@host:port/db or memory://"
    )))
}

fn instrumented(store: Arc<dyn Store>, backend: &'static str, trace: bool) -> Arc<dyn Store> {
    Arc::new(InstrumentedStore::new(store, backend, trace))
}

/// The error for a URL of a backend this build left out.
#[cfg(not(all(feature = "sqlite", feature = "postgres")))]
fn not_built(backend: &str, feature: &str) -> StoreError {
    StoreError::Database(format!("this build has no {backend} store (cargo feature `{feature}` of chatkit-store)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rejects_unknown_schemes_with_the_list() {
        let err = open_store("mysql://root:secret@db/x", StoreOptions::default()).await.err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("unsupported database URL scheme `mysql`"), "{msg}");
        assert!(!msg.contains("secret"), "{msg}");
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn opens_memory_and_sqlite_memory() {
        let m = open_store("memory://", StoreOptions::default()).await.map(|s| s.describe());
        assert_eq!(m.ok().as_deref(), Some("memory://"));
        let s = open_store("sqlite::memory:", StoreOptions::default()).await.map(|s| s.describe());
        assert_eq!(s.ok().as_deref(), Some("sqlite::memory:"));
    }
}
