//! Widget actions a client forges or repeats, end to end over HTTP (real server, temporary SQLite, mock
//! model). The Python sample carried out any `threads.custom_action` as its payload said: without an
//! `item_id` a `flight.select` booked on every call, an option the widget never offered (a departure in
//! 1900) was booked, and `rebook.select_option` / `upsell.accept` wrote their payload into the profile.
//!
//! Each refusal here is a 200 stream of `stream_options` then one `custom` error event that says why
//! (`allow_retry: false`), and leaves the profile and the thread exactly as they were.

mod common;

use common::*;
use serde_json::{Value, json};
use support::actions::Rejection;

/// A thread showing the outbound flight widget: (thread id, widget item id, widget tree).
async fn thread_with_flight_widget(server: &TestServer) -> (String, String, Value) {
    let events = server.stream(create("Book a trip to Paris, Nov 3 to Nov 10, business.")).await;
    let thread = thread_id_of(&events);
    let widget = events
        .iter()
        .find(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "widget")
        .expect("the flight widget")["item"]
        .clone();
    (thread, widget["id"].as_str().unwrap().to_string(), widget["widget"].clone())
}

/// The click action of the option `index` of a flight widget, as the client sends it.
fn click(widget: &Value, index: usize) -> Value {
    widget["children"][index]["onClickAction"].clone()
}

/// Sends an action that must be refused for `reason` and checks that nothing changed.
async fn assert_refused(server: &TestServer, thread: &str, item_id: Option<&str>, action: Value, reason: Rejection) {
    let (profile, items) = (server.customer(thread).await, server.items(thread).await);
    let events = server.stream(common::action(thread, item_id, action.clone())).await;
    assert_eq!(kinds(&events), strings(&["stream_options", "error:custom"]), "{action}");
    assert_eq!(
        events[1],
        json!({"type": "error", "code": "custom", "message": reason.to_string(), "allow_retry": false}),
        "{action}"
    );
    assert_eq!(server.customer(thread).await, profile, "{action} changed the profile");
    assert_eq!(server.items(thread).await, items, "{action} changed the thread");
}

fn segments(profile: &Value) -> usize {
    profile["segments"].as_array().unwrap().len()
}

#[tokio::test]
async fn flight_select_without_item_id_is_refused_every_time() {
    let (_d, _mock, server) = setup(booking_script()).await;
    let (thread, _w, widget) = thread_with_flight_widget(&server).await;
    for _ in 0..3 {
        assert_refused(&server, &thread, None, click(&widget, 0), Rejection::NoWidget).await;
    }
    assert_eq!(segments(&server.customer(&thread).await), 2);
}

#[tokio::test]
async fn an_option_the_widget_never_offered_is_refused() {
    let (_d, _mock, server) = setup(booking_script()).await;
    let (thread, w, widget) = thread_with_flight_widget(&server).await;
    let mut forged = click(&widget, 0);
    forged["payload"]["request"]["depart_date"] = json!("1900-01-01");
    forged["payload"]["options"][0]["date_label"] = json!("Mon, Jan 1");
    assert_refused(&server, &thread, Some(&w), forged, Rejection::NotOffered).await;
    let mut made_up = click(&widget, 0);
    made_up["payload"]["options"] = json!([]);
    made_up["payload"]["id"] = json!("flight-red-eye");
    assert_refused(&server, &thread, Some(&w), made_up, Rejection::NotOffered).await;
    // Another thread's widget names no item of this thread: 404 before any stream.
    let (other_thread, _, _) = thread_with_flight_widget(&server).await;
    let (status, body) = server.error(common::action(&other_thread, Some(&w), click(&widget, 0))).await;
    assert_eq!(status, 404, "{body}");

    // The genuine click still books, once.
    let events = server.stream(common::action(&thread, Some(&w), click(&widget, 0))).await;
    assert_eq!(events.last().unwrap()["name"], "customer_profile/update", "{events:?}");
    let profile = server.customer(&thread).await;
    assert_eq!(segments(&profile), 3);
    assert_eq!(profile["segments"][2]["date"], "2025-11-03");
    assert_eq!(profile["segments"][2]["departure_time"], "08:10");
}

#[tokio::test]
async fn a_repeated_click_on_a_used_widget_is_refused_and_books_once() {
    let (_d, _mock, server) = setup(booking_script()).await;
    let (thread, w, widget) = thread_with_flight_widget(&server).await;
    server.stream(common::action(&thread, Some(&w), click(&widget, 1))).await;
    // The client's stale copy of the widget still shows every option.
    for index in [1, 2] {
        assert_refused(&server, &thread, Some(&w), click(&widget, index), Rejection::AlreadyUsed).await;
    }
    let profile = server.customer(&thread).await;
    assert_eq!(segments(&profile), 3);
    assert_eq!(profile["booked_widget_ids"], json!([w]));
    // The stored widget is the locked one.
    let stored = server.items(&thread).await.into_iter().find(|i| i["id"] == w.as_str()).unwrap();
    assert_eq!(stored["widget"]["children"].as_array().unwrap().len(), 1);
    assert!(stored["widget"]["children"][0].get("onClickAction").is_none());
}

#[tokio::test]
async fn rebook_and_upgrade_payloads_no_longer_change_the_profile() {
    let (_d, _mock, server) = setup(booking_script()).await;
    let (thread, w, _widget) = thread_with_flight_widget(&server).await;
    let rebook = json!({"type": "rebook.select_option",
                        "payload": {"flight_number": "OA477", "option_id": "opt1", "depart_time": "20:10", "arrival_time": "23:35"}});
    let upsell = json!({"type": "upsell.accept", "payload": {"cabin_name": "Premium Plus", "price": "$199"}});
    let confirm = json!({"type": "booking.confirm_selection", "payload": {"destination": "CDG"}});
    let decline = json!({"type": "upsell.decline", "payload": {"cabin_name": "<b>anything</b>"}});
    for action in [&rebook, &upsell, &confirm, &decline] {
        assert_refused(&server, &thread, None, action.clone(), Rejection::NoWidget).await;
        // The flight widget offers none of them.
        assert_refused(&server, &thread, Some(&w), action.clone(), Rejection::NotOffered).await;
    }
    let profile = server.customer(&thread).await;
    assert_eq!(profile["segments"][1]["departure_time"], "18:50");
    let entries: Vec<&str> =
        profile["timeline"].as_array().unwrap().iter().map(|t| t["entry"].as_str().unwrap()).collect();
    assert!(entries.iter().all(|e| !e.starts_with("Accepted") && !e.starts_with("Placed hold")), "{entries:?}");
}

#[tokio::test]
async fn unknown_types_are_ignored_and_non_widget_senders_get_a_stream_error() {
    let (_d, _mock, server) = setup(booking_script()).await;
    let (thread, w, _widget) = thread_with_flight_widget(&server).await;
    for item_id in [None, Some(w.as_str())] {
        let events = server.stream(common::action(&thread, item_id, json!({"type": "nope"}))).await;
        assert_eq!(kinds(&events), strings(&["stream_options"]));
    }
    let user_message = server.items(&thread).await.into_iter().find(|i| i["type"] == "user_message").unwrap();
    let events = server
        .stream(common::action(&thread, user_message["id"].as_str(), json!({"type": "flight.select", "payload": {}})))
        .await;
    assert_eq!(events, vec![json!({"type": "error", "code": "stream.error", "allow_retry": false})]);
}
