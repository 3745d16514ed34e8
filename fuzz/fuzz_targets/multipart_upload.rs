//! The attachment upload route (`POST|PUT /support/attachments/{id}/upload`) driven through the real
//! router (`support::router::app`, memory store, upload limit 512 bytes) with in-process requests.
//!
//! The first byte picks the mode:
//! * raw: the rest is the body, sent as `multipart/form-data; boundary=fuzzboundary` (mostly) or with a
//!   content type taken from the input's first line;
//! * well-formed: a multipart body built from the bytes (parts with safe names, optional file names and
//!   content types, arbitrary contents, a boundary absent from every content), whose expected answer is
//!   known exactly.
//!
//! Invariants: the route answers only 200, 400 or 413, always with JSON (`{"detail": …}` with one of the
//! route's texts for errors); a failed upload stores nothing; a 200 stores 1–512 bytes, clears the upload
//! descriptor, sets the preview URL and serves the same bytes from `…/content`. A raw non-multipart body
//! is stored exactly; a multipart upload stores a contiguous piece of its body; a well-formed body stores
//! exactly its first `file` part (400 without one, 400 when it is empty, 413 over the limit).

#![no_main]

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chatkit::ChatKitServer;
use chatkit::store::{MemoryStore, RequestContext, Store};
use chatkit::types::{Attachment, AttachmentKind, UploadDescriptor};
use chatkit_fuzz::runtime;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use support::airline::AirlineStore;
use support::app::{AppSettings, SupportApp};
use support::auth::Authenticator;
use support::router::{self, AppState, Limits, RouterOptions};
use support::routes::attachments::{EMPTY_PAYLOAD, MISSING_FILE_FIELD, TOO_LARGE};
use support::signed_urls::UrlSigner;
use tower::ServiceExt;

/// Upload limit of the fixture (small, so the 413 path is reachable with small inputs).
const LIMIT: usize = 512;
const BOUNDARY: &str = "fuzzboundary";
const ID: &str = "atc_fuzz01";
const HOST: &str = "fuzz.test";

struct Fixture {
    router: Router,
    store: Arc<dyn Store>,
    ctx: RequestContext,
    urls: Arc<UrlSigner>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let airline = AirlineStore::new(store.clone());
        let app = SupportApp::new(store.clone(), airline.clone(), None, None, AppSettings::default());
        let urls = Arc::new(UrlSigner::new(vec![7; 32], std::time::Duration::from_secs(3600)));
        let state = AppState {
            chatkit: ChatKitServer::new(store.clone(), Arc::new(app)),
            store: store.clone(),
            airline,
            limits: Limits { max_upload_bytes: LIMIT, ..Limits::default() },
            auth: Arc::new(Authenticator::None),
            urls: urls.clone(),
            user_limits: support::limits::UserLimiter::off(),
            readiness: Default::default(),
        };
        let router = router::app(state, &RouterOptions::default());
        let ctx = RequestContext { base_url: format!("http://{HOST}"), ..RequestContext::default() };
        Fixture { router, store, ctx, urls }
    })
}

/// What the route should answer for a well-formed body, when it is known.
enum Expect {
    /// A contiguous piece of this body (any multipart body).
    PieceOf(Vec<u8>),
    /// Exactly these stored bytes (or the matching 400/413).
    Exactly(Vec<u8>),
    /// 400 with this text.
    BadRequest(&'static str),
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let method = if mode & 4 == 0 { Method::POST } else { Method::PUT };
    let multipart = format!("multipart/form-data; boundary={BOUNDARY}");
    let (content_type, body, expect) = match mode % 4 {
        0 | 1 => (multipart, rest.to_vec(), Expect::PieceOf(rest.to_vec())),
        2 => {
            let (line, body) = match rest.iter().position(|&b| b == b'\n') {
                Some(end) => (&rest[..end], &rest[end + 1..]),
                None => (&rest[..0], rest),
            };
            let content_type = String::from_utf8_lossy(line).into_owned();
            let is_multipart = content_type.trim_start().to_ascii_lowercase().starts_with("multipart/form-data");
            let expect = if is_multipart { Expect::PieceOf(body.to_vec()) } else { Expect::Exactly(body.to_vec()) };
            (content_type, body.to_vec(), expect)
        }
        _ => match well_formed(&mut Unstructured::new(rest)) {
            Ok(Some((boundary, body, expect))) => (format!("multipart/form-data; boundary={boundary}"), body, expect),
            _ => return,
        },
    };
    runtime().block_on(check(method, content_type, body, expect));
});

/// Characters of generated part names and file names (nothing a header parser could misread).
const SAFE: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.";

fn safe_word(u: &mut Unstructured<'_>) -> Result<String> {
    let len = u.int_in_range(1usize..=8)?;
    (0..len).map(|_| u.choose(SAFE).map(|&b| b as char)).collect()
}

