//! The script: rules that choose the mock model's reply from the last input item,
//! their serde (JSON file) format and builder helpers.
//!
//! A [`Script`] is plain data. The server wraps it in a [`LoadedScript`] that adds one
//! thread-safe match counter per rule (for [`Rule::times`]) and picks the reply for a
//! request through [`LoadedScript::choose`].

use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::presets::Preset;

/// Transcript returned by the transcription endpoints when the script sets none.
pub const DEFAULT_TRANSCRIPT: &str = "I'd like to change my seat on flight OA476.";

/// Maximum number of characters of a tool output quoted by `{tool_output}`.
const TOOL_OUTPUT_QUOTE_CHARS: usize = 200;

/// What the mock model does: ordered rules, fallbacks, timing and the transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Script {
    /// Rules tried in order; the first that matches (and has matches left) wins.
    pub rules: Vec<Rule>,
    /// Reply when no rule matches and the last input item is a user message.
    /// Default: text `Mock reply: {user_text}`.
    pub default_reply: Reply,
    /// Reply when no rule matches and the last input item is a tool output.
    /// Default: text `Done: {tool_output}`.
    pub after_tool_reply: Reply,
    /// Delay before each text delta after the first, in milliseconds (0 = no timer at all).
    pub delta_delay_ms: u64,
    /// Text returned by `/v1/audio/transcriptions` and by Gemini audio requests.
    pub transcript: String,
    /// Whether `mock:` directives in the last user text are honoured (see the crate doc).
    pub directives: bool,
    /// Whether tool-call history is checked like the real APIs do (OpenAI: each
    /// `function_call_output` needs its `function_call`; Gemini: the first `functionCall`
    /// part of a model turn needs its `thoughtSignature`; Chat Completions: each `tool` message
    /// answers a `tool_calls` entry of an earlier assistant message); a failed check answers 400.
    pub validate_input: bool,
    /// How the Chat Completions dialect behaves (the other dialects ignore it).
    pub chat: ChatDialect,
}

/// The behaviours of `POST /v1/chat/completions` that other dialects have no counterpart for, to
/// imitate the differences between real Chat Completions servers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatDialect {
    /// Answer 400 to a request carrying `stream_options`, as some servers do.
    pub reject_stream_options: bool,
    /// Reasoning streamed (one chunk per word) before every answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Send the reasoning in `delta.reasoning` (OpenRouter, Ollama) rather than
    /// `delta.reasoning_content` (DeepSeek, vLLM, llama.cpp).
    pub reasoning_in_reasoning_field: bool,
    /// The `finish_reason` of every answer instead of `stop` / `tool_calls` (e.g. `length`,
    /// `content_filter`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Refuse every request that carries `tools` as this server does when the model (or the
    /// server's setup) cannot call tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools_unsupported: Option<NoToolsServer>,
}

/// A server whose refusal of `tools` the mock imitates, status and body as that server sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoToolsServer {
    /// Ollama with a model whose template has no tools: 400, "… does not support tools".
    Ollama,
    /// llama.cpp's server started without `--jinja` templates: 500, "tools param requires --jinja flag".
    LlamaCpp,
    /// vLLM started without a tool-call parser: 400, top-level error object.
    Vllm,
    /// OpenRouter with no provider of the model that takes tools: 404.
    Openrouter,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            rules: Vec::new(),
            default_reply: Reply::text("Mock reply: {user_text}"),
            after_tool_reply: Reply::text("Done: {tool_output}"),
            delta_delay_ms: 0,
            transcript: DEFAULT_TRANSCRIPT.to_owned(),
            directives: true,
            validate_input: true,
            chat: ChatDialect::default(),
        }
    }
}

