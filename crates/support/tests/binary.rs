//! Tests of the real `support` binary: the start-up banner, the no-key warning, `.env` loading, exit codes
//! of bad settings and of a port in use, `--help`, `.env.example` completeness, graceful SIGTERM, and
//! durability: a committed conversation and its airline state survive `kill -9` and a restart.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use mock_llm::{Match, Reply, Script};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_support");

/// A spawned server process with its output collected in the background.
struct Proc {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

/// A command for the binary with a clean environment (no keys from the developer's shell), run in `cwd`.
fn command(cwd: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn collect(reader: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let out = Arc::new(Mutex::new(String::new()));
    let sink = out.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    out
}

impl Proc {
    fn spawn(cwd: &Path, env: &[(&str, &str)]) -> Proc {
        let mut child = command(cwd, env).spawn().expect("spawn support");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Proc { child, stdout, stderr }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the banner's last line.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.stdout().contains("  Dictation: ") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server exited early with {status}\nstdout:\n{}\nstderr:\n{}", self.stdout(), self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no banner\nstdout:\n{}\nstderr:\n{}", self.stdout(), self.stderr());
    }

    /// Waits for the process to exit and returns its code.
    fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(50));
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("process did not exit\nstdout:\n{}\nstderr:\n{}", self.stdout(), self.stderr());
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let mut p = Proc::spawn(dir.path(), &[("PORT", &port)]);
    p.wait_ready();
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
    let err = p.stderr();
    let warning = support::startup::NO_KEY_WARNING;
    assert_eq!(err.matches(warning).count(), 1, "{err}");
    assert!(err.lines().any(|l| l.contains("listening") && l.contains("startup_ms=")), "{err}");

    let client = client();
    let health: Value = client.get(format!("{url}/support/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health, json!({"status": "healthy"}));
    // A chat turn without a key: the user message is kept and the stream ends with a clear error event.
    let text = client
        .post(format!("{url}/support/chatkit"))
        .json(&create("hello"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = parse_sse(&text);
    let last = events.last().unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["code"], "custom");
    assert!(last["message"].as_str().unwrap().contains("OPENAI_API_KEY"), "{last}");

    p.signal("TERM");
    assert_eq!(p.wait_exit(Duration::from_secs(20)), Some(0), "stderr:\n{}", p.stderr());
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
    let mut p = Proc::spawn(dir.path(), &[]);
    p.wait_ready();
    let out = p.stdout();
    assert!(out.contains(&format!("URL:       http://127.0.0.1:{port}\n")), "{out}");
    assert!(out.contains("Model:     gpt-4.1-mini (OpenAI)\n"), "{out}");
    assert!(out.contains("Dictation: on\n"), "{out}");
    assert!(!p.stderr().contains(support::startup::NO_KEY_WARNING), "{}", p.stderr());
    assert!(!p.stderr().contains("mock-key"), "the key must never be logged");
    let client = client();
    let text = client
        .post(format!("http://127.0.0.1:{port}/support/chatkit"))
        .json(&create("Hello there"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(assistant_texts(&parse_sse(&text)), vec!["Mock reply: Hello there".to_string()]);
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
    let url = format!("http://127.0.0.1:{port}");
    let client = client();

    let mut p = Proc::spawn(dir.path(), &env);
    p.wait_ready();
    let text = client
        .post(format!("{url}/support/chatkit"))
        .json(&create("Move me to seat 14C on flight OA476."))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = parse_sse(&text);
    let thread_id = thread_id_of(&events);
    assert_eq!(assistant_texts(&events), vec!["Done: seat 14C on OA476.".to_string()]);
    let items_before: Value = client
        .post(format!("{url}/support/chatkit"))
        .json(&json!({"type": "items.list", "params": {"thread_id": thread_id, "order": "asc"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // A second turn is killed mid-stream: what was acknowledged (its user message) must survive.
    mock.set_script(
        Script::new().on(Match::user_text("stall"), Reply::stall("Let me check that for you now", 2, 60_000)),
    );
    let mut res = client
        .post(format!("{url}/support/chatkit"))
        .json(&add_message(&thread_id, "Please stall for a minute."))
        .send()
        .await
        .unwrap();
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

    let mut p = Proc::spawn(dir.path(), &env);
    p.wait_ready();
    // A fresh client: pooled connections died with the killed process.
    let client = common::client();
    let items_after: Value = client
        .post(format!("{url}/support/chatkit"))
        .json(&json!({"type": "items.list", "params": {"thread_id": thread_id, "order": "asc"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let after = items_after["data"].as_array().unwrap();
    let before = items_before["data"].as_array().unwrap();
    assert_eq!(&after[..2], &before[..], "the first turn is intact");
    assert_eq!(after[2], acked_user_item, "the acknowledged user message of the killed turn is stored");
    let types: Vec<&str> = after.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["user_message", "assistant_message", "user_message"]);
    let thread: Value = client
        .post(format!("{url}/support/chatkit"))
        .json(&json!({"type": "threads.get_by_id", "params": {"thread_id": thread_id}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(thread["title"], "Move me to seat 14C on flight OA476.");
    let customer: Value = client
        .get(format!("{url}/support/customer"))
        .query(&[("thread_id", thread_id.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(customer["customer"]["segments"][0]["seat"], "14C");
    assert_eq!(customer["customer"]["timeline"][0]["entry"], "Seat changed on OA476 from 14A to 14C.");
    p.signal("TERM");
    assert_eq!(p.wait_exit(Duration::from_secs(20)), Some(0));
}
