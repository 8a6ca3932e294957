//! Supervision: Engram starts a learner's command, restarts it with backoff
//! when it dies (a kill -9 included) so it resumes from its last durable
//! save, stops it before a restore of its state and starts it after, and
//! keeps its status and last output lines.
//!
//! Each supervised learner has one task that owns its process. The process
//! runs in its own process group, so a stop (SIGTERM, then SIGKILL after
//! [`STOP_GRACE`]) reaches whatever it started too; its environment
//! names the data directory (`ENGRAM_DATA_DIR`) and the learner
//! (`ENGRAM_LEARNER`), which is all the client needs to find Engram.
//!
//! Backoff: a process that made a durable save, or ran a minute, before it
//! died is restarted after [`FIRST_BACKOFF`]; one that keeps dying without
//! progress waits twice as long each time, up to [`MAX_BACKOFF`]. A process
//! that exits with status 0 has finished and is left alone.
//!
//! If Engram itself is killed, its learners live on (training goes on; their
//! client spools). The next start finds them through the pid files in
//! `<data dir>/learners/` and stops them before it takes their spooled saves
//! in and starts them again — never two copies of one learner.

use crate::wire::Event;
use crate::wire::LearnerCommand;
use crate::wire::{ProcessPhase, ProcessStatus};
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::{broadcast, watch};

/// The wait before restarting a process that made progress.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between restarts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process that ran this long counts as having made progress.
const STEADY: Duration = Duration::from_secs(60);
/// How long a stopped process has between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// Output lines kept in memory per learner (all of it goes to its log file).
const OUTPUT_LINES: usize = 40;
/// A longer line is cut into pieces of this many bytes.
const MAX_LINE_BYTES: usize = 2000;
/// A log file past this size becomes `<name>.log.1` (the one before goes).
const LOG_ROTATE_BYTES: u64 = 4 << 20;
/// The directory, under the data directory, of pid and log files.
pub const DIR: &str = "learners";

impl ProcessStatus {
    fn new() -> ProcessStatus {
        ProcessStatus {
            phase: ProcessPhase::Stopped,
            pid: None,
            started_at_ms: None,
            restarts: 0,
            last_exit: None,
            last_exit_at_ms: None,
            next_start_at_ms: None,
            output: Vec::new(),
        }
    }
}

/// What the user (or a restore) wants of a learner's process. Each start
/// carries a new number, so starting a finished learner is a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Run(u64),
    Stop,
}

/// One supervised learner.
struct Slot {
    command: LearnerCommand,
    want: watch::Sender<Want>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// What the task and the callers share.
struct Shared {
    status: Mutex<ProcessStatus>,
    output: Mutex<VecDeque<String>>,
    /// When the learner last saved durably (ms; 0: never).
    saved_at_ms: AtomicI64,
    /// The phase, to wait on.
    phase: watch::Sender<ProcessPhase>,
    /// How often a start was tried (to wait for one).
    attempts: watch::Sender<u64>,
    /// Held from "is it wanted running?" to "it runs": a stop that comes
    /// in between waits for it, and then finds it running.
    gate: Mutex<()>,
}

/// Supervises the learners that have a command.
pub struct Supervisor {
    dir: PathBuf,
    events: broadcast::Sender<Event>,
    slots: Mutex<BTreeMap<String, Slot>>,
    /// Between SIGTERM and SIGKILL.
    grace: Duration,
    /// Set by the front door once its learner API listens.
    active: AtomicBool,
    starts: AtomicU64,
}

impl Supervisor {
    pub fn new(dir: &Path, events: broadcast::Sender<Event>) -> Supervisor {
        Supervisor {
            dir: dir.to_path_buf(),
            events,
            slots: Mutex::new(BTreeMap::new()),
            grace: STOP_GRACE,
            active: AtomicBool::new(false),
            starts: AtomicU64::new(1),
        }
    }

    /// The same, with another stop grace period (tests).
    pub fn with_grace(mut self, grace: Duration) -> Supervisor {
        self.grace = grace;
        self
    }

    /// True once processes may start (the learner API is listening).
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    /// Starts supervising: each command runs (if `autostart`) from now on.
    pub fn activate(&self, commands: Vec<(String, LearnerCommand)>) {
        self.active.store(true, Ordering::SeqCst);
        for (name, cmd) in commands {
            self.supervise(&name, cmd);
        }
    }

