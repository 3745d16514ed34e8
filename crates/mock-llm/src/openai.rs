//! OpenAI Responses API wire format: the streamed events (`event: <type>` + `data: <json>`
//! frames with `sequence_number`), the non-streamed response object and the error bodies.

use serde_json::{Value, json};

use crate::frames::{ALNUM, Frames, Out, alphabet_id, hex_id, unix_now};
use crate::lean::OpenAiRequest;
use crate::plan::{Answer, word_deltas};

/// Request facts echoed in the response object.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// `model` of the request.
    pub model: String,
    /// `temperature` of the request as JSON text (`1.0` when absent).
    pub temperature: String,
    /// Rough prompt size in tokens.
    pub input_tokens: u64,
}

impl Ctx {
    /// Takes the echoed facts from a request of `body_len` bytes.
    pub fn from_request(req: &mut OpenAiRequest, body_len: usize) -> Ctx {
        Ctx {
            model: req.model.take().unwrap_or_else(|| "gpt-4.1-mini".to_owned()),
            temperature: req.temperature.as_ref().map_or_else(|| "1.0".to_owned(), ToString::to_string),
            input_tokens: (body_len as u64 / 4).max(1),
        }
    }
}

/// One output item, rendered once in its completed form.
struct Item {
    json: String,
}

/// Writes `event: <ty>\ndata: {"type":"<ty>","sequence_number":N` (the caller closes it).
fn open_event(frames: &mut Frames, ty: &str, seq: &mut u64) {
    frames.out.raw("event: ").raw(ty).raw("\ndata: {\"type\":\"").raw(ty).raw("\",\"sequence_number\":").num(*seq);
    *seq += 1;
}

/// Closes the JSON object and the frame.
fn close_event(frames: &mut Frames, is_delta: bool) {
    frames.out.raw("}\n\n");
    frames.end_frame(is_delta);
}

/// The fixed part of a response object.
struct Head<'a> {
    id: &'a str,
    created_at: u64,
    ctx: &'a Ctx,
}