/// A well-formed multipart body, its boundary and the expected outcome.
fn well_formed(u: &mut Unstructured<'_>) -> Result<Option<(String, Vec<u8>, Expect)>> {
    let boundary = format!("fuzz{:016x}", u.arbitrary::<u64>()?);
    let delimiter = format!("--{boundary}");
    let mut body = Vec::new();
    let mut file: Option<Vec<u8>> = None;
    for _ in 0..u.int_in_range(0usize..=4)? {
        let name = match u.int_in_range(0u8..=4)? {
            0 | 1 => "file".to_string(),
            2 => "files".to_string(),
            3 => "File".to_string(),
            _ => safe_word(u)?,
        };
        let content: Vec<u8> = match u.int_in_range(0u8..=3)? {
            0 => Vec::new(),
            1 => vec![b'x'; u.int_in_range(LIMIT - 2..=LIMIT + 2)?],
            _ => u.arbitrary()?,
        };
        if content.windows(delimiter.len()).any(|w| w == delimiter.as_bytes()) {
            return Ok(None);
        }
        body.extend_from_slice(format!("{delimiter}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes());
        if u.arbitrary()? {
            body.extend_from_slice(format!("; filename=\"{}\"", safe_word(u)?).as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        if u.arbitrary()? {
            let mime = *u.choose(&["image/png", "application/octet-stream", "text/plain; charset=utf-8"])?;
            body.extend_from_slice(format!("Content-Type: {mime}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&content);
        body.extend_from_slice(b"\r\n");
        if name == "file" && file.is_none() {
            file = Some(content);
        }
    }
    body.extend_from_slice(format!("{delimiter}--\r\n").as_bytes());
    let expect = match file {
        None => Expect::BadRequest(MISSING_FILE_FIELD),
        Some(bytes) => Expect::Exactly(bytes),
    };
    Ok(Some((boundary, body, expect)))
}

async fn call(request: Request<Body>) -> (StatusCode, String, Vec<u8>) {
    let response = fixture().router.clone().oneshot(request).await.expect("the router is infallible");
    let status = response.status();
    let content_type =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("response body");
    (status, content_type, body.to_vec())
}

async fn check(method: Method, content_type: String, body: Vec<u8>, expect: Expect) {
    let f = fixture();
    // A fresh attachment created by `attachments.create`, bytes not uploaded yet.
    f.store.delete_attachment(&f.ctx, ID).await.expect("delete");
    let created = Attachment {
        id: ID.into(),
        name: "photo.png".into(),
        mime_type: "image/png".into(),
        upload_descriptor: Some(UploadDescriptor {
            url: format!("http://{HOST}/support/attachments/{ID}/upload"),
            method: "POST".into(),
            headers: Default::default(),
        }),
        thread_id: None,
        kind: AttachmentKind::Image { preview_url: String::new() },
    };
    f.store.save_attachment(&f.ctx, &created).await.expect("save attachment");

    let Ok(request) = Request::builder()
        .method(method)
        .uri(f.urls.upload_url("", ID, &f.ctx.owner_id))
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, content_type.as_str())
        .body(Body::from(body.clone()))
    else {
        return; // not a valid header value: no request can carry it
    };
    let (status, response_type, response) = call(request).await;
    assert!(response_type.starts_with("application/json"), "{status} answered as {response_type:?}");
    let json: Value = serde_json::from_slice(&response)
        .unwrap_or_else(|e| panic!("{status} body is not JSON ({e}): {}", String::from_utf8_lossy(&response)));
    let stored = f.store.load_attachment_data(&f.ctx, ID).await.expect("load data");
    let attachment = f.store.load_attachment(&f.ctx, ID).await.expect("load attachment");

    if status != StatusCode::OK {
        let detail = json["detail"].as_str().unwrap_or_else(|| panic!("{status} without a detail: {json}"));
        match status {
            StatusCode::BAD_REQUEST => assert!(
                [EMPTY_PAYLOAD, MISSING_FILE_FIELD].contains(&detail)
                    || detail.starts_with("invalid multipart body: ")
                    || detail.starts_with("invalid multipart content type: "),
                "unexpected 400 text {detail:?}"
            ),
            StatusCode::PAYLOAD_TOO_LARGE => assert_eq!(detail, TOO_LARGE),
            other => panic!("upload answered {other}: {json}"),
        }
        assert_eq!(stored, None, "a failed upload ({status}) stored bytes");
        assert_eq!(attachment, created, "a failed upload ({status}) changed the attachment");
    } else {
        let data = stored.expect("a 200 upload stored no bytes");
        assert!(!data.is_empty() && data.len() <= LIMIT, "stored {} bytes", data.len());
        assert_eq!(json["id"], ID);
        assert_eq!(json["upload_descriptor"], Value::Null);
        // The answer carries a signed link on the request's host; the stored attachment keeps no link.
        let preview = json["preview_url"].as_str().unwrap_or_default();
        assert!(preview.starts_with(&format!("http://{HOST}/support/attachments/{ID}/content?")), "{preview}");
        assert_eq!(attachment.upload_descriptor, None);
        assert_eq!(attachment.kind, AttachmentKind::Image { preview_url: String::new() });

        let request = Request::get(preview.trim_start_matches(&format!("http://{HOST}")))
            .header(header::HOST, HOST)
            .body(Body::empty())
            .expect("request");
        let (status, served_type, served) = call(request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(served_type, "image/png");
        assert_eq!(served, data, "…/content serves other bytes than were stored");
    }

    match expect {
        Expect::PieceOf(whole) => {
            if let Some(data) = f.store.load_attachment_data(&f.ctx, ID).await.expect("load") {
                assert!(whole.windows(data.len()).any(|w| w == data), "stored bytes are not a piece of the body");
            }
        }
        Expect::Exactly(bytes) => {
            let want = if bytes.is_empty() {
                StatusCode::BAD_REQUEST
            } else if bytes.len() > LIMIT {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::OK
            };
            assert_eq!(status, want, "{json}");
            if bytes.is_empty() {
                assert_eq!(json["detail"], EMPTY_PAYLOAD);
            }
            if status == StatusCode::OK {
                let data = f.store.load_attachment_data(&f.ctx, ID).await.expect("load");
                assert_eq!(data.as_deref(), Some(&bytes[..]), "stored bytes differ from the uploaded file");
            }
        }
        Expect::BadRequest(text) => {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(json["detail"], text);
        }
    }
}
