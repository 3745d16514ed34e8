//! Strict JSON decoding of request params, closing two holes serde leaves open by default:
//!
//! - a derived struct also accepts a JSON *array* of its fields in order, so
//!   `"inference_options": [null, null]` passed as options; here an object-shaped type only accepts an
//!   object (as pydantic does);
//! - `serde_json::Value` keeps the last of duplicate keys, so `{"title": "a", "title": "b"}` passed
//!   silently; here any duplicate key, at any depth, is an error (as at the envelope's top level);
//! - serde reads an enum variant from its *index* as well as from its name, and a unit variant from the
//!   one-key object `{"positive": null}` as well as from `"positive"`: `"type": 0` was read as the first
//!   variant. Here every variant name and every tag is a JSON string, nothing else ([`string_tagged`] for
//!   lists of internally tagged objects, whose derive would also take `["input_text", "hi"]`).
//!
//! Integers are read as JSON Schema counts them: `20.0` is the integer 20 (pydantic's default mode, which
//! the Python SDK uses, agrees), while `20.5`, `"20"` and `true` are refused.
//!
//! [`UniqueKeys`] is the duplicate-refusing `Value`; [`from_value`] deserializes a typed value from it
//! through a deserializer that refuses arrays where a struct is expected. Error messages quote client
//! input only as a short prefix ([`quote`], [`shorten_message`]): serde's own messages include whole
//! values.

use serde::de::value::StringDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, forward_to_deserialize_any};
use serde_json::{Error, Map, Number, Value};

/// Name of the tag key of the protocol's internally tagged objects.
const TAG: &str = "type";

/// Longest piece of client input quoted in an error message or a log line, in characters.
pub const QUOTE_CHARS: usize = 64;

/// Longest decoder message passed on, in characters; longer ones keep their start and end.
const MESSAGE_CHARS: usize = 240;

/// At most [`QUOTE_CHARS`] characters of client input, with `…` when cut.
pub fn quote(input: &str) -> String {
    match input.char_indices().nth(QUOTE_CHARS) {
        Some((cut, _)) => format!("{}…", &input[..cut]),
        None => input.to_string(),
    }
}

/// A decoder message bounded to a few hundred characters. serde quotes offending values whole
/// (`invalid type: string "<megabytes>", expected u32`); the start and the end (the `expected …` part)
/// are what a client needs.
pub fn shorten_message(message: &str) -> String {
    let total = message.chars().count();
    if total <= MESSAGE_CHARS {
        return message.to_string();
    }
    let head: String = message.chars().take(MESSAGE_CHARS / 2).collect();
    let tail: String = message.chars().skip(total - MESSAGE_CHARS / 3).collect();
    format!("{head} … {tail}")
}

/// A JSON value decoded with every object's keys checked for duplicates.
#[derive(Debug, Clone, PartialEq)]
pub struct UniqueKeys(pub Value);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor).map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        UniqueKeys::deserialize(deserializer).map(|v| v.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(UniqueKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key `{}`", quote(&key))));
            }
            let UniqueKeys(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// Deserializes `T` from `value`, refusing an array where `T` (or anything inside it) expects a struct.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    T::deserialize(Strict(value))
}

/// Integer `deserialize_*` methods that read an integral float as its integer (see [`whole_number`]).
macro_rules! integers {
    ($($method:ident)+) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                match whole_number(self.0) {
                    number @ Value::Number(_) => number.$method(visitor),
                    other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
                }
            }
        )+
    };
}

/// A `Value` deserializer that, unlike `serde_json::Value`'s, does not hand arrays to struct visitors.
struct Strict(Value);

