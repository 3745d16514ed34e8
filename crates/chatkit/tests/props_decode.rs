//! Property tests of request decoding (`chatkit::types::ChatKitRequest::decode`):
//! arbitrary bytes and arbitrary JSON never panic and fail with the right error kind, and every
//! well-formed request of the 16 types decodes to its variant with its fields intact.

mod strategies;

use chatkit::types::{ChatKitRequest, NonStreamingRequest, Order, REQUEST_TYPES, RequestDecodeError, StreamingRequest};
use proptest::prelude::*;
use serde_json::{Value, json};
use strategies::{any_string, json_object, json_value};

/// A user message input with text and tag parts.
fn user_input() -> impl Strategy<Value = Value> {
    let part = prop_oneof![
        any_string(20).prop_map(|t| json!({"type": "input_text", "text": t})),
        (any_string(6), any_string(10), json_object(), proptest::option::of(any_string(5)), any::<bool>()).prop_map(
            |(id, text, data, group, interactive)| {
                let mut tag =
                    json!({"type": "input_tag", "id": id, "text": text, "data": data, "interactive": interactive});
                // A null `group` is omitted when re-encoded; send it only when set.
                if let Some(g) = group {
                    tag["group"] = Value::String(g);
                }
                tag
            }
        ),
    ];
    (
        prop::collection::vec(part, 0..4),
        prop::collection::vec(any_string(8), 0..3),
        proptest::option::of(any_string(10)),
    )
        .prop_map(|(content, attachments, quoted)| {
            json!({"content": content, "attachments": attachments, "quoted_text": quoted,
                   "inference_options": {"tool_choice": {"id": "search"}, "model": null}})
        })
}

fn order() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("asc"), Just("desc")]
}