/// Error reading a script file.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The file could not be read.
    #[error("cannot read script {path}: {source}")]
    Io {
        /// Path of the file.
        path: String,
        /// Why the file could not be read.
        source: std::io::Error,
    },
    /// The JSON is not a valid script.
    #[error("invalid script JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl Script {
    /// An empty script: default replies only.
    pub fn new() -> Self {
        Script::default()
    }

    /// Parses a script from JSON text.
    pub fn from_json_str(text: &str) -> Result<Self, ScriptError> {
        Ok(serde_json::from_str(text)?)
    }

    /// Reads and parses a script JSON file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self, ScriptError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScriptError::Io { path: path.display().to_string(), source })?;
        Self::from_json_str(&text)
    }

    /// Appends a rule.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Appends a rule matching `when` with `reply`, unlimited.
    pub fn on(self, when: Match, reply: Reply) -> Self {
        self.rule(Rule::new(when, reply))
    }

    /// Sets the default reply for user messages.
    pub fn default_reply(mut self, reply: Reply) -> Self {
        self.default_reply = reply;
        self
    }

    /// Sets the default reply after a tool output.
    pub fn after_tool_reply(mut self, reply: Reply) -> Self {
        self.after_tool_reply = reply;
        self
    }

    /// Sets the per-delta delay.
    pub fn delta_delay_ms(mut self, ms: u64) -> Self {
        self.delta_delay_ms = ms;
        self
    }

    /// Sets the transcript.
    pub fn transcript(mut self, text: impl Into<String>) -> Self {
        self.transcript = text.into();
        self
    }

    /// Enables or disables the tool-call history checks.
    pub fn validate_input(mut self, enabled: bool) -> Self {
        self.validate_input = enabled;
        self
    }

    /// Sets the Chat Completions behaviours.
    pub fn chat(mut self, chat: ChatDialect) -> Self {
        self.chat = chat;
        self
    }

    /// Enables or disables `mock:` directives.
    pub fn directives(mut self, enabled: bool) -> Self {
        self.directives = enabled;
        self
    }
}

/// One scripted behaviour: when `when` matches, answer `reply` (at most `times` times).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Condition on the request's input.
    pub when: Match,
    /// Reply to send.
    pub reply: Reply,
    /// Only the first N matches use this rule (None = unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

impl Rule {
    /// A rule without a match limit.
    pub fn new(when: Match, reply: Reply) -> Self {
        Rule { when, reply, times: None }
    }

    /// Limits the rule to its first `n` matches.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
}

/// A condition on the request input. Text comparisons are ASCII case-insensitive.
///
/// JSON: `"any"`, `"after_tool_output"`, `{"user_text_contains": "seat"}`,
/// `{"tool_output_contains": "Seat updated"}`, `{"assistant_text_contains": "confirm"}`,
/// `{"all_of": [ … ]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// Always matches.
    Any,
    /// The last input item is a user message whose text contains this.
    UserTextContains(String),
    /// The last input item is a tool output (OpenAI `function_call_output`, Gemini
    /// `functionResponse`) containing this.
    ToolOutputContains(String),
    /// The last input item is a tool output.
    AfterToolOutput,
    /// The last assistant message of the input (any position) contains this.
    AssistantTextContains(String),
    /// Every condition matches.
    AllOf(Vec<Match>),
}

impl Match {
    /// Shorthand for [`Match::UserTextContains`].
    pub fn user_text(text: impl Into<String>) -> Self {
        Match::UserTextContains(text.into())
    }

    /// Shorthand for [`Match::ToolOutputContains`].
    pub fn tool_output(text: impl Into<String>) -> Self {
        Match::ToolOutputContains(text.into())
    }

    /// Shorthand for [`Match::AssistantTextContains`].
    pub fn assistant_text(text: impl Into<String>) -> Self {
        Match::AssistantTextContains(text.into())
    }

    /// Whether this condition holds for `input`.
    pub(crate) fn matches(&self, input: &InputSummary) -> bool {
        match self {
            Match::Any => true,
            Match::UserTextContains(needle) => {
                input.tool_output.is_none() && input.user_text.as_deref().is_some_and(|t| contains_ci(t, needle))
            }
            Match::ToolOutputContains(needle) => input.tool_output.as_deref().is_some_and(|t| contains_ci(t, needle)),
            Match::AfterToolOutput => input.tool_output.is_some(),
            Match::AssistantTextContains(needle) => {
                input.assistant_text.as_deref().is_some_and(|t| contains_ci(t, needle))
            }
            Match::AllOf(all) => all.iter().all(|m| m.matches(input)),
        }
    }
}

/// ASCII case-insensitive substring test.
fn contains_ci(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return true;
    }
    h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// What the mock model answers. JSON: internally tagged by `kind`, e.g.
