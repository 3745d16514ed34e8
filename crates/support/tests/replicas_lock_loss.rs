//! Two `support` replicas on one PostgreSQL schema, and what happens to a turn that another replica stops.
//!
//! * Both replicas lose their database sessions in the middle of a burst of turns on one thread (what a
//!   database restart or an operator's `pg_terminate_backend` does). The thread's advisory lock goes with
//!   its session, so another turn may take the thread while the first one is still running; that first
//!   turn's writes are then refused (fenced) and it stops with an error event. Checked: no request answers
//!   a 5xx, every stream that ends in an error says why in words, and the stored thread never interleaves
//!   two turns: every assistant message directly follows the user message it answers.
//! * One turn, deterministically: its lock session dies mid-answer, a message sent through the other
//!   replica is answered in full meanwhile, and the first turn then ends with an error event that says
//!   why, its unfinished answer unsaved, everything acknowledged kept, the thread usable.
//! * `threads.delete` through one replica stops the turn the other one runs on the thread at once (not
//!   when the model's answer would have ended), and nothing of the thread remains.
//!
//! Without PostgreSQL the tests print `skipped: no PostgreSQL at …` and pass.

mod common;
mod replicas_common;

use std::time::{Duration, Instant};

use common::{SseReader, add_message, create, thread_id_of};
use mock_llm::{Match, MockServer, Reply, Script};
use replicas_common::*;
use serde_json::{Value, json};

const TURNS: usize = 10;
const ROUNDS: usize = 3;

fn answer(q: &str) -> String {
    format!("Answer to {q}: one two three four five six seven eight nine ten")
}

/// Terminates every session of the replicas (pooled and lock sessions); returns how many.
async fn kill_sessions(schema: &Schema, replicas: &[&str]) -> i64 {
    let mut admin = schema.admin().await;
    let names: Vec<String> = replicas.iter().map(|r| format!("{}_{r}", schema.name)).collect();
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = ANY($1)) t",
    )
    .bind(&names)
    .fetch_one(&mut admin)
    .await
    .unwrap()
}

/// Asserts one answer of the burst: a stream, possibly ended by an error event with a message; or a 409
/// (busy past the lock wait, or fenced off before anything was stored). Never a 5xx.
fn check_answer(q: &str, answer: &Answer) {
    match answer {
        Answer::Stream(events) => {
            if let Some(error) = events.iter().find(|e| e["type"] == "error") {
                assert_eq!(error["code"], "custom", "{q}: a bare error event: {error}");
                assert!(!error["message"].as_str().unwrap_or_default().is_empty(), "{q}: {error}");
                assert_eq!(events.last(), Some(error), "{q}: events after the error: {events:?}");
            }
        }
        // 409 either because the thread stayed busy past the lock wait, or because the fence refused the
        // user message of a turn whose lock session was killed before its first write (nothing stored).
        Answer::Error(409, body) => {
            let detail = body["detail"].as_str().unwrap_or_default();
            assert!(detail.contains("busy") || detail.contains("connection was lost"), "{q}: {body}")
        }
        other => panic!("{q}: {other:?}"),
    }
}

