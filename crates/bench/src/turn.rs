//! One full chat turn as the load generator sees it: `POST` a `threads.create` request, read the SSE
//! stream to its end, and classify the result (ok, or which kind of error), with the time to the first
//! and to the last event.
//!
//! The SSE reader follows the standard line algorithm (`data:` lines accumulate, a blank line ends the
//! event, `\r\n` accepted), so it works against any ChatKit server, not only ours.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use agents::SseDecoder;
use bytes::Bytes;
use serde::Deserialize;

/// The request body of the benchmark's turn: a new thread with the user message "hello".
pub(crate) const CREATE_THREAD_BODY: &str = r#"{"type":"threads.create","params":{"input":{"content":[{"type":"input_text","text":"hello"}],"attachments":[],"inference_options":{}}}}"#;

/// Why a turn failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TurnError {
    /// The HTTP status was not 200.
    Status(u16),
    /// Connecting, sending or reading failed.
    Transport,
    /// The turn did not finish within the request timeout.
    Timeout,
    /// The stream carried an `error` event.
    ErrorEvent,
    /// The first event was not `thread.created`, or an event was not JSON with a `type`.
    Malformed,
    /// The stream ended without an assistant item (fewer than two `thread.item.done`).
    NoReply,
}

impl std::fmt::Display for TurnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TurnError::Status(s) => write!(f, "HTTP {s}"),
            TurnError::Transport => f.write_str("transport"),
            TurnError::Timeout => f.write_str("timeout"),
            TurnError::ErrorEvent => f.write_str("error event"),
            TurnError::Malformed => f.write_str("malformed stream"),
            TurnError::NoReply => f.write_str("no assistant reply"),
        }
    }
}

/// What one turn measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TurnOutcome {
    /// From sending the request to the first complete SSE event.
    pub(crate) first_event: Option<Duration>,
    /// From sending the request to the last complete SSE event.
    pub(crate) last_event: Option<Duration>,
    /// Ok, or why the turn failed.
    pub(crate) result: Result<(), TurnError>,
}

#[derive(Deserialize)]
struct EventType<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
}

/// Incremental SSE reader ([`agents::SseDecoder`]) that checks the ChatKit turn invariants as events arrive.
#[derive(Debug, Default)]
pub(crate) struct StreamCheck {
    decoder: SseDecoder,
    /// Decoded events not checked yet (reused between chunks).
    decoded: VecDeque<String>,
    /// Number of complete events seen.
    pub(crate) events: usize,
    items_done: usize,
    error: Option<TurnError>,
}

impl StreamCheck {
    /// Feeds received bytes; returns how many events completed in this chunk.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> usize {
        let before = self.events;
        if self.decoder.feed(chunk, &mut self.decoded).is_err() {
            self.error.get_or_insert(TurnError::Malformed);
        }
        while let Some(data) = self.decoded.pop_front() {
            self.event_done(&data);
        }
        self.events - before
    }

    fn event_done(&mut self, data: &str) {
        let first = self.events == 0;
        self.events += 1;
        match serde_json::from_str::<EventType<'_>>(data) {
            Ok(ev) => {
                if first && ev.kind != "thread.created" {
                    self.error.get_or_insert(TurnError::Malformed);
                }
                match ev.kind.as_ref() {
                    "error" => {
                        self.error.get_or_insert(TurnError::ErrorEvent);
                    }
                    "thread.item.done" => self.items_done += 1,
                    _ => {}
                }
            }
            Err(_) => {
                self.error.get_or_insert(TurnError::Malformed);
            }
        }
    }

    /// The verdict once the stream has ended.
    pub(crate) fn finish(&self) -> Result<(), TurnError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.events == 0 || !self.decoder.is_between_events() {
            return Err(TurnError::Malformed);
        }
        if self.items_done < 2 {
            return Err(TurnError::NoReply);
        }
        Ok(())
    }
}

