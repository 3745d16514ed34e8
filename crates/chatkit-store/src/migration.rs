//! The shape of an embedded schema migration. Each backend lists its own in its `migrate` module and
//! records the applied versions in a `chatkit_migrations` table, so a database is upgraded at open.

/// One embedded schema migration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// Increasing version number (the file's numeric prefix).
    pub(crate) version: i64,
    /// Short name for logs.
    pub(crate) name: &'static str,
    /// The SQL script (several statements).
    pub(crate) sql: &'static str,
}
