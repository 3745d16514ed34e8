//! Connection timeouts, end to end over TCP against the real `support` binary with short settings
//! (idle 2 s, header read 1 s, body read 1 s): a silent connection and a kept-alive one are closed once
//! idle, a request head or body that stops arriving is cut off within its bound (the body with a 408),
//! while a connection in steady use and a stream longer than every bound are left alone. A client that
//! stops reading a stream has its turn cancelled after `STREAM_STALL_TIMEOUT_SECS`, as if it had left.

mod common;
mod faults_common;

use std::time::{Duration, Instant};

use common::*;
use faults_common as fc;
use mock_llm::{MockServer, Script};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The settings under test, short so the test is quick; each bound is distinct so a close can be told
/// apart from the others by when it happens.
const SHORT_TIMEOUTS: [(&str, &str); 3] =
    [("IDLE_TIMEOUT_SECS", "2"), ("HEADER_READ_TIMEOUT_SECS", "1"), ("BODY_READ_TIMEOUT_SECS", "1")];

/// The real binary with [`SHORT_TIMEOUTS`], answering with `mock` when given.
async fn start(dir: &TempDir, mock: Option<&MockServer>) -> fc::Bin {
    start_with(dir, mock, &[]).await
}

/// [`start`] with `extra` settings on top.
async fn start_with(dir: &TempDir, mock: Option<&MockServer>, extra: &[(&str, &str)]) -> fc::Bin {
    let settings: Vec<(&str, &str)> = SHORT_TIMEOUTS.iter().chain(extra).copied().collect();
    fc::Bin::start(dir, mock, &settings).await
}

/// Reads until the server closes the connection (or 10 s pass); returns what arrived and when it closed,
/// measured from `since`.
async fn read_until_closed(stream: &mut TcpStream, since: Instant) -> (String, Duration) {
    let (seen, closed) = fc::read_until_closed(stream, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(closed, "the server kept the connection open for 10 s; received {text:?}");
    (text, since.elapsed())
}

/// Asserts that `elapsed` is `bound` give or take scheduling: not before it, and well before the next bound.
fn assert_closed_near(elapsed: Duration, bound: Duration, what: &str) {
    assert!(
        elapsed >= bound.saturating_sub(Duration::from_millis(100)) && elapsed < bound + Duration::from_millis(900),
        "{what}: closed after {elapsed:?}, expected about {bound:?}"
    );
}

/// One keep-alive `GET /support/health` on an open connection; returns the status line.
async fn health_on(stream: &mut TcpStream, addr: &str) -> String {
    let req = format!("GET /support/health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // The health answer is small and has a Content-Length: read until its body is complete.
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed mid-response: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse().ok())
                .expect("content-length");
            if body.len() >= length {
                return head.lines().next().unwrap_or_default().to_string();
            }
        }
    }
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let dir = TempDir::new("idle");
    let server = start(&dir, None).await;
    let addr = server.addr();

    // Accepted, never used.
    let opened = Instant::now();
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let (text, elapsed) = read_until_closed(&mut silent, opened).await;
    assert_eq!(text, "", "nothing is sent to a connection that asked nothing");
    assert_closed_near(elapsed, Duration::from_secs(2), "never-used connection");

    // Kept alive after a response: the idle clock starts when the response was written.
    let mut kept = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(health_on(&mut kept, &addr).await, "HTTP/1.1 200 OK");
    let answered = Instant::now();
    let (text, elapsed) = read_until_closed(&mut kept, answered).await;
    assert_eq!(text, "");
    assert_closed_near(elapsed, Duration::from_secs(2), "kept-alive connection");
    assert!(!server.stderr().contains("ERROR"), "{}", server.stderr());
}

#[tokio::test]
async fn connections_in_use_stay_open() {
    let dir = TempDir::new("busy");
    // Twelve words at 400 ms each: the stream lasts ~5 s, longer than every bound, with gaps of 400 ms.
    let mock = mock(Script::new().delta_delay_ms(400)).await;
    let server = start(&dir, Some(&mock)).await;
    let addr = server.addr();

    // Requests 1.5 s apart on one connection: each gap is shorter than the idle bound, their sum longer.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    for _ in 0..3 {
        assert_eq!(health_on(&mut stream, &addr).await, "HTTP/1.1 200 OK");
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    assert_eq!(health_on(&mut stream, &addr).await, "HTTP/1.1 200 OK");

    let started = Instant::now();
    let text = "one two three four five six seven eight nine ten";
    let events = server.stream(create(text)).await;
    assert!(started.elapsed() > Duration::from_secs(3), "the stream was too short to prove anything");
    assert_eq!(assistant_texts(&events), vec![format!("Mock reply: {text}")]);
    assert!(events.iter().all(|e: &Value| e["type"] != "error"), "{events:?}");
}

