//! Per-user access across two `support` replicas on one PostgreSQL schema, end to end with real server
//! processes in `AUTH_MODE=jwt` (HS256 tokens minted by the tests, mock model on 127.0.0.1):
//!
//! * isolation: user B, through replica B, gets exactly the 404 of a missing object for every request
//!   naming user A's objects made through replica A; thread lists are disjoint on both replicas;
//! * the per-user limits hold for both replicas together: stream slots, turns per minute and stored
//!   attachment bytes are counted in the database; another user is unaffected; slots free when the
//!   responses end, and the slots of a replica killed mid-response free themselves when their leases
//!   expire (the test moves the expiry instead of waiting the minute).
//!
//! Without PostgreSQL the tests print `skipped: no PostgreSQL at …` and pass.

mod access_common;
mod common;
mod replicas_common;

use access_common::{
    Caller, SECRET, admitted_soon, assert_isolated, assert_too_many, claims, drain, hs256, new_attachment, open_stream,
    wait_for_model_requests,
};
use common::create;
use mock_llm::{Match, MockServer, Reply, Script};
use replicas_common::{Replica, Schema, WorkDir, start_replicas_with};
use serde_json::Value;

async fn mock(script: Script) -> MockServer {
    MockServer::start(script).await.unwrap()
}

/// A caller authenticated as `user` on `replica`.
fn user_on(replica: &Replica, user: &str) -> Caller {
    Caller::bearer(&replica.base, &hs256(&claims(user), SECRET.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_are_isolated_across_replicas() {
    let Some(schema) = Schema::create().await else { return };
    let dir = WorkDir::new();
    let mock = mock(Script::new()).await;
    let env = [("AUTH_MODE", "jwt"), ("AUTH_JWT_SECRET", SECRET)];
    let replicas = start_replicas_with(&["A", "B"], &schema, dir.path(), &mock, &env).await;
    let (a, b) = (&replicas[0], &replicas[1]);

    // A works through replica A, B through replica B.
    assert_isolated(&user_on(a, "alice"), &user_on(b, "bob"), &mock).await;
    // Each user sees the same threads through either replica, and only their own.
    let (alice_a, alice_b) = (user_on(a, "alice").thread_ids().await, user_on(b, "alice").thread_ids().await);
    let (bob_a, bob_b) = (user_on(a, "bob").thread_ids().await, user_on(b, "bob").thread_ids().await);
    assert_eq!(alice_a, alice_b);
    assert_eq!(bob_a, bob_b);
    assert_eq!((alice_a.len(), bob_a.len()), (1, 1));
    assert!(alice_a.iter().all(|t| !bob_a.contains(t)), "{alice_a:?} {bob_a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_limits_hold_across_replicas() {
    let Some(schema) = Schema::create().await else { return };
    let dir = WorkDir::new();
    let script = Script::new()
        .on(Match::user_text("hold"), Reply::stall("held answer", 1, 15_000))
        .default_reply(Reply::text("ok"));
    let mock = mock(script).await;
    let env = [
        ("AUTH_MODE", "jwt"),
        ("AUTH_JWT_SECRET", SECRET),
        ("MAX_STREAMS_PER_USER", "2"),
        ("TURNS_PER_MINUTE", "6"),
        ("MAX_ATTACHMENT_BYTES_PER_USER", "1000"),
    ];
    let replicas = start_replicas_with(&["A", "B"], &schema, dir.path(), &mock, &env).await;
    let (a, b) = (&replicas[0], &replicas[1]);

    // Streams: one response on each replica takes both of alice's slots; a third is refused on both.
    let held = vec![
        open_stream(&user_on(a, "alice"), &create("hold on A")).await,
        open_stream(&user_on(b, "alice"), &create("hold on B")).await,
    ];
    wait_for_model_requests(&mock, 2).await;
    for replica in [a, b] {
        assert_too_many(&user_on(replica, "alice").post(&create("third")).await, "MAX_STREAMS_PER_USER", 5..=5);
    }
    assert_eq!(mock.requests().len(), 2, "a refused stream reached the model");
    assert_eq!(user_on(a, "alice").thread_ids().await.len(), 2, "a refused stream stored its thread");
    assert_eq!(user_on(b, "bob").post(&create("hello")).await.status, 200);

    // Turns: six alternating between the replicas fit in the minute, the seventh does not, on either.
    for i in 0..6 {
        let replica = if i % 2 == 0 { a } else { b };
        let answer = user_on(replica, "carol").post(&create(&format!("turn {i}"))).await;
        assert_eq!(answer.status, 200, "turn {i}: {}", answer.body);
    }
    let model_requests = mock.requests().len();
    for replica in [a, b] {
        assert_too_many(&user_on(replica, "carol").post(&create("seventh")).await, "TURNS_PER_MINUTE", 1..=60);
    }
    assert_eq!(mock.requests().len(), model_requests, "a refused turn reached the model");
    assert_eq!(user_on(b, "carol").thread_ids().await.len(), 6);

    // Storage: what dave stored through A counts on B.
    let dave_a = user_on(a, "dave");
    let dave_b = user_on(b, "dave");
    let (_, first_url, _) = new_attachment(&dave_a, 600).await;
    assert_eq!(dave_a.upload(&first_url, vec![1; 600]).await.status, 200);
    let params = serde_json::json!({"name": "big.png", "size": 600, "mime_type": "image/png"});
    let refused = dave_b.post(&serde_json::json!({"type": "attachments.create", "params": params})).await;
    assert_eq!(refused.status, 413, "{}", refused.body);
    let (_, second_url, _) = new_attachment(&dave_b, 300).await;
    let refused = dave_b.upload(&second_url, vec![2; 600]).await;
    assert_eq!(refused.status, 413, "{}", refused.body);

    // The slots free when the responses end, for both replicas.
    futures::future::join_all(held.into_iter().map(drain)).await;
    for replica in [a, b] {
        admitted_soon(&user_on(replica, "alice"), &create("after the holds")).await;
    }
}

/// The stream leases of `user` as stored: lease id → expiry (µs since the epoch).
async fn leases(schema: &Schema, user: &str) -> serde_json::Map<String, Value> {
    let mut admin = schema.admin().await;
    let sql = format!("SELECT value FROM \"{}\".kv WHERE namespace = 'user_limits' AND key = $1", schema.name);
    let text: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(format!("streams:{user}"))
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    value["leases"].as_object().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slots_of_a_killed_replica_expire() {
    let Some(schema) = Schema::create().await else { return };
    let dir = WorkDir::new();
    let script = Script::new().on(Match::user_text("hold"), Reply::stall("held answer", 1, 30_000));
    let mock = mock(script).await;
    let env = [("AUTH_MODE", "jwt"), ("AUTH_JWT_SECRET", SECRET), ("MAX_STREAMS_PER_USER", "1")];
    let mut replicas = start_replicas_with(&["A", "B"], &schema, dir.path(), &mock, &env).await;

    let held = open_stream(&user_on(&replicas[0], "alice"), &create("hold on A")).await;
    replicas[0].kill();
    drop(held);
    let b = &replicas[1];
    // The killed replica could not give its slot back: it still counts, on every replica.
    assert_too_many(&user_on(b, "alice").post(&create("on B")).await, "MAX_STREAMS_PER_USER", 5..=5);
    let stored = leases(&schema, "alice").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    let now_ms = access_common::now() * 1000;
    let expiry = stored.values().next().unwrap().as_i64().unwrap() / 1000;
    assert!(expiry > now_ms && expiry <= now_ms + 61_000, "the lease expires at {expiry}, now is {now_ms}");

    // A minute later nobody renewed it: it is expired (moved into the past here instead of waiting).
    let mut admin = schema.admin().await;
    let expired = serde_json::json!({"leases": {stored.keys().next().unwrap(): now_ms * 1000 - 1}}).to_string();
    let sql = format!(
        "UPDATE \"{}\".kv SET value = $1, version = version + 1 WHERE namespace = 'user_limits' AND key = 'streams:alice'",
        schema.name
    );
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(expired).execute(&mut admin).await.unwrap();
    let answer = user_on(b, "alice").post(&create("on B again")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}
