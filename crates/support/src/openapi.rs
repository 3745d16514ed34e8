//! The OpenAPI 3.1 document served at `/openapi.json` and the offline Swagger UI at `/docs`.
//!
//! Routes are described by their `#[utoipa::path]` annotations in [`crate::routes`]. The ChatKit request
//! union is documented here as a `oneOf` of the 16 request types (each `{"type": <const>, "params": …}`),
//! with named examples so "Try it out" in `/docs` sends real requests. The doc-only types below mirror the
//! wire types of the `chatkit` crate; they are never used to decode requests.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use utoipa::openapi::path::{HttpMethod, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use crate::routes;

/// Description of `POST /support/chatkit` in the docs.
pub const CHATKIT_DESCRIPTION: &str = "The ChatKit custom-backend protocol. The body is one request \
`{\"type\": \"<request type>\", \"params\": {…}}`. Streaming types (`threads.create`, `threads.add_user_message`, \
`threads.add_client_tool_output`, `threads.add_structured_input`, `threads.retry_after_item`, `threads.custom_action`) \
answer `text/event-stream`: one `data: <json>` line per event followed by a blank line. The other types answer JSON. \
Errors before a stream starts are `{\"detail\", \"code\"}` JSON with a 4xx/5xx status; errors inside a stream are an \
`error` event. Pick an example below and use \"Try it out\".";

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ChatKit Customer Support API",
        version = "0.1.0",
        description = "OpenSkies airline customer-support concierge: a ChatKit custom backend (Rust). \
                       `POST /support/chatkit` speaks the ChatKit protocol; the other routes serve attachments, \
                       the customer side panel and health checks."
    ),
    paths(
        routes::chatkit::chatkit,
        routes::attachments::upload,
        routes::attachments::content,
        routes::customer::customer,
        routes::health::health,
    ),
    components(schemas(
        routes::ErrorBody,
        ChatKitErrorBody,
        routes::health::HealthBody,
        CustomerResponse,
        AttachmentDoc,
        UploadDescriptorDoc,
        UploadForm,
        JsonResult,
        ChatKitRequestDoc,
        UserMessageInputDoc,
        UserMessageContentDoc,
        InferenceOptionsDoc,
        ToolChoiceDoc,
        ActionDoc,
        StructuredInputSubmissionDoc,
        StructuredAnswerDoc,
        OrderDoc,
        FeedbackKindDoc,
    )),
    modifiers(&ChatKitUnion, &UploadAlsoPut),
    tags(
        (name = "chatkit", description = "The ChatKit protocol endpoint"),
        (name = "support", description = "Attachments, customer profile and health"),
    )
)]
pub struct ApiDoc;

/// The Swagger UI router: `/docs` (redirects to `/docs/`), `/docs/*` (bundled assets, no CDN) and
/// `/openapi.json`. The online validator badge is disabled so the page makes no external request.
pub fn swagger_ui() -> SwaggerUi {
    let config = utoipa_swagger_ui::Config::from("/openapi.json")
        .validator_url("none")
        .try_it_out_enabled(true)
        .display_request_duration(true);
    SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()).config(config)
}

/// Error body of the ChatKit endpoint.
#[derive(Debug, ToSchema)]
pub struct ChatKitErrorBody {
    /// What was wrong, in plain words (for a bad `type`, the list of valid types).
    pub detail: String,
    /// Stable machine-readable code, e.g. `invalid_json`, `invalid_type`, `invalid_params`, `not_found`.
    pub code: Option<String>,
}

/// `{"customer": <profile>}`: the OpenSkies profile of a thread (field order as the sample emits it).
#[derive(Debug, ToSchema)]
#[schema(example = json!({"customer": {"customer_id": "cus_98421", "name": "Jordan Miles", "loyalty_status": "Aviator Gold",
    "loyalty_id": "APL-204981", "email": "jordan.miles@example.com", "phone": "+1 (415) 555-9214", "home_airport": "SFO",
    "segments": [{"flight_number": "OA476", "date": "2025-10-02", "origin": "SFO", "destination": "JFK",
                  "departure_time": "08:05", "arrival_time": "16:35", "seat": "14A", "status": "Scheduled"}],
    "bags_checked": 0, "meal_preference": null, "special_assistance": null, "booked_widget_ids": []}}))]
