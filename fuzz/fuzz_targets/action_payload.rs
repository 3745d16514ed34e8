//! Widget actions (`threads.custom_action`): `support::actions::handle_action` on a memory store holding
//! a flight-options widget for a fuzzed search and a widget offering the booking, upgrade and rebooking
//! actions with fuzzed payloads. The action is parsed from the input's JSON (as the request decoder does)
//! or built from the bytes: one the widgets offer, as is or with a field replaced or removed, or any
//! type with any payload; it is sent by one of the widgets or by none.
//!
//! Invariants:
//! * the handler never panics, and fails only to refuse: an `AppError::BadRequest` with one of the
//!   [`Rejection`] texts, after which nothing was sent, stored or changed;
//! * unknown action types change nothing and send nothing;
//! * an action of a handled type runs only if its sender offers exactly that type and payload (the
//!   fuzzer keeps its own list of what it put in the widgets); anything else is refused;
//! * a booked `flight.select` locks its widget: the `widget.root.updated` event targets the clicking
//!   widget and the stored widget equals the locked one (a reload shows what the client shows);
//! * a second identical action on a widget that was used is refused and changes nothing (a widget answers
//!   once);
//! * every frame is a `data: …\n\n` event, never `error` (refusals are the pipeline's to send); every
//!   `thread.item.done` item is in the store when it is sent, and the side-panel effect carries exactly
//!   the stored profile.

#![no_main]

use std::sync::Arc;

use bytes::Bytes;
use chatkit::store::{MemoryStore, RequestContext, Store};
use chatkit::types::{Action, ItemKind, ItemUpdate, Order, ThreadItem, ThreadMetadata, ThreadStreamEvent};
use chatkit::{AppError, EventSink, ids};
use chatkit_fuzz::{json_object, json_string, json_value, runtime};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use support::actions::{ACTION_TYPES, PROFILE_EFFECT, Rejection, handle_action, widget_item};
use support::airline::AirlineStore;
use support::widgets::{
    FLIGHT_SELECT, FlightSearch, FlightSelectPayload, Leg, flight_options_widget, generate_flight_options,
};
use tokio::sync::mpsc;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::build(&mut u) else { return };
    let Ok(mode) = u.int_in_range(0u8..=3) else { return };
    let sender = match u.int_in_range(0u8..=3) {
        Ok(0) => Sender::None,
        Ok(1) => Sender::Latent,
        _ => Sender::Flight,
    };
    let action = if mode == 0 {
        match serde_json::from_slice::<Action>(u.take_rest()) {
            Ok(action) => action,
            Err(_) => return,
        }
    } else {
        match built_action(&mut u, &setup) {
            Ok(action) => action,
            Err(_) => return,
        }
    };
    runtime().block_on(check(setup, action, sender));
});

fn text(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(1u8, 4)? { u.arbitrary() } else { json_string(u) }
}

/// What the fuzzer puts in the thread's two widgets: the flight options of a fuzzed search, and a list
/// offering latent actions with fuzzed payloads. Each list of actions is the oracle of what is offered.
struct Setup {
    search: FlightSearch,
    leg: Leg,
    flight_actions: Vec<Action>,
    latent_actions: Vec<Action>,
}

impl Setup {
    fn build(u: &mut Unstructured<'_>) -> Result<Setup> {
        let search = FlightSearch {
            origin: text(u)?,
            destination: text(u)?,
            depart_date: if u.arbitrary()? { "2025-11-03".into() } else { text(u)? },
            return_date: if u.arbitrary()? { "2025-11-10".into() } else { text(u)? },
            cabin: text(u)?,
        };
        let leg = if u.arbitrary()? { Leg::Outbound } else { Leg::Return };
        let options = generate_flight_options(&search);
        let flight_actions = options
            .iter()
            .map(|o| Action {
                kind: FLIGHT_SELECT.into(),
                payload: serde_json::to_value(FlightSelectPayload {
                    id: o.id.clone(),
                    options: options.clone(),
                    request: search.clone(),
                    leg,
                })
                .expect("payload serializes"),
            })
            .collect();
        let mut latent_actions = Vec::new();
        for _ in 0..u.int_in_range(1u8..=3)? {
            let kind = (*u.choose(&ACTION_TYPES[1..])?).to_string();
            let payload = if u.ratio(3u8, 4)? { Value::Object(json_object(u, 2)?) } else { json_value(u, 2)? };
            latent_actions.push(Action { kind, payload });
        }
        Ok(Setup { search, leg, flight_actions, latent_actions })
    }

    fn latent_widget(&self) -> Value {
        let children: Vec<Value> = self
            .latent_actions
            .iter()
            .enumerate()
            .map(|(i, a)| {
                json!({"type": "ListViewItem", "key": format!("option-{i}"),
                       "onClickAction": {"type": a.kind, "handler": "server", "payload": a.payload}})
            })
            .collect();
        json!({"type": "ListView", "children": children})
    }
}

/// Which stored widget sends the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sender {
    None,
    Flight,
    Latent,
}

