//! The server under test as a child process: a fresh temporary directory with its own SQLite
//! database, a free loopback port, the mock model as its OpenAI endpoint, and a wait until
//! `GET /support/health` answers 200 (the start-up time). Dropping the handle kills the process and
//! removes the directory.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Environment variables the server reads that would change which model it talks to; removed from
/// the child's environment so the run always uses the mock.
const CLEARED_ENV: &[&str] = &["GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL", "MODEL_PROVIDER", "MODEL"];

/// How to start the server.
#[derive(Debug, Clone)]
pub(crate) struct SpawnOptions {
    /// Path of the server binary to run.
    pub(crate) bin: PathBuf,
    /// `OPENAI_BASE_URL` for the child (the mock's `/v1`).
    pub(crate) openai_base_url: String,
    /// Extra `KEY=VALUE` settings for the child (applied last).
    pub(crate) extra_env: Vec<(String, String)>,
    /// Give up waiting for health after this long.
    pub(crate) startup_timeout: Duration,
}

/// A running server child.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Child,
    dir: PathBuf,
    /// `http://127.0.0.1:PORT`
    pub(crate) base_url: String,
    /// Time from spawn to the first 200 of `/support/health`.
    pub(crate) startup: Duration,
}

static SPAWNS: AtomicUsize = AtomicUsize::new(0);

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(l.local_addr()?.port())
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Starts the binary in `dir` (its log goes to `dir/server.log`); returns the child, its port and
/// the instant right before the spawn (start of the start-up time).
fn launch(bin: &Path, dir: &Path, opts: &SpawnOptions) -> anyhow::Result<(Child, u16, Instant)> {
    let port = free_port()?;
    let log = File::create(dir.join("server.log"))?;
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("DATABASE_URL", format!("sqlite://{}", dir.join("chatkit.db").display()))
        .env("OPENAI_API_KEY", "bench")
        .env("OPENAI_BASE_URL", &opts.openai_base_url);
    for k in CLEARED_ENV {
        cmd.env_remove(k);
    }
    for (k, v) in &opts.extra_env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("cannot start {}", bin.display()))?;
    Ok((child, port, start))
}

impl ServerProcess {
    /// Starts the server and waits until it is healthy.
    pub(crate) async fn spawn(opts: &SpawnOptions, client: &reqwest::Client) -> anyhow::Result<ServerProcess> {
        if !opts.bin.is_file() {
            bail!(
                "server binary {} not found: build it with `cargo build --release -p support` or pass --server-bin",
                opts.bin.display()
            );
        }
        // The child runs in its temp dir, so a relative program path must be made absolute first.
        let bin = std::fs::canonicalize(&opts.bin).with_context(|| format!("cannot resolve {}", opts.bin.display()))?;
        let n = SPAWNS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("chatkit-bench-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let (child, port, start) = match launch(&bin, &dir, opts) {
            Ok(launched) => launched,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let log_path = dir.join("server.log");
        let base_url = format!("http://127.0.0.1:{port}");
        let health = format!("{base_url}/support/health");
        let mut server = ServerProcess { child, dir, base_url, startup: Duration::ZERO };
        loop {
            if let Ok(resp) = client.get(&health).timeout(Duration::from_secs(2)).send().await
                && resp.status() == 200
            {
                server.startup = start.elapsed();
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                bail!("server exited during start-up ({status}); last log lines:\n{}", log_tail(&log_path));
            }
            if start.elapsed() > opts.startup_timeout {
                bail!("server not healthy after {:?}; last log lines:\n{}", opts.startup_timeout, log_tail(&log_path));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Process id of the server.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines the server printed.
    pub(crate) fn log_tail(&self) -> String {
        log_tail(&self.dir.join("server.log"))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
