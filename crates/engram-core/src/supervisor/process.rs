//! The life of one supervised learner's process: started in its own
//! process group, its output kept, restarted after a backoff when it dies,
//! stopped with SIGTERM then SIGKILL, paused around a restore.

use super::*;
use crate::wire::Event;
use crate::wire::LearnerCommand;
use crate::wire::{ProcessPhase, ProcessStatus};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::{broadcast, watch};

/// What one learner's task works with.
pub(super) struct Ctx {
    pub(super) name: String,
    pub(super) command: LearnerCommand,
    pub(super) dir: PathBuf,
    pub(super) events: broadcast::Sender<Event>,
    pub(super) shared: Arc<Shared>,
    pub(super) grace: Duration,
}

impl Ctx {
    fn update(&self, f: impl FnOnce(&mut ProcessStatus)) {
        let phase = {
            let Ok(mut st) = self.shared.status.lock() else {
                return;
            };
            let before = st.phase;
            f(&mut st);
            (before != st.phase).then_some(st.phase)
        };
        if let Some(p) = phase {
            self.shared.phase.send_replace(p);
            let _ = self.events.send(Event::LearnerProcess {
                learner: self.name.clone(),
                phase: p,
            });
        }
    }

    /// Counts a start as tried, once its outcome (running, or why not) is
    /// in the status: [`Supervisor::start_and_wait`] answers from then on.
    fn tried(&self) {
        self.shared.attempts.send_modify(|n| *n += 1);
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join(DIR).join(format!("{}.pid", self.name))
    }

    fn log_file(&self) -> PathBuf {
        log_path(&self.dir, &self.name)
    }

    fn spawn(&self) -> std::io::Result<tokio::process::Child> {
        let argv = &self.command.argv;
        let program = argv
            .first()
            .ok_or_else(|| std::io::Error::other("no program"))?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&argv[1..])
            .current_dir(&self.command.workdir)
            .env("ENGRAM_DATA_DIR", &self.dir)
            .env("ENGRAM_LEARNER", &self.name)
            // Python buffers a pipe's output; lines should show as they come.
            .env("PYTHONUNBUFFERED", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        cmd.spawn()
    }

    /// Adds a line to the kept output and the log file.
    fn line(&self, log: &Mutex<Option<LogFile>>, text: &str) {
        if let Ok(mut out) = self.shared.output.lock() {
            if out.len() == OUTPUT_LINES {
                out.pop_front();
            }
            out.push_back(text.to_string());
        }
        if let Ok(mut log) = log.lock()
            && let Some(l) = log.as_mut()
        {
            l.write_line(text);
        }
    }
}

/// A learner's log file, rotated at [`LOG_ROTATE_BYTES`].
pub(super) struct LogFile {
    path: PathBuf,
    file: std::fs::File,
    size: u64,
}

impl LogFile {
    fn open(path: PathBuf) -> Option<LogFile> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ok()?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Some(LogFile { path, file, size })
    }

    fn write_line(&mut self, text: &str) {
        if self.size >= LOG_ROTATE_BYTES {
            let _ = std::fs::rename(&self.path, self.path.with_extension("log.1"));
            if let Some(fresh) = LogFile::open(self.path.clone()) {
                *self = fresh;
            }
        }
        // Best effort: a full disk must not stop the learner.
        if writeln!(self.file, "{text}").is_ok() {
            self.size += text.len() as u64 + 1;
        }
    }
}

/// How a process ended.
pub(super) enum Ended {
    /// It exited by itself.
    Died(std::io::Result<std::process::ExitStatus>),
    /// It was stopped.
    Stopped,
}

