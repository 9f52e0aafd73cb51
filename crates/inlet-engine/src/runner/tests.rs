use super::*;
use inlet_core::automation::{ActionSpec, CommandInvocation, HttpInvocation, SigningSecret};
use inlet_core::expr::Context;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

fn action(spec: Value) -> inlet_core::automation::CompiledAction {
    serde_json::from_value::<ActionSpec>(spec).unwrap().compile().unwrap()
}

fn sh(script: &str, timeout: Duration) -> CommandInvocation {
    CommandInvocation {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        env: BTreeMap::new(),
        stdin: None,
        working_dir: None,
        timeout,
    }
}

/// Whether a process is still running (gone or a zombie counts as dead).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
    }
}

/// Live processes of a process group.
fn group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
        // After the command: state, ppid, pgrp.
        if fields.get(2).and_then(|p| p.parse::<i32>().ok()) == Some(pgid) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path).unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn command_writes_a_file_from_templates() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.txt");
    let action = action(json!({
        "ref": "test.write",
        "runner": {
            "type": "command",
            "argv": ["sh", "-c", "printf '%s:%s:' \"$1\" \"$GREETING\" > \"$2\" && cat >> \"$2\"", "sh", "{{ params.version }}", "{{ params.path }}"],
            "env": {"GREETING": "hello {{ payload.who }}"},
            "stdin": "payload",
            "working_dir": "{{ params.dir }}"
        },
        "timeout_seconds": 10
    }));
    let payload = json!({"who": "world", "n": 1});
    let ctx = Context::new(&payload).with_params(&json!({
        "version": "1.4.2",
        "path": "out.txt",
        "dir": dir.path().to_str().unwrap(),
    }));
    let inv = action.render_command(&ctx).unwrap();
    let outcome = run_command(&inv, DEFAULT_OUTPUT_CAP).await;
    assert!(outcome.success(), "{outcome:?}");
    assert_eq!(outcome.exit_code, Some(0));
    let written = std::fs::read_to_string(&target).unwrap();
    let (head, json_part) = written.split_at("1.4.2:hello world:".len());
    assert_eq!(head, "1.4.2:hello world:");
    assert_eq!(serde_json::from_str::<Value>(json_part).unwrap(), payload);
}

#[tokio::test]
async fn non_zero_exit_is_failure_with_output() {
    let outcome = run_command(
        &sh("echo out; echo oops >&2; exit 3", Duration::from_secs(10)),
        DEFAULT_OUTPUT_CAP,
    )
    .await;
    assert_eq!(outcome.exit_code, Some(3));
    assert!(!outcome.success());
    assert_eq!(outcome.stdout, b"out\n");
    assert_eq!(outcome.stderr, b"oops\n");
    assert!(outcome.summary().contains("code 3"), "{}", outcome.summary());

    let outcome = run_command(&sh("kill -9 $$", Duration::from_secs(10)), 1024).await;
    assert_eq!((outcome.exit_code, outcome.signal), (None, Some(9)));
    assert!(!outcome.success());
}

