//! Widget actions (`threads.custom_action`, spec customer-support §6): the full `flight.select` flow, the
//! latent `booking.*` / `upsell.*` / `rebook.*` handlers, and the event builders tools share.
//!
//! Unknown action types (including the removed `support.set_meal_preference`) produce no events. Invalid
//! `flight.select` payloads, unknown options and already-used widgets are ignored with a warning log.
//! State changes happen in one atomic update before any event is sent; after that the handler keeps
//! persisting its items even if the client has gone away, so a reload shows a consistent thread.

use chatkit::ids;
use chatkit::types::{
    Action, AssistantMessageContent, AssistantMessageItem, HiddenContextItem, ItemKind, ItemUpdate, ThreadItem,
    ThreadMetadata, ThreadStreamEvent, WidgetItem,
};
use chatkit::{AppError, EventSink, SinkError};
use serde_json::{Map, Value, json};

use crate::airline::{AirlineStore, CustomerProfile, NewBooking, SegmentStatus};
use crate::widgets::{
    FLIGHT_SELECT, FlightSelectPayload, Leg, airport_code, default_seat, describe, flight_options_widget,
    generate_flight_options, locked_flight_widget,
};

/// Name of the client effect that refreshes the side panel.
pub const PROFILE_EFFECT: &str = "customer_profile/update";

/// A finished assistant message with one text part (`msg_…` id).
pub fn assistant_message_item(thread_id: &str, text: impl Into<String>) -> ThreadItem {
    ThreadItem::new(
        ids::generate(ids::MESSAGE),
        thread_id,
        ItemKind::AssistantMessage(AssistantMessageItem { content: vec![AssistantMessageContent::text(text)] }),
    )
}

/// A widget item (`msg_…` id, no copy text).
pub fn widget_item(thread_id: &str, widget: Value) -> ThreadItem {
    ThreadItem::new(ids::generate(ids::MESSAGE), thread_id, ItemKind::Widget(WidgetItem { widget, copy_text: None }))
}

/// A hidden context item holding `text` (stored for the model, never sent to the client).
pub fn hidden_context_item(thread_id: &str, text: impl Into<String>) -> ThreadItem {
    ThreadItem::new(
        ids::generate(ids::MESSAGE),
        thread_id,
        ItemKind::HiddenContextItem(HiddenContextItem { content: Value::String(text.into()) }),
    )
}

/// `{"type":"client_effect","name":"customer_profile/update","data":{"profile":P}}`.
pub fn profile_effect(profile: &CustomerProfile) -> ThreadStreamEvent {
    ThreadStreamEvent::client_effect(PROFILE_EFFECT, json!({ "profile": profile.to_json() }))
}

/// Sends an event; a departed client is not an error here (items are persisted before sending).
pub(crate) async fn emit(sink: &EventSink, event: ThreadStreamEvent) -> Result<(), AppError> {
    match sink.send(event).await {
        Ok(()) => Ok(()),
        Err(SinkError::Disconnected) => {
            tracing::debug!("client left during an action; continuing to persist its items");
            Ok(())
        }
        Err(SinkError::Store(e)) => Err(e.into()),
    }
}

async fn say(sink: &EventSink, thread_id: &str, text: impl Into<String>) -> Result<(), AppError> {
    emit(sink, ThreadStreamEvent::ItemDone { item: assistant_message_item(thread_id, text) }).await
}

/// Runs the handler for `action` on `thread`; `sender` is the widget item that fired it, if any.
pub async fn handle_action(
    airline: &AirlineStore,
    thread: &ThreadMetadata,
    action: &Action,
    sender: Option<&ThreadItem>,
    sink: &EventSink,
) -> Result<(), AppError> {
    let thread_id = thread.id.as_str();
    match action.kind.as_str() {
        FLIGHT_SELECT => flight_select(airline, thread_id, &action.payload, sender, sink).await,
        "booking.confirm_selection" => confirm_selection(airline, thread_id, &action.payload, sink).await,
        "booking.modify_request" => {
            say(
                sink,
                thread_id,
                "Happy to tweak the plan. Let me know what you'd like to change and feel free to attach a new \
                 inspiration photo if it helps.",
            )
            .await
        }
        "upsell.accept" => upsell_accept(airline, thread_id, &action.payload, sink).await,
        "upsell.decline" => {
            let cabin = text_field(&action.payload, "cabin_name").unwrap_or_else(|| "the upgrade".into());
            let text = format!(
                "No worries—I'll keep the current cabin and continue helping with {} availability.",
                cabin.to_lowercase()
            );
            say(sink, thread_id, text).await
        }
        "rebook.select_option" => rebook_select(airline, thread_id, &action.payload, sink).await,
        other => {
            tracing::info!(action = other, "ignoring unknown action type");
            Ok(())
        }
    }
}

