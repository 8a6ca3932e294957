//! The one task that owns the schedule and writes the store: autosave,
//! periodic backups (then retention), breakthrough backups, and commands.
//! `tokio::select!` over the next deadlines, the command channel and the
//! breakthrough channel; tests drive it with paused tokio time.

use super::engine_thread::{BreakthroughCut, EngineCmd, EngineHandle};
use super::{Command, RestoreReport, RuntimeOptions};
use crate::engines::EngineSet;
use crate::error::{Error, Result};
use crate::store::{BackupInfo, NewBackup, Store};
use crate::wire::{BackupKind, Breakthrough};
use crate::wire::{Event, Settings};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::{Instant, sleep_until};

/// The engines as they were at one instant (a clone taken on the engine thread).
#[derive(Clone)]
pub(crate) struct Cut {
    pub engines: EngineSet,
    /// When it was taken (Unix ms): live rows are stamped with it, so a cut
    /// never replaces a newer live state.
    pub at_ms: i64,
}

pub(crate) struct Scheduler {
    pub store: Arc<Mutex<Store>>,
    /// The writer lock, checked before each save and backup.
    pub lock: Arc<super::DataDirLock>,
    pub engine: EngineHandle,
    pub events: broadcast::Sender<Event>,
    pub opts: RuntimeOptions,
    pub commands: mpsc::UnboundedReceiver<Command>,
    pub breakthroughs: mpsc::UnboundedReceiver<BreakthroughCut>,
    /// Engines that failed on the engine thread: (engine, why).
    pub failures: mpsc::UnboundedReceiver<(String, String)>,
    /// The line of metric history saves are recorded on (a restore starts a new one).
    pub branch: AtomicI64,
    /// When the history was last compacted (Unix ms).
    pub compacted_at: AtomicI64,
    /// The offsite replicas' worker, woken after each backup commits.
    pub replicator: Arc<crate::replica::Replicator>,
    pub syncer: Arc<crate::fleet::Syncer>,
}

/// What every request to a stopped engine thread gets.
fn engine_stopped() -> Error {
    Error::RuntimeStopped("the engine thread is not running".into())
}

/// Compact the metric history at most this often.
const COMPACT_EVERY_MS: i64 = 60_000;

/// Breakthrough and manual backups that failed (disk full, …) and are
/// kept, with their cut, to be retried: a milestone or a backup the user
/// asked for is never lost to a transient failure. At most this many are
/// held (each holds a clone of the engines).
const MAX_PENDING_BREAKTHROUGHS: usize = 16;

/// A breakthrough or manual backup that has not committed yet.
struct Pending {
    cut: Cut,
    kind: BackupKind,
    label: Option<String>,
    breakthrough: Option<Breakthrough>,
}

/// Watches the wall clock against the monotonic one, to report a clock
/// set back (retention and ordering do not depend on it, but the user's
/// timeline dates do).
pub(crate) struct ClockWatch {
    mono: std::time::Instant,
    wall_ms: i64,
}

/// Backward steps smaller than this are jitter (NTP slews), not jumps.
const CLOCK_TOLERANCE_MS: i64 = 2_000;

impl ClockWatch {
    pub fn new(mono: std::time::Instant, wall_ms: i64) -> Self {
        ClockWatch { mono, wall_ms }
    }

    /// How far the wall clock went back since the last reading, when more
    /// than the tolerance: it advanced less than the monotonic clock did.
    pub fn went_back(&mut self, mono: std::time::Instant, wall_ms: i64) -> Option<i64> {
        let elapsed = mono.saturating_duration_since(self.mono).as_millis() as i64;
        let advanced = wall_ms - self.wall_ms;
        self.mono = mono;
        self.wall_ms = wall_ms;
        let back = elapsed - advanced;
        (back > CLOCK_TOLERANCE_MS).then_some(back)
    }
}

