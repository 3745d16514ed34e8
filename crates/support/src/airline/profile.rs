//! The customer profile data model and the default demo profile.
//!
//! Field order is the JSON order the frontend and the `customer_profile/update` effect expect;
//! `meal_preference` and `special_assistance` are always written, as `null` when unset.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Status of a flight segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub enum SegmentStatus {
    /// Booked and flying (new segments).
    #[default]
    Scheduled,
    /// Cancelled at the customer's request.
    Cancelled,
}

impl SegmentStatus {
    /// The wire text (`Scheduled` / `Cancelled`).
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            SegmentStatus::Scheduled => "Scheduled",
            SegmentStatus::Cancelled => "Cancelled",
        }
    }
}

impl std::fmt::Display for SegmentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One flight of the itinerary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlightSegment {
    /// `OA476`; not unique (booking a leg twice appends a second one).
    pub flight_number: String,
    /// Normally `YYYY-MM-DD`.
    pub date: String,
    /// Origin airport code.
    pub origin: String,
    /// Destination airport code.
    pub destination: String,
    /// `HH:MM`.
    pub departure_time: String,
    /// `HH:MM`, may carry a day offset like `06:20 (+1)`.
    pub arrival_time: String,
    /// Seat like `14A`.
    pub seat: String,
    /// Scheduled or cancelled.
    pub status: SegmentStatus,
}

/// Progress towards the next loyalty tier; never modified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoyaltyProgress {
    /// `Gold`.
    pub current_tier: String,
    /// `Platinum`.
    pub next_tier: String,
    /// Points earned this period.
    pub points_earned: u64,
    /// Points needed for the next tier.
    pub points_required: u64,
    /// Segments flown this period.
    pub segments_flown: u64,
    /// Segments needed for the next tier.
    pub segments_required: u64,
    /// `YYYY-MM-DD`.
    pub renewal_date: String,
}

/// Kind of a timeline entry (the frontend colours them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TimelineKind {
    /// Imported or automatic events.
    System,
    /// Something completed (seat changed, hold placed…).
    Success,
    /// A note (bag added, assistance…).
    Info,
    /// A destructive change (cancellation).
    Warning,
    /// A failure (styled by the frontend; nothing produces it).
    Error,
}

/// One service-timeline entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    /// UTC ISO-8601 with microseconds and `+00:00`, e.g. `2026-11-24T22:45:09.758929+00:00`.
    pub timestamp: String,
    /// How the frontend styles the entry.
    pub kind: TimelineKind,
    /// What happened, in a sentence shown to the user.
    pub entry: String,
}

/// The customer's account and travel state for one conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerProfile {
    /// `cus_98421`.
    pub customer_id: String,
    /// Full name.
    pub name: String,
    /// `Aviator Gold`.
    pub loyalty_status: String,
    /// Loyalty number.
    pub loyalty_id: String,
    /// Email address.
    pub email: String,
    /// Phone number.
    pub phone: String,
    /// Default origin for bookings.
    pub home_airport: String,
    /// Favourite routes (`SFO → JFK`).
    #[serde(default)]
    pub preferred_routes: Vec<String>,
    /// One-paragraph summary.
    pub travel_summary: String,
    /// Benefits of the current tier.
    #[serde(default)]
    pub tier_benefits: Vec<String>,
    /// Points and segments towards the next tier.
    pub loyalty_progress: LoyaltyProgress,
    /// The itinerary in booking order; cancelled segments stay, with their status.
    #[serde(default)]
    pub segments: Vec<FlightSegment>,
    /// Number of checked bags.
    pub bags_checked: u32,
    /// Always `null`: the meal-preference feature is not part of this app (kept for the frontend).
    pub meal_preference: Option<String>,
    /// Special assistance note for airport staff.
    pub special_assistance: Option<String>,
    /// Service timeline, newest first.
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    /// Personal notes the concierge may use to tailor suggestions.
    #[serde(default)]
    pub spotlight: Vec<String>,
    /// Ids of widgets whose choice was made: each widget answers once.
    #[serde(default)]
    pub booked_widget_ids: Vec<String>,
}

