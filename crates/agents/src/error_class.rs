//! Provider-neutral classification of model failures: [`ErrorClass`] says what went wrong in terms that
//! decide what happens next (retry, fail over, tell the user it cannot work), and [`ErrorBody`] reads
//! the error bodies the providers send (OpenAI `{"error":{"message","type","param","code"}}`, Gemini
//! `{"error":{"code","message","status","details"}}`) so every provider classifies the same way.

use std::time::Duration;

use serde_json::Value;

/// What kind of failure a model call ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The API key is missing, wrong or lacks access (401/403, Gemini's `API_KEY_INVALID`).
    InvalidKey,
    /// The configured model does not exist or is not available to this key (404).
    UnknownModel,
    /// The account's quota or credit is used up (OpenAI `insufficient_quota`, sent with HTTP 429; Gemini's
    /// `RESOURCE_EXHAUSTED` for a daily quota, or for a quota of zero on a model the plan does not include).
    QuotaExhausted,
    /// The conversation is longer than the model's context window.
    ContextTooLong,
    /// The provider's safety system blocked the prompt or the answer, or the model refused.
    ContentBlocked,
    /// The model produced a function call that could not be parsed.
    MalformedFunctionCall,
    /// The model (or the server running it) cannot call tools, which the agent needs (Ollama "… does
    /// not support tools", vLLM without `--enable-auto-tool-choice`, llama.cpp without `--jinja`,
    /// OpenRouter "No endpoints found that support tool use").
    ToolsUnsupported,
    /// The provider rejected the request for another reason (other 4xx).
    InvalidRequest,
    /// Too many requests for now (429 without a quota code, Gemini `RESOURCE_EXHAUSTED`).
    RateLimited,
    /// The provider failed or is overloaded (5xx, 408, in-stream server errors).
    ServerError,
    /// The connection could not be opened or broke before a response.
    Network,
    /// A started response broke off.
    StreamCut,
    /// A wait ran out (connect, first byte, stalled stream).
    Timeout,
    /// The model stopped without finishing its answer for another reason (output limit, an in-stream
    /// failure without a known code); sending again may work, so it is not retried automatically.
    ModelFailed,
    /// The response could not be read, or the request could not be built.
    InvalidResponse,
}

