//! Databases for tests: a fresh SQLite file, or a fresh database in a
//! throwaway PostgreSQL cluster that this process starts from the `initdb` and
//! `postgres` binaries it finds (or `INLET_TEST_POSTGRES_URL`).
//!
//! Set `INLET_TEST_REQUIRE_POSTGRES=1` (CI does) to fail instead of skipping
//! when PostgreSQL is not available.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Which backends a test should run on: SQLite always, PostgreSQL when available.
pub async fn database_urls(dir: &Path) -> Vec<(String, String)> {
    let mut urls = vec![("sqlite".to_string(), sqlite_url(dir))];
    if let Some(url) = fresh_postgres_database().await {
        urls.push(("postgres".to_string(), url));
    }
    urls
}

/// Runs `test` against a freshly opened store on each backend, closing it after.
pub async fn each_backend<F, Fut>(test: F)
where
    F: Fn(crate::Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, url) in database_urls(dir.path()).await {
        eprintln!("-- backend {name}");
        let store = crate::Store::open(&url).await.expect("the store opens");
        test(store.clone()).await;
        store.close().await;
    }
}

/// An accepted request's log row, received at 1 µs; tests change what they need.
pub fn log_row(id: &str, trigger_ref: &str) -> crate::RequestLogRow {
    crate::RequestLogRow {
        id: id.into(),
        trigger_ref: Some(trigger_ref.into()),
        key_prefix: Some("wh_abcde".into()),
        received_at: 1,
        source_ip: "127.0.0.1".into(),
        method: "POST".into(),
        path: "/api/v1/webhooks/wh_...".into(),
        query: "{}".into(),
        headers: "{}".into(),
        body: b"{}".to_vec(),
        body_truncated: false,
        outcome: "accepted".into(),
        status_code: 200,
        message: String::new(),
        processing_us: 5,
        event_id: None,
    }
}

/// An accepted request on trigger `a.b` whose body is its event's payload, as
/// the receiver hands it over; the event has no rule waiting for it.
pub fn accepted_request(
    event_id: &str,
    log_id: &str,
    delivery_id: Option<&str>,
    payload: &str,
) -> crate::ReceiveRecord {
    let mut log = log_row(log_id, "a.b");
    log.body = payload.as_bytes().to_vec();
    log.event_id = Some(event_id.into());
    crate::ReceiveRecord {
        event: Some(crate::NewEvent {
            id: event_id.into(),
            trigger_ref: "a.b".into(),
            payload: payload.into(),
            metadata: "{}".into(),
            source: "webhook".into(),
            delivery_id: delivery_id.map(Into::into),
            created_at: 1,
        }),
        log,
        key_id: None,
    }
}

pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("inlet.db").display())
}

/// A new, empty database; `None` (after saying so loudly) when no PostgreSQL exists.
pub async fn fresh_postgres_database() -> Option<String> {
    let admin = match admin_url() {
        Some(url) => url,
        None => {
            if std::env::var("INLET_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("INLET_TEST_REQUIRE_POSTGRES=1 but no PostgreSQL could be started (see messages above)");
            }
            eprintln!(
                "\n*** PostgreSQL run SKIPPED: no initdb/postgres binaries found and INLET_TEST_POSTGRES_URL unset ***\n"
            );
            return None;
        }
    };
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "inlet_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        uuid::Uuid::now_v7().simple()
    );
    use sqlx::Connection;
    // The port opens before the cluster accepts sessions ("the database
    // system is starting up"): retry for a while.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut conn = loop {
        match sqlx::PgConnection::connect(admin).await {
            Ok(conn) => break conn,
            Err(err) if Instant::now() < deadline => {
                eprintln!("waiting for the test PostgreSQL: {err}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => panic!("connect to the test PostgreSQL: {err}"),
        }
    };
    sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create a test database");
    let base = admin.rsplit_once('/').map(|(base, _)| base).unwrap_or(admin);
    Some(format!("{base}/{name}"))
}

fn admin_url() -> Option<&'static String> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("INLET_TEST_POSTGRES_URL") {
            return Some(url);
        }
        match start_cluster() {
            Ok(url) => Some(url),
            Err(why) => {
                eprintln!("*** could not start a throwaway PostgreSQL: {why}");
                None
            }
        }
    })
    .as_ref()
}

fn find_bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path).find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
    });
    on_path.or_else(|| {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").is_file())
            .collect();
        dirs.sort();
        dirs.pop()
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Runs a PostgreSQL program, as the `postgres` user when we are root
/// (initdb and postgres refuse to run as root).
fn pg_command(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn start_cluster() -> Result<String, String> {
    let bin = find_bin_dir().ok_or("no initdb/postgres on PATH or under /usr/lib/postgresql/*/bin")?;
    let as_postgres = is_root();
    let dir = std::env::temp_dir().join(format!(
        "inlet-pg-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if as_postgres {
        let status = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("chown to the postgres user failed (is there a postgres user?)".into());
        }
    }
    let data = dir.join("data");
    let out = pg_command(as_postgres, &bin.join("initdb"))
        .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "-D"])
        .arg(&data)
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        listener.local_addr().map_err(|e| e.to_string())?.port()
    };
    // A watchdog shell stops the cluster and removes its files once this
    // test process is gone, so no server outlives the test run.
    let script = format!(
        "{postgres} -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=500 >{dir}/log 2>&1 & pg=$!; \
         while [ -d /proc/{pid} ] && kill -0 $pg 2>/dev/null; do sleep 0.5; done; \
         kill -INT $pg 2>/dev/null; wait $pg; rm -rf {dir}",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
        pid = std::process::id(),
    );
    let sh = Path::new("/bin/sh");
    pg_command(as_postgres, sh)
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start postgres: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
            return Err(format!("postgres did not start within 30 s: {log}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
}