/// `flight.select` (spec §6.1).
async fn flight_select(
    airline: &AirlineStore,
    thread_id: &str,
    raw: &Value,
    sender: Option<&ThreadItem>,
    sink: &EventSink,
) -> Result<(), AppError> {
    let payload: FlightSelectPayload = match serde_json::from_value(raw.clone()) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring flight.select with an invalid payload");
            return Ok(());
        }
    };
    let sender_id = sender.map(|s| s.id.clone());
    let options =
        if payload.options.is_empty() { generate_flight_options(&payload.request) } else { payload.options.clone() };
    let Some(selected) = options.iter().find(|o| o.id == payload.id).cloned() else {
        tracing::warn!(option = %payload.id, "ignoring flight.select for an unknown option");
        return Ok(());
    };
    let request = &payload.request;
    let leg = payload.leg;
    let depart_label =
        format!("{} {}→{} {}", request.depart_date, selected.from_airport, selected.to_airport, selected.dep_time);
    let return_label = format!("{} {}→{}", request.return_date, request.destination, request.origin);
    let hold_destination = airport_code(&request.destination);
    let seat = default_seat(&request.cabin);
    let booking = NewBooking {
        flight_number: leg.flight_number().into(),
        date: request.depart_date.clone(),
        origin: airport_code(&request.origin),
        destination: airport_code(&request.destination),
        depart_time: selected.dep_time.clone(),
        arrival_time: selected.arr_time.clone(),
        seat: Some(seat.clone()),
        status: SegmentStatus::Scheduled,
    };

    // Guard, hold, booking and consumption in one atomic change: a widget books at most once.
    let outcome = airline
        .update(thread_id, |p| {
            if sender_id.as_deref().is_some_and(|id| p.is_widget_consumed(id)) {
                return Ok(None);
            }
            p.booking_hold(&hold_destination, &depart_label, &return_label);
            p.book_flight(booking.clone());
            if let Some(id) = &sender_id {
                p.mark_widget_consumed(id);
            }
            Ok(Some(p.clone()))
        })
        .await?;
    let profile = match outcome {
        Ok(Some(profile)) => profile,
        Ok(None) | Err(_) => {
            tracing::warn!(
                widget = sender_id.as_deref().unwrap_or("unknown"),
                "ignoring flight.select on a used widget"
            );
            return Ok(());
        }
    };

    let tail = match leg {
        Leg::Outbound => "You're scheduled on that option. I'll surface a few returns now.",
        Leg::Return => "Return scheduled. Want me to watch for upgrades?",
    };
    say(sink, thread_id, format!("Scheduled: {}. Seat {seat} for now; {tail}", describe(&selected, request))).await?;

    if let Some(id) = &sender_id {
        let widget = locked_flight_widget(&selected, request, leg);
        let update = ItemUpdate::WidgetRootUpdated { widget };
        emit(sink, ThreadStreamEvent::ItemUpdated { item_id: id.clone(), update }).await?;
    }

    if leg == Leg::Outbound {
        let back = request.return_search();
        let widget = flight_options_widget(&generate_flight_options(&back), &back, None, Leg::Return);
        say(sink, thread_id, "Here are return options that line up with your trip:").await?;
        emit(sink, ThreadStreamEvent::ItemDone { item: widget_item(thread_id, widget) }).await?;
    }

    let payload_json = serde_json::to_string(&payload).map_err(|e| AppError::Internal(e.to_string()))?;
    let context = format!(
        "<WIDGET_ACTION widgetId={}>{FLIGHT_SELECT} payload: {payload_json}</WIDGET_ACTION>",
        sender_id.as_deref().unwrap_or("unknown")
    );
    emit(sink, ThreadStreamEvent::ItemDone { item: hidden_context_item(thread_id, context) }).await?;
    emit(sink, profile_effect(&profile)).await
}

