//! The fleet operations, one body each, shared by the running [`Api`] and
//! the [`Offline`] one. PostgreSQL is talked to on the blocking pool (the
//! writer never waits on the network); the catalog's reads come from
//! PostgreSQL only.

use super::{Api, Offline};
use crate::error::{Error, ErrorCode, Result};
use crate::fleet::{self, Reader};
use crate::replica::{self, Place};
use crate::store::Store;
use crate::wire::{
    ApiResult, FleetBackupPage, FleetBackupsQuery, FleetHost, FleetJoin, FleetLeft, FleetName,
    FleetProblem, FleetRestore, FleetRestoreReport, FleetSeries, FleetStatus, FleetTimeline,
    FleetTimelineQuery, RestoreReport, SeriesRequest,
};
use std::path::{Path, PathBuf};

/// How this host's membership stands (the store and `fleet.conf` only).
fn status(data_dir: &Path, store: &Store) -> Result<FleetStatus> {
    let host_id = store.host_id_if_any()?.unwrap_or_default();
    let name = store.host_name()?.unwrap_or_else(fleet::system_host_name);
    let member = store.fleet_member()?;
    let url = fleet::read_url(data_dir).ok().flatten();
    let (queued, oldest) = store.fleet_queue()?;
    let Some(m) = member else {
        return Ok(FleetStatus {
            joined: false,
            url: None,
            host_id,
            name,
            state: "not_joined".into(),
            summary: "not in a fleet".into(),
            queued: 0,
            lag_ms: None,
            joined_at_ms: None,
            last_success_at_ms: None,
            pushed_rows: 0,
            refused_rows: 0,
            last_refused: None,
            problem: None,
        });
    };
    let problem = m.last_error.as_ref().map(|(code, message)| FleetProblem {
        code: ErrorCode::from_name(code).unwrap_or(ErrorCode::FleetUnavailable),
        message: message.clone(),
        at_ms: m.last_attempt_at_ms.unwrap_or(0),
    });
    let problem = match (&url, problem) {
        (None, _) => Some(FleetProblem {
            code: ErrorCode::InvalidInput,
            message: format!(
                "{} is missing: join the fleet again",
                fleet::conf_path(data_dir).display()
            ),
            at_ms: crate::now_ms(),
        }),
        (_, p) => p,
    };
    let (state, summary) = match (&problem, queued) {
        (Some(p), n) => ("failing", format!("{n} changes waiting; {}", p.message)),
        (None, 0) if m.last_success_at_ms.is_some() => ("up_to_date", "up to date".into()),
        (None, 0) => ("behind", "connecting".into()),
        (None, n) => ("behind", format!("sending {n} changes")),
    };
    Ok(FleetStatus {
        joined: true,
        url: url.as_deref().map(fleet::masked),
        host_id,
        name,
        state: state.into(),
        summary,
        queued,
        lag_ms: oldest.map(|at| (crate::now_ms() - at).max(0)),
        joined_at_ms: Some(m.joined_at_ms),
        last_success_at_ms: m.last_success_at_ms,
        pushed_rows: m.pushed_rows,
        refused_rows: m.refused_rows,
        last_refused: m.last_refused,
        problem,
    })
}

/// Joins: the URL is checked by connecting (the schema made or brought up
/// to date, this host claimed) before anything is kept here; then the URL
/// goes into `fleet.conf` (owner-only) and everything there is is queued.
fn join(data_dir: &Path, store: &mut Store, req: FleetJoin) -> Result<FleetStatus> {
    if req.take_over && req.new_id {
        return Err(Error::InvalidInput(
            "take_over and new_id exclude each other: a moved data directory takes its id over, a copy gets a new one".into(),
        ));
    }
    let url = req.url.trim().to_string();
    fleet::parse(&url)?;
    let name = match req.name.as_deref() {
        Some(n) => fleet::validate_host_name(n)?,
        None => store.host_name()?.unwrap_or_else(fleet::system_host_name),
    };
    if req.new_id {
        store.new_host_id()?;
    }
    let host = store.host_id()?;
    let shown = fleet::masked(&url);
    let mut client = fleet::connect(&url)?;
    fleet::ensure_schema(&mut client, &shown)?;
    fleet::claim(
        &mut client,
        &shown,
        &host,
        &name,
        &fleet::fingerprint(data_dir),
        req.take_over,
    )?;
    drop(client);
    fleet::write_url(data_dir, &url)?;
    store.set_host_name(&name)?;
    store.join_fleet(crate::now_ms())?;
    tracing::info!(fleet = %shown, host = %host, name = %name, "joined the fleet");
    status(data_dir, store)
}

