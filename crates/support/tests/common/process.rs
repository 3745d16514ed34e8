//! The real `support` binary as a child process, shared by the binary, fault, security and replica
//! tests: a clean environment, its output collected in the background, its URL read from the start-up
//! banner, signals and exit codes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The server binary under test (debug build, built by cargo for the integration tests).
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_support");

/// The line the start-up banner ends with.
const BANNER_LAST_LINE: &str = "  Dictation: ";

/// The `support` command run in `cwd` with a clean environment (no keys from the developer's shell):
/// `RUST_LOG=info` and no tool progress, then `env` on top; stdout and stderr piped.
pub(crate) fn command(cwd: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.env("RUST_LOG", "info");
    // Exact event sequences must not depend on how fast a tool runs on a loaded machine.
    cmd.env("TOOL_PROGRESS_DELAY_MS", "60000");
    cmd.envs(env.iter().copied());
    cmd
}

/// Collects a child's output stream into a string in the background.
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

/// A running `support` process with its output collected in the background; SIGKILLed on drop.
pub(crate) struct ServerProcess {
    /// `http://127.0.0.1:PORT`, read from the banner by [`ServerProcess::ready`].
    pub base: String,
    /// A client without proxy, with a generous timeout.
    pub client: reqwest::Client,
    /// Names the process in failure messages (`server`, `replica A`).
    label: String,
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Spawns `cmd` (made by [`command`]); `label` names the process in failure messages.
    pub(crate) fn spawn(label: &str, mut cmd: Command) -> ServerProcess {
        let mut child = cmd.spawn().expect("spawn support");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        ServerProcess { base: String::new(), client: super::client(), label: label.to_string(), child, stdout, stderr }
    }

    /// Waits for the start-up banner and reads the bound URL from it.
    pub(crate) async fn ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let out = self.stdout();
            if out.contains(BANNER_LAST_LINE) {
                let url = out.lines().find_map(|l| l.trim().strip_prefix("URL:")).expect("URL line in the banner");
                self.base = url.trim().to_string();
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited early with {status}\n{}", self.label, self.output());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{} printed no banner\n{}", self.label, self.output());
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Standard output so far.
    pub(crate) fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Standard error so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Both streams, for failure messages.
    pub(crate) fn output(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout(), self.stderr())
    }

    /// Absolute URL of a path.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POSTs a JSON body to the ChatKit endpoint.
    pub(crate) async fn post(&self, body: &Value) -> reqwest::Response {
        self.client.post(self.url("/support/chatkit")).json(body).send().await.unwrap()
    }

    /// POSTs a streaming ChatKit request, expects 200 and returns the stream's events.
    pub(crate) async fn stream(&self, body: &Value) -> Vec<Value> {
        let res = self.post(body).await;
        assert_eq!(res.status(), 200);
        super::parse_sse(&res.text().await.unwrap())
    }

    /// Sends a signal (`TERM`, `KILL`) with `kill`.
    pub(crate) fn signal(&self, signal: &str) {
        let status =
            Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status().expect("run kill");
        assert!(status.success());
    }

    /// Waits (up to `within`) for the process to exit and returns its code (`None` when a signal ended it).
    pub(crate) fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(50));
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{} did not exit within {within:?}\n{}", self.label, self.output());
    }

    /// SIGTERM, then waits (up to 20 s) for the exit code.
    pub(crate) fn terminate(&mut self) -> Option<i32> {
        self.signal("TERM");
        self.wait_exit(Duration::from_secs(20))
    }

    /// `kill -9`, then reaps the process.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
