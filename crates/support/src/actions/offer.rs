//! Which widget actions are carried out: only one that names the widget item that sent it, whose widget is
//! stored in the thread and not used yet, and whose type and payload are exactly an action that stored
//! widget offers. The handlers then read the stored copy of the payload, so nothing a client adds to or
//! changes in a payload reaches the customer's profile or the conversation.
//!
//! A refused action writes nothing and ends its stream with a `custom` error event that says why (the
//! text of [`Rejection`]), so the user sees that nothing happened instead of a silent click.

use chatkit::types::{Action, ItemKind, ThreadItem};
use chatkit::{AppError, EventSink};
use serde_json::Value;

use crate::airline::{AirlineStore, OpError};

/// Why an action was refused; the text is what the user sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No `item_id`, or it names an item that is not a widget of this thread (any more).
    #[error("This action did not come from a widget in this conversation, so nothing was changed.")]
    NoWidget,
    /// The widget's choice was already made.
    #[error("This choice was already made, so nothing was changed. Ask me for new options to choose again.")]
    AlreadyUsed,
    /// The widget does not offer this action with this payload.
    #[error("That choice is not one this widget offered, so nothing was changed.")]
    NotOffered,
}

impl Rejection {
    /// The error that ends the action's stream; logged here so every refusal leaves one line.
    pub(crate) fn refuse(self, thread_id: &str, action_type: &str) -> AppError {
        tracing::info!(thread_id, action_type, reason = ?self, "refused a widget action");
        AppError::BadRequest(self.to_string())
    }
}

/// A verified action: the widget that sent it and the payload as that widget stores it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OfferedAction {
    /// The sending widget item.
    pub widget_id: String,
    /// The stored payload (never the client's copy).
    pub payload: Value,
}

/// The actions a widget tree offers: the values of its `on…Action` properties (`onClickAction`,
/// `onSubmitAction`, …) at any depth, in document order.
pub(crate) fn offered_actions(widget: &Value) -> Vec<&Value> {
    let mut found = Vec::new();
    collect_actions(widget, &mut found);
    found
}

fn collect_actions<'a>(value: &'a Value, found: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key.starts_with("on") && key.ends_with("Action") && child.is_object() {
                    found.push(child);
                } else {
                    collect_actions(child, found);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_actions(item, found)),
        _ => {}
    }
}

/// The stored payload of the action `widget` offers that equals `action`: the same type and an equal
/// payload (key order aside). Each of this app's widgets puts its whole choice in the payload, so equality
/// is the right test: any edit, addition or omission is a choice the widget never offered.
pub(crate) fn find_offer<'a>(widget: &'a Value, action: &Action) -> Option<&'a Value> {
    offered_actions(widget).into_iter().find_map(|offered| {
        let payload = offered.get("payload").unwrap_or(&Value::Null);
        (offered.get("type").and_then(Value::as_str) == Some(action.kind.as_str()) && *payload == action.payload)
            .then_some(payload)
    })
}

/// Checks `action` against its sender as stored now, under the thread lock: the item the request named
/// was read before the lock, and another turn may have used or removed it since.
pub(crate) async fn verify(
    airline: &AirlineStore,
    sink: &EventSink,
    thread_id: &str,
    action: &Action,
    sender: Option<&ThreadItem>,
) -> Result<OfferedAction, AppError> {
    let refuse = |rejection: Rejection| rejection.refuse(thread_id, &action.kind);
    let Some(sender) = sender else {
        return Err(refuse(Rejection::NoWidget));
    };
    let stored = match sink.store().load_item(sink.context(), thread_id, &sender.id).await {
        Ok(item) => item,
        Err(e) if e.is_not_found() => return Err(refuse(Rejection::NoWidget)),
        Err(e) => return Err(e.into()),
    };
    let ItemKind::Widget(widget) = &stored.kind else {
        return Err(refuse(Rejection::NoWidget));
    };
    // Checked first for the clearer message; the handler's atomic update checks it again.
    if airline.is_widget_used(thread_id, &stored.id).await? {
        return Err(refuse(Rejection::AlreadyUsed));
    }
    match find_offer(&widget.widget, action) {
        Some(payload) => Ok(OfferedAction { widget_id: stored.id.clone(), payload: payload.clone() }),
        None => Err(refuse(Rejection::NotOffered)),
    }
}

/// The error for a refused profile change made with a widget: a widget used meanwhile is the user's
/// [`Rejection::AlreadyUsed`]; anything else is a bug of the handler.
pub(crate) fn op_refused(e: OpError, thread_id: &str, action_type: &str) -> AppError {
    match e {
        OpError::WidgetAlreadyUsed(_) => Rejection::AlreadyUsed.refuse(thread_id, action_type),
        other => AppError::Internal(format!("{action_type}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn click(kind: &str, payload: Value) -> Value {
        json!({"type": kind, "handler": "server", "payload": payload})
    }

    fn action(kind: &str, payload: Value) -> Action {
        Action { kind: kind.into(), payload }
    }

    fn card() -> Value {
        json!({"type": "Card", "children": [
            {"type": "ListView", "children": [
                {"type": "ListViewItem", "key": "a", "onClickAction": click("pick", json!({"id": "a", "n": 1}))},
                {"type": "ListViewItem", "key": "b", "onClickAction": click("pick", json!({"id": "b", "n": 2}))},
                {"type": "ListViewItem", "key": "c"}
            ]},
            {"type": "Form", "onSubmitAction": click("send", Value::Null), "children": [
                {"type": "Button", "label": "Go", "onClickAction": {"type": "go"}}
            ]}
        ]})
    }

    #[test]
    fn actions_are_found_at_any_depth_in_order() {
        let card = card();
        let types: Vec<&str> = offered_actions(&card).iter().map(|a| a["type"].as_str().unwrap()).collect();
        assert_eq!(types, vec!["pick", "pick", "send", "go"]);
        assert!(offered_actions(&json!({"type": "Text", "value": "onClickAction"})).is_empty());
        assert!(offered_actions(&json!({"onClickAction": "not an object"})).is_empty());
    }

    #[test]
    fn an_offered_action_matches_with_its_stored_payload() {
        let card = card();
        assert_eq!(find_offer(&card, &action("pick", json!({"n": 2, "id": "b"}))), Some(&json!({"id": "b", "n": 2})));
        assert_eq!(find_offer(&card, &action("send", Value::Null)), Some(&Value::Null));
        // An offered action without a payload matches a client action without one.
        assert_eq!(find_offer(&card, &action("go", Value::Null)), Some(&Value::Null));
    }

    #[test]
    fn anything_else_is_not_offered() {
        let card = card();
        for (kind, payload) in [
            ("pick", json!({"id": "c", "n": 3})),
            ("pick", json!({"id": "a", "n": 2})),
            ("pick", json!({"id": "a"})),
            ("pick", json!({"id": "a", "n": 1, "extra": true})),
            ("pick", json!({"id": "a", "n": "1"})),
            ("pick", Value::Null),
            ("send", json!({})),
            ("other", json!({"id": "a", "n": 1})),
            ("go", json!({"x": 1})),
        ] {
            assert_eq!(find_offer(&card, &action(kind, payload.clone())), None, "{kind} {payload}");
        }
        assert_eq!(find_offer(&json!({"type": "ListView", "children": []}), &action("pick", Value::Null)), None);
    }
}
