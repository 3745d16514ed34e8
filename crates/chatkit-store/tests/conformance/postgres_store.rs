//! PostgreSQL only: several replicas on one schema (migrations once, shared data and locks), recovery
//! after the server kills the store's sessions, and the errors of a bad URL, schema or id.

use std::time::Duration;

use chatkit::store::{Store, StoreError};
use chatkit::types::Order;
use chatkit_store::{PostgresStore, StoreOptions, open_store};

use super::checks::{ctx, msg, thread};
use super::{pg_available, pg_options, with_pg_schema};

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
        // Each migration file applied exactly once, however many replicas raced to apply it.
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres")).unwrap().count();
        assert_eq!(applied, i64::try_from(files).unwrap());

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
