//! From an HTTP response body to a [`ModelStream`]: chunk timeouts (first byte, then idle),
//! SSE framing ([`SseDecoder`], the WHATWG event-stream rules for the `data` field), and a
//! provider-specific [`EventParser`] that turns each `data:` payload into [`ModelEvent`]s.
//!
//! The stream is a plain future-driven state machine (no spawned task), so dropping it closes the
//! HTTP connection at once: a cancelled turn cancels the model request.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::provider::{ModelEvent, ModelStream, ProviderError, TimeoutPhase};
use crate::transport::Timeouts;

/// Queue a parser pushes its output into.
pub(crate) type EventQueue = VecDeque<Result<ModelEvent, ProviderError>>;

/// Turns SSE `data:` payloads of one provider into model events.
pub(crate) trait EventParser: Send + 'static {
    /// One `data:` payload.
    fn on_data(&mut self, data: &str, out: &mut EventQueue);
    /// The body ended cleanly; emit the final events or a "cut" error.
    fn on_eof(&mut self, out: &mut EventQueue);
    /// Whether the terminal event was seen (later transport errors are then ignored).
    fn finished(&self) -> bool;
    /// The `data: [DONE]` marker some APIs end their stream with (ignored unless the parser needs it).
    fn on_done_marker(&mut self, _out: &mut EventQueue) {}
}

/// One `data:` payload read as JSON, leniently: an unreadable one is logged and skipped (`None`)
/// rather than failing the turn, since a server may send shapes the parser does not know.
pub(crate) fn read_chunk<T: serde::de::DeserializeOwned>(data: &str, provider: &'static str) -> Option<T> {
    serde_json::from_str(data)
        .inspect_err(|e| tracing::warn!(provider, error = %e, "skipping unreadable stream chunk"))
        .ok()
}

/// Applies the first-byte timeout to the first chunk and the idle timeout to the following ones.
fn timed_chunks(
    body: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
    provider: &'static str,
    timeouts: Timeouts,
) -> impl Stream<Item = Result<Bytes, ProviderError>> + Send + 'static {
    futures::stream::unfold((Box::pin(body), true, false), move |(mut body, first, ended)| async move {
        if ended {
            return None;
        }
        let (limit, phase) =
            if first { (timeouts.first_byte, TimeoutPhase::FirstByte) } else { (timeouts.idle, TimeoutPhase::Idle) };
        match tokio::time::timeout(limit, body.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), (body, false, false))),
            Ok(Some(Err(e))) => {
                let message = cut_message(&e);
                Some((Err(ProviderError::StreamCut { provider, message }), (body, false, true)))
            }
            Ok(None) => None,
            Err(_) => Some((Err(ProviderError::Timeout { provider, phase, after: limit }), (body, false, true))),
        }
    })
}

fn cut_message(e: &reqwest::Error) -> String {
    // The innermost cause is the informative part ("unexpected EOF during chunk size line").
    let mut current: &dyn std::error::Error = e;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

/// Incremental SSE decoder: feed it body chunks, it yields the `data` of every complete event.
///
/// Lines end with LF, CRLF or CR (also when the CR and LF arrive in different chunks); a blank
/// line dispatches the event (nothing when it had no `data` line); several `data` lines are joined
/// with `\n`; one space after the colon is dropped; comments and other fields are ignored; an
/// event not terminated by a blank line before the end of the body is discarded.
///
/// Public (re-exported as `agents::SseDecoder`): the load benchmark reads the server's streams with it and the
/// fuzz targets in `fuzz/` drive it directly; the providers use it through their model streams.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    data: String,
    has_data: bool,
    after_cr: bool,
}

impl SseDecoder {
    /// Decodes `chunk`, pushing the data of each completed event into `out`. A `data:` line that is not
    /// UTF-8 is an error (the stream cannot be trusted after it); other fields (`event:`, `id:`, comments)
    /// are skipped unread, whatever their bytes.
    pub fn feed(&mut self, chunk: &[u8], out: &mut VecDeque<String>) -> Result<(), std::str::Utf8Error> {
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if rest[0] == b'\n' {
                    rest = &rest[1..];
                    continue;
                }
            }
            match memchr::memchr2(b'\n', b'\r', rest) {
                Some(end) => {
                    self.after_cr = rest[end] == b'\r';
                    if self.line.is_empty() {
                        self.on_line(&rest[..end], out)?;
                    } else {
                        self.line.extend_from_slice(&rest[..end]);
                        let line = std::mem::take(&mut self.line);
                        self.on_line(&line, out)?;
                        self.line = line;
                        self.line.clear();
                    }
                    rest = &rest[end + 1..];
                }
                None => {
                    self.line.extend_from_slice(rest);
                    break;
                }
            }
        }
        Ok(())
    }

    /// Whether the input so far ended exactly at an event boundary (no partial line or undispatched
    /// `data`): a body that ends otherwise was cut off mid-event.
    pub fn is_between_events(&self) -> bool {
        self.line.is_empty() && !self.has_data
    }

    fn on_line(&mut self, line: &[u8], out: &mut VecDeque<String>) -> Result<(), std::str::Utf8Error> {
        if line.is_empty() {
            if self.has_data {
                self.has_data = false;
                if self.data.ends_with('\n') {
                    self.data.pop();
                }
                out.push_back(std::mem::take(&mut self.data));
            }
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return Ok(()), // comment
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        if field == b"data" {
            self.data.push_str(std::str::from_utf8(value)?);
            self.data.push('\n');
            self.has_data = true;
        }
        Ok(())
    }
}

