//! PostgreSQL only: a replica whose lock session dies while it holds a thread's lock is fenced off once
//! another replica took the lock. Its writes to the thread (items, and the thread row through
//! `save_thread` and `update_thread`) are refused with `LockLost`, the new holder's pass, and writes of
//! requests that take no lock are never fenced.

use std::time::Duration;

use chatkit::store::locks::without_thread_lock;
use chatkit::store::{Store, StoreError};
use chatkit_store::PostgresStore;

use super::checks::{ctx, msg, thread};
use super::{pg_options, with_pg_schema};

/// Terminates the lock sessions (the ones that last asked for an advisory lock) of the store whose
/// connections carry `application_name`; returns how many.
async fn kill_lock_sessions(url: &str, application_name: &str) -> i64 {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(url).await.unwrap();
    let killed = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND query LIKE '%advisory_lock%') k",
    )
    .bind(application_name)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    let _ = admin.close().await;
    killed
}

fn is_lock_lost(result: Result<impl std::fmt::Debug, StoreError>) -> bool {
    matches!(result, Err(StoreError::LockLost(ref id)) if id == "thr")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fences_the_thread_writes_of_a_lost_lock() {
    with_pg_schema(|url, schema| async move {
        let tag = format!("{schema}_a");
        let a = PostgresStore::connect(&format!("{url}?application_name={tag}"), &pg_options(&schema)).await.unwrap();
        let b = PostgresStore::connect(&url, &pg_options(&schema)).await.unwrap();
        let c = ctx("anonymous");
        a.save_thread(&c, &thread("thr", 1)).await.unwrap();

        // While its lock is good, the holder writes the thread row both ways.
        let held = a.lock_thread("thr", Duration::from_secs(2)).await.unwrap();
        let mut renamed = thread("thr", 1);
        renamed.title = Some("by a".into());
        a.save_thread(&c, &renamed).await.unwrap();
        let (_, changed) = a
            .update_thread(
                &c,
                "thr",
                Box::new(|t| {
                    t.title = Some("by a, updated".into());
                    true
                }),
            )
            .await
            .unwrap();
        assert!(changed);

        // A's lock session dies: PostgreSQL releases the lock, and B takes the thread.
        assert!(kill_lock_sessions(&url, &tag).await >= 1);
        let taken = b.lock_thread("thr", Duration::from_secs(5)).await.unwrap();

        // A's writes as the (former) holder are refused, and change nothing.
        let mut stale = thread("thr", 1);
        stale.title = Some("stale save".into());
        assert!(is_lock_lost(a.save_thread(&c, &stale).await));
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let update = a
            .update_thread(
                &c,
                "thr",
                Box::new(move |t| {
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                    t.title = Some("stale update".into());
                    true
                }),
            )
            .await;
        assert!(is_lock_lost(update));
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst), "the change ran under a lost lock");
        assert!(is_lock_lost(a.add_thread_item(&c, "thr", &msg("thr", "m_stale", 2, "stale")).await));
        assert_eq!(b.load_thread(&c, "thr").await.unwrap().title.as_deref(), Some("by a, updated"));
        assert!(b.load_item(&c, "thr", "m_stale").await.is_err());

        // The new holder writes; so does a request of A that takes no lock (a client's rename).
        let (stored, _) = b
            .update_thread(
                &c,
                "thr",
                Box::new(|t| {
                    t.title = Some("by b".into());
                    true
                }),
            )
            .await
            .unwrap();
        assert_eq!(stored.title.as_deref(), Some("by b"));
        b.add_thread_item(&c, "thr", &msg("thr", "m_b", 3, "from b")).await.unwrap();
        let mut by_client = stored.clone();
        by_client.title = Some("by the client".into());
        without_thread_lock(a.save_thread(&c, &by_client)).await.unwrap();
        assert_eq!(b.load_thread(&c, "thr").await.unwrap().title.as_deref(), Some("by the client"));

        // Once A's turn let go of the thread, A writes as anyone without the lock.
        drop(held);
        a.add_thread_item(&c, "thr", &msg("thr", "m_a", 4, "from a, later")).await.unwrap();
        drop(taken);
        a.close().await;
        b.close().await;
    })
    .await;
}
