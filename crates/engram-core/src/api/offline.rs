//! The API over a data directory that no process is running: the `engram`
//! CLI's `status` and `backups …`. Reads open the store read-only and work
//! while another process runs the engines; changes take the data directory's
//! writer lock and are refused (`locked`) while `run`/`serve`/the app hold it.

use super::{VerifyReport, engine_statuses};
use crate::error::{Error, Result};
use crate::runtime::{DB_FILE, DataDirLock};
use crate::wire::BackupKind;
use crate::wire::{Backup, BackupPage, RestoreReport, Status};
use crate::wire::{
    CreateBackup, Deleted, ExportRequest, Exported, LabelRequest, ListBackups, RestoreRequest,
};
use crate::{Store, snapshot};
use std::path::{Path, PathBuf};

/// A data directory, served without running its engines.
#[derive(Clone, Debug)]
pub struct Offline {
    data_dir: PathBuf,
}

impl Offline {
    pub fn new(data_dir: impl Into<PathBuf>) -> Offline {
        Offline {
            data_dir: data_dir.into(),
        }
    }

    /// The saved state of every engine, and whether a process runs them.
    pub fn status(&self) -> Result<Status> {
        let store = self.open_read()?;
        let live = store.live_metrics()?;
        let saved_at_ms = live.values().map(|(_, at)| *at).max();
        let pid = DataDirLock::is_held(&self.data_dir);
        Ok(Status {
            engines: engine_statuses(&live),
            saved_at: saved_at_ms.map(crate::rfc3339),
            saved_at_ms,
            running: pid.is_some(),
            pid,
            backups: store.count_backups()?,
            data_dir: self.data_dir.display().to_string(),
            startup: None,
        })
    }

    /// One page of backups, newest first.
    pub fn list_backups(&self, req: ListBackups) -> Result<BackupPage> {
        Ok(super::page_view(
            &self.open_read()?.list_backups(&req.into_query())?,
        ))
    }

    /// One backup.
    pub fn get_backup(&self, id: i64) -> Result<Backup> {
        Ok(Backup::from(&self.open_read()?.get_backup(id)?))
    }

    /// Backup `id` against backup `req.with` (see [`super::Api::compare_backups`]).
    pub fn compare_backups(
        &self,
        id: i64,
        req: crate::wire::CompareRequest,
    ) -> Result<crate::wire::Comparison> {
        super::compare::compare_backups(&self.open_read()?, id, req.target())
    }

    /// What each setting is, its range and help text.
    pub fn settings_schema(&self) -> Result<Vec<crate::wire::SettingField>> {
        Ok(crate::wire::Settings::fields())
    }

    /// A `manual` backup of the saved live state.
    pub fn create_backup(&self, req: CreateBackup) -> Result<Backup> {
        let (mut store, _lock) = self.open_write()?;
        let id = store.backup_live(BackupKind::Manual, crate::now_ms(), req.label, None)?;
        Ok(Backup::from(&store.get_backup(id)?))
    }

    /// Makes a backup's states live (after a `pre-restore` backup).
    pub fn restore_backup(&self, id: i64, req: RestoreRequest) -> Result<RestoreReport> {
        let (mut store, _lock) = self.open_write()?;
        // A state its engine could not run is refused before anything changes.
        let states = store.backup_states(id)?;
        crate::engines::check_states(
            &states
                .into_iter()
                .filter(|s| req.engine.as_ref().is_none_or(|e| e == &s.engine))
                .collect::<Vec<_>>(),
        )?;
        let (pre, engines) = store.restore_to_live(id, req.engine.as_deref(), crate::now_ms())?;
        Ok(RestoreReport {
            from_backup: id,
            engines,
            pre_restore_backup: pre,
        })
    }

    /// Writes a backup to a portable file.
    pub fn export_backup_to(&self, id: i64, req: ExportRequest, path: &Path) -> Result<Exported> {
        let store = self.open_read()?;
        let bytes = snapshot::export_to_file(&store, id, req.format, path)?;
        Ok(Exported {
            id,
            path: path.display().to_string(),
            bytes,
        })
    }

