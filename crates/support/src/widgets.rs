//! The flight-options widget: its data types, the generated options, the text helpers (airport codes,
//! date labels, title case, default seats) and the rendered ChatKit widget tree.
//!
//! The tree is built as [`serde_json::Value`] in the exact key order of the Python sample's rendered
//! template, so the two servers send byte-identical widgets; no `null` is ever written.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The action type of a flight-option click.
pub const FLIGHT_SELECT: &str = "flight.select";

/// Which way a set of options flies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Leg {
    /// Home → destination.
    #[default]
    Outbound,
    /// Destination → home.
    Return,
}

impl Leg {
    /// `outbound` / `return`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Leg::Outbound => "outbound",
            Leg::Return => "return",
        }
    }

    /// The (fixed) flight number booked for this leg: `OA917` outbound, `OA927` return.
    pub fn flight_number(&self) -> &'static str {
        match self {
            Leg::Outbound => "OA917",
            Leg::Return => "OA927",
        }
    }
}

/// One selectable flight (all strings, as carried in the action payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlightOption {
    /// `flight-morning` | `flight-midday` | `flight-late`.
    pub id: String,
    /// Airport code the flight leaves from (`SFO`).
    pub from_airport: String,
    /// Airport code the flight lands at (`CDG`).
    pub to_airport: String,
    /// Local departure time as displayed (`08:10`).
    pub dep_time: String,
    /// Local arrival time as displayed; `(+1)` marks the next day.
    pub arr_time: String,
    /// `Mon, Nov 3`.
    pub date_label: String,
    /// Title-cased cabin (`Business`).
    pub cabin: String,
}

/// The search a set of options answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlightSearch {
    /// Origin (home airport by default).
    pub origin: String,
    /// Where to, as the model gave it: a code or a city name (`Paris` becomes `PAR`).
    pub destination: String,
    /// Outbound date as given; an ISO date is displayed as `Mon, Nov 3`, anything else as is.
    pub depart_date: String,
    /// Return date as given (shown as is in texts).
    pub return_date: String,
    /// Cabin as the traveller said it (`business`).
    pub cabin: String,
}

impl FlightSearch {
    /// The search for the way back: codes swapped, dates swapped, same cabin.
    pub(crate) fn return_search(&self) -> FlightSearch {
        FlightSearch {
            origin: airport_code(&self.destination),
            destination: airport_code(&self.origin),
            depart_date: self.return_date.clone(),
            return_date: self.depart_date.clone(),
            cabin: self.cabin.clone(),
        }
    }
}

/// The fixed schedule: id, departure, arrival.
const SCHEDULE: [(&str, &str, &str); 3] =
    [("flight-morning", "08:10", "16:40"), ("flight-midday", "12:35", "21:05"), ("flight-late", "21:55", "06:20 (+1)")];

/// The three options for a search (deterministic).
pub fn generate_flight_options(search: &FlightSearch) -> Vec<FlightOption> {
    let from = airport_code(&search.origin);
    let to = airport_code(&search.destination);
    let label = date_label(&search.depart_date);
    let cabin = title_case(&search.cabin);
    SCHEDULE
        .iter()
        .map(|(id, dep, arr)| FlightOption {
            id: (*id).to_string(),
            from_airport: from.clone(),
            to_airport: to.clone(),
            dep_time: (*dep).to_string(),
            arr_time: (*arr).to_string(),
            date_label: label.clone(),
            cabin: cabin.clone(),
        })
        .collect()
}

/// Trim + uppercase; three letters are kept, anything else is cut to its first three characters.
pub(crate) fn airport_code(value: &str) -> String {
    value.trim().to_uppercase().chars().take(3).collect()
}

/// `2025-11-03` → `Mon, Nov 3` (English); text that is not an ISO date or date-time is returned unchanged.
pub fn date_label(value: &str) -> String {
    match parse_iso_date(value) {
        Some(date) => date.format("%a, %b %-d").to_string(),
        None => value.to_string(),
    }
}

/// Parses the forms Python's `datetime.fromisoformat` commonly accepts.
fn parse_iso_date(value: &str) -> Option<NaiveDate> {
    let is_basic_date = |s: &str| s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit());
    if value.len() == 10
        && let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d")
    {
        return Some(d);
    }
    if is_basic_date(value) {
        return NaiveDate::parse_from_str(value, "%Y%m%d").ok();
    }
    if value.len() < 11 || !value.is_char_boundary(10) {
        return None;
    }
    let normalized = value.replacen(' ', "T", 1).replace('z', "Z");
    if let Ok(dt) = DateTime::parse_from_rfc3339(&normalized) {
        return Some(dt.date_naive());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M%:z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(dt) = DateTime::parse_from_str(&normalized, fmt) {
            return Some(dt.date_naive());
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(&normalized, fmt) {
            return Some(dt.date());
        }
    }
    None
}

