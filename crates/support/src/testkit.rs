//! Test helpers shared by the unit tests: a memory store with one thread, an [`EventSink`] whose SSE
//! frames are parsed back into JSON, and header maps.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue};
use bytes::Bytes;
use chatkit::EventSink;
use chatkit::store::{MemoryStore, RequestContext, Store};
use chatkit::types::{Order, ThreadItem, ThreadMetadata};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::airline::AirlineStore;

/// One thread in a memory store with a sink streaming into a channel.
pub(crate) struct Harness {
    pub store: Arc<dyn Store>,
    pub airline: AirlineStore,
    pub ctx: RequestContext,
    pub thread: ThreadMetadata,
    pub sink: EventSink,
    rx: mpsc::Receiver<Bytes>,
}

impl Harness {
    pub(crate) async fn new() -> Self {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let ctx = RequestContext::default();
        let thread = ThreadMetadata::new("thr_test");
        store.save_thread(&ctx, &thread).await.unwrap();
        let (tx, rx) = mpsc::channel(1024);
        let sink = EventSink::new(store.clone(), ctx.clone(), thread.clone(), tx);
        Harness { airline: AirlineStore::new(store.clone()), store, ctx, thread, sink, rx }
    }

    /// The events sent so far (parsed from their SSE frames), draining the channel.
    pub(crate) fn events(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(frame) = self.rx.try_recv() {
            let text = std::str::from_utf8(&frame).unwrap();
            let json = text.strip_prefix("data: ").unwrap().strip_suffix("\n\n").unwrap();
            out.push(serde_json::from_str(json).unwrap());
        }
        out
    }

    /// Every stored item of the thread, oldest first (hidden ones included).
    pub(crate) async fn items(&self) -> Vec<ThreadItem> {
        self.store.load_thread_items(&self.ctx, &self.thread.id, None, 1000, Order::Asc).await.unwrap().data
    }
}

/// `(type, short description)` of each event, for order assertions.
pub(crate) fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let t = e["type"].as_str().unwrap();
            match t {
                "thread.item.done" | "thread.item.added" => {
                    format!("{t}:{}", e["item"]["type"].as_str().unwrap())
                }
                "thread.item.updated" => {
                    format!("{t}:{}", e["update"]["type"].as_str().unwrap())
                }
                "client_effect" => format!("{t}:{}", e["name"].as_str().unwrap()),
                _ => t.to_string(),
            }
        })
        .collect()
}

/// A header map of static `(name, value)` pairs.
pub(crate) fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_static(v));
    }
    h
}
