//! Per-user access, end to end over HTTP against the real `support` binary (mock model on 127.0.0.1).
//!
//! * Isolation: with HS256 tokens, and with RS256 tokens checked against a loopback JWKS, user B gets
//!   exactly the 404 of a missing object for every request type naming A's thread, item or attachment;
//!   thread lists are disjoint; the customer route answers only the thread's owner.
//! * Rejections: no token, malformed, wrong signature, expired, not yet valid, wrong `iss` / `aud`,
//!   `alg: none`, HS256 signed with the RSA public key → 401 with `WWW-Authenticate: Bearer` and a detail
//!   that says why without echoing the token; nothing stored, no model request.
//! * JWKS rotation: a token signed with a new key is accepted after one refetch; unknown key ids do not
//!   refetch more than once a minute.
//! * `header` mode, `none` mode's warning, start-up misconfigurations (exit 2, one line naming the
//!   setting) and the `token` subcommand.

mod access_common;
mod common;

use std::time::Duration;

use access_common::*;
use common::process::command;
use common::{TempDir, mock};
use mock_llm::Script;
use serde_json::{Value, json};

#[tokio::test]
async fn hs256_users_see_only_their_own_objects() {
    let dir = TempDir::new("access-hs");
    let mock = mock(Script::new()).await;
    let server = start_server(dir.path(), &mock, &[("AUTH_MODE", "jwt"), ("AUTH_JWT_SECRET", SECRET)]).await;
    let a = Caller::bearer(&server.base, &hs256(&claims("alice"), SECRET.as_bytes()));
    let b = Caller::bearer(&server.base, &hs256(&claims("bob"), SECRET.as_bytes()));
    assert_isolated(&a, &b, &mock).await;
    // Health and the docs stay public.
    let anonymous = Caller::with_headers(&server.base, &[]);
    assert_eq!(anonymous.get("/support/health").await.status, 200);
    assert_eq!(anonymous.get("/openapi.json").await.status, 200);
}

#[tokio::test]
async fn rs256_users_are_isolated_through_a_rotating_jwks() {
    let dir = TempDir::new("access-rs");
    let mock = mock(Script::new()).await;
    let jwks = JwksServer::start(vec![jwk(&RSA1, "k1")]).await;
    let server = start_server(dir.path(), &mock, &[("AUTH_MODE", "jwt"), ("AUTH_JWKS_URL", &jwks.url)]).await;
    assert_eq!(jwks.fetches(), 1, "keys are fetched once at start");
    let a = Caller::bearer(&server.base, &rs256(&claims("alice"), &RSA1, Some("k1")));
    let b = Caller::bearer(&server.base, &rs256(&claims("bob"), &RSA1, Some("k1")));
    assert_isolated(&a, &b, &mock).await;
    assert_eq!(jwks.fetches(), 1, "known keys are not fetched again");

    // The provider rotates to a new key: the first token naming it triggers one refetch and is accepted.
    jwks.rotate(vec![jwk(&RSA1, "k1"), jwk(&RSA2, "k2")]);
    let rotated = Caller::bearer(&server.base, &rs256(&claims("alice"), &RSA2, Some("k2")));
    assert_eq!(rotated.thread_ids().await.len(), 1, "same owner, same threads");
    assert_eq!(jwks.fetches(), 2);
    // Unknown key ids do not make the server refetch again within the minute.
    for kid in ["k3", "k4", "k5"] {
        let forged = Caller::bearer(&server.base, &rs256(&claims("mallory"), &RSA2, Some(kid)));
        let answer = forged.post(&json!({"type": "threads.list", "params": {}})).await;
        assert_eq!(answer.status, 401);
        assert!(answer.json()["detail"].as_str().unwrap().contains("`kid`"), "{}", answer.body);
    }
    assert_eq!(jwks.fetches(), 2, "unknown key ids refetched the JWKS more than once a minute");
}

