//! The OpenAI transcription endpoint and the shipped OpenSkies demo script.

mod common;

use common::{client, openai_events, user_item};
use mock_llm::{DEFAULT_TRANSCRIPT, MockServer, Script};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

#[tokio::test]
async fn transcription_returns_the_script_transcript() {
    let server = MockServer::start(Script::default()).await.unwrap();
    let url = format!("{}/audio/transcriptions", server.openai_base_url());
    let form = Form::new()
        .text("model", "gpt-4o-transcribe")
        .part("file", Part::bytes(vec![1u8, 2, 3, 4]).file_name("dictation.webm").mime_str("audio/webm").unwrap());
    let resp = client().post(&url).bearer_auth("k").multipart(form).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"text": DEFAULT_TRANSCRIPT}));
    let recorded = server.requests();
    assert_eq!(recorded[0].path, "/v1/audio/transcriptions");
    assert_eq!(
        recorded[0].body,
        json!({"model": "gpt-4o-transcribe",
               "file": {"filename": "dictation.webm", "content_type": "audio/webm", "size": 4}})
    );

    // No file → 400; no key → 401.
    let resp = client()
        .post(&url)
        .bearer_auth("k")
        .multipart(Form::new().text("model", "gpt-4o-transcribe"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["message"], "Missing required parameter: 'file'.");
    let resp = client().post(&url).multipart(Form::new().text("model", "m")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
}

fn demo_script() -> Script {
    Script::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/openskies-demo.json")).unwrap()
}

/// Sends `input` and returns (text, calls as (name, arguments JSON)).
async fn turn(server: &MockServer, input: Vec<Value>) -> (String, Vec<(String, Value)>) {
    let resp = client()
        .post(format!("{}/responses", server.openai_base_url()))
        .bearer_auth("k")
        .json(&json!({"model": "gpt-4.1-mini", "stream": true, "input": input}))
        .send()
        .await
        .unwrap();
    let frames = openai_events(&resp.text().await.unwrap());
    let mut text = String::new();
    let mut calls = Vec::new();
    for f in frames {
        if f["type"] == "response.output_text.done" {
            text = f["text"].as_str().unwrap().to_owned();
        }
        if f["type"] == "response.output_item.done" && f["item"]["type"] == "function_call" {
            let args = f["item"]["arguments"].as_str().unwrap();
            calls.push((f["item"]["name"].as_str().unwrap().to_owned(), serde_json::from_str(args).unwrap()));
        }
    }
    (text, calls)
}

fn assistant(text: &str) -> Value {
    json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

#[tokio::test]
async fn demo_script_drives_the_openskies_scenarios() {
    let server = MockServer::start(demo_script()).await.unwrap();

    let (_, calls) = turn(&server, vec![user_item("Move me to seat 14C on flight OA476.")]).await;
    assert_eq!(calls, [("change_seat".to_owned(), json!({"flight_number": "OA476", "seat": "14C"}))]);

    let ask = "Cancel my upcoming trip and request a refund.";
    let (confirm, calls) = turn(&server, vec![user_item(ask)]).await;
    assert!(calls.is_empty());
    assert!(confirm.contains("confirm"), "{confirm}");
    let (_, calls) = turn(&server, vec![user_item(ask), assistant(&confirm), user_item("Yes, cancel it.")]).await;
    assert_eq!(calls, [("cancel_trip".to_owned(), json!({}))]);

    let ask = "Add one more checked bag to the reservation.";
    let (confirm, calls) = turn(&server, vec![user_item(ask)]).await;
    assert!(calls.is_empty());
    let (_, calls) = turn(&server, vec![user_item(ask), assistant(&confirm), user_item("Yes")]).await;
    assert_eq!(calls, [("add_checked_bag".to_owned(), json!({}))]);

    let (_, calls) = turn(&server, vec![user_item("I need wheelchair assistance at JFK.")]).await;
    assert_eq!(calls, [("request_assistance".to_owned(), json!({"note": "Wheelchair assistance at JFK"}))]);

    let paris = json!({"destination": "CDG", "depart_date": "2025-11-03", "return_date": "2025-11-10", "cabin": "business", "origin": null});
    for ask in ["Book a trip to Paris, Nov 3 to Nov 10, business.", "Let's book something"] {
        let (_, calls) = turn(&server, vec![user_item(ask)]).await;
        assert_eq!(calls, [("flight_option_list".to_owned(), paris.clone())]);
    }

    let (text, calls) = turn(&server, vec![user_item("Set my meal preference.")]).await;
    assert!(calls.is_empty());
    assert!(text.starts_with("I'm sorry"), "{text}");

    let (text, _) = turn(&server, vec![user_item("What's on my itinerary?")]).await;
    assert_eq!(text, "Mock reply: What's on my itinerary?");
}
