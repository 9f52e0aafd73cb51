//! Rules by trigger and compiled actions by ref. Reloaded only when the store's
//! automation version changes (checked at most once per poll interval, or at once
//! after a local change); unchanged specs keep their compiled form. A rule is
//! compiled when an event of its trigger is first evaluated (see [`StoredRule`]),
//! so the rules of triggers that receive nothing hold no compiled form.

use inlet_core::automation::{ActionSpec, CompiledAction, StoredRule};
use inlet_core::seal::MasterKey;
use inlet_store::{AutomationVersion, Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Snapshot {
    /// Enabled rules per trigger.
    pub rules: HashMap<String, Arc<Vec<Arc<StoredRule>>>>,
    pub actions: HashMap<String, Result<CompiledAction, String>>,
}

pub struct Cache {
    /// Opens the signing secrets sealed in stored actions.
    master_key: MasterKey,
    snapshot: Arc<Snapshot>,
    version: Option<AutomationVersion>,
    checked: Option<Instant>,
    stale: bool,
    rule_stamps: HashMap<String, (i64, Arc<StoredRule>)>,
    action_stamps: HashMap<String, (i64, Result<CompiledAction, String>)>,
}

impl Cache {
    pub fn new(master_key: MasterKey) -> Self {
        Self {
            master_key,
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
                _ => compile_action(&row.spec, &self.master_key),
            };
            action_stamps.insert(row.action_ref, (row.updated_at, entry));
        }
        let mut rule_stamps = HashMap::with_capacity(rules.len());
        let mut by_trigger: HashMap<String, Vec<Arc<StoredRule>>> = HashMap::new();
        for row in rules {
            let rule = match self.rule_stamps.remove(&row.rule_ref) {
                Some((stamp, rule)) if stamp == row.updated_at => rule,
                _ => Arc::new(StoredRule::new(row.rule_ref.clone(), row.spec)),
            };
            if row.enabled {
                by_trigger.entry(row.trigger_ref).or_default().push(rule.clone());
            }
            rule_stamps.insert(row.rule_ref, (row.updated_at, rule));
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

fn compile_action(spec: &str, master_key: &MasterKey) -> Result<CompiledAction, String> {
    let sealed: ActionSpec = serde_json::from_str(spec).map_err(|e| format!("stored action does not parse: {e}"))?;
    let spec = sealed
        .opened(master_key)
        .map_err(|e| format!("action {}: signing secret: {e}", sealed.action_ref))?;
    spec.compile()
        .map_err(|e| format!("action {} does not compile: {e}", spec.action_ref))
}
