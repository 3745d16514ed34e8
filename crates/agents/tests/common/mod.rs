//! Shared test harness: a mock model server, a provider built from a `ModelConfig` pointing at it,
//! a `MemoryStore` with one thread, and an `EventSink` whose SSE frames are collected as JSON.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agents::{
    InputItem, ModelConfig, ModelEvent, ModelRequest, ModelStream, Provider, ProviderAccess, ProviderError,
    ProviderKind, Tool, ToolContext, ToolError, build_provider, parse_arguments,
};
use async_trait::async_trait;
use bytes::Bytes;
use chatkit::store::{MemoryStore, RequestContext, Store};
use chatkit::types::{AssistantMessageItem, ItemKind, Order, ThreadItem, ThreadMetadata, ThreadStreamEvent};
use chatkit::{AppError, EventSink};
use futures::StreamExt;
use mock_llm::{MockServer, RecordedRequest, Script};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub(crate) const OPENAI_KEY: &str = "sk-test-SECRET-0123456789";
pub(crate) const GEMINI_KEY: &str = "AIza-test-SECRET-0123456789";
pub(crate) const THREAD: &str = "thr_test";

pub(crate) struct Harness {
    pub mock: MockServer,
    pub provider: Arc<dyn Provider>,
    pub store: Arc<MemoryStore>,
    pub ctx: RequestContext,
    pub sink: EventSink,
    pub rx: mpsc::Receiver<Bytes>,
    /// Function calls the provider streamed (to compare with replayed requests).
    pub seen_calls: Arc<Mutex<Vec<agents::FunctionCall>>>,
}

/// Where the harness's providers are, with the advice a rejected key must carry (`check <advice>`).
pub(crate) fn access(key: Option<&str>, base_url: String, advice: &str) -> ProviderAccess {
    ProviderAccess { api_key: key.map(str::to_string), base_url, rejected_key_hint: Some(format!("check {advice}")) }
}

/// The model name the harness gives an OpenAI-compatible server (it has no default).
pub(crate) const COMPATIBLE_MODEL: &str = "qwen3:8b";

pub(crate) fn config(kind: ProviderKind, mock: &MockServer) -> ModelConfig {
    ModelConfig {
        provider: Some(kind),
        model: (kind == ProviderKind::Compatible).then(|| COMPATIBLE_MODEL.to_string()),
        openai: access(Some(OPENAI_KEY), mock.openai_base_url(), "the OpenAI key"),
        gemini: access(Some(GEMINI_KEY), mock.gemini_base_url(), "the Gemini key"),
        compatible: agents::CompatibleSettings {
            access: access(None, mock.openai_base_url(), "the compatible key"),
            ..Default::default()
        },
        ..ModelConfig::default()
    }
}

pub(crate) async fn harness(kind: ProviderKind, script: Script) -> Harness {
    harness_with(kind, script, |_| {}).await
}

pub(crate) async fn harness_with(kind: ProviderKind, script: Script, tweak: impl FnOnce(&mut ModelConfig)) -> Harness {
    let mock = MockServer::start(script).await.unwrap();
    let mut cfg = config(kind, &mock);
    tweak(&mut cfg);
    let inner = build_provider(&cfg).unwrap().unwrap();
    let seen_calls = Arc::new(Mutex::new(Vec::new()));
    let provider: Arc<dyn Provider> = Arc::new(Recording { inner, seen: seen_calls.clone() });
    let store = Arc::new(MemoryStore::new());
    let ctx = RequestContext::default();
    let thread = ThreadMetadata::new(THREAD);
    store.save_thread(&ctx, &thread).await.unwrap();
    let (tx, rx) = mpsc::channel(4096);
    let sink = EventSink::new(store.clone(), ctx.clone(), thread, tx);
    Harness { mock, provider, store, ctx, sink, rx, seen_calls }
}

impl Harness {
    /// Every event sent so far, as JSON; `created_at` of items is checked and removed.
    pub(crate) fn events(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(frame) = self.rx.try_recv() {
            let text = std::str::from_utf8(&frame).unwrap();
            let json = text.strip_prefix("data: ").unwrap().strip_suffix("\n\n").unwrap();
            let mut v: Value = serde_json::from_str(json).unwrap();
            if let Some(item) = v.get_mut("item").and_then(Value::as_object_mut) {
                let ts = item.remove("created_at").expect("items carry created_at");
                assert!(ts.as_str().unwrap().ends_with('Z'));
            }
            out.push(v);
        }
        out
    }

