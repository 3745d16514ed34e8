//! Provider failover and usage accounting, end to end: the real `support` binary with OpenAI (one mock
//! model) as the primary and Gemini (another) as `MODEL_FALLBACK`, both answering with the real
//! services' failures.
//!
//! - The primary failing before its first token (after its retries, or with an exhausted quota) is
//!   answered by the fallback; cut after its first token, or blocked, it is not: the turn never mixes
//!   providers and never goes around a safety refusal. Each switch is logged and counted in
//!   `model_fallbacks_total`.
//! - Usage is stored for every model call: the failed primary call and the fallback's answer apart
//!   (only the answer counts the turn), a failure after partial output with what the provider
//!   reported, a turn whose client left mid-answer with what was reported until then. The totals of
//!   `GET /support/usage` are the sums of the turns' log lines.

mod common;

use std::time::{Duration, Instant};

use common::process::{ServerProcess, command};
use common::*;
use mock_llm::{Match, MockServer, Preset, Reply, Script};
use serde_json::Value;

const OPENAI_KEY: &str = "sk-proj-e2e-failover-0123456789abcdef";
const GEMINI_KEY: &str = "AIzaSy-e2e-failover-0123456789abcdef";

/// The binary on a fresh SQLite database with JSON logs and one retry; `env` on top.
async fn start(dir: &TempDir, env: &[(&str, &str)]) -> ServerProcess {
    let database = dir.sqlite_url();
    let mut all = vec![
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("DATABASE_URL", database.as_str()),
        ("MODEL_MAX_RETRIES", "1"),
        ("LOG_FORMAT", "json"),
    ];
    all.extend_from_slice(env);
    let mut server = ServerProcess::spawn("server", command(dir.path(), &all));
    server.ready().await;
    server
}

fn openai_requests(mock: &MockServer) -> usize {
    mock.requests().iter().filter(|r| r.path == "/v1/responses").count()
}

fn gemini_requests(mock: &MockServer) -> usize {
    mock.requests().iter().filter(|r| r.path.contains(":streamGenerateContent")).count()
}

/// The JSON log lines whose `message` is `message`.
fn log_lines(server: &ServerProcess, message: &str) -> Vec<Value> {
    (server.stdout() + &server.stderr())
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == message)
        .collect()
}