#[tokio::test]
async fn program_that_cannot_start() {
    let mut inv = sh("true", Duration::from_secs(5));
    inv.argv = vec!["/nonexistent/inlet-test-program".into()];
    let outcome = run_command(&inv, 1024).await;
    assert!(!outcome.success());
    assert!(
        outcome
            .error
            .as_deref()
            .unwrap()
            .contains("cannot start /nonexistent/inlet-test-program")
    );

    let mut inv = sh("true", Duration::from_secs(5));
    inv.working_dir = Some("/nonexistent/dir".into());
    let outcome = run_command(&inv, 1024).await;
    assert!(
        outcome.error.as_deref().unwrap().contains("/nonexistent/dir"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn timeout_kills_the_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let group_file = dir.path().join("group");
    let bg_file = dir.path().join("bg");
    // A background sleep and a foreground one; the shell ignores SIGTERM, so only the
    // SIGKILL after the grace ends it.
    let script = format!(
        "trap '' TERM; echo $$ > {g}; sleep 30 & echo $! > {b}; sleep 30",
        g = group_file.display(),
        b = bg_file.display()
    );
    let opts = RunOptions {
        kill_grace: Duration::from_millis(300),
        ..RunOptions::default()
    };
    let started = std::time::Instant::now();
    let outcome = run_command_with(&sh(&script, Duration::from_millis(700)), opts, std::future::pending()).await;
    assert!(outcome.timed_out, "{outcome:?}");
    assert!(!outcome.success());
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(outcome.signal, Some(libc::SIGKILL), "{outcome:?}");
    assert!(outcome.summary().contains("timed out"));

    let pgid = read_pid(&group_file);
    let bg = read_pid(&bg_file);
    // Killed processes are reaped by whoever adopts them; give that a moment.
    for _ in 0..50 {
        if group_members(pgid).is_empty() && !alive(bg) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(bg), "the background sleep survived");
    assert!(
        group_members(pgid).is_empty(),
        "left running: {:?}",
        group_members(pgid)
    );
}

#[tokio::test]
async fn plain_timeout_uses_sigterm_first() {
    let outcome = run_command_with(
        &sh("sleep 30", Duration::from_millis(300)),
        RunOptions::default(),
        std::future::pending(),
    )
    .await;
    assert!(outcome.timed_out);
    assert!(outcome.duration < Duration::from_secs(3), "{:?}", outcome.duration);
}

#[tokio::test]
async fn cancel_kills_the_run() {
    let outcome = run_command_with(
        &sh("sleep 30", Duration::from_secs(60)),
        RunOptions::default(),
        tokio::time::sleep(Duration::from_millis(200)),
    )
    .await;
    assert!(outcome.cancelled && !outcome.timed_out, "{outcome:?}");
    assert!(!outcome.success());
    assert!(outcome.duration < Duration::from_secs(3));
}

#[tokio::test]
async fn dropping_the_run_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let group_file = dir.path().join("group");
    let script = format!("echo $$ > {}; sleep 30 & sleep 30", group_file.display());
    let inv = sh(&script, Duration::from_secs(60));
    let run = run_command(&inv, 1024);
    let _ = tokio::time::timeout(Duration::from_millis(500), run).await;
    let pgid = read_pid(&group_file);
    for _ in 0..50 {
        if group_members(pgid).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        group_members(pgid).is_empty(),
        "left running: {:?}",
        group_members(pgid)
    );
}

#[tokio::test]
async fn output_is_capped_without_blocking_the_program() {
    // 1 MiB on stdout, more than any pipe buffer: the program must not block.
    let outcome = run_command(
        &sh("head -c 1048576 /dev/zero; echo done >&2", Duration::from_secs(20)),
        1000,
    )
    .await;
    assert!(outcome.success(), "{outcome:?}");
    assert_eq!(outcome.stdout.len(), 1000);
    assert!(outcome.stdout_truncated);
    assert_eq!(outcome.stderr, b"done\n");
    assert!(!outcome.stderr_truncated);
}

#[tokio::test]
async fn large_stdin_is_written_and_closed() {
    let mut inv = sh("wc -c", Duration::from_secs(20));
    inv.stdin = Some(vec![b'x'; 300_000]);
    let outcome = run_command(&inv, 1024).await;
    assert!(outcome.success(), "{outcome:?}");
    assert_eq!(String::from_utf8_lossy(&outcome.stdout).trim(), "300000");

    // A program that does not read its input still runs.
    let mut inv = sh("echo ignored", Duration::from_secs(20));
    inv.stdin = Some(vec![b'x'; 300_000]);
    let outcome = run_command(&inv, 1024).await;
    assert!(outcome.success(), "{outcome:?}");
}

#[tokio::test]
async fn lines_are_streamed_live() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let opts = RunOptions {
        on_line: Some(tx),
        ..RunOptions::default()
    };
    let outcome = run_command_with(
        &sh(
            "echo one; echo two >&2; printf 'three\\r\\nfour'",
            Duration::from_secs(10),
        ),
        opts,
        std::future::pending(),
    )
    .await;
    assert!(outcome.success());
    let mut lines = Vec::new();
    while let Ok(line) = rx.try_recv() {
        lines.push((line.stream, line.line));
    }
    assert!(lines.contains(&(Stream::Stderr, "two".into())), "{lines:?}");
    let stdout: Vec<_> = lines
        .iter()
        .filter(|(s, _)| *s == Stream::Stdout)
        .map(|(_, l)| l.as_str())
        .collect();
    assert_eq!(stdout, ["one", "three", "four"]);
}

