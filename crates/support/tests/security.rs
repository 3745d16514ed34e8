//! Security checks, end to end over HTTP on 127.0.0.1.
//!
//! * Secrets: the real binary runs with fake keys (`…SECRET…`) and a PostgreSQL URL with a password
//!   (SQLite when PostgreSQL is not reachable), `RUST_LOG=debug`; turns include a tool call, errors whose
//!   provider bodies echo the key, a cut stream and dictation; a second run uses the key `bad-key`, which
//!   the mock answers with 401. No secret may appear in stdout (banner), stderr (logs), any event, any
//!   response body, `--help` or `--version`.
//! * Attachment ids: `../`, percent-encoded traversal, absolute paths, NUL bytes and very long ids on the
//!   upload and content routes (sent raw, not normalized by a client library) answer 400/404 with a small
//!   JSON body, never a file from disk, and never write one.
//! * Limits: `MAX_BODY_BYTES` and `MAX_UPLOAD_BYTES` at and one byte over the limit, with and without
//!   `Content-Length`, raw and multipart → 413 JSON.
//! * CORS with `CORS_ALLOW_ORIGINS=http://a.test`: the allowed origin is echoed on every route (errors,
//!   streams, preflights), other origins get no `access-control-allow-origin`.

mod common;
mod faults_common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TempDir, TestServer, config, create, mock, parse_sse};
use faults_common as fc;
use mock_llm::{Match, MockServer, Reply, Script, ToolCallSpec};
use serde_json::{Value, json};
use support::config::Config;

// --- Secrets --------------------------------------------------------------------------------------------

const OPENAI_SECRET: &str = "sk-test-SECRET-1234567890";
const GEMINI_SECRET: &str = "AIza-test-SECRET-GEMINI-5566";
const PG_PASSWORD: &str = "pg-SECRET-pass-42";

/// Every string that must never be shown.
const SECRETS: [&str; 4] = [OPENAI_SECRET, GEMINI_SECRET, PG_PASSWORD, "SECRET"];

/// A fresh PostgreSQL schema (dropped on drop) and a `DATABASE_URL` for it carrying a password, or `None`
/// when PostgreSQL does not answer on 127.0.0.1:5432.
struct PgSchema {
    name: String,
}

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";

