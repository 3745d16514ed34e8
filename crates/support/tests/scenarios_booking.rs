//! The booking scenarios end to end: the flight-options widget (the exact tree the sample renders), selecting the outbound and return options (`flight.select`), a refused click on a used
//! widget, an ignored unknown action, and the follow-up turn that sees the bookings, widgets and widget actions.

#![recursion_limit = "256"]

mod common;

use common::*;
use mock_llm::{Match, Reply};
use serde_json::{Value, json};

const OPTIONS_TEXT: &str =
    "I pulled a few flight options based on those dates and cabin preferences. Pick one to place on hold.";

/// The widget item of Appendix B for one option (an element of [`options`]).
fn option_item(option: &Value, selected: bool, action: Option<Value>) -> Value {
    let field = |k: &str| option[k].as_str().unwrap().to_string();
    let (id, dep, arr, from, to, date_label) = (
        field("id"),
        field("dep_time"),
        field("arr_time"),
        field("from_airport"),
        field("to_airport"),
        field("date_label"),
    );
    let (color, style) = if selected { ("blue-500", "solid") } else { ("default", "dashed") };
    let route = format!("{from} → {to}");
    let airports = format!("{from} • {to}");
    let mut item = json!({
        "key": id, "type": "ListViewItem", "gap": 0, "align": "stretch",
        "children": [{"type": "Box", "width": "100%", "padding": 3, "radius": "xl", "background": "surface",
            "border": {"size": 1, "color": color, "style": style},
            "children": [{"type": "Row", "gap": 3, "align": "stretch", "children": [
                {"type": "Box", "width": 3, "background": "blue-600", "radius": "full"},
                {"type": "Col", "flex": "auto", "gap": 2, "children": [
                    {"type": "Row", "children": [{"type": "Title", "value": route, "size": "md"}, {"type": "Spacer"},
                                                 {"type": "Badge", "label": "Business", "color": "discovery", "variant": "soft"}]},
                    {"type": "Row", "children": [
                        {"type": "Col", "children": [{"type": "Caption", "value": "Depart", "color": "secondary"}, {"type": "Title", "value": dep, "size": "lg"}]},
                        {"type": "Spacer"},
                        {"type": "Col", "align": "end", "children": [{"type": "Caption", "value": "Arrive", "color": "secondary"}, {"type": "Title", "value": arr, "size": "lg"}]}]},
                    {"type": "Divider"},
                    {"type": "Row", "children": [{"type": "Caption", "value": date_label}, {"type": "Spacer"}, {"type": "Caption", "value": airports}]}]}]}]}]
    });
    if let Some(action) = action {
        item["onClickAction"] = action;
    }
    item
}

fn options(from: &str, to: &str, date_label: &str) -> Vec<Value> {
    [("flight-morning", "08:10", "16:40"), ("flight-midday", "12:35", "21:05"), ("flight-late", "21:55", "06:20 (+1)")]
        .iter()
        .map(|(id, dep, arr)| {
            json!({"id": id, "from_airport": from, "to_airport": to, "dep_time": dep, "arr_time": arr, "date_label": date_label, "cabin": "Business"})
        })
        .collect()
}

fn select_action(id: &str, options: &[Value], request: &Value, leg: &str) -> Value {
    json!({"type": "flight.select", "handler": "server", "payload": {"id": id, "options": options, "request": request, "leg": leg}})
}

fn full_widget(from: &str, to: &str, date_label: &str, request: &Value, leg: &str) -> Value {
    let opts = options(from, to, date_label);
    let children: Vec<Value> = opts
        .iter()
        .map(|o| {
            let action = select_action(o["id"].as_str().unwrap(), &opts, request, leg);
            option_item(o, false, Some(action))
        })
        .collect();
    json!({"type": "ListView", "children": children})
}

fn outbound_request() -> Value {
    json!({"origin": "SFO", "destination": "CDG", "depart_date": "2025-11-03", "return_date": "2025-11-10", "cabin": "business"})
}

fn return_request() -> Value {
    json!({"origin": "CDG", "destination": "SFO", "depart_date": "2025-11-10", "return_date": "2025-11-03", "cabin": "business"})
}

/// Runs scenario 8 and returns (thread id, outbound widget item id, its widget).
async fn book_paris(server: &TestServer) -> (String, String, Value) {
    let events = server.stream(create("Book a trip to Paris, Nov 3 to Nov 10, business.")).await;
    let thread = thread_id_of(&events);
    assert_eq!(
        kinds(&events),
        concat(&[
            create_prefix(),
            strings(&["thread.item.done:assistant_message", "thread.item.done:widget", "thread.updated"]),
        ])
    );
    assert_eq!(assistant_texts(&events), vec![OPTIONS_TEXT.to_string()]);
    let widget_item = &events[4]["item"];
    (thread, widget_item["id"].as_str().unwrap().to_string(), widget_item["widget"].clone())
}

