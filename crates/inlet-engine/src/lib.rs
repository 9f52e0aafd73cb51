//! Inlet's engine: rule evaluation and the workers that run actions.

mod engine;
pub mod runner;

pub use engine::{EngineConfig, EngineHandle, Follow, LogLine, RuleVerdict, event_context};
