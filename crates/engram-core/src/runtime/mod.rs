//! The runtime: runs the engines continuously and keeps their state safe.
//! The CLI (`engram run` / `serve`) and the desktop app both use exactly this.
//!
//! - One **engine thread** owns the [`EngineSet`] and ticks it at a set pace.
//!   It stops only to hand out a clone of the engines (the capture); encoding
//!   and writing happen elsewhere.
//! - One **scheduler task** (tokio) owns the schedule: autosave, periodic
//!   backups with retention, breakthrough backups, and the user's commands
//!   (back up now, restore, save). It is the only writer of the store.
//! - An **event stream** (tokio broadcast) carries metrics, backups,
//!   breakthroughs, restores and errors to the UI.
//! - One writer per data directory: a lock file held for the runtime's life.
//!
//! A failed save never stops the engines: it is reported and retried.

mod engine_thread;
mod lock;
mod readers;
mod scheduler;
mod settings;

pub use engine_thread::CaptureStall;
pub use lock::DataDirLock;

use crate::engines::{ENGINE_NAMES, EngineSet, EnginesConfig};
use crate::error::{Error, ErrorCode, Result};
use crate::store::{BackupInfo, Store};
use crate::wire::{Breakthrough, Metrics, RetentionPolicy, SkipNote};
use crate::wire::{Event, Settings, StartupReport};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

pub use crate::store::DB_FILE;

/// The default data directory: `$ENGRAM_DATA_DIR`, else
/// `$XDG_DATA_HOME/engram`, else `~/.local/share/engram`.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ENGRAM_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("engram");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/engram")
}

