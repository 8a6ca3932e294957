//! The first run on a data directory without Engram data (the desktop
//! app's, [`Api::start_or_wait`]): nothing starts until the user chooses —
//! start fresh, or recover the whole timeline from a replica (its progress
//! asked as it goes) and start from its newest backup. A data directory
//! that holds Engram data starts at once, as `engram run` does.
//!
//! Must not: write anything into the data directory before the choice.

use super::Api;
use super::replicas::{Recover, recover};
use crate::error::Error;
use crate::replica::Place;
use crate::runtime::{Runtime, RuntimeOptions};
use crate::wire::Status;
use crate::wire::{ApiError, ApiResult, FirstRun, FirstRunState, RecoverHere, RecoverReport};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The choice an Engram without data waits for, and a recovery's progress.
pub(super) struct Waiting {
    /// The options to start with, while the choice is open.
    opts: Mutex<Option<RuntimeOptions>>,
    data_dir: PathBuf,
    /// (done, total) of the recovery under way or last run.
    progress: Arc<Mutex<(u64, u64)>>,
    recovering: AtomicBool,
    failed: Mutex<Option<ApiError>>,
    /// One choice at a time (a second click waits for nothing: refused).
    busy: tokio::sync::Mutex<()>,
    /// Turns true once the runtime exists (see [`Api::started`]).
    pub(super) started: tokio::sync::watch::Sender<bool>,
}

impl Default for Waiting {
    fn default() -> Waiting {
        Waiting {
            opts: Mutex::new(None),
            data_dir: PathBuf::new(),
            progress: Default::default(),
            recovering: AtomicBool::new(false),
            failed: Mutex::new(None),
            busy: tokio::sync::Mutex::new(()),
            started: tokio::sync::watch::Sender::new(false),
        }
    }
}

