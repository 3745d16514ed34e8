//! Unit tests of the widget actions: the flight-selection flow, the refusals of actions their widget did
//! not offer, and the booking, upgrade and rebooking handlers behind a widget that offers them.

use super::*;
use crate::airline::NAMESPACE;
use crate::testkit::{Harness, kinds};
use crate::widgets::{FlightSearch, Leg, flight_options_widget, generate_flight_options, locked_flight_widget};
use chatkit::types::ItemKind;

fn paris() -> FlightSearch {
    FlightSearch {
        origin: "SFO".into(),
        destination: "CDG".into(),
        depart_date: "2025-11-03".into(),
        return_date: "2025-11-10".into(),
        cabin: "business".into(),
    }
}

async fn add_widget(h: &mut Harness, search: &FlightSearch, leg: Leg) -> ThreadItem {
    let widget = flight_options_widget(&generate_flight_options(search), search, None, leg);
    let item = widget_item(&h.thread.id, widget);
    h.sink.send(ThreadStreamEvent::ItemDone { item: item.clone() }).await.unwrap();
    h.events();
    item
}

fn click(widget: &ThreadItem, option_id: &str) -> Action {
    let ItemKind::Widget(w) = &widget.kind else { panic!("not a widget") };
    let item = w.widget["children"].as_array().unwrap().iter().find(|c| c["key"] == option_id).unwrap();
    let action = &item["onClickAction"];
    Action { kind: action["type"].as_str().unwrap().into(), payload: action["payload"].clone() }
}

