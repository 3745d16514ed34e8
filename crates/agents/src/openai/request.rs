//! The Responses request body, serialized straight from the [`ModelRequest`] (no intermediate JSON
//! tree), with the parts every call of an agent shares encoded once.

use std::sync::Arc;

use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::input::{ContentPart, InputItem, Role};
use crate::provider::{ModelRequest, ToolSpec, f32_to_f64};
use crate::reasoning::Reasoning;

/// The request body, with the keys in the order the Python sample sends them (the unit tests compare
/// it with the same body built as a JSON value). `reasoning` comes last and only when a reasoning
/// setting is made, so the default body is unchanged.
#[derive(Serialize)]
pub(crate) struct Body<'a> {
    include: &'static [&'static str],
    model: &'a str,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    instructions: &'a RawValue,
    input: WireInput<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<Value>,
}

/// What `include` asks for when reasoning is on: the encrypted reasoning, so the reasoning items can be
/// handed back within a run without relying on anything stored at OpenAI.
const INCLUDE_REASONING: &[&str] = &["reasoning.encrypted_content"];

impl<'a> Body<'a> {
    /// The body of `request`, whose instructions and tools are already encoded in `fixed`.
    pub(crate) fn new(model: &'a str, request: &'a ModelRequest, fixed: &'a FixedParts, reasoning: &Reasoning) -> Self {
        let reasoning = reasoning.openai_object();
        Body {
            include: if reasoning.is_some() { INCLUDE_REASONING } else { &[] },
            model,
            stream: true,
            temperature: request.temperature.map(f32_to_f64),
            instructions: &fixed.instructions_json,
            input: WireInput::new(&request.input),
            tools: fixed.tools_json.as_deref(),
            reasoning,
        }
    }
}

/// The parts of a request body that are the same on every call of an agent (the instructions and the
/// tool schemas, ~6 KB for the support agent), encoded once: re-encoding them was ~6% of a turn's
/// instructions.
#[derive(Debug)]
pub(crate) struct FixedParts {
    instructions: String,
    tools: Arc<[ToolSpec]>,
    instructions_json: Box<RawValue>,
    /// `None` when there are no tools (the key is then left out).
    tools_json: Option<Box<RawValue>>,
}

impl FixedParts {
    /// Encodes the instructions and tools of `request`.
    pub(crate) fn of(request: &ModelRequest) -> serde_json::Result<Self> {
        let instructions_json = serde_json::value::to_raw_value(&request.instructions)?;
        let tools_json = if request.tools.is_empty() {
            None
        } else {
            let wire: Vec<WireTool<'_>> = request
                .tools
                .iter()
                .map(|t| WireTool {
                    kind: "function",
                    name: &t.name,
                    description: &t.description,
                    parameters: &t.parameters,
                    strict: true,
                })
                .collect();
            Some(serde_json::value::to_raw_value(&wire)?)
        };
        Ok(FixedParts {
            instructions: request.instructions.clone(),
            tools: request.tools.clone(),
            instructions_json,
            tools_json,
        })
    }

    /// Whether these are the instructions and tools of `request` (comparing is much cheaper than
    /// encoding; the calls of one run share their tool list, so most comparisons are by identity).
    pub(crate) fn matches(&self, request: &ModelRequest) -> bool {
        self.instructions == request.instructions
            && (Arc::ptr_eq(&self.tools, &request.tools) || *self.tools == *request.tools)
    }
}

/// The input items. When they hold reasoning items, function calls carry their item `id` too (as the
/// Agents SDK sends them), since a reasoning item must come back with the call that followed it;
/// without reasoning the calls are sent as before.
struct WireInput<'a> {
    items: &'a [InputItem],
    with_ids: bool,
}

impl<'a> WireInput<'a> {
    fn new(items: &'a [InputItem]) -> Self {
        WireInput { items, with_ids: items.iter().any(|i| matches!(i, InputItem::Verbatim { .. })) }
    }
}

impl Serialize for WireInput<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.items.iter().map(|item| WireItem { item, with_ids: self.with_ids }))
    }
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
    strict: bool,
}

/// One input item in the Responses wire format.
struct WireItem<'a> {
    item: &'a InputItem,
    with_ids: bool,
}

impl Serialize for WireItem<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.item {
            InputItem::Message { role, content } => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("type", "message")?;
                m.serialize_entry(
                    "role",
                    match role {
                        Role::User => "user",
                        Role::Assistant => "assistant",
                    },
                )?;
                m.serialize_entry("content", &WireParts(content))?;
                m.end()
            }
            InputItem::FunctionCall { call_id, name, arguments, provider_data } => {
                let id = provider_data.as_ref().and_then(|d| d.get("id")).filter(|_| self.with_ids);
                let mut m = s.serialize_map(Some(5))?;
                if let Some(id) = id {
                    m.serialize_entry("id", id)?;
                }
                m.serialize_entry("type", "function_call")?;
                m.serialize_entry("call_id", call_id)?;
                m.serialize_entry("name", name)?;
                m.serialize_entry("arguments", arguments)?;
                m.end()
            }
            InputItem::Verbatim { item } => item.serialize(s),
            InputItem::FunctionCallOutput { call_id, output } => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("type", "function_call_output")?;
                m.serialize_entry("call_id", call_id)?;
                m.serialize_entry("output", output)?;
                m.end()
            }
        }
    }
}

struct WireParts<'a>(&'a [ContentPart]);

impl Serialize for WireParts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(WirePart))
    }
}

struct WirePart<'a>(&'a ContentPart);

impl Serialize for WirePart<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.0 {
            ContentPart::InputText(text) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("type", "input_text")?;
                m.serialize_entry("text", text)?;
                m.end()
            }
            ContentPart::InputImage { url } => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("type", "input_image")?;
                m.serialize_entry("image_url", url)?;
                m.serialize_entry("detail", "auto")?;
                m.end()
            }
            ContentPart::OutputText(text) => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("type", "output_text")?;
                m.serialize_entry("text", text)?;
                m.serialize_entry("annotations", &[(); 0])?;
                m.end()
            }
        }
    }
}
