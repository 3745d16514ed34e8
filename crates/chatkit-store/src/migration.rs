//! The embedded schema migrations. Both backends have the same versions under the same names, each
//! with its own SQL in `migrations/<backend>/<version>_<name>.sql`; [`embedded_migrations!`] lists them
//! once for both. Each backend's `migrate` module applies the ones its database has not recorded yet
//! in a `chatkit_migrations` table, so a database is upgraded at open.

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

/// The migrations of one backend (`"sqlite"` or `"postgres"`, the folder under `migrations/`), in
/// order, as a `&[Migration]`. A new migration is one line here and one file in each folder.
macro_rules! embedded_migrations {
    ($backend:literal) => {
        $crate::migration::embedded_migrations!(@files $backend;
            1 "0001" "init",
            2 "0002" "attachment_data_owner",
            3 "0003" "attachment_size",
            4 "0004" "paging_tombstones",
            5 "0005" "turn_usage",
            6 "0006" "tombstone_age",
            7 "0007" "usage_turns",
        )
    };
    (@files $backend:literal; $($version:literal $prefix:literal $name:literal,)+) => {
        &[$($crate::migration::Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"), "/migrations/", $backend, "/", $prefix, "_", $name, ".sql"
            )),
        },)+]
    };
}
pub(crate) use embedded_migrations;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const ALL: &[Migration] = embedded_migrations!("sqlite");

    /// Every file of both folders is listed (one left out would never be applied), and the versions
    /// count up from 1.
    #[test]
    fn every_migration_file_is_listed_in_order() {
        let listed: BTreeSet<String> = ALL.iter().map(|m| format!("{:04}_{}.sql", m.version, m.name)).collect();
        for backend in ["sqlite", "postgres"] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend);
            let files: BTreeSet<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(files, listed, "migrations/{backend}/");
        }
        let versions: Vec<i64> = ALL.iter().map(|m| m.version).collect();
        assert_eq!(versions, (1..=ALL.len() as i64).collect::<Vec<_>>());
    }
}
