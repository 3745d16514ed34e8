//! `LOG_FORMAT=json`: one JSON object per line, for log collectors that index fields.
//!
//! Every line has `time` (RFC 3339, UTC, microseconds), `level`, `target` and `message`, the event's own
//! fields at the top level, and the request context found in the enclosing spans: `request_id` (the
//! request's `x-request-id`), `thread_id` (the ChatKit thread a turn works on) and `trace_id` (when a
//! span of the scope carries one). An event's own field of the same name wins over the span's.
//!
//! [`SpanContextLayer`] copies those span fields into the span's extensions when the span is created or
//! recorded, so formatting a line only walks the scope instead of re-parsing every span's fields.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The span fields every JSON line carries when one of its enclosing spans has them.
const CONTEXT_FIELDS: [&str; 3] = ["request_id", "thread_id", "trace_id"];

/// The context fields of one span, kept in its extensions by [`SpanContextLayer`].
#[derive(Debug, Default, Clone)]
struct SpanContext {
    values: [Option<String>; 3],
}

impl Visit for SpanContext {
    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(i) = CONTEXT_FIELDS.iter().position(|name| *name == field.name()) {
            self.values[i] = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if let Some(i) = CONTEXT_FIELDS.iter().position(|name| *name == field.name()) {
            self.values[i] = Some(format!("{value:?}"));
        }
    }
}

/// Keeps the request context fields of every span (see the module doc).
pub struct SpanContextLayer;

impl<S> Layer<S> for SpanContextLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = SpanContext::default();
        attrs.record(&mut fields);
        if fields.values.iter().any(Option::is_some)
            && let Some(span) = ctx.span(id)
        {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        let mut fields = extensions.remove::<SpanContext>().unwrap_or_default();
        values.record(&mut fields);
        extensions.insert(fields);
    }
}

/// The event's fields as JSON values (`message` included).
struct JsonFields(Map<String, Value>);

impl Visit for JsonFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value).map(Value::Number).unwrap_or(Value::Null);
        self.0.insert(field.name().to_string(), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().to_string(), value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}").into());
    }
}

/// Formats each event as one JSON object (see the module doc).
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = JsonFields(Map::new());
        event.record(&mut fields);
        let mut line = Map::new();
        line.insert("time".into(), chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true).into());
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        line.insert("message".into(), fields.0.remove("message").unwrap_or_else(|| "".into()));
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                let extensions = span.extensions();
                let Some(context) = extensions.get::<SpanContext>() else { continue };
                for (name, value) in CONTEXT_FIELDS.iter().zip(&context.values) {
                    if let Some(value) = value
                        && !line.contains_key(*name)
                        && !fields.0.contains_key(*name)
                    {
                        line.insert((*name).to_string(), value.clone().into());
                    }
                }
            }
        }
        for (name, value) in fields.0 {
            line.entry(name).or_insert(value);
        }
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(captured: &Captured) -> Vec<Value> {
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    }

    #[test]
    fn lines_carry_the_span_context_and_the_event_fields() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry()
            .with(SpanContextLayer)
            .with(tracing_subscriber::fmt::layer().event_format(JsonLines).with_writer(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("request", request_id = "req-1");
            let _r = request.enter();
            tracing::info!(status = 200u16, latency_ms = 1.5, "plain \"quoted\"");
            let turn = tracing::info_span!("chatkit_turn", thread_id = %"thr_1", trace_id = tracing::field::Empty);
            let _t = turn.enter();
            turn.record("trace_id", "0af7651916cd43dd8448eb211c80319c");
            tracing::warn!(thread_id = "thr_event", "event field wins");
        });
        let lines = lines(&captured);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let first = &lines[0];
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["message"], "plain \"quoted\"");
        assert_eq!(first["request_id"], "req-1");
        assert_eq!(first["status"], 200);
        assert_eq!(first["latency_ms"], 1.5);
        assert!(first.get("thread_id").is_none());
        assert!(chrono::DateTime::parse_from_rfc3339(first["time"].as_str().unwrap()).is_ok());
        assert!(first["target"].as_str().unwrap().starts_with("support"));
        let second = &lines[1];
        assert_eq!(second["level"], "WARN");
        assert_eq!(second["request_id"], "req-1");
        assert_eq!(second["thread_id"], "thr_event");
        assert_eq!(second["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    }
}
