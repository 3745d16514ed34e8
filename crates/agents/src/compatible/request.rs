//! The Chat Completions request body, serialized straight from the [`ModelRequest`]: the instructions
//! as the system message, the conversation as `user` / `assistant` / `tool` messages (function calls
//! become the `tool_calls` of an assistant message), the tools as `function` tools.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::input::{ContentPart, InputItem, Role};
use crate::provider::{ModelRequest, ToolSpec, f32_to_f64};

/// The request body. `stream_options` asks for the usage chunk; it is left out for servers that
/// reject it.
pub(crate) struct Body<'a> {
    pub(crate) model: &'a str,
    pub(crate) request: &'a ModelRequest,
    pub(crate) include_usage: bool,
    pub(crate) max_tokens: Option<u32>,
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("model", self.model)?;
        m.serialize_entry("messages", &Messages(self.request))?;
        if !self.request.tools.is_empty() {
            m.serialize_entry("tools", &Tools(&self.request.tools))?;
        }
        if let Some(t) = self.request.temperature {
            m.serialize_entry("temperature", &f32_to_f64(t))?;
        }
        if let Some(max) = self.max_tokens {
            m.serialize_entry("max_tokens", &max)?;
        }
        m.serialize_entry("stream", &true)?;
        if self.include_usage {
            m.serialize_entry("stream_options", &IncludeUsage)?;
        }
        m.end()
    }
}

struct IncludeUsage;

impl Serialize for IncludeUsage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("include_usage", &true)?;
        m.end()
    }
}

struct Tools<'a>(&'a [ToolSpec]);

impl Serialize for Tools<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(Tool))
    }
}

/// `{"type":"function","function":{name, description, parameters}}`. No `strict`: many servers
/// reject or ignore it, and the schemas are valid JSON Schema without it.
struct Tool<'a>(&'a ToolSpec);

impl Serialize for Tool<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("type", "function")?;
        m.serialize_entry("function", &Function(self.0))?;
        m.end()
    }
}

struct Function<'a>(&'a ToolSpec);

impl Serialize for Function<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("name", &self.0.name)?;
        m.serialize_entry("description", &self.0.description)?;
        m.serialize_entry("parameters", &self.0.parameters)?;
        m.end()
    }
}

/// One Chat Completions message, borrowing from the request.
enum Message<'a> {
    System(&'a str),
    User(&'a [ContentPart]),
    /// Assistant text (maybe none) and the calls it made.
    Assistant {
        text: Option<&'a [ContentPart]>,
        calls: Vec<Call<'a>>,
    },
    Tool {
        call_id: &'a str,
        output: &'a str,
    },
}

struct Call<'a> {
    id: &'a str,
    name: &'a str,
    arguments: &'a str,
    /// The `extra_content` the server gave the call (Gemini's thought signature), sent back as it came.
    extra: Option<&'a Value>,
}

/// Groups the input items into messages: consecutive function calls join the assistant message
/// just before them (or a new one without text), as Chat Completions expects them.
fn messages(request: &ModelRequest) -> Vec<Message<'_>> {
    let mut out = Vec::with_capacity(request.input.len() + 1);
    if !request.instructions.is_empty() {
        out.push(Message::System(&request.instructions));
    }
    for item in &request.input {
        match item {
            InputItem::Message { role: Role::User, content } => out.push(Message::User(content)),
            InputItem::Message { role: Role::Assistant, content } => {
                out.push(Message::Assistant { text: Some(content), calls: Vec::new() })
            }
            InputItem::FunctionCall { call_id, name, arguments, provider_data } => {
                let extra = provider_data.as_ref().and_then(|d| d.get("extra_content"));
                let call = Call { id: call_id, name, arguments, extra };
                match out.last_mut() {
                    Some(Message::Assistant { calls, .. }) => calls.push(call),
                    _ => out.push(Message::Assistant { text: None, calls: vec![call] }),
                }
            }
            InputItem::FunctionCallOutput { call_id, output } => out.push(Message::Tool { call_id, output }),
            // Responses API output items have no Chat Completions form (only OpenAI produces
            // them); the servers keep no reasoning state between calls anyway.
            InputItem::Verbatim { .. } => {}
        }
    }
    out
}

struct Messages<'a>(&'a ModelRequest);

impl Serialize for Messages<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(messages(self.0))
    }
}

impl Serialize for Message<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self {
            Message::System(text) => {
                m.serialize_entry("role", "system")?;
                m.serialize_entry("content", text)?;
            }
            Message::User(parts) => {
                m.serialize_entry("role", "user")?;
                m.serialize_entry("content", &Content(parts))?;
            }
            Message::Assistant { text, calls } => {
                m.serialize_entry("role", "assistant")?;
                // Servers differ on `null` content; an empty string is accepted everywhere.
                m.serialize_entry("content", &text.map(joined_text).unwrap_or_default())?;
                if !calls.is_empty() {
                    m.serialize_entry("tool_calls", calls)?;
                }
            }
            Message::Tool { call_id, output } => {
                m.serialize_entry("role", "tool")?;
                m.serialize_entry("tool_call_id", call_id)?;
                m.serialize_entry("content", output)?;
            }
        }
        m.end()
    }
}

impl Serialize for Call<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Fn<'a>(&'a Call<'a>);
        impl Serialize for Fn<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("name", self.0.name)?;
                m.serialize_entry("arguments", self.0.arguments)?;
                m.end()
            }
        }
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", self.id)?;
        m.serialize_entry("type", "function")?;
        m.serialize_entry("function", &Fn(self))?;
        if let Some(extra) = self.extra {
            m.serialize_entry("extra_content", extra)?;
        }
        m.end()
    }
}

/// The text parts of a message, one per line.
fn joined_text(parts: &[ContentPart]) -> String {
    let texts = parts.iter().filter_map(|p| match p {
        ContentPart::InputText(t) | ContentPart::OutputText(t) => Some(t.as_str()),
        ContentPart::InputImage { .. } => None,
    });
    texts.collect::<Vec<_>>().join("\n")
}

/// User content: a plain string when it is only text (what every server accepts, including those
/// whose chat templates cannot read part lists), else `text` and `image_url` parts.
struct Content<'a>(&'a [ContentPart]);

impl Serialize for Content<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let has_image = self.0.iter().any(|p| matches!(p, ContentPart::InputImage { .. }));
        if !has_image {
            return s.serialize_str(&joined_text(self.0));
        }
        s.collect_seq(self.0.iter().map(Part))
    }
}

struct Part<'a>(&'a ContentPart);

impl Serialize for Part<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct ImageUrl<'a>(&'a str);
        impl Serialize for ImageUrl<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("url", self.0)?;
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(2))?;
        match self.0 {
            ContentPart::InputText(text) | ContentPart::OutputText(text) => {
                m.serialize_entry("type", "text")?;
                m.serialize_entry("text", text)?;
            }
            ContentPart::InputImage { url } => {
                m.serialize_entry("type", "image_url")?;
                m.serialize_entry("image_url", &ImageUrl(url))?;
            }
        }
        m.end()
    }
}
