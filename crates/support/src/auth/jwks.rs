//! The identity provider's signing keys from its JWKS URL (`AUTH_JWKS_URL`), cached.
//!
//! Keys are fetched once at start (a failure stops the server), then again when a token names a key id
//! the cache does not know (the provider rotated its keys) or the cache is an hour old; refetches happen
//! at most once a minute (the first one may follow the start at once), however many tokens with unknown ids arrive, so forged key ids cannot make the
//! server hammer the provider. A failed refetch keeps the keys already known. Only public keys of the
//! configured algorithms' families are kept: a symmetric (`oct`) key in the set is ignored, so a JWKS can
//! never turn an RSA deployment into an HS one.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::AuthError;

/// Least time between two fetches of the JWKS.
pub(crate) const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// Age after which the keys are fetched again even without an unknown key id (revoked keys go away).
pub(crate) const MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// Time allowed for one fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// One verification key of the set.
#[derive(Clone)]
struct JwksKey {
    kid: Option<String>,
    /// The key's own `alg`, when the set states one: tokens must then use exactly it.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

struct KeySet {
    keys: Vec<JwksKey>,
    fetched_at: Instant,
}

/// The cached key set of one JWKS URL.
pub(crate) struct JwksCache {
    url: url::Url,
    client: reqwest::Client,
    algorithms: Vec<Algorithm>,
    keys: RwLock<KeySet>,
    /// When the last refetch was attempted (the load at start does not count, so a rotation right after
    /// a restart is picked up); held while fetching, so concurrent misses wait for one fetch.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

impl JwksCache {
    /// Fetches the set the first time; fails when the URL does not answer a usable JWKS.
    pub(crate) async fn fetch(url: url::Url, algorithms: Vec<Algorithm>) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let keys = load(&client, &url, &algorithms).await?;
        tracing::info!(url = %url, keys = keys.len(), "JWKS loaded");
        let now = Instant::now();
        Ok(JwksCache {
            url,
            client,
            algorithms,
            keys: RwLock::new(KeySet { keys, fetched_at: now }),
            last_attempt: tokio::sync::Mutex::new(None),
        })
    }

    /// The JWKS URL.
    pub(crate) fn url(&self) -> &url::Url {
        &self.url
    }

    /// The key a token with this `kid` and (already accepted) `alg` must be verified with.
    pub(crate) async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        let (found, stale) = {
            let set = self.read();
            (find(&set.keys, kid, alg), set.fetched_at.elapsed() >= MAX_KEY_AGE)
        };
        match found {
            Lookup::Found(key) if !stale => return Ok(key),
            Lookup::Ambiguous => {
                return Err(AuthError::invalid(
                    "the token has no key id (`kid`) and the identity provider has several keys",
                ));
            }
            _ => {}
        }
        self.refresh().await;
        match find(&self.read().keys, kid, alg) {
            Lookup::Found(key) => Ok(key),
            Lookup::Ambiguous => {
                Err(AuthError::invalid("the token has no key id (`kid`) and the identity provider has several keys"))
            }
            Lookup::Missing => Err(AuthError::invalid(
                "the token's signing key (`kid`) is not one of the identity provider's current keys",
            )),
        }
    }

