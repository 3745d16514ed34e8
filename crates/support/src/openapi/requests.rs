//! The ChatKit request union of the OpenAPI document: one schema per request type
//! (`{"type": <const>, "params": {…}}`, each with an example that the server accepts), their `oneOf`
//! ([`ChatKitRequest`]), and the same examples offered in the "Try it out" drop-down of `/docs`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chatkit::types::{InferenceOptions, Order, UserMessageContent};
use serde_json::{Value, json};
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// The request body of `POST /support/chatkit`: one of the request types, told apart by `type`.
pub struct ChatKitRequest;

impl PartialSchema for ChatKitRequest {
    fn schema() -> RefOr<Schema> {
        let mapping =
            REQUESTS.iter().map(|r| (r.kind.to_string(), format!("#/components/schemas/{}", schema_name(r.kind))));
        let mut one_of = OneOfBuilder::new()
            .description(Some("One ChatKit request; `type` selects the shape of `params`."))
            .discriminator(Some(utoipa::openapi::Discriminator::with_mapping("type", mapping)));
        for r in REQUESTS {
            one_of = one_of.item(Ref::from_schema_name(schema_name(r.kind)));
        }
        one_of.into()
    }
}

impl ToSchema for ChatKitRequest {
    fn name() -> Cow<'static, str> {
        "ChatKitRequest".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for r in &REQUESTS {
            schemas.push((schema_name(r.kind), request_schema(r)));
        }
        for (name, schema) in [
            (Order::name(), Order::schema()),
            (UserMessageContent::name(), UserMessageContent::schema()),
            (InferenceOptions::name(), InferenceOptions::schema()),
            (StructuredAnswerDoc::name(), StructuredAnswerDoc::schema()),
        ] {
            schemas.push((name.into_owned(), schema));
        }
        UserMessageContent::schemas(schemas);
        InferenceOptions::schemas(schemas);
    }
}

/// One request type: its `type`, whether it streams, what it does, its params schema and an example.
struct RequestDoc {
    kind: &'static str,
    streams: bool,
    summary: &'static str,
    params: fn() -> Schema,
    params_example: fn() -> Value,
}

impl RequestDoc {
    /// A complete request of this type.
    fn example(&self) -> Value {
        json!({"type": self.kind, "params": (self.params_example)()})
    }
}

/// The component name of a request type's schema, e.g. `ThreadsAddUserMessageRequest`.
pub(crate) fn schema_name(kind: &str) -> String {
    // `threads.add_user_message` → `Request_threads.add_user_message` is not a valid name everywhere; use
    // `ThreadsAddUserMessageRequest`.
    let mut out = String::new();
    for part in kind.split(['.', '_']) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    out.push_str("Request");
    out
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn obj() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Object)
}

fn thread_id() -> ObjectBuilder {
    string().description(Some("Thread id (`thr_…`)")).examples([json!("thr_019ab8c1f2a04d3e5b6c7a81")])
}

fn item_id(what: &str) -> ObjectBuilder {
    string().description(Some(what)).examples([json!("msg_019ab8c1f2a04d3e5b6c7a81")])
}

fn limit() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::Integer, Type::Null]))
        .description(Some("Page size; null or 0 means 20"))
}

fn cursor() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some("Cursor: the `after` of the previous page"))
}

fn message_example(text: &str) -> Value {
    json!({"content": [{"type": "input_text", "text": text}], "attachments": [], "inference_options": {}})
}

