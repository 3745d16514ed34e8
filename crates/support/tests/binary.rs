//! Tests of the real `support` binary: the start-up banner, the no-key warning, `.env` loading, exit codes
//! of bad settings and of a port in use, `--help`, `.env.example` completeness, graceful SIGTERM, and
//! durability: a committed conversation and its airline state survive `kill -9` and a restart.

mod common;

use std::path::Path;
use std::time::Duration;

use common::process::{ServerProcess, command};
use common::*;
use mock_llm::{Match, Reply, Script};
use serde_json::{Value, json};

/// Spawns the binary in `cwd` with a clean environment (no keys from the developer's shell) and `env`.
fn spawn(cwd: &Path, env: &[(&str, &str)]) -> ServerProcess {
    ServerProcess::spawn("server", command(cwd, env))
}

/// A ChatKit request whose answer is read as SSE events (whatever the status).
async fn stream_events(p: &ServerProcess, body: &Value) -> Vec<Value> {
    parse_sse(&p.post(body).await.text().await.unwrap())
}

/// A ChatKit request whose answer is read as JSON (whatever the status).
async fn request_json(p: &ServerProcess, body: &Value) -> Value {
    p.post(body).await.json().await.unwrap()
}

/// Runs the binary to completion (for settings that must stop it) and returns (code, stdout, stderr).
fn run_to_exit(cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String) {
    let out = command(cwd, env).args(args).output().expect("run support");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn banner_no_key_warning_health_and_graceful_sigterm() {
    let dir = TempDir::new("bin-banner");
    let port = free_port().to_string();
    let mut p = spawn(dir.path(), &[("PORT", &port)]);
    p.ready().await;
    let out = p.stdout();
    let url = format!("http://127.0.0.1:{port}");
    assert!(out.starts_with("OpenSkies support server ready in "), "{out}");
    assert!(out.contains(&format!("\n  URL:       {url}\n")), "{out}");
    assert!(out.contains(&format!("\n  Docs:      {url}/docs\n")), "{out}");
    assert!(out.contains("\n  Database:  sqlite://data/chatkit.db\n"), "{out}");
    assert!(out.contains("\n  Model:     none configured (set OPENAI_API_KEY or GEMINI_API_KEY in .env)\n"), "{out}");
    assert!(out.contains("\n  Dictation: off\n"), "{out}");
    // The default SQLite folder was created under the working directory.
    assert!(dir.path().join("data").join("chatkit.db").exists());
    // The log line follows the banner on another stream: give it a moment to arrive.
    let listening = |err: &str| err.lines().any(|l| l.contains("listening") && l.contains("startup_ms="));
    for _ in 0..100 {
        if listening(&p.stderr()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let err = p.stderr();
    let warning = support::startup::NO_KEY_WARNING;
    assert_eq!(err.matches(warning).count(), 1, "{err}");
    assert!(listening(&err), "{err}");

    let health: Value = p.client.get(format!("{url}/support/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health, json!({"status": "healthy"}));
    // A chat turn without a key: the user message is kept and the stream ends with a clear error event.
    let events = stream_events(&p, &create("hello")).await;
    let last = events.last().unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["code"], "custom");
    assert!(last["message"].as_str().unwrap().contains("OPENAI_API_KEY"), "{last}");

    assert_eq!(p.terminate(), Some(0), "stderr:\n{}", p.stderr());
    assert!(p.stderr().contains("shutting down"), "{}", p.stderr());
}

#[test]
fn bad_settings_exit_2_with_one_line() {
    let dir = TempDir::new("bin-bad");
    let (code, _out, err) = run_to_exit(dir.path(), &[("PORT", "abc")], &[]);
    assert_eq!(code, Some(2));
    assert_eq!(err, "error: invalid value 'abc' for '--port <PORT>': invalid digit found in string\n");
    let (code, _out, err) = run_to_exit(dir.path(), &[("TEMPERATURE", "3")], &[]);
    assert_eq!(code, Some(2));
    assert_eq!(err, "error: TEMPERATURE must be between 0 and 2, got 3\n");
    let (code, _out, err) = run_to_exit(dir.path(), &[], &["--database-url", "mysql://x"]);
    assert_eq!(code, Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, _out, err) = run_to_exit(dir.path(), &[("MODEL_PROVIDER", "gemini")], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.starts_with("error: MODEL_PROVIDER is `gemini` but GEMINI_API_KEY is not set"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn port_in_use_exits_1_with_one_line() {
    let dir = TempDir::new("bin-inuse");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, _out, err) = run_to_exit(dir.path(), &[("PORT", &port)], &[]);
    assert_eq!(code, Some(1), "{err}");
    let last = err.lines().last().unwrap();
    assert!(last.starts_with(&format!("error: port {port} on 127.0.0.1 is already in use")), "{err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{err}");
}

#[test]
fn unwritable_database_exits_1_with_one_line() {
    let dir = TempDir::new("bin-db");
    // A file where the database folder should be.
    std::fs::write(dir.path().join("blocked"), b"x").unwrap();
    let (code, _out, err) = run_to_exit(dir.path(), &[("DATABASE_URL", "sqlite://blocked/chatkit.db")], &[]);
    assert_eq!(code, Some(1), "{err}");
    let last = err.lines().last().unwrap();
    assert!(last.starts_with("error: cannot open the database sqlite://blocked/chatkit.db"), "{err}");
}

#[test]
fn help_lists_every_setting_and_env_example_documents_them() {
    let dir = TempDir::new("bin-help");
    let (code, help, _err) = run_to_exit(dir.path(), &[("OPENAI_API_KEY", "sk-secret-value")], &["--help"]);
    assert_eq!(code, Some(0));
    assert!(!help.contains("sk-secret-value"), "--help must not print keys");
    let from_help: Vec<String> =
        help.split("[env: ").skip(1).map(|rest| rest.split([']', '=']).next().unwrap().to_string()).collect();
    assert!(from_help.len() >= 20, "{help}");
    let example = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.env.example")).unwrap();
    let from_example: Vec<String> = example
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .map(|l| l.split('=').next().unwrap().trim().to_string())
        .collect();
    for var in &from_help {
        assert!(from_example.contains(var), ".env.example lacks {var}");
        // Each variable has a comment in .env.example (a comment line somewhere above it).
    }
    for var in &from_example {
        assert!(from_help.contains(var), ".env.example has {var}, which the server does not read");
    }
    // Every variable line is preceded by a comment line (possibly after other variables of its group).
    let mut seen_comment = false;
    for line in example.lines() {
        if line.starts_with('#') {
            seen_comment = true;
        } else if line.contains('=') {
            assert!(seen_comment, "{line} has no comment");
        }
    }
}

#[tokio::test]
async fn env_file_is_loaded_and_copied_example_works() {
    let dir = TempDir::new("bin-env");
    let example = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.env.example")).unwrap();
    let mock = mock(Script::new()).await;
    let port = free_port();
    // `cp .env.example .env`, then fill in a key and a port as a user would.
    let env = example
        .replace("OPENAI_API_KEY=\n", "OPENAI_API_KEY=mock-key\n")
        .replace("OPENAI_BASE_URL=\n", &format!("OPENAI_BASE_URL={}\n", mock.openai_base_url()))
        .replace("PORT=8000\n", &format!("PORT={port}\n"));
    std::fs::write(dir.path().join(".env"), env).unwrap();
    let mut p = spawn(dir.path(), &[]);
    p.ready().await;
    let out = p.stdout();
    assert!(out.contains(&format!("URL:       http://127.0.0.1:{port}\n")), "{out}");
    assert!(out.contains("Model:     gpt-4.1-mini (OpenAI)\n"), "{out}");
    assert!(out.contains("Dictation: on\n"), "{out}");
    assert!(!p.stderr().contains(support::startup::NO_KEY_WARNING), "{}", p.stderr());
    assert!(!p.stderr().contains("mock-key"), "the key must never be logged");
    let events = stream_events(&p, &create("Hello there")).await;
    assert_eq!(assistant_texts(&events), vec!["Mock reply: Hello there".to_string()]);
    let req = &mock.requests()[0];
    assert_eq!(req.header("authorization"), Some("Bearer mock-key"));
    assert_eq!(req.body["model"], "gpt-4.1-mini");
    assert_eq!(req.body["temperature"], 0.4);
}

#[tokio::test]
async fn committed_state_survives_kill_9_and_restart() {
    let dir = TempDir::new("bin-kill");
    let script = Script::new()
        .on(
            Match::user_text("seat 14C"),
            Reply::tool_call("change_seat", json!({"flight_number": "OA476", "seat": "14C"})),
        )
        .after_tool_reply(Reply::text("Done: seat 14C on OA476."));
    let mock = mock(script).await;
    let base_url = mock.openai_base_url();
    let port = free_port().to_string();
    let env = [("PORT", port.as_str()), ("OPENAI_API_KEY", "mock-key"), ("OPENAI_BASE_URL", base_url.as_str())];

    let mut p = spawn(dir.path(), &env);
    p.ready().await;
    let events = stream_events(&p, &create("Move me to seat 14C on flight OA476.")).await;
    let thread_id = thread_id_of(&events);
    assert_eq!(assistant_texts(&events), vec!["Done: seat 14C on OA476.".to_string()]);
    let list_items = json!({"type": "items.list", "params": {"thread_id": thread_id, "order": "asc"}});
    let items_before = request_json(&p, &list_items).await;

    // A second turn is killed mid-stream: what was acknowledged (its user message) must survive.
    mock.set_script(
        Script::new().on(Match::user_text("stall"), Reply::stall("Let me check that for you now", 2, 60_000)),
    );
    let mut res = p.post(&add_message(&thread_id, "Please stall for a minute.")).await;
    let mut seen = String::new();
    while !seen.contains("content_part.text_delta") {
        let chunk =
            tokio::time::timeout(Duration::from_secs(20), res.chunk()).await.unwrap().unwrap().expect("stream ended");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let acked_user_item = parse_sse(&seen[..seen.rfind("\n\n").unwrap() + 2])
        .into_iter()
        .find(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "user_message")
        .expect("user message acknowledged")["item"]
        .clone();

    p.signal("KILL");
    assert_eq!(p.wait_exit(Duration::from_secs(10)), None, "killed by a signal");
    drop(p);

    // A new process, so a fresh client: pooled connections died with the killed process.
    let mut p = spawn(dir.path(), &env);
    p.ready().await;
    let items_after = request_json(&p, &list_items).await;
    let after = items_after["data"].as_array().unwrap();
    let before = items_before["data"].as_array().unwrap();
    assert_eq!(&after[..2], &before[..], "the first turn is intact");
    assert_eq!(after[2], acked_user_item, "the acknowledged user message of the killed turn is stored");
    let types: Vec<&str> = after.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["user_message", "assistant_message", "user_message"]);
    let thread = request_json(&p, &json!({"type": "threads.get_by_id", "params": {"thread_id": thread_id}})).await;
    assert_eq!(thread["title"], "Move me to seat 14C on flight OA476.");
    let customer: Value = p
        .client
        .get(p.url("/support/customer"))
        .query(&[("thread_id", thread_id.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(customer["customer"]["segments"][0]["seat"], "14C");
    assert_eq!(customer["customer"]["timeline"][0]["entry"], "Seat changed on OA476 from 14A to 14C.");
    assert_eq!(p.terminate(), Some(0));
}
