//! Prometheus metrics, end to end against the real `support` binary and the mock model. `/metrics` is
//! parsed with a Prometheus text parser (`prometheus-parse`) and its series compared before and after
//! scripted steps, so every check is "this counter moved by exactly this much":
//!
//! * a plain turn, a turn with a tool call, a turn whose first model request gets a 429 (one retry),
//!   a turn whose model request fails for good, a JSON request, a body too large, an unknown path:
//!   ChatKit requests by type and outcome, model calls, retries, tokens, tool calls, HTTP requests by
//!   route template and status, the histograms' counts, store operations, rejections, open streams;
//! * `AUTH_MODE=jwt` with a turn limit: 401 (`auth`) and 429 (`limits`) rejections;
//! * `METRICS_ADDR` with `METRICS_TOKEN`: served there only, 401 without or with a wrong token, the token
//!   in no log line; `METRICS=off`: no route;
//! * PostgreSQL (skipped without it): the pool gauges and the store operations of the `postgres` backend.
//!
//! Every label value of every series is checked against the ids and texts the steps used: none may
//! carry one.

mod access_common;
mod common;
mod replicas_common;

use std::time::{Duration, Instant};

use access_common::{SECRET, claims, hs256, start_server};
use common::process::ServerProcess;
use common::*;
use mock_llm::{Match, Reply, Script};
use prometheus_parse::{Sample, Scrape, Value as PromValue};
use serde_json::{Value, json};

/// The model every turn uses (the default of the OpenAI provider).
const MODEL: &str = "gpt-4.1-mini";

/// The mock's answers.
const HELLO_ANSWER: &str = "Hello! How can I help with your trip today?";
const SEAT_ANSWER: &str = "Done: seat 14C on OA476.";
const RETRIED_ANSWER: &str = "Sorry for the wait, here I am.";

/// The arguments of the scripted tool call.
fn seat_arguments() -> Value {
    json!({"flight_number": "OA476", "seat": "14C"})
}

/// The user texts of the steps (none may show up in a label value).
const HELLO: &str = "hello metrics walrus";
const SEAT: &str = "move me to seat 14C please";
const BUSY: &str = "busy model please";
const BROKEN: &str = "broken request please";

fn script() -> Script {
    Script::new()
        .on(Match::user_text("hello metrics"), Reply::text(HELLO_ANSWER))
        .on(Match::user_text("seat 14C"), Reply::tool_call("change_seat", seat_arguments()))
        .rule(mock_llm::Rule::new(Match::user_text("busy model"), Reply::http_error(429, Some(0))).times(1))
        .on(Match::user_text("busy model"), Reply::text(RETRIED_ANSWER))
        .on(Match::user_text("broken request"), Reply::http_error(400, None))
        .after_tool_reply(Reply::text(SEAT_ANSWER))
}

/// The output tokens the mock reports for a text answer (one per streamed word).
fn text_tokens(text: &str) -> f64 {
    mock_llm::word_deltas(text).len() as f64
}

/// The output tokens the mock reports for a tool call (a quarter of its arguments' JSON, at least 1).
fn call_tokens(arguments: &Value) -> f64 {
    (arguments.to_string().len() / 4).max(1) as f64
}

// --- Reading /metrics ----------------------------------------------------------------------------------

/// One parsed scrape.
struct Metrics {
    samples: Vec<Sample>,
}

impl Metrics {
    /// Parses the Prometheus text format; every sample line must have been understood (the parser skips
    /// lines it cannot read, which would turn a missing series into a silent zero).
    fn parse(text: &str) -> Metrics {
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text");
        let sample_lines = text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).count();
        let understood: usize = scrape
            .samples
            .iter()
            .map(|s| match &s.value {
                PromValue::Histogram(buckets) => buckets.len(),
                PromValue::Summary(quantiles) => quantiles.len(),
                _ => 1,
            })
            .sum();
        assert_eq!(understood, sample_lines, "the parser skipped sample lines:\n{text}");
        Metrics { samples: scrape.samples }
    }

    /// The samples named `name` whose labels include all of `labels`.
    fn matching<'a>(&'a self, name: &'a str, labels: &'a [(&'a str, &'a str)]) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
    }

    /// The sum of the counter, gauge or untyped (`_count`, `_sum`) samples named `name` with `labels`
    /// (0 when there is none, as Prometheus reads a series that does not exist yet).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels)
            .map(|s| match &s.value {
                PromValue::Counter(v) | PromValue::Gauge(v) | PromValue::Untyped(v) => *v,
                other => panic!("{name} is not a single value: {other:?}"),
            })
            .sum()
    }

    /// Whether any series named `name` exists.
    fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.metric == name)
    }

    /// Every label value of every series, with the series name.
    fn label_values(&self) -> Vec<(String, String, String)> {
        self.samples
            .iter()
            .flat_map(|s| s.labels.iter().map(|(k, v)| (s.metric.clone(), k.clone(), v.clone())))
            .collect()
    }
}