const REQUESTS: [RequestDoc; 16] = [
    RequestDoc {
        kind: "threads.create",
        streams: true,
        summary: "Create a thread with a first user message, then answer it.",
        params: || obj().property("input", UserMessageInputDoc::schema()).required("input").into(),
        params_example: || json!({"input": message_example("Move me to seat 14C on flight OA476.")}),
    },
    RequestDoc {
        kind: "threads.add_user_message",
        streams: true,
        summary: "Append a user message to a thread, then answer it.",
        params: || {
            obj()
                .property("thread_id", thread_id())
                .property("input", UserMessageInputDoc::schema())
                .required("thread_id")
                .required("input")
                .into()
        },
        params_example: || json!({"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "input": message_example("Add one more checked bag to the reservation.")}),
    },
    RequestDoc {
        kind: "threads.add_client_tool_output",
        streams: true,
        summary: "Give the result of the pending client tool call, then continue.",
        params: || {
            obj()
                .property("thread_id", thread_id())
                .property("result", ObjectBuilder::new().description(Some("Any JSON (may be null)")))
                .required("thread_id")
                .required("result")
                .into()
        },
        params_example: || json!({"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "result": {"ok": true}}),
    },
    RequestDoc {
        kind: "threads.add_structured_input",
        streams: true,
        summary: "Answer a pending structured input item, then continue.",
        params: || {
            obj()
                .property("thread_id", thread_id())
                .property("item_id", item_id("The structured_input item"))
                .property("input", StructuredInputSubmissionDoc::schema())
                .required("thread_id")
                .required("item_id")
                .into()
        },
        params_example: || json!({"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "item_id": "msg_019ab8c1f2a04d3e5b6c7a81", "input": {"status": "answered", "answers": {"q1": {"values": ["A"]}}}}),
    },
    RequestDoc {
        kind: "threads.retry_after_item",
        streams: true,
        summary: "Delete everything after a user message and answer it again.",
        params: || {
            obj()
                .property("thread_id", thread_id())
                .property("item_id", item_id("The user message to answer again"))
                .required("thread_id")
                .required("item_id")
                .into()
        },
        params_example: || json!({"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "item_id": "msg_019ab8c1f2a04d3e5b6c7a81"}),
    },
    RequestDoc {
        kind: "threads.custom_action",
        streams: true,
        summary: "Run a widget action (`flight.select`, `upsell.accept`, …).",
        params: action_params,
        params_example: || json!({"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "item_id": null, "action": {"type": "upsell.accept", "payload": {"cabin_name": "Premium Plus", "price": "$199"}}}),
    },
    RequestDoc {
        kind: "threads.get_by_id",
        streams: false,
        summary: "A thread with its first page of items (oldest first). Answers a Thread.",
        params: || obj().property("thread_id", thread_id()).required("thread_id").into(),
        params_example: || json!({"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81"}),
    },
    RequestDoc {
        kind: "threads.list",
        streams: false,
        summary: "A page of threads. Answers a Page of Threads.",
        params: || {
            obj()
                .property("limit", limit())
                .property("order", Ref::from_schema_name(Order::name()))
                .property("after", cursor())
                .into()
        },
        params_example: || json!({"limit": 20, "order": "desc"}),
    },
    RequestDoc {
        kind: "threads.update",
        streams: false,
        summary: "Rename a thread. Answers the Thread.",
        params: || {
            obj()
                .property("thread_id", thread_id())
                .property("title", string().examples([json!("Paris trip")]))
                .required("thread_id")
                .required("title")
                .into()
        },
        params_example: || json!({"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "title": "Paris trip"}),
    },
    RequestDoc {
        kind: "threads.delete",
        streams: false,
        summary: "Delete a thread and its items. Answers `{}`.",
        params: || obj().property("thread_id", thread_id()).required("thread_id").into(),
        params_example: || json!({"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81"}),
    },
    RequestDoc {
        kind: "items.list",
        streams: false,
        summary: "A page of a thread's items (hidden ones removed). Answers a Page of items.",
        params: || {
            obj()
                .property("thread_id", thread_id())
                .property("limit", limit())
                .property("order", Ref::from_schema_name(Order::name()))
                .property("after", cursor())
                .required("thread_id")
                .into()
        },
        params_example: || json!({"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "limit": 20, "order": "asc"}),
    },
    RequestDoc {
        kind: "items.feedback",
        streams: false,
        summary: "Rate items. Answers `{}`.",
        params: || {
            obj()
                .property("thread_id", thread_id())
                .property("item_ids", utoipa::openapi::schema::ArrayBuilder::new().items(string()))
                .property("kind", FeedbackKindDoc::schema())
                .required("thread_id")
                .required("item_ids")
                .required("kind")
                .into()
        },
        params_example: || json!({"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "item_ids": ["msg_019ab8c1f2a04d3e5b6c7a81"], "kind": "positive"}),
    },
    RequestDoc {
        kind: "attachments.create",
        streams: false,
        summary: "Phase 1 of a two-phase image upload (max 5 MiB). Answers the Attachment with its upload URL.",
        params: || {
            obj()
                .property("name", string().examples([json!("Paris.png")]))
                .property("size", ObjectBuilder::new().schema_type(Type::Integer).description(Some("Bytes")))
                .property("mime_type", string().examples([json!("image/png")]))
                .required("name")
                .required("size")
                .required("mime_type")
                .into()
        },
        params_example: || json!({"name": "Paris.png", "size": 1024, "mime_type": "image/png"}),
    },
    RequestDoc {
        kind: "attachments.delete",
        streams: false,
        summary: "Delete an attachment and its bytes. Answers `{}`.",
        params: || {
            obj()
                .property("attachment_id", string().examples([json!("atc_019ab8c1f2a04d3e5b6c7a81")]))
                .required("attachment_id")
                .into()
        },
        params_example: || json!({"attachment_id": "atc_019ab8c1f2a04d3e5b6c7a81"}),
    },
    RequestDoc {
        kind: "input.transcribe",
        streams: false,
        summary: "Dictation: transcribe base64 audio (webm, mp4, ogg). Answers `{\"text\": …}`.",
        params: || {
            obj()
                .property("audio_base64", string().description(Some("Standard base64 of the recorded audio")))
                .property("mime_type", string().examples([json!("audio/webm;codecs=opus")]))
                .required("audio_base64")
                .required("mime_type")
                .into()
        },
        params_example: || json!({"audio_base64": "GkXfo59ChoEB", "mime_type": "audio/webm;codecs=opus"}),
    },
    RequestDoc {
        kind: "threads.sync_custom_action",
        streams: false,
        summary: "Run a widget action synchronously. Answers `{\"updated_item\": …}` or `{}`.",
        params: action_params,
        params_example: || json!({"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "item_id": "msg_019ab8c1f2a04d3e5b6c7a81", "action": {"type": "noop", "payload": null}}),
    },
];

fn action_params() -> Schema {
    obj()
        .property("thread_id", thread_id())
        .property(
            "item_id",
            ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]))
                .description(Some("The widget item that fired the action")),
        )
        .property("action", ActionDoc::schema())
        .required("thread_id")
        .required("action")
        .into()
}

/// The schema of one request type.
fn request_schema(r: &RequestDoc) -> RefOr<Schema> {
    let description = format!("{} ({})", r.summary, if r.streams { "streams SSE" } else { "answers JSON" });
    obj()
        .title(Some(r.kind))
        .description(Some(description))
        .property("type", string().enum_values(Some([r.kind])))
        .property("params", (r.params)())
        .property("metadata", obj().description(Some("Optional, ignored")))
        .required("type")
        .required("params")
        .examples([r.example()])
        .into()
}

/// Offers every request type's example in the "Try it out" drop-down of `POST /support/chatkit`.
pub(crate) fn add_examples(doc: &mut utoipa::openapi::OpenApi) {
    let Some(operation) = doc.paths.paths.get_mut("/support/chatkit").and_then(|item| item.post.as_mut()) else {
        return;
    };
    let Some(RefOr::T(body)) = operation.request_body.as_mut() else { return };
    let Some(RefOr::T(content)) = body.content.get_mut("application/json") else { return };
    let examples: BTreeMap<String, RefOr<utoipa::openapi::example::Example>> = REQUESTS
        .iter()
        .map(|r| (r.kind.to_string(), ExampleBuilder::new().summary(r.summary).value(Some(r.example())).build().into()))
        .collect();
    content.examples = examples;
}

/// Every request `type` the union documents.
pub fn documented_request_types() -> Vec<&'static str> {
    REQUESTS.iter().map(|r| r.kind).collect()
}

// Schemas of the request-only wire types (params content) that `chatkit` does not describe yet.

/// The message a user sends.
#[derive(Debug, ToSchema)]
#[schema(title = "UserMessageInput")]
#[allow(dead_code)]
struct UserMessageInputDoc {
    /// Text and tag parts.
    content: Vec<UserMessageContent>,
    /// Ids of attachments created with `attachments.create` and uploaded.
    #[schema(default = json!([]))]
    attachments: Option<Vec<String>>,
    /// "Reply to" snippet.
    quoted_text: Option<String>,
    /// Composer options.
    inference_options: Option<InferenceOptions>,
}

/// A widget action.
#[derive(Debug, ToSchema)]
#[schema(title = "Action", example = json!({"type": "flight.select", "payload": {"id": "flight-midday"}}))]
#[allow(dead_code)]
struct ActionDoc {
    /// Action name (`flight.select`, `upsell.accept`, `rebook.select_option`, …).
    #[schema(rename = "type")]
    kind: String,
    /// App data.
    payload: Option<Value>,
}

/// Answers to a structured input.
#[derive(Debug, ToSchema)]
#[schema(title = "StructuredInputSubmission")]
#[allow(dead_code)]
struct StructuredInputSubmissionDoc {
    /// `answered` or `skipped`.
    #[schema(pattern = "^(answered|skipped)$")]
    status: Option<String>,
    /// Answers by question id.
    answers: Option<BTreeMap<String, StructuredAnswerDoc>>,
}

/// One structured answer.
#[derive(Debug, ToSchema)]
#[schema(title = "StructuredAnswer")]
#[allow(dead_code)]
struct StructuredAnswerDoc {
    /// Values.
    values: Option<Vec<String>>,
    /// Skipped.
    skipped: Option<bool>,
}

/// Feedback kind.
#[derive(Debug, ToSchema)]
#[schema(title = "FeedbackKind")]
#[allow(dead_code)]
enum FeedbackKindDoc {
    /// Thumbs up.
    #[schema(rename = "positive")]
    Positive,
    /// Thumbs down.
    #[schema(rename = "negative")]
    Negative,
}

#[cfg(test)]
mod tests {
    use chatkit::types::{ChatKitRequest as Decoded, REQUEST_TYPES};

    use super::*;

    fn json() -> Value {
        serde_json::to_value(crate::openapi::document()).unwrap()
    }

    #[test]
    fn the_union_documents_every_request_type_once() {
        let mut documented = documented_request_types();
        documented.sort_unstable();
        let mut expected = REQUEST_TYPES.to_vec();
        expected.sort_unstable();
        assert_eq!(documented, expected);
        let doc = json();
        let union = doc["components"]["schemas"]["ChatKitRequest"]["oneOf"].as_array().unwrap();
        assert_eq!(union.len(), REQUEST_TYPES.len());
        for kind in REQUEST_TYPES {
            let schema = &doc["components"]["schemas"][schema_name(kind)];
            assert_eq!(schema["properties"]["type"]["enum"], json!([kind]), "{kind}");
        }
    }

    /// The examples are real requests: the server's own decoder accepts each as the type it documents,
    /// streaming exactly when the schema says so.
    #[test]
    fn every_example_decodes_as_its_type() {
        let doc = json();
        let examples =
            doc["paths"]["/support/chatkit"]["post"]["requestBody"]["content"]["application/json"]["examples"]
                .as_object()
                .unwrap();
        assert_eq!(examples.len(), REQUEST_TYPES.len());
        for r in &REQUESTS {
            let schema = &doc["components"]["schemas"][schema_name(r.kind)];
            for example in [&schema["examples"][0], &examples[r.kind]["value"]] {
                let decoded = Decoded::decode(&serde_json::to_vec(example).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", r.kind));
                assert_eq!(decoded.type_name(), r.kind);
                assert_eq!(decoded.is_streaming(), r.streams, "{}", r.kind);
            }
        }
    }
}
