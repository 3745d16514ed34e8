//! The `mock-llm` binary: start-up line, script loading, serving.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{client, openai_events, user_item};
use serde_json::json;

/// Kills the child process when dropped (also when the test fails).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_serves_the_demo_script() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/openskies-demo.json");
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_mock-llm"))
            .args(["--port", "0", "--script", script, "--delay-ms", "0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let base = line.strip_prefix("mock-llm listening on ").and_then(|rest| rest.split(' ').next()).unwrap().to_owned();
    assert_eq!(line.trim_end(), format!("mock-llm listening on {base} (OpenAI base: {base}/v1, Gemini base: {base})"));
    let resp = client()
        .post(format!("{base}/v1/responses"))
        .bearer_auth("k")
        .json(&json!({"model": "gpt-4.1-mini", "stream": true,
                      "input": [user_item("I need wheelchair assistance at JFK.")]}))
        .send()
        .await
        .unwrap();
    let frames = openai_events(&resp.text().await.unwrap());
    drop(child);
    let done = frames.iter().find(|f| f["type"] == "response.output_item.done").unwrap();
    assert_eq!(done["item"]["name"], "request_assistance");
    assert_eq!(done["item"]["arguments"], r#"{"note":"Wheelchair assistance at JFK"}"#);
}