/// One of the offered actions (as is, or with a few fields replaced or removed), or any type with any
/// payload.
fn built_action(u: &mut Unstructured<'_>, setup: &Setup) -> Result<Action> {
    let mut action = match u.int_in_range(0u8..=3)? {
        0 | 1 => u.choose(&setup.flight_actions)?.clone(),
        2 => u.choose(&setup.latent_actions)?.clone(),
        _ => {
            let kind = if u.ratio(7u8, 8)? { (*u.choose(&ACTION_TYPES)?).to_string() } else { text(u)? };
            let payload = if u.arbitrary()? { Value::Object(json_object(u, 3)?) } else { json_value(u, 3)? };
            Action { kind, payload }
        }
    };
    for _ in 0..u.int_in_range(0u8..=2)? {
        mutate(&mut action.payload, u)?;
    }
    Ok(action)
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

    /// Stores a widget item in the thread.
    async fn store_widget(&mut self, widget: Value) -> ThreadItem {
        let item = widget_item(&self.thread.id, widget);
        self.sink.send(ThreadStreamEvent::ItemDone { item: item.clone() }).await.expect("store the widget");
        self.events();
        item
    }

    async fn items(&self) -> Vec<ThreadItem> {
        let page = self.store.load_thread_items(&self.ctx, &self.thread.id, None, 1000, Order::Asc).await;
        page.expect("items").data
    }

    /// Runs the action: its events, or the refusal (after which nothing may have been sent).
    async fn run(
        &mut self,
        action: &Action,
        sender: Option<&ThreadItem>,
    ) -> std::result::Result<Vec<ThreadStreamEvent>, Rejection> {
        let thread = self.thread.clone();
        let outcome = handle_action(&self.airline, &thread, action, sender, &self.sink).await;
        let events = self.events();
        if let Err(e) = outcome {
            let rejection = [Rejection::NoWidget, Rejection::AlreadyUsed, Rejection::NotOffered]
                .into_iter()
                .find(|r| matches!(&e, AppError::BadRequest(m) if *m == r.to_string()))
                .unwrap_or_else(|| panic!("handle_action failed on a memory store: {e} (action {action:?})"));
            assert!(events.is_empty(), "a refused action sent {events:?}");
            return Err(rejection);
        }
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
        Ok(events)
    }
}

/// Runs the action (and, when it did something, the same action again) and checks the invariants.
async fn check(setup: Setup, action: Action, sender: Sender) {
    let mut h = Harness::new().await;
    let flight = h
        .store_widget(flight_options_widget(&generate_flight_options(&setup.search), &setup.search, None, setup.leg))
        .await;
    let latent = h.store_widget(setup.latent_widget()).await;
    let (sender, offered) = match sender {
        Sender::None => (None, &[][..]),
        Sender::Flight => (Some(&flight), &setup.flight_actions[..]),
        Sender::Latent => (Some(&latent), &setup.latent_actions[..]),
    };

    let before = h.profile().await;
    let items_before = h.items().await;
    let outcome = h.run(&action, sender).await;
    let after = h.profile().await;

    if !ACTION_TYPES.contains(&action.kind.as_str()) {
        let events = outcome.unwrap_or_else(|r| panic!("an unknown action type was refused: {r:?}"));
        assert!(events.is_empty(), "{} sent {events:?}", action.kind);
        assert_eq!(before, after, "{} changed the profile", action.kind);
        return;
    }
    if !offered.contains(&action) {
        let expected = if sender.is_none() { Rejection::NoWidget } else { Rejection::NotOffered };
        assert_eq!(outcome, Err(expected), "{action:?} from {:?}", sender.map(|s| &s.id));
        assert_eq!(before, after, "a refused {} changed the profile", action.kind);
        assert_eq!(h.items().await, items_before, "a refused {} changed the thread", action.kind);
        return;
    }
    let sender = sender.expect("offered actions have a sender");
    let events = outcome.unwrap_or_else(|r| panic!("an offered {action:?} was refused: {r:?}"));
    if !events.is_empty() {
        assert!(
            matches!(&events[0], ThreadStreamEvent::ItemDone { item } if matches!(item.kind, ItemKind::AssistantMessage(_))),
            "{} did not answer with a message first: {events:?}",
            action.kind
        );
    }

    if action.kind == FLIGHT_SELECT {
        let payload: FlightSelectPayload = serde_json::from_value(action.payload.clone()).expect("offered payload");
        let selected = payload.options.iter().find(|o| o.id == payload.id).expect("offered option");
        assert_ne!(before, after, "a valid flight.select booked nothing");
        assert!(
            matches!(events.last(), Some(ThreadStreamEvent::ClientEffect { name, .. }) if name == PROFILE_EFFECT),
            "a booking does not end with the profile effect: {events:?}"
        );
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
    }

    // A used widget refuses the same action again and changes nothing.
    let used = serde_json::from_value::<Vec<String>>(after["booked_widget_ids"].clone())
        .expect("booked_widget_ids")
        .contains(&sender.id);
    assert!(used || action.kind != FLIGHT_SELECT, "a booking did not use its widget");
    assert!(used || before == after, "{} changed the profile without using its widget", action.kind);
    if used {
        let items = h.items().await;
        assert_eq!(h.run(&action, Some(sender)).await, Err(Rejection::AlreadyUsed), "a second {}", action.kind);
        assert_eq!(h.profile().await, after, "a second {} on one widget changed the profile", action.kind);
        assert_eq!(h.items().await, items, "a second {} on one widget changed the thread", action.kind);
    }
}
