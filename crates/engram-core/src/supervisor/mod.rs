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
//!
//! Rooms: this file (the supervisor a runtime holds: what each learner is
//! wanted to do, and the files it keeps), `process` (the life of one
//! learner's process: start, output, restart, stop).

mod process;
#[cfg(test)]
mod tests;

use crate::wire::Event;
use crate::wire::LearnerCommand;
use crate::wire::{ProcessPhase, ProcessStatus};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

#[cfg(test)]
use process::write_pid_file;
use process::{Ctx, kill_group, process_start_time, supervise};

/// The wait before restarting a process that made progress.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between restarts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process that ran this long counts as having made progress.
pub(super) const STEADY: Duration = Duration::from_secs(60);
/// How long a stopped process has between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// Output lines kept in memory per learner (all of it goes to its log file).
pub(super) const OUTPUT_LINES: usize = 40;
/// A longer line is cut into pieces of this many bytes.
pub(super) const MAX_LINE_BYTES: usize = 2000;
/// A log file past this size becomes `<name>.log.1` (the one before goes).
pub(super) const LOG_ROTATE_BYTES: u64 = 4 << 20;
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
pub(super) enum Want {
    Run(u64),
    Stop,
}

/// One supervised learner.
pub(super) struct Slot {
    command: LearnerCommand,
    want: watch::Sender<Want>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// What the task and the callers share.
pub(super) struct Shared {
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
