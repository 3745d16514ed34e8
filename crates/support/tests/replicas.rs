//! Several `support` replicas on one PostgreSQL database, end to end: real server processes
//! (`CARGO_BIN_EXE_support`), each on its own port, sharing one fresh schema per test and the mock model.
//!
//! * a conversation alternating between two replicas (items, thread lists, airline state);
//! * two turns sent to the same thread on two replicas at the same moment do not interleave;
//! * a `flight.select` click delivered to both replicas books once;
//! * `kill -9` of a replica mid-stream loses nothing it acknowledged, and the other one carries on;
//! * a replica whose database sessions are killed recovers by itself;
//! * an unreachable database stops start-up with one clear line and no password.
//!
//! Every test starts its replicas at the same moment on an empty schema, so migrations under the
//! advisory lock are exercised each time. Without PostgreSQL the database tests print
//! `skipped: no PostgreSQL at …` and pass; the start-up test needs no database.

mod common;
mod replicas_common;

use std::time::{Duration, Instant};

use common::process::command;
use common::{SseReader, add_message, create, thread_id_of};
use mock_llm::{Match, MockServer, Reply, Script, ToolCallSpec};
use replicas_common::*;
use serde_json::{Value, json};

async fn mock(script: Script) -> MockServer {
    MockServer::start(script).await.unwrap()
}

const SEAT_REQUEST: &str = "Move me to seat 14C on flight OA476.";
const SEAT_DONE: &str = r#"Done: {"result":"Seat updated to 14C on flight OA476."}"#;