/// The life of one supervised learner.
pub(super) async fn supervise(ctx: Ctx, mut want: watch::Receiver<Want>) {
    // Long by design: one loop is one process's life (wait to be wanted,
    // start, read its output, wait for its exit or a stop, back off); its
    // state — the child, the backoff, the log — lives in the loop's variables,
    // which pieces would pass around.
    let _ = std::fs::create_dir_all(ctx.dir.join(DIR));
    let log = Arc::new(Mutex::new(LogFile::open(ctx.log_file())));
    let mut backoff = FIRST_BACKOFF;
    loop {
        // Wait until it is wanted running.
        loop {
            if matches!(*want.borrow_and_update(), Want::Run(_)) {
                break;
            }
            ctx.update(|s| {
                s.phase = ProcessPhase::Stopped;
                s.next_start_at_ms = None;
            });
            if want.changed().await.is_err() {
                return;
            }
        }
        let started = Instant::now();
        let started_ms = crate::now_ms();
        let spawned = {
            let _gate = ctx.shared.gate.lock();
            if !matches!(*want.borrow(), Want::Run(_)) {
                continue;
            }
            let spawned = ctx.spawn();
            if let Ok(child) = &spawned {
                let pid = child.id();
                ctx.update(|s| {
                    s.phase = ProcessPhase::Running;
                    s.pid = pid;
                    s.started_at_ms = Some(started_ms);
                    s.next_start_at_ms = None;
                });
            }
            spawned
        };
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let why = format!("could not start {:?}: {e}", ctx.command.argv[0]);
                ctx.line(&log, &format!("[engram] {why}"));
                tracing::warn!(learner = %ctx.name, "{why}");
                ctx.update(|s| {
                    s.last_exit = Some(why);
                    s.last_exit_at_ms = Some(crate::now_ms());
                });
                ctx.tried();
                let delay = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                if !wait_to_restart(&ctx, &mut want, delay).await {
                    return;
                }
                continue;
            }
        };
        let pid = child.id();
        if let Some(pid) = pid {
            write_pid_file(&ctx.pid_file(), pid);
        }
        ctx.line(
            &log,
            &format!(
                "[engram] started {:?} (pid {})",
                ctx.command.argv,
                pid.unwrap_or(0)
            ),
        );
        ctx.tried();
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let output = async {
            let out = async {
                if let Some(o) = stdout {
                    read_lines(o, &ctx, &log).await;
                }
            };
            let err = async {
                if let Some(e) = stderr {
                    read_lines(e, &ctx, &log).await;
                }
            };
            tokio::join!(out, err);
        };
        let ended = {
            let waiter = async {
                tokio::select! {
                    r = child.wait() => Ended::Died(r),
                    _ = until_stop(&mut want) => {
                        ctx.update(|s| s.phase = ProcessPhase::Stopping);
                        terminate(&mut child, pid, ctx.grace).await;
                        Ended::Stopped
                    }
                }
            };
            tokio::pin!(output, waiter);
            let mut output_done = false;
            let ended = loop {
                tokio::select! {
                    e = &mut waiter => break e,
                    _ = &mut output, if !output_done => output_done = true,
                }
            };
            // Whatever the process left running in its group goes with it
            // (it would hold the output open, or train on beside the next copy).
            if let Some(pid) = pid {
                kill_group(pid, true);
            }
            if !output_done {
                // The last lines come after the exit.
                let _ = tokio::time::timeout(Duration::from_secs(2), &mut output).await;
            }
            ended
        };
        let _ = std::fs::remove_file(ctx.pid_file());
        let now = crate::now_ms();
        match ended {
            Ended::Stopped => {
                ctx.line(&log, "[engram] stopped");
                ctx.update(|s| {
                    s.phase = ProcessPhase::Stopped;
                    s.pid = None;
                    s.last_exit = Some("stopped by Engram".into());
                    s.last_exit_at_ms = Some(now);
                });
                backoff = FIRST_BACKOFF;
            }
            Ended::Died(r) => {
                let (why, success) = match r {
                    Ok(status) => (describe(status), status.success()),
                    Err(e) => (format!("lost: {e}"), false),
                };
                ctx.line(&log, &format!("[engram] {why}"));
                if success {
                    ctx.update(|s| {
                        s.phase = ProcessPhase::Finished;
                        s.pid = None;
                        s.last_exit = Some(why);
                        s.last_exit_at_ms = Some(now);
                    });
                    backoff = FIRST_BACKOFF;
                    // Done: wait for a start (or a stop) before anything else.
                    if want.changed().await.is_err() {
                        return;
                    }
                    continue;
                }
                let progressed = ctx.shared.saved_at_ms.load(Ordering::SeqCst) >= started_ms
                    || started.elapsed() >= STEADY;
                if progressed {
                    backoff = FIRST_BACKOFF;
                }
                let delay = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                tracing::warn!(learner = %ctx.name, restart_in_ms = delay.as_millis() as u64, "learner process {why}");
                ctx.update(|s| {
                    s.pid = None;
                    s.restarts += 1;
                    s.last_exit = Some(why);
                    s.last_exit_at_ms = Some(now);
                });
                if !wait_to_restart(&ctx, &mut want, delay).await {
                    return;
                }
            }
        }
    }
}