/// Waits (up to 5 s) until there are `n` log lines with `message`, and returns them.
async fn wait_for_lines(server: &ServerProcess, message: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines = log_lines(server, message);
        if lines.len() >= n {
            return lines;
        }
        assert!(Instant::now() < deadline, "{} lines of {message:?} of {n}\n{}", lines.len(), server.output());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn usage(server: &ServerProcess) -> Value {
    let res = server.client.get(server.url("/support/usage")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The error event ending a turn.
fn error_of(events: &[Value]) -> &Value {
    let last = events.last().unwrap();
    assert_eq!(last["type"], "error", "{events:#?}");
    last
}

/// The `by_model` entry of `provider`.
fn row<'a>(usage: &'a Value, provider: &str) -> &'a Value {
    let rows = usage["by_model"].as_array().unwrap();
    rows.iter().find(|r| r["provider"] == provider).unwrap_or_else(|| panic!("no {provider} row: {usage}"))
}

const FIELDS: [&str; 4] = ["input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"];

/// Each token total of `usage` is the sum of the turns' log lines.
fn assert_totals_match_the_log(server: &ServerProcess, usage: &Value) {
    let turns = log_lines(server, "model turn finished");
    assert_eq!(turns.len() as u64, usage["total"]["turns"].as_u64().unwrap(), "{usage}");
    for field in FIELDS.into_iter().chain(["model_calls"]) {
        let logged: u64 = turns.iter().map(|l| l[field].as_u64().unwrap()).sum();
        assert_eq!(logged, usage["total"][field].as_u64().unwrap(), "{field}: {usage}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_answers_only_before_the_first_token_and_never_for_blocked_content() {
    let dir = TempDir::new("failover");
    let primary = mock(Script::new()).await;
    let fallback = mock(Script::new()).await;
    let (openai, gemini) = (primary.openai_base_url(), fallback.gemini_base_url());
    let server = start(
        &dir,
        &[
            ("OPENAI_API_KEY", OPENAI_KEY),
            ("OPENAI_BASE_URL", openai.as_str()),
            ("GEMINI_API_KEY", GEMINI_KEY),
            ("GEMINI_BASE_URL", gemini.as_str()),
            ("MODEL_PROVIDER", "openai"),
            ("MODEL_FALLBACK", "gemini"),
        ],
    )
    .await;
    let fail_with = |preset| Script::new().on(Match::Any, Reply::preset(preset));

    // Overloaded after its retry: the fallback answers the whole turn.
    primary.set_script(fail_with(Preset::Overloaded));
    let events = server.stream(&create("Hello")).await;
    let thread = thread_id_of(&events);
    assert!(events.iter().all(|e| e["type"] != "error"), "{events:#?}");
    assert_eq!(assistant_texts(&events), vec!["Mock reply: Hello".to_string()]);
    assert_eq!((openai_requests(&primary), gemini_requests(&fallback)), (2, 1), "first attempt + 1 retry, then Gemini");
    let switch = &wait_for_lines(
        &server,
        "the primary model provider failed before answering; the fallback provider answers this turn",
        1,
    )
    .await[0];
    assert_eq!((&switch["from"], &switch["to"]), (&Value::from("OpenAI"), &Value::from("Gemini")), "{switch}");
    assert_eq!((&switch["class"], &switch["code"]), (&Value::from("server_error"), &Value::from("server_error")));

    // An exhausted quota is not retried, and the fallback answers.
    primary.clear_requests();
    fallback.clear_requests();
    primary.set_script(fail_with(Preset::InsufficientQuota));
    let events = server.stream(&add_message(&thread, "Still there?")).await;
    assert_eq!(assistant_texts(&events).last().map(String::as_str), Some("Mock reply: Still there?"));
    assert_eq!((openai_requests(&primary), gemini_requests(&fallback)), (1, 1));

    // Cut after its first words: the turn stays with the primary and ends with a clear error.
    primary.clear_requests();
    fallback.clear_requests();
    primary.set_script(Script::new().on(Match::Any, Reply::cut_after("Let me look that up for you", 2)));
    let events = server.stream(&add_message(&thread, "Where is my bag?")).await;
    let error = error_of(&events);
    assert_eq!(error["allow_retry"], true, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("The answer was interrupted."), "{message}");
    assert!(assistant_texts(&events).iter().all(|t| !t.contains("Mock reply")), "no Gemini words: {events:#?}");
    assert_eq!((openai_requests(&primary), gemini_requests(&fallback)), (1, 0), "no retry, no failover after a token");

    // A blocked prompt is not sent to the other provider.
    primary.clear_requests();
    primary.set_script(fail_with(Preset::BlockedPrompt));
    let events = server.stream(&add_message(&thread, "Something the policy blocks")).await;
    let error = error_of(&events);
    assert_eq!(error["allow_retry"], false, "{error}");
    assert!(error["message"].as_str().unwrap().contains("declined to answer"), "{error}");
    assert_eq!((openai_requests(&primary), gemini_requests(&fallback)), (1, 0));

    // Two switches, counted and logged.
    let metrics = server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let counted: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("model_fallbacks_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(counted, 2.0, "{metrics}");
    assert_eq!(
        log_lines(
            &server,
            "the primary model provider failed before answering; the fallback provider answers this turn"
        )
        .len(),
        2
    );

    // Usage: the fallback answered two turns; the primary's calls of those turns are stored apart and
    // count no turn; the cut and the blocked turns are the primary's.
    let totals = usage(&server).await;
    assert_eq!(totals["total"]["turns"], 4, "{totals}");
    assert_eq!(totals["total"]["model_calls"], 6, "{totals}");
    let (gemini_row, openai_row) = (row(&totals, "Gemini"), row(&totals, "OpenAI"));
    assert_eq!((&gemini_row["turns"], &gemini_row["model_calls"]), (&Value::from(2), &Value::from(2)), "{totals}");
    assert_eq!((&openai_row["turns"], &openai_row["model_calls"]), (&Value::from(2), &Value::from(4)), "{totals}");
    assert!(gemini_row["input_tokens"].as_u64().unwrap() > 0 && gemini_row["output_tokens"].as_u64().unwrap() > 0);
    assert_totals_match_the_log(&server, &totals);
    assert!(!server.output().contains(OPENAI_KEY) && !server.output().contains(GEMINI_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_counts_what_failed_and_cut_short_turns_spent() {
    let dir = TempDir::new("usage-failures");
    let model = mock(Script::new()).await;
    let gemini = model.gemini_base_url();
    let server = start(&dir, &[("GEMINI_API_KEY", GEMINI_KEY), ("GEMINI_BASE_URL", gemini.as_str())]).await;

    // A recitation stop after a few words: the words Gemini billed are counted.
    model.set_script(Script::new().on(Match::Any, Reply::preset(Preset::Recitation)));
    let events = server.stream(&create("Quote a novel")).await;
    let thread = thread_id_of(&events);
    assert_eq!(error_of(&events)["allow_retry"], false);
    let after_failure = usage(&server).await;
    assert_eq!(after_failure["total"]["turns"], 1, "{after_failure}");
    assert_eq!(after_failure["total"]["output_tokens"], 12, "the twelve words streamed: {after_failure}");
    assert!(after_failure["total"]["input_tokens"].as_u64().unwrap() > 0);

    // A blocked prompt: its tokens are billed too.
    model.set_script(Script::new().on(Match::Any, Reply::preset(Preset::BlockedPrompt)));
    let events = server.stream(&add_message(&thread, "Something blocked")).await;
    assert_eq!(error_of(&events)["allow_retry"], false);
    let after_block = usage(&server).await;
    assert_eq!(after_block["total"]["turns"], 2, "{after_block}");
    assert_eq!(after_block["total"]["output_tokens"], 12);
    assert!(after_block["total"]["input_tokens"].as_u64() > after_failure["total"]["input_tokens"].as_u64());

    // The client leaves after the first words of a slow answer: what was reported until then counts.
    model.set_script(Script::new().on(Match::Any, Reply::stall("One two three four five six", 2, 30_000)));
    let mut res = server.post(&add_message(&thread, "Tell me slowly")).await;
    let mut seen = String::new();
    while !seen.contains("assistant_message.content_part.text_delta") {
        let chunk =
            tokio::time::timeout(Duration::from_secs(20), res.chunk()).await.unwrap().unwrap().expect("stream ended");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(res);
    let cancelled = wait_for_lines(&server, "model turn finished", 3).await;
    let cancelled = &cancelled[2];
    assert_eq!(cancelled["outcome"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["model_calls"], 1);
    assert!(cancelled["output_tokens"].as_u64().unwrap() >= 1, "the words streamed count: {cancelled}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let after_leave = loop {
        let now = usage(&server).await;
        if now["total"]["turns"] == 3 || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(after_leave["total"]["turns"], 3, "{after_leave}");
    assert_totals_match_the_log(&server, &after_leave);

    // The thread goes on.
    model.set_script(Script::new());
    let events = server.stream(&add_message(&thread, "Are you there?")).await;
    assert_eq!(assistant_texts(&events).last().map(String::as_str), Some("Mock reply: Are you there?"));
    let last = usage(&server).await;
    assert_eq!(last["total"]["turns"], 4);
    assert_totals_match_the_log(&server, &last);
}
