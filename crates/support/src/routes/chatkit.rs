//! `POST /support/chatkit`: the ChatKit protocol endpoint. The raw body is read whatever its
//! `Content-Type` (as the sample does), bounded by `MAX_BODY_BYTES` (413 with a JSON `detail` above it),
//! and handed to [`chatkit::ChatKitServer::handle`], which answers JSON or an SSE stream, or a
//! `{"detail","code"}` error before any stream starts.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chatkit::types::ChatKitRequest;
use futures::StreamExt as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Ctx, ErrorBody, read_body};
use crate::openapi::responses::{ChatKitEvent, ChatKitResult};
use crate::router::AppState;

/// The ChatKit endpoint.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(chatkit))
}

/// ChatKit protocol endpoint
///
/// The body is one request `{"type": "<request type>", "params": {…}}`. Streaming types
/// (`threads.create`, `threads.add_user_message`, `threads.add_client_tool_output`,
/// `threads.add_structured_input`, `threads.retry_after_item`, `threads.custom_action`) answer
/// `text/event-stream`: one `data: <json>` line per event followed by a blank line. The other types answer
/// JSON. Errors before a stream starts are `{"detail", "code"}` JSON with a 4xx/5xx status; errors inside
/// a stream are an `error` event. Pick an example below and use "Try it out".
#[utoipa::path(
    post,
    path = "/support/chatkit",
    tag = "chatkit",
    request_body(content = ChatKitRequest, content_type = "application/json",
                 description = "One ChatKit request `{\"type\": …, \"params\": {…}}`."),
    responses(
        (status = 200, description = "Non-streaming requests: JSON. Streaming requests: server-sent events.",
         content(
            (ChatKitResult = "application/json"),
            (ChatKitEvent = "text/event-stream",
             example = "data: {\"type\":\"stream_options\",\"stream_options\":{\"allow_cancel\":true}}\n\n"),
         )),
        (status = 400, description = "Malformed JSON, unknown or missing `type`, invalid params", body = ErrorBody,
         example = json!({"detail": "unknown request type `threads.nope`; expected one of: threads.create, …", "code": "invalid_type"})),
        (status = 404, description = "Unknown thread, item or attachment", body = ErrorBody,
         example = json!({"detail": "thread thr_019ab8c1f2a04d3e5b6c7a81 not found", "code": "not_found"})),
        (status = 408, description = "The body stopped arriving before it was complete (BODY_READ_TIMEOUT_SECS)", body = ErrorBody,
         example = json!({"detail": "the request body stopped arriving before it was complete (BODY_READ_TIMEOUT_SECS)"})),
        (status = 409, description = "The thread is busy with another response", body = ErrorBody,
         example = json!({"detail": "thread thr_019ab8c1f2a04d3e5b6c7a81 is busy with another response; try again shortly", "code": "conflict"})),
        (status = 413, description = "Body larger than MAX_BODY_BYTES, attachment over 5 MB, or more than the user's attachment storage has room for (MAX_ATTACHMENT_BYTES_PER_USER)", body = ErrorBody,
         example = json!({"detail": "Attachments are limited to 5 MB in this demo.", "code": "payload_too_large"})),
        (status = 429, description = "A streaming request over a per-user limit (MAX_STREAMS_PER_USER, TURNS_PER_MINUTE); \
         nothing was stored and the model was not called", body = ErrorBody,
         headers(("retry-after" = u64, description = "Seconds until trying again can work")),
         example = json!({"detail": "You have sent 30 messages in the last minute, the most one user may send (TURNS_PER_MINUTE); try again in 38 s."})),
        (status = 500, description = "Unexpected failure (the cause is in the server log)", body = ErrorBody,
         example = json!({"detail": "internal server error; the cause was logged on the server", "code": "internal_error"})),
        (status = 502, description = "The dictation provider failed", body = ErrorBody,
         example = json!({"detail": "the model provider answered 503 Service Unavailable", "code": "upstream_error"})),
        (status = 503, description = "A needed service (model key, dictation, database) is not available", body = ErrorBody,
         example = json!({"detail": "Dictation is not available: no transcription model is configured. Set OPENAI_API_KEY (or GEMINI_API_KEY) in .env and restart the server.", "code": "unavailable"})),
    )
)]
pub(crate) async fn chatkit(State(state): State<AppState>, Ctx(ctx): Ctx, headers: HeaderMap, body: Body) -> Response {
    let limit = state.limits.max_body_bytes;
    let bytes = match read_body(&headers, body, limit).await {
        Ok(b) => b,
        Err(e) => {
            return e
                .into_api_error(format!(
                    "Request body is larger than the {limit}-byte limit of this endpoint (MAX_BODY_BYTES)."
                ))
                .into_response();
        }
    };
    // Per-user limits, before the request stores anything or reaches the model. The permit lives as long
    // as the response body: released just before the body's end is sent, or dropped when the client
    // leaves.
    let permit = match crate::limits::stream_kind(&bytes) {
        Some(kind) if state.user_limits.watches_streams() => {
            match state.user_limits.admit_stream(&ctx.owner_id, kind.calls_model).await {
                Ok(permit) => Some(permit),
                Err(refused) => return refused.into_response(),
            }
        }
        _ => None,
    };
    // An attachment that cannot fit in the user's storage is refused before its bytes are sent (the
    // upload is checked again with the real size).
    if state.user_limits.watches_storage()
        && let Some(size) = crate::limits::attachment_create_size(&bytes)
        && let Err(refused) = state.user_limits.check_storage(state.store.as_ref(), &ctx, None, size).await
    {
        return refused.into_response();
    }
    let response = state.chatkit.handle(&bytes, ctx).await;
    match permit {
        None => response,
        Some(permit) => response.map(|body| {
            let release = futures::stream::once(permit.release())
                .filter_map(|()| std::future::ready(None::<Result<axum::body::Bytes, axum::Error>>));
            Body::from_stream(body.into_data_stream().chain(release))
        }),
    }
}
