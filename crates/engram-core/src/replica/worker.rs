//! The replication queue's worker: one thread of its own (never an async
//! one), which uploads every backup no replica holds yet — the queue is
//! the backups table itself, so a restart resumes it — and the catalog
//! when it changed. It reads states through a read-only connection of its
//! own and takes the writer's store only for a row of bookkeeping, so an
//! unreachable, slow or full target never holds back a save or a backup.

use super::{Place, backup_of};
use crate::error::{Error, Result};
use crate::store::{ReplicaTarget, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The catalog goes up at most this often while it changes.
const CATALOG_EVERY: Duration = Duration::from_secs(60);
/// The longest wait between attempts on a failing target.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often the worker looks for work without being woken.
const IDLE: Duration = Duration::from_secs(30);

/// The running worker. Dropping it stops it after its current upload.
pub struct Replicator {
    wake: Mutex<Sender<()>>,
    stop: Arc<AtomicBool>,
}

impl Replicator {
    /// Starts the worker over the data directory whose writer's store is
    /// `store`.
    pub fn spawn(data_dir: PathBuf, store: Arc<Mutex<Store>>) -> Result<Replicator> {
        super::route_logs();
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            data_dir,
            store: Arc::downgrade(&store),
            stop: stop.clone(),
            backoff: BTreeMap::new(),
            known: BTreeMap::new(),
        };
        std::thread::Builder::new()
            .name("engram-replica".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| Error::Internal(format!("cannot start the replica worker: {e}")))?;
        Ok(Replicator {
            wake: Mutex::new(tx),
            stop,
        })
    }

    /// Something new to upload (a backup committed, a target added).
    pub fn wake(&self) {
        if let Ok(tx) = self.wake.lock() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Replicator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
    }
}

struct Worker {
    data_dir: PathBuf,
    /// The writer's store, held only for a bookkeeping row: when the
    /// runtime lets go of it, it closes (and checkpoints its WAL) even
    /// while an upload still runs here, and the worker ends.
    store: Weak<Mutex<Store>>,
    stop: Arc<AtomicBool>,
    /// Per target: when to try again, and the wait after the next failure.
    backoff: BTreeMap<i64, (Instant, Duration)>,
    /// Per target: the backups its repository was seen to hold (a crash
    /// between an upload and its row would otherwise upload it twice).
    known: BTreeMap<i64, BTreeMap<i64, String>>,
}

