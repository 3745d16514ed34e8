//! Turning a request into a concrete plan: `mock:` directives in the user text, then the
//! script's rules, then the defaults; placeholders rendered; word deltas computed.

use std::time::Duration;

use serde_json::Value;

use crate::presets::Preset;
use crate::script::{InputSummary, LoadedScript, Reply, ToolCallSpec, render_text};

/// What one response does, independent of the provider's wire format.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// A streamed answer: an optional text message, then function calls.
    Answer(Answer),
    /// A non-200 HTTP answer.
    HttpError {
        /// The status to answer with.
        status: u16,
        /// Body (`Null` = the provider's default error body).
        body: Value,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// A failure of the real APIs, answered in the form of the API asked.
    Preset(Preset),
    /// A failure reported inside a 200 stream.
    StreamError {
        /// What the failure says, in the provider's error shape.
        message: String,
    },
}

/// A streamed answer and its timing.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Answer {
    /// Reasoning streamed before everything else, with these summary parts (OpenAI: a reasoning
    /// item with its `encrypted_content`, whose summary may be empty; Gemini: `thought: true`
    /// parts). `None`: no reasoning.
    pub(crate) reasoning: Option<Vec<String>>,
    /// Text message (already rendered), if any.
    pub(crate) text: Option<String>,
    /// Function calls after the text.
    pub(crate) calls: Vec<ToolCallSpec>,
    /// Pause before each delta after the first.
    pub(crate) delta_delay: Duration,
    /// Abort the connection after this many deltas.
    pub(crate) cut_after: Option<usize>,
    /// Pause of this length after this many deltas.
    pub(crate) stall: Option<(usize, Duration)>,
}

/// Chooses and renders the plan for a request.
pub(crate) fn resolve(loaded: &LoadedScript, input: &InputSummary) -> Plan {
    let script = &loaded.script;
    let mut delay_ms = script.delta_delay_ms;
    let mut directed: Option<Reply> = None;
    let mut reasoning = None;
    if script.directives
        && input.tool_output.is_none()
        && let Some(text) = input.user_text.as_deref()
        && text.contains("mock:")
    {
        let parsed = parse_directives(text);
        if let Some(ms) = parsed.delay_ms {
            delay_ms = ms;
        }
        directed = parsed.reply;
        reasoning = parsed.reasoning;
    }
    let mut reply = match &directed {
        Some(reply) => reply,
        None => loaded.choose(input),
    };
    if let Reply::Reasoned { summary, then } = reply {
        reasoning = Some(summary.clone());
        reply = then;
    }
    let mut plan = answer_plan(reply, input, script, delay_ms);
    if let Plan::Answer(answer) = &mut plan {
        answer.reasoning = reasoning;
    }
    plan
}

/// The plan of a reply that is not [`Reply::Reasoned`].
fn answer_plan(reply: &Reply, input: &InputSummary, script: &crate::script::Script, delay_ms: u64) -> Plan {
    let default_text = || match &script.default_reply {
        Reply::Text { text } => render_text(text, input),
        _ => render_text("Mock reply: {user_text}", input),
    };
    let delta_delay = Duration::from_millis(delay_ms);
    match reply {
        Reply::Text { text } => {
            Plan::Answer(Answer { text: Some(render_text(text, input)), delta_delay, ..Answer::default() })
        }
        Reply::ToolCalls { text, calls } => Plan::Answer(Answer {
            text: text.as_deref().map(|t| render_text(t, input)),
            calls: calls.clone(),
            delta_delay,
            ..Answer::default()
        }),
        Reply::HttpError { status, body, retry_after } => {
            Plan::HttpError { status: *status, body: body.clone(), retry_after: *retry_after }
        }
        Reply::CutAfter { text, deltas } => Plan::Answer(Answer {
            text: Some(if text.is_empty() { default_text() } else { render_text(text, input) }),
            delta_delay,
            cut_after: Some(*deltas),
            ..Answer::default()
        }),
        Reply::Stall { text, after_deltas, stall_ms } => Plan::Answer(Answer {
            text: Some(if text.is_empty() { default_text() } else { render_text(text, input) }),
            delta_delay,
            stall: Some((*after_deltas, Duration::from_millis(*stall_ms))),
            ..Answer::default()
        }),
        Reply::StreamError { message } => Plan::StreamError { message: message.clone() },
        Reply::Preset { name } => Plan::Preset(*name),
        // Nested reasoning: the inner reply (its reasoning is the outer one's).
        Reply::Reasoned { then, .. } => answer_plan(then, input, script, delay_ms),
    }
}

/// Directives found in a user text.
#[derive(Debug, Default, PartialEq)]
struct Directives {
    reply: Option<Reply>,
    delay_ms: Option<u64>,
    /// `mock:think part one | part two`: reasoning summary parts before the reply (`mock:think`
    /// alone: reasoning without a summary).
    reasoning: Option<Vec<String>>,
}