/// `{"kind": "text", "text": "Hello"}`.
///
/// In `text` fields, `{user_text}` is replaced by the last user text and `{tool_output}` by
/// the last tool output (first 200 characters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// A text message streamed as one delta per word.
    Text {
        /// The message; `{user_text}` and `{tool_output}` are filled in.
        text: String,
    },
    /// An optional text message, then one function call per entry (unique ids each time).
    ToolCalls {
        /// Text message sent before the calls.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// The calls, in order; each gets fresh ids every time the rule answers.
        calls: Vec<ToolCallSpec>,
    },
    /// A non-200 HTTP answer with this JSON body (and `Retry-After` if set).
    HttpError {
        /// The status to answer with (e.g. 429, 503).
        status: u16,
        /// JSON body (the provider's error shape if `null`).
        #[serde(default)]
        body: Value,
        /// `Retry-After` header, in seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// Streams the first `deltas` text deltas of `text`, then aborts the connection.
    CutAfter {
        /// The message text (empty = the default reply's text).
        text: String,
        /// Number of deltas sent before the cut.
        deltas: usize,
    },
    /// Streams `after_deltas` deltas, sends nothing for `stall_ms`, then finishes normally.
    Stall {
        /// The message text (empty = the default reply's text).
        text: String,
        /// Number of deltas sent before the stall.
        after_deltas: usize,
        /// Length of the stall in milliseconds.
        stall_ms: u64,
    },
    /// A failure inside a 200 stream: OpenAI `response.failed`, Gemini an `error` chunk.
    StreamError {
        /// What the failure says, in the provider's error shape.
        message: String,
    },
    /// A failure of the real APIs, by name (see [`Preset`]): `{"kind": "preset", "name": "rate_limit"}`.
    Preset {
        /// Which failure.
        name: Preset,
    },
    /// Reasoning before another reply: OpenAI streams a reasoning item with these summary parts
    /// (none: a reasoning item with an empty summary) and an `encrypted_content` the next request of
    /// the run must hand back directly followed by the item that followed it (else 400, as the real
    /// API answers); Gemini streams the parts as `thought: true` parts. JSON:
    /// `{"kind": "reasoned", "summary": ["…"], "then": {"kind": "text", "text": "…"}}`.
    Reasoned {
        /// The summary parts, in order.
        summary: Vec<String>,
        /// The reply after the reasoning.
        then: Box<Reply>,
    },
}

impl Reply {
    /// A text reply.
    pub fn text(text: impl Into<String>) -> Self {
        Reply::Text { text: text.into() }
    }

    /// A single function call with no text before it.
    pub fn tool_call(name: impl Into<String>, arguments: Value) -> Self {
        Reply::ToolCalls { text: None, calls: vec![ToolCallSpec::new(name, arguments)] }
    }

    /// Several function calls with an optional text before them.
    pub fn tool_calls(text: Option<String>, calls: Vec<ToolCallSpec>) -> Self {
        Reply::ToolCalls { text, calls }
    }

    /// An HTTP error with the provider's default error body.
    pub fn http_error(status: u16, retry_after: Option<u64>) -> Self {
        Reply::HttpError { status, body: Value::Null, retry_after }
    }

    /// A stream cut after `deltas` deltas.
    pub fn cut_after(text: impl Into<String>, deltas: usize) -> Self {
        Reply::CutAfter { text: text.into(), deltas }
    }

    /// A stall of `stall_ms` after `after_deltas` deltas.
    pub fn stall(text: impl Into<String>, after_deltas: usize, stall_ms: u64) -> Self {
        Reply::Stall { text: text.into(), after_deltas, stall_ms }
    }

    /// An in-stream failure.
    pub fn stream_error(message: impl Into<String>) -> Self {
        Reply::StreamError { message: message.into() }
    }

    /// The real APIs' answer for `preset`.
    pub fn preset(preset: Preset) -> Self {
        Reply::Preset { name: preset }
    }

    /// `then`, preceded by reasoning with these summary parts.
    pub fn reasoned(summary: &[&str], then: Reply) -> Self {
        Reply::Reasoned { summary: summary.iter().map(|p| p.to_string()).collect(), then: Box::new(then) }
    }
}

/// One function call the mock model makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCallSpec {
    /// Tool (function) name.
    pub name: String,
    /// Arguments object (sent as a JSON string to OpenAI, as an object to Gemini).
    #[serde(default = "empty_object")]
    pub arguments: Value,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl ToolCallSpec {
    /// A call of `name` with `arguments`.
    pub fn new(name: impl Into<String>, arguments: Value) -> Self {
        ToolCallSpec { name: name.into(), arguments }
    }
}

/// What the rules look at, extracted from a request body.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct InputSummary {
    /// Text of the last user message (None if the input has none).
    pub(crate) user_text: Option<String>,
    /// Output of the tool(s) if the last input item is a tool output.
    pub(crate) tool_output: Option<String>,
    /// Text of the last assistant message of the input.
    pub(crate) assistant_text: Option<String>,
}

/// A script plus per-rule match counters; shared by the server's request handlers.
#[derive(Debug)]
pub(crate) struct LoadedScript {
    /// The script as loaded.
    pub(crate) script: Script,
    counters: Vec<AtomicU32>,
}

