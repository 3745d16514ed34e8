//! The OpenSkies airline customer-support concierge, as a library the `support` binary wires into HTTP.
//!
//! [`airline`] is the per-thread customer state, [`widgets`] the flight-options widget, [`actions`] the
//! widget action handlers, [`tools`] the model's function tools, [`agent`] the concierge's instructions and
//! input, [`titles`] the model-free thread titles, and [`app`] the [`chatkit::ChatKitApp`] tying them together.

pub mod actions;
pub mod agent;
pub mod airline;
pub mod app;
pub mod titles;
pub mod tools;
pub mod widgets;

#[cfg(test)]
mod testkit;

// H6 (wiring) modules.
pub mod auth;
pub mod compatible;
pub mod config;
pub mod connections;
pub mod limits;
pub mod openapi;
pub mod public_url;
pub mod readiness;
pub mod router;
pub mod routes;
pub mod signed_urls;
pub mod startup;
pub mod telemetry;