/// Parses `mock:<command> <args…>` directives; each takes the rest of its line.
fn parse_directives(text: &str) -> Directives {
    let mut out = Directives::default();
    let mut calls: Vec<ToolCallSpec> = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(pos) = rest.find("mock:") {
            let at_word_start = pos == 0 || rest[..pos].ends_with(char::is_whitespace);
            let after = &rest[pos + 5..];
            rest = after;
            if !at_word_start {
                continue;
            }
            let (command, args) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
            let args = args.trim();
            let mut nums = args.split_whitespace().map(str::parse::<u64>);
            let mut num = || nums.next().and_then(Result::ok);
            match command {
                "text" => out.reply = Some(Reply::text(args)),
                "tool" => {
                    let (name, json) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
                    let arguments =
                        serde_json::from_str(json.trim()).unwrap_or_else(|_| Value::Object(serde_json::Map::new()));
                    calls.push(ToolCallSpec::new(name, arguments));
                }
                "error" => {
                    let status = num().and_then(|s| u16::try_from(s).ok()).unwrap_or(500);
                    out.reply = Some(Reply::http_error(status, num()));
                }
                "cut" => out.reply = Some(Reply::cut_after("", num().unwrap_or(1) as usize)),
                "stall" => {
                    let after = num().unwrap_or(1) as usize;
                    out.reply = Some(Reply::stall("", after, num().unwrap_or(5_000)));
                }
                "delay" => out.delay_ms = num(),
                "think" => {
                    out.reasoning =
                        Some(args.split('|').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect());
                }
                "preset" => match Preset::from_name(args) {
                    Some(preset) => out.reply = Some(Reply::preset(preset)),
                    None => continue,
                },
                "fail" => {
                    let message = if args.is_empty() { "The model failed (mock)." } else { args };
                    out.reply = Some(Reply::stream_error(message));
                }
                _ => continue,
            }
            // A directive consumes the rest of its line.
            break;
        }
    }
    if !calls.is_empty() {
        out.reply = Some(Reply::tool_calls(None, calls));
    }
    out
}

/// Splits `text` into word deltas: the first word, then each following word with the
/// whitespace before it (`"a b  c"` → `"a"`, `" b"`, `"  c"`).
pub fn word_deltas(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev_word = false;
    for (i, ch) in text.char_indices() {
        let space = ch.is_whitespace();
        if space && prev_word && i > start {
            out.push(&text[start..i]);
            start = i;
        }
        prev_word = !space;
    }
    if start < text.len() {
        let tail = &text[start..];
        match out.last_mut() {
            // Trailing whitespace stays with the last word.
            Some(last) if tail.trim().is_empty() => {
                let begin = text.len() - tail.len() - last.len();
                *last = &text[begin..];
            }
            _ => out.push(tail),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::tests::user;
    use crate::script::{Match, Script};
    use serde_json::json;

    #[test]
    fn deltas_keep_all_text() {
        assert_eq!(word_deltas("a b  c"), vec!["a", " b", "  c"]);
        assert_eq!(word_deltas("  lead x "), vec!["  lead", " x "]);
        assert_eq!(word_deltas(""), Vec::<&str>::new());
        assert_eq!(word_deltas("one"), vec!["one"]);
    }

    #[test]
    fn directives_choose_replies() {
        let loaded = LoadedScript::new(Script::new());
        let plan = resolve(&loaded, &user("hi mock:error 429 3"));
        assert_eq!(plan, Plan::HttpError { status: 429, body: Value::Null, retry_after: Some(3) });
        let plan = resolve(&loaded, &user("go\nmock:tool change_seat {\"seat\": \"1A\"}\nmock:tool cancel_trip"));
        let Plan::Answer(answer) = plan else { panic!("not an answer") };
        assert_eq!(
            answer.calls,
            vec![ToolCallSpec::new("change_seat", json!({"seat": "1A"})), ToolCallSpec::new("cancel_trip", json!({}))]
        );
        let Plan::Answer(answer) = resolve(&loaded, &user("slow mock:delay 7 mock:cut 2")) else {
            panic!("not an answer")
        };
        // `mock:delay` consumes the rest of its line.
        assert_eq!(answer.delta_delay, Duration::from_millis(7));
        assert_eq!(answer.cut_after, None);
        assert_eq!(answer.text.as_deref(), Some("Mock reply: slow mock:delay 7 mock:cut 2"));
        let Plan::Answer(answer) = resolve(&loaded, &user("mock:stall 2 300")) else { panic!("not an answer") };
        assert_eq!(answer.stall, Some((2, Duration::from_millis(300))));
        // Not at a word start: ignored.
        assert_eq!(parse_directives("xmock:error 500"), Directives::default());
        assert_eq!(resolve(&loaded, &user("mock:preset insufficient_quota")), Plan::Preset(Preset::InsufficientQuota));
        let Plan::Answer(answer) = resolve(&loaded, &user("mock:think Plan | Check\nmock:text ok")) else {
            panic!("not an answer")
        };
        assert_eq!(answer.reasoning, Some(vec!["Plan".to_string(), "Check".to_string()]));
        assert_eq!(answer.text.as_deref(), Some("ok"));
        let scripted = LoadedScript::new(Script::new().on(Match::Any, Reply::reasoned(&["Hm"], Reply::text("yes"))));
        let Plan::Answer(answer) = resolve(&scripted, &user("q")) else { panic!("not an answer") };
        assert_eq!((answer.reasoning, answer.text.as_deref()), (Some(vec!["Hm".to_string()]), Some("yes")));
    }

    #[test]
    fn directives_can_be_disabled() {
        let loaded = LoadedScript::new(Script::new().directives(false).on(Match::Any, Reply::text("{user_text}!")));
        let Plan::Answer(answer) = resolve(&loaded, &user("mock:error 500")) else { panic!("not an answer") };
        assert_eq!(answer.text.as_deref(), Some("mock:error 500!"));
    }
}
