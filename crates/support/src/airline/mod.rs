//! The OpenSkies airline state of one conversation.
//!
//! [`profile`] holds the data model and the default demo profile, [`ops`] the state operations with their
//! exact texts, and [`store`] keeps one profile per thread key in the ChatKit store's key-value space, updated
//! atomically with compare-and-set so several replicas can share one database.

pub mod ops;
pub mod profile;
pub mod store;

pub use ops::{NewBooking, OpError};
pub use profile::{
    CustomerProfile, FlightSegment, LoyaltyProgress, SegmentStatus, TimelineEntry, TimelineKind, timeline_timestamp,
};
pub use store::{AirlineStore, DEFAULT_THREAD_KEY, NAMESPACE};
