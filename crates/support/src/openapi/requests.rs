//! Examples of the ChatKit requests, one per request type, offered in the "Try it out" drop-down of
//! `POST /support/chatkit`. The request schemas themselves derive from `chatkit`'s request types; the
//! examples are ours because their values (a flight, a seat, a bag) belong to this app.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use utoipa::openapi::example::{Example, ExampleBuilder};
use utoipa::openapi::schema::{OneOfBuilder, Schema, Type};
use utoipa::openapi::{ObjectBuilder, OpenApi, RefOr};

/// A thread id in the form the server makes them.
const THREAD: &str = "thr_019ab8c1f2a04d3e5b6c7a81";
/// An item id in the form the server makes them.
const ITEM: &str = "msg_019ab8c1f2a04d3e5b6c7a81";

/// The `input` of a message that says `text`.
fn message(text: &str) -> Value {
    json!({"content": [{"type": "input_text", "text": text}], "attachments": [], "inference_options": {}})
}

/// `(request type, params)` of each example, in the order the drop-down lists them.
fn examples() -> [(&'static str, Value); 16] {
    [
        ("threads.list", json!({"limit": 20, "order": "desc"})),
        ("threads.create", json!({"input": message("Move me to seat 14C on flight OA476.")})),
        (
            "threads.add_user_message",
            json!({"thread_id": THREAD, "input": message("Add one more checked bag to the reservation.")}),
        ),
        ("threads.get_by_id", json!({"thread_id": THREAD})),
        ("items.list", json!({"thread_id": THREAD, "limit": 20, "order": "asc"})),
        ("threads.update", json!({"thread_id": THREAD, "title": "Paris trip"})),
        ("threads.delete", json!({"thread_id": THREAD})),
        (
            "threads.custom_action",
            json!({"thread_id": THREAD, "item_id": null,
                   "action": {"type": "upsell.accept", "payload": {"cabin_name": "Premium Plus", "price": "$199"}}}),
        ),
        (
            "threads.sync_custom_action",
            json!({"thread_id": THREAD, "item_id": ITEM, "action": {"type": "noop", "payload": null}}),
        ),
        ("threads.retry_after_item", json!({"thread_id": THREAD, "item_id": ITEM})),
        ("threads.add_client_tool_output", json!({"thread_id": THREAD, "result": {"ok": true}})),
        (
            "threads.add_structured_input",
            json!({"thread_id": THREAD, "item_id": ITEM,
                   "input": {"status": "answered", "answers": {"q1": {"values": ["A"]}}}}),
        ),
        ("attachments.create", json!({"name": "Paris.png", "size": 1024, "mime_type": "image/png"})),
        ("attachments.delete", json!({"attachment_id": "atc_019ab8c1f2a04d3e5b6c7a81"})),
        ("items.feedback", json!({"thread_id": THREAD, "item_ids": [ITEM], "kind": "positive"})),
        ("input.transcribe", json!({"audio_base64": "GkXfo59ChoEB", "mime_type": "audio/webm;codecs=opus"})),
    ]
}

/// Offers every example in the "Try it out" drop-down of `POST /support/chatkit`.
pub(crate) fn add_examples(doc: &mut OpenApi) {
    let Some(operation) = doc.paths.paths.get_mut("/support/chatkit").and_then(|item| item.post.as_mut()) else {
        return;
    };
    let Some(RefOr::T(body)) = operation.request_body.as_mut() else { return };
    let Some(RefOr::T(content)) = body.content.get_mut("application/json") else { return };
    content.examples = examples()
        .into_iter()
        .map(|(kind, params)| {
            let example = ExampleBuilder::new().value(Some(json!({"type": kind, "params": params}))).build();
            (kind.to_string(), RefOr::T(example))
        })
        .collect::<BTreeMap<String, RefOr<Example>>>();
}

/// The decoder reads a missing or `null` `params` as `{}`, so a request type whose params are all
/// optional (`threads.list`) may leave them out; the derived schemas require `params` everywhere, so
/// this relaxes it for exactly those types.
pub(crate) fn allow_omitted_params(doc: &mut OpenApi) {
    let Some(components) = doc.components.as_mut() else { return };
    let params_without_required: Vec<String> = components
        .schemas
        .iter()
        .filter(|(_, schema)| matches!(schema, RefOr::T(Schema::Object(o)) if o.required.is_empty()))
        .map(|(name, _)| format!("#/components/schemas/{name}"))
        .collect();
    for union in ["StreamingRequest", "NonStreamingRequest"] {
        let Some(RefOr::T(Schema::OneOf(one_of))) = components.schemas.get_mut(union) else { continue };
        for variant in &mut one_of.items {
            let RefOr::T(Schema::Object(request)) = variant else { continue };
            let Some(RefOr::Ref(params)) = request.properties.get("params") else { continue };
            if !params_without_required.contains(&params.ref_location) {
                continue;
            }
            let optional = OneOfBuilder::new()
                .item(params.clone())
                .item(ObjectBuilder::new().schema_type(Type::Null))
                .description(Some("May be left out or `null`: every field has a default."));
            request.properties.insert("params".into(), optional.into());
            request.required.retain(|field| field != "params");
        }
    }
}

#[cfg(test)]
mod tests {
    use chatkit::types::{ChatKitRequest, REQUEST_TYPES};

    use super::*;

    fn json() -> Value {
        serde_json::to_value(crate::openapi::document()).unwrap()
    }

    /// The union lists each request type once, streaming ones under `StreamingRequest`.
    #[test]
    fn the_union_documents_every_request_type_once() {
        let doc = json();
        let schemas = &doc["components"]["schemas"];
        let union: Vec<&str> = schemas["ChatKitRequest"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["$ref"].as_str().unwrap())
            .collect();
        assert_eq!(union, ["#/components/schemas/StreamingRequest", "#/components/schemas/NonStreamingRequest"]);
        let names = |schema: &str| -> Vec<String> {
            schemas[schema]["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .map(|variant| variant["properties"]["type"]["enum"][0].as_str().unwrap().to_string())
                .collect()
        };
        let mut documented = names("StreamingRequest");
        assert_eq!(documented.len(), 6);
        documented.extend(names("NonStreamingRequest"));
        assert_eq!(documented, REQUEST_TYPES);
    }

    /// The examples are real requests: the server's own decoder accepts each as the type it is listed
    /// under, and there is one for every type.
    /// `params` is optional exactly where the decoder accepts a request without it.
    #[test]
    fn params_are_required_unless_the_decoder_accepts_none() {
        let doc = json();
        let schemas = &doc["components"]["schemas"];
        let variants = ["StreamingRequest", "NonStreamingRequest"]
            .iter()
            .flat_map(|union| schemas[*union]["oneOf"].as_array().unwrap().clone());
        for variant in variants {
            let kind = variant["properties"]["type"]["enum"][0].as_str().unwrap();
            let required = variant["required"].as_array().unwrap().contains(&json!("params"));
            for body in [json!({"type": kind}), json!({"type": kind, "params": null})] {
                let accepted = ChatKitRequest::decode(body.to_string().as_bytes()).is_ok();
                assert_eq!(required, !accepted, "{body}");
            }
        }
    }

    #[test]
    fn every_type_has_an_example_that_decodes_as_that_type() {
        let doc = json();
        let examples =
            doc["paths"]["/support/chatkit"]["post"]["requestBody"]["content"]["application/json"]["examples"]
                .as_object()
                .unwrap();
        let mut listed: Vec<&str> = examples.keys().map(String::as_str).collect();
        listed.sort_unstable();
        let mut expected = REQUEST_TYPES.to_vec();
        expected.sort_unstable();
        assert_eq!(listed, expected);
        for (kind, example) in examples {
            let decoded = ChatKitRequest::decode(&serde_json::to_vec(&example["value"]).unwrap())
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(decoded.type_name(), kind);
        }
    }
}
