//! Every class of model failure, end to end: the real `support` binary talks to the mock model, which
//! answers with the real services' failures (`mock_llm::Preset`: OpenAI's and Gemini's own statuses,
//! bodies, headers and failing streams). For each one the turn must end with the right `error` event
//! (our words; `allow_retry` false and no invitation to try again when trying again cannot help), the
//! mock must have seen exactly the requests the retry policy allows (none more for an exhausted quota,
//! a rejected key, an unknown model, a context too long or blocked content), the server's log line must
//! name the class and the provider's own code, and the thread must answer the next message. No log line
//! ever holds the key.

mod common;

use std::time::{Duration, Instant};

use common::process::{ServerProcess, command};
use common::*;
use mock_llm::{Match, MockServer, Preset, Reply, Script};
use serde_json::Value;

const OPENAI_KEY: &str = "sk-proj-e2e-secret-0123456789abcdef";
const GEMINI_KEY: &str = "AIzaSy-e2e-secret-0123456789abcdef";

/// Retries after the first attempt (the binary's `MODEL_MAX_RETRIES`).
const RETRIES: usize = 1;

/// What one preset must lead to.
struct Expect {
    preset: Preset,
    /// `allow_retry` of the error event (whether trying again later may help).
    retryable: bool,
    /// Whether the failure is retried at once (before anything was streamed).
    retried: bool,
    /// `class` of the log line.
    class: &'static str,
    /// `code` of the log line: the provider's own name for the failure.
    code: &'static str,
    /// Words the error message must contain.
    says: &'static str,
}

const fn expect(
    preset: Preset,
    retryable: bool,
    retried: bool,
    class: &'static str,
    code: &'static str,
    says: &'static str,
) -> Expect {
    Expect { preset, retryable, retried, class, code, says }
}

const KEY: &str = "rejected the API key";
const MODEL: &str = "does not offer the configured model";
const QUOTA: &str = "used up its quota";
const LONG: &str = "too long";
const BLOCKED: &str = "declined to answer";
const FAILED: &str = "failed to answer";
const BUSY: &str = "is rate limiting requests";
const LIMIT: &str = "output limit";

fn openai_cases() -> Vec<Expect> {
    vec![
        expect(Preset::InvalidKey, false, false, "invalid_key", "invalid_api_key", KEY),
        expect(Preset::PermissionDenied, false, false, "invalid_key", "unsupported_country_region_territory", KEY),
        expect(Preset::ModelNotFound, false, false, "unknown_model", "model_not_found", MODEL),
        expect(Preset::InsufficientQuota, false, false, "quota_exhausted", "insufficient_quota", QUOTA),
        expect(Preset::RateLimit, true, true, "rate_limited", "rate_limit_exceeded", BUSY),
        expect(Preset::ContextLengthExceeded, false, false, "context_too_long", "context_length_exceeded", LONG),
        expect(Preset::ServerError, true, true, "server_error", "server_error", FAILED),
        expect(Preset::Overloaded, true, true, "server_error", "server_error", FAILED),
        expect(Preset::BlockedPrompt, false, false, "content_blocked", "invalid_prompt", BLOCKED),
        expect(Preset::ErrorEvent, true, true, "server_error", "service_unavailable_error", FAILED),
        expect(Preset::ErrorEventQuota, false, false, "quota_exhausted", "credit_balance_exhausted", QUOTA),
        expect(Preset::ResponseFailed, true, true, "server_error", "server_error", FAILED),
        expect(Preset::MaxOutputTokens, true, false, "model_failed", "max_output_tokens", LIMIT),
        expect(Preset::Safety, false, false, "content_blocked", "content_filter", BLOCKED),
        expect(Preset::Refusal, false, false, "content_blocked", "refusal", BLOCKED),
    ]
}

fn gemini_cases() -> Vec<Expect> {
    vec![
        expect(Preset::InvalidKey, false, false, "invalid_key", "API_KEY_INVALID", KEY),
        expect(Preset::PermissionDenied, false, false, "invalid_key", "PERMISSION_DENIED", KEY),
        expect(Preset::ModelNotFound, false, false, "unknown_model", "NOT_FOUND", MODEL),
        expect(Preset::InsufficientQuota, false, false, "quota_exhausted", "RESOURCE_EXHAUSTED", QUOTA),
        expect(Preset::RateLimit, true, true, "rate_limited", "RESOURCE_EXHAUSTED", BUSY),
        expect(Preset::ContextLengthExceeded, false, false, "context_too_long", "INVALID_ARGUMENT", LONG),
        expect(Preset::ServerError, true, true, "server_error", "INTERNAL", FAILED),
        expect(Preset::Overloaded, true, true, "server_error", "UNAVAILABLE", FAILED),
        expect(Preset::BlockedPrompt, false, false, "content_blocked", "PROHIBITED_CONTENT", BLOCKED),
        expect(Preset::ErrorEvent, true, true, "server_error", "UNAVAILABLE", FAILED),
        expect(Preset::ErrorEventQuota, false, false, "quota_exhausted", "RESOURCE_EXHAUSTED", QUOTA),
        expect(Preset::ResponseFailed, true, true, "server_error", "INTERNAL", FAILED),
        expect(Preset::MaxOutputTokens, true, false, "model_failed", "MAX_TOKENS", LIMIT),
        expect(Preset::Safety, false, false, "content_blocked", "SAFETY", BLOCKED),
        expect(Preset::ProhibitedContent, false, false, "content_blocked", "PROHIBITED_CONTENT", BLOCKED),
        expect(Preset::Recitation, false, false, "content_blocked", "RECITATION", BLOCKED),
        expect(
            Preset::MalformedFunctionCall,
            false,
            false,
            "malformed_function_call",
            "MALFORMED_FUNCTION_CALL",
            "malformed tool call",
        ),
    ]
}