impl<'de> Deserializer<'de> for Strict {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(StrictMap { entries: map.into_iter(), value: None }),
            Value::Array(items) => visitor.visit_seq(StrictSeq { items: items.into_iter() }),
            scalar => scalar.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            value => visitor.visit_some(Strict(value)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(_) => Err(de::Error::invalid_type(Unexpected::Seq, &visitor)),
            value => Strict(value).deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    // The request types' enums are unit variants, spelled only as their string names (serde's own
    // handling would also take the one-key object form).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(name) => visitor.visit_enum(name.into_deserializer()),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    // Identifiers reach this deserializer only as the tag of an internally tagged enum: a name, never the
    // variant index serde would otherwise take from a number.
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(name) => visitor.visit_string(name),
            other => Err(de::Error::invalid_type(unexpected(&other), &"a string")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    integers! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    // Scalars are read as serde_json reads them, but a mismatch says `null` rather than "unit value".
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Bool(b) => visitor.visit_bool(b),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => visitor.visit_string(s),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    forward_to_deserialize_any! {
        f32 f64 char bytes byte_buf unit unit_struct seq tuple tuple_struct map
    }
}

/// `20.0` (or `2e1`) as the integer 20 when it is a whole number within the 64-bit range; any other
/// value unchanged, for the visitor to accept or refuse with its own message.
fn whole_number(value: Value) -> Value {
    // 2^64 and 2^63 are exact in f64; a whole float below them converts without loss.
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    let Value::Number(number) = &value else { return value };
    if number.is_f64()
        && let Some(float) = number.as_f64()
        && float.fract() == 0.0
    {
        if (0.0..TWO_POW_64).contains(&float) {
            return Value::from(float as u64);
        }
        if (-TWO_POW_63..0.0).contains(&float) {
            return Value::from(float as i64);
        }
    }
    value
}

/// What a JSON value is, for "invalid type" messages (a string is quoted up to [`QUOTE_CHARS`] characters).
fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Other("null"),
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Unexpected::Unsigned(u),
            (_, Some(i), _) => Unexpected::Signed(i),
            (_, _, Some(f)) => Unexpected::Float(f),
            _ => Unexpected::Other("number"),
        },
        Value::String(s) => Unexpected::Str(s.char_indices().nth(QUOTE_CHARS).map_or(s.as_str(), |(cut, _)| &s[..cut])),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// `deserialize_with` for a list of internally tagged objects (`[{"type": "input_text", …}]`): every
/// element must be an object whose `type` is a string. The derive alone would also read an element
/// written as an array (`["input_text", "hi"]`, tag first), and its fields positionally.
pub fn string_tagged<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let elements = Vec::<Map<String, Value>>::deserialize(deserializer)?;
    elements
        .into_iter()
        .enumerate()
        .map(|(index, element)| {
            match element.get(TAG) {
                Some(Value::String(_)) => {}
                Some(other) => {
                    return Err(de::Error::custom(format_args!(
                        "element {index}: invalid type: {} for `{TAG}`, expected a string",
                        unexpected(other)
                    )));
                }
                None => return Err(de::Error::custom(format_args!("element {index}: missing field `{TAG}`"))),
            }
            from_value(Value::Object(element)).map_err(|e| de::Error::custom(format_args!("element {index}: {e}")))
        })
        .collect()
}

