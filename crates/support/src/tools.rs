//! The concierge's five function tools with their exact JSON schemas, argument validation, error texts and
//! outputs.
//!
//! State-changing tools stream the `customer_profile/update` effect while they run, so the side panel
//! updates before the model's follow-up text. Each tool names what it is doing (`progress_text`),
//! which the chat shows only when a call takes longer than the agent's progress delay (the sample's
//! tools send no progress, so fast calls stream exactly as they do). `flight_option_list` is a stop tool: it streams a fixed
//! assistant message and the flight-options widget, and the run ends without another model call.

use std::sync::{Arc, LazyLock};

use agents::{Tool, ToolContext, ToolError, parse_arguments};
use async_trait::async_trait;
use chatkit::types::ThreadStreamEvent;
use chatkit::{AppError, SinkError, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::actions::{assistant_message_item, profile_effect, widget_item};
use crate::airline::{AirlineStore, CustomerProfile, OpError};
use crate::widgets::{FlightSearch, Leg, flight_options_widget, generate_flight_options};

/// Schema of `change_seat` (sent verbatim, `strict: true`).
pub(crate) const CHANGE_SEAT_SCHEMA: &str = r#"{"properties":{"flight_number":{"title":"Flight Number","type":"string"},"seat":{"title":"Seat","type":"string"}},"required":["flight_number","seat"],"title":"change_seat_args","type":"object","additionalProperties":false}"#;
/// Schema of `cancel_trip`.
pub(crate) const CANCEL_TRIP_SCHEMA: &str =
    r#"{"properties":{},"title":"cancel_trip_args","type":"object","additionalProperties":false,"required":[]}"#;
/// Schema of `add_checked_bag`.
pub(crate) const ADD_CHECKED_BAG_SCHEMA: &str =
    r#"{"properties":{},"title":"add_checked_bag_args","type":"object","additionalProperties":false,"required":[]}"#;
/// Schema of `flight_option_list` (`origin` is nullable: strict mode requires every key).
pub(crate) const FLIGHT_OPTION_LIST_SCHEMA: &str = r#"{"properties":{"destination":{"title":"Destination","type":"string"},"depart_date":{"title":"Depart Date","type":"string"},"return_date":{"title":"Return Date","type":"string"},"cabin":{"title":"Cabin","type":"string"},"origin":{"anyOf":[{"type":"string"},{"type":"null"}],"title":"Origin"}},"required":["destination","depart_date","return_date","cabin","origin"],"title":"flight_option_list_args","type":"object","additionalProperties":false}"#;
/// Schema of `request_assistance`.
pub(crate) const REQUEST_ASSISTANCE_SCHEMA: &str = r#"{"properties":{"note":{"title":"Note","type":"string"}},"required":["note"],"title":"request_assistance_args","type":"object","additionalProperties":false}"#;

/// The fixed message streamed before the flight options.
pub(crate) const FLIGHT_OPTIONS_MESSAGE: &str =
    "I pulled a few flight options based on those dates and cabin preferences. Pick one to place on hold.";
/// Output of `flight_option_list` (never read by the model: the run stops).
pub(crate) const FLIGHT_OPTIONS_RESULT: &str = "Shared flight options with the traveller.";

/// Text the model gets when the airline records could not be read or written.
const STORE_FAILURE: &str = "The airline reservation system is temporarily unavailable, so nothing was changed.";

/// The five tools, in the order the model sees them.
pub(crate) fn support_tools(airline: &AirlineStore) -> Vec<Arc<dyn Tool>> {
    let a = || airline.clone();
    vec![
        Arc::new(ChangeSeat { airline: a() }),
        Arc::new(CancelTrip { airline: a() }),
        Arc::new(AddCheckedBag { airline: a() }),
        Arc::new(FlightOptionList { airline: a() }),
        Arc::new(RequestAssistance { airline: a() }),
    ]
}

fn schema(text: &str) -> Value {
    // The constants are valid JSON (checked by the tests).
    serde_json::from_str(text).unwrap_or(Value::Null)
}

// Parsed once per process: every turn offers all five tools to the model, and cloning a parsed
// value is several times cheaper than parsing the text again.
static CHANGE_SEAT_PARAMETERS: LazyLock<Value> = LazyLock::new(|| schema(CHANGE_SEAT_SCHEMA));
static CANCEL_TRIP_PARAMETERS: LazyLock<Value> = LazyLock::new(|| schema(CANCEL_TRIP_SCHEMA));
static ADD_CHECKED_BAG_PARAMETERS: LazyLock<Value> = LazyLock::new(|| schema(ADD_CHECKED_BAG_SCHEMA));
static REQUEST_ASSISTANCE_PARAMETERS: LazyLock<Value> = LazyLock::new(|| schema(REQUEST_ASSISTANCE_SCHEMA));
static FLIGHT_OPTION_LIST_PARAMETERS: LazyLock<Value> = LazyLock::new(|| schema(FLIGHT_OPTION_LIST_SCHEMA));

fn store_failure(e: StoreError) -> ToolError {
    tracing::error!(error = %e, "airline state unavailable during a tool call");
    ToolError::Failed(STORE_FAILURE.into())
}

fn app_failure(e: AppError) -> ToolError {
    tracing::error!(error = %e, "could not stream a tool's output");
    ToolError::Failed(STORE_FAILURE.into())
}

/// Applies `op` to the thread's profile, streams the profile effect on success and returns the op's output.
async fn mutate<T>(
    airline: &AirlineStore,
    ctx: &ToolContext,
    mut op: impl FnMut(&mut CustomerProfile) -> Result<T, OpError>,
) -> Result<T, ToolError> {
    let (out, profile) = airline
        .update(&ctx.thread_id, |p| op(p).map(|out| (out, p.clone())))
        .await
        .map_err(store_failure)?
        .map_err(|e| ToolError::Failed(e.to_string()))?;
    stream(ctx, profile_effect(&profile)).await?;
    Ok(out)
}

/// Streams a tool's event; a client that left does not stop the tool (its items are still stored).
async fn stream(ctx: &ToolContext, event: ThreadStreamEvent) -> Result<(), ToolError> {
    match ctx.stream(event).await {
        Ok(()) => Ok(()),
        Err(SinkError::Disconnected) => {
            tracing::debug!("client left during a tool call; continuing to persist its items");
            Ok(())
        }
        Err(SinkError::Store(e)) => Err(app_failure(e.into())),
    }
}

/// `change_seat(flight_number, seat)`.
#[derive(Debug, Clone)]
pub(crate) struct ChangeSeat {
    airline: AirlineStore,
}

#[derive(Deserialize)]
struct ChangeSeatArgs {
    flight_number: String,
    seat: String,
}

#[async_trait]
impl Tool for ChangeSeat {
    fn name(&self) -> &str {
        "change_seat"
    }
    fn progress_text(&self, arguments: &Value) -> Option<String> {
        Some(match arguments.get("seat").and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()) {
            Some(seat) => format!("Moving you to seat {seat}…"),
            None => "Updating your seat…".into(),
        })
    }
    fn description(&self) -> &str {
        "Move the passenger to a different seat on a flight."
    }
    fn parameters(&self) -> Value {
        CHANGE_SEAT_PARAMETERS.clone()
    }
    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args: ChangeSeatArgs = parse_arguments(arguments)?;
        let text = mutate(&self.airline, ctx, |p| p.change_seat(&args.flight_number, &args.seat)).await?;
        Ok(json!({ "result": text }))
    }
}

