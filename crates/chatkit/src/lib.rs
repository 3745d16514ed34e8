//! The ChatKit custom-backend protocol: what OpenAI's `<openai-chatkit>` web component sends to its
//! backend and what it expects back, byte for byte as the Python SDK answers it (where this server
//! deliberately does better, `docs/protocol.md` says so). It knows nothing about models or any
//! particular product: a product implements [`ChatKitApp`] and hands it to a [`ChatKitServer`].
//!
//! # Layout
//!
//! * [`types`]: the wire types: requests ([`types::ChatKitRequest`], streaming or not), threads,
//!   items, attachments and stream events, serialized exactly as the client reads them.
//! * `server`: [`ChatKitServer`] decodes a request body, answers the non-streaming requests itself and
//!   hands the streaming ones to a turn.
//! * `turn`: one turn per streaming request. `turn::start` checks the request and commits its first
//!   writes before the first byte; `turn::run` runs the app in the turn's one task, under the thread
//!   lock, and handles failures, panics and clients that leave.
//! * `sink`: the [`EventSink`] through which an app streams events; it stores what an event says
//!   before the event is sent, so a client never sees something the store does not have.
//! * `http`: [`ChatKitResponse`], a JSON body or an [`SseStream`], as an axum response.
//! * `errors`: [`ChatKitError`] (an HTTP status) and [`AppError`] (an app's failure), and the one
//!   mapping from failures to statuses and `error` events.
//! * `app`: the [`ChatKitApp`] trait.
//! * [`store`]: the [`Store`] trait, the per-request [`RequestContext`] and the thread lock.
//! * [`ids`]: time-ordered identifiers.
//! * [`metrics`]: the names of the metrics the server records through the `metrics` facade.

#![warn(missing_docs)]

mod app;
mod errors;
mod http;
pub mod ids;
pub mod metrics;
mod server;
mod sink;
pub mod store;
mod turn;
pub mod types;

pub use app::ChatKitApp;
pub use errors::{AppError, ChatKitError};
pub use http::{ChatKitResponse, SseStream};
pub use server::{ChatKitServer, DEFAULT_CHANNEL_CAPACITY, DEFAULT_LOCK_WAIT};
pub use sink::{DEFAULT_STALL_TIMEOUT, EventSink, SHUTDOWN_MESSAGE, SinkError, encode_sse};
pub use store::{RequestContext, Store, StoreError};
pub use turn::CANCEL_MARKER;