/// Refuses a data directory path that names something other than a directory.
pub fn check_data_dir(dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err(Error::InvalidInput(format!(
            "the data directory {} is not a directory",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// How to run.
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    pub data_dir: PathBuf,
    pub seed: u64,
    /// Save the live state this often.
    pub autosave: Duration,
    /// Take a periodic backup this often.
    pub backup_every: Duration,
    /// Check each offsite replica's structure this often (zero: never).
    pub replica_verify_every: Duration,
    /// Pause between engine ticks (leaves CPU for the UI).
    pub pace: Duration,
    pub retention: RetentionPolicy,
    pub engines: EnginesConfig,
    /// Metrics events at most this often.
    pub metrics_every: Duration,
    /// When false (the default), settings saved in the data directory win
    /// over the intervals, retention and thresholds given here. The CLI sets
    /// it when the user passes `--autosave` or `--backup-every`.
    pub options_win: bool,
    /// A tick running longer than this is reported as a stall (an error
    /// event and the log), once per stall. Every accepted state bounds its
    /// tick's work, so this is defence in depth.
    pub stall_warning: Duration,
}

impl RuntimeOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        RuntimeOptions {
            data_dir: data_dir.into(),
            seed: 1,
            autosave: Duration::from_secs(5),
            backup_every: Duration::from_secs(3600),
            replica_verify_every: Duration::from_secs(24 * 3600),
            pace: Duration::from_millis(10),
            retention: RetentionPolicy::default(),
            engines: EnginesConfig::default(),
            metrics_every: Duration::from_millis(250),
            options_win: false,
            stall_warning: Duration::from_secs(30),
        }
    }
}

/// The result of a restore.
#[derive(Clone, Debug, Serialize)]
pub struct RestoreReport {
    pub from_backup: i64,
    pub engines: Vec<String>,
    pub pre_restore_backup: i64,
}

pub(crate) enum Command {
    Backup {
        label: Option<String>,
        reply: oneshot::Sender<Result<BackupInfo>>,
    },
    Milestone {
        breakthrough: Breakthrough,
        reply: oneshot::Sender<Result<BackupInfo>>,
    },
    Restore {
        id: i64,
        engine: Option<String>,
        reply: oneshot::Sender<Result<RestoreReport>>,
    },
    SaveNow {
        reply: oneshot::Sender<Result<i64>>,
    },
    Settings {
        settings: Settings,
        reply: oneshot::Sender<Result<Settings>>,
    },
    Shutdown {
        reply: oneshot::Sender<Result<()>>,
    },
}

/// A running set of engines over one data directory.
pub struct Runtime {
    commands: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<Event>,
    /// Read-only connections for reads (see [`readers`]); declared
    /// before the writer's store so they close first.
    readers: Arc<readers::Readers>,
    /// Lines of one metric across the backups, kept between reads.
    lines: Arc<crate::store::LineCache>,
    store: Arc<Mutex<Store>>,
    metrics: Arc<Mutex<BTreeMap<String, Metrics>>>,
    paused: Arc<Mutex<BTreeMap<String, String>>>,
    startup: StartupReport,
    scheduler: Option<tokio::task::JoinHandle<()>>,
    stalls: Arc<Mutex<Vec<CaptureStall>>>,
    initial_settings: Settings,
    _lock: Arc<DataDirLock>,
    data_dir: PathBuf,
    supervisor: Arc<crate::supervisor::Supervisor>,
    replicator: Arc<crate::replica::Replicator>,
    syncer: Arc<crate::fleet::Syncer>,
    #[cfg(test)]
    engine: engine_thread::EngineHandle,
}

impl Runtime {
    /// Locks the data directory, opens the store, restores every engine (live
    /// state, else the newest good backup, else fresh; damage is reported),
    /// takes the `initial` backup on a first start, and starts the engines.
    pub async fn start(opts: RuntimeOptions) -> Result<Runtime> {
        // Long by design: start-up in the order it must happen (check and lock
        // the directory, open the store, load with fallback, take in the
        // spool, start the threads).
        check_data_dir(&opts.data_dir)?;
        opts.engines
            .check()
            .map_err(|e| Error::InvalidInput(format!("engine settings: {e}")))?;
        std::fs::create_dir_all(&opts.data_dir)
            .map_err(|e| Error::io("create", &opts.data_dir, e))?;
        let lock = Arc::new(DataDirLock::acquire(&opts.data_dir)?);
        let db = opts.data_dir.join(DB_FILE);
        let readers = readers::Readers::new(db.clone());
        // SQLite blocks: open, restore and find the history branch off the async threads.
        let (store, engines, startup, branch) = tokio::task::spawn_blocking(move || {
            let (mut store, engines, startup) = open_and_restore(&db, &opts)?;
            let branch = store.current_branch(crate::now_ms())?;
            // The engines' curves break here: nothing ran since the last save.
            store.start_run(crate::engines::ENGINE_NAMES, crate::now_ms())?;
            // Learner state files left unreferenced (e.g. by a crash between
            // an object and its row) go at start, as after every retention.
            scheduler::collect_objects(&store);
            // Slot files no live state is held in, and the names of slots
            // lent by an earlier run: a learner of that run still writing
            // must not reach a slot a save of this run will use.
            match store.clear_unused_slots() {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "unused learner slot files removed"),
                Err(e) => tracing::warn!(error = %e, "clearing unused learner slots failed"),
            }
            let dir = db.parent().unwrap_or(Path::new(".")).to_path_buf();
            // Learners an earlier Engram left running (it was killed) stop
            // first: none spools after this, none runs twice.
            let orphans = crate::supervisor::stop_orphans(&dir);
            if orphans > 0 {
                tracing::warn!(orphans, "stopped learner processes left running by an earlier Engram");
            }
            // Learner saves spooled while Engram was not running, in order.
            match crate::spool::ingest(&mut store, &dir) {
                Ok(r) => {
                    if r.taken_in > 0 {
                        tracing::info!(saves = r.taken_in, "spooled learner saves taken in");
                    }
                    if r.stale > 0 {
                        tracing::warn!(saves = r.stale, "spooled learner saves from before a restore of their learner were dropped");
                    }
                    for line in &r.left {
                        tracing::warn!(save = %line, "a spooled learner save was left in the spool");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "taking in spooled learner saves failed"),
            }
            Ok::<_, Error>((store, engines, startup, branch))
        })
        .await
        .map_err(|e| Error::Internal(format!("start-up task failed: {e}")))??;
        let opts = engines.1;
        let store = Arc::new(Mutex::new(store));
        let (events, _) = broadcast::channel(1024);
        let metrics = Arc::new(Mutex::new(engines.0.metrics()));
        let (bt_tx, bt_rx) = mpsc::unbounded_channel();
        let (failed_tx, failed_rx) = mpsc::unbounded_channel();
        let paused = Arc::new(Mutex::new(BTreeMap::new()));
        let engine = engine_thread::spawn(
            engines.0,
            opts.clone(),
            engine_thread::Outputs {
                events: events.clone(),
                metrics: metrics.clone(),
                breakthroughs: bt_tx,
                failures: failed_tx,
                paused: paused.clone(),
            },
        );
        let stalls = engine.stalls.clone();
        #[cfg(test)]
        let engine_for_tests = engine.clone();
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let replicator = Arc::new(crate::replica::Replicator::spawn(
            opts.data_dir.clone(),
            store.clone(),
        )?);
        let syncer = Arc::new(crate::fleet::Syncer::spawn(
            opts.data_dir.clone(),
            store.clone(),
        )?);
        for s in &startup.skipped {
            tracing::warn!(engine = %s.engine, what = %s.what, code = %s.code, "skipped damaged state at start-up: {}", s.detail);
        }
        let scheduler = tokio::spawn(scheduler::run(scheduler::Scheduler {
            store: store.clone(),
            lock: lock.clone(),
            engine,
            events: events.clone(),
            opts: opts.clone(),
            commands: cmd_rx,
            breakthroughs: bt_rx,
            failures: failed_rx,
            branch: std::sync::atomic::AtomicI64::new(branch),
            compacted_at: std::sync::atomic::AtomicI64::new(0),
            replicator: replicator.clone(),
            syncer: syncer.clone(),
        }));
        let supervisor = Arc::new(crate::supervisor::Supervisor::new(
            &opts.data_dir,
            events.clone(),
        ));
        Ok(Runtime {
            replicator,
            syncer,
            supervisor,
            commands: cmd_tx,
            events,
            store,
            readers,
            lines: Arc::default(),
            metrics,
            paused,
            startup,
            scheduler: Some(scheduler),
            stalls,
            initial_settings: Settings::from_options(&opts),
            _lock: lock,
            data_dir: opts.data_dir,
            #[cfg(test)]
            engine: engine_for_tests,
        })
    }

    /// Wakes the offsite replicas' worker (a backup or a target was added).
    pub fn replicate_soon(&self) {
        self.replicator.wake();
    }

    /// Wakes the fleet's sync (a membership changed).
    pub fn sync_fleet_soon(&self) {
        self.syncer.wake();
    }

    /// Tells every listener (the UI's event stream) of something.
    pub(crate) fn announce(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Listens to events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Engines paused because they failed (panicked) in a tick, with why.
    /// A restore of the engine resumes it.
    pub fn paused(&self) -> BTreeMap<String, String> {
        self.paused.lock().map(|p| p.clone()).unwrap_or_default()
    }

    pub fn startup_report(&self) -> &StartupReport {
        &self.startup
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The latest metrics of every engine.
    pub fn metrics(&self) -> BTreeMap<String, Metrics> {
        self.metrics.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// How long the engines waited for each capture (newest last, bounded).
    pub fn capture_stalls(&self) -> Vec<CaptureStall> {
        self.stalls.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Runs `f` on a read-only connection of its own, in one read
    /// transaction: it never waits for the writer (an autosave, a backup
    /// cut) nor holds it up. What it sees: `readers`' module docs.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.readers.read(f).await
    }

    /// The lines of one metric across the backups that reads keep
    /// ([`Store::metric_along_line`]).
    pub fn line_cache(&self) -> Arc<crate::store::LineCache> {
        self.lines.clone()
    }

    /// Runs `f` with the writer's store (changes, and the few reads that
    /// need what only the writer holds: retention's holds).
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        on_store(&self.store, f).await
    }

    /// Takes a `manual` backup of the engines as they are now.
    pub async fn backup_now(&self, label: Option<String>) -> Result<BackupInfo> {
        self.ask(|reply| Command::Backup { label, reply }).await
    }

    /// Takes a `breakthrough` backup of everything as it is now for a
    /// milestone a learner reports (its newest durable state is in it).
    pub async fn milestone(&self, breakthrough: Breakthrough) -> Result<BackupInfo> {
        self.ask(|reply| Command::Milestone {
            breakthrough,
            reply,
        })
        .await
    }

    /// Restores a backup (all engines or one); a `pre-restore` backup is
    /// taken first. Supervised learners whose state it restores are stopped
    /// before and started after, so they resume from the restored state.
    pub async fn restore(&self, id: i64, engine: Option<String>) -> Result<RestoreReport> {
        let only = engine.clone();
        let learners = self
            .with_store(move |s| {
                let mut names: Vec<String> =
                    s.backup_learners(id)?.into_iter().map(|(n, _)| n).collect();
                if let Some(e) = only {
                    names.retain(|n| *n == e);
                }
                Ok(names)
            })
            .await
            .unwrap_or_default();
        let paused = self.supervisor.pause(&learners).await;
        let report = self
            .ask(|reply| Command::Restore { id, engine, reply })
            .await;
        self.supervisor.resume(&paused).await;
        report
    }

    /// The supervisor of learners' processes.
    pub fn supervisor(&self) -> &crate::supervisor::Supervisor {
        &self.supervisor
    }

    /// Starts supervising learners that have a command (the front door
    /// calls this once its learner API listens, so they find it).
    pub async fn supervise_learners(&self) -> Result<()> {
        let commands = self
            .with_store(|s| {
                Ok(s.learners()?
                    .into_iter()
                    .filter_map(|l| l.command.map(|c| (l.name, c)))
                    .collect::<Vec<_>>())
            })
            .await?;
        self.supervisor.activate(commands);
        Ok(())
    }

    /// The settings in force.
    pub async fn settings(&self) -> Result<Settings> {
        let store = self.with_store(|s| s.settings_json()).await?;
        match store {
            Some(json) => serde_json::from_str(&json).map_err(|e| Error::corrupt("settings", e)),
            None => Ok(self.initial_settings.clone()),
        }
    }

    /// Validates, saves and applies new settings, without a restart.
    pub async fn update_settings(&self, settings: Settings) -> Result<Settings> {
        settings.validate()?;
        self.ask(|reply| Command::Settings { settings, reply })
            .await
    }

    /// Saves the live state now; returns the time saved.
    pub async fn save_now(&self) -> Result<i64> {
        self.ask(|reply| Command::SaveNow { reply }).await
    }

    /// Saves a final time and stops the engines, without consuming the
    /// runtime (for holders that share it, like the HTTP server).
    pub async fn stop(&self) -> Result<()> {
        // Learners first: they may save while they stop.
        self.supervisor.shutdown().await;
        let stopped = self.ask(|reply| Command::Shutdown { reply }).await;
        self.readers.close();
        stopped
    }

    /// Saves a final time and stops the engines.
    pub async fn shutdown(mut self) -> Result<()> {
        self.supervisor.shutdown().await;
        let result = self.ask(|reply| Command::Shutdown { reply }).await;
        self.readers.close();
        if let Some(h) = self.scheduler.take() {
            let _ = h.await;
        }
        result
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .map_err(|_| Error::RuntimeStopped("the runtime has stopped".into()))?;
        rx.await
            .map_err(|_| Error::RuntimeStopped("the runtime stopped before answering".into()))?
    }
}

/// Runs `f` on the store on the blocking pool (SQLite calls block).
pub(crate) async fn on_store<T: Send + 'static>(
    store: &Arc<Mutex<Store>>,
    f: impl FnOnce(&mut Store) -> Result<T> + Send + 'static,
) -> Result<T> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = store
            .lock()
            .map_err(|_| Error::Internal("the store lock is poisoned".into()))?;
        f(&mut guard)
    })
    .await
    .map_err(|e| Error::Internal(format!("store task failed: {e}")))?
}

