//! End-to-end tests of the HTTP surface over real HTTP on 127.0.0.1: health, offline docs, the OpenAPI
//! document, CORS, JSON errors (400/404/405/413/500), attachment upload and content routes (sizes, texts,
//! headers), the customer route and request-context URLs.

mod common;

use axum::routing::get;
use common::*;
use mock_llm::Script;
use serde_json::{Value, json};
use support::config::{Config, CorsOrigins};
use support::router::{PREFLIGHT_ALLOW_METHODS, RouterOptions, with_layers};

const FIVE_MIB: usize = 5 * 1024 * 1024;

async fn server() -> (TempDir, mock_llm::MockServer, TestServer) {
    let dir = TempDir::new("http");
    let mock = mock(Script::new()).await;
    let server = TestServer::with_mock(&dir, &mock).await;
    (dir, mock, server)
}

async fn create_attachment(server: &TestServer, size: u64) -> Value {
    server
        .json(json!({"type": "attachments.create", "params": {"name": "Paris.png", "size": size, "mime_type": "image/png"}}))
        .await
}

#[tokio::test]
async fn health_answers_healthy() {
    let (_dir, _mock, server) = server().await;
    let res = server.client.get(server.url("/support/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.text().await.unwrap(), r#"{"status":"healthy"}"#);
}

#[tokio::test]
async fn docs_are_served_offline() {
    let (_dir, _mock, server) = server().await;
    let no_redirect =
        reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = no_redirect.get(server.url("/docs")).send().await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(res.headers()["location"], "/docs/");

    let res = server.client.get(server.url("/docs/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(html.contains("<div id=\"swagger-ui\"></div>"), "{html}");
    // Every asset the page loads is local, and each one is served.
    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let value = part.split('"').next().unwrap();
            assert!(!value.starts_with("http:") && !value.starts_with("https:") && !value.starts_with("//"), "{value}");
            assets.push(value.trim_start_matches("./").to_string());
        }
    }
    assert!(assets.contains(&"swagger-ui-bundle.js".to_string()), "{assets:?}");
    assert!(assets.contains(&"swagger-ui.css".to_string()), "{assets:?}");
    for asset in &assets {
        let res = server.client.get(server.url(&format!("/docs/{asset}"))).send().await.unwrap();
        assert_eq!(res.status(), 200, "{asset}");
        let body = res.bytes().await.unwrap();
        assert!(!body.is_empty(), "{asset}");
        if asset.ends_with(".css") {
            let css = String::from_utf8_lossy(&body);
            assert!(!css.contains("url(http") && !css.contains("@import"), "{asset} loads external resources");
        }
    }
    let init =
        server.client.get(server.url("/docs/swagger-initializer.js")).send().await.unwrap().text().await.unwrap();
    assert!(init.contains("\"url\": \"/openapi.json\""), "{init}");
    assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
    assert!(!init.contains("http://") && !init.contains("https://"), "{init}");
}

#[tokio::test]
async fn openapi_document_describes_every_route() {
    let (_dir, _mock, server) = server().await;
    let res = server.client.get(server.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "ChatKit Customer Support API");
    assert_eq!(doc["info"]["version"], "0.1.0");
    let ops: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| format!("{} {path}", m.to_uppercase())))
        .collect();
    for op in [
        "POST /support/chatkit",
        "POST /support/attachments/{attachment_id}/upload",
        "PUT /support/attachments/{attachment_id}/upload",
        "GET /support/attachments/{attachment_id}/content",
        "GET /support/customer",
        "GET /support/health",
    ] {
        assert!(ops.contains(&op.to_string()), "missing {op} in {ops:?}");
    }
    let chatkit = &doc["paths"]["/support/chatkit"]["post"];
    let content = chatkit["responses"]["200"]["content"].as_object().unwrap();
    assert!(content.contains_key("application/json") && content.contains_key("text/event-stream"), "{content:?}");
    assert_eq!(
        chatkit["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ChatKitRequest"
    );
    // Every request type is documented (streaming and non-streaming ones) with a "Try it out" example.
    let schemas = &doc["components"]["schemas"];
    let documented: usize = ["StreamingRequest", "NonStreamingRequest"]
        .iter()
        .map(|union| schemas[*union]["oneOf"].as_array().unwrap().len())
        .sum();
    assert_eq!(documented, chatkit::types::REQUEST_TYPES.len());
    let examples = chatkit["requestBody"]["content"]["application/json"]["examples"].as_object().unwrap();
    assert_eq!(examples.len(), chatkit::types::REQUEST_TYPES.len());
    // The examples are real requests: sending them gets real answers.
    let list = server.json(examples["threads.list"]["value"].clone()).await;
    assert_eq!(list, json!({"data": [], "has_more": false}));
}