/// Every bad credential is a 401 with a Bearer challenge and a detail saying why.
#[tokio::test]
async fn bad_tokens_are_rejected_with_a_reason() {
    let dir = TempDir::new("access-reject");
    let mock = mock(Script::new()).await;
    let jwks = JwksServer::start(vec![jwk(&RSA1, "k1")]).await;
    let server = start_server(
        dir.path(),
        &mock,
        &[
            ("AUTH_MODE", "jwt"),
            ("AUTH_JWKS_URL", &jwks.url),
            ("AUTH_JWT_ISSUER", "https://issuer.test/"),
            ("AUTH_JWT_AUDIENCE", "support-api"),
        ],
    )
    .await;
    let good = json!({"sub": "alice", "iss": "https://issuer.test/", "aud": "support-api", "exp": now() + 600});
    let with = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let public_pem = std::fs::read(RSA1.public_path).unwrap();
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no token", None, "missing bearer token"),
        ("not bearer", Some("Basic YWxpY2U6cHc=".into()), "must be `Bearer <token>`"),
        ("malformed", Some("Bearer not-a-jwt".into()), "malformed"),
        ("wrong signature", Some(format!("Bearer {}", rs256(&good, &RSA2, Some("k1")))), "signature is invalid"),
        (
            "expired",
            Some(format!("Bearer {}", rs256(&with(json!({"exp": now() - 120})), &RSA1, Some("k1")))),
            "expired",
        ),
        (
            "not yet valid",
            Some(format!("Bearer {}", rs256(&with(json!({"nbf": now() + 600})), &RSA1, Some("k1")))),
            "not valid yet",
        ),
        (
            "wrong issuer",
            Some(format!("Bearer {}", rs256(&with(json!({"iss": "https://evil.test/"})), &RSA1, Some("k1")))),
            "issuer",
        ),
        (
            "wrong audience",
            Some(format!("Bearer {}", rs256(&with(json!({"aud": "other-api"})), &RSA1, Some("k1")))),
            "audience",
        ),
        ("alg none", Some(format!("Bearer {}", unsigned(&good))), "`none` are not accepted"),
        (
            "HS256 with the RSA public key",
            Some(format!("Bearer {}", hs256(&good, &public_pem))),
            "HS256 are not accepted",
        ),
        (
            "no exp",
            Some(format!(
                "Bearer {}",
                rs256(&json!({"sub": "alice", "iss": "https://issuer.test/", "aud": "support-api"}), &RSA1, Some("k1"))
            )),
            "no `exp` claim",
        ),
    ];
    // Within the leeway an expired token still passes; the good one passes.
    let slightly_expired = Caller::bearer(&server.base, &rs256(&with(json!({"exp": now() - 20})), &RSA1, Some("k1")));
    assert_eq!(slightly_expired.post(&json!({"type": "threads.list", "params": {}})).await.status, 200);
    let alice = Caller::bearer(&server.base, &rs256(&good, &RSA1, Some("k1")));
    for (name, authorization, reason) in cases {
        let headers: Vec<(&str, &str)> = authorization.iter().map(|v| ("authorization", v.as_str())).collect();
        let caller = Caller::with_headers(&server.base, &headers);
        for request in [common::create("should not be stored"), json!({"type": "threads.list", "params": {}})] {
            let answer = caller.post(&request).await;
            assert_eq!(answer.status, 401, "{name}: {}", answer.body);
            assert!(answer.www_authenticate.as_deref().is_some_and(|c| c.starts_with("Bearer")), "{name}");
            assert_eq!(answer.content_type, "application/json");
            let detail = answer.json()["detail"].as_str().unwrap().to_string();
            assert!(detail.contains(reason), "{name}: detail `{detail}` does not say `{reason}`");
            if let Some(authorization) = &authorization {
                let token = authorization.split_once(' ').map(|(_, t)| t).unwrap_or(authorization);
                assert!(!answer.body.contains(token), "{name}: the token was echoed");
            }
        }
        let customer = caller.get("/support/customer").await;
        assert_eq!(customer.status, 401, "{name}");
    }
    assert!(alice.thread_ids().await.is_empty(), "a rejected request stored a thread");
    assert!(common::model_requests(&mock).is_empty(), "a rejected request reached the model");
}

#[tokio::test]
async fn header_mode_takes_the_owner_from_the_proxy() {
    let dir = TempDir::new("access-header");
    let mock = mock(Script::new()).await;
    let server = start_server(
        dir.path(),
        &mock,
        &[("AUTH_MODE", "header"), ("AUTH_HEADER", "X-Forwarded-User"), ("TRUSTED_PROXIES", "127.0.0.1,::1")],
    )
    .await;
    let a = Caller::with_headers(&server.base, &[("x-forwarded-user", "alice")]);
    let b = Caller::with_headers(&server.base, &[("x-forwarded-user", "bob")]);
    assert_isolated(&a, &b, &mock).await;
    let nobody = Caller::with_headers(&server.base, &[]);
    let answer = nobody.post(&json!({"type": "threads.list", "params": {}})).await;
    assert_eq!(answer.status, 401);
    assert!(
        answer.json()["detail"].as_str().unwrap().contains("X-Forwarded-User")
            || answer.body.contains("x-forwarded-user")
    );
}

