//! Who is calling: the authentication modes (`AUTH_MODE`), decided once per request at the edge.
//!
//! `require_owner` is the middleware in front of every `/support/*` route that acts for a user; it turns
//! the request into an owner id ([`Owner`], read by the handlers' context extractor) or answers 401. Below
//! it nothing knows how the owner was established: every store call filters by it, so another owner's
//! thread is "not found" by construction.
//!
//! * `none`: one anonymous owner (the sample's behaviour, for the quick start on a developer machine).
//! * `jwt`: `Authorization: Bearer <JWT>` verified by [`jwt::JwtVerifier`]; the owner is a claim.
//! * `header`: the owner is a header set by an authenticating reverse proxy ([`header::TrustedHeader`]).

pub mod header;
pub mod jwks;
pub mod jwt;
pub mod settings;
pub mod token;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header as http_header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chatkit::store::ANONYMOUS_OWNER;

pub use settings::{AuthMode, AuthSettings};

/// The owner a request acts for, put into the request's extensions by `require_owner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner(pub String);

/// Longest owner id accepted from a token claim or a proxy header (ids are stored on every row).
pub(crate) const MAX_OWNER_BYTES: usize = 256;

/// Why a request was not authenticated. The detail says what was wrong in plain words and never
/// contains the credential itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct AuthError {
    /// Shown to the client as `{"detail": …}`.
    pub detail: String,
    /// Whether a credential was sent at all (RFC 6750: no `error` attribute when none was).
    pub credential_sent: bool,
}

impl AuthError {
    /// No credential in the request.
    pub fn missing(detail: impl Into<String>) -> Self {
        AuthError { detail: detail.into(), credential_sent: false }
    }

    /// A credential was sent but is not acceptable.
    pub fn invalid(detail: impl Into<String>) -> Self {
        AuthError { detail: detail.into(), credential_sent: true }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let challenge = if self.credential_sent { "Bearer error=\"invalid_token\"" } else { "Bearer" };
        let mut res =
            (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({ "detail": self.detail }))).into_response();
        res.headers_mut().insert(http_header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        res
    }
}

/// The configured authentication mode, ready to check requests. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub enum Authenticator {
    /// Everyone is the anonymous owner.
    None,
    /// Bearer JWTs.
    Jwt(Box<jwt::JwtVerifier>),
    /// A header set by a trusted proxy.
    Header(header::TrustedHeader),
}

impl Authenticator {
    /// Builds the mode from validated settings: reads the PEM key and fetches the JWKS once, so a wrong
    /// path or URL stops the server at start rather than failing every request.
    /// `proxies` (`TRUSTED_PROXIES`) limits who may set the identity header in `header` mode.
    pub(crate) async fn from_settings(
        settings: &AuthSettings,
        proxies: crate::public_url::TrustedProxies,
    ) -> Result<Self, settings::AuthConfigError> {
        match settings.auth_mode {
            AuthMode::None => Ok(Authenticator::None),
            AuthMode::Jwt => Ok(Authenticator::Jwt(Box::new(jwt::JwtVerifier::from_settings(settings).await?))),
            AuthMode::Header => Ok(Authenticator::Header(header::TrustedHeader::from_settings(settings, proxies)?)),
        }
    }

    /// The mode's name for the banner and logs.
    pub(crate) fn mode_name(&self) -> &'static str {
        match self {
            Authenticator::None => "none",
            Authenticator::Jwt(_) => "jwt",
            Authenticator::Header(_) => "header",
        }
    }

    /// The owner of a request (`peer` is the TCP peer, for the header mode's proxy check).
    pub async fn authenticate(
        &self,
        headers: &axum::http::HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Result<Owner, AuthError> {
        match self {
            Authenticator::None => Ok(Owner(ANONYMOUS_OWNER.to_string())),
            Authenticator::Jwt(verifier) => verifier.authenticate(headers).await,
            Authenticator::Header(trusted) => trusted.authenticate(headers, peer),
        }
    }
}

/// Checks an owner id taken from a claim or a header: non-empty, bounded, no control characters (it is
/// stored on every row and appears in signed URLs).
pub(crate) fn valid_owner(owner: &str) -> bool {
    !owner.trim().is_empty() && owner.len() <= MAX_OWNER_BYTES && !owner.chars().any(char::is_control)
}

/// Middleware of the routes that act for a user: authenticates the request and records its [`Owner`], or
/// answers 401 before the handler (and its body reading) runs.
pub(crate) async fn require_owner(State(auth): State<Arc<Authenticator>>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    match auth.authenticate(req.headers(), peer).await {
        Ok(owner) => {
            req.extensions_mut().insert(owner);
            next.run(req).await
        }
        Err(e) => {
            tracing::info!(mode = auth.mode_name(), reason = %e.detail, "request not authenticated");
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_bounded_and_printable() {
        assert!(valid_owner("alice"));
        assert!(valid_owner("auth0|5f7c8ec7c33c6c004bbafe82"));
        assert!(!valid_owner(""));
        assert!(!valid_owner("  "));
        assert!(!valid_owner("a\nb"));
        assert!(!valid_owner(&"a".repeat(MAX_OWNER_BYTES + 1)));
    }

    #[tokio::test]
    async fn unauthenticated_answers_carry_a_bearer_challenge() {
        let res = AuthError::missing("missing bearer token").into_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()[http_header::WWW_AUTHENTICATE], "Bearer");
        let res = AuthError::invalid("the token has expired").into_response();
        assert_eq!(res.headers()[http_header::WWW_AUTHENTICATE], "Bearer error=\"invalid_token\"");
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"detail":"the token has expired"}"#);
    }
}