fn message_text(event: &Value) -> &str {
    assert_eq!(event["item"]["type"], "assistant_message");
    assert_eq!(event["item"]["id"].as_str().unwrap().len(), 28);
    assert!(event["item"]["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(event["item"]["content"].as_array().unwrap().len(), 1);
    event["item"]["content"][0]["text"].as_str().unwrap()
}

async fn run(h: &mut Harness, action: &Action, sender: Option<&ThreadItem>) -> Vec<Value> {
    let thread = h.thread.clone();
    handle_action(&h.airline, &thread, action, sender, &h.sink).await.unwrap();
    h.events()
}

/// Runs an action that must be refused for `reason`: nothing sent, nothing stored, the profile unchanged.
async fn refused(h: &mut Harness, action: &Action, sender: Option<&ThreadItem>, reason: Rejection) {
    let thread = h.thread.clone();
    let stored_profile = async |h: &Harness| h.store.kv_get(NAMESPACE, &h.thread.id).await.unwrap().map(|v| v.value);
    let (profile, items) = (stored_profile(h).await, h.items().await);
    match handle_action(&h.airline, &thread, action, sender, &h.sink).await {
        Err(AppError::BadRequest(message)) => assert_eq!(message, reason.to_string(), "{action:?}"),
        other => panic!("{action:?} was not refused: {other:?}"),
    }
    assert_eq!(h.events(), Vec::<Value>::new(), "{action:?}");
    assert_eq!(stored_profile(h).await, profile, "{action:?}");
    assert_eq!(h.items().await, items, "{action:?}");
}

/// A stored widget whose items offer `actions`, one per item.
async fn offering(h: &mut Harness, actions: &[Value]) -> ThreadItem {
    let children: Vec<Value> = actions
        .iter()
        .enumerate()
        .map(|(i, action)| json!({"type": "ListViewItem", "key": format!("option-{i}"), "onClickAction": action}))
        .collect();
    let item = widget_item(&h.thread.id, json!({"type": "ListView", "children": children}));
    h.sink.send(ThreadStreamEvent::ItemDone { item: item.clone() }).await.unwrap();
    h.events();
    item
}

fn act(kind: &str, payload: Value) -> Action {
    Action { kind: kind.into(), payload }
}

fn offered(action: &Action) -> Value {
    json!({"type": action.kind, "handler": "server", "payload": action.payload})
}

/// Select the midday outbound, then the late return; a second click on the outbound widget is refused.
#[tokio::test]
async fn flight_select_outbound_then_return_then_repeat() {
    let mut h = Harness::new().await;
    let w = add_widget(&mut h, &paris(), Leg::Outbound).await;

    let events = run(&mut h, &click(&w, "flight-midday"), Some(&w)).await;
    assert_eq!(
        kinds(&events),
        vec![
            "thread.item.done:assistant_message",
            "thread.item.updated:widget.root.updated",
            "thread.item.done:assistant_message",
            "thread.item.done:widget",
            "client_effect:customer_profile/update",
        ]
    );
    let profile = h.airline.profile(&h.thread.id).await.unwrap();
    let seg = &profile.segments[2];
    let seat = seg.seat.clone();
    assert_eq!(
        message_text(&events[0]),
        format!(
            "Scheduled: Business SFO → CDG on Mon, Nov 3 departing 12:35 (arrives 21:05); return on 2025-11-10. \
             Seat {seat} for now; You're scheduled on that option. I'll surface a few returns now."
        )
    );
    assert_eq!(events[1]["item_id"], w.id.as_str());
    let locked = &events[1]["update"]["widget"];
    assert_eq!(locked, &locked_flight_widget(&generate_flight_options(&paris())[1], &paris(), Leg::Outbound));
    assert_eq!(message_text(&events[2]), "Here are return options that line up with your trip:");
    let back = &events[3]["item"]["widget"];
    let back_search = paris().return_search();
    assert_eq!(back, &flight_options_widget(&generate_flight_options(&back_search), &back_search, None, Leg::Return));
    assert_eq!(
        back["children"][0]["children"][0]["children"][0]["children"][1]["children"][0]["children"][0]["value"],
        "CDG → SFO"
    );
    assert_eq!(back["children"][0]["onClickAction"]["payload"]["leg"], "return");
    assert_eq!(events[4]["data"]["profile"], profile.to_json());

    // State: hold + booking logged, widget consumed.
    assert_eq!(
        serde_json::to_value(seg).unwrap(),
        json!({"flight_number":"OA917","date":"2025-11-03","origin":"SFO","destination":"CDG","departure_time":"12:35",
               "arrival_time":"21:05","seat":seat,"status":"Scheduled"})
    );
    let (row, letter) = seat.split_at(seat.len() - 1);
    assert!((4..=9).contains(&row.parse::<u32>().unwrap()) && "ACDF".contains(letter));
    assert_eq!(profile.timeline[0].entry, format!("Scheduled: OA917 SFO->CDG on 2025-11-03 12:35-21:05 seat {seat}."));
    assert_eq!(profile.timeline[1].entry, "Placed hold for CDG: 2025-11-03 SFO→CDG 12:35 / 2025-11-10 CDG→SFO.");
    assert_eq!(profile.booked_widget_ids, vec![w.id.clone()]);

    // Stored: W locked (persisted improvement), messages, R, then the hidden context.
    let items = h.items().await;
    let types: Vec<&str> = items.iter().map(|i| i.type_name()).collect();
    assert_eq!(types, vec!["widget", "assistant_message", "assistant_message", "widget", "hidden_context_item"]);
    let ItemKind::Widget(stored_w) = &items[0].kind else { panic!() };
    assert_eq!(&stored_w.widget, locked);
    let ItemKind::HiddenContextItem(hidden) = &items[4].kind else { panic!() };
    let payload_json = serde_json::to_string(&click(&w, "flight-midday").payload).unwrap();
    assert_eq!(
        hidden.content,
        Value::String(format!(
            "<WIDGET_ACTION widgetId={}>flight.select payload: {payload_json}</WIDGET_ACTION>",
            w.id
        ))
    );
    assert!(
        payload_json.starts_with(r#"{"id":"flight-midday","options":[{"id":"flight-morning","from_airport":"SFO""#)
    );
    assert!(payload_json.ends_with(r#""request":{"origin":"SFO","destination":"CDG","depart_date":"2025-11-03","return_date":"2025-11-10","cabin":"business"},"leg":"outbound"}"#));

    // The return widget.
    let r = items[3].clone();
    let events = run(&mut h, &click(&r, "flight-late"), Some(&r)).await;
    assert_eq!(
        kinds(&events),
        vec![
            "thread.item.done:assistant_message",
            "thread.item.updated:widget.root.updated",
            "client_effect:customer_profile/update"
        ]
    );
    let profile = h.airline.profile(&h.thread.id).await.unwrap();
    let seg = &profile.segments[3];
    assert_eq!(
        message_text(&events[0]),
        format!(
            "Scheduled: Business CDG → SFO on Mon, Nov 10 departing 21:55 (arrives 06:20 (+1)); return on 2025-11-03. \
             Seat {} for now; Return scheduled. Want me to watch for upgrades?",
            seg.seat
        )
    );
    assert_eq!((seg.flight_number.as_str(), seg.date.as_str()), ("OA927", "2025-11-10"));
    assert_eq!((seg.origin.as_str(), seg.destination.as_str()), ("CDG", "SFO"));
    assert_eq!((seg.departure_time.as_str(), seg.arrival_time.as_str()), ("21:55", "06:20 (+1)"));
    assert_eq!(
        profile.timeline[0].entry,
        format!("Scheduled: OA927 CDG->SFO on 2025-11-10 21:55-06:20 (+1) seat {}.", seg.seat)
    );
    assert_eq!(profile.timeline[1].entry, "Placed hold for SFO: 2025-11-10 CDG→SFO 21:55 / 2025-11-03 SFO→CDG.");
    assert_eq!(profile.booked_widget_ids, vec![w.id.clone(), r.id.clone()]);

    // W again, as the client still shows it: the widget was used.
    refused(&mut h, &click(&w, "flight-morning"), Some(&w), Rejection::AlreadyUsed).await;
    refused(&mut h, &click(&w, "flight-midday"), Some(&w), Rejection::AlreadyUsed).await;
    assert_eq!(h.items().await.len(), 7);
}

#[tokio::test]
async fn an_action_without_its_widget_is_refused() {
    let mut h = Harness::new().await;
    let w = add_widget(&mut h, &paris(), Leg::Outbound).await;
    for action in [
        click(&w, "flight-morning"),
        act("rebook.select_option", json!({"flight_number":"OA477","option_id":"opt1","depart_time":"20:10"})),
        act("upsell.accept", json!({"cabin_name":"Premium Plus","price":"$199"})),
        act("upsell.decline", json!({"cabin_name":"Premium Plus"})),
        act("booking.confirm_selection", json!({"destination":"CDG"})),
        act("booking.modify_request", Value::Null),
    ] {
        refused(&mut h, &action, None, Rejection::NoWidget).await;
    }
    // Nothing was written, not even a profile for the thread.
    assert!(h.store.kv_get(NAMESPACE, &h.thread.id).await.unwrap().is_none());
}

#[tokio::test]
async fn an_action_from_an_item_that_is_not_a_stored_widget_of_the_thread_is_refused() {
    let mut h = Harness::new().await;
    let click_action = {
        let w = add_widget(&mut h, &paris(), Leg::Outbound).await;
        click(&w, "flight-midday")
    };
    // A message of the thread.
    let message = assistant_message_item(&h.thread.id, "hello");
    h.sink.send(ThreadStreamEvent::ItemDone { item: message.clone() }).await.unwrap();
    h.events();
    refused(&mut h, &click_action, Some(&message), Rejection::NoWidget).await;
    // A widget that was never stored (or was deleted since the request named it).
    let unsaved = widget_item(
        &h.thread.id,
        flight_options_widget(&generate_flight_options(&paris()), &paris(), None, Leg::Outbound),
    );
    refused(&mut h, &click_action, Some(&unsaved), Rejection::NoWidget).await;
    // A widget of another thread.
    let other = ThreadMetadata::new("thr_other");
    h.store.save_thread(&h.ctx, &other).await.unwrap();
    let foreign = widget_item(
        &other.id,
        flight_options_widget(&generate_flight_options(&paris()), &paris(), None, Leg::Outbound),
    );
    h.store.add_thread_item(&h.ctx, &other.id, &foreign).await.unwrap();
    refused(&mut h, &click(&foreign, "flight-midday"), Some(&foreign), Rejection::NoWidget).await;
    assert_eq!(h.airline.profile(&h.thread.id).await.unwrap().segments.len(), 2);
}

#[tokio::test]
async fn a_choice_the_widget_did_not_offer_is_refused() {
    let mut h = Harness::new().await;
    let w = add_widget(&mut h, &paris(), Leg::Outbound).await;
    let genuine = click(&w, "flight-morning");
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut action = genuine.clone();
        f(&mut action.payload);
        action
    };
    let forged = [
        // A departure the server never offered, with options to match.
        edit(&|p| {
            p["request"]["depart_date"] = json!("1900-01-01");
            p["options"][0]["date_label"] = json!("Mon, Jan 1");
        }),
        edit(&|p| p["options"][0]["dep_time"] = json!("03:00")),
        edit(&|p| p["id"] = json!("flight-red-eye")),
        edit(&|p| p["options"] = json!([])),
        edit(&|p| p["leg"] = json!("return")),
        edit(&|p| p["request"]["cabin"] = json!("first")),
        edit(&|p| {
            p.as_object_mut().unwrap().remove("leg");
        }),
        edit(&|p| p["extra"] = json!(true)),
        act("flight.select", Value::Null),
        act("flight.select", json!({"id": 3})),
        // The right payload under another handled type.
        act("upsell.accept", genuine.payload.clone()),
    ];
    for action in &forged {
        refused(&mut h, action, Some(&w), Rejection::NotOffered).await;
    }
    // The genuine click still works afterwards: the refusals used nothing up.
    let events = run(&mut h, &genuine, Some(&w)).await;
    assert_eq!(events.last().unwrap()["type"], "client_effect");
    assert_eq!(h.airline.profile(&h.thread.id).await.unwrap().segments[2].departure_time, "08:10");
}

#[tokio::test]
async fn a_widget_used_on_another_replica_is_refused_before_its_update_arrives() {
    let mut h = Harness::new().await;
    let w = add_widget(&mut h, &paris(), Leg::Outbound).await;
    // The profile already records the widget as used while the stored widget is not locked yet.
    h.airline.update(&h.thread.id, |p| p.use_widget(&w.id)).await.unwrap().unwrap();
    refused(&mut h, &click(&w, "flight-late"), Some(&w), Rejection::AlreadyUsed).await;
}

#[tokio::test]
async fn simultaneous_clicks_on_one_widget_book_once() {
    let mut h = Harness::new().await;
    let w = add_widget(&mut h, &paris(), Leg::Outbound).await;
    let (morning, late) = (click(&w, "flight-morning"), click(&w, "flight-late"));
    let thread = h.thread.clone();
    let (a, b) = tokio::join!(
        handle_action(&h.airline, &thread, &morning, Some(&w), &h.sink),
        handle_action(&h.airline, &thread, &late, Some(&w), &h.sink)
    );
    let outcomes = [a, b];
    assert_eq!(outcomes.iter().filter(|r| r.is_ok()).count(), 1, "{outcomes:?}");
    let refusal = outcomes.into_iter().find_map(Result::err).unwrap();
    assert_eq!(refusal.to_string(), Rejection::AlreadyUsed.to_string());
    let profile = h.airline.profile(&h.thread.id).await.unwrap();
    assert_eq!(profile.segments.len(), 3);
    assert_eq!(profile.booked_widget_ids, vec![w.id.clone()]);
}

#[tokio::test]
async fn unknown_actions_do_nothing() {
    let mut h = Harness::new().await;
    let w = add_widget(&mut h, &paris(), Leg::Outbound).await;
    for kind in ["nope", "support.set_meal_preference"] {
        let action = act(kind, json!({"meal": "vegetarian"}));
        assert!(run(&mut h, &action, None).await.is_empty());
        assert!(run(&mut h, &action, Some(&w)).await.is_empty());
    }
    assert_eq!(h.items().await.len(), 1);
    assert!(h.store.kv_get(NAMESPACE, &h.thread.id).await.unwrap().is_none());
}

#[tokio::test]
async fn rebook_select_option_behind_a_widget() {
    let mut h = Harness::new().await;
    let rebook = |payload: Value| act("rebook.select_option", payload);
    let later =
        rebook(json!({"flight_number":"OA477","option_id":"opt1","depart_time":"20:10","arrival_time":"23:35"}));
    let keep = rebook(json!({"flight_number":"OA477","option_id":"keep"}));
    let w = offering(&mut h, &[offered(&later), offered(&keep)]).await;

    // A time the widget did not offer.
    let mut forged = later.clone();
    forged.payload["depart_time"] = json!("04:00");
    refused(&mut h, &forged, Some(&w), Rejection::NotOffered).await;

    let events = run(&mut h, &later, Some(&w)).await;
    assert_eq!(kinds(&events), vec!["thread.item.done:assistant_message", "client_effect:customer_profile/update"]);
    assert_eq!(
        message_text(&events[0]),
        "You're now set for OA477 departing at 20:10. I'll keep the seat assignment the same."
    );
    let profile = h.airline.profile(&h.thread.id).await.unwrap();
    assert_eq!(profile.timeline[0].entry, "Rebooked OA477 from 18:50-22:15 to 20:10-23:35 (Selected alternate time).");
    assert_eq!(events[1]["data"]["profile"], profile.to_json());
    assert_eq!(profile.booked_widget_ids, vec![w.id.clone()]);
    // The widget answered; its other option is refused too.
    refused(&mut h, &later, Some(&w), Rejection::AlreadyUsed).await;
    refused(&mut h, &keep, Some(&w), Rejection::AlreadyUsed).await;
}

#[tokio::test]
async fn rebook_select_option_outcomes() {
    let mut h = Harness::new().await;
    let rebook = |payload: Value| act("rebook.select_option", payload);

    // A flight that is not on the itinerary: explained, and the widget stays usable.
    let unknown = rebook(json!({"flight_number":"OA1","option_id":"x","option_note":"n"}));
    let keep = rebook(json!({"flight_number":"OA476","option_id":"keep"}));
    let w = offering(&mut h, &[offered(&unknown), offered(&keep)]).await;
    let events = run(&mut h, &unknown, Some(&w)).await;
    assert_eq!(kinds(&events), vec!["thread.item.done:assistant_message", "client_effect:customer_profile/update"]);
    assert_eq!(message_text(&events[0]), "Flight OA1 is not on the customer's itinerary.");
    assert!(h.airline.profile(&h.thread.id).await.unwrap().booked_widget_ids.is_empty());

    // Keeping the flight only answers (and uses the widget).
    let events = run(&mut h, &keep, Some(&w)).await;
    assert_eq!(kinds(&events), vec!["thread.item.done:assistant_message"]);
    assert_eq!(message_text(&events[0]), "Sounds good — we'll keep the original departure on file.");
    assert_eq!(h.airline.profile(&h.thread.id).await.unwrap().booked_widget_ids, vec![w.id.clone()]);

    // Incomplete payloads do nothing at all, even when offered.
    let incomplete = [
        rebook(json!({"flight_number":"","option_id":"x"})),
        rebook(json!({"flight_number":"OA476"})),
        rebook(json!({"flight_number":"OA476","option_id":null})),
        rebook(Value::Null),
    ];
    let offers: Vec<Value> = incomplete.iter().map(offered).collect();
    let w2 = offering(&mut h, &offers).await;
    for action in &incomplete {
        assert!(run(&mut h, action, Some(&w2)).await.is_empty());
    }

    // Missing times are empty; the flight number is echoed as given.
    let partial = rebook(json!({"flight_number":"oa476","option_id":"o"}));
    let w3 = offering(&mut h, &[offered(&partial)]).await;
    let events = run(&mut h, &partial, Some(&w3)).await;
    assert_eq!(
        message_text(&events[0]),
        "You're now set for oa476 departing at . I'll keep the seat assignment the same."
    );
    let profile = h.airline.profile(&h.thread.id).await.unwrap();
    assert_eq!(profile.timeline[0].entry, "Rebooked oa476 from 08:05-16:35 to - (Selected alternate time).");
    assert_eq!(profile.timeline.len(), 4);
}

#[tokio::test]
async fn booking_and_upsell_handlers_behind_a_widget() {
    let mut h = Harness::new().await;

    let accept = act("upsell.accept", json!({"cabin_name":"Premium Plus","price":"$199"}));
    let decline = act("upsell.decline", json!({"cabin_name":"Premium Plus"}));
    let w = offering(&mut h, &[offered(&accept), offered(&decline)]).await;
    let mut cheaper = accept.clone();
    cheaper.payload["price"] = json!("$0");
    refused(&mut h, &cheaper, Some(&w), Rejection::NotOffered).await;
    let events = run(&mut h, &accept, Some(&w)).await;
    assert_eq!(kinds(&events), vec!["thread.item.done:assistant_message", "client_effect:customer_profile/update"]);
    assert_eq!(message_text(&events[0]), "Premium Plus upgrade confirmed. $199 will be charged at ticketing.");
    let profile = h.airline.profile(&h.thread.id).await.unwrap();
    assert_eq!(
        profile.timeline[0].entry,
        "Accepted Premium Plus upgrade ($199). We'll finalize payment at the airport."
    );
    refused(&mut h, &accept, Some(&w), Rejection::AlreadyUsed).await;
    refused(&mut h, &decline, Some(&w), Rejection::AlreadyUsed).await;

    // Defaults for missing fields.
    let bare_accept = act("upsell.accept", json!({}));
    let w = offering(&mut h, &[offered(&bare_accept)]).await;
    let events = run(&mut h, &bare_accept, Some(&w)).await;
    assert_eq!(
        message_text(&events[0]),
        "the upgrade upgrade confirmed. the quoted amount will be charged at ticketing."
    );

    let w = offering(&mut h, &[offered(&decline)]).await;
    let events = run(&mut h, &decline, Some(&w)).await;
    assert_eq!(kinds(&events), vec!["thread.item.done:assistant_message"]);
    assert_eq!(
        message_text(&events[0]),
        "No worries—I'll keep the current cabin and continue helping with premium plus availability."
    );
    let bare_decline = act("upsell.decline", Value::Null);
    let w = offering(&mut h, &[offered(&bare_decline)]).await;
    let events = run(&mut h, &bare_decline, Some(&w)).await;
    assert_eq!(
        message_text(&events[0]),
        "No worries—I'll keep the current cabin and continue helping with the upgrade availability."
    );

    let modify = act("booking.modify_request", Value::Null);
    let confirm = act("booking.confirm_selection", json!({"destination":"CDG","depart_label":"Nov 3"}));
    let w = offering(&mut h, &[offered(&confirm), offered(&modify)]).await;
    let events = run(&mut h, &modify, Some(&w)).await;
    assert_eq!(kinds(&events), vec!["thread.item.done:assistant_message"]);
    assert_eq!(
        message_text(&events[0]),
        "Happy to tweak the plan. Let me know what you'd like to change and feel free to attach a new inspiration photo if it helps."
    );
    refused(&mut h, &confirm, Some(&w), Rejection::AlreadyUsed).await;

    let w = offering(&mut h, &[offered(&confirm)]).await;
    let events = run(&mut h, &confirm, Some(&w)).await;
    assert_eq!(kinds(&events), vec!["thread.item.done:assistant_message", "client_effect:customer_profile/update"]);
    assert_eq!(
        message_text(&events[0]),
        "Flights to CDG are on hold: Nov 3 outbound and return flight return. I’ll keep monitoring inventory and let you know if something better opens."
    );
    let profile = h.airline.profile(&h.thread.id).await.unwrap();
    assert_eq!(profile.timeline[0].entry, "Placed hold for CDG: Nov 3 / return flight.");
    let bare_confirm = act("booking.confirm_selection", json!([]));
    let w = offering(&mut h, &[offered(&bare_confirm)]).await;
    let events = run(&mut h, &bare_confirm, Some(&w)).await;
    assert_eq!(
        message_text(&events[0]),
        "Flights to the trip are on hold: outbound flight outbound and return flight return. I’ll keep monitoring inventory and let you know if something better opens."
    );
    // Only widgets and visible messages were stored (no hidden context for these handlers).
    assert!(h.items().await.iter().all(|i| matches!(i.type_name(), "assistant_message" | "widget")));
}
