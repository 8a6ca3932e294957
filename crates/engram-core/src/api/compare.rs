//! Two backups side by side ([`crate::wire::Comparison`]): every engine's
//! and learner's metrics in each and the change, and whether its state
//! changed (by checksum). Reads only.

use crate::error::Result;
use crate::store::Store;
use crate::wire::{ComparedState, Comparison, LearnerState, compare_metrics};
use std::collections::BTreeMap;

/// Backup `from` against backup `to` (`not_found` for either unknown).
pub(crate) fn compare_backups(store: &Store, from: i64, to: i64) -> Result<Comparison> {
    let (a, b) = (store.get_backup(from)?, store.get_backup(to)?);
    let mut names: Vec<&String> = a
        .engines
        .iter()
        .chain(&b.engines)
        .map(|e| &e.name)
        .collect();
    names.sort();
    names.dedup();
    let engines = names
        .into_iter()
        .map(|name| {
            let ea = a.engines.iter().find(|e| &e.name == name);
            let eb = b.engines.iter().find(|e| &e.name == name);
            ComparedState {
                name: name.clone(),
                in_from: ea.is_some(),
                in_to: eb.is_some(),
                changed: ea.zip(eb).map(|(x, y)| x.checksum != y.checksum),
                step_from: None,
                step_to: None,
                metrics: compare_metrics(ea.map(|e| &e.metrics), eb.map(|e| &e.metrics)),
            }
        })
        .collect();
    let la: BTreeMap<String, LearnerState> = store.backup_learners(from)?.into_iter().collect();
    let lb: BTreeMap<String, LearnerState> = store.backup_learners(to)?.into_iter().collect();
    let mut learners: Vec<&String> = la.keys().chain(lb.keys()).collect();
    learners.sort();
    learners.dedup();
    let learners = learners
        .into_iter()
        .map(|name| {
            let (x, y) = (la.get(name), lb.get(name));
            ComparedState {
                name: name.clone(),
                in_from: x.is_some(),
                in_to: y.is_some(),
                changed: x.zip(y).map(|(x, y)| x.checksum != y.checksum),
                step_from: x.and_then(|s| s.step),
                step_to: y.and_then(|s| s.step),
                metrics: compare_metrics(x.map(|s| &s.metrics), y.map(|s| &s.metrics)),
            }
        })
        .collect();
    Ok(Comparison {
        from,
        to,
        engines,
        learners,
    })
}
