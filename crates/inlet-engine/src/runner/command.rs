//! The command runner: a program started directly (no shell) in its own process group.

use inlet_core::automation::CommandInvocation;
use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};

/// After a timeout or a cancel, how long the process group has between SIGTERM and
/// SIGKILL.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);
/// After the program has exited, how long its output pipes may stay open (held by
/// processes it left running in the background) before the runner stops reading them.
pub const DEFAULT_DRAIN_GRACE: Duration = Duration::from_secs(2);
/// Longest line sent to a live follower; a longer one is sent in pieces.
const MAX_LINE: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of output, for following a run live (without its line break).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub stream: Stream,
    pub line: String,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Bytes kept of each of stdout and stderr; the rest is read and dropped so that the
    /// program never blocks on a full pipe.
    pub output_cap: usize,
    /// Receives the kept output line by line as it comes.
    pub on_line: Option<mpsc::UnboundedSender<OutputLine>>,
    pub kill_grace: Duration,
    pub drain_grace: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            output_cap: super::DEFAULT_OUTPUT_CAP,
            on_line: None,
            kill_grace: DEFAULT_KILL_GRACE,
            drain_grace: DEFAULT_DRAIN_GRACE,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutcome {
    /// The exit code; None when the program did not exit by itself (killed by a signal,
    /// or never started).
    pub exit_code: Option<i32>,
    /// The signal that ended the program, if one did.
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub cancelled: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub duration: Duration,
    /// Why the program could not be run (not found, not executable, bad working
    /// directory...).
    pub error: Option<String>,
}

impl CommandOutcome {
    /// Exit code 0, within the timeout.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && !self.cancelled && self.error.is_none()
    }

    /// A one-line account of how the run ended, for logs and execution records.
    pub fn summary(&self) -> String {
        if let Some(e) = &self.error {
            return e.clone();
        }
        let secs = self.duration.as_secs_f64();
        if self.timed_out {
            return format!("timed out after {secs:.1}s; process group killed");
        }
        if self.cancelled {
            return format!("cancelled after {secs:.1}s; process group killed");
        }
        match (self.exit_code, self.signal) {
            (Some(code), _) => format!("exited with code {code} after {secs:.1}s"),
            (None, Some(sig)) => format!("killed by signal {sig} after {secs:.1}s"),
            (None, None) => format!("ended after {secs:.1}s"),
        }
    }
}

/// Runs a command with the default options; see [`run_command_with`].
pub async fn run_command(inv: &CommandInvocation, output_cap: usize) -> CommandOutcome {
    let opts = RunOptions {
        output_cap,
        ..RunOptions::default()
    };
    run_command_with(inv, opts, std::future::pending()).await
}