impl PgSchema {
    async fn create() -> Option<PgSchema> {
        use sqlx::Connection;
        let probe =
            tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect("127.0.0.1:5432")).await;
        if !matches!(probe, Ok(Ok(_))) {
            return None;
        }
        let name = format!("ck_security_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let mut conn = sqlx::PgConnection::connect(PG_ADMIN).await.ok()?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{name}\""))).execute(&mut conn).await.ok()?;
        let _ = conn.close().await;
        Some(PgSchema { name })
    }

    /// The URL with a password (ignored by the `trust` authentication of the test server).
    fn url_with_password(&self) -> String {
        format!("postgres://postgres:{PG_PASSWORD}@127.0.0.1:5432/test?options=-c%20search_path%3D{}", self.name)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(PG_ADMIN).await {
                    let sql = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// Asserts that none of `secrets` occurs in `text` (`what` names the place in the failure message).
fn assert_clean(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{what} shows the secret {secret:?}:\n{text}");
    }
}

/// Sends a ChatKit request and returns (status, body text).
async fn send(server: &fc::Bin, body: &Value) -> (u16, String) {
    let res = server.post(body).await;
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

/// Mock script: each user text chooses a behaviour; the error texts echo the key like some providers do.
fn leaky_script(secret: &str) -> Script {
    let echo = format!("Incorrect API key provided: {secret}. You can find your API key in your account.");
    Script::new()
        .on(
            Match::user_text("use a tool"),
            Reply::tool_calls(
                None,
                vec![ToolCallSpec::new("change_seat", json!({"flight_number": "OA476", "seat": "14C"}))],
            ),
        )
        .on(
            Match::user_text("echo 500"),
            Reply::HttpError { status: 500, body: json!({"error": {"message": echo.clone()}}), retry_after: None },
        )
        .on(
            Match::user_text("echo 429"),
            Reply::HttpError { status: 429, body: json!({"error": {"message": echo.clone()}}), retry_after: Some(0) },
        )
        .on(Match::user_text("echo failed"), Reply::stream_error(echo.clone()))
        .on(Match::user_text("cut short"), Reply::cut_after("Partial answer before the cut", 2))
        .after_tool_reply(Reply::text("Done: {tool_output}"))
}

/// Drives turns, dictation and some error responses; returns every response body.
async fn drive(server: &fc::Bin) -> Vec<String> {
    let mut bodies = Vec::new();
    for text in ["Hello there", "Please use a tool for seat 14C", "echo 500", "echo 429", "echo failed", "cut short"] {
        let (status, body) = send(server, &create(text)).await;
        assert_eq!(status, 200, "{text}: {body}");
        let events = parse_sse(&body);
        assert!(events.iter().any(|e| e["type"] == "thread.item.done"), "{text}: {body}");
        bodies.push(body);
    }
    let transcribe = json!({"type": "input.transcribe", "params": {"audio_base64": "AAAA", "mime_type": "audio/ogg"}});
    bodies.push(send(server, &transcribe).await.1);
    for bad in [json!({"type": "threads.nope"}), json!({"type": "threads.get_by_id", "params": {"thread_id": "thr_x"}})]
    {
        let (status, body) = send(server, &bad).await;
        assert!((400..500).contains(&status), "{bad} → {status} {body}");
        bodies.push(body);
    }
    let res = server.client.get(server.url("/support/health")).send().await.unwrap();
    bodies.push(res.text().await.unwrap());
    bodies
}

/// Runs `support <arg>` with `env` and returns stdout + stderr.
fn run_flag(cwd: &std::path::Path, env: &[(&str, &str)], arg: &str) -> String {
    let mut cmd = Command::new(common::process::BIN);
    cmd.env_clear().current_dir(cwd).stdin(Stdio::null()).arg(arg);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{arg}: {out:?}");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// One run of the binary with secrets configured; asserts that none leaks anywhere.
async fn secrets_run(provider: &str, database_url: &str, mock: &MockServer) {
    let dir = TempDir::new("secrets");
    let openai_base = mock.openai_base_url();
    let gemini_base = mock.gemini_base_url();
    let env = [
        ("RUST_LOG", "debug"),
        ("MODEL_PROVIDER", provider),
        ("OPENAI_API_KEY", OPENAI_SECRET),
        ("GEMINI_API_KEY", GEMINI_SECRET),
        ("OPENAI_BASE_URL", openai_base.as_str()),
        ("GEMINI_BASE_URL", gemini_base.as_str()),
        ("DATABASE_URL", database_url),
        ("MODEL_MAX_RETRIES", "1"),
        // Configured but unused (AUTH_MODE=none): still never shown.
        ("AUTH_JWT_SECRET", "jwt-SECRET-0123456789abcdef0123456789"),
        ("URL_SIGNING_KEY", "url-SECRET-0123456789abcdef0123456789"),
    ];
    let mut server = fc::Bin::spawn(dir.path(), &env);
    server.ready().await;
    let bodies = drive(&server).await;
    // The mock really received the key (so the test would see it if it were echoed back).
    let requests = mock.requests();
    assert!(!requests.is_empty());
    for body in &bodies {
        assert_clean(&format!("a {provider} response body"), body, &SECRETS);
    }
    // The errors were real, and clients get our own words: the provider's text (which echoed the key)
    // stays out of every body, even redacted.
    let all = bodies.join("\n");
    assert!(all.contains("model service failed to answer (HTTP 500)."), "{all}");
    assert!(!all.contains("Incorrect API key provided"), "{all}");
    assert_eq!(server.terminate(), Some(0));
    let (stdout, stderr) = (server.stdout(), server.stderr());
    assert!(stderr.contains(" DEBUG "), "logs are not at debug level:\n{stderr}");
    assert_clean("the banner", &stdout, &SECRETS);
    assert_clean("the logs", &stderr, &SECRETS);
    // The echoed key reached the logs as well, redacted.
    assert!(stderr.contains("Incorrect API key provided: [redacted]."), "{stderr}");
    if database_url.contains(PG_PASSWORD) {
        assert!(stdout.contains("  Database:  postgres://postgres"), "{stdout}");
    }
    for flag in ["--help", "--version"] {
        // The names of the AUTH_JWT_SECRET setting contain the word; their values must not appear.
        let text = run_flag(dir.path(), &env, flag).replace("AUTH_JWT_SECRET", "").replace("auth-jwt-secret", "");
        assert_clean(flag, &text, &SECRETS);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_logs_events_errors_help_or_banner() {
    let mock = mock(leaky_script(OPENAI_SECRET)).await;
    let schema = PgSchema::create().await;
    let db_dir = TempDir::new("secrets-db");
    let database_url = match &schema {
        Some(s) => s.url_with_password(),
        None => {
            eprintln!("note: no PostgreSQL on 127.0.0.1:5432; the database password check is skipped");
            db_dir.sqlite_url()
        }
    };
    secrets_run("openai", &database_url, &mock).await;
    let mock = common::mock(leaky_script(GEMINI_SECRET)).await;
    secrets_run("gemini", &db_dir.sqlite_url(), &mock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_key_gives_a_clear_error_and_is_never_shown() {
    let mock = mock(Script::new()).await;
    let dir = TempDir::new("badkey");
    let base = mock.openai_base_url();
    let db = dir.sqlite_url();
    let env = [
        ("RUST_LOG", "debug"),
        ("OPENAI_API_KEY", mock_llm::BAD_KEY),
        ("OPENAI_BASE_URL", base.as_str()),
        ("DATABASE_URL", db.as_str()),
        ("MODEL_MAX_RETRIES", "2"),
    ];
    let mut server = fc::Bin::spawn(dir.path(), &env);
    server.ready().await;
    let (status, body) = send(&server, &create("Hello with a bad key")).await;
    assert_eq!(status, 200);
    let events = parse_sse(&body);
    assert_eq!(
        events.last().unwrap(),
        &json!({"type": "error", "code": "custom",
                "message": "The OpenAI API rejected the API key (check OPENAI_API_KEY in .env).", "allow_retry": false})
    );
    let transcribe = json!({"type": "input.transcribe", "params": {"audio_base64": "AAAA", "mime_type": "audio/ogg"}});
    let (status, transcribe_body) = send(&server, &transcribe).await;
    assert!(status >= 400, "{status} {transcribe_body}");
    assert!(transcribe_body.contains("rejected the API key"), "{transcribe_body}");
    assert_eq!(server.terminate(), Some(0));
    let key = mock_llm::BAD_KEY;
    for (what, text) in [("the stream", body), ("dictation", transcribe_body), ("the banner", server.stdout())] {
        assert_clean(what, &text, &[key]);
    }
    let logs = server.stderr();
    assert_clean("the logs", &logs, &[key]);
    assert!(logs.contains(" DEBUG "));
    // A 401 is not retried.
    assert!(!logs.contains("retrying"), "{logs}");
}

// --- Attachment ids -------------------------------------------------------------------------------------

/// A server with SQLite, no model, limits of 4 KiB (body) and 2 KiB (upload), and one CORS origin.
async fn limited_server(dir: &TempDir) -> TestServer {
    TestServer::start(Config {
        max_body_bytes: 4096,
        max_upload_bytes: 2048,
        cors_allow_origins: "http://a.test".into(),
        ..config(dir, None)
    })
    .await
}

/// `attachments.create` for a PNG of `size` bytes; returns its id.
async fn create_attachment(server: &TestServer, size: usize) -> String {
    let att = server
        .json(
            json!({"type": "attachments.create", "params": {"name": "p.png", "size": size, "mime_type": "image/png"}}),
        )
        .await;
    att["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn attachment_ids_cannot_traverse_paths() {
    let dir = TempDir::new("traversal");
    let server = limited_server(&dir).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    // A file outside that a traversal would reach, and a name a traversal upload would create.
    let canary_dir = TempDir::new("canary");
    let canary_content = format!("CANARY-{}", uuid::Uuid::new_v4().simple());
    let canary = canary_dir.path().join("canary.txt");
    std::fs::write(&canary, &canary_content).unwrap();
    let canary_abs = canary.display().to_string();
    let planted = format!("planted-{}", uuid::Uuid::new_v4().simple());

    // The legitimate flow works (so the refusals below are about the ids, not a broken route).
    let id = create_attachment(&server, 3).await;
    let res = server.client.post(server.upload_url(&id)).body("png").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = server.client.get(server.content_url(&id)).send().await.unwrap();
    assert_eq!(res.bytes().await.unwrap().as_ref(), b"png");

    let enc = |s: &str| s.replace('/', "%2F");
    let long = format!("atc_{}", "a".repeat(5000));
    let ids: Vec<String> = vec![
        format!("../../../../../..{canary_abs}"),
        format!("..%2F..%2F..%2F..%2F..%2F..{}", enc(&canary_abs)),
        format!("%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e{}", enc(&canary_abs)),
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd".into(),
        "..%5c..%5c..%5cetc%5cpasswd".into(),
        enc(&canary_abs),
        format!("/{canary_abs}"),
        format!("atc_..%2F..%2F..%2F..%2F..%2F..{}", enc(&canary_abs)),
        format!("atc_{id}%2F..%2F..%2F{planted}"),
        format!("..%2F..%2F..%2F..%2F..%2F..%2Ftmp%2F{planted}"),
        format!("{id}%00.png"),
        format!("{id}%2F..%2F{id}"),
        "atc_%2e%2e".into(),
        "atc_..".into(),
        "%252e%252e%252fetc%252fpasswd".into(),
        "atc_%C0%AE%C0%AE%2Fetc%2Fpasswd".into(),
        format!("atc_{}", "a".repeat(65)),
        long.clone(),
        format!("atc_{}", "a".repeat(60_000)),
    ];
    for raw_id in &ids {
        for (method, route, body) in
            [("GET", "content", &b""[..]), ("POST", "upload", &b"data"[..]), ("PUT", "upload", &b"data"[..])]
        {
            let head = format!(
                "{method} /support/attachments/{raw_id}/{route} HTTP/1.1\r\nContent-Type: application/octet-stream\r\n\
                 Content-Length: {}",
                body.len()
            );
            let res = fc::raw_http(&addr, &head, body).await;
            let shown: String = raw_id.chars().take(80).collect();
            assert!([400, 404].contains(&res.status), "{method} …/{shown}…/{route} → {} {}", res.status, res.text());
            let text = res.text();
            let detail: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
            assert!(detail["detail"].is_string(), "{text}");
            assert!(text.len() < 512, "{method} …/{shown}…/{route}: error body of {} bytes", text.len());
            assert!(!text.contains(&canary_content) && !text.contains("root:"), "{text}");
        }
    }
    // The same ids through the ChatKit protocol: refused before any file or stream.
    let long_in_json = format!("atc_{}", "a".repeat(2000));
    for raw_id in ["../../etc/passwd", canary_abs.as_str(), long_in_json.as_str()] {
        let (status, body) =
            server.error(json!({"type": "attachments.delete", "params": {"attachment_id": raw_id}})).await;
        assert!([400, 404].contains(&status), "{status} {body}");
        let mut input = common::message("see attachment");
        input["attachments"] = json!([raw_id]);
        let (status, body) = server.error(json!({"type": "threads.create", "params": {"input": input}})).await;
        assert!([400, 404].contains(&status), "{status} {body}");
        assert!(!body.to_string().contains(&canary_content));
    }
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), canary_content, "the canary was changed");
    for place in [std::env::temp_dir(), std::path::PathBuf::from("/tmp"), std::env::current_dir().unwrap()] {
        assert!(!place.join(&planted).exists(), "an upload wrote {planted} into {}", place.display());
    }
    // Still exactly one thread-less attachment, served as uploaded.
    let res = server.client.get(server.content_url(&id)).send().await.unwrap();
    assert_eq!(res.bytes().await.unwrap().as_ref(), b"png");
}

// --- Limits ---------------------------------------------------------------------------------------------

/// A body sent without `Content-Length` (chunked).
fn chunked(bytes: Vec<u8>) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = bytes.chunks(1000).map(|c| Ok(c.to_vec())).collect();
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}

/// Asserts a 413 JSON answer with exactly this detail.
async fn assert_413(res: reqwest::Response, detail: &str) {
    assert_eq!(res.status(), 413);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.json::<Value>().await.unwrap(), json!({ "detail": detail }));
}

#[tokio::test]
async fn body_and_upload_limits_answer_413_json() {
    let dir = TempDir::new("limits");
    let server = limited_server(&dir).await;
    let chatkit = server.url("/support/chatkit");
    let request = |size: usize| {
        let mut body = br#"{"type":"threads.list","params":{"limit":1}}"#.to_vec();
        body.resize(size, b' ');
        body
    };
    let too_big = "Request body is larger than the 4096-byte limit of this endpoint (MAX_BODY_BYTES).";
    let res = server.client.post(&chatkit).body(request(4096)).send().await.unwrap();
    assert_eq!(res.status(), 200, "exactly at the limit");
    let res = server.client.post(&chatkit).body(chunked(request(4096))).send().await.unwrap();
    assert_eq!(res.status(), 200, "exactly at the limit, chunked");
    assert_413(server.client.post(&chatkit).body(request(4097)).send().await.unwrap(), too_big).await;
    assert_413(server.client.post(&chatkit).body(chunked(request(4097))).send().await.unwrap(), too_big).await;
    assert_413(server.client.post(&chatkit).body(chunked(request(1 << 20))).send().await.unwrap(), too_big).await;
    // A declared length over the limit is refused before the body is read.
    let addr = server.base.trim_start_matches("http://").to_string();
    let res = fc::raw_http(&addr, "POST /support/chatkit HTTP/1.1\r\nContent-Length: 1000000000", b"{}").await;
    assert_eq!(res.status, 413);
    assert_eq!(serde_json::from_slice::<Value>(&res.body).unwrap(), json!({ "detail": too_big }));

    let upload_limit = support::routes::attachments::TOO_LARGE;
    let id = create_attachment(&server, 2048).await;
    let upload = server.upload_url(&id);
    assert_413(server.client.post(&upload).body(vec![7u8; 2049]).send().await.unwrap(), upload_limit).await;
    assert_413(server.client.post(&upload).body(chunked(vec![7u8; 2049])).send().await.unwrap(), upload_limit).await;
    assert_413(server.client.put(&upload).body(chunked(vec![7u8; 4 << 20])).send().await.unwrap(), upload_limit).await;
    let part =
        |n: usize| reqwest::multipart::Part::bytes(vec![9u8; n]).file_name("p.png").mime_str("image/png").unwrap();
    let form = reqwest::multipart::Form::new().part("file", part(2049));
    assert_413(server.client.post(&upload).multipart(form).send().await.unwrap(), upload_limit).await;
    // Nothing was stored by the refused uploads.
    let res = server.client.get(server.content_url(&id)).send().await.unwrap();
    assert_eq!(res.status(), 404);
    // At the limit: accepted, raw and multipart.
    let form = reqwest::multipart::Form::new().part("file", part(2048));
    assert_eq!(server.client.post(&upload).multipart(form).send().await.unwrap().status(), 200);
    let res = server.client.get(server.content_url(&id)).send().await.unwrap();
    assert_eq!(res.bytes().await.unwrap().as_ref(), &vec![9u8; 2048][..]);
    // Bytes are uploaded once.
    assert_eq!(server.client.post(&upload).body(vec![7u8; 2048]).send().await.unwrap().status(), 409);
}

// --- CORS -----------------------------------------------------------------------------------------------

fn allow_origin(res: &reqwest::Response) -> Option<String> {
    res.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn cors_follows_the_configured_origin_list() {
    let dir = TempDir::new("corslist");
    let server = limited_server(&dir).await;
    let id = create_attachment(&server, 3).await;
    server.client.post(server.upload_url(&id)).body("png").send().await.unwrap();
    let content = server.content_url(&id);
    for (origin, expected) in [("http://a.test", Some("http://a.test")), ("http://b.test", None), ("null", None)] {
        let c = &server.client;
        let requests = [
            c.get(server.url("/support/health")),
            c.get(server.url("/support/nope")),
            c.get(&content),
            c.get(server.url("/support/customer")),
            c.post(server.url("/support/chatkit")).json(&json!({"type": "threads.list", "params": {}})),
            c.post(server.url("/support/chatkit")).json(&json!({"type": "threads.nope"})),
            c.post(server.url("/support/chatkit")).json(&create("hi")),
        ];
        for req in requests {
            let res = req.header("Origin", origin).send().await.unwrap();
            let url = res.url().to_string();
            assert_eq!(allow_origin(&res).as_deref(), expected, "{origin} → {url} ({})", res.status());
            if expected.is_some() {
                let vary = res
                    .headers()
                    .get_all("vary")
                    .iter()
                    .map(|v| v.to_str().unwrap().to_lowercase())
                    .collect::<Vec<_>>();
                assert!(vary.iter().any(|v| v.contains("origin")), "{url}: vary {vary:?}");
            }
        }
        // Preflights.
        let res = server
            .client
            .request(reqwest::Method::OPTIONS, server.url("/support/chatkit"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(allow_origin(&res).as_deref(), expected, "preflight from {origin}");
        if expected.is_some() {
            assert_eq!(res.status(), 200);
            let h = res.headers();
            assert_eq!(h["access-control-allow-methods"], support::router::PREFLIGHT_ALLOW_METHODS);
            assert_eq!(h["access-control-allow-headers"], "content-type");
            assert_eq!(h["access-control-max-age"], "600");
            assert!(h.get("access-control-allow-credentials").is_none());
            assert_eq!(res.text().await.unwrap(), "OK");
        }
    }
    // Without an Origin header no CORS header is added either.
    let res = server.client.get(server.url("/support/health")).send().await.unwrap();
    assert_eq!(allow_origin(&res), None);
}
