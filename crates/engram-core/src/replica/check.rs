//! Verifying a replica (restic's check, and which Engram backups a damaged
//! pack or tree affects) and pruning it by Engram's retention.

use super::{CATALOG_TAG, Place, TAG, backup_of};
use crate::error::{Error, ErrorCode, Result};
use crate::store::{ReplicaTarget, Store};
use crate::wire::{ReplicaPruneReport, ReplicaVerifyReport, VerifyReplica};
use rustic_core::repofile::{BlobType, SnapshotFile};
use rustic_core::{
    CheckOptions, IndexedFull, OpenStatus, PruneOptions, ReadSubsetOption, Repository,
};
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// Checks the repository: its structure always (restic's `check`); with
/// `read_data`, every pack (or the subset) read and decrypted. When
/// anything is wrong, each Engram snapshot's trees and chunks are read to
/// name the backups the damage reaches.
pub fn verify(place: &Place, key: &str, req: &VerifyReplica) -> Result<ReplicaVerifyReport> {
    let started = std::time::Instant::now();
    let repo = super::open(place, key)?;
    let mut opts = CheckOptions::default().read_data(req.read_data);
    if let Some(subset) = &req.subset {
        if !req.read_data {
            return Err(Error::InvalidInput(
                "a subset is for --read-data only".into(),
            ));
        }
        let subset = ReadSubsetOption::from_str(subset).map_err(|e| {
            Error::InvalidInput(format!(
                "{subset:?} is not a subset (n/m, a percentage, or a size): {e}"
            ))
        })?;
        opts = opts.read_data_subset(subset);
    }
    let snapshots = engram_snapshots(&repo, place, None)?;
    let results = repo.check(opts).map_err(|e| place.unavailable(&e))?;
    let mut problems: Vec<String> = results
        .0
        .iter()
        .map(|(level, e)| format!("{level:?}: {e}"))
        .collect();
    let failed = results.is_ok().is_err();
    let mut affected = BTreeSet::new();
    let mut blobs_read = 0;
    let mut bytes_read = 0;
    if failed {
        let repo = repo.to_indexed().map_err(|e| place.unavailable(&e))?;
        let found = damaged_backups(&repo, &snapshots);
        blobs_read = found.blobs_read;
        bytes_read = found.bytes_read;
        affected = found.affected;
        problems.extend(found.problems);
    }
    Ok(ReplicaVerifyReport {
        ok: !failed,
        read_data: req.read_data,
        checked_at_ms: crate::now_ms(),
        seconds: started.elapsed().as_secs_f64(),
        snapshots: snapshots.len() as u64,
        blobs_read,
        bytes_read,
        problems,
        affected_backups: affected.into_iter().collect(),
    })
}

/// Engram's backup snapshots in the repository (of one host, or all).
pub(super) fn engram_snapshots(
    repo: &Repository<OpenStatus>,
    place: &Place,
    host: Option<&str>,
) -> Result<Vec<SnapshotFile>> {
    let mut snaps = repo
        .get_matching_snapshots(|s| {
            s.tags.contains(TAG)
                && !s.tags.contains(CATALOG_TAG)
                && host.is_none_or(|h| s.hostname == h)
                && backup_of(s).is_some()
        })
        .map_err(|e| place.unavailable(&e))?;
    snaps.sort_by_key(|s| backup_of(s).unwrap_or(0));
    Ok(snaps)
}

pub(super) struct Damage {
    pub affected: BTreeSet<i64>,
    pub problems: Vec<String>,
    pub blobs_read: u64,
    pub bytes_read: u64,
}

