//! The booking, upgrade and rebooking actions. The Python sample registers them although none of its
//! widgets sends them; here they run only for a stored widget that offers them (see [`super::offer`]),
//! so they are ready for such a widget and unreachable with a hand-written payload.
//!
//! Each reads its payload as an object with a default for every missing field, answers with one assistant
//! message and marks its widget used, in the same atomic update as its profile change, so a second click
//! changes nothing.

use chatkit::{AppError, EventSink};
use serde_json::{Map, Value};

use super::offer::{OfferedAction, op_refused};
use super::{emit, profile_effect, say};
use crate::airline::{AirlineStore, CustomerProfile, OpError};

/// `booking.confirm_selection`
pub(super) const CONFIRM_SELECTION: &str = "booking.confirm_selection";
/// `booking.modify_request`
pub(super) const MODIFY_REQUEST: &str = "booking.modify_request";
/// `upsell.accept`
pub(super) const UPSELL_ACCEPT: &str = "upsell.accept";
/// `upsell.decline`
pub(super) const UPSELL_DECLINE: &str = "upsell.decline";
/// `rebook.select_option`
pub(super) const REBOOK_SELECT: &str = "rebook.select_option";

/// Uses the widget and applies `change` in one atomic update; returns the change's text and the profile,
/// or (inside `Ok`) the refusal of `change`, in which case nothing was written and the widget stays usable.
async fn try_apply_with_widget(
    airline: &AirlineStore,
    thread_id: &str,
    offer: &OfferedAction,
    action_type: &str,
    mut change: impl FnMut(&mut CustomerProfile) -> Result<String, OpError>,
) -> Result<Result<(String, CustomerProfile), OpError>, AppError> {
    let updated = airline
        .update(thread_id, |profile| {
            profile.use_widget(&offer.widget_id)?;
            change(profile).map(|text| (text, profile.clone()))
        })
        .await?;
    match updated {
        Err(used @ OpError::WidgetAlreadyUsed(_)) => Err(op_refused(used, thread_id, action_type)),
        other => Ok(other),
    }
}

/// [`try_apply_with_widget`] for a change that cannot be refused.
async fn apply_with_widget(
    airline: &AirlineStore,
    thread_id: &str,
    offer: &OfferedAction,
    action_type: &str,
    mut change: impl FnMut(&mut CustomerProfile) -> String,
) -> Result<(String, CustomerProfile), AppError> {
    try_apply_with_widget(airline, thread_id, offer, action_type, |p| Ok(change(p)))
        .await?
        .map_err(|e| op_refused(e, thread_id, action_type))
}

/// Uses the widget and says `text` (the actions that only answer).
async fn answer(
    airline: &AirlineStore,
    thread_id: &str,
    offer: &OfferedAction,
    action_type: &str,
    text: String,
    sink: &EventSink,
) -> Result<(), AppError> {
    apply_with_widget(airline, thread_id, offer, action_type, |_| String::new()).await?;
    say(sink, thread_id, text).await
}

/// Places a hold with the widget's labels.
pub(super) async fn confirm_selection(
    airline: &AirlineStore,
    thread_id: &str,
    offer: &OfferedAction,
    sink: &EventSink,
) -> Result<(), AppError> {
    let payload = &offer.payload;
    let destination = text_field(payload, "destination").unwrap_or_else(|| "the trip".into());
    let depart = text_field(payload, "depart_label").unwrap_or_else(|| "outbound flight".into());
    let back = text_field(payload, "return_label").unwrap_or_else(|| "return flight".into());
    let (text, profile) = apply_with_widget(airline, thread_id, offer, CONFIRM_SELECTION, |p| {
        p.booking_hold(&destination, &depart, &back)
    })
    .await?;
    say(sink, thread_id, format!("{text} I’ll keep monitoring inventory and let you know if something better opens."))
        .await?;
    emit(sink, profile_effect(&profile)).await
}

