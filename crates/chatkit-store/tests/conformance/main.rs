//! Store conformance suite: the same checks run against the in-memory store (bare, and behind the
//! instrumenting wrapper `open_store` puts around every store), SQLite (a temp file) and PostgreSQL (a
//! fresh schema per test, dropped afterwards; skipped with a printed line when no server answers —
//! `CHATKIT_TEST_POSTGRES_URL` overrides the default URL). Plus what only one backend has: SQLite
//! durability and open errors ([`sqlite_store`]), PostgreSQL replicas and recovery ([`postgres_store`]).

mod checks;
mod concurrency;
mod nul_ids;
mod postgres_fence;
mod postgres_store;
mod sqlite_store;
mod tombstones;
mod usage;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chatkit::store::{MemoryStore, Store};
use chatkit_store::{PostgresStore, SqliteLocation, SqliteStore, StoreOptions, open_store};
use futures::FutureExt;
use sqlx::postgres::PgConnectOptions;

use checks::*;
use concurrency::*;
use nul_ids::*;
use tombstones::*;
use usage::*;

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

fn pg_url() -> String {
    std::env::var("CHATKIT_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_PG.to_string())
}

/// `Some(url)` when PostgreSQL accepts TCP connections; otherwise prints the skip line once.
async fn pg_available() -> Option<String> {
    static PRINTED: OnceLock<()> = OnceLock::new();
    let url = pg_url();
    let opts = PgConnectOptions::from_str(&url).expect("CHATKIT_TEST_POSTGRES_URL is not a PostgreSQL URL");
    let addr = format!("{}:{}", opts.get_host(), opts.get_port());
    let probe = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(&addr)).await;
    if matches!(probe, Ok(Ok(_))) {
        return Some(url);
    }
    PRINTED.get_or_init(|| {
        // Written to the real stderr (not the captured test output) so a skip is never silent.
        let _ = writeln!(std::io::stderr(), "skipped: no PostgreSQL at {addr}");
    });
    None
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chatkit-store-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pg_options(schema: &str) -> StoreOptions {
    StoreOptions { schema: Some(schema.to_string()), max_connections: 8, ..StoreOptions::default() }
}

fn new_schema() -> String {
    format!("ck_test_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

async fn drop_schema(url: &str, schema: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")))
        .execute(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
}

/// Runs `body` with a PostgreSQL schema name, dropping the schema afterwards even if it panics.
async fn with_pg_schema<F, Fut>(body: F)
where
    F: FnOnce(String, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(url) = pg_available().await else {
        return;
    };
    let schema = new_schema();
    let outcome = std::panic::AssertUnwindSafe(body(url.clone(), schema.clone())).catch_unwind().await;
    drop_schema(&url, &schema).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

enum Backend {
    Memory,
    /// What `open_store("memory://")` answers: the memory store inside the metering and tracing wrapper.
    Instrumented,
    Sqlite,
    Postgres,
}

async fn run<F, Fut>(backend: Backend, check: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    match backend {
        Backend::Memory => check(Arc::new(MemoryStore::new())).await,
        Backend::Instrumented => {
            let options = StoreOptions { trace_operations: true, ..StoreOptions::default() };
            check(open_store("memory://", options).await.unwrap()).await
        }
        Backend::Sqlite => {
            let dir = temp_dir();
            let location = SqliteLocation::File(dir.join("chatkit.db"));
            let store = Arc::new(SqliteStore::open(&location, &StoreOptions::default()).await.unwrap());
            check(store.clone()).await;
            store.close().await;
            let _ = std::fs::remove_dir_all(dir);
        }
        Backend::Postgres => {
            with_pg_schema(|url, schema| async move {
                let store = Arc::new(PostgresStore::connect(&url, &pg_options(&schema)).await.unwrap());
                check(store.clone()).await;
                store.close().await;
            })
            .await
        }
    }
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod memory { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::run(super::Backend::Memory, super::$check).await }
        )* }
        mod instrumented { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::run(super::Backend::Instrumented, super::$check).await }
        )* }
        mod sqlite { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::run(super::Backend::Sqlite, super::$check).await }
        )* }
        mod postgres { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::run(super::Backend::Postgres, super::$check).await }
        )* }
    };
}

conformance!(
    thread_crud_and_owner_isolation,
    create_thread_with_first_item,
    update_thread_applies_changes_to_the_stored_thread,
    thread_pagination,
    item_pagination_with_ties_and_hidden,
    upsert_keeps_position,
    delete_thread_cascades,
    delete_items,
    attachments,
    attachment_bytes_per_owner,
    attachment_uploads_match_the_declared_size_once,
    paging_continues_after_a_deleted_cursor,
    tombstones_are_pruned_after_the_retention,
    turn_usage_sums,
    kv_compare_and_set,
    concurrent_appends,
    large_items,
    lock_thread,
    randomized_sequence,
    ids_with_nul_do_not_exist,
);