pub(crate) async fn run(mut s: Scheduler) {
    // Long by design: the one `select!` over every deadline, channel and
    // command, so the whole schedule reads in one place.
    let mut clock = ClockWatch::new(std::time::Instant::now(), crate::now_ms());
    let mut next_save = Instant::now() + s.opts.autosave;
    let mut next_backup = Instant::now() + s.opts.backup_every;
    let mut pending: Vec<Pending> = Vec::new();
    loop {
        tokio::select! {
            _ = sleep_until(next_save) => {
                next_save = Instant::now() + s.opts.autosave;
                if let Some(back) = clock.went_back(std::time::Instant::now(), crate::now_ms()) {
                    let message = format!(
                        "the system clock went back by {:.1} s: new backups are dated before older ones; \
                         they keep their order (by insertion) and retention deletes none of them for it",
                        back as f64 / 1000.0
                    );
                    tracing::warn!("{message}");
                    let _ = s.events.send(Event::Error { code: crate::ErrorCode::ClockChanged, message });
                }
                if let Err(e) = s.save().await {
                    // Reported, and retried at the next autosave; the engines go on.
                    s.report(&e, "autosave failed");
                }
                s.retry_breakthroughs(&mut pending).await;
            }
            _ = sleep_until(next_backup) => {
                next_backup = Instant::now() + s.opts.backup_every;
                match s.capture().await {
                    Ok(cut) => {
                        if let Err(e) = s.backup(cut, BackupKind::Periodic, None, None).await {
                            s.report(&e, "periodic backup failed");
                        } else if let Err(e) = s.retention().await {
                            s.report(&e, "retention failed");
                        }
                    }
                    Err(e) => s.report(&e, "capture failed"),
                }
            }
            Some(fired) = s.breakthroughs.recv() => {
                let cut = Cut { engines: fired.engines, at_ms: fired.at_ms };
                for bt in fired.breakthroughs {
                    tracing::info!(engine = %bt.engine, rule = %bt.rule, value = bt.value, step = bt.step, "breakthrough");
                    let result = s.backup(cut.clone(), BackupKind::Breakthrough, None, Some(bt.clone())).await;
                    // The event says committed (with the id) or pending (None);
                    // a milestone that cannot even be kept is an error, not "pending".
                    let backup_id = match result {
                        Ok(b) => Some(b.id),
                        Err(e) if pending.len() < MAX_PENDING_BREAKTHROUGHS => {
                            s.report(&e, "breakthrough backup failed; kept, and retried at every autosave");
                            pending.push(Pending { cut: cut.clone(), kind: BackupKind::Breakthrough, label: None, breakthrough: Some(bt.clone()) });
                            None
                        }
                        Err(e) => {
                            s.report(&e, &format!("{MAX_PENDING_BREAKTHROUGHS} breakthrough backups already pending; this one ({}) is lost", bt.rule));
                            continue;
                        }
                    };
                    let _ = s.events.send(Event::Breakthrough { breakthrough: bt, backup_id });
                }
            }
            Some((engine, why)) = s.failures.recv() => {
                // The failed state must not be the one the next launch
                // resumes: set it aside (kept in quarantine/), so the engine
                // falls back to its newest backup, and say why.
                let (name, reason) = (engine.clone(), why.clone());
                let r = s.with_store(move |store| super::set_aside_live(store, &name, &reason)).await;
                // Announced once the state is set aside, saying what happened.
                let aside = match &r {
                    Ok(()) => "Its last saved state is set aside; the next launch resumes it from its newest backup, or restore a backup now.".to_string(),
                    Err(e) => format!("Its last saved state could not be set aside ({e}); restore a backup to resume it."),
                };
                let _ = s.events.send(Event::Error {
                    code: crate::ErrorCode::Internal,
                    message: format!("{engine} failed and is paused (the other engines run on): {why}. {aside}"),
                });
            }
            cmd = s.commands.recv() => {
                match cmd {
                    Some(Command::Backup { label, reply }) => {
                        let r = match s.capture().await {
                            Ok(cut) => match s.backup(cut.clone(), BackupKind::Manual, label.clone(), None).await {
                                // Not the caller's mistake (a bad label is): keep the
                                // cut and write it when the store takes writes again.
                                Err(e) if e.code() != crate::ErrorCode::InvalidInput
                                    && pending.len() < MAX_PENDING_BREAKTHROUGHS =>
                                {
                                    pending.push(Pending { cut, kind: BackupKind::Manual, label, breakthrough: None });
                                    Err(Error::pending(e, "the backup could not be written now; it is kept and retried at every autosave, and appears on the timeline when it commits"))
                                }
                                r => r,
                            },
                            Err(e) => Err(e),
                        };
                        let _ = reply.send(r);
                    }
                    Some(Command::Milestone { breakthrough: bt, reply }) => {
                        let r = match s.capture().await {
                            Ok(cut) => s.backup(cut, BackupKind::Breakthrough, None, Some(bt.clone())).await,
                            Err(e) => Err(e),
                        };
                        match &r {
                            Ok(b) => {
                                tracing::info!(learner = %bt.engine, rule = %bt.rule, value = bt.value, step = bt.step, "milestone reported");
                                let _ = s.events.send(Event::Breakthrough { breakthrough: bt, backup_id: Some(b.id) });
                            }
                            Err(e) => s.report(e, "a reported milestone's backup failed"),
                        }
                        let _ = reply.send(r);
                    }
                    Some(Command::Restore { id, engine, reply }) => {
                        let r = s.restore(id, engine).await;
                        if let Err(e) = &r {
                            s.report(e, "restore failed");
                        }
                        let _ = reply.send(r);
                    }
                    Some(Command::SaveNow { reply }) => {
                        let _ = reply.send(s.save().await);
                    }
                    Some(Command::Settings { settings, reply }) => {
                        let r = s.apply_settings(settings).await;
                        if r.is_ok() {
                            // New intervals count from now.
                            next_save = Instant::now() + s.opts.autosave;
                            next_backup = Instant::now() + s.opts.backup_every;
                        }
                        let _ = reply.send(r);
                    }
                    Some(Command::Shutdown { reply }) => {
                        // Written before exit, if the disk allows it now.
                        s.retry_breakthroughs(&mut pending).await;
                        for p in &pending {
                            let what = p.breakthrough.as_ref().map_or("a manual backup", |b| b.rule.as_str());
                            tracing::error!(kind = %p.kind, "{what}: backup still failing at shutdown; lost");
                        }
                        let _ = reply.send(s.stop().await);
                        return;
                    }
                    None => {
                        let _ = s.stop().await;
                        return;
                    }
                }
            }
        }
    }
}