#[tokio::test]
async fn open_mode_warns_beyond_loopback_and_keeps_the_quick_start() {
    let dir = TempDir::new("access-none");
    let mock = mock(Script::new()).await;
    let server = start_server(dir.path(), &mock, &[("HOST", "0.0.0.0")]).await;
    let anyone = Caller::with_headers(&server.base, &[]);
    let events = anyone.post(&common::create("hi")).await.events();
    assert_eq!(events[0]["type"], "thread.created");
    let warnings: Vec<String> =
        server.stderr().lines().filter(|l| l.contains("AUTH_MODE=none")).map(String::from).collect();
    assert_eq!(warnings.len(), 1, "{}", server.output());
    let local = start_server(dir.path(), &mock, &[("DATABASE_URL", "sqlite::memory:")]).await;
    assert!(!local.stderr().contains("AUTH_MODE=none"), "{}", local.output());
}

/// Runs the binary to completion and returns (exit code, stdout, stderr).
fn run(cwd: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = command(cwd, env).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn misconfigurations_stop_the_start_with_one_line() {
    let dir = TempDir::new("access-config");
    let db = format!("sqlite://{}/chatkit.db", dir.path().display());
    let dead_port = common::free_port();
    let dead_jwks = format!("http://127.0.0.1:{dead_port}/jwks.json");
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("AUTH_MODE", "jwt")], "AUTH_MODE=jwt needs a key"),
        (vec![("AUTH_MODE", "jwt"), ("AUTH_JWT_SECRET", "short")], "AUTH_JWT_SECRET must be at least 32 bytes"),
        (
            vec![("AUTH_MODE", "jwt"), ("AUTH_JWT_PUBLIC_KEY", "/nonexistent/key.pem")],
            "AUTH_JWT_PUBLIC_KEY: cannot read",
        ),
        (
            vec![("AUTH_MODE", "jwt"), ("AUTH_JWT_PUBLIC_KEY", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))],
            "AUTH_JWT_PUBLIC_KEY",
        ),
        (vec![("AUTH_MODE", "jwt"), ("AUTH_JWKS_URL", "not a url")], "AUTH_JWKS_URL must be"),
        (vec![("AUTH_MODE", "jwt"), ("AUTH_JWKS_URL", dead_jwks.as_str())], "AUTH_JWKS_URL: cannot fetch"),
        (
            vec![("AUTH_MODE", "jwt"), ("AUTH_JWT_SECRET", SECRET), ("AUTH_JWT_ALGORITHMS", "RS256")],
            "AUTH_JWT_ALGORITHMS",
        ),
        (vec![("AUTH_MODE", "header")], "AUTH_MODE=header needs AUTH_HEADER"),
        (vec![("AUTH_MODE", "magic")], "AUTH_MODE"),
        (vec![("PUBLIC_BASE_URL", "support.example.com")], "PUBLIC_BASE_URL"),
        (vec![("TRUSTED_PROXIES", "10.0.0.0/99")], "TRUSTED_PROXIES"),
    ];
    for (env, expected) in cases {
        let mut env = env;
        env.push(("DATABASE_URL", db.as_str()));
        env.push(("PORT", "0"));
        let (code, stdout, stderr) = run(dir.path(), &[], &env);
        assert_eq!(code, Some(2), "{env:?}: {stdout}{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{env:?}: {stderr}");
        assert!(lines[0].contains(expected), "{env:?}: {stderr}");
        assert!(!stderr.contains(SECRET));
    }
}

#[tokio::test]
async fn the_token_subcommand_mints_accepted_tokens() {
    let dir = TempDir::new("access-token");
    let (code, stdout, stderr) =
        run(dir.path(), &["token", "--sub", "alice", "--ttl", "10m"], &[("AUTH_JWT_SECRET", SECRET)]);
    assert_eq!(code, Some(0), "{stderr}");
    let token = stdout.trim().to_string();
    assert_eq!(token.split('.').count(), 3, "{stdout}");
    let (code, _, stderr) = run(dir.path(), &["token", "--sub", "alice"], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("AUTH_JWT_SECRET"), "{stderr}");

    let mock = mock(Script::new()).await;
    let server = start_server(dir.path(), &mock, &[("AUTH_MODE", "jwt"), ("AUTH_JWT_SECRET", SECRET)]).await;
    let alice = Caller::bearer(&server.base, &token);
    assert!(alice.thread_ids().await.is_empty());
    // The same claims signed independently by the test name the same owner.
    let independent = Caller::bearer(&server.base, &hs256(&claims("alice"), SECRET.as_bytes()));
    common::thread_id_of(&independent.post(&common::create("hi")).await.events());
    assert_eq!(alice.thread_ids().await.len(), 1);
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// The `owner`, `expires` and `sig` parameters of a signed link, and the link with one of them replaced.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let (path, query) = url.split_once('?').unwrap();
    let query: Vec<String> = query
        .split('&')
        .map(|kv| if kv.starts_with(&format!("{name}=")) { format!("{name}={value}") } else { kv.to_string() })
        .collect();
    format!("{path}?{}", query.join("&"))
}