/// Leaves: this host's rows leave the catalog when it can be reached
/// (they stay, marked stale, when not); the membership, the queue and
/// `fleet.conf` go here. Nothing else here changes.
fn leave(data_dir: &Path, store: &mut Store) -> Result<FleetLeft> {
    let url = fleet::read_url(data_dir).ok().flatten();
    let was_member = store.fleet_member()?.is_some() || url.is_some();
    let mut removed = false;
    let mut message = String::new();
    if let (Some(url), Some(host)) = (url, store.host_id_if_any()?) {
        match fleet::forget_host(&url, &host, &fleet::fingerprint(data_dir)) {
            Ok(n) => removed = n,
            Err(e) => {
                message = format!(
                    "the fleet could not be reached to remove this host's rows ({e}); they stay there, marked stale"
                );
            }
        }
    }
    store.leave_fleet()?;
    fleet::remove_url(data_dir)?;
    if message.is_empty() {
        message = if was_member {
            "left the fleet".into()
        } else {
            "this host was not in a fleet".into()
        };
    }
    Ok(FleetLeft {
        was_member,
        removed_from_catalog: removed,
        message,
    })
}

fn rename(data_dir: &Path, store: &mut Store, req: FleetName) -> Result<FleetStatus> {
    let name = fleet::validate_host_name(&req.name)?;
    store.set_host_name(&name)?;
    status(data_dir, store)
}

fn url_of(data_dir: &Path) -> Result<String> {
    fleet::read_url(data_dir)?.ok_or_else(|| {
        Error::InvalidInput(
            "this Engram is not in a fleet: join one first (engram fleet join postgresql://…)"
                .into(),
        )
    })
}

fn hosts(data_dir: &Path, me: &str, reader: &Reader) -> Result<Vec<FleetHost>> {
    let url = url_of(data_dir)?;
    reader.with(&url, |c, shown| fleet::read::hosts(c, shown, me))
}

fn timeline(data_dir: &Path, reader: &Reader, q: &FleetTimelineQuery) -> Result<FleetTimeline> {
    let url = url_of(data_dir)?;
    reader.with(&url, |c, shown| fleet::read::timeline(c, shown, q))
}

fn series(data_dir: &Path, reader: &Reader, q: &SeriesRequest) -> Result<Vec<FleetSeries>> {
    let url = url_of(data_dir)?;
    reader.with(&url, |c, shown| fleet::read::series(c, shown, q))
}

fn backups(data_dir: &Path, reader: &Reader, q: &FleetBackupsQuery) -> Result<FleetBackupPage> {
    let url = url_of(data_dir)?;
    reader.with(&url, |c, shown| fleet::read::backups(c, shown, q))
}

