//! From an HTTP response body to a [`ModelStream`]: chunk timeouts (first byte, then idle),
//! SSE framing (`eventsource-stream`), and a provider-specific [`EventParser`] that turns each
//! `data:` payload into [`ModelEvent`]s.
//!
//! The stream is a plain future-driven state machine (no spawned task), so dropping it closes the
//! HTTP connection at once: a cancelled turn cancels the model request.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::{EventStreamError, Eventsource};
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

struct State<S, P> {
    events: std::pin::Pin<Box<S>>,
    parser: P,
    queue: EventQueue,
    done: bool,
}

/// The model stream of a streaming response, parsed by `parser`.
pub(crate) fn model_stream<P: EventParser>(
    response: reqwest::Response,
    provider: &'static str,
    timeouts: Timeouts,
    parser: P,
) -> ModelStream {
    let events = timed_chunks(response.bytes_stream(), provider, timeouts).eventsource();
    let state = State { events: Box::pin(events), parser, queue: VecDeque::new(), done: false };
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
                tokio::time::timeout(DRAIN_GRACE, st.events.next()).await.unwrap_or_default()
            } else {
                st.events.next().await
            };
            match next {
                Some(Ok(event)) => {
                    let data = event.data.trim();
                    if data.is_empty() || data == "[DONE]" || st.parser.finished() {
                        continue;
                    }
                    st.parser.on_data(data, &mut st.queue);
                }
                Some(Err(e)) => {
                    st.done = true;
                    if st.parser.finished() {
                        continue;
                    }
                    let err = match e {
                        EventStreamError::Transport(err) => err,
                        EventStreamError::Utf8(err) => ProviderError::Decode { provider, message: err.to_string() },
                        EventStreamError::Parser(err) => ProviderError::Decode { provider, message: err.to_string() },
                    };
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

/// How long to wait for the end of the body after the terminal event.
const DRAIN_GRACE: Duration = Duration::from_millis(50);