struct State<S, P> {
    chunks: std::pin::Pin<Box<S>>,
    decoder: SseDecoder,
    events: VecDeque<String>,
    ended: bool,
    parser: P,
    queue: EventQueue,
    done: bool,
}

impl<S: Stream<Item = Result<Bytes, ProviderError>>, P> State<S, P> {
    /// The data of the next event; `None` at the end of the body.
    async fn next_event(&mut self, provider: &'static str) -> Option<Result<String, ProviderError>> {
        loop {
            if let Some(data) = self.events.pop_front() {
                return Some(Ok(data));
            }
            if self.ended {
                return None;
            }
            match self.chunks.next().await {
                Some(Ok(chunk)) => {
                    if let Err(e) = self.decoder.feed(&chunk, &mut self.events) {
                        self.ended = true;
                        return Some(Err(ProviderError::Decode { provider, message: e.to_string() }));
                    }
                }
                Some(Err(e)) => {
                    self.ended = true;
                    return Some(Err(e));
                }
                None => {
                    self.ended = true;
                }
            }
        }
    }
}

/// The model stream of a streaming response, parsed by `parser`.
pub(crate) fn model_stream<P: EventParser>(
    response: reqwest::Response,
    provider: &'static str,
    timeouts: Timeouts,
    parser: P,
) -> ModelStream {
    let chunks = timed_chunks(response.bytes_stream(), provider, timeouts);
    let state = State {
        chunks: Box::pin(chunks),
        decoder: SseDecoder::default(),
        events: VecDeque::new(),
        ended: false,
        parser,
        queue: VecDeque::new(),
        done: false,
    };
    Box::pin(futures::stream::unfold(state, move |mut st| async move {
        loop {
            if let Some(item) = st.queue.pop_front() {
                if item.is_err() {
                    st.queue.clear();
                    st.done = true;
                }
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            let next = if st.parser.finished() {
                // Read the (usually immediate) end of the body so the connection can be reused,
                // without waiting on a server that keeps it open after the terminal event.
                tokio::time::timeout(DRAIN_GRACE, st.next_event(provider)).await.unwrap_or_default()
            } else {
                st.next_event(provider).await
            };
            match next {
                Some(Ok(data)) => {
                    dispatch(&mut st.parser, &data, &mut st.queue);
                }
                Some(Err(err)) => {
                    st.done = true;
                    if st.parser.finished() {
                        continue;
                    }
                    st.queue.push_back(Err(err));
                }
                None => {
                    st.done = true;
                    st.parser.on_eof(&mut st.queue);
                }
            }
        }
    }))
}

/// Hands one event's `data` to `parser`: blank data and anything after the terminal event are
/// skipped, `[DONE]` is the end marker.
pub(crate) fn dispatch<P: EventParser>(parser: &mut P, data: &str, out: &mut EventQueue) {
    let data = data.trim();
    if data.is_empty() || parser.finished() {
        return;
    }
    if data == "[DONE]" {
        parser.on_done_marker(out);
    } else {
        parser.on_data(data, out);
    }
}

/// How long to wait for the end of the body after the terminal event.
const DRAIN_GRACE: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> Vec<String> {
        let mut d = SseDecoder::default();
        let mut out = VecDeque::new();
        for c in chunks {
            d.feed(c, &mut out).unwrap();
        }
        out.into_iter().collect()
    }

    #[test]
    fn decodes_events_across_chunks_and_line_endings() {
        assert_eq!(decode(&[b"data: {\"a\":1}\n\ndata: x\n\n"]), ["{\"a\":1}", "x"]);
        // CRLF, with the CR and the LF in different chunks, and a split in the middle of a line.
        assert_eq!(decode(&[b"data: he", b"llo\r", b"\n\r\n", b"data:two\r\r"]), ["hello", "two"]);
        // Multi-line data, comments, other fields, a field without a colon, no space after the colon.
        assert_eq!(decode(&[b": keep-alive\nevent: message\nid: 7\ndata:a\ndata:  b\nretry\n\n"]), ["a\n b"]);
        // A blank line without data dispatches nothing; an unterminated event is dropped.
        assert_eq!(decode(&[b"\n\nevent: x\n\ndata: tail"]), Vec::<String>::new());
        // A multi-byte character split between chunks.
        assert_eq!(
            decode(&[
                "data: \u{e9}\u{1f642}\n\n".as_bytes()[..8].as_ref(),
                &"data: \u{e9}\u{1f642}\n\n".as_bytes()[8..]
            ]),
            ["\u{e9}\u{1f642}"]
        );
        assert_eq!(decode(&[b"data\n\n"]), [""]);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut d = SseDecoder::default();
        let mut out = VecDeque::new();
        assert!(d.feed(b"data: \xff\n\n", &mut out).is_err());
    }
}