#[tokio::test]
async fn background_processes_do_not_hold_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let bg_file = dir.path().join("bg");
    let script = format!("sleep 30 & echo $! > {}; echo done", bg_file.display());
    let opts = RunOptions {
        drain_grace: Duration::from_millis(300),
        ..RunOptions::default()
    };
    let outcome = run_command_with(&sh(&script, Duration::from_secs(20)), opts, std::future::pending()).await;
    assert!(outcome.success(), "{outcome:?}");
    assert_eq!(outcome.stdout, b"done\n");
    assert!(outcome.duration < Duration::from_secs(5), "{:?}", outcome.duration);
    // Clean up the straggler ourselves.
    let bg = read_pid(&bg_file);
    unsafe {
        libc::kill(bg, libc::SIGKILL);
    }
}

// ---- HTTP ----

#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1:0 answering requests with the given statuses and
/// bodies in turn (the last one repeats). `None` as a status: never answer.
async fn serve(answers: Vec<(Option<u16>, Vec<u8>)>) -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (status, reply_body) = answers[n.min(answers.len() - 1)].clone();
            n += 1;
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let Ok(read) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..read]);
                    if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break pos;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let mut lines = head.split("\r\n");
                let mut request_line = lines.next().unwrap().split(' ');
                let method = request_line.next().unwrap().to_owned();
                let path = request_line.next().unwrap().to_owned();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |(_, v)| v.parse().unwrap());
                let mut body = buf[head_end + 4..].to_vec();
                while body.len() < length {
                    let Ok(read) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if read == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..read]);
                }
                let _ = tx.send(Received {
                    method,
                    path,
                    headers,
                    body,
                });
                let Some(status) = status else {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    reply_body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&reply_body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (base, rx)
}

fn client() -> reqwest::Client {
    build_client().unwrap()
}

