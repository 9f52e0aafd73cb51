//! Loading packs from disk: `<packs_dir>/<pack>/pack.yaml` and
//! `<packs_dir>/<pack>/triggers/*.yaml`. Loading is idempotent, and a broken
//! file is reported with its path and line while the rest still loads.

use inlet_core::expr::PayloadSchema;
use inlet_core::pack::{PackError, parse_manifest, parse_trigger};
use inlet_store::{NewTrigger, Store};
use std::path::Path;

#[derive(Debug, Default)]
pub struct PackReport {
    pub packs: usize,
    pub triggers_created: usize,
    pub triggers_seen: usize,
    pub errors: Vec<PackError>,
}

pub async fn load_packs(dir: &Path, store: &Store) -> anyhow::Result<PackReport> {
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