/// Invites the user to change the plan (no profile change).
pub(super) async fn modify_request(
    airline: &AirlineStore,
    thread_id: &str,
    offer: &OfferedAction,
    sink: &EventSink,
) -> Result<(), AppError> {
    let text = "Happy to tweak the plan. Let me know what you'd like to change and feel free to attach a new \
                inspiration photo if it helps.";
    answer(airline, thread_id, offer, MODIFY_REQUEST, text.into(), sink).await
}

/// Records the offered upgrade.
pub(super) async fn upsell_accept(
    airline: &AirlineStore,
    thread_id: &str,
    offer: &OfferedAction,
    sink: &EventSink,
) -> Result<(), AppError> {
    let cabin = text_field(&offer.payload, "cabin_name").unwrap_or_else(|| "the upgrade".into());
    let price = text_field(&offer.payload, "price").unwrap_or_else(|| "the quoted amount".into());
    let (text, profile) =
        apply_with_widget(airline, thread_id, offer, UPSELL_ACCEPT, |p| p.record_upgrade(&cabin, &price)).await?;
    say(sink, thread_id, text).await?;
    emit(sink, profile_effect(&profile)).await
}

/// Keeps the current cabin (no profile change).
pub(super) async fn upsell_decline(
    airline: &AirlineStore,
    thread_id: &str,
    offer: &OfferedAction,
    sink: &EventSink,
) -> Result<(), AppError> {
    let cabin = text_field(&offer.payload, "cabin_name").unwrap_or_else(|| "the upgrade".into());
    let text = format!(
        "No worries—I'll keep the current cabin and continue helping with {} availability.",
        cabin.to_lowercase()
    );
    answer(airline, thread_id, offer, UPSELL_DECLINE, text, sink).await
}

/// Moves a segment to the offered times, or keeps it (`option_id` `keep`). A payload without a flight
/// number or an option does nothing, as in the sample; a flight no longer on the itinerary is explained
/// to the user and leaves the widget usable.
pub(super) async fn rebook_select(
    airline: &AirlineStore,
    thread_id: &str,
    offer: &OfferedAction,
    sink: &EventSink,
) -> Result<(), AppError> {
    let payload = &offer.payload;
    let fields = object(payload);
    let (true, Some(option_id)) = (is_truthy(fields.get("flight_number")), text_field(payload, "option_id")) else {
        tracing::info!(thread_id, "ignoring rebook.select_option without flight_number or option_id");
        return Ok(());
    };
    if option_id == "keep" {
        let text = "Sounds good — we'll keep the original departure on file.";
        return answer(airline, thread_id, offer, REBOOK_SELECT, text.into(), sink).await;
    }
    let flight_number = text_field(payload, "flight_number").unwrap_or_default();
    let depart = text_field(payload, "depart_time").unwrap_or_default();
    let arrive = text_field(payload, "arrival_time").unwrap_or_default();
    let note = text_field(payload, "option_note").unwrap_or_else(|| "Selected alternate time".into());
    let rebooked = try_apply_with_widget(airline, thread_id, offer, REBOOK_SELECT, |p| {
        p.rebook_segment(&flight_number, &depart, &arrive, &note)
    })
    .await?;
    let (text, profile) = match rebooked {
        Ok(done) => done,
        Err(refused) => (refused.to_string(), airline.profile(thread_id).await?),
    };
    say(sink, thread_id, text).await?;
    emit(sink, profile_effect(&profile)).await
}

/// The payload as an object (anything else reads as empty).
fn object(payload: &Value) -> Map<String, Value> {
    payload.as_object().cloned().unwrap_or_default()
}

/// A payload field as text: strings as is, other non-null values as JSON; missing or null → `None`.
fn text_field(payload: &Value, key: &str) -> Option<String> {
    match payload.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// Python's truthiness, which the sample applies to `flight_number`.
fn is_truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}