    /// A learner's state — live, or the one a backup holds — and its bytes,
    /// checked against its checksum. Reads only (works beside a running
    /// Engram: one that has just overwritten the slot read here makes this
    /// `corrupt_state`, not wrong bytes; asking again reads the new live
    /// state). A damaged live state is `corrupt_state` here; the running
    /// Engram falls back to a backup's.
    pub fn read_learner_state(
        &self,
        name: &str,
        req: crate::wire::ReadLearnerState,
    ) -> Result<(crate::wire::LearnerState, Vec<u8>)> {
        let store = self.open_read()?;
        let state = match req.backup {
            Some(id) => store.backup_learner_state(id, name)?,
            None => store.learner(name)?.live.ok_or_else(|| Error::NotFound {
                what: "saved state of learner",
                id: name.to_string(),
            })?,
        };
        let sum = crate::Checksum::from_hex(&state.checksum)?;
        let limit = crate::limits::MAX_LEARNER_STATE_BYTES;
        let bytes = match req.backup {
            Some(_) => store.read_learner_bytes(&sum, limit)?,
            None => store.read_live_learner_bytes(name, &sum, limit)?,
        };
        Ok((state, bytes))
    }

    /// Writes a learner's state ([`Offline::read_learner_state`]) to a
    /// file: its checked bytes, atomically, never into the data directory.
    pub fn read_learner_state_to(
        &self,
        name: &str,
        req: crate::wire::ReadLearnerState,
        path: &Path,
    ) -> Result<crate::wire::LearnerStateExported> {
        let (state, bytes) = self.read_learner_state(name, req.clone())?;
        super::learners::export_learner_state(
            &self.data_dir,
            name,
            req.backup,
            &state,
            &bytes,
            path,
        )
    }

    /// Checks a snapshot file completely, then imports it as an `imported` backup.
    pub fn import_file(&self, file: &Path) -> Result<Backup> {
        // Checked before the lock is taken or the store touched.
        let snap = snapshot::read_file(file)?;
        let (mut store, _lock) = self.open_write()?;
        let id = store.import_snapshot(&snap, crate::now_ms())?;
        Ok(Backup::from(&store.get_backup(id)?))
    }

