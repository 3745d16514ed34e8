//! The OpenAPI 3.1 document served at `/openapi.json`, and the Swagger UI at `/docs` that reads it
//! (bundled into the binary, so the page works without internet).
//!
//! Nothing here restates a route or a wire type: paths, methods, parameters and responses come from the
//! handlers' `#[utoipa::path]` annotations as [`crate::routes::api`] registers them, and the schemas
//! from the types the server encodes and decodes (`chatkit`'s wire types, the airline profile, the error
//! body). This module adds what no single route knows: the document's title and tags, an example of
//! every ChatKit request type and the `params` the decoder lets clients leave out ([`requests`]), and
//! operation ids that stay unique when one handler serves two methods.

use std::collections::BTreeMap;

use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::path::Operation;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::router::AppState;

pub(crate) mod requests;
pub(crate) mod responses;

/// Title, version, description and tags; the paths are added from the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ChatKit Customer Support API",
        version = "0.1.0",
        description = "OpenSkies airline customer-support concierge: a ChatKit custom backend (Rust). \
                       `POST /support/chatkit` speaks the ChatKit protocol; the other routes serve attachments, \
                       the customer side panel and health checks."
    ),
    tags(
        (name = "chatkit", description = "The ChatKit protocol endpoint"),
        (name = "support", description = "Attachments, customer profile and health"),
    )
)]
struct ApiDoc;

/// Splits documented routes into the axum router that serves them and the finished OpenAPI document.
pub(crate) fn split(routes: OpenApiRouter<AppState>) -> (axum::Router<AppState>, Document) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(routes).split_for_parts();
    requests::add_examples(&mut doc);
    requests::allow_omitted_params(&mut doc);
    make_operation_ids_unique(&mut doc);
    declare_bearer_auth(&mut doc);
    (router, doc)
}

/// The document `/openapi.json` serves (the router builds it with its own authenticator).
#[cfg(test)]
pub(crate) fn document() -> Document {
    split(crate::routes::api(std::sync::Arc::new(crate::auth::Authenticator::None))).1
}

/// Name of the bearer security scheme in the document.
pub(crate) const BEARER_SCHEME: &str = "bearerAuth";

/// Declares the bearer-token scheme (Swagger UI's "Authorize" button) on the routes that act for a user.
/// Each lists "no credentials" as an alternative too: with `AUTH_MODE=none` or `header` they take none.
fn declare_bearer_auth(doc: &mut Document) {
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
    let scheme = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("JWT")
        .description(Some("A JWT from your identity provider (`AUTH_MODE=jwt`); locally: `support token --sub alice`."))
        .build();
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(BEARER_SCHEME, SecurityScheme::Http(scheme));
    let security = vec![SecurityRequirement::default(), SecurityRequirement::new(BEARER_SCHEME, Vec::<String>::new())];
    for path in ["/support/chatkit", "/support/customer", "/support/usage"] {
        if let Some(item) = doc.paths.paths.get_mut(path) {
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                operation.security = Some(security.clone());
                operation.responses.responses.entry("401".into()).or_insert_with(|| {
                    let body = utoipa::openapi::ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                        .build();
                    utoipa::openapi::ResponseBuilder::new()
                        .description(
                            "Not authenticated (AUTH_MODE jwt or header); comes with `WWW-Authenticate: Bearer`",
                        )
                        .content("application/json", body)
                        .into()
                });
            }
        }
    }
}

/// The Swagger UI router: `/docs` (redirects to `/docs/`), `/docs/*` (bundled assets, no CDN) and
/// `/openapi.json`. The online validator badge is disabled so the page makes no external request.
pub(crate) fn swagger_ui(doc: Document) -> SwaggerUi {
    let config = utoipa_swagger_ui::Config::from("/openapi.json")
        .validator_url("none")
        .try_it_out_enabled(true)
        .display_request_duration(true);
    SwaggerUi::new("/docs").url("/openapi.json", doc).config(config)
}

