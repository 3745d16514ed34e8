//! Fault tests, end to end over HTTP on 127.0.0.1.
//!
//! Model faults, against the production router in process with SQLite and the mock model: 429 with
//! `Retry-After` (retried, then answered; or persistent), 500, a stream cut mid-way, a stall past the
//! idle timeout and `response.failed`. Each failed turn ends with one exact `error` event, keeps the text
//! streamed so far, and leaves the thread usable (`threads.retry_after_item` and a new message answer
//! once, without duplicate items).
//!
//! Process faults, against the real `support` binary: `kill -9` during 50 concurrent streams (after a
//! restart on the same SQLite file every item a client saw as `thread.item.done` is stored, ids are
//! unique, listings are consistent and `PRAGMA integrity_check` is `ok`); 1,000 concurrent open streams
//! held without errors; and a client that stops reading does not grow the server's memory (the SSE
//! channel is bounded) and cancels its turn when it disconnects.

mod common;
mod faults_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use faults_common as fc;
use mock_llm::{Match, MockServer, Reply, Rule, Script};
use serde_json::{Value, json};
use support::config::Config;

/// `threads.retry_after_item`.
fn retry(thread_id: &str, item_id: &str) -> Value {
    json!({"type": "threads.retry_after_item", "params": {"thread_id": thread_id, "item_id": item_id}})
}

/// A server on a temp SQLite database with the mock model and the given retry count / idle timeout.
async fn fault_server(dir: &TempDir, mock: &MockServer, retries: u32, idle_secs: u64) -> TestServer {
    TestServer::start(Config {
        model_max_retries: retries,
        model_idle_timeout_secs: idle_secs,
        model_max_retry_wait_secs: 10,
        ..config(dir, Some(mock))
    })
    .await
}

