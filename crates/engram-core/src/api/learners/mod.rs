//! The learner API: a training process in any language attaches by name,
//! saves its state as raw bytes (streamed into a content-addressed object,
//! durable before the answer), reads it back (live or from a backup) and
//! logs metrics into the same history the built-in engines use. Every
//! backup cut holds each learner's newest durable state.
//!
//! Rooms: this file (who learners are: attach, list, describe, milestones,
//! supervision, delete), `saves` (states in and out: streamed saves, lent
//! slots, reads, logged metrics), `slots` (which slot each save and lease
//! holds).

mod saves;
mod slots;

pub use saves::LearnerStateFile;
use saves::check_metrics;
pub(crate) use saves::export_learner_state;
use slots::void_leases;
pub(crate) use slots::{Leases, SlotClaims};

use crate::api::Api;
use crate::error::Error;
use crate::wire::ApiResult;
use crate::wire::{
    AttachLearner, ReportMilestone, SetLearnerCommand, SetMetricInfo, SetMilestoneRules,
};
use crate::wire::{LearnerCommand, LearnerInfo, Metrics, RemovedLearner};

/// The longest milestone rule text.
const MAX_RULE_CHARS: usize = 200;

impl SetLearnerCommand {
    /// The command to store, its working directory defaulting to `data_dir`.
    pub fn command(&self, data_dir: &std::path::Path) -> LearnerCommand {
        LearnerCommand {
            argv: self.argv.clone(),
            workdir: self
                .workdir
                .clone()
                .unwrap_or_else(|| data_dir.display().to_string()),
            autostart: true,
        }
    }
}

impl Api {
    /// Registers a learner (idempotent) and says what it resumes from.
    pub async fn attach_learner(&self, req: AttachLearner) -> ApiResult<LearnerInfo> {
        crate::store::validate_metric_info(&req.metrics)?;
        crate::store::validate_milestone_rules(&req.milestones)?;
        let leases = self.leases.clone();
        Ok(self
            .runtime()?
            .with_store(move |s| {
                let l = s.attach_learner(&req.name, req.format.as_deref(), crate::now_ms())?;
                void_leases(&leases, &s.objects(), &req.name)?;
                if req.metrics.is_empty() && req.milestones.is_empty() {
                    return Ok(l);
                }
                if !req.metrics.is_empty() {
                    s.set_learner_metric_info(&req.name, &req.metrics)?;
                }
                if !req.milestones.is_empty() {
                    s.set_learner_milestone_rules(&req.name, &req.milestones)?;
                }
                s.learner(&req.name)
            })
            .await?)
    }

    /// Every learner, its live state and (if supervised) its process.
    pub async fn learners(&self) -> ApiResult<Vec<LearnerInfo>> {
        let rt = self.runtime()?;
        let mut all = rt.read(|s| s.learners()).await?;
        for l in &mut all {
            l.process = rt.supervisor().status(&l.name);
        }
        Ok(all)
    }

    /// One learner; unknown names are `not_found`.
    pub async fn learner(&self, name: String) -> ApiResult<LearnerInfo> {
        let rt = self.runtime()?;
        let mut l = rt.read(move |s| s.learner(&name)).await?;
        l.process = rt.supervisor().status(&l.name);
        Ok(l)
    }

    /// Records a milestone a learner reached: a `breakthrough` backup that
    /// holds the learner's live state — which must be the state that
    /// reached it (the same step). The same rule counts once per line of
    /// history (again only after a restore): reporting it again answers
    /// with the first one's backup, so a learner restarted after a crash
    /// may report what it reached without duplicates.
    pub async fn report_learner_milestone(
        &self,
        name: String,
        req: ReportMilestone,
    ) -> ApiResult<super::Backup> {
        let rt = self.runtime()?;
        let rule = req.rule.trim().to_string();
        if rule.is_empty()
            || rule.chars().count() > MAX_RULE_CHARS
            || rule.chars().any(char::is_control)
        {
            return Err(Error::InvalidInput(format!(
                "a milestone's rule is 1-{MAX_RULE_CHARS} characters of text"
            ))
            .into());
        }
        check_metrics(&Metrics::from([(req.metric.clone(), req.value)]))?;
        if !req.value.is_finite() {
            return Err(
                Error::InvalidInput("a milestone's value must be a finite number".into()).into(),
            );
        }
        let (n, r, step) = (name.clone(), rule.clone(), req.step);
        let existing = rt.with_store(move |s| {
            let live = s.learner(&n)?.live;
            let branch = s.current_branch(crate::now_ms())?;
            if let Some(id) = s.milestone_on_branch(&n, &r, branch)? {
                return Ok(Some(s.get_backup(id)?));
            }
            match live.as_ref().and_then(|l| l.step) {
                Some(saved) if saved == step => Ok(None),
                other => Err(Error::InvalidInput(format!(
                    "the milestone is about step {step}, but learner {n:?}'s saved state is at {}: save the state that reached it first",
                    other.map_or("no step".to_string(), |s| format!("step {s}"))
                ))),
            }
        })
        .await?;
        if let Some(b) = existing {
            return Ok(super::Backup::from(&b));
        }
        let b = rt
            .milestone(crate::wire::Breakthrough {
                engine: name,
                rule,
                metric: req.metric,
                value: req.value,
                step: req.step,
            })
            .await?;
        Ok(super::Backup::from(&b))
    }

