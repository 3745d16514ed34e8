//! Model input: the provider-neutral conversation items ([`InputItem`]) and the conversion of stored
//! ChatKit thread items into them ([`items_to_input`]), with the texts chatkit-python's converter
//! writes, so the model sees a thread the same way. Providers serialize these items into their own
//! wire format.
//!
//! Deviations from the Python converter, all deliberate: non-string hidden context is rendered as
//! compact JSON instead of raising; non-image attachments become a short text note instead of
//! raising; @-mention tags only produce the extra context message when [`ConvertHooks::tag`] returns
//! parts (the default returns none, so the message is omitted).

use async_trait::async_trait;
use base64::Engine;
use chatkit::AppError;
use chatkit::store::{RequestContext, Store};
use chatkit::types::{
    Attachment, AttachmentKind, ItemKind, StructuredAnswer, StructuredInputItem, ThreadItem, UserMessageContent,
    UserMessageItem,
};
use serde_json::Value;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The user (also used for context the app injects).
    User,
    /// The model.
    Assistant,
}

/// One part of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentPart {
    /// User-side text.
    InputText(String),
    /// An image, as a `data:` URL (or an absolute URL).
    InputImage {
        /// `data:<mime>;base64,…` or `https://…`.
        url: String,
    },
    /// Assistant text.
    OutputText(String),
}

/// One conversation item sent to the model.
#[derive(Debug, Clone, PartialEq)]
pub enum InputItem {
    /// A message of `role`, in parts.
    #[allow(missing_docs)]
    Message { role: Role, content: Vec<ContentPart> },
    /// A function call the model made earlier, as it made it.
    FunctionCall {
        /// Pairs the call with its [`InputItem::FunctionCallOutput`].
        call_id: String,
        /// The tool called.
        name: String,
        /// The arguments as the model wrote them (JSON text).
        arguments: String,
        /// Opaque provider data replayed with the call (Gemini's call id and `thoughtSignature`).
        provider_data: Option<Value>,
    },
    /// An output item of the model's own, replayed exactly as it came within the run that produced
    /// it: OpenAI's reasoning items, and the assistant messages of a response with reasoning (the API
    /// wants a reasoning item followed by the very item, id and all, that followed it). Never stored
    /// with the thread, and skipped by providers that have no such items.
    Verbatim {
        /// The item as the provider sent it.
        item: Value,
    },
    /// The result of a function call.
    FunctionCallOutput {
        /// The [`InputItem::FunctionCall`] this answers.
        call_id: String,
        /// The tool's output as text (compact JSON or plain text).
        output: String,
    },
}

impl InputItem {
    /// A user message with one text part.
    pub fn user_text(text: impl Into<String>) -> Self {
        InputItem::Message { role: Role::User, content: vec![ContentPart::InputText(text.into())] }
    }

    /// An assistant message with one text part.
    pub fn assistant_text(text: impl Into<String>) -> Self {
        InputItem::Message { role: Role::Assistant, content: vec![ContentPart::OutputText(text.into())] }
    }

    /// A user message with a text part and an image.
    #[cfg(test)]
    pub(crate) fn user_text_and_image(text: &str, url: &str) -> Self {
        let content = vec![ContentPart::InputText(text.into()), ContentPart::InputImage { url: url.into() }];
        InputItem::Message { role: Role::User, content }
    }

    /// A function call the model made.
    #[cfg(test)]
    pub(crate) fn call(call_id: &str, name: &str, arguments: &str, provider_data: Option<Value>) -> Self {
        let (call_id, name, arguments) = (call_id.into(), name.into(), arguments.into());
        InputItem::FunctionCall { call_id, name, arguments, provider_data }
    }
}

/// Text of the quoted-text follow-up message.
const QUOTED_TEXT_PREFIX: &str = "The user is referring to this in particular: \n";
/// Prefix of the widget message (the widget JSON follows without a space).
const WIDGET_PREFIX: &str = "The following graphical UI widget (id: {id}) was displayed to the user:";
/// Header of the @-mention context message.
const TAG_CONTEXT_HEADER: &str = "# User-provided context for @-mentions\n- When referencing resolved entities, use their canonical names **without** '@'.\n- The '@' form appears only in user text and should not be echoed.";