    /// Items stored in the thread, oldest first.
    pub(crate) async fn stored(&self) -> Vec<ThreadItem> {
        self.store.load_thread_items(&self.ctx, THREAD, None, 100, Order::Asc).await.unwrap().data
    }

    /// Runs the support agent on one user message.
    pub(crate) async fn ask(&self, text: &str) -> Result<(), AppError> {
        agents::run(&support_agent(), self.provider.as_ref(), user_input(text), &self.sink).await
    }

    /// Runs the support agent on one user message, which must fail with a message for the user: that
    /// message and whether the user may retry.
    pub(crate) async fn ask_failing(&self, text: &str) -> (String, bool) {
        custom(self.ask(text).await.unwrap_err())
    }

    /// Checks that the events so far are exactly one streamed message of `deltas`; returns its id.
    pub(crate) fn expect_one_message(&mut self, deltas: &[&str]) -> String {
        let events = self.events();
        let id = events.first().map(item_id).expect("a message was streamed");
        assert_eq!(events, text_message_events(&id, deltas));
        id
    }

    /// Model requests received by the mock (transcriptions excluded).
    pub(crate) fn model_requests(&self) -> Vec<RecordedRequest> {
        self.mock.requests().into_iter().filter(|r| !r.path.contains("audio")).collect()
    }
}

/// Wraps a provider and records the function calls it streams.
struct Recording {
    inner: Arc<dyn Provider>,
    seen: Arc<Mutex<Vec<agents::FunctionCall>>>,
}

#[async_trait]
impl Provider for Recording {
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ProviderError> {
        let seen = self.seen.clone();
        let stream = self.inner.stream(request).await?;
        Ok(Box::pin(stream.inspect(move |e| {
            if let Ok(ModelEvent::FunctionCall(call)) = e {
                seen.lock().unwrap().push(call.clone());
            }
        })))
    }
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn model(&self) -> &str {
        self.inner.model()
    }
}

/// The ChatKit events of one streamed assistant message (created_at removed).
pub(crate) fn text_message_events(id: &str, deltas: &[&str]) -> Vec<Value> {
    let full: String = deltas.concat();
    let mut out = vec![
        json!({"type":"thread.item.added","item":{"id":id,"thread_id":THREAD,"type":"assistant_message","content":[]}}),
        json!({"type":"thread.item.updated","item_id":id,"update":{"type":"assistant_message.content_part.added","content_index":0,"content":{"annotations":[],"text":"","type":"output_text"}}}),
    ];
    for d in deltas {
        out.push(json!({"type":"thread.item.updated","item_id":id,"update":{"type":"assistant_message.content_part.text_delta","content_index":0,"delta":d}}));
    }
    out.push(json!({"type":"thread.item.updated","item_id":id,"update":{"type":"assistant_message.content_part.done","content_index":0,"content":{"annotations":[],"text":full,"type":"output_text"}}}));
    out.push(json!({"type":"thread.item.done","item":{"id":id,"thread_id":THREAD,"type":"assistant_message","content":[{"annotations":[],"text":full,"type":"output_text"}]}}));
    out
}

/// The message and retry flag of a failure shown to the user.
pub(crate) fn custom(err: AppError) -> (String, bool) {
    match err {
        AppError::Custom { message, allow_retry } => (message, allow_retry),
        other => panic!("expected a custom error, got {other:?}"),
    }
}

/// The id of the item in a `thread.item.added`/`done` event.
pub(crate) fn item_id(event: &Value) -> String {
    event["item"]["id"].as_str().unwrap().to_string()
}

/// The text of a stored assistant message.
pub(crate) fn assistant_text(item: &ThreadItem) -> String {
    match &item.kind {
        ItemKind::AssistantMessage(m) => m.content.iter().map(|c| c.text.as_str()).collect(),
        other => panic!("not an assistant message: {other:?}"),
    }
}

pub(crate) fn user_input(text: &str) -> Vec<InputItem> {
    vec![InputItem::user_text(text)]
}

pub(crate) fn wait() -> Duration {
    Duration::from_secs(20)
}

// ---- tools ----

/// `change_seat(flight_number, seat)`: streams a client effect, fails for seat `99Z`.
pub(crate) struct ChangeSeat;

#[derive(Deserialize)]
struct SeatArgs {
    flight_number: String,
    seat: String,
}