impl Scheduler {
    /// Tries every pending backup again, oldest first; each that commits
    /// is announced (a breakthrough with its backup id; every one as a
    /// created backup).
    async fn retry_breakthroughs(&self, pending: &mut Vec<Pending>) {
        while let Some(p) = pending.first() {
            let bt = p.breakthrough.clone();
            match self
                .backup(p.cut.clone(), p.kind, p.label.clone(), bt.clone())
                .await
            {
                Ok(b) => {
                    pending.remove(0);
                    tracing::info!(id = b.id, kind = %b.kind, "pending backup committed");
                    if let Some(breakthrough) = bt {
                        let _ = self.events.send(Event::Breakthrough {
                            breakthrough,
                            backup_id: Some(b.id),
                        });
                    }
                }
                Err(_) => return, // still failing: reported when it first failed
            }
        }
    }

    fn report(&self, e: &Error, what: &str) {
        tracing::error!(code = %e.code(), "{what}: {e}");
        let _ = self.events.send(Event::Error {
            code: e.code(),
            message: format!("{what}: {e}"),
        });
    }

    async fn capture(&self) -> Result<Cut> {
        let (tx, rx) = oneshot::channel();
        if !self.engine.send(EngineCmd::Capture(tx)) {
            return Err(engine_stopped());
        }
        let engines = rx.await.map_err(|_| engine_stopped())?;
        Ok(Cut {
            engines,
            at_ms: crate::now_ms(),
        })
    }

    /// Puts states into the running engines (not saved).
    async fn restore_in_memory(&self, payload: Vec<crate::store::EngineState>) -> Result<()> {
        if payload.is_empty() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        if !self.engine.send(EngineCmd::Restore(payload, tx)) {
            return Err(engine_stopped());
        }
        rx.await.map_err(|_| engine_stopped())?
    }

