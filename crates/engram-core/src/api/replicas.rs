//! The replica operations, one body each, shared by the running [`Api`]
//! and the [`Offline`] one. Each runs on a connection of its own (the
//! running Engram's writer never waits on a repository): the `Api` calls
//! them on the blocking pool, `Offline` under the data directory's lock.

use super::{Api, Offline};
use crate::error::{Error, Result};
use crate::replica::{self, Place};
use crate::store::{NewReplicaTarget, ReplicaTarget, Store};
use crate::wire::{
    AddReplica, ApiResult, Backup, RecoverReport, RemovedReplica, ReplicaAdded, ReplicaBackup,
    ReplicaKey, ReplicaProblem, ReplicaPruneReport, ReplicaStatus, ReplicaVerifyReport,
    RetrieveBackup, VerifyReplica,
};
use std::path::{Path, PathBuf};

fn status(store: &Store, t: &ReplicaTarget) -> Result<ReplicaStatus> {
    let c = store.replica_counts(t.id)?;
    let host_id = store.host_id_if_any()?.unwrap_or_default();
    let problem = t.last_error.as_ref().map(|(code, message)| ReplicaProblem {
        code: crate::ErrorCode::from_name(code).unwrap_or(crate::ErrorCode::ReplicaUnavailable),
        message: message.clone(),
        at_ms: t.last_attempt_at_ms.unwrap_or(0),
    });
    let (state, summary) = match (&problem, c.behind) {
        (Some(p), n) => ("failing", format!("behind {n}, {}", p.message)),
        (None, 0) => ("up_to_date", "up to date".to_string()),
        (None, n) => ("behind", format!("behind {n}, uploading")),
    };
    Ok(ReplicaStatus {
        name: t.name.clone(),
        kind: t.kind,
        location: t.location.clone(),
        port: t.port,
        identity: t.identity.clone(),
        append_only: t.append_only,
        added_at_ms: t.added_at_ms,
        host_id,
        replicated: c.replicated,
        behind: c.behind,
        skipped: c.skipped,
        lag_ms: c.oldest_behind_ms.map(|at| (crate::now_ms() - at).max(0)),
        state: state.into(),
        summary,
        problem,
        last_success_at_ms: t.last_success_at_ms,
        history_at_ms: t.history_at_ms,
        bytes_replicated: c.bytes,
        bytes_added: c.bytes_added,
        last_verify: t
            .last_verify
            .as_deref()
            .and_then(|v| serde_json::from_str(v).ok()),
    })
}

pub(super) fn list(store: &Store) -> Result<Vec<ReplicaStatus>> {
    store
        .replica_targets()?
        .iter()
        .map(|t| status(store, t))
        .collect()
}

pub(super) fn one(store: &Store, name: &str) -> Result<ReplicaStatus> {
    status(store, &store.replica_target(name)?)
}

pub(super) fn add(data_dir: &Path, store: &mut Store, req: AddReplica) -> Result<ReplicaAdded> {
    let place = Place::parse(req.kind, &req.location, req.port, req.identity.as_deref())?;
    let name = match req.name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => {
            crate::store::validate_engine_name(n).map_err(|_| {
                Error::InvalidInput(format!(
                    "invalid replica name {n:?}: use 1-64 characters of a-z, 0-9, _ and -"
                ))
            })?;
            n.to_string()
        }
        _ => place.default_name(),
    };
    if store.replica_target(&name).is_ok() {
        return Err(Error::InvalidInput(format!(
            "a replica named {name:?} exists already"
        )));
    }
    let (key, new_key) = replica::key_or_new(data_dir)?;
    let host = store.host_id()?;
    // A new key is written down only once the place has taken nothing
    // else: a refused add leaves no key behind (and a place that holds a
    // repository made with another key refuses this one).
    let key_file = replica::key_path(data_dir);
    let (repo, created) = replica::open_or_init(&place, &key, || {
        if new_key {
            replica::write_key(&key_file, &key)
        } else {
            Ok(())
        }
    })?;
    let repo_id = repo.config().id.to_hex().to_string();
    let t = store.add_replica_target(&NewReplicaTarget {
        name: &name,
        kind: place.kind,
        location: &place.location,
        port: place.port,
        identity: place.identity.as_deref(),
        append_only: req.append_only,
        repository_id: Some(&repo_id),
        added_at_ms: crate::now_ms(),
    })?;
    tracing::info!(replica = %name, at = %place.describe(), created, host = %host, "replica added");
    Ok(ReplicaAdded {
        replica: status(store, &t)?,
        created,
        new_key: new_key.then_some(key),
        key_file: replica::key_path(data_dir).display().to_string(),
    })
}