type Restored = (EngineSet, RuntimeOptions);

/// Writes a state that would not restore to `<data dir>/quarantine/`, so
/// that falling back never destroys the evidence. Returns a note for the
/// report (best effort: a failure to write is said, not fatal).
fn quarantine(db: &Path, engine: &str, bytes: &[u8]) -> String {
    let dir = quarantine_dir(db);
    let file = dir.join(format!("{engine}-{}.state", crate::now_ms()));
    match std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&file, bytes)) {
        Ok(()) => format!(" (kept as {})", file.display()),
        Err(e) => format!(" (could not keep a copy: {e})"),
    }
}

fn quarantine_dir(db: &Path) -> PathBuf {
    db.parent().unwrap_or(Path::new(".")).join("quarantine")
}

/// An engine failed (panicked) on its live state: moves that state to
/// quarantine/ and leaves a note there, so the next launch resumes the
/// engine from its newest backup instead of walking into the same failure,
/// and says why ([`failure_notes`]).
pub(crate) fn set_aside_live(store: &mut Store, engine: &str, why: &str) -> Result<()> {
    let db = store.path().to_path_buf();
    let Some(bytes) = store.take_live(engine)? else {
        return Ok(());
    };
    let kept = quarantine(&db, engine, &bytes);
    let note = quarantine_dir(&db).join(format!("{engine}-{}.failed", crate::now_ms()));
    std::fs::write(&note, format!("{why}{kept}")).map_err(|e| Error::io("write", &note, e))?;
    tracing::warn!(engine, "the failed engine's live state was set aside{kept}");
    Ok(())
}

