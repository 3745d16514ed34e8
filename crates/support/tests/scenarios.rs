//! The scripted support scenarios end to end over HTTP (the booking flow is in `scenarios_booking.rs`;
//! actions sent without a widget are refused and tested in `widget_actions.rs`): the real server with a temporary SQLite database and the
//! mock model (the LLM's choices scripted). Each test asserts the events and their order, the texts, the
//! state through `/support/customer`, and what the model was sent.

mod common;

use common::*;
use mock_llm::{Match, Reply, Rule, Script};
use serde_json::{Value, json};

const SEAT_REPLY: &str = "Done: seat 14C on OA476.";

/// A script where a user message containing `trigger` makes the model call `tool` with `args`, and the
/// tool's output is answered with `reply`.
fn tool_script(trigger: &str, tool: &str, args: Value, reply: &str) -> Script {
    Script::new().on(Match::user_text(trigger), Reply::tool_call(tool, args)).after_tool_reply(Reply::text(reply))
}

#[tokio::test]
async fn s01_change_seat() {
    let args = json!({"flight_number": "OA476", "seat": "14c"});
    let (_d, mock, server) = setup(tool_script("seat 14C", "change_seat", args, SEAT_REPLY)).await;
    let events = server.stream(create("Move me to seat 14C on flight OA476.")).await;
    let thread = thread_id_of(&events);
    assert_eq!(kinds(&events), new_thread_kinds(&[PROFILE_UPDATE], SEAT_REPLY));
    let effect = &events[3];
    assert_eq!(effect["data"]["profile"]["segments"][0]["seat"], "14C");
    assert_eq!(effect["data"]["profile"]["timeline"][0]["kind"], "success");
    assert_eq!(effect["data"]["profile"]["timeline"][0]["entry"], "Seat changed on OA476 from 14A to 14C.");
    assert_eq!(assistant_texts(&events), vec![SEAT_REPLY.to_string()]);
    // The streamed deltas add up to the final text; the item id is the model's output item id.
    let done = events.iter().rev().find(|e| e["type"] == "thread.item.done").unwrap();
    assert!(done["item"]["id"].as_str().unwrap().starts_with("msg_"));
    let title = events.last().unwrap();
    assert_eq!(title["thread"]["title"], "Move me to seat 14C on flight OA476.");

    let profile = server.customer(&thread).await;
    assert_eq!(profile, effect["data"]["profile"]);
    // Another thread and the default thread are not affected.
    assert_untouched(&server.customer("").await);

    let requests = model_requests(&mock);
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!(first["model"], "gpt-4.1-mini");
    assert_eq!(first["stream"], true);
    assert_eq!(first["temperature"], 0.4);
    let tools: Vec<&str> = first["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        tools,
        vec!["change_seat", "cancel_trip", "add_checked_bag", "flight_option_list", "request_assistance"]
    );
    assert!(first["tools"].as_array().unwrap().iter().all(|t| t["strict"] == true && t["type"] == "function"));
    let texts = user_texts(first);
    assert!(texts[0].starts_with("<CUSTOMER_PROFILE>\n"), "{}", texts[0]);
    assert_eq!(texts.last().unwrap(), "Move me to seat 14C on flight OA476.");
    assert_eq!(last_tool_output(&requests[1]), r#"{"result":"Seat updated to 14C on flight OA476."}"#);
}

#[tokio::test]
async fn s02_change_seat_unknown_flight() {
    let reply = "Sorry, OA999 is not on your itinerary.";
    let args = json!({"flight_number": "OA999", "seat": "3A"});
    let (_d, mock, server) = setup(tool_script("OA999", "change_seat", args, reply)).await;
    let events = server.stream(create("Move me to seat 3A on OA999")).await;
    let thread = thread_id_of(&events);
    assert_eq!(kinds(&events), new_thread_kinds(&[], reply));
    assert_untouched(&server.customer(&thread).await);
    let requests = model_requests(&mock);
    assert_eq!(
        last_tool_output(&requests[1]),
        "An error occurred while running the tool. Please try again. Error: Flight OA999 is not on the customer's itinerary."
    );
}

#[tokio::test]
async fn s03_window_seat_is_rejected() {
    let reply = "Which seat number would you like, for example 12A?";
    let args = json!({"flight_number": "OA477", "seat": "window"});
    let (_d, mock, server) = setup(tool_script("window seat", "change_seat", args, reply)).await;
    let events = server.stream(create("Put me in a window seat on OA477")).await;
    let thread = thread_id_of(&events);
    assert_eq!(assistant_texts(&events), vec![reply.to_string()]);
    assert!(!kinds(&events).iter().any(|k| k.starts_with("client_effect")));
    assert_untouched(&server.customer(&thread).await);
    assert_eq!(
        last_tool_output(&model_requests(&mock)[1]),
        "An error occurred while running the tool. Please try again. Error: Seat must be a row number followed by a letter, for example 12C."
    );
}

const CANCEL_ASK: &str = "Please confirm: should I cancel your upcoming trip and request a refund?";
const CANCEL_DONE: &str = "Your trip is cancelled and the refund is on its way.";

fn cancel_script() -> Script {
    Script::new()
        .on(
            Match::AllOf(vec![Match::user_text("yes"), Match::assistant_text("cancel")]),
            Reply::tool_call("cancel_trip", json!({})),
        )
        .on(Match::user_text("Cancel my upcoming trip"), Reply::text(CANCEL_ASK))
        .after_tool_reply(Reply::text(CANCEL_DONE))
}

#[tokio::test]
async fn s04_s05_cancel_asks_then_cancels() {
    let (_d, mock, server) = setup(cancel_script()).await;
    // 4: the model asks for confirmation; nothing changes.
    let events = server.stream(create("Cancel my upcoming trip and request a refund.")).await;
    let thread = thread_id_of(&events);
    assert_eq!(kinds(&events), new_thread_kinds(&[], CANCEL_ASK));
    assert_eq!(assistant_texts(&events), vec![CANCEL_ASK.to_string()]);
    assert_untouched(&server.customer(&thread).await);
    // 5: "Yes, cancel it." → cancel_trip; effect before the text; no title event on later turns.
    let events = server.stream(add_message(&thread, "Yes, cancel it.")).await;
    assert_eq!(kinds(&events), next_turn_kinds(&[PROFILE_UPDATE], CANCEL_DONE));
    let profile = server.customer(&thread).await;
    assert!(profile["segments"].as_array().unwrap().iter().all(|s| s["status"] == "Cancelled"), "{profile}");
    assert_eq!(
        profile["timeline"][0],
        json!({"timestamp": profile["timeline"][0]["timestamp"], "kind": "warning", "entry": "Trip cancelled at customer request."})
    );
    assert_eq!(events[2]["data"]["profile"], profile);
    let requests = model_requests(&mock);
    assert_eq!(requests.len(), 3);
    assert_eq!(
        last_tool_output(&requests[2]),
        r#"{"result":"The reservation has been cancelled. Refund processing will begin immediately."}"#
    );
    // The second turn's model input carries the first turn (user + assistant messages).
    let input = requests[1]["input"].as_array().unwrap();
    assert!(input.iter().any(|i| i["role"] == "assistant" && i["content"][0]["text"] == CANCEL_ASK), "{input:?}");
}

#[tokio::test]
async fn s06_checked_bag_after_confirmation() {
    let ask = "I can add one checked bag to your reservation. Reply yes to confirm.";
    let done = "Added: you now have 1 checked bag.";
    let script = Script::new()
        .on(
            Match::AllOf(vec![Match::user_text("yes"), Match::assistant_text("checked bag")]),
            Reply::tool_call("add_checked_bag", json!({})),
        )
        .on(Match::user_text("checked bag"), Reply::text(ask))
        .after_tool_reply(Reply::text(done));
    let (_d, mock, server) = setup(script).await;
    let events = server.stream(create("Add one more checked bag to the reservation.")).await;
    let thread = thread_id_of(&events);
    assert_eq!(assistant_texts(&events), vec![ask.to_string()]);
    assert_eq!(server.customer(&thread).await["bags_checked"], 0);
    let events = server.stream(add_message(&thread, "Yes")).await;
    assert_eq!(kinds(&events), next_turn_kinds(&[PROFILE_UPDATE], done));
    let profile = server.customer(&thread).await;
    assert_eq!(profile["bags_checked"], 1);
    assert_eq!(profile["timeline"][0]["kind"], "info");
    assert_eq!(profile["timeline"][0]["entry"], "Added checked bag. Total bags now 1.");
    assert_eq!(
        last_tool_output(model_requests(&mock).last().unwrap()),
        r#"{"result":"Checked bag added. You now have 1 bag(s) checked.","bags_checked":1}"#
    );
}

#[tokio::test]
async fn s07_special_assistance() {
    let done = "Noted: wheelchair assistance at JFK.";
    let args = json!({"note": "Wheelchair assistance at JFK"});
    let (_d, mock, server) = setup(tool_script("wheelchair", "request_assistance", args, done)).await;
    let events = server.stream(create("I need wheelchair assistance at JFK.")).await;
    let thread = thread_id_of(&events);
    assert_eq!(kinds(&events), new_thread_kinds(&[PROFILE_UPDATE], done));
    let profile = server.customer(&thread).await;
    assert_eq!(profile["special_assistance"], "Wheelchair assistance at JFK");
    assert_eq!(profile["timeline"][0]["kind"], "info");
    assert_eq!(profile["timeline"][0]["entry"], "Special assistance noted: Wheelchair assistance at JFK.");
    assert_eq!(
        last_tool_output(&model_requests(&mock)[1]),
        r#"{"result":"Assistance request recorded. Airport staff will be notified."}"#
    );
}

#[tokio::test]
async fn s09_start_prompt_asks_for_details() {
    let reply = "Happy to plan it: where to, which dates and which cabin? Remember to attach an inspiration photo.";
    let script = Script::new().on(Match::user_text("inspiration photo"), Reply::text(reply));
    let (_d, _mock, server) = setup(script).await;
    let events = server
        .stream(create(
            "Book a new trip for the traveler. Remind me to attach an inspiration photo and handle the planning as their concierge.",
        ))
        .await;
    let thread = thread_id_of(&events);
    assert_eq!(kinds(&events), new_thread_kinds(&[], reply));
    assert_untouched(&server.customer(&thread).await);
}

#[tokio::test]
async fn s15_image_attachment_reaches_the_model() {
    let reply = "Paris looks lovely! Which dates and cabin should I look at?";
    let script = Script::new().on(Match::user_text("explore flights to Paris"), Reply::text(reply));
    let (_d, mock, server) = setup(script).await;
    let bytes: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 256) as u8).collect();
    let att = server
        .json(json!({"type": "attachments.create", "params": {"name": "Paris.jpg", "size": bytes.len(), "mime_type": "image/png"}}))
        .await;
    let id = att["id"].as_str().unwrap().to_string();
    let part = reqwest::multipart::Part::bytes(bytes.clone()).file_name("Paris.jpg").mime_str("image/png").unwrap();
    let res = server
        .client
        .post(att["upload_descriptor"]["url"].as_str().unwrap())
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let input = json!({"content": [{"type": "input_text", "text": "Let's explore flights to Paris."}], "attachments": [id], "inference_options": {}});
    let events = server.stream(json!({"type": "threads.create", "params": {"input": input}})).await;
    let thread = thread_id_of(&events);
    assert_eq!(kinds(&events), new_thread_kinds(&[], reply));
    let user = &events[1]["item"];
    let content_url = server.content_url(&id);
    assert_eq!(
        user["attachments"],
        json!([{"id": id, "name": "Paris.jpg", "mime_type": "image/png", "thread_id": thread, "type": "image", "preview_url": content_url}])
    );
    // The model got the text and the image as a data URL of the uploaded bytes.
    use base64::Engine as _;
    let data_url = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(&bytes));
    let request = &model_requests(&mock)[0];
    let last = request["input"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["role"], "user");
    assert_eq!(last["content"][0], json!({"type": "input_text", "text": "Let's explore flights to Paris."}));
    assert_eq!(last["content"][1]["type"], "input_image");
    assert_eq!(last["content"][1]["image_url"], data_url);
    // The image-only title rule does not apply: the text titles the thread.
    assert_eq!(events.last().unwrap()["thread"]["title"], "Let's explore flights to Paris.");
}

