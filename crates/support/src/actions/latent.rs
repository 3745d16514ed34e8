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

/// One click on a widget offering one of these actions: where it happened and what the widget offered.
pub(super) struct Click<'a> {
    pub(super) airline: &'a AirlineStore,
    pub(super) thread_id: &'a str,
    /// The action's type, as sent (one of the constants above).
    pub(super) action_type: &'a str,
    pub(super) offer: &'a OfferedAction,
    pub(super) sink: &'a EventSink,
}

impl Click<'_> {
    /// A payload field of the offered action as text.
    fn field(&self, key: &str) -> Option<String> {
        text_field(&self.offer.payload, key)
    }

    /// Uses the widget and applies `change` in one atomic update; returns the change's text and the
    /// profile, or (inside `Ok`) the refusal of `change`, in which case nothing was written and the
    /// widget stays usable.
    async fn try_apply(
        &self,
        mut change: impl FnMut(&mut CustomerProfile) -> Result<String, OpError>,
    ) -> Result<Result<(String, CustomerProfile), OpError>, AppError> {
        let updated = self
            .airline
            .update(self.thread_id, |profile| {
                profile.use_widget(&self.offer.widget_id)?;
                change(profile).map(|text| (text, profile.clone()))
            })
            .await?;
        match updated {
            Err(used @ OpError::WidgetAlreadyUsed(_)) => Err(op_refused(used, self.thread_id, self.action_type)),
            other => Ok(other),
        }
    }

    /// [`Click::try_apply`] for a change that cannot be refused.
    async fn apply(
        &self,
        mut change: impl FnMut(&mut CustomerProfile) -> String,
    ) -> Result<(String, CustomerProfile), AppError> {
        self.try_apply(|p| Ok(change(p))).await?.map_err(|e| op_refused(e, self.thread_id, self.action_type))
    }

    /// Uses the widget and says `text` (the actions that only answer).
    async fn answer(&self, text: String) -> Result<(), AppError> {
        self.apply(|_| String::new()).await?;
        say(self.sink, self.thread_id, text).await
    }

    /// Says `text` and shows `profile` in the side panel.
    async fn answer_with_profile(&self, text: String, profile: &CustomerProfile) -> Result<(), AppError> {
        say(self.sink, self.thread_id, text).await?;
        emit(self.sink, profile_effect(profile)).await
    }
}

/// Places a hold with the widget's labels.
pub(super) async fn confirm_selection(click: &Click<'_>) -> Result<(), AppError> {
    let destination = click.field("destination").unwrap_or_else(|| "the trip".into());
    let depart = click.field("depart_label").unwrap_or_else(|| "outbound flight".into());
    let back = click.field("return_label").unwrap_or_else(|| "return flight".into());
    let (text, profile) = click.apply(|p| p.booking_hold(&destination, &depart, &back)).await?;
    let text = format!("{text} I’ll keep monitoring inventory and let you know if something better opens.");
    click.answer_with_profile(text, &profile).await
}

/// Invites the user to change the plan (no profile change).
pub(super) async fn modify_request(click: &Click<'_>) -> Result<(), AppError> {
    let text = "Happy to tweak the plan. Let me know what you'd like to change and feel free to attach a new \
                inspiration photo if it helps.";
    click.answer(text.into()).await
}

/// Records the offered upgrade.
pub(super) async fn upsell_accept(click: &Click<'_>) -> Result<(), AppError> {
    let cabin = click.field("cabin_name").unwrap_or_else(|| "the upgrade".into());
    let price = click.field("price").unwrap_or_else(|| "the quoted amount".into());
    let (text, profile) = click.apply(|p| p.record_upgrade(&cabin, &price)).await?;
    click.answer_with_profile(text, &profile).await
}

/// Keeps the current cabin (no profile change).
pub(super) async fn upsell_decline(click: &Click<'_>) -> Result<(), AppError> {
    let cabin = click.field("cabin_name").unwrap_or_else(|| "the upgrade".into());
    let text = format!(
        "No worries—I'll keep the current cabin and continue helping with {} availability.",
        cabin.to_lowercase()
    );
    click.answer(text).await
}

/// Moves a segment to the offered times, or keeps it (`option_id` `keep`). A payload without a flight
/// number or an option does nothing, as in the sample; a flight no longer on the itinerary is explained
/// to the user and leaves the widget usable.
pub(super) async fn rebook_select(click: &Click<'_>) -> Result<(), AppError> {
    let fields = object(&click.offer.payload);
    let (true, Some(option_id)) = (is_truthy(fields.get("flight_number")), click.field("option_id")) else {
        tracing::info!(thread_id = click.thread_id, "ignoring rebook.select_option without flight_number or option_id");
        return Ok(());
    };
    if option_id == "keep" {
        return click.answer("Sounds good — we'll keep the original departure on file.".into()).await;
    }
    let flight_number = click.field("flight_number").unwrap_or_default();
    let depart = click.field("depart_time").unwrap_or_default();
    let arrive = click.field("arrival_time").unwrap_or_default();
    let note = click.field("option_note").unwrap_or_else(|| "Selected alternate time".into());
    let rebooked = click.try_apply(|p| p.rebook_segment(&flight_number, &depart, &arrive, &note)).await?;
    let (text, profile) = match rebooked {
        Ok(done) => done,
        Err(refused) => (refused.to_string(), click.airline.profile(click.thread_id).await?),
    };
    click.answer_with_profile(text, &profile).await
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
