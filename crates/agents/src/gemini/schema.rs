//! Conversion of strict (OpenAI-style) JSON schemas into the OpenAPI subset Gemini's
//! `functionDeclarations[].parameters` accepts.
//!
//! Gemini rejects `additionalProperties`, `title`, `$ref`/`$defs`, `const`, type arrays and
//! `anyOf` with a `null` branch, and objects with an empty `properties`. The conversion inlines
//! local `$ref`s, turns `anyOf: [X, {type: null}]` / `type: [X, "null"]` into `X` + `nullable: true`,
//! `const` into a one-value `enum`, keeps only supported string/number formats, and drops every
//! other keyword.

use serde_json::{Map, Value, json};

/// Keywords passed through (after recursive conversion where they hold schemas).
const KEPT: &[&str] = &[
    "type",
    "format",
    "description",
    "nullable",
    "enum",
    "properties",
    "required",
    "items",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "propertyOrdering",
    "anyOf",
];

const MAX_DEPTH: usize = 32;

/// The Gemini `parameters` of a tool, or `None` when it takes no arguments (Gemini rejects an
/// object schema with empty `properties`).
pub(crate) fn function_parameters(schema: &Value) -> Option<Value> {
    let converted = to_gemini_schema(schema);
    let empty_object = converted.get("type").and_then(Value::as_str) == Some("object")
        && converted.get("properties").and_then(Value::as_object).is_none_or(Map::is_empty);
    if empty_object || converted.as_object().is_some_and(Map::is_empty) { None } else { Some(converted) }
}

/// Converts one JSON schema (see the module docs).
pub(crate) fn to_gemini_schema(schema: &Value) -> Value {
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    convert(schema, &defs, 0)
}

fn convert(node: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    let Some(obj) = node.as_object() else {
        return node.clone();
    };
    if depth > MAX_DEPTH {
        return json!({});
    }
    if let Some(target) = obj.get("$ref").and_then(Value::as_str).and_then(|r| resolve(r, defs)) {
        let mut resolved = convert(target, defs, depth + 1);
        // Sibling keywords (e.g. a description next to the $ref) win over the target's.
        if let (Some(out), Some(desc)) = (resolved.as_object_mut(), obj.get("description")) {
            out.insert("description".into(), desc.clone());
        }
        return resolved;
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = obj.get(key).and_then(Value::as_array) {
            return convert_union(obj, branches, defs, depth);
        }
    }

    let mut out = Map::new();
    let mut nullable = obj.get("nullable").and_then(Value::as_bool).unwrap_or(false);
    if let Some(Value::Array(types)) = obj.get("type") {
        nullable |= convert_type_array(obj, types, defs, depth, &mut out);
    }
    if let Some(c) = obj.get("const") {
        out.insert("enum".into(), json!([c]));
        if c.is_string() && !obj.contains_key("type") {
            out.insert("type".into(), json!("string"));
        }
    }
    for (key, value) in obj {
        if !KEPT.contains(&key.as_str()) || out.contains_key(key) {
            continue;
        }
        match key.as_str() {
            "properties" => {
                if let Some(props) = value.as_object() {
                    let props: Map<String, Value> =
                        props.iter().map(|(k, v)| (k.clone(), convert(v, defs, depth + 1))).collect();
                    out.insert(key.clone(), Value::Object(props));
                }
            }
            "items" => {
                out.insert(key.clone(), convert(value, defs, depth + 1));
            }
            "type" if value.as_str() == Some("null") => nullable = true,
            "type" if !value.is_string() => {}
            "format" | "nullable" => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if let Some(format) = obj.get("format")
        && supported_format(out.get("type").and_then(Value::as_str), format.as_str())
    {
        out.insert("format".into(), format.clone());
    }
    if let (Some(Value::Array(required)), Some(Value::Object(props))) = (out.get("required"), out.get("properties")) {
        let kept: Vec<Value> =
            required.iter().filter(|r| r.as_str().is_some_and(|r| props.contains_key(r))).cloned().collect();
        out.insert("required".into(), Value::Array(kept));
    }
    if nullable {
        out.insert("nullable".into(), Value::Bool(true));
    }
    Value::Object(out)
}

/// A `type` array: one non-null type becomes that type, several become an `anyOf` of copies of the
/// schema, one per type. Returns whether `null` was among them.
fn convert_type_array(
    obj: &Map<String, Value>,
    types: &[Value],
    defs: &Map<String, Value>,
    depth: usize,
    out: &mut Map<String, Value>,
) -> bool {
    let non_null: Vec<&Value> = types.iter().filter(|t| t.as_str() != Some("null")).collect();
    match non_null.as_slice() {
        [one] => {
            out.insert("type".into(), (*one).clone());
        }
        [] => {}
        many => {
            let mut rest = obj.clone();
            rest.remove("type");
            let branches: Vec<Value> = many
                .iter()
                .map(|t| {
                    let mut b = rest.clone();
                    b.insert("type".into(), (*t).clone());
                    convert(&Value::Object(b), defs, depth + 1)
                })
                .collect();
            out.insert("anyOf".into(), Value::Array(branches));
        }
    }
    non_null.len() < types.len()
}

fn convert_union(obj: &Map<String, Value>, branches: &[Value], defs: &Map<String, Value>, depth: usize) -> Value {
    let is_null = |b: &Value| b.get("type").and_then(Value::as_str) == Some("null");
    let non_null: Vec<&Value> = branches.iter().filter(|b| !is_null(b)).collect();
    let nullable = non_null.len() < branches.len();
    let mut out = match non_null.as_slice() {
        [one] => convert(one, defs, depth + 1),
        many => {
            let converted: Vec<Value> = many.iter().map(|b| convert(b, defs, depth + 1)).collect();
            json!({ "anyOf": converted })
        }
    };
    if let Some(map) = out.as_object_mut() {
        if let Some(desc) = obj.get("description") {
            map.insert("description".into(), desc.clone());
        }
        if nullable {
            map.insert("nullable".into(), Value::Bool(true));
        }
    }
    out
}

fn resolve<'a>(reference: &str, defs: &'a Map<String, Value>) -> Option<&'a Value> {
    let name = reference.strip_prefix("#/$defs/").or_else(|| reference.strip_prefix("#/definitions/"))?;
    defs.get(name)
}