impl ErrorClass {
    /// A stable snake_case name for logs and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorClass::InvalidKey => "invalid_key",
            ErrorClass::UnknownModel => "unknown_model",
            ErrorClass::QuotaExhausted => "quota_exhausted",
            ErrorClass::ContextTooLong => "context_too_long",
            ErrorClass::ContentBlocked => "content_blocked",
            ErrorClass::MalformedFunctionCall => "malformed_function_call",
            ErrorClass::ToolsUnsupported => "tools_unsupported",
            ErrorClass::InvalidRequest => "invalid_request",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::ServerError => "server_error",
            ErrorClass::Network => "network",
            ErrorClass::StreamCut => "stream_cut",
            ErrorClass::Timeout => "timeout",
            ErrorClass::ModelFailed => "model_failed",
            ErrorClass::InvalidResponse => "invalid_response",
        }
    }

    /// Whether sending the same message again later may succeed (the `allow_retry` of the error event).
    /// Failures of the account, the configuration or the content itself never go away by retrying.
    pub fn worth_retrying(&self) -> bool {
        matches!(
            self,
            ErrorClass::RateLimited
                | ErrorClass::ServerError
                | ErrorClass::Network
                | ErrorClass::StreamCut
                | ErrorClass::Timeout
                | ErrorClass::ModelFailed
                | ErrorClass::InvalidResponse
        )
    }

    /// Classifies an error status and body. `status` is the HTTP status (or the status number a body
    /// or an in-stream error carries), `body` what the provider said.
    pub fn classify(status: Option<u16>, body: &ErrorBody) -> ErrorClass {
        let code = body.code.as_deref().unwrap_or_default();
        let kind = body.kind.as_deref().unwrap_or_default();
        let reason = body.reason.as_deref().unwrap_or_default();
        let message = body.message.to_ascii_lowercase();
        let either = |names: &[&str]| names.contains(&code) || names.contains(&kind);
        if either(&["insufficient_quota"]) || (kind == "RESOURCE_EXHAUSTED" && body.quota_used_up()) {
            return ErrorClass::QuotaExhausted;
        }
        // Before the key check: OpenAI answers a model the project may not use with 403 `model_not_found`.
        if either(&["model_not_found"]) {
            return ErrorClass::UnknownModel;
        }
        if either(&["invalid_api_key", "UNAUTHENTICATED", "PERMISSION_DENIED"])
            || KEY_REASONS.contains(&reason)
            || message.contains("api key not valid")
            || message.contains("api_key_invalid")
            || matches!(status, Some(401 | 403))
        {
            return ErrorClass::InvalidKey;
        }
        // Before the unknown-model check: OpenRouter says it with 404. Whatever the status: llama.cpp's
        // server answers 500 to tools it was not started to handle, which no retry changes.
        if TOOLS_UNSUPPORTED_HINTS.iter().any(|hint| message.contains(hint)) {
            return ErrorClass::ToolsUnsupported;
        }
        if kind == "NOT_FOUND" || status == Some(404) {
            return ErrorClass::UnknownModel;
        }
        if either(&["context_length_exceeded"])
            || message.contains("maximum context length")
            || message.contains("context window")
            || (message.contains("input token count") && message.contains("exceeds"))
        {
            return ErrorClass::ContextTooLong;
        }
        if either(&["content_policy_violation", "content_filter", "invalid_prompt", "refusal"])
            || message.contains("flagged as potentially violating")
        {
            return ErrorClass::ContentBlocked;
        }
        if either(&["rate_limit_exceeded", "RESOURCE_EXHAUSTED", "requests", "tokens"]) || status == Some(429) {
            return ErrorClass::RateLimited;
        }
        if either(&[
            "server_error",
            "server_is_overloaded",
            "service_unavailable_error",
            "slow_down",
            "UNAVAILABLE",
            "INTERNAL",
            "DEADLINE_EXCEEDED",
        ]) || matches!(status, Some(408 | 500..=599))
        {
            return ErrorClass::ServerError;
        }
        ErrorClass::InvalidRequest
    }

    /// Whether the class is one of the refusals retrying cannot fix that a provider reports as a plain
    /// HTTP or stream failure (they become [`crate::ProviderError::Refused`]).
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(
            self,
            ErrorClass::UnknownModel
                | ErrorClass::QuotaExhausted
                | ErrorClass::ContextTooLong
                | ErrorClass::ContentBlocked
                | ErrorClass::MalformedFunctionCall
                | ErrorClass::ToolsUnsupported
        )
    }
}

/// Gemini's `ErrorInfo` reasons for a key that is wrong, expired or not allowed to call the API.
const KEY_REASONS: [&str; 4] = ["API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED", "SERVICE_DISABLED"];

/// What servers say when the model or the server cannot call tools (lowercase).
const TOOLS_UNSUPPORTED_HINTS: [&str; 5] = [
    "does not support tools",
    "tool choice requires",
    "requires --jinja",
    "support tool use",
    "tools are not supported",
];

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a provider's error body says, in either provider's shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBody {
    /// The human message (may be empty).
    pub message: String,
    /// OpenAI's `error.type` or Gemini's `error.status` (`RESOURCE_EXHAUSTED`, …).
    pub kind: Option<String>,
    /// OpenAI's `error.code` (`insufficient_quota`, `model_not_found`, …); for Gemini the numeric
    /// `error.code` as text.
    pub code: Option<String>,
    /// The `reason` of Gemini's `google.rpc.ErrorInfo` detail (`API_KEY_INVALID`, …).
    pub reason: Option<String>,
    /// The `quotaId`s of Gemini's `google.rpc.QuotaFailure` detail
    /// (`GenerateRequestsPerDayPerProjectPerModel-FreeTier`, …).
    pub quota_ids: Vec<String>,
    /// The wait of Gemini's `google.rpc.RetryInfo` detail (`"retryDelay": "23s"`).
    pub retry_delay: Option<Duration>,
}

impl ErrorBody {
    /// Reads `{"error":{…}}` (OpenAI, Gemini), `{"message":…}`, `{"error":"…"}`, `{"detail":…}` or plain
    /// text (cut to 500 characters).
    pub fn parse(body: &str) -> ErrorBody {
        match serde_json::from_str::<Value>(body) {
            Ok(json) => {
                let mut parsed = ErrorBody::from_json(&json);
                if parsed.message.is_empty() {
                    parsed.message = cut(body.trim());
                }
                parsed
            }
            Err(_) => ErrorBody { message: cut(body.trim()), ..ErrorBody::default() },
        }
    }

