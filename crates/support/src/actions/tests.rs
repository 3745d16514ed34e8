//! Unit tests of the widget actions (spec customer-support §6, scenarios 10–13, 20, 21 of §11).

use super::*;
use crate::testkit::{Harness, kinds};
use crate::widgets::{FlightSearch, flight_options_widget, generate_flight_options};
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

/// Scenarios 10, 11 and 12 of spec §11.
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

    // Scenario 11: the return widget.
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

    // Scenario 12: W again (its original payload) → nothing.
    let before = profile.clone();
    let events = run(&mut h, &click(&w, "flight-morning"), Some(&w)).await;
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(h.airline.profile(&h.thread.id).await.unwrap(), before);
    assert_eq!(h.items().await.len(), 7);
}

#[tokio::test]
async fn flight_select_without_sender_books_every_time() {
    let mut h = Harness::new().await;
    let w = add_widget(&mut h, &paris(), Leg::Outbound).await;
    let action = click(&w, "flight-morning");
    let events = run(&mut h, &action, None).await;
    assert_eq!(
        kinds(&events),
        vec![
            "thread.item.done:assistant_message",
            "thread.item.done:assistant_message",
            "thread.item.done:widget",
            "client_effect:customer_profile/update",
        ]
    );
    run(&mut h, &action, None).await;
    let profile = h.airline.profile(&h.thread.id).await.unwrap();
    assert_eq!(profile.segments.len(), 4);
    assert!(profile.booked_widget_ids.is_empty());
    let hidden: Vec<String> = h
        .items()
        .await
        .iter()
        .filter_map(|i| match &i.kind {
            ItemKind::HiddenContextItem(c) => Some(c.content.as_str().unwrap().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(hidden.len(), 2);
    assert!(hidden[0].starts_with("<WIDGET_ACTION widgetId=unknown>flight.select payload: {\"id\":\"flight-morning\""));
}

#[tokio::test]
async fn flight_select_generates_options_when_payload_has_none() {
    let mut h = Harness::new().await;
    let action = Action {
        kind: "flight.select".into(),
        payload: json!({"id": "flight-late", "options": [], "request": paris(), "leg": "return"}),
    };
    let events = run(&mut h, &action, None).await;
    assert_eq!(kinds(&events), vec!["thread.item.done:assistant_message", "client_effect:customer_profile/update"]);
    let profile = h.airline.profile(&h.thread.id).await.unwrap();
    assert_eq!(profile.segments[2].flight_number, "OA927");
    assert_eq!(profile.segments[2].departure_time, "21:55");
    let hidden = h.items().await.pop().unwrap();
    let ItemKind::HiddenContextItem(c) = hidden.kind else { panic!() };
    assert!(c.content.as_str().unwrap().contains(r#"payload: {"id":"flight-late","options":[],"request""#));
}

#[tokio::test]
async fn flight_select_ignores_invalid_payloads_and_unknown_options() {
    let mut h = Harness::new().await;
    let w = add_widget(&mut h, &paris(), Leg::Outbound).await;
    let mut unknown = click(&w, "flight-morning");
    unknown.payload["id"] = json!("flight-red-eye");
    let mut missing_field = click(&w, "flight-morning");
    missing_field.payload["request"].as_object_mut().unwrap().remove("cabin");
    let mut bad_option = click(&w, "flight-morning");
    bad_option.payload["options"][0].as_object_mut().unwrap().remove("dep_time");
    let mut bad_leg = click(&w, "flight-morning");
    bad_leg.payload["leg"] = json!("sideways");
    for action in [
        unknown,
        missing_field,
        bad_option,
        bad_leg,
        Action { kind: "flight.select".into(), payload: Value::Null },
        Action { kind: "flight.select".into(), payload: json!({"id": 3}) },
    ] {
        let events = run(&mut h, &action, Some(&w)).await;
        assert!(events.is_empty(), "{action:?} → {events:?}");
    }
    let profile = h.airline.profile(&h.thread.id).await.unwrap();
    assert_eq!(profile.segments.len(), 2);
    assert!(profile.booked_widget_ids.is_empty());
    assert_eq!(h.items().await.len(), 1);
}

/// Scenario 13 and the removed meal action.
#[tokio::test]
async fn unknown_actions_do_nothing() {
    let mut h = Harness::new().await;
    for kind in ["nope", "support.set_meal_preference"] {
        let action = Action { kind: kind.into(), payload: json!({"meal": "vegetarian"}) };
        assert!(run(&mut h, &action, None).await.is_empty());
    }
    assert!(h.items().await.is_empty());
    assert!(h.store.kv_get(crate::airline::NAMESPACE, &h.thread.id).await.unwrap().is_none());
}

/// Scenario 20 and its variants.
#[tokio::test]
async fn rebook_select_option() {
    let mut h = Harness::new().await;
    let action = |payload: Value| Action { kind: "rebook.select_option".into(), payload };
    let events = run(
        &mut h,
        &action(json!({"flight_number":"OA477","option_id":"opt1","depart_time":"20:10","arrival_time":"23:35"})),
        None,
    )
    .await;
    assert_eq!(kinds(&events), vec!["thread.item.done:assistant_message", "client_effect:customer_profile/update"]);
    assert_eq!(
        message_text(&events[0]),
        "You're now set for OA477 departing at 20:10. I'll keep the seat assignment the same."
    );
    let profile = h.airline.profile(&h.thread.id).await.unwrap();
    assert_eq!(profile.timeline[0].entry, "Rebooked OA477 from 18:50-22:15 to 20:10-23:35 (Selected alternate time).");
    assert_eq!(events[1]["data"]["profile"], profile.to_json());

    let events = run(&mut h, &action(json!({"flight_number":"OA1","option_id":"x","option_note":"n"})), None).await;
    assert_eq!(kinds(&events), vec!["thread.item.done:assistant_message", "client_effect:customer_profile/update"]);
    assert_eq!(message_text(&events[0]), "Flight OA1 is not on the customer's itinerary.");

    let events = run(&mut h, &action(json!({"flight_number":"OA476","option_id":"keep"})), None).await;
    assert_eq!(kinds(&events), vec!["thread.item.done:assistant_message"]);
    assert_eq!(message_text(&events[0]), "Sounds good — we'll keep the original departure on file.");

    for payload in [
        json!({"flight_number":"","option_id":"x"}),
        json!({"flight_number":"OA476"}),
        json!({"flight_number":"OA476","option_id":null}),
        Value::Null,
    ] {
        assert!(run(&mut h, &action(payload), None).await.is_empty());
    }

    let events = run(&mut h, &action(json!({"flight_number":"oa476","option_id":"o"})), None).await;
    assert_eq!(
        message_text(&events[0]),
        "You're now set for oa476 departing at . I'll keep the seat assignment the same."
    );
    let profile = h.airline.profile(&h.thread.id).await.unwrap();
    assert_eq!(profile.timeline[0].entry, "Rebooked oa476 from 08:05-16:35 to - (Selected alternate time).");
    assert_eq!(profile.timeline.len(), 5);
}

/// Scenario 21 and the other latent handlers.
#[tokio::test]
async fn latent_booking_and_upsell_handlers() {
    let mut h = Harness::new().await;
    let act = |kind: &str, payload: Value| Action { kind: kind.into(), payload };

    let events = run(&mut h, &act("upsell.accept", json!({"cabin_name":"Premium Plus","price":"$199"})), None).await;
    assert_eq!(kinds(&events), vec!["thread.item.done:assistant_message", "client_effect:customer_profile/update"]);
    assert_eq!(message_text(&events[0]), "Premium Plus upgrade confirmed. $199 will be charged at ticketing.");
    let profile = h.airline.profile(&h.thread.id).await.unwrap();
    assert_eq!(
        profile.timeline[0].entry,
        "Accepted Premium Plus upgrade ($199). We'll finalize payment at the airport."
    );

    let events = run(&mut h, &act("upsell.accept", json!({})), None).await;
    assert_eq!(
        message_text(&events[0]),
        "the upgrade upgrade confirmed. the quoted amount will be charged at ticketing."
    );

    let events = run(&mut h, &act("upsell.decline", json!({"cabin_name":"Premium Plus"})), None).await;
    assert_eq!(kinds(&events), vec!["thread.item.done:assistant_message"]);
    assert_eq!(
        message_text(&events[0]),
        "No worries—I'll keep the current cabin and continue helping with premium plus availability."
    );
    let events = run(&mut h, &act("upsell.decline", Value::Null), None).await;
    assert_eq!(
        message_text(&events[0]),
        "No worries—I'll keep the current cabin and continue helping with the upgrade availability."
    );

    let events = run(&mut h, &act("booking.modify_request", Value::Null), None).await;
    assert_eq!(kinds(&events), vec!["thread.item.done:assistant_message"]);
    assert_eq!(
        message_text(&events[0]),
        "Happy to tweak the plan. Let me know what you'd like to change and feel free to attach a new inspiration photo if it helps."
    );

    let events =
        run(&mut h, &act("booking.confirm_selection", json!({"destination":"CDG","depart_label":"Nov 3"})), None).await;
    assert_eq!(kinds(&events), vec!["thread.item.done:assistant_message", "client_effect:customer_profile/update"]);
    assert_eq!(
        message_text(&events[0]),
        "Flights to CDG are on hold: Nov 3 outbound and return flight return. I’ll keep monitoring inventory and let you know if something better opens."
    );
    let profile = h.airline.profile(&h.thread.id).await.unwrap();
    assert_eq!(profile.timeline[0].entry, "Placed hold for CDG: Nov 3 / return flight.");
    let events = run(&mut h, &act("booking.confirm_selection", json!([])), None).await;
    assert_eq!(
        message_text(&events[0]),
        "Flights to the trip are on hold: outbound flight outbound and return flight return. I’ll keep monitoring inventory and let you know if something better opens."
    );
    // Only visible items were stored (no hidden context for latent handlers).
    assert!(h.items().await.iter().all(|i| i.type_name() == "assistant_message"));
}