fn supported_format(kind: Option<&str>, format: Option<&str>) -> bool {
    matches!(
        (kind, format),
        (Some("string"), Some("enum" | "date-time"))
            | (Some("integer"), Some("int32" | "int64"))
            | (Some("number"), Some("float" | "double"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_schema_of_flight_option_list() {
        let strict = json!({"properties":{"destination":{"title":"Destination","type":"string"},"depart_date":{"title":"Depart Date","type":"string"},"return_date":{"title":"Return Date","type":"string"},"cabin":{"title":"Cabin","type":"string"},"origin":{"anyOf":[{"type":"string"},{"type":"null"}],"title":"Origin"}},"required":["destination","depart_date","return_date","cabin","origin"],"title":"flight_option_list_args","type":"object","additionalProperties":false});
        let expected = json!({"properties":{"destination":{"type":"string"},"depart_date":{"type":"string"},"return_date":{"type":"string"},"cabin":{"type":"string"},"origin":{"type":"string","nullable":true}},"required":["destination","depart_date","return_date","cabin","origin"],"type":"object"});
        assert_eq!(function_parameters(&strict), Some(expected));
    }

    #[test]
    fn empty_objects_have_no_parameters() {
        let strict = json!({"properties":{},"title":"cancel_trip_args","type":"object","additionalProperties":false,"required":[]});
        assert_eq!(function_parameters(&strict), None);
    }

    #[test]
    fn refs_type_arrays_const_and_formats() {
        let schema = json!({
            "type": "object",
            "$defs": {"Cabin": {"title": "Cabin", "type": "string", "enum": ["economy", "first"]}},
            "properties": {
                "cabin": {"$ref": "#/$defs/Cabin", "description": "cabin class"},
                "count": {"type": ["integer", "null"], "format": "int32"},
                "when": {"type": "string", "format": "date"},
                "kind": {"const": "trip"},
                "tags": {"type": "array", "items": {"type": "string", "title": "Tag"}, "default": []},
                "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]}
            },
            "required": ["cabin", "missing"],
            "additionalProperties": false
        });
        let expected = json!({
            "type": "object",
            "properties": {
                "cabin": {"type": "string", "enum": ["economy", "first"], "description": "cabin class"},
                "count": {"type": "integer", "format": "int32", "nullable": true},
                "when": {"type": "string"},
                "kind": {"enum": ["trip"], "type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]}
            },
            "required": ["cabin"]
        });
        assert_eq!(to_gemini_schema(&schema), expected);
    }
}