/// The default wrapper of hidden context: `Hidden context for the agent (not shown to the user):\n<HiddenContext>\n…\n</HiddenContext>`.
pub fn hidden_context_text(content: &str) -> String {
    format!("Hidden context for the agent (not shown to the user):\n<HiddenContext>\n{content}\n</HiddenContext>")
}

/// Customization points of [`items_to_input`]; the defaults follow chatkit-python's converter, except for
/// the deviations the module docs list.
#[async_trait]
pub trait ConvertHooks: Send + Sync {
    /// Renders a `hidden_context_item`. Default: one user message with [`hidden_context_text`] of the
    /// string content (non-string content as compact JSON).
    async fn hidden_context(&self, _item: &ThreadItem, content: &Value) -> Result<Vec<InputItem>, AppError> {
        let text = match content {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Ok(vec![InputItem::user_text(hidden_context_text(&text))])
    }

    /// Renders one attachment of a user message. Default: images become an input image (bytes from
    /// the store as a data URL, else the preview URL); other files become a short text note.
    async fn attachment(
        &self,
        attachment: &Attachment,
        store: &dyn Store,
        ctx: &RequestContext,
    ) -> Result<Vec<ContentPart>, AppError> {
        if attachment.is_image() {
            return Ok(vec![image_part(attachment, store, ctx).await]);
        }
        Ok(vec![ContentPart::InputText(format!(
            "The user attached a file that cannot be read here: {} ({}).",
            attachment.name, attachment.mime_type
        ))])
    }

    /// Describes an @-mention tag (`id`, `text`, `data`) for the model; `None` adds nothing.
    fn tag(&self, _id: &str, _text: &str, _data: &serde_json::Map<String, Value>) -> Option<ContentPart> {
        None
    }
}

/// The conversion with every hook at its default.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultConvertHooks;

impl ConvertHooks for DefaultConvertHooks {}

/// An input image for an image attachment: `data:<mime>;base64,<bytes>` from the stored bytes
/// (mime falls back to `image/jpeg`), else the attachment's preview URL, else its id as text.
async fn image_part(attachment: &Attachment, store: &dyn Store, ctx: &RequestContext) -> ContentPart {
    match store.load_attachment_data(ctx, &attachment.id).await {
        Ok(Some(bytes)) => {
            let mime = if attachment.mime_type.trim().is_empty() { "image/jpeg" } else { attachment.mime_type.trim() };
            let data = base64::engine::general_purpose::STANDARD.encode(bytes);
            return ContentPart::InputImage { url: format!("data:{mime};base64,{data}") };
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(attachment_id = %attachment.id, error = %e, "could not read attachment bytes")
        }
    }
    match &attachment.kind {
        AttachmentKind::Image { preview_url } if !preview_url.is_empty() => {
            ContentPart::InputImage { url: preview_url.clone() }
        }
        _ => ContentPart::InputText(format!("[image attachment {} is not available]", attachment.id)),
    }
}

/// Converts stored thread items (oldest first) into model input.
pub async fn items_to_input(
    items: &[ThreadItem],
    store: &dyn Store,
    ctx: &RequestContext,
    hooks: &dyn ConvertHooks,
) -> Result<Vec<InputItem>, AppError> {
    let mut out = Vec::with_capacity(items.len() + 2);
    for (index, item) in items.iter().enumerate() {
        let is_last = index + 1 == items.len();
        match &item.kind {
            ItemKind::UserMessage(msg) => user_message(msg, is_last, store, ctx, hooks, &mut out).await?,
            ItemKind::AssistantMessage(msg) => {
                let content = msg.content.iter().map(|c| ContentPart::OutputText(c.text.clone())).collect();
                out.push(InputItem::Message { role: Role::Assistant, content });
            }
            ItemKind::ClientToolCall(call) => {
                if let Some(output) = call.output.as_ref().filter(|_| call_completed(call)) {
                    out.push(InputItem::FunctionCall {
                        call_id: call.call_id.clone(),
                        name: call.name.clone(),
                        arguments: call.arguments.to_string(),
                        provider_data: None,
                    });
                    out.push(InputItem::FunctionCallOutput {
                        call_id: call.call_id.clone(),
                        output: output.to_string(),
                    });
                }
            }
            ItemKind::Widget(w) => {
                let json = strip_nulls(&w.widget).to_string();
                out.push(InputItem::user_text(format!("{}{json}", WIDGET_PREFIX.replace("{id}", &item.id))));
            }
            ItemKind::Workflow(wf) => {
                if let Some(tasks) = wf.workflow.get("tasks").and_then(Value::as_array) {
                    out.extend(tasks.iter().filter_map(custom_task_message));
                }
            }
            ItemKind::Task(t) => out.extend(custom_task_message(&t.task)),
            ItemKind::StructuredInput(si) => out.push(InputItem::user_text(structured_input_text(si))),
            ItemKind::HiddenContextItem(h) => out.extend(hooks.hidden_context(item, &h.content).await?),
            ItemKind::SdkHiddenContext(h) => out.push(InputItem::user_text(hidden_context_text(&h.content))),
            ItemKind::GeneratedImage(g) => {
                if let Some(url) = g.image.as_ref().and_then(|i| i.get("url")).and_then(Value::as_str) {
                    out.push(InputItem::Message {
                        role: Role::User,
                        content: vec![
                            ContentPart::InputText("The following image was generated by the agent.".into()),
                            ContentPart::InputImage { url: url.to_string() },
                        ],
                    });
                }
            }
            ItemKind::EndOfTurn(_) => {}
        }
    }
    Ok(out)
}

fn call_completed(call: &chatkit::types::ClientToolCallItem) -> bool {
    call.status == chatkit::types::ClientToolCallStatus::Completed
}

async fn user_message(
    msg: &UserMessageItem,
    is_last: bool,
    store: &dyn Store,
    ctx: &RequestContext,
    hooks: &dyn ConvertHooks,
    out: &mut Vec<InputItem>,
) -> Result<(), AppError> {
    let mut content = vec![ContentPart::InputText(msg.text())];
    for attachment in &msg.attachments {
        content.extend(hooks.attachment(attachment, store, ctx).await?);
    }
    out.push(InputItem::Message { role: Role::User, content });
    if is_last && let Some(quoted) = msg.quoted_text.as_deref().filter(|q| !q.is_empty()) {
        out.push(InputItem::user_text(format!("{QUOTED_TEXT_PREFIX}{quoted}")));
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut tag_parts = Vec::new();
    for part in &msg.content {
        if let UserMessageContent::InputTag { id, text, data, .. } = part {
            if seen.contains(&text.as_str()) {
                continue;
            }
            seen.push(text);
            tag_parts.extend(hooks.tag(id, text, data));
        }
    }
    if !tag_parts.is_empty() {
        let mut content = vec![ContentPart::InputText(TAG_CONTEXT_HEADER.into())];
        content.extend(tag_parts);
        out.push(InputItem::Message { role: Role::User, content });
    }
    Ok(())
}

/// `A message was displayed to the user that the following task was performed:\n<Task>\n…\n</Task>`
/// for custom tasks with a title or content; `None` for other tasks.
fn custom_task_message(task: &Value) -> Option<InputItem> {
    if task.get("type").and_then(Value::as_str) != Some("custom") {
        return None;
    }
    let title = task.get("title").and_then(Value::as_str).filter(|s| !s.is_empty());
    let content = task.get("content").and_then(Value::as_str).filter(|s| !s.is_empty());
    let body = match (title, content) {
        (Some(t), Some(c)) => format!("{t}: {c}"),
        (Some(t), None) => t.to_string(),
        (None, Some(c)) => c.to_string(),
        (None, None) => return None,
    };
    Some(InputItem::user_text(format!(
        "A message was displayed to the user that the following task was performed:\n<Task>\n{body}\n</Task>"
    )))
}

fn structured_input_text(si: &StructuredInputItem) -> String {
    let status = serde_json::to_value(si.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let mut text = format!(
        "A structured input request was displayed to the user with the following status: {status}\n<StructuredInput>\n"
    );
    for q in &si.inputs {
        let answer = match &q.answer {
            Some(StructuredAnswer { skipped: true, .. }) => "skipped".to_string(),
            Some(StructuredAnswer { values, .. }) if !values.is_empty() => values.join(", "),
            _ => "unanswered".to_string(),
        };
        text.push_str(&format!("- {}: {answer}\n", q.question));
    }
    text.push_str("</StructuredInput>");
    text
}

/// A copy of `value` without `null` object members (widget JSON is sent with nulls omitted).
fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), strip_nulls(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}
