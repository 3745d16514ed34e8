//! Shared helpers of the access tests: token minting (independent of the server's own `token` code: the
//! tests build claims and sign them with `jsonwebtoken` directly), a loopback JWKS server whose key set
//! can be rotated and whose fetches are counted, the `support` binary started in an authentication mode,
//! a caller that sends requests as one user, the isolation check between two users and the checks of the
//! per-user limits (both also run across PostgreSQL replicas).

#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::common::process::{ServerProcess, command};

/// HS256 secret of the tests (32 bytes or more, as the server requires).
pub(crate) const SECRET: &str = "test-secret-0123456789-abcdefghijklmnop";

/// A test RSA key pair (PEM files under `tests/fixtures/auth`).
pub(crate) struct RsaKey {
    /// Private key, PEM.
    pub(crate) private: &'static [u8],
    /// Public key file.
    pub(crate) public_path: &'static str,
}

pub(crate) const RSA1: RsaKey = RsaKey {
    private: include_bytes!("../fixtures/auth/rsa1.key.pem"),
    public_path: concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/auth/rsa1.pub.pem"),
};
pub(crate) const RSA2: RsaKey = RsaKey {
    private: include_bytes!("../fixtures/auth/rsa2.key.pem"),
    public_path: concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/auth/rsa2.pub.pem"),
};

/// Seconds since the epoch.
pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Standard claims for `sub`, valid for an hour.
pub(crate) fn claims(sub: &str) -> Value {
    json!({"sub": sub, "iat": now(), "exp": now() + 3600})
}

/// An HS256 token over `claims` signed with `secret`.
pub(crate) fn hs256(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret).unwrap()).unwrap()
}

/// An RS256 token over `claims` with key id `kid`.
pub(crate) fn rs256(claims: &Value, key: &RsaKey, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(key.private).unwrap()).unwrap()
}

/// An unsigned `alg: none` token.
pub(crate) fn unsigned(claims: &Value) -> String {
    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(claims))
}

/// The public JWK of `key` under `kid`.
pub(crate) fn jwk(key: &RsaKey, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(&EncodingKey::from_rsa_pem(key.private).unwrap(), Algorithm::RS256).unwrap();
    jwk.common.key_id = Some(kid.to_string());
    jwk
}

/// A JWKS document served on 127.0.0.1, replaceable at run time; counts its fetches.
pub(crate) struct JwksServer {
    /// `http://127.0.0.1:PORT/.well-known/jwks.json`
    pub(crate) url: String,
    keys: Arc<Mutex<JwkSet>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    /// Serves `keys`.
    pub(crate) async fn start(keys: Vec<Jwk>) -> JwksServer {
        let set = Arc::new(Mutex::new(JwkSet { keys }));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (s, f) = (set.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let (s, f) = (s.clone(), f.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    let doc = s.lock().unwrap().clone();
                    axum::Json(doc)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        JwksServer { url: format!("http://{addr}/.well-known/jwks.json"), keys: set, fetches }
    }

    /// Replaces the served keys (the identity provider rotated them).
    pub(crate) fn rotate(&self, keys: Vec<Jwk>) {
        self.keys.lock().unwrap().keys = keys;
    }

    /// How many times the document was fetched.
    pub(crate) fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// Starts the binary in `cwd` with the mock model and `env` on top, and waits for its banner.
pub(crate) async fn start_server(cwd: &Path, mock: &mock_llm::MockServer, env: &[(&str, &str)]) -> ServerProcess {
    let db = format!("sqlite://{}/chatkit.db", cwd.display());
    let base = mock.openai_base_url();
    let mut all: Vec<(&str, &str)> = vec![
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("DATABASE_URL", db.as_str()),
        ("OPENAI_API_KEY", "test-key"),
        ("OPENAI_BASE_URL", base.as_str()),
        ("MODEL_MAX_RETRIES", "0"),
    ];
    all.extend_from_slice(env);
    let mut server = ServerProcess::spawn("server", command(cwd, &all));
    server.ready().await;
    server
}

/// An HTTP answer: status, selected headers, body text.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) www_authenticate: Option<String>,
    pub(crate) retry_after: Option<String>,
    pub(crate) content_type: String,
    pub(crate) body: String,
}

impl Answer {
    /// The body as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body))
    }

    /// The SSE events of a stream.
    pub(crate) fn events(&self) -> Vec<Value> {
        assert_eq!(self.status, 200, "{}", self.body);
        crate::common::parse_sse(&self.body)
    }
}

/// Sends requests to one server as one user (`auth` = the value of `Authorization`, or extra headers).
#[derive(Clone)]
pub(crate) struct Caller {
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    pub(crate) headers: Vec<(String, String)>,
}

impl Caller {
    /// A caller with a bearer token.
    pub(crate) fn bearer(base: &str, token: &str) -> Caller {
        Caller::with_headers(base, &[("authorization", &format!("Bearer {token}"))])
    }