#[tokio::test]
async fn s08_flight_options_widget() {
    let (_d, mock, server) = setup(booking_script()).await;
    let (thread, _widget_id, widget) = book_paris(&server).await;
    assert_eq!(widget, full_widget("SFO", "CDG", "Mon, Nov 3", &outbound_request(), "outbound"));
    // One model call only (stop tool), a timeline entry, no effect.
    assert_eq!(model_requests(&mock).len(), 1);
    let profile = server.customer(&thread).await;
    assert_eq!(profile["timeline"][0]["kind"], "info");
    assert_eq!(profile["timeline"][0]["entry"], "Booking request for SFO → CDG (2025-11-03 to 2025-11-10).");
    assert_eq!(profile["segments"].as_array().unwrap().len(), 2);
}

fn assert_seat(seat: &str, rows: std::ops::RangeInclusive<u32>, letters: &str) {
    let (row, letter) = seat.split_at(seat.len() - 1);
    assert!(rows.contains(&row.parse::<u32>().unwrap()), "{seat}");
    assert!(letters.contains(letter), "{seat}");
}

/// The profile after a `flight.select` and the seat it was given: segment `index` of the profile is
/// `expected` plus a business-cabin seat (rows 4–9, letters A, C, D, F) the server picked.
async fn booked_segment(server: &TestServer, thread: &str, index: usize, mut expected: Value) -> (Value, String) {
    let profile = server.customer(thread).await;
    let segment = &profile["segments"][index];
    let seat = segment["seat"].as_str().unwrap().to_string();
    assert_seat(&seat, 4..=9, "ACDF");
    expected["seat"] = json!(seat);
    assert_eq!(segment, &expected);
    (profile, seat)
}