    /// Reads an error object, or an object holding one under `error` (in-stream errors have both forms).
    pub fn from_json(json: &Value) -> ErrorBody {
        let error = json.get("error").filter(|e| e.is_object()).unwrap_or(json);
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let message = [error.get("message"), json.get("message"), json.get("error"), json.get("detail")]
            .into_iter()
            .find_map(|v| v.and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string))
            .unwrap_or_default();
        let mut body = ErrorBody {
            message,
            kind: text(error.get("type")).or_else(|| text(error.get("status"))),
            code: text(error.get("code")),
            ..ErrorBody::default()
        };
        for detail in error.get("details").and_then(Value::as_array).into_iter().flatten() {
            body.read_detail(detail);
        }
        body
    }

    /// Reads one of Google's `google.rpc.*` details (the others are left out).
    fn read_detail(&mut self, detail: &Value) {
        let kind = detail.get("@type").and_then(Value::as_str).unwrap_or_default();
        let kind = kind.rsplit('/').next().unwrap_or_default();
        match kind {
            "google.rpc.ErrorInfo" if self.reason.is_none() => {
                self.reason = detail.get("reason").and_then(Value::as_str).map(str::to_string);
            }
            "google.rpc.QuotaFailure" => {
                let violations = detail.get("violations").and_then(Value::as_array).into_iter().flatten();
                self.quota_ids
                    .extend(violations.filter_map(|v| v.get("quotaId").and_then(Value::as_str)).map(str::to_string));
            }
            "google.rpc.RetryInfo" => {
                self.retry_delay = detail.get("retryDelay").and_then(Value::as_str).and_then(proto_duration);
            }
            _ => {}
        }
    }

    /// Whether a quota failure lasts beyond this turn: a daily quota (it resets at midnight), or a
    /// quota of zero (the plan does not include the model at all).
    fn quota_used_up(&self) -> bool {
        self.quota_ids.iter().any(|id| id.contains("PerDay"))
            || self.message.contains("limit: 0,")
            || self.message.ends_with("limit: 0")
    }

    /// The provider's own name for the error, for logs: Gemini's `ErrorInfo` reason, else OpenAI's
    /// `code`, else the type or status (`insufficient_quota`, `API_KEY_INVALID`, `RESOURCE_EXHAUSTED`).
    pub fn provider_code(&self) -> Option<String> {
        let numeric = |c: &String| c.bytes().all(|b| b.is_ascii_digit());
        self.reason
            .clone()
            .or_else(|| self.code.clone().filter(|c| !numeric(c)))
            .or_else(|| self.kind.clone())
            .or_else(|| self.code.clone())
    }
}

