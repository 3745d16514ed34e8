//! The wrapper forwards every [`Store`] method to the wrapped store under its own name, and measures and
//! traces each operation under that name.

use std::collections::BTreeSet;
use std::sync::Mutex;

use chatkit::store::MemoryStore;
use chatkit::store::UsageTotals;
use chatkit::types::{AttachmentKind, HiddenContextItem, ItemKind, Timestamp};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use tracing::field::{Field, Visit};
use tracing::span;

use super::*;

/// A store that answers every method, the defaulted ones included, by writing its name down.
#[derive(Default)]
struct Probe {
    calls: Mutex<Vec<&'static str>>,
}

impl Probe {
    fn called<T>(&self, name: &'static str) -> StoreResult<T> {
        self.calls.lock().unwrap().push(name);
        Err(StoreError::Database(format!("probe: {name}")))
    }
}

#[async_trait]
impl Store for Probe {
    async fn load_thread(&self, _: &RequestContext, _: &str) -> StoreResult<ThreadMetadata> {
        self.called("load_thread")
    }
    async fn save_thread(&self, _: &RequestContext, _: &ThreadMetadata) -> StoreResult<()> {
        self.called("save_thread")
    }
    async fn create_thread_with_item(&self, _: &RequestContext, _: &ThreadMetadata, _: &ThreadItem) -> StoreResult<()> {
        self.called("create_thread_with_item")
    }
    async fn update_thread(&self, _: &RequestContext, _: &str, _: ThreadChange) -> StoreResult<(ThreadMetadata, bool)> {
        self.called("update_thread")
    }
    async fn load_threads(
        &self,
        _: &RequestContext,
        _: usize,
        _: Option<&str>,
        _: Order,
    ) -> StoreResult<Page<ThreadMetadata>> {
        self.called("load_threads")
    }
    async fn delete_thread(&self, _: &RequestContext, _: &str) -> StoreResult<()> {
        self.called("delete_thread")
    }
    async fn prune_tombstones(&self, _: Duration) -> StoreResult<u64> {
        self.called("prune_tombstones")
    }
    async fn load_thread_items(
        &self,
        _: &RequestContext,
        _: &str,
        _: Option<&str>,
        _: usize,
        _: Order,
    ) -> StoreResult<Page<ThreadItem>> {
        self.called("load_thread_items")
    }
    async fn add_thread_item(&self, _: &RequestContext, _: &str, _: &ThreadItem) -> StoreResult<()> {
        self.called("add_thread_item")
    }
    async fn save_item(&self, _: &RequestContext, _: &str, _: &ThreadItem) -> StoreResult<()> {
        self.called("save_item")
    }
    async fn load_item(&self, _: &RequestContext, _: &str, _: &str) -> StoreResult<ThreadItem> {
        self.called("load_item")
    }
    async fn delete_thread_item(&self, _: &RequestContext, _: &str, _: &str) -> StoreResult<()> {
        self.called("delete_thread_item")
    }
    async fn delete_items_after(&self, _: &RequestContext, _: &str, _: &str) -> StoreResult<u64> {
        self.called("delete_items_after")
    }
    async fn create_attachment(&self, _: &RequestContext, _: &Attachment, _: u64) -> StoreResult<()> {
        self.called("create_attachment")
    }
    async fn save_attachment(&self, _: &RequestContext, _: &Attachment) -> StoreResult<()> {
        self.called("save_attachment")
    }
    async fn load_attachment(&self, _: &RequestContext, _: &str) -> StoreResult<Attachment> {
        self.called("load_attachment")
    }
    async fn delete_attachment(&self, _: &RequestContext, _: &str) -> StoreResult<()> {
        self.called("delete_attachment")
    }
    async fn save_attachment_data(&self, _: &RequestContext, _: &str, _: &[u8]) -> StoreResult<()> {
        self.called("save_attachment_data")
    }
    async fn load_attachment_data(&self, _: &RequestContext, _: &str) -> StoreResult<Option<Vec<u8>>> {
        self.called("load_attachment_data")
    }
    async fn attachment_bytes(&self, _: &RequestContext, _: Option<&str>) -> StoreResult<u64> {
        self.called("attachment_bytes")
    }
    async fn record_usage(&self, _: &RequestContext, _: &TurnUsage) -> StoreResult<()> {
        self.called("record_usage")
    }
    async fn usage_by_model(&self, _: &RequestContext, _: Option<&str>) -> StoreResult<Vec<ModelUsage>> {
        self.called("usage_by_model")
    }
    async fn kv_get(&self, _: &str, _: &str) -> StoreResult<Option<Versioned>> {
        self.called("kv_get")
    }
    async fn kv_compare_and_set(&self, _: &str, _: &str, _: Option<i64>, _: &Value) -> StoreResult<bool> {
        self.called("kv_compare_and_set")
    }
    async fn kv_delete(&self, _: &str, _: &str) -> StoreResult<()> {
        self.called("kv_delete")
    }
    async fn lock_thread(&self, _: &str, _: Duration) -> StoreResult<ThreadLock> {
        self.called("lock_thread")
    }
    async fn ping(&self) -> StoreResult<()> {
        self.called("ping")
    }
    async fn check_writable(&self) -> StoreResult<()> {
        self.called("check_writable")
    }
    async fn close(&self) {
        let _ = self.called::<()>("close");
    }
    fn describe(&self) -> String {
        self.calls.lock().unwrap().push("describe");
        "probe://".to_string()
    }
    fn pool_status(&self) -> Option<PoolStatus> {
        self.calls.lock().unwrap().push("pool_status");
        Some(PoolStatus { in_use: 1, idle: 2, max: 3 })
    }
    fn deleted_threads(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.calls.lock().unwrap().push("deleted_threads");
        None
    }
}

