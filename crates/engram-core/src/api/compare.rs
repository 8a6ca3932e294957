//! Choosing what to restore, reads only: two backups side by side
//! ([`crate::wire::Comparison`]: every engine's and learner's metrics in
//! each and the change, and whether its state changed, by checksum); one
//! metric across the backups of the current line of history, and where it
//! first fell below a threshold.

use super::{Api, Offline};
use crate::codec::Checksum;
use crate::error::{Error, Result};
use crate::store::{EngineState, LineCache, StateBytes, Store};
use crate::wire::{
    ApiResult, BackupValue, ComparedState, Comparison, FallFound, FindFall, Inside, LearnerState,
    MetricLine, MetricLineRequest, Metrics, compare_metrics,
};
use crate::{BackupInfo, diff};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// What one side holds of one engine or learner.
struct Held<'a> {
    checksum: &'a str,
    step: Option<u64>,
    metrics: &'a Metrics,
}

/// One side of a comparison: a backup, or the live state as last saved.
struct Side {
    /// None: the live state.
    backup: Option<i64>,
    /// Engines: name, checksum (hex), metrics.
    engines: Vec<(String, String, Metrics)>,
    learners: Vec<(String, LearnerState)>,
    /// The live engine states, read (and checked) once.
    live: Vec<EngineState>,
}

impl Side {
    fn read(store: &Store, backup: Option<i64>) -> Result<Side> {
        Ok(match backup {
            Some(id) => {
                let info: BackupInfo = store.get_backup(id)?;
                Side {
                    backup,
                    engines: info
                        .engines
                        .into_iter()
                        .map(|e| (e.name, e.checksum, e.metrics))
                        .collect(),
                    learners: store.backup_learners(id)?,
                    live: Vec::new(),
                }
            }
            None => {
                let live = store.live_states()?;
                Side {
                    backup,
                    engines: live
                        .iter()
                        .map(|s| {
                            let sum = Checksum::of(s.state.as_bytes()).to_hex();
                            (s.engine.clone(), sum, s.metrics.clone())
                        })
                        .collect(),
                    learners: store
                        .learners()?
                        .into_iter()
                        .filter_map(|l| l.live.map(|s| (l.name, s)))
                        .collect(),
                    live,
                }
            }
        })
    }

    fn held_engines(&self) -> BTreeMap<&str, Held<'_>> {
        self.engines
            .iter()
            .map(|(name, checksum, metrics)| {
                let held = Held {
                    checksum,
                    step: None,
                    metrics,
                };
                (name.as_str(), held)
            })
            .collect()
    }

    fn held_learners(&self) -> BTreeMap<&str, Held<'_>> {
        self.learners
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

    /// The engine states (the live ones as read once, not copied).
    fn engine_states(&self, store: &Store) -> Result<Cow<'_, [EngineState]>> {
        Ok(match self.backup {
            Some(id) => Cow::Owned(store.backup_states(id)?),
            None => Cow::Borrowed(&self.live),
        })
    }

    fn learner_bytes(&self, store: &Store, name: &str) -> Result<Option<StateBytes>> {
        let Some((_, s)) = self.learners.iter().find(|(n, _)| n == name) else {
            return Ok(None);
        };
        let c = Checksum::from_hex(&s.checksum)?;
        Ok(Some(match self.backup {
            Some(_) => store.learner_bytes_at(&c)?,
            None => store.live_learner_bytes_at(name, &c)?,
        }))
    }
}

/// Backup `from` against backup `to`, or against the live state (`to`
/// None) — `not_found` for an unknown backup — with what changed inside
/// each state that changed.
pub(crate) fn compare_backups(store: &Store, from: i64, to: Option<i64>) -> Result<Comparison> {
    let (a, b) = (Side::read(store, Some(from))?, Side::read(store, to)?);
    let mut engines = compare_states(&a.held_engines(), &b.held_engines());
    let mut learners = compare_states(&a.held_learners(), &b.held_learners());
    if engines.iter().any(|e| e.changed == Some(true)) {
        let (sa, sb) = (a.engine_states(store)?, b.engine_states(store)?);
        for e in engines.iter_mut().filter(|e| e.changed == Some(true)) {
            let x = sa.iter().find(|s| s.engine == e.name);
            let y = sb.iter().find(|s| s.engine == e.name);
            if let (Some(x), Some(y)) = (x, y) {
                e.inside = said(diff::compare_engine(&e.name, &x.state, &y.state));
            }
        }
    }
    for l in learners.iter_mut().filter(|l| l.changed == Some(true)) {
        // A learner removed since keeps its states in backups; its bytes
        // are still compared, without knowing their format.
        let format = store.learner(&l.name).map(|i| i.format).unwrap_or_default();
        let inside = (|| {
            let (Some(x), Some(y)) = (
                a.learner_bytes(store, &l.name)?,
                b.learner_bytes(store, &l.name)?,
            ) else {
                return Ok(None);
            };
            diff::compare_learner(&format, &x, &y).map(Some)
        })();
        l.inside = said(inside);
    }
    Ok(Comparison {
        from,
        to: to.unwrap_or(0),
        to_live: to.is_none(),
        engines,
        learners,
    })
}

