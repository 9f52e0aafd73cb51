//! Inlet's engine: rule evaluation and the workers that run actions.

pub mod runner;