fn seat_rule() -> Reply {
    Reply::tool_call("change_seat", json!({"flight_number": "OA476", "seat": "14c"}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_alternates_between_replicas() {
    let Some(schema) = Schema::create().await else { return };
    let dir = WorkDir::new();
    let mock = mock(Script::new().on(Match::user_text("seat 14C"), seat_rule())).await;
    let replicas = start_replicas(&["A", "B"], &schema, dir.path(), &mock).await;
    let (a, b) = (&replicas[0], &replicas[1]);

    // Both replicas migrated the same empty schema at once: each migration is recorded once.
    let mut admin = schema.admin().await;
    let (rows, distinct): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*), COUNT(DISTINCT version) FROM \"{}\".chatkit_migrations",
        schema.name
    )))
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(rows >= 1 && rows == distinct, "{rows} rows for {distinct} versions");

    let first = a.stream(create("Hello from A")).await;
    let thread = thread_id_of(&first);
    let second = b.stream(add_message(&thread, "Hello from B")).await;
    let third = a.stream(add_message(&thread, SEAT_REQUEST)).await;
    let fourth = b.stream(add_message(&thread, "Thanks, B again")).await;

    let expected = vec![
        user("Hello from A"),
        assistant("Mock reply: Hello from A"),
        user("Hello from B"),
        assistant("Mock reply: Hello from B"),
        user(SEAT_REQUEST),
        assistant(SEAT_DONE),
        user("Thanks, B again"),
        assistant("Mock reply: Thanks, B again"),
    ];
    let acknowledged: Vec<Value> = [first, second, third, fourth].iter().flat_map(|s| done_items(s)).collect();
    assert_eq!(labels(&acknowledged), expected);
    // Each replica lists exactly what both acknowledged, in order.
    let on_a = a.items(&thread).await;
    assert_eq!(ids(&on_a), ids(&acknowledged));
    assert_eq!(labels(&on_a), expected);
    assert_eq!(b.items(&thread).await, on_a);

    let list = json!({"type": "threads.list", "params": {"limit": 20, "order": "desc"}});
    let threads_a = a.json(list.clone()).await;
    assert_eq!(threads_a["data"].as_array().unwrap().len(), 1, "{threads_a}");
    assert_eq!(threads_a["data"][0]["id"], thread.as_str());
    assert_eq!(threads_a["data"][0]["title"], "Hello from A");
    assert_eq!(b.json(list).await, threads_a);

    let got = b.json(json!({"type": "threads.get_by_id", "params": {"thread_id": thread}})).await;
    assert_eq!(got["id"], thread.as_str());
    assert_eq!(got["title"], "Hello from A");
    assert_eq!(got["items"]["data"].as_array().unwrap(), &on_a);

    // The tool ran on A; the side panel served by B shows the change.
    let on_b = b.customer(&thread).await;
    assert_eq!(on_b["segments"][0]["flight_number"], "OA476");
    assert_eq!(on_b["segments"][0]["seat"], "14C");
    assert_eq!(on_b["timeline"][0]["entry"], "Seat changed on OA476 from 14A to 14C.", "{on_b}");
    assert_eq!(a.customer(&thread).await, on_b);

    // The demo profile (no thread id) first read on both replicas at once is created once: every read
    // returns the same stored profile (same generated timestamps), whichever replica won the insert.
    let fresh = String::new();
    let reads = futures::future::join_all((0..8).map(|i| replicas[i % 2].customer(&fresh))).await;
    assert!(reads.iter().all(|p| p == &reads[0]), "{reads:?}");
    assert_eq!(b.customer(&fresh).await, reads[0]);

    // Attachments: created on A, uploaded to B, served by A, deleted on B.
    let att = a
        .json(json!({"type": "attachments.create", "params": {"name": "Paris.png", "size": 3000, "mime_type": "image/png"}}))
        .await;
    let id = att["id"].as_str().unwrap();
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let part = reqwest::multipart::Part::bytes(data.clone()).file_name("Paris.png").mime_str("image/png").unwrap();
    let form = reqwest::multipart::Form::new().part("file", part);
    // A's signed link works on B: the replicas share the signing key kept in the database.
    let upload_url = att["upload_descriptor"]["url"].as_str().unwrap().replace(&a.base, &b.base);
    let res = b.client.post(&upload_url).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let uploaded: Value = res.json().await.unwrap();
    let content_url = uploaded["preview_url"].as_str().unwrap().replace(&b.base, &a.base);
    let content = a.client.get(&content_url).send().await.unwrap();
    assert_eq!(content.status(), 200);
    assert_eq!(content.headers()["content-type"], "image/png");
    assert_eq!(content.bytes().await.unwrap().to_vec(), data);
    assert_eq!(b.json(json!({"type": "attachments.delete", "params": {"attachment_id": id}})).await, json!({}));
    let gone = a.client.get(&content_url).send().await.unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_turns_on_two_replicas_do_not_interleave() {
    let Some(schema) = Schema::create().await else { return };
    let dir = WorkDir::new();
    // Slow answers (12 deltas, 30 ms apart) so the two turns overlap.
    let script = Script::new()
        .default_reply(Reply::text("Answer to {user_text}: one two three four five six seven eight nine"))
        .delta_delay_ms(30);
    let mock = mock(script).await;
    let replicas = start_replicas(&["A", "B"], &schema, dir.path(), &mock).await;
    let (a, b) = (&replicas[0], &replicas[1]);
    let answer = |q: &str| format!("Answer to {q}: one two three four five six seven eight nine");

    let thread = thread_id_of(&a.stream(create("start")).await);
    for round in 0..2 {
        let (qa, qb) = (format!("alpha {round}"), format!("beta {round}"));
        let started = Instant::now();
        let (to_a, to_b) = (add_message(&thread, &qa), add_message(&thread, &qb));
        let (ra, rb) = tokio::join!(a.send(&to_a), b.send(&to_b));
        let mut answered = Vec::new();
        for (reply, q) in [(ra, &qa), (rb, &qb)] {
            match reply {
                Answer::Stream(events) => {
                    // Each stream holds its own message and its own answer, nothing of the other turn.
                    assert_eq!(labels(&done_items(&events)), vec![user(q), assistant(&answer(q))]);
                    answered.push(q.clone());
                }
                Answer::Error(409, body) => {
                    assert!(body["detail"].as_str().unwrap().contains("busy"), "{body}");
                }
                other => panic!("{q}: {other:?}"),
            }
        }
        // A 409 is the documented answer past the lock wait (30 s); with ~0.4 s turns the second
        // turn must wait for the first instead.
        assert_eq!(answered.len(), 2, "one turn was refused after {:?}", started.elapsed());
    }

    // Every user message is directly followed by its own answer, on both replicas.
    let items = b.items(&thread).await;
    assert_eq!(items, a.items(&thread).await);
    let labels = labels(&items);
    assert_eq!(labels.len(), 10, "{labels:?}");
    assert_eq!(labels[..2], [user("start"), assistant(&answer("start"))]);
    for pair in labels.chunks(2) {
        assert_eq!(pair[0].0, "user_message", "{labels:?}");
        assert_eq!(pair[1], assistant(&answer(&pair[0].1)), "{labels:?}");
    }
    let asked: Vec<&str> = labels.iter().filter(|l| l.0 == "user_message").map(|l| l.1.as_str()).collect();
    let mut sorted = asked.clone();
    sorted.sort();
    assert_eq!(sorted, ["alpha 0", "alpha 1", "beta 0", "beta 1", "start"]);
    // The model saw a serialized history: each turn's request ends with its own question and already
    // holds the complete answer of the turn before it (whichever replica ran it).
    let requests: Vec<String> =
        mock.requests().iter().filter(|r| r.path == "/v1/responses").map(|r| r.body["input"].to_string()).collect();
    assert_eq!(requests.len(), asked.len());
    for (k, input) in requests.iter().enumerate() {
        let own = input.rfind(&format!("\"{}\"", asked[k])).unwrap_or_else(|| panic!("{k}: {input}"));
        if k > 0 {
            let previous = input.find(&answer(asked[k - 1])).unwrap_or_else(|| panic!("{k}: {input}"));
            assert!(previous < own, "{input}");
        }
        if let Some(next) = asked.get(k + 1) {
            assert!(!input.contains(&format!("\"{next}\"")), "turn {k} saw a later question: {input}");
        }
    }
}

