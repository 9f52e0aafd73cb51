//! Compiled rules and actions, by trigger and by ref. Reloaded only when the
//! store's automation version changes (checked at most once per poll interval,
//! or at once after a local change); unchanged specs keep their compiled form.

use inlet_core::automation::{ActionSpec, CompiledAction, CompiledRule, RuleSpec};
use inlet_store::{AutomationVersion, Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A rule as the evaluator sees it: compiled, or why it could not be.
pub type RuleEntry = Result<CompiledRule, (String, String)>;

#[derive(Default)]
pub struct Snapshot {
    /// Enabled rules per trigger.
    pub rules: HashMap<String, Arc<Vec<RuleEntry>>>,
    pub actions: HashMap<String, Result<CompiledAction, String>>,
}

pub struct Cache {
    snapshot: Arc<Snapshot>,
    version: Option<AutomationVersion>,
    checked: Option<Instant>,
    stale: bool,
    rule_stamps: HashMap<String, (i64, RuleEntry, String)>,
    action_stamps: HashMap<String, (i64, Result<CompiledAction, String>)>,
}

impl Cache {
    pub fn new() -> Self {
        Self {
            snapshot: Arc::default(),
            version: None,
            checked: None,
            stale: true,
            rule_stamps: HashMap::new(),
            action_stamps: HashMap::new(),
        }
    }

    pub fn invalidate(&mut self) {
        self.stale = true;
    }

    /// The current snapshot, reloaded first when it may be out of date.
    pub async fn get(&mut self, store: &Store, max_age: Duration) -> Result<Arc<Snapshot>, StoreError> {
        let fresh = self.checked.is_some_and(|at| at.elapsed() < max_age);
        if fresh && !self.stale {
            return Ok(self.snapshot.clone());
        }
        self.stale = false;
        self.checked = Some(Instant::now());
        let version = store.automation_version().await?;
        if self.version == Some(version) {
            return Ok(self.snapshot.clone());
        }
        self.reload(store).await?;
        self.version = Some(version);
        Ok(self.snapshot.clone())
    }

    async fn reload(&mut self, store: &Store) -> Result<(), StoreError> {
        let actions = store.list_actions().await?;
        let rules = store.list_rules(None).await?;
        let mut action_stamps = HashMap::with_capacity(actions.len());
        for row in actions {
            let entry = match self.action_stamps.remove(&row.action_ref) {
                Some((stamp, compiled)) if stamp == row.updated_at => compiled,
                _ => compile_action(&row.spec),
            };
            action_stamps.insert(row.action_ref, (row.updated_at, entry));
        }
        let mut rule_stamps = HashMap::with_capacity(rules.len());
        let mut by_trigger: HashMap<String, Vec<RuleEntry>> = HashMap::new();
        for row in rules {
            let entry = match self.rule_stamps.remove(&row.rule_ref) {
                Some((stamp, compiled, _)) if stamp == row.updated_at => compiled,
                _ => compile_rule(&row.rule_ref, &row.spec),
            };
            if row.enabled {
                by_trigger
                    .entry(row.trigger_ref.clone())
                    .or_default()
                    .push(entry.clone());
            }
            rule_stamps.insert(row.rule_ref, (row.updated_at, entry, row.trigger_ref));
        }
        self.snapshot = Arc::new(Snapshot {
            rules: by_trigger.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
            actions: action_stamps.iter().map(|(k, (_, a))| (k.clone(), a.clone())).collect(),
        });
        self.action_stamps = action_stamps;
        self.rule_stamps = rule_stamps;
        Ok(())
    }
}

fn compile_action(spec: &str) -> Result<CompiledAction, String> {
    let spec: ActionSpec = serde_json::from_str(spec).map_err(|e| format!("stored action does not parse: {e}"))?;
    spec.compile()
        .map_err(|e| format!("action {} does not compile: {e}", spec.action_ref))
}

fn compile_rule(rule_ref: &str, spec: &str) -> RuleEntry {
    let parsed: RuleSpec =
        serde_json::from_str(spec).map_err(|e| (rule_ref.to_owned(), format!("stored rule does not parse: {e}")))?;
    parsed
        .compile()
        .map_err(|e| (rule_ref.to_owned(), format!("rule does not compile: {e}")))
}
