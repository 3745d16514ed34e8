//! The OpenAPI 3.1 document served at `/openapi.json` and the offline Swagger UI at `/docs`.
//!
//! Routes are described by their `#[utoipa::path]` annotations in [`crate::routes`]. The ChatKit request
//! union is documented here as a `oneOf` of the 16 request types (each `{"type": <const>, "params": …}`),
//! with named examples so "Try it out" in `/docs` sends real requests. The doc-only types below mirror the
//! wire types of the `chatkit` crate; they are never used to decode requests.

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::openapi::path::{HttpMethod, PathItem};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use crate::routes;

mod requests;

use requests::ChatKitUnion;
pub use requests::{ChatKitRequestDoc, documented_request_types};

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
#[schema(example = json!({"id": "atc_019ab8c1f2a04d3e5b6c7a81", "name": "Paris.png", "mime_type": "image/png",
    "upload_descriptor": null, "thread_id": null, "metadata": null, "type": "image",
    "preview_url": "http://127.0.0.1:8000/support/attachments/atc_019ab8c1f2a04d3e5b6c7a81/content"}))]
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

#[cfg(test)]
mod tests {
    use super::requests::schema_name;
    use super::*;
    use serde_json::json;

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
