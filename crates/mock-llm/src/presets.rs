//! The real providers' failures, by name: each [`Preset`] answers with what the OpenAI Responses API or
//! the Gemini API sends for that failure (status, headers and error body, or the stream that ends in
//! it), so a client can be tested against every class of failure without a hosted model.
//!
//! A preset names a failure, not a provider: `insufficient_quota` is OpenAI's HTTP 429 with that code
//! on `/v1/responses` and Gemini's 429 `RESOURCE_EXHAUSTED` for a daily quota on
//! `:streamGenerateContent`. A failure one API has no form for (a refusal on Gemini, a malformed
//! function call on OpenAI) answers 501 with a message saying so. Chat Completions answers the
//! presets that fail over HTTP with OpenAI's bodies, and 501 for the others.
//!
//! The bodies follow what the services send, down to the details clients read: OpenAI's `type`,
//! `code` and `param` (`insufficient_quota` comes with HTTP 429, the same status as a rate limit);
//! Gemini's `status` and `details` (`ErrorInfo.reason`, `QuotaFailure.violations[].quotaId`,
//! `RetryInfo.retryDelay`). In-stream failures use the shapes seen on the wire: OpenAI's `error` event
//! with the error nested under `error`, `response.failed`, `response.incomplete`, a `refusal` part;
//! Gemini's error chunk, `promptFeedback.blockReason` without candidates, and a candidate ending with
//! a `finishReason` other than `STOP`.

use axum::http::HeaderValue;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::server::error_response;