/// Reads every tree and every distinct data chunk of Engram's snapshots
/// once, and names each backup whose tree or chunks fail to read.
pub(super) fn damaged_backups<S: IndexedFull>(
    repo: &Repository<S>,
    snapshots: &[SnapshotFile],
) -> Damage {
    let mut d = Damage {
        affected: BTreeSet::new(),
        problems: Vec::new(),
        blobs_read: 0,
        bytes_read: 0,
    };
    let mut chunk_ok: BTreeMap<String, bool> = BTreeMap::new();
    for snap in snapshots {
        let Some(backup) = backup_of(snap) else {
            continue;
        };
        let mut bad = None;
        let mut trees = vec![snap.tree];
        while let Some(t) = trees.pop() {
            let tree = match repo.get_tree(&t) {
                Ok(tree) => tree,
                Err(e) => {
                    bad = Some(format!(
                        "its tree {t} cannot be read: {}",
                        super::rustic_message(&e)
                    ));
                    break;
                }
            };
            for node in tree.nodes {
                if let Some(sub) = node.subtree {
                    trees.push(sub);
                }
                for chunk in node.content.iter().flatten() {
                    let hex = chunk.to_hex().to_string();
                    let ok = *chunk_ok.entry(hex.clone()).or_insert_with(|| {
                        d.blobs_read += 1;
                        match repo.cat_blob(BlobType::Data, &hex) {
                            Ok(b) => {
                                d.bytes_read += b.len() as u64;
                                true
                            }
                            Err(_) => false,
                        }
                    });
                    if !ok && bad.is_none() {
                        bad = Some(format!(
                            "{} has a chunk ({hex}) that does not read",
                            node.name
                        ));
                    }
                }
            }
        }
        if let Some(why) = bad {
            d.problems
                .push(format!("backup {backup} (snapshot {}): {why}", snap.id));
            d.affected.insert(backup);
        }
    }
    d
}

/// Forgets the snapshots of backups this data directory no longer keeps
/// (its retention deleted them), except pinned, breakthrough and initial
/// ones, and older catalog snapshots; then prunes what nothing uses.
/// Refused for an append-only replica.
pub fn prune(
    place: &Place,
    key: &str,
    target: &ReplicaTarget,
    store: &Store,
    host_id: &str,
) -> Result<ReplicaPruneReport> {
    if target.append_only {
        return Err(Error::InvalidInput(format!(
            "replica {} is append-only: Engram never deletes anything there",
            target.name
        )));
    }
    let repo = super::open(place, key)?;
    if repo.config().append_only == Some(true) {
        return Err(Error::InvalidInput(format!(
            "the repository at {} is configured append-only: prune is refused",
            place.describe()
        )));
    }
    let mut forget = Vec::new();
    let mut forgotten = Vec::new();
    let mut kept = 0u64;
    for snap in engram_snapshots(&repo, place, Some(host_id))? {
        let Some(id) = backup_of(&snap) else { continue };
        let protected = ["pinned", "breakthrough", "initial"]
            .iter()
            .any(|t| snap.tags.contains(t));
        if protected || store.get_backup(id).is_ok() {
            kept += 1;
        } else {
            forget.push(snap.id);
            forgotten.push(id);
        }
    }
    let mut catalogs = repo
        .get_matching_snapshots(|s| s.tags.contains(CATALOG_TAG) && s.hostname == host_id)
        .map_err(|e| place.unavailable(&e))?;
    catalogs.sort_by(|a, b| a.time.cmp(&b.time));
    catalogs.pop();
    forget.extend(catalogs.iter().map(|s| s.id));
    if !forget.is_empty() {
        repo.delete_snapshots(&forget)
            .map_err(|e| place.unavailable(&e))?;
    }
    let opts = PruneOptions::default();
    let plan = repo.prune_plan(&opts).map_err(|e| place.unavailable(&e))?;
    let packs_removed = plan.stats.packs_to_delete.remove;
    let bytes_freed = plan.stats.size_to_delete.remove;
    repo.prune(&opts, plan).map_err(|e| Error::Replica {
        code: ErrorCode::ReplicaUnavailable,
        message: format!(
            "{}: prune failed after forgetting {} snapshots (run it again): {}",
            place.describe(),
            forget.len(),
            super::rustic_message(&e)
        ),
    })?;
    Ok(ReplicaPruneReport {
        forgotten,
        kept,
        packs_removed,
        bytes_freed,
    })
}