pub(super) fn remove(store: &mut Store, name: &str) -> Result<RemovedReplica> {
    let t = store.remove_replica_target(name)?;
    Ok(RemovedReplica {
        location: Place::of(&t).describe(),
        name: t.name,
    })
}

pub(super) fn key(data_dir: &Path) -> Result<ReplicaKey> {
    let path = replica::key_path(data_dir);
    Ok(ReplicaKey {
        key: replica::read_key(&path)?,
        key_file: path.display().to_string(),
    })
}

pub(super) fn verify(
    data_dir: &Path,
    store: &mut Store,
    name: &str,
    req: VerifyReplica,
) -> Result<ReplicaVerifyReport> {
    let t = store.replica_target(name)?;
    let key = replica::read_key(&replica::key_path(data_dir))?;
    let report = replica::verify(&Place::of(&t), &key, &req)?;
    let json = serde_json::to_string(&report).map_err(|e| Error::Encode(e.to_string()))?;
    store.record_replica_verify(t.id, &json)?;
    Ok(report)
}

pub(super) fn prune(data_dir: &Path, store: &mut Store, name: &str) -> Result<ReplicaPruneReport> {
    let t = store.replica_target(name)?;
    let key = replica::read_key(&replica::key_path(data_dir))?;
    let host = store.host_id()?;
    let report = replica::prune(&Place::of(&t), &key, &t, store, &host)?;
    store.forget_replica_copies(t.id, &report.forgotten)?;
    Ok(report)
}

pub(super) fn backups(store: &Store, name: &str) -> Result<Vec<ReplicaBackup>> {
    store.replica_copies(store.replica_target(name)?.id)
}

pub(super) fn retrieve(
    data_dir: &Path,
    store: &mut Store,
    name: &str,
    req: RetrieveBackup,
) -> Result<Backup> {
    let t = store.replica_target(name)?;
    let key = replica::read_key(&replica::key_path(data_dir))?;
    let host = store.host_id()?;
    replica::retrieve(&Place::of(&t), &key, store, &host, req.backup_id)?;
    Ok(Backup::from(&store.get_backup(req.backup_id)?))
}

/// What a recovery needs: the replica, its key, the new data directory.
pub struct Recover {
    pub place: Place,
    /// The key file (or the key typed at a prompt, in `key`).
    pub key_file: Option<PathBuf>,
    pub key: Option<String>,
    pub data_dir: PathBuf,
    pub host: Option<String>,
    /// What to call the replica in the new data directory.
    pub name: Option<String>,
}

