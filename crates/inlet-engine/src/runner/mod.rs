//! Runners: how an action is carried out (a local command, an HTTP request).
//!
//! Both take an invocation rendered by `inlet_core::automation::CompiledAction` and give
//! back an outcome that the worker records with the execution. Neither returns an error:
//! a command that cannot start or a request that cannot be sent is a failed outcome
//! with its reason in `error`.

mod command;
mod http;

pub use command::{
    CommandOutcome, DEFAULT_DRAIN_GRACE, DEFAULT_KILL_GRACE, OutputLine, RunOptions, Stream, run_command,
    run_command_with,
};
pub use http::{HttpOutcome, build_client, install_crypto_provider, run_http};

/// Output kept of each of a command's streams, and of an HTTP response body.
pub const DEFAULT_OUTPUT_CAP: usize = 64 * 1024;

#[cfg(test)]
mod tests;
