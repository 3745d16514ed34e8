//! Helpers shared by the integration tests: an HTTP client, and the mock's streams decoded with
//! the client's own SSE decoder (`agents::SseDecoder`), with a check that each body is exactly the
//! frames the real provider would send.

#![allow(dead_code)]

use std::collections::VecDeque;

use agents::SseDecoder;
use futures::StreamExt;
use serde_json::Value;

/// The `data` of each event of a complete SSE body; panics if the body ends mid-event.
fn decode(body: &str) -> Vec<String> {
    let mut decoder = SseDecoder::default();
    let mut data = VecDeque::new();
    decoder.feed(body.as_bytes(), &mut data).unwrap();
    assert!(decoder.is_between_events(), "body ends mid-event: {body:?}");
    data.into()
}

/// The events of an OpenAI stream, checking that each frame is exactly
/// `event: <type>\ndata: <single-line json>\n\n` with the `event` naming the data's `type`.
pub(crate) fn openai_events(body: &str) -> Vec<Value> {
    let data = decode(body);
    let events: Vec<Value> = data.iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    let framed: String = data
        .iter()
        .zip(&events)
        .map(|(d, event)| format!("event: {}\ndata: {d}\n\n", event["type"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(body, framed, "not OpenAI's `event:` + `data:` framing");
    events
}

/// The chunks of a Gemini `alt=sse` stream, checking that each frame is exactly
/// `data: <single-line json>\r\n\r\n`.
pub(crate) fn gemini_chunks(body: &str) -> Vec<Value> {
    let data = decode(body);
    let framed: String = data.iter().map(|d| format!("data: {d}\r\n\r\n")).collect();
    assert_eq!(body, framed, "not Gemini's CRLF `data:` framing");
    data.iter().map(|d| serde_json::from_str(d).unwrap()).collect()
}

/// Reads a streamed body until its end or an error; returns the text and whether it failed.
pub(crate) async fn read_until_error(resp: reqwest::Response) -> (String, bool) {
    let mut stream = resp.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => out.extend_from_slice(&bytes),
            Err(_) => return (String::from_utf8(out).unwrap(), true),
        }
    }
    (String::from_utf8(out).unwrap(), false)
}

/// A fresh HTTP client (each test gets its own connection pool).
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// The `type` of each event.
pub(crate) fn types(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["type"].as_str().unwrap_or("").to_owned()).collect()
}

/// A user message input item.
pub(crate) fn user_item(text: &str) -> Value {
    serde_json::json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
}