pub struct CustomerResponse {
    /// Profile: `customer_id`, `name`, `loyalty_status`, `loyalty_id`, `email`, `phone`, `home_airport`,
    /// `preferred_routes`, `travel_summary`, `tier_benefits`, `loyalty_progress`, `segments`, `bags_checked`,
    /// `meal_preference`, `special_assistance`, `timeline`, `spotlight`, `booked_widget_ids`.
    pub customer: Value,
}

/// Where and how to upload the bytes of a two-phase attachment.
#[derive(Debug, ToSchema)]
pub struct UploadDescriptorDoc {
    /// Absolute upload URL.
    pub url: String,
    /// `POST`.
    pub method: String,
    /// Extra headers to send (none).
    pub headers: BTreeMap<String, String>,
}

/// An attachment (images only in this app).
#[derive(Debug, ToSchema)]
#[schema(example = json!({"id": "atc_0123456789abcdef", "name": "Paris.png", "mime_type": "image/png",
    "upload_descriptor": null, "thread_id": null, "metadata": null, "type": "image",
    "preview_url": "http://127.0.0.1:8000/support/attachments/atc_0123456789abcdef/content"}))]
pub struct AttachmentDoc {
    /// `atc_…`
    pub id: String,
    /// File name.
    pub name: String,
    /// Declared MIME type.
    pub mime_type: String,
    /// Present until the bytes are uploaded.
    pub upload_descriptor: Option<UploadDescriptorDoc>,
    /// Thread of the message that uses it.
    pub thread_id: Option<String>,
    /// `image`.
    #[schema(rename = "type")]
    pub kind: String,
    /// URL of the content route.
    pub preview_url: String,
}

/// Multipart body of an upload.
#[derive(Debug, ToSchema)]
pub struct UploadForm {
    /// The file.
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    pub file: String,
}

/// A non-streaming ChatKit result: a Thread, a Page of threads or items, an Attachment, `{"text": …}`,
/// `{"updated_item": …}` or `{}`.
#[derive(Debug, ToSchema)]
#[schema(example = json!({"data": [], "has_more": false}))]
pub struct JsonResult(pub serde_json::Map<String, Value>);

/// The message a user sends.
#[derive(Debug, ToSchema)]
#[schema(title = "UserMessageInput")]
pub struct UserMessageInputDoc {
    /// Text and tag parts.
    pub content: Vec<UserMessageContentDoc>,
    /// Ids of attachments created with `attachments.create` and uploaded.
    #[schema(default = json!([]))]
    pub attachments: Option<Vec<String>>,
    /// "Reply to" snippet.
    pub quoted_text: Option<String>,
    /// Composer options.
    pub inference_options: Option<InferenceOptionsDoc>,
}

/// One part of a user message.
#[derive(Debug, ToSchema)]
#[schema(title = "UserMessageContent")]
#[allow(dead_code)]
pub enum UserMessageContentDoc {
    /// `{"type":"input_text","text":…}`
    #[schema(title = "input_text")]
    InputText {
        /// `input_text`
        #[schema(rename = "type", pattern = "^input_text$")]
        kind: String,
        /// The text.
        text: String,
    },
    /// `{"type":"input_tag",…}` (an @-mention).
    #[schema(title = "input_tag")]
    InputTag {
        /// `input_tag`
        #[schema(rename = "type", pattern = "^input_tag$")]
        kind: String,
        /// Entity id.
        id: String,
        /// Display text.
        text: String,
        /// Entity data.
        data: Option<serde_json::Map<String, Value>>,
        /// Group.
        group: Option<String>,
        /// Clickable.
        interactive: Option<bool>,
    },
}

