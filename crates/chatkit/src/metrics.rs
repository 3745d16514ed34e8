//! The metrics the protocol server records, through the `metrics` facade: without an installed
//! recorder (the application chooses the exporter) every call is a no-op. Label values come from fixed
//! sets (request types, outcomes), never from ids or user text.

use std::time::Duration;

/// Counter of ChatKit requests by `type` (the request type; `invalid` when the body could not be
/// decoded) and `outcome`: `ok` for answered JSON requests, how a stream ended (`completed`, `failed`,
/// `cancelled`, `busy`, `panicked`), or the error `code` of a request refused before any stream.
pub const REQUESTS: &str = "chatkit_requests_total";
/// Histogram of a streaming request's duration, from its arrival to its turn's end, by `type` and
/// `outcome` (as in [`REQUESTS`]).
pub const TURN_DURATION: &str = "chatkit_turn_duration_seconds";
/// Histogram of the time from a streaming request's arrival to the first event the app produced (the
/// start of the answer, usually the assistant message), by `type`.
pub const TIME_TO_FIRST_EVENT: &str = "chatkit_time_to_first_event_seconds";
/// Gauge of the event streams open to clients.
pub const OPEN_STREAMS: &str = "chatkit_open_streams";

/// Registers the help text of every metric above with the installed recorder.
pub fn describe() {
    metrics::describe_counter!(REQUESTS, "ChatKit requests by request type and outcome.");
    metrics::describe_histogram!(
        TURN_DURATION,
        metrics::Unit::Seconds,
        "Streaming ChatKit requests: time from arrival to the end of the turn, by request type and outcome."
    );
    metrics::describe_histogram!(
        TIME_TO_FIRST_EVENT,
        metrics::Unit::Seconds,
        "Streaming ChatKit requests: time from arrival to the first event the app produced."
    );
    metrics::describe_gauge!(OPEN_STREAMS, "Event streams currently open to clients.");
}

/// Counts one finished request.
pub(crate) fn request(kind: &'static str, outcome: &'static str) {
    metrics::counter!(REQUESTS, "type" => kind, "outcome" => outcome).increment(1);
}

/// Records how a turn ended and how long its request took.
pub(crate) fn turn_ended(kind: &'static str, outcome: &'static str, duration: Duration) {
    request(kind, outcome);
    metrics::histogram!(TURN_DURATION, "type" => kind, "outcome" => outcome).record(duration.as_secs_f64());
}

/// Records the time to a turn's first app event.
pub(crate) fn first_event(kind: &'static str, after: Duration) {
    metrics::histogram!(TIME_TO_FIRST_EVENT, "type" => kind).record(after.as_secs_f64());
}

/// Counts an event stream as open until dropped.
#[derive(Debug)]
pub(crate) struct OpenStream(());

impl OpenStream {
    pub(crate) fn open() -> Self {
        metrics::gauge!(OPEN_STREAMS).increment(1.0);
        OpenStream(())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!(OPEN_STREAMS).decrement(1.0);
    }
}