/// The id of the `thread.item.done` user message of a stream.
fn user_item_id(events: &[Value]) -> String {
    events
        .iter()
        .find(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "user_message")
        .expect("user message done")["item"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// After a failed first turn on `thread` (user message `user_id`, whose text is `user_text`): retrying
/// that message answers it once (a partial answer is replaced, not duplicated), and a new message is
/// answered too.
async fn assert_thread_usable(server: &TestServer, mock: &MockServer, thread: &str, user_id: &str, user_text: &str) {
    mock.set_script(Script::new());
    let reply = format!("Mock reply: {user_text}");
    let events = server.stream(retry(thread, user_id)).await;
    assert_eq!(
        kinds(&events),
        concat(&[strings(&["stream_options"]), text_message_kinds(word_count(&reply))]),
        "{events:?}"
    );
    assert_eq!(assistant_texts(&events), vec![reply.clone()]);
    let items = server.items(thread).await;
    assert_eq!(fc::types(&items), strings(&["user_message", "assistant_message"]));
    assert_eq!(items[0]["id"], user_id);
    assert_eq!(items[1]["content"][0]["text"], reply.as_str());

    let events = server.stream(add_message(thread, "Are you back?")).await;
    assert_eq!(kinds(&events), next_turn_kinds(&[], "Mock reply: Are you back?"));
    assert_eq!(assistant_texts(&events), vec!["Mock reply: Are you back?".to_string()]);
    let after = server.items(thread).await;
    assert_eq!(&after[..2], &items[..], "earlier items unchanged");
    assert_eq!(fc::types(&after), strings(&["user_message", "assistant_message", "user_message", "assistant_message"]));
    fc::assert_unique_ids(&after);
}

/// Runs a first turn against a faulty mock and returns (events, thread id, user message id).
async fn failed_turn(server: &TestServer, text: &str) -> (Vec<Value>, String, String) {
    let events = server.stream(create(text)).await;
    let thread = thread_id_of(&events);
    let user_id = user_item_id(&events);
    (events, thread, user_id)
}

/// The last event, asserted to be an `error` with exactly these fields.
fn assert_error_event(events: &[Value], message: &str, allow_retry: bool) {
    let last = events.last().unwrap();
    assert_eq!(last, &json!({"type": "error", "code": "custom", "message": message, "allow_retry": allow_retry}));
    assert_eq!(events.iter().filter(|e| e["type"] == "error").count(), 1, "{events:?}");
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_retried_then_answered() {
    let dir = TempDir::new("f429ok");
    let mock = mock(Script::new().rule(Rule::new(Match::Any, Reply::http_error(429, Some(1))).times(1))).await;
    let server = fault_server(&dir, &mock, 2, 60).await;
    let started = Instant::now();
    let events = server.stream(create("Hello after a rate limit")).await;
    let elapsed = started.elapsed();
    let reply = "Mock reply: Hello after a rate limit";
    assert_eq!(kinds(&events), new_thread_kinds(&[], reply));
    assert_eq!(assistant_texts(&events), vec![reply.to_string()]);
    // The retry waited for `Retry-After: 1` (not the 250–500 ms backoff) and the model was asked twice.
    assert!(elapsed >= Duration::from_secs(1), "answered after {elapsed:?}");
    assert_eq!(model_requests(&mock).len(), 2);
    let items = server.items(&thread_id_of(&events)).await;
    assert_eq!(fc::types(&items), strings(&["user_message", "assistant_message"]));
}

#[tokio::test]
async fn persistent_rate_limit_ends_with_a_clear_error() {
    let dir = TempDir::new("f429");
    let mock = mock(Script::new().on(Match::Any, Reply::http_error(429, Some(1)))).await;
    let server = fault_server(&dir, &mock, 1, 60).await;
    let text = "Rate limited forever";
    let (events, thread, user_id) = failed_turn(&server, text).await;
    assert_eq!(kinds(&events), concat(&[create_prefix(), strings(&["thread.updated", "error:custom"])]));
    assert_error_event(
        &events,
        "The OpenAI model service is rate limiting requests (HTTP 429). Please try again.",
        true,
    );
    // One retry after `Retry-After`, then the error.
    assert_eq!(model_requests(&mock).len(), 2);
    let items = server.items(&thread).await;
    assert_eq!(fc::types(&items), strings(&["user_message"]));
    assert_thread_usable(&server, &mock, &thread, &user_id, text).await;
}

#[tokio::test]
async fn server_error_ends_with_a_clear_error() {
    let dir = TempDir::new("f500");
    let mock = mock(Script::new().on(Match::Any, Reply::http_error(500, None))).await;
    let server = fault_server(&dir, &mock, 0, 60).await;
    let text = "Internal trouble";
    let (events, thread, user_id) = failed_turn(&server, text).await;
    assert_eq!(kinds(&events), concat(&[create_prefix(), strings(&["thread.updated", "error:custom"])]));
    assert_error_event(&events, "The OpenAI model service failed to answer (HTTP 500). Please try again.", true);
    assert_eq!(model_requests(&mock).len(), 1);
    assert_eq!(fc::types(&server.items(&thread).await), strings(&["user_message"]));
    assert_thread_usable(&server, &mock, &thread, &user_id, text).await;
}

#[tokio::test]
async fn provider_error_body_stays_out_of_the_client_event() {
    let dir = TempDir::new("f400");
    let leaky = json!({"error": {
        "message": "proxy llm-gw.internal.corp:8443 refused: header X-Internal-Route=blue",
        "type": "invalid_request_error", "code": null, "param": null
    }});
    let reply = Reply::HttpError { status: 400, body: leaky, retry_after: None };
    let mock = mock(Script::new().on(Match::Any, reply)).await;
    let server = fault_server(&dir, &mock, 0, 60).await;
    let (events, _thread, _user_id) = failed_turn(&server, "Show me the provider").await;
    assert_error_event(&events, "The OpenAI model service rejected the request (HTTP 400).", false);
    let all = serde_json::to_string(&events).unwrap();
    assert!(!all.contains("internal.corp") && !all.contains("X-Internal-Route"), "{all}");
}

#[tokio::test]
async fn stream_cut_midway_keeps_the_partial_text() {
    let dir = TempDir::new("fcut");
    let answer = "Checking your booking details right now for you";
    let mock = mock(Script::new().on(Match::Any, Reply::cut_after(answer, 3))).await;
    // Retries are on: a cut after tokens were streamed must not be retried.
    let server = fault_server(&dir, &mock, 2, 60).await;
    let text = "Cut me off";
    let (events, thread, user_id) = failed_turn(&server, text).await;
    let mut expected = text_message_kinds(3);
    expected.extend(strings(&["thread.updated", "error:custom"]));
    assert_eq!(kinds(&events), concat(&[create_prefix(), expected]), "{events:?}");
    let partial = "Checking your booking";
    assert_eq!(assistant_texts(&events), vec![partial.to_string()]);
    assert_error_event(
        &events,
        "The answer was interrupted. The connection to the OpenAI model service broke off before the answer was \
         complete. Please try again.",
        true,
    );
    assert_eq!(model_requests(&mock).len(), 1, "a cut after the first token is not retried");
    let items = server.items(&thread).await;
    assert_eq!(fc::types(&items), strings(&["user_message", "assistant_message"]));
    assert_eq!(items[1]["content"][0]["text"], partial);
    let streamed = events.iter().rev().find(|e| e["type"] == "thread.item.done").unwrap();
    assert_eq!(items[1], streamed["item"], "the stored partial message is the one streamed");
    assert_thread_usable(&server, &mock, &thread, &user_id, text).await;
}

#[tokio::test]
async fn stall_past_the_idle_timeout_ends_with_a_clear_error() {
    let dir = TempDir::new("fstall");
    let mock = mock(Script::new().on(Match::Any, Reply::stall("Let me look that up for you", 2, 10_000))).await;
    let server = fault_server(&dir, &mock, 2, 1).await;
    let text = "Stall please";
    let started = Instant::now();
    let (events, thread, user_id) = failed_turn(&server, text).await;
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(8), "ended after {elapsed:?}");
    let mut expected = text_message_kinds(2);
    expected.extend(strings(&["thread.updated", "error:custom"]));
    assert_eq!(kinds(&events), concat(&[create_prefix(), expected]), "{events:?}");
    assert_error_event(
        &events,
        "The answer was interrupted. The OpenAI API stopped sending for 1s (stalled stream). Please try again.",
        true,
    );
    let items = server.items(&thread).await;
    assert_eq!(fc::types(&items), strings(&["user_message", "assistant_message"]));
    assert_eq!(items[1]["content"][0]["text"], "Let me");
    assert_eq!(model_requests(&mock).len(), 1);
    assert_thread_usable(&server, &mock, &thread, &user_id, text).await;
}

#[tokio::test]
async fn response_failed_ends_with_a_clear_error() {
    let dir = TempDir::new("ffailed");
    let mock = mock(Script::new().on(Match::Any, Reply::stream_error("The model is overloaded right now."))).await;
    let server = fault_server(&dir, &mock, 0, 60).await;
    let text = "Fail inside the stream";
    let (events, thread, user_id) = failed_turn(&server, text).await;
    assert_eq!(kinds(&events), concat(&[create_prefix(), strings(&["thread.updated", "error:custom"])]));
    assert_error_event(&events, "The OpenAI model failed to answer. Please try again.", true);
    assert_eq!(fc::types(&server.items(&thread).await), strings(&["user_message"]));
    assert_thread_usable(&server, &mock, &thread, &user_id, text).await;
}

#[tokio::test]
async fn response_failed_before_any_token_is_retried() {
    let dir = TempDir::new("ffailedretry");
    let mock =
        mock(Script::new().rule(Rule::new(Match::Any, Reply::stream_error("Temporarily overloaded.")).times(1))).await;
    let server = fault_server(&dir, &mock, 1, 60).await;
    let events = server.stream(create("Second time lucky")).await;
    assert_eq!(assistant_texts(&events), vec!["Mock reply: Second time lucky".to_string()]);
    assert!(events.iter().all(|e| e["type"] != "error"), "{events:?}");
    assert_eq!(model_requests(&mock).len(), 2);
}

// --- The real binary ------------------------------------------------------------------------------------

/// What one client saw of a stream cut short by `kill -9`.
#[derive(Debug, Default)]
struct Seen {
    thread_id: Option<String>,
    done_items: Vec<Value>,
    ended_cleanly: bool,
}

/// Reads a stream until it ends or breaks, recording the thread id and every `thread.item.done` item.
async fn watch(client: reqwest::Client, url: String, body: Value, started: Arc<AtomicUsize>) -> Seen {
    let mut seen = Seen::default();
    let Ok(res) = client.post(&url).json(&body).send().await else { return seen };
    let mut reader = SseReader::new(res);
    let mut counted = false;
    while let Some(event) = reader.next().await {
        match event["type"].as_str().unwrap_or_default() {
            "thread.created" => seen.thread_id = event["thread"]["id"].as_str().map(str::to_string),
            "thread.item.done" => seen.done_items.push(event["item"].clone()),
            "thread.item.updated" if !counted => {
                counted = true;
                started.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
    }
    seen.ended_cleanly = !reader.broken;
    seen
}

/// `PRAGMA integrity_check` and the number of rows `PRAGMA foreign_key_check` reports, on the SQLite file.
fn sqlite_checks(file: &std::path::Path) -> (String, usize) {
    let conn = rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
    let mut fk = conn.prepare("PRAGMA foreign_key_check").unwrap();
    let violations = fk.query_map([], |_| Ok(())).unwrap().count();
    (integrity, violations)
}

/// Every page of `threads.list` (or `items.list` when `thread` is given) in `order`, `limit` per page.
async fn all_pages(server: &fc::Bin, thread: Option<&str>, order: &str, limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let body = match thread {
            Some(t) => {
                json!({"type": "items.list", "params": {"thread_id": t, "limit": limit, "order": order, "after": after}})
            }
            None => json!({"type": "threads.list", "params": {"limit": limit, "order": order, "after": after}}),
        };
        let page = server.json(body).await;
        let data = page["data"].as_array().unwrap().clone();
        out.extend(data.iter().cloned());
        if page["has_more"] != true {
            return out;
        }
        after = Some(data.last().unwrap()["id"].as_str().unwrap().to_string());
        assert!(out.len() < 10_000, "pagination does not end");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_50_streams_keeps_every_acknowledged_item() {
    let _heavy = fc::HEAVY.lock().await;
    let dir = TempDir::new("kill");
    // Answers of 3 to 32 words at 40 ms per delta: when the server dies some turns are complete, some are
    // mid-stream, and some have not started answering.
    let mock = mock(Script::new().delta_delay_ms(40)).await;
    let mut server = fc::Bin::start(&dir, Some(&mock), &[]).await;
    let url = server.url("/support/chatkit");
    let started = Arc::new(AtomicUsize::new(0));
    let client = client();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let text = format!("stream {i} {}", "word ".repeat(i % 30)).trim().to_string();
            tokio::spawn(watch(client.clone(), url.clone(), create(&text), started.clone()))
        })
        .collect();
    // Kill once most streams are answering.
    let deadline = Instant::now() + Duration::from_secs(20);
    while started.load(Ordering::SeqCst) < 40 {
        assert!(
            Instant::now() < deadline,
            "streams did not start: {}\n{}",
            started.load(Ordering::SeqCst),
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(tokio::time::timeout(Duration::from_secs(20), t).await.expect("client hung after kill").unwrap());
    }
    let cut = seen.iter().filter(|s| !s.ended_cleanly).count();
    let complete = seen.iter().filter(|s| s.done_items.iter().any(|i| i["type"] == "assistant_message")).count();
    eprintln!("kill -9: {complete} answers complete, {cut} streams cut by the kill");
    assert!(cut > 0, "the kill came after every stream ended; nothing was tested");

    let mut server = fc::Bin::start(&dir, Some(&mock), &[]).await;
    let threads = all_pages(&server, None, "asc", 7).await;
    let thread_ids = fc::ids(&threads);
    let mut sorted = thread_ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), thread_ids.len(), "duplicate threads in threads.list");
    let mut desc = all_pages(&server, None, "desc", 100).await;
    desc.reverse();
    assert_eq!(desc, threads, "threads.list desc is asc reversed");
    let mut all_items: Vec<Value> = Vec::new();
    let mut acked = 0;
    for s in &seen {
        let Some(thread) = &s.thread_id else { continue };
        assert!(thread_ids.contains(thread), "acknowledged thread {thread} is missing");
        let items = all_pages(&server, Some(thread), "asc", 100).await;
        let mut desc = all_pages(&server, Some(thread), "desc", 3).await;
        desc.reverse();
        assert_eq!(desc, items, "items.list desc (paged) is asc reversed");
        for done in &s.done_items {
            acked += 1;
            let stored = items.iter().find(|i| i["id"] == done["id"]);
            assert_eq!(stored, Some(done), "acknowledged item missing or changed in {thread}");
        }
        assert_eq!(items[0]["type"], "user_message", "{items:?}");
        all_items.extend(items);
    }
    assert!(acked >= 50, "every stream acknowledged at least its user message ({acked})");
    fc::assert_unique_ids(&all_items);
    // The threads of killed turns are not left locked: a new message is answered.
    let cut_thread = seen.iter().find(|s| !s.ended_cleanly && s.thread_id.is_some()).unwrap();
    let thread = cut_thread.thread_id.as_deref().unwrap();
    mock.set_script(Script::new());
    let events = server.stream(add_message(thread, "Still there?")).await;
    assert_eq!(assistant_texts(&events), vec!["Mock reply: Still there?".to_string()]);
    assert_eq!(server.terminate(), Some(0));
    let (integrity, fk_violations) = sqlite_checks(&dir.db_file());
    assert_eq!(integrity, "ok");
    assert_eq!(fk_violations, 0);
}

/// Streams held open at once by [`thousand_concurrent_streams_are_held_without_errors`].
const OPEN_STREAMS: usize = 1000;

/// How long all the streams are held open together before the clients leave.
const HOLD: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_streams_are_held_without_errors() {
    let _heavy = fc::HEAVY.lock().await;
    // Per stream: the client socket and the mock's socket here, the server's two in its process (which
    // inherits this limit); keep room for everything else.
    let limit = fc::nofile_soft_limit().unwrap_or(1024);
    let n = OPEN_STREAMS.min((limit.saturating_sub(256) / 2) as usize);
    if n < OPEN_STREAMS {
        eprintln!("note: RLIMIT_NOFILE soft limit is {limit}; holding {n} streams instead of {OPEN_STREAMS}");
    }
    assert!(n >= 100, "RLIMIT_NOFILE soft limit {limit} is too low for this test");
    let dir = TempDir::new("thousand");
    // One delta, then silence far longer than the test: every stream stays open until its client leaves,
    // however long opening all of them takes on a busy machine.
    let mock = mock(Script::new().on(Match::Any, Reply::stall("Holding the line for you", 1, 120_000))).await;
    mock.set_record_cap(0);
    let mut server =
        fc::Bin::start(&dir, Some(&mock), &[("MODEL_IDLE_TIMEOUT_SECS", "300"), ("RUST_LOG", "warn")]).await;
    let url = server.url("/support/chatkit");
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(120)).build().unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let (leave, leave_rx) = tokio::sync::watch::channel(false);
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (client, url, open, mut leave_rx) = (client.clone(), url.clone(), open.clone(), leave_rx.clone());
            tokio::spawn(async move {
                let res = client.post(&url).json(&create(&format!("hold {i}"))).send().await.unwrap();
                let mut reader = SseReader::new(res);
                let mut events = Vec::new();
                while let Some(event) = reader.next().await {
                    let delta = event["update"]["type"] == "assistant_message.content_part.text_delta";
                    events.push(event);
                    if delta {
                        open.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                }
                // Held: nothing more may arrive (no error, no end) until the client leaves.
                let ended_early = tokio::select! {
                    next = reader.next() => { events.extend(next); true }
                    _ = leave_rx.wait_for(|l| *l) => false,
                };
                let thread = thread_id_of(&events);
                (events, ended_early, reader.broken, thread)
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut peak_rss = 0;
    while open.load(Ordering::SeqCst) < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} streams opened\n{}",
            open.load(Ordering::SeqCst),
            server.stderr()
        );
        peak_rss = peak_rss.max(server.rss_kib());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_open_after = t0.elapsed();
    tokio::time::sleep(HOLD).await;
    // While they are all held, the server answers other requests.
    let health: Value = server.client.get(server.url("/support/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health, json!({"status": "healthy"}));
    let listed = server.json(json!({"type": "threads.list", "params": {"limit": 1}})).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    peak_rss = peak_rss.max(server.rss_kib());
    leave.send(true).unwrap();
    let mut threads = Vec::new();
    for t in tasks {
        let (events, ended_early, broken, thread) = t.await.unwrap();
        assert!(!ended_early && !broken, "a held stream ended or broke: {events:?}");
        assert!(events.iter().all(|e| e["type"] != "error"), "{events:?}");
        assert_eq!(
            kinds(&events),
            concat(&[create_prefix(), text_message_kinds(1)[..3].to_vec()]),
            "each stream got its user message, stream options and first delta"
        );
        threads.push(thread);
    }
    eprintln!("{n} streams: all open after {all_open_after:?}, held {HOLD:?}, server peak RSS {} MiB", peak_rss / 1024);
    // The clients left: every turn is cancelled and keeps its first delta as a partial answer.
    let deadline = Instant::now() + Duration::from_secs(60);
    for thread in threads.iter().step_by(50) {
        loop {
            let items =
                server.json(json!({"type": "items.list", "params": {"thread_id": thread, "order": "asc"}})).await;
            let items = items["data"].as_array().unwrap().clone();
            if items.len() == 2 {
                assert_eq!(fc::types(&items), strings(&["user_message", "assistant_message"]));
                assert_eq!(items[1]["content"][0]["text"], "Holding");
                break;
            }
            assert!(Instant::now() < deadline, "turn of {thread} not cancelled: {items:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(!server.stderr().contains("ERROR"), "{}", server.stderr());
    assert_eq!(server.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_does_not_grow_server_memory() {
    let _heavy = fc::HEAVY.lock().await;
    let dir = TempDir::new("slow");
    // 8,000 deltas of 2 KiB (16 MiB of answer text, ~17 MiB of SSE frames), all ready at once (no delay).
    let word = format!(" {}", "x".repeat(2047));
    let answer = format!("Start{}", word.repeat(8000));
    let mock = mock(Script::new().on(Match::user_text("flood"), Reply::text(answer.clone()))).await;
    let mut server = fc::Bin::start(&dir, Some(&mock), &[]).await;
    // Warm up (allocator, pools, a first turn), then take the baseline.
    for i in 0..3 {
        let events = server.stream(create(&format!("warm up {i}"))).await;
        assert_eq!(assistant_texts(&events), vec![format!("Mock reply: warm up {i}")]);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline = server.rss_kib();

    let (socket, head) =
        open_unread_stream(&server.addr(), &create("Please flood me"), "content_part.text_delta").await;
    let thread = head.split("\"thread\":{\"id\":\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    // The producer fills the bounded channel and the socket buffers, then waits: memory stays flat and the
    // turn does not finish although the mock sent everything at once.
    let mut peak = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(server.rss_kib());
    }
    let items = server.json(json!({"type": "items.list", "params": {"thread_id": thread, "order": "asc"}})).await;
    assert_eq!(fc::types(items["data"].as_array().unwrap()), strings(&["user_message"]), "the turn ran ahead");
    let growth_kib = peak.saturating_sub(baseline);
    eprintln!("slow reader: baseline RSS {baseline} KiB, peak while blocked {peak} KiB (+{growth_kib} KiB)");
    // Unbounded buffering would hold the ~17 MiB of frames plus the 16 MiB text. Bounded, the server keeps
    // the 64-frame channel and the text sent so far (what the kernel's socket buffers took, a few MiB):
    // measured +7.5 MiB in a debug build (+13 MiB with mimalloc, which keeps freed pages), the same for 8, 24
    // and 48 MiB answers; unbounded buffering would exceed 33 MiB.
    assert!(growth_kib < 24 * 1024, "server RSS grew by {growth_kib} KiB while the client did not read");

    // Disconnecting cancels the turn: the partial answer is saved and the thread is free again.
    drop(socket);
    let deadline = Instant::now() + Duration::from_secs(20);
    let items = loop {
        let items = server.json(json!({"type": "items.list", "params": {"thread_id": thread, "order": "asc"}})).await;
        let items = items["data"].as_array().unwrap().clone();
        if items.len() > 1 {
            break items;
        }
        assert!(Instant::now() < deadline, "the turn was not cancelled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(fc::types(&items), strings(&["user_message", "assistant_message"]));
    let partial = items[1]["content"][0]["text"].as_str().unwrap();
    assert!(partial.starts_with("Start") && partial.len() < answer.len() / 4, "kept {} bytes", partial.len());
    assert!(answer.starts_with(partial));
    mock.set_script(Script::new());
    let events = server.stream(add_message(&thread, "Shorter please")).await;
    assert_eq!(assistant_texts(&events), vec!["Mock reply: Shorter please".to_string()]);
    assert_eq!(server.terminate(), Some(0));
}
