//! Two backups side by side ([`crate::wire::Comparison`]): every engine's
//! and learner's metrics in each and the change, and whether its state
//! changed (by checksum). Reads only.

use crate::BackupInfo;
use crate::error::Result;
use crate::store::Store;
use crate::wire::{ComparedState, Comparison, LearnerState, Metrics, compare_metrics};
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
