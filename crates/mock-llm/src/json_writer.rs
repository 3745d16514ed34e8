//! The writer every response body is built with: JSON text appended piece by piece into one
//! growing buffer. The mock writes each body this way (instead of building `serde_json::Value`s)
//! so a benchmark's load measures the server under test, not the mock's allocations.

use std::fmt::Write as _;

/// A growing buffer of JSON text; the caller keeps the pieces well-formed.
#[derive(Debug, Default)]
pub(crate) struct JsonWriter {
    /// The text written so far.
    pub(crate) buf: String,
}

impl JsonWriter {
    /// Appends `s` as it is (punctuation, keys, numbers already rendered).
    pub(crate) fn raw(&mut self, s: &str) -> &mut Self {
        self.buf.push_str(s);
        self
    }

    /// Appends `s` as a quoted JSON string, escaping quotes, backslashes and control characters.
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
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

    /// Appends a non-negative integer.
    pub(crate) fn num(&mut self, n: u64) -> &mut Self {
        let _ = write!(self.buf, "{n}");
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        let mut out = JsonWriter::default();
        out.str("a\"b\\c\nd\u{1}é");
        let parsed: String = serde_json::from_str(&out.buf).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }
}
