//! Signed attachment URLs: the browser uploads to `upload_url` and loads `preview_url` with a plain
//! `<img>`, without the `Authorization` header, so these two URLs carry their own proof instead.
//!
//! A URL names the attachment id in its path and carries the owner, an expiry and an HMAC-SHA256 over
//! (purpose, id, expiry, owner) in its query. Nothing else is trusted: a changed id, owner, purpose or
//! expiry breaks the signature, and the owner it proves is the one every store call then filters by.
//! Upload URLs live 15 minutes; preview URLs `PREVIEW_URL_TTL_SECS` (24 h by default), and are signed
//! afresh each time an item is listed or streamed, so a stored item never holds a stale or foreign link.
//! Preview expiries are rounded up to a step so the same image keeps the same URL (and browser cache)
//! for a while.
//!
//! The key is `URL_SIGNING_KEY`, or else a random key created once and kept in the database, so every
//! replica on a shared database signs and checks with the same key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chatkit::Store;
use chatkit::store::StoreError;
use clap::Args;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::config::Secret;

/// Lifetime of upload URLs.
pub(crate) const UPLOAD_URL_TTL: Duration = Duration::from_secs(15 * 60);
/// Default `PREVIEW_URL_TTL_SECS` (24 h).
pub(crate) const DEFAULT_PREVIEW_URL_TTL_SECS: u64 = 24 * 3600;
/// Shortest accepted `URL_SIGNING_KEY`.
pub(crate) const MIN_KEY_BYTES: usize = 32;
/// Where the generated key is kept (the app's key-value state).
const KEY_NAMESPACE: &str = "server";
const KEY_NAME: &str = "url_signing_key";

/// The signed-URL settings.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct SignedUrlSettings {
    /// Key signing attachment URLs (at least 32 bytes; default: a random key kept in the database).
    #[arg(long, env = "URL_SIGNING_KEY", hide_env_values = true)]
    pub url_signing_key: Option<Secret>,
    /// Seconds an attachment preview URL stays valid (links are re-signed whenever items are loaded).
    #[arg(long, env = "PREVIEW_URL_TTL_SECS", default_value_t = DEFAULT_PREVIEW_URL_TTL_SECS)]
    pub preview_url_ttl_secs: u64,
}

impl Default for SignedUrlSettings {
    fn default() -> Self {
        SignedUrlSettings { url_signing_key: None, preview_url_ttl_secs: DEFAULT_PREVIEW_URL_TTL_SECS }
    }
}

impl SignedUrlSettings {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(key) = self.url_signing_key.as_ref().filter(|k| !k.expose().is_empty())
            && key.expose().len() < MIN_KEY_BYTES
        {
            return Err(format!(
                "URL_SIGNING_KEY must be at least {MIN_KEY_BYTES} bytes long (e.g. `openssl rand -hex 32`)"
            ));
        }
        if self.preview_url_ttl_secs == 0 || self.preview_url_ttl_secs > 366 * 24 * 3600 {
            return Err(format!(
                "PREVIEW_URL_TTL_SECS must be from 1 to {} seconds, got {}",
                366 * 24 * 3600,
                self.preview_url_ttl_secs
            ));
        }
        Ok(())
    }
}

/// What a signed URL grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Uploading the bytes (`…/upload`).
    Upload,
    /// Reading the bytes (`…/content`).
    Preview,
}

impl Purpose {
    /// The last path segment of the route this purpose opens.
    fn route(self) -> &'static str {
        match self {
            Purpose::Upload => "upload",
            Purpose::Preview => "content",
        }
    }
}

/// The query of a signed URL, as received (all three come from the link the server handed out).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SignedQuery {
    /// The owner the link was made for (base64url).
    pub owner: Option<String>,
    /// When the link stops working (seconds since the epoch).
    pub expires: Option<String>,
    /// HMAC-SHA256 of the link (base64url).
    pub sig: Option<String>,
}

/// Why a signed URL was refused (HTTP 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SignatureError {
    /// No signature parameters.
    #[error("this link is not signed: use the upload_url or preview_url the server gave you")]
    Missing,
    /// Parameters present but unreadable, or a signature that does not match.
    #[error("this link's signature is invalid")]
    Invalid,
    /// A valid signature whose time is up.
    #[error("this link has expired: load the thread again for a fresh one")]
    Expired,
}

