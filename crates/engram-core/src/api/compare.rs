//! Choosing what to restore, reads only: two backups side by side
//! ([`crate::wire::Comparison`]: every engine's and learner's metrics in
//! each and the change, and whether its state changed, by checksum); one
//! metric across the backups of the current line of history, and where it
//! first fell below a threshold.

use super::{Api, Offline};
use crate::BackupInfo;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::wire::{
    ApiResult, ComparedState, Comparison, FallFound, FindFall, LearnerState, MetricLine,
    MetricLineRequest, Metrics, compare_metrics,
};
use std::collections::{BTreeMap, BTreeSet};

/// What a backup holds of one engine or learner.
struct Held<'a> {
    checksum: &'a str,
    step: Option<u64>,
    metrics: &'a Metrics,
}

/// Backup `from` against backup `to` (`not_found` for either unknown).
pub(crate) fn compare_backups(store: &Store, from: i64, to: i64) -> Result<Comparison> {
    let (a, b) = (store.get_backup(from)?, store.get_backup(to)?);
    let (la, lb) = (store.backup_learners(from)?, store.backup_learners(to)?);
    Ok(Comparison {
        from,
        to,
        engines: compare_states(&engines(&a), &engines(&b)),
        learners: compare_states(&learners(&la), &learners(&lb)),
    })
}

/// The engines a backup holds, by name.
fn engines(info: &BackupInfo) -> BTreeMap<&str, Held<'_>> {
    info.engines
        .iter()
        .map(|e| {
            let held = Held {
                checksum: &e.checksum,
                step: None,
                metrics: &e.metrics,
            };
            (e.name.as_str(), held)
        })
        .collect()
}

/// The learners a backup holds, by name.
fn learners(states: &[(String, LearnerState)]) -> BTreeMap<&str, Held<'_>> {
    states
        .iter()
        .map(|(name, s)| {
            let held = Held {
                checksum: &s.checksum,
                step: s.step,
                metrics: &s.metrics,
            };
            (name.as_str(), held)
        })
        .collect()
}

/// Every name either side holds, in order.
fn compare_states(a: &BTreeMap<&str, Held>, b: &BTreeMap<&str, Held>) -> Vec<ComparedState> {
    let names: BTreeSet<&str> = a.keys().chain(b.keys()).copied().collect();
    names
        .into_iter()
        .map(|name| {
            let (x, y) = (a.get(name), b.get(name));
            ComparedState {
                name: name.to_string(),
                in_from: x.is_some(),
                in_to: y.is_some(),
                changed: x.zip(y).map(|(x, y)| x.checksum != y.checksum),
                step_from: x.and_then(|h| h.step),
                step_to: y.and_then(|h| h.step),
                metrics: compare_metrics(x.map(|h| h.metrics), y.map(|h| h.metrics)),
            }
        })
        .collect()
}

fn metric_line(store: &Store, req: &MetricLineRequest) -> Result<MetricLine> {
    if req.engine.trim().is_empty() || req.key.trim().is_empty() {
        return Err(Error::InvalidInput(
            "name an engine or learner and one of its metrics".into(),
        ));
    }
    Ok(MetricLine {
        engine: req.engine.clone(),
        key: req.key.clone(),
        backups: store.metric_along_line(&req.engine, &req.key)?,
    })
}

fn find_fall(store: &Store, req: &FindFall) -> Result<FallFound> {
    if !req.below.is_finite() {
        return Err(Error::InvalidInput("below must be a number".into()));
    }
    let line = metric_line(
        store,
        &MetricLineRequest {
            engine: req.engine.clone(),
            key: req.key.clone(),
        },
    )?;
    let fall = crate::store::first_fall(&line.backups, req.below);
    Ok(FallFound {
        checked: line.backups.len() as u64,
        without_value: line.backups.iter().filter(|b| b.value.is_none()).count() as u64,
        last_good: fall.as_ref().map(|(g, _)| g.clone()),
        fell_at: fall.map(|(_, f)| f),
    })
}

impl Api {
    /// One metric's value in every backup along the current line of history.
    pub async fn metric_in_backups(&self, req: MetricLineRequest) -> ApiResult<MetricLine> {
        Ok(self.runtime()?.read(move |s| metric_line(s, &req)).await?)
    }

    /// Where along the current line of history a metric first fell below a threshold.
    pub async fn find_fall(&self, req: FindFall) -> ApiResult<FallFound> {
        Ok(self.runtime()?.read(move |s| find_fall(s, &req)).await?)
    }
}

impl Offline {
    /// One metric's value in every backup along the current line of history.
    pub fn metric_in_backups(&self, req: MetricLineRequest) -> Result<MetricLine> {
        metric_line(&self.open_read()?, &req)
    }

    /// Where along the current line of history a metric first fell below a threshold.
    pub fn find_fall(&self, req: FindFall) -> Result<FallFound> {
        find_fall(&self.open_read()?, &req)
    }
}