/// Composer options.
#[derive(Debug, ToSchema)]
#[schema(title = "InferenceOptions")]
pub struct InferenceOptionsDoc {
    /// Selected composer tool.
    pub tool_choice: Option<ToolChoiceDoc>,
    /// Selected model.
    pub model: Option<String>,
}

/// A composer tool choice.
#[derive(Debug, ToSchema)]
#[schema(title = "ToolChoice")]
pub struct ToolChoiceDoc {
    /// Tool id.
    pub id: String,
}

/// A widget action.
#[derive(Debug, ToSchema)]
#[schema(title = "Action", example = json!({"type": "flight.select", "payload": {"id": "flight-midday"}}))]
pub struct ActionDoc {
    /// Action name (`flight.select`, `upsell.accept`, `rebook.select_option`, …).
    #[schema(rename = "type")]
    pub kind: String,
    /// App data.
    pub payload: Option<Value>,
}

/// Answers to a structured input.
#[derive(Debug, ToSchema)]
#[schema(title = "StructuredInputSubmission")]
pub struct StructuredInputSubmissionDoc {
    /// `answered` or `skipped`.
    #[schema(pattern = "^(answered|skipped)$")]
    pub status: Option<String>,
    /// Answers by question id.
    pub answers: Option<BTreeMap<String, StructuredAnswerDoc>>,
}

/// One structured answer.
#[derive(Debug, ToSchema)]
#[schema(title = "StructuredAnswer")]
pub struct StructuredAnswerDoc {
    /// Values.
    pub values: Option<Vec<String>>,
    /// Skipped.
    pub skipped: Option<bool>,
}

/// List order.
#[derive(Debug, ToSchema)]
#[schema(title = "Order")]
#[allow(dead_code)]
pub enum OrderDoc {
    /// Oldest first.
    #[schema(rename = "asc")]
    Asc,
    /// Newest first (default).
    #[schema(rename = "desc")]
    Desc,
}

/// Feedback kind.
#[derive(Debug, ToSchema)]
#[schema(title = "FeedbackKind")]
#[allow(dead_code)]
pub enum FeedbackKindDoc {
    /// Thumbs up.
    #[schema(rename = "positive")]
    Positive,
    /// Thumbs down.
    #[schema(rename = "negative")]
    Negative,
}

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

fn schema_name(kind: &str) -> String {
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
    string().description(Some("Thread id (`thr_…`)")).examples([json!("thr_0123456789abcdef")])
}

fn item_id(what: &str) -> ObjectBuilder {
    string().description(Some(what)).examples([json!("msg_0123456789abcdef")])
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
        example: || json!({"type": "threads.add_user_message", "params": {"thread_id": "thr_0123456789abcdef", "input": message_example("Add one more checked bag to the reservation.")}}),
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
        example: || json!({"type": "threads.add_client_tool_output", "params": {"thread_id": "thr_0123456789abcdef", "result": {"ok": true}}}),
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
        example: || json!({"type": "threads.add_structured_input", "params": {"thread_id": "thr_0123456789abcdef", "item_id": "msg_0123456789abcdef", "input": {"status": "answered", "answers": {"q1": {"values": ["A"]}}}}}),
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
        example: || json!({"type": "threads.retry_after_item", "params": {"thread_id": "thr_0123456789abcdef", "item_id": "msg_0123456789abcdef"}}),
    },
    RequestDoc {
        kind: "threads.custom_action",
        streams: true,
        summary: "Run a widget action (`flight.select`, `upsell.accept`, …).",
        params: action_params,
        example: || json!({"type": "threads.custom_action", "params": {"thread_id": "thr_0123456789abcdef", "item_id": null, "action": {"type": "upsell.accept", "payload": {"cabin_name": "Premium Plus", "price": "$199"}}}}),
    },
    RequestDoc {
        kind: "threads.get_by_id",
        streams: false,
        summary: "A thread with its first page of items (oldest first). Answers a Thread.",
        params: || obj().property("thread_id", thread_id()).required("thread_id").into(),
        example: || json!({"type": "threads.get_by_id", "params": {"thread_id": "thr_0123456789abcdef"}}),
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
        example: || json!({"type": "threads.update", "params": {"thread_id": "thr_0123456789abcdef", "title": "Paris trip"}}),
    },
    RequestDoc {
        kind: "threads.delete",
        streams: false,
        summary: "Delete a thread and its items. Answers `{}`.",
        params: || obj().property("thread_id", thread_id()).required("thread_id").into(),
        example: || json!({"type": "threads.delete", "params": {"thread_id": "thr_0123456789abcdef"}}),
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
        example: || json!({"type": "items.list", "params": {"thread_id": "thr_0123456789abcdef", "limit": 20, "order": "asc"}}),
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
        example: || json!({"type": "items.feedback", "params": {"thread_id": "thr_0123456789abcdef", "item_ids": ["msg_0123456789abcdef"], "kind": "positive"}}),
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
                .property("attachment_id", string().examples([json!("atc_0123456789abcdef")]))
                .required("attachment_id")
                .into()
        },
        example: || json!({"type": "attachments.delete", "params": {"attachment_id": "atc_0123456789abcdef"}}),
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
        example: || json!({"type": "threads.sync_custom_action", "params": {"thread_id": "thr_0123456789abcdef", "item_id": "msg_0123456789abcdef", "action": {"type": "noop", "payload": null}}}),
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
struct ChatKitUnion;

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

