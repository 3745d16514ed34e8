//! Identifier generation: `<prefix>_<12 hex: milliseconds since the Unix epoch><12 hex: random>`.
//!
//! Longer than the Python SDK's 8 random hex digits (32 bits make a collision likely once a store
//! holds tens of thousands of ids), and time-ordered: ids made later sort after earlier ones, so a new
//! thread's rows land at the end of every index keyed by thread id (one hot page per index instead of
//! a random page per insert, which is most of what a turn writes to the database). 48 random bits keep
//! ids made in the same millisecond apart. Ids stay opaque to clients; older 16-hex ids keep working
//! everywhere.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Prefix of thread ids.
pub const THREAD: &str = "thr";
/// Prefix of messages, widgets and the other items the server creates.
pub const MESSAGE: &str = "msg";
/// Prefix of client tool call item ids made by the server.
pub const TOOL_CALL: &str = "tc";
/// Prefix of workflow item ids.
pub const WORKFLOW: &str = "wf";
/// Prefix of task ids.
pub const TASK: &str = "tsk";
/// Prefix of attachment ids.
pub const ATTACHMENT: &str = "atc";
/// Prefix of the hidden item stored when a client cancels a stream.
pub const SDK_HIDDEN_CONTEXT: &str = "shcx";

/// Hex digits of the time part.
const TIME_HEX: usize = 12;
/// Hex digits of the random part.
const RANDOM_HEX: usize = 12;

/// A new time-ordered id with the given prefix.
pub fn generate(prefix: &str) -> String {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let random: u64 = uuid::Uuid::new_v4().as_u64_pair().0;
    format!("{prefix}_{:012x}{:012x}", millis & 0xffff_ffff_ffff, random & 0xffff_ffff_ffff)
}

/// When an id made by [`generate`] was made (millisecond precision); `None` for any other id.
pub fn created_at(id: &str) -> Option<SystemTime> {
    let (_, suffix) = id.rsplit_once('_')?;
    if suffix.len() != TIME_HEX + RANDOM_HEX
        || !suffix.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let millis = u64::from_str_radix(&suffix[..TIME_HEX], 16).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_order() {
        let a = generate(THREAD);
        std::thread::sleep(Duration::from_millis(2));
        let b = generate(THREAD);
        assert_eq!(a.len(), 4 + TIME_HEX + RANDOM_HEX, "{a}");
        assert!(a.starts_with("thr_") && a[4..].bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert!(a < b, "{a} !< {b}");
        assert_ne!(generate(MESSAGE), generate(MESSAGE));
    }

    #[test]
    fn creation_time_round_trips() {
        let before = SystemTime::now() - Duration::from_millis(1);
        let made = created_at(&generate(MESSAGE)).unwrap();
        assert!(made >= before && made <= SystemTime::now(), "{made:?}");
        assert_eq!(created_at("thr_0000000003e8000000000000"), Some(UNIX_EPOCH + Duration::from_secs(1)));
        for other in ["thr_0123456789abcdef", "thr", "thr_0000000003e800000000000G", "thr_custom_1", ""] {
            assert_eq!(created_at(other), None, "{other}");
        }
    }
}