#[tokio::test]
async fn s10_to_s14_select_outbound_then_return_then_ignored_clicks() {
    let followup = "You have four segments now, including OA917 and OA927.";
    let script = booking_script().on(Match::user_text("itinerary now"), Reply::text(followup));
    let (_d, mock, server) = setup(script).await;
    let (thread, w, widget) = book_paris(&server).await;

    // 10: click flight-midday in W.
    let click = widget["children"][1]["onClickAction"].clone();
    assert_eq!(click["payload"]["id"], "flight-midday");
    let events = server.stream(action(&thread, Some(&w), click.clone())).await;
    assert_eq!(
        kinds(&events),
        strings(&[
            "stream_options",
            "thread.item.done:assistant_message",
            "thread.item.updated:widget.root.updated",
            "thread.item.done:assistant_message",
            "thread.item.done:widget",
            PROFILE_UPDATE,
        ])
    );
    let outbound = json!({"flight_number": "OA917", "date": "2025-11-03", "origin": "SFO", "destination": "CDG",
                          "departure_time": "12:35", "arrival_time": "21:05", "status": "Scheduled"});
    let (profile, seat) = booked_segment(&server, &thread, 2, outbound).await;
    assert_eq!(
        assistant_texts(&events),
        vec![
            format!(
                "Scheduled: Business SFO → CDG on Mon, Nov 3 departing 12:35 (arrives 21:05); return on 2025-11-10. Seat {seat} for now; You're scheduled on that option. I'll surface a few returns now."
            ),
            "Here are return options that line up with your trip:".to_string(),
        ]
    );
    assert_eq!(events[2]["item_id"], w);
    let midday = options("SFO", "CDG", "Mon, Nov 3")[1].clone();
    let locked = json!({"type": "ListView", "children": [option_item(&midday, true, None)]});
    assert_eq!(events[2]["update"]["widget"], locked);
    let r_item = &events[4]["item"];
    let r = r_item["id"].as_str().unwrap().to_string();
    assert_eq!(r_item["widget"], full_widget("CDG", "SFO", "Mon, Nov 10", &return_request(), "return"));
    assert_eq!(events[5]["data"]["profile"], profile);
    assert_eq!(
        profile["timeline"][0]["entry"],
        format!("Scheduled: OA917 SFO->CDG on 2025-11-03 12:35-21:05 seat {seat}.")
    );
    assert_eq!(profile["timeline"][1]["entry"], "Placed hold for CDG: 2025-11-03 SFO→CDG 12:35 / 2025-11-10 CDG→SFO.");
    assert_eq!(profile["timeline"][0]["kind"], "success");
    assert_eq!(profile["timeline"][1]["kind"], "success");
    assert_eq!(profile["booked_widget_ids"], json!([w]));
    // The hidden context is stored but never listed to the client.
    let stored = server
        .state
        .store
        .load_thread_items(&Default::default(), &thread, None, 100, chatkit::types::Order::Asc)
        .await
        .unwrap();
    let hidden: Vec<_> = stored.data.iter().filter(|i| i.type_name() == "hidden_context_item").collect();
    assert_eq!(hidden.len(), 1);
    let hidden_text = serde_json::to_value(hidden[0]).unwrap()["content"].as_str().unwrap().to_string();
    let payload = json!({"id": "flight-midday", "options": options("SFO", "CDG", "Mon, Nov 3"), "request": outbound_request(), "leg": "outbound"});
    assert_eq!(
        hidden_text,
        format!(
            "<WIDGET_ACTION widgetId={w}>flight.select payload: {}</WIDGET_ACTION>",
            serde_json::to_string(&payload).unwrap()
        )
    );
    assert!(server.items(&thread).await.iter().all(|i| i["type"] != "hidden_context_item"));

    // 11: click flight-late in R.
    let click_r = r_item["widget"]["children"][2]["onClickAction"].clone();
    let events = server.stream(action(&thread, Some(&r), click_r)).await;
    assert_eq!(
        kinds(&events),
        strings(&[
            "stream_options",
            "thread.item.done:assistant_message",
            "thread.item.updated:widget.root.updated",
            PROFILE_UPDATE,
        ])
    );
    let inbound = json!({"flight_number": "OA927", "date": "2025-11-10", "origin": "CDG", "destination": "SFO",
                         "departure_time": "21:55", "arrival_time": "06:20 (+1)", "status": "Scheduled"});
    let (profile, seat2) = booked_segment(&server, &thread, 3, inbound).await;
    assert_eq!(
        assistant_texts(&events),
        vec![format!(
            "Scheduled: Business CDG → SFO on Mon, Nov 10 departing 21:55 (arrives 06:20 (+1)); return on 2025-11-03. Seat {seat2} for now; Return scheduled. Want me to watch for upgrades?"
        )]
    );
    assert_eq!(
        profile["timeline"][0]["entry"],
        format!("Scheduled: OA927 CDG->SFO on 2025-11-10 21:55-06:20 (+1) seat {seat2}.")
    );
    assert_eq!(profile["timeline"][1]["entry"], "Placed hold for SFO: 2025-11-10 CDG→SFO 21:55 / 2025-11-03 SFO→CDG.");
    assert_eq!(profile["booked_widget_ids"], json!([w, r]));

    // 12: clicking W again (used) is refused, changing nothing; 13: an unknown action does nothing.
    let events = server.stream(action(&thread, Some(&w), click)).await;
    assert_eq!(kinds(&events), strings(&["stream_options", "error:custom"]));
    assert_eq!(events[1]["message"], support::actions::Rejection::AlreadyUsed.to_string());
    assert_eq!(events[1]["allow_retry"], false);
    let events = server.stream(action(&thread, None, json!({"type": "nope"}))).await;
    assert_eq!(kinds(&events), strings(&["stream_options"]));
    assert_eq!(server.customer(&thread).await, profile);

    // 14: the follow-up turn sees the 4 segments, the widgets and the widget actions.
    let events = server.stream(add_message(&thread, "What's on my itinerary now?")).await;
    assert_eq!(kinds(&events), next_turn_kinds(&[], followup));
    let request = model_requests(&mock).last().unwrap().clone();
    let texts = user_texts(&request);
    let profile_text = &texts[0];
    assert!(
        profile_text.contains(&format!("- OA917 SFO->CDG on 2025-11-03 seat {seat} (Scheduled)")),
        "{profile_text}"
    );
    assert!(
        profile_text.contains(&format!("- OA927 CDG->SFO on 2025-11-10 seat {seat2} (Scheduled)")),
        "{profile_text}"
    );
    assert_eq!(profile_text.matches("\n- OA").count(), 4, "{profile_text}");
    assert!(
        texts.iter().any(
            |t| t.starts_with(&format!("The following graphical UI widget (id: {w}) was displayed to the user:{{"))
        ),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(
            |t| t.starts_with(&format!("The following graphical UI widget (id: {r}) was displayed to the user:{{"))
        ),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.starts_with(&format!("<WIDGET_ACTION widgetId={w}>flight.select payload: "))),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.starts_with(&format!("<WIDGET_ACTION widgetId={r}>flight.select payload: "))),
        "{texts:?}"
    );
    assert_eq!(texts.last().unwrap(), "What's on my itinerary now?");
}