#[tokio::test]
async fn cors_preflight_and_simple_requests() {
    let (_dir, _mock, server) = server().await;
    let res = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/support/chatkit"))
        .header("Origin", "http://localhost:5171")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type,x-custom")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(h["access-control-allow-methods"], PREFLIGHT_ALLOW_METHODS);
    assert_eq!(h["access-control-allow-methods"], "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT");
    assert_eq!(h["access-control-allow-headers"], "content-type,x-custom");
    assert_eq!(h["access-control-max-age"], "600");
    assert!(h.get("access-control-allow-credentials").is_none());
    assert_eq!(h["content-type"], "text/plain; charset=utf-8");
    assert_eq!(res.text().await.unwrap(), "OK");

    // Preflight of an upload (the browser uploads cross-origin to the backend).
    let res = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/support/attachments/atc_x/upload"))
        .header("Origin", "http://localhost:5171")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");

    let res = server.client.get(server.url("/support/health")).header("Origin", "http://a.test").send().await.unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let res = server.post(&json!({"type": "nope"})).await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn cors_with_configured_origins() {
    let dir = TempDir::new("cors");
    let config = Config { cors_allow_origins: "http://localhost:5171".into(), ..config(&dir, None) };
    assert_eq!(config.cors_origins().unwrap(), CorsOrigins::List(vec!["http://localhost:5171".into()]));
    let server = TestServer::start(config).await;
    let allowed = server
        .client
        .get(server.url("/support/health"))
        .header("Origin", "http://localhost:5171")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "http://localhost:5171");
    let other =
        server.client.get(server.url("/support/health")).header("Origin", "http://evil.test").send().await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn errors_are_json_with_the_right_status() {
    let (_dir, _mock, server) = server().await;
    // 400: malformed JSON, empty object, unknown type (lists the valid types), missing params fields.
    let res = server.client.post(server.url("/support/chatkit")).body("{not json").send().await.unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "invalid_json");
    let (status, body) = server.error(json!({})).await;
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().unwrap().contains("threads.create"), "{body}");
    let (status, body) = server.error(json!({"type": "threads.nope", "params": {}})).await;
    assert_eq!(status, 400);
    let detail = body["detail"].as_str().unwrap();
    for t in chatkit::types::REQUEST_TYPES {
        assert!(detail.contains(t), "{detail}");
    }
    let (status, body) = server.error(json!({"type": "threads.create", "params": {}})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_params")));
    // The raw body is read whatever the content type.
    let res = server
        .client
        .post(server.url("/support/chatkit"))
        .header("content-type", "text/plain")
        .body(r#"{"type":"threads.list","params":{}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // 404: missing thread, unknown path.
    let (status, body) =
        server.error(json!({"type": "threads.get_by_id", "params": {"thread_id": "thr_missing"}})).await;
    assert_eq!(status, 404, "{body}");
    let res = server.client.get(server.url("/nope")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.text().await.unwrap(), r#"{"detail":"Not Found"}"#);
    // 405: wrong method on known paths, with Allow.
    for (method, path) in [
        (reqwest::Method::GET, "/support/chatkit"),
        (reqwest::Method::POST, "/support/health"),
        (reqwest::Method::DELETE, "/support/customer"),
        (reqwest::Method::GET, "/support/attachments/atc_1/upload"),
        (reqwest::Method::POST, "/support/attachments/atc_1/content"),
    ] {
        let res = server.client.request(method.clone(), server.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 405, "{method} {path}");
        assert!(res.headers().get("allow").is_some(), "{method} {path}");
        assert_eq!(res.text().await.unwrap(), r#"{"detail":"Method Not Allowed"}"#, "{method} {path}");
    }
}

#[tokio::test]
async fn chatkit_body_limit_is_413_json() {
    let dir = TempDir::new("limit");
    let config = Config { max_body_bytes: 64 * 1024, ..config(&dir, None) };
    let server = TestServer::start(config).await;
    let big = format!(r#"{{"type":"threads.list","params":{{}},"metadata":{{"pad":"{}"}}}}"#, "x".repeat(64 * 1024));
    let res = server.client.post(server.url("/support/chatkit")).body(big.clone()).send().await.unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["detail"], "Request body is larger than the 65536-byte limit of this endpoint (MAX_BODY_BYTES).");
    // Chunked (no Content-Length) bodies are limited too.
    let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from(big))]);
    let res = server
        .client
        .post(server.url("/support/chatkit"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    // Just under the limit is fine.
    let ok = format!(r#"{{"type":"threads.list","params":{{}},"metadata":{{"pad":"{}"}}}}"#, "x".repeat(60 * 1024));
    let res = server.client.post(server.url("/support/chatkit")).body(ok).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn default_body_limit_fits_large_dictation() {
    let (_dir, mock, server) = server().await;
    // ~9 MB of base64 audio: above common 2 MB framework defaults, below MAX_BODY_BYTES (16 MiB).
    use base64::Engine as _;
    let audio = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 6_500_000]);
    let body =
        json!({"type": "input.transcribe", "params": {"audio_base64": audio, "mime_type": "audio/webm;codecs=opus"}});
    let res = server.post(&body).await;
    assert_eq!(res.status(), 200);
    let text: Value = res.json().await.unwrap();
    assert_eq!(text, json!({"text": mock_llm::DEFAULT_TRANSCRIPT}));
    let req =
        mock.requests().into_iter().find(|r| r.path.ends_with("/audio/transcriptions")).expect("transcription call");
    assert_eq!(req.header("authorization"), Some("Bearer test-key"));
}

#[tokio::test]
async fn upload_checks_texts_and_order() {
    let (_dir, _mock, server) = server().await;
    let att = create_attachment(&server, 10).await;
    let upload = att["upload_descriptor"]["url"].as_str().unwrap().to_string();
    assert!(upload.starts_with(&server.url(&format!("/support/attachments/{}/upload?", att["id"].as_str().unwrap()))));
    let unknown = server.state.urls.upload_url(&server.base, "atc_unknown", "anonymous");

    // Empty → 400 (checked before the id).
    for url in [upload.clone(), unknown.clone()] {
        let res = server.client.post(&url).body(Vec::<u8>::new()).send().await.unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(res.text().await.unwrap(), r#"{"detail":"Attachment payload is required."}"#);
    }
    // Over 5 MiB → 413 (also before the id check).
    for url in [upload.clone(), unknown.clone()] {
        let res = server.client.post(&url).body(vec![1u8; FIVE_MIB + 1]).send().await.unwrap();
        assert_eq!(res.status(), 413);
        assert_eq!(res.text().await.unwrap(), r#"{"detail":"Attachments are limited to 5 MB in this demo."}"#);
    }
    // Unknown id → 404 with the sample's text; path traversal never reaches the store.
    let res = server.client.post(&unknown).body("x").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.text().await.unwrap(), r#"{"detail":"Attachment atc_unknown does not exist."}"#);
    let res = server
        .client
        .post(server.url("/support/attachments/..%2F..%2Fetc%2Fpasswd/upload"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // Multipart without a `file` field → 400.
    let form = reqwest::multipart::Form::new().text("other", "x");
    let res = server.client.post(&upload).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.text().await.unwrap(), r#"{"detail":"Multipart uploads must include a 'file' field."}"#);
}

#[tokio::test]
async fn upload_must_match_the_declared_size_and_happens_once() {
    let (_dir, _mock, server) = server().await;
    let att = create_attachment(&server, 5).await;
    let id = att["id"].as_str().unwrap().to_string();
    let upload = att["upload_descriptor"]["url"].as_str().unwrap().to_string();
    let content = att["preview_url"].as_str().unwrap().to_string();
    let part = |bytes: &[u8]| {
        let part =
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name("Paris.png").mime_str("image/png").unwrap();
        reqwest::multipart::Form::new().part("file", part)
    };
    let mismatch = |n: usize| {
        format!(
            "the upload is {n} bytes but attachment {id} was created with size 5; upload the file that was declared \
             (or create a new attachment)"
        )
    };
    // Fewer or more bytes than declared, raw or multipart (the file part counts, not the framing) → 400.
    for (body, n) in [(&b"1234"[..], 4), (&b"123456"[..], 6), (&[7u8; 10_000][..], 10_000)] {
        let res = server.client.post(&upload).body(body.to_vec()).send().await.unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(res.json::<Value>().await.unwrap(), json!({ "detail": mismatch(n) }));
        let res = server.client.put(&upload).multipart(part(body)).send().await.unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(res.json::<Value>().await.unwrap(), json!({ "detail": mismatch(n) }));
    }
    // Nothing was stored: not uploaded yet, and the upload descriptor is still there.
    assert_eq!(server.client.get(&content).send().await.unwrap().status(), 404);
    let stored = server.state.store.load_attachment(&Default::default(), &id).await.unwrap();
    assert!(stored.upload_descriptor.is_some());

    // The declared size as multipart → 200.
    let res = server.client.post(&upload).multipart(part(b"first")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // Any later upload → 409 saying why, whatever its size or form; the first bytes stay.
    let already =
        format!("attachment {id} is uploaded already; its bytes cannot be replaced (create a new attachment)");
    for res in [
        server.client.post(&upload).multipart(part(b"other")).send().await.unwrap(),
        server.client.put(&upload).body("other").send().await.unwrap(),
    ] {
        assert_eq!(res.status(), 409);
        assert_eq!(res.json::<Value>().await.unwrap(), json!({ "detail": already }));
    }
    let res = server.client.get(&content).send().await.unwrap();
    assert_eq!(res.bytes().await.unwrap().as_ref(), b"first");
}

#[tokio::test]
async fn upload_accepts_exactly_5_mib_multipart_and_raw() {
    let (_dir, _mock, server) = server().await;
    let att = create_attachment(&server, FIVE_MIB as u64).await;
    let id = att["id"].as_str().unwrap().to_string();
    let upload = att["upload_descriptor"]["url"].as_str().unwrap().to_string();
    let content = att["preview_url"].as_str().unwrap().to_string();
    assert!(content.starts_with(&server.url(&format!("/support/attachments/{id}/content?"))));

    // Not uploaded yet → 404 with its own text.
    let res = server.client.get(&content).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.text().await.unwrap(), r#"{"detail":"Attachment has not been uploaded yet."}"#);

    // Exactly 5 MiB as multipart (what ChatKit sends).
    let data: Vec<u8> = (0..FIVE_MIB).map(|i| (i % 251) as u8).collect();
    let part = reqwest::multipart::Part::bytes(data.clone()).file_name("Paris.png").mime_str("image/png").unwrap();
    let res =
        server.client.post(&upload).multipart(reqwest::multipart::Form::new().part("file", part)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    let preview: Value = serde_json::from_str(&body).unwrap();
    let preview = preview["preview_url"].as_str().unwrap().to_string();
    assert!(preview.starts_with(&server.url(&format!("/support/attachments/{id}/content?"))));
    let expected = format!(
        r#"{{"id":"{id}","name":"Paris.png","mime_type":"image/png","upload_descriptor":null,"thread_id":null,"metadata":null,"type":"image","preview_url":"{preview}"}}"#
    );
    assert_eq!(body, expected);

    // 5 MiB + 1 as multipart → 413.
    let part = reqwest::multipart::Part::bytes(vec![0u8; FIVE_MIB + 1]).file_name("x.png");
    let res =
        server.client.post(&upload).multipart(reqwest::multipart::Form::new().part("file", part)).send().await.unwrap();
    assert_eq!(res.status(), 413);

    // Content: bytes, declared type, sample headers.
    let res = server.client.get(&content).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["cache-control"], "private, max-age=600");
    assert_eq!(h["content-disposition"], "inline; filename=\"Paris.png\"");
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(h.get_all("access-control-allow-origin").iter().count(), 1);
    assert_eq!(res.bytes().await.unwrap().as_ref(), data.as_slice());

    // A second upload, here with PUT and a raw body, is refused: the first bytes stay.
    let raw = vec![9u8; FIVE_MIB];
    let res = server.client.put(&upload).header("content-type", "image/png").body(raw.clone()).send().await.unwrap();
    assert_eq!(res.status(), 409);
    let res = server.client.get(&content).send().await.unwrap();
    assert_eq!(res.bytes().await.unwrap().as_ref(), data.as_slice());

    // Exactly 5 MiB raw is accepted too (a fresh attachment).
    let att = create_attachment(&server, FIVE_MIB as u64).await;
    let upload = att["upload_descriptor"]["url"].as_str().unwrap().to_string();
    let res = server.client.put(&upload).header("content-type", "image/png").body(raw.clone()).send().await.unwrap();
    assert_eq!(res.status(), 200);

    // The stored metadata no longer has an upload descriptor.
    let stored = server.state.store.load_attachment(&Default::default(), &id).await.unwrap();
    assert!(stored.upload_descriptor.is_none());

    // Unknown id on the content route; no signature → 403.
    let nope = server.state.urls.preview_url(&server.base, "atc_nope", "anonymous");
    let res = server.client.get(&nope).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.text().await.unwrap(), r#"{"detail":"Attachment atc_nope does not exist."}"#);
    let res = server.client.get(server.url(&format!("/support/attachments/{id}/content"))).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn attachment_urls_follow_the_request_host_and_forwarded_headers_of_trusted_proxies() {
    let (dir, mock, untrusted) = server().await;
    let body = json!({"type": "attachments.create", "params": {"name": "a.png", "size": 1, "mime_type": "image/png"}});
    // Forwarded headers from a peer that is not in TRUSTED_PROXIES are ignored (a client could forge them).
    let res = untrusted
        .client
        .post(untrusted.url("/support/chatkit"))
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    let att: Value = res.json().await.unwrap();
    assert!(att["upload_descriptor"]["url"].as_str().unwrap().starts_with(&untrusted.url("/support/attachments/atc_")));
    let mut trusting = config(&dir, Some(&mock));
    trusting.public_url.trusted_proxies = Some("127.0.0.1, ::1".into());
    let server = TestServer::start(trusting).await;
    let res = server
        .client
        .post(server.url("/support/chatkit"))
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "support.example.com")
        .json(&body)
        .send()
        .await
        .unwrap();
    let att: Value = res.json().await.unwrap();
    let id = att["id"].as_str().unwrap();
    let upload = att["upload_descriptor"]["url"].as_str().unwrap();
    assert!(upload.starts_with(&format!("https://support.example.com/support/attachments/{id}/upload?")), "{upload}");
    let preview = att["preview_url"].as_str().unwrap();
    assert!(
        preview.starts_with(&format!("https://support.example.com/support/attachments/{id}/content?")),
        "{preview}"
    );
    let res = server
        .client
        .post(server.url("/support/chatkit"))
        .header("Host", "localhost:8000")
        .json(&body)
        .send()
        .await
        .unwrap();
    let att: Value = res.json().await.unwrap();
    assert!(
        att["upload_descriptor"]["url"].as_str().unwrap().starts_with("http://localhost:8000/support/attachments/atc_")
    );
    // attachments.create limits (the app's checks, answered before any stream).
    let (status, body) = server.error(json!({"type": "attachments.create", "params": {"name": "a.pdf", "size": 1, "mime_type": "application/pdf"}})).await;
    assert_eq!((status, body["detail"].as_str()), (400, Some("Only image attachments are supported in this demo.")));
    let (status, body) = server.error(json!({"type": "attachments.create", "params": {"name": "a.png", "size": FIVE_MIB + 1, "mime_type": "image/png"}})).await;
    assert_eq!((status, body["detail"].as_str()), (413, Some("Attachments are limited to 5 MB in this demo.")));
}

#[tokio::test]
async fn customer_route_defaults_and_isolation() {
    let (_dir, _mock, server) = server().await;
    let res = server.client.get(server.url("/support/customer")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["customer"]);
    let default = &body["customer"];
    assert_eq!(default["customer_id"], "cus_98421");
    assert_eq!(default["meal_preference"], Value::Null);
    assert_eq!(default["segments"][0]["seat"], "14A");
    // Empty thread_id = the default profile; a thread gets its own fresh one.
    let empty = server.customer("").await;
    assert_eq!(empty["timeline"], default["timeline"]);
    let thread = common::thread_id_of(&server.stream(common::create("hello")).await);
    let own = server.customer(&thread).await;
    assert_eq!(own["name"], "Jordan Miles");
    assert_ne!(own["timeline"], default["timeline"]);
    let field_order: Vec<&String> = default.as_object().unwrap().keys().collect();
    assert_eq!(
        field_order,
        vec![
            "customer_id",
            "name",
            "loyalty_status",
            "loyalty_id",
            "email",
            "phone",
            "home_airport",
            "preferred_routes",
            "travel_summary",
            "tier_benefits",
            "loyalty_progress",
            "segments",
            "bags_checked",
            "meal_preference",
            "special_assistance",
            "timeline",
            "spotlight",
            "booked_widget_ids"
        ]
    );
    // An odd query string is a 400 JSON, not a crash.
    let res = server.client.get(server.url("/support/customer?thread_id=a&thread_id=b")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"detail":"invalid query string: Failed to deserialize query string: duplicate field `thread_id`"}"#
    );
}

#[tokio::test]
async fn customer_route_answers_404_for_unknown_threads_and_writes_nothing() {
    let (_dir, _mock, server) = server().await;
    let thread = common::thread_id_of(&server.stream(common::create("hello")).await);
    let huge = "x".repeat(60_000);
    let deleted = common::thread_id_of(&server.stream(common::create("soon gone")).await);
    server.json(json!({"type": "threads.delete", "params": {"thread_id": deleted}})).await;
    let get = async |id: &str| {
        let res = server.client.get(server.url("/support/customer")).query(&[("thread_id", id)]).send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    };
    for id in ["thr_someone", deleted.as_str()] {
        assert_eq!(get(id).await, (404, r#"{"detail":"No conversation has this thread_id."}"#.to_string()));
    }
    let (status, body) = get(&huge).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.len() < 200, "the id is not echoed: {body}");
    // Reading an existing thread's profile writes nothing either: it is stored on its first change.
    server.customer(&thread).await;
    for key in ["thr_someone", huge.as_str(), deleted.as_str(), thread.as_str()] {
        assert!(server.state.store.kv_get(support::airline::NAMESPACE, key).await.unwrap().is_none());
    }
}

async fn boom() -> &'static str {
    panic!("boom for the test")
}

#[tokio::test]
async fn panics_become_500_json_and_the_server_keeps_serving() {
    let routes = axum::Router::new().route("/boom", get(boom)).route("/ok", get(|| async { "fine" }));
    let app = with_layers(routes, &RouterOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = client();
    let res = client.get(format!("http://{addr}/boom")).header("Origin", "http://x").send().await.unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert_eq!(res.text().await.unwrap(), r#"{"detail":"internal server error; the cause was logged on the server"}"#);
    let res = client.get(format!("http://{addr}/ok")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "fine");
}

#[tokio::test]
async fn health_reports_a_dead_database() {
    // A PostgreSQL URL pointing at a closed port: start-up fails with one clear line, no panic.
    let dir = TempDir::new("deaddb");
    let port = free_port();
    let config = Config { database_url: format!("postgres://postgres@127.0.0.1:{port}/test"), ..config(&dir, None) };
    let err = match support::startup::build(&config).await {
        Ok(_) => panic!("start-up with a dead database must fail"),
        Err(e) => e,
    };
    let line = err.to_string();
    assert!(line.starts_with(&format!("cannot open the database postgres://postgres@127.0.0.1:{port}/test")), "{line}");
    assert!(!line.contains('\n'), "{line}");
    assert_eq!(err.exit_code(), 1);
}

#[tokio::test]
async fn health_is_503_when_the_database_goes_away() {
    use sqlx::Connection as _;
    const ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";
    let connect = sqlx::PgConnection::connect(ADMIN);
    let Ok(Ok(mut admin)) = tokio::time::timeout(std::time::Duration::from_secs(5), connect).await else {
        eprintln!("skipped: no PostgreSQL at 127.0.0.1:5432");
        return;
    };
    let name = format!("support_health_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
    let dir = TempDir::new("health503");
    let config = Config { database_url: format!("postgres://postgres@127.0.0.1:5432/{name}"), ..config(&dir, None) };
    let server = TestServer::start(config).await;
    let res = server.client.get(server.url("/support/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"))).execute(&mut admin).await.unwrap();
    let res = server.client.get(server.url("/support/health")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["detail"], "the database is unavailable; try again shortly", "{body}");
    // Other routes answer a JSON 5xx, never a hang or a dropped connection.
    let res = server.client.get(server.url("/support/customer")).send().await.unwrap();
    assert!(res.status().is_server_error(), "{}", res.status());
    assert_eq!(res.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn ids_with_nul_answer_as_missing_ids_on_postgres() {
    use sqlx::Connection as _;
    const ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";
    let connect = sqlx::PgConnection::connect(ADMIN);
    let Ok(Ok(mut admin)) = tokio::time::timeout(std::time::Duration::from_secs(5), connect).await else {
        eprintln!("skipped: no PostgreSQL at 127.0.0.1:5432");
        return;
    };
    let name = format!("support_nul_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
    let dir = TempDir::new("nulids");
    let mock = mock(Script::new()).await;
    let config =
        Config { database_url: format!("postgres://postgres@127.0.0.1:5432/{name}"), ..config(&dir, Some(&mock)) };
    let server = TestServer::start(config).await;
    let thread = thread_id_of(&server.stream(create("hello")).await);

    // PostgreSQL text cannot hold NUL: such ids must get the answer of any other missing id.
    let requests = |id: &str| {
        [
            json!({"type": "threads.get_by_id", "params": {"thread_id": id}}),
            json!({"type": "threads.update", "params": {"thread_id": id, "title": "t"}}),
            json!({"type": "threads.delete", "params": {"thread_id": id}}),
            json!({"type": "threads.list", "params": {"after": id}}),
            json!({"type": "items.list", "params": {"thread_id": id}}),
            json!({"type": "items.list", "params": {"thread_id": thread, "after": id}}),
            json!({"type": "items.feedback", "params": {"thread_id": thread, "item_ids": [id], "kind": "positive"}}),
            json!({"type": "threads.retry_after_item", "params": {"thread_id": thread, "item_id": id}}),
            json!({"type": "threads.retry_after_item", "params": {"thread_id": id, "item_id": "msg_1"}}),
            json!({"type": "attachments.delete", "params": {"attachment_id": id}}),
        ]
    };
    for (missing, with_nul) in requests("nope").into_iter().zip(requests("no\u{0}pe")) {
        let expected = server.post(&missing).await;
        let (status, body) = (expected.status(), expected.text().await.unwrap());
        let got = server.post(&with_nul).await;
        let (got_status, got_body) = (got.status(), got.text().await.unwrap());
        assert!(!status.is_server_error(), "{missing} → {status} {body}");
        assert_eq!(got_status, status, "{with_nul} → {got_body}, but {missing} → {body}");
        assert_eq!(got_body.replace("no\\u0000pe", "nope"), body, "{with_nul}");
    }
    // The side panel's profile of such a thread: the 404 of an unknown thread, not a database error.
    for query in ["nope", "a%00b", &format!("{thread}%00")] {
        let res = server.client.get(server.url(&format!("/support/customer?thread_id={query}"))).send().await.unwrap();
        assert_eq!(res.status(), 404, "{query}: {}", res.text().await.unwrap());
    }
    // The thread itself is intact.
    let page = server.json(json!({"type": "items.list", "params": {"thread_id": thread}})).await;
    assert!(!page["data"].as_array().unwrap().is_empty(), "{page}");

    drop(server);
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"))).execute(&mut admin).await.unwrap();
}
