//! Two `support` replicas on one PostgreSQL schema lose their database sessions in the middle of a burst of
//! turns on one thread (what a database restart or an operator's `pg_terminate_backend` does). The
//! thread's advisory lock goes with its session, so another turn may take the thread while the first one
//! is still running; that first turn's writes are then refused (fenced) and it stops with an error event.
//!
//! Checked: no request answers a 5xx, every stream that ends in an error says why in words, and the stored
//! thread never interleaves two turns: every assistant message directly follows the user message it
//! answers. Without PostgreSQL the test prints `skipped: no PostgreSQL at …` and passes.

mod common;
mod replicas_common;

use std::time::Duration;

use common::{add_message, create, thread_id_of};
use mock_llm::{MockServer, Reply, Script};
use replicas_common::*;
use serde_json::Value;

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