    /// Puts `engines` back into the state a backup holds (in memory only).
    async fn put_engines_back(&self, backup: i64, engines: Vec<String>) -> Result<()> {
        let states = self
            .with_store(move |store| {
                let mut states = store.backup_states(backup)?;
                states.retain(|s| engines.contains(&s.engine));
                Ok(states)
            })
            .await?;
        self.restore_in_memory(states).await
    }

    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        super::on_store(&self.store, f).await
    }

    /// Captures, encodes (off the engine thread) and saves the live state.
    async fn save(&self) -> Result<i64> {
        let cut = self.capture().await?;
        self.save_engines(cut).await
    }

    async fn save_engines(&self, cut: Cut) -> Result<i64> {
        let branch = self.branch.load(Ordering::SeqCst);
        let compact = cut.at_ms - self.compacted_at.load(Ordering::SeqCst) >= COMPACT_EVERY_MS;
        let lock = self.lock.clone();
        let at = self
            .with_store(move |store| {
                let states = cut.engines.capture()?;
                lock.check()?;
                store.save_live_with_history(&states, cut.at_ms, branch)?;
                // Acknowledged only if it went to the files Engram reads.
                store.check_files()?;
                if compact {
                    // Best effort: the save itself has committed.
                    if let Err(e) = store.compact_history(cut.at_ms) {
                        tracing::warn!(code = %e.code(), "metric history compaction failed: {e}");
                    }
                }
                Ok(cut.at_ms)
            })
            .await?;
        if compact {
            self.compacted_at.store(at, Ordering::SeqCst);
        }
        let _ = self.events.send(Event::Saved { at_ms: at });
        Ok(at)
    }

    /// Writes a backup of the given cut and, in the same transaction, makes
    /// it the live state unless the live state is newer.
    async fn backup(
        &self,
        cut: Cut,
        kind: BackupKind,
        label: Option<String>,
        breakthrough: Option<Breakthrough>,
    ) -> Result<BackupInfo> {
        let branch = self.branch.load(Ordering::SeqCst);
        let lock = self.lock.clone();
        let proofs = self.prove_live_slots().await;
        let info = self
            .with_store(move |store| {
                let states = cut.engines.capture()?;
                lock.check()?;
                let label = match (&breakthrough, label) {
                    (Some(bt), None) => store.repeat_milestone_label(bt, branch)?,
                    (_, label) => label,
                };
                let id = store.create_backup_as_live(
                    &NewBackup {
                        kind,
                        created_at_ms: crate::now_ms(),
                        label,
                        breakthrough,
                        states: &states,
                    },
                    cut.at_ms,
                    &proofs,
                )?;
                store.check_files()?;
                store.get_backup(id)
            })
            .await?;
        tracing::info!(id = info.id, kind = %info.kind, "backup created");
        self.replicator.wake();
        self.syncer.wake();
        let _ = self.events.send(Event::BackupCreated {
            backup: Box::new(crate::wire::Backup::from(&info)),
        });
        Ok(info)
    }

    /// The learners' live states held in slots, hashed off the store lock
    /// (on a thread of its own at a low priority, like a large save's), so
    /// that the cut that adopts them as objects need not hash them under it
    /// — a 256 MB state held saves and autosaves back for 100 ms or more.
    /// Best effort: what cannot be proven here is hashed at the cut.
    async fn prove_live_slots(&self) -> Vec<crate::objects::SlotProof> {
        let Ok(slots) = self.with_store(|s| s.live_slots()).await else {
            return Vec::new();
        };
        if slots.is_empty() {
            return Vec::new();
        }
        let objects = crate::objects::Objects::new(&self.opts.data_dir);
        let prove = move || {
            slots
                .iter()
                .filter_map(|(l, k, c)| objects.prove_slot(l, *k, c).ok().flatten())
                .collect()
        };
        match crate::objects::on_low_priority_thread("engram-slot-proofs", prove) {
            Ok(proofs) => proofs.await.unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    async fn retention(&self) -> Result<()> {
        let policy = self.opts.retention.clone();
        let report = self
            .with_store(move |store| {
                let report = store.apply_retention(&policy)?;
                // Learner states no row refers to any more go too (under
                // the store lock, where saves put their files in place).
                collect_objects(store);
                Ok(report)
            })
            .await?;
        if !report.deleted.is_empty() {
            let _ = self.events.send(Event::BackupsDeleted {
                ids: report.deleted,
            });
        }
        Ok(())
    }

    /// Pre-restore backup of the engines as they are, then the restore.
    async fn restore(&self, id: i64, engine: Option<String>) -> Result<RestoreReport> {
        // Long by design: a restore in its order (check, pre-restore backup,
        // restore, commit, or put back what was there).
        // Read and check the backup first: a bad id or damaged backup changes nothing.
        let wanted = engine.clone();
        let (states, learners) = self
            .with_store(move |store| {
                let mut states = store.backup_states(id)?;
                let mut learners: Vec<String> = store
                    .backup_learners(id)?
                    .into_iter()
                    .map(|(name, _)| name)
                    .collect();
                if let Some(e) = &wanted {
                    states.retain(|s| &s.engine == e);
                    learners.retain(|l| l == e);
                    if states.is_empty() && learners.is_empty() {
                        return Err(Error::NotFound {
                            what: "engine",
                            id: format!("{e} in backup {id}"),
                        });
                    }
                }
                // A state its engine cannot run is refused before the
                // pre-restore backup, so a refusal leaves no trace.
                crate::engines::check_states(&states)?;
                store.check_learner_objects(id, &learners)?;
                Ok((states, learners))
            })
            .await?;
        let now = self.capture().await?;
        let pre = self
            .backup(
                now,
                BackupKind::PreRestore,
                Some(format!("before restoring backup {id}")),
                None,
            )
            .await?;
        let engines: Vec<String> = states.iter().map(|s| s.engine.clone()).collect();
        // The engines take the states in memory first (a state that cannot
        // run fails here, before anything durable changes)...
        self.restore_in_memory(states.clone()).await?;
        // ...then engines, learners and the new line of metric history
        // become live in one transaction: a crash leaves all of them
        // restored, or none.
        let lock = self.lock.clone();
        let restored = learners.clone();
        let committed = self
            .with_store(move |store| {
                lock.check()?;
                let branch = store.make_restored_live(id, &states, &restored, crate::now_ms())?;
                store.check_files()?;
                Ok(branch)
            })
            .await;
        let branch = match committed {
            Ok(branch) => branch,
            Err(e) => {
                // Nothing became live: the engines go back to the state
                // they had (the pre-restore backup's).
                if let Err(u) = self.put_engines_back(pre.id, engines).await {
                    tracing::error!(code = %u.code(), "could not put the engines back after a failed restore: {u}");
                }
                return Err(e);
            }
        };
        self.branch.store(branch, Ordering::SeqCst);
        // The restore has committed; this save adds the first points of the
        // new line of history (if it fails, the next autosave does it).
        if let Err(e) = self.save().await {
            tracing::warn!(code = %e.code(), "save after a restore failed: {e}");
        }
        let mut names = engines;
        names.extend(learners);
        let report = RestoreReport {
            from_backup: id,
            engines: names.clone(),
            pre_restore_backup: pre.id,
        };
        tracing::info!(from = id, pre_restore = pre.id, "restored");
        let _ = self.events.send(Event::Restored {
            from_backup: id,
            engines: names,
            pre_restore_backup: pre.id,
        });
        Ok(report)
    }

    /// Saves the settings, then applies them to the schedule and the engines.
    async fn apply_settings(&mut self, settings: Settings) -> Result<Settings> {
        settings.validate()?;
        let json = serde_json::to_string(&settings).map_err(|e| Error::Encode(e.to_string()))?;
        self.with_store(move |store| store.save_settings_json(&json, crate::now_ms()))
            .await?;
        settings.apply_to_options(&mut self.opts);
        if !self.engine.send(EngineCmd::Configure(settings.clone())) {
            return Err(engine_stopped());
        }
        tracing::info!(?settings, "settings applied");
        Ok(settings)
    }

    /// Final save, then the engine thread stops.
    async fn stop(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        if !self.engine.send(EngineCmd::Stop(tx)) {
            return Err(engine_stopped());
        }
        let engines = rx.await.map_err(|_| engine_stopped())?;
        self.save_engines(Cut {
            engines,
            at_ms: crate::now_ms(),
        })
        .await
        .map(|_| ())
    }
}

/// Removes learner states no row refers to (and temporary files older than
/// [`crate::objects::GC_GRACE`]); a failure is logged, never fatal.
pub(super) fn collect_objects(store: &crate::Store) {
    match store.collect_learner_states() {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "unreferenced learner state objects removed"),
        Err(e) => tracing::warn!(error = %e, "collecting learner state objects failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_clock_set_back_is_detected_and_jitter_is_not() {
        let t0 = std::time::Instant::now();
        let mut w = ClockWatch::new(t0, 1_000_000);
        // 5 s pass; the wall clock agrees (within jitter).
        assert_eq!(w.went_back(t0 + Duration::from_secs(5), 1_004_500), None);
        // 5 s more; the wall clock was set back a day.
        let back = w.went_back(t0 + Duration::from_secs(10), 1_004_500 + 5_000 - 86_400_000);
        assert_eq!(back, Some(86_400_000));
        // Forward jumps (a suspended laptop) are not reported as going back.
        assert_eq!(
            w.went_back(t0 + Duration::from_secs(15), 9_000_000_000),
            None
        );
    }
}
