//! `support token`: prints an HS256 token signed with `AUTH_JWT_SECRET`, for trying `jwt` mode locally
//! (`cargo run --release -- token --sub alice --ttl 1h`). The token carries the claims the server checks:
//! the owner claim, `iat`, `nbf`, `exp`, and `iss` / `aud` when those are configured.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

use super::settings::{AuthSettings, MIN_SECRET_BYTES};

/// Options of `support token`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct TokenArgs {
    /// The user id to put in the owner claim (AUTH_OWNER_CLAIM, `sub` by default).
    #[arg(long)]
    pub sub: String,
    /// Lifetime: seconds, or a number with s, m, h or d (e.g. 90s, 30m, 1h, 7d).
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,
}

/// Why no token could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(String);

/// Parses `90`, `90s`, `30m`, `1h`, `7d`.
pub(crate) fn parse_ttl(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (number, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => raw.split_at(i),
        None => (raw, "s"),
    };
    let n: u64 = number.parse().map_err(|_| format!("`{raw}` is not a duration like 90s, 30m, 1h or 7d"))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    };
    match secs {
        Some(s) if s > 0 && s <= 366 * 86_400 => Ok(Duration::from_secs(s)),
        _ => Err(format!("`{raw}` is not a duration between 1s and 366d (e.g. 90s, 30m, 1h, 7d)")),
    }
}

/// Signs a token for `args.sub` with the configured secret, issuer and audience.
pub fn mint(settings: &AuthSettings, args: &TokenArgs) -> Result<String, TokenError> {
    let Some(secret) = settings.auth_jwt_secret.as_ref().filter(|s| !s.expose().is_empty()) else {
        return Err(TokenError("`support token` signs with AUTH_JWT_SECRET: set it (at least 32 bytes)".into()));
    };
    if secret.expose().len() < MIN_SECRET_BYTES {
        return Err(TokenError(format!("AUTH_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long")));
    }
    if !super::valid_owner(&args.sub) {
        return Err(TokenError("--sub must be 1 to 256 bytes without control characters".into()));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let mut claims = Map::new();
    claims.insert(settings.auth_owner_claim.trim().to_string(), Value::String(args.sub.clone()));
    claims.insert("iat".into(), now.into());
    claims.insert("nbf".into(), now.into());
    claims.insert("exp".into(), (now + args.ttl.as_secs()).into());
    if let Some(issuer) = settings.issuer() {
        claims.insert("iss".into(), Value::String(issuer));
    }
    if let Some(audience) = settings.audiences().into_iter().next() {
        claims.insert("aud".into(), Value::String(audience));
    }
    let key = EncodingKey::from_secret(secret.expose().as_bytes())
        .map_err(|e| TokenError(format!("AUTH_JWT_SECRET is not a usable key: {e}")))?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|e| TokenError(format!("cannot sign the token: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn ttls_parse() {
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_ttl("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_ttl("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("1y").is_err());
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("999999999999999999d").is_err());
    }

    #[tokio::test]
    async fn minted_tokens_verify() {
        let settings = AuthSettings {
            auth_mode: super::super::AuthMode::Jwt,
            auth_jwt_secret: Some(Secret::new("0123456789abcdef0123456789abcdef")),
            auth_jwt_issuer: Some("https://issuer.test".into()),
            auth_jwt_audience: Some("support-api".into()),
            ..AuthSettings::default()
        };
        let token = mint(&settings, &TokenArgs { sub: "alice".into(), ttl: Duration::from_secs(60) }).unwrap();
        let verifier = super::super::jwt::JwtVerifier::from_settings(&settings).await.unwrap();
        assert_eq!(verifier.verify(&token).await.unwrap().0, "alice");
        let other = AuthSettings { auth_jwt_audience: Some("other".into()), ..settings.clone() };
        let verifier = super::super::jwt::JwtVerifier::from_settings(&other).await.unwrap();
        assert_eq!(verifier.verify(&token).await.unwrap_err().detail, "the token's audience (`aud`) is not accepted");
        let no_secret = AuthSettings::default();
        assert!(mint(&no_secret, &TokenArgs { sub: "a".into(), ttl: Duration::from_secs(1) }).is_err());
    }
}