#[async_trait]
impl Tool for ChangeSeat {
    fn name(&self) -> &str {
        "change_seat"
    }
    fn description(&self) -> &str {
        "Move the passenger to a different seat on a flight."
    }
    fn parameters(&self) -> Value {
        json!({"properties":{"flight_number":{"title":"Flight Number","type":"string"},"seat":{"title":"Seat","type":"string"}},"required":["flight_number","seat"],"title":"change_seat_args","type":"object","additionalProperties":false})
    }
    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args: SeatArgs = parse_arguments(arguments)?;
        if args.seat == "99Z" {
            return Err(ToolError::Failed(format!("Seat 99Z does not exist on flight {}.", args.flight_number)));
        }
        ctx.send(ThreadStreamEvent::client_effect("customer_profile/update", json!({"seat": args.seat}))).await?;
        Ok(json!({"result": format!("Seat updated to {} on flight {}.", args.seat, args.flight_number)}))
    }
}

/// `flight_option_list(...)`: a stop tool that streams a finished assistant message.
pub(crate) struct FlightOptions;

pub(crate) const FLIGHT_OPTIONS_TEXT: &str =
    "I pulled a few flight options based on those dates and cabin preferences. Pick one to place on hold.";

#[async_trait]
impl Tool for FlightOptions {
    fn name(&self) -> &str {
        "flight_option_list"
    }
    fn description(&self) -> &str {
        "Share specific flight options after collecting destination, dates, and cabin."
    }
    fn parameters(&self) -> Value {
        json!({"properties":{"destination":{"title":"Destination","type":"string"},"depart_date":{"title":"Depart Date","type":"string"},"return_date":{"title":"Return Date","type":"string"},"cabin":{"title":"Cabin","type":"string"},"origin":{"anyOf":[{"type":"string"},{"type":"null"}],"title":"Origin"}},"required":["destination","depart_date","return_date","cabin","origin"],"title":"flight_option_list_args","type":"object","additionalProperties":false})
    }
    fn is_stop(&self) -> bool {
        true
    }
    async fn call(&self, _arguments: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let item = ThreadItem::new(
            "msg_options",
            &ctx.thread_id,
            ItemKind::AssistantMessage(AssistantMessageItem {
                content: vec![chatkit::types::AssistantMessageContent::text(FLIGHT_OPTIONS_TEXT)],
            }),
        );
        ctx.send(ThreadStreamEvent::ItemDone { item }).await?;
        Ok(json!({"result": "Shared flight options with the traveller."}))
    }
}

/// `cancel_trip()`: no arguments.
pub(crate) struct CancelTrip;

#[async_trait]
impl Tool for CancelTrip {
    fn name(&self) -> &str {
        "cancel_trip"
    }
    fn description(&self) -> &str {
        "Cancel the traveller's upcoming trip and note the refund."
    }
    fn parameters(&self) -> Value {
        json!({"properties":{},"title":"cancel_trip_args","type":"object","additionalProperties":false,"required":[]})
    }
    async fn call(&self, _arguments: Value, _ctx: &ToolContext) -> Result<Value, ToolError> {
        Ok(json!({"result": "Trip cancelled."}))
    }
}

/// `rendezvous(name)`: every call waits until `parties` calls are running (proves concurrency).
pub(crate) struct Rendezvous(pub Arc<tokio::sync::Barrier>);

#[async_trait]
impl Tool for Rendezvous {
    fn name(&self) -> &str {
        "rendezvous"
    }
    fn description(&self) -> &str {
        "Meet the other calls."
    }
    fn parameters(&self) -> Value {
        json!({"properties":{"name":{"type":"string"}},"required":["name"],"type":"object","additionalProperties":false})
    }
    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let name = arguments["name"].as_str().unwrap_or_default().to_string();
        ctx.send(ThreadStreamEvent::ProgressUpdate { icon: None, text: format!("arrived {name}") }).await?;
        tokio::time::timeout(Duration::from_secs(5), self.0.wait())
            .await
            .map_err(|_| ToolError::Failed("calls did not run concurrently".into()))?;
        Ok(json!(format!("met {name}")))
    }
}

pub(crate) fn support_agent() -> agents::Agent {
    agents::Agent::new("OpenSkies Concierge", "You are a concierge.")
        .with_temperature(0.4)
        .with_tool(Arc::new(ChangeSeat))
        .with_tool(Arc::new(CancelTrip))
        .with_tool(Arc::new(FlightOptions))
}