/// A handler registered for several methods (the upload route takes `POST` and `PUT`) is one operation
/// under each method, all with the handler's name as id; OpenAPI wants ids unique, so every repeat after
/// the first gets its method appended (`upload`, `upload_put`).
fn make_operation_ids_unique(doc: &mut Document) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for item in doc.paths.paths.values_mut() {
        let operations: [(&str, &mut Option<Operation>); 8] = [
            ("get", &mut item.get),
            ("post", &mut item.post),
            ("put", &mut item.put),
            ("patch", &mut item.patch),
            ("delete", &mut item.delete),
            ("head", &mut item.head),
            ("options", &mut item.options),
            ("trace", &mut item.trace),
        ];
        for (method, operation) in operations {
            let Some(id) = operation.as_mut().and_then(|op| op.operation_id.as_mut()) else { continue };
            let count = seen.entry(id.clone()).or_default();
            *count += 1;
            if *count > 1 {
                id.push('_');
                id.push_str(method);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn json() -> Value {
        serde_json::to_value(document()).unwrap()
    }

    #[test]
    fn document_has_title_version_and_every_route() {
        let doc = json();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], "ChatKit Customer Support API");
        assert_eq!(doc["info"]["version"], "0.1.0");
        let paths = doc["paths"].as_object().unwrap();
        let mut routes: Vec<&str> = paths.keys().map(String::as_str).collect();
        routes.sort_unstable();
        assert_eq!(
            routes,
            [
                "/support/attachments/{attachment_id}/content",
                "/support/attachments/{attachment_id}/upload",
                "/support/chatkit",
                "/support/customer",
                "/support/health",
                "/support/ready",
                "/support/usage",
            ]
        );
        let upload = &paths["/support/attachments/{attachment_id}/upload"];
        assert_eq!(upload["post"]["operationId"], "upload");
        assert_eq!(upload["put"]["operationId"], "upload_put");
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = json();
        let mut ids: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values().filter_map(|op| op["operationId"].as_str()))
            .collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count, "{ids:?}");
        assert_eq!(count, 8);
    }

    /// Every `$ref` in the document points at a schema the document defines.
    #[test]
    fn every_reference_resolves() {
        fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        out.push(r);
                    }
                    map.values().for_each(|v| refs(v, out));
                }
                Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = json();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected ref {r}"));
            assert!(doc["components"]["schemas"].get(name).is_some(), "{r} is not defined");
        }
    }

    /// The content route documents the image types it can serve, which are the types
    /// `attachments.create` accepts, and the chatkit route documents both of its answers.
    #[test]
    fn success_answers_carry_their_real_media_types() {
        let doc = json();
        let content =
            &doc["paths"]["/support/attachments/{attachment_id}/content"]["get"]["responses"]["200"]["content"];
        let mut served: Vec<&str> = content.as_object().unwrap().keys().map(String::as_str).collect();
        served.sort_unstable();
        let mut accepted = crate::app::ACCEPTED_IMAGE_TYPES.to_vec();
        accepted.sort_unstable();
        assert_eq!(served, accepted);
        assert_eq!(content["image/png"]["schema"]["$ref"], "#/components/schemas/FileBytes");
        assert_eq!(doc["components"]["schemas"]["FileBytes"]["format"], "binary");

        let chatkit = &doc["paths"]["/support/chatkit"]["post"]["responses"]["200"]["content"];
        assert_eq!(chatkit["application/json"]["schema"]["$ref"], "#/components/schemas/ChatKitResult");
        assert_eq!(chatkit["text/event-stream"]["schema"]["$ref"], "#/components/schemas/ChatKitEvent");
        let data = &doc["components"]["schemas"]["ChatKitEvent"]["properties"]["data"];
        assert_eq!(data["contentMediaType"], "application/json");
        assert_eq!(data["contentSchema"]["$ref"], "#/components/schemas/ThreadStreamEvent");
    }

    /// The size limits the decoder enforces are in the request schemas, so a request that fits the document
    /// is not refused for its size (byte-counted ids and JSON sizes aside: JSON Schema counts characters).
    #[test]
    fn request_schemas_carry_the_decoder_limits() {
        use chatkit::types::limits::*;
        let doc = json();
        let schemas = &doc["components"]["schemas"];
        let limit = |schema: &str, field: &str, keyword: &str| {
            let property = &schemas[schema]["properties"][field];
            property[keyword].as_u64().or_else(|| {
                // An optional field is `oneOf: [null, {...}]` or carries the type list itself.
                property["oneOf"].as_array()?.iter().find_map(|s| s[keyword].as_u64())
            })
        };
        let n = |v: usize| Some(v as u64);
        assert_eq!(limit("UserMessageInput", "content", "maxItems"), n(MAX_MESSAGE_PARTS));
        assert_eq!(limit("UserMessageInput", "attachments", "maxItems"), n(MAX_MESSAGE_ATTACHMENTS));
        assert_eq!(limit("UserMessageInput", "quoted_text", "maxLength"), n(MAX_QUOTED_TEXT_CHARS));
        assert_eq!(limit("Action", "type", "maxLength"), n(MAX_NAME_CHARS));
        assert_eq!(limit("StructuredAnswerInput", "values", "maxItems"), n(MAX_ANSWERS));
        assert_eq!(limit("UpdateThreadParams", "title", "maxLength"), n(MAX_TITLE_CHARS));
        assert_eq!(limit("FeedbackParams", "item_ids", "maxItems"), n(MAX_FEEDBACK_ITEMS));
        assert_eq!(limit("CreateAttachmentParams", "name", "maxLength"), n(MAX_NAME_CHARS));
        assert_eq!(limit("CreateAttachmentParams", "mime_type", "maxLength"), n(MAX_NAME_CHARS));
        assert_eq!(limit("TranscribeParams", "mime_type", "maxLength"), n(MAX_NAME_CHARS));
        assert_eq!(limit("InferenceOptions", "model", "maxLength"), n(MAX_NAME_CHARS));
    }

    #[test]
    fn errors_are_documented_with_the_json_error_body() {
        let doc = json();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, response) in op["responses"].as_object().unwrap() {
                    if status.starts_with('2')
                        || status == "503" && (path == "/support/health" || path == "/support/ready")
                    {
                        continue;
                    }
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}
