//! The OpenAI Responses API response object (sent whole when the request does not stream, and
//! inside the `response.*` lifecycle events when it does), its output items and the error bodies.

use serde_json::{Value, json};

use super::request::ResponsesRequest;
use crate::ids::{ALNUM, alphabet_id, hex_id, unix_now};
use crate::json_writer::JsonWriter;
use crate::plan::{Answer, word_deltas};

/// The model named when the request names none.
const DEFAULT_MODEL: &str = "gpt-4.1-mini";

/// What the response object repeats from the request, plus its size for the usage figures.
#[derive(Debug, Clone)]
pub(crate) struct RequestEcho {
    /// The request's `model`.
    pub(crate) model: String,
    /// The request's `temperature` as JSON text (`1.0` when absent, as the API reports it).
    pub(crate) temperature: String,
    /// Rough prompt size in tokens (a quarter of the body's bytes).
    pub(crate) input_tokens: u64,
}

impl RequestEcho {
    /// Takes the echoed fields out of a request whose body is `body_len` bytes long.
    pub(crate) fn from_request(req: &mut ResponsesRequest, body_len: usize) -> RequestEcho {
        RequestEcho {
            model: req.model.take().unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            temperature: req.temperature.as_ref().map_or_else(|| "1.0".to_owned(), ToString::to_string),
            input_tokens: (body_len as u64 / 4).max(1),
        }
    }
}

/// The fields every rendering of one response shares.
pub(super) struct ResponseHead<'a> {
    pub(super) id: &'a str,
    pub(super) created_at: u64,
    pub(super) echo: &'a RequestEcho,
}

impl<'a> ResponseHead<'a> {
    /// The response `id`, created now.
    pub(super) fn new(id: &'a str, echo: &'a RequestEcho) -> Self {
        ResponseHead { id, created_at: unix_now(), echo }
    }
}

/// A fresh response id (`resp_` + 48 hex digits, as OpenAI's look).
pub(super) fn response_id() -> String {
    hex_id("resp_", 48)
}

/// One output item of an answer, rendered once in its completed form (the stream repeats it in
/// `response.output_item.done` and `response.completed`).
pub(super) struct OutputItem<'a> {
    /// The completed item as JSON text.
    pub(super) json: String,
    /// What the streamed events of the item need.
    pub(super) kind: ItemKind<'a>,
}

