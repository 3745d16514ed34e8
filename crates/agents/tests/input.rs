//! Thread items → model input, every text checked exactly against what chatkit-python writes.

use agents::{ContentPart, ConvertHooks, DefaultConvertHooks, InputItem, Role, hidden_context_text, items_to_input};
use async_trait::async_trait;
use chatkit::AppError;
use chatkit::store::{MemoryStore, RequestContext, Store};
use chatkit::types::*;
use serde_json::{Map, Value, json};

const T: &str = "thr_1";

fn item(id: &str, kind: ItemKind) -> ThreadItem {
    ThreadItem::new(id, T, kind)
}

fn user(content: Vec<UserMessageContent>, attachments: Vec<Attachment>, quoted: Option<&str>) -> ItemKind {
    ItemKind::UserMessage(UserMessageItem {
        content,
        attachments,
        quoted_text: quoted.map(str::to_string),
        inference_options: InferenceOptions::default(),
    })
}

fn text(t: &str) -> UserMessageContent {
    UserMessageContent::InputText { text: t.into() }
}

fn image(id: &str, preview: &str) -> Attachment {
    Attachment {
        id: id.into(),
        name: format!("{id}.png"),
        mime_type: "image/png".into(),
        upload_descriptor: None,
        thread_id: Some(T.into()),
        kind: AttachmentKind::Image { preview_url: preview.into() },
    }
}

fn u(text: &str) -> InputItem {
    InputItem::user_text(text)
}

#[tokio::test]
async fn every_item_type_converts_like_the_python_converter() {
    let store = MemoryStore::new();
    let ctx = RequestContext::default();
    store.save_attachment(&ctx, &image("atc_1", "")).await.unwrap();
    store.save_attachment_data(&ctx, "atc_1", &[1, 2, 3]).await.unwrap();

    let items = vec![
        item(
            "msg_u1",
            user(
                vec![
                    text("Hi "),
                    UserMessageContent::InputTag {
                        id: "e1".into(),
                        text: "Ada".into(),
                        data: Map::new(),
                        group: None,
                        interactive: false,
                    },
                ],
                vec![image("atc_1", "https://x/p1"), image("atc_2", "data:image/png;base64,PREVIEW")],
                Some("not last, so ignored"),
            ),
        ),
        item(
            "msg_a1",
            ItemKind::AssistantMessage(AssistantMessageItem {
                content: vec![AssistantMessageContent::text("Part one."), AssistantMessageContent::text("Part two.")],
            }),
        ),
        item(
            "w_1",
            ItemKind::Widget(WidgetItem {
                widget: json!({"type":"Card","id":null,"children":[{"type":"Text","value":"Hi","color":null}]}),
                copy_text: None,
            }),
        ),
        item(
            "fc_1",
            ItemKind::ClientToolCall(ClientToolCallItem {
                status: ClientToolCallStatus::Completed,
                call_id: "call_1".into(),
                name: "get_selection".into(),
                arguments: json!({"scope": "all"}),
                output: Some(json!({"items": [1, 2]})),
            }),
        ),
        item(
            "fc_2",
            ItemKind::ClientToolCall(ClientToolCallItem {
                status: ClientToolCallStatus::Pending,
                call_id: "call_2".into(),
                name: "get_selection".into(),
                arguments: json!({}),
                output: None,
            }),
        ),
        item(
            "wf_1",
            ItemKind::Workflow(WorkflowItem {
                workflow: json!({"type":"custom","tasks":[
                    {"type":"custom","title":"Booked","content":"OA476","status_indicator":"complete"},
                    {"type":"custom","title":"Only title"},
                    {"type":"custom","content":"Only content"},
                    {"type":"custom"},
                    {"type":"thought","content":"hidden thinking"}
                ],"expanded":false}),
            }),
        ),
        item("tsk_1", ItemKind::Task(TaskItem { task: json!({"type":"custom","title":"Refund","content":"issued"}) })),
        item("tsk_2", ItemKind::Task(TaskItem { task: json!({"type":"web_search","title":"Search"}) })),
        item(
            "si_1",
            ItemKind::StructuredInput(StructuredInputItem {
                status: StructuredInputStatus::Answered,
                inputs: vec![
                    StructuredQuestion {
                        id: "q1".into(),
                        question: "Cabin?".into(),
                        answer: Some(StructuredAnswer {
                            values: vec!["economy".into(), "window".into()],
                            skipped: false,
                        }),
                        rest: Map::new(),
                    },
                    StructuredQuestion {
                        id: "q2".into(),
                        question: "Meal?".into(),
                        answer: Some(StructuredAnswer { values: vec![], skipped: true }),
                        rest: Map::new(),
                    },
                    StructuredQuestion { id: "q3".into(), question: "Notes?".into(), answer: None, rest: Map::new() },
                ],
            }),
        ),
        item(
            "hc_1",
            ItemKind::HiddenContextItem(HiddenContextItem { content: json!("<WIDGET_ACTION>x</WIDGET_ACTION>") }),
        ),
        item("hc_2", ItemKind::HiddenContextItem(HiddenContextItem { content: json!({"k": 1}) })),
        item(
            "shcx_1",
            ItemKind::SdkHiddenContext(SdkHiddenContextItem {
                content: "The user cancelled the stream. Stop responding to the prior request.".into(),
            }),
        ),
        item(
            "img_1",
            ItemKind::GeneratedImage(GeneratedImageItem {
                image: Some(json!({"id":"ig_1","url":"https://img/1.png"})),
            }),
        ),
        item("img_2", ItemKind::GeneratedImage(GeneratedImageItem { image: None })),
        item("eot_1", ItemKind::EndOfTurn(EndOfTurnItem {})),
        item("msg_u2", user(vec![text("Why?")], vec![], Some("the seat"))),
    ];

    let input = items_to_input(&items, &store, &ctx, &DefaultConvertHooks).await.unwrap();
    let expected = vec![
        InputItem::Message {
            role: Role::User,
            content: vec![
                ContentPart::InputText("Hi @Ada".into()),
                ContentPart::InputImage { url: "data:image/png;base64,AQID".into() },
                ContentPart::InputImage { url: "data:image/png;base64,PREVIEW".into() },
            ],
        },
        InputItem::Message {
            role: Role::Assistant,
            content: vec![ContentPart::OutputText("Part one.".into()), ContentPart::OutputText("Part two.".into())],
        },
        u(
            r#"The following graphical UI widget (id: w_1) was displayed to the user:{"type":"Card","children":[{"type":"Text","value":"Hi"}]}"#,
        ),
        InputItem::FunctionCall {
            call_id: "call_1".into(),
            name: "get_selection".into(),
            arguments: r#"{"scope":"all"}"#.into(),
            provider_data: None,
        },
        InputItem::FunctionCallOutput { call_id: "call_1".into(), output: r#"{"items":[1,2]}"#.into() },
        u("A message was displayed to the user that the following task was performed:\n<Task>\nBooked: OA476\n</Task>"),
        u("A message was displayed to the user that the following task was performed:\n<Task>\nOnly title\n</Task>"),
        u("A message was displayed to the user that the following task was performed:\n<Task>\nOnly content\n</Task>"),
        u(
            "A message was displayed to the user that the following task was performed:\n<Task>\nRefund: issued\n</Task>",
        ),
        u(
            "A structured input request was displayed to the user with the following status: answered\n<StructuredInput>\n- Cabin?: economy, window\n- Meal?: skipped\n- Notes?: unanswered\n</StructuredInput>",
        ),
        u(
            "Hidden context for the agent (not shown to the user):\n<HiddenContext>\n<WIDGET_ACTION>x</WIDGET_ACTION>\n</HiddenContext>",
        ),
        u("Hidden context for the agent (not shown to the user):\n<HiddenContext>\n{\"k\":1}\n</HiddenContext>"),
        u(
            "Hidden context for the agent (not shown to the user):\n<HiddenContext>\nThe user cancelled the stream. Stop responding to the prior request.\n</HiddenContext>",
        ),
        InputItem::Message {
            role: Role::User,
            content: vec![
                ContentPart::InputText("The following image was generated by the agent.".into()),
                ContentPart::InputImage { url: "https://img/1.png".into() },
            ],
        },
        u("Why?"),
        u("The user is referring to this in particular: \nthe seat"),
    ];
    assert_eq!(input.len(), expected.len(), "{input:#?}");
    for (i, (got, want)) in input.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "item {i}");
    }
}

