//! Timestamps: stored and emitted as RFC 3339 UTC with microseconds (`2026-11-24T22:53:10.973533Z`),
//! accepted in any ISO-8601 form, including the naive local form the Python SDK writes.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// The current time, truncated to microseconds (what the wire carries).
    pub fn now() -> Self {
        let now = Utc::now();
        let micros = now.timestamp_micros();
        Timestamp(DateTime::from_timestamp_micros(micros).unwrap_or(now))
    }

    /// Microseconds since the Unix epoch (used as a sortable key by stores).
    pub fn micros(&self) -> i64 {
        self.0.timestamp_micros()
    }

    /// Builds a timestamp from microseconds since the Unix epoch.
    pub fn from_micros(micros: i64) -> Option<Self> {
        DateTime::from_timestamp_micros(micros).map(Timestamp)
    }

    /// RFC 3339 with exactly six fractional digits and a `Z` suffix.
    pub fn to_rfc3339(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// Parses RFC 3339 / ISO-8601 with or without offset (naive values are taken as UTC).
    pub fn parse(s: &str) -> Option<Self> {
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Some(Timestamp(dt.with_timezone(&Utc)));
        }
        for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"] {
            if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
                return Some(Timestamp(n.and_utc()));
            }
        }
        None
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid datetime `{s}`")))
    }
}