/// A protobuf JSON duration (`"23s"`, `"0.5s"`); `None` for anything else or a wait over a day.
fn proto_duration(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && (0.0..86_400.0).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// `text`, cut to 500 characters (with an ellipsis when cut).
fn cut(text: &str) -> String {
    match text.char_indices().nth(500) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(status: u16, body: &str) -> ErrorClass {
        ErrorClass::classify(Some(status), &ErrorBody::parse(body))
    }

    #[test]
    fn openai_bodies() {
        let quota = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        assert_eq!(class(429, quota), ErrorClass::QuotaExhausted);
        let rate = r#"{"error":{"message":"Rate limit reached for gpt-4.1-mini","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert_eq!(class(429, rate), ErrorClass::RateLimited);
        let model = r#"{"error":{"message":"The model `gpt-9` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#;
        assert_eq!(class(404, model), ErrorClass::UnknownModel);
        let context = r#"{"error":{"message":"Your input exceeds the context window of this model.","type":"invalid_request_error","param":"input","code":"context_length_exceeded"}}"#;
        assert_eq!(class(400, context), ErrorClass::ContextTooLong);
        let key = r#"{"error":{"message":"Incorrect API key provided: sk-abc.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
        assert_eq!(class(401, key), ErrorClass::InvalidKey);
        let prompt = r#"{"error":{"message":"Invalid prompt: your prompt was flagged as potentially violating our usage policy.","type":"invalid_request_error","param":null,"code":"invalid_prompt"}}"#;
        assert_eq!(class(400, prompt), ErrorClass::ContentBlocked);
        let no_access = r#"{"error":{"message":"Project `proj_abc` does not have access to model `gpt-5`","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#;
        assert_eq!(class(403, no_access), ErrorClass::UnknownModel, "a 403 for a model is about the model");
        let in_stream = r#"{"type":"error","error":{"type":"service_unavailable_error","code":null,"message":"Unable to verify model access right now. Please retry.","param":null},"sequence_number":2}"#;
        assert_eq!(ErrorClass::classify(None, &ErrorBody::parse(in_stream)), ErrorClass::ServerError);
        let credit = r#"{"type":"error","error":{"type":"insufficient_quota","code":"credit_balance_exhausted","message":"You have no credits remaining.","param":null},"sequence_number":2}"#;
        assert_eq!(ErrorClass::classify(None, &ErrorBody::parse(credit)), ErrorClass::QuotaExhausted);
        let bad = r#"{"error":{"message":"Unknown parameter: 'x'.","type":"invalid_request_error","param":"x","code":"unknown_parameter"}}"#;
        assert_eq!(class(400, bad), ErrorClass::InvalidRequest);
        assert_eq!(class(503, "upstream connect error"), ErrorClass::ServerError);
    }

    #[test]
    fn gemini_bodies() {
        let key = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(class(400, key), ErrorClass::InvalidKey);
        let model = r#"{"error":{"code":404,"message":"models/gemini-9 is not found for API version v1beta","status":"NOT_FOUND"}}"#;
        assert_eq!(class(404, model), ErrorClass::UnknownModel);
        let busy =
            r#"{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED"}}"#;
        assert_eq!(class(429, busy), ErrorClass::RateLimited, "Gemini's per-minute quotas pass");
        let long = r#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(class(400, long), ErrorClass::ContextTooLong);
        let daily = r#"{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier","quotaDimensions":{"location":"global","model":"gemini-2.5-flash"},"quotaValue":"250"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}"#;
        assert_eq!(class(429, daily), ErrorClass::QuotaExhausted, "a daily quota lasts beyond the turn");
        let parsed = ErrorBody::parse(daily);
        assert_eq!(parsed.retry_delay, Some(std::time::Duration::from_secs(37)));
        assert_eq!(parsed.provider_code().as_deref(), Some("RESOURCE_EXHAUSTED"));
        let minute = daily.replace("PerDay", "PerMinute");
        assert_eq!(class(429, &minute), ErrorClass::RateLimited);
        let zero = r#"{"error":{"code":429,"message":"Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, model: gemini-2.5-pro","status":"RESOURCE_EXHAUSTED"}}"#;
        assert_eq!(class(429, zero), ErrorClass::QuotaExhausted, "a zero quota never passes");
        let key = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}"#;
        assert_eq!(ErrorBody::parse(key).provider_code().as_deref(), Some("API_KEY_INVALID"));
        let denied = r#"{"error":{"code":403,"message":"Your API key was reported as leaked. Please use another API key.","status":"PERMISSION_DENIED"}}"#;
        assert_eq!(class(403, denied), ErrorClass::InvalidKey);
        let overloaded = r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#;
        assert_eq!(class(503, overloaded), ErrorClass::ServerError);
        let parsed = ErrorBody::parse(overloaded);
        assert_eq!(parsed.code.as_deref(), Some("503"));
        assert_eq!(parsed.kind.as_deref(), Some("UNAVAILABLE"));
        assert_eq!(parsed.message, "The model is overloaded.");
    }

    #[test]
    fn what_is_worth_retrying() {
        for c in [ErrorClass::RateLimited, ErrorClass::ServerError, ErrorClass::Network, ErrorClass::Timeout] {
            assert!(c.worth_retrying(), "{c}");
        }
        for c in [
            ErrorClass::InvalidKey,
            ErrorClass::UnknownModel,
            ErrorClass::QuotaExhausted,
            ErrorClass::ContextTooLong,
            ErrorClass::ContentBlocked,
            ErrorClass::MalformedFunctionCall,
            ErrorClass::InvalidRequest,
        ] {
            assert!(!c.worth_retrying(), "{c}");
        }
    }

    #[test]
    fn plain_and_odd_bodies() {
        assert_eq!(ErrorBody::parse("  plain  ").message, "plain");
        assert_eq!(ErrorBody::parse(r#"{"error":"nope"}"#).message, "nope");
        assert_eq!(ErrorBody::parse(&"x".repeat(600)).message.chars().count(), 501);
    }
}