/// Waits out a backoff (phase `restarting`); a start skips it, a stop
/// ends it. False when supervision has ended.
pub(super) async fn wait_to_restart(
    ctx: &Ctx,
    want: &mut watch::Receiver<Want>,
    delay: Duration,
) -> bool {
    ctx.update(|s| {
        s.phase = ProcessPhase::Restarting;
        s.next_start_at_ms = Some(crate::now_ms() + delay.as_millis() as i64);
    });
    if *want.borrow_and_update() == Want::Stop {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        r = want.changed() => r.is_ok(),
    }
}

/// Returns when the process is wanted stopped (or supervision ends).
pub(super) async fn until_stop(want: &mut watch::Receiver<Want>) {
    loop {
        if *want.borrow_and_update() == Want::Stop {
            return;
        }
        if want.changed().await.is_err() {
            return;
        }
    }
}

/// SIGTERM to the process group; SIGKILL after `grace`.
pub(super) async fn terminate(
    child: &mut tokio::process::Child,
    pid: Option<u32>,
    grace: Duration,
) {
    if let Some(pid) = pid {
        kill_group(pid, false);
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        if let Some(pid) = pid {
            kill_group(pid, true);
        }
        let _ = child.kill().await;
    }
}

/// Signals a learner's process group (its leader's pid), ignoring a group
/// that is gone.
pub(super) fn kill_group(pid: u32, hard: bool) {
    #[cfg(unix)]
    {
        use rustix::process::{Pid, Signal, kill_process_group};
        if let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
            let sig = if hard { Signal::KILL } else { Signal::TERM };
            let _ = kill_process_group(p, sig);
        }
    }
    #[cfg(not(unix))]
    let _ = (pid, hard);
}

/// Reads a process's output, line by line, into the status and log.
pub(super) async fn read_lines<R: tokio::io::AsyncRead + Unpin>(
    mut out: R,
    ctx: &Ctx,
    log: &Mutex<Option<LogFile>>,
) {
    let mut buf = [0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match out.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' || line.len() >= MAX_LINE_BYTES {
                ctx.line(log, String::from_utf8_lossy(&line).trim_end_matches('\r'));
                line.clear();
                if b == b'\n' {
                    continue;
                }
            }
            line.push(b);
        }
    }
    if !line.is_empty() {
        ctx.line(log, &String::from_utf8_lossy(&line));
    }
}

pub(super) fn describe(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return format!("killed by signal {sig}");
        }
    }
    match status.code() {
        Some(c) => format!("exit status {c}"),
        None => "ended".into(),
    }
}

/// `<pid> <start time>`: the start time (Linux: clock ticks since boot)
/// tells the process apart from a later one that got the same pid.
pub(super) fn write_pid_file(path: &Path, pid: u32) {
    let start = process_start_time(pid).unwrap_or_default();
    if let Err(e) = std::fs::write(path, format!("{pid} {start}\n")) {
        tracing::warn!(path = %path.display(), error = %e, "could not write a learner's pid file");
    }
}

/// A process's start time from `/proc/<pid>/stat` (field 22), on Linux.
pub(super) fn process_start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields
    // after it are counted from its last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_string)
}
