//! SSE framing both ways: the server's encoder (`chatkit::encode_sse`) and the model-stream decoder
//! (`agents::SseDecoder`).
//!
//! The first byte picks the mode:
//! * events: a `ThreadStreamEvent` parsed from the input's JSON (after one trip through JSON, which
//!   truncates sub-microsecond timestamps), or built from the bytes (arbitrary
//!   text in progress/notice/error/text-delta events, arbitrary JSON in client effects and widget
//!   updates) is encoded as a frame. The frame must be `data: <one line of JSON>\n\n`, read back by a
//!   reference SSE parser and by `SseDecoder` (whole and byte by byte) as exactly that JSON, which is
//!   the event's JSON and decodes to an equal event whose `type` is `type_name()`;
//! * stream: arbitrary bytes cut into arbitrary chunks are fed to `SseDecoder`. It must never panic,
//!   must give the same events (and the same invalid-UTF-8 stop) however the stream is split, byte by
//!   byte included, and must agree with the reference parser on the whole stream.

#![no_main]

use std::collections::VecDeque;

use agents::SseDecoder;
use chatkit::encode_sse;
use chatkit::types::{ItemUpdate, NoticeLevel, ThreadStreamEvent};
use chatkit_fuzz::{SseParse, json_string, json_value, reference_sse};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        0 => {
            if let Ok(parsed) = serde_json::from_slice::<ThreadStreamEvent>(rest) {
                // `Timestamp` keeps sub-microsecond digits when it parses but writes microseconds, so the
                // first trip through JSON may truncate them (the server only makes microsecond times).
                // The event's own JSON must decode, and from then on a frame must carry it exactly.
                let json = serde_json::to_string(&parsed).expect("an event serializes");
                let canonical: ThreadStreamEvent = serde_json::from_str(&json)
                    .unwrap_or_else(|e| panic!("an event's own JSON does not decode ({e}): {json}"));
                check_event(&canonical);
            }
        }
        1 => {
            if let Ok(event) = built_event(&mut Unstructured::new(rest)) {
                check_event(&event);
            }
        }
        _ => check_stream(rest),
    }
});

/// An event carrying arbitrary text or JSON where the protocol allows it.
fn built_event(u: &mut Unstructured<'_>) -> Result<ThreadStreamEvent> {
    let text =
        |u: &mut Unstructured<'_>| -> Result<String> { if u.arbitrary()? { u.arbitrary() } else { json_string(u) } };
    Ok(match u.int_in_range(0u8..=8)? {
        0 => ThreadStreamEvent::ProgressUpdate {
            icon: if u.arbitrary()? { Some(text(u)?) } else { None },
            text: text(u)?,
        },
        1 => ThreadStreamEvent::ClientEffect { name: text(u)?, data: json_value(u, 4)? },
        2 => ThreadStreamEvent::Error {
            code: text(u)?,
            message: if u.arbitrary()? { Some(text(u)?) } else { None },
            allow_retry: u.arbitrary()?,
        },
        3 => ThreadStreamEvent::Notice {
            level: *u.choose(&[NoticeLevel::Info, NoticeLevel::Warning, NoticeLevel::Danger])?,
            message: text(u)?,
            title: if u.arbitrary()? { Some(text(u)?) } else { None },
        },
        4 => ThreadStreamEvent::ItemUpdated {
            item_id: text(u)?,
            update: ItemUpdate::TextDelta { content_index: u.int_in_range(0..=3)?, delta: text(u)? },
        },
        5 => ThreadStreamEvent::ItemUpdated {
            item_id: text(u)?,
            update: ItemUpdate::WidgetStreamingTextValueDelta {
                component_id: text(u)?,
                delta: text(u)?,
                done: u.arbitrary()?,
            },
        },
        6 => ThreadStreamEvent::ItemUpdated {
            item_id: text(u)?,
            update: ItemUpdate::WidgetRootUpdated { widget: json_value(u, 4)? },
        },
        7 => ThreadStreamEvent::ItemUpdated {
            item_id: text(u)?,
            update: ItemUpdate::WorkflowTaskAdded { task_index: u.int_in_range(0..=3)?, task: json_value(u, 3)? },
        },
        _ => ThreadStreamEvent::ItemRemoved { item_id: text(u)? },
    })
}

/// Feeds `chunks` to a fresh decoder, stopping at the first error as the model stream does.
fn decode<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> SseParse {
    let mut decoder = SseDecoder::default();
    let mut out = VecDeque::new();
    for chunk in chunks {
        if decoder.feed(chunk, &mut out).is_err() {
            return SseParse { events: out.into(), invalid_utf8: true };
        }
    }
    SseParse { events: out.into(), invalid_utf8: false }
}

fn check_event(event: &ThreadStreamEvent) {
    let frame = encode_sse(event);
    let text = std::str::from_utf8(&frame).expect("an SSE frame is UTF-8");
    let json = text
        .strip_prefix("data: ")
        .and_then(|t| t.strip_suffix("\n\n"))
        .unwrap_or_else(|| panic!("not a `data: …\\n\\n` frame: {text:?}"));
    assert!(!json.contains(['\n', '\r']), "the payload spans several lines: {json:?}");
    assert_eq!(json, serde_json::to_string(event).unwrap(), "the frame is not the event's JSON");

    // Read back by an independent parser and by the decoder the model streams use.
    let expected = SseParse { events: vec![json.to_string()], invalid_utf8: false };
    assert_eq!(reference_sse(&frame), expected);
    assert_eq!(decode([&frame[..]]), expected);
    assert_eq!(decode(frame.chunks(1)), expected);
    let twice = [&frame[..], &frame[..]].concat();
    assert_eq!(decode(twice.chunks(7)).events, [json, json]);

    let back: ThreadStreamEvent =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("the frame does not decode ({e}): {json}"));
    assert_eq!(&back, event, "the event changed through its frame: {json}");
    let value: Value = serde_json::from_str(json).unwrap();
    assert_eq!(value["type"].as_str(), Some(event.type_name()));
}

fn check_stream(data: &[u8]) {
    // Up to 8 cut points from the first bytes, the rest is the stream.
    let mut u = Unstructured::new(data);
    let count = u.int_in_range(0usize..=8).unwrap_or(0);
    let mut cuts: Vec<usize> = (0..count).filter_map(|_| u.arbitrary::<u16>().ok().map(usize::from)).collect();
    let body = u.take_rest();
    cuts.iter_mut().for_each(|c| *c %= body.len() + 1);
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for &cut in &cuts {
        chunks.push(&body[start..cut]);
        start = cut;
    }
    chunks.push(&body[start..]);

    let whole = decode([body]);
    assert_eq!(decode(chunks.iter().copied()), whole, "splitting at {cuts:?} changes the events");
    assert_eq!(decode(body.chunks(1)), whole, "feeding byte by byte changes the events");
    assert_eq!(whole, reference_sse(body), "the decoder disagrees with the reference parser");
}
