//! Loading packs from disk: `<packs_dir>/<pack>/pack.yaml`,
//! `<packs_dir>/<pack>/triggers/*.yaml`, `actions/*.yaml` and `rules/*.yaml`
//! (all actions before any rule). Loading is idempotent, and a broken file is
//! reported with its path and line while the rest still loads.

use inlet_core::automation::ActionSpec;
use inlet_core::automation::{parse_action_yaml, parse_rule_yaml};
use inlet_core::expr::PayloadSchema;
use inlet_core::pack::{PackError, parse_manifest, parse_trigger};
use inlet_core::seal::MasterKey;
use inlet_store::{NewTrigger, Store};
use std::path::Path;

#[derive(Debug, Default)]
pub struct PackReport {
    pub packs: usize,
    pub triggers_created: usize,
    pub triggers_seen: usize,
    pub actions_seen: usize,
    pub rules_seen: usize,
    pub errors: Vec<PackError>,
}

pub async fn load_packs(dir: &Path, store: &Store, master_key: &MasterKey) -> anyhow::Result<PackReport> {
    let mut report = PackReport::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::info!(dir = %dir.display(), "no packs directory; skipping packs");
        return Ok(report);
    };
    let mut pack_dirs: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    pack_dirs.sort();
    let mut action_files = Vec::new();
    let mut rule_files = Vec::new();
    for pack_dir in pack_dirs {
        let manifest_path = pack_dir.join("pack.yaml");
        let manifest = match read(&manifest_path).and_then(|text| parse_manifest(&text, &shown(&manifest_path))) {
            Ok(manifest) => manifest,
            Err(err) => {
                report.errors.push(err);
                continue;
            }
        };
        report.packs += 1;
        for path in yaml_files(&pack_dir.join("triggers")) {
            let trigger = match read(&path).and_then(|text| parse_trigger(&text, &shown(&path), &manifest.name)) {
                Ok(trigger) => trigger,
                Err(err) => {
                    report.errors.push(err);
                    continue;
                }
            };
            if let Some(schema) = &trigger.payload_schema
                && let Err(err) = PayloadSchema::compile(schema)
            {
                report.errors.push(PackError {
                    path: shown(&path),
                    line: None,
                    message: format!("payload_schema: {err}"),
                });
                continue;
            }
            let new = NewTrigger {
                trigger_ref: trigger.trigger_ref.to_string(),
                pack: manifest.name.clone(),
                label: trigger.label.unwrap_or(trigger.name),
                description: trigger.description,
                payload_schema: trigger.payload_schema.map(|s| s.to_string()),
            };
            report.triggers_seen += 1;
            if store.upsert_trigger(&new).await? {
                report.triggers_created += 1;
            }
        }
        for path in yaml_files(&pack_dir.join("actions")) {
            action_files.push((manifest.name.clone(), path));
        }
        for path in yaml_files(&pack_dir.join("rules")) {
            rule_files.push((manifest.name.clone(), path));
        }
    }
    for (pack, path) in action_files {
        let loaded = read(&path)
            .and_then(|text| parse_action_yaml(&text, &shown(&path)))
            .and_then(|spec| in_pack(&path, &pack, spec.pack().to_owned(), spec))
            .and_then(|spec| {
                let new = crate::api::new_action(&spec, master_key).map_err(|e| refused(&path, e))?;
                Ok((spec, new))
            });
        match loaded {
            Ok((spec, new)) => {
                // Sealing draws a fresh nonce, so compare the opened stored spec
                // to keep reloading an unchanged pack a no-op.
                let unchanged = store
                    .get_action(&spec.action_ref)
                    .await?
                    .and_then(|row| serde_json::from_str::<ActionSpec>(&row.spec).ok())
                    .and_then(|stored| stored.opened(master_key).ok())
                    .is_some_and(|stored| stored == spec);
                if !unchanged {
                    store.upsert_action(&new).await?;
                }
                report.actions_seen += 1;
            }
            Err(err) => report.errors.push(err),
        }
    }
    for (pack, path) in rule_files {
        let loaded = read(&path)
            .and_then(|text| parse_rule_yaml(&text, &shown(&path)))
            .and_then(|spec| in_pack(&path, &pack, spec.pack().to_owned(), spec))
            .and_then(|spec| crate::api::new_rule(&spec).map_err(|e| refused(&path, e)));
        let new = match loaded {
            Ok(new) => new,
            Err(err) => {
                report.errors.push(err);
                continue;
            }
        };
        if store.get_action(&new.action_ref).await?.is_none() {
            report.errors.push(PackError {
                path: shown(&path),
                line: None,
                message: format!("action: no action {}", new.action_ref),
            });
            continue;
        }
        store.upsert_rule(&new).await?;
        report.rules_seen += 1;
    }
    for err in &report.errors {
        tracing::error!("pack file not loaded: {err}");
    }
    Ok(report)
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn read(path: &Path) -> Result<String, PackError> {
    std::fs::read_to_string(path).map_err(|e| PackError {
        path: shown(path),
        line: None,
        message: e.to_string(),
    })
}

fn yaml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|ext| ext == "yaml" || ext == "yml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn refused(path: &Path, err: inlet_core::expr::ExprError) -> PackError {
    PackError {
        path: shown(path),
        line: None,
        message: err.to_string(),
    }
}

/// A pack's actions and rules are named `<pack>.<name>`.
fn in_pack<T>(path: &Path, pack: &str, spec_pack: String, spec: T) -> Result<T, PackError> {
    if spec_pack == pack {
        Ok(spec)
    } else {
        Err(PackError {
            path: shown(path),
            line: None,
            message: format!("ref must start with `{pack}.` (the pack's name)"),
        })
    }
}