struct StrictMap {
    entries: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for StrictMap {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        self.value = Some(value);
        let key: StringDeserializer<Error> = key.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        // serde asks for a value only after its key; a missing one would be a bug in the caller.
        let value = self.value.take().ok_or_else(|| de::Error::custom("a map value was asked before its key"))?;
        seed.deserialize(Strict(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct StrictSeq {
    items: std::vec::IntoIter<Value>,
}

impl<'de> SeqAccess<'de> for StrictSeq {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        self.items.next().map(|item| seed.deserialize(Strict(item))).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    #[derive(Debug, PartialEq, Default, Deserialize)]
    struct Options {
        #[serde(default)]
        model: Option<String>,
        #[serde(default)]
        tool: Option<String>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Positive,
        Negative,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Params {
        id: String,
        #[serde(default)]
        options: Options,
        #[serde(default)]
        limit: Option<u32>,
        #[serde(default)]
        ids: Vec<String>,
        #[serde(default)]
        answers: BTreeMap<String, Options>,
        #[serde(default)]
        payload: Value,
        #[serde(default)]
        kind: Option<Kind>,
    }

    fn parse(text: &str) -> Result<Params, String> {
        let UniqueKeys(value) = serde_json::from_str(text).map_err(|e| e.to_string())?;
        from_value(value).map_err(|e| e.to_string())
    }

    #[test]
    fn decodes_what_the_derive_decodes_from_objects() {
        let p = parse(
            r#"{"id": "t", "options": {"model": "m"}, "limit": 3, "ids": ["a", "b"],
                "answers": {"q": {"tool": "x"}}, "payload": {"k": [1, {"n": null}]}, "kind": "negative",
                "unknown": [1, 2]}"#,
        )
        .unwrap();
        assert_eq!(p.options, Options { model: Some("m".into()), tool: None });
        assert_eq!((p.limit, p.ids.len(), p.kind), (Some(3), 2, Some(Kind::Negative)));
        assert_eq!(p.answers["q"].tool.as_deref(), Some("x"));
        assert_eq!(p.payload, json!({"k": [1, {"n": null}]}));
        assert_eq!(parse(r#"{"id": "t", "limit": null, "kind": null}"#).unwrap().limit, None);
    }

    #[test]
    fn arrays_are_refused_where_objects_belong() {
        let e = parse(r#"{"id": "t", "options": [null, null]}"#).unwrap_err();
        assert_eq!(e, "invalid type: sequence, expected struct Options");
        let e = parse(r#"{"id": "t", "answers": {"q": ["m"]}}"#).unwrap_err();
        assert!(e.contains("expected struct Options"), "{e}");
        assert!(from_value::<Params>(json!(["t"])).is_err());
        // A free-form value keeps its arrays.
        assert_eq!(parse(r#"{"id": "t", "payload": [1, 2]}"#).unwrap().payload, json!([1, 2]));
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let e = parse(r#"{"id": "a", "id": "b"}"#).unwrap_err();
        assert!(e.starts_with("duplicate key `id`"), "{e}");
        let e = parse(r#"{"id": "a", "payload": {"x": {"y": 1, "y": 2}}}"#).unwrap_err();
        assert!(e.starts_with("duplicate key `y`"), "{e}");
        let long = "k".repeat(1000);
        let e = parse(&format!(r#"{{"id": "a", "payload": {{"{long}": 1, "{long}": 2}}}}"#)).unwrap_err();
        assert!(e.len() < 200, "{e}");
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Part {
        Text { text: String },
        Tag { id: String },
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Message {
        #[serde(deserialize_with = "string_tagged")]
        parts: Vec<Part>,
        #[serde(default)]
        size: Option<u64>,
        #[serde(default)]
        offset: Option<i32>,
    }

    fn message(value: Value) -> Result<Message, String> {
        from_value(value).map_err(|e| e.to_string())
    }

    #[test]
    fn enums_are_read_from_their_string_names_only() {
        assert_eq!(parse(r#"{"id": "t", "kind": "positive"}"#).unwrap().kind, Some(Kind::Positive));
        for (kind, found) in [
            ("0", "integer `0`"),
            ("1", "integer `1`"),
            ("true", "boolean `true`"),
            ("1.0", "floating point `1.0`"),
            (r#"{"positive": null}"#, "map"),
            (r#"["positive"]"#, "sequence"),
        ] {
            let e = parse(&format!(r#"{{"id": "t", "kind": {kind}}}"#)).unwrap_err();
            assert_eq!(e, format!("invalid type: {found}, expected enum Kind"), "{kind}");
        }
        let e = parse(r#"{"id": "t", "kind": "0"}"#).unwrap_err();
        assert!(e.starts_with("unknown variant `0`"), "{e}");
    }

    #[test]
    fn tags_are_strings_naming_a_variant() {
        let parts =
            message(json!({"parts": [{"type": "text", "text": "hi"}, {"type": "tag", "id": "x"}]})).unwrap().parts;
        assert_eq!(parts, [Part::Text { text: "hi".into() }, Part::Tag { id: "x".into() }]);
        for (tag, found) in [
            (json!(0), "integer `0`"),
            (json!(1), "integer `1`"),
            (json!(false), "boolean `false`"),
            (json!(null), "null"),
            (json!(["text"]), "sequence"),
            (json!({"text": null}), "map"),
        ] {
            let e = message(json!({"parts": [{"type": "text", "text": "ok"}, {"type": tag, "text": "hi", "id": "x"}]}))
                .unwrap_err();
            assert_eq!(e, format!("element 1: invalid type: {found} for `type`, expected a string"));
        }
        let e = message(json!({"parts": [{"text": "hi"}]})).unwrap_err();
        assert_eq!(e, "element 0: missing field `type`");
        let e = message(json!({"parts": [{"type": "Text", "text": "hi"}]})).unwrap_err();
        assert!(e.starts_with("element 0: unknown variant `Text`, expected `text` or `tag`"), "{e}");
        // The derive alone reads an array as tag then fields.
        let e = message(json!({"parts": [["text", "hi"]]})).unwrap_err();
        assert_eq!(e, "invalid type: sequence, expected a map");
        // A tag that is a string is read by the derive through the strict deserializer, which refuses a
        // variant index too (for tagged types used without `string_tagged`).
        let e = from_value::<Part>(json!({"type": 0, "text": "hi"})).unwrap_err().to_string();
        assert_eq!(e, "invalid type: integer `0`, expected a string");
    }

    #[test]
    fn whole_floats_are_integers() {
        let m = message(json!({"parts": [], "size": 20.0, "offset": -3.0})).unwrap();
        assert_eq!((m.size, m.offset), (Some(20), Some(-3)));
        assert_eq!(message(json!({"parts": [], "size": 2e1})).unwrap().size, Some(20));
        assert_eq!(message(json!({"parts": [], "size": -0.0})).unwrap().size, Some(0));
        assert_eq!(parse(r#"{"id": "t", "limit": 4294967295.0}"#).unwrap().limit, Some(u32::MAX));
        assert_eq!(
            message(json!({"parts": [], "size": 18446744073709549568.0})).unwrap().size,
            Some(18446744073709549568)
        );
        for (value, error) in [
            ("20.5", "invalid type: floating point `20.5`, expected u32"),
            ("\"20\"", "invalid type: string \"20\", expected u32"),
            ("true", "invalid type: boolean `true`, expected u32"),
            ("-1.0", "invalid value: integer `-1`, expected u32"),
            ("4294967296.0", "invalid value: integer `4294967296`, expected u32"),
            ("1e30", "invalid type: floating point `1e+30`, expected u32"),
        ] {
            assert_eq!(parse(&format!(r#"{{"id": "t", "limit": {value}}}"#)).unwrap_err(), error, "{value}");
        }
        let long = "9".repeat(10_000);
        let e = parse(&format!(r#"{{"id": "t", "limit": "{long}"}}"#)).unwrap_err();
        assert_eq!(e, format!("invalid type: string \"{}\", expected u32", &long[..QUOTE_CHARS]));
        let e = message(json!({"parts": [], "offset": 1e10})).unwrap_err();
        assert_eq!(e, "invalid value: integer `10000000000`, expected i32");
    }

    #[test]
    fn quoted_input_is_bounded() {
        assert_eq!(quote("short"), "short");
        let q = quote(&"é".repeat(100));
        assert_eq!(q.chars().count(), QUOTE_CHARS + 1);
        assert!(q.ends_with('…'));
        let huge = format!("invalid type: string \"{}\", expected u32", "x".repeat(100_000));
        let short = shorten_message(&huge);
        assert!(short.chars().count() <= MESSAGE_CHARS + 3, "{}", short.len());
        assert!(short.starts_with("invalid type: string \"xxx") && short.ends_with("\", expected u32"), "{short}");
        assert_eq!(shorten_message("missing field `id`"), "missing field `id`");
    }
}