    /// Supervises a learner (registering it if new): Engram starts the
    /// command now and at every launch, restarts it when it dies, stops it
    /// around a restore of its state. A new command replaces the old one
    /// (whose process is stopped first).
    pub async fn set_learner_command(
        &self,
        name: String,
        req: SetLearnerCommand,
    ) -> ApiResult<LearnerInfo> {
        let rt = self.runtime()?;
        let cmd = req.command(rt.data_dir());
        cmd.validate()?;
        let n = name.clone();
        let stored = cmd.clone();
        rt.with_store(move |s| {
            let now = crate::now_ms();
            s.set_learner_command(&n, &stored, now)?;
            if req.format.is_some() {
                s.attach_learner(&n, req.format.as_deref(), now)?;
            }
            Ok(())
        })
        .await?;
        // A new command (or the same again) starts a fresh process.
        rt.supervisor().remove(&name).await;
        rt.supervisor().supervise_and_start(&name, cmd).await;
        self.learner(name).await
    }

    /// Sets a learner's milestone rules in Engram, or goes back to the ones
    /// it declares (`rules` null). Rules set here stay across its attaches
    /// (its own are kept beside them, as it declared them) and are checked
    /// from its next durable save on.
    pub async fn set_learner_milestone_rules(
        &self,
        name: String,
        req: SetMilestoneRules,
    ) -> ApiResult<LearnerInfo> {
        let n = name.clone();
        self.runtime()?
            .with_store(move |s| s.set_user_milestone_rules(&n, req.rules.as_deref()))
            .await?;
        self.learner(name).await
    }

    /// Describes a learner's metrics in Engram, or goes back to what it
    /// says of them (`metrics` null). Descriptions set here stay across its
    /// attaches (its own are kept beside them) and are what the charts,
    /// cards and milestones read.
    pub async fn set_learner_metric_info(
        &self,
        name: String,
        req: SetMetricInfo,
    ) -> ApiResult<LearnerInfo> {
        let n = name.clone();
        self.runtime()?
            .with_store(move |s| s.set_user_metric_info(&n, req.metrics.as_ref()))
            .await?;
        self.learner(name).await
    }

    /// Stops supervising a learner (its process is stopped; its states stay).
    pub async fn remove_learner_command(&self, name: String) -> ApiResult<LearnerInfo> {
        let rt = self.runtime()?;
        let n = name.clone();
        rt.with_store(move |s| s.remove_learner_command(&n)).await?;
        rt.supervisor().remove(&name).await;
        self.learner(name).await
    }

    /// Deletes a learner: a supervised one's process is stopped first
    /// (and Engram stops supervising it), then in one transaction its live
    /// state, command, metric history and stop request go (see
    /// [`crate::Store::remove_learner`]); its lent slots are voided, its
    /// slot files and its output (log files) removed. Backups that hold states of it keep them — the
    /// answer says which; restoring one brings the learner back, as does an
    /// attach under its name (a fresh start). Its client hears of it on the
    /// event stream (`learner_removed`) and its saves are refused from now
    /// on. Unknown (or already deleted) names are `not_found`, and nothing
    /// is stopped.
    pub async fn remove_learner(&self, name: String) -> ApiResult<RemovedLearner> {
        let rt = self.runtime()?;
        let n = name.clone();
        rt.with_store(move |s| s.learner(&n)).await?;
        rt.supervisor().remove(&name).await;
        let (n, leases) = (name.clone(), self.leases.clone());
        let removed = rt
            .with_store(move |s| {
                let removed = s.remove_learner(&n, crate::now_ms())?;
                void_leases(&leases, &s.objects(), &n)?;
                Ok(removed)
            })
            .await?;
        crate::supervisor::remove_logs(rt.data_dir(), &name);
        rt.announce(crate::wire::Event::LearnerRemoved { learner: name });
        Ok(removed)
    }

    /// Starts a supervised learner now (a stopped or finished one too), and
    /// at every launch from now on.
    pub async fn start_learner(&self, name: String) -> ApiResult<LearnerInfo> {
        let rt = self.runtime()?;
        let n = name.clone();
        let cmd = rt
            .with_store(move |s| s.set_learner_autostart(&n, true))
            .await?;
        rt.supervisor().supervise_and_start(&name, cmd).await;
        self.learner(name).await
    }

    /// Stops a learner. One Engram supervises: its process is stopped
    /// (SIGTERM, SIGKILL after a grace period) and kept stopped, across
    /// launches too, until it is started again; answers once the process
    /// has exited. One that runs elsewhere is asked to stop: the request is
    /// kept (`stop_requested_at_ms`) until the learner attaches again, and
    /// announced on the event stream (`learner_stop_requested`), where its
    /// client sees it; answers at once.
    pub async fn stop_learner(&self, name: String) -> ApiResult<LearnerInfo> {
        let rt = self.runtime()?;
        let n = name.clone();
        // One visit to the store: a learner that runs elsewhere is asked.
        let asked = rt
            .with_store(move |s| s.request_learner_stop(&n, crate::now_ms()))
            .await?;
        if let Some(mut info) = asked {
            rt.announce(crate::wire::Event::LearnerStopRequested {
                learner: name.clone(),
            });
            info.process = rt.supervisor().status(&info.name);
            return Ok(info);
        }
        let n = name.clone();
        rt.with_store(move |s| s.set_learner_autostart(&n, false))
            .await?;
        rt.supervisor().stop(&name).await;
        self.learner(name).await
    }

    /// Starts supervising the learners that have a command; the front door
    /// calls this once its learner API listens.
    pub async fn supervise_learners(&self) -> ApiResult<()> {
        Ok(self.runtime()?.supervise_learners().await?)
    }
}