impl LoadedScript {
    /// Wraps `script` with fresh counters.
    pub(crate) fn new(script: Script) -> Self {
        let counters = script.rules.iter().map(|_| AtomicU32::new(0)).collect();
        LoadedScript { script, counters }
    }

    /// The reply for `input`: the first matching rule with matches left, else the default.
    pub(crate) fn choose(&self, input: &InputSummary) -> &Reply {
        for (rule, counter) in self.script.rules.iter().zip(&self.counters) {
            if !rule.when.matches(input) {
                continue;
            }
            match rule.times {
                None => return &rule.reply,
                Some(limit) => {
                    let took = counter
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1))
                        .is_ok();
                    if took {
                        return &rule.reply;
                    }
                }
            }
        }
        if input.tool_output.is_some() { &self.script.after_tool_reply } else { &self.script.default_reply }
    }
}

/// Replaces `{user_text}` and `{tool_output}` in `template`.
pub(crate) fn render_text(template: &str, input: &InputSummary) -> String {
    if !template.contains('{') {
        return template.to_owned();
    }
    let mut out = template.replace("{user_text}", input.user_text.as_deref().unwrap_or(""));
    if out.contains("{tool_output}") {
        let output = input.tool_output.as_deref().unwrap_or("");
        let quoted = match output.char_indices().nth(TOOL_OUTPUT_QUOTE_CHARS) {
            Some((cut, _)) => &output[..cut],
            None => output,
        };
        out = out.replace("{tool_output}", quoted);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// An input whose last item is a user message with `text`.
    pub(crate) fn user(text: &str) -> InputSummary {
        InputSummary { user_text: Some(text.to_owned()), ..Default::default() }
    }

    #[test]
    fn json_format_round_trips() {
        let text = r#"{
          "rules": [
            {"when": {"user_text_contains": "seat"}, "reply": {"kind": "tool_calls", "calls": [{"name": "change_seat", "arguments": {"seat": "14C"}}]}, "times": 1},
            {"when": "after_tool_output", "reply": {"kind": "text", "text": "ok {tool_output}"}},
            {"when": {"all_of": [{"user_text_contains": "yes"}, {"assistant_text_contains": "cancel"}]}, "reply": {"kind": "http_error", "status": 429, "retry_after": 2}}
          ],
          "delta_delay_ms": 5
        }"#;
        let script = Script::from_json_str(text).unwrap();
        assert_eq!(script.rules.len(), 3);
        assert_eq!(
            script.rules[0],
            Rule::new(Match::user_text("seat"), Reply::tool_call("change_seat", json!({"seat": "14C"}))).times(1)
        );
        assert_eq!(script.rules[2].reply, Reply::http_error(429, Some(2)));
        assert_eq!(script.delta_delay_ms, 5);
        assert_eq!(script.transcript, DEFAULT_TRANSCRIPT);
        let back = serde_json::to_string(&script).unwrap();
        assert_eq!(Script::from_json_str(&back).unwrap(), script);
    }

    #[test]
    fn times_limits_matches_then_falls_back() {
        let loaded =
            LoadedScript::new(Script::new().rule(Rule::new(Match::user_text("HELLO"), Reply::text("hi")).times(2)));
        let input = user("well, hello there");
        assert_eq!(loaded.choose(&input), &Reply::text("hi"));
        assert_eq!(loaded.choose(&input), &Reply::text("hi"));
        assert_eq!(loaded.choose(&input), &Reply::text("Mock reply: {user_text}"));
    }

    #[test]
    fn tool_output_rules_and_default() {
        let loaded = LoadedScript::new(Script::new().on(Match::tool_output("updated"), Reply::text("updated!")));
        let mut input = user("seat");
        input.tool_output = Some("{\"result\":\"Seat updated\"}".into());
        assert_eq!(loaded.choose(&input), &Reply::text("updated!"));
        input.tool_output = Some("other".into());
        assert_eq!(loaded.choose(&input), &Reply::text("Done: {tool_output}"));
        // A user-text rule never matches when the last item is a tool output.
        assert!(!Match::user_text("seat").matches(&input));
    }

    #[test]
    fn render_quotes_and_truncates() {
        let mut input = user("hi");
        input.tool_output = Some("é".repeat(300));
        let out = render_text("Done: {tool_output}", &input);
        assert_eq!(out.chars().count(), 6 + 200);
        assert_eq!(render_text("Mock reply: {user_text}", &input), "Mock reply: hi");
        assert_eq!(render_text("plain", &input), "plain");
    }
}
