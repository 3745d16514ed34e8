//! Store conformance suite: the same checks run against the in-memory store, SQLite (a temp file)
//! and PostgreSQL (a fresh schema per test, dropped afterwards; skipped with a printed line when
//! no server answers — `CHATKIT_TEST_POSTGRES_URL` overrides the default URL). Plus SQLite
//! durability/open errors and PostgreSQL multi-replica behaviour.

mod checks;
mod concurrency;
mod nul_ids;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chatkit::store::{MemoryStore, Store, StoreError};
use chatkit::types::Order;
use chatkit_store::{PostgresStore, SqliteLocation, SqliteStore, StoreOptions, open_store};
use futures::FutureExt;
use sqlx::postgres::PgConnectOptions;

use checks::*;
use checks::{ctx, msg, thread};
use concurrency::*;
use nul_ids::*;

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
    kv_compare_and_set,
    concurrent_appends,
    large_items,
    lock_thread,
    randomized_sequence,
    ids_with_nul_do_not_exist,
);

#[tokio::test]
async fn sqlite_memory_url_runs_the_basics() {
    let store = open_store("sqlite::memory:", StoreOptions::default()).await.unwrap();
    assert_eq!(store.describe(), "sqlite::memory:");
    upsert_keeps_position(store).await;
    let store = open_store("sqlite::memory:", StoreOptions::default()).await.unwrap();
    concurrent_appends(store).await;
}

