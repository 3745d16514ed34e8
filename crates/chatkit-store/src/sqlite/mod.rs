//! [`SqliteStore`]: the default persistent [`Store`] (one process owns the database file).
//!
//! WAL journal with `synchronous=NORMAL` (a committed write survives a process crash), foreign
//! keys on, a busy timeout, and embedded migrations run at open. All writes go through one writer
//! thread that commits whatever is queued in a single transaction (group commit) and acknowledges
//! each write only after that commit; reads run on that thread too, except attachment bytes, which
//! use reader connections in the blocking pool (both in [`conn`]). Every call is one cached prepared
//! statement ([`statements`]). Rows are positioned by `(created_at, seq)` where `seq` is the rowid
//! (insertion order); upserts keep it. `lock_thread` is an in-process per-thread mutex.
//!
//! This module opens the database; the [`Store`] operations are in [`store`].
//!
//! [`Store`]: chatkit::store::Store

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use chatkit::store::locks::LocalLocks;
use chatkit::store::{RequestContext, StoreError, StoreResult};
use chatkit::types::ThreadItem;
use rusqlite::{Connection, params};

use self::conn::{ConnSettings, Readers, Writer};
use self::statements::*;
use crate::open::StoreOptions;
use crate::write_health::{PROBE_KEY, PROBE_NAMESPACE};

mod checkpoint;
mod conn;
mod migrate;
mod statements;
mod store;

/// Where a SQLite database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A database file (its parent folder is created if missing).
    File(PathBuf),
    /// A private in-memory database (tests); lost when the store is dropped.
    Memory,
}

impl SqliteLocation {
    /// Parses `sqlite://relative/path.db`, `sqlite:///abs/path.db`, `sqlite:path.db`, `sqlite::memory:`
    /// (a query string such as `?mode=rwc` is ignored). `None` if the scheme is not `sqlite:`.
    pub fn from_url(url: &str) -> Option<Self> {
        let rest = url.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or_default();
        if path == ":memory:" || path.is_empty() && rest.starts_with(":memory:") {
            return Some(SqliteLocation::Memory);
        }
        Some(SqliteLocation::File(PathBuf::from(path)))
    }
}

/// A [`Store`](chatkit::store::Store) on a SQLite database file.
pub struct SqliteStore {
    writer: Writer,
    /// Reader connections for large reads (`None` for an in-memory database: one connection only).
    readers: Option<Arc<Readers>>,
    locks: LocalLocks,
    label: String,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("database", &self.label).finish_non_exhaustive()
    }
}

/// `(id, JSON)` rows of a list query.
type Rows = Vec<(String, String)>;

impl SqliteStore {
    /// Opens (creating if needed) the database at `location` and runs pending migrations.
    pub async fn open(location: &SqliteLocation, options: &StoreOptions) -> StoreResult<Self> {
        let settings = ConnSettings { busy_timeout: options.busy_timeout };
        match location {
            SqliteLocation::Memory => {
                let writer = Writer::start(None, settings)
                    .await
                    .map_err(|e| prefix("cannot open in-memory SQLite database", e))?;
                Ok(SqliteStore { writer, readers: None, locks: LocalLocks::new(), label: "sqlite::memory:".into() })
            }
            SqliteLocation::File(path) => Self::open_file(path, options, settings).await,
        }
    }

