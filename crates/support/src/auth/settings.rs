//! The authentication settings (`AUTH_*`), part of the server's [`crate::config::Config`], and their
//! checks. Checks that need no I/O run with the rest of the configuration; reading the PEM file and
//! fetching the JWKS happen when the [`super::Authenticator`] is built. Either way a problem is one line
//! naming the setting, and the server exits with code 2.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, ValueEnum};
use jsonwebtoken::Algorithm;
use jsonwebtoken::AlgorithmFamily;

use crate::config::Secret;

/// Shortest accepted `AUTH_JWT_SECRET`: an HS256 key shorter than the hash output can be brute-forced
/// from a single token.
pub(crate) const MIN_SECRET_BYTES: usize = 32;

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// No authentication: every caller is the same anonymous owner.
    None,
    /// `Authorization: Bearer <JWT>` on every user route.
    Jwt,
    /// The owner comes from a header set by a trusted authenticating proxy (`AUTH_HEADER`).
    Header,
}

/// A setting that makes authentication unusable, as one line naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct AuthConfigError(pub String);

/// The `AUTH_*` settings.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct AuthSettings {
    /// Authentication: `none` (one anonymous user; local use), `jwt` (bearer tokens) or `header` (identity
    /// header from a trusted proxy).
    #[arg(long, env = "AUTH_MODE", value_enum, ignore_case = true, default_value = "none")]
    pub auth_mode: AuthMode,
    /// HS256 secret of `jwt` mode (at least 32 bytes); also what `support token` signs with.
    #[arg(long, env = "AUTH_JWT_SECRET", hide_env_values = true)]
    pub auth_jwt_secret: Option<Secret>,
    /// PEM file with the RSA or EC public key of `jwt` mode (RS256 / ES256).
    #[arg(long, env = "AUTH_JWT_PUBLIC_KEY")]
    pub auth_jwt_public_key: Option<PathBuf>,
    /// JWKS URL of the identity provider for `jwt` mode (keys cached, refetched for an unknown key id).
    #[arg(long, env = "AUTH_JWKS_URL")]
    pub auth_jwks_url: Option<String>,
    /// Accepted JWT algorithms, comma-separated (default: HS256 with a secret, RS256 or ES256 as the PEM key,
    /// RS256,ES256 with a JWKS).
    #[arg(long, env = "AUTH_JWT_ALGORITHMS")]
    pub auth_jwt_algorithms: Option<String>,
    /// Required `iss` claim of tokens (unset: not checked).
    #[arg(long, env = "AUTH_JWT_ISSUER")]
    pub auth_jwt_issuer: Option<String>,
    /// Accepted `aud` values, comma-separated (unset: not checked).
    #[arg(long, env = "AUTH_JWT_AUDIENCE")]
    pub auth_jwt_audience: Option<String>,
    /// Token claim naming the owner of threads and attachments.
    #[arg(long, env = "AUTH_OWNER_CLAIM", default_value = "sub")]
    pub auth_owner_claim: String,
    /// Header carrying the user id in `header` mode, e.g. `X-Forwarded-User`.
    #[arg(long, env = "AUTH_HEADER")]
    pub auth_header: Option<String>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            auth_mode: AuthMode::None,
            auth_jwt_secret: None,
            auth_jwt_public_key: None,
            auth_jwks_url: None,
            auth_jwt_algorithms: None,
            auth_jwt_issuer: None,
            auth_jwt_audience: None,
            auth_owner_claim: "sub".into(),
            auth_header: None,
        }
    }
}

/// Where `jwt` mode gets its verification keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// `AUTH_JWT_SECRET`.
    Secret,
    /// `AUTH_JWT_PUBLIC_KEY`.
    PublicKeyFile(PathBuf),
    /// `AUTH_JWKS_URL`.
    Jwks(url::Url),
}

fn bad<T>(message: impl Into<String>) -> Result<T, AuthConfigError> {
    Err(AuthConfigError(message.into()))
}

impl AuthSettings {
    /// Checks what can be checked without I/O.
    pub(crate) fn validate(&self) -> Result<(), AuthConfigError> {
        match self.auth_mode {
            AuthMode::None => Ok(()),
            AuthMode::Header => self.header_name().map(|_| ()),
            AuthMode::Jwt => {
                let source = self.key_source()?;
                if self.auth_owner_claim.trim().is_empty() {
                    return bad("AUTH_OWNER_CLAIM must name a token claim, e.g. sub");
                }
                if let KeySource::PublicKeyFile(_) = source {
                    // The family is known only once the file is read; the names are checked here.
                    self.algorithms(None)?;
                } else {
                    self.algorithms(Some(&source))?;
                }
                Ok(())
            }
        }
    }