/// Documents the upload route for `PUT` too (same operation, its own operation id).
struct UploadAlsoPut;

impl Modify for UploadAlsoPut {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let path = "/support/attachments/{attachment_id}/upload";
        let Some(item) = openapi.paths.paths.get_mut(path) else { return };
        let Some(mut op) = item.post.clone() else { return };
        op.operation_id = Some("upload_put".into());
        let put = PathItem::new(HttpMethod::Put, op);
        item.merge_operations(put);
    }
}

/// The document as JSON (what `/openapi.json` serves).
pub fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null)
}

/// Every request `type` the union documents (for tests).
pub fn documented_request_types() -> Vec<&'static str> {
    REQUESTS.iter().map(|r| r.kind).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_has_title_version_and_all_routes() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], "ChatKit Customer Support API");
        assert_eq!(doc["info"]["version"], "0.1.0");
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/support/chatkit",
            "/support/attachments/{attachment_id}/upload",
            "/support/attachments/{attachment_id}/content",
            "/support/customer",
            "/support/health",
        ] {
            assert!(paths.contains_key(p), "missing {p}");
        }
        let upload = &paths["/support/attachments/{attachment_id}/upload"];
        assert!(upload.get("post").is_some() && upload.get("put").is_some(), "{upload}");
        assert_ne!(upload["post"]["operationId"], upload["put"]["operationId"]);
    }

    #[test]
    fn request_union_lists_the_16_types_with_examples() {
        let doc = document();
        let mut types = documented_request_types();
        types.sort_unstable();
        let mut expected = chatkit::types::REQUEST_TYPES.to_vec();
        expected.sort_unstable();
        assert_eq!(types, expected);
        let union = &doc["components"]["schemas"]["ChatKitRequest"]["oneOf"];
        assert_eq!(union.as_array().unwrap().len(), 16);
        for kind in chatkit::types::REQUEST_TYPES {
            let schema = &doc["components"]["schemas"][schema_name(kind)];
            assert_eq!(schema["properties"]["type"]["enum"], json!([kind]), "{kind}");
            let example = &schema["examples"][0];
            assert_eq!(example["type"], kind);
            // Every example decodes with the real request decoder.
            let bytes = serde_json::to_vec(example).unwrap();
            chatkit::types::ChatKitRequest::decode(&bytes).unwrap_or_else(|e| panic!("{kind}: {e}"));
        }
        let examples =
            doc["paths"]["/support/chatkit"]["post"]["requestBody"]["content"]["application/json"]["examples"]
                .as_object()
                .unwrap();
        assert!(examples.len() >= 10, "{examples:?}");
        for (name, ex) in examples {
            let bytes = serde_json::to_vec(&ex["value"]).unwrap();
            chatkit::types::ChatKitRequest::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