/// `cancel_trip()`.
#[derive(Debug, Clone)]
pub(crate) struct CancelTrip {
    airline: AirlineStore,
}

#[derive(Deserialize)]
struct NoArgs {}

#[async_trait]
impl Tool for CancelTrip {
    fn name(&self) -> &str {
        "cancel_trip"
    }
    fn progress_text(&self, _arguments: &Value) -> Option<String> {
        Some("Cancelling your trip…".into())
    }
    fn description(&self) -> &str {
        "Cancel the traveller's upcoming trip and note the refund."
    }
    fn parameters(&self) -> Value {
        CANCEL_TRIP_PARAMETERS.clone()
    }
    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let NoArgs {} = parse_arguments(arguments)?;
        let text = mutate(&self.airline, ctx, |p| Ok(p.cancel_trip())).await?;
        Ok(json!({ "result": text }))
    }
}

/// `add_checked_bag()`.
#[derive(Debug, Clone)]
pub(crate) struct AddCheckedBag {
    airline: AirlineStore,
}

#[async_trait]
impl Tool for AddCheckedBag {
    fn name(&self) -> &str {
        "add_checked_bag"
    }
    fn progress_text(&self, _arguments: &Value) -> Option<String> {
        Some("Adding a checked bag…".into())
    }
    fn description(&self) -> &str {
        "Add a checked bag to the reservation."
    }
    fn parameters(&self) -> Value {
        ADD_CHECKED_BAG_PARAMETERS.clone()
    }
    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let NoArgs {} = parse_arguments(arguments)?;
        let (text, bags) = mutate(&self.airline, ctx, |p| Ok((p.add_bag(), p.bags_checked))).await?;
        Ok(json!({ "result": text, "bags_checked": bags }))
    }
}

