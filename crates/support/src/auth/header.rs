//! `header` mode: the owner is the value of a header (`AUTH_HEADER`, e.g. `X-Forwarded-User`) that an
//! authenticating reverse proxy sets after it checked the user.
//!
//! This is only safe when clients cannot reach the server except through that proxy, and the proxy
//! replaces (not appends to) the header. When `TRUSTED_PROXIES` is set, the header is only believed on
//! connections from those addresses, which keeps a misrouted direct connection from choosing its owner.

use std::net::SocketAddr;

use axum::http::{HeaderMap, HeaderName};

use super::settings::{AuthConfigError, AuthSettings};
use super::{AuthError, Owner, valid_owner};
use crate::public_url::TrustedProxies;

/// The identity header and who may set it.
#[derive(Debug, Clone)]
pub struct TrustedHeader {
    name: HeaderName,
    proxies: TrustedProxies,
}

impl TrustedHeader {
    /// From validated settings; `proxies` is `TRUSTED_PROXIES` (empty: any peer).
    pub(crate) fn from_settings(settings: &AuthSettings, proxies: TrustedProxies) -> Result<Self, AuthConfigError> {
        Ok(TrustedHeader { name: settings.header_name()?, proxies })
    }

    /// The owner named by the header.
    pub fn authenticate(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<Owner, AuthError> {
        if !self.proxies.is_empty() && !peer.is_some_and(|p| self.proxies.contains(p.ip())) {
            return Err(AuthError::missing(format!(
                "requests must come through the authenticating proxy (the `{}` header is only accepted from TRUSTED_PROXIES)",
                self.name
            )));
        }
        let mut values = headers.get_all(&self.name).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(AuthError::missing(format!(
                "missing or repeated `{}` header: the authenticating proxy must set it once",
                self.name
            )));
        };
        match value.to_str().map(str::trim) {
            Ok(owner) if valid_owner(owner) => Ok(Owner(owner.to_string())),
            _ => Err(AuthError::invalid(format!("the `{}` header is not a usable user id", self.name))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn trusted(proxies: &str) -> TrustedHeader {
        let settings = AuthSettings {
            auth_mode: super::super::AuthMode::Header,
            auth_header: Some("X-Forwarded-User".into()),
            ..AuthSettings::default()
        };
        TrustedHeader::from_settings(&settings, TrustedProxies::parse(proxies).unwrap()).unwrap()
    }

    #[test]
    fn the_header_names_the_owner() {
        let mut h = HeaderMap::new();
        let peer: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        assert!(trusted("").authenticate(&h, Some(peer)).is_err());
        h.insert("x-forwarded-user", HeaderValue::from_static(" alice "));
        assert_eq!(trusted("").authenticate(&h, Some(peer)).unwrap(), Owner("alice".into()));
        assert!(trusted("10.0.0.0/8").authenticate(&h, Some(peer)).is_ok());
        assert!(trusted("192.168.1.1").authenticate(&h, Some(peer)).is_err());
        assert!(trusted("192.168.1.1").authenticate(&h, None).is_err());
        h.append("x-forwarded-user", HeaderValue::from_static("mallory"));
        assert!(trusted("").authenticate(&h, Some(peer)).is_err());
    }
}
