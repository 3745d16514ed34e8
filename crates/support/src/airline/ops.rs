//! State operations on a [`CustomerProfile`], each with its validation, timeline entry and return text
//! word for word as the Python sample has them (clients and tests compare them).
//!
//! Operations are plain synchronous mutations; [`super::AirlineStore::update`] makes them atomic per thread.
//! One documented deviation: `change_seat` stores the trimmed seat (the sample stored `" 14C "` untrimmed).

use super::profile::{CustomerProfile, FlightSegment, SegmentStatus, TimelineKind};

/// Why an operation was refused; the message is what the model or the user sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// The seat is not a row number followed by a letter.
    #[error("Seat must be a row number followed by a letter, for example 12C.")]
    InvalidSeat,
    /// No segment has that flight number (the text repeats the number as given).
    #[error("Flight {0} is not on the customer's itinerary.")]
    UnknownFlight(String),
    /// The widget was used before; each widget answers one choice.
    #[error("widget {0} was already used")]
    WidgetAlreadyUsed(String),
}

/// A segment to append with [`CustomerProfile::book_flight`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewBooking {
    /// Flight number (`OA917`).
    pub flight_number: String,
    /// Departure date.
    pub date: String,
    /// Origin code.
    pub origin: String,
    /// Destination code.
    pub destination: String,
    /// Departure time.
    pub depart_time: String,
    /// Arrival time.
    pub arrival_time: String,
    /// Seat; `None` books `TBD`.
    pub seat: Option<String>,
    /// Status (normally scheduled).
    pub status: SegmentStatus,
}

/// Normalizes a seat (trim + uppercase) and checks it is digits followed by one letter.
pub(crate) fn normalize_seat(seat: &str) -> Result<String, OpError> {
    let normalized = seat.trim().to_uppercase();
    let mut chars: Vec<char> = normalized.chars().collect();
    let last = chars.pop().ok_or(OpError::InvalidSeat)?;
    if chars.is_empty() || !last.is_alphabetic() || !chars.iter().all(|c| c.is_ascii_digit()) {
        return Err(OpError::InvalidSeat);
    }
    Ok(normalized)
}

impl CustomerProfile {
    /// Index of the first segment whose flight number matches (trimmed, case-insensitive).
    pub(crate) fn find_segment(&self, flight_number: &str) -> Option<usize> {
        let wanted = flight_number.trim().to_lowercase();
        self.segments.iter().position(|s| s.flight_number.to_lowercase() == wanted)
    }

    /// Moves the passenger to `seat` on the first segment with `flight_number`.
    pub fn change_seat(&mut self, flight_number: &str, seat: &str) -> Result<String, OpError> {
        let seat = normalize_seat(seat)?;
        let index =
            self.find_segment(flight_number).ok_or_else(|| OpError::UnknownFlight(flight_number.to_string()))?;
        let segment = &mut self.segments[index];
        let previous = std::mem::replace(&mut segment.seat, seat.clone());
        let stored_number = segment.flight_number.clone();
        self.log(TimelineKind::Success, format!("Seat changed on {stored_number} from {previous} to {seat}."));
        Ok(format!("Seat updated to {seat} on flight {stored_number}."))
    }

    /// Cancels every segment (also already cancelled ones); logs a warning on every call.
    pub fn cancel_trip(&mut self) -> String {
        for segment in &mut self.segments {
            segment.status = SegmentStatus::Cancelled;
        }
        self.log(TimelineKind::Warning, "Trip cancelled at customer request.");
        "The reservation has been cancelled. Refund processing will begin immediately.".into()
    }

    /// Adds one checked bag.
    pub(crate) fn add_bag(&mut self) -> String {
        self.bags_checked += 1;
        let n = self.bags_checked;
        self.log(TimelineKind::Info, format!("Added checked bag. Total bags now {n}."));
        format!("Checked bag added. You now have {n} bag(s) checked.")
    }

