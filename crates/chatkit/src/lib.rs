//! ChatKit custom-backend protocol for Rust.
//!
//! This crate speaks the wire protocol of OpenAI's ChatKit web component exactly (spec
//! `chatkit-protocol.md`): request decoding ([`types::ChatKitRequest`]), the streaming pipeline
//! ([`server`]), persistence behind the [`store::Store`] trait, and the [`app::ChatKitApp`] trait a
//! product implements. It knows nothing about models or any particular application.

pub mod app;
pub mod ids;
pub mod sink;
pub mod store;
pub mod types;

pub use app::{AppError, ChatKitApp};
pub use sink::{EventSink, SinkError};
pub use store::{RequestContext, Store, StoreError};
