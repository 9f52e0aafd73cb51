//! Inlet's domain: the types and pure logic every other crate builds on.
//! Nothing here does I/O or knows about tokio, sqlx or axum.

pub mod automation;
pub mod clock;
pub mod expr;
pub mod keys;
pub mod net;
pub mod outcome;
pub mod pack;
pub mod payload;
pub mod rate_limit;
pub mod redact;
pub mod seal;
pub mod settings;
pub mod time_id;
pub mod trigger_ref;
pub mod verify;

pub use trigger_ref::TriggerRef;
