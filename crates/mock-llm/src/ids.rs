//! Ids and timestamps in the shapes the real providers use (`resp_` + hex, `call_` + letters and
//! digits, base64 signatures). They only need to be unique and well-formed, not unguessable, so
//! a counter mixed through SplitMix64 replaces a cryptographic generator.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Letters and digits.
pub(crate) const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// The standard base64 alphabet.
pub(crate) const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A fast, non-cryptographic random `u64`: SplitMix64 over a counter seeded from the clock and
/// the process id, so two mock processes started together still differ.
fn random_u64() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        nanos ^ (u64::from(std::process::id()) << 32)
    });
    let mut z = seed.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `prefix` followed by `hex_len` random lowercase hex digits.
pub(crate) fn hex_id(prefix: &str, hex_len: usize) -> String {
    let mut id = String::with_capacity(prefix.len() + hex_len);
    id.push_str(prefix);
    while id.len() < prefix.len() + hex_len {
        let _ = write!(id, "{:016x}", random_u64());
    }
    id.truncate(prefix.len() + hex_len);
    id
}

/// `prefix` followed by `len` random characters of `alphabet`.
pub(crate) fn alphabet_id(prefix: &str, len: usize, alphabet: &[u8]) -> String {
    let mut id = String::with_capacity(prefix.len() + len);
    id.push_str(prefix);
    let mut bits = 0u64;
    for i in 0..len {
        if i % 8 == 0 {
            bits = random_u64();
        }
        let idx = (bits & 0xff) as usize % alphabet.len();
        bits >>= 8;
        id.push(char::from(alphabet[idx]));
    }
    id
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_right_shape() {
        let a = hex_id("msg_", 48);
        assert_eq!(a.len(), 52);
        assert!(a[4..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, hex_id("msg_", 48));
        let c = alphabet_id("call_", 24, ALNUM);
        assert_eq!(c.len(), 29);
        assert!(c[5..].bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