/// A fleet backup's snapshot read from a replica this data directory has
/// (one that holds it), each state checked against the fleet's hash; then
/// imported here (`imported`, its origin naming the host and backup).
/// Returns the new backup's id and the states checked.
fn take_in(
    data_dir: &Path,
    store: &mut Store,
    reader: &Reader,
    req: &FleetRestore,
) -> Result<(i64, Vec<String>, Vec<String>)> {
    let url = url_of(data_dir)?;
    let (backup, snapshots) = reader.with(&url, |c, shown| {
        let host = fleet::read::resolve_host(c, shown, &req.host)?;
        let b = fleet::read::backup(c, shown, &host, req.backup)?;
        let mut snaps = Vec::new();
        for repo in &b.replicas {
            if let Some(s) = fleet::read::replica_snapshot(c, shown, &host, req.backup, repo)? {
                snaps.push((repo.clone(), s));
            }
        }
        Ok((b, snaps))
    })?;
    if let Some(only) = &req.only
        && !backup.states.iter().any(|s| &s.name == only)
    {
        return Err(Error::NotFound {
            what: "state in that backup",
            id: format!(
                "{only} (backup {} of {} holds {})",
                backup.id,
                backup.host_name,
                backup
                    .states
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let targets = store.replica_targets()?;
    let Some((target, snapshot)) = snapshots.iter().find_map(|(repo, snap)| {
        targets
            .iter()
            .find(|t| t.repository_id.as_deref() == Some(repo.as_str()))
            .map(|t| (t, snap))
    }) else {
        return Err(Error::InvalidInput(if backup.replicas.is_empty() {
            format!(
                "backup {} of {} is in no offsite replica yet: its states are only on that host (it uploads them when it has a replica and is running)",
                backup.id, backup.host_name
            )
        } else {
            format!(
                "backup {} of {} is in replica repositories {} and this Engram has none of them: add one as a replica here (engram replicas add, with the same key) to restore from it",
                backup.id,
                backup.host_name,
                backup.replicas.join(", ")
            )
        }));
    };
    let key = replica::read_key(&replica::key_path(data_dir))?;
    let (made_by, snap) = replica::fetch(&Place::of(target), &key, snapshot)?;
    if made_by != backup.host_id {
        return Err(Error::corrupt(
            format!("backup {} of {}", backup.id, backup.host_name),
            format!(
                "the replica's snapshot {snapshot} was made by host {made_by}, the fleet says {}",
                backup.host_id
            ),
        ));
    }
    // Every state against the fleet's record of it, by content hash.
    let mut verified = Vec::new();
    let engines = snap
        .states
        .iter()
        .map(|s| (s.engine.clone(), s.state.checksum().to_hex()));
    let learners = snap
        .manifest
        .learners
        .iter()
        .zip(&snap.learner_states)
        .map(|(l, b)| (l.name.clone(), crate::codec::Checksum::of(b).to_hex()));
    for (name, got) in engines.chain(learners) {
        let want = backup
            .states
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.checksum.clone())
            .ok_or_else(|| {
                Error::corrupt(
                    &name,
                    format!(
                        "the replica's backup {} of {} holds a state the fleet does not list",
                        backup.id, backup.host_name
                    ),
                )
            })?;
        if got != want {
            return Err(Error::corrupt(
                &name,
                format!(
                    "in the replica it hashes to {got}, the fleet recorded {want}: the copy is not the backup {} of {} made",
                    backup.id, backup.host_name
                ),
            ));
        }
        verified.push(name);
    }
    if verified.len() != backup.states.len() {
        return Err(Error::corrupt(
            format!("backup {} of {}", backup.id, backup.host_name),
            format!(
                "the replica holds {} of its {} states",
                verified.len(),
                backup.states.len()
            ),
        ));
    }
    let learner_names: Vec<String> = snap
        .manifest
        .learners
        .iter()
        .map(|l| l.name.clone())
        .filter(|n| req.only.as_ref().is_none_or(|o| o == n))
        .collect();
    let from = serde_json::json!({
        "host_id": backup.host_id,
        "host_name": backup.host_name,
        "backup": backup.id,
        "kind": backup.kind,
        "created_at_ms": backup.created_at_ms,
    });
    let said = format!(
        "{} backup #{} of host {}",
        backup.kind, backup.id, backup.host_name
    );
    let id = store.import_snapshot_from(&snap, crate::now_ms(), Some((from, said)))?;
    tracing::info!(host = %backup.host_name, backup = backup.id, imported_as = id, "fleet backup taken in");
    Ok((id, verified, learner_names))
}

impl Api {
    async fn on_fleet<T: Send + 'static>(
        &self,
        write: bool,
        f: impl FnOnce(&Path, &mut Store, &Reader) -> Result<T> + Send + 'static,
    ) -> ApiResult<T> {
        let dir = self.runtime()?.data_dir().to_path_buf();
        let reader = self.fleet_reader.clone();
        let out = tokio::task::spawn_blocking(move || {
            let db = dir.join(crate::store::DB_FILE);
            let mut store = if write {
                Store::open(&db)?
            } else {
                Store::open_read_only(&db)?
            };
            f(&dir, &mut store, &reader)
        })
        .await
        .map_err(|e| Error::Internal(format!("fleet task failed: {e}")))??;
        Ok(out)
    }

    /// How this host's fleet membership and sync stand.
    pub async fn fleet_status(&self) -> ApiResult<FleetStatus> {
        self.on_fleet(false, |d, s, _| status(d, s)).await
    }

    /// Joins a fleet.
    pub async fn fleet_join(&self, req: FleetJoin) -> ApiResult<FleetStatus> {
        let out = self.on_fleet(true, move |d, s, _| join(d, s, req)).await?;
        self.runtime()?.sync_fleet_soon();
        Ok(out)
    }

    /// Leaves the fleet.
    pub async fn fleet_leave(&self) -> ApiResult<FleetLeft> {
        let out = self.on_fleet(true, |d, s, _| leave(d, s)).await?;
        self.runtime()?.sync_fleet_soon();
        Ok(out)
    }

    /// Renames this host in the fleet.
    pub async fn fleet_rename(&self, req: FleetName) -> ApiResult<FleetStatus> {
        let out = self
            .on_fleet(true, move |d, s, _| rename(d, s, req))
            .await?;
        self.runtime()?.sync_fleet_soon();
        Ok(out)
    }

    /// Every host of the fleet.
    pub async fn fleet_hosts(&self) -> ApiResult<Vec<FleetHost>> {
        self.on_fleet(false, |d, s, r| {
            let me = s.host_id_if_any()?.unwrap_or_default();
            hosts(d, &me, r)
        })
        .await
    }

    /// One page of every host's backups.
    pub async fn fleet_backups(&self, q: FleetBackupsQuery) -> ApiResult<FleetBackupPage> {
        self.on_fleet(false, move |d, _, r| backups(d, r, &q)).await
    }

    /// The all-hosts timeline of a range.
    pub async fn fleet_timeline(&self, q: FleetTimelineQuery) -> ApiResult<FleetTimeline> {
        self.on_fleet(false, move |d, _, r| timeline(d, r, &q))
            .await
    }

    /// One metric on every host that has it.
    pub async fn fleet_series(&self, q: SeriesRequest) -> ApiResult<Vec<FleetSeries>> {
        self.on_fleet(false, move |d, _, r| series(d, r, &q)).await
    }

    /// Restores here a backup any host of the fleet made: taken in from a
    /// shared replica (checked against the fleet's hashes) as an
    /// `imported` backup, then restored as any restore is (a pre-restore
    /// backup first; learners attached here take it through
    /// `run.restored()`).
    pub async fn fleet_restore(&self, req: FleetRestore) -> ApiResult<FleetRestoreReport> {
        let only = req.only.clone();
        let (id, verified, learners) = self
            .on_fleet(true, move |d, s, r| take_in(d, s, r, &req))
            .await?;
        let restore = self
            .restore_backup(id, crate::wire::RestoreRequest { engine: only })
            .await?;
        Ok(FleetRestoreReport {
            imported_as: id,
            restore,
            learners,
            verified,
        })
    }
}

/// Runs `f` on a thread of its own: PostgreSQL's blocking client runs a
/// runtime of its own, which must not start inside a caller's async task
/// (an `Offline` call may come from one).
fn off_async<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|_| Err(Error::Internal("the fleet call panicked".into())))
    })
}