/// Runs one turn: `POST url` with `body`, reading the stream to the end within `timeout`.
pub(crate) async fn run_turn(client: &reqwest::Client, url: &str, body: Bytes, timeout: Duration) -> TurnOutcome {
    let start = Instant::now();
    let mut first_event = None;
    let mut last_event = None;
    let result = tokio::time::timeout(timeout, async {
        let mut resp = client
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|_| TurnError::Transport)?;
        let status = resp.status().as_u16();
        if status != 200 {
            // Drain so the connection can be reused.
            while let Ok(Some(_)) = resp.chunk().await {}
            return Err(TurnError::Status(status));
        }
        let mut check = StreamCheck::default();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if check.feed(&chunk) > 0 {
                        let now = start.elapsed();
                        first_event.get_or_insert(now);
                        last_event = Some(now);
                    }
                }
                Ok(None) => break,
                Err(_) => return Err(TurnError::Transport),
            }
        }
        check.finish()
    })
    .await
    .unwrap_or(Err(TurnError::Timeout));
    TurnOutcome { first_event, last_event, result }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = concat!(
        "data: {\"type\":\"thread.created\",\"thread\":{}}\n\n",
        "data: {\"type\":\"thread.item.done\",\"item\":{\"type\":\"user_message\"}}\n\n",
        "data: {\"type\":\"stream_options\",\"stream_options\":{\"allow_cancel\":true}}\n\n",
        "data: {\"type\":\"thread.item.done\",\"item\":{\"type\":\"assistant_message\"}}\n\n",
    );

    #[test]
    fn accepts_a_complete_turn_in_any_chunking() {
        for split in 0..GOOD.len() {
            let mut c = StreamCheck::default();
            let (a, b) = GOOD.as_bytes().split_at(split);
            let n = c.feed(a) + c.feed(b);
            assert_eq!(n, 4, "split at {split}");
            assert_eq!(c.finish(), Ok(()), "split at {split}");
        }
    }

    #[test]
    fn accepts_crlf_and_multiline_data() {
        let mut c = StreamCheck::default();
        c.feed(b"event: x\r\ndata: {\"type\":\r\ndata: \"thread.created\"}\r\n\r\n");
        c.feed(b": comment\n\ndata: {\"type\":\"thread.item.done\"}\n\ndata: {\"type\":\"thread.item.done\"}\n\n");
        assert_eq!(c.events, 3);
        assert_eq!(c.finish(), Ok(()));
    }

    #[test]
    fn flags_error_events_wrong_first_event_and_truncation() {
        let mut c = StreamCheck::default();
        c.feed(GOOD.as_bytes());
        c.feed(b"data: {\"type\":\"error\",\"code\":\"stream.error\",\"allow_retry\":true}\n\n");
        assert_eq!(c.finish(), Err(TurnError::ErrorEvent));

        let mut c = StreamCheck::default();
        c.feed(b"data: {\"type\":\"stream_options\"}\n\n");
        assert_eq!(c.finish(), Err(TurnError::Malformed));

        let mut c = StreamCheck::default();
        c.feed(b"data: {\"type\":\"thread.created\"}\n\ndata: {\"type\":\"thread.item.done\"}\n\ndata: {\"ty");
        assert_eq!(c.finish(), Err(TurnError::Malformed));

        let mut c = StreamCheck::default();
        c.feed(b"data: {\"type\":\"thread.created\"}\n\ndata: {\"type\":\"thread.item.done\"}\n\n");
        assert_eq!(c.finish(), Err(TurnError::NoReply));

        let mut c = StreamCheck::default();
        c.feed(b"data: not json\n\n");
        assert_eq!(c.finish(), Err(TurnError::Malformed));
        assert_eq!(StreamCheck::default().finish(), Err(TurnError::Malformed));
    }

    #[test]
    fn body_is_a_valid_create_request() {
        let v: serde_json::Value = serde_json::from_str(CREATE_THREAD_BODY).unwrap();
        assert_eq!(v["type"], "threads.create");
        assert_eq!(v["params"]["input"]["content"][0]["text"], "hello");
    }
}
