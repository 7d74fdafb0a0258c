//! A validator for the subset of JSON Schema (OpenAPI 3.0 flavour) the
//! admin API's description uses: `type` (with `nullable`), `properties`,
//! `required`, `items`, `additionalProperties`, `enum`, `minimum`,
//! `maximum`, and `$ref` to `#/components/schemas/...`. A keyword it does
//! not know is an error, so the description cannot silently outgrow it.
//!
//! Used by `tests/admin.rs` (`#[path]`), and tested here on its own.
#![cfg(feature = "admin")]
#![allow(dead_code)]

use serde_json::Value;

/// Keywords the validator checks, and those it ignores as documentation.
const CHECKED: &[&str] = &[
    "type",
    "nullable",
    "properties",
    "required",
    "items",
    "additionalProperties",
    "enum",
    "minimum",
    "maximum",
    "$ref",
];
const DOCS: &[&str] = &["description", "title", "example", "format"];

/// Checks `value` against `schema`, resolving `$ref`s in `doc`; returns
/// every violation as `path: problem`.
pub fn validate(doc: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(doc, schema, value, "$", &mut errors);
    errors
}

fn resolve<'a>(doc: &'a Value, r: &str) -> Option<&'a Value> {
    let name = r.strip_prefix("#/components/schemas/")?;
    doc.get("components")?.get("schemas")?.get(name)
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        _ => false,
    }
}

fn check(doc: &Value, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        errors.push(format!("{path}: schema is not an object"));
        return;
    };
    for k in s.keys() {
        if !CHECKED.contains(&k.as_str()) && !DOCS.contains(&k.as_str()) {
            errors.push(format!("{path}: unsupported schema keyword `{k}`"));
        }
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        if s.len() > 1 {
            // OpenAPI 3.0 ignores a `$ref`'s siblings (`nullable` included).
            errors.push(format!("{path}: keywords beside $ref are ignored"));
        }
        match resolve(doc, r) {
            Some(target) => check(doc, target, v, path, errors),
            None => errors.push(format!("{path}: unresolved $ref {r}")),
        }
        return;
    }
    if v.is_null() {
        if s.get("nullable") != Some(&Value::Bool(true)) {
            errors.push(format!("{path}: null where the schema does not allow it"));
        }
        return;
    }
    if let Some(t) = s.get("type").and_then(Value::as_str) {
        if !type_ok(t, v) {
            errors.push(format!("{path}: expected {t}, got {v}"));
            return;
        }
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array) {
        if !options.contains(v) {
            errors.push(format!("{path}: {v} is not one of {options:?}"));
        }
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
            if n < min {
                errors.push(format!("{path}: {n} below the minimum {min}"));
            }
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
            if n > max {
                errors.push(format!("{path}: {n} above the maximum {max}"));
            }
        }
    }
    if let (Some(items), Some(a)) = (s.get("items"), v.as_array()) {
        for (i, x) in a.iter().enumerate() {
            check(doc, items, x, &format!("{path}[{i}]"), errors);
        }
    }
    if let Some(o) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        if let Some(req) = s.get("required").and_then(Value::as_array) {
            for r in req.iter().filter_map(Value::as_str) {
                if !o.contains_key(r) {
                    errors.push(format!("{path}: missing required property `{r}`"));
                }
            }
        }
        for (k, x) in o {
            let p = format!("{path}.{k}");
            match props.and_then(|p| p.get(k)) {
                Some(ps) => check(doc, ps, x, &p, errors),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => errors.push(format!("{p}: not allowed")),
                    Some(extra @ Value::Object(_)) => check(doc, extra, x, &p, errors),
                    // Objects with declared properties are closed: an
                    // undocumented field is a gap in the description.
                    _ if props.is_some() => errors.push(format!("{p}: not in the description")),
                    _ => {}
                },
            }
        }
    }
}

/// The schema of `path`'s 200 answer in the OpenAPI document `doc`.
pub fn response_schema<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    doc.get("paths")?
        .get(path)?
        .get("get")?
        .get("responses")?
        .get("200")?
        .get("content")?
        .get("application/json")?
        .get("schema")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"components": {"schemas": {
            "Point": {"type": "object", "required": ["x"], "properties": {
                "x": {"type": "integer", "minimum": 0},
                "label": {"type": "string", "nullable": true},
                "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
                "frac": {"type": "number", "minimum": 0, "maximum": 1},
                "extra": {"type": "object", "additionalProperties": {"type": "number"}}
            }}
        }}})
    }

    fn errors(v: Value) -> Vec<String> {
        let d = doc();
        validate(&d, &json!({"$ref": "#/components/schemas/Point"}), &v)
    }

    #[test]
    fn a_conforming_value_passes() {
        let e =
            errors(json!({"x": 3, "label": null, "tags": ["a"], "frac": 0.5, "extra": {"k": 1.5}}));
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn each_kind_of_violation_is_reported_with_its_path() {
        assert_eq!(errors(json!({})), vec!["$: missing required property `x`"]);
        assert_eq!(
            errors(json!({"x": 1.5})),
            vec!["$.x: expected integer, got 1.5"]
        );
        assert_eq!(
            errors(json!({"x": -1})),
            vec!["$.x: -1 below the minimum 0"]
        );
        assert_eq!(
            errors(json!({"x": null})),
            vec!["$.x: null where the schema does not allow it"]
        );
        assert_eq!(errors(json!({"x": 1, "tags": ["c"]})).len(), 1);
        assert_eq!(
            errors(json!({"x": 1, "tags": "a"})),
            vec!["$.tags: expected array, got \"a\""]
        );
        assert_eq!(
            errors(json!({"x": 1, "frac": 1.5})),
            vec!["$.frac: 1.5 above the maximum 1"]
        );
        assert_eq!(
            errors(json!({"x": 1, "extra": {"k": "no"}})),
            vec!["$.extra.k: expected number, got \"no\""]
        );
        assert_eq!(
            errors(json!({"x": 1, "surprise": 0})),
            vec!["$.surprise: not in the description"]
        );
        assert_eq!(errors(json!([1])), vec!["$: expected object, got [1]"]);
    }

    #[test]
    fn unknown_keywords_and_dangling_refs_are_errors() {
        let d = doc();
        let e = validate(&d, &json!({"oneOf": []}), &json!(1));
        assert_eq!(e, vec!["$: unsupported schema keyword `oneOf`"]);
        let e = validate(&d, &json!({"$ref": "#/components/schemas/Nope"}), &json!(1));
        assert_eq!(e, vec!["$: unresolved $ref #/components/schemas/Nope"]);
        let e = validate(
            &d,
            &json!({"$ref": "#/components/schemas/Point", "nullable": true}),
            &json!({"x": 1}),
        );
        assert_eq!(e, vec!["$: keywords beside $ref are ignored"]);
    }
}
