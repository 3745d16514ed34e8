//! Helpers shared by the SQL stores ([`super::sqlite`], [`super::postgres`]): the embedded
//! migrations, JSON encoding/decoding of stored rows, page assembly from `limit + 1` rows,
//! error mapping and the stable hash used for advisory-lock keys.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;
use crate::types::Page;

/// One embedded schema migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Increasing version number (the file's numeric prefix).
    pub version: i64,
    /// Short name for logs.
    pub name: &'static str,
    /// The SQL script (several statements).
    pub sql: &'static str,
}

/// SQLite migrations, in order.
pub const SQLITE_MIGRATIONS: &[Migration] =
    &[Migration { version: 1, name: "init", sql: include_str!("../../migrations/sqlite/0001_init.sql") }];

/// PostgreSQL migrations, in order.
pub const POSTGRES_MIGRATIONS: &[Migration] =
    &[Migration { version: 1, name: "init", sql: include_str!("../../migrations/postgres/0001_init.sql") }];

/// Maps a database error to [`StoreError::Database`], naming the operation.
///
/// sqlx errors never contain the connection URL, so no password can leak through here.
pub fn db_err(op: &str, e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut => StoreError::Database(format!("{op}: timed out waiting for a database connection")),
        sqlx::Error::PoolClosed => StoreError::Database(format!("{op}: the store is closed")),
        other => StoreError::Database(format!("{op}: {other}")),
    }
}

/// Serializes a value to the JSON text stored in `data` columns.
pub fn encode<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode {what}: {e}")))
}

/// Parses a stored JSON column.
pub fn decode<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// The `LIMIT` to bind: one more than asked, so `has_more` can be computed.
pub fn fetch_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX - 1).min(i64::MAX - 1) + 1
}

/// Builds a page from up to `limit + 1` `(id, value)` rows in page order.
pub fn page_from_rows<T>(rows: Vec<(String, T)>, limit: usize) -> Page<T> {
    let has_more = rows.len() > limit;
    let mut data = Vec::with_capacity(rows.len().min(limit));
    let mut last_id = None;
    for (id, value) in rows.into_iter().take(limit) {
        data.push(value);
        last_id = Some(id);
    }
    Page { data, has_more, after: if has_more { last_id } else { None } }
}

/// 64-bit FNV-1a of `s` as a signed integer: stable across builds and processes (advisory-lock keys).
pub fn stable_hash(s: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_from_extra_row() {
        let rows = vec![("a".to_string(), 1), ("b".to_string(), 2), ("c".to_string(), 3)];
        let p = page_from_rows(rows.clone(), 2);
        assert_eq!((p.data, p.has_more, p.after), (vec![1, 2], true, Some("b".to_string())));
        let p = page_from_rows(rows, 3);
        assert_eq!((p.data, p.has_more, p.after), (vec![1, 2, 3], false, None));
        assert_eq!(fetch_limit(20), 21);
        assert_eq!(fetch_limit(usize::MAX), i64::MAX);
    }

    #[test]
    fn stable_hash_is_fnv1a() {
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c_u64 as i64);
        assert_ne!(stable_hash("thr_1"), stable_hash("thr_2"));
    }
}