/// Formats an instant like Python's `datetime.isoformat()` of an aware UTC value with microseconds.
pub(crate) fn timeline_timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

impl CustomerProfile {
    /// The demo profile every thread starts with; the timeline is logged now (newest first).
    pub fn demo() -> Self {
        Self::demo_at(Utc::now())
    }

    /// The demo profile as created at `at`: its three timeline entries are stamped `at` plus 0, 1 and
    /// 2 microseconds, in the order they are logged (newest first, as [`CustomerProfile::log`] keeps them).
    pub(crate) fn demo_at(at: DateTime<Utc>) -> Self {
        let mut profile = CustomerProfile {
            customer_id: "cus_98421".into(),
            name: "Jordan Miles".into(),
            loyalty_status: "Aviator Gold".into(),
            loyalty_id: "APL-204981".into(),
            email: "jordan.miles@example.com".into(),
            phone: "+1 (415) 555-9214".into(),
            home_airport: "SFO".into(),
            preferred_routes: strings(&["SFO → JFK", "SFO → CDG", "SFO → HND"]),
            travel_summary: "Product leader splitting time between San Francisco and New York with quarterly \
                             long-haul art trips."
                .into(),
            tier_benefits: strings(&[
                "Complimentary Premium Plus upgrades on transcon routes",
                "4 lounge guest passes every quarter",
                "15% off buy-on-board food & beverage",
                "Dedicated rebooking desk with WhatsApp follow-up",
            ]),
            loyalty_progress: LoyaltyProgress {
                current_tier: "Gold".into(),
                next_tier: "Platinum".into(),
                points_earned: 42000,
                points_required: 60000,
                segments_flown: 18,
                segments_required: 32,
                renewal_date: "2026-02-01".into(),
            },
            segments: vec![
                segment("OA476", "2025-10-02", "SFO", "JFK", "08:05", "16:35", "14A"),
                segment("OA477", "2025-10-10", "JFK", "SFO", "18:50", "22:15", "15C"),
            ],
            bags_checked: 0,
            meal_preference: None,
            special_assistance: None,
            timeline: Vec::new(),
            spotlight: strings(&[
                "Prefers window seats on daytime flights",
                "Collects modern art city guides",
                "Enjoys Michelin Bib Gourmand discoveries",
            ]),
            booked_widget_ids: Vec::new(),
        };
        let entries = [
            (TimelineKind::System, "Itinerary imported from confirmation LL0EZ6."),
            (TimelineKind::Success, "Waived change fees for October trip."),
            (TimelineKind::Info, "Added note: enjoys single-origin drip coffee."),
        ];
        for (n, (kind, entry)) in (0..).zip(entries) {
            profile.log_at(at + chrono::Duration::microseconds(n), kind, entry);
        }
        profile
    }

    /// Inserts a timeline entry stamped now at the front (newest first; never truncated).
    pub(crate) fn log(&mut self, kind: TimelineKind, entry: impl Into<String>) {
        self.log_at(Utc::now(), kind, entry);
    }

    fn log_at(&mut self, at: DateTime<Utc>, kind: TimelineKind, entry: impl Into<String>) {
        self.timeline.insert(0, TimelineEntry { timestamp: timeline_timestamp(at), kind, entry: entry.into() });
    }