/// Notes left by [`set_aside_live`], reported once: each is renamed
/// `.reported` after it is read.
fn failure_notes(db: &Path) -> Vec<SkipNote> {
    let Ok(dir) = std::fs::read_dir(quarantine_dir(db)) else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    for entry in dir.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "failed") {
            continue;
        }
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let engine = name.rsplit_once('-').map_or(name, |(e, _)| e);
        let why = std::fs::read_to_string(&path).unwrap_or_default();
        let _ = std::fs::rename(&path, path.with_extension("reported"));
        notes.push(SkipNote {
            engine: engine.to_string(),
            what: "live state".into(),
            code: ErrorCode::Internal,
            detail: format!("the engine failed on it and it was set aside: {why}"),
        });
    }
    notes
}

/// Restores `engine` from the newest backup whose state for it restores.
fn restore_from_backups(
    store: &Store,
    engines: &mut EngineSet,
    engine: &str,
) -> Result<Option<i64>> {
    let mut q = crate::store::BackupQuery {
        engine: Some(engine.to_string()),
        limit: 1000,
        ..Default::default()
    };
    loop {
        let page = store.list_backups(&q)?;
        for b in &page.items {
            if let Ok(state) = store.backup_state(b.id, engine)
                && engines.restore_engine(engine, &state.state).is_ok()
            {
                engines.take_evaluation_times(engine, &state.metrics);
                return Ok(Some(b.id));
            }
        }
        match page.next {
            Some(c) => q.after = Some(c),
            None => return Ok(None),
        }
    }
}

