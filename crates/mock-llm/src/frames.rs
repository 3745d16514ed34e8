//! Pre-serialized response bodies: a JSON writer into one buffer, the list of SSE frames
//! (which of them are text deltas), and the HTTP body that plays them with the plan's
//! timing (per-delta delay, stall, cut). Without timing the body is one `Bytes`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;

use crate::plan::Answer;

/// A growable output buffer with JSON helpers (infallible).
#[derive(Debug, Default)]
pub struct Out {
    /// The text written so far.
    pub buf: String,
}

impl Out {
    /// Appends raw text.
    pub fn raw(&mut self, s: &str) -> &mut Self {
        self.buf.push_str(s);
        self
    }

    /// Appends `s` as a quoted, escaped JSON string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.buf.push('"');
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let esc = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.buf.push_str(&s[start..i]);
            if esc.is_empty() {
                let _ = write!(self.buf, "\\u{b:04x}");
            } else {
                self.buf.push_str(esc);
            }
            start = i + 1;
        }
        self.buf.push_str(&s[start..]);
        self.buf.push('"');
        self
    }

    /// Appends an integer.
    pub fn num(&mut self, n: u64) -> &mut Self {
        let _ = write!(self.buf, "{n}");
        self
    }
}

/// SSE frames written into one buffer; each frame ends at a recorded offset.
#[derive(Debug, Default)]
pub struct Frames {
    /// The frames' bytes, back to back.
    pub out: Out,
    /// End offset of each frame and whether it is a text delta.
    ends: Vec<(usize, bool)>,
}

impl Frames {
    /// Marks the end of the frame just written.
    pub fn end_frame(&mut self, is_delta: bool) {
        self.ends.push((self.out.buf.len(), is_delta));
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no frame was written.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The HTTP body playing these frames with the answer's timing (`None` = no timing).
    pub fn into_body(self, timing: Option<&Answer>) -> Body {
        let no_timing = timing.is_none_or(|a| a.delta_delay.is_zero() && a.cut_after.is_none() && a.stall.is_none());
        let bytes = Bytes::from(self.out.buf);
        let Some(answer) = timing.filter(|_| !no_timing) else {
            return Body::from(bytes);
        };
        let mut steps = VecDeque::new();
        let mut chunk_start = 0;
        let mut frame_start = 0;
        let mut deltas = 0usize;
        let mut prev_delta = false;
        let mut stalled = false;
        let mut cut = false;
        // The point "after n deltas": the first frame after the n-th delta (for n = 0, the
        // first delta), or the end of the deltas if the text has fewer.
        let at_point = |n: usize, deltas: usize, is_delta: bool, prev_delta: bool| {
            (deltas >= n && (n > 0 || is_delta)) || (prev_delta && !is_delta)
        };
        for &(end, is_delta) in &self.ends {
            if let Some(n) = answer.cut_after
                && at_point(n, deltas, is_delta, prev_delta)
            {
                cut = true;
                break;
            }
            let mut pause = Duration::ZERO;
            if let Some((n, stall)) = answer.stall
                && !stalled
                && at_point(n, deltas, is_delta, prev_delta)
            {
                stalled = true;
                pause += stall;
            }
            if is_delta && deltas > 0 {
                pause += answer.delta_delay;
            }
            if !pause.is_zero() {
                if frame_start > chunk_start {
                    steps.push_back(Step::Data(bytes.slice(chunk_start..frame_start)));
                }
                steps.push_back(Step::Sleep(pause));
                chunk_start = frame_start;
            }
            if is_delta {
                deltas += 1;
            }
            prev_delta = is_delta;
            frame_start = end;
        }
        if frame_start > chunk_start {
            steps.push_back(Step::Data(bytes.slice(chunk_start..frame_start)));
        }
        if cut {
            // Let the frames already written reach the socket before the abort.
            steps.push_back(Step::Sleep(Duration::from_millis(30)));
            steps.push_back(Step::Abort);
        }
        let stream = futures::stream::unfold(steps, |mut steps| async move {
            loop {
                match steps.pop_front()? {
                    Step::Data(data) => return Some((Ok(data), steps)),
                    Step::Sleep(d) => tokio::time::sleep(d).await,
                    Step::Abort => {
                        let err =
                            std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "mock-llm: scripted stream cut");
                        return Some((Err(err), VecDeque::new()));
                    }
                }
            }
        });
        Body::from_stream(stream)
    }
}

/// One step of a timed body.
#[derive(Debug)]
enum Step {
    Data(Bytes),
    Sleep(Duration),
    Abort,
}

/// A fast, non-cryptographic random `u64` (SplitMix64 over a seeded counter).
pub fn random_u64() -> u64 {
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
pub fn hex_id(prefix: &str, hex_len: usize) -> String {
    let mut id = String::with_capacity(prefix.len() + hex_len);
    id.push_str(prefix);
    while id.len() < prefix.len() + hex_len {
        let _ = write!(id, "{:016x}", random_u64());
    }
    id.truncate(prefix.len() + hex_len);
    id
}

/// `prefix` followed by `len` random characters of `alphabet`.
pub fn alphabet_id(prefix: &str, len: usize, alphabet: &[u8]) -> String {
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

/// Letters and digits.
pub const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// The standard base64 alphabet.
pub const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        let mut out = Out::default();
        out.str("a\"b\\c\nd\u{1}é");
        let parsed: String = serde_json::from_str(&out.buf).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }

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
