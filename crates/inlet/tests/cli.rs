//! The `inlet` binary as a user runs it: first start, tokens, migrate,
//! bad configuration, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn inlet(dir: &std::path::Path, database_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inlet"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("INLET_DATA_DIR", dir)
        .env("INLET_DATABASE_URL", database_url)
        .env("INLET_LISTEN", "127.0.0.1:0")
        .env("INLET_PACKS_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/../../packs"));
    cmd
}

/// Runs a command to completion, killing it if it outlives a minute (a
/// command that should fail but serves instead must not hang the suite).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts `serve` and reads stdout until the banner is complete.
fn start_serving(cmd: &mut Command) -> (Child, Vec<String>) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.contains("Press Ctrl-C to stop");
        lines.push(line);
        if done || Instant::now() > deadline {
            break;
        }
    }
    (child, lines)
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn each_database(test: impl Fn(&std::path::Path, &str)) {
    let scratch = tempfile::tempdir().unwrap();
    for (backend, url) in inlet_store::test_support::database_urls(scratch.path()).await {
        eprintln!("-- backend {backend}");
        let dir = tempfile::tempdir().unwrap();
        test(dir.path(), &url);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn first_start_prints_a_token_once_and_sigterm_exits_cleanly() {
    each_database(|dir, url| {
        let (mut child, lines) = start_serving(inlet(dir, url).arg("serve"));
        let banner = lines.join("\n");
        if !banner.contains("Inlet is running") {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("no banner: {banner}\nstderr: {err}");
        }
        let token_line = lines
            .iter()
            .position(|l| l.contains("First admin API token"))
            .expect("token printed");
        let token = lines[token_line + 1].trim().to_owned();
        assert!(token.starts_with("inlet_"), "{token}");
        sigterm(&child);
        let status = child.wait().unwrap();
        assert!(status.success(), "exit status {status:?}");

        if url.starts_with("sqlite") {
            let key_file = dir.join("master.key");
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }

        // A second start finds the token and prints none.
        let (mut child, lines) = start_serving(inlet(dir, url).arg("serve"));
        assert!(!lines.join("\n").contains("First admin API token"));
        sigterm(&child);
        assert!(child.wait().unwrap().success());

        // The printed token is stored only as a digest: the database file never holds it.
        if let Some(path) = url.strip_prefix("sqlite://") {
            let mut bytes = std::fs::read(path).unwrap();
            bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
            assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_created_listed_and_revoked_from_the_cli() {
    each_database(|dir, url| {
        let (ok, token, err) = run(inlet(dir, url).args(["token", "create", "--name", "ci"]));
        assert!(ok, "{err}");
        assert!(token.trim().starts_with("inlet_"));
        let (ok, listing, _) = run(inlet(dir, url).args(["token", "list"]));
        assert!(ok);
        assert!(listing.contains("ci") && listing.contains("active"), "{listing}");
        assert!(!listing.contains(token.trim()), "list never shows token values");
        let (ok, _, err) = run(inlet(dir, url).args(["token", "create", "--name", "ci"]));
        assert!(!ok && err.contains("already exists"), "{err}");
        let (ok, _, _) = run(inlet(dir, url).args(["token", "revoke", "ci"]));
        assert!(ok);
        let (_, listing, _) = run(inlet(dir, url).args(["token", "list"]));
        assert!(listing.contains("revoked"), "{listing}");
        let (ok, _, err) = run(inlet(dir, url).args(["token", "revoke", "nobody"]));
        assert!(!ok && err.contains("nobody"), "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_applies_migrations_and_bad_config_names_the_key() {
    each_database(|dir, url| {
        let (ok, out, err) = run(inlet(dir, url).arg("migrate"));
        assert!(ok, "{err}");
        assert!(out.contains("migrations applied"));
        let (ok, _, err) = run(inlet(dir, url).env("INLET_LISTEN", "not-an-address").arg("serve"));
        assert!(!ok);
        assert!(err.contains("INLET_LISTEN"), "{err}");
        let (ok, _, err) = run(inlet(dir, url).env("INLET_DATABASE_URL", "mysql://x").arg("serve"));
        assert!(!ok);
        assert!(err.contains("INLET_DATABASE_URL"), "{err}");
        let (ok, _, err) = run(inlet(dir, url).env("INLET_ADMIN_TOKEN", "short").arg("serve"));
        assert!(!ok);
        assert!(err.contains("INLET_ADMIN_TOKEN"), "{err}");
        let (ok, _, err) = run(inlet(dir, url).env("INLET_MASTER_KEY", "nope").arg("serve"));
        assert!(!ok);
        assert!(err.contains("INLET_MASTER_KEY"), "{err}");
    })
    .await;
}

#[test]
fn a_config_file_is_layered_under_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inlet.toml");
    let file_db = dir.path().join("from-file.db");
    std::fs::write(
        &file,
        format!(
            "database_url = \"sqlite://{}\"\nlog_retention_days = 3\n",
            file_db.display()
        ),
    )
    .unwrap();
    let mut cmd = inlet(dir.path(), "unused");
    cmd.env_remove("INLET_DATABASE_URL");
    let (ok, out, err) = run(cmd.args(["--config", file.to_str().unwrap(), "migrate"]));
    assert!(ok, "{err}");
    assert!(out.contains("from-file.db"), "the file sets database_url: {out}");
    let env_db = dir.path().join("from-env.db");
    let mut cmd = inlet(dir.path(), &format!("sqlite://{}", env_db.display()));
    let (ok, out, _) = run(cmd.args(["--config", file.to_str().unwrap(), "migrate"]));
    assert!(ok && out.contains("from-env.db"), "the environment wins: {out}");

    std::fs::write(&file, "log_retention_days = 0\n").unwrap();
    let (ok, _, err) = run(inlet(dir.path(), "sqlite://x").args(["--config", file.to_str().unwrap(), "serve"]));
    assert!(!ok && err.contains("log_retention_days"), "{err}");
    std::fs::write(&file, "listen = 5\n").unwrap();
    let mut cmd = inlet(dir.path(), "sqlite://x");
    cmd.env_remove("INLET_LISTEN");
    let (ok, _, err) = run(cmd.args(["--config", file.to_str().unwrap(), "serve"]));
    assert!(!ok && err.contains("listen"), "{err}");
    let (ok, _, err) = run(inlet(dir.path(), "sqlite://x").args(["--config", "/nonexistent.toml", "serve"]));
    assert!(!ok && err.contains("does not exist"), "{err}");
}