fn open_and_restore(db: &Path, opts: &RuntimeOptions) -> Result<(Store, Restored, StartupReport)> {
    let mut store = Store::open(db)?;
    let mut opts = opts.clone();
    if !opts.options_win
        && let Some(json) = store.settings_json()?
    {
        match serde_json::from_str::<Settings>(&json) {
            Ok(saved) if saved.validate().is_ok() => saved.apply_to_options(&mut opts),
            _ => tracing::warn!("saved settings are unreadable; using defaults"),
        }
    }
    let opts = &opts;
    let mut engines = EngineSet::new(opts.engines.clone(), opts.seed);
    let load = store.load_live(&ENGINE_NAMES)?;
    let mut report = StartupReport {
        skipped: failure_notes(db),
        ..Default::default()
    };
    report.skipped.extend(load.skipped.iter().cloned());
    let settings = Settings::from_options(opts);
    for (name, loaded) in &load.states {
        match engines.restore_engine(name, &loaded.state) {
            Ok(()) => {
                engines.take_evaluation_times(name, &loaded.metrics);
                report.restored_from.insert(
                    name.clone(),
                    match &loaded.source {
                        crate::store::StateSource::Live { .. } => "live".to_string(),
                        crate::store::StateSource::Backup { id, .. } => format!("backup {id}"),
                    },
                );
            }
            Err(e) => {
                // It passed its checksum but is not a state this engine can
                // run: keep it for inspection, then fall back to the newest
                // backup that restores, never to a fresh start while one does.
                let kept = quarantine(db, name, loaded.state.as_bytes());
                report.skipped.push(SkipNote {
                    engine: name.clone(),
                    what: match &loaded.source {
                        crate::store::StateSource::Live { .. } => "live state".to_string(),
                        crate::store::StateSource::Backup { id, .. } => format!("backup {id}"),
                    },
                    code: e.code(),
                    detail: format!("{e}{kept}"),
                });
                if let Some(id) = restore_from_backups(&store, &mut engines, name)? {
                    report
                        .restored_from
                        .insert(name.clone(), format!("backup {id}"));
                }
            }
        }
    }
    // Thresholds are settings: they apply to restored engines too.
    settings.apply_to_engines(&mut engines);
    let first = load.states.is_empty() && store.count_backups()? == 0;
    if first || !report.skipped.is_empty() {
        // Make the live state whole again (fresh or restored engines).
        store.save_live(&engines.capture()?, crate::now_ms())?;
    }
    if first {
        store.backup_live(
            crate::wire::BackupKind::Initial,
            crate::now_ms(),
            Some("first launch".into()),
            None,
        )?;
        report.first_start = true;
    }
    Ok((store, (engines, opts.clone()), report))
}

#[cfg(test)]
mod tests;
