//! Property test of SSE framing, both ends: for any stream event — every event type, every item
//! type, strings with newlines, carriage returns, control and non-ASCII characters — the frame
//! `chatkit::encode_sse` writes is exactly `data: ` + one line of JSON + `\n\n`, the JSON parses
//! back to an equal event, and [`agents::SseDecoder`] reads the same JSON back however the frame is
//! split into chunks.

#[path = "../../chatkit/tests/strategies/mod.rs"]
mod strategies;

use std::collections::VecDeque;

use agents::SseDecoder;
use chatkit::encode_sse;
use chatkit::types::*;
use proptest::prelude::*;
use serde_json::Map;
use strategies::{any_string, json_non_null, json_object, json_value};

fn timestamp() -> impl Strategy<Value = Timestamp> {
    // 1970 … ~2096, microsecond precision (what the wire carries).
    (0i64..4_000_000_000_000_000).prop_map(|m| Timestamp::from_micros(m).unwrap())
}

fn opt_string(max: usize) -> impl Strategy<Value = Option<String>> {
    proptest::option::of(any_string(max))
}

fn annotation() -> impl Strategy<Value = Annotation> {
    (json_value(), proptest::option::of(any::<u64>())).prop_map(|(source, index)| Annotation {
        kind: AnnotationType::Annotation,
        source,
        index,
    })
}

fn content_part() -> impl Strategy<Value = AssistantMessageContent> {
    (prop::collection::vec(annotation(), 0..3), any_string(24))
        .prop_map(|(annotations, text)| AssistantMessageContent { annotations, text, kind: OutputTextType::OutputText })
}

fn attachment() -> impl Strategy<Value = Attachment> {
    let kind = prop_oneof![
        Just(AttachmentKind::File),
        any_string(16).prop_map(|preview_url| AttachmentKind::Image { preview_url }),
    ];
    let upload = proptest::option::of(
        (any_string(16), any_string(4), prop::collection::btree_map(any_string(6), any_string(6), 0..3))
            .prop_map(|(url, method, headers)| UploadDescriptor { url, method, headers }),
    );
    (any_string(8), any_string(12), any_string(10), upload, opt_string(8), kind).prop_map(
        |(id, name, mime_type, upload_descriptor, thread_id, kind)| Attachment {
            id,
            name,
            mime_type,
            upload_descriptor,
            thread_id,
            kind,
        },
    )
}

fn user_content() -> impl Strategy<Value = UserMessageContent> {
    prop_oneof![
        any_string(20).prop_map(|text| UserMessageContent::InputText { text }),
        (any_string(6), any_string(10), json_object(), opt_string(5), any::<bool>()).prop_map(
            |(id, text, data, group, interactive)| {
                UserMessageContent::InputTag { id, text, data, group, interactive }
            }
        ),
    ]
}

fn question() -> impl Strategy<Value = StructuredQuestion> {
    let answer = proptest::option::of(
        (prop::collection::vec(any_string(6), 0..3), any::<bool>())
            .prop_map(|(values, skipped)| StructuredAnswer { values, skipped }),
    );
    // Extra (flattened) fields must not collide with the declared ones.
    let rest = prop::collection::vec((any_string(6).prop_map(|k| format!("x_{k}")), json_value()), 0..3)
        .prop_map(|kv| kv.into_iter().collect::<Map<_, _>>());
    (any_string(6), any_string(16), answer, rest).prop_map(|(id, question, answer, rest)| StructuredQuestion {
        id,
        question,
        answer,
        rest,
    })
}