const BOOK_REQUEST: &str = "Book a trip to Paris, Nov 3 to Nov 10, business.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_select_on_both_replicas_books_once() {
    let Some(schema) = Schema::create().await else { return };
    let dir = WorkDir::new();
    let script = Script::new().on(
        Match::user_text("Book a trip to Paris"),
        Reply::tool_call(
            "flight_option_list",
            json!({"destination": "CDG", "depart_date": "2025-11-03", "return_date": "2025-11-10", "cabin": "business", "origin": null}),
        ),
    );
    let mock = mock(script).await;
    let replicas = start_replicas(&["A", "B"], &schema, dir.path(), &mock).await;
    let (a, b) = (&replicas[0], &replicas[1]);

    let events = a.stream(create(BOOK_REQUEST)).await;
    let thread = thread_id_of(&events);
    let widget = done_items(&events).into_iter().find(|i| i["type"] == "widget").expect("flight widget");
    let widget_id = widget["id"].as_str().unwrap().to_string();
    let click = widget["widget"]["children"][1]["onClickAction"].clone();
    assert_eq!(click["type"], "flight.select");
    assert_eq!(click["payload"]["id"], "flight-midday");
    let before = b.customer(&thread).await;
    let segments_before = before["segments"].as_array().unwrap().len();
    assert!(!before["segments"].as_array().unwrap().iter().any(|s| s["flight_number"] == "OA917"));

    // The same click reaches both replicas at once (a double click behind a load balancer).
    let request = action(&thread, &widget_id, click);
    let (ra, rb) = tokio::join!(a.send(&request), b.send(&request));
    let streams: Vec<Vec<Value>> = [ra, rb]
        .into_iter()
        .map(|r| match r {
            Answer::Stream(events) => events,
            other => panic!("{other:?}"),
        })
        .collect();
    let scheduled = |events: &Vec<Value>| {
        done_items(events)
            .iter()
            .filter(|i| label(i).1.starts_with("Scheduled: Business SFO → CDG on Mon, Nov 3 departing 12:35"))
            .count()
    };
    let counts: Vec<usize> = streams.iter().map(scheduled).collect();
    assert_eq!(counts.iter().sum::<usize>(), 1, "{streams:?}");
    // The refused click produced no item and no widget update, only the error that says why.
    let refused = &streams[counts.iter().position(|c| *c == 0).unwrap()];
    let types: Vec<&str> = refused.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["stream_options", "error"], "{refused:?}");
    assert_eq!(refused[1]["message"], support::actions::Rejection::AlreadyUsed.to_string());

    let after = a.customer(&thread).await;
    let segments = after["segments"].as_array().unwrap();
    assert_eq!(segments.len(), segments_before + 1, "{after}");
    assert_eq!(segments.iter().filter(|s| s["flight_number"] == "OA917").count(), 1, "{after}");
    assert_eq!(after["booked_widget_ids"], json!([widget_id]));
    assert_eq!(b.customer(&thread).await, after);

    let items = b.items(&thread).await;
    let count = |prefix: &str| items.iter().filter(|i| label(i).1.starts_with(prefix)).count();
    assert_eq!(count("Scheduled: "), 1);
    assert_eq!(count("Here are return options"), 1);
    assert_eq!(items.iter().filter(|i| i["type"] == "widget").count(), 2);
    // The stored outbound widget is the locked one (no option clickable any more).
    let stored = items.iter().find(|i| i["id"] == widget_id.as_str()).unwrap();
    assert!(!stored["widget"].to_string().contains("onClickAction"), "{stored}");
}

