//! The OpenSkies concierge agent: its instructions, the `<CUSTOMER_PROFILE>` context block, and the
//! assembly of the model input for one turn.
//!
//! The instructions are our own wording of every point the sample's prompt makes; the meal-preference
//! feature is gone, so the agent is told to apologise and offer alternatives when asked about meals.

use agents::{Agent, ConvertHooks, InputItem, items_to_input};
use async_trait::async_trait;
use chatkit::AppError;
use chatkit::store::{RequestContext, Store};
use chatkit::types::{Order, ThreadItem};
use serde_json::Value;

use crate::airline::{AirlineStore, CustomerProfile};
use crate::tools::support_tools;

/// The agent's name.
pub(crate) const AGENT_NAME: &str = "OpenSkies Concierge";
/// How many of the newest thread items are sent to the model each turn.
pub(crate) const HISTORY_ITEMS: usize = 20;
/// The default sampling temperature.
pub(crate) const DEFAULT_TEMPERATURE: f32 = 0.4;

/// The system instructions.
pub(crate) const INSTRUCTIONS: &str = "\
You are the OpenSkies concierge: a friendly, efficient assistant who represents the traveller and acts on \
their behalf. You look after OpenSkies elite flyers: seat changes, trip cancellations, checked bags, special \
assistance requests and booking new trips. Always speak as the traveller's personal concierge.