    /// The single configured key source of `jwt` mode.
    pub(crate) fn key_source(&self) -> Result<KeySource, AuthConfigError> {
        let secret = self.auth_jwt_secret.as_ref().filter(|s| !s.expose().is_empty());
        let configured = [secret.is_some(), self.auth_jwt_public_key.is_some(), self.auth_jwks_url.is_some()]
            .iter()
            .filter(|s| **s)
            .count();
        if configured == 0 {
            return bad(
                "AUTH_MODE=jwt needs a key: set AUTH_JWT_SECRET (HS256), AUTH_JWT_PUBLIC_KEY (PEM file) or AUTH_JWKS_URL",
            );
        }
        if configured > 1 {
            return bad(
                "AUTH_MODE=jwt takes one key source: set only one of AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY, AUTH_JWKS_URL",
            );
        }
        if let Some(secret) = secret {
            if secret.expose().len() < MIN_SECRET_BYTES {
                return bad(format!(
                    "AUTH_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long (e.g. `openssl rand -hex 32`)"
                ));
            }
            return Ok(KeySource::Secret);
        }
        if let Some(path) = &self.auth_jwt_public_key {
            return Ok(KeySource::PublicKeyFile(path.clone()));
        }
        let raw = self.auth_jwks_url.as_deref().unwrap_or_default().trim();
        match url::Url::parse(raw) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(KeySource::Jwks(url)),
            _ => bad(format!("AUTH_JWKS_URL must be an http:// or https:// URL, got `{}`", shown(raw))),
        }
    }

    /// The accepted algorithms. `source` (when known) gives the default and the family they must belong
    /// to; for a PEM key pass `None` before the file is read, then [`Self::algorithms_for_family`].
    pub(crate) fn algorithms(&self, source: Option<&KeySource>) -> Result<Vec<Algorithm>, AuthConfigError> {
        let families: &[AlgorithmFamily] = match source {
            Some(KeySource::Secret) => &[AlgorithmFamily::Hmac],
            Some(KeySource::Jwks(_)) => &[AlgorithmFamily::Rsa, AlgorithmFamily::Ec],
            Some(KeySource::PublicKeyFile(_)) | None => &[AlgorithmFamily::Rsa, AlgorithmFamily::Ec],
        };
        let default = match source {
            Some(KeySource::Secret) => vec![Algorithm::HS256],
            _ => vec![Algorithm::RS256, Algorithm::ES256],
        };
        self.parse_algorithms(families, default, source)
    }

    /// The accepted algorithms for a public key of `family` (RS256 or ES256 by default).
    pub(crate) fn algorithms_for_family(&self, family: AlgorithmFamily) -> Result<Vec<Algorithm>, AuthConfigError> {
        let default = match family {
            AlgorithmFamily::Ec => vec![Algorithm::ES256],
            _ => vec![Algorithm::RS256],
        };
        self.parse_algorithms(&[family], default, None)
    }

    fn parse_algorithms(
        &self,
        families: &[AlgorithmFamily],
        default: Vec<Algorithm>,
        source: Option<&KeySource>,
    ) -> Result<Vec<Algorithm>, AuthConfigError> {
        let Some(raw) = self.auth_jwt_algorithms.as_deref().filter(|r| !r.trim().is_empty()) else {
            return Ok(default);
        };
        let mut out = Vec::new();
        for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let Ok(alg) = Algorithm::from_str(&name.to_ascii_uppercase()) else {
                return bad(format!(
                    "AUTH_JWT_ALGORITHMS: `{}` is not an accepted algorithm (e.g. HS256, RS256, ES256)",
                    shown(name)
                ));
            };
            if !families.contains(&alg.family()) {
                let key = match source {
                    Some(KeySource::Secret) => "the HS secret AUTH_JWT_SECRET",
                    Some(KeySource::Jwks(_)) => "AUTH_JWKS_URL (public keys only)",
                    _ => "the public key AUTH_JWT_PUBLIC_KEY",
                };
                return bad(format!("AUTH_JWT_ALGORITHMS: {name} cannot be verified with {key}"));
            }
            if !out.contains(&alg) {
                out.push(alg);
            }
        }
        if out.is_empty() {
            return bad("AUTH_JWT_ALGORITHMS lists no algorithm");
        }
        Ok(out)
    }

    /// The validated `AUTH_HEADER` of `header` mode.
    pub(crate) fn header_name(&self) -> Result<axum::http::HeaderName, AuthConfigError> {
        let raw = self.auth_header.as_deref().map(str::trim).unwrap_or_default();
        if raw.is_empty() {
            return bad(
                "AUTH_MODE=header needs AUTH_HEADER, the header your proxy sets to the user id (e.g. X-Forwarded-User)",
            );
        }
        match axum::http::HeaderName::from_str(raw) {
            Ok(name) if name != axum::http::header::AUTHORIZATION && name != axum::http::header::COOKIE => Ok(name),
            _ => bad(format!("AUTH_HEADER `{}` is not a usable header name", shown(raw))),
        }
    }

    /// The accepted audiences (`AUTH_JWT_AUDIENCE`, comma-separated).
    pub(crate) fn audiences(&self) -> Vec<String> {
        split_list(self.auth_jwt_audience.as_deref())
    }

    /// The required issuer, if any.
    pub fn issuer(&self) -> Option<String> {
        self.auth_jwt_issuer.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
    }
}