#[tokio::test]
async fn signed_links_are_checked_and_refreshed_and_never_take_a_callers_host() {
    use base64::Engine as _;
    let dir = TempDir::new("access-links");
    let mock = mock(Script::new()).await;
    let server = start_server(
        dir.path(),
        &mock,
        &[("AUTH_MODE", "jwt"), ("AUTH_JWT_SECRET", SECRET), ("PREVIEW_URL_TTL_SECS", "1")],
    )
    .await;
    let a = Caller::bearer(&server.base, &hs256(&claims("alice"), SECRET.as_bytes()));
    let owned = create_objects(&a).await;
    let second = create_objects(&a).await;
    // The link works without any Authorization header (what an <img> sends).
    let anonymous = Caller::with_headers(&server.base, &[]);
    let created = a
        .ok(json!({"type": "attachments.create", "params": {"name": "b.png", "size": 4, "mime_type": "image/png"}}))
        .await;
    let fresh_preview = created["preview_url"].as_str().unwrap().to_string();
    let upload_url = created["upload_descriptor"]["url"].as_str().unwrap().to_string();
    assert_eq!(anonymous.upload(&upload_url, b"\x89PNG".to_vec()).await.status, 200);
    let served = anonymous.get(&fresh_preview).await;
    assert_eq!(served.status, 200, "{}", served.body);
    // Tampered id, owner, expiry or purpose → 403 JSON.
    let other_id = fresh_preview.replace(created["id"].as_str().unwrap(), &second.attachment);
    let bob = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("bob");
    let tampered = [
        other_id,
        with_param(&fresh_preview, "owner", &bob),
        with_param(&fresh_preview, "expires", "99999999999"),
        with_param(&fresh_preview, "sig", "AAAA"),
        fresh_preview.replace("/content?", "/upload?"),
    ];
    for url in tampered {
        let answer = if url.contains("/upload?") {
            anonymous.upload(&url, b"x".to_vec()).await
        } else {
            anonymous.get(&url).await
        };
        assert_eq!(answer.status, 403, "{url}: {}", answer.body);
        assert!(answer.json()["detail"].as_str().unwrap().contains("signature"), "{}", answer.body);
    }
    // Expired (PREVIEW_URL_TTL_SECS=1) → 403 saying so; listing the items again signs a fresh link that works.
    let events = a
        .post(&json!({"type": "threads.create", "params": {"input": {"content": [{"type": "input_text", "text": "look"}], "attachments": [owned.attachment], "inference_options": {}}}}))
        .await
        .events();
    let thread = common::thread_id_of(&events);
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let expired = anonymous.get(&owned.preview_url).await;
    assert_eq!(expired.status, 403);
    assert!(expired.json()["detail"].as_str().unwrap().contains("expired"), "{}", expired.body);
    let items = a.ok(json!({"type": "items.list", "params": {"thread_id": thread, "order": "asc"}})).await;
    let relisted = items["data"][0]["attachments"][0]["preview_url"].as_str().unwrap().to_string();
    assert_ne!(relisted, owned.preview_url);
    assert_eq!(anonymous.get(&relisted).await.status, 200);

    // A forged Host or X-Forwarded-Host only shapes the links sent back to that same caller; another
    // request for the same item gets links on its own host (nothing was stored with the forged one).
    let forged = Caller {
        headers: [a.headers.clone(), vec![("x-forwarded-host".into(), "evil.example".into())]].concat(),
        ..a.clone()
    };
    let listed = forged.ok(json!({"type": "items.list", "params": {"thread_id": thread, "order": "asc"}})).await;
    let link = listed["data"][0]["attachments"][0]["preview_url"].as_str().unwrap();
    assert!(link.starts_with(&server.base), "X-Forwarded-Host from an untrusted peer was used: {link}");
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("chatkit.db") {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(12).any(|w| w == b"evil.example"),
                "a caller's host was stored in {}",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn public_base_url_fixes_every_link() {
    let dir = TempDir::new("access-public");
    let mock = mock(Script::new()).await;
    let server = start_server(dir.path(), &mock, &[("PUBLIC_BASE_URL", "https://support.example.com/")]).await;
    let caller =
        Caller::with_headers(&server.base, &[("x-forwarded-host", "evil.example"), ("x-forwarded-proto", "http")]);
    let created = caller
        .ok(json!({"type": "attachments.create", "params": {"name": "b.png", "size": 4, "mime_type": "image/png"}}))
        .await;
    for link in [&created["preview_url"], &created["upload_descriptor"]["url"]] {
        assert!(link.as_str().unwrap().starts_with("https://support.example.com/support/attachments/atc_"), "{link}");
    }
    // The link's path and signature still work when sent to the server directly.
    let local =
        created["upload_descriptor"]["url"].as_str().unwrap().replace("https://support.example.com", &server.base);
    assert_eq!(caller.upload(&local, b"\x89PNG".to_vec()).await.status, 200);
}