How to work:
- If you have not done so earlier in this conversation, acknowledge the traveller's loyalty status and their \
upcoming travel plans.
- When a request needs something done, call the matching tool instead of describing the change as if it had \
happened. After the tool has run, confirm the outcome and offer a sensible next step.
- When a request cannot be fulfilled, apologise and suggest an alternative. Meal preferences in particular \
cannot be viewed or changed in this chat: say so kindly, and offer help with something you can do instead \
(for example noting a special assistance request).
- Keep replies to two or three sentences unless more detail is genuinely needed.
- Before calling cancel_trip or add_checked_bag, ask the traveller to confirm, and only call the tool once \
they have.
- To book a trip, collect the origin (use the traveller's home airport when none is given), the destination, \
the departure and return dates, and the cabin (economy, premium economy, business or first). As soon as you \
have them, call flight_option_list rather than describing flights in text. Use airport codes (for example \
CDG), not city names.

Context:
- The <CUSTOMER_PROFILE> block at the start of the conversation holds the traveller's account and travel \
context: name and loyalty status, contact details, checked bags, special assistance, flight segments and the \
most recent service timeline entries.
- Use only information from that customer context or from tool results. Never invent confirmation numbers, \
prices or policy details.

Tools:
- change_seat(flight_number, seat): move the traveller to another seat on one of their flights.
- cancel_trip(): cancel the traveller's upcoming trip and note the refund (confirm first).
- add_checked_bag(): add one checked bag to the reservation (confirm first).
- request_assistance(note): record a special assistance request for airport staff.
- flight_option_list(destination, depart_date, return_date, cabin, origin): show flight options the \
traveller can pick from to place a hold (origin may be null to use the home airport).";

/// The agent with the five tools.
pub(crate) fn build_agent(airline: &AirlineStore, temperature: f32, max_model_calls: usize) -> Agent {
    let mut agent = Agent::new(AGENT_NAME, INSTRUCTIONS).with_temperature(temperature);
    agent.tools = support_tools(airline);
    agent.max_model_calls = max_model_calls;
    agent
}

/// The `<CUSTOMER_PROFILE>` block sent as the first user message of every model call.
pub(crate) fn profile_context(profile: &CustomerProfile) -> String {
    let mut lines = vec![
        "<CUSTOMER_PROFILE>".to_string(),
        format!("Name: {} ({})", profile.name, profile.loyalty_status),
        format!("Loyalty ID: {}", profile.loyalty_id),
        format!("Contact: {}, {}", profile.email, profile.phone),
        format!("Checked Bags: {}", profile.bags_checked),
        format!(
            "Special Assistance: {}",
            profile.special_assistance.as_deref().filter(|s| !s.is_empty()).unwrap_or("None")
        ),
        "Upcoming Segments:".to_string(),
    ];
    if profile.segments.is_empty() {
        lines.push("- No flight segments on file.".into());
    }
    for s in &profile.segments {
        lines.push(format!(
            "- {} {}->{} on {} seat {} ({})",
            s.flight_number, s.origin, s.destination, s.date, s.seat, s.status
        ));
    }
    lines.push("Recent Service Timeline:".into());
    if profile.timeline.is_empty() {
        lines.push("  * No service actions recorded yet.".into());
    }
    for t in profile.timeline.iter().take(3) {
        lines.push(format!("  * {} ({})", t.entry, t.timestamp));
    }
    lines.push("</CUSTOMER_PROFILE>".into());
    lines.join("\n")
}

/// Conversion hooks of this app: hidden context items reach the model as their raw text (no wrapper),
/// e.g. `<WIDGET_ACTION widgetId=…>flight.select payload: …</WIDGET_ACTION>`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SupportHooks;

#[async_trait]
impl ConvertHooks for SupportHooks {
    async fn hidden_context(&self, _item: &ThreadItem, content: &Value) -> Result<Vec<InputItem>, AppError> {
        let text = match content {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Ok(vec![InputItem::user_text(text)])
    }
}

/// The newest [`HISTORY_ITEMS`] items of a thread, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct History {
    /// The items, oldest first.
    pub items: Vec<ThreadItem>,
    /// Whether these are all the thread's items (it has at most [`HISTORY_ITEMS`]).
    pub complete: bool,
}

/// Loads the history sent to the model.
pub(crate) async fn load_history(
    store: &dyn Store,
    ctx: &RequestContext,
    thread_id: &str,
) -> Result<History, AppError> {
    let page = store.load_thread_items(ctx, thread_id, None, HISTORY_ITEMS, Order::Desc).await?;
    let mut items = page.data;
    items.reverse();
    Ok(History { items, complete: !page.has_more })
}

/// The model input of a turn: the profile block, then the loaded history ([`load_history`]: the
/// [`HISTORY_ITEMS`] newest items in chronological order, hidden context and widgets included).
pub(crate) async fn input_from_history(
    items: &[ThreadItem],
    store: &dyn Store,
    ctx: &RequestContext,
    profile: &CustomerProfile,
) -> Result<Vec<InputItem>, AppError> {
    let mut input = Vec::with_capacity(items.len() + 1);
    input.push(InputItem::user_text(profile_context(profile)));
    input.extend(items_to_input(items, store, ctx, &SupportHooks).await?);
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::{assistant_message_item, hidden_context_item};
    use crate::testkit::Harness;
    use chatkit::types::{InferenceOptions, ItemKind, UserMessageContent, UserMessageItem};

    #[test]
    fn profile_block_for_the_default_profile() {
        let p = CustomerProfile::demo();
        let expected = format!(
            "<CUSTOMER_PROFILE>\n\
             Name: Jordan Miles (Aviator Gold)\n\
             Loyalty ID: APL-204981\n\
             Contact: jordan.miles@example.com, +1 (415) 555-9214\n\
             Checked Bags: 0\n\
             Special Assistance: None\n\
             Upcoming Segments:\n\
             - OA476 SFO->JFK on 2025-10-02 seat 14A (Scheduled)\n\
             - OA477 JFK->SFO on 2025-10-10 seat 15C (Scheduled)\n\
             Recent Service Timeline:\n\
             \x20 * Added note: enjoys single-origin drip coffee. ({})\n\
             \x20 * Waived change fees for October trip. ({})\n\
             \x20 * Itinerary imported from confirmation LL0EZ6. ({})\n\
             </CUSTOMER_PROFILE>",
            p.timeline[0].timestamp, p.timeline[1].timestamp, p.timeline[2].timestamp
        );
        assert_eq!(profile_context(&p), expected);
        assert!(!expected.contains("Meal"));
    }

    #[test]
    fn profile_block_edge_cases() {
        let mut p = CustomerProfile::demo();
        p.request_assistance("Wheelchair");
        p.cancel_trip();
        let text = profile_context(&p);
        assert!(text.contains("\nSpecial Assistance: Wheelchair\n"));
        assert!(text.contains("- OA476 SFO->JFK on 2025-10-02 seat 14A (Cancelled)\n"));
        assert_eq!(text.matches("  * ").count(), 3);
        assert!(text.contains("  * Trip cancelled at customer request. ("));
        p.timeline.clear();
        p.segments.clear();
        let text = profile_context(&p);
        assert!(text.ends_with("Upcoming Segments:\n- No flight segments on file.\nRecent Service Timeline:\n  * No service actions recorded yet.\n</CUSTOMER_PROFILE>"));
    }

    #[test]
    fn instructions_cover_the_spec_points() {
        for needle in [
            "OpenSkies",
            "concierge",
            "acts on their behalf",
            "loyalty status",
            "call the matching tool",
            "apologise and suggest an alternative",
            "Meal preferences",
            "two or three sentences",
            "cancel_trip or add_checked_bag, ask the traveller to confirm",
            "home airport",
            "economy, premium economy, business or first",
            "call flight_option_list",
            "airport codes",
            "<CUSTOMER_PROFILE>",
            "Never invent confirmation numbers",
            "change_seat(flight_number, seat)",
            "request_assistance(note)",
        ] {
            assert!(INSTRUCTIONS.contains(needle), "missing {needle:?}");
        }
        assert!(!INSTRUCTIONS.contains("meal_preference_list"));
    }

    fn user(thread_id: &str, text: &str) -> ThreadItem {
        ThreadItem::new(
            chatkit::ids::generate("msg"),
            thread_id,
            ItemKind::UserMessage(UserMessageItem {
                content: vec![UserMessageContent::InputText { text: text.into() }],
                attachments: vec![],
                quoted_text: None,
                inference_options: InferenceOptions::default(),
            }),
        )
    }

    #[tokio::test]
    async fn input_is_profile_then_last_twenty_items_with_raw_hidden_context() {
        let h = Harness::new().await;
        let tid = h.thread.id.clone();
        for i in 0..12 {
            h.store.add_thread_item(&h.ctx, &tid, &user(&tid, &format!("question {i}"))).await.unwrap();
            h.store.add_thread_item(&h.ctx, &tid, &assistant_message_item(&tid, format!("answer {i}"))).await.unwrap();
        }
        let hidden = "<WIDGET_ACTION widgetId=msg_1>flight.select payload: {}</WIDGET_ACTION>";
        h.store.add_thread_item(&h.ctx, &tid, &hidden_context_item(&tid, hidden)).await.unwrap();
        let profile = CustomerProfile::demo();
        let history = load_history(h.store.as_ref(), &h.ctx, &tid).await.unwrap();
        assert!(!history.complete, "25 items stored: the history is the newest 20");
        let input = input_from_history(&history.items, h.store.as_ref(), &h.ctx, &profile).await.unwrap();
        assert_eq!(input.len(), 21);
        assert_eq!(input[0], InputItem::user_text(profile_context(&profile)));
        // 25 items stored; the 20 newest are: answer 2 … question 11, answer 11, hidden.
        assert_eq!(input[1], InputItem::assistant_text("answer 2"));
        assert_eq!(input[2], InputItem::user_text("question 3"));
        assert_eq!(input[19], InputItem::assistant_text("answer 11"));
        assert_eq!(input[20], InputItem::user_text(hidden));
    }
}