    /// Records (replaces) the special-assistance note.
    pub fn request_assistance(&mut self, note: &str) -> String {
        self.special_assistance = Some(note.to_string());
        self.log(TimelineKind::Info, format!("Special assistance noted: {note}."));
        "Assistance request recorded. Airport staff will be notified.".into()
    }

    /// Notes an accepted cabin upgrade.
    pub(crate) fn record_upgrade(&mut self, cabin: &str, price: &str) -> String {
        self.log(
            TimelineKind::Info,
            format!("Accepted {cabin} upgrade ({price}). We'll finalize payment at the airport."),
        );
        format!("{cabin} upgrade confirmed. {price} will be charged at ticketing.")
    }

    /// Notes a booking hold.
    pub(crate) fn booking_hold(&mut self, destination: &str, depart_label: &str, return_label: &str) -> String {
        self.log(TimelineKind::Success, format!("Placed hold for {destination}: {depart_label} / {return_label}."));
        format!("Flights to {destination} are on hold: {depart_label} outbound and {return_label} return.")
    }

    /// Appends a segment and logs it; returns the new segment.
    pub(crate) fn book_flight(&mut self, booking: NewBooking) -> FlightSegment {
        let segment = FlightSegment {
            flight_number: booking.flight_number,
            date: booking.date,
            origin: booking.origin,
            destination: booking.destination,
            departure_time: booking.depart_time,
            arrival_time: booking.arrival_time,
            seat: booking.seat.unwrap_or_else(|| "TBD".into()),
            status: booking.status,
        };
        self.log(
            TimelineKind::Success,
            format!(
                "{}: {} {}->{} on {} {}-{} seat {}.",
                segment.status,
                segment.flight_number,
                segment.origin,
                segment.destination,
                segment.date,
                segment.departure_time,
                segment.arrival_time,
                segment.seat
            ),
        );
        self.segments.push(segment.clone());
        segment
    }

    /// Notes the dates of a booking request.
    pub(crate) fn log_trip_dates(
        &mut self,
        origin: &str,
        destination: &str,
        depart_date: &str,
        return_date: &str,
    ) -> String {
        self.log(
            TimelineKind::Info,
            format!("Booking request for {origin} → {destination} ({depart_date} to {return_date})."),
        );
        format!(
            "I'll check flights from {origin} to {destination} departing {depart_date} and returning {return_date}."
        )
    }

    /// Moves the first segment with `flight_number` to new times (seat unchanged).
    pub(crate) fn rebook_segment(
        &mut self,
        flight_number: &str,
        depart_time: &str,
        arrival_time: &str,
        note: &str,
    ) -> Result<String, OpError> {
        let index =
            self.find_segment(flight_number).ok_or_else(|| OpError::UnknownFlight(flight_number.to_string()))?;
        let segment = &mut self.segments[index];
        let old_dep = std::mem::replace(&mut segment.departure_time, depart_time.to_string());
        let old_arr = std::mem::replace(&mut segment.arrival_time, arrival_time.to_string());
        self.log(
            TimelineKind::Success,
            format!("Rebooked {flight_number} from {old_dep}-{old_arr} to {depart_time}-{arrival_time} ({note})."),
        );
        Ok(format!(
            "You're now set for {flight_number} departing at {depart_time}. I'll keep the seat assignment the same."
        ))
    }

    /// Records that a widget's choice was made; refused if it already was, so that a change made together
    /// with it in one atomic update happens at most once per widget.
    pub(crate) fn use_widget(&mut self, widget_id: &str) -> Result<(), OpError> {
        if self.is_widget_consumed(widget_id) {
            return Err(OpError::WidgetAlreadyUsed(widget_id.to_string()));
        }
        self.booked_widget_ids.push(widget_id.to_string());
        Ok(())
    }

