//! The one API of Engram, the top of the core (nothing in it imports
//! `api`). Every front door — the HTTP server of `engram serve`, the
//! desktop app's IPC commands, the `engram` CLI — reaches it through the
//! declared operations ([`operations`]) and hands back the typed result or
//! the [`ApiError`]. No front door builds JSON or
//! maps errors by hand.
//!
//! - [`Api`] serves a running [`Runtime`] (HTTP and desktop).
//! - [`Offline`] serves a data directory no process is running (the CLI
//!   without a running Engram); changes take the writer lock.
//! - [`operations`] declares every operation once; [`typescript`] renders
//!   the wire types ([`crate::wire`]) and the operations for the UI.
//! - `learners` is the learner API (saves streamed into objects or lent
//!   slots), `convert` turns store rows into wire types.
//!
//! Must not: know about HTTP, Tauri or terminals; hold any state of its own.

mod compare;
mod convert;
mod drill;
mod first_run;
mod fleet;
mod learners;
mod offline;
pub mod operations;
pub mod python;
mod replicas;
pub mod typescript;

pub use learners::LearnerStateFile;
pub use offline::Offline;
pub use operations::{
    ByteOperation, NoKey, Operation, RequestIn, Runs, SettingsPatch, byte_op, op,
};
pub use replicas::{RECOVERING_DB, Recover, recover};

use crate::runtime::{Runtime, RuntimeOptions};
use crate::snapshot;
use crate::wire::{
    ApiError, ApiResult, Backup, BackupPage, CreateBackup, Deleted, EngineStatus, ExportFile,
    ExportRequest, Exported, Hold, LabelRequest, ListBackups, RestoreReport, RestoreRequest,
    RetentionOutlook, RetentionRequest, SeriesRequest, SettingField, Status,
};
use crate::wire::{Event, Settings};
use crate::wire::{MetricSeries, StorageReport, TimelineQuery, TimelineView};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tokio_stream::{Stream, StreamExt, wrappers::BroadcastStream};

/// The API over a running runtime — or over the reason it could not start,
/// which every call then reports (the desktop window stays up to show it),
/// or over a data directory that waits for its first-run choice
/// ([`Api::start_or_wait`]).
pub struct Api {
    /// Set once: at start, or when a first-run choice has started it.
    runtime: std::sync::OnceLock<Runtime>,
    /// Why there is no runtime, while there is none.
    absent: ApiError,
    /// The first run's choice and recovery (empty unless it waited).
    first: first_run::Waiting,
    /// Imports run one at a time: each may hold a snapshot's states in
    /// memory (up to `limits::MAX_SNAPSHOT_STATE_BYTES`), so concurrent
    /// ones queue instead of adding up.
    imports: tokio::sync::Semaphore,
    /// The slots each learner's saves in progress are writing (see
    /// `learners::SlotClaim`).
    slots: learners::SlotClaims,
    /// The slots lent to learners for their next save (see
    /// `learners::SlotLease`).
    leases: learners::Leases,
    /// The fleet catalog's reads: one connection, kept.
    fleet_reader: std::sync::Arc<crate::fleet::Reader>,
}

impl Api {
    fn with(runtime: Result<Runtime, ApiError>, first: first_run::Waiting) -> Api {
        let (runtime, absent) = match runtime {
            Ok(rt) => {
                let absent = first_run::not_started(rt.data_dir());
                (std::sync::OnceLock::from(rt), absent)
            }
            Err(e) => (std::sync::OnceLock::new(), e),
        };
        if runtime.get().is_some() {
            first.started.send_replace(true);
        }
        Api {
            runtime,
            absent,
            first,
            imports: tokio::sync::Semaphore::new(1),
            slots: Default::default(),
            leases: Default::default(),
            fleet_reader: Default::default(),
        }
    }

    /// Serves a running runtime.
    pub fn new(runtime: Runtime) -> Api {
        Api::with(Ok(runtime), Default::default())
    }

    /// Starts the runtime; a failure is kept and reported by every call.
    pub async fn start(opts: RuntimeOptions) -> Api {
        Api::with(
            Runtime::start(opts).await.map_err(ApiError::from),
            Default::default(),
        )
    }

    /// The runtime, or why there is none.
    pub fn runtime(&self) -> ApiResult<&Runtime> {
        self.runtime.get().ok_or_else(|| self.absent.clone())
    }

