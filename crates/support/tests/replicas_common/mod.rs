//! Helpers of the replica tests: a PostgreSQL schema per test (created empty, dropped on drop, even
//! after a failed assertion), real `support` processes sharing it, a small ChatKit HTTP client, and item
//! helpers. The process, SSE and request helpers are those of `common` (include it next to this one).
//!
//! The schema is selected through the database URL alone (`?options=-c search_path=<schema>`), the
//! way an operator would point several replicas at a non-default schema.

#![allow(dead_code)]

use std::io::Write;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use mock_llm::MockServer;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::common::parse_sse;
use crate::common::process::{ServerProcess, command};

/// PostgreSQL used when `CHATKIT_TEST_POSTGRES_URL` is not set.
pub(crate) const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL URL of the tests (shared with the store conformance suite).
pub(crate) fn pg_url() -> String {
    std::env::var("CHATKIT_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_PG.to_string())
}

/// `Some(url)` when PostgreSQL accepts TCP connections; otherwise prints the skip line once.
pub(crate) async fn pg_available() -> Option<String> {
    static PRINTED: OnceLock<()> = OnceLock::new();
    let url = pg_url();
    let opts = PgConnectOptions::from_str(&url).expect("CHATKIT_TEST_POSTGRES_URL is not a PostgreSQL URL");
    let addr = format!("{}:{}", opts.get_host(), opts.get_port());
    let probe = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(&addr)).await;
    if matches!(probe, Ok(Ok(_))) {
        return Some(url);
    }
    PRINTED.get_or_init(|| {
        // The real stderr, not the captured test output: a skip is never silent.
        let _ = writeln!(std::io::stderr(), "skipped: no PostgreSQL at {addr}");
    });
    None
}

/// A fresh, empty PostgreSQL schema, dropped (with everything in it) when this value drops.
pub(crate) struct Schema {
    url: String,
    /// The schema name (`ck_replicas_<12 hex>`).
    pub(crate) name: String,
}

