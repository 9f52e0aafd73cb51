//! The template context of an event (DESIGN.md section 5).

use inlet_core::clock::rfc3339;
use inlet_core::expr::Context;
use inlet_store::EventRow;
use serde_json::{Map, Value, json};
use std::sync::Arc;

fn string_pairs(value: Option<&Value>) -> Vec<(String, String)> {
    let Some(Value::Object(map)) = value else {
        return Vec::new();
    };
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned).unwrap_or_else(|| i.to_string()))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            (k.clone(), v)
        })
        .collect()
}

/// `payload`, `headers`, `query`, `meta` and `event` of a stored event.
pub fn event_context(event: &EventRow) -> Context {
    let payload: Value = serde_json::from_str(&event.payload).unwrap_or(Value::Null);
    let metadata: Value = serde_json::from_str(&event.metadata).unwrap_or_else(|_| Value::Object(Map::new()));
    let mut meta = match &metadata {
        Value::Object(m) => {
            let mut m = m.clone();
            m.remove("headers");
            m.remove("query");
            m
        }
        _ => Map::new(),
    };
    meta.insert("trigger".into(), json!(event.trigger_ref));
    meta.entry("source").or_insert_with(|| json!(event.source));
    let info = json!({
        "id": event.id,
        "trigger": event.trigger_ref,
        "source": event.source,
        "delivery_id": event.delivery_id,
        "created_at": rfc3339(event.created_at),
    });
    Context::from_arc(Arc::new(payload))
        .with_headers(string_pairs(metadata.get("headers")))
        .with_query(string_pairs(metadata.get("query")))
        .with_meta(&Value::Object(meta))
        .with_event(&info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use inlet_core::expr::{Condition, Template};

    #[test]
    fn an_event_gives_payload_headers_query_meta_and_event() {
        let event = EventRow {
            id: "e-1".into(),
            trigger_ref: "github.push".into(),
            payload: r#"{"ref": "refs/heads/main", "n": 3}"#.into(),
            metadata: json!({
                "source": "webhook", "source_ip": "10.0.0.1", "received_at": "2026-01-01T00:00:00Z",
                "headers": {"x-github-event": "push"}, "query": {"a": "1", "many": ["x", "y"]},
            })
            .to_string(),
            source: "webhook".into(),
            delivery_id: Some("d-1".into()),
            processed: false,
            created_at: 0,
        };
        let ctx = event_context(&event).with_params(&json!({"p": "v"}));
        let cond = Condition::compile(
            "headers['x-github-event'] == 'push' and payload.n == 3 and query.a == '1' \
             and meta.trigger == 'github.push' and meta.source_ip == '10.0.0.1' and event.delivery_id == 'd-1'",
        )
        .unwrap();
        assert!(cond.evaluate(&ctx).unwrap());
        let t = Template::compile("{{ event.id }} {{ query.many }} {{ params.p }} {{ meta.headers }}").unwrap();
        assert_eq!(t.render(&ctx).unwrap(), "e-1 x, y v ");
    }
}