    /// Whether a widget's choice was already made.
    pub(crate) fn is_widget_consumed(&self, widget_id: &str) -> bool {
        self.booked_widget_ids.iter().any(|id| id == widget_id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::profile::TimelineEntry;
    use super::*;

    fn newest(p: &CustomerProfile) -> &TimelineEntry {
        &p.timeline[0]
    }

    #[test]
    fn change_seat_success() {
        let mut p = CustomerProfile::demo();
        assert_eq!(p.change_seat("OA476", "14C").unwrap(), "Seat updated to 14C on flight OA476.");
        assert_eq!(p.segments[0].seat, "14C");
        assert_eq!(newest(&p).kind, TimelineKind::Success);
        assert_eq!(newest(&p).entry, "Seat changed on OA476 from 14A to 14C.");
        assert_eq!(p.timeline.len(), 4);
    }

    #[test]
    fn change_seat_normalizes_case_whitespace_and_flight_lookup() {
        let mut p = CustomerProfile::demo();
        assert_eq!(p.change_seat(" oa477 ", " 3b ").unwrap(), "Seat updated to 3B on flight OA477.");
        assert_eq!(p.segments[1].seat, "3B");
        assert_eq!(newest(&p).entry, "Seat changed on OA477 from 15C to 3B.");
    }

    #[test]
    fn change_seat_rejects_bad_seats_without_change() {
        let mut p = CustomerProfile::demo();
        for bad in ["window", "", "C", "14", "C14", "1 4C", "14CC", "  "] {
            let err = p.change_seat("OA476", bad).unwrap_err();
            assert_eq!(err.to_string(), "Seat must be a row number followed by a letter, for example 12C.", "{bad:?}");
        }
        assert_eq!(p, {
            let mut d = CustomerProfile::demo();
            d.timeline = p.timeline.clone();
            d
        });
        assert_eq!(p.timeline.len(), 3);
    }

    #[test]
    fn change_seat_validates_seat_before_flight() {
        let mut p = CustomerProfile::demo();
        assert_eq!(p.change_seat("OA999", "x").unwrap_err(), OpError::InvalidSeat);
        let err = p.change_seat(" oa999", "3A").unwrap_err();
        assert_eq!(err.to_string(), "Flight  oa999 is not on the customer's itinerary.");
        assert_eq!(p.timeline.len(), 3);
    }

    #[test]
    fn cancel_trip_cancels_all_and_logs_every_time() {
        let mut p = CustomerProfile::demo();
        let text = p.cancel_trip();
        assert_eq!(text, "The reservation has been cancelled. Refund processing will begin immediately.");
        assert!(p.segments.iter().all(|s| s.status == SegmentStatus::Cancelled));
        assert_eq!(newest(&p).kind, TimelineKind::Warning);
        assert_eq!(newest(&p).entry, "Trip cancelled at customer request.");
        p.cancel_trip();
        assert_eq!(p.timeline.len(), 5);
        assert_eq!(p.timeline[1].entry, "Trip cancelled at customer request.");
    }

    #[test]
    fn add_bag_counts() {
        let mut p = CustomerProfile::demo();
        assert_eq!(p.add_bag(), "Checked bag added. You now have 1 bag(s) checked.");
        assert_eq!(newest(&p).entry, "Added checked bag. Total bags now 1.");
        assert_eq!(newest(&p).kind, TimelineKind::Info);
        assert_eq!(p.add_bag(), "Checked bag added. You now have 2 bag(s) checked.");
        assert_eq!(p.bags_checked, 2);
    }

    #[test]
    fn request_assistance_replaces_note() {
        let mut p = CustomerProfile::demo();
        assert_eq!(
            p.request_assistance("Wheelchair at JFK"),
            "Assistance request recorded. Airport staff will be notified."
        );
        assert_eq!(newest(&p).entry, "Special assistance noted: Wheelchair at JFK.");
        p.request_assistance("Extra legroom");
        assert_eq!(p.special_assistance.as_deref(), Some("Extra legroom"));
        assert_eq!(p.to_json()["special_assistance"], "Extra legroom");
    }

    #[test]
    fn upgrade_hold_and_trip_dates_texts() {
        let mut p = CustomerProfile::demo();
        assert_eq!(
            p.record_upgrade("Premium Plus", "$199"),
            "Premium Plus upgrade confirmed. $199 will be charged at ticketing."
        );
        assert_eq!(newest(&p).entry, "Accepted Premium Plus upgrade ($199). We'll finalize payment at the airport.");
        assert_eq!(newest(&p).kind, TimelineKind::Info);
        assert_eq!(
            p.booking_hold("CDG", "2025-11-03 SFO→CDG 12:35", "2025-11-10 CDG→SFO"),
            "Flights to CDG are on hold: 2025-11-03 SFO→CDG 12:35 outbound and 2025-11-10 CDG→SFO return."
        );
        assert_eq!(newest(&p).entry, "Placed hold for CDG: 2025-11-03 SFO→CDG 12:35 / 2025-11-10 CDG→SFO.");
        assert_eq!(newest(&p).kind, TimelineKind::Success);
        assert_eq!(
            p.log_trip_dates("SFO", "CDG", "2025-11-03", "2025-11-10"),
            "I'll check flights from SFO to CDG departing 2025-11-03 and returning 2025-11-10."
        );
        assert_eq!(newest(&p).entry, "Booking request for SFO → CDG (2025-11-03 to 2025-11-10).");
        assert_eq!(newest(&p).kind, TimelineKind::Info);
    }

    #[test]
    fn book_flight_appends_and_logs() {
        let mut p = CustomerProfile::demo();
        let seg = p.book_flight(NewBooking {
            flight_number: "OA927".into(),
            date: "2025-11-10".into(),
            origin: "CDG".into(),
            destination: "SFO".into(),
            depart_time: "21:55".into(),
            arrival_time: "06:20 (+1)".into(),
            seat: Some("5C".into()),
            status: SegmentStatus::Scheduled,
        });
        assert_eq!(p.segments.len(), 3);
        assert_eq!(p.segments[2], seg);
        assert_eq!(
            serde_json::to_string(&seg).unwrap(),
            r#"{"flight_number":"OA927","date":"2025-11-10","origin":"CDG","destination":"SFO","departure_time":"21:55","arrival_time":"06:20 (+1)","seat":"5C","status":"Scheduled"}"#
        );
        assert_eq!(newest(&p).entry, "Scheduled: OA927 CDG->SFO on 2025-11-10 21:55-06:20 (+1) seat 5C.");
        let tbd = p.book_flight(NewBooking {
            flight_number: "OA1".into(),
            date: "d".into(),
            origin: "A".into(),
            destination: "B".into(),
            depart_time: "1".into(),
            arrival_time: "2".into(),
            seat: None,
            status: SegmentStatus::Scheduled,
        });
        assert_eq!(tbd.seat, "TBD");
    }

    #[test]
    fn rebook_segment_changes_times_only() {
        let mut p = CustomerProfile::demo();
        let text = p.rebook_segment("OA477", "20:10", "23:35", "Selected alternate time").unwrap();
        assert_eq!(text, "You're now set for OA477 departing at 20:10. I'll keep the seat assignment the same.");
        assert_eq!(newest(&p).entry, "Rebooked OA477 from 18:50-22:15 to 20:10-23:35 (Selected alternate time).");
        assert_eq!(p.segments[1].departure_time, "20:10");
        assert_eq!(p.segments[1].arrival_time, "23:35");
        assert_eq!(p.segments[1].seat, "15C");
        let err = p.rebook_segment("OA1", "1", "2", "n").unwrap_err();
        assert_eq!(err.to_string(), "Flight OA1 is not on the customer's itinerary.");
    }

    #[test]
    fn widget_consumption() {
        let mut p = CustomerProfile::demo();
        assert!(!p.is_widget_consumed("msg_1"));
        assert_eq!(p.use_widget("msg_1"), Ok(()));
        assert_eq!(p.use_widget("msg_1"), Err(OpError::WidgetAlreadyUsed("msg_1".into())));
        assert!(p.is_widget_consumed("msg_1"));
        assert_eq!(p.booked_widget_ids, vec!["msg_1".to_string()]);
        assert_eq!(p.timeline.len(), 3);
    }
}
