//! Widget actions (`threads.custom_action`): `support::actions::handle_action` on a memory store, with the
//! action parsed from the input's JSON (as the request decoder does) or built from the bytes: one of the
//! app's action types (or another) with a payload that is a real `flight.select` payload of a generated
//! widget with fuzzed fields, or arbitrary JSON.
//!
//! Invariants:
//! * the handler never fails or panics, and every frame it sends is a `data: …\n\n` event, never `error`;
//! * unknown action types, `flight.select` payloads that do not parse and clicks on an option the
//!   widget does not offer change nothing and send nothing;
//! * a booked `flight.select` locks its widget: the `widget.root.updated` event targets the clicking
//!   widget and the stored widget equals the locked one (a reload shows what the client shows);
//!   a second click on the same widget sends nothing and books nothing (a widget books at most once);
//! * every `thread.item.done` item is in the store when it is sent, and the side-panel effect carries
//!   exactly the stored profile.

#![no_main]

use std::sync::Arc;

use bytes::Bytes;
use chatkit::store::{MemoryStore, RequestContext, Store};
use chatkit::types::{Action, ItemKind, ItemUpdate, ThreadItem, ThreadMetadata, ThreadStreamEvent};
use chatkit::{EventSink, ids};
use chatkit_fuzz::{json_object, json_string, json_value, runtime};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use support::actions::{PROFILE_EFFECT, handle_action, widget_item};
use support::airline::AirlineStore;
use support::widgets::{FLIGHT_SELECT, FlightSearch, FlightSelectPayload, Leg, generate_flight_options};
use tokio::sync::mpsc;

/// The action types the app handles.
const KNOWN: [&str; 6] = [
    FLIGHT_SELECT,
    "booking.confirm_selection",
    "booking.modify_request",
    "upsell.accept",
    "upsell.decline",
    "rebook.select_option",
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let action = if mode & 1 == 0 {
        match serde_json::from_slice::<Action>(rest) {
            Ok(action) => action,
            Err(_) => return,
        }
    } else {
        match built_action(&mut Unstructured::new(rest)) {
            Ok(action) => action,
            Err(_) => return,
        }
    };
    runtime().block_on(check(action, mode & 2 != 0));
});

fn text(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(1u8, 4)? { u.arbitrary() } else { json_string(u) }
}

/// A real `flight.select` payload (options of a widget for a fuzzed search), or arbitrary JSON, with a
/// few fields then replaced or removed.
fn built_action(u: &mut Unstructured<'_>) -> Result<Action> {
    let kind = if u.ratio(7u8, 8)? { (*u.choose(&KNOWN)?).to_string() } else { text(u)? };
    let mut payload = if kind == FLIGHT_SELECT && u.ratio(3u8, 4)? {
        let search = FlightSearch {
            origin: text(u)?,
            destination: text(u)?,
            depart_date: if u.arbitrary()? { "2025-11-03".into() } else { text(u)? },
            return_date: if u.arbitrary()? { "2025-11-10".into() } else { text(u)? },
            cabin: text(u)?,
        };
        let options = if u.ratio(3u8, 4)? { generate_flight_options(&search) } else { Vec::new() };
        let id = match u.int_in_range(0u8..=3)? {
            0 => "flight-morning".to_string(),
            1 => "flight-midday".to_string(),
            2 => "flight-late".to_string(),
            _ => text(u)?,
        };
        let leg = if u.arbitrary()? { Leg::Outbound } else { Leg::Return };
        serde_json::to_value(FlightSelectPayload { id, options, request: search, leg }).expect("payload serializes")
    } else if u.arbitrary()? {
        Value::Object(json_object(u, 3)?)
    } else {
        json_value(u, 3)?
    };
    for _ in 0..u.int_in_range(0u8..=2)? {
        mutate(&mut payload, u)?;
    }
    Ok(Action { kind, payload })
}

/// Replaces or removes one field somewhere in `value`.
fn mutate(value: &mut Value, u: &mut Unstructured<'_>) -> Result<()> {
    match value {
        Value::Object(map) if !map.is_empty() && u.ratio(2u8, 3)? => {
            let index = u.choose_index(map.len())?;
            let key = map.keys().nth(index).cloned().unwrap_or_default();
            match u.int_in_range(0u8..=2)? {
                0 => {
                    map.shift_remove(&key);
                }
                1 => mutate(map.get_mut(&key).expect("key exists"), u)?,
                _ => {
                    map.insert(key, json_value(u, 2)?);
                }
            }
        }
        Value::Array(items) if !items.is_empty() && u.ratio(2u8, 3)? => {
            let index = u.choose_index(items.len())?;
            if u.arbitrary()? {
                items.remove(index);
            } else {
                mutate(&mut items[index], u)?;
            }
        }
        other => *other = json_value(u, 2)?,
    }
    Ok(())
}

struct Harness {
    store: Arc<dyn Store>,
    ctx: RequestContext,
    airline: AirlineStore,
    thread: ThreadMetadata,
    sink: EventSink,
    rx: mpsc::Receiver<Bytes>,
}

impl Harness {
    async fn new() -> Harness {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let ctx = RequestContext::default();
        let thread = ThreadMetadata::new(ids::generate(ids::THREAD));
        store.save_thread(&ctx, &thread).await.expect("save thread");
        let (tx, rx) = mpsc::channel(1024);
        let sink = EventSink::new(store.clone(), ctx.clone(), thread.clone(), tx);
        Harness { airline: AirlineStore::new(store.clone()), store, ctx, thread, sink, rx }
    }