/// The app's override: hidden context is sent raw; tags are described.
struct AppHooks;

#[async_trait]
impl ConvertHooks for AppHooks {
    async fn hidden_context(&self, _item: &ThreadItem, content: &Value) -> Result<Vec<InputItem>, AppError> {
        Ok(vec![InputItem::user_text(content.as_str().unwrap_or_default())])
    }
    fn tag(&self, id: &str, text: &str, _data: &Map<String, Value>) -> Option<ContentPart> {
        Some(ContentPart::InputText(format!("{text} is entity {id}")))
    }
}

#[tokio::test]
async fn hooks_override_hidden_context_and_describe_tags() {
    let store = MemoryStore::new();
    let ctx = RequestContext::default();
    let tag = |id: &str, t: &str| UserMessageContent::InputTag {
        id: id.into(),
        text: t.into(),
        data: Map::new(),
        group: None,
        interactive: true,
    };
    let items = vec![
        item(
            "hc",
            ItemKind::HiddenContextItem(HiddenContextItem { content: json!("<WIDGET_ACTION>raw</WIDGET_ACTION>") }),
        ),
        item("u", user(vec![tag("e1", "Ada"), text(" and "), tag("e1", "Ada"), tag("e2", "Bob")], vec![], None)),
    ];
    let input = items_to_input(&items, &store, &ctx, &AppHooks).await.unwrap();
    assert_eq!(
        input,
        vec![
            u("<WIDGET_ACTION>raw</WIDGET_ACTION>"),
            u("@Ada and @Ada@Bob"),
            InputItem::Message {
                role: Role::User,
                content: vec![
                    ContentPart::InputText("# User-provided context for @-mentions\n- When referencing resolved entities, use their canonical names **without** '@'.\n- The '@' form appears only in user text and should not be echoed.".into()),
                    ContentPart::InputText("Ada is entity e1".into()),
                    ContentPart::InputText("Bob is entity e2".into()),
                ],
            },
        ]
    );
    assert_eq!(
        hidden_context_text("x"),
        "Hidden context for the agent (not shown to the user):\n<HiddenContext>\nx\n</HiddenContext>"
    );
}
