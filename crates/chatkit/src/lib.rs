//! ChatKit custom-backend protocol for Rust.
//!
//! This crate speaks the wire protocol of OpenAI's ChatKit web component exactly (spec
//! `chatkit-protocol.md`): request decoding ([`types::ChatKitRequest`]), the streaming pipeline
//! ([`server`]), persistence behind the [`store::Store`] trait, and the [`app::ChatKitApp`] trait a
//! product implements. It knows nothing about models or any particular application.

pub mod app;
pub mod errors;
pub mod http;
pub mod ids;
mod pipeline;
pub mod server;
pub mod sink;
pub mod store;
mod streaming;
pub mod types;

pub use app::{AppError, ChatKitApp};
pub use errors::ChatKitError;
pub use http::{ChatKitResponse, SseStream};
pub use pipeline::CANCEL_MARKER;
pub use server::ChatKitServer;
pub use sink::{EventSink, SinkError};
pub use store::{RequestContext, Store, StoreError};