/// Makes and checks signed attachment URLs.
#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
    preview_ttl: Duration,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlSigner").field("key", &"<redacted>").field("preview_ttl", &self.preview_ttl).finish()
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

impl UrlSigner {
    /// A signer with this key.
    pub fn new(key: Vec<u8>, preview_ttl: Duration) -> Self {
        UrlSigner { key, preview_ttl }
    }

    /// The configured key, or the database's (created by whichever replica gets there first).
    pub(crate) async fn from_settings(settings: &SignedUrlSettings, store: &dyn Store) -> Result<Self, StoreError> {
        let ttl = Duration::from_secs(settings.preview_url_ttl_secs);
        if let Some(key) = settings.url_signing_key.as_ref().filter(|k| !k.expose().is_empty()) {
            return Ok(UrlSigner::new(key.expose().as_bytes().to_vec(), ttl));
        }
        Ok(UrlSigner::new(stored_key(store).await?, ttl))
    }

    /// An upload URL valid for `UPLOAD_URL_TTL` from now.
    pub fn upload_url(&self, base_url: &str, attachment_id: &str, owner: &str) -> String {
        self.url(base_url, Purpose::Upload, attachment_id, owner, unix_now() + UPLOAD_URL_TTL.as_secs())
    }

    /// A preview URL valid for at least the preview lifetime from now.
    pub fn preview_url(&self, base_url: &str, attachment_id: &str, owner: &str) -> String {
        let ttl = self.preview_ttl.as_secs().max(1);
        let step = (ttl / 8).clamp(1, 3600);
        let expires = (unix_now() + ttl).div_ceil(step) * step;
        self.url(base_url, Purpose::Preview, attachment_id, owner, expires)
    }

    /// The signed URL of `purpose` for an attachment, expiring at `expires` (seconds since the epoch).
    pub fn url(&self, base_url: &str, purpose: Purpose, attachment_id: &str, owner: &str, expires: u64) -> String {
        let sig = URL_SAFE_NO_PAD.encode(self.mac(purpose, attachment_id, owner, expires).finalize().into_bytes());
        format!(
            "{}/support/attachments/{attachment_id}/{}?owner={}&expires={expires}&sig={sig}",
            base_url.trim_end_matches('/'),
            purpose.route(),
            URL_SAFE_NO_PAD.encode(owner),
        )
    }

    /// Checks a request's signature for `purpose` on `attachment_id`; returns the owner it proves.
    pub(crate) fn verify(
        &self,
        purpose: Purpose,
        attachment_id: &str,
        query: &SignedQuery,
    ) -> Result<String, SignatureError> {
        self.verify_at(purpose, attachment_id, query, unix_now())
    }

    fn verify_at(
        &self,
        purpose: Purpose,
        attachment_id: &str,
        query: &SignedQuery,
        now: u64,
    ) -> Result<String, SignatureError> {
        let (Some(owner), Some(expires), Some(sig)) = (&query.owner, &query.expires, &query.sig) else {
            return Err(SignatureError::Missing);
        };
        let owner = URL_SAFE_NO_PAD
            .decode(owner)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(SignatureError::Invalid)?;
        let expires: u64 = expires.parse().map_err(|_| SignatureError::Invalid)?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| SignatureError::Invalid)?;
        // Constant-time comparison inside `verify_slice`.
        self.mac(purpose, attachment_id, &owner, expires).verify_slice(&sig).map_err(|_| SignatureError::Invalid)?;
        if now > expires {
            return Err(SignatureError::Expired);
        }
        Ok(owner)
    }

    /// The MAC over the fields; each but the last is free of newlines (fixed words, checked ids, digits),
    /// so the encoding is unambiguous whatever the owner contains.
    fn mac(&self, purpose: Purpose, attachment_id: &str, owner: &str, expires: u64) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; the error branch cannot happen.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
        mac.update(format!("attachment-url-v1\n{}\n{attachment_id}\n{expires}\n{owner}", purpose.route()).as_bytes());
        mac
    }
}

