//! Property tests over real HTTP: hostile input never makes the server fail.
//!
//! * Widget actions: arbitrary JSON (and near-valid payloads with one field broken) as
//!   `threads.custom_action` `action.payload` for `flight.select`, the latent `booking.*` / `upsell.*` /
//!   `rebook.*` handlers and an unknown type, sent with and without the `item_id` of a real flight widget.
//!   Every answer is a 200 SSE stream that ignores an unknown type (only `stream_options`) and refuses
//!   anything the widget did not offer (one `custom` error event), and no refusal changes the profile or
//!   uses the widget up.
//! * Multipart upload: arbitrary bytes, random and corrupted multipart bodies, random content types and
//!   ids on the upload route answer only 200, 400, 404 or 413, always with a JSON body.
//! * Request decoding: arbitrary bytes and arbitrary JSON for every request type on `/support/chatkit`
//!   never answer 5xx.
//!
//! No request may panic anywhere in the server (a panic hook counts them; the server runs in process).
//!
//! Each property runs 64 cases by default to keep CI fast. For longer runs set `PROPTEST_CASES`, e.g.
//! `PROPTEST_CASES=5000 cargo test -p support --test payload_props --release`.

mod common;

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{TempDir, TestServer, booking_script, config, create, kinds, message, mock, parse_sse, thread_id_of};
use mock_llm::{MockServer, Script};
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use support::actions::Rejection;
use support::config::Config;

/// Cases per property: `PROPTEST_CASES` or 64.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

fn runner() -> TestRunner {
    TestRunner::new(PropConfig { cases: cases(), failure_persistence: None, ..PropConfig::default() })
}

/// Panics seen in this process since the hook was installed.
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts every panic (server tasks included), then runs the default hook.
fn count_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// A multi-threaded runtime and a server in it (temp SQLite, the mock model).
struct Fixture {
    rt: tokio::runtime::Runtime,
    server: TestServer,
    _mock: MockServer,
    _dir: TempDir,
}

impl Fixture {
    fn new(label: &str, script: Script, tweak: impl FnOnce(Config) -> Config) -> Fixture {
        count_panics();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = TempDir::new(label);
        let (server, mock) = rt.block_on(async {
            let mock = mock(script).await;
            let server = TestServer::start(tweak(config(&dir, Some(&mock)))).await;
            (server, mock)
        });
        Fixture { rt, server, _mock: mock, _dir: dir }
    }

    /// Runs `property` for `cases()` values of `strategy`, then checks that nothing panicked.
    fn check<S: Strategy>(&self, strategy: S, property: impl Fn(&Fixture, S::Value) -> Result<(), TestCaseError>) {
        let before = PANICS.load(Ordering::SeqCst);
        let result = runner().run(&strategy, |value| property(self, value));
        if let Err(e) = result {
            panic!("{e}");
        }
        assert_eq!(PANICS.load(Ordering::SeqCst), before, "the server panicked (see the output above)");
    }
}

// --- Strategies -----------------------------------------------------------------------------------------

/// Keys the handlers read, so random objects hit real code paths.
const KEYS: &[&str] = &[
    "id",
    "options",
    "request",
    "leg",
    "origin",
    "destination",
    "depart_date",
    "return_date",
    "cabin",
    "from_airport",
    "to_airport",
    "dep_time",
    "arr_time",
    "date_label",
    "flight_number",
    "option_id",
    "depart_time",
    "arrival_time",
    "option_note",
    "cabin_name",
    "price",
    "depart_label",
    "return_label",
    "type",
    "payload",
];

