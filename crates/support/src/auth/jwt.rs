//! `jwt` mode: verifies `Authorization: Bearer <JWT>` with the `jsonwebtoken` crate.
//!
//! The accepted algorithms come from the configuration only: the token's `alg` header merely selects
//! among them, and a token whose `alg` is not configured (including `none`, or HS256 aimed at an RSA
//! public key) is refused before any key is touched. The key must also belong to the algorithm's family,
//! which `jsonwebtoken` checks again. `exp` is required, `nbf` checked when present, `iss` and `aud`
//! required when configured, all with 60 s of leeway for clock skew. The owner is one claim (`sub` by
//! default). Error details name what was wrong and never contain the token.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::jwks::JwksCache;
use super::settings::{AuthConfigError, AuthSettings, KeySource};
use super::{AuthError, Owner, valid_owner};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub(crate) const LEEWAY_SECS: u64 = 60;
/// Longest bearer token looked at; real tokens are a few hundred bytes to a few KiB.
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Where the verification keys come from.
enum Keys {
    /// One key (the HS secret or a PEM public key).
    Static(DecodingKey),
    /// The identity provider's JWKS.
    Jwks(JwksCache),
}

/// Verifies bearer tokens and extracts the owner claim.
pub struct JwtVerifier {
    keys: Keys,
    algorithms: Vec<Algorithm>,
    /// Claims checks shared by every token; `algorithms` is narrowed to the token's own per call.
    validation: Validation,
    owner_claim: String,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = match &self.keys {
            Keys::Static(_) => "static key".to_string(),
            Keys::Jwks(cache) => format!("JWKS {}", cache.url()),
        };
        f.debug_struct("JwtVerifier")
            .field("keys", &keys)
            .field("algorithms", &self.algorithms)
            .field("owner_claim", &self.owner_claim)
            .finish()
    }
}

