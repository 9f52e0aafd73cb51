//! Expressions: conditions, templates, JSONPath mapping, payload schemas (DESIGN.md section 5).