/// Rebuilds a whole timeline from a replica into a new data directory
/// (created if missing; one that holds a database is refused before
/// anything is written), keeps the key there and adds the replica as its
/// target, so the recovered machine goes on replicating where the lost
/// one stopped. Engram resumes from the newest recovered backup at its
/// next start.
///
/// All or nothing: the timeline is rebuilt in `engram.db.recovering` and
/// renamed into place only once it is complete, so a recovery that fails
/// or is killed half-way leaves no partial timeline for the next start to
/// run from (its leftovers are cleared by the next attempt). A replica
/// from which no backup could be recovered is an error.
pub fn recover(r: Recover, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<RecoverReport> {
    let key = match (&r.key, &r.key_file) {
        (Some(k), _) if !k.trim().is_empty() => k.trim().to_string(),
        (_, Some(f)) => replica::read_key(f)?,
        _ => {
            return Err(Error::InvalidInput(
                "give the replica's key (--key-file FILE, or type it at the prompt)".into(),
            ));
        }
    };
    crate::runtime::check_data_dir(&r.data_dir)?;
    let db = r.data_dir.join(crate::store::DB_FILE);
    if db.exists() {
        return Err(Error::InvalidInput(format!(
            "{} already holds Engram data: recover into a new or empty data directory",
            r.data_dir.display()
        )));
    }
    // A key file already here (an earlier attempt, or put here by hand)
    // is kept when it is this key, and never replaced by another.
    let key_file = replica::key_path(&r.data_dir);
    let key_here = match replica::read_key(&key_file) {
        Ok(k) if k == key => true,
        Ok(_) => {
            return Err(Error::InvalidInput(format!(
                "{} holds a different replica key: recover into a new or empty data directory",
                key_file.display()
            )));
        }
        Err(Error::NotFound { .. }) => false,
        Err(e) => return Err(e),
    };
    // The replica is opened (key checked) before anything is created.
    let repo_id = replica::open(&r.place, &key)?
        .config()
        .id
        .to_hex()
        .to_string();
    std::fs::create_dir_all(&r.data_dir).map_err(|e| Error::io("create", &r.data_dir, e))?;
    let _lock = crate::runtime::DataDirLock::acquire(&r.data_dir)?;
    let staging = r.data_dir.join(RECOVERING_DB);
    remove_database_files(&staging)?;
    let built = (|| {
        let mut store = Store::open(&staging)?;
        let mut report = replica::recover(
            &mut store,
            &replica::RecoverOptions {
                place: &r.place,
                key: &key,
                host: r.host.as_deref(),
                progress,
            },
        )?;
        if report.recovered.is_empty() {
            return Err(Error::InvalidInput(format!(
                "no backup could be recovered from {}{}",
                r.place.describe(),
                match report.skipped.is_empty() {
                    true => " (it holds none)".to_string(),
                    false => format!(": {}", report.skipped.join("; ")),
                }
            )));
        }
        let name = r.name.clone().unwrap_or_else(|| r.place.default_name());
        store.add_replica_target(&NewReplicaTarget {
            name: &name,
            kind: r.place.kind,
            location: &r.place.location,
            port: r.place.port,
            identity: r.place.identity.as_deref(),
            append_only: false,
            repository_id: Some(&repo_id),
            added_at_ms: crate::now_ms(),
        })?;
        store.close_into_main_file()?;
        if !key_here {
            replica::write_key(&key_file, &key)?;
        }
        durable_rename(&staging, &db)?;
        report.data_dir = r.data_dir.display().to_string();
        Ok(report)
    })();
    if built.is_err() {
        let _ = remove_database_files(&staging);
    }
    built
}

/// Where [`recover`] builds the timeline before it is moved into place.
pub const RECOVERING_DB: &str = "engram.db.recovering";

/// Moves a finished file into place so that a power cut leaves either the
/// old name or the new one, the bytes on disk in both.
fn durable_rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::File::open(from)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("sync", from, e))?;
    std::fs::rename(from, to).map_err(|e| Error::io("rename into", to, e))?;
    if let Some(dir) = to.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("sync", dir, e))?;
    }
    Ok(())
}

/// Removes a database file and its WAL and shared-memory files.
pub(super) fn remove_database_files(db: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let p = PathBuf::from(p);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("remove", &p, e));
            }
            _ => {}
        }
    }
    Ok(())
}

impl Api {
    fn data_dir(&self) -> ApiResult<PathBuf> {
        Ok(self.runtime()?.data_dir().to_path_buf())
    }