    /// A caller sending these headers on every request.
    pub(crate) fn with_headers(base: &str, headers: &[(&str, &str)]) -> Caller {
        Caller {
            base: base.to_string(),
            client: crate::common::client(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let mut req = req;
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let res = req.send().await.unwrap();
        let header = |name: &str| res.headers().get(name).map(|v| v.to_str().unwrap().to_string());
        let (www_authenticate, retry_after) = (header("www-authenticate"), header("retry-after"));
        let content_type = header("content-type").unwrap_or_default();
        let status = res.status().as_u16();
        Answer { status, www_authenticate, retry_after, content_type, body: res.text().await.unwrap() }
    }

    /// POSTs a ChatKit request.
    pub(crate) async fn post(&self, body: &Value) -> Answer {
        self.send(self.client.post(format!("{}/support/chatkit", self.base)).json(body)).await
    }

    /// GETs a path or an absolute URL.
    pub(crate) async fn get(&self, path_or_url: &str) -> Answer {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        self.send(self.client.get(url)).await
    }

    /// POSTs raw bytes to an absolute URL (attachment upload).
    pub(crate) async fn upload(&self, url: &str, bytes: Vec<u8>) -> Answer {
        self.send(self.client.post(url).header("content-type", "application/octet-stream").body(bytes)).await
    }

    /// A non-streaming request that must succeed.
    pub(crate) async fn ok(&self, body: Value) -> Value {
        let a = self.post(&body).await;
        assert_eq!(a.status, 200, "{body} → {}", a.body);
        a.json()
    }

    /// The ids of the caller's threads.
    pub(crate) async fn thread_ids(&self) -> Vec<String> {
        let page = self.ok(json!({"type": "threads.list", "params": {"limit": 100}})).await;
        page["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()).collect()
    }
}

/// Requests naming a thread, an item and an attachment, one per request type that names any of them.
pub(crate) fn requests_naming(thread: &str, item: &str, attachment: &str) -> Vec<(&'static str, Value)> {
    let action = json!({"type": "noop", "payload": {}});
    let with_attachment = json!({"content": [{"type": "input_text", "text": "hi"}], "attachments": [attachment], "inference_options": {}});
    vec![
        ("threads.get_by_id", json!({"type": "threads.get_by_id", "params": {"thread_id": thread}})),
        ("threads.update", json!({"type": "threads.update", "params": {"thread_id": thread, "title": "mine now"}})),
        ("items.list", json!({"type": "items.list", "params": {"thread_id": thread}})),
        (
            "items.feedback",
            json!({"type": "items.feedback", "params": {"thread_id": thread, "item_ids": [item], "kind": "positive"}}),
        ),
        (
            "threads.add_user_message",
            json!({"type": "threads.add_user_message", "params": {"thread_id": thread, "input": crate::common::message("hello")}}),
        ),
        (
            "threads.add_client_tool_output",
            json!({"type": "threads.add_client_tool_output", "params": {"thread_id": thread, "result": {}}}),
        ),
        (
            "threads.add_structured_input",
            json!({"type": "threads.add_structured_input", "params": {"thread_id": thread, "item_id": item, "input": {"status": "answered", "answers": {}}}}),
        ),
        (
            "threads.retry_after_item",
            json!({"type": "threads.retry_after_item", "params": {"thread_id": thread, "item_id": item}}),
        ),
        (
            "threads.custom_action",
            json!({"type": "threads.custom_action", "params": {"thread_id": thread, "item_id": item, "action": action}}),
        ),
        (
            "threads.sync_custom_action",
            json!({"type": "threads.sync_custom_action", "params": {"thread_id": thread, "item_id": item, "action": action}}),
        ),
        ("threads.create", json!({"type": "threads.create", "params": {"input": with_attachment}})),
        ("attachments.delete", json!({"type": "attachments.delete", "params": {"attachment_id": attachment}})),
        ("threads.delete", json!({"type": "threads.delete", "params": {"thread_id": thread}})),
    ]
}

/// What A owns after one turn and one uploaded attachment.
pub(crate) struct Owned {
    pub(crate) thread: String,
    pub(crate) item: String,
    pub(crate) attachment: String,
    pub(crate) preview_url: String,
}

pub(crate) async fn create_objects(a: &Caller) -> Owned {
    let events = a.post(&crate::common::create("Hello from A")).await.events();
    let thread = crate::common::thread_id_of(&events);
    let items = a.ok(json!({"type": "items.list", "params": {"thread_id": thread, "limit": 50, "order": "asc"}})).await;
    let item = items["data"][0]["id"].as_str().unwrap().to_string();
    let created = a
        .ok(json!({"type": "attachments.create", "params": {"name": "a.png", "size": 4, "mime_type": "image/png"}}))
        .await;
    let attachment = created["id"].as_str().unwrap().to_string();
    let upload_url = created["upload_descriptor"]["url"].as_str().unwrap().to_string();
    let uploaded = a.upload(&upload_url, b"\x89PNG".to_vec()).await;
    assert_eq!(uploaded.status, 200, "{}", uploaded.body);
    let preview_url = uploaded.json()["preview_url"].as_str().unwrap().to_string();
    Owned { thread, item, attachment, preview_url }
}

/// B sees A's objects exactly as missing ones; nothing of A's changes; the model is not called for B.
pub(crate) async fn assert_isolated(a: &Caller, b: &Caller, mock: &mock_llm::MockServer) {
    let owned = create_objects(a).await;
    let b_thread = crate::common::thread_id_of(&b.post(&crate::common::create("Hello from B")).await.events());
    assert_eq!(a.thread_ids().await, vec![owned.thread.clone()]);
    assert_eq!(b.thread_ids().await, vec![b_thread.clone()]);

    let model_calls = crate::common::model_requests(mock).len();
    let (missing_thread, missing_item, missing_attachment) =
        ("thr_00000000000000000000missing", "msg_00000000000000000000missing", "atc_00000000000000000000missing");
    let theirs = requests_naming(&owned.thread, &owned.item, &owned.attachment);
    let missing = requests_naming(missing_thread, missing_item, missing_attachment);
    for ((name, on_theirs), (_, on_missing)) in theirs.iter().zip(missing.iter()) {
        let got = b.post(on_theirs).await;
        let expected = b.post(on_missing).await;
        assert_eq!(got.status, 404, "{name} on A's objects: {}", got.body);
        let normalize = |body: &str, ids: [&str; 3]| ids.iter().fold(body.to_string(), |s, id| s.replace(id, "<id>"));
        assert_eq!(
            normalize(&got.body, [&owned.thread, &owned.item, &owned.attachment]),
            normalize(&expected.body, [missing_thread, missing_item, missing_attachment]),
            "{name}: not the answer for a missing object"
        );
    }
    let customer = b.get(&format!("/support/customer?thread_id={}", owned.thread)).await;
    let customer_missing = b.get(&format!("/support/customer?thread_id={missing_thread}")).await;
    assert_eq!(customer.status, 404, "{}", customer.body);
    assert_eq!(customer.body.replace(&owned.thread, "<id>"), customer_missing.body.replace(missing_thread, "<id>"));
    assert_eq!(a.get(&format!("/support/customer?thread_id={}", owned.thread)).await.status, 200);
    // B's requests made no model call and changed nothing of A's.
    assert_eq!(crate::common::model_requests(mock).len(), model_calls, "B's rejected requests reached the model");
    assert_eq!(a.thread_ids().await, vec![owned.thread.clone()]);
    let thread = a.ok(json!({"type": "threads.get_by_id", "params": {"thread_id": owned.thread}})).await;
    assert_ne!(thread["title"], "mine now");
    assert_eq!(b.thread_ids().await, vec![b_thread]);
    // A's attachment bytes: not for B, not without a valid signature.
    assert_eq!(a.get(&owned.preview_url).await.status, 200);
    let unsigned = owned.preview_url.split('?').next().unwrap().to_string();
    assert_eq!(b.get(&unsigned).await.status, 403);
    assert_eq!(a.get(&unsigned).await.status, 403);
}

/// Sends a streaming request and returns its open stream once the first event arrived.
pub(crate) async fn open_stream(caller: &Caller, body: &Value) -> crate::common::SseReader {
    let mut req = caller.client.post(format!("{}/support/chatkit", caller.base)).json(body);
    for (k, v) in &caller.headers {
        req = req.header(k, v);
    }
    let mut stream = crate::common::SseReader::new(req.send().await.unwrap());
    let first = stream.next().await.expect("a first event");
    assert_eq!(first["type"], "thread.created", "{first}");
    stream
}

/// Reads a stream to its end.
pub(crate) async fn drain(mut stream: crate::common::SseReader) {
    while stream.next().await.is_some() {}
    assert!(!stream.broken);
}

/// Waits until the mock model has received `n` requests.
pub(crate) async fn wait_for_model_requests(mock: &mock_llm::MockServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while mock.requests().len() < n {
        assert!(Instant::now() < deadline, "the model got {} requests, expected {n}", mock.requests().len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts a 429 whose detail names `setting` and whose `Retry-After` is whole seconds within `range`.
pub(crate) fn assert_too_many(answer: &Answer, setting: &str, range: std::ops::RangeInclusive<u64>) {
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert!(answer.content_type.starts_with("application/json"), "{answer:?}");
    let detail = answer.json()["detail"].as_str().unwrap().to_string();
    assert!(detail.contains(setting), "{detail}");
    let retry: u64 = answer.retry_after.as_deref().expect("Retry-After").parse().expect("whole seconds");
    assert!(range.contains(&retry), "Retry-After {retry} not in {range:?}");
}

/// Creates an image attachment of `size` bytes and returns `(id, upload URL, preview URL)`.
pub(crate) async fn new_attachment(caller: &Caller, size: usize) -> (String, String, String) {
    let params = json!({"name": "photo.png", "size": size, "mime_type": "image/png"});
    let created = caller.ok(json!({"type": "attachments.create", "params": params})).await;
    let text = |v: &Value| v.as_str().unwrap().to_string();
    (text(&created["id"]), text(&created["upload_descriptor"]["url"]), text(&created["preview_url"]))
}

/// Sends a streaming request until it is admitted: a stream slot is given back just after its response
/// ended (in the background with PostgreSQL), so a request right after the end may still find it taken.
pub(crate) async fn admitted_soon(caller: &Caller, body: &Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = caller.post(body).await;
        if answer.status == 200 {
            answer.events();
            return;
        }
        assert_eq!(answer.status, 429, "{}", answer.body);
        assert!(Instant::now() < deadline, "the stream slots were not given back: {}", answer.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
