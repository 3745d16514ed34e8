//! Helpers of the fault, security and property tests: the real `support` binary as a child process
//! ([`Bin`]: banner-discovered URL, its logs, its RSS from `/proc`, `kill -9`), a raw HTTP/1.1 client for
//! requests `reqwest` would normalize (`../` paths, hostile headers), the soft `RLIMIT_NOFILE`, and a
//! lock that keeps the heavy tests of one binary from running at the same time. Include `common` next
//! to it: the process and SSE helpers live there.

#![allow(dead_code)]

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::time::Duration;

use mock_llm::MockServer;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::process::{ServerProcess, command};
use crate::common::{TempDir, parse_sse};

/// Serializes the load-heavy tests of one test binary (the machine has 2 cores).
pub(crate) static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A running `support` process on 127.0.0.1 with a port the OS picks; SIGKILLed on drop. The process
/// helpers (`ready`, `url`, `post`, `stdout`, `stderr`, `output`, `terminate`, `kill`) are those of
/// [`ServerProcess`].
pub(crate) struct Bin(ServerProcess);

impl Bin {
    /// Spawns the binary in `cwd` with a clean environment: `HOST=127.0.0.1`, `PORT=0`, `RUST_LOG=info`,
    /// then `env` on top.
    pub(crate) fn spawn(cwd: &Path, env: &[(&str, &str)]) -> Bin {
        let mut cmd = command(cwd, &[("HOST", "127.0.0.1"), ("PORT", "0")]);
        cmd.envs(env.iter().copied());
        Bin(ServerProcess::spawn("server", cmd))
    }

    /// The binary on the SQLite file of `dir`, answering with `mock` when given (without retries), with
    /// `extra` settings on top; returns once it serves.
    pub(crate) async fn start(dir: &TempDir, mock: Option<&MockServer>, extra: &[(&str, &str)]) -> Bin {
        let mut env: Vec<(&str, String)> = vec![("DATABASE_URL", dir.sqlite_url())];
        if let Some(mock) = mock {
            env.push(("OPENAI_API_KEY", "test-key".into()));
            env.push(("OPENAI_BASE_URL", mock.openai_base_url()));
            env.push(("MODEL_MAX_RETRIES", "0".into()));
        }
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut server = Bin::spawn(dir.path(), &env);
        server.ready().await;
        server
    }

    /// Resident set size in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub(crate) fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// `127.0.0.1:PORT`.
    pub(crate) fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    /// A non-streaming request that must answer 200 JSON.
    pub(crate) async fn json(&self, body: Value) -> Value {
        let res = self.post(&body).await;
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, 200, "{body} → {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// A streaming request that must answer 200 SSE; returns its events.
    pub(crate) async fn stream(&self, body: Value) -> Vec<Value> {
        let res = self.post(&body).await;
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, 200, "{body} → {text}");
        parse_sse(&text)
    }
}

impl Deref for Bin {
    type Target = ServerProcess;

    fn deref(&self) -> &ServerProcess {
        &self.0
    }
}

impl DerefMut for Bin {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.0
    }
}

/// `VmRSS` of a process in KiB (0 if it is gone).
pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The soft limit of open files of this process (from `/proc/self/limits`); `None` if unknown.
pub(crate) fn nofile_soft_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.trim_start_matches("Max open files").split_whitespace().next()?;
    if soft == "unlimited" { Some(u64::MAX) } else { soft.parse().ok() }
}

/// A response read by [`raw_http`].
#[derive(Debug, Clone)]
pub(crate) struct RawResponse {
    /// Status code.
    pub(crate) status: u16,
    /// Headers, names lower-cased, in order.
    pub(crate) headers: Vec<(String, String)>,
    /// The body (chunked encoding decoded).
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    /// The first value of a header.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `head` (request line and headers, without the final blank line; `Connection: close` and
/// `Host` are added) and `body` over a fresh TCP connection, and reads the whole response.
pub(crate) async fn raw_http(addr: &str, head: &str, body: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes();
    req.extend_from_slice(body);
    // The server may answer (e.g. 413) and close before the whole body is written: ignore write errors.
    let _ = stream.write_all(&req).await;
    let (raw, closed) = read_until_closed(&mut stream, Duration::from_secs(30)).await;
    assert!(closed, "no complete response to {head:?}");
    parse_raw_response(&raw)
        .unwrap_or_else(|| panic!("unparsable response to {head:?}: {:?}", String::from_utf8_lossy(&raw)))
}

/// Reads what arrives on `stream` until the server closes it (or a read fails), for at most `within`;
/// returns the bytes and whether it closed in time.
pub(crate) async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let mut raw = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    (raw, read.is_ok())
}

/// A complete HTTP/1.1 response (head and body, chunked or not); `None` when it is not one.
pub(crate) fn parse_raw_response(raw: &[u8]) -> Option<RawResponse> {
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
pub(crate) fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

/// The `type` of each item.
pub(crate) fn types(items: &[Value]) -> Vec<String> {
    items.iter().map(|i| i["type"].as_str().unwrap_or("?").to_string()).collect()
}

/// Asserts that no id appears twice.
pub(crate) fn assert_unique_ids(items: &[Value]) {
    let all = ids(items);
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), all.len(), "duplicate item ids: {all:?}");
}