impl Schema {
    /// Creates the schema; `None` (after the skip line) when PostgreSQL does not answer.
    pub(crate) async fn create() -> Option<Schema> {
        let url = pg_available().await?;
        let name = format!("ck_replicas_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let mut conn = PgConnection::connect(&url).await.expect("connect to PostgreSQL");
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{name}\""))).execute(&mut conn).await.unwrap();
        let _ = conn.close().await;
        Some(Schema { url, name })
    }

    /// The `DATABASE_URL` of a replica: the schema as `search_path`, `app` as `application_name`.
    pub(crate) fn database_url(&self, app: &str) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-c%20search_path%3D{}&application_name={app}", self.url, self.name)
    }

    /// An administrative connection (no search path: qualify names with [`Schema::name`]).
    pub(crate) async fn admin(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.expect("connect to PostgreSQL")
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Own thread and runtime: works from inside the test's runtime, and during a panic.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&url).await {
                    let sql = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
                    let _ = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// An empty working folder for the processes (so no `.env` is picked up), removed on drop.
pub(crate) struct WorkDir(PathBuf);

impl WorkDir {
    /// A fresh folder under the system temp dir.
    pub(crate) fn new() -> WorkDir {
        let path = std::env::temp_dir().join(format!("support-replicas-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        WorkDir(path)
    }

    /// The folder.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `support` process (SIGKILLed on drop). The process helpers (`ready`, `url`, `post`, `output`,
/// `kill`) are those of [`ServerProcess`].
pub(crate) struct Replica {
    /// Label used in failure messages (`A`, `B`).
    pub(crate) name: String,
    process: ServerProcess,
}

impl Replica {
    /// Spawns a replica on `database_url` answering with the mock model, on a port the OS picks.
    pub(crate) fn spawn(name: &str, cwd: &Path, database_url: &str, mock: &MockServer) -> Replica {
        Replica::spawn_with(name, cwd, database_url, mock, &[])
    }

    /// [`Replica::spawn`] with more settings (`extra`) on top.
    pub(crate) fn spawn_with(
        name: &str,
        cwd: &Path,
        database_url: &str,
        mock: &MockServer,
        extra: &[(&str, &str)],
    ) -> Replica {
        let base_url = mock.openai_base_url();
        let mut env = vec![
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            ("DATABASE_URL", database_url),
            ("DATABASE_POOL_SIZE", "4"),
            ("OPENAI_API_KEY", "test-key"),
            ("OPENAI_BASE_URL", base_url.as_str()),
            ("MODEL_MAX_RETRIES", "0"),
        ];
        env.extend_from_slice(extra);
        let process = ServerProcess::spawn(&format!("replica {name}"), command(cwd, &env));
        Replica { name: name.to_string(), process }
    }

    /// Sends a request and reads the whole answer.
    pub(crate) async fn send(&self, body: &Value) -> Answer {
        let res = self.post(body).await;
        let status = res.status().as_u16();
        let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let text = res.text().await.unwrap();
        match (status, ct.as_str()) {
            (200, "text/event-stream; charset=utf-8") => Answer::Stream(parse_sse(&text)),
            (200, _) => Answer::Json(serde_json::from_str(&text).unwrap()),
            _ => Answer::Error(status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))),
        }
    }

    /// A streaming request that must answer 200 SSE; returns the events.
    pub(crate) async fn stream(&self, body: Value) -> Vec<Value> {
        match self.send(&body).await {
            Answer::Stream(events) => events,
            other => panic!("replica {}: {body} → {other:?}\n{}", self.name, self.output()),
        }
    }

    /// A non-streaming request that must answer 200 JSON.
    pub(crate) async fn json(&self, body: Value) -> Value {
        match self.send(&body).await {
            Answer::Json(v) => v,
            other => panic!("replica {}: {body} → {other:?}\n{}", self.name, self.output()),
        }
    }

    /// `items.list` ascending (up to 100 items).
    pub(crate) async fn items(&self, thread_id: &str) -> Vec<Value> {
        let page = self
            .json(json!({"type": "items.list", "params": {"thread_id": thread_id, "limit": 100, "order": "asc"}}))
            .await;
        assert_eq!(page["has_more"], false, "{page}");
        page["data"].as_array().unwrap().clone()
    }

    /// `GET /support/customer?thread_id=…` → the profile.
    pub(crate) async fn customer(&self, thread_id: &str) -> Value {
        let res =
            self.client.get(self.url("/support/customer")).query(&[("thread_id", thread_id)]).send().await.unwrap();
        assert_eq!(res.status(), 200, "replica {}", self.name);
        let body: Value = res.json().await.unwrap();
        body["customer"].clone()
    }
}

impl Deref for Replica {
    type Target = ServerProcess;

    fn deref(&self) -> &ServerProcess {
        &self.process
    }
}

impl DerefMut for Replica {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}

/// Spawns one replica per name on the schema, all at once (they migrate concurrently), and waits
/// until every one is serving.
pub(crate) async fn start_replicas(names: &[&str], schema: &Schema, cwd: &Path, mock: &MockServer) -> Vec<Replica> {
    start_replicas_with(names, schema, cwd, mock, &[]).await
}

/// [`start_replicas`] with more settings (`extra`) for every replica.
pub(crate) async fn start_replicas_with(
    names: &[&str],
    schema: &Schema,
    cwd: &Path,
    mock: &MockServer,
    extra: &[(&str, &str)],
) -> Vec<Replica> {
    let mut replicas: Vec<Replica> = names
        .iter()
        .map(|n| Replica::spawn_with(n, cwd, &schema.database_url(&format!("{}_{n}", schema.name)), mock, extra))
        .collect();
    for r in &mut replicas {
        r.ready().await;
    }
    replicas
}

/// A whole answer of the ChatKit endpoint.
#[derive(Debug)]
pub(crate) enum Answer {
    /// 200 SSE, parsed.
    Stream(Vec<Value>),
    /// 200 JSON.
    Json(Value),
    /// An error status and its JSON body.
    Error(u16, Value),
}

/// `threads.custom_action` sent by a widget item.
pub(crate) fn action(thread_id: &str, item_id: &str, action: Value) -> Value {
    json!({"type": "threads.custom_action", "params": {"thread_id": thread_id, "item_id": item_id, "action": action}})
}

/// The items of the `thread.item.done` events of a stream, in order.
pub(crate) fn done_items(events: &[Value]) -> Vec<Value> {
    events.iter().filter(|e| e["type"] == "thread.item.done").map(|e| e["item"].clone()).collect()
}

/// The ids of items.
pub(crate) fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

/// `(type, first text)` of an item (`""` for items without text), for readable order assertions.
pub(crate) fn label(item: &Value) -> (String, String) {
    let t = item["type"].as_str().unwrap_or("?").to_string();
    let text = item["content"][0]["text"].as_str().unwrap_or_default().to_string();
    (t, text)
}

/// [`label`] of every item.
pub(crate) fn labels(items: &[Value]) -> Vec<(String, String)> {
    items.iter().map(label).collect()
}

/// `("user_message", text)`.
pub(crate) fn user(text: &str) -> (String, String) {
    ("user_message".to_string(), text.to_string())
}

/// `("assistant_message", text)`.
pub(crate) fn assistant(text: &str) -> (String, String) {
    ("assistant_message".to_string(), text.to_string())
}
