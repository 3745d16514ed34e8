//! `POST /support/chatkit` (spec customer-support §1.3): the ChatKit protocol endpoint. The raw body is
//! read whatever its `Content-Type` (as the sample does), bounded by `MAX_BODY_BYTES` (413 with a JSON
//! `detail` above it), and handed to [`chatkit::ChatKitServer::process`], which answers JSON or an SSE
//! stream, or a `{"detail","code"}` error before any stream starts.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::{Ctx, read_body};
use crate::server::AppState;

/// The ChatKit endpoint.
#[utoipa::path(
    post,
    path = "/support/chatkit",
    tag = "chatkit",
    summary = "ChatKit protocol endpoint",
    description = crate::openapi::CHATKIT_DESCRIPTION,
    request_body(
        content = crate::openapi::ChatKitRequestDoc,
        content_type = "application/json",
        description = "One ChatKit request `{\"type\": …, \"params\": {…}}`.",
        examples(
            ("threads.list" = (summary = "List threads", value = json!({"type": "threads.list", "params": {"limit": 20, "order": "desc"}}))),
            ("threads.create" = (summary = "Start a thread (streams)", value = json!({"type": "threads.create", "params": {"input": {"content": [{"type": "input_text", "text": "Move me to seat 14C on flight OA476."}], "attachments": [], "inference_options": {}}}}))),
            ("threads.add_user_message" = (summary = "Send a message (streams)", value = json!({"type": "threads.add_user_message", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "input": {"content": [{"type": "input_text", "text": "Add one more checked bag to the reservation."}], "attachments": [], "inference_options": {}}}}))),
            ("threads.get_by_id" = (summary = "Load a thread", value = json!({"type": "threads.get_by_id", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81"}}))),
            ("items.list" = (summary = "List items", value = json!({"type": "items.list", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "limit": 20, "order": "asc"}}))),
            ("threads.update" = (summary = "Rename a thread", value = json!({"type": "threads.update", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "title": "Paris trip"}}))),
            ("threads.delete" = (summary = "Delete a thread", value = json!({"type": "threads.delete", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81"}}))),
            ("threads.custom_action" = (summary = "Widget action (streams)", value = json!({"type": "threads.custom_action", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "item_id": null, "action": {"type": "upsell.accept", "payload": {"cabin_name": "Premium Plus", "price": "$199"}}}}))),
            ("threads.retry_after_item" = (summary = "Answer a message again (streams)", value = json!({"type": "threads.retry_after_item", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "item_id": "msg_019ab8c1f2a04d3e5b6c7a81"}}))),
            ("attachments.create" = (summary = "Phase 1 of an image upload", value = json!({"type": "attachments.create", "params": {"name": "Paris.png", "size": 1024, "mime_type": "image/png"}}))),
            ("attachments.delete" = (summary = "Delete an attachment", value = json!({"type": "attachments.delete", "params": {"attachment_id": "atc_019ab8c1f2a04d3e5b6c7a81"}}))),
            ("items.feedback" = (summary = "Rate items", value = json!({"type": "items.feedback", "params": {"thread_id": "thr_019ab8c1f2a04d3e5b6c7a81", "item_ids": ["msg_019ab8c1f2a04d3e5b6c7a81"], "kind": "positive"}}))),
            ("input.transcribe" = (summary = "Dictation", value = json!({"type": "input.transcribe", "params": {"audio_base64": "GkXfo59ChoEB", "mime_type": "audio/webm;codecs=opus"}}))),
        ),
    ),
    responses(
        (status = 200, description = "Non-streaming requests: JSON (a Thread, a Page, an Attachment, `{\"text\"}` or `{}`). \
                                      Streaming requests: Server-Sent Events, one `data: <json>` frame per event.",
         content(
            (crate::openapi::JsonResult = "application/json"),
            (String = "text/event-stream", example = "data: {\"type\":\"stream_options\",\"stream_options\":{\"allow_cancel\":true}}\n\n"),
         )),
        (status = 400, description = "Malformed JSON, unknown or missing `type`, invalid params", body = crate::openapi::ChatKitErrorBody,
         example = json!({"detail": "unknown request type `threads.nope`; expected one of: threads.create, …", "code": "invalid_type"})),
        (status = 404, description = "Unknown thread, item or attachment", body = crate::openapi::ChatKitErrorBody),
        (status = 409, description = "The thread is busy with another response", body = crate::openapi::ChatKitErrorBody),
        (status = 413, description = "Body larger than MAX_BODY_BYTES, or attachment over 5 MB", body = crate::openapi::ChatKitErrorBody),
        (status = 503, description = "A needed service (model key, dictation) is not configured", body = crate::openapi::ChatKitErrorBody),
    )
)]
pub async fn chatkit(State(state): State<AppState>, Ctx(ctx): Ctx, headers: HeaderMap, body: Body) -> Response {
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
    state.chatkit.handle(&bytes, ctx).await
}