/// Calls every method of `store` once, in the order of [`EVERY_METHOD`].
async fn call_every_method(store: &dyn Store) {
    let ctx = RequestContext::default();
    let thread = ThreadMetadata::new("thr_1");
    let item =
        ThreadItem::new("cx_1", "thr_1", ItemKind::HiddenContextItem(HiddenContextItem { content: Value::Null }));
    let attachment = Attachment {
        id: "atc_1".into(),
        name: "a.txt".into(),
        mime_type: "text/plain".into(),
        upload_descriptor: None,
        thread_id: None,
        kind: AttachmentKind::File,
    };
    let usage = TurnUsage {
        thread_id: "thr_1".into(),
        provider: "OpenAI".into(),
        model: "gpt".into(),
        model_calls: 1,
        tokens: UsageTotals::default(),
        created_at: Timestamp::now(),
    };
    let _ = store.load_thread(&ctx, "thr_1").await;
    let _ = store.save_thread(&ctx, &thread).await;
    let _ = store.create_thread_with_item(&ctx, &thread, &item).await;
    let _ = store.update_thread(&ctx, "thr_1", Box::new(|_| true)).await;
    let _ = store.load_threads(&ctx, 10, None, Order::Asc).await;
    let _ = store.delete_thread(&ctx, "thr_1").await;
    let _ = store.prune_tombstones(Duration::from_secs(60)).await;
    let _ = store.load_thread_items(&ctx, "thr_1", None, 10, Order::Asc).await;
    let _ = store.add_thread_item(&ctx, "thr_1", &item).await;
    let _ = store.save_item(&ctx, "thr_1", &item).await;
    let _ = store.load_item(&ctx, "thr_1", "cx_1").await;
    let _ = store.delete_thread_item(&ctx, "thr_1", "cx_1").await;
    let _ = store.delete_items_after(&ctx, "thr_1", "cx_1").await;
    let _ = store.create_attachment(&ctx, &attachment, 3).await;
    let _ = store.save_attachment(&ctx, &attachment).await;
    let _ = store.load_attachment(&ctx, "atc_1").await;
    let _ = store.delete_attachment(&ctx, "atc_1").await;
    let _ = store.save_attachment_data(&ctx, "atc_1", b"abc").await;
    let _ = store.load_attachment_data(&ctx, "atc_1").await;
    let _ = store.attachment_bytes(&ctx, None).await;
    let _ = store.record_usage(&ctx, &usage).await;
    let _ = store.usage_by_model(&ctx, None).await;
    let _ = store.kv_get("ns", "k").await;
    let _ = store.kv_compare_and_set("ns", "k", None, &Value::Null).await;
    let _ = store.kv_delete("ns", "k").await;
    let _ = store.lock_thread("thr_1", Duration::from_millis(1)).await;
    let _ = store.ping().await;
    let _ = store.check_writable().await;
    store.close().await;
    let _ = store.describe();
    let _ = store.pool_status();
    let _ = store.deleted_threads();
}