fn item_kind() -> impl Strategy<Value = ItemKind> {
    let status = prop_oneof![
        Just(StructuredInputStatus::Pending),
        Just(StructuredInputStatus::Answered),
        Just(StructuredInputStatus::Skipped)
    ];
    let tool_status = prop_oneof![Just(ClientToolCallStatus::Pending), Just(ClientToolCallStatus::Completed)];
    prop_oneof![
        (
            prop::collection::vec(user_content(), 0..3),
            prop::collection::vec(attachment(), 0..2),
            opt_string(10),
            opt_string(6),
            opt_string(6)
        )
            .prop_map(|(content, attachments, quoted_text, tool, model)| {
                ItemKind::UserMessage(UserMessageItem {
                    content,
                    attachments,
                    quoted_text,
                    inference_options: InferenceOptions { tool_choice: tool.map(|id| ToolChoice { id }), model },
                })
            }),
        prop::collection::vec(content_part(), 0..3)
            .prop_map(|content| ItemKind::AssistantMessage(AssistantMessageItem { content })),
        (tool_status, any_string(8), any_string(8), json_value(), proptest::option::of(json_non_null())).prop_map(
            |(status, call_id, name, arguments, output)| {
                ItemKind::ClientToolCall(ClientToolCallItem { status, call_id, name, arguments, output })
            }
        ),
        (json_value(), opt_string(12))
            .prop_map(|(widget, copy_text)| ItemKind::Widget(WidgetItem { widget, copy_text })),
        proptest::option::of(json_non_null()).prop_map(|image| ItemKind::GeneratedImage(GeneratedImageItem { image })),
        (status, prop::collection::vec(question(), 0..3))
            .prop_map(|(status, inputs)| { ItemKind::StructuredInput(StructuredInputItem { status, inputs }) }),
        json_value().prop_map(|workflow| ItemKind::Workflow(WorkflowItem { workflow })),
        json_value().prop_map(|task| ItemKind::Task(TaskItem { task })),
        json_value().prop_map(|content| ItemKind::HiddenContextItem(HiddenContextItem { content })),
        any_string(20).prop_map(|content| ItemKind::SdkHiddenContext(SdkHiddenContextItem { content })),
        Just(ItemKind::EndOfTurn(EndOfTurnItem {})),
    ]
}

fn item() -> impl Strategy<Value = ThreadItem> {
    (any_string(10), any_string(10), timestamp(), item_kind())
        .prop_map(|(id, thread_id, created_at, kind)| ThreadItem { id, thread_id, created_at, kind })
}

fn thread() -> impl Strategy<Value = Thread> {
    let status = prop_oneof![
        Just(ThreadStatus::Active),
        opt_string(10).prop_map(|reason| ThreadStatus::Locked { reason }),
        opt_string(10).prop_map(|reason| ThreadStatus::Closed { reason }),
    ];
    let page = (prop::collection::vec(item(), 0..3), any::<bool>(), opt_string(8))
        .prop_map(|(data, has_more, after)| Page { data, has_more, after });
    (
        opt_string(16),
        any_string(10),
        timestamp(),
        status,
        proptest::option::of(prop::collection::vec(any_string(10), 0..3)),
        json_object(),
        page,
    )
        .prop_map(|(title, id, created_at, status, allowed_image_domains, metadata, items)| Thread {
            title,
            id,
            created_at,
            status,
            allowed_image_domains,
            metadata,
            items,
        })
}

fn update() -> impl Strategy<Value = ItemUpdate> {
    let idx = 0usize..8;
    prop_oneof![
        (idx.clone(), content_part())
            .prop_map(|(content_index, content)| { ItemUpdate::ContentPartAdded { content_index, content } }),
        (idx.clone(), any_string(16)).prop_map(|(content_index, delta)| ItemUpdate::TextDelta { content_index, delta }),
        (idx.clone(), idx.clone(), annotation()).prop_map(|(content_index, annotation_index, annotation)| {
            ItemUpdate::AnnotationAdded { content_index, annotation_index, annotation }
        }),
        (idx.clone(), content_part())
            .prop_map(|(content_index, content)| { ItemUpdate::ContentPartDone { content_index, content } }),
        (any_string(8), any_string(16), any::<bool>()).prop_map(|(component_id, delta, done)| {
            ItemUpdate::WidgetStreamingTextValueDelta { component_id, delta, done }
        }),
        json_value().prop_map(|widget| ItemUpdate::WidgetRootUpdated { widget }),
        (any_string(8), json_value())
            .prop_map(|(component_id, component)| { ItemUpdate::WidgetComponentUpdated { component_id, component } }),
        (idx.clone(), json_value()).prop_map(|(task_index, task)| ItemUpdate::WorkflowTaskAdded { task_index, task }),
        (idx, json_value()).prop_map(|(task_index, task)| ItemUpdate::WorkflowTaskUpdated { task_index, task }),
        (json_value(), proptest::option::of((0u32..=1000).prop_map(|p| f64::from(p) / 1000.0)))
            .prop_map(|(image, progress)| ItemUpdate::GeneratedImageUpdated { image, progress }),
    ]
}