/// Python's `str.title`: a cased letter following a cased letter is lowercased, any other is uppercased.
pub(crate) fn title_case(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut previous_cased = false;
    for c in value.chars() {
        let cased = c.is_lowercase() || c.is_uppercase();
        if cased {
            if previous_cased {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
        } else {
            out.push(c);
        }
        previous_cased = cased;
    }
    out
}

/// A random seat in the rows and letters of the cabin (first, business, premium economy, economy, or
/// anything else).
pub(crate) fn default_seat(cabin: &str) -> String {
    const ALL: [char; 6] = ['A', 'B', 'C', 'D', 'E', 'F'];
    let (rows, letters): (std::ops::RangeInclusive<u32>, &[char]) = match cabin.trim().to_lowercase().as_str() {
        "first" => (1..=3, &['A', 'D']),
        "business" => (4..=9, &['A', 'C', 'D', 'F']),
        "premium economy" => (10..=19, &ALL),
        "economy" => (20..=45, &ALL),
        _ => (12..=38, &ALL),
    };
    let mut rng = rand::rng();
    let row = rand::Rng::random_range(&mut rng, rows);
    let letter = letters.choose(&mut rng).copied().unwrap_or('A');
    format!("{row}{letter}")
}

/// `<cabin> <from> → <to> on <date label> departing <dep> (arrives <arr>); return on <return date>`.
pub(crate) fn describe(option: &FlightOption, search: &FlightSearch) -> String {
    format!(
        "{} {} → {} on {} departing {} (arrives {}); return on {}",
        option.cabin,
        option.from_airport,
        option.to_airport,
        date_label(&search.depart_date),
        option.dep_time,
        option.arr_time,
        search.return_date
    )
}

/// The `flight.select` action payload carried by each clickable option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlightSelectPayload {
    /// Id of the option this click chooses, one of `options`.
    pub id: String,
    /// Every option of the widget.
    pub options: Vec<FlightOption>,
    /// The search the options answer.
    pub request: FlightSearch,
    /// Which way the options fly; the sample's payloads may omit it for outbound.
    #[serde(default)]
    pub leg: Leg,
}

/// The widget root: a `ListView` with one item per option; the selected one (if any) is highlighted and
/// not clickable, the others carry a `flight.select` server action.
pub fn flight_options_widget(
    options: &[FlightOption],
    search: &FlightSearch,
    selected_id: Option<&str>,
    leg: Leg,
) -> Value {
    let children: Vec<Value> = options
        .iter()
        .map(|option| {
            let selected = selected_id == Some(option.id.as_str());
            let action = (!selected).then(|| {
                let payload = FlightSelectPayload {
                    id: option.id.clone(),
                    options: options.to_vec(),
                    request: search.clone(),
                    leg,
                };
                json!({"type": FLIGHT_SELECT, "handler": "server", "payload": payload})
            });
            option_item(option, selected, action)
        })
        .collect();
    json!({"type": "ListView", "children": children})
}

/// The widget after a selection: only the chosen option, highlighted, with no action.
pub fn locked_flight_widget(selected: &FlightOption, search: &FlightSearch, leg: Leg) -> Value {
    flight_options_widget(std::slice::from_ref(selected), search, Some(&selected.id), leg)
}