impl JwtVerifier {
    /// Builds the verifier: reads the PEM file or fetches the JWKS now, so a bad one stops the start.
    pub(crate) async fn from_settings(settings: &AuthSettings) -> Result<Self, AuthConfigError> {
        let source = settings.key_source()?;
        let (keys, algorithms) = match &source {
            KeySource::Secret => {
                let secret = settings.auth_jwt_secret.as_ref().map(|s| s.expose().as_bytes()).unwrap_or_default();
                let key = DecodingKey::from_secret(secret)
                    .map_err(|e| AuthConfigError(format!("AUTH_JWT_SECRET is not a usable key: {e}")))?;
                (Keys::Static(key), settings.algorithms(Some(&source))?)
            }
            KeySource::PublicKeyFile(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    AuthConfigError(format!("AUTH_JWT_PUBLIC_KEY: cannot read {}: {e}", path.display()))
                })?;
                let key =
                    DecodingKey::from_rsa_pem(&pem).or_else(|_| DecodingKey::from_ec_pem(&pem)).map_err(|_| {
                        AuthConfigError(format!(
                            "AUTH_JWT_PUBLIC_KEY: {} is not a PEM RSA or EC public key",
                            path.display()
                        ))
                    })?;
                let algorithms = settings.algorithms_for_family(key.family())?;
                (Keys::Static(key), algorithms)
            }
            KeySource::Jwks(url) => {
                let algorithms = settings.algorithms(Some(&source))?;
                let cache = JwksCache::fetch(url.clone(), algorithms.clone())
                    .await
                    .map_err(|e| AuthConfigError(format!("AUTH_JWKS_URL: {e}")))?;
                (Keys::Jwks(cache), algorithms)
            }
        };
        Ok(JwtVerifier {
            keys,
            validation: validation(settings, &algorithms),
            algorithms,
            owner_claim: settings.auth_owner_claim.trim().to_string(),
        })
    }

    /// The owner of a request carrying `Authorization: Bearer <token>`.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Owner, AuthError> {
        let token = bearer_token(headers)?;
        self.verify(token).await
    }

    /// Verifies one token and returns its owner.
    pub(crate) async fn verify(&self, token: &str) -> Result<Owner, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| self.undecodable_header(token))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(self.algorithm_refused(&format!("{:?}", header.alg)));
        }
        let key = match &self.keys {
            Keys::Static(key) => {
                if key.family() != header.alg.family() {
                    return Err(self.algorithm_refused(&format!("{:?}", header.alg)));
                }
                key.clone()
            }
            Keys::Jwks(cache) => cache.key_for(header.kid.as_deref(), header.alg).await?,
        };
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| AuthError::invalid(describe(e.kind())))?;
        self.owner(&data.claims)
    }

    fn owner(&self, claims: &Map<String, Value>) -> Result<Owner, AuthError> {
        let claim = &self.owner_claim;
        let owner = match claims.get(claim) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(AuthError::invalid(format!("the token's `{claim}` claim is not a user id"))),
            None => return Err(AuthError::invalid(format!("the token has no `{claim}` claim naming the user"))),
        };
        if !valid_owner(&owner) {
            return Err(AuthError::invalid(format!(
                "the token's `{claim}` claim is not a usable user id (1 to {} bytes, no control characters)",
                super::MAX_OWNER_BYTES
            )));
        }
        Ok(Owner(owner))
    }

    fn algorithm_refused(&self, alg: &str) -> AuthError {
        let accepted: Vec<String> = self.algorithms.iter().map(|a| format!("{a:?}")).collect();
        AuthError::invalid(format!(
            "tokens signed with {alg} are not accepted here (accepted: {})",
            accepted.join(", ")
        ))
    }

    /// The detail for a token whose header `jsonwebtoken` cannot read: an `alg` it does not know (`none`)
    /// is named, anything else is "malformed".
    fn undecodable_header(&self, token: &str) -> AuthError {
        let alg = token
            .split('.')
            .next()
            .and_then(|h| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h.trim_end_matches('=')).ok())
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .and_then(|h| h.get("alg").and_then(Value::as_str).map(str::to_string));
        match alg {
            Some(alg) if !alg.is_empty() && alg.len() <= 16 && alg.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                self.algorithm_refused(&format!("`{alg}`"))
            }
            _ => AuthError::invalid("the bearer token is malformed: not a signed JWT"),
        }
    }
}

/// The claims checks of every token.
fn validation(settings: &AuthSettings, algorithms: &[Algorithm]) -> Validation {
    let mut v = Validation::new(algorithms.first().copied().unwrap_or(Algorithm::RS256));
    v.leeway = LEEWAY_SECS;
    v.validate_exp = true;
    v.validate_nbf = true;
    let mut required = vec!["exp"];
    if let Some(issuer) = settings.issuer() {
        v.set_issuer(&[issuer]);
        required.push("iss");
    }
    let audiences = settings.audiences();
    if audiences.is_empty() {
        // Without a configured audience the claim is not checked (IdPs always set one; see README).
        v.validate_aud = false;
    } else {
        v.set_audience(&audiences);
        required.push("aud");
    }
    v.set_required_spec_claims(&required);
    v
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(AuthError::missing("missing bearer token: send the header `Authorization: Bearer <token>`"));
    };
    let wrong_scheme = || AuthError::invalid("the Authorization header must be `Bearer <token>`");
    let value = value.to_str().map_err(|_| wrong_scheme())?.trim();
    let (scheme, token) = value.split_once(' ').ok_or_else(wrong_scheme)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(wrong_scheme());
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::invalid("the bearer token is empty"));
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::invalid(format!("the bearer token is longer than {MAX_TOKEN_BYTES} bytes")));
    }
    Ok(token)
}

