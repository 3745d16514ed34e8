//! Unit tests of [`super::SupportApp`]: turns through a scripted provider, attachments, dictation, clean-up.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::*;
use crate::testkit::{Harness, kinds};
use agents::{FunctionCall, ModelEvent, ModelRequest, ModelStream, ProviderError};
use chatkit::types::{InferenceOptions, ItemKind, ThreadStreamEvent, UserMessageContent, UserMessageItem};
use serde_json::json;

/// A provider answering each call with the next scripted list of events.
#[derive(Default)]
struct Scripted {
    replies: Mutex<VecDeque<Vec<ModelEvent>>>,
    requests: Mutex<Vec<ModelRequest>>,
}

#[async_trait]
impl Provider for Scripted {
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ProviderError> {
        self.requests.lock().unwrap().push(request);
        let events = self.replies.lock().unwrap().pop_front().unwrap_or_default();
        Ok(Box::pin(futures::stream::iter(events.into_iter().map(Ok))))
    }
    fn name(&self) -> &'static str {
        "Scripted"
    }
    fn model(&self) -> &str {
        "scripted-1"
    }
}

fn text_reply(id: &str, text: &str) -> Vec<ModelEvent> {
    vec![
        ModelEvent::MessageStarted { id: id.into() },
        ModelEvent::ContentPartStarted { message_id: id.into(), content_index: 0 },
        ModelEvent::TextDelta { message_id: id.into(), content_index: 0, delta: text.into() },
        ModelEvent::ContentPartDone { message_id: id.into(), content_index: 0, text: text.into() },
        ModelEvent::MessageDone { id: id.into() },
        ModelEvent::Completed { usage: None },
    ]
}

fn call_reply(name: &str, arguments: serde_json::Value) -> Vec<ModelEvent> {
    vec![
        ModelEvent::FunctionCall(FunctionCall {
            call_id: "call_1".into(),
            name: name.into(),
            arguments: arguments.to_string(),
            provider_data: None,
        }),
        ModelEvent::Completed { usage: None },
    ]
}

struct Setup {
    h: Harness,
    app: SupportApp,
    provider: Arc<Scripted>,
}

async fn setup(replies: Vec<Vec<ModelEvent>>, with_provider: bool) -> Setup {
    let h = Harness::new().await;
    let provider = Arc::new(Scripted { replies: Mutex::new(replies.into()), requests: Mutex::new(vec![]) });
    let app = SupportApp::new(
        h.store.clone(),
        h.airline.clone(),
        with_provider.then(|| provider.clone() as Arc<dyn Provider>),
        None,
        AppSettings::default(),
    );
    Setup { h, app, provider }
}

async fn send_user(h: &mut Harness, text: &str) -> ThreadItem {
    let item = ThreadItem::new(
        ids::generate(ids::MESSAGE),
        h.thread.id.clone(),
        ItemKind::UserMessage(UserMessageItem {
            content: vec![UserMessageContent::InputText { text: text.into() }],
            attachments: vec![],
            quoted_text: None,
            inference_options: InferenceOptions::default(),
        }),
    );
    h.sink.send(ThreadStreamEvent::ItemDone { item: item.clone() }).await.unwrap();
    h.events();
    item
}

#[tokio::test]
async fn no_provider_is_a_clear_custom_error_and_the_thread_still_gets_a_title() {
    let Setup { mut h, app, .. } = setup(vec![], false).await;
    let user = send_user(&mut h, "Move me to seat 14C on flight OA476.").await;
    let err = app.respond(&h.thread, Some(&user), &h.sink).await.unwrap_err();
    let AppError::Custom { message, allow_retry } = &err else { panic!("{err:?}") };
    assert!(message.contains("OPENAI_API_KEY") && message.contains("GEMINI_API_KEY") && message.contains(".env"));
    assert!(!allow_retry);
    let events = h.events();
    assert_eq!(kinds(&events), vec!["thread.updated"]);
    assert_eq!(events[0]["thread"]["title"], "Move me to seat 14C on flight OA476.");
    let types: Vec<&str> = h.items().await.iter().map(|i| i.type_name()).collect::<Vec<_>>().into_iter().collect();
    assert_eq!(types, vec!["user_message"]);
}

