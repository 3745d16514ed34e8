//! The PostgreSQL schema: migrations embedded from `migrations/postgres/`, applied at connect time
//! under an advisory lock so that replicas starting together apply each one once.

use chatkit::store::{StoreError, StoreResult};
use chatkit::types::Timestamp;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::db_err;
use super::locks::advisory_key;
use crate::migration::{Migration, embedded_migrations};

/// PostgreSQL migrations, in order.
const MIGRATIONS: &[Migration] = embedded_migrations!("postgres");

/// Schema names are interpolated into `CREATE SCHEMA`, so only plain identifiers are accepted.
pub(super) fn valid_schema(s: &str) -> StoreResult<&str> {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && s.len() <= 63 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(s)
    } else {
        Err(StoreError::Database(format!(
            "invalid PostgreSQL schema name `{s}`: use letters, digits and `_` (at most 63)"
        )))
    }
}

/// Creates the schema and applies pending migrations while holding a session advisory lock.
pub(super) async fn migrate(conn: &mut PgConnection, schema: Option<&str>) -> StoreResult<()> {
    let err = |e| db_err("migrations", e);
    let key = advisory_key(&format!("chatkit-migrations:{}", schema.unwrap_or("public")));
    sqlx::query("SELECT pg_advisory_lock($1)").bind(key).execute(&mut *conn).await.map_err(err)?;
    if let Some(s) = schema {
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS \"{s}\"")))
            .execute(&mut *conn)
            .await
            .map_err(err)?;
    }
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS chatkit_migrations \
         (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await
    .map_err(err)?;
    let current: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0)::BIGINT FROM chatkit_migrations")
        .fetch_one(&mut *conn)
        .await
        .map_err(err)?;
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let mut tx = conn.begin().await.map_err(err)?;
        sqlx::raw_sql(m.sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_err(&format!("migration {} ({})", m.version, m.name), e))?;
        sqlx::query("INSERT INTO chatkit_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(Timestamp::now().micros())
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        tracing::info!(version = m.version, name = m.name, "applied PostgreSQL migration");
    }
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(key).execute(&mut *conn).await.map_err(err)?;
    Ok(())
}