/// The kinds of output item the mock produces.
pub(super) enum ItemKind<'a> {
    Reasoning { id: String, summary: &'a [String] },
    Message { id: String, text: &'a str },
    Call { id: String, call_id: String, name: &'a str, arguments: String },
}

/// `encrypted_content` of the mock's reasoning item `id` followed in its response by the item
/// `following` (what the next request must hand back). The mock stores nothing: the content itself
/// says which item must follow the reasoning item when it comes back.
pub(crate) fn encrypted_content(id: &str, following: Option<&str>) -> String {
    match following {
        Some(next) => format!("mock-enc:{id}>{next}"),
        None => format!("mock-enc:{id}"),
    }
}

/// The reasoning item id and the id of the item that must follow it, from an `encrypted_content`
/// the mock wrote (`None` for any other text).
pub(crate) fn decode_encrypted_content(content: &str) -> Option<(&str, Option<&str>)> {
    let rest = content.strip_prefix("mock-enc:")?;
    Some(match rest.split_once('>') {
        Some((id, next)) => (id, Some(next)),
        None => (rest, None),
    })
}

/// The `call_id` prefix of calls made after reasoning item `rs_…`: `call_rs_…_<n>`, so the next
/// request can be checked for the reasoning item that must precede the call.
pub(crate) const REASONED_CALL_PREFIX: &str = "call_";

/// The token counts of a completed answer.
#[derive(Debug, Clone, Copy)]
pub(super) struct OutputTokens {
    /// Every output token, reasoning included.
    pub(super) output: u64,
    /// The reasoning tokens among them (the summary's words, at least one for a reasoning item).
    pub(super) reasoning: u64,
}

/// The output items of `answer` (the reasoning first, then the text message, then the function
/// calls), with fresh ids, and the token counts.
pub(super) fn output_items(answer: &Answer) -> (Vec<OutputItem<'_>>, OutputTokens) {
    let mut items = Vec::new();
    let mut tokens = 0u64;
    let mut reasoning_tokens = 0u64;
    let mut reasoning_id = None;
    // Ids are drawn first: the reasoning item's encrypted content names the item after it.
    let message_id = answer.text.as_ref().map(|_| hex_id("msg_", 48));
    let call_ids: Vec<String> = answer.calls.iter().map(|_| hex_id("fc_", 48)).collect();
    if let Some(summary) = &answer.reasoning {
        let id = hex_id("rs_", 32);
        let following = message_id.as_deref().or(call_ids.first().map(String::as_str));
        let mut out = JsonWriter::default();
        out.raw("{\"id\":").str(&id).raw(",\"type\":\"reasoning\",\"summary\":[");
        for (i, part) in summary.iter().enumerate() {
            if i > 0 {
                out.raw(",");
            }
            out.raw("{\"type\":\"summary_text\",\"text\":").str(part).raw("}");
            reasoning_tokens += word_deltas(part).len() as u64;
        }
        out.raw("],\"encrypted_content\":").str(&encrypted_content(&id, following)).raw("}");
        reasoning_tokens = reasoning_tokens.max(1);
        tokens += reasoning_tokens;
        reasoning_id = Some(id.clone());
        items.push(OutputItem { json: out.buf, kind: ItemKind::Reasoning { id, summary } });
    }
    if let (Some(text), Some(id)) = (&answer.text, message_id) {
        let mut out = JsonWriter::default();
        out.raw("{\"id\":")
            .str(&id)
            .raw(",\"type\":\"message\",\"status\":\"completed\",\"content\":[")
            .raw("{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":")
            .str(text)
            .raw("}],\"role\":\"assistant\"}");
        tokens += word_deltas(text).len() as u64;
        items.push(OutputItem { json: out.buf, kind: ItemKind::Message { id, text } });
    }
    for ((n, call), id) in answer.calls.iter().enumerate().zip(call_ids) {
        let call_id = match &reasoning_id {
            Some(rs) => format!("{REASONED_CALL_PREFIX}{rs}_{n}"),
            None => alphabet_id("call_", 24, ALNUM),
        };
        let arguments = call.arguments.to_string();
        let mut out = JsonWriter::default();
        out.raw("{\"id\":")
            .str(&id)
            .raw(",\"type\":\"function_call\",\"status\":\"completed\",\"arguments\":")
            .str(&arguments)
            .raw(",\"call_id\":")
            .str(&call_id)
            .raw(",\"name\":")
            .str(&call.name)
            .raw("}");
        tokens += (arguments.len() as u64 / 4).max(1);
        items.push(OutputItem { json: out.buf, kind: ItemKind::Call { id, call_id, name: &call.name, arguments } });
    }
    (items, OutputTokens { output: tokens, reasoning: reasoning_tokens })
}

/// What a response object says about how it ended, beyond its `status`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ending<'a> {
    /// Not ended, or completed: `error` and `incomplete_details` are null.
    Normal,
    /// Failed with this `error` object.
    Failed(&'a Value),
    /// Incomplete for this `incomplete_details.reason`.
    Incomplete(&'a str),
}

/// Writes a response object with `status` and `output`; `usage` is the token counts (`None`
/// before completion), `ending` its error or why it is incomplete.
pub(super) fn write_response(
    out: &mut JsonWriter,
    head: &ResponseHead<'_>,
    status: &str,
    output: &[OutputItem<'_>],
    usage: Option<OutputTokens>,
    ending: Ending<'_>,
) {
    let echo = head.echo;
    out.raw("{\"id\":")
        .str(head.id)
        .raw(",\"object\":\"response\",\"created_at\":")
        .num(head.created_at)
        .raw(",\"status\":\"")
        .raw(status)
        .raw("\",\"background\":false,\"error\":");
    match ending {
        Ending::Failed(error) => out.raw(&error.to_string()),
        _ => out.raw("null"),
    };
    out.raw(",\"incomplete_details\":");
    match ending {
        Ending::Incomplete(reason) => out.raw("{\"reason\":").str(reason).raw("}"),
        _ => out.raw("null"),
    };
    out.raw(",\"instructions\":null,\"max_output_tokens\":null,\"model\":").str(&echo.model).raw(",\"output\":[");
    for (i, item) in output.iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        out.raw(&item.json);
    }
    out.raw("],\"parallel_tool_calls\":true,\"previous_response_id\":null,\"reasoning\":{\"effort\":null,\"summary\":null},\"store\":false,\"temperature\":")
        .raw(&echo.temperature)
        .raw(",\"text\":{\"format\":{\"type\":\"text\"}},\"tool_choice\":\"auto\",\"tools\":[],\"top_p\":1.0,\"truncation\":\"disabled\",\"usage\":");
    match usage {
        Some(tokens) => out
            .raw("{\"input_tokens\":")
            .num(echo.input_tokens)
            .raw(",\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":")
            .num(tokens.output)
            .raw(",\"output_tokens_details\":{\"reasoning_tokens\":")
            .num(tokens.reasoning)
            .raw("},\"total_tokens\":")
            .num(echo.input_tokens + tokens.output)
            .raw("}"),
        None => out.raw("null"),
    };
    out.raw(",\"user\":null,\"metadata\":{}}");
}

/// The response object of a request that does not stream.
pub(crate) fn response_json(answer: &Answer, echo: &RequestEcho) -> String {
    let (items, tokens) = output_items(answer);
    let mut out = JsonWriter::default();
    let id = response_id();
    write_response(&mut out, &ResponseHead::new(&id, echo), "completed", &items, Some(tokens), Ending::Normal);
    out.buf
}

/// OpenAI's error body for `status`, with `message` (or the API's usual message for the status).
pub(crate) fn error_body(status: u16, message: Option<&str>) -> Value {
    let (default_message, ty, code) = match status {
        400 => ("Invalid request.", "invalid_request_error", Value::Null),
        401 => (
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            json!("invalid_api_key"),
        ),
        403 => ("You are not allowed to sample from this model.", "invalid_request_error", Value::Null),
        404 => ("The requested resource was not found.", "invalid_request_error", Value::Null),
        429 => ("Rate limit reached for requests. Please try again later.", "requests", json!("rate_limit_exceeded")),
        503 => ("The engine is currently overloaded, please try again later.", "server_error", Value::Null),
        _ => ("The server had an error while processing your request. Sorry about that!", "server_error", Value::Null),
    };
    json!({"error": {
        "message": message.unwrap_or(default_message),
        "type": ty,
        "param": null,
        "code": code,
    }})
}