/// A named failure of the real APIs. JSON (in a script): `{"kind": "preset", "name": "rate_limit"}`;
/// directive: `mock:preset rate_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// OpenAI 401 `invalid_api_key`; Gemini 400 `INVALID_ARGUMENT` with reason `API_KEY_INVALID`.
    InvalidKey,
    /// OpenAI 403 `unsupported_country_region_territory`; Gemini 403 `PERMISSION_DENIED`.
    PermissionDenied,
    /// OpenAI 404 `model_not_found`; Gemini 404 `NOT_FOUND`.
    ModelNotFound,
    /// OpenAI 429 `insufficient_quota`; Gemini 429 `RESOURCE_EXHAUSTED` for a daily quota.
    InsufficientQuota,
    /// OpenAI 429 `rate_limit_exceeded` with `retry-after`, `retry-after-ms` and `x-ratelimit-*`
    /// headers; Gemini 429 `RESOURCE_EXHAUSTED` for a per-minute quota with a `RetryInfo` of 1 s.
    RateLimit,
    /// OpenAI 400 `context_length_exceeded` (`param: input`); Gemini 400 `INVALID_ARGUMENT` "The input
    /// token count … exceeds the maximum number of tokens allowed".
    ContextLengthExceeded,
    /// OpenAI 500 `server_error`; Gemini 500 `INTERNAL`.
    ServerError,
    /// OpenAI 503 "overloaded"; Gemini 503 `UNAVAILABLE`.
    Overloaded,
    /// OpenAI 400 `invalid_prompt` (flagged by the usage policy); Gemini a 200 stream whose only chunk
    /// has `promptFeedback.blockReason: PROHIBITED_CONTENT` and no candidates.
    BlockedPrompt,
    /// A retryable failure inside the stream: OpenAI's `error` event (`service_unavailable_error`);
    /// Gemini an error chunk (503 `UNAVAILABLE`).
    ErrorEvent,
    /// Quota used up, reported inside the stream: OpenAI's `error` event (`insufficient_quota`,
    /// `credit_balance_exhausted`); Gemini an error chunk (429 `RESOURCE_EXHAUSTED`, daily quota).
    ErrorEventQuota,
    /// OpenAI `response.failed` (`server_error`); Gemini an error chunk (500 `INTERNAL`).
    ResponseFailed,
    /// The output limit: OpenAI `response.incomplete` (`max_output_tokens`) after a few words; Gemini
    /// `finishReason: MAX_TOKENS` after a few words.
    MaxOutputTokens,
    /// The answer stopped by the safety system: OpenAI `response.incomplete` (`content_filter`);
    /// Gemini `finishReason: SAFETY` with a blocked `safetyRatings` entry.
    Safety,
    /// OpenAI only: the model refuses (a `refusal` content part, then `response.completed`).
    Refusal,
    /// Gemini only: `finishReason: PROHIBITED_CONTENT`.
    ProhibitedContent,
    /// Gemini only: `finishReason: RECITATION` (with `citationMetadata`) after a few words.
    Recitation,
    /// Gemini only: `finishReason: MALFORMED_FUNCTION_CALL` with its `finishMessage`.
    MalformedFunctionCall,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 18] = [
        Preset::InvalidKey,
        Preset::PermissionDenied,
        Preset::ModelNotFound,
        Preset::InsufficientQuota,
        Preset::RateLimit,
        Preset::ContextLengthExceeded,
        Preset::ServerError,
        Preset::Overloaded,
        Preset::BlockedPrompt,
        Preset::ErrorEvent,
        Preset::ErrorEventQuota,
        Preset::ResponseFailed,
        Preset::MaxOutputTokens,
        Preset::Safety,
        Preset::Refusal,
        Preset::ProhibitedContent,
        Preset::Recitation,
        Preset::MalformedFunctionCall,
    ];

    /// The snake_case name (as in scripts and directives).
    pub fn name(self) -> &'static str {
        match self {
            Preset::InvalidKey => "invalid_key",
            Preset::PermissionDenied => "permission_denied",
            Preset::ModelNotFound => "model_not_found",
            Preset::InsufficientQuota => "insufficient_quota",
            Preset::RateLimit => "rate_limit",
            Preset::ContextLengthExceeded => "context_length_exceeded",
            Preset::ServerError => "server_error",
            Preset::Overloaded => "overloaded",
            Preset::BlockedPrompt => "blocked_prompt",
            Preset::ErrorEvent => "error_event",
            Preset::ErrorEventQuota => "error_event_quota",
            Preset::ResponseFailed => "response_failed",
            Preset::MaxOutputTokens => "max_output_tokens",
            Preset::Safety => "safety",
            Preset::Refusal => "refusal",
            Preset::ProhibitedContent => "prohibited_content",
            Preset::Recitation => "recitation",
            Preset::MalformedFunctionCall => "malformed_function_call",
        }
    }

    /// The preset named `name`.
    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }

    /// What the OpenAI Responses API sends.
    pub(crate) fn openai(self) -> Form<OpenAiStream> {
        let http = |status, message: &str, kind: &str, param: Value, code: Value| {
            Form::Http(HttpFailure::new(status, openai_body(message, kind, param, code)))
        };
        match self {
            Preset::InvalidKey => http(
                401,
                "Incorrect API key provided: sk-proj-********************************************abcd. You can find your API key at https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                Value::Null,
                json!("invalid_api_key"),
            ),
            Preset::PermissionDenied => http(
                403,
                "Country, region, or territory not supported",
                "request_forbidden",
                Value::Null,
                json!("unsupported_country_region_territory"),
            ),
            Preset::ModelNotFound => http(
                404,
                "The model `gpt-9` does not exist or you do not have access to it.",
                "invalid_request_error",
                Value::Null,
                json!("model_not_found"),
            ),
            Preset::InsufficientQuota => http(
                429,
                "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
                "insufficient_quota",
                Value::Null,
                json!("insufficient_quota"),
            ),
            Preset::RateLimit => Form::Http(
                HttpFailure::new(
                    429,
                    openai_body(
                        "Rate limit reached for gpt-4.1-mini in organization org-mock on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms. Visit https://platform.openai.com/account/rate-limits to learn more.",
                        "requests",
                        Value::Null,
                        json!("rate_limit_exceeded"),
                    ),
                )
                .header("retry-after", "1")
                .header("retry-after-ms", "120")
                .header("x-ratelimit-limit-requests", "500")
                .header("x-ratelimit-remaining-requests", "0")
                .header("x-ratelimit-reset-requests", "120ms")
                .header("x-ratelimit-limit-tokens", "200000")
                .header("x-ratelimit-remaining-tokens", "199980")
                .header("x-ratelimit-reset-tokens", "6ms"),
            ),
            Preset::ContextLengthExceeded => http(
                400,
                "Your input exceeds the context window of this model. Please adjust your input and try again.",
                "invalid_request_error",
                json!("input"),
                json!("context_length_exceeded"),
            ),
            Preset::ServerError => http(
                500,
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                Value::Null,
                Value::Null,
            ),
            Preset::Overloaded => http(
                503,
                "The server is overloaded or not ready yet.",
                "server_error",
                Value::Null,
                Value::Null,
            ),
            Preset::BlockedPrompt => http(
                400,
                "Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please try again with a different prompt: https://platform.openai.com/docs/guides/reasoning#advice-on-prompting",
                "invalid_request_error",
                Value::Null,
                json!("invalid_prompt"),
            ),
            Preset::ErrorEvent => Form::Stream(OpenAiStream::ErrorEvent(json!({
                "type": "service_unavailable_error",
                "code": null,
                "message": "Unable to verify model access right now. Please retry.",
                "param": null,
            }))),
            Preset::ErrorEventQuota => Form::Stream(OpenAiStream::ErrorEvent(json!({
                "type": "insufficient_quota",
                "code": "credit_balance_exhausted",
                "message": "You have no credits remaining. Add credits to continue using the API.",
                "param": null,
            }))),
            Preset::ResponseFailed => Form::Stream(OpenAiStream::Failed(json!({
                "code": "server_error",
                "message": "An error occurred while processing your request. You can retry your request, or contact us through our help center at help.openai.com if the error persists.",
            }))),
            Preset::MaxOutputTokens => {
                Form::Stream(OpenAiStream::Incomplete { reason: "max_output_tokens", text: Some(PARTIAL_TEXT) })
            }
            Preset::Safety => Form::Stream(OpenAiStream::Incomplete { reason: "content_filter", text: None }),
            Preset::Refusal => Form::Stream(OpenAiStream::Refusal(REFUSAL_TEXT)),
            Preset::ProhibitedContent | Preset::Recitation | Preset::MalformedFunctionCall => Form::Unavailable,
        }
    }

    /// What the Gemini API sends.
    pub(crate) fn gemini(self) -> Form<GeminiStream> {
        let http = |status: u16, message: &str, name: &str| {
            Form::Http(HttpFailure::new(status, gemini_body(status, message, name, &[])))
        };
        match self {
            Preset::InvalidKey => Form::Http(HttpFailure::new(
                400,
                gemini_body(
                    400,
                    "API key not valid. Please pass a valid API key.",
                    "INVALID_ARGUMENT",
                    &[
                        json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                               "domain": "googleapis.com",
                               "metadata": {"service": "generativelanguage.googleapis.com"}}),
                        json!({"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
                               "message": "API key not valid. Please pass a valid API key."}),
                    ],
                ),
            )),
            Preset::PermissionDenied => {
                http(403, "Your API key was reported as leaked. Please use another API key.", "PERMISSION_DENIED")
            }
            Preset::ModelNotFound => http(
                404,
                "models/gemini-9 is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.",
                "NOT_FOUND",
            ),
            Preset::InsufficientQuota => Form::Http(HttpFailure::new(429, gemini_quota_body("PerDay", "250", "37s"))),
            Preset::RateLimit => Form::Http(HttpFailure::new(429, gemini_quota_body("PerMinute", "10", "1s"))),
            Preset::ContextLengthExceeded => http(
                400,
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
                "INVALID_ARGUMENT",
            ),
            Preset::ServerError => http(
                500,
                "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
                "INTERNAL",
            ),
            Preset::Overloaded => http(503, "The model is overloaded. Please try again later.", "UNAVAILABLE"),
            Preset::BlockedPrompt => Form::Stream(GeminiStream::PromptBlocked("PROHIBITED_CONTENT")),
            Preset::ErrorEvent => Form::Stream(GeminiStream::Error(gemini_body(
                503,
                "The model is overloaded. Please try again later.",
                "UNAVAILABLE",
                &[],
            ))),
            Preset::ErrorEventQuota => Form::Stream(GeminiStream::Error(gemini_quota_body("PerDay", "250", "37s"))),
            Preset::ResponseFailed => Form::Stream(GeminiStream::Error(gemini_body(
                500,
                "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
                "INTERNAL",
                &[],
            ))),
            Preset::MaxOutputTokens => {
                Form::Stream(GeminiStream::Finish { reason: "MAX_TOKENS", text: Some(PARTIAL_TEXT), extra: json!({}) })
            }
            Preset::Safety => Form::Stream(GeminiStream::Finish {
                reason: "SAFETY",
                text: None,
                extra: json!({"safetyRatings": [
                    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
                    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
                    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true},
                ]}),
            }),
            Preset::ProhibitedContent => {
                Form::Stream(GeminiStream::Finish { reason: "PROHIBITED_CONTENT", text: None, extra: json!({}) })
            }
            Preset::Recitation => Form::Stream(GeminiStream::Finish {
                reason: "RECITATION",
                text: Some(PARTIAL_TEXT),
                extra: json!({"citationMetadata": {"citationSources": [
                    {"startIndex": 0, "endIndex": PARTIAL_TEXT.len(), "uri": "https://example.com/a-tale-of-two-cities"},
                ]}}),
            }),
            Preset::MalformedFunctionCall => Form::Stream(GeminiStream::Finish {
                reason: "MALFORMED_FUNCTION_CALL",
                text: None,
                extra: json!({"finishMessage": "Malformed function call: print(default_api.change_seat(flight_number='OA476', seat='14C'))"}),
            }),
            Preset::Refusal => Form::Unavailable,
        }
    }

    /// The answer for a preset the API asked has no form for.
    pub(crate) fn unavailable(self) -> Response {
        let message = format!("mock-llm: this API has no form of the preset `{}`", self.name());
        error_response(
            501,
            json!({"error": {"message": message, "type": "mock_error", "param": null, "code": null}}),
            None,
        )
    }
}