    /// The events sent so far, each checked to be one well-formed frame.
    fn events(&mut self) -> Vec<ThreadStreamEvent> {
        let mut out = Vec::new();
        while let Ok(frame) = self.rx.try_recv() {
            let text = std::str::from_utf8(&frame).expect("frames are UTF-8");
            let json = text
                .strip_prefix("data: ")
                .and_then(|t| t.strip_suffix("\n\n"))
                .unwrap_or_else(|| panic!("malformed frame {text:?}"));
            assert!(!json.contains(['\n', '\r']), "multi-line frame {text:?}");
            out.push(serde_json::from_str(json).unwrap_or_else(|e| panic!("frame is not an event ({e}): {json}")));
        }
        out
    }

    async fn profile(&self) -> Value {
        self.airline.profile(&self.thread.id).await.expect("profile").to_json()
    }

    async fn run(&mut self, action: &Action, sender: Option<&ThreadItem>) -> Vec<ThreadStreamEvent> {
        let thread = self.thread.clone();
        if let Err(e) = handle_action(&self.airline, &thread, action, sender, &self.sink).await {
            panic!("handle_action failed on a memory store: {e} (action {action:?})");
        }
        let events = self.events();
        let profile = self.profile().await;
        for event in &events {
            match event {
                ThreadStreamEvent::Error { .. } => panic!("an action produced an error event: {event:?}"),
                ThreadStreamEvent::ItemDone { item } => {
                    let stored = self.store.load_item(&self.ctx, &self.thread.id, &item.id).await;
                    assert_eq!(stored.as_ref().ok(), Some(item), "a sent item is not stored as sent");
                }
                ThreadStreamEvent::ClientEffect { name, data } => {
                    assert_eq!(name, PROFILE_EFFECT);
                    assert_eq!(data["profile"], profile, "the side-panel effect is not the stored profile");
                }
                _ => {}
            }
        }
        events
    }
}

async fn check(action: Action, with_sender: bool) {
    let mut h = Harness::new().await;
    let sender = if with_sender {
        let item = widget_item(&h.thread.id, serde_json::json!({"type": "ListView", "children": []}));
        h.sink.send(ThreadStreamEvent::ItemDone { item: item.clone() }).await.expect("store the widget");
        h.events();
        Some(item)
    } else {
        None
    };

    let before = h.profile().await;
    let events = h.run(&action, sender.as_ref()).await;
    let after = h.profile().await;
    let unchanged = |events: &[ThreadStreamEvent], after: &Value| {
        assert!(events.is_empty(), "{} sent {events:?}", action.kind);
        assert_eq!(&before, after, "{} changed the profile", action.kind);
    };

    if !KNOWN.contains(&action.kind.as_str()) {
        unchanged(&events, &after);
        return;
    }
    if action.kind != FLIGHT_SELECT {
        // The latent handlers answer with a message first, if at all (`rebook.select_option` ignores an
        // incomplete payload silently); the two that only talk change nothing.
        if matches!(action.kind.as_str(), "booking.modify_request" | "upsell.decline") {
            assert_eq!(events.len(), 1, "{} sent {events:?}", action.kind);
            assert_eq!(before, after, "{} changed the profile", action.kind);
        }
        if !events.is_empty() {
            assert!(
                matches!(&events[0], ThreadStreamEvent::ItemDone { item } if matches!(item.kind, ItemKind::AssistantMessage(_))),
                "{} did not answer with a message first: {events:?}",
                action.kind
            );
        }
        return;
    }

    let Ok(payload) = serde_json::from_value::<FlightSelectPayload>(action.payload.clone()) else {
        unchanged(&events, &after);
        return;
    };
    let options =
        if payload.options.is_empty() { generate_flight_options(&payload.request) } else { payload.options.clone() };
    let Some(selected) = options.iter().find(|o| o.id == payload.id) else {
        unchanged(&events, &after);
        return;
    };
    assert_ne!(before, after, "a valid flight.select booked nothing");
    assert!(
        matches!(events.last(), Some(ThreadStreamEvent::ClientEffect { name, .. }) if name == PROFILE_EFFECT),
        "a booking does not end with the profile effect: {events:?}"
    );
    let Some(sender) = sender else { return };

    // The clicked widget is locked on the selected option, in the store as on the client.
    let locked = events
        .iter()
        .find_map(|e| match e {
            ThreadStreamEvent::ItemUpdated { item_id, update: ItemUpdate::WidgetRootUpdated { widget } } => {
                assert_eq!(item_id, &sender.id);
                Some(widget.clone())
            }
            _ => None,
        })
        .expect("the clicked widget is not locked");
    assert_eq!(locked, support::widgets::locked_flight_widget(selected, &payload.request, payload.leg));
    let stored = h.store.load_item(&h.ctx, &h.thread.id, &sender.id).await.expect("widget stored");
    match &stored.kind {
        ItemKind::Widget(w) => assert_eq!(w.widget, locked, "the stored widget is not the locked one"),
        other => panic!("the widget item became {other:?}"),
    }

    // A second click on the same widget is ignored.
    let again = h.run(&action, Some(&sender)).await;
    assert!(again.is_empty(), "a second click sent {again:?}");
    assert_eq!(h.profile().await, after, "a second click on one widget booked again");
}