    /// Runs `f` on a connection of its own on the blocking pool: a
    /// repository may take long, and the writer must not wait for it.
    async fn on_replicas<T: Send + 'static>(
        &self,
        write: bool,
        f: impl FnOnce(&Path, &mut Store) -> Result<T> + Send + 'static,
    ) -> ApiResult<T> {
        let dir = self.data_dir()?;
        let out = tokio::task::spawn_blocking(move || {
            let db = dir.join(crate::store::DB_FILE);
            let mut store = if write {
                Store::open(&db)?
            } else {
                Store::open_read_only(&db)?
            };
            f(&dir, &mut store)
        })
        .await
        .map_err(|e| Error::Internal(format!("replica task failed: {e}")))??;
        Ok(out)
    }

    /// Every replica and how far it is.
    pub async fn replicas(&self) -> ApiResult<Vec<ReplicaStatus>> {
        self.on_replicas(false, |_, s| list(s)).await
    }

    /// One replica.
    pub async fn replica(&self, name: String) -> ApiResult<ReplicaStatus> {
        self.on_replicas(false, move |_, s| one(s, &name)).await
    }

    /// Adds a replica target and starts uploading to it.
    pub async fn add_replica(&self, req: AddReplica) -> ApiResult<ReplicaAdded> {
        let added = self.on_replicas(true, move |d, s| add(d, s, req)).await?;
        self.runtime()?.replicate_soon();
        Ok(added)
    }

    /// Forgets a replica (deletes nothing there).
    pub async fn remove_replica(&self, name: String) -> ApiResult<RemovedReplica> {
        self.on_replicas(true, move |_, s| remove(s, &name)).await
    }

    /// The repository key.
    pub async fn replica_key(&self) -> ApiResult<ReplicaKey> {
        self.on_replicas(false, |d, _| key(d)).await
    }

    /// Checks a replica.
    pub async fn verify_replica(
        &self,
        name: String,
        req: VerifyReplica,
    ) -> ApiResult<ReplicaVerifyReport> {
        self.on_replicas(true, move |d, s| verify(d, s, &name, req))
            .await
    }

    /// Prunes a replica by this data directory's retention.
    pub async fn prune_replica(&self, name: String) -> ApiResult<ReplicaPruneReport> {
        self.on_replicas(true, move |d, s| prune(d, s, &name)).await
    }

    /// The backups a replica holds.
    pub async fn replica_backups(&self, name: String) -> ApiResult<Vec<ReplicaBackup>> {
        self.on_replicas(false, move |_, s| backups(s, &name)).await
    }

    /// Brings a backup deleted here back from a replica.
    pub async fn retrieve_backup(&self, name: String, req: RetrieveBackup) -> ApiResult<Backup> {
        self.on_replicas(true, move |d, s| retrieve(d, s, &name, req))
            .await
    }
}

impl Offline {
    /// Every replica and how far it is.
    pub fn replicas(&self) -> Result<Vec<ReplicaStatus>> {
        list(&self.open_read()?)
    }

    /// One replica.
    pub fn replica(&self, name: String) -> Result<ReplicaStatus> {
        one(&self.open_read()?, &name)
    }

    /// Adds a replica target (uploads start when Engram runs).
    pub fn add_replica(&self, req: AddReplica) -> Result<ReplicaAdded> {
        let (mut store, _lock) = self.open_write_or_create()?;
        add(self.data_dir(), &mut store, req)
    }

    /// Forgets a replica.
    pub fn remove_replica(&self, name: String) -> Result<RemovedReplica> {
        let (mut store, _lock) = self.open_write()?;
        remove(&mut store, &name)
    }

    /// The repository key.
    pub fn replica_key(&self) -> Result<ReplicaKey> {
        key(self.data_dir())
    }

    /// Checks a replica.
    pub fn verify_replica(&self, name: String, req: VerifyReplica) -> Result<ReplicaVerifyReport> {
        let (mut store, _lock) = self.open_write()?;
        verify(self.data_dir(), &mut store, &name, req)
    }

    /// Prunes a replica.
    pub fn prune_replica(&self, name: String) -> Result<ReplicaPruneReport> {
        let (mut store, _lock) = self.open_write()?;
        prune(self.data_dir(), &mut store, &name)
    }

    /// The backups a replica holds.
    pub fn replica_backups(&self, name: String) -> Result<Vec<ReplicaBackup>> {
        backups(&self.open_read()?, &name)
    }

    /// Brings a backup deleted here back from a replica.
    pub fn retrieve_backup(&self, name: String, req: RetrieveBackup) -> Result<Backup> {
        let (mut store, _lock) = self.open_write()?;
        retrieve(self.data_dir(), &mut store, &name, req)
    }
}