/// Scenario 1 through the run loop: effect during the tool, then the model's text, then the title.
#[tokio::test]
async fn tool_turn_streams_effect_before_text_and_title_last() {
    let replies = vec![
        call_reply("change_seat", json!({"flight_number":"OA476","seat":"14c"})),
        text_reply("msg_model1", "Done: seat 14C on OA476."),
    ];
    let Setup { mut h, app, provider } = setup(replies, true).await;
    let user = send_user(&mut h, "Move me to seat 14C on flight OA476.").await;
    app.respond(&h.thread, Some(&user), &h.sink).await.unwrap();
    let events = h.events();
    assert_eq!(
        kinds(&events),
        vec![
            "client_effect:customer_profile/update",
            "thread.item.added:assistant_message",
            "thread.item.updated:assistant_message.content_part.added",
            "thread.item.updated:assistant_message.content_part.text_delta",
            "thread.item.updated:assistant_message.content_part.done",
            "thread.item.done:assistant_message",
            "thread.updated",
        ]
    );
    assert_eq!(events[0]["data"]["profile"]["segments"][0]["seat"], "14C");
    assert_eq!(events[5]["item"]["id"], "msg_model1");
    let requests = provider.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!(first.temperature, Some(0.4));
    assert_eq!(first.instructions, crate::agent::INSTRUCTIONS);
    let names: Vec<&str> = first.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["change_seat", "cancel_trip", "add_checked_bag", "flight_option_list", "request_assistance"]
    );
    assert_eq!(first.input.len(), 2);
    let agents::InputItem::Message { content, .. } = &first.input[0] else { panic!() };
    let agents::ContentPart::InputText(profile_text) = &content[0] else { panic!() };
    assert!(profile_text.starts_with("<CUSTOMER_PROFILE>\nName: Jordan Miles (Aviator Gold)\n"));
    assert!(profile_text.contains("seat 14A"));
    assert_eq!(first.input[1], agents::InputItem::user_text("Move me to seat 14C on flight OA476."));
    let last = requests[1].input.last().unwrap();
    assert_eq!(
        last,
        &agents::InputItem::FunctionCallOutput {
            call_id: "call_1".into(),
            output: r#"{"result":"Seat updated to 14C on flight OA476."}"#.into()
        }
    );
}

/// Scenario 8: the stop tool ends the run after one model call.
#[tokio::test]
async fn flight_option_list_stops_the_run() {
    let replies = vec![
        call_reply(
            "flight_option_list",
            json!({"destination":"CDG","depart_date":"2025-11-03","return_date":"2025-11-10","cabin":"business","origin":null}),
        ),
        text_reply("msg_never", "should not be asked"),
    ];
    let Setup { mut h, app, provider } = setup(replies, true).await;
    let user = send_user(&mut h, "Book a trip to Paris, Nov 3 to Nov 10, business.").await;
    app.respond(&h.thread, Some(&user), &h.sink).await.unwrap();
    let events = h.events();
    assert_eq!(kinds(&events), vec!["thread.item.done:assistant_message", "thread.item.done:widget", "thread.updated"]);
    assert_eq!(provider.requests.lock().unwrap().len(), 1);
    let profile = app.airline().profile(&h.thread.id).await.unwrap();
    assert_eq!(profile.timeline[0].entry, "Booking request for SFO → CDG (2025-11-03 to 2025-11-10).");
}

#[tokio::test]
async fn titles_can_be_turned_off_and_user_titles_are_kept() {
    let Setup { mut h, .. } = setup(vec![], false).await;
    let settings = AppSettings { thread_titles: false, ..AppSettings::default() };
    let app = SupportApp::new(h.store.clone(), h.airline.clone(), None, None, settings);
    let user = send_user(&mut h, "Hello").await;
    assert!(app.respond(&h.thread, Some(&user), &h.sink).await.is_err());
    assert!(h.events().is_empty());
    assert_eq!(h.store.load_thread(&h.ctx, &h.thread.id).await.unwrap().title, None);
}

