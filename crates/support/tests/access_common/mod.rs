//! Shared helpers of the access tests: token minting (independent of the server's own `token` code: the
//! tests build claims and sign them with `jsonwebtoken` directly), a loopback JWKS server whose key set
//! can be rotated and whose fetches are counted, the `support` binary started in an authentication mode,
//! and a caller that sends requests as one user.

#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

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