/// The words streamed before a failure that comes after some text (an output limit, a recitation).
pub(crate) const PARTIAL_TEXT: &str = "It was the best of times, it was the worst of times,";

/// What the refusal preset's model says.
pub(crate) const REFUSAL_TEXT: &str = "I'm sorry, but I can't help with that.";

/// How an API answers a preset.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Form<S> {
    /// A non-200 answer.
    Http(HttpFailure),
    /// A 200 stream ending in the failure (a request that does not stream gets the stream's failure
    /// as HTTP 500).
    Stream(S),
    /// The API has no such failure.
    Unavailable,
}

impl<S> Form<S> {
    /// The same form, its stream rendered by `render`.
    pub(crate) fn map<T>(self, render: impl FnOnce(S) -> T) -> Form<T> {
        match self {
            Form::Http(failure) => Form::Http(failure),
            Form::Stream(stream) => Form::Stream(render(stream)),
            Form::Unavailable => Form::Unavailable,
        }
    }
}

/// A non-200 answer: status, the API's error body, extra headers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HttpFailure {
    pub(crate) status: u16,
    pub(crate) body: Value,
    headers: Vec<(&'static str, &'static str)>,
}

impl HttpFailure {
    fn new(status: u16, body: Value) -> Self {
        HttpFailure { status, body, headers: Vec::new() }
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The HTTP answer.
    pub(crate) fn into_response(self) -> Response {
        let mut response = error_response(self.status, self.body, None);
        for (name, value) in self.headers {
            response.headers_mut().insert(name, HeaderValue::from_static(value));
        }
        response
    }
}

/// The streamed failures of the Responses API.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OpenAiStream {
    /// An `error` event holding this error object under `error`.
    ErrorEvent(Value),
    /// `response.failed` whose response carries this `error`.
    Failed(Value),
    /// `response.incomplete` for `reason`, after a message with `text` when given.
    Incomplete { reason: &'static str, text: Option<&'static str> },
    /// A message whose only part is this refusal, then `response.completed`.
    Refusal(&'static str),
}

/// The streamed failures of the Gemini API.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GeminiStream {
    /// A chunk holding this error body.
    Error(Value),
    /// A chunk with `promptFeedback.blockReason` and no candidates.
    PromptBlocked(&'static str),
    /// Chunks of `text` (one per word, when given), then a candidate ending with `reason`; `extra`
    /// holds the candidate's other fields (`safetyRatings`, `finishMessage`, `citationMetadata`).
    Finish { reason: &'static str, text: Option<&'static str>, extra: Value },
}

/// OpenAI's error body.
fn openai_body(message: &str, kind: &str, param: Value, code: Value) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

/// Google's error body; `details` only when there are some.
fn gemini_body(status: u16, message: &str, name: &str, details: &[Value]) -> Value {
    let mut error = json!({"code": status, "message": message, "status": name});
    if !details.is_empty() {
        error["details"] = Value::Array(details.to_vec());
    }
    json!({"error": error})
}

/// Gemini's 429 for the free tier's requests quota per `period` (`PerDay`, `PerMinute`).
fn gemini_quota_body(period: &str, limit: &str, retry_delay: &str) -> Value {
    let message = format!(
        "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: {limit}, model: gemini-2.5-flash\nPlease retry in {retry_delay}."
    );
    gemini_body(
        429,
        &message,
        "RESOURCE_EXHAUSTED",
        &[
            json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": format!("GenerateRequests{period}PerProjectPerModel-FreeTier"),
                "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                "quotaValue": limit,
            }]}),
            json!({"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
            }]}),
            json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_every_preset_has_a_form_somewhere() {
        for preset in Preset::ALL {
            assert_eq!(Preset::from_name(preset.name()), Some(preset));
            assert_eq!(serde_json::to_value(preset).unwrap(), json!(preset.name()));
            assert!(!(preset.openai() == Form::Unavailable && preset.gemini() == Form::Unavailable), "{preset:?}");
        }
        assert_eq!(Preset::from_name("nope"), None);
    }

    #[test]
    fn quota_and_rate_limit_differ_as_the_services_do() {
        let Form::Http(openai_quota) = Preset::InsufficientQuota.openai() else { panic!() };
        let Form::Http(openai_rate) = Preset::RateLimit.openai() else { panic!() };
        assert_eq!((openai_quota.status, openai_rate.status), (429, 429));
        assert_eq!(openai_quota.body["error"]["code"], "insufficient_quota");
        assert_eq!(openai_rate.body["error"]["code"], "rate_limit_exceeded");
        assert!(openai_quota.headers.is_empty());
        assert!(openai_rate.headers.contains(&("retry-after-ms", "120")));
        let Form::Http(gemini_quota) = Preset::InsufficientQuota.gemini() else { panic!() };
        let quota_id = &gemini_quota.body["error"]["details"][0]["violations"][0]["quotaId"];
        assert_eq!(quota_id, "GenerateRequestsPerDayPerProjectPerModel-FreeTier");
        assert_eq!(gemini_quota.body["error"]["status"], "RESOURCE_EXHAUSTED");
    }
}
