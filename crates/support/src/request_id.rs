//! Request ids: every request carries an `x-request-id`, so one request can be followed through the
//! log (its lines carry the id) and matched with what a client or proxy saw (the response echoes it).
//!
//! A proxy's id is kept when it is sane (1 to [`MAX_REQUEST_ID_LEN`] visible ASCII characters), so ids
//! line up across hops; anything else (missing, too long, spaces, control or non-ASCII bytes) is
//! replaced by a fresh UUID, which keeps hostile text out of the log lines.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// The header carrying the request id, in both directions.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a client; longer ones are replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The request's id: the one it came with when sane, else a new UUID.
pub fn accept_or_generate(headers: &HeaderMap) -> HeaderValue {
    match headers.get(&REQUEST_ID_HEADER) {
        Some(value) if is_sane(value.as_bytes()) => value.clone(),
        _ => generate(),
    }
}

/// Whether a client's id may be used as is: bounded, visible ASCII only (no spaces, quotes are fine:
/// log formats escape them).
fn is_sane(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN && id.iter().all(u8::is_ascii_graphic)
}

fn generate() -> HeaderValue {
    let mut buf = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    // A hyphenated UUID is always a valid header value.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_id(id: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_bytes(id).unwrap());
        headers
    }

    #[test]
    fn sane_ids_are_kept() {
        for id in ["abc", "req-42_x.y:z", "0123456789abcdef0123456789abcdef", &"x".repeat(MAX_REQUEST_ID_LEN)] {
            assert_eq!(accept_or_generate(&with_id(id.as_bytes())), id);
        }
    }

    #[test]
    fn missing_or_unsafe_ids_are_replaced_by_a_uuid() {
        let long = "x".repeat(MAX_REQUEST_ID_LEN + 1);
        let inputs: [&[u8]; 5] = [b"", b"two words", b"tab\there", long.as_bytes(), "caf\u{e9}".as_bytes()];
        for id in inputs {
            let got = accept_or_generate(&with_id(id));
            assert_ne!(got.as_bytes(), id);
            assert!(uuid::Uuid::parse_str(got.to_str().unwrap()).is_ok(), "{got:?}");
        }
        let generated = accept_or_generate(&HeaderMap::new());
        assert!(uuid::Uuid::parse_str(generated.to_str().unwrap()).is_ok());
        assert_ne!(generated, accept_or_generate(&HeaderMap::new()));
    }
}