fn split_list(raw: Option<&str>) -> Vec<String> {
    raw.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// A configuration value quoted in an error, cut short.
fn shown(value: &str) -> String {
    if value.chars().count() <= 80 {
        value.to_string()
    } else {
        format!("{}…", value.chars().take(80).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(f: impl FnOnce(&mut AuthSettings)) -> Result<(), AuthConfigError> {
        let mut s = AuthSettings { auth_mode: AuthMode::Jwt, ..AuthSettings::default() };
        f(&mut s);
        s.validate()
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn jwt_mode_needs_exactly_one_key() {
        assert!(jwt(|_| {}).unwrap_err().0.starts_with("AUTH_MODE=jwt needs a key"));
        let two = jwt(|s| {
            s.auth_jwt_secret = Some(Secret::new(SECRET));
            s.auth_jwks_url = Some("https://idp.example/jwks".into());
        });
        assert!(two.unwrap_err().0.contains("only one of"));
        assert!(jwt(|s| s.auth_jwt_secret = Some(Secret::new(SECRET))).is_ok());
        let short = jwt(|s| s.auth_jwt_secret = Some(Secret::new("short"))).unwrap_err();
        assert!(short.0.starts_with("AUTH_JWT_SECRET must be at least 32 bytes"), "{short}");
        assert!(!short.0.contains("short`"));
    }

    #[test]
    fn jwks_url_must_be_http() {
        let e = jwt(|s| s.auth_jwks_url = Some("ftp://x/jwks".into())).unwrap_err();
        assert!(e.0.starts_with("AUTH_JWKS_URL must be an http:// or https:// URL"), "{e}");
        assert!(jwt(|s| s.auth_jwks_url = Some("not a url".into())).is_err());
        assert!(jwt(|s| s.auth_jwks_url = Some("http://127.0.0.1:9/jwks".into())).is_ok());
    }

    #[test]
    fn algorithms_come_from_the_configuration_and_match_the_key() {
        let s = AuthSettings {
            auth_mode: AuthMode::Jwt,
            auth_jwt_secret: Some(Secret::new(SECRET)),
            ..AuthSettings::default()
        };
        assert_eq!(s.algorithms(Some(&KeySource::Secret)).unwrap(), vec![Algorithm::HS256]);
        let e = jwt(|s| {
            s.auth_jwt_secret = Some(Secret::new(SECRET));
            s.auth_jwt_algorithms = Some("RS256".into());
        })
        .unwrap_err();
        assert_eq!(e.0, "AUTH_JWT_ALGORITHMS: RS256 cannot be verified with the HS secret AUTH_JWT_SECRET");
        let e = jwt(|s| {
            s.auth_jwks_url = Some("https://idp.example/jwks".into());
            s.auth_jwt_algorithms = Some("HS256".into());
        })
        .unwrap_err();
        assert!(e.0.contains("HS256 cannot be verified with AUTH_JWKS_URL"), "{e}");
        let e = jwt(|s| {
            s.auth_jwt_secret = Some(Secret::new(SECRET));
            s.auth_jwt_algorithms = Some("none".into());
        })
        .unwrap_err();
        assert!(e.0.starts_with("AUTH_JWT_ALGORITHMS: `none` is not an accepted algorithm"), "{e}");
        let s = AuthSettings { auth_jwt_algorithms: Some("es256".into()), ..AuthSettings::default() };
        assert_eq!(s.algorithms_for_family(AlgorithmFamily::Ec).unwrap(), vec![Algorithm::ES256]);
        assert!(s.algorithms_for_family(AlgorithmFamily::Rsa).is_err());
    }

    #[test]
    fn header_mode_needs_a_header_name() {
        let mut s = AuthSettings { auth_mode: AuthMode::Header, ..AuthSettings::default() };
        assert!(s.validate().unwrap_err().0.starts_with("AUTH_MODE=header needs AUTH_HEADER"));
        s.auth_header = Some("X-Forwarded-User".into());
        assert!(s.validate().is_ok());
        s.auth_header = Some("bad header".into());
        assert!(s.validate().is_err());
        s.auth_header = Some("Authorization".into());
        assert!(s.validate().is_err());
    }
}