/// The payload as an object (anything else reads as empty).
fn object(payload: &Value) -> Map<String, Value> {
    payload.as_object().cloned().unwrap_or_default()
}

/// A payload field as text: strings as is, other non-null values as JSON; missing or null → `None`.
fn text_field(payload: &Value, key: &str) -> Option<String> {
    match object(payload).get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

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

async fn profile_op(
    airline: &AirlineStore,
    thread_id: &str,
    mut f: impl FnMut(&mut CustomerProfile) -> String,
) -> Result<(String, CustomerProfile), AppError> {
    match airline.update(thread_id, |p| Ok((f(p), p.clone()))).await? {
        Ok(out) => Ok(out),
        Err(e) => Err(AppError::Internal(e.to_string())),
    }
}

/// `booking.confirm_selection` (latent, spec §6.2).
async fn confirm_selection(
    airline: &AirlineStore,
    thread_id: &str,
    payload: &Value,
    sink: &EventSink,
) -> Result<(), AppError> {
    let destination = text_field(payload, "destination").unwrap_or_else(|| "the trip".into());
    let depart = text_field(payload, "depart_label").unwrap_or_else(|| "outbound flight".into());
    let ret = text_field(payload, "return_label").unwrap_or_else(|| "return flight".into());
    let (text, profile) = profile_op(airline, thread_id, |p| p.booking_hold(&destination, &depart, &ret)).await?;
    say(sink, thread_id, format!("{text} I’ll keep monitoring inventory and let you know if something better opens."))
        .await?;
    emit(sink, profile_effect(&profile)).await
}

/// `upsell.accept` (latent, spec §6.2).
async fn upsell_accept(
    airline: &AirlineStore,
    thread_id: &str,
    payload: &Value,
    sink: &EventSink,
) -> Result<(), AppError> {
    let cabin = text_field(payload, "cabin_name").unwrap_or_else(|| "the upgrade".into());
    let price = text_field(payload, "price").unwrap_or_else(|| "the quoted amount".into());
    let (text, profile) = profile_op(airline, thread_id, |p| p.record_upgrade(&cabin, &price)).await?;
    say(sink, thread_id, text).await?;
    emit(sink, profile_effect(&profile)).await
}

/// `rebook.select_option` (latent, spec §6.2).
async fn rebook_select(
    airline: &AirlineStore,
    thread_id: &str,
    payload: &Value,
    sink: &EventSink,
) -> Result<(), AppError> {
    let fields = object(payload);
    let option_id = match fields.get("option_id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())),
    };
    let (true, Some(option_id)) = (is_truthy(fields.get("flight_number")), option_id) else {
        tracing::info!("ignoring rebook.select_option without flight_number or option_id");
        return Ok(());
    };
    if option_id == "keep" {
        return say(sink, thread_id, "Sounds good — we'll keep the original departure on file.").await;
    }
    let flight_number = text_field(payload, "flight_number").unwrap_or_default();
    let depart = text_field(payload, "depart_time").unwrap_or_default();
    let arrive = text_field(payload, "arrival_time").unwrap_or_default();
    let note = text_field(payload, "option_note").unwrap_or_else(|| "Selected alternate time".into());
    let rebooked = airline
        .update(thread_id, |p| p.rebook_segment(&flight_number, &depart, &arrive, &note).map(|t| (t, p.clone())))
        .await?;
    let (text, profile) = match rebooked {
        Ok(done) => done,
        Err(e) => (e.to_string(), airline.profile(thread_id).await?),
    };
    say(sink, thread_id, text).await?;
    emit(sink, profile_effect(&profile)).await
}

#[cfg(test)]
mod tests;