/// What a verification failure means, in words for the client.
fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (its `nbf` is in the future)".into(),
        ErrorKind::InvalidSignature => "the token's signature is invalid".into(),
        ErrorKind::InvalidIssuer => "the token's issuer (`iss`) is not accepted".into(),
        ErrorKind::InvalidAudience => "the token's audience (`aud`) is not accepted".into(),
        ErrorKind::InvalidAlgorithm => "the token's algorithm does not match the server's key".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{}` claim", short(claim)),
        ErrorKind::InvalidClaimFormat(claim) => format!("the token's `{}` claim is malformed", short(claim)),
        _ => "the bearer token is malformed: not a signed JWT".into(),
    }
}

/// A claim name from the library's error, bounded (they are our own names, but stay careful).
fn short(name: &str) -> String {
    name.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_tokens_are_extracted_strictly() {
        assert_eq!(bearer_token(&headers("Bearer abc.def.ghi")).unwrap(), "abc.def.ghi");
        assert_eq!(bearer_token(&headers("bearer   abc")).unwrap(), "abc");
        assert!(!bearer_token(&HeaderMap::new()).unwrap_err().credential_sent);
        let e = bearer_token(&headers("Basic dXNlcjpwYXNz")).unwrap_err();
        assert_eq!(e.detail, "the Authorization header must be `Bearer <token>`");
        assert!(e.credential_sent);
        assert!(bearer_token(&headers("Bearer ")).is_err());
        assert!(bearer_token(&headers("Bearer")).is_err());
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert!(!bearer_token(&headers(&long)).unwrap_err().detail.contains("aaaa"));
    }

    #[test]
    fn failure_details_are_plain_words() {
        assert_eq!(describe(&ErrorKind::ExpiredSignature), "the token has expired");
        assert_eq!(describe(&ErrorKind::MissingRequiredClaim("exp".into())), "the token has no `exp` claim");
        assert_eq!(describe(&ErrorKind::InvalidToken), "the bearer token is malformed: not a signed JWT");
    }

    mod props {
        use super::*;
        use crate::auth::settings::{AuthMode, AuthSettings};
        use crate::config::Secret;
        use proptest::prelude::*;

        fn verifier() -> JwtVerifier {
            let settings = AuthSettings {
                auth_mode: AuthMode::Jwt,
                auth_jwt_secret: Some(Secret::new("0123456789abcdef0123456789abcdef")),
                ..AuthSettings::default()
            };
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(JwtVerifier::from_settings(&settings)).unwrap()
        }

        fn check(verifier: &JwtVerifier, value: &str) {
            let Ok(value) = axum::http::HeaderValue::from_str(value) else { return };
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, value);
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let result = rt.block_on(verifier.authenticate(&h));
            let e = result.expect_err("an arbitrary header authenticated");
            assert!(e.detail.len() < 200, "{}", e.detail);
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(400))]

            #[test]
            fn arbitrary_headers_never_authenticate(value in "\\PC{0,300}") {
                check(&verifier(), &value);
            }

            #[test]
            fn jwt_shaped_garbage_never_authenticates(
                scheme in prop_oneof![Just("Bearer"), Just("bearer"), Just("BEARER"), Just("Basic")],
                parts in proptest::collection::vec("[A-Za-z0-9_=-]{0,80}", 0..5),
            ) {
                check(&verifier(), &format!("{scheme} {}", parts.join(".")));
            }

            #[test]
            fn real_headers_with_forged_payloads_never_authenticate(payload in "\\PC{0,120}", sig in "[A-Za-z0-9_-]{0,60}") {
                use base64::Engine as _;
                let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
                for alg in ["HS256", "none", "RS256", "HS512"] {
                    let header = b64(&format!("{{\"alg\":\"{alg}\",\"typ\":\"JWT\"}}"));
                    let body = b64(&format!("{{\"sub\":\"x\",\"exp\":99999999999,\"p\":{}}}", serde_json::json!(payload)));
                    check(&verifier(), &format!("Bearer {header}.{body}.{sig}"));
                }
            }
        }
    }
}