    /// The engines, their latest metrics and saves, and what start-up found.
    pub async fn status(&self) -> ApiResult<Status> {
        let rt = self.runtime()?;
        let (saved, backups) = rt
            .read(|s| Ok((s.live_metrics()?, s.count_backups()?)))
            .await?;
        let paused = rt.paused();
        let engines = rt
            .metrics()
            .into_iter()
            .map(|(name, metrics)| {
                let saved_at = saved.get(&name).map(|(_, at)| crate::rfc3339(*at));
                let paused = paused.get(&name).cloned();
                (
                    name,
                    EngineStatus {
                        metrics,
                        saved_at,
                        paused,
                    },
                )
            })
            .collect();
        let saved_at_ms = saved.values().map(|(_, at)| *at).max();
        Ok(Status {
            engines,
            saved_at: saved_at_ms.map(crate::rfc3339),
            saved_at_ms,
            running: true,
            pid: Some(std::process::id().to_string()),
            backups,
            data_dir: rt.data_dir().display().to_string(),
            startup: Some(rt.startup_report().clone()),
        })
    }

    /// One page of backups, newest first.
    pub async fn list_backups(&self, req: ListBackups) -> ApiResult<BackupPage> {
        let q = req.into_query();
        let page = self.runtime()?.read(move |s| s.list_backups(&q)).await?;
        Ok(page_view(&page))
    }

    /// One backup.
    pub async fn get_backup(&self, id: i64) -> ApiResult<Backup> {
        let b = self.runtime()?.read(move |s| s.get_backup(id)).await?;
        Ok(Backup::from(&b))
    }

    /// A `manual` backup of the engines as they are now.
    pub async fn create_backup(&self, req: CreateBackup) -> ApiResult<Backup> {
        let b = self.runtime()?.backup_now(req.label).await?;
        Ok(Backup::from(&b))
    }

    /// Restores a backup (all engines or one) after a `pre-restore` backup.
    pub async fn restore_backup(&self, id: i64, req: RestoreRequest) -> ApiResult<RestoreReport> {
        let r = self.runtime()?.restore(id, req.engine).await?;
        Ok(RestoreReport {
            from_backup: r.from_backup,
            engines: r.engines,
            pre_restore_backup: Some(r.pre_restore_backup),
        })
    }

    /// Pins a backup: retention never deletes it.
    pub async fn pin_backup(&self, id: i64) -> ApiResult<Backup> {
        self.change_backup(id, move |s| s.set_pinned(id, true))
            .await
    }

    /// Unpins a backup.
    pub async fn unpin_backup(&self, id: i64) -> ApiResult<Backup> {
        self.change_backup(id, move |s| s.set_pinned(id, false))
            .await
    }

    /// Sets or clears a backup's label.
    pub async fn set_label(&self, id: i64, req: LabelRequest) -> ApiResult<Backup> {
        self.change_backup(id, move |s| s.set_label(id, req.label.as_deref()))
            .await
    }

    /// Backup `id` against backup `req.with`: every engine's and learner's
    /// metrics in each and the change, and whether its state changed.
    pub async fn compare_backups(
        &self,
        id: i64,
        req: crate::wire::CompareRequest,
    ) -> ApiResult<crate::wire::Comparison> {
        Ok(self
            .runtime()?
            .read(move |s| compare::compare_backups(s, id, req.target()))
            .await?)
    }

    /// Deletes a backup; protected ones are refused with the reason.
    pub async fn delete_backup(&self, id: i64) -> ApiResult<Deleted> {
        self.runtime()?
            .with_store(move |s| s.delete_backup(id))
            .await?;
        Ok(Deleted { deleted: id })
    }

    /// A backup as a portable file, in memory.
    pub async fn export_backup(&self, id: i64, req: ExportRequest) -> ApiResult<ExportFile> {
        let format = req.format;
        let bytes = self
            .runtime()?
            .read(move |s| snapshot::export_backup(s, id, format))
            .await?;
        Ok(ExportFile {
            file_name: export_file_name(id, format),
            media_type: format.media_type(),
            bytes,
        })
    }

    /// A backup written to a file the user chose.
    pub async fn export_backup_to(
        &self,
        id: i64,
        req: ExportRequest,
        path: PathBuf,
    ) -> ApiResult<Exported> {
        let shown = path.display().to_string();
        let bytes = self
            .runtime()?
            .read(move |s| snapshot::export_to_file(s, id, req.format, &path))
            .await?;
        Ok(Exported {
            id,
            path: shown,
            bytes,
        })
    }