#[tokio::test]
async fn s16_dictation() {
    let script = Script::new().transcript("Move me to seat 14C on flight OA476.");
    let (_d, mock, server) = setup(script).await;
    use base64::Engine as _;
    let audio = base64::engine::general_purpose::STANDARD.encode(b"\x1aE\xdf\xa3 fake webm audio");
    let text = server
        .json(json!({"type": "input.transcribe", "params": {"audio_base64": audio, "mime_type": "audio/webm;codecs=opus"}}))
        .await;
    assert_eq!(text, json!({"text": "Move me to seat 14C on flight OA476."}));
    let req = mock.requests().into_iter().find(|r| r.path == "/v1/audio/transcriptions").unwrap();
    assert_eq!(req.body["model"], "gpt-4o-transcribe");
    assert_eq!(req.body["file"]["filename"], "audio.webm");
    let (status, body) = server
        .error(json!({"type": "input.transcribe", "params": {"audio_base64": audio, "mime_type": "audio/wav"}}))
        .await;
    assert_eq!((status, body["detail"].as_str()), (400, Some("Unexpected audio format")));
}

#[tokio::test]
async fn s17_meal_preference_is_declined_gracefully() {
    let reply = "I'm sorry, I can't set meal preferences here, but I can help with seats, bags or bookings.";
    let script = Script::new().on(Match::user_text("meal preference"), Reply::text(reply));
    let (_d, mock, server) = setup(script).await;
    let events = server.stream(create("Set my meal preference.")).await;
    let thread = thread_id_of(&events);
    assert_eq!(kinds(&events), new_thread_kinds(&[], reply));
    assert_untouched(&server.customer(&thread).await);
    let request = &model_requests(&mock)[0];
    let instructions = request["instructions"].as_str().unwrap().to_lowercase();
    assert!(instructions.contains("meal"), "the instructions must say meal preferences are not handled");
    let tools = request["tools"].to_string();
    assert!(!tools.contains("meal"), "{tools}");
}