#[tokio::test]
async fn a_request_head_that_stops_arriving_is_cut_off() {
    let dir = TempDir::new("head");
    let server = start(&dir, None).await;
    let addr = server.addr();

    // Half a head, then silence.
    let mut half = TcpStream::connect(&addr).await.unwrap();
    let first_byte = Instant::now();
    half.write_all(format!("GET /support/health HTTP/1.1\r\nHost: {addr}\r\n").as_bytes()).await.unwrap();
    let (text, elapsed) = read_until_closed(&mut half, first_byte).await;
    assert_eq!(text, "", "no response to an incomplete head");
    assert_closed_near(elapsed, Duration::from_secs(1), "half-sent head");

    // A head trickling in one byte every 200 ms: the bound counts from the first byte, not between bytes.
    let mut trickle = TcpStream::connect(&addr).await.unwrap();
    let first_byte = Instant::now();
    let head = format!("GET /support/health HTTP/1.1\r\nHost: {addr}\r\nX-Slow: {}\r\n\r\n", "a".repeat(40));
    for byte in head.as_bytes() {
        if trickle.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if first_byte.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let (text, elapsed) = read_until_closed(&mut trickle, first_byte).await;
    assert_eq!(text, "");
    assert!(elapsed < Duration::from_secs(3), "a trickled head held the connection for {elapsed:?}");
}

#[tokio::test]
async fn a_request_body_that_stops_arriving_is_answered_408() {
    let dir = TempDir::new("body");
    let server = start(&dir, None).await;
    let addr = server.addr();

    // The upload needs a signed link: without one it is refused (403) before any body is read.
    let create = serde_json::json!({"type": "attachments.create", "params": {"name": "a.png", "size": 100, "mime_type": "image/png"}});
    let res = server.client.post(server.url("/support/chatkit")).json(&create).send().await.unwrap();
    let created: serde_json::Value = res.json().await.unwrap();
    let upload = created["upload_descriptor"]["url"].as_str().unwrap().replacen(&server.base, "", 1);
    for path in ["/support/chatkit", upload.as_str()] {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(br#"{"type":"threads.list","#).await.unwrap();
        let last_byte = Instant::now();
        let (text, elapsed) = read_until_closed(&mut stream, last_byte).await;
        assert!(text.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{path}: {text}");
        assert!(text.contains(r#"{"detail":"the request body stopped arriving"#), "{path}: {text}");
        assert_closed_near(elapsed, Duration::from_secs(1), path);
    }
    // The server is still fine.
    assert_eq!(server.client.get(server.url("/support/health")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_client_that_stops_reading_releases_the_thread() {
    let dir = TempDir::new("stall");
    // 8,000 deltas of 2 KiB, all ready at once: far more than the socket buffers and the event channel hold.
    let word = format!(" {}", "x".repeat(2047));
    let answer = format!("Start{}", word.repeat(8000));
    let mock = mock(Script::new().on(mock_llm::Match::user_text("flood"), mock_llm::Reply::text(answer.clone()))).await;
    let mut server = start_with(&dir, Some(&mock), &[("STREAM_STALL_TIMEOUT_SECS", "2")]).await;
    let first = server.stream(create("Hello")).await;
    let thread = thread_id_of(&first);

    let stalled_at = Instant::now();
    let (mut socket, _) =
        open_unread_stream(&server.addr(), &add_message(&thread, "Please flood me"), "text_delta").await;
    // The socket stays open and unread: only the stall bound can end the turn.
    let deadline = Instant::now() + Duration::from_secs(15);
    let items = loop {
        let page = server
            .json(
                serde_json::json!({"type": "items.list", "params": {"thread_id": thread, "order": "asc", "limit": 50}}),
            )
            .await;
        let items = page["data"].as_array().unwrap().clone();
        if items.len() == 4 {
            break items;
        }
        assert!(Instant::now() < deadline, "the stalled turn was not cancelled: {items:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let waited = stalled_at.elapsed();
    assert!(waited >= Duration::from_millis(1900), "cancelled after {waited:?}, before the bound");
    // The partial answer is kept, as on a disconnect.
    assert_eq!(fc::types(&items), strings(&["user_message", "assistant_message", "user_message", "assistant_message"]));
    let partial = items[3]["content"][0]["text"].as_str().unwrap();
    assert!(partial.starts_with("Start") && partial.len() < answer.len() / 4, "kept {} bytes", partial.len());

    // The thread is free again while the stalled socket is still open.
    let events = server.stream(add_message(&thread, "Shorter please")).await;
    assert_eq!(assistant_texts(&events), vec!["Mock reply: Shorter please".to_string()]);
    // The stalled client was disconnected: what reached its socket ends, nothing more is held for it.
    let (_, _) = read_until_closed(&mut socket, Instant::now()).await;
    assert!(!server.stderr().contains("ERROR"), "{}", server.stderr());
    assert_eq!(server.terminate(), Some(0));
}
