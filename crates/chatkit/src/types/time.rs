//! Timestamps: stored and emitted as RFC 3339 UTC with microseconds (`2026-11-24T22:53:10.973533Z`),
//! accepted in any ISO-8601 form, including the naive local form the Python SDK writes.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, format = DateTime, example = "2026-11-24T22:53:10.973533Z")
)]
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

    /// Parses RFC 3339 / ISO-8601 with or without offset (naive values are taken as UTC). Digits below the
    /// microsecond are dropped, so a parsed timestamp is written back exactly as it compares.
    pub fn parse(s: &str) -> Option<Self> {
        let parsed = match DateTime::parse_from_rfc3339(s) {
            Ok(dt) => dt.with_timezone(&Utc),
            Err(_) => ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"]
                .iter()
                .find_map(|fmt| NaiveDateTime::parse_from_str(s, fmt).ok())?
                .and_utc(),
        };
        Timestamp::from_micros(parsed.timestamp_micros())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_clients_and_the_python_sdk_write() {
        let expected = "2026-11-24T22:53:10.973533Z";
        for input in [
            "2026-11-24T22:53:10.973533Z",
            "2026-11-24T22:53:10.973533+00:00",
            "2026-11-24T23:53:10.973533+01:00",
            "2026-11-24T22:53:10.973533",
            "2026-11-24 22:53:10.973533",
        ] {
            assert_eq!(Timestamp::parse(input).unwrap().to_rfc3339(), expected, "{input}");
        }
        assert_eq!(Timestamp::parse("2026-11-24T22:53:10").unwrap().to_rfc3339(), "2026-11-24T22:53:10.000000Z");
        assert_eq!(Timestamp::parse("yesterday"), None);
    }

    #[test]
    fn sub_microsecond_digits_are_dropped_so_parsing_round_trips() {
        let t = Timestamp::parse("2026-11-24T22:53:10.973533999Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-24T22:53:10.973533Z");
        assert_eq!(Timestamp::parse(&t.to_rfc3339()), Some(t));
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }
}