/// The stored order: each assistant message directly follows the user message it answers (an answer
/// cut short keeps a prefix of its text), and no user message appears twice.
fn assert_not_interleaved(items: &[Value]) {
    let labels = labels(items);
    for (k, (kind, text)) in labels.iter().enumerate() {
        if kind != "assistant_message" {
            continue;
        }
        let before = k.checked_sub(1).map(|p| &labels[p]);
        let Some((prev_kind, question)) = before else { panic!("answer first: {labels:?}") };
        assert_eq!(prev_kind, "user_message", "answer {k} does not follow a user message: {labels:?}");
        let full = answer(question);
        assert!(
            full.starts_with(text.as_str()) && !text.is_empty(),
            "item {k} answers another turn than {question:?}: {text:?}\n{labels:?}"
        );
    }
    let mut asked: Vec<&str> = labels.iter().filter(|l| l.0 == "user_message").map(|l| l.1.as_str()).collect();
    let total = asked.len();
    asked.sort();
    asked.dedup();
    assert_eq!(asked.len(), total, "a user message was stored twice: {labels:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_stay_serialized_when_the_lock_sessions_are_killed_mid_turn() {
    let Some(schema) = Schema::create().await else { return };
    let dir = WorkDir::new();
    // 12 deltas 25 ms apart: a turn takes ~0.3 s, so the ten turns queue on the thread's lock.
    let script = Script::new()
        .default_reply(Reply::text("Answer to {user_text}: one two three four five six seven eight nine ten"))
        .delta_delay_ms(25);
    let mock: MockServer = MockServer::start(script).await.unwrap();
    let replicas = start_replicas(&["A", "B"], &schema, dir.path(), &mock).await;
    let thread = thread_id_of(&replicas[0].stream(create("start")).await);

    for round in 0..ROUNDS {
        let questions: Vec<String> = (0..TURNS).map(|k| format!("round {round} message {k}")).collect();
        let sends = questions.iter().enumerate().map(|(k, q)| {
            let replica = &replicas[k % 2];
            let body = add_message(&thread, q);
            async move { replica.send(&body).await }
        });
        let killer = async {
            // Mid-turn: the first turn is streaming, the others wait for the lock.
            tokio::time::sleep(Duration::from_millis(450)).await;
            let first = kill_sessions(&schema, &["A", "B"]).await;
            tokio::time::sleep(Duration::from_millis(700)).await;
            first + kill_sessions(&schema, &["A", "B"]).await
        };
        let (answers, killed) = tokio::join!(futures::future::join_all(sends), killer);
        assert!(killed >= 2, "round {round}: expected sessions to kill, killed {killed}");
        for (q, a) in questions.iter().zip(&answers) {
            check_answer(q, a);
        }
        let items = replicas[1].items(&thread).await;
        assert_not_interleaved(&items);
        assert_eq!(items, replicas[0].items(&thread).await);
    }

    // The thread is still usable on both replicas, in order.
    for (k, replica) in replicas.iter().enumerate() {
        let q = format!("after {k}");
        let events = replica.stream(add_message(&thread, &q)).await;
        assert_eq!(labels(&done_items(&events)), vec![user(&q), assistant(&answer(&q))]);
    }
    assert_not_interleaved(&replicas[0].items(&thread).await);
}

/// Terminates the lock sessions of one replica (the sessions whose last query asked for an advisory
/// lock); returns how many.
async fn kill_lock_sessions(schema: &Schema, replica: &str) -> i64 {
    let mut admin = schema.admin().await;
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND query LIKE '%advisory_lock%') t",
    )
    .bind(format!("{}_{replica}", schema.name))
    .fetch_one(&mut admin)
    .await
    .unwrap()
}

/// Reads `reader` until the answer's first text delta has arrived.
async fn until_first_delta(reader: &mut SseReader) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), reader.next()).await.unwrap().expect("stream ended");
        if event["type"] == "thread.item.updated"
            && event["update"]["type"] == "assistant_message.content_part.text_delta"
        {
            return;
        }
    }
}

