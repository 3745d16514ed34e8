//! The external base URL of the server (`scheme://host[:port]`), used to build the absolute attachment
//! URLs a client receives.
//!
//! `PUBLIC_BASE_URL` fixes it, whatever the request says. Without it, `X-Forwarded-Proto` /
//! `X-Forwarded-Host` are believed only on connections from `TRUSTED_PROXIES`; anyone else gets URLs on
//! the `Host` they sent themselves. Since URLs are built each time an item is served and never stored, a
//! forged `Host` only ever reaches the caller who forged it.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, header};
use clap::Args;
use ipnet::IpNet;

/// The `PUBLIC_BASE_URL` and `TRUSTED_PROXIES` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct PublicUrlSettings {
    /// External URL of the server, e.g. `https://support.example.com` (attachment links use it; default:
    /// the Host of each request).
    #[arg(long, env = "PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,
    /// Proxies whose X-Forwarded-Proto/-Host (and, in header mode, identity header) are believed:
    /// comma-separated IPs or CIDR ranges, e.g. `10.0.0.0/8,127.0.0.1`.
    #[arg(long, env = "TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
}

impl PublicUrlSettings {
    /// The normalized `PUBLIC_BASE_URL` (no trailing slash), or `None`.
    pub(crate) fn public_base_url(&self) -> Result<Option<String>, String> {
        let Some(raw) = self.public_base_url.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let invalid = || {
            format!(
                "PUBLIC_BASE_URL must be an http:// or https:// URL without query, e.g. https://support.example.com, got `{raw}`"
            )
        };
        let url = url::Url::parse(raw).map_err(|_| invalid())?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host().is_none()
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
        {
            return Err(invalid());
        }
        Ok(Some(raw.trim_end_matches('/').to_string()))
    }

    /// The parsed `TRUSTED_PROXIES`.
    pub(crate) fn trusted_proxies(&self) -> Result<TrustedProxies, String> {
        TrustedProxies::parse(self.trusted_proxies.as_deref().unwrap_or_default())
    }

    /// Checks both settings.
    pub fn validate(&self) -> Result<(), String> {
        self.public_base_url()?;
        self.trusted_proxies()?;
        Ok(())
    }
}

/// Addresses of reverse proxies whose forwarded headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8, 127.0.0.1, ::1` (single addresses are /32 or /128).
    pub(crate) fn parse(raw: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("TRUSTED_PROXIES entry `{entry}` is not an IP address or CIDR range"))?;
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    /// Whether none is configured.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the proxies (IPv4-mapped IPv6 peers count as their IPv4 address).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// How the base URL of a request is decided. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PublicUrl {
    fixed: Option<String>,
    proxies: TrustedProxies,
    /// Used when a request carries no usable host at all (set from the listen address).
    fallback: String,
}

impl PublicUrl {
    /// From validated settings; `fallback` is e.g. `http://127.0.0.1:8000`.
    pub(crate) fn new(fixed: Option<String>, proxies: TrustedProxies, fallback: impl Into<String>) -> Self {
        PublicUrl { fixed, proxies, fallback: fallback.into().trim_end_matches('/').to_string() }
    }

    /// The base URL for a request from `peer` (`None` when unknown, e.g. in-process tests).
    pub fn base_url(&self, headers: &HeaderMap, uri_authority: Option<&str>, peer: Option<SocketAddr>) -> String {
        if let Some(fixed) = &self.fixed {
            return fixed.clone();
        }
        let from_proxy = peer.is_some_and(|p| self.proxies.contains(p.ip()));
        let first = |name: &str| -> Option<String> {
            let v = headers.get(name)?.to_str().ok()?;
            let v = v.split(',').next()?.trim();
            if v.is_empty() { None } else { Some(v.to_string()) }
        };
        let scheme = match from_proxy.then(|| first("x-forwarded-proto")).flatten().map(|s| s.to_ascii_lowercase()) {
            Some(s) if s == "https" || s == "http" => s,
            _ => "http".to_string(),
        };
        let forwarded_host = from_proxy.then(|| first("x-forwarded-host")).flatten().filter(|h| valid_host(h));
        let host = forwarded_host
            .or_else(|| first(header::HOST.as_str()).filter(|h| valid_host(h)))
            .or_else(|| uri_authority.filter(|h| valid_host(h)).map(str::to_string));
        match host {
            Some(host) => format!("{scheme}://{host}"),
            None => self.fallback.clone(),
        }
    }
}

impl Default for PublicUrl {
    fn default() -> Self {
        PublicUrl::new(None, TrustedProxies::default(), "http://127.0.0.1:8000")
    }
}

/// A host header value we are willing to put into URLs: `name[:port]` or `[v6]:port`, nothing else.
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::headers;

    const PROXY: &str = "10.1.2.3:5555";
    const CLIENT: &str = "203.0.113.9:5555";

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let urls = PublicUrl::new(None, TrustedProxies::parse("10.0.0.0/8").unwrap(), "http://127.0.0.1:9");
        let h =
            headers(&[("host", "internal:8000"), ("x-forwarded-host", "evil.example"), ("x-forwarded-proto", "https")]);
        assert_eq!(urls.base_url(&h, None, Some(CLIENT.parse().unwrap())), "http://internal:8000");
        assert_eq!(urls.base_url(&h, None, None), "http://internal:8000");
        assert_eq!(urls.base_url(&h, None, Some(PROXY.parse().unwrap())), "https://evil.example");
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:1".parse().unwrap();
        assert_eq!(urls.base_url(&h, None, Some(mapped)), "https://evil.example");
        let h = headers(&[("host", "a.test"), ("x-forwarded-proto", "HTTPS, http")]);
        assert_eq!(urls.base_url(&h, None, Some(PROXY.parse().unwrap())), "https://a.test");
        let h = headers(&[("host", "a.test"), ("x-forwarded-proto", "javascript")]);
        assert_eq!(urls.base_url(&h, None, Some(PROXY.parse().unwrap())), "http://a.test");
    }

    #[test]
    fn a_fixed_public_url_wins() {
        let urls = PublicUrl::new(Some("https://support.example.com".into()), TrustedProxies::default(), "http://x");
        let h = headers(&[("host", "evil.example"), ("x-forwarded-host", "evil.example")]);
        assert_eq!(urls.base_url(&h, None, Some(PROXY.parse().unwrap())), "https://support.example.com");
    }

    #[test]
    fn host_fallbacks() {
        let urls = PublicUrl::default();
        assert_eq!(urls.base_url(&headers(&[("host", "bad host")]), None, None), "http://127.0.0.1:8000");
        assert_eq!(urls.base_url(&HeaderMap::new(), Some("h2.test:1"), None), "http://h2.test:1");
    }

    #[test]
    fn settings_are_checked() {
        let s = |url: &str| PublicUrlSettings { public_base_url: Some(url.into()), trusted_proxies: None };
        assert_eq!(s("https://a.example/").public_base_url().unwrap().as_deref(), Some("https://a.example"));
        assert_eq!(s("https://a.example/chat").public_base_url().unwrap().as_deref(), Some("https://a.example/chat"));
        assert!(s("a.example").public_base_url().is_err());
        assert!(s("https://a.example/?x=1").public_base_url().is_err());
        assert!(TrustedProxies::parse("10.0.0.0/8, ::1,127.0.0.1").is_ok());
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
    }
}