/// A comparison of contents, or why it could not be made (a damaged state
/// is said in the comparison, not an error of the whole).
fn said(r: Result<Option<Inside>>) -> Option<Inside> {
    match r {
        Ok(inside) => inside,
        Err(e) => Some(Inside {
            kind: "unreadable".into(),
            note: Some(format!("its contents could not be compared: {e}")),
            ..Inside::default()
        }),
    }
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
                inside: None,
            }
        })
        .collect()
}

/// The line `req` asks for; through `cache` when a running Engram keeps one.
fn metric_line(
    store: &Store,
    cache: Option<&LineCache>,
    req: &MetricLineRequest,
) -> Result<MetricLine> {
    if req.engine.trim().is_empty() || req.key.trim().is_empty() {
        return Err(Error::InvalidInput(
            "name an engine or learner and one of its metrics".into(),
        ));
    }
    let backups = store.metric_along_line(cache, &req.engine, &req.key)?;
    let elsewhere = if req.other_lines {
        let on: BTreeSet<i64> = backups.iter().map(|b| b.id).collect();
        let mut every = store.metric_in_every_backup(cache, &req.engine, &req.key)?;
        every.retain(|b| !on.contains(&b.id));
        every
    } else {
        Vec::new()
    };
    Ok(MetricLine {
        engine: req.engine.clone(),
        key: req.key.clone(),
        backups,
        elsewhere,
    })
}

/// The line of history `find_fall` searches (its request checked).
pub(super) fn fall_line(
    store: &Store,
    cache: Option<&LineCache>,
    req: &FindFall,
) -> Result<Vec<BackupValue>> {
    if !req.below.is_finite() {
        return Err(Error::InvalidInput("below must be a number".into()));
    }
    let line = metric_line(
        store,
        cache,
        &MetricLineRequest {
            engine: req.engine.clone(),
            key: req.key.clone(),
            other_lines: false,
        },
    )?;
    Ok(line.backups)
}

/// Where along `line` the stored values first fell below `below`.
pub(super) fn fall_on(line: &[BackupValue], below: f64) -> FallFound {
    let fall = crate::store::first_fall(line, below);
    FallFound {
        checked: line.len() as u64,
        without_value: line.iter().filter(|b| b.value.is_none()).count() as u64,
        last_good: fall.as_ref().map(|(g, _)| g.clone()),
        fell_at: fall.map(|(_, f)| f),
        drilled: Vec::new(),
    }
}

fn find_fall(store: &Store, cache: Option<&LineCache>, req: &FindFall) -> Result<FallFound> {
    Ok(fall_on(&fall_line(store, cache, req)?, req.below))
}

impl Api {
    /// One metric's value in every backup along the current line of history.
    pub async fn metric_in_backups(&self, req: MetricLineRequest) -> ApiResult<MetricLine> {
        let rt = self.runtime()?;
        let cache = rt.line_cache();
        Ok(rt.read(move |s| metric_line(s, Some(&cache), &req)).await?)
    }

    /// Where along the current line of history a metric first fell below
    /// a threshold (see `bisect_fall` for backups without a value).
    pub async fn find_fall(&self, req: FindFall) -> ApiResult<FallFound> {
        let rt = self.runtime()?;
        let cache = rt.line_cache();
        Ok(rt.read(move |s| find_fall(s, Some(&cache), &req)).await?)
    }
}

impl Offline {
    /// One metric's value in every backup along the current line of history.
    pub fn metric_in_backups(&self, req: MetricLineRequest) -> Result<MetricLine> {
        metric_line(&self.open_read()?, None, &req)
    }

    /// Where along the current line of history a metric first fell below
    /// a threshold (see `bisect_fall` for backups without a value).
    pub fn find_fall(&self, req: FindFall) -> Result<FallFound> {
        find_fall(&self.open_read()?, None, &req)
    }
}