const EVERY_METHOD: &[&str] = &[
    "load_thread",
    "save_thread",
    "create_thread_with_item",
    "update_thread",
    "load_threads",
    "delete_thread",
    "prune_tombstones",
    "load_thread_items",
    "add_thread_item",
    "save_item",
    "load_item",
    "delete_thread_item",
    "delete_items_after",
    "create_attachment",
    "save_attachment",
    "load_attachment",
    "delete_attachment",
    "save_attachment_data",
    "load_attachment_data",
    "attachment_bytes",
    "record_usage",
    "usage_by_model",
    "kv_get",
    "kv_compare_and_set",
    "kv_delete",
    "lock_thread",
    "ping",
    "check_writable",
    "close",
    "describe",
    "pool_status",
    "deleted_threads",
];

/// The methods that report no outcome of their own and so are neither measured nor traced.
const UNMEASURED: &[&str] = &["describe", "pool_status", "deleted_threads"];

/// The names of the methods the `Store` trait declares, read from its source: a method added to the
/// trait makes [`the_calls_cover_every_method_of_the_trait`] fail until it is forwarded and called here.
fn trait_methods() -> BTreeSet<String> {
    let source = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../chatkit/src/store/mod.rs"));
    let body = source.split_once("pub trait Store").map(|(_, rest)| rest).unwrap_or_default();
    body.lines()
        .take_while(|line| *line != "}")
        .filter_map(|line| line.strip_prefix("    async fn ").or_else(|| line.strip_prefix("    fn ")))
        .filter_map(|signature| signature.split(['(', '<']).next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_calls_cover_every_method_of_the_trait() {
    let declared = trait_methods();
    assert!(declared.len() > 20, "the trait's methods were not found in its source: {declared:?}");
    let called: BTreeSet<String> = EVERY_METHOD.iter().map(|m| m.to_string()).collect();
    assert_eq!(declared, called, "every Store method must be forwarded by InstrumentedStore and called here");
}

/// Keeps the `operation` label of every store metric registered while it is installed.
#[derive(Default)]
struct Operations {
    timed: Mutex<Vec<String>>,
    failed: Mutex<Vec<String>>,
}

fn label(key: &Key, name: &str) -> String {
    key.labels().find(|l| l.key() == name).map(|l| l.value().to_string()).unwrap_or_default()
}

impl Recorder for Operations {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        if key.name() == STORE_OPERATION_ERRORS {
            assert_eq!(label(key, "backend"), "postgres");
            assert_eq!(label(key, "error"), "database");
            self.failed.lock().unwrap().push(label(key, "operation"));
        }
        Counter::noop()
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        if key.name() == STORE_OPERATION_DURATION {
            assert_eq!(label(key, "backend"), "postgres");
            self.timed.lock().unwrap().push(label(key, "operation"));
        }
        Histogram::noop()
    }
}

/// Keeps `(otel.name, db.system.name, db.operation.name)` of every span opened while it is the subscriber.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<[String; 3]>>>);

#[derive(Default)]
struct SpanFields([String; 3]);

impl Visit for SpanFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            "otel.name" => 0,
            "db.system.name" => 1,
            "db.operation.name" => 2,
            _ => return,
        };
        self.0[slot] = value.to_string();
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