    /// Fetches the set again unless that was tried less than [`MIN_REFRESH_INTERVAL`] ago.
    async fn refresh(&self) {
        let mut last = self.last_attempt.lock().await;
        if last.is_some_and(|at| at.elapsed() < MIN_REFRESH_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        match load(&self.client, &self.url, &self.algorithms).await {
            Ok(keys) => {
                tracing::info!(url = %self.url, keys = keys.len(), "JWKS refreshed");
                let mut set = self.keys.write().unwrap_or_else(|p| p.into_inner());
                *set = KeySet { keys, fetched_at: Instant::now() };
            }
            Err(e) => tracing::warn!(url = %self.url, error = %e, "JWKS refresh failed; keeping the known keys"),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeySet> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }
}

enum Lookup {
    Found(DecodingKey),
    Ambiguous,
    Missing,
}

fn find(keys: &[JwksKey], kid: Option<&str>, alg: Algorithm) -> Lookup {
    let usable = |k: &&JwksKey| k.key.family() == alg.family() && k.alg.is_none_or(|a| a == alg);
    match kid {
        Some(kid) => match keys.iter().filter(usable).find(|k| k.kid.as_deref() == Some(kid)) {
            Some(k) => Lookup::Found(k.key.clone()),
            None => Lookup::Missing,
        },
        None => {
            let mut candidates = keys.iter().filter(usable);
            match (candidates.next(), candidates.next()) {
                (Some(k), None) => Lookup::Found(k.key.clone()),
                (Some(_), Some(_)) => Lookup::Ambiguous,
                _ => Lookup::Missing,
            }
        }
    }
}

/// Fetches and parses the set, keeping the keys usable with `algorithms`.
async fn load(client: &reqwest::Client, url: &url::Url, algorithms: &[Algorithm]) -> Result<Vec<JwksKey>, String> {
    let mut res =
        client.get(url.clone()).send().await.map_err(|e| format!("cannot fetch {url}: {}", root_cause(&e)))?;
    if !res.status().is_success() {
        return Err(format!("{url} answered HTTP {}", res.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| format!("cannot read {url}: {}", root_cause(&e)))? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(format!("{url} answered more than {MAX_JWKS_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    parse(&body, algorithms).map_err(|e| format!("{url}: {e}"))
}

/// The usable keys of a JWKS document.
fn parse(body: &[u8], algorithms: &[Algorithm]) -> Result<Vec<JwksKey>, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|_| "not a JSON document".to_string())?;
    let Some(entries) = doc.get("keys").and_then(Value::as_array) else {
        return Err("not a JWKS (no `keys` array)".into());
    };
    let mut keys = Vec::new();
    for entry in entries {
        // Keys of other types or uses are skipped one by one, not fatal: providers publish several.
        let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else { continue };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        // The key's `alg` as a signature algorithm (`RSA-OAEP` and other encryption names are not one).
        let alg = jwk.common.key_algorithm.and_then(|a| match serde_json::to_value(a) {
            Ok(Value::String(name)) => name.parse::<Algorithm>().ok(),
            _ => None,
        });
        let Ok(key) = DecodingKey::from_jwk(&jwk) else { continue };
        let family_accepted = algorithms.iter().any(|a| a.family() == key.family());
        let alg_accepted = alg.is_none_or(|a| algorithms.contains(&a));
        if family_accepted && alg_accepted {
            keys.push(JwksKey { kid: jwk.common.key_id.clone(), alg, key });
        }
    }
    if keys.is_empty() {
        let names: Vec<String> = algorithms.iter().map(|a| format!("{a:?}")).collect();
        return Err(format!("the JWKS has no key usable with {}", names.join(", ")));
    }
    Ok(keys)
}

/// The innermost error message (reqwest's outer messages omit the reason, e.g. "connection refused").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_JWK: &str = r#"{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":"u1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0_IzW7yWR7QkrmBL7jTKEn5u-qKhbwKfBstIs-bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW_VDL5AaWTg0nLVkjRo9z-40RQzuVaE8AkAFmxZzow3x-VJYKdjykkJ0iT9wCS0DRTXu269V264Vf_3jvredZiKRkgwlL9xNAwxXFg0x_XFw005UWVRIkdgcKWTjpBP2dPwVZ4WWC-9aGVd-Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbcmw","e":"AQAB"}"#;

    #[test]
    fn only_usable_public_keys_are_kept() {
        let oct = r#"{"kty":"oct","kid":"h","k":"c2VjcmV0"}"#;
        let enc = RSA_JWK.replace("\"sig\"", "\"enc\"");
        let body = format!(r#"{{"keys":[{RSA_JWK},{oct},{enc},{{"kty":"weird"}}]}}"#);
        let keys = parse(body.as_bytes(), &[Algorithm::RS256]).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("k1"));
        assert!(parse(body.as_bytes(), &[Algorithm::ES256]).err().unwrap().contains("no key usable with ES256"));
        assert!(parse(b"{}", &[Algorithm::RS256]).is_err());
        assert!(parse(b"<html>", &[Algorithm::RS256]).is_err());
    }

    #[test]
    fn keys_are_found_by_id_and_family() {
        let body = format!(r#"{{"keys":[{RSA_JWK}]}}"#);
        let keys = parse(body.as_bytes(), &[Algorithm::RS256]).unwrap();
        assert!(matches!(find(&keys, Some("k1"), Algorithm::RS256), Lookup::Found(_)));
        assert!(matches!(find(&keys, Some("k2"), Algorithm::RS256), Lookup::Missing));
        assert!(matches!(find(&keys, None, Algorithm::RS256), Lookup::Found(_)));
        // The key says RS256: a PS256 token naming it is refused.
        assert!(matches!(find(&keys, Some("k1"), Algorithm::PS256), Lookup::Missing));
        assert!(matches!(find(&keys, Some("k1"), Algorithm::ES256), Lookup::Missing));
    }
}
