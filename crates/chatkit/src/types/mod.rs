//! Wire types of the ChatKit protocol: requests, threads, items, attachments and stream events.
//!
//! Every type serializes exactly as the Python SDK does: a declared field that is `null` is omitted,
//! defaults (empty lists, `false`, `{}`) are written, and fields come in the SDK's declaration order.
//! Widgets and other free-form payloads are kept as [`serde_json::Value`].

mod attachments;
mod events;
mod items;
pub mod limits;
mod requests;
pub mod strict_json;
mod thread;
mod time;

pub use attachments::*;
pub use events::*;
pub use items::*;
pub use requests::*;
pub use thread::*;
pub use time::*;
