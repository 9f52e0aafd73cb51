//! First-start work: the data directory, the master key, the database, the
//! first admin token and the packs.

use crate::cfg::Config;
use anyhow::{Context, bail};
use inlet_core::keys::ApiToken;
use inlet_core::seal::MasterKey;
use inlet_store::Store;
use std::io::Write;
use std::path::Path;

const MASTER_KEY_FILE: &str = "master.key";

pub fn prepare_data_dir(cfg: &Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))
}

/// `INLET_MASTER_KEY`, or the key file in the data directory (created with
/// mode 0600 on first start).
pub fn master_key(cfg: &Config) -> anyhow::Result<MasterKey> {
    if let Some(text) = &cfg.master_key {
        return MasterKey::parse(text).context("master_key (INLET_MASTER_KEY)");
    }
    let path = cfg.data_dir.join(MASTER_KEY_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        return MasterKey::parse(&text).with_context(|| format!("master key file {}", path.display()));
    }
    let (bytes, key) = MasterKey::generate();
    write_private_file(&path, hex::encode(bytes).as_bytes())?;
    tracing::info!(path = %path.display(), "created a new master key; back it up: sealed secrets cannot be opened without it");
    Ok(key)
}

fn write_private_file(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(content)?;
    file.sync_all()?;
    Ok(())
}

pub async fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    let url = cfg.database_url();
    Store::open(&url)
        .await
        .context("cannot open the database (database_url / INLET_DATABASE_URL)")
}

/// Makes sure an admin token exists. Returns a newly generated token, which
/// the caller prints once; it is stored only as a digest.
pub async fn ensure_admin_token(cfg: &Config, store: &Store) -> anyhow::Result<Option<ApiToken>> {
    if let Some(raw) = &cfg.admin_token {
        let token =
            ApiToken::from_operator(raw).map_err(|why| anyhow::anyhow!("admin_token (INLET_ADMIN_TOKEN) {why}"))?;
        if store.find_token(&token.digest()).await?.is_none() {
            // Named after the token's digest: another seeded token gets
            // another name, and the name says nothing about the token.
            let name = format!("admin-{}", &hex::encode(token.digest())[..12]);
            let id = uuid::Uuid::now_v7().to_string();
            store
                .create_token(&id, &name, &token.digest(), &token.display_prefix())
                .await?;
        }
        return Ok(None);
    }
    if store.count_active_tokens().await? > 0 {
        return Ok(None);
    }
    let token = create_token(store, "admin").await?;
    Ok(Some(token))
}

pub async fn create_token(store: &Store, name: &str) -> anyhow::Result<ApiToken> {
    if name.trim().is_empty() {
        bail!("a token needs a name");
    }
    let token = ApiToken::generate();
    store
        .create_token(
            &uuid::Uuid::now_v7().to_string(),
            name,
            &token.digest(),
            &token.display_prefix(),
        )
        .await
        .map_err(|e| match e {
            inlet_store::StoreError::Conflict => {
                anyhow::anyhow!("a token named {name:?} already exists")
            }
            other => other.into(),
        })?;
    Ok(token)
}