/// Values with meaning to the handlers, and troublemakers.
const VALUES: &[&str] = &[
    "",
    " ",
    "flight-morning",
    "flight-midday",
    "flight-late",
    "outbound",
    "return",
    "keep",
    "OA476",
    "OA1568",
    "OA917",
    "SFO",
    "CDG",
    "Paris",
    "business",
    "first",
    "economy",
    "premium economy",
    "2025-11-03",
    "20251103",
    "2025-11-03T10:00:00+01:00",
    "Premium Plus",
    "$199",
    "../../etc/passwd",
    "ǅungla",
    "ß",
    "🛫✈️🛬",
    "İ",
    "\u{0}",
    "\u{feff}",
    "a\u{301}",
    "\r\n",
    "%s%n",
    "{user_text}",
    "<script>alert(1)</script>",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(VALUES).prop_map(str::to_string),
        2 => "\\PC{0,24}",
        1 => ".{0,8}",
        1 => (1usize..3000).prop_map(|n| "é".repeat(n)),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![3 => prop::sample::select(KEYS).prop_map(str::to_string), 1 => "\\PC{0,10}"];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn search() -> impl Strategy<Value = Value> {
    (text(), text(), text(), text(), text()).prop_map(
        |(o, d, dd, rd, c)| json!({"origin": o, "destination": d, "depart_date": dd, "return_date": rd, "cabin": c}),
    )
}

fn option() -> impl Strategy<Value = Value> {
    (text(), text(), text(), text(), text(), text(), text()).prop_map(|(id, f, t, dep, arr, label, cabin)| {
        json!({"id": id, "from_airport": f, "to_airport": t, "dep_time": dep, "arr_time": arr,
               "date_label": label, "cabin": cabin})
    })
}

/// A structurally valid `flight.select` payload (generated or explicit options, the id of one of them or
/// not), then possibly one key removed or replaced by arbitrary JSON.
fn near_valid_flight_select() -> impl Strategy<Value = Value> {
    let id = prop_oneof![
        prop::sample::select(&["flight-morning", "flight-midday", "flight-late"][..]).prop_map(str::to_string),
        text()
    ];
    let leg = prop_oneof![Just(json!("outbound")), Just(json!("return")), arb_json()];
    let options = prop_oneof![Just(Vec::new()), prop::collection::vec(option(), 1..4)];
    let mutation = prop::option::of((
        prop::sample::select(&["id", "options", "request", "leg"][..]),
        prop::option::of(arb_json()),
    ));
    (id, leg, options, search(), any::<prop::sample::Index>(), mutation).prop_map(
        |(id, leg, options, request, pick, mutation)| {
            // Half the time the id names one of the explicit options.
            let id = if !options.is_empty() && pick.index(2) == 0 {
                options[pick.index(options.len())]["id"].clone()
            } else {
                Value::from(id)
            };
            let mut payload = Map::new();
            payload.insert("id".into(), id);
            payload.insert("options".into(), Value::Array(options));
            payload.insert("request".into(), request);
            payload.insert("leg".into(), leg);
            if let Some((key, replacement)) = mutation {
                match replacement {
                    Some(v) => payload.insert(key.to_string(), v),
                    None => payload.remove(key),
                };
            }
            Value::Object(payload)
        },
    )
}

fn near_valid_latent() -> impl Strategy<Value = Value> {
    let value = prop_oneof![3 => text().prop_map(Value::from), 1 => arb_json()];
    let keys = prop::sample::subsequence(
        &[
            "flight_number",
            "option_id",
            "depart_time",
            "arrival_time",
            "option_note",
            "cabin_name",
            "price",
            "destination",
            "depart_label",
            "return_label",
        ][..],
        0..=10,
    );
    (keys, prop::collection::vec(value, 10)).prop_map(|(keys, values)| {
        Value::Object(keys.into_iter().zip(values).map(|(k, v)| (k.to_string(), v)).collect())
    })
}

const ACTION_TYPES: &[&str] = &[
    "flight.select",
    "booking.confirm_selection",
    "booking.modify_request",
    "upsell.accept",
    "upsell.decline",
    "rebook.select_option",
    "support.set_meal_preference",
];

fn action() -> impl Strategy<Value = (String, Value)> {
    let kind = prop::sample::select(ACTION_TYPES).prop_map(str::to_string);
    (kind, any::<u8>(), arb_json(), near_valid_flight_select(), near_valid_latent()).prop_map(
        |(kind, choice, any_json, flight, latent)| {
            let payload = match (choice % 3, kind.as_str()) {
                (0, _) => any_json,
                (_, "flight.select") => flight,
                _ => latent,
            };
            (kind, payload)
        },
    )
}

// --- Properties -----------------------------------------------------------------------------------------

#[test]
fn widget_actions_are_ignored_or_refused_unless_offered_never_failing() {
    let f = Fixture::new("props-actions", booking_script(), |c| c);
    let events = f.rt.block_on(f.server.stream(create("Book a trip to Paris, Nov 3 to Nov 10, business.")));
    let thread = thread_id_of(&events);
    let widget = events.iter().find(|e| e["item"]["type"] == "widget").expect("the flight widget")["item"].clone();
    let widget_id = widget["id"].as_str().unwrap().to_string();
    let offered: Vec<Value> =
        widget["widget"]["children"].as_array().unwrap().iter().map(|c| c["onClickAction"].clone()).collect();
    let profile = f.rt.block_on(f.server.customer(&thread));
    let refusals = [Rejection::NoWidget, Rejection::NotOffered].map(|r| Value::from(r.to_string()));

    let ignored = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    f.check((action(), any::<bool>()), |f, ((kind, payload), from_widget)| {
        let item_id = from_widget.then_some(widget_id.as_str());
        let body = json!({"type": "threads.custom_action",
                          "params": {"thread_id": thread, "item_id": item_id, "action": {"type": kind, "payload": payload}}});
        let is_offered = offered.iter().any(|o| o["type"] == kind.as_str() && o["payload"] == payload);
        prop_assume!(!is_offered);
        let (status, text) = f.rt.block_on(async {
            let res = f.server.post(&body).await;
            (res.status().as_u16(), res.text().await.unwrap())
        });
        prop_assert_eq!(status, 200, "{} → {}", body, text);
        let events = parse_sse(&text);
        if kind == "support.set_meal_preference" {
            prop_assert_eq!(kinds(&events), vec!["stream_options".to_string()], "{}", body);
            ignored.fetch_add(1, Ordering::SeqCst);
        } else {
            prop_assert_eq!(kinds(&events), vec!["stream_options".to_string(), "error:custom".to_string()], "{}", body);
            prop_assert!(refusals.contains(&events[1]["message"]), "{} → {:?}", body, events);
            prop_assert_eq!(&events[1]["allow_retry"], &json!(false));
            refused.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    });
    let (ignored, refused) = (ignored.into_inner(), refused.into_inner());
    eprintln!("widget actions: {refused} refused, {ignored} ignored");
    assert!(refused > 0 && ignored > 0, "the generators reach both outcomes ({refused} refused, {ignored} ignored)");
    assert_eq!(f.rt.block_on(f.server.customer(&thread)), profile, "a refused action changed the profile");

    // The widget was not used up: its genuine click books, and the thread still answers.
    let click = json!({"type": "threads.custom_action",
                       "params": {"thread_id": thread, "item_id": widget_id, "action": offered[1]}});
    let events = f.rt.block_on(f.server.stream(click));
    assert_eq!(events.last().unwrap()["name"], "customer_profile/update", "{events:?}");
    let events = f.rt.block_on(f.server.stream(common::add_message(&thread, "Still fine?")));
    assert_eq!(common::assistant_texts(&events), vec!["Mock reply: Still fine?".to_string()]);
}

/// One multipart part: (name, filename, content type, data).
type Part = (String, Option<String>, Option<String>, Vec<u8>);

/// The bytes of a multipart body with these parts.
fn multipart_body(boundary: &str, parts: &[Part], close: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, filename, ct, data) in parts {
        out.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes());
        if let Some(f) = filename {
            out.extend_from_slice(format!("; filename=\"{f}\"").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if let Some(ct) = ct {
            out.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    }
    out
}

/// (content type, body): random bytes, or a multipart body (possibly corrupted) with a matching or
/// mismatching boundary.
fn upload_body() -> impl Strategy<Value = (String, Vec<u8>)> {
    let boundary = prop_oneof![Just("XyZ123".to_string()), "[A-Za-z0-9'()+_,./:=?-]{1,70}", "[ -~]{0,80}"];
    let name = prop_oneof![3 => Just("file".to_string()), 1 => "[a-z\"\\\\ ]{0,8}"];
    let size = prop_oneof![3 => 0usize..64, 1 => 2040usize..2060, 1 => 0usize..5000];
    let data = size.prop_flat_map(|n| prop::collection::vec(any::<u8>(), n));
    let part = (name, prop::option::of("[ -~]{0,20}"), prop::option::of("[ -~]{0,30}"), data);
    let parts = prop::collection::vec(part, 0..4);
    let corruption = prop::option::of((any::<prop::sample::Index>(), 0u8..4, any::<u8>()));
    let multipart = (boundary, parts, any::<bool>(), any::<bool>(), corruption).prop_map(
        |(boundary, parts, close, declare_same, corruption)| {
            let mut body = multipart_body(&boundary, &parts, close);
            if let Some((at, how, byte)) = corruption
                && !body.is_empty()
            {
                let i = at.index(body.len());
                match how {
                    0 => body.truncate(i),
                    1 => body[i] = byte,
                    2 => body.insert(i, byte),
                    _ => body = String::from_utf8_lossy(&body).replace("\r\n", "\n").into_bytes(),
                }
            }
            let declared = if declare_same { boundary } else { "other".to_string() };
            (format!("multipart/form-data; boundary={declared}"), body)
        },
    );
    let content_type = prop_oneof![
        Just("multipart/form-data".to_string()),
        Just("multipart/form-data; boundary=".to_string()),
        Just("multipart/form-data; boundary=\"quoted\"".to_string()),
        Just("application/octet-stream".to_string()),
        Just("image/png".to_string()),
        "[ -~]{0,60}",
    ];
    let raw = (content_type, prop::collection::vec(any::<u8>(), 0..3000));
    prop_oneof![2 => multipart, 1 => raw]
}

fn upload_target() -> impl Strategy<Value = (u8, String, bool)> {
    let random_id = prop_oneof![
        Just("atc_unknown0".to_string()),
        Just("..%2F..%2Fetc%2Fpasswd".to_string()),
        "atc_[A-Za-z0-9_-]{1,70}",
        "[A-Za-z0-9%._~-]{1,40}",
    ];
    (0u8..3, random_id, any::<bool>())
}

#[test]
fn upload_parsing_never_fails_the_server() {
    let f = Fixture::new("props-upload", Script::new(), |c| Config { max_upload_bytes: 2048, ..c });
    let mut seen = std::collections::BTreeMap::new();
    let statuses = std::sync::Mutex::new(&mut seen);
    f.check((upload_body(), upload_target()), |f, ((content_type, body), (which, random_id, put))| {
        // A fresh attachment per case (bytes are uploaded once), declared with the body's size so that
        // raw bodies can succeed.
        let id = f.rt.block_on(async {
            let params = json!({"name": "p.png", "size": body.len(), "mime_type": "image/png"});
            let att = f.server.json(json!({"type": "attachments.create", "params": params})).await;
            att["id"].as_str().unwrap().to_string()
        });
        let target = if which == 0 { random_id } else { id.clone() };
        let url = f.server.upload_url(&target);
        let (status, text) = f.rt.block_on(async {
            let req = if put { f.server.client.put(&url) } else { f.server.client.post(&url) };
            let res = req.header("content-type", &content_type).body(body.clone()).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        });
        prop_assert!(
            [200, 400, 404, 413].contains(&status),
            "{} {:?} ({} bytes) → {} {}",
            url,
            content_type,
            body.len(),
            status,
            text
        );
        let json: Value = serde_json::from_str(&text).map_err(|_| TestCaseError::fail(format!("not JSON: {text}")))?;
        if status == 200 {
            prop_assert_eq!(&json["id"], &Value::from(id.as_str()));
        } else {
            prop_assert!(json["detail"].is_string(), "{}", text);
        }
        *statuses.lock().unwrap().entry(status).or_insert(0usize) += 1;
        Ok(())
    });
    eprintln!("upload statuses: {seen:?}");
    assert!(seen.contains_key(&200) && seen.contains_key(&400), "the generators reach success and refusal: {seen:?}");
}

fn chatkit_request() -> impl Strategy<Value = Vec<u8>> {
    let typed = (prop::sample::select(&chatkit::types::REQUEST_TYPES[..]), arb_json())
        .prop_map(|(t, params)| serde_json::to_vec(&json!({"type": t, "params": params})).unwrap());
    let message_like = (prop::sample::select(&["threads.create", "threads.add_user_message"][..]), text(), arb_json())
        .prop_map(|(t, s, extra)| {
            let mut input = message(&s);
            input["inference_options"] = extra;
            serde_json::to_vec(&json!({"type": t, "params": {"input": input, "thread_id": "thr_0"}})).unwrap()
        });
    prop_oneof![
        3 => typed,
        1 => message_like,
        1 => arb_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ]
}

#[test]
fn request_decoding_never_answers_5xx() {
    let f = Fixture::new("props-requests", Script::new(), |c| c);
    f.check(chatkit_request(), |f, body| {
        let (status, ct, text) = f.rt.block_on(async {
            let res = f.server.client.post(f.server.url("/support/chatkit")).body(body.clone()).send().await.unwrap();
            let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
            (res.status().as_u16(), ct, res.text().await.unwrap())
        });
        let shown = String::from_utf8_lossy(&body);
        prop_assert!(status < 500, "{} → {} {}", shown, status, text);
        if ct.starts_with("text/event-stream") {
            let _ = parse_sse(&text);
        } else {
            prop_assert!(serde_json::from_str::<Value>(&text).is_ok(), "{} → not JSON: {}", shown, text);
        }
        Ok(())
    });
}
