//! [`PostgresStore`]: the shared [`Store`] for several server replicas on one PostgreSQL database.
//!
//! A sqlx pool (size configurable) runs one prepared statement per call, with JSON kept as TEXT and
//! rows positioned by `(created_at, seq)` (`seq` is a `BIGSERIAL`: insertion order). Migrations run
//! at connect time under `pg_advisory_lock`, so replicas may start together. An optional schema
//! (created if missing) becomes the `search_path` of every connection.
//!
//! `lock_thread` serializes responses across replicas with session advisory locks
//! (`pg_try_advisory_lock`, polled until the wait elapses). The locks live on a few dedicated
//! *lock sessions* owned by the store, never on pooled connections: a pooled connection returned
//! with a lock still held is therefore impossible, and a long turn does not pin a pool connection.
//! Inside one process an in-memory per-thread mutex is taken first (session locks are re-entrant).
//! Acquisition and release run in spawned tasks so a cancelled caller can neither leak a lock
//! nor leave a half-read reply on a lock session; if a lock session breaks, PostgreSQL drops its
//! locks with the session and the store reconnects on next use.
//!
//! This module connects, migrates and holds the helpers the operations share; the [`Store`]
//! operations are in [`store`].
//!
//! [`Store`]: chatkit::store::Store

use std::str::FromStr;
use std::sync::Arc;

use chatkit::store::{RequestContext, StoreError, StoreResult, UnwritableReason};
use chatkit::types::ThreadItem;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use self::deletions::Deletions;
use self::locks::{PgLocks, connect_once};
use self::migrate::{migrate, valid_schema};
use self::statements::*;
use crate::open::StoreOptions;
use crate::write_health::WriteHealth;

mod deletions;
mod fence;
mod locks;
mod migrate;
mod statements;
mod store;
mod update;

/// Whether one of `values` cannot be stored: PostgreSQL `text` cannot hold the NUL character, so no
/// row has an id, owner or key containing it, and a query binding one fails instead of finding
/// nothing. Calls naming such a value answer without a query, exactly as for any missing row: reads
/// find nothing, deletes delete nothing, and writes fail as when the row belongs to another owner.
fn unstorable(values: &[&str]) -> bool {
    values.iter().any(|v| v.contains('\0'))
}

/// `Err(missing())`, the call's answer for a row that does not exist, when one of `values` is
/// [`unstorable`].
fn require_storable(values: &[&str], missing: impl FnOnce() -> StoreError) -> StoreResult<()> {
    if unstorable(values) { Err(missing()) } else { Ok(()) }
}

/// Maps a database error to [`StoreError::Unwritable`] when the server refuses writes (its disk is full,
/// it is a read-only standby or the database is set read-only, its storage failed), else to
/// [`StoreError::Database`] naming the operation.
///
/// sqlx errors never contain the connection URL, so no password can leak through here.
fn db_err(op: &str, e: sqlx::Error) -> StoreError {
    let refused = match &e {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("53100") => Some(UnwritableReason::DiskFull),
            Some("25006") => Some(UnwritableReason::ReadOnly),
            Some("58030") => Some(UnwritableReason::IoError),
            _ => None,
        },
        _ => None,
    };
    if let Some(reason) = refused {
        tracing::debug!(op, error = %e, "PostgreSQL refuses writes");
        return StoreError::Unwritable(reason);
    }
    match e {
        sqlx::Error::PoolTimedOut => StoreError::Database(format!("{op}: timed out waiting for a database connection")),
        sqlx::Error::PoolClosed => StoreError::Database(format!("{op}: the store is closed")),
        other => StoreError::Database(format!("{op}: {other}")),
    }
}

/// A [`Store`](chatkit::store::Store) on PostgreSQL, safe to share between several server processes.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    /// The outcome of the latest health probe.
    write_health: WriteHealth,
    locks: Arc<PgLocks>,
    /// Threads deleted through any replica, for the turns running here.
    deletions: Deletions,
    label: String,
}

impl PostgresStore {
    /// Connects, creates the schema if one is configured, runs pending migrations (under an
    /// advisory lock) and returns the store. Errors name the server, never the password.
    pub async fn connect(url: &str, options: &StoreOptions) -> StoreResult<Self> {
        let base = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Database(format!("invalid PostgreSQL URL: {}", redact_url_error(&e))))?;
        let schema = match &options.schema {
            Some(s) => Some(valid_schema(s)?.to_string()),
            None => None,
        };
        let mut label = format!(
            "postgres://{}@{}:{}/{}",
            base.get_username(),
            base.get_host(),
            base.get_port(),
            base.get_database().unwrap_or_default()
        );
        if let Some(s) = &schema {
            label.push_str(&format!(" (schema {s})"));
        }
        let mut connect = match base.get_application_name() {
            Some(_) => base,
            None => base.application_name("chatkit"),
        };
        if let Some(s) = &schema {
            connect = connect.options([("search_path", s.as_str())]);
        }
        let unreachable = |e: String| StoreError::Database(format!("cannot connect to PostgreSQL at {label}: {e}"));
        let mut conn = connect_once(&connect, options.connect_timeout).await.map_err(unreachable)?;
        let migrated = migrate(&mut conn, schema.as_deref()).await;
        // Closing the session also releases the migration lock if migrating failed halfway.
        let _ = conn.close().await;
        migrated.map_err(|e| match e {
            StoreError::Database(m) => StoreError::Database(format!("PostgreSQL at {label}: {m}")),
            other => other,
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.connect_timeout)
            .connect_lazy_with(connect.clone());
        let namespace = schema.unwrap_or_else(|| "public".into());
        let deletions = Deletions::new(connect.clone(), namespace.clone());
        let locks = Arc::new(PgLocks::new(connect, options.connect_timeout, namespace, pool.clone()));
        tracing::debug!(database = %label, "PostgreSQL store connected");
        Ok(PostgresStore { pool, locks, deletions, label, write_health: WriteHealth::default() })
    }

    /// The connection pool (for tests and maintenance tasks).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool and the lock sessions (dropping every lock they hold).
    pub async fn close(&self) {
        self.pool.close().await;
        self.locks.close().await;
        self.deletions.close().await;
    }

    /// The fence token a write to `thread_id` must check: this process's, while it holds the thread's
    /// lock, unless the write comes from a request that takes no lock.
    fn holder_token(&self, thread_id: &str) -> Option<i64> {
        if chatkit::store::locks::is_without_thread_lock() {
            return None;
        }
        self.locks.token(thread_id)
    }

    async fn upsert_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()> {
        require_storable(&[&ctx.owner_id, thread_id], || StoreError::ThreadNotFound(thread_id.to_string()))?;
        require_storable(&[&item.id], || StoreError::item_not_found(thread_id, &item.id))?;
        let token = self.holder_token(thread_id);
        let rows = fence::write(&self.pool, "save item", thread_id, token, || {
            upsert_item_query(&ctx.owner_id, thread_id, item)
        })
        .await?;
        if rows == 0 {
            return Err(StoreError::ThreadNotFound(thread_id.to_string()));
        }
        Ok(())
    }
}

/// sqlx's URL errors quote no URL, but be safe: drop anything that looks like `user:pass@`.
fn redact_url_error(e: &sqlx::Error) -> String {
    let text = e.to_string();
    if text.contains('@') { "malformed URL".to_string() } else { text }
}