fn event() -> impl Strategy<Value = ThreadStreamEvent> {
    let level = prop_oneof![Just(NoticeLevel::Info), Just(NoticeLevel::Warning), Just(NoticeLevel::Danger)];
    prop_oneof![
        thread().prop_map(|thread| ThreadStreamEvent::ThreadCreated { thread }),
        thread().prop_map(|thread| ThreadStreamEvent::ThreadUpdated { thread }),
        item().prop_map(|item| ThreadStreamEvent::ItemAdded { item }),
        (any_string(10), update()).prop_map(|(item_id, update)| ThreadStreamEvent::ItemUpdated { item_id, update }),
        item().prop_map(|item| ThreadStreamEvent::ItemDone { item }),
        any_string(10).prop_map(|item_id| ThreadStreamEvent::ItemRemoved { item_id }),
        item().prop_map(|item| ThreadStreamEvent::ItemReplaced { item }),
        any::<bool>().prop_map(|allow_cancel| ThreadStreamEvent::StreamOptions {
            stream_options: StreamOptions { allow_cancel }
        }),
        (opt_string(8), any_string(20)).prop_map(|(icon, text)| ThreadStreamEvent::ProgressUpdate { icon, text }),
        (any_string(10), json_value()).prop_map(|(name, data)| ThreadStreamEvent::ClientEffect { name, data }),
        (any_string(12), opt_string(20), any::<bool>())
            .prop_map(|(code, message, allow_retry)| { ThreadStreamEvent::Error { code, message, allow_retry } }),
        (level, any_string(20), opt_string(10))
            .prop_map(|(level, message, title)| { ThreadStreamEvent::Notice { level, message, title } }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: strategies::cases(256), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sse_frames_round_trip(ev in event(), cut in any::<prop::sample::Index>()) {
        let frame = encode_sse(&ev);
        prop_assert!(frame.starts_with(b"data: "), "{:?}", String::from_utf8_lossy(&frame));
        prop_assert!(frame.ends_with(b"\n\n"), "{:?}", String::from_utf8_lossy(&frame));
        let json = &frame[6..frame.len() - 2];
        // One line: no raw LF or CR anywhere in the payload (both end an SSE line).
        prop_assert!(!json.contains(&b'\n') && !json.contains(&b'\r'), "{:?}", String::from_utf8_lossy(json));
        let back: ThreadStreamEvent = serde_json::from_slice(json)
            .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(json))))?;
        prop_assert_eq!(&back, &ev);
        // The wire `type` is the event's type name.
        let v: serde_json::Value = serde_json::from_slice(json).unwrap();
        prop_assert_eq!(v["type"].as_str(), Some(ev.type_name()));
        // The client's decoder gets the JSON back, wherever the network splits the frame.
        let (head, tail) = frame.split_at(cut.index(frame.len() + 1));
        let mut decoder = SseDecoder::default();
        let mut events = VecDeque::new();
        decoder.feed(head, &mut events).map_err(|e| TestCaseError::fail(e.to_string()))?;
        decoder.feed(tail, &mut events).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(events.len(), 1);
        prop_assert_eq!(events[0].as_bytes(), json);
    }
}