fn option_item(option: &FlightOption, selected: bool, action: Option<Value>) -> Value {
    let border = if selected {
        json!({"size": 1, "color": "blue-500", "style": "solid"})
    } else {
        json!({"size": 1, "color": "default", "style": "dashed"})
    };
    let route = format!("{} → {}", option.from_airport, option.to_airport);
    let codes = format!("{} • {}", option.from_airport, option.to_airport);
    let body = json!({
        "type": "Box", "width": "100%", "padding": 3, "radius": "xl", "background": "surface",
        "border": border,
        "children": [{"type": "Row", "gap": 3, "align": "stretch", "children": [
            {"type": "Box", "width": 3, "background": "blue-600", "radius": "full"},
            {"type": "Col", "flex": "auto", "gap": 2, "children": [
                {"type": "Row", "children": [
                    {"type": "Title", "value": route, "size": "md"},
                    {"type": "Spacer"},
                    {"type": "Badge", "label": option.cabin, "color": "discovery", "variant": "soft"}
                ]},
                {"type": "Row", "children": [
                    {"type": "Col", "children": [
                        {"type": "Caption", "value": "Depart", "color": "secondary"},
                        {"type": "Title", "value": option.dep_time, "size": "lg"}
                    ]},
                    {"type": "Spacer"},
                    {"type": "Col", "align": "end", "children": [
                        {"type": "Caption", "value": "Arrive", "color": "secondary"},
                        {"type": "Title", "value": option.arr_time, "size": "lg"}
                    ]}
                ]},
                {"type": "Divider"},
                {"type": "Row", "children": [
                    {"type": "Caption", "value": option.date_label},
                    {"type": "Spacer"},
                    {"type": "Caption", "value": codes}
                ]}
            ]}
        ]}]
    });
    let mut item = json!({"key": option.id, "type": "ListViewItem", "gap": 0, "align": "stretch", "children": [body]});
    if let (Some(action), Some(obj)) = (action, item.as_object_mut()) {
        obj.insert("onClickAction".into(), action);
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> FlightSearch {
        FlightSearch {
            origin: "SFO".into(),
            destination: "CDG".into(),
            depart_date: "2025-11-03".into(),
            return_date: "2025-11-10".into(),
            cabin: "business".into(),
        }
    }

    #[test]
    fn generated_options() {
        let options = generate_flight_options(&paris());
        let got: Vec<(&str, &str, &str)> =
            options.iter().map(|o| (o.id.as_str(), o.dep_time.as_str(), o.arr_time.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("flight-morning", "08:10", "16:40"),
                ("flight-midday", "12:35", "21:05"),
                ("flight-late", "21:55", "06:20 (+1)")
            ]
        );
        for o in &options {
            assert_eq!((o.from_airport.as_str(), o.to_airport.as_str()), ("SFO", "CDG"));
            assert_eq!(o.date_label, "Mon, Nov 3");
            assert_eq!(o.cabin, "Business");
        }
        let back = generate_flight_options(&paris().return_search());
        assert_eq!((back[0].from_airport.as_str(), back[0].to_airport.as_str()), ("CDG", "SFO"));
        assert_eq!(back[0].date_label, "Mon, Nov 10");
    }

    #[test]
    fn option_json_field_order() {
        let o = &generate_flight_options(&paris())[0];
        assert_eq!(
            serde_json::to_string(o).unwrap(),
            r#"{"id":"flight-morning","from_airport":"SFO","to_airport":"CDG","dep_time":"08:10","arr_time":"16:40","date_label":"Mon, Nov 3","cabin":"Business"}"#
        );
    }

    #[test]
    fn codes() {
        assert_eq!(airport_code(" cdg "), "CDG");
        assert_eq!(airport_code("Paris"), "PAR");
        assert_eq!(airport_code(""), "");
        assert_eq!(airport_code("ab"), "AB");
        assert_eq!(airport_code("J1K2"), "J1K");
    }

    #[test]
    fn labels() {
        assert_eq!(date_label("2025-11-03"), "Mon, Nov 3");
        assert_eq!(date_label("2025-11-10"), "Mon, Nov 10");
        assert_eq!(date_label("2026-02-01"), "Sun, Feb 1");
        assert_eq!(date_label("20251103"), "Mon, Nov 3");
        assert_eq!(date_label("2025-11-03T10:30:00"), "Mon, Nov 3");
        assert_eq!(date_label("2025-11-03 10:30"), "Mon, Nov 3");
        assert_eq!(date_label("2025-11-03T23:30:00+05:00"), "Mon, Nov 3");
        assert_eq!(date_label("2025-11-03T10:30:00Z"), "Mon, Nov 3");
        assert_eq!(date_label("Nov 3"), "Nov 3");
        assert_eq!(date_label("2025-11-3"), "2025-11-3");
        assert_eq!(date_label(" 2025-11-03"), " 2025-11-03");
        assert_eq!(date_label("2025-02-30"), "2025-02-30");
        assert_eq!(date_label(""), "");
        assert_eq!(date_label("2025-11-03é"), "2025-11-03é");
    }

    #[test]
    fn python_title_case() {
        assert_eq!(title_case("business"), "Business");
        assert_eq!(title_case("premium economy"), "Premium Economy");
        assert_eq!(title_case("business-class"), "Business-Class");
        assert_eq!(title_case("FIRST"), "First");
        assert_eq!(title_case("1st class"), "1St Class");
        assert_eq!(title_case("o'neil"), "O'Neil");
        assert_eq!(title_case("économie"), "Économie");
        assert_eq!(title_case(""), "");
    }

    #[test]
    fn seats_by_cabin() {
        let parse = |s: &str| -> (u32, char) {
            let (row, letter) = s.split_at(s.len() - 1);
            (row.parse().unwrap(), letter.chars().next().unwrap())
        };
        for _ in 0..200 {
            let (r, l) = parse(&default_seat("first"));
            assert!((1..=3).contains(&r) && "AD".contains(l));
            let (r, l) = parse(&default_seat(" Business "));
            assert!((4..=9).contains(&r) && "ACDF".contains(l));
            let (r, l) = parse(&default_seat("premium economy"));
            assert!((10..=19).contains(&r) && "ABCDEF".contains(l));
            let (r, l) = parse(&default_seat("ECONOMY"));
            assert!((20..=45).contains(&r) && "ABCDEF".contains(l));
            let (r, l) = parse(&default_seat("sleeper"));
            assert!((12..=38).contains(&r) && "ABCDEF".contains(l));
        }
    }

    #[test]
    fn describe_and_flight_numbers() {
        let search = paris();
        let options = generate_flight_options(&search);
        assert_eq!(
            describe(&options[1], &search),
            "Business SFO → CDG on Mon, Nov 3 departing 12:35 (arrives 21:05); return on 2025-11-10"
        );
        assert_eq!(Leg::Outbound.flight_number(), "OA917");
        assert_eq!(Leg::Return.flight_number(), "OA927");
    }

    /// One rendered option, key by key as the Python sample renders it, with the payload's options
    /// written out.
    #[test]
    fn widget_item_matches_appendix_b() {
        let search = paris();
        let options = generate_flight_options(&search);
        let widget = flight_options_widget(&options, &search, None, Leg::Outbound);
        let expected = concat!(
            r#"{"key":"flight-morning","type":"ListViewItem","gap":0,"align":"stretch","#,
            r#""children":[{"type":"Box","width":"100%","padding":3,"radius":"xl","background":"surface","#,
            r#""border":{"size":1,"color":"default","style":"dashed"},"#,
            r#""children":[{"type":"Row","gap":3,"align":"stretch","children":["#,
            r#"{"type":"Box","width":3,"background":"blue-600","radius":"full"},"#,
            r#"{"type":"Col","flex":"auto","gap":2,"children":["#,
            r#"{"type":"Row","children":[{"type":"Title","value":"SFO → CDG","size":"md"},{"type":"Spacer"},"#,
            r#"{"type":"Badge","label":"Business","color":"discovery","variant":"soft"}]},"#,
            r#"{"type":"Row","children":["#,
            r#"{"type":"Col","children":[{"type":"Caption","value":"Depart","color":"secondary"},{"type":"Title","value":"08:10","size":"lg"}]},"#,
            r#"{"type":"Spacer"},"#,
            r#"{"type":"Col","align":"end","children":[{"type":"Caption","value":"Arrive","color":"secondary"},{"type":"Title","value":"16:40","size":"lg"}]}]},"#,
            r#"{"type":"Divider"},"#,
            r#"{"type":"Row","children":[{"type":"Caption","value":"Mon, Nov 3"},{"type":"Spacer"},{"type":"Caption","value":"SFO • CDG"}]}]}]}]}],"#,
            r#""onClickAction":{"type":"flight.select","handler":"server","payload":{"id":"flight-morning","options":OPTIONS,"#,
            r#""request":{"origin":"SFO","destination":"CDG","depart_date":"2025-11-03","return_date":"2025-11-10","cabin":"business"},"leg":"outbound"}}}"#
        )
        .replace("OPTIONS", &serde_json::to_string(&options).unwrap());
        assert_eq!(serde_json::to_string(&widget["children"][0]).unwrap(), expected);
        assert_eq!(widget.as_object().unwrap().keys().collect::<Vec<_>>(), vec!["type", "children"]);
        assert_eq!(widget["type"], "ListView");
        let keys: Vec<&str> =
            widget["children"].as_array().unwrap().iter().map(|c| c["key"].as_str().unwrap()).collect();
        assert_eq!(keys, vec!["flight-morning", "flight-midday", "flight-late"]);
        assert_eq!(widget["children"][2]["onClickAction"]["payload"]["id"], "flight-late");
        assert!(!serde_json::to_string(&widget).unwrap().contains("null"));
    }

    #[test]
    fn locked_variant_has_one_highlighted_item_without_action() {
        let search = paris();
        let options = generate_flight_options(&search);
        let locked = locked_flight_widget(&options[1], &search, Leg::Outbound);
        let items = locked["children"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["key"], "flight-midday");
        assert!(items[0].get("onClickAction").is_none());
        assert_eq!(items[0]["children"][0]["border"], json!({"size":1,"color":"blue-500","style":"solid"}));
        let mut unlocked = flight_options_widget(&options, &search, None, Leg::Outbound)["children"][1].clone();
        unlocked.as_object_mut().unwrap().remove("onClickAction");
        unlocked["children"][0]["border"] = json!({"size":1,"color":"blue-500","style":"solid"});
        assert_eq!(items[0], unlocked);
    }

    #[test]
    fn payload_round_trip_and_leg_default() {
        let p: FlightSelectPayload = serde_json::from_value(json!({
            "id": "flight-late", "options": [], "extra": 1,
            "request": {"origin":"SFO","destination":"CDG","depart_date":"a","return_date":"b","cabin":"c"}
        }))
        .unwrap();
        assert_eq!(p.leg, Leg::Outbound);
        assert!(serde_json::from_value::<FlightSelectPayload>(json!({"id": "x", "options": []})).is_err());
    }
}