impl Worker {
    fn run(mut self, wake: Receiver<()>) {
        // Uploads read and compress at a low priority, as large saves do:
        // the engines' thread comes first.
        crate::objects::lower_this_threads_priority();
        loop {
            if self.stop.load(Ordering::SeqCst) || self.store.strong_count() == 0 {
                return;
            }
            let wait = self.round().unwrap_or(IDLE).min(IDLE);
            match wake.recv_timeout(wait) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while wake.try_recv().is_ok() {}
        }
    }

    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        let store = self
            .store
            .upgrade()
            .ok_or_else(|| Error::RuntimeStopped("the runtime has stopped".into()))?;
        let mut guard = store
            .lock()
            .map_err(|_| Error::Internal("the store lock is poisoned".into()))?;
        f(&mut guard)
    }

    /// One pass over every target. Returns how long until a failing target
    /// is due again.
    fn round(&mut self) -> Option<Duration> {
        let targets = match self.with_store(|s| s.replica_targets()) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the replica targets");
                return None;
            }
        };
        let mut next = None::<Duration>;
        for t in targets {
            if self.stop.load(Ordering::SeqCst) {
                return None;
            }
            if let Some((due, _)) = self.backoff.get(&t.id) {
                let now = Instant::now();
                if *due > now {
                    let left = *due - now;
                    next = Some(next.map_or(left, |n| n.min(left)));
                    continue;
                }
            }
            match self.serve(&t) {
                Ok(()) => {
                    self.backoff.remove(&t.id);
                }
                Err(e) => {
                    let wait = self
                        .backoff
                        .get(&t.id)
                        .map_or(Duration::from_secs(2), |(_, w)| (*w * 2).min(MAX_BACKOFF));
                    self.backoff.insert(t.id, (Instant::now() + wait, wait));
                    self.known.remove(&t.id);
                    tracing::warn!(replica = %t.name, error = %e, retry_in_s = wait.as_secs(), "replica upload failed");
                    let (code, msg) = (e.code().as_str().to_string(), e.to_string());
                    let _ = self.with_store(|s| {
                        s.record_replica_attempt(t.id, crate::now_ms(), Some((&code, &msg)), None)
                    });
                    next = Some(next.map_or(wait, |n| n.min(wait)));
                }
            }
        }
        next
    }

    /// Uploads everything a target is behind on, then the catalog.
    fn serve(&mut self, t: &ReplicaTarget) -> Result<()> {
        let place = Place::of(t);
        let key = super::read_key(&super::key_path(&self.data_dir))?;
        let host = self.with_store(|s| s.host_id())?;
        let reader = Store::open_read_only(self.data_dir.join(crate::store::DB_FILE))?;
        if !self.known.contains_key(&t.id) {
            let repo = super::open(&place, &key)?;
            let held: BTreeMap<i64, String> =
                super::check::engram_snapshots(&repo, &place, Some(&host))?
                    .iter()
                    .filter_map(|s| backup_of(s).map(|b| (b, s.id.to_hex().to_string())))
                    .collect();
            let repo_id = repo.config().id.to_hex().to_string();
            self.with_store(|s| {
                s.record_replica_attempt(t.id, crate::now_ms(), None, Some(&repo_id))
            })?;
            self.known.insert(t.id, held);
        }
        // Each backup is tried once a round (one refused again ends it).
        let mut tried = BTreeSet::new();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let Some(id) = self.with_store(|s| s.next_to_replicate(t.id))? else {
                break;
            };
            if !tried.insert(id) {
                break;
            }
            if let Some(snap) = self.known.get(&t.id).and_then(|k| k.get(&id)).cloned() {
                // Uploaded before a crash took its row: recorded, not sent again.
                let info = reader.get_backup(id)?;
                let learners: u64 = reader
                    .backup_learners(id)?
                    .iter()
                    .map(|(_, l)| l.size)
                    .sum();
                self.with_store(|s| {
                    s.record_replica_copy(
                        t.id,
                        &crate::store::ReplicaCopy {
                            backup_id: id,
                            snapshot_id: snap,
                            kind: info.kind,
                            created_at_ms: info.created_at_ms,
                            label: info.label.clone(),
                            pinned: info.pinned,
                            bytes: info.engines.iter().map(|e| e.size).sum::<u64>() + learners,
                            bytes_added: 0,
                            uploaded_at_ms: crate::now_ms(),
                        },
                    )
                })?;
                continue;
            }
            match super::upload_backup(&place, &key, &reader, &host, id) {
                Ok(copy) => {
                    if let Some(k) = self.known.get_mut(&t.id) {
                        k.insert(id, copy.snapshot_id.clone());
                    }
                    self.with_store(|s| {
                        s.record_replica_copy(t.id, &copy)?;
                        s.record_replica_attempt(t.id, crate::now_ms(), None, None)
                    })?;
                    tracing::info!(replica = %t.name, backup = id, snapshot = %copy.snapshot_id, added = copy.bytes_added, "backup replicated");
                }
                // Gone here before its turn (retention): nothing to send.
                Err(Error::NotFound { what: "backup", .. }) => {
                    self.with_store(|s| {
                        s.record_replica_skip(t.id, id, "deleted here before it was replicated")
                    })?;
                }
                // A state that fails its checksum here is not sent as good.
                Err(e @ Error::CorruptState { .. }) => {
                    let why = format!("a state failed its check here: {e}");
                    self.with_store(|s| s.record_replica_skip(t.id, id, &why))?;
                }
                Err(e) => return Err(e),
            }
        }
        self.catalog(t, &place, &key, &reader, &host)?;
        self.verify_if_due(t, &place, &key)
    }

    /// The periodic light verify (restic's structure check, no pack read),
    /// when the setting's interval has passed since the last verify of any
    /// kind; its report is kept as a verify from the UI's is.
    fn verify_if_due(&self, t: &ReplicaTarget, place: &Place, key: &str) -> Result<()> {
        let every = self.with_store(|s| {
            Ok(match s.settings_json()? {
                Some(json) => {
                    serde_json::from_str::<crate::wire::Settings>(&json)
                        .unwrap_or_default()
                        .replica_verify_hours
                }
                None => crate::wire::Settings::default().replica_verify_hours,
            })
        })?;
        if every <= 0.0 {
            return Ok(());
        }
        let fresh = self.with_store(|s| s.replica_target(&t.name))?;
        let last = fresh
            .last_verify
            .as_deref()
            .and_then(|j| serde_json::from_str::<crate::wire::ReplicaVerifyReport>(j).ok())
            .map(|r| r.checked_at_ms);
        // Counted from the target's first use when it was never verified.
        let since = last.unwrap_or(fresh.added_at_ms);
        if (crate::now_ms() - since) as f64 <= every * 3_600_000.0 {
            return Ok(());
        }
        let report = super::verify(
            place,
            key,
            &crate::wire::VerifyReplica {
                read_data: false,
                subset: None,
            },
        )?;
        if report.ok {
            tracing::info!(replica = %t.name, snapshots = report.snapshots, "periodic verify: no problem");
        } else {
            tracing::error!(replica = %t.name, problems = ?report.problems, affected = ?report.affected_backups, "periodic verify: the replica is DAMAGED");
        }
        let json = serde_json::to_string(&report).map_err(|e| Error::Encode(e.to_string()))?;
        self.with_store(|s| s.record_replica_verify(t.id, &json))
    }

    /// The catalog, when it changed and its last upload is old enough.
    fn catalog(
        &self,
        t: &ReplicaTarget,
        place: &Place,
        key: &str,
        reader: &Store,
        host: &str,
    ) -> Result<()> {
        let fresh = self.with_store(|s| s.replica_target(&t.name))?;
        let mark = reader.catalog_mark()?;
        if fresh.history_mark.as_deref() == Some(mark.as_str()) {
            return Ok(());
        }
        let due = fresh
            .history_at_ms
            .is_none_or(|at| crate::now_ms() - at >= CATALOG_EVERY.as_millis() as i64);
        if !due {
            return Ok(());
        }
        super::upload_catalog(place, key, reader, host)?;
        self.with_store(|s| s.record_replica_history(t.id, crate::now_ms(), &mark))
    }
}