    /// Checks a snapshot file completely, then adds it as an `imported` backup.
    pub async fn import_snapshot(&self, bytes: &[u8]) -> ApiResult<Backup> {
        let rt = self.runtime()?;
        let _one_at_a_time = self
            .imports
            .acquire()
            .await
            .map_err(|_| crate::Error::Internal("the import queue is closed".into()))?;
        let snap = snapshot::parse(bytes)?;
        let b = rt
            .with_store(move |s| {
                let id = s.import_snapshot(&snap, crate::now_ms())?;
                s.get_backup(id)
            })
            .await?;
        Ok(Backup::from(&b))
    }

    /// Why each backup asked about is kept, and whether the next periodic
    /// backup rolls it off (the plan always covers every backup; only the
    /// answer is limited to `req.ids`, unknown ids are left out).
    pub async fn retention(&self, req: RetentionRequest) -> ApiResult<Vec<RetentionOutlook>> {
        let rt = self.runtime()?;
        let settings = rt.settings().await?;
        let next = crate::now_ms() + (settings.backup_every_secs * 1000.0) as i64;
        let policy = settings.retention;
        let outlook = rt
            .with_store(move |s| s.retention_outlook(&policy, next))
            .await?;
        // Reasons are put in words only for the backups asked about.
        let wanted: std::collections::BTreeSet<i64> = req.ids.into_iter().collect();
        Ok(outlook
            .into_iter()
            .filter(|o| wanted.is_empty() || wanted.contains(&o.id))
            .map(RetentionOutlook::from)
            .collect())
    }

    /// Keeps a backup from retention while a user has it selected or is
    /// about to restore it (for [`crate::store::HOLD_FOR`]; call again to
    /// renew). Unknown ids are `not_found`.
    pub async fn hold_backup(&self, id: i64) -> ApiResult<Hold> {
        self.runtime()?.with_store(move |s| s.hold(id)).await?;
        Ok(Hold {
            id,
            seconds: crate::store::HOLD_FOR.as_secs() as u32,
        })
    }

    /// Ends a hold taken with [`Api::hold_backup`] (none held: nothing to do).
    pub async fn release_backup(&self, id: i64) -> ApiResult<Hold> {
        self.runtime()?
            .with_store(move |s| {
                s.release(id);
                Ok(())
            })
            .await?;
        Ok(Hold { id, seconds: 0 })
    }

    /// The timeline of a range: counts by kind per bucket, and the backups
    /// to draw one by one.
    pub async fn timeline(&self, q: TimelineQuery) -> ApiResult<TimelineView> {
        Ok(self.runtime()?.read(move |s| s.timeline(&q)).await?)
    }

    /// Sizes, deduplication and growth of the database.
    pub async fn storage(&self) -> ApiResult<StorageReport> {
        Ok(self.runtime()?.read(|s| s.storage_report()).await?)
    }

    /// Verifies the database and every stored state.
    pub async fn verify(&self) -> ApiResult<VerifyReport> {
        Ok(self.runtime()?.read(|s| s.verify_all(true)).await?)
    }

    /// The settings in force.
    pub async fn settings(&self) -> ApiResult<Settings> {
        Ok(self.runtime()?.settings().await?)
    }

    /// Validates, saves and applies new settings.
    pub async fn update_settings(&self, settings: Settings) -> ApiResult<Settings> {
        Ok(self.runtime()?.update_settings(settings).await?)
    }

    /// Changes only the settings `patch` names (a JSON object, nested like
    /// the settings); an unknown name or a value out of range changes nothing.
    pub async fn patch_settings(&self, patch: SettingsPatch) -> ApiResult<Settings> {
        let current = self.settings().await?;
        let merged = current.patched(&patch)?;
        self.update_settings(merged).await
    }

    /// What each setting is, its range and help text.
    pub async fn settings_schema(&self) -> ApiResult<Vec<SettingField>> {
        Ok(Settings::fields())
    }

    /// One metric's history across restarts, downsampled, with its branches.
    pub async fn metric_series(&self, req: SeriesRequest) -> ApiResult<MetricSeries> {
        let to = req.to_ms.unwrap_or_else(crate::now_ms);
        let from = req.from_ms.unwrap_or(i64::MIN);
        let points = req.points.unwrap_or(500) as usize;
        Ok(self
            .runtime()?
            .read(move |s| s.metric_series(&req.engine, &req.key, from, to, points))
            .await?)
    }

