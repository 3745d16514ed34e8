//! The ChatKit request union of the OpenAPI document: one schema per request type
//! (`{"type": <const>, "params": {…}}`, each with a working example) and their `oneOf`.

use serde_json::{Value, json};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, PartialSchema, ToSchema};

use super::{ActionDoc, FeedbackKindDoc, OrderDoc, StructuredInputSubmissionDoc, UserMessageInputDoc};

/// The ChatKit request union (`oneOf` of the 16 request types, discriminated by `type`).
#[derive(Debug)]
pub struct ChatKitRequestDoc;

impl PartialSchema for ChatKitRequestDoc {
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new()
            .description(Some("One ChatKit request; `type` selects the shape of `params`."))
            .discriminator(Some(utoipa::openapi::Discriminator::with_mapping(
                "type",
                REQUESTS.iter().map(|r| (r.kind.to_string(), format!("#/components/schemas/{}", schema_name(r.kind)))),
            )));
        for r in REQUESTS {
            one_of = one_of.item(Ref::from_schema_name(schema_name(r.kind)));
        }
        one_of.into()
    }
}

impl ToSchema for ChatKitRequestDoc {
    fn name() -> std::borrow::Cow<'static, str> {
        "ChatKitRequest".into()
    }
}

/// One request type: its `type`, whether it streams, what it does, its params schema and an example.
struct RequestDoc {
    kind: &'static str,
    streams: bool,
    summary: &'static str,
    params: fn() -> Schema,
    example: fn() -> Value,
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
        example: || json!({"type": "threads.create", "params": {"input": message_example("Move me to seat 14C on flight OA476.")}}),
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
        example: || json!({"type": "threads.add_user_message", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "input": message_example("Add one more checked bag to the reservation.")}}),
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
        example: || json!({"type": "threads.add_client_tool_output", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "result": {"ok": true}}}),
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
        example: || json!({"type": "threads.add_structured_input", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "item_id": "msg_019ab8c1f2a04d3e5b6c7a81", "input": {"status": "answered", "answers": {"q1": {"values": ["A"]}}}}}),
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
        example: || json!({"type": "threads.retry_after_item", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "item_id": "msg_019ab8c1f2a04d3e5b6c7a81"}}),
    },
    RequestDoc {
        kind: "threads.custom_action",
        streams: true,
        summary: "Run a widget action (`flight.select`, `upsell.accept`, …).",
        params: action_params,
        example: || json!({"type": "threads.custom_action", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "item_id": null, "action": {"type": "upsell.accept", "payload": {"cabin_name": "Premium Plus", "price": "$199"}}}}),
    },
    RequestDoc {
        kind: "threads.get_by_id",
        streams: false,
        summary: "A thread with its first page of items (oldest first). Answers a Thread.",
        params: || obj().property("thread_id", thread_id()).required("thread_id").into(),
        example: || json!({"type": "threads.get_by_id", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81"}}),
    },
    RequestDoc {
        kind: "threads.list",
        streams: false,
        summary: "A page of threads. Answers a Page of Threads.",
        params: || {
            obj().property("limit", limit()).property("order", OrderDoc::schema()).property("after", cursor()).into()
        },
        example: || json!({"type": "threads.list", "params": {"limit": 20, "order": "desc"}}),
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
        example: || json!({"type": "threads.update", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "title": "Paris trip"}}),
    },
    RequestDoc {
        kind: "threads.delete",
        streams: false,
        summary: "Delete a thread and its items. Answers `{}`.",
        params: || obj().property("thread_id", thread_id()).required("thread_id").into(),
        example: || json!({"type": "threads.delete", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81"}}),
    },
    RequestDoc {
        kind: "items.list",
        streams: false,
        summary: "A page of a thread's items (hidden ones removed). Answers a Page of items.",
        params: || {
            obj()
                .property("thread_id", thread_id())
                .property("limit", limit())
                .property("order", OrderDoc::schema())
                .property("after", cursor())
                .required("thread_id")
                .into()
        },
        example: || json!({"type": "items.list", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "limit": 20, "order": "asc"}}),
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
        example: || json!({"type": "items.feedback", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "item_ids": ["msg_019ab8c1f2a04d3e5b6c7a81"], "kind": "positive"}}),
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
        example: || json!({"type": "attachments.create", "params": {"name": "Paris.png", "size": 1024, "mime_type": "image/png"}}),
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
        example: || json!({"type": "attachments.delete", "params": {"attachment_id": "atc_019ab8c1f2a04d3e5b6c7a81"}}),
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
        example: || json!({"type": "input.transcribe", "params": {"audio_base64": "GkXfo59ChoEB", "mime_type": "audio/webm;codecs=opus"}}),
    },
    RequestDoc {
        kind: "threads.sync_custom_action",
        streams: false,
        summary: "Run a widget action synchronously. Answers `{\"updated_item\": …}` or `{}`.",
        params: action_params,
        example: || json!({"type": "threads.sync_custom_action", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "item_id": "msg_019ab8c1f2a04d3e5b6c7a81", "action": {"type": "noop", "payload": null}}}),
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

/// Adds the 16 request schemas the union refers to.
pub(crate) struct ChatKitUnion;

impl Modify for ChatKitUnion {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for r in REQUESTS {
            let description = format!("{} ({})", r.summary, if r.streams { "streams SSE" } else { "answers JSON" });
            let schema = obj()
                .title(Some(r.kind))
                .description(Some(description))
                .property("type", string().enum_values(Some([r.kind])))
                .property("params", (r.params)())
                .property("metadata", obj().description(Some("Optional, ignored")))
                .required("type")
                .required("params")
                .examples([(r.example)()]);
            components.schemas.insert(schema_name(r.kind), schema.into());
        }
    }
}

/// Every request `type` the union documents (for tests).
pub fn documented_request_types() -> Vec<&'static str> {
    REQUESTS.iter().map(|r| r.kind).collect()
}