/// The rest of a stream, every event within `within`.
async fn rest_of(reader: &mut SseReader, within: Duration) -> Vec<Value> {
    let mut events = Vec::new();
    while let Some(event) = tokio::time::timeout(within, reader.next()).await.expect("the stream did not end") {
        events.push(event);
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_that_lost_its_lock_ends_with_an_error_and_the_next_one_proceeds() {
    let Some(schema) = Schema::create().await else { return };
    let dir = WorkDir::new();
    // A's answer sends one delta, then waits 3 s: long enough for B's whole turn in between.
    let script = Script::new().on(Match::user_text("slow question"), Reply::stall("The slow answer goes on", 1, 3_000));
    let mock = MockServer::start(script).await.unwrap();
    let replicas = start_replicas(&["A", "B"], &schema, dir.path(), &mock).await;
    let (a, b) = (&replicas[0], &replicas[1]);
    let thread = thread_id_of(&a.stream(create("hello")).await);

    let mut slow = SseReader::new(a.post(&add_message(&thread, "slow question")).await);
    until_first_delta(&mut slow).await;
    assert!(kill_lock_sessions(&schema, "A").await >= 1, "A holds the thread's lock on a lock session");
    // A's lock is gone with its session: B takes the thread and answers in full while A's turn still runs.
    let events = b.stream(add_message(&thread, "quick question")).await;
    assert_eq!(labels(&done_items(&events)), vec![user("quick question"), assistant("Mock reply: quick question")]);

    // A's turn then tries to save its answer: refused, and the stream says why in words.
    let rest = rest_of(&mut slow, Duration::from_secs(20)).await;
    let error = rest.last().expect("A's stream ended without an event");
    assert_eq!(
        (&error["type"], &error["code"], &error["allow_retry"]),
        (&json!("error"), &json!("custom"), &json!(true))
    );
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("another response took over the thread"), "{error}");
    assert!(rest.iter().all(|e| e["type"] != "thread.item.done"), "{rest:?}");

    // Everything acknowledged stays, in order; the unfinished answer is not written between B's items.
    let stored = labels(&b.items(&thread).await);
    let expected = vec![
        user("hello"),
        assistant("Mock reply: hello"),
        user("slow question"),
        user("quick question"),
        assistant("Mock reply: quick question"),
    ];
    assert_eq!(stored, expected);
    // The thread goes on through either replica.
    let events = a.stream(add_message(&thread, "and now")).await;
    assert_eq!(labels(&done_items(&events)), vec![user("and now"), assistant("Mock reply: and now")]);
    assert_eq!(labels(&a.items(&thread).await).len(), expected.len() + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_thread_through_another_replica_stops_its_turn_at_once() {
    let Some(schema) = Schema::create().await else { return };
    let dir = WorkDir::new();
    // The model sends one delta of its answer, then stalls for a minute.
    let script =
        Script::new().on(Match::user_text("long story"), Reply::stall("Once upon a time there was", 1, 60_000));
    let mock = MockServer::start(script).await.unwrap();
    let replicas = start_replicas(&["A", "B"], &schema, dir.path(), &mock).await;
    let (a, b) = (&replicas[0], &replicas[1]);
    let thread = thread_id_of(&a.stream(create("hello")).await);

    let mut story = SseReader::new(a.post(&add_message(&thread, "long story")).await);
    until_first_delta(&mut story).await;
    let started = Instant::now();
    assert_eq!(b.json(json!({"type": "threads.delete", "params": {"thread_id": thread}})).await, json!({}));
    // A's stream ends promptly, not after the model's minute (nor at a next write that would come then),
    // and the stopped turn writes nothing more.
    let rest = rest_of(&mut story, Duration::from_secs(20)).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "A's turn ran on for {took:?} after its thread was deleted");
    assert!(rest.iter().all(|e| e["type"] != "thread.item.done"), "{rest:?}");

    // Nothing of the thread remains, seen from either replica and in the database.
    for replica in [a, b] {
        let answer = replica.send(&json!({"type": "threads.get_by_id", "params": {"thread_id": thread}})).await;
        assert!(matches!(answer, Answer::Error(404, _)), "replica {}: {answer:?}", replica.name);
        let list = replica.json(json!({"type": "threads.list", "params": {}})).await;
        assert!(list["data"].as_array().unwrap().iter().all(|t| t["id"] != thread.as_str()), "{list}");
    }
    let mut admin = schema.admin().await;
    for table in ["threads", "items"] {
        let column = if table == "threads" { "id" } else { "thread_id" };
        let sql = format!("SELECT COUNT(*) FROM \"{}\".{table} WHERE {column} = $1", schema.name);
        let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(&thread).fetch_one(&mut admin).await.unwrap();
        assert_eq!(left, 0, "rows of the deleted thread left in {table}");
    }
    // A's lock was released with its turn: A answers at once on a new thread.
    let events = a.stream(create("next")).await;
    assert_eq!(labels(&done_items(&events)), vec![user("next"), assistant("Mock reply: next")]);
}
