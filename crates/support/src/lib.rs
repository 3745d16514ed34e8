//! The OpenSkies airline customer-support concierge and the HTTP server around it; `main.rs` (the
//! `support` binary) only parses the configuration and calls [`startup`].
//!
//! The app, behind [`chatkit::ChatKitApp`]:
//! - [`app`]: [`app::SupportApp`], one chat turn through the concierge, dictation, image attachments and
//!   per-thread clean-up;
//! - `agent`: the concierge's instructions and the model input of a turn; `tools`: its five function
//!   tools; `titles`: thread titles without a model; `turn_usage`: the tokens a turn spent, logged and
//!   stored however it ends;
//! - [`airline`]: the customer profile of a thread and the changes the tools and actions make to it;
//! - [`widgets`]: the flight-options widget; [`actions`]: what its clicks (and the sample's other
//!   widget actions) do, refused unless the stored widget offered them.
//!
//! The server, from start-up to a response:
//! - [`config`]: every setting (flags, environment, `.env`), validated once; [`telemetry`]: logging;
//! - [`startup`]: store, model provider, app and router built from the configuration, then served;
//!   `connections`: the accept loop, connection timeouts and graceful close; `readiness`: whether
//!   this replica takes traffic; `tombstones`: pruning of the paging tombstones of deleted rows;
//! - [`router`]: the layers every response passes through; [`routes`]: one module per resource with
//!   its handlers and their OpenAPI descriptions, and the one place errors become statuses;
//!   `openapi`: `/openapi.json` and Swagger UI at `/docs`;
//! - [`auth`]: who is calling; [`limits`]: per-user abuse limits; [`signed_urls`]: attachment links
//!   that carry their own proof; `public_url`: the external base URL those links start with.

pub mod actions;
mod agent;
pub mod airline;
pub mod app;
mod titles;
mod tools;
mod turn_usage;
pub mod widgets;

#[cfg(test)]
mod testkit;

pub mod auth;
pub mod compatible;
pub mod config;
mod connections;
pub mod limits;
pub mod log_format;
pub mod metrics;
mod openapi;
mod public_url;
mod readiness;
pub mod request_id;
pub mod router;
pub mod routes;
pub mod signed_urls;
pub mod startup;
pub mod telemetry;
mod tombstones;