/// Writes a response object; `usage` is the output token count, `error` a failure message.
fn write_response(
    out: &mut Out,
    head: &Head<'_>,
    status: &str,
    output: &[Item],
    usage: Option<u64>,
    error: Option<&str>,
) {
    let (id, created_at, ctx) = (head.id, head.created_at, head.ctx);
    out.raw("{\"id\":")
        .str(id)
        .raw(",\"object\":\"response\",\"created_at\":")
        .num(created_at)
        .raw(",\"status\":\"")
        .raw(status)
        .raw("\",\"background\":false,\"error\":");
    match error {
        Some(message) => {
            out.raw("{\"code\":\"server_error\",\"message\":").str(message).raw("}");
        }
        None => {
            out.raw("null");
        }
    }
    out.raw(",\"incomplete_details\":null,\"instructions\":null,\"max_output_tokens\":null,\"model\":")
        .str(&ctx.model)
        .raw(",\"output\":[");
    for (i, item) in output.iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        out.raw(&item.json);
    }
    out.raw("],\"parallel_tool_calls\":true,\"previous_response_id\":null,\"reasoning\":{\"effort\":null,\"summary\":null},\"store\":false,\"temperature\":")
        .raw(&ctx.temperature)
        .raw(",\"text\":{\"format\":{\"type\":\"text\"}},\"tool_choice\":\"auto\",\"tools\":[],\"top_p\":1.0,\"truncation\":\"disabled\",\"usage\":");
    match usage {
        Some(output_tokens) => {
            out.raw("{\"input_tokens\":")
                .num(ctx.input_tokens)
                .raw(",\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":")
                .num(output_tokens)
                .raw(",\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":")
                .num(ctx.input_tokens + output_tokens)
                .raw("}");
        }
        None => {
            out.raw("null");
        }
    }
    out.raw(",\"user\":null,\"metadata\":{}}");
}

/// The completed output items of an answer, with ids, and the output token count.
fn build_items(answer: &Answer) -> (Vec<Item>, Vec<ItemKind<'_>>, u64) {
    let mut items = Vec::new();
    let mut kinds = Vec::new();
    let mut tokens = 0u64;
    if let Some(text) = &answer.text {
        let id = hex_id("msg_", 48);
        let mut out = Out::default();
        out.raw("{\"id\":")
            .str(&id)
            .raw(",\"type\":\"message\",\"status\":\"completed\",\"content\":[")
            .raw("{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":")
            .str(text)
            .raw("}],\"role\":\"assistant\"}");
        tokens += word_deltas(text).len() as u64;
        items.push(Item { json: out.buf });
        kinds.push(ItemKind::Message { id, text });
    }
    for call in &answer.calls {
        let id = hex_id("fc_", 48);
        let call_id = alphabet_id("call_", 24, ALNUM);
        let arguments = call.arguments.to_string();
        let mut out = Out::default();
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
        items.push(Item { json: out.buf });
        kinds.push(ItemKind::Call { id, call_id, name: &call.name, arguments });
    }
    (items, kinds, tokens)
}

/// What the streamed events of an item need.
enum ItemKind<'a> {
    Message { id: String, text: &'a str },
    Call { id: String, call_id: String, name: &'a str, arguments: String },
}

/// The SSE frames of a streamed answer (`stream: true`).
pub fn stream_frames(answer: &Answer, ctx: &Ctx) -> Frames {
    let mut f = Frames::default();
    let mut seq = 0u64;
    let resp_id = hex_id("resp_", 48);
    let head = Head { id: &resp_id, created_at: unix_now(), ctx };
    let (items, kinds, tokens) = build_items(answer);

    for (ty, status) in [("response.created", "in_progress"), ("response.in_progress", "in_progress")] {
        open_event(&mut f, ty, &mut seq);
        f.out.raw(",\"response\":");
        write_response(&mut f.out, &head, status, &[], None, None);
        close_event(&mut f, false);
    }

    for (index, (item, kind)) in items.iter().zip(&kinds).enumerate() {
        let index = index as u64;
        match kind {
            ItemKind::Message { id, text } => {
                open_event(&mut f, "response.output_item.added", &mut seq);
                f.out
                    .raw(",\"output_index\":")
                    .num(index)
                    .raw(",\"item\":{\"id\":")
                    .str(id)
                    .raw(",\"type\":\"message\",\"status\":\"in_progress\",\"content\":[],\"role\":\"assistant\"}");
                close_event(&mut f, false);

                open_event(&mut f, "response.content_part.added", &mut seq);
                f.out.raw(",\"item_id\":").str(id).raw(",\"output_index\":").num(index)
                    .raw(",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"\"}");
                close_event(&mut f, false);

                for delta in word_deltas(text) {
                    open_event(&mut f, "response.output_text.delta", &mut seq);
                    f.out
                        .raw(",\"item_id\":")
                        .str(id)
                        .raw(",\"output_index\":")
                        .num(index)
                        .raw(",\"content_index\":0,\"delta\":")
                        .str(delta)
                        .raw(",\"logprobs\":[]");
                    close_event(&mut f, true);
                }

                open_event(&mut f, "response.output_text.done", &mut seq);
                f.out
                    .raw(",\"item_id\":")
                    .str(id)
                    .raw(",\"output_index\":")
                    .num(index)
                    .raw(",\"content_index\":0,\"text\":")
                    .str(text)
                    .raw(",\"logprobs\":[]");
                close_event(&mut f, false);

                open_event(&mut f, "response.content_part.done", &mut seq);
                f.out.raw(",\"item_id\":").str(id).raw(",\"output_index\":").num(index)
                    .raw(",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":")
                    .str(text)
                    .raw("}");
                close_event(&mut f, false);
            }
            ItemKind::Call { id, call_id, name, arguments } => {
                open_event(&mut f, "response.output_item.added", &mut seq);
                f.out
                    .raw(",\"output_index\":")
                    .num(index)
                    .raw(",\"item\":{\"id\":")
                    .str(id)
                    .raw(",\"type\":\"function_call\",\"status\":\"in_progress\",\"arguments\":\"\",\"call_id\":")
                    .str(call_id)
                    .raw(",\"name\":")
                    .str(name)
                    .raw("}");
                close_event(&mut f, false);

                for delta in split_in_two(arguments) {
                    open_event(&mut f, "response.function_call_arguments.delta", &mut seq);
                    f.out
                        .raw(",\"item_id\":")
                        .str(id)
                        .raw(",\"output_index\":")
                        .num(index)
                        .raw(",\"delta\":")
                        .str(delta);
                    close_event(&mut f, false);
                }

                open_event(&mut f, "response.function_call_arguments.done", &mut seq);
                f.out
                    .raw(",\"item_id\":")
                    .str(id)
                    .raw(",\"output_index\":")
                    .num(index)
                    .raw(",\"name\":")
                    .str(name)
                    .raw(",\"arguments\":")
                    .str(arguments);
                close_event(&mut f, false);
            }
        }
        open_event(&mut f, "response.output_item.done", &mut seq);
        f.out.raw(",\"output_index\":").num(index).raw(",\"item\":").raw(&item.json);
        close_event(&mut f, false);
    }

    open_event(&mut f, "response.completed", &mut seq);
    f.out.raw(",\"response\":");
    write_response(&mut f.out, &head, "completed", &items, Some(tokens), None);
    close_event(&mut f, false);
    f
}

/// `s` in two halves split at a character boundary (one piece if shorter than 2 bytes).
fn split_in_two(s: &str) -> Vec<&str> {
    let mut mid = s.len() / 2;
    while mid > 0 && !s.is_char_boundary(mid) {
        mid -= 1;
    }
    if mid == 0 { vec![s] } else { vec![&s[..mid], &s[mid..]] }
}

/// The frames of a stream that fails: `response.created`, `response.in_progress`,
/// `response.failed` with `error: {code: "server_error", message}`.
pub fn stream_error_frames(message: &str, ctx: &Ctx) -> Frames {
    let mut f = Frames::default();
    let mut seq = 0u64;
    let resp_id = hex_id("resp_", 48);
    let head = Head { id: &resp_id, created_at: unix_now(), ctx };
    for (ty, status, error) in [
        ("response.created", "in_progress", None),
        ("response.in_progress", "in_progress", None),
        ("response.failed", "failed", Some(message)),
    ] {
        open_event(&mut f, ty, &mut seq);
        f.out.raw(",\"response\":");
        write_response(&mut f.out, &head, status, &[], None, error);
        close_event(&mut f, false);
    }
    f
}

/// The response object of a non-streamed request (`stream` absent or false).
pub fn response_json(answer: &Answer, ctx: &Ctx) -> String {
    let (items, _, tokens) = build_items(answer);
    let mut out = Out::default();
    let id = hex_id("resp_", 48);
    let head = Head { id: &id, created_at: unix_now(), ctx };
    write_response(&mut out, &head, "completed", &items, Some(tokens), None);
    out.buf
}

/// OpenAI's error body for `status`, with `message` (or a default for the status).
pub fn error_body(status: u16, message: Option<&str>) -> Value {
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