impl tracing::Subscriber for Spans {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attributes: &span::Attributes<'_>) -> span::Id {
        let mut fields = SpanFields::default();
        attributes.record(&mut fields);
        let mut spans = self.0.lock().unwrap();
        spans.push(fields.0);
        span::Id::from_u64(spans.len() as u64)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

/// Runs every method through the wrapper around a probe, with a recorder and a span subscriber installed.
fn instrument_every_call(trace: bool) -> (Vec<&'static str>, Operations, Vec<[String; 3]>) {
    let probe = Arc::new(Probe::default());
    let store = InstrumentedStore::new(probe.clone(), "postgres", trace);
    let operations = Operations::default();
    let spans = Spans::default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    metrics::with_local_recorder(&operations, || {
        tracing::subscriber::with_default(spans.clone(), || runtime.block_on(call_every_method(&store)))
    });
    let calls = probe.calls.lock().unwrap().clone();
    let opened = spans.0.lock().unwrap().clone();
    (calls, operations, opened)
}

#[test]
fn every_method_reaches_the_wrapped_store_under_its_own_name() {
    let (calls, _, _) = instrument_every_call(false);
    assert_eq!(calls, EVERY_METHOD);
}

#[test]
fn every_operation_is_measured_under_its_own_name() {
    let (_, operations, spans) = instrument_every_call(false);
    let measured: Vec<&str> = EVERY_METHOD.iter().copied().filter(|m| !UNMEASURED.contains(m)).collect();
    assert_eq!(*operations.timed.lock().unwrap(), measured);
    // The probe fails every operation that can fail; `close` cannot.
    let failed: Vec<&str> = measured.iter().copied().filter(|m| *m != "close").collect();
    assert_eq!(*operations.failed.lock().unwrap(), failed);
    assert!(spans.is_empty(), "spans without tracing: {spans:?}");
}

#[test]
fn traced_operations_run_in_a_span_named_after_them() {
    let (calls, _, spans) = instrument_every_call(true);
    assert_eq!(calls, EVERY_METHOD);
    let expected: Vec<[String; 3]> = EVERY_METHOD
        .iter()
        .filter(|m| !UNMEASURED.contains(m) && **m != "close")
        .map(|m| [format!("store {m}"), "postgresql".to_string(), m.to_string()])
        .collect();
    assert_eq!(spans, expected);
}

/// A real store behind the wrapper answers as itself.
#[tokio::test]
async fn answers_as_the_wrapped_store() {
    let store = InstrumentedStore::new(Arc::new(MemoryStore::new()), "memory", true);
    let ctx = RequestContext::default();
    assert!(store.load_thread(&ctx, "thr_missing").await.unwrap_err().is_not_found());
    assert!(store.kv_compare_and_set("ns", "k", None, &serde_json::json!(1)).await.unwrap());
    assert_eq!(store.kv_get("ns", "k").await.unwrap().map(|v| v.value), Some(serde_json::json!(1)));
    store.ping().await.unwrap();
    assert_eq!(store.describe(), "memory://");
    assert_eq!(store.pool_status(), None);
}

/// An operation's histogram is made at its first run and kept: later runs do not register it again
/// (a failure's counter, labelled by the error too, is still looked up each time).
#[test]
fn an_operation_registers_its_histogram_once() {
    let store = InstrumentedStore::new(Arc::new(Probe::default()), "postgres", false);
    let operations = Operations::default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    metrics::with_local_recorder(&operations, || {
        runtime.block_on(async {
            for _ in 0..3 {
                assert!(store.ping().await.is_err());
            }
            assert!(store.check_writable().await.is_err());
        })
    });
    assert_eq!(*operations.timed.lock().unwrap(), ["ping", "check_writable"]);
    assert_eq!(*operations.failed.lock().unwrap(), ["ping", "ping", "ping", "check_writable"]);
}
