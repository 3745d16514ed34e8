//! Failing storage, end to end with the real `support` binary on a SQLite database in a small tmpfs:
//!
//! * a full disk: chat requests answer 503 with a detail that says the disk is full (or, once a stream
//!   has started, an `error` event with that message), `/support/health` answers 503, and once space is
//!   freed everything works again without a restart;
//! * a read-only file system at start-up: the server exits with code 1 and one line that says the
//!   database is read-only; on the same location made writable again it starts and serves.
//!
//! Mounting needs root (CI runs as root); elsewhere the tests print `skipped: …` and pass.

mod common;
mod faults_common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use faults_common as fc;
use mock_llm::{Match, MockServer, Reply, Script};
use serde_json::{Value, json};

/// The detail of every answer while the disk is full.
const DISK_FULL: &str = "the database cannot be written: the disk is full; try again once storage is writable";

/// A tmpfs of `size` mounted on a fresh folder; unmounted (lazily, in case a process still holds it)
/// when dropped.
struct Tmpfs {
    dir: TempDir,
    mount: PathBuf,
}

impl Tmpfs {
    /// `None` when mounting is not permitted here (not root, no `mount`).
    fn mount(label: &str, size: &str) -> Option<Tmpfs> {
        let dir = TempDir::new(label);
        let mount = dir.path().join("mnt");
        std::fs::create_dir_all(&mount).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs here (needs root and mount)");
            return None;
        }
        Some(Tmpfs { dir, mount })
    }

    fn remount(&self, mode: &str) {
        let status = Command::new("mount").args(["-o", &format!("remount,{mode}")]).arg(&self.mount).status().unwrap();
        assert!(status.success(), "remount {mode}");
    }

    fn database_url(&self) -> String {
        format!("sqlite://{}", self.mount.join("chatkit.db").display())
    }

    /// Fills the file system with one file; returns its path (delete it to free the space).
    fn fill(&self) -> PathBuf {
        let path = self.mount.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0x5a_u8; 64 * 1024];
        loop {
            if file.write_all(&chunk).is_err() {
                break;
            }
        }
        // Whatever is left is smaller than a chunk: take it byte by byte.
        while file.write_all(&[0]).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

async fn echo_mock() -> MockServer {
    mock(Script::new().on(Match::Any, Reply::text("Saved and answered."))).await
}

fn server_env<'a>(db: &'a str, mock_base: &'a str) -> [(&'a str, &'a str); 3] {
    [("DATABASE_URL", db), ("OPENAI_API_KEY", "mock"), ("OPENAI_BASE_URL", mock_base)]
}

/// `GET /support/health` as `(status, body)`.
async fn health(server: &fc::Bin) -> (u16, Value) {
    let res = server.client.get(server.url("/support/health")).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Polls the health route until it answers `status`, for at most 15 s.
async fn health_becomes(server: &fc::Bin, status: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (got, body) = health(server).await;
        if got == status {
            return body;
        }
        assert!(Instant::now() < deadline, "health stayed {got} {body}, expected {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A message big enough that storing it needs space the full disk does not have (and within the
/// 100,000-character limit of a message).
fn big_text(tag: &str) -> String {
    format!("{tag} {}", "luggage ".repeat(11_000))
}

/// How a chat request ended: its status, and the JSON body or the stream's events.
async fn attempt(server: &fc::Bin, body: &Value) -> (u16, Value) {
    let res = server.post(body).await;
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let parsed = if status == 200 { Value::Array(parse_sse(&text)) } else { serde_json::from_str(&text).unwrap() };
    (status, parsed)
}

/// Asserts that a chat request failed because the disk is full: 503 with the detail, or (once a
/// stream had started) an `error` event with that message and nothing claiming success after it.
fn assert_disk_full(what: &str, (status, body): &(u16, Value)) {
    if *status == 200 {
        let events = body.as_array().unwrap();
        let error = events.iter().find(|e| e["type"] == "error").unwrap_or_else(|| panic!("{what}: {body}"));
        assert_eq!(error["message"], DISK_FULL, "{what}: {error}");
        assert_eq!(error["allow_retry"], true, "{what}: {error}");
        assert_eq!(events.last(), Some(error), "{what}: the error ends the stream: {body}");
    } else {
        assert_eq!(*status, 503, "{what}: {body}");
        assert_eq!(body["detail"], DISK_FULL, "{what}: {body}");
        assert_eq!(body["code"], "unavailable", "{what}: {body}");
    }
}

#[tokio::test]
async fn a_full_disk_is_503_with_a_clear_detail_and_recovers_without_a_restart() {
    let Some(fs) = Tmpfs::mount("diskfull", "3m") else { return };
    let mock = echo_mock().await;
    let (db, base) = (fs.database_url(), mock.openai_base_url());
    let mut server = fc::Bin::spawn(fs.dir.path(), &server_env(&db, &base));
    server.ready().await;
    let thread = thread_id_of(&server.stream(create("Before the disk fills up.")).await);
    assert_eq!(health(&server).await.0, 200);

    let filler = fs.fill();
    let new_thread = attempt(&server, &create(&big_text("new thread"))).await;
    assert_disk_full("threads.create", &new_thread);
    let on_thread = attempt(&server, &add_message(&thread, &big_text("follow-up"))).await;
    assert_disk_full("threads.add_user_message", &on_thread);
    let body = health_becomes(&server, 503).await;
    assert_eq!(body, json!({"status": "unhealthy", "detail": DISK_FULL}));
    // Reads still work while writes fail.
    assert_eq!(
        server.json(json!({"type": "items.list", "params": {"thread_id": thread}})).await["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    std::fs::remove_file(&filler).unwrap();
    health_becomes(&server, 200).await;
    let events = server.stream(add_message(&thread, &big_text("after recovery"))).await;
    assert_eq!(assistant_texts(&events), ["Saved and answered."], "{events:?}");
    let stored = server.json(json!({"type": "items.list", "params": {"thread_id": thread}})).await;
    assert_eq!(stored["data"].as_array().unwrap().len(), 4, "{stored}");
    assert!(!server.output().contains("panicked"), "{}", server.output());
}

#[tokio::test]
async fn a_read_only_location_stops_the_start_with_one_line_and_starts_once_writable() {
    let Some(fs) = Tmpfs::mount("readonly", "16m") else { return };
    let mock = echo_mock().await;
    let (db, base) = (fs.database_url(), mock.openai_base_url());
    let env = server_env(&db, &base);
    let mut first = fc::Bin::spawn(fs.dir.path(), &env);
    first.ready().await;
    let thread = thread_id_of(&first.stream(create("Written before the mount turned read-only.")).await);
    assert_eq!(first.terminate(), Some(0), "{}", first.output());

    fs.remount("ro");
    let mut refused = fc::Bin::spawn(fs.dir.path(), &env);
    let code = refused.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(1), "{}", refused.output());
    let stderr = refused.stderr();
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("chatkit.db")).collect();
    assert_eq!(lines.len(), 1, "one line names the database: {stderr}");
    assert!(lines[0].contains("read-only"), "{stderr}");

    fs.remount("rw");
    let mut second = fc::Bin::spawn(fs.dir.path(), &env);
    second.ready().await;
    assert_eq!(health(&second).await.0, 200);
    let events = second.stream(add_message(&thread, "Writable again?")).await;
    assert_eq!(assistant_texts(&events), ["Saved and answered."]);
}
