//! OpenTelemetry traces, end to end: the real `support` binary exports to an OTLP/HTTP receiver stub on
//! loopback (the protobuf decoded with `opentelemetry-proto`). One turn with a tool call arrives as the
//! span tree HTTP request → ChatKit request → turn → model calls and tool call, continuing the caller's
//! `traceparent`, with the GenAI attributes and without any message text or key. A collector that
//! cannot be reached does not disturb the turns and costs one warning.

mod common;
mod faults_common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use common::*;
use faults_common as fc;
use mock_llm::{Match, MockServer, Reply, Script};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::json;

/// The caller's trace context (W3C `traceparent`).
const TRACE_ID: &str = "4bf92f3577b34a0ea0f7ad2f1c8e0c11";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// Words of the user's message that must not appear in any span.
const USER_SECRET: &str = "quokka-lantern";
/// The mock's answer after the tool call.
const ANSWER: &str = "Done: seat 14C on OA476.";

/// The names of the model call and tool call spans (GenAI conventions: operation and model or tool).
const MODEL_CALL: &str = "chat gpt-4.1-mini";
const TOOL_CALL: &str = "execute_tool change_seat";

/// What the receiver got: every span, with its service name.
#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    service_names: Vec<String>,
}

/// An OTLP/HTTP traces receiver on 127.0.0.1; returns its base URL.
async fn receiver() -> (String, Arc<Mutex<Received>>) {
    async fn export(State(received): State<Arc<Mutex<Received>>>, body: Bytes) -> Vec<u8> {
        let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
        let mut received = received.lock().unwrap();
        for resource_spans in request.resource_spans {
            if let Some(resource) = &resource_spans.resource {
                received.service_names.extend(attr(&resource.attributes, "service.name"));
            }
            for scope in resource_spans.scope_spans {
                received.spans.extend(scope.spans);
            }
        }
        // An empty `ExportTraceServiceResponse`.
        Vec::new()
    }
    let received = Arc::new(Mutex::new(Received::default()));
    let app = axum::Router::new().route("/v1/traces", axum::routing::post(export)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// The string form of an attribute value.
fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// The value of attribute `key`, as text.
fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).map(text)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The binary on a temp SQLite database answering with the mock model, exporting traces to `endpoint`,
/// with `extra` settings on top.
async fn start_binary(dir: &TempDir, mock: &MockServer, endpoint: &str, extra: &[(&str, &str)]) -> fc::Bin {
    let db = dir.sqlite_url();
    let base_url = mock.openai_base_url();
    let mut env = vec![
        ("DATABASE_URL", db.as_str()),
        ("OPENAI_API_KEY", "test-key-do-not-export"),
        ("OPENAI_BASE_URL", base_url.as_str()),
        ("MODEL_MAX_RETRIES", "0"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_SERVICE_NAME", "support-under-test"),
        // Export every 100 ms instead of every 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    env.extend_from_slice(extra);
    let mut server = fc::Bin::spawn(dir.path(), &env);
    server.ready().await;
    server
}

fn seat_script() -> Script {
    Script::new()
        .on(
            Match::user_text("seat 14C"),
            Reply::tool_call("change_seat", json!({"flight_number": "OA476", "seat": "14C"})),
        )
        .after_tool_reply(Reply::text(ANSWER))
}

/// Waits until the receiver holds one `chatkit_turn` span, two model calls and one tool call.
async fn wait_for_turn_spans(received: &Mutex<Received>, server: &fc::Bin) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        {
            let got = received.lock().unwrap();
            let named = |n: &str| got.spans.iter().filter(|s| s.name == n).count();
            if named("chatkit_turn") == 1 && named(MODEL_CALL) == 2 && named(TOOL_CALL) == 1 {
                return;
            }
            let names: Vec<&str> = got.spans.iter().map(|s| s.name.as_str()).collect();
            assert!(Instant::now() < deadline, "spans did not arrive: {names:?}\n{}", server.output());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends one turn (with the caller's `traceparent`) and reads its whole stream.
async fn one_turn(server: &fc::Bin) -> Vec<serde_json::Value> {
    let res = server
        .client
        .post(server.url("/support/chatkit"))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01"))
        .json(&create(&format!("Move me to seat 14C on flight OA476, {USER_SECRET}.")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    parse_sse(&res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_turn_arrives_as_a_span_tree_continuing_the_callers_trace() {
    let (endpoint, received) = receiver().await;
    let dir = TempDir::new("traces");
    let mock = mock(seat_script()).await;
    let mut server = start_binary(&dir, &mock, &endpoint, &[]).await;
    let events = one_turn(&server).await;
    assert_eq!(assistant_texts(&events), vec![ANSWER.to_string()]);

    // The turn's span ends with the turn, after the stream; wait for it and the tool call to arrive.
    wait_for_turn_spans(&received, &server).await;
    assert_eq!(server.terminate(), Some(0));

    let got = received.lock().unwrap();
    assert!(got.service_names.iter().all(|n| n == "support-under-test"), "{:?}", got.service_names);
    let spans: Vec<&Span> = got.spans.iter().filter(|s| hex(&s.trace_id) == TRACE_ID).collect();
    let one = |name: &str| -> &Span {
        let found: Vec<&&Span> = spans.iter().filter(|s| s.name == name).collect();
        assert_eq!(found.len(), 1, "{name}: {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
        found[0]
    };
    let http = spans
        .iter()
        .find(|s| attr(&s.attributes, "http.route").as_deref() == Some("/support/chatkit"))
        .expect("the HTTP request span, in the caller's trace");
    assert_eq!(http.name, "POST /support/chatkit");
    assert_eq!(hex(&http.parent_span_id), PARENT_SPAN_ID, "the caller's span is the parent");
    assert_eq!(attr(&http.attributes, "http.request.method").as_deref(), Some("POST"));
    assert_eq!(attr(&http.attributes, "http.response.status_code").as_deref(), Some("200"));

    let request = one("threads.create");
    assert_eq!(request.parent_span_id, http.span_id);
    assert_eq!(attr(&request.attributes, "chatkit.request.type").as_deref(), Some("threads.create"));
    let turn = one("chatkit_turn");
    assert_eq!(turn.parent_span_id, request.span_id);

    let calls: Vec<&&Span> = spans.iter().filter(|s| s.name == MODEL_CALL).collect();
    assert_eq!(calls.len(), 2);
    for call in &calls {
        assert_eq!(call.parent_span_id, turn.span_id);
        assert_eq!(attr(&call.attributes, "gen_ai.system").as_deref(), Some("openai"));
        assert_eq!(attr(&call.attributes, "gen_ai.operation.name").as_deref(), Some("chat"));
        assert_eq!(attr(&call.attributes, "gen_ai.request.model").as_deref(), Some("gpt-4.1-mini"));
    }
    let tool = one(TOOL_CALL);
    assert_eq!(tool.parent_span_id, turn.span_id);
    assert_eq!(attr(&tool.attributes, "gen_ai.tool.name").as_deref(), Some("change_seat"));
    assert_eq!(attr(&tool.attributes, "otel.name"), None, "otel.* fields configure the span, they are not attributes");

    // Store operations: the user message saved before the turn, the answer and the tool's writes within.
    let stores: Vec<&&Span> = spans.iter().filter(|s| s.name.starts_with("store ")).collect();
    assert!(stores.iter().any(|s| s.name == "store create_thread_with_item" && s.parent_span_id == request.span_id));
    // A new thread's lock is taken before its stream starts.
    assert!(stores.iter().any(|s| s.name == "store lock_thread" && s.parent_span_id == request.span_id));
    let call_ids: Vec<&Vec<u8>> = calls.iter().map(|c| &c.span_id).collect();
    assert!(
        stores.iter().any(|s| s.name == "store add_thread_item" && call_ids.contains(&&s.parent_span_id)),
        "the answer is saved within its model call"
    );
    assert!(stores.iter().any(|s| s.parent_span_id == tool.span_id), "the tool's store work is within its span");
    for s in &stores {
        assert_eq!(attr(&s.attributes, "db.system.name").as_deref(), Some("sqlite"));
    }

    // No message text (the user's or the model's) and no key anywhere: names, attributes, events.
    for span in &got.spans {
        let mut texts = vec![span.name.clone()];
        texts.extend(span.attributes.iter().filter_map(|kv| kv.value.as_ref()).map(text));
        for event in &span.events {
            texts.push(event.name.clone());
            texts.extend(event.attributes.iter().filter_map(|kv| kv.value.as_ref()).map(text));
        }
        for t in texts {
            for secret in [USER_SECRET, "Move me to seat", ANSWER, "test-key-do-not-export"] {
                assert!(!t.contains(secret), "span {} carries {secret:?}: {t}", span.name);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_costs_one_warning_and_nothing_else() {
    let dir = TempDir::new("traces-down");
    let mock = mock(seat_script()).await;
    // A port nothing listens on.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let mut server = start_binary(&dir, &mock, &endpoint, &[]).await;
    for _ in 0..3 {
        let events = one_turn(&server).await;
        assert_eq!(assistant_texts(&events), vec![ANSWER.to_string()]);
        // Several export attempts in between.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(server.terminate(), Some(0));
    let warnings = server.stderr().matches("traces are not being exported").count();
    assert_eq!(warnings, 1, "{}", server.output());
}

/// The request id the JSON log test sends.
const REQUEST_ID: &str = "json-logs-7f3a";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_carry_the_request_thread_and_exported_trace_ids() {
    let (endpoint, received) = receiver().await;
    let dir = TempDir::new("json-logs");
    let mock = mock(seat_script()).await;
    // Debug lines of the application too: more lines of the turn to check, and none may leak text.
    let env = [("LOG_FORMAT", "json"), ("RUST_LOG", "info,support=debug,chatkit=debug,agents=debug")];
    let mut server = start_binary(&dir, &mock, &endpoint, &env).await;
    // No `traceparent`: the trace starts here, and the log must name the id the exporter used.
    let res = server
        .client
        .post(server.url("/support/chatkit"))
        .header("x-request-id", REQUEST_ID)
        .json(&create(&format!("Move me to seat 14C on flight OA476, {USER_SECRET}.")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"], REQUEST_ID);
    let events = parse_sse(&res.text().await.unwrap());
    assert_eq!(assistant_texts(&events), vec![ANSWER.to_string()]);
    let thread = thread_id_of(&events);
    wait_for_turn_spans(&received, &server).await;
    assert_eq!(server.terminate(), Some(0));

    let got = received.lock().unwrap();
    let turn = got.spans.iter().find(|s| s.name == "chatkit_turn").expect("the turn span");
    let trace_id = hex(&turn.trace_id);
    let http = got
        .spans
        .iter()
        .find(|s| attr(&s.attributes, "http.route").as_deref() == Some("/support/chatkit"))
        .expect("the HTTP span");
    assert_eq!(hex(&http.trace_id), trace_id, "one trace from the HTTP request to the turn");
    assert!(http.parent_span_id.is_empty(), "the trace started at the server");

    // Every line is one JSON object with the standard fields.
    let stderr = server.stderr();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    for line in &lines {
        for field in ["time", "level", "target", "message"] {
            assert!(line[field].is_string(), "no {field}: {line}");
        }
    }
    // The request's lines: its id, the exported trace's id, the thread on the turn's lines.
    let ours: Vec<&serde_json::Value> = lines.iter().filter(|l| l["request_id"] == REQUEST_ID).collect();
    assert!(!ours.is_empty(), "no line of the request:\n{stderr}");
    for line in &ours {
        assert_eq!(line["trace_id"], json!(trace_id), "{line}");
    }
    let ended: Vec<&&serde_json::Value> = ours.iter().filter(|l| l["message"] == "chatkit stream ended").collect();
    assert_eq!(ended.len(), 1, "{stderr}");
    // The model call lines name no thread themselves: it comes from the turn's span.
    let calls: Vec<&&serde_json::Value> = ours.iter().filter(|l| l["message"] == "model call").collect();
    assert_eq!(calls.len(), 2, "{stderr}");
    for line in ended.iter().chain(&calls) {
        assert_eq!(line["thread_id"], json!(thread), "{line}");
    }
    // A line that has a thread id has the turn's (never an empty one, as before the thread exists).
    for line in ours.iter().filter(|l| l.get("thread_id").is_some()) {
        assert_eq!(line["thread_id"], json!(thread), "{line}");
    }
    // No message text, key or token in any line.
    for secret in [USER_SECRET, "Move me to seat", ANSWER, "test-key-do-not-export"] {
        assert!(!stderr.contains(secret), "a log line carries {secret:?}:\n{stderr}");
    }
}
