//! `ChatKitRequest::decode`, the parser of every `POST /support/chatkit` body.
//!
//! Each input is decoded twice: as raw bytes, and as an envelope built from the bytes with a known `type`
//! and generated params (so the params of all 16 types are reached). Invariants:
//! * decoding never panics and is deterministic;
//! * a decoded body is a JSON object whose `type` is one of `REQUEST_TYPES` and names the variant, and
//!   `is_streaming()` holds exactly for the six streaming types listed first;
//! * re-serializing the body (compact, pretty, or reduced to `type` and `params`) decodes to an equal
//!   request;
//! * errors agree with the body: `MissingType` only without a string `type`, `UnknownType` only for a
//!   type outside `REQUEST_TYPES` (quoted as a short prefix; its message lists them all), `InvalidParams`
//!   names the body's type.

#![no_main]

use chatkit::types::strict_json::quote;
use chatkit::types::{ChatKitRequest, REQUEST_TYPES, RequestDecodeError};
use chatkit_fuzz::{json_object, json_value};
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(body) = envelope(data) {
        check(&body);
    }
});

/// `{"type": <known type>, "params": <generated>, "metadata": …}` from the fuzzer's bytes.
fn envelope(data: &[u8]) -> Option<Vec<u8>> {
    let mut u = Unstructured::new(data);
    let mut env = Map::new();
    env.insert("type".into(), Value::String((*u.choose(&REQUEST_TYPES).ok()?).to_string()));
    let params = match u.int_in_range(0u8..=7).ok()? {
        0 => None,
        1 => Some(json_value(&mut u, 3).ok()?),
        _ => Some(Value::Object(json_object(&mut u, 4).ok()?)),
    };
    if let Some(params) = params {
        env.insert("params".into(), params);
    }
    if u.arbitrary::<bool>().ok()? {
        env.insert("metadata".into(), json_value(&mut u, 2).ok()?);
    }
    serde_json::to_vec(&Value::Object(env)).ok()
}

/// The two envelope fields, read the way the decoder reads them (other keys are skipped unparsed:
/// serde_json does not validate the UTF-8 or the number ranges of skipped values, so a body the decoder
/// accepts need not parse as a `serde_json::Value`).
#[derive(Deserialize)]
struct Outline {
    #[serde(rename = "type", default)]
    ty: Option<Value>,
    #[serde(default)]
    params: Option<Value>,
}

fn check(body: &[u8]) {
    let decoded = ChatKitRequest::decode(body);
    let again = ChatKitRequest::decode(body);
    assert_eq!(format!("{decoded:?}"), format!("{again:?}"), "decoding is not deterministic");
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let outline: Option<Outline> = serde_json::from_slice(body).ok();
    let body_type = outline.as_ref().and_then(|o| o.ty.as_ref());

    match &decoded {
        Ok(req) => {
            let outline = outline.as_ref().expect("a decoded body must be a JSON object");
            let ty = body_type.and_then(Value::as_str).expect("a decoded body must have a string `type`");
            assert!(REQUEST_TYPES.contains(&ty), "decoded an unknown type {ty:?}");
            // The decoder and `type_name` are generated from one table; agreeing with the body's `type`
            // checks that the generated decoder picked the variant the body names.
            assert_eq!(req.type_name(), ty, "the variant does not match the body's `type`");
            assert_eq!(req.is_streaming(), REQUEST_TYPES[..6].contains(&ty), "is_streaming() of {ty}");

            // Re-serialized: the whole body (compact and pretty) when it is plain JSON, and the envelope
            // reduced to `type` and `params`. Each must decode to an equal request.
            let mut texts = Vec::new();
            if let Some(value) = &json {
                texts.push(serde_json::to_vec(value).unwrap());
                texts.push(serde_json::to_vec_pretty(value).unwrap());
            }
            let mut reduced = Map::new();
            reduced.insert("type".into(), Value::String(ty.to_string()));
            if let Some(params) = &outline.params {
                reduced.insert("params".into(), params.clone());
            }
            texts.push(serde_json::to_vec(&Value::Object(reduced)).unwrap());
            for text in texts {
                match ChatKitRequest::decode(&text) {
                    Ok(round) => assert_eq!(
                        format!("{round:?}"),
                        format!("{req:?}"),
                        "re-serialized body decodes differently: {}",
                        String::from_utf8_lossy(&text)
                    ),
                    Err(e) => panic!("re-serialized body no longer decodes ({e}): {}", String::from_utf8_lossy(&text)),
                }
            }
        }
        Err(err) => {
            let message = err.to_string();
            assert!(!message.is_empty());
            match err {
                RequestDecodeError::InvalidJson(_) => {
                    // A JSON object only fails here on a duplicated key (`type`, `params`, or one inside
                    // `params`); re-serialized (duplicates collapsed) it must get past the JSON stage.
                    if let Some(object) = json.as_ref().filter(|v| v.is_object()) {
                        let text = serde_json::to_vec(object).unwrap();
                        let round = ChatKitRequest::decode(&text);
                        assert!(
                            !matches!(round, Err(RequestDecodeError::InvalidJson(_))),
                            "a JSON object is rejected as invalid JSON: {}",
                            String::from_utf8_lossy(&text)
                        );
                    }
                }
                RequestDecodeError::MissingType => {
                    assert!(outline.is_some(), "MissingType for a body that is not a JSON object");
                    assert!(body_type.and_then(Value::as_str).is_none(), "MissingType although `type` is a string");
                }
                RequestDecodeError::UnknownType(ty) => {
                    assert!(!REQUEST_TYPES.contains(&ty.as_str()), "UnknownType for the known type {ty:?}");
                    // The message quotes only a short prefix of what the client sent.
                    assert_eq!(body_type.and_then(Value::as_str).map(quote), Some(ty.clone()));
                    for known in REQUEST_TYPES {
                        assert!(message.contains(known), "the error does not list {known}");
                    }
                }
                RequestDecodeError::InvalidParams { kind, message } => {
                    assert_eq!(body_type.and_then(Value::as_str), Some(kind.as_str()));
                    assert!(!message.is_empty());
                }
            }
        }
    }
}