    async fn open_file(path: &Path, options: &StoreOptions, settings: ConnSettings) -> StoreResult<Self> {
        let shown = path.display().to_string();
        if path.as_os_str().is_empty() {
            return Err(StoreError::Database("SQLite database path is empty".into()));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Database(format!("cannot create folder {} for the SQLite database: {e}", parent.display()))
            })?;
        }
        let writer = Writer::start(Some(path.to_path_buf()), settings)
            .await
            .map_err(|e| prefix(&format!("cannot open SQLite database {shown}"), e))?;
        let readers = Readers::new(path.to_path_buf(), settings, options.max_connections.clamp(1, 16) as usize);
        let label = format!("sqlite://{shown}");
        let store = SqliteStore { writer, readers: Some(Arc::new(readers)), locks: LocalLocks::new(), label };
        // A database that opens but cannot be written (full disk) is refused at start, like one that
        // cannot be opened: the operator learns it at once instead of from failing chats.
        store.probe_write().await.map_err(|e| prefix(&format!("cannot open SQLite database {shown}"), e))?;
        tracing::debug!(database = %store.label, "SQLite store opened");
        Ok(store)
    }

    /// Rewrites the health row: the cheapest write that still goes through the journal and the file.
    async fn probe_write(&self) -> StoreResult<()> {
        let now = chatkit::types::Timestamp::now().micros().to_string();
        self.writer
            .run("health probe", move |c| {
                c.prepare_cached(KV_PROBE)?.execute(params![PROBE_NAMESPACE, PROBE_KEY, now]).map(|_| ())
            })
            .await
    }

    /// Commits the queued writes, moves the write-ahead log into the database file (so the file alone
    /// is the whole database, e.g. for a backup copy) and closes the connections. The store is unusable
    /// afterwards.
    pub async fn close(&self) {
        if let Some(readers) = &self.readers {
            readers.close();
        }
        // The writer thread checkpoints once the queued writes are committed.
        self.writer.close().await;
    }

    /// Runs a read on the writer thread: its connection's page cache is always current (a second
    /// connection would have to drop its cache after every commit and re-read the pages), and the
    /// hand-over costs less than those reads. Results are delivered after the batch commits.
    async fn read<T, F>(&self, op: &'static str, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.writer.read(op, work).await
    }

    /// A read whose result may be megabytes (attachment bytes): on a reader connection in the
    /// blocking pool, so it never holds up the writer thread.
    async fn read_large<T, F>(&self, op: &'static str, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        match &self.readers {
            Some(readers) => {
                let readers = readers.clone();
                tokio::task::spawn_blocking(move || readers.with(op, work))
                    .await
                    .map_err(|e| StoreError::Database(format!("{op}: {e}")))?
            }
            None => self.writer.read(op, work).await,
        }
    }

    async fn upsert_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()> {
        let row = ItemRow::new(&ctx.owner_id, thread_id, item)?;
        let changed = self.writer.run("save item", move |c| row.upsert(c)).await?;
        if changed == 0 {
            return Err(StoreError::ThreadNotFound(thread_id.to_string()));
        }
        Ok(())
    }

    async fn list(&self, op: &'static str, sql: &'static str, args: Vec<rusqlite::types::Value>) -> StoreResult<Rows> {
        self.read(op, move |c| {
            let mut stmt = c.prepare_cached(sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push((row.get(0)?, row.get(1)?));
            }
            Ok(out)
        })
        .await
    }
}

/// Names what failed in front of an opening error (the start-up line shows it).
fn prefix(what: &str, e: StoreError) -> StoreError {
    match e {
        StoreError::Database(m) => StoreError::Database(format!("{what}: {m}")),
        unwritable @ StoreError::Unwritable(_) => StoreError::Database(format!("{what}: {unwritable}")),
        other => other,
    }
}

impl FromStr for SqliteLocation {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SqliteLocation::from_url(s).ok_or_else(|| StoreError::Database(format!("not a sqlite: URL: {s}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sqlite_urls() {
        let file = |p: &str| Some(SqliteLocation::File(PathBuf::from(p)));
        assert_eq!(SqliteLocation::from_url("sqlite://data/chatkit.db"), file("data/chatkit.db"));
        assert_eq!(SqliteLocation::from_url("sqlite:///tmp/x.db"), file("/tmp/x.db"));
        assert_eq!(SqliteLocation::from_url("sqlite:x.db?mode=rwc"), file("x.db"));
        assert_eq!(SqliteLocation::from_url("sqlite::memory:"), Some(SqliteLocation::Memory));
        assert_eq!(SqliteLocation::from_url("sqlite://:memory:"), Some(SqliteLocation::Memory));
        assert_eq!(SqliteLocation::from_url("postgres://x"), None);
    }
}
