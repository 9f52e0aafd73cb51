//! Configuration: defaults, then an optional TOML file, then `INLET_*`
//! environment variables. A bad value stops start-up naming its key.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use inlet_core::net::{Cidr, TrustedProxies};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite database and the master key file live.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; defaults to SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Management API (and UI) address.
    pub listen: SocketAddr,
    /// Optional second address that serves only `/api/v1/webhooks/*`.
    pub public_listen: Option<SocketAddr>,
    /// Base of the webhook URLs handed out, e.g. `https://hooks.example.com`.
    pub public_url: Option<String>,
    /// Seeds the first admin token (for automation) instead of generating one.
    pub admin_token: Option<String>,
    /// 32 bytes as hex or base64; otherwise a key file in `data_dir`.
    pub master_key: Option<String>,
    pub packs_dir: PathBuf,
    /// Days the request log is kept.
    pub log_retention_days: u32,
    /// Proxies whose `X-Forwarded-For`/`Forwarded` headers are believed:
    /// a list in TOML, comma-separated in `INLET_TRUSTED_PROXIES`.
    #[serde(deserialize_with = "list_or_commas")]
    pub trusted_proxies: Vec<String>,
    /// How long a client may take to send its request headers.
    pub header_timeout_seconds: u64,
    /// How long a client may take to send a webhook body.
    pub body_timeout_seconds: u64,
    /// Requests to unknown keys one client address may make per minute
    /// before all its requests are refused for a while (key probing).
    pub unknown_key_limit_per_minute: u32,
    /// Rule evaluation and execution workers (the `[engine]` table).
    #[serde(default)]
    pub engine: inlet_engine::EngineConfig,
}

fn list_or_commas<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrCommas {
        List(Vec<String>),
        Commas(String),
    }
    Ok(match ListOrCommas::deserialize(deserializer)? {
        ListOrCommas::List(list) => list,
        ListOrCommas::Commas(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("inlet-data"),
            database_url: None,
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            public_listen: None,
            public_url: None,
            admin_token: None,
            master_key: None,
            packs_dir: PathBuf::from("packs"),
            log_retention_days: 7,
            trusted_proxies: Vec::new(),
            header_timeout_seconds: 10,
            body_timeout_seconds: 30,
            unknown_key_limit_per_minute: 60,
            engine: inlet_engine::EngineConfig::default(),
        }
    }
}

const ENV_KEYS: &[&str] = &[
    "data_dir",
    "database_url",
    "listen",
    "public_listen",
    "public_url",
    "admin_token",
    "master_key",
    "packs_dir",
    "log_retention_days",
    "trusted_proxies",
    "header_timeout_seconds",
    "body_timeout_seconds",
    "unknown_key_limit_per_minute",
];

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Layers defaults, `file` (when given) and the `INLET_*` environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError(format!("config file {} does not exist", file.display())));
            }
            figment = figment.merge(Toml::file(file));
        }
        // Only our own keys: other INLET_* variables (test settings, log
        // filters) are not configuration.
        figment = figment.merge(Env::prefixed("INLET_").only(ENV_KEYS));
        let config: Config = figment.extract().map_err(|e| {
            let key = e.path.join(".");
            let env_hint = if key.is_empty() {
                String::new()
            } else {
                format!(" (key `{key}`, env INLET_{})", key.to_ascii_uppercase())
            };
            ConfigError(format!("{}{env_hint}", e.kind))
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:") || url.starts_with("postgres:") || url.starts_with("postgresql:"))
        {
            return Err(ConfigError(
                "database_url (INLET_DATABASE_URL) must start with sqlite:// or postgres://".into(),
            ));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError(format!(
                "public_url (INLET_PUBLIC_URL) must start with http:// or https://, got {url:?}"
            )));
        }
        self.trusted_proxies()?;
        for (name, value) in [
            ("header_timeout_seconds", self.header_timeout_seconds),
            ("body_timeout_seconds", self.body_timeout_seconds),
            (
                "unknown_key_limit_per_minute",
                u64::from(self.unknown_key_limit_per_minute),
            ),
        ] {
            if value == 0 {
                return Err(ConfigError(format!(
                    "{name} (INLET_{}) must be at least 1",
                    name.to_ascii_uppercase()
                )));
            }
        }
        if self.log_retention_days == 0 {
            return Err(ConfigError(
                "log_retention_days (INLET_LOG_RETENTION_DAYS) must be at least 1".into(),
            ));
        }
        self.engine.validate().map_err(ConfigError)?;
        Ok(())
    }

    pub fn trusted_proxies(&self) -> Result<TrustedProxies, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|text| Cidr::parse(text))
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies::new)
            .map_err(|e| ConfigError(format!("trusted_proxies (INLET_TRUSTED_PROXIES): {e}")))
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("inlet.db").display()))
    }

    /// Base URL for handed-out webhook URLs, without a trailing slash.
    pub fn public_base_url(&self, bound_public: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{bound_public}"),
        }
    }
}