#[tokio::test]
async fn sqlite_data_survives_reopen() {
    let dir = temp_dir();
    let path = dir.join("nested/folder/chatkit.db");
    let url = format!("sqlite://{}", path.display());
    let c = ctx("anonymous");
    {
        let store = open_store(&url, StoreOptions::default()).await.unwrap();
        assert_eq!(store.describe(), url);
        store.save_thread(&c, &thread("thr", 1)).await.unwrap();
        store.add_thread_item(&c, "thr", &msg("thr", "m1", 1, "persisted")).await.unwrap();
        assert!(store.kv_compare_and_set("ns", "k", None, &serde_json::json!([1])).await.unwrap());
        store.save_attachment_data(&c, "atc", b"bytes").await.unwrap();
        // Dropped without close(), as a crash would.
    }
    assert!(path.exists());
    let store = open_store(&url, StoreOptions::default()).await.unwrap();
    assert_eq!(store.load_thread(&c, "thr").await.unwrap(), thread("thr", 1));
    assert_eq!(store.load_item(&c, "thr", "m1").await.unwrap(), msg("thr", "m1", 1, "persisted"));
    assert_eq!(store.kv_get("ns", "k").await.unwrap().map(|v| v.version), Some(1));
    assert_eq!(store.load_attachment_data(&c, "atc").await.unwrap().as_deref(), Some(&b"bytes"[..]));
    // Migrations are not re-applied: a new item still goes after the old one.
    store.add_thread_item(&c, "thr", &msg("thr", "m2", 1, "later")).await.unwrap();
    let page = store.load_thread_items(&c, "thr", None, 10, Order::Asc).await.unwrap();
    assert_eq!(page.data.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["m1", "m2"]);
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn sqlite_unwritable_path_is_one_clear_error() {
    let dir = temp_dir();
    let blocker = dir.join("file");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let url = format!("sqlite://{}/sub/chatkit.db", blocker.display());
    let err = open_store(&url, StoreOptions::default()).await.err().expect("must fail");
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Database(_)));
    assert!(msg.contains("cannot create folder") && msg.contains("sub"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn unreachable_postgres_is_one_clear_error_without_password() {
    // Port 1 on loopback: nothing listens there.
    let opts = StoreOptions { connect_timeout: Duration::from_secs(2), ..StoreOptions::default() };
    let err = open_store("postgres://app:hunter2@127.0.0.1:1/db", opts).await.err().expect("must fail");
    let msg = err.to_string();
    assert!(msg.contains("cannot connect to PostgreSQL at postgres://app@127.0.0.1:1/db"), "{msg}");
    assert!(!msg.contains("hunter2") && !msg.contains('\n'), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_share_data_and_locks() {
    use sqlx::Connection;
    with_pg_schema(|url, schema| async move {
        // Several replicas starting at once: migrations run exactly once, none fails.
        let opts = pg_options(&schema);
        let starts = (0..4).map(|_| PostgresStore::connect(&url, &opts));
        let stores: Vec<PostgresStore> =
            futures::future::join_all(starts).await.into_iter().map(Result::unwrap).collect();
        let (a, b) = (&stores[0], &stores[1]);
        assert_eq!(a.describe(), format!("postgres://postgres@127.0.0.1:5432/test (schema {schema})"));
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM chatkit_migrations").fetch_one(a.pool()).await.unwrap();
        assert_eq!(applied, 1);

        // Data written through one replica is read through the other.
        let c = ctx("anonymous");
        a.save_thread(&c, &thread("thr", 1)).await.unwrap();
        b.add_thread_item(&c, "thr", &msg("thr", "m1", 1, "from b")).await.unwrap();
        assert_eq!(a.load_item(&c, "thr", "m1").await.unwrap(), msg("thr", "m1", 1, "from b"));

        // The thread lock excludes across replicas, times out, and is released on drop.
        let held = a.lock_thread("thr", Duration::from_secs(1)).await.unwrap();
        let err = b.lock_thread("thr", Duration::from_millis(200)).await.unwrap_err();
        assert!(matches!(err, StoreError::LockTimeout(_)), "{err:?}");
        let other = b.lock_thread("thr_other", Duration::from_secs(1)).await.unwrap();
        drop(held);
        let got = b.lock_thread("thr", Duration::from_secs(2)).await.unwrap();
        let err = a.lock_thread("thr", Duration::from_millis(100)).await.unwrap_err();
        assert!(matches!(err, StoreError::LockTimeout(_)), "{err:?}");
        drop((got, other));

        // A caller cancelled while waiting does not leak the lock.
        let held = a.lock_thread("thr2", Duration::from_secs(1)).await.unwrap();
        let waiter = b.lock_thread("thr2", Duration::from_millis(300));
        assert!(tokio::time::timeout(Duration::from_millis(50), waiter).await.is_err());
        drop(held);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let g = a.lock_thread("thr2", Duration::from_secs(2)).await.unwrap();
        drop(g);
        // Seen from a third session, the advisory lock of thr2 is free again (no leak), and the
        // lock of a held thread is really taken in PostgreSQL.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut probe = sqlx::PgConnection::connect(&url).await.unwrap();
        let try_lock = |key: i64| sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)").bind(key);
        let free_key = thread_lock_key(&schema, "thr2");
        assert!(try_lock(free_key).fetch_one(&mut probe).await.unwrap(), "thr2 lock leaked");
        let held = b.lock_thread("thr3", Duration::from_secs(1)).await.unwrap();
        assert!(!try_lock(thread_lock_key(&schema, "thr3")).fetch_one(&mut probe).await.unwrap());
        drop(held);
        let _ = probe.close().await;

        for s in &stores {
            s.close().await;
        }
    })
    .await;
}

/// The advisory-lock key the PostgreSQL store uses for a thread: FNV-1a 64 of
/// `chatkit-thread:<schema>:<thread id>` (stable across builds so replicas agree).
fn thread_lock_key(schema: &str, thread_id: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("chatkit-thread:{schema}:{thread_id}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

#[tokio::test]
async fn postgres_rejects_bad_schema_names() {
    let Some(url) = pg_available().await else {
        return;
    };
    let err = PostgresStore::connect(&url, &pg_options("x\"; DROP TABLE y; --")).await.expect_err("must fail");
    assert!(err.to_string().contains("invalid PostgreSQL schema name"), "{err}");
}

#[tokio::test]
async fn postgres_refuses_to_create_ids_it_cannot_store() {
    with_pg_schema(|url, schema| async move {
        let store = PostgresStore::connect(&url, &pg_options(&schema)).await.unwrap();
        let c = ctx("anonymous");
        // Writes of such ids fail as for an id taken by another owner: nothing is written, no database
        // error is reported.
        let err = store.save_thread(&c, &thread("x\0", 1)).await.unwrap_err();
        assert!(matches!(err, StoreError::ThreadNotFound(ref id) if id == "x\0"), "{err:?}");
        let err = store.create_thread_with_item(&c, &thread("y\0", 1), &msg("y\0", "m1", 1, "x")).await.unwrap_err();
        assert!(matches!(err, StoreError::ThreadNotFound(_)), "{err:?}");
        store.save_thread(&c, &thread("thr", 1)).await.unwrap();
        let err = store.save_item(&c, "thr", &msg("thr", "m\0", 1, "x")).await.unwrap_err();
        assert!(matches!(err, StoreError::ItemNotFound { .. }), "{err:?}");
        let err = store.save_attachment_data(&c, "atc\0", b"x").await.unwrap_err();
        assert!(matches!(err, StoreError::AttachmentNotFound(_)), "{err:?}");
        assert!(!store.kv_compare_and_set("ns", "k\0", None, &serde_json::json!(1)).await.unwrap());
        assert!(store.load_threads(&c, 10, None, Order::Asc).await.unwrap().data.iter().all(|t| t.id == "thr"));
        store.close().await;
    })
    .await;
}

/// Child side of [`sqlite_committed_items_survive_kill_9`]: writes, reports, then waits to be killed.
#[tokio::test]
#[ignore = "run as a child process by sqlite_committed_items_survive_kill_9"]
async fn sqlite_kill_child_writer() {
    let path = std::env::var("CHATKIT_KILL_TEST_DB").expect("CHATKIT_KILL_TEST_DB");
    let store = open_store(&format!("sqlite://{path}"), StoreOptions::default()).await.unwrap();
    let c = ctx("anonymous");
    store.save_thread(&c, &thread("thr", 1)).await.unwrap();
    for i in 0..20 {
        store.add_thread_item(&c, "thr", &msg("thr", &format!("m{i:02}"), i, "acked")).await.unwrap();
    }
    let mut out = std::io::stdout();
    out.write_all(b"READY\n").unwrap();
    out.flush().unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[tokio::test]
async fn sqlite_committed_items_survive_kill_9() {
    use std::io::BufRead;
    let dir = temp_dir();
    let path = dir.join("killed.db");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["sqlite_kill_child_writer", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("CHATKIT_KILL_TEST_DB", &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout).lines().map_while(Result::ok).any(|l| l.contains("READY"))
    });
    let ready = tokio::time::timeout(Duration::from_secs(60), ready).await;
    child.kill().unwrap(); // SIGKILL: no destructors, no checkpoint
    child.wait().unwrap();
    assert!(matches!(ready, Ok(Ok(true))), "child never reported READY");
    let store = open_store(&format!("sqlite://{}", path.display()), StoreOptions::default()).await.unwrap();
    let c = ctx("anonymous");
    let page = store.load_thread_items(&c, "thr", None, 100, Order::Asc).await.unwrap();
    let want: Vec<String> = (0..20).map(|i| format!("m{i:02}")).collect();
    assert_eq!(page.data.iter().map(|i| i.id.clone()).collect::<Vec<_>>(), want);
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_recovers_after_connections_are_killed() {
    with_pg_schema(|url, schema| async move {
        // A distinct application_name lets this test kill exactly its own sessions.
        let tagged = format!("{url}?application_name={schema}");
        let store = PostgresStore::connect(&tagged, &pg_options(&schema)).await.unwrap();
        let c = ctx("anonymous");
        store.save_thread(&c, &thread("thr", 1)).await.unwrap();
        drop(store.lock_thread("thr", Duration::from_secs(1)).await.unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;

        let admin = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
        let killed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1) k",
        )
        .bind(&schema)
        .fetch_one(&admin)
        .await
        .unwrap();
        assert!(killed >= 2, "expected pool and lock sessions, killed {killed}");
        tokio::time::sleep(Duration::from_millis(200)).await;

        // No restart needed: the pool and the lock sessions reconnect by themselves.
        assert_eq!(store.load_thread(&c, "thr").await.unwrap().id, "thr");
        store.add_thread_item(&c, "thr", &msg("thr", "m1", 1, "after")).await.unwrap();
        let held = store.lock_thread("thr", Duration::from_secs(2)).await.unwrap();
        drop(held);
        store.ping().await.unwrap();
        admin.close().await;
        store.close().await;
    })
    .await;
}
