//! Per-user abuse limits, end to end over HTTP against the real `support` binary on SQLite (mock model on
//! 127.0.0.1), with HS256 tokens for two users and the default limits of `AUTH_MODE=jwt`:
//!
//! * the 5th concurrent stream and the 31st turn in a minute are 429 with `Retry-After`, the model gets
//!   no request for them and nothing is stored; another user is unaffected; a slot frees when a
//!   response ends;
//! * attachments declared, or uploaded, past `MAX_ATTACHMENT_BYTES_PER_USER` are 413 and store nothing;
//!   deleting attachments makes room (bytes are uploaded once);
//! * without authentication the limits are off unless set.
//!
//! The same limits across two PostgreSQL replicas are in `access_replicas.rs`.

mod access_common;
mod common;

use access_common::*;
use common::{TempDir, create, mock};
use mock_llm::{Match, Reply, Script};
use serde_json::json;

/// How long a "hold" answer keeps its stream open (the model stalls after one word).
const HOLD_MS: u64 = 20_000;

/// The mock: a message containing "hold" is answered slowly, anything else at once.
fn script() -> Script {
    Script::new().on(Match::user_text("hold"), Reply::stall("held answer", 1, HOLD_MS)).default_reply(Reply::text("ok"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fifth_stream_and_the_thirty_first_turn_are_refused_before_anything_happens() {
    let dir = TempDir::new("user-limits");
    let mock = mock(script()).await;
    let server = start_server(dir.path(), &mock, &[("AUTH_MODE", "jwt"), ("AUTH_JWT_SECRET", SECRET)]).await;
    let alice_token = hs256(&claims("alice"), SECRET.as_bytes());
    let alice = Caller::bearer(&server.base, &alice_token);
    let bob = Caller::bearer(&server.base, &hs256(&claims("bob"), SECRET.as_bytes()));

    // Four responses at once are fine.
    let mut held = Vec::new();
    for i in 0..4 {
        held.push(open_stream(&alice, &create(&format!("hold {i}"))).await);
    }
    wait_for_model_requests(&mock, 4).await;

    // The fifth is refused before its thread or message is stored and before the model is asked.
    let refused = alice.post(&create("one too many")).await;
    assert_too_many(&refused, "MAX_STREAMS_PER_USER", 5..=5);
    assert_eq!(mock.requests().len(), 4);
    assert_eq!(alice.thread_ids().await.len(), 4);
    // Requests that do not stream are not limited, and another user is not affected.
    let bob_events = bob.post(&create("hello")).await.events();
    assert!(bob_events.iter().any(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "assistant_message"));
    assert_eq!(bob.thread_ids().await.len(), 1);

    // A slot frees when a response ends.
    futures::future::join_all(held.into_iter().map(drain)).await;
    admitted_soon(&alice, &create("after the holds")).await;

    // 5 turns so far; 25 more fit in the minute, the 31st does not.
    for i in 0..25 {
        let answer = alice.post(&create(&format!("turn {i}"))).await;
        assert_eq!(answer.status, 200, "turn {}: {}", i + 6, answer.body);
    }
    let model_requests = mock.requests().len();
    assert_eq!(model_requests, 4 + 1 + 1 + 25);
    let refused = alice.post(&create("the 31st")).await;
    assert_too_many(&refused, "TURNS_PER_MINUTE", 1..=60);
    // Continuing an existing thread is a turn too.
    let thread = alice.thread_ids().await[0].clone();
    let add =
        json!({"type": "threads.add_user_message", "params": {"thread_id": thread, "input": common::message("more")}});
    assert_too_many(&alice.post(&add).await, "TURNS_PER_MINUTE", 1..=60);
    assert_eq!(mock.requests().len(), model_requests);
    assert_eq!(alice.thread_ids().await.len(), 30);
    let items = alice.ok(json!({"type": "items.list", "params": {"thread_id": thread, "limit": 50}})).await;
    assert!(!items.to_string().contains("\"more\""), "the refused message was stored: {items}");
    assert_eq!(bob.post(&create("still fine")).await.status, 200);

    // Each refusal is logged with its reason, without the token.
    let log = server.output();
    assert!(log.contains("request refused: per-user limit"), "{log}");
    assert!(log.contains("reason=\"streams\"") || log.contains("reason=streams"), "{log}");
    assert!(log.contains("reason=\"turns\"") || log.contains("reason=turns"), "{log}");
    assert!(!log.contains(&alice_token), "a token reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_past_the_storage_budget_are_413_and_store_nothing() {
    let dir = TempDir::new("user-limits-storage");
    let mock = mock(script()).await;
    let env = [("AUTH_MODE", "jwt"), ("AUTH_JWT_SECRET", SECRET), ("MAX_ATTACHMENT_BYTES_PER_USER", "1000")];
    let server = start_server(dir.path(), &mock, &env).await;
    let alice = Caller::bearer(&server.base, &hs256(&claims("alice"), SECRET.as_bytes()));
    let bob = Caller::bearer(&server.base, &hs256(&claims("bob"), SECRET.as_bytes()));

    let (first, first_url, _) = new_attachment(&alice, 600).await;
    assert_eq!(alice.upload(&first_url, vec![1; 600]).await.status, 200);
    // An attachment declared too large for the rest of the budget is refused before its bytes are sent.
    let params = json!({"name": "big.png", "size": 600, "mime_type": "image/png"});
    let refused = alice.post(&json!({"type": "attachments.create", "params": params})).await;
    assert_eq!(refused.status, 413, "{}", refused.body);
    let detail = refused.json()["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("MAX_ATTACHMENT_BYTES_PER_USER") && detail.contains("600 of 1000"), "{detail}");
    assert_eq!(refused.retry_after, None);
    // Bytes past the budget are refused even when the declared size fitted, and nothing is stored.
    let (_, second_url, second_preview) = new_attachment(&alice, 300).await;
    let refused = alice.upload(&second_url, vec![2; 600]).await;
    assert_eq!(refused.status, 413, "{}", refused.body);
    assert!(refused.json()["detail"].as_str().unwrap().contains("MAX_ATTACHMENT_BYTES_PER_USER"), "{}", refused.body);
    let content = alice.get(&second_preview).await;
    assert_eq!(content.status, 404, "{}", content.body);
    assert_eq!(content.json()["detail"], "Attachment has not been uploaded yet.");

    // Another user has a budget of their own.
    let (_, bob_url, _) = new_attachment(&bob, 900).await;
    assert_eq!(bob.upload(&bob_url, vec![3; 900]).await.status, 200);

    // An attachment's bytes are written once (a second upload is a 409). Two attachments that each fit
    // when declared: the first upload fills the budget, the second is 413 until a deletion makes room.
    assert_eq!(alice.upload(&first_url, vec![4; 600]).await.status, 409);
    let (_, third_url, _) = new_attachment(&alice, 400).await;
    let (_, fourth_url, _) = new_attachment(&alice, 400).await;
    assert_eq!(alice.upload(&third_url, vec![5; 400]).await.status, 200);
    assert_eq!(alice.upload(&fourth_url, vec![6; 400]).await.status, 413);
    alice.ok(json!({"type": "attachments.delete", "params": {"attachment_id": first}})).await;
    assert_eq!(alice.upload(&fourth_url, vec![6; 400]).await.status, 200);
    let log = server.output();
    assert!(log.contains("reason=\"storage\"") || log.contains("reason=storage"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_authentication_the_limits_apply_only_when_set() {
    let mock = mock(script()).await;
    // Defaults: the one anonymous owner is not limited (the quick start and the benchmark are unchanged).
    let dir = TempDir::new("user-limits-none");
    let server = start_server(dir.path(), &mock, &[]).await;
    let anyone = Caller::with_headers(&server.base, &[]);
    let mut held = Vec::new();
    for i in 0..5 {
        held.push(open_stream(&anyone, &create(&format!("hold {i}"))).await);
    }
    drop(held);
    drop(server);

    // Set explicitly, they hold for everyone together.
    let dir = TempDir::new("user-limits-none-set");
    let server = start_server(dir.path(), &mock, &[("MAX_STREAMS_PER_USER", "1"), ("TURNS_PER_MINUTE", "0")]).await;
    let anyone = Caller::with_headers(&server.base, &[]);
    let held = open_stream(&anyone, &create("hold")).await;
    assert_too_many(&anyone.post(&create("second")).await, "MAX_STREAMS_PER_USER", 5..=5);
    drop(held);
}