    /// The JSON object sent by `GET /support/customer` and the `customer_profile/update` effect.
    pub fn to_json(&self) -> serde_json::Value {
        // Plain structs with string keys always serialize.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

fn segment(
    flight_number: &str,
    date: &str,
    origin: &str,
    destination: &str,
    departure_time: &str,
    arrival_time: &str,
    seat: &str,
) -> FlightSegment {
    FlightSegment {
        flight_number: flight_number.into(),
        date: date.into(),
        origin: origin.into(),
        destination: destination.into(),
        departure_time: departure_time.into(),
        arrival_time: arrival_time.into(),
        seat: seat.into(),
        status: SegmentStatus::Scheduled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Python sample's default profile document, with the timestamps replaced by the ones we generated.
    #[test]
    fn demo_profile_json_matches_spec_shape() {
        let p = CustomerProfile::demo();
        let got = serde_json::to_string(&p).unwrap();
        let ts: Vec<&str> = p.timeline.iter().map(|t| t.timestamp.as_str()).collect();
        let expected = format!(
            concat!(
                r#"{{"customer_id":"cus_98421","name":"Jordan Miles","loyalty_status":"Aviator Gold","loyalty_id":"APL-204981","#,
                r#""email":"jordan.miles@example.com","phone":"+1 (415) 555-9214","home_airport":"SFO","#,
                r#""preferred_routes":["SFO → JFK","SFO → CDG","SFO → HND"],"#,
                r#""travel_summary":"Product leader splitting time between San Francisco and New York with quarterly long-haul art trips.","#,
                r#""tier_benefits":["Complimentary Premium Plus upgrades on transcon routes","4 lounge guest passes every quarter","#,
                r#""15% off buy-on-board food & beverage","Dedicated rebooking desk with WhatsApp follow-up"],"#,
                r#""loyalty_progress":{{"current_tier":"Gold","next_tier":"Platinum","points_earned":42000,"points_required":60000,"#,
                r#""segments_flown":18,"segments_required":32,"renewal_date":"2026-02-01"}},"#,
                r#""segments":[{{"flight_number":"OA476","date":"2025-10-02","origin":"SFO","destination":"JFK","departure_time":"08:05","#,
                r#""arrival_time":"16:35","seat":"14A","status":"Scheduled"}},"#,
                r#"{{"flight_number":"OA477","date":"2025-10-10","origin":"JFK","destination":"SFO","departure_time":"18:50","#,
                r#""arrival_time":"22:15","seat":"15C","status":"Scheduled"}}],"#,
                r#""bags_checked":0,"meal_preference":null,"special_assistance":null,"#,
                r#""timeline":[{{"timestamp":"{}","kind":"info","entry":"Added note: enjoys single-origin drip coffee."}},"#,
                r#"{{"timestamp":"{}","kind":"success","entry":"Waived change fees for October trip."}},"#,
                r#"{{"timestamp":"{}","kind":"system","entry":"Itinerary imported from confirmation LL0EZ6."}}],"#,
                r#""spotlight":["Prefers window seats on daytime flights","Collects modern art city guides","Enjoys Michelin Bib Gourmand discoveries"],"#,
                r#""booked_widget_ids":[]}}"#
            ),
            ts[0], ts[1], ts[2]
        );
        assert_eq!(got, expected);
        // Round trip keeps everything.
        let back: CustomerProfile = serde_json::from_str(&got).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn timeline_timestamps_have_python_isoformat_shape_and_are_newest_first() {
        let p = CustomerProfile::demo();
        for t in &p.timeline {
            let s = &t.timestamp;
            assert_eq!(s.len(), "2026-11-24T22:45:09.758929+00:00".len(), "{s}");
            assert!(s.ends_with("+00:00"), "{s}");
            assert_eq!(&s[10..11], "T");
            assert_eq!(&s[19..20], ".");
            assert!(chrono::DateTime::parse_from_rfc3339(s).is_ok(), "{s}");
        }
        assert!(p.timeline[0].timestamp >= p.timeline[1].timestamp);
        assert!(p.timeline[1].timestamp >= p.timeline[2].timestamp);
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-24T22:45:09.758929Z").unwrap().with_timezone(&Utc);
        assert_eq!(timeline_timestamp(at), "2026-11-24T22:45:09.758929+00:00");
        let whole = chrono::DateTime::parse_from_rfc3339("2026-11-24T22:45:09Z").unwrap().with_timezone(&Utc);
        assert_eq!(timeline_timestamp(whole), "2026-11-24T22:45:09.000000+00:00");
    }
}