impl Offline {
    fn fleet_dir(&self) -> PathBuf {
        self.data_dir().to_path_buf()
    }

    /// How this host's fleet membership stands.
    pub fn fleet_status(&self) -> Result<FleetStatus> {
        status(self.data_dir(), &self.open_read()?)
    }

    /// Joins a fleet (the sync starts when Engram runs).
    pub fn fleet_join(&self, req: FleetJoin) -> Result<FleetStatus> {
        off_async(|| {
            let (mut store, _lock) = self.open_write_or_create()?;
            join(&self.fleet_dir(), &mut store, req)
        })
    }

    /// Leaves the fleet.
    pub fn fleet_leave(&self) -> Result<FleetLeft> {
        off_async(|| {
            let (mut store, _lock) = self.open_write()?;
            leave(&self.fleet_dir(), &mut store)
        })
    }

    /// Renames this host in the fleet.
    pub fn fleet_rename(&self, req: FleetName) -> Result<FleetStatus> {
        let (mut store, _lock) = self.open_write()?;
        rename(&self.fleet_dir(), &mut store, req)
    }

    /// Every host of the fleet.
    pub fn fleet_hosts(&self) -> Result<Vec<FleetHost>> {
        let me = self.open_read()?.host_id_if_any()?.unwrap_or_default();
        off_async(|| hosts(self.data_dir(), &me, &Reader::default()))
    }

    /// One page of every host's backups.
    pub fn fleet_backups(&self, q: FleetBackupsQuery) -> Result<FleetBackupPage> {
        off_async(|| backups(self.data_dir(), &Reader::default(), &q))
    }

    /// The all-hosts timeline of a range.
    pub fn fleet_timeline(&self, q: FleetTimelineQuery) -> Result<FleetTimeline> {
        off_async(|| timeline(self.data_dir(), &Reader::default(), &q))
    }

    /// One metric on every host that has it.
    pub fn fleet_series(&self, q: SeriesRequest) -> Result<Vec<FleetSeries>> {
        off_async(|| series(self.data_dir(), &Reader::default(), &q))
    }

    /// Restores here a backup any host of the fleet made.
    pub fn fleet_restore(&self, req: FleetRestore) -> Result<FleetRestoreReport> {
        let only = req.only.clone();
        let (id, verified, learners) = off_async(|| {
            let (mut store, _lock) = self.open_write()?;
            take_in(&self.fleet_dir(), &mut store, &Reader::default(), &req)
        })?;
        let restore: RestoreReport =
            self.restore_backup(id, crate::wire::RestoreRequest { engine: only })?;
        Ok(FleetRestoreReport {
            imported_as: id,
            restore,
            learners,
            verified,
        })
    }
}
