//! Strategies shared by the wire-format property tests (`chatkit`'s `props_decode`, and `agents`'
//! `props_sse`, which includes this file by path): arbitrary strings (every `char`, control
//! characters and newlines included), arbitrary JSON values, and the number of cases.
//!
//! Each test runs a small bounded number of cases so CI stays fast; run them longer with
//! `PROPTEST_CASES=100000 cargo test --release -p chatkit --test props_decode` (or
//! `-p agents --test props_sse`).

#![allow(dead_code)] // each test crate uses a different subset

use proptest::prelude::*;
use serde_json::{Map, Number, Value};

/// Cases per property: `PROPTEST_CASES` when set, else `default`.
pub(crate) fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Any string of up to `max` chars, drawn from the whole Unicode range (incl. `\n`, `\r`, `\0`).
pub(crate) fn any_string(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..=max).prop_map(String::from_iter)
}

/// Numbers that survive a JSON text round trip with serde_json's default float parser: any
/// integer, and decimals with at most 6 fraction digits (exactly representable parse path).
pub(crate) fn json_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        (any::<i32>(), 0u32..=6)
            .prop_filter_map("finite", |(m, e)| { Number::from_f64(f64::from(m) / 10f64.powi(e as i32)) }),
    ]
}

/// Arbitrary JSON (depth ≤ 3, ≤ 6 entries per container).
pub(crate) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number().prop_map(Value::Number),
        any_string(12).prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any_string(8), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Arbitrary JSON object.
pub(crate) fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((any_string(8), json_value()), 0..5).prop_map(|kv| kv.into_iter().collect())
}

/// A JSON value other than `null` (an `Option<Value>` field cannot tell `Some(null)` from `None`).
pub(crate) fn json_non_null() -> impl Strategy<Value = Value> {
    json_value().prop_filter("not null", |v| !v.is_null())
}
