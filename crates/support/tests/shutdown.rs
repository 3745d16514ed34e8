//! Graceful shutdown and readiness, end to end against the real `support` binary.
//!
//! * SIGTERM during 50 concurrent streams: the answers that fit the grace time end normally, the others
//!   are stopped with a retryable error event after their partial text; every acknowledged item (and
//!   every partial answer) is in the database after a restart, the SQLite WAL was checkpointed, and
//!   the process exits 0 within the grace time + 2 s.
//! * A second signal ends the process at once.
//! * `/support/ready`: 200 while serving, 503 `draining` for a request that arrives after the signal,
//!   503 `unavailable` while PostgreSQL cannot be reached (through a TCP relay the test stops), 200
//!   again once it can.

mod common;
mod faults_common;
mod replicas_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use faults_common as fc;
use mock_llm::{Match, Reply, Script};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The grace time of the shutdown tests.
const GRACE_SECS: u64 = 4;

/// Waits until the server logged that it is shutting down.
async fn wait_for_drain(server: &fc::Bin) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.stderr().contains("shutting down") {
        assert!(Instant::now() < deadline, "no shutdown log line\n{}", server.output());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What one client saw of its stream.
#[derive(Debug, Default)]
struct Seen {
    thread_id: Option<String>,
    done_items: Vec<Value>,
    /// The text deltas received, concatenated.
    text: String,
    last: Option<Value>,
    ended_cleanly: bool,
}

/// Reads a stream to its end, counting it in `answering` at its first text delta.
async fn watch(client: reqwest::Client, url: String, body: Value, answering: Arc<AtomicUsize>) -> Seen {
    let mut seen = Seen::default();
    let res = client.post(&url).json(&body).send().await.expect("the request was accepted");
    let mut reader = SseReader::new(res);
    while let Some(event) = reader.next().await {
        match event["type"].as_str().unwrap_or_default() {
            "thread.created" => seen.thread_id = event["thread"]["id"].as_str().map(str::to_string),
            "thread.item.done" => seen.done_items.push(event["item"].clone()),
            "thread.item.updated" if event["update"]["type"] == "assistant_message.content_part.text_delta" => {
                if seen.text.is_empty() {
                    answering.fetch_add(1, Ordering::SeqCst);
                }
                seen.text.push_str(event["update"]["delta"].as_str().unwrap_or_default());
            }
            _ => {}
        }
        seen.last = Some(event);
    }
    seen.ended_cleanly = !reader.broken;
    seen
}

/// Items whose stored JSON contains `needle`, read from the SQLite file of a stopped server.
fn stored_items_containing(file: &std::path::Path, needle: &str) -> usize {
    let conn = rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.query_row("SELECT count(*) FROM items WHERE instr(data, ?1) > 0", [needle], |r| r.get::<_, i64>(0)).unwrap()
        as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_50_streams_finishes_what_fits_and_stops_the_rest_cleanly() {
    let _heavy = fc::HEAVY.lock().await;
    let dir = TempDir::new("sigterm");
    // 40 ms per word: short answers (~1 s) fit the grace time, long ones (~16 s) do not.
    let long_answer = format!("Long answer: {}", "flight ".repeat(400)).trim().to_string();
    let mock =
        mock(Script::new().delta_delay_ms(40).on(Match::user_text("long"), Reply::text(long_answer.clone()))).await;
    let grace = GRACE_SECS.to_string();
    let mut server = fc::Bin::start(&dir, Some(&mock), &[("SHUTDOWN_GRACE_SECS", grace.as_str())]).await;
    let ready = server.client.get(server.url("/support/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap(), json!({"status": "ready"}));

    let url = server.url("/support/chatkit");
    let answering = Arc::new(AtomicUsize::new(0));
    let client = client();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let text = if i % 2 == 0 { format!("short {i} {}", "word ".repeat(15)) } else { format!("long {i}") };
            (i % 2 == 1, tokio::spawn(watch(client.clone(), url.clone(), create(text.trim()), answering.clone())))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while answering.load(Ordering::SeqCst) < 40 {
        assert!(
            Instant::now() < deadline,
            "streams did not start: {}\n{}",
            answering.load(Ordering::SeqCst),
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.signal("TERM");
    let signalled = Instant::now();
    // Nothing new is accepted once the server drains.
    wait_for_drain(&server).await;
    let refused = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(server.addr())).await.unwrap();
    assert!(refused.is_err(), "a new connection was accepted while draining");

    let code = server.wait_exit(Duration::from_secs(GRACE_SECS + 10));
    let took = signalled.elapsed();
    assert_eq!(code, Some(0), "{}", server.output());
    assert!(took < Duration::from_secs(GRACE_SECS + 2), "exit took {took:?}\n{}", server.output());
    let mut seen = Vec::new();
    for (long, task) in tasks {
        seen.push((long, tokio::time::timeout(Duration::from_secs(10), task).await.expect("client hung").unwrap()));
    }

    let stop_notice =
        json!({"type": "error", "code": "custom", "message": chatkit::SHUTDOWN_MESSAGE, "allow_retry": true});
    let mut stopped = 0;
    for (long, s) in &seen {
        assert!(s.ended_cleanly, "a stream was cut instead of ended: {s:?}");
        if *long {
            // Stopped after the grace time: partial text, then the retryable notice, no finished answer.
            assert_eq!(s.last.as_ref(), Some(&stop_notice), "{s:?}");
            assert!(!s.done_items.iter().any(|i| i["type"] == "assistant_message"), "{s:?}");
            assert!(long_answer.starts_with(&s.text), "{s:?}");
            stopped += 1;
        } else {
            // Fitted the grace time: a complete answer, its title, and no error.
            assert!(s.last.as_ref().is_some_and(|e| e["type"] == "thread.updated"), "{s:?}");
            let answers: Vec<&Value> = s.done_items.iter().filter(|i| i["type"] == "assistant_message").collect();
            assert_eq!(answers.len(), 1, "{s:?}");
            assert_eq!(answers[0]["content"][0]["text"], json!(s.text), "{s:?}");
        }
    }
    assert_eq!(stopped, 25);

    // Closed cleanly: the write-ahead log was moved into the database file.
    let wal = dir.path().join("chatkit.db-wal");
    assert!(std::fs::metadata(&wal).map(|m| m.len() == 0).unwrap_or(true), "WAL left behind at exit");
    assert!(!server.stderr().contains("SQLite WAL checkpoint at close"), "{}", server.output());
    // Every stopped turn left the hidden cancel marker, as a client leaving does.
    assert_eq!(stored_items_containing(&dir.db_file(), chatkit::CANCEL_MARKER), 25);

    let server = fc::Bin::start(&dir, Some(&mock), &[]).await;
    for (long, s) in &seen {
        let thread = s.thread_id.as_deref().expect("every stream acknowledged its thread");
        let items = server
            .json(json!({"type": "items.list", "params": {"thread_id": thread, "limit": 100, "order": "asc"}}))
            .await["data"]
            .as_array()
            .unwrap()
            .clone();
        for done in &s.done_items {
            assert_eq!(items.iter().find(|i| i["id"] == done["id"]), Some(done), "acknowledged item lost in {thread}");
        }
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(items[1]["type"], "assistant_message");
        let stored = items[1]["content"][0]["text"].as_str().unwrap();
        if *long {
            // The partial answer is kept: at least what the client saw.
            assert!(!s.text.is_empty() && stored.starts_with(&s.text), "{stored:?} vs {:?}", s.text);
            assert!(long_answer.starts_with(stored));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let dir = TempDir::new("sigterm2");
    let mock = mock(Script::new().on(Match::Any, Reply::stall("Holding the line", 1, 120_000))).await;
    let mut server = fc::Bin::start(&dir, Some(&mock), &[]).await;
    let answering = Arc::new(AtomicUsize::new(0));
    let stream = tokio::spawn(watch(client(), server.url("/support/chatkit"), create("hello"), answering.clone()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while answering.load(Ordering::SeqCst) < 1 {
        assert!(Instant::now() < deadline, "the stream did not start\n{}", server.output());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.signal("TERM");
    wait_for_drain(&server).await;
    // The default grace time is 30 s; the second signal does not wait for it.
    server.signal("INT");
    let second = Instant::now();
    assert_eq!(server.wait_exit(Duration::from_secs(5)), Some(1), "{}", server.output());
    assert!(second.elapsed() < Duration::from_secs(2), "{:?}", second.elapsed());
    assert!(server.stderr().contains("second shutdown signal"), "{}", server.output());
    let seen = tokio::time::timeout(Duration::from_secs(10), stream).await.unwrap().unwrap();
    assert!(!seen.ended_cleanly);
}

/// Sends `GET /support/ready` on an open connection whose request head was begun before the shutdown
/// signal, finishing the head now; returns the status and JSON body.
async fn finish_ready_request(mut conn: TcpStream) -> (u16, Value) {
    conn.write_all(b"Connection: close\r\n\r\n").await.unwrap();
    let (raw, closed) = fc::read_until_closed(&mut conn, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(closed, "the connection stayed open: {text}");
    let res = fc::parse_raw_response(&raw).unwrap_or_else(|| panic!("{text}"));
    (res.status, serde_json::from_slice(&res.body).unwrap_or_else(|_| panic!("{text}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_turns_503_at_the_shutdown_signal() {
    let dir = TempDir::new("ready-drain");
    let mock = mock(Script::new()).await;
    let mut server = fc::Bin::start(&dir, Some(&mock), &[]).await;
    let health = server.client.get(server.url("/support/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // A request already on its way when the signal arrives (its head half sent) is still answered.
    let mut conn = TcpStream::connect(server.addr()).await.unwrap();
    conn.write_all(format!("GET /support/ready HTTP/1.1\r\nHost: {}\r\n", server.addr()).as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal("TERM");
    wait_for_drain(&server).await;
    let (status, body) = finish_ready_request(conn).await;
    assert_eq!((status, body), (503, json!({"status": "draining", "detail": "the server is shutting down"})));
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0), "{}", server.output());
}

/// A TCP relay to PostgreSQL that the test can cut (every relayed connection closed, new ones refused)
/// and restore on the same port.
struct Relay {
    port: u16,
    target: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let relay = Relay { port, target, tasks: Arc::default() };
        relay.serve(listener);
        relay
    }

    fn serve(&self, listener: TcpListener) {
        let (target, tasks) = (self.target.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(pipe);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Closes the listener and every relayed connection.
    async fn cut(&self) {
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

/// Polls `/support/ready` until it answers `status` (or fails after 20 s); returns the body.
async fn ready_becomes(server: &replicas_common::Replica, status: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = server.client.get(server.url("/support/ready")).send().await.unwrap();
        if res.status() == status {
            return res.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "/support/ready stayed {}\n{}", res.status(), server.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_while_postgresql_cannot_be_reached() {
    let Some(schema) = replicas_common::Schema::create().await else { return };
    let mut url = url::Url::parse(&schema.database_url("ready")).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let relay = Relay::start(target).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(relay.port)).unwrap();
    let work = replicas_common::WorkDir::new();
    let mock = mock(Script::new()).await;
    let mut server = replicas_common::Replica::spawn("ready", work.path(), url.as_str(), &mock);
    server.ready().await;
    assert_eq!(ready_becomes(&server, 200).await, json!({"status": "ready"}));

    relay.cut().await;
    let body = ready_becomes(&server, 503).await;
    assert_eq!(body["status"], "unavailable", "{body}");
    let started = Instant::now();
    let res = server.client.get(server.url("/support/ready")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(4), "the probe waited {:?}", started.elapsed());
    // Liveness is a separate question: the process is alive, only its database is away.

    relay.restore().await;
    assert_eq!(ready_becomes(&server, 200).await, json!({"status": "ready"}));
}
