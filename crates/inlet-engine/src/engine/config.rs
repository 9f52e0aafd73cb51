use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Engine settings (the `[engine]` table of the configuration file).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Executions run at once by this node.
    pub workers: usize,
    /// How long a claimed execution stays leased without a renewal; the worker renews
    /// it every third of that. A node that dies leaves its executions to be picked up
    /// again once their leases expire.
    pub lease_seconds: f64,
    /// How often the store is polled for due work and rule changes when nothing
    /// notifies the engine (other nodes, timers).
    pub poll_interval_seconds: f64,
    /// On shutdown, how long running executions may take to finish; the rest are
    /// stopped and left to their leases.
    pub shutdown_grace_seconds: f64,
    /// Bytes kept of each output stream (stdout, stderr, HTTP response body).
    pub output_cap_bytes: usize,
    /// After a timeout or cancel, the time between SIGTERM and SIGKILL.
    pub kill_grace_seconds: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            workers: 32,
            lease_seconds: 30.0,
            poll_interval_seconds: 1.0,
            shutdown_grace_seconds: 30.0,
            output_cap_bytes: crate::runner::DEFAULT_OUTPUT_CAP,
            kill_grace_seconds: 5.0,
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

impl EngineConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.workers == 0 || self.workers > 1024 {
            return Err("engine.workers must be between 1 and 1024".into());
        }
        if !(0.1..=3600.0).contains(&self.lease_seconds) {
            return Err("engine.lease_seconds must be between 0.1 and 3600".into());
        }
        if !(0.01..=60.0).contains(&self.poll_interval_seconds) {
            return Err("engine.poll_interval_seconds must be between 0.01 and 60".into());
        }
        if !(0.0..=3600.0).contains(&self.shutdown_grace_seconds) {
            return Err("engine.shutdown_grace_seconds must be between 0 and 3600".into());
        }
        if !(0.0..=600.0).contains(&self.kill_grace_seconds) {
            return Err("engine.kill_grace_seconds must be between 0 and 600".into());
        }
        if self.output_cap_bytes == 0 || self.output_cap_bytes > 16 * 1024 * 1024 {
            return Err("engine.output_cap_bytes must be between 1 and 16 MiB".into());
        }
        Ok(())
    }

    pub fn lease(&self) -> Duration {
        secs(self.lease_seconds)
    }
    pub fn poll_interval(&self) -> Duration {
        secs(self.poll_interval_seconds)
    }
    pub fn shutdown_grace(&self) -> Duration {
        secs(self.shutdown_grace_seconds)
    }
    pub fn kill_grace(&self) -> Duration {
        secs(self.kill_grace_seconds)
    }
}