/// Runs `inv.argv` directly (no shell) in a new process group, with `inv.env` added to
/// the server's environment (less its `INLET_*` variables: the master key and the rest
/// of the server's configuration are not the action's business), `inv.stdin` written
/// and closed, in `inv.working_dir`.
///
/// Past `inv.timeout`, or when `cancel` completes, the whole process group gets SIGTERM,
/// then SIGKILL after `kill_grace`. Dropping the returned future kills the group too.
/// A program that exits normally may leave background processes behind: they are left
/// alone, and their hold on the output pipes is waited out for at most `drain_grace`.
pub async fn run_command_with(
    inv: &CommandInvocation,
    opts: RunOptions,
    cancel: impl Future<Output = ()>,
) -> CommandOutcome {
    let start = Instant::now();
    let failed = |error: String| CommandOutcome {
        error: Some(error),
        duration: start.elapsed(),
        ..CommandOutcome::default()
    };
    let Some(program) = inv.argv.first() else {
        return failed("no program to run".into());
    };
    let mut cmd = Command::new(program);
    cmd.args(&inv.argv[1..]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("INLET_") {
            cmd.env_remove(&name);
        }
    }
    cmd.envs(&inv.env);
    if let Some(dir) = &inv.working_dir {
        cmd.current_dir(dir);
    }
    cmd.stdin(if inv.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped());
    cmd.stderr(Stdio::piped());
    cmd.process_group(0);

    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let place = match &inv.working_dir {
                Some(dir) => format!(" in {dir}"),
                None => String::new(),
            };
            return failed(format!("cannot start {program}{place}: {e}"));
        }
    };
    let Some(pid) = child.id() else {
        return failed(format!("{program} exited before it could be watched"));
    };
    let mut group = GroupGuard {
        pgid: pid as libc::pid_t,
        armed: true,
    };

    let stdin_task = match (inv.stdin.clone(), child.stdin.take()) {
        (Some(data), Some(mut pipe)) => Some(tokio::spawn(async move {
            // The program may exit without reading: a broken pipe is not our failure.
            let _ = pipe.write_all(&data).await;
            let _ = pipe.shutdown().await;
        })),
        _ => None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let stdout = child.stdout.take().map(|pipe| {
        tokio::spawn(capture(
            pipe,
            Stream::Stdout,
            opts.output_cap,
            opts.on_line.clone(),
            stop_rx.clone(),
        ))
    });
    let stderr = child.stderr.take().map(|pipe| {
        tokio::spawn(capture(
            pipe,
            Stream::Stderr,
            opts.output_cap,
            opts.on_line.clone(),
            stop_rx,
        ))
    });

    let mut timed_out = false;
    let mut cancelled = false;
    let status = tokio::select! {
        status = child.wait() => status,
        _ = tokio::time::sleep(inv.timeout) => {
            timed_out = true;
            terminate(&mut child, group.pgid, opts.kill_grace).await
        }
        _ = cancel => {
            cancelled = true;
            terminate(&mut child, group.pgid, opts.kill_grace).await
        }
    };
    group.armed = false;

    // Let the pipes drain; background processes may hold them open.
    let drain_until = tokio::time::Instant::now() + opts.drain_grace;
    let mut outcome = CommandOutcome {
        timed_out,
        cancelled,
        ..CommandOutcome::default()
    };
    for (task, stream) in [(stdout, Stream::Stdout), (stderr, Stream::Stderr)] {
        let Some(mut task) = task else { continue };
        let captured = match tokio::time::timeout_at(drain_until, &mut task).await {
            Ok(joined) => joined.unwrap_or_default(),
            Err(_) => {
                let _ = stop_tx.send(true);
                task.await.unwrap_or_default()
            }
        };
        match stream {
            Stream::Stdout => (outcome.stdout, outcome.stdout_truncated) = captured,
            Stream::Stderr => (outcome.stderr, outcome.stderr_truncated) = captured,
        }
    }
    drop(stop_tx);
    if let Some(task) = stdin_task {
        task.abort();
    }
    match status {
        Ok(status) => {
            outcome.exit_code = status.code();
            outcome.signal = status.signal();
        }
        Err(e) => outcome.error = Some(format!("waiting for {program} failed: {e}")),
    }
    outcome.duration = start.elapsed();
    outcome
}

/// Kills the process group when dropped while armed (the run's future was dropped).
struct GroupGuard {
    pgid: libc::pid_t,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            signal_group(self.pgid, libc::SIGKILL);
        }
    }
}

fn signal_group(pgid: libc::pid_t, signal: libc::c_int) {
    if pgid > 1 {
        // SAFETY: killpg has no memory-safety preconditions; a group that is already
        // gone gives ESRCH, which is fine.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

/// SIGTERM to the group, SIGKILL after the grace (and again once the leader is gone,
/// for members that ignored SIGTERM), reaping the leader.
async fn terminate(child: &mut Child, pgid: libc::pid_t, grace: Duration) -> std::io::Result<ExitStatus> {
    signal_group(pgid, libc::SIGTERM);
    let status = match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            signal_group(pgid, libc::SIGKILL);
            child.wait().await
        }
    };
    signal_group(pgid, libc::SIGKILL);
    status
}

/// Reads a pipe to its end (or until told to stop), keeping the first `cap` bytes and
/// sending kept lines to `on_line`. Returns the kept bytes and whether any were dropped.
async fn capture<R: AsyncRead + Unpin>(
    mut pipe: R,
    stream: Stream,
    cap: usize,
    on_line: Option<mpsc::UnboundedSender<OutputLine>>,
    mut stop: watch::Receiver<bool>,
) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut partial: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let send = |bytes: &[u8]| {
        if let Some(tx) = &on_line {
            let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
            let _ = tx.send(OutputLine {
                stream,
                line: String::from_utf8_lossy(bytes).into_owned(),
            });
        }
    };
    loop {
        let n = tokio::select! {
            read = pipe.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let take = n.min(cap - kept.len());
        if take < n {
            truncated = true;
        }
        if take == 0 {
            continue;
        }
        let chunk = &buf[..take];
        kept.extend_from_slice(chunk);
        if on_line.is_some() {
            partial.extend_from_slice(chunk);
            let mut start = 0;
            while let Some(pos) = partial[start..].iter().position(|b| *b == b'\n') {
                send(&partial[start..start + pos]);
                start += pos + 1;
            }
            partial.drain(..start);
            while partial.len() >= MAX_LINE {
                send(&partial[..MAX_LINE]);
                partial.drain(..MAX_LINE);
            }
        }
    }
    if !partial.is_empty() {
        send(&partial);
    }
    (kept, truncated)
}
