//! `flight.select`: a click on one option of the flight-options widget. The option is put on hold and
//! booked with a seat for its cabin, the widget is locked on it, and an outbound choice is followed by the
//! return options.
//!
//! Everything comes from the payload the widget stored (see [`super::offer`]); the profile changes in one
//! atomic update, together with marking the widget used, before any event is sent.

use chatkit::types::{ItemUpdate, ThreadStreamEvent};
use chatkit::{AppError, EventSink};

use super::offer::{OfferedAction, Rejection, op_refused};
use super::{emit, hidden_context_item, profile_effect, say, widget_item};
use crate::airline::{AirlineStore, CustomerProfile, NewBooking, SegmentStatus};
use crate::widgets::{
    FLIGHT_SELECT, FlightOption, FlightSelectPayload, Leg, airport_code, default_seat, describe, flight_options_widget,
    generate_flight_options, locked_flight_widget,
};

/// Books the chosen option and tells the user; see the module documentation for the order of events.
pub(super) async fn select(
    airline: &AirlineStore,
    thread_id: &str,
    offer: &OfferedAction,
    sink: &EventSink,
) -> Result<(), AppError> {
    let choice = Choice::read(offer, thread_id)?;
    let (profile, seat) = book(airline, thread_id, &offer.widget_id, &choice).await?;
    say(sink, thread_id, choice.confirmation(&seat)).await?;
    lock_widget(sink, &offer.widget_id, &choice).await?;
    if choice.payload.leg == Leg::Outbound {
        offer_returns(sink, thread_id, &choice).await?;
    }
    remember(sink, thread_id, &offer.widget_id, &choice.payload).await?;
    emit(sink, profile_effect(&profile)).await
}

/// The stored payload and the option it names.
struct Choice {
    payload: FlightSelectPayload,
    selected: FlightOption,
}

impl Choice {
    /// Reads the stored payload. This server wrote it, so a payload that does not read, or names no option
    /// of its own list, means the stored widget is not a flight list of ours: refused as not offered.
    fn read(offer: &OfferedAction, thread_id: &str) -> Result<Choice, AppError> {
        let not_offered = || Rejection::NotOffered.refuse(thread_id, FLIGHT_SELECT);
        let payload: FlightSelectPayload = serde_json::from_value(offer.payload.clone()).map_err(|e| {
            tracing::warn!(widget = offer.widget_id, error = %e, "stored flight.select payload does not read");
            not_offered()
        })?;
        let selected = payload.options.iter().find(|o| o.id == payload.id).cloned().ok_or_else(not_offered)?;
        Ok(Choice { payload, selected })
    }

    /// The segment to add: the leg's flight number on the search's date, with the option's times.
    fn booking(&self, seat: &str) -> NewBooking {
        let search = &self.payload.request;
        NewBooking {
            flight_number: self.payload.leg.flight_number().into(),
            date: search.depart_date.clone(),
            origin: airport_code(&search.origin),
            destination: airport_code(&search.destination),
            depart_time: self.selected.dep_time.clone(),
            arrival_time: self.selected.arr_time.clone(),
            seat: Some(seat.to_string()),
            status: SegmentStatus::Scheduled,
        }
    }

    /// Applies the hold and the booking to `profile`.
    fn apply(&self, profile: &mut CustomerProfile, seat: &str) {
        let search = &self.payload.request;
        let option = &self.selected;
        let depart =
            format!("{} {}→{} {}", search.depart_date, option.from_airport, option.to_airport, option.dep_time);
        let back = format!("{} {}→{}", search.return_date, search.destination, search.origin);
        profile.booking_hold(&airport_code(&search.destination), &depart, &back);
        profile.book_flight(self.booking(seat));
    }

    fn confirmation(&self, seat: &str) -> String {
        let next = match self.payload.leg {
            Leg::Outbound => "You're scheduled on that option. I'll surface a few returns now.",
            Leg::Return => "Return scheduled. Want me to watch for upgrades?",
        };
        format!("Scheduled: {}. Seat {seat} for now; {next}", describe(&self.selected, &self.payload.request))
    }
}

/// Marks the widget used and books, in one atomic update: a widget books at most once, even when the same
/// click reaches two replicas. Returns the new profile and the seat given.
async fn book(
    airline: &AirlineStore,
    thread_id: &str,
    widget_id: &str,
    choice: &Choice,
) -> Result<(CustomerProfile, String), AppError> {
    let seat = default_seat(&choice.payload.request.cabin);
    let updated = airline
        .update(thread_id, |profile| {
            profile.use_widget(widget_id)?;
            choice.apply(profile, &seat);
            Ok(profile.clone())
        })
        .await?;
    let profile = updated.map_err(|e| op_refused(e, thread_id, FLIGHT_SELECT))?;
    Ok((profile, seat))
}

/// Replaces the widget by its locked variant (the chosen option only, not clickable); the sink stores it,
/// so a reload shows what the client shows.
async fn lock_widget(sink: &EventSink, widget_id: &str, choice: &Choice) -> Result<(), AppError> {
    let widget = locked_flight_widget(&choice.selected, &choice.payload.request, choice.payload.leg);
    let update = ItemUpdate::WidgetRootUpdated { widget };
    emit(sink, ThreadStreamEvent::ItemUpdated { item_id: widget_id.to_string(), update }).await
}

/// Offers the flights back: a message and a new widget for the return search.
async fn offer_returns(sink: &EventSink, thread_id: &str, choice: &Choice) -> Result<(), AppError> {
    let back = choice.payload.request.return_search();
    let widget = flight_options_widget(&generate_flight_options(&back), &back, None, Leg::Return);
    say(sink, thread_id, "Here are return options that line up with your trip:").await?;
    emit(sink, ThreadStreamEvent::ItemDone { item: widget_item(thread_id, widget) }).await
}

/// Stores (never streams) what was clicked, so the model knows on the next turn.
async fn remember(
    sink: &EventSink,
    thread_id: &str,
    widget_id: &str,
    payload: &FlightSelectPayload,
) -> Result<(), AppError> {
    let payload_json = serde_json::to_string(payload).map_err(|e| AppError::Internal(e.to_string()))?;
    let context =
        format!("<WIDGET_ACTION widgetId={widget_id}>{FLIGHT_SELECT} payload: {payload_json}</WIDGET_ACTION>");
    emit(sink, ThreadStreamEvent::ItemDone { item: hidden_context_item(thread_id, context) }).await
}
