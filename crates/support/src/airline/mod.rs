//! The OpenSkies airline state of one conversation.
//!
//! [`profile`] holds the data model and the default demo profile, [`ops`] the state operations with their
//! exact texts, and [`store`] keeps one profile per thread key in the ChatKit store's key-value space, updated
//! atomically with compare-and-set so several replicas can share one database.

pub mod ops;
pub mod profile;
pub mod store;

pub(crate) use ops::NewBooking;
pub use ops::OpError;
#[cfg(test)]
pub(crate) use profile::timeline_timestamp;
pub use profile::{CustomerProfile, SegmentStatus};
pub(crate) use store::DEFAULT_THREAD_KEY;
pub use store::{AirlineStore, NAMESPACE};
