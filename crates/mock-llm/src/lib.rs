//! A scripted mock model server on loopback, for tests (in-process), benchmarks and
//! offline demos (the `mock-llm` binary). It speaks the real wire formats closely enough
//! for real OpenAI and Gemini clients:
//!
//! * `POST /v1/responses` — OpenAI Responses API. `stream: true` answers SSE frames
//!   `event: <type>\ndata: <json>\n\n` with a `sequence_number` on each event:
//!   `response.created`, `response.in_progress`, then per message item
//!   `response.output_item.added`, `response.content_part.added`, one
//!   `response.output_text.delta` per word, `response.output_text.done`,
//!   `response.content_part.done`, `response.output_item.done`; per function call
//!   `response.output_item.added`, `response.function_call_arguments.delta` (×2),
//!   `response.function_call_arguments.done`, `response.output_item.done`; finally
//!   `response.completed` with the full output and usage. Ids look like OpenAI's
//!   (`resp_`/`msg_`/`fc_` + 48 hex, `call_` + 24 alphanumerics). Without `stream` the
//!   response object is returned as JSON.
//! * `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` — Gemini: `data: <json>`
//!   frames (CRLF CRLF separated), one chunk per word, then a chunk with the
//!   `functionCall` parts (the first one with a `thoughtSignature`) or an empty text part,
//!   and `finishReason: "STOP"`. `:generateContent` answers one JSON object; when the
//!   request carries `inlineData` audio, the answer is the script's transcript.
//! * `POST /v1/chat/completions` — OpenAI Chat Completions, as the OpenAI-compatible servers
//!   (vLLM, llama.cpp, Ollama, OpenRouter…) stream it: a `: keep-alive` comment, a role-only
//!   first chunk, the script's `chat.reasoning` one word per chunk (in `reasoning_content`, or
//!   `reasoning`), one `content` chunk per word, then per tool call a first chunk with `index`,
//!   `id` and `name` and its arguments in two more chunks (the calls' first chunks come before any
//!   arguments, so parallel calls interleave), a chunk with an empty delta and the
//!   `finish_reason`, a usage chunk with empty `choices` when `stream_options.include_usage` is
//!   set, and `data: [DONE]`. A scripted in-stream failure is an `{"error": {…}}` chunk. The key
//!   is optional (local servers need none) but `bad-key` gets 401. `chat` in the script makes the
//!   server reject `stream_options` with 400, end with another `finish_reason`, or refuse `tools`
//!   as Ollama, llama.cpp, vLLM or OpenRouter do for a model without tool support.
//! * `POST /v1/audio/transcriptions` — multipart (`model`, `file`) → `{"text": transcript}`;
//!   400 without a file.
//! * Control: `GET|DELETE /_mock/requests` (recorded requests, keys redacted),
//!   `GET|PUT /_mock/script` (read or replace the script at run time).
//!
//! In process, [`MockServer::start`] binds `127.0.0.1:0`; [`MockServer::requests`] returns
//! the recorded requests (path, JSON body — multipart fields for transcriptions —, headers,
//! query), keeping the last [`DEFAULT_RECORD_CAP`]; [`MockServer::set_record_cap`]`(0)`
//! turns recording off for benchmarks. Per request the mock decodes only the fields it needs
//! and writes each response into one pre-sized buffer; with no delay the whole SSE body is
//! sent as one chunk, with no timer and no per-request logging.
//!
//! Auth: OpenAI routes need `Authorization: Bearer <non-empty>`, Gemini routes
//! `x-goog-api-key` (or `?key=`); a missing key or the key `bad-key` gets 401 with the
//! provider's error JSON (`{"error":{"message","type","param","code"}}` for OpenAI,
//! `{"error":{"code","message","status"}}` for Gemini).
//!
//! # Choosing the reply
//!
//! For each model request: (1) `mock:` directives in the last user text, (2) the script's
//! rules in order, (3) `after_tool_reply` if the last input item is a tool output, else
//! `default_reply`. The "last input item" is the last element of the OpenAI `input` (a user
//! message, or a `function_call_output`) or of the Gemini `contents` (user text parts, or
//! `functionResponse` parts).
//!
//! # Script format (JSON, also the serde form of [`Script`])
//!
//! ```json
//! {
//!   "rules": [
//!     {"when": {"user_text_contains": "seat 14C"},
//!      "reply": {"kind": "tool_calls", "text": null,
//!                "calls": [{"name": "change_seat", "arguments": {"seat": "14C"}}]},
//!      "times": 1},
//!     {"when": {"all_of": [{"user_text_contains": "yes"}, {"assistant_text_contains": "cancel"}]},
//!      "reply": {"kind": "tool_calls", "calls": [{"name": "cancel_trip", "arguments": {}}]}},
//!     {"when": "after_tool_output", "reply": {"kind": "text", "text": "Done: {tool_output}"}},
//!     {"when": "any", "reply": {"kind": "http_error", "status": 429, "body": null, "retry_after": 1}}
//!   ],
//!   "default_reply": {"kind": "text", "text": "Mock reply: {user_text}"},
//!   "after_tool_reply": {"kind": "text", "text": "Done: {tool_output}"},
//!   "delta_delay_ms": 0,
//!   "transcript": "I'd like to change my seat on flight OA476.",
//!   "directives": true,
//!   "validate_input": true
//! }
//! ```
//!
//! Every top-level field is optional. `when`: `"any"`, `"after_tool_output"`,
//! `{"user_text_contains": s}`, `{"tool_output_contains": s}`,
//! `{"assistant_text_contains": s}` (last assistant message anywhere in the input),
//! `{"all_of": [...]}`; comparisons are ASCII case-insensitive. `reply.kind`: `text`
//! (`text`), `tool_calls` (`text`?, `calls`), `http_error` (`status`, `body` — `null` means
//! the provider's error shape —, `retry_after`?), `cut_after` (`text`, `deltas`: abort the
//! connection after that many deltas), `stall` (`text`, `after_deltas`, `stall_ms`),
//! `stream_error` (`message`: OpenAI `response.failed`, Gemini an error chunk), `reasoned`
//! (`summary`: parts, `then`: a reply: OpenAI streams a reasoning item first, Gemini `thought`
//! parts), `preset` (`name`: one of the real APIs' failures, answered with that API's own status,
//! headers and body or failing stream; see [`Preset`] for the list). In texts,
//! `{user_text}` and `{tool_output}` (first 200 characters) are substituted. `times: N`
//! limits a rule to its first N matches. `validate_input` makes the mock answer 400 like the
//! real APIs when a `function_call_output` has no matching `function_call` or a call made after
//! reasoning comes back without that reasoning item and its `encrypted_content`, or a reasoning
//! item comes back without the item (by `id`) that followed it in its response (OpenAI), or a
//! replayed `functionCall` part lacks its `thoughtSignature` (Gemini).
//!
//! # Directives (when `directives` is true)
//!
//! A user text can steer the mock without a script; each directive takes the rest of its
//! line: `mock:text <reply>`, `mock:tool <name> <json args>` (repeat on several lines for
//! several calls), `mock:error <status> [retry_after]`, `mock:cut <deltas>`,
//! `mock:stall <after_deltas> <ms>`, `mock:delay <ms per delta>`, `mock:fail <message>`,
//! `mock:preset <name>` (a [`Preset`] failure), `mock:think <part> | <part>` (reasoning summary
//! parts before the reply, none for a bare `mock:think`; OpenAI then requires the reasoning item
//! back, with its `encrypted_content`, ahead of any call it led to and directly followed by the item
//! that followed it, as the real API does).
//!
//! # Layout
//!
//! * [`MockServer`] (`server.rs`) joins the routes of `openai/` (Responses API and transcription:
//!   `request.rs` reads a request, `response.rs` writes the response object, `stream.rs` its SSE
//!   events), `gemini/` (the same three steps) and `control.rs` (`/_mock/*`); `recording.rs`
//!   keeps the requests received.
//! * `presets.rs` holds the real APIs' failures by name ([`Preset`]), each dialect rendering them.
//! * `script.rs` is the [`Script`] format; `plan.rs` turns a request into a provider-neutral plan
//!   (directives, rules, defaults).
//! * `frames.rs` plays a stream with the plan's timing; `json_writer.rs` and `ids.rs` write the
//!   bodies and the ids the real APIs' shapes need.

mod chat;
mod control;
mod frames;
mod gemini;
mod ids;
mod json_writer;
mod openai;
mod plan;
mod presets;
mod recording;
mod script;
mod server;

pub use plan::word_deltas;
pub use presets::Preset;
pub use recording::{DEFAULT_RECORD_CAP, RecordedRequest};
pub use script::{
    ChatDialect, DEFAULT_TRANSCRIPT, Match, NoToolsServer, Reply, Rule, Script, ScriptError, ToolCallSpec,
};
pub use server::{BAD_KEY, MockServer};
