//! Helpers shared by the integration tests: an HTTP client and an SSE frame parser.

#![allow(dead_code)]

use futures::StreamExt;
use serde_json::Value;

/// One parsed SSE frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub event: Option<String>,
    pub data: Value,
}

/// Parses a complete SSE body (LF or CRLF line endings).
pub fn parse_sse(body: &str) -> Vec<Frame> {
    let body = body.replace("\r\n", "\n");
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            Frame { event, data: serde_json::from_str(&data).unwrap() }
        })
        .collect()
}

/// Reads a streamed body until its end or an error; returns the text and whether it failed.
pub async fn read_until_error(resp: reqwest::Response) -> (String, bool) {
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

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// The `type` of each frame's data.
pub fn types(frames: &[Frame]) -> Vec<String> {
    frames.iter().map(|f| f.data["type"].as_str().unwrap_or("").to_owned()).collect()
}

/// A user message input item.
pub fn user_item(text: &str) -> Value {
    serde_json::json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
}