#[tokio::test]
async fn s18_account_overview_uses_the_profile() {
    let reply = "You're Aviator Gold with two upcoming flights.";
    let script = Script::new().on(Match::user_text("overview"), Reply::text(reply));
    let (_d, mock, server) = setup(script).await;
    let events = server.stream(create("Give me a quick overview of my account.")).await;
    assert_eq!(assistant_texts(&events), vec![reply.to_string()]);
    let request = &model_requests(&mock)[0];
    let profile_text = &user_texts(request)[0];
    assert!(profile_text.starts_with("<CUSTOMER_PROFILE>\nName: Jordan Miles (Aviator Gold)\n"), "{profile_text}");
    assert!(profile_text.contains("- OA476 SFO->JFK on 2025-10-02 seat 14A (Scheduled)"), "{profile_text}");
    assert!(profile_text.contains("- OA477 JFK->SFO on 2025-10-10 seat 15C (Scheduled)"), "{profile_text}");
    assert!(profile_text.trim_end().ends_with("</CUSTOMER_PROFILE>"), "{profile_text}");
}

#[tokio::test]
async fn s19_customer_before_any_thread() {
    let (_d, _mock, server) = setup(Script::new()).await;
    let res = server.client.get(server.url("/support/customer")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_untouched(&body["customer"]);
    assert_eq!(body["customer"]["loyalty_progress"]["points_earned"], 42000);
    assert_eq!(body["customer"]["booked_widget_ids"], json!([]));
}

#[tokio::test]
async fn model_failure_ends_with_a_retryable_error_and_keeps_the_user_message() {
    let script = Script::new().rule(Rule::new(Match::Any, Reply::http_error(500, None)));
    let (_d, _mock, server) = setup(script).await;
    let events = server.stream(create("Move me to seat 14C on flight OA476.")).await;
    let thread = thread_id_of(&events);
    let k = kinds(&events);
    assert_eq!(&k[..3], &create_prefix()[..]);
    // A clear, retryable error event (the sample sends a bare `stream.error`; we say what failed).
    assert_eq!(k.last().unwrap(), "error:custom");
    let error = events.last().unwrap();
    assert_eq!(error["allow_retry"], true);
    assert!(
        error["message"].as_str().unwrap().starts_with("The OpenAI model service failed to answer (HTTP 500)"),
        "{error}"
    );
    assert!(!error.to_string().contains("test-key"));
    let items = server.items(&thread).await;
    let types: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["user_message"]);
}