/// The key kept in the database, created on first use. Two replicas starting together both try to
/// create it; the compare-and-set lets one win and the other read the winner's key.
async fn stored_key(store: &dyn Store) -> Result<Vec<u8>, StoreError> {
    for _ in 0..3 {
        if let Some(stored) = store.kv_get(KEY_NAMESPACE, KEY_NAME).await? {
            return stored
                .value
                .get("key")
                .and_then(|k| k.as_str())
                .and_then(|k| URL_SAFE_NO_PAD.decode(k).ok())
                .filter(|k| k.len() >= MIN_KEY_BYTES)
                .ok_or_else(|| StoreError::Corrupt("the stored URL signing key is unreadable".into()));
        }
        let key: [u8; 32] = rand::random();
        let value = serde_json::json!({ "key": URL_SAFE_NO_PAD.encode(key) });
        if store.kv_compare_and_set(KEY_NAMESPACE, KEY_NAME, None, &value).await? {
            tracing::info!("created the URL signing key in the database (set URL_SIGNING_KEY to choose one)");
            return Ok(key.to_vec());
        }
    }
    Err(StoreError::Database("could not create or read the URL signing key".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> UrlSigner {
        UrlSigner::new(b"k".repeat(32), Duration::from_secs(3600))
    }

    fn query_of(url: &str) -> SignedQuery {
        let q = url.split_once('?').unwrap().1;
        let get = |name: &str| q.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}="))).map(str::to_string);
        SignedQuery { owner: get("owner"), expires: get("expires"), sig: get("sig") }
    }

    #[test]
    fn signatures_bind_id_owner_purpose_and_expiry() {
        let s = signer();
        let url = s.url("http://h", Purpose::Preview, "atc_1", "alice", 1000);
        assert!(url.starts_with("http://h/support/attachments/atc_1/content?owner=YWxpY2U&expires=1000&sig="));
        let q = query_of(&url);
        assert_eq!(s.verify_at(Purpose::Preview, "atc_1", &q, 999).unwrap(), "alice");
        assert_eq!(s.verify_at(Purpose::Preview, "atc_1", &q, 1001), Err(SignatureError::Expired));
        assert_eq!(s.verify_at(Purpose::Preview, "atc_2", &q, 999), Err(SignatureError::Invalid));
        assert_eq!(s.verify_at(Purpose::Upload, "atc_1", &q, 999), Err(SignatureError::Invalid));
        let other_owner = SignedQuery { owner: Some(URL_SAFE_NO_PAD.encode("bob")), ..q.clone() };
        assert_eq!(s.verify_at(Purpose::Preview, "atc_1", &other_owner, 999), Err(SignatureError::Invalid));
        let later = SignedQuery { expires: Some("999999".into()), ..q.clone() };
        assert_eq!(s.verify_at(Purpose::Preview, "atc_1", &later, 999), Err(SignatureError::Invalid));
        assert_eq!(s.verify_at(Purpose::Preview, "atc_1", &SignedQuery::default(), 0), Err(SignatureError::Missing));
        let other_key = UrlSigner::new(b"x".repeat(32), Duration::from_secs(1));
        assert_eq!(other_key.verify_at(Purpose::Preview, "atc_1", &q, 999), Err(SignatureError::Invalid));
    }

    #[test]
    fn preview_urls_are_stable_within_a_step() {
        let s = signer();
        let a = s.preview_url("http://h", "atc_1", "alice");
        let q = query_of(&a);
        let expires: u64 = q.expires.unwrap().parse().unwrap();
        assert!(expires >= unix_now() + 3600 && expires <= unix_now() + 3600 + 450);
        assert!(s.verify(Purpose::Preview, "atc_1", &query_of(&a)).is_ok());
    }

    #[tokio::test]
    async fn the_generated_key_is_shared_through_the_store() {
        let store = chatkit::store::MemoryStore::new();
        let settings = SignedUrlSettings::default();
        let a = UrlSigner::from_settings(&settings, &store).await.unwrap();
        let b = UrlSigner::from_settings(&settings, &store).await.unwrap();
        let url = a.url("http://h", Purpose::Upload, "atc_1", "alice", u64::MAX);
        assert_eq!(b.verify(Purpose::Upload, "atc_1", &query_of(&url)).unwrap(), "alice");
        assert!(SignedUrlSettings { url_signing_key: Some(Secret::new("short")), ..settings }.validate().is_err());
    }
}