const LONG_ANSWER: &str = "Your seat is now 14C on flight OA476, a window seat on the left side of the cabin, \
                           close to the wing and two rows behind the exit, with the same meal service as before.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_replica_loses_nothing_it_acknowledged() {
    let Some(schema) = Schema::create().await else { return };
    let dir = WorkDir::new();
    let script = Script::new()
        .on(
            Match::user_text("seat 14C"),
            Reply::tool_calls(
                Some("Let me move you now.".into()),
                vec![ToolCallSpec::new("change_seat", json!({"flight_number": "OA476", "seat": "14c"}))],
            ),
        )
        .after_tool_reply(Reply::text(LONG_ANSWER))
        .delta_delay_ms(100);
    let mock = mock(script).await;
    let mut replicas = start_replicas(&["A", "B"], &schema, dir.path(), &mock).await;

    let res = replicas[0].post(&create(SEAT_REQUEST)).await;
    let mut reader = SseReader::new(res);
    let mut acknowledged = Vec::new();
    let mut thread = String::new();
    let mut deltas_of_last = 0;
    let mut messages = 0;
    while let Some(event) = reader.next().await {
        match event["type"].as_str().unwrap() {
            "thread.created" => thread = event["thread"]["id"].as_str().unwrap().to_string(),
            "thread.item.done" => acknowledged.push(event["item"].clone()),
            "thread.item.added" if event["item"]["type"] == "assistant_message" => messages += 1,
            "thread.item.updated"
                if messages == 2 && event["update"]["type"] == "assistant_message.content_part.text_delta" =>
            {
                deltas_of_last += 1;
            }
            _ => {}
        }
        if deltas_of_last == 2 {
            break;
        }
    }
    assert_eq!(deltas_of_last, 2, "the stream ended early: {acknowledged:?}");
    replicas[0].kill();
    // The client sees the stream break, not a clean end.
    while reader.next().await.is_some() {}
    assert!(reader.broken, "the stream of a killed replica must not end cleanly");
    assert_eq!(labels(&acknowledged), vec![user(SEAT_REQUEST), assistant("Let me move you now.")]);

    let b = &replicas[1];
    // Everything A acknowledged is there; the answer it was streaming was never acknowledged.
    assert_eq!(b.items(&thread).await, acknowledged);
    assert_eq!(b.customer(&thread).await["segments"][0]["seat"], "14C");

    // B serves the thread at once: A's thread lock died with its database sessions.
    let started = Instant::now();
    let events = b.stream(add_message(&thread, "Are you still there?")).await;
    assert!(started.elapsed() < Duration::from_secs(10), "waited {:?} for the thread", started.elapsed());
    let answered = done_items(&events);
    assert_eq!(labels(&answered), vec![user("Are you still there?"), assistant("Mock reply: Are you still there?")]);
    let all: Vec<Value> = acknowledged.iter().chain(&answered).cloned().collect();
    assert_eq!(b.items(&thread).await, all);
    // A died before titling the thread; B's turn titled it from the first message.
    assert_eq!(events.last().unwrap()["type"], "thread.updated");
    let got = b.json(json!({"type": "threads.get_by_id", "params": {"thread_id": thread}})).await;
    assert_eq!(got["title"], SEAT_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_recovers_after_its_database_sessions_are_killed() {
    let Some(schema) = Schema::create().await else { return };
    let dir = WorkDir::new();
    let mock = mock(Script::new()).await;
    let replicas = start_replicas(&["A"], &schema, dir.path(), &mock).await;
    let a = &replicas[0];
    let thread = thread_id_of(&a.stream(create("before")).await);
    a.stream(add_message(&thread, "warm the lock session")).await;

    // What a PostgreSQL restart does to the replica: every session it holds is terminated.
    let mut admin = schema.admin().await;
    let killed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) t",
    )
    .bind(format!("{}_A", schema.name))
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(killed >= 2, "expected pooled and lock sessions, killed {killed}");

    // No restart: reads, turns (thread lock) and airline state work again.
    let events = a.stream(add_message(&thread, "after")).await;
    assert_eq!(labels(&done_items(&events)), vec![user("after"), assistant("Mock reply: after")]);
    assert_eq!(a.items(&thread).await.len(), 6);
    assert_eq!(a.customer(&thread).await["segments"][0]["seat"], "14A");
}

#[test]
fn unreachable_database_stops_start_up_with_one_clear_line() {
    let dir = WorkDir::new();
    let env = [("PORT", "0"), ("DATABASE_URL", "postgres://app:hunter2@127.0.0.1:1/db")];
    let out = command(dir.path(), &env).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(stdout, "", "no banner");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with(
            "error: cannot open the database postgres://app:***@127.0.0.1:1/db: database error: \
             cannot connect to PostgreSQL at postgres://app@127.0.0.1:1/db: "
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
