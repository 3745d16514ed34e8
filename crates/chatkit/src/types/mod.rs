//! Wire types of the ChatKit protocol (spec `chatkit-protocol.md` §2, §4, §5).
//!
//! Every type serializes exactly as the Python SDK does: declared `null` fields are omitted,
//! defaults (empty lists, `false`, `{}`) are written, field order follows the spec.
//! Widgets and other free-form payloads are kept as [`serde_json::Value`].

mod attachments;
mod events;
mod items;
mod requests;
mod thread;
mod time;

pub use attachments::*;
pub use events::*;
pub use items::*;
pub use requests::*;
pub use thread::*;
pub use time::*;
