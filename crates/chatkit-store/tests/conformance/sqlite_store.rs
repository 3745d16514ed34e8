//! SQLite only: the `sqlite::memory:` URL, data surviving a reopen and a `kill -9`, and a clear error
//! for a path that cannot be created.

use std::io::Write;
use std::time::Duration;

use chatkit::store::StoreError;
use chatkit::types::Order;
use chatkit_store::{StoreOptions, open_store};

use super::checks::{attachment, ctx, msg, thread, upsert_keeps_position};
use super::concurrency::concurrent_appends;
use super::temp_dir;

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
        store.create_attachment(&c, &attachment("atc", None), 5).await.unwrap();
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
        .args(["sqlite_store::sqlite_kill_child_writer", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
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