/// What every call answers while the choice is open.
pub(super) fn not_started(data_dir: &Path) -> ApiError {
    Error::NotStarted(format!(
        "{} holds no Engram data yet: start fresh, or recover a timeline from a replica",
        data_dir.display()
    ))
    .into()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The values kept here stay whole whatever panicked while holding them.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Api {
    /// Starts the runtime on a data directory that holds Engram data; on
    /// one that does not (a first run, or a new machine) starts nothing and
    /// waits for [`Api::start_fresh`] or [`Api::recover_here`]. Every other
    /// call answers `not_started` meanwhile.
    pub async fn start_or_wait(opts: RuntimeOptions) -> Api {
        let dir = opts.data_dir.clone();
        let holds_data = dir.join(crate::store::DB_FILE).exists();
        if holds_data || crate::runtime::check_data_dir(&dir).is_err() {
            return Api::start(opts).await;
        }
        let first = Waiting {
            opts: Mutex::new(Some(opts)),
            data_dir: dir.clone(),
            ..Default::default()
        };
        Api::with(Err(not_started(&dir)), first)
    }

    /// The runtime, once it exists (at once for an Api that never waited;
    /// never, for one whose runtime failed to start).
    pub async fn started(&self) -> &Runtime {
        let mut rx = self.first.started.subscribe();
        loop {
            if let Some(rt) = self.runtime.get() {
                return rt;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    fn waiting_opts(&self) -> ApiResult<RuntimeOptions> {
        lock(&self.first.opts)
            .clone()
            .ok_or_else(|| self.absent.clone())
    }

    /// Whether this Engram waits for its first-run choice, and how far a
    /// recovery is.
    pub async fn first_run(&self) -> ApiResult<FirstRun> {
        let (done, total) = *lock(&self.first.progress);
        let failed = lock(&self.first.failed).clone();
        let (state, data_dir) = match self.runtime.get() {
            Some(rt) => (FirstRunState::Running, rt.data_dir().to_path_buf()),
            None => {
                self.waiting_opts()?;
                match self.first.recovering.load(Ordering::SeqCst) {
                    true => (FirstRunState::Recovering, self.first.data_dir.clone()),
                    false => (FirstRunState::Waiting, self.first.data_dir.clone()),
                }
            }
        };
        Ok(FirstRun {
            state,
            data_dir: data_dir.display().to_string(),
            done,
            total,
            failed,
        })
    }

    /// First run: starts the engines fresh on the empty data directory. An
    /// Engram that runs already answers its status.
    pub async fn start_fresh(&self) -> ApiResult<Status> {
        if self.runtime.get().is_none() {
            let _busy = self.choosing()?;
            if self.runtime.get().is_none() {
                // What a recovery killed half-way left is not kept.
                let staging = self.first.data_dir.join(super::RECOVERING_DB);
                super::replicas::remove_database_files(&staging)?;
                self.start_waiting().await?;
            }
        }
        self.status().await
    }

    /// First run: rebuilds the whole timeline from a replica into the empty
    /// data directory (all or nothing: see [`recover`]), then starts the
    /// engines from its newest backup.
    pub async fn recover_here(&self, req: RecoverHere) -> ApiResult<RecoverReport> {
        if let Some(rt) = self.runtime.get() {
            return Err(Error::InvalidInput(format!(
                "Engram already runs on {}: recover into a new data directory (`engram replicas recover --from … --data-dir NEW`)",
                rt.data_dir().display()
            ))
            .into());
        }
        let opts = self.waiting_opts()?;
        let _busy = self.choosing()?;
        if req.key.trim().is_empty() {
            return Err(Error::InvalidInput(
                "paste the replicas' key (shown when the replica was added; `engram replicas key` prints it on the old machine)".into(),
            )
            .into());
        }
        let place = Place::parse(req.kind, &req.location, req.port, req.identity.as_deref())?;
        *lock(&self.first.progress) = (0, 0);
        *lock(&self.first.failed) = None;
        self.first.recovering.store(true, Ordering::SeqCst);
        let progress = self.first.progress.clone();
        let job = Recover {
            place,
            key_file: None,
            key: Some(req.key),
            data_dir: opts.data_dir.clone(),
            host: req.host.filter(|h| !h.trim().is_empty()),
            name: None,
        };
        let done =
            tokio::task::spawn_blocking(move || recover(job, &|d, t| *lock(&progress) = (d, t)))
                .await
                .map_err(|e| Error::Internal(format!("the recovery failed: {e}")));
        self.first.recovering.store(false, Ordering::SeqCst);
        let report = match done.and_then(|r| r) {
            Ok(r) => r,
            Err(e) => {
                let e = ApiError::from(e);
                tracing::warn!(error = %e.message, "recovery from a replica failed; the data directory is left empty");
                *lock(&self.first.failed) = Some(e.clone());
                return Err(e);
            }
        };
        tracing::info!(
            backups = report.recovered.len(),
            skipped = report.skipped.len(),
            resumed_from = ?report.resumed_from,
            "timeline recovered from a replica"
        );
        self.start_waiting().await?;
        Ok(report)
    }

    /// Holds the first-run choice: a second one while one runs is refused.
    fn choosing(&self) -> ApiResult<tokio::sync::MutexGuard<'_, ()>> {
        self.first.busy.try_lock().map_err(|_| {
            Error::InvalidInput("a recovery is under way: wait for it to finish".into()).into()
        })
    }

    /// Starts the runtime the first run waited with (the caller holds the
    /// choice). A start that fails leaves the choice open and says why.
    async fn start_waiting(&self) -> ApiResult<()> {
        let opts = self.waiting_opts()?;
        let rt = Runtime::start(opts).await.map_err(ApiError::from)?;
        if self.runtime.set(rt).is_err() {
            return Err(Error::Internal("the engines were started twice".into()).into());
        }
        *lock(&self.first.opts) = None;
        self.first.started.send_replace(true);
        tracing::info!(data_dir = %self.first.data_dir.display(), "first run: the engines started");
        Ok(())
    }
}
