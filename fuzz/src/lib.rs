//! Helpers shared by the fuzz targets: JSON built from fuzzer bytes (biased towards the keys and values the
//! protocol uses, so generated input gets past "missing field" quickly), a reference SSE parser written
//! independently of the project's decoder, and a single-threaded Tokio runtime.

use std::sync::OnceLock;

use chatkit::types::REQUEST_TYPES;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use serde_json::{Map, Number, Value};

/// Keys and string values of the ChatKit protocol and of the OpenSkies widget actions.
pub const WORDS: &[&str] = &[
    "type",
    "params",
    "metadata",
    "thread_id",
    "item_id",
    "item_ids",
    "input",
    "content",
    "text",
    "input_text",
    "input_tag",
    "id",
    "data",
    "group",
    "interactive",
    "attachments",
    "quoted_text",
    "inference_options",
    "tool_choice",
    "model",
    "result",
    "values",
    "skipped",
    "status",
    "answers",
    "answered",
    "action",
    "payload",
    "limit",
    "order",
    "asc",
    "desc",
    "after",
    "title",
    "kind",
    "positive",
    "negative",
    "name",
    "size",
    "mime_type",
    "image/png",
    "attachment_id",
    "audio_base64",
    "audio/webm",
    "options",
    "request",
    "leg",
    "outbound",
    "return",
    "origin",
    "destination",
    "depart_date",
    "return_date",
    "cabin",
    "business",
    "economy",
    "from_airport",
    "to_airport",
    "dep_time",
    "arr_time",
    "date_label",
    "flight_number",
    "option_id",
    "option_note",
    "keep",
    "cabin_name",
    "price",
    "depart_label",
    "return_label",
    "depart_time",
    "arrival_time",
    "flight.select",
    "booking.confirm_selection",
    "booking.modify_request",
    "upsell.accept",
    "upsell.decline",
    "rebook.select_option",
    "flight-midday",
    "SFO",
    "CDG",
    "2025-11-03",
    "2025-11-10",
    "thr_0123",
    "msg_0123",
    "atc_0123",
];

/// A string: usually a protocol word or request type, otherwise any UTF-8 the bytes give.
pub fn json_string(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 | 1 => (*u.choose(WORDS)?).to_string(),
        2 => (*u.choose(&REQUEST_TYPES)?).to_string(),
        _ => u.arbitrary::<String>()?,
    })
}

/// A JSON number: integers of every width and finite floats.
pub fn json_number(u: &mut Unstructured<'_>) -> Result<Number> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 => Number::from(u.int_in_range(-2i64..=100)?),
        1 => Number::from(u.arbitrary::<i64>()?),
        2 => Number::from(u.arbitrary::<u64>()?),
        _ => Number::from_f64(u.arbitrary::<f64>()?).unwrap_or_else(|| Number::from(0)),
    })
}

/// Any JSON value, nested at most `depth` levels.
pub fn json_value(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let top = if depth == 0 { 4 } else { 6 };
    Ok(match u.int_in_range(0u8..=top)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Number(json_number(u)?),
        3 | 4 => Value::String(json_string(u)?),
        5 => {
            let len = u.int_in_range(0usize..=4)?;
            let mut items = Vec::with_capacity(len);
            for _ in 0..len {
                items.push(json_value(u, depth - 1)?);
            }
            Value::Array(items)
        }
        _ => Value::Object(json_object(u, depth - 1)?),
    })
}

/// A JSON object of up to 6 entries, nested at most `depth` more levels.
pub fn json_object(u: &mut Unstructured<'_>, depth: u32) -> Result<Map<String, Value>> {
    let len = u.int_in_range(0usize..=6)?;
    let mut map = Map::new();
    for _ in 0..len {
        let key = json_string(u)?;
        map.insert(key, json_value(u, depth)?);
    }
    Ok(map)
}

/// What [`reference_sse`] read from a whole stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseParse {
    /// The `data` of every dispatched event, in order.
    pub events: Vec<String>,
    /// Whether reading stopped at a `data` line that is not UTF-8.
    pub invalid_utf8: bool,
}

/// Reference reading of a complete SSE body, written straight from the WHATWG event-stream rules the
/// project's decoder documents (whole buffer at once, no incremental state): lines end with CRLF, LF or
/// CR; a blank line dispatches the event if it had a `data` line; `data` lines are joined with LF; one
/// space after the colon is dropped; comments and other fields are ignored; an unterminated last line
/// or event is not dispatched. A `data` line that is not UTF-8 stops the reading (the project treats the
/// stream as broken there).
pub fn reference_sse(body: &[u8]) -> SseParse {
    let mut events = Vec::new();
    let mut data = String::new();
    let mut has_data = false;
    let mut start = 0;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b != b'\n' && b != b'\r' {
            i += 1;
            continue;
        }
        let line = &body[start..i];
        i += if b == b'\r' && body.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
        start = i;
        if line.is_empty() {
            if has_data {
                if data.ends_with('\n') {
                    data.pop();
                }
                events.push(std::mem::take(&mut data));
                has_data = false;
            }
            continue;
        }
        if line[0] == b':' {
            continue;
        }
        let (field, value) = match line.iter().position(|&c| c == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], if value.first() == Some(&b' ') { &value[1..] } else { value })
            }
            None => (line, &[][..]),
        };
        if field == b"data" {
            match std::str::from_utf8(value) {
                Ok(text) => {
                    data.push_str(text);
                    data.push('\n');
                    has_data = true;
                }
                Err(_) => return SseParse { events, invalid_utf8: true },
            }
        }
    }
    SseParse { events, invalid_utf8: false }
}

/// A current-thread Tokio runtime shared by all runs of a target (libFuzzer runs inputs one at a time).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime"))
}
