//! SQL implementations of [`chatkit::Store`], and [`open_store`], which picks one from a database URL.
//!
//! The protocol crate (`chatkit`) defines the [`chatkit::Store`] trait and ships the in-memory store;
//! this crate adds the persistent ones, each behind a cargo feature (both on by default):
//!
//! * `sqlite` — [`SqliteStore`], the default store of a single server process: one writer thread
//!   with group commit (`sqlite::conn`), WAL checkpoints in the background (`sqlite::checkpoint`);
//! * `postgres` — [`PostgresStore`], shared by several replicas: a connection pool, thread locks as
//!   advisory locks on dedicated sessions (`postgres::locks`).
//!
//! [`open_store`] wraps every store in an [`instrumented::InstrumentedStore`], which records the latency
//! of each operation through the `metrics` facade and, when asked, runs each in a tracing span.
//!
//! Both keep JSON documents in `TEXT` columns and position rows by `(created_at, insertion
//! sequence)`, so they page exactly like the memory store; the conformance suite in `tests/` runs the
//! same checks on all three. Each backend has its statements in its own `statements` module and its
//! schema in `migrations/<backend>/`, applied at open by its `migrate` module.

pub mod instrumented;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod migration;
mod open;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rows;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod write_health;

pub use open::{StoreOptions, open_store};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteLocation, SqliteStore};
