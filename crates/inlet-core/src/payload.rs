//! Turning a request body into an event payload, by content type.
//!
//! JSON bodies are kept as parsed JSON; urlencoded forms become an object
//! (a repeated name becomes an array); any other body is kept as
//! `{"content_type": ..., "body": <UTF-8 text>}` or, when the bytes are not
//! UTF-8, `{"content_type": ..., "body_base64": ...}`, so nothing is lost.

use base64::Engine;
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PayloadError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("body is not valid UTF-8 form data")]
    Form,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BodyKind {
    Json,
    Form,
    Other,
}

impl BodyKind {
    /// A missing content type is read as JSON: most senders that omit it send JSON.
    pub fn from_content_type(content_type: Option<&str>) -> Self {
        let Some(ct) = content_type else {
            return BodyKind::Json;
        };
        let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if essence == "application/json" || essence.ends_with("+json") {
            BodyKind::Json
        } else if essence == "application/x-www-form-urlencoded" {
            BodyKind::Form
        } else {
            BodyKind::Other
        }
    }
}

pub fn parse_body(content_type: Option<&str>, body: &[u8]) -> Result<Value, PayloadError> {
    match BodyKind::from_content_type(content_type) {
        BodyKind::Json if content_type.is_none() && body.is_empty() => Ok(Value::Object(Map::new())),
        BodyKind::Json => serde_json::from_slice(body).map_err(|e| PayloadError::Json(e.to_string())),
        BodyKind::Form => parse_form(body),
        BodyKind::Other => Ok(opaque_body(content_type.unwrap_or(""), body)),
    }
}

/// Checks that a JSON body (already known to be UTF-8) is one valid JSON value
/// without building it (a body stored as received needs no value); refuses
/// what [`parse_body`] refuses.
pub fn check_json(body: &str) -> Result<(), PayloadError> {
    serde_json::from_str::<Visited>(body)
        .map(drop)
        .map_err(|e| PayloadError::Json(e.to_string()))
}

/// Any JSON value, visited and dropped. Unlike serde's `IgnoredAny`, which
/// skips over numbers, it has every number parsed, so that one out of range is
/// refused as it is when a value is built; strings are not copied.
struct Visited;

impl<'de> serde::Deserialize<'de> for Visited {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Visited)
    }
}

impl<'de> serde::de::Visitor<'de> for Visited {
    type Value = Visited;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Visited, E> {
        Ok(Visited)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Visited, E> {
        Ok(Visited)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Visited, E> {
        Ok(Visited)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Visited, E> {
        Ok(Visited)
    }
    fn visit_str<E>(self, _: &str) -> Result<Visited, E> {
        Ok(Visited)
    }
    fn visit_unit<E>(self) -> Result<Visited, E> {
        Ok(Visited)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Visited, A::Error> {
        while items.next_element::<Visited>()?.is_some() {}
        Ok(Visited)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut entries: A) -> Result<Visited, A::Error> {
        while entries.next_entry::<Visited, Visited>()?.is_some() {}
        Ok(Visited)
    }
}

/// A urlencoded form (or query string) as a JSON object; a repeated name becomes an array.
pub fn parse_form(body: &[u8]) -> Result<Value, PayloadError> {
    std::str::from_utf8(body).map_err(|_| PayloadError::Form)?;
    let mut object = Map::new();
    for (name, value) in form_urlencoded::parse(body) {
        let value = Value::String(value.into_owned());
        match object.get_mut(name.as_ref()) {
            None => {
                object.insert(name.into_owned(), value);
            }
            Some(Value::Array(values)) => values.push(value),
            Some(first) => {
                let first = first.take();
                object.insert(name.into_owned(), Value::Array(vec![first, value]));
            }
        }
    }
    Ok(Value::Object(object))
}

fn opaque_body(content_type: &str, body: &[u8]) -> Value {
    let mut object = Map::new();
    object.insert("content_type".into(), Value::String(content_type.to_owned()));
    match std::str::from_utf8(body) {
        Ok(text) => object.insert("body".into(), Value::String(text.to_owned())),
        Err(_) => object.insert(
            "body_base64".into(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
        ),
    };
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_is_parsed() {
        let v = parse_body(Some("application/json; charset=utf-8"), br#"{"a":1}"#).unwrap();
        assert_eq!(v, json!({"a": 1}));
        assert!(parse_body(Some("application/json"), b"{bad").is_err());
        assert!(parse_body(Some("application/vnd.github+json"), b"[1]").is_ok());
    }

    #[test]
    fn checked_json_is_refused_exactly_where_parsing_is() {
        let bodies = [
            r#"{"a":[1,2,{"b":null}],"c":"\u00e9"}"#,
            " [1] ",
            "{bad",
            "{} x",
            "",
            r#"{"a":1,}"#,
            "1e999",
            r#"{"n":[-1e999]}"#,
            "18446744073709551616",
            "-9223372036854775809",
            "1.5e308",
            r#""\ud800""#,
            r#""\ud83d\ude00""#,
            "\"\u{1}\"",
        ];
        for body in bodies {
            // The messages may word a fault differently; the verdict is the same.
            let parsed = parse_body(Some("application/json"), body.as_bytes());
            assert_eq!(check_json(body).is_ok(), parsed.is_ok(), "{body}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse_body(Some("application/json"), deep.as_bytes()).is_err());
        assert!(
            check_json(&deep).is_err(),
            "nesting beyond serde_json's limit is refused"
        );
    }

    #[test]
    fn forms_become_objects_with_arrays_for_repeats() {
        let v = parse_body(Some("application/x-www-form-urlencoded"), b"a=1&b=x+y&a=2&a=3").unwrap();
        assert_eq!(v, json!({"a": ["1", "2", "3"], "b": "x y"}));
    }

    #[test]
    fn other_types_are_kept() {
        let v = parse_body(Some("text/plain"), b"hello").unwrap();
        assert_eq!(v, json!({"content_type": "text/plain", "body": "hello"}));
        let v = parse_body(Some("application/octet-stream"), &[0xff, 0x00]).unwrap();
        assert_eq!(v["body_base64"], "/wA=");
    }

    #[test]
    fn empty_body_without_content_type_is_an_empty_object() {
        assert_eq!(parse_body(None, b"").unwrap(), json!({}));
    }
}