/// Which API the binary talks to.
#[derive(Clone, Copy, PartialEq)]
enum Api {
    OpenAi,
    Gemini,
}

impl Api {
    /// The model requests the mock received.
    fn requests(self, mock: &MockServer) -> usize {
        mock.requests()
            .iter()
            .filter(|r| match self {
                Api::OpenAi => r.path == "/v1/responses",
                Api::Gemini => r.path.contains(":streamGenerateContent"),
            })
            .count()
    }
}

/// The binary on a fresh SQLite database, with one retry, JSON logs and `api` on the mock.
async fn start(dir: &TempDir, mock: &MockServer, api: Api) -> ServerProcess {
    let database = dir.sqlite_url();
    let openai = mock.openai_base_url();
    let gemini = mock.gemini_base_url();
    let retries = RETRIES.to_string();
    let mut env = vec![
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("DATABASE_URL", database.as_str()),
        ("MODEL_MAX_RETRIES", retries.as_str()),
        ("LOG_FORMAT", "json"),
    ];
    match api {
        Api::OpenAi => env.extend([("OPENAI_API_KEY", OPENAI_KEY), ("OPENAI_BASE_URL", openai.as_str())]),
        Api::Gemini => env.extend([
            ("GEMINI_API_KEY", GEMINI_KEY),
            ("GEMINI_BASE_URL", gemini.as_str()),
            ("MODEL_PROVIDER", "gemini"),
        ]),
    }
    let mut server = ServerProcess::spawn("server", command(dir.path(), &env));
    server.ready().await;
    server
}

/// The JSON log lines of failed model calls, waiting (up to 5 s) until there are more than `seen`.
async fn failure_lines(server: &ServerProcess, seen: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines: Vec<Value> = (server.stdout() + &server.stderr())
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["message"] == "model call failed")
            .collect();
        if lines.len() > seen {
            return lines;
        }
        assert!(Instant::now() < deadline, "no new failure line\n{}", server.output());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs every case of `api` on one thread: the failing turn, then a turn that works.
async fn check_every_class(api: Api, cases: Vec<Expect>, key: &str) {
    let dir = TempDir::new("error-classes");
    let mock = mock(Script::new()).await;
    let server = start(&dir, &mock, api).await;
    let thread = thread_id_of(&server.stream(&create("Hello")).await);
    let mut failures_logged = 0;
    for case in cases {
        let name = case.preset.name();
        mock.set_script(Script::new().on(Match::Any, Reply::preset(case.preset)));
        mock.clear_requests();
        let events = server.stream(&add_message(&thread, "Can I change my seat?")).await;
        let error = events.last().unwrap_or_else(|| panic!("{name}: no events"));
        assert_eq!(error["type"], "error", "{name}: {events:#?}");
        assert_eq!(error["allow_retry"], case.retryable, "{name}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(case.says), "{name}: {message}");
        let invites = message.to_lowercase().contains("try again");
        assert_eq!(invites, case.retryable, "{name}: only a failure that may pass invites a retry: {message}");
        for leak in [key, "platform.openai.com", "ai.google.dev", "billing details", "quotaId"] {
            assert!(!message.contains(leak), "{name}: the provider's words stay in the log: {message}");
        }
        validate_with_chatkit_python("ThreadStreamEvent", std::slice::from_ref(error));
        let expected = if case.retried { 1 + RETRIES } else { 1 };
        assert_eq!(api.requests(&mock), expected, "{name}: requests sent to the model");

        // The log line names the class and the provider's own code.
        let lines = failure_lines(&server, failures_logged).await;
        assert_eq!(lines.len(), failures_logged + 1, "{name}: one failure line per failed turn");
        failures_logged = lines.len();
        let line = &lines[failures_logged - 1];
        assert_eq!(line["class"], case.class, "{name}: {line}");
        assert_eq!(line["code"], case.code, "{name}: {line}");
        assert_eq!(line["level"], "WARN", "{name}: {line}");

        // The thread goes on.
        mock.set_script(Script::new());
        let events = server.stream(&add_message(&thread, "Are you there?")).await;
        assert!(events.iter().all(|e| e["type"] != "error"), "{name}: the next turn failed: {events:#?}");
        assert_eq!(assistant_texts(&events).last().map(String::as_str), Some("Mock reply: Are you there?"), "{name}");
    }
    let output = server.output();
    assert!(!output.contains(key), "a log line holds the key:\n{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_openai_failure_ends_the_turn_as_it_should() {
    check_every_class(Api::OpenAi, openai_cases(), OPENAI_KEY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gemini_failure_ends_the_turn_as_it_should() {
    check_every_class(Api::Gemini, gemini_cases(), GEMINI_KEY).await;
}
