//! The SQLite schema: migrations embedded from `migrations/sqlite/`, applied when the writer
//! connection opens.

use chatkit::store::StoreResult;
use rusqlite::{Connection, TransactionBehavior};

use super::conn::sq_err;
use crate::migration::{Migration, embedded_migrations};

/// SQLite migrations, in order.
const MIGRATIONS: &[Migration] = embedded_migrations!("sqlite");

/// Applies the embedded migrations not yet recorded in `chatkit_migrations`, in one
/// `BEGIN IMMEDIATE` transaction (so two processes opening the same file cannot both apply them).
/// Same table and versions as every earlier release, so existing databases keep working.
pub(super) fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let err = |e| sq_err("migrations", e);
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS chatkit_migrations \
         (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .map_err(err)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
    let current: i64 =
        tx.query_row("SELECT COALESCE(MAX(version), 0) FROM chatkit_migrations", [], |r| r.get(0)).map_err(err)?;
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.execute_batch(m.sql).map_err(|e| sq_err(&format!("migration {} ({})", m.version, m.name), e))?;
        tx.execute(
            "INSERT INTO chatkit_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, chatkit::types::Timestamp::now().micros()],
        )
        .map_err(err)?;
        tracing::info!(version = m.version, name = m.name, "applied SQLite migration");
    }
    tx.commit().map_err(err)
}