/// `request_assistance(note)`.
#[derive(Debug, Clone)]
pub(crate) struct RequestAssistance {
    airline: AirlineStore,
}

#[derive(Deserialize)]
struct AssistanceArgs {
    note: String,
}

#[async_trait]
impl Tool for RequestAssistance {
    fn name(&self) -> &str {
        "request_assistance"
    }
    fn progress_text(&self, _arguments: &Value) -> Option<String> {
        Some("Noting your assistance request…".into())
    }
    fn description(&self) -> &str {
        "Note a special assistance request for airport staff."
    }
    fn parameters(&self) -> Value {
        REQUEST_ASSISTANCE_PARAMETERS.clone()
    }
    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args: AssistanceArgs = parse_arguments(arguments)?;
        let text = mutate(&self.airline, ctx, |p| Ok(p.request_assistance(&args.note))).await?;
        Ok(json!({ "result": text }))
    }
}

/// `flight_option_list(destination, depart_date, return_date, cabin, origin?)` — a stop tool.
#[derive(Debug, Clone)]
pub(crate) struct FlightOptionList {
    airline: AirlineStore,
}

#[derive(Deserialize)]
struct FlightOptionListArgs {
    destination: String,
    depart_date: String,
    return_date: String,
    cabin: String,
    #[serde(default)]
    origin: Option<String>,
}

