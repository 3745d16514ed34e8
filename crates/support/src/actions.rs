//! Widget actions (`threads.custom_action`): which ones run ([`offer`]), the `flight.select` flow
//! (`flight`), the booking, upgrade and rebooking handlers (`latent`), and the event builders the
//! tools share.
//!
//! Unknown action types (the removed meal-preference action among them) produce no events. An action of a
//! known type runs only as the stored widget that sent it offers it; anything else is refused with an
//! error event and writes nothing. A handler changes the profile in one atomic update before it sends
//! anything; after that it keeps persisting its items even if the client has gone away, so a reload shows
//! a consistent thread.

use chatkit::ids;
use chatkit::types::{
    Action, AssistantMessageContent, AssistantMessageItem, HiddenContextItem, ItemKind, ThreadItem, ThreadMetadata,
    ThreadStreamEvent, WidgetItem,
};
use chatkit::{AppError, EventSink, SinkError};
use serde_json::{Value, json};

use crate::airline::{AirlineStore, CustomerProfile};
use crate::widgets::FLIGHT_SELECT;

mod flight;
mod latent;
pub mod offer;

pub use offer::Rejection;

/// Name of the client effect that refreshes the side panel.
pub const PROFILE_EFFECT: &str = "customer_profile/update";

/// A finished assistant message with one text part (`msg_…` id).
pub(crate) fn assistant_message_item(thread_id: &str, text: impl Into<String>) -> ThreadItem {
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
pub(crate) fn profile_effect(profile: &CustomerProfile) -> ThreadStreamEvent {
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

/// The action types this app handles; any other type is ignored.
pub const ACTION_TYPES: [&str; 6] = [
    FLIGHT_SELECT,
    latent::CONFIRM_SELECTION,
    latent::MODIFY_REQUEST,
    latent::UPSELL_ACCEPT,
    latent::UPSELL_DECLINE,
    latent::REBOOK_SELECT,
];

/// A handled action type, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ActionType {
    FlightSelect,
    ConfirmSelection,
    ModifyRequest,
    UpsellAccept,
    UpsellDecline,
    RebookSelect,
}

impl ActionType {
    fn parse(kind: &str) -> Option<ActionType> {
        Some(match kind {
            FLIGHT_SELECT => ActionType::FlightSelect,
            latent::CONFIRM_SELECTION => ActionType::ConfirmSelection,
            latent::MODIFY_REQUEST => ActionType::ModifyRequest,
            latent::UPSELL_ACCEPT => ActionType::UpsellAccept,
            latent::UPSELL_DECLINE => ActionType::UpsellDecline,
            latent::REBOOK_SELECT => ActionType::RebookSelect,
            _ => return None,
        })
    }
}

/// Runs the handler for `action` on `thread`; `sender` is the widget item the request named, if any.
///
/// A refused action is an [`AppError::BadRequest`] carrying the [`Rejection`] text, which ends the stream
/// with a `custom` error event; nothing has been written or sent by then.
pub async fn handle_action(
    airline: &AirlineStore,
    thread: &ThreadMetadata,
    action: &Action,
    sender: Option<&ThreadItem>,
    sink: &EventSink,
) -> Result<(), AppError> {
    let thread_id = thread.id.as_str();
    let Some(action_type) = ActionType::parse(&action.kind) else {
        tracing::info!(thread_id, "ignoring an action of unknown type");
        return Ok(());
    };
    let offer = offer::verify(airline, sink, thread_id, action, sender).await?;
    let click = latent::Click { airline, thread_id, action_type: &action.kind, offer: &offer, sink };
    match action_type {
        ActionType::FlightSelect => flight::select(airline, thread_id, &offer, sink).await,
        ActionType::ConfirmSelection => latent::confirm_selection(&click).await,
        ActionType::ModifyRequest => latent::modify_request(&click).await,
        ActionType::UpsellAccept => latent::upsell_accept(&click).await,
        ActionType::UpsellDecline => latent::upsell_decline(&click).await,
        ActionType::RebookSelect => latent::rebook_select(&click).await,
    }
}

#[cfg(test)]
mod tests;