    /// Supervises `name` with `cmd` (replacing a different earlier command:
    /// its process is stopped first); starts it if `cmd.autostart`.
    pub fn supervise(&self, name: &str, cmd: LearnerCommand) {
        if !self.is_active() {
            return;
        }
        let Ok(mut slots) = self.slots.lock() else {
            return;
        };
        if let Some(slot) = slots.get(name) {
            if slot.command.argv == cmd.argv && slot.command.workdir == cmd.workdir {
                if cmd.autostart {
                    let _ = slot.want.send(Want::Run(self.next_start()));
                }
                return;
            }
            // A new command: the old process stops (its task ends) first.
            let old = slots.remove(name);
            if let Some(old) = old {
                let _ = old.want.send(Want::Stop);
                drop(old.want);
            }
        }
        let first = if cmd.autostart {
            Want::Run(self.next_start())
        } else {
            Want::Stop
        };
        let (want, want_rx) = watch::channel(first);
        let (phase, _) = watch::channel(ProcessPhase::Stopped);
        let shared = Arc::new(Shared {
            status: Mutex::new(ProcessStatus::new()),
            output: Mutex::new(VecDeque::new()),
            saved_at_ms: AtomicI64::new(0),
            phase,
            attempts: watch::channel(0).0,
            gate: Mutex::new(()),
        });
        let task = tokio::spawn(supervise(
            Ctx {
                name: name.to_string(),
                command: cmd.clone(),
                dir: self.dir.clone(),
                events: self.events.clone(),
                shared: shared.clone(),
                grace: self.grace,
            },
            want_rx,
        ));
        slots.insert(
            name.to_string(),
            Slot {
                command: cmd,
                want,
                shared,
                task,
            },
        );
    }

    fn next_start(&self) -> u64 {
        self.starts.fetch_add(1, Ordering::SeqCst)
    }

    /// Supervises `name` with `cmd` (replacing a different earlier command,
    /// whose process is stopped first) and, if `cmd.autostart`, starts it
    /// and waits as [`Supervisor::start_and_wait`] does.
    pub async fn supervise_and_start(&self, name: &str, cmd: LearnerCommand) {
        let start = cmd.autostart;
        if self.with_slot(name, |s| {
            s.command.argv != cmd.argv || s.command.workdir != cmd.workdir
        }) == Some(true)
        {
            self.remove(name).await;
        }
        self.supervise(
            name,
            LearnerCommand {
                autostart: false,
                ..cmd
            },
        );
        if start {
            self.start_and_wait(name).await;
        }
    }

    /// Starts `name` as [`Supervisor::start`] does, and waits (at most a few
    /// seconds) until the start was tried: the answer then shows the
    /// process running, or why it could not start.
    pub async fn start_and_wait(&self, name: &str) {
        let attempts = self.with_slot(name, |s| s.shared.attempts.subscribe());
        let Some(mut attempts) = attempts else {
            return;
        };
        let before = *attempts.borrow_and_update();
        if self.start(name) {
            let _ =
                tokio::time::timeout(Duration::from_secs(5), attempts.wait_for(|n| *n > before))
                    .await;
        }
    }

    /// Starts a supervised learner's process now (a finished or stopped
    /// one too; a restarting one without waiting). False if not supervised.
    pub fn start(&self, name: &str) -> bool {
        let n = self.next_start();
        self.with_slot(name, |s| {
            let _ = s.want.send(Want::Run(n));
        })
        .is_some()
    }

    /// Stops a learner's process and waits until it has exited.
    pub async fn stop(&self, name: &str) {
        let shared = self.with_slot(name, |s| {
            let _ = s.want.send(Want::Stop);
            s.shared.clone()
        });
        if let Some(shared) = shared {
            // A start in progress has published `running` once the gate is free.
            drop(shared.gate.lock());
            let mut phase = shared.phase.subscribe();
            let _ = phase
                .wait_for(|p| !matches!(p, ProcessPhase::Running | ProcessPhase::Stopping))
                .await;
        }
    }

    /// Stops supervising a learner: its process is stopped and its task ends.
    pub async fn remove(&self, name: &str) {
        self.stop(name).await;
        let slot = self.slots.lock().ok().and_then(|mut s| s.remove(name));
        if let Some(slot) = slot {
            drop(slot.want);
            let _ = slot.task.await;
        }
    }

    /// Stops the given learners' processes for a restore; returns the ones
    /// that were wanted running, to [`Supervisor::resume`] after it.
    pub async fn pause(&self, names: &[String]) -> Vec<String> {
        let mut paused = Vec::new();
        for name in names {
            let wanted = self.with_slot(name, |s| matches!(*s.want.borrow(), Want::Run(_)));
            if wanted == Some(true) {
                self.stop(name).await;
                paused.push(name.clone());
            }
        }
        paused
    }

    /// Starts again what [`Supervisor::pause`] stopped (answers once each
    /// start was tried).
    pub async fn resume(&self, names: &[String]) {
        for name in names {
            self.start_and_wait(name).await;
        }
    }

