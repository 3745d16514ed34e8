//! Helpers of the fault, security and property tests: the real `support` binary as a child process
//! (banner-discovered URL, its logs, its RSS from `/proc`, `kill -9`), an incremental SSE reader, a raw
//! HTTP/1.1 client for requests `reqwest` would normalize (`../` paths, hostile headers), the soft
//! `RLIMIT_NOFILE`, and a lock that keeps the heavy tests of one binary from running at the same time.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The server binary under test (debug build, built by cargo for the integration tests).
pub const BIN: &str = env!("CARGO_BIN_EXE_support");

/// Serializes the load-heavy tests of one test binary (the machine has 2 cores).
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A temporary folder removed on drop.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh empty folder under the system temp dir.
    pub fn new(label: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("support-faults-{label}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The SQLite file of the server started in this folder.
    pub fn db_file(&self) -> PathBuf {
        self.0.join("chatkit.db")
    }

    /// `sqlite://<folder>/chatkit.db`.
    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}", self.db_file().display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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

/// A running `support` process (SIGKILLed on drop).
pub struct Bin {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// `http://127.0.0.1:PORT`, read from the banner by [`Bin::ready`].
    pub base: String,
    /// A client without proxy, with a generous timeout.
    pub client: reqwest::Client,
}

/// A test HTTP client.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().unwrap()
}

impl Bin {
    /// Spawns the binary in `cwd` with a clean environment: `HOST=127.0.0.1`, `PORT=0`, `RUST_LOG=info`,
    /// then `env` on top.
    pub fn spawn(cwd: &Path, env: &[(&str, &str)]) -> Bin {
        Self::spawn_args(cwd, env, &[])
    }

    /// [`Bin::spawn`] with command-line arguments.
    pub fn spawn_args(cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Bin {
        let mut cmd = Command::new(BIN);
        cmd.env_clear().current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.env("HOST", "127.0.0.1").env("PORT", "0").env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(args);
        let mut child = cmd.spawn().expect("spawn support");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Bin { child, stdout, stderr, base: String::new(), client: client() }
    }

    /// Waits for the banner and reads the URL from it.
    pub async fn ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let out = self.stdout();
            if out.contains("  Dictation: ") {
                let url = out.lines().find_map(|l| l.trim().strip_prefix("URL:")).expect("URL line in the banner");
                self.base = url.trim().to_string();
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server exited early with {status}\n{}", self.output());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no banner\n{}", self.output());
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Standard output so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Both streams, for failure messages.
    pub fn output(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout(), self.stderr())
    }

    /// Resident set size in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// Absolute URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    /// POSTs a JSON body to the ChatKit endpoint.
    pub async fn post(&self, body: &Value) -> reqwest::Response {
        self.client.post(self.url("/support/chatkit")).json(body).send().await.unwrap()
    }

    /// A non-streaming request that must answer 200 JSON.
    pub async fn json(&self, body: Value) -> Value {
        let res = self.post(&body).await;
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, 200, "{body} → {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// A streaming request that must answer 200 SSE; returns its events.
    pub async fn stream(&self, body: Value) -> Vec<Value> {
        let res = self.post(&body).await;
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, 200, "{body} → {text}");
        parse_sse(&text)
    }

    /// `kill -9` and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (up to 20 s) for the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server did not stop on SIGTERM\n{}", self.output());
    }
}

impl Drop for Bin {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `VmRSS` of a process in KiB (0 if it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The soft limit of open files of this process (from `/proc/self/limits`); `None` if unknown.
pub fn nofile_soft_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.trim_start_matches("Max open files").split_whitespace().next()?;
    if soft == "unlimited" { Some(u64::MAX) } else { soft.parse().ok() }
}

/// Parses an SSE body, asserting the exact framing `data: <single-line json>\n\n`.
pub fn parse_sse(text: &str) -> Vec<Value> {
    assert!(text.is_empty() || text.ends_with("\n\n"), "stream must end with a blank line: {text:?}");
    text.split("\n\n").filter(|f| !f.is_empty()).map(parse_frame).collect()
}

fn parse_frame(frame: &str) -> Value {
    let data = frame.strip_prefix("data: ").unwrap_or_else(|| panic!("bad frame {frame:?}"));
    assert!(!data.contains('\n'), "multi-line frame {frame:?}");
    serde_json::from_str(data).unwrap_or_else(|e| panic!("bad JSON {data}: {e}"))
}

/// Reads SSE events one by one while the response is still streaming.
pub struct SseReader {
    res: reqwest::Response,
    buf: Vec<u8>,
    /// Whether the body ended with an error (connection lost) rather than cleanly.
    pub broken: bool,
}

impl SseReader {
    /// Wraps a 200 `text/event-stream` response.
    pub fn new(res: reqwest::Response) -> SseReader {
        assert_eq!(res.status(), 200);
        SseReader { res, buf: Vec::new(), broken: false }
    }

    /// The next event; `None` at the end of the stream or when the connection broke.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = self.buf.drain(..i + 2).collect();
                return Some(parse_frame(std::str::from_utf8(&frame[..i]).unwrap()));
            }
            match self.res.chunk().await {
                Ok(Some(bytes)) => self.buf.extend_from_slice(&bytes),
                Ok(None) => return None,
                Err(_) => {
                    self.broken = true;
                    return None;
                }
            }
        }
    }
}

/// A response read by [`raw_http`].
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body (chunked encoding decoded).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `head` (request line and headers, without the final blank line; `Connection: close` and
/// `Host` are added) and `body` over a fresh TCP connection, and reads the whole response.
pub async fn raw_http(addr: &str, head: &str, body: &[u8]) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes();
    req.extend_from_slice(body);
    // The server may answer (e.g. 413) and close before the whole body is written: ignore write errors.
    let _ = stream.write_all(&req).await;
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no complete response to {head:?}");
    parse_raw_response(&raw)
        .unwrap_or_else(|| panic!("unparsable response to {head:?}: {:?}", String::from_utf8_lossy(&raw)))
}

fn parse_raw_response(raw: &[u8]) -> Option<RawResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { decode_chunked(rest)? } else { rest.to_vec() };
    Some(RawResponse { status, headers, body })
}

fn decode_chunked(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// The ids of items.
pub fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

/// The `type` of each item.
pub fn types(items: &[Value]) -> Vec<String> {
    items.iter().map(|i| i["type"].as_str().unwrap_or("?").to_string()).collect()
}

/// Asserts that no id appears twice.
pub fn assert_unique_ids(items: &[Value]) {
    let all = ids(items);
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), all.len(), "duplicate item ids: {all:?}");
}