    /// What every metric means and how to print it: the built-in engines'
    /// (fixed), then each learner's — every metric it has described or
    /// logged, described as it said (else by its name), drawn as a curve.
    pub async fn metric_catalog(&self) -> ApiResult<Vec<crate::wire::MetricInfo>> {
        use crate::wire::{MetricFormat, MetricInfo};
        let mut all = crate::engines::catalog::metric_catalog();
        let Ok(rt) = self.runtime() else {
            return Ok(all);
        };
        let learners = rt
            .read(|s| {
                let mut out = Vec::new();
                for l in s.learners()? {
                    let mut keys: std::collections::BTreeSet<String> =
                        s.learner_metric_keys(&l.name)?.into_iter().collect();
                    keys.extend(l.metric_info.keys().cloned());
                    keys.extend(l.live.iter().flat_map(|v| v.metrics.keys().cloned()));
                    out.push((l, keys));
                }
                Ok(out)
            })
            .await?;
        for (l, keys) in learners {
            for key in keys {
                let said = l.metric_info.get(&key).cloned().unwrap_or_default();
                all.push(MetricInfo {
                    engine: l.name.clone(),
                    label: said.label.unwrap_or_else(|| key.clone()),
                    key,
                    unit: said.unit.unwrap_or_default(),
                    format: said.format.unwrap_or(MetricFormat::Decimal),
                    higher_is_better: said.higher_is_better,
                    card: false,
                    chart: true,
                    measured_at: None,
                    measured_when: None,
                });
            }
        }
        Ok(all)
    }

    /// Every event from now on. A listener that falls behind skips what it
    /// missed (the next metrics event carries the full picture again).
    pub fn events(&self) -> ApiResult<impl Stream<Item = Event> + Send + 'static + use<>> {
        let rx = self.runtime()?.subscribe();
        Ok(BroadcastStream::new(rx).filter_map(|e| e.ok()))
    }

    /// Saves a final time and stops the engines.
    pub async fn stop(&self) -> ApiResult<()> {
        Ok(self.runtime()?.stop().await?)
    }

    /// [`Api::stop`], giving up after `limit`: the final save waits for the
    /// engines' current tick, and a process that is asked to end must end
    /// even if one stalls (the last durable save is kept).
    pub async fn stop_within(&self, limit: std::time::Duration) -> ApiResult<()> {
        match tokio::time::timeout(limit, self.stop()).await {
            Ok(r) => r,
            Err(_) => Err(crate::Error::RuntimeStopped(format!(
                "the engines did not stop within {} s (a tick is stalled); the last durable save is kept",
                limit.as_secs()
            ))
            .into()),
        }
    }

    /// How long front doors let the final save take when the process ends.
    pub const STOP_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

    async fn change_backup(
        &self,
        id: i64,
        change: impl FnOnce(&mut crate::Store) -> crate::Result<()> + Send + 'static,
    ) -> ApiResult<Backup> {
        let b = self
            .runtime()?
            .with_store(move |s| {
                change(s)?;
                s.get_backup(id)
            })
            .await?;
        Ok(Backup::from(&b))
    }
}

/// The report of a verification.
pub type VerifyReport = crate::wire::IntegrityReport;

/// The file name an export is offered under.
pub fn export_file_name(id: i64, format: crate::wire::SnapshotFormat) -> String {
    format!("engram-backup-{id}.{}", format.extension())
}

impl ListBackups {
    /// The store query, with the API's defaults.
    pub fn into_query(self) -> crate::store::BackupQuery {
        crate::store::BackupQuery {
            kinds: self.kinds,
            engine: self.engine,
            after: self.after,
            offset: self.offset.unwrap_or(0),
            limit: self.limit.unwrap_or(50),
            text: self.text,
            pinned_only: self.pinned,
        }
    }
}

pub(crate) fn page_view(p: &crate::store::BackupPage) -> BackupPage {
    BackupPage {
        items: p.items.iter().map(Backup::from).collect(),
        next: p.next,
        total: p.total,
    }
}

/// Metrics per engine from a live-state listing.
pub(crate) fn engine_statuses(
    live: &BTreeMap<String, (crate::wire::Metrics, i64)>,
) -> BTreeMap<String, EngineStatus> {
    live.iter()
        .map(|(name, (metrics, at))| {
            (
                name.clone(),
                EngineStatus {
                    metrics: metrics.clone(),
                    saved_at: Some(crate::rfc3339(*at)),
                    paused: None,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