#[tokio::test]
async fn http_success_status_set() {
    let (base, mut rx) = serve(vec![(Some(204), vec![]), (Some(201), b"made".to_vec())]).await;
    let action = action(json!({
        "ref": "test.notify",
        "runner": {"type": "http", "method": "POST", "url": format!("{base}/hook?x={{{{ params.x }}}}"),
            "headers": {"Content-Type": "application/json", "X-Custom": "{{ params.x }}"},
            "body": "{\"text\": \"{{ params.message }}\"}", "success_status": [200, 204]},
        "timeout_seconds": 5
    }));
    let ctx = Context::default().with_params(&json!({"message": "deployed", "x": "7"}));
    let inv = action.render_http(&ctx, None).unwrap();
    let outcome = run_http(&client(), &inv, DEFAULT_OUTPUT_CAP).await;
    assert_eq!(outcome.status, Some(204));
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(outcome.error, None);
    let got = rx.recv().await.unwrap();
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/hook?x=7");
    assert_eq!(got.header("x-custom"), Some("7"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert!(got.header("user-agent").unwrap().starts_with("Inlet/"));
    assert_eq!(got.body, br#"{"text": "deployed"}"#);
    assert_eq!(got.header("webhook-signature"), None);

    // 201 is a 2xx but not in the set.
    let outcome = run_http(&client(), &inv, DEFAULT_OUTPUT_CAP).await;
    assert_eq!(outcome.status, Some(201));
    assert!(!outcome.success);
    assert_eq!(outcome.body, b"made");
    assert!(outcome.summary().contains("not a success status"));
}

#[tokio::test]
async fn http_failure_and_body_cap() {
    let (base, _rx) = serve(vec![(Some(500), b"boom".to_vec()), (Some(200), vec![b'y'; 200_000])]).await;
    let inv = HttpInvocation {
        method: "GET".into(),
        url: format!("{base}/x"),
        headers: vec![],
        body: vec![],
        success_status: vec![],
        sign_secret: None,
        message_id: None,
        timeout: Duration::from_secs(5),
    };
    let outcome = run_http(&client(), &inv, DEFAULT_OUTPUT_CAP).await;
    assert_eq!((outcome.status, outcome.success), (Some(500), false));
    assert_eq!(outcome.body, b"boom");

    let outcome = run_http(&client(), &inv, DEFAULT_OUTPUT_CAP).await;
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(outcome.body.len(), DEFAULT_OUTPUT_CAP);
    assert!(outcome.body_truncated);
}

#[tokio::test]
async fn http_no_response() {
    // Nothing listens.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let mut inv = HttpInvocation {
        method: "POST".into(),
        url: format!("http://127.0.0.1:{port}/"),
        headers: vec![],
        body: b"x".to_vec(),
        success_status: vec![],
        sign_secret: None,
        message_id: None,
        timeout: Duration::from_secs(5),
    };
    let outcome = run_http(&client(), &inv, 1024).await;
    assert_eq!(outcome.status, None);
    assert!(!outcome.success);
    assert!(outcome.error.is_some(), "{outcome:?}");

    // Never answers: the timeout ends it.
    let (base, _rx) = serve(vec![(None, vec![])]).await;
    inv.url = format!("{base}/slow");
    inv.timeout = Duration::from_millis(400);
    let outcome = run_http(&client(), &inv, 1024).await;
    assert_eq!(outcome.status, None);
    assert!(outcome.error.as_deref().unwrap().contains("timed out"), "{outcome:?}");
    assert!(outcome.duration < Duration::from_secs(3));
}

#[tokio::test]
async fn http_signing_verifies() {
    let (base, mut rx) = serve(vec![(Some(200), vec![])]).await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let action = action(json!({
        "ref": "test.signed",
        "runner": {"type": "http", "url": format!("{base}/in"), "body": "{\"id\": {{ payload.id }}}",
            "sign": {"secret": secret}}
    }));
    let mut inv = action.render_http(&Context::new(&json!({"id": 42})), None).unwrap();
    inv.message_id = Some("exec_0192".into());
    let outcome = run_http(&client(), &inv, 1024).await;
    assert!(outcome.success, "{outcome:?}");
    let got = rx.recv().await.unwrap();
    assert_eq!(got.body, br#"{"id": 42}"#);
    assert_eq!(got.header("webhook-id"), Some("exec_0192"));
    let ts: i64 = got.header("webhook-timestamp").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - ts).abs() < 60);
    // Verify as a receiver would: HMAC-SHA256 over "{id}.{ts}.{body}" with the decoded secret.
    let expected = SigningSecret::parse(secret).unwrap().sign("exec_0192", ts, &got.body);
    let signature = got.header("webhook-signature").unwrap();
    assert!(signature.starts_with("v1,"));
    assert!(signature.split(' ').any(|s| s == expected));

    // Without a message id, one is made up.
    inv.message_id = None;
    run_http(&client(), &inv, 1024).await;
    let got = rx.recv().await.unwrap();
    assert!(got.header("webhook-id").unwrap().starts_with("msg_"));
}

#[test]
fn crypto_provider_installs_twice() {
    install_crypto_provider();
    install_crypto_provider();
    assert!(rustls::crypto::CryptoProvider::get_default().is_some());
}