#[async_trait]
impl Tool for FlightOptionList {
    fn name(&self) -> &str {
        "flight_option_list"
    }
    fn progress_text(&self, arguments: &Value) -> Option<String> {
        let destination = arguments.get("destination").and_then(Value::as_str).map(str::trim).unwrap_or_default();
        Some(if destination.is_empty() {
            "Searching flights…".into()
        } else {
            format!("Searching flights to {}…", destination.to_uppercase())
        })
    }
    fn description(&self) -> &str {
        "Share specific flight options after collecting destination, dates, and cabin."
    }
    fn parameters(&self) -> Value {
        FLIGHT_OPTION_LIST_PARAMETERS.clone()
    }
    fn is_stop(&self) -> bool {
        true
    }
    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args: FlightOptionListArgs = parse_arguments(arguments)?;
        let origin = args.origin.as_deref().map(str::trim).filter(|o| !o.is_empty()).map(str::to_string);
        let search = self
            .airline
            .update(&ctx.thread_id, |p| {
                let search = FlightSearch {
                    origin: origin.clone().unwrap_or_else(|| p.home_airport.clone()),
                    destination: args.destination.trim().to_uppercase(),
                    depart_date: args.depart_date.trim().to_string(),
                    return_date: args.return_date.trim().to_string(),
                    cabin: args.cabin.trim().to_string(),
                };
                p.log_trip_dates(&search.origin, &search.destination, &search.depart_date, &search.return_date);
                Ok(search)
            })
            .await
            .map_err(store_failure)?
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        let options = generate_flight_options(&search);
        let widget = flight_options_widget(&options, &search, None, Leg::Outbound);
        let message = assistant_message_item(&ctx.thread_id, FLIGHT_OPTIONS_MESSAGE);
        stream(ctx, ThreadStreamEvent::ItemDone { item: message }).await?;
        stream(ctx, ThreadStreamEvent::ItemDone { item: widget_item(&ctx.thread_id, widget) }).await?;
        Ok(json!({ "result": FLIGHT_OPTIONS_RESULT }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Harness, kinds};

    fn ctx(h: &Harness) -> ToolContext {
        ToolContext::new(h.sink.clone(), "call_1")
    }

    fn tool(h: &Harness, name: &str) -> Arc<dyn Tool> {
        support_tools(&h.airline).into_iter().find(|t| t.name() == name).unwrap()
    }

    #[test]
    fn schemas_are_exact_and_in_order() {
        let store: Arc<dyn chatkit::Store> = Arc::new(chatkit::store::MemoryStore::new());
        let tools = support_tools(&AirlineStore::new(store));
        let got: Vec<(&str, String, bool)> =
            tools.iter().map(|t| (t.name(), serde_json::to_string(&t.parameters()).unwrap(), t.is_stop())).collect();
        assert_eq!(
            got,
            vec![
                ("change_seat", CHANGE_SEAT_SCHEMA.to_string(), false),
                ("cancel_trip", CANCEL_TRIP_SCHEMA.to_string(), false),
                ("add_checked_bag", ADD_CHECKED_BAG_SCHEMA.to_string(), false),
                ("flight_option_list", FLIGHT_OPTION_LIST_SCHEMA.to_string(), true),
                ("request_assistance", REQUEST_ASSISTANCE_SCHEMA.to_string(), false),
            ]
        );
        let descriptions: Vec<&str> = tools.iter().map(|t| t.description()).collect();
        assert_eq!(
            descriptions,
            vec![
                "Move the passenger to a different seat on a flight.",
                "Cancel the traveller's upcoming trip and note the refund.",
                "Add a checked bag to the reservation.",
                "Share specific flight options after collecting destination, dates, and cabin.",
                "Note a special assistance request for airport staff.",
            ]
        );
    }

    /// Scenario 1.
    #[tokio::test]
    async fn change_seat_streams_effect_and_returns_result() {
        let mut h = Harness::new().await;
        let out = tool(&h, "change_seat").call(json!({"flight_number":"OA476","seat":"14c"}), &ctx(&h)).await.unwrap();
        assert_eq!(out, json!({"result": "Seat updated to 14C on flight OA476."}));
        let events = h.events();
        assert_eq!(kinds(&events), vec!["client_effect:customer_profile/update"]);
        let profile = h.airline.profile(&h.thread.id).await.unwrap();
        assert_eq!(profile.segments[0].seat, "14C");
        assert_eq!(profile.timeline[0].entry, "Seat changed on OA476 from 14A to 14C.");
        assert_eq!(
            events[0],
            json!({"type":"client_effect","name":"customer_profile/update","data":{"profile": profile.to_json()}})
        );
    }

    /// Scenarios 2 and 3: errors reach the model, no effect, no state change.
    #[tokio::test]
    async fn change_seat_errors() {
        let mut h = Harness::new().await;
        let t = tool(&h, "change_seat");
        let err = t.call(json!({"flight_number":"OA999","seat":"3A"}), &ctx(&h)).await.unwrap_err();
        assert_eq!(err, ToolError::Failed("Flight OA999 is not on the customer's itinerary.".into()));
        let err = t.call(json!({"flight_number":"OA477","seat":"window"}), &ctx(&h)).await.unwrap_err();
        assert_eq!(err, ToolError::Failed("Seat must be a row number followed by a letter, for example 12C.".into()));
        let err = t.call(json!({"flight_number":"OA477"}), &ctx(&h)).await.unwrap_err();
        assert!(matches!(&err, ToolError::InvalidArguments(m) if m.contains("seat")), "{err:?}");
        let err = t.call(json!({"flight_number":"OA477","seat":14}), &ctx(&h)).await.unwrap_err();
        assert!(matches!(err, ToolError::InvalidArguments(_)));
        assert!(h.events().is_empty());
        assert_eq!(h.airline.profile(&h.thread.id).await.unwrap().timeline.len(), 3);
    }

    /// Scenarios 5, 6 and 7.
    #[tokio::test]
    async fn cancel_bag_and_assistance() {
        let mut h = Harness::new().await;
        let out = tool(&h, "cancel_trip").call(json!({}), &ctx(&h)).await.unwrap();
        assert_eq!(
            out,
            json!({"result": "The reservation has been cancelled. Refund processing will begin immediately."})
        );
        let out = tool(&h, "add_checked_bag").call(json!({}), &ctx(&h)).await.unwrap();
        assert_eq!(out, json!({"result": "Checked bag added. You now have 1 bag(s) checked.", "bags_checked": 1}));
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"result":"Checked bag added. You now have 1 bag(s) checked.","bags_checked":1}"#
        );
        let out = tool(&h, "request_assistance")
            .call(json!({"note":"Wheelchair assistance at JFK"}), &ctx(&h))
            .await
            .unwrap();
        assert_eq!(out, json!({"result": "Assistance request recorded. Airport staff will be notified."}));
        let events = h.events();
        assert_eq!(kinds(&events), vec!["client_effect:customer_profile/update"; 3]);
        let profile = h.airline.profile(&h.thread.id).await.unwrap();
        assert!(profile.segments.iter().all(|s| s.status == crate::airline::SegmentStatus::Cancelled));
        assert_eq!(profile.bags_checked, 1);
        assert_eq!(profile.special_assistance.as_deref(), Some("Wheelchair assistance at JFK"));
        let entries: Vec<&str> = profile.timeline.iter().take(3).map(|t| t.entry.as_str()).collect();
        assert_eq!(
            entries,
            vec![
                "Special assistance noted: Wheelchair assistance at JFK.",
                "Added checked bag. Total bags now 1.",
                "Trip cancelled at customer request."
            ]
        );
        assert_eq!(events[2]["data"]["profile"], profile.to_json());
        // Null arguments are rejected like the SDK's schema validation would.
        assert!(matches!(
            tool(&h, "cancel_trip").call(Value::Null, &ctx(&h)).await,
            Err(ToolError::InvalidArguments(_))
        ));
    }

    /// Scenario 8.
    #[tokio::test]
    async fn flight_option_list_streams_message_and_widget() {
        let mut h = Harness::new().await;
        let args = json!({"destination":" cdg ","depart_date":"2025-11-03","return_date":" 2025-11-10","cabin":"business","origin":null});
        let out = tool(&h, "flight_option_list").call(args, &ctx(&h)).await.unwrap();
        assert_eq!(out, json!({"result": "Shared flight options with the traveller."}));
        let events = h.events();
        assert_eq!(kinds(&events), vec!["thread.item.done:assistant_message", "thread.item.done:widget"]);
        assert_eq!(
            events[0]["item"]["content"][0]["text"],
            "I pulled a few flight options based on those dates and cabin preferences. Pick one to place on hold."
        );
        let search = FlightSearch {
            origin: "SFO".into(),
            destination: "CDG".into(),
            depart_date: "2025-11-03".into(),
            return_date: "2025-11-10".into(),
            cabin: "business".into(),
        };
        assert_eq!(
            events[1]["item"]["widget"],
            flight_options_widget(&generate_flight_options(&search), &search, None, Leg::Outbound)
        );
        let profile = h.airline.profile(&h.thread.id).await.unwrap();
        assert_eq!(profile.timeline[0].entry, "Booking request for SFO → CDG (2025-11-03 to 2025-11-10).");
        assert_eq!(profile.segments.len(), 2);
        let stored: Vec<String> = h.items().await.iter().map(|i| i.type_name().to_string()).collect();
        assert_eq!(stored, vec!["assistant_message", "widget"]);
    }

    #[tokio::test]
    async fn flight_option_list_origin_handling() {
        let mut h = Harness::new().await;
        let t = tool(&h, "flight_option_list");
        let args = json!({"destination":"Paris","depart_date":"Nov 3","return_date":"Nov 10","cabin":"Premium Economy","origin":" jfk "});
        t.call(args, &ctx(&h)).await.unwrap();
        let events = h.events();
        let item = &events[1]["item"]["widget"]["children"][0];
        assert_eq!(
            item["onClickAction"]["payload"]["request"],
            json!({"origin":"jfk","destination":"PARIS","depart_date":"Nov 3","return_date":"Nov 10","cabin":"Premium Economy"})
        );
        let route = &item["children"][0]["children"][0]["children"][1]["children"][0]["children"][0]["value"];
        assert_eq!(route, "JFK → PAR");
        let profile = h.airline.profile(&h.thread.id).await.unwrap();
        assert_eq!(profile.timeline[0].entry, "Booking request for jfk → PARIS (Nov 3 to Nov 10).");
        // Blank origin and a missing origin key fall back to the home airport.
        t.call(
            json!({"destination":"HND","depart_date":"a","return_date":"b","cabin":"first","origin":"  "}),
            &ctx(&h),
        )
        .await
        .unwrap();
        t.call(json!({"destination":"HND","depart_date":"a","return_date":"b","cabin":"first"}), &ctx(&h))
            .await
            .unwrap();
        let profile = h.airline.profile(&h.thread.id).await.unwrap();
        assert_eq!(profile.timeline[0].entry, "Booking request for SFO → HND (a to b).");
        assert_eq!(profile.timeline[1].entry, "Booking request for SFO → HND (a to b).");
        let err = t.call(json!({"destination":"HND"}), &ctx(&h)).await.unwrap_err();
        assert!(matches!(err, ToolError::InvalidArguments(_)));
    }
}