/// A valid request: (type, params, expected thread_id).
fn valid_request() -> impl Strategy<Value = (String, Value, Option<String>)> {
    let tid = || any_string(12);
    prop_oneof![
        user_input().prop_map(|i| ("threads.create".to_string(), json!({"input": i}), None)),
        (tid(), user_input()).prop_map(|(t, i)| (
            "threads.add_user_message".into(),
            json!({"thread_id": t, "input": i}),
            Some(t)
        )),
        (tid(), json_value()).prop_map(|(t, r)| (
            "threads.add_client_tool_output".into(),
            json!({"thread_id": t, "result": r}),
            Some(t)
        )),
        (
            tid(),
            any_string(8),
            prop::collection::btree_map(any_string(6), prop::collection::vec(any_string(6), 0..3), 0..3)
        )
            .prop_map(|(t, item, answers)| {
                let answers: serde_json::Map<String, Value> =
                    answers.into_iter().map(|(k, v)| (k, json!({"values": v, "skipped": false}))).collect();
                (
                    "threads.add_structured_input".into(),
                    json!({"thread_id": t, "item_id": item, "input": {"status": "answered", "answers": answers}}),
                    Some(t),
                )
            }),
        (tid(), any_string(8)).prop_map(|(t, i)| (
            "threads.retry_after_item".into(),
            json!({"thread_id": t, "item_id": i}),
            Some(t)
        )),
        (tid(), proptest::option::of(any_string(8)), any_string(10), json_value(), any::<bool>()).prop_map(
            |(t, item, kind, payload, sync)| {
                let ty = if sync { "threads.sync_custom_action" } else { "threads.custom_action" };
                (
                    ty.into(),
                    json!({"thread_id": t, "item_id": item, "action": {"type": kind, "payload": payload}}),
                    Some(t),
                )
            }
        ),
        (tid(), any::<bool>()).prop_map(|(t, del)| {
            let ty = if del { "threads.delete" } else { "threads.get_by_id" };
            (ty.into(), json!({"thread_id": t}), Some(t))
        }),
        (proptest::option::of(0u32..500), order(), proptest::option::of(any_string(10))).prop_map(|(l, o, a)| (
            "threads.list".into(),
            json!({"limit": l, "order": o, "after": a}),
            None
        )),
        (tid(), any_string(30)).prop_map(|(t, title)| (
            "threads.update".into(),
            json!({"thread_id": t, "title": title}),
            Some(t)
        )),
        (tid(), proptest::option::of(0u32..500), order(), proptest::option::of(any_string(10))).prop_map(
            |(t, l, o, a)| ("items.list".into(), json!({"thread_id": t, "limit": l, "order": o, "after": a}), Some(t))
        ),
        (tid(), prop::collection::vec(any_string(8), 0..4), prop_oneof![Just("positive"), Just("negative")]).prop_map(
            |(t, ids, k)| ("items.feedback".into(), json!({"thread_id": t, "item_ids": ids, "kind": k}), Some(t))
        ),
        (any_string(12), any::<u64>(), any_string(12)).prop_map(|(n, s, m)| (
            "attachments.create".into(),
            json!({"name": n, "size": s, "mime_type": m}),
            None
        )),
        any_string(12).prop_map(|a| ("attachments.delete".into(), json!({"attachment_id": a}), None)),
        (any_string(40), any_string(20)).prop_map(|(b, m)| (
            "input.transcribe".into(),
            json!({"audio_base64": b, "mime_type": m}),
            None
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: strategies::cases(256), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = ChatKitRequest::decode(&bytes);
    }

    #[test]
    fn arbitrary_json_fails_cleanly(v in json_value()) {
        let body = serde_json::to_vec(&v).unwrap();
        match ChatKitRequest::decode(&body) {
            // Only an object (or serde's sequence form of the envelope) can carry a known `type`.
            Ok(req) => prop_assert!(v.is_object() || v.is_array(), "{v} decoded as {req:?}"),
            Err(RequestDecodeError::InvalidJson(_)) => prop_assert!(!v.is_object(), "object {v} rejected as invalid JSON"),
            Err(RequestDecodeError::MissingType) => {
                prop_assert!(!v.get("type").is_some_and(Value::is_string), "{v}");
            }
            Err(RequestDecodeError::UnknownType(t)) => prop_assert!(!REQUEST_TYPES.contains(&t.as_str()), "{t}"),
            Err(RequestDecodeError::InvalidParams { kind, .. }) => prop_assert!(REQUEST_TYPES.contains(&kind.as_str())),
        }
    }

    #[test]
    fn known_type_with_arbitrary_params_never_panics(
        idx in 0..REQUEST_TYPES.len(),
        params in json_value(),
        metadata in json_value(),
    ) {
        let ty = REQUEST_TYPES[idx];
        let body = serde_json::to_vec(&json!({"type": ty, "params": params, "metadata": metadata})).unwrap();
        match ChatKitRequest::decode(&body) {
            Ok(req) => prop_assert_eq!(req.type_name(), ty),
            Err(RequestDecodeError::InvalidParams { kind, message }) => {
                prop_assert_eq!(kind.as_str(), ty);
                prop_assert!(!message.is_empty());
            }
            Err(e) => prop_assert!(false, "unexpected error for type {ty}: {e}"),
        }
    }

    #[test]
    fn unknown_types_are_named_in_the_error(ty in any_string(20), params in json_object(), scalar in any::<i64>()) {
        prop_assume!(!REQUEST_TYPES.contains(&ty.as_str()));
        let body = serde_json::to_vec(&json!({"type": ty, "params": params})).unwrap();
        prop_assert_eq!(ChatKitRequest::decode(&body).err(), Some(RequestDecodeError::UnknownType(ty.clone())));
        // Even when the params are not an object: the type is what is wrong.
        let body = serde_json::to_vec(&json!({"type": ty, "params": scalar})).unwrap();
        prop_assert_eq!(ChatKitRequest::decode(&body).err(), Some(RequestDecodeError::UnknownType(ty)));
    }

    #[test]
    fn valid_requests_decode_to_their_variant((ty, params, tid) in valid_request(), metadata in json_object()) {
        let body = serde_json::to_vec(&json!({"type": ty, "params": params, "metadata": metadata})).unwrap();
        let req = ChatKitRequest::decode(&body);
        prop_assert!(req.is_ok(), "{ty} {params} failed: {:?}", req.err());
        let req = req.unwrap();
        prop_assert_eq!(req.type_name(), ty.as_str());
        prop_assert_eq!(req.thread_id().map(str::to_string), tid);
        match &req {
            ChatKitRequest::NonStreaming(NonStreamingRequest::ListThreads(p)) => {
                prop_assert_eq!(p.limit.map(u64::from), params["limit"].as_u64());
                prop_assert_eq!(p.order, if params["order"] == "asc" { Order::Asc } else { Order::Desc });
                prop_assert_eq!(p.after.as_deref(), params["after"].as_str());
            }
            ChatKitRequest::Streaming(StreamingRequest::CreateThread(p)) => {
                let expected: Vec<Value> = params["input"]["content"].as_array().cloned().unwrap_or_default();
                prop_assert_eq!(serde_json::to_value(&p.input.content).unwrap(), Value::Array(expected));
                prop_assert_eq!(p.input.quoted_text.as_deref(), params["input"]["quoted_text"].as_str());
            }
            ChatKitRequest::Streaming(StreamingRequest::CustomAction(p))
            | ChatKitRequest::NonStreaming(NonStreamingRequest::SyncCustomAction(p)) => {
                prop_assert_eq!(&p.action.payload, &params["action"]["payload"]);
                prop_assert_eq!(p.action.kind.as_str(), params["action"]["type"].as_str().unwrap());
            }
            ChatKitRequest::Streaming(StreamingRequest::AddClientToolOutput(p)) => prop_assert_eq!(&p.result, &params["result"]),
            ChatKitRequest::NonStreaming(NonStreamingRequest::CreateAttachment(p)) => prop_assert_eq!(Some(p.size), params["size"].as_u64()),
            _ => {}
        }
        prop_assert_eq!(
            req.is_streaming(),
            matches!(ty.as_str(), "threads.create" | "threads.add_user_message" | "threads.add_client_tool_output"
                | "threads.add_structured_input" | "threads.retry_after_item" | "threads.custom_action")
        );
    }
}