/// `GET url` (with the bearer token, if any): status and body.
async fn get(client: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = client.get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Scrapes `url` (must answer 200 with the Prometheus text content type).
async fn scrape(client: &reqwest::Client, url: &str, token: Option<&str>) -> Metrics {
    let mut req = client.get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    Metrics::parse(&res.text().await.unwrap())
}

/// What a series must have done between two scrapes.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// Moved by exactly this much.
    By(f64),
    /// Moved by at least this much.
    AtLeast(f64),
    /// Reads exactly this (a gauge).
    Is(f64),
}

/// One expectation: series `name` with `labels` changed as `change` says.
type Expect<'a> = (&'a str, &'a [(&'a str, &'a str)], Change);

/// The expectations that do not hold between `before` and `after`, described.
fn unmet(before: &Metrics, after: &Metrics, expected: &[Expect<'_>]) -> Vec<String> {
    expected
        .iter()
        .filter_map(|(name, labels, change)| {
            let (was, now) = (before.value(name, labels), after.value(name, labels));
            let ok = match change {
                Change::By(d) => (now - was - d).abs() < 1e-9,
                Change::AtLeast(d) => now - was >= d - 1e-9,
                Change::Is(v) => (now - v).abs() < 1e-9,
            };
            (!ok).then(|| format!("{name}{labels:?}: {was} → {now}, expected {change:?}"))
        })
        .collect()
}

/// Scrapes until every expectation holds against `before` (the end of a turn is recorded as its stream
/// closes, a moment after the client read the last event), failing after 10 s with the ones that do
/// not. Returns the last scrape.
async fn expect_changes(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    before: &Metrics,
    expected: &[Expect<'_>],
) -> Metrics {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let after = scrape(client, url, token).await;
        let missed = unmet(before, &after, expected);
        if missed.is_empty() {
            return after;
        }
        assert!(Instant::now() < deadline, "metrics did not move as expected:\n{}", missed.join("\n"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts no label value carries any of `forbidden` (ids, user text, secrets).
fn assert_labels_clean(metrics: &Metrics, forbidden: &[String]) {
    for (metric, label, value) in metrics.label_values() {
        for f in forbidden {
            assert!(!value.contains(f.as_str()), "{metric}{{{label}={value:?}}} carries {f:?}");
        }
        for prefix in ["thr_", "msg_", "atc_", "cts_", "tsk_", "wdg_", "call_"] {
            assert!(!value.starts_with(prefix), "{metric}{{{label}={value:?}}} looks like an id");
        }
    }
}

/// The ids of every thread and item a stream named.
fn ids_in(events: &[Value]) -> Vec<String> {
    let mut ids = Vec::new();
    for e in events {
        for id in [&e["thread"]["id"], &e["item"]["id"], &e["item_id"]] {
            if let Some(id) = id.as_str() {
                ids.push(id.to_string());
            }
        }
    }
    ids
}

/// The model-call labels of the OpenAI provider with `outcome`.
fn call(outcome: &str) -> [(&str, &str); 3] {
    [("provider", "openai"), ("model", MODEL), ("outcome", outcome)]
}

const OPENAI: [(&str, &str); 2] = [("provider", "openai"), ("model", MODEL)];
const CHATKIT_POST: [(&str, &str); 2] = [("route", "/support/chatkit"), ("method", "POST")];

/// A token kind of the OpenAI provider.
fn tokens(kind: &str) -> [(&str, &str); 3] {
    [("provider", "openai"), ("model", MODEL), ("kind", kind)]
}

// --- The scripted run on SQLite ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_by_what_each_scripted_step_did() {
    let dir = TempDir::new("metrics");
    let mock = mock(script()).await;
    let server = start_server(dir.path(), &mock, &[("MODEL_MAX_RETRIES", "1"), ("MAX_BODY_BYTES", "4096")]).await;
    let client = &server.client;
    let url = server.url("/metrics");
    let metrics_url = url.as_str();
    let mut seen_ids: Vec<String> = Vec::new();

    // Before any request: the open-streams gauge exists and is 0, no pool gauges on SQLite.
    let start = scrape(client, metrics_url, None).await;
    assert_eq!(start.value("chatkit_open_streams", &[]), 0.0);
    assert!(!start.has("db_pool_connections") && !start.has("db_pool_max_connections"));

    // 1. A plain turn on a new thread.
    let events = server_stream(&server, create(HELLO)).await;
    assert_eq!(assistant_texts(&events), vec![HELLO_ANSWER.to_string()]);
    let thread = thread_id_of(&events);
    seen_ids.extend(ids_in(&events));
    let create_done: &[(&str, &str)] = &[("type", "threads.create"), ("outcome", "completed")];
    let after_hello = expect_changes(
        client,
        metrics_url,
        None,
        &start,
        &[
            ("chatkit_requests_total", create_done, Change::By(1.0)),
            ("chatkit_requests_total", &[], Change::By(1.0)),
            ("chatkit_turn_duration_seconds_count", create_done, Change::By(1.0)),
            ("chatkit_time_to_first_event_seconds_count", &[("type", "threads.create")], Change::By(1.0)),
            ("chatkit_open_streams", &[], Change::Is(0.0)),
            ("model_calls_total", &call("ok"), Change::By(1.0)),
            ("model_calls_total", &[], Change::By(1.0)),
            ("model_call_duration_seconds_count", &call("ok"), Change::By(1.0)),
            ("model_time_to_first_token_seconds_count", &OPENAI, Change::By(1.0)),
            ("model_tokens_total", &tokens("output"), Change::By(text_tokens(HELLO_ANSWER))),
            ("model_tokens_total", &tokens("input"), Change::AtLeast(1.0)),
            ("model_tokens_total", &tokens("cached"), Change::By(0.0)),
            ("model_tokens_total", &tokens("reasoning"), Change::By(0.0)),
            ("model_retries_total", &[], Change::By(0.0)),
            ("tool_calls_total", &[], Change::By(0.0)),
            ("http_requests_total", &[CHATKIT_POST[0], CHATKIT_POST[1], ("status", "200")], Change::By(1.0)),
            ("http_request_duration_seconds_count", &CHATKIT_POST, Change::By(1.0)),
            ("http_rejections_total", &[], Change::By(0.0)),
            (
                "store_operation_duration_seconds_count",
                &[("operation", "create_thread_with_item"), ("backend", "sqlite")],
                Change::By(1.0),
            ),
            (
                "store_operation_duration_seconds_count",
                &[("operation", "add_thread_item"), ("backend", "sqlite")],
                Change::AtLeast(1.0),
            ),
            (
                "store_operation_duration_seconds_count",
                &[("operation", "lock_thread"), ("backend", "sqlite")],
                Change::AtLeast(1.0),
            ),
            ("store_operation_errors_total", &[], Change::By(0.0)),
        ],
    )
    .await;

    // 2. A turn with a tool call: two model calls, one tool call.
    let events = server_stream(&server, add_message(&thread, SEAT)).await;
    assert_eq!(assistant_texts(&events), vec![SEAT_ANSWER.to_string()]);
    seen_ids.extend(ids_in(&events));
    let add_done: &[(&str, &str)] = &[("type", "threads.add_user_message"), ("outcome", "completed")];
    let after_seat = expect_changes(
        client,
        metrics_url,
        None,
        &after_hello,
        &[
            ("chatkit_requests_total", add_done, Change::By(1.0)),
            ("chatkit_requests_total", &[], Change::By(1.0)),
            ("chatkit_turn_duration_seconds_count", add_done, Change::By(1.0)),
            ("model_calls_total", &call("ok"), Change::By(2.0)),
            ("model_calls_total", &[], Change::By(2.0)),
            ("model_time_to_first_token_seconds_count", &OPENAI, Change::By(2.0)),
            (
                "model_tokens_total",
                &tokens("output"),
                Change::By(call_tokens(&seat_arguments()) + text_tokens(SEAT_ANSWER)),
            ),
            ("tool_calls_total", &[("tool", "change_seat"), ("outcome", "ok")], Change::By(1.0)),
            ("tool_calls_total", &[], Change::By(1.0)),
            ("tool_call_duration_seconds_count", &[("tool", "change_seat")], Change::By(1.0)),
            ("chatkit_open_streams", &[], Change::Is(0.0)),
            (
                "store_operation_duration_seconds_count",
                &[("operation", "load_thread_items"), ("backend", "sqlite")],
                Change::AtLeast(1.0),
            ),
        ],
    )
    .await;

    // 3. The first model request is rate limited (Retry-After: 0), its retry answers: one call, one retry.
    let events = server_stream(&server, add_message(&thread, BUSY)).await;
    assert_eq!(assistant_texts(&events), vec![RETRIED_ANSWER.to_string()]);
    seen_ids.extend(ids_in(&events));
    let after_busy = expect_changes(
        client,
        metrics_url,
        None,
        &after_seat,
        &[
            ("chatkit_requests_total", add_done, Change::By(1.0)),
            ("model_retries_total", &[("provider", "openai"), ("reason", "rate_limited")], Change::By(1.0)),
            ("model_retries_total", &[], Change::By(1.0)),
            ("model_calls_total", &call("ok"), Change::By(1.0)),
            ("model_calls_total", &[], Change::By(1.0)),
            ("model_tokens_total", &tokens("output"), Change::By(text_tokens(RETRIED_ANSWER))),
            ("chatkit_open_streams", &[], Change::Is(0.0)),
        ],
    )
    .await;

    // 4. The model refuses the request for good (400): no retry, the call and the turn fail.
    let events = server_stream(&server, add_message(&thread, BROKEN)).await;
    assert!(kinds(&events).iter().any(|k| k.starts_with("error")), "{events:?}");
    seen_ids.extend(ids_in(&events));
    let add_failed: &[(&str, &str)] = &[("type", "threads.add_user_message"), ("outcome", "failed")];
    let after_broken = expect_changes(
        client,
        metrics_url,
        None,
        &after_busy,
        &[
            ("chatkit_requests_total", add_failed, Change::By(1.0)),
            ("chatkit_requests_total", &[], Change::By(1.0)),
            ("chatkit_turn_duration_seconds_count", add_failed, Change::By(1.0)),
            ("model_calls_total", &call("invalid_request"), Change::By(1.0)),
            ("model_calls_total", &[], Change::By(1.0)),
            ("model_call_duration_seconds_count", &call("invalid_request"), Change::By(1.0)),
            ("model_retries_total", &[], Change::By(0.0)),
            ("model_tokens_total", &[], Change::By(0.0)),
            ("chatkit_open_streams", &[], Change::Is(0.0)),
        ],
    )
    .await;
    assert_eq!(model_requests(&mock).len(), 6, "1 + 2 + 2 (429 and its retry) + 1 model requests");

    // 5. A JSON request, a body over MAX_BODY_BYTES, a path no route serves (an id in it).
    let items = server
        .post(&json!({"type": "items.list", "params": {"thread_id": thread, "limit": 100, "order": "asc"}}))
        .await;
    assert_eq!(items.status(), 200);
    let items: Value = items.json().await.unwrap();
    seen_ids.extend(items["data"].as_array().unwrap().iter().filter_map(|i| i["id"].as_str().map(str::to_string)));
    let too_big = server.post(&create(&"x".repeat(8_000))).await;
    assert_eq!(too_big.status(), 413);
    let unknown_path = format!("/support/threads/{thread}");
    let (status, _) = get(client, &server.url(&unknown_path), None).await;
    assert_eq!(status, 404);
    let after_misc = expect_changes(
        client,
        metrics_url,
        None,
        &after_broken,
        &[
            ("chatkit_requests_total", &[("type", "items.list"), ("outcome", "ok")], Change::By(1.0)),
            ("http_requests_total", &[CHATKIT_POST[0], CHATKIT_POST[1], ("status", "200")], Change::By(1.0)),
            ("http_requests_total", &[CHATKIT_POST[0], CHATKIT_POST[1], ("status", "413")], Change::By(1.0)),
            ("http_requests_total", &[("route", "unmatched"), ("method", "GET"), ("status", "404")], Change::By(1.0)),
            ("http_rejections_total", &[("reason", "size")], Change::By(1.0)),
            ("http_rejections_total", &[], Change::By(1.0)),
            ("model_calls_total", &[], Change::By(0.0)),
        ],
    )
    .await;

    // Scrapes count as requests of their own route.
    assert!(after_misc.value("http_requests_total", &[("route", "/metrics"), ("status", "200")]) >= 5.0);
    // Still no pool gauges: SQLite has no connection pool to report (see README).
    assert!(!after_misc.has("db_pool_connections"));

    let mut forbidden = seen_ids;
    forbidden.extend([HELLO, SEAT, BUSY, BROKEN, HELLO_ANSWER, SEAT_ANSWER, RETRIED_ANSWER].map(str::to_string));
    forbidden.extend(["walrus".to_string(), "test-key".to_string(), unknown_path]);
    assert_labels_clean(&after_misc, &forbidden);
}

/// A streaming request that must answer 200 SSE; returns its events.
async fn server_stream(server: &ServerProcess, body: Value) -> Vec<Value> {
    let res = server.post(&body).await;
    assert_eq!(res.status(), 200, "{body}");
    parse_sse(&res.text().await.unwrap())
}

// --- Rejections by authentication and limits -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_are_counted_by_reason() {
    let dir = TempDir::new("metrics-auth");
    let mock = mock(Script::new().default_reply(Reply::text("Hi."))).await;
    let env = [("AUTH_MODE", "jwt"), ("AUTH_JWT_SECRET", SECRET), ("TURNS_PER_MINUTE", "1")];
    let server = start_server(dir.path(), &mock, &env).await;
    let client = &server.client;
    let metrics_url = server.url("/metrics");
    let before = scrape(client, &metrics_url, None).await;

    // No token, then a token signed with another secret: 401 both.
    let anonymous = server.post(&create("hello")).await;
    assert_eq!(anonymous.status(), 401);
    let forged = hs256(&claims("mallory"), b"another-secret-0123456789-abcdefghijkl");
    let res = client.post(server.url("/support/chatkit")).bearer_auth(&forged).json(&create("hi")).send().await;
    assert_eq!(res.unwrap().status(), 401);
    // One turn a minute: the second is refused with 429.
    let token = hs256(&claims("alice-metrics"), SECRET.as_bytes());
    let first = client.post(server.url("/support/chatkit")).bearer_auth(&token).json(&create("first")).send().await;
    let first = first.unwrap();
    assert_eq!(first.status(), 200);
    let events = parse_sse(&first.text().await.unwrap());
    let second = client.post(server.url("/support/chatkit")).bearer_auth(&token).json(&create("second")).send().await;
    assert_eq!(second.unwrap().status(), 429);

    let after = expect_changes(
        client,
        &metrics_url,
        None,
        &before,
        &[
            ("http_rejections_total", &[("reason", "auth")], Change::By(2.0)),
            ("http_rejections_total", &[("reason", "limits")], Change::By(1.0)),
            ("http_rejections_total", &[], Change::By(3.0)),
            ("http_requests_total", &[CHATKIT_POST[0], CHATKIT_POST[1], ("status", "401")], Change::By(2.0)),
            ("http_requests_total", &[CHATKIT_POST[0], CHATKIT_POST[1], ("status", "429")], Change::By(1.0)),
            ("http_requests_total", &[CHATKIT_POST[0], CHATKIT_POST[1], ("status", "200")], Change::By(1.0)),
            ("model_calls_total", &[], Change::By(1.0)),
        ],
    )
    .await;
    let mut forbidden = ids_in(&events);
    forbidden.extend(["alice-metrics", "mallory", token.as_str(), forged.as_str(), SECRET].map(str::to_string));
    assert_labels_clean(&after, &forbidden);
}

// --- METRICS_ADDR, METRICS_TOKEN, METRICS=off ----------------------------------------------------------

/// The token of the separate-address test: it must appear in no log line.
const METRICS_TOKEN: &str = "scrape-token-5b7e0c1d9a";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_addr_serves_them_apart_behind_the_token() {
    let dir = TempDir::new("metrics-addr");
    let mock = mock(Script::new().default_reply(Reply::text("Hi."))).await;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let env = [("METRICS_ADDR", addr.as_str()), ("METRICS_TOKEN", METRICS_TOKEN), ("RUST_LOG", "debug")];
    let server = start_server(dir.path(), &mock, &env).await;
    let client = &server.client;
    let metrics_url = format!("http://{addr}/metrics");

    // Not on the main port.
    let (status, _) = get(client, &server.url("/metrics"), None).await;
    assert_eq!(status, 404);
    let (status, _) = get(client, &server.url("/metrics"), Some(METRICS_TOKEN)).await;
    assert_eq!(status, 404);
    // On its own address: 401 without the token or with a wrong one, with the auth challenge.
    for token in [None, Some("wrong-token"), Some("")] {
        let mut req = client.get(&metrics_url);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "token {token:?}");
        assert!(res.headers().contains_key("www-authenticate"), "token {token:?}");
    }
    // Only /metrics there.
    let (status, _) = get(client, &format!("http://{addr}/support/health"), Some(METRICS_TOKEN)).await;
    assert_eq!(status, 404);

    let before = scrape(client, &metrics_url, Some(METRICS_TOKEN)).await;
    let events = server_stream(&server, create("hello")).await;
    assert_eq!(assistant_texts(&events), vec!["Hi.".to_string()]);
    let (status, _) = get(client, &server.url("/support/health"), None).await;
    assert_eq!(status, 200);
    expect_changes(
        client,
        &metrics_url,
        Some(METRICS_TOKEN),
        &before,
        &[
            ("chatkit_requests_total", &[("type", "threads.create"), ("outcome", "completed")], Change::By(1.0)),
            ("http_requests_total", &[("route", "/support/health"), ("status", "200")], Change::By(1.0)),
            // Scrapes of the separate listener are not requests of the application's routes.
            ("http_requests_total", &[("route", "/metrics")], Change::By(0.0)),
        ],
    )
    .await;
    let output = server.output();
    assert!(output.contains("serving metrics on their own address"), "{output}");
    assert!(!output.contains(METRICS_TOKEN), "the metrics token was logged:\n{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_off_serves_no_route() {
    let dir = TempDir::new("metrics-off");
    let mock = mock(Script::new().default_reply(Reply::text("Hi."))).await;
    let server = start_server(dir.path(), &mock, &[("METRICS", "off")]).await;
    let events = server_stream(&server, create("hello")).await;
    assert_eq!(assistant_texts(&events), vec!["Hi.".to_string()]);
    let (status, body) = get(&server.client, &server.url("/metrics"), None).await;
    assert_eq!(status, 404, "{body}");

    // A metrics address or token without metrics is a configuration error.
    let port = free_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    let db = dir.sqlite_url();
    let mut bad = ServerProcess::spawn(
        "server",
        process::command(
            dir.path(),
            &[("PORT", "0"), ("DATABASE_URL", db.as_str()), ("METRICS", "off"), ("METRICS_ADDR", addr.as_str())],
        ),
    );
    assert_eq!(bad.wait_exit(Duration::from_secs(20)), Some(2), "{}", bad.output());
    assert!(bad.stderr().contains("METRICS_ADDR and METRICS_TOKEN need METRICS=on"), "{}", bad.output());
}

// --- PostgreSQL: pool gauges ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reports_its_pool_and_store_operations() {
    let Some(schema) = replicas_common::Schema::create().await else { return };
    let work = replicas_common::WorkDir::new();
    let mock = mock(Script::new().default_reply(Reply::text("Hi from PostgreSQL."))).await;
    let mut server = replicas_common::Replica::spawn_with(
        "pg",
        work.path(),
        &schema.database_url("metrics"),
        &mock,
        &[("DATABASE_POOL_SIZE", "5")],
    );
    server.ready().await;
    let client = &server.client;
    let metrics_url = server.url("/metrics");
    let before = scrape(client, &metrics_url, None).await;
    // Sampled at each scrape: the pool's limit, and its connections by state, within it.
    assert_eq!(before.value("db_pool_max_connections", &[]), 5.0);
    let (in_use, open) =
        (before.value("db_pool_connections", &[("state", "in_use")]), before.value("db_pool_connections", &[]));
    assert!(in_use >= 0.0 && open >= in_use && open <= 5.0, "in use {in_use} of {open} open");

    let events = server.stream(create("hello")).await;
    assert_eq!(assistant_texts(&events), vec!["Hi from PostgreSQL.".to_string()]);
    let after = expect_changes(
        client,
        &metrics_url,
        None,
        &before,
        &[
            ("chatkit_requests_total", &[("type", "threads.create"), ("outcome", "completed")], Change::By(1.0)),
            (
                "store_operation_duration_seconds_count",
                &[("operation", "create_thread_with_item"), ("backend", "postgres")],
                Change::By(1.0),
            ),
            (
                "store_operation_duration_seconds_count",
                &[("operation", "add_thread_item"), ("backend", "postgres")],
                Change::AtLeast(1.0),
            ),
            ("store_operation_duration_seconds_count", &[("backend", "sqlite")], Change::By(0.0)),
            ("db_pool_max_connections", &[], Change::Is(5.0)),
        ],
    )
    .await;
    let total = after.value("db_pool_connections", &[]);
    assert!((1.0..=5.0).contains(&total), "the pool holds {total} connections after a turn");
    for state in after.matching("db_pool_connections", &[]) {
        let state = state.labels.get("state").unwrap_or_default();
        assert!(["in_use", "idle"].contains(&state), "{state}");
    }
    assert_labels_clean(&after, &ids_in(&events));
}

// --- Fallback ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_counts_the_failed_call_the_switch_and_the_answer() {
    let dir = TempDir::new("metrics-fallback");
    let primary = mock(Script::new().default_reply(Reply::http_error(503, None))).await;
    let fallback = mock(Script::new().default_reply(Reply::text("Gemini here."))).await;
    let gemini_base = fallback.gemini_base_url();
    let env = [
        ("MODEL_FALLBACK", "gemini"),
        ("GEMINI_API_KEY", "gemini-test-key"),
        ("GEMINI_BASE_URL", gemini_base.as_str()),
    ];
    let server = start_server(dir.path(), &primary, &env).await;
    let client = &server.client;
    let metrics_url = server.url("/metrics");
    let before = scrape(client, &metrics_url, None).await;
    let events = server_stream(&server, create("hello")).await;
    assert_eq!(assistant_texts(&events), vec!["Gemini here.".to_string()]);
    expect_changes(
        client,
        &metrics_url,
        None,
        &before,
        &[
            // The primary's failed call, and the call the fallback answered.
            ("model_calls_total", &call("server_error"), Change::By(1.0)),
            ("model_call_duration_seconds_count", &call("server_error"), Change::By(1.0)),
            (
                "model_calls_total",
                &[("provider", "gemini"), ("model", "gemini-2.5-flash"), ("outcome", "ok")],
                Change::By(1.0),
            ),
            ("model_calls_total", &[], Change::By(2.0)),
            (
                "model_fallbacks_total",
                &[("from", "openai"), ("to", "gemini"), ("reason", "server_error")],
                Change::By(1.0),
            ),
            ("model_fallbacks_total", &[], Change::By(1.0)),
            (
                "model_tokens_total",
                &[("provider", "gemini"), ("model", "gemini-2.5-flash"), ("kind", "output")],
                Change::AtLeast(1.0),
            ),
            ("model_tokens_total", &[("provider", "openai")], Change::By(0.0)),
            ("chatkit_requests_total", &[("type", "threads.create"), ("outcome", "completed")], Change::By(1.0)),
        ],
    )
    .await;
}