#[tokio::test]
async fn create_attachment_checks_and_urls() {
    let Setup { app, .. } = setup(vec![], false).await;
    let ctx = RequestContext { owner_id: "anonymous".into(), base_url: "http://127.0.0.1:8000".into() };
    let params =
        |size: u64, mime: &str| CreateAttachmentParams { name: "Paris.jpg".into(), size, mime_type: mime.into() };
    let a = app.create_attachment(&params(5 * 1024 * 1024, "image/png"), &ctx).await.unwrap();
    assert!(a.id.starts_with("atc_"));
    // Stored without host or signature.
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(
        json,
        json!({"id": a.id, "name": "Paris.jpg", "mime_type": "image/png",
               "upload_descriptor": {"url": format!("/support/attachments/{}/upload", a.id), "method": "POST", "headers": {}},
               "type": "image", "preview_url": format!("/support/attachments/{}/content", a.id)})
    );
    // Sent with signed links on the request's base URL.
    let signer =
        std::sync::Arc::new(crate::signed_urls::UrlSigner::new(vec![7; 32], std::time::Duration::from_secs(60)));
    let app = SupportApp::new(app.store.clone(), app.airline().clone(), None, None, AppSettings::default())
        .with_url_signer(signer);
    let mut sent = a.clone();
    app.present_attachment(&mut sent, &ctx);
    let upload = &sent.upload_descriptor.as_ref().unwrap().url;
    assert!(
        upload.starts_with(&format!("http://127.0.0.1:8000/support/attachments/{}/upload?owner=", a.id)),
        "{upload}"
    );
    let AttachmentKind::Image { preview_url } = &sent.kind else { panic!() };
    assert!(preview_url.starts_with(&format!("http://127.0.0.1:8000/support/attachments/{}/content?owner=", a.id)));
    let err = app.create_attachment(&params(5 * 1024 * 1024 + 1, "text/plain"), &ctx).await.unwrap_err();
    assert!(matches!(&err, AppError::PayloadTooLarge(m) if m == "Attachments are limited to 5 MB in this demo."));
    assert_eq!(chatkit::ChatKitError::from(err).status, 413);
    for mime in ["text/plain", "application/pdf", "image/svg+xml", ""] {
        let err = app.create_attachment(&params(10, mime), &ctx).await.unwrap_err();
        assert!(matches!(&err, AppError::BadRequest(m) if m == "Only image attachments are supported in this demo."));
    }
    for mime in ["image/jpeg", "IMAGE/WEBP", "image/gif"] {
        assert!(app.create_attachment(&params(10, mime), &ctx).await.is_ok(), "{mime}");
    }
}

struct FakeTranscriber(Mutex<Vec<(usize, String, String)>>);

#[async_trait]
impl Transcriber for FakeTranscriber {
    async fn transcribe(&self, audio: Vec<u8>, media_type: &str, file_name: &str) -> Result<String, ProviderError> {
        self.0.lock().unwrap().push((audio.len(), media_type.into(), file_name.into()));
        Ok("Move me to seat 14C.".into())
    }
    fn name(&self) -> &'static str {
        "Fake"
    }
}

#[tokio::test]
async fn transcribe_formats_and_missing_provider() {
    let Setup { h, app, .. } = setup(vec![], false).await;
    let err = app.transcribe(vec![1, 2], "audio/wav", &h.ctx).await.unwrap_err();
    assert!(matches!(&err, AppError::BadRequest(m) if m == "Unexpected audio format"));
    let err = app.transcribe(vec![1, 2], "audio/webm;codecs=opus", &h.ctx).await.unwrap_err();
    assert!(matches!(&err, AppError::Unavailable(m) if m.contains("OPENAI_API_KEY")));
    assert_eq!(chatkit::ChatKitError::from(err).status, 503);

    let fake = Arc::new(FakeTranscriber(Mutex::new(vec![])));
    let app = SupportApp::new(h.store.clone(), h.airline.clone(), None, Some(fake.clone()), AppSettings::default());
    assert_eq!(app.transcribe(vec![1, 2, 3], "audio/webm;codecs=opus", &h.ctx).await.unwrap(), "Move me to seat 14C.");
    app.transcribe(vec![1], "audio/mp4", &h.ctx).await.unwrap();
    app.transcribe(vec![1], " Audio/Ogg ; codecs=opus", &h.ctx).await.unwrap();
    assert_eq!(
        *fake.0.lock().unwrap(),
        vec![
            (3, "audio/webm".to_string(), "audio.webm".to_string()),
            (1, "audio/mp4".to_string(), "audio.m4a".to_string()),
            (1, "audio/ogg".to_string(), "audio.ogg".to_string()),
        ]
    );
}

#[tokio::test]
async fn deleting_a_thread_deletes_its_airline_state() {
    let Setup { h, app, .. } = setup(vec![], false).await;
    app.airline().update(&h.thread.id, |p| Ok(p.add_bag())).await.unwrap().unwrap();
    app.thread_deleted(&h.thread.id, &h.ctx).await.unwrap();
    assert!(h.store.kv_get(crate::airline::NAMESPACE, &h.thread.id).await.unwrap().is_none());
}