    /// Stops every process and ends supervision (the runtime is stopping).
    /// Every process is told at once, so N learners take one grace period.
    pub async fn shutdown(&self) {
        self.active.store(false, Ordering::SeqCst);
        let slots: Vec<Slot> = self
            .slots
            .lock()
            .map(|mut s| std::mem::take(&mut *s).into_values().collect())
            .unwrap_or_default();
        for s in &slots {
            let _ = s.want.send(Want::Stop);
        }
        for s in slots {
            drop(s.want);
            let _ = s.task.await;
        }
    }

    /// Notes a durable save (progress, for the backoff).
    pub fn note_save(&self, name: &str) {
        self.with_slot(name, |s| {
            s.shared
                .saved_at_ms
                .store(crate::now_ms(), Ordering::SeqCst)
        });
    }

    /// The process of a supervised learner, with its last output lines.
    pub fn status(&self, name: &str) -> Option<ProcessStatus> {
        self.with_slot(name, |s| {
            let mut st = s
                .shared
                .status
                .lock()
                .map(|s| s.clone())
                .unwrap_or_else(|_| ProcessStatus::new());
            st.output = s
                .shared
                .output
                .lock()
                .map(|o| o.iter().cloned().collect())
                .unwrap_or_default();
            st
        })
    }

    fn with_slot<T>(&self, name: &str, f: impl FnOnce(&Slot) -> T) -> Option<T> {
        self.slots.lock().ok()?.get(name).map(f)
    }
}

/// What one learner's task works with.
struct Ctx {
    name: String,
    command: LearnerCommand,
    dir: PathBuf,
    events: broadcast::Sender<Event>,
    shared: Arc<Shared>,
    grace: Duration,
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
struct LogFile {
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
enum Ended {
    /// It exited by itself.
    Died(std::io::Result<std::process::ExitStatus>),
    /// It was stopped.
    Stopped,
}

/// The life of one supervised learner.
async fn supervise(ctx: Ctx, mut want: watch::Receiver<Want>) {
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
async fn wait_to_restart(ctx: &Ctx, want: &mut watch::Receiver<Want>, delay: Duration) -> bool {
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
async fn until_stop(want: &mut watch::Receiver<Want>) {
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
async fn terminate(child: &mut tokio::process::Child, pid: Option<u32>, grace: Duration) {
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
fn kill_group(pid: u32, hard: bool) {
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
async fn read_lines<R: tokio::io::AsyncRead + Unpin>(
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

fn describe(status: std::process::ExitStatus) -> String {
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
fn write_pid_file(path: &Path, pid: u32) {
    let start = process_start_time(pid).unwrap_or_default();
    if let Err(e) = std::fs::write(path, format!("{pid} {start}\n")) {
        tracing::warn!(path = %path.display(), error = %e, "could not write a learner's pid file");
    }
}

/// A process's start time from `/proc/<pid>/stat` (field 22), on Linux.
fn process_start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields
    // after it are counted from its last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_string)
}

/// A supervised learner's output: `<data dir>/learners/<name>.log` (the
/// one before it, rotated, beside it as `<name>.log.1`).
pub fn log_path(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(DIR).join(format!("{name}.log"))
}

/// Removes a deleted learner's output (its log and the rotated one).
/// Best effort: what cannot be removed is only left behind.
pub fn remove_logs(data_dir: &Path, name: &str) {
    let log = log_path(data_dir, name);
    for path in [log.with_extension("log.1"), log] {
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %path.display(), error = %e, "a deleted learner's log stays");
        }
    }
}

/// Stops learner processes a previous run of Engram left behind (it was
/// killed, they were not). Runs at start, before spooled saves are taken in,
/// so no orphan adds to the spool after that and none runs beside the new
/// copy. Returns how many it stopped.
pub fn stop_orphans(data_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(data_dir.join(DIR)) else {
        return 0;
    };
    let mut stopped = 0;
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("pid") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut parts = text.split_whitespace();
        let pid = parts.next().and_then(|p| p.parse::<u32>().ok());
        let start = parts.next().map(str::to_string);
        if let (Some(pid), Some(start)) = (pid, start)
            && process_start_time(pid).as_deref() == Some(start.as_str())
        {
            tracing::warn!(pid, file = %path.display(), "stopping a learner left running by an earlier Engram");
            kill_group(pid, true);
            // It is gone when its /proc entry is (its new parent reaps it).
            let until = Instant::now() + Duration::from_secs(5);
            while process_start_time(pid).as_deref() == Some(start.as_str())
                && Instant::now() < until
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            stopped += 1;
        }
        let _ = std::fs::remove_file(&path);
    }
    stopped
}

#[cfg(test)]
mod tests;