    /// Verifies the database and every stored state.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.open_read()?.verify_all(true)
    }

    /// Pins a backup.
    pub fn pin_backup(&self, id: i64) -> Result<Backup> {
        self.set_pinned(id, true)
    }

    /// Unpins a backup.
    pub fn unpin_backup(&self, id: i64) -> Result<Backup> {
        self.set_pinned(id, false)
    }

    fn set_pinned(&self, id: i64, pinned: bool) -> Result<Backup> {
        let (mut store, _lock) = self.open_write()?;
        store.set_pinned(id, pinned)?;
        Ok(Backup::from(&store.get_backup(id)?))
    }

    /// Sets or clears a backup's label.
    pub fn set_label(&self, id: i64, req: LabelRequest) -> Result<Backup> {
        let (mut store, _lock) = self.open_write()?;
        store.set_label(id, req.label.as_deref())?;
        Ok(Backup::from(&store.get_backup(id)?))
    }

    /// Deletes a backup; protected ones are refused with the reason.
    pub fn delete_backup(&self, id: i64) -> Result<Deleted> {
        let (mut store, _lock) = self.open_write()?;
        store.delete_backup(id)?;
        Ok(Deleted { deleted: id })
    }

    /// Every learner, its live state and its command.
    pub fn learners(&self) -> Result<Vec<crate::wire::LearnerInfo>> {
        self.open_read()?.learners()
    }

    /// One learner (`not_found` for an unknown or deleted one).
    pub fn learner(&self, name: String) -> Result<crate::wire::LearnerInfo> {
        self.open_read()?.learner(&name)
    }

    /// Sets a learner's command (it starts at the next launch).
    pub fn set_learner_command(
        &self,
        name: String,
        req: crate::wire::SetLearnerCommand,
    ) -> Result<crate::wire::LearnerInfo> {
        let (mut store, _lock) = self.open_write_or_create()?;
        let cmd = req.command(&self.data_dir);
        let now = crate::now_ms();
        store.set_learner_command(&name, &cmd, now)?;
        if req.format.is_some() {
            store.attach_learner(&name, req.format.as_deref(), now)?;
        }
        store.learner(&name)
    }

    /// Forgets a learner's command.
    pub fn remove_learner_command(&self, name: String) -> Result<crate::wire::LearnerInfo> {
        let (mut store, _lock) = self.open_write()?;
        store.remove_learner_command(&name)?;
        store.learner(&name)
    }

    /// Sets a learner's milestone rules in Engram, or goes back to its own
    /// (see [`super::Api::set_learner_milestone_rules`]).
    pub fn set_learner_milestone_rules(
        &self,
        name: String,
        req: crate::wire::SetMilestoneRules,
    ) -> Result<crate::wire::LearnerInfo> {
        let (mut store, _lock) = self.open_write()?;
        store.set_user_milestone_rules(&name, req.rules.as_deref())?;
        store.learner(&name)
    }

    /// Describes a learner's metrics in Engram, or goes back to its own
    /// (see [`super::Api::set_learner_metric_info`]).
    pub fn set_learner_metric_info(
        &self,
        name: String,
        req: crate::wire::SetMetricInfo,
    ) -> Result<crate::wire::LearnerInfo> {
        let (mut store, _lock) = self.open_write()?;
        store.set_user_metric_info(&name, req.metrics.as_ref())?;
        store.learner(&name)
    }

    /// Deletes a learner (see [`super::Api::remove_learner`]; with Engram
    /// stopped, no process of it is Engram's to stop).
    pub fn remove_learner(&self, name: String) -> Result<crate::wire::RemovedLearner> {
        let (mut store, _lock) = self.open_write()?;
        let removed = store.remove_learner(&name, crate::now_ms())?;
        crate::supervisor::remove_logs(&self.data_dir, &name);
        Ok(removed)
    }

    /// A supervised learner starts at the next launch (and every one after).
    pub fn start_learner(&self, name: String) -> Result<crate::wire::LearnerInfo> {
        self.set_learner_autostart(&name, true)
    }

    /// A supervised learner stays stopped at the next launch.
    pub fn stop_learner(&self, name: String) -> Result<crate::wire::LearnerInfo> {
        self.set_learner_autostart(&name, false)
    }

    /// Whether a supervised learner starts at the next launch.
    fn set_learner_autostart(
        &self,
        name: &str,
        autostart: bool,
    ) -> Result<crate::wire::LearnerInfo> {
        let (mut store, _lock) = self.open_write()?;
        if !autostart && store.learner(name)?.command.is_none() {
            // Nothing here can reach a process Engram does not run.
            return Err(crate::Error::InvalidInput(format!(
                "learner {name:?} runs outside Engram: it can be asked to stop only while Engram runs"
            )));
        }
        store.set_learner_autostart(name, autostart)?;
        store.learner(name)
    }

    /// Opens the store for writing, creating a new data directory's
    /// database (a learner may be added before Engram first runs).
    pub(super) fn open_write_or_create(&self) -> Result<(Store, DataDirLock)> {
        crate::runtime::check_data_dir(&self.data_dir)?;
        std::fs::create_dir_all(&self.data_dir)
            .map_err(|e| Error::io("create", &self.data_dir, e))?;
        let lock = DataDirLock::acquire(&self.data_dir)?;
        Ok((Store::open(self.data_dir.join(DB_FILE))?, lock))
    }

    pub(super) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn db(&self) -> Result<PathBuf> {
        crate::runtime::check_data_dir(&self.data_dir)?;
        let db = self.data_dir.join(DB_FILE);
        if db.exists() {
            Ok(db)
        } else {
            Err(Error::NotFound {
                what: "Engram data in",
                id: format!("{} (run `engram run` first)", self.data_dir.display()),
            })
        }
    }

    pub(super) fn open_read(&self) -> Result<Store> {
        Store::open_read_only(self.db()?)
    }

    pub(super) fn open_write(&self) -> Result<(Store, DataDirLock)> {
        let db = self.db()?;
        let lock = DataDirLock::acquire(&self.data_dir)?;
        Ok((Store::open(db)?, lock))
    }
}
