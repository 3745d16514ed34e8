//! The two shapes of a successful `POST /support/chatkit` answer, as schemas built from `chatkit`'s wire
//! types: [`ChatKitResult`] (the JSON body of a non-streaming request) and [`ChatKitEvent`] (one event of
//! a streaming request's `text/event-stream` body).

use std::borrow::Cow;

use chatkit::types::{Attachment, Page, Thread, ThreadItem, ThreadStreamEvent};
use serde_json::json;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// Adds `T` and every schema it refers to, as `#[derive(ToSchema)]` does for a field type.
fn collect<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

/// The JSON answer of a non-streaming request; which one depends on the request type.
pub(crate) struct ChatKitResult;

impl PartialSchema for ChatKitResult {
    fn schema() -> RefOr<Schema> {
        let object = || ObjectBuilder::new().schema_type(Type::Object);
        AnyOfBuilder::new()
            .description(Some(
                "`threads.get_by_id` and `threads.update`: the Thread. `threads.list`: a page of threads. \
                 `items.list`: a page of items. `attachments.create`: the Attachment with its upload URL. \
                 `input.transcribe`: `{\"text\"}`. `threads.sync_custom_action`: `{\"updated_item\"}` or `{}`. \
                 `threads.delete`, `items.feedback`, `attachments.delete`: `{}`.",
            ))
            .item(Ref::from_schema_name(Thread::name()))
            .item(<Page<Thread>>::schema())
            .item(<Page<ThreadItem>>::schema())
            .item(Ref::from_schema_name(Attachment::name()))
            .item(
                object()
                    .title(Some("Transcription"))
                    .property("text", ObjectBuilder::new().schema_type(Type::String))
                    .required("text"),
            )
            .item(
                object()
                    .title(Some("SyncActionResult"))
                    .property("updated_item", Ref::from_schema_name(ThreadItem::name())),
            )
            .examples([json!({"data": [], "has_more": false})])
            .into()
    }
}

impl ToSchema for ChatKitResult {
    fn name() -> Cow<'static, str> {
        "ChatKitResult".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        collect::<Thread>(schemas);
        collect::<ThreadItem>(schemas);
        collect::<Attachment>(schemas);
    }
}

/// One server-sent event of a streaming answer, in the form SSE-aware tools read a stream: the stream is
/// a sequence of `data: <JSON>` lines each followed by a blank line (no `event:` or `id:` fields), and
/// each `data` is a JSON-encoded [`ThreadStreamEvent`].
pub(crate) struct ChatKitEvent;

impl PartialSchema for ChatKitEvent {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "One server-sent event: its `data` field holds a JSON-encoded ThreadStreamEvent. The stream \
                 starts with `stream_options`, and ends when the turn ends (after an `error` event if it fails).",
            ))
            .property(
                "data",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .content_media_type("application/json")
                    .content_schema(Some(Ref::from_schema_name(ThreadStreamEvent::name()))),
            )
            .required("data")
            .into()
    }
}

impl ToSchema for ChatKitEvent {
    fn name() -> Cow<'static, str> {
        "ChatKitEvent".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        collect::<ThreadStreamEvent>(schemas);
    }
}
