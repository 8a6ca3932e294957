//! Reading backups back from a replica: a whole timeline into a new data
//! directory (every backup as it was, then the catalog), or one backup
//! this data directory deleted.

use super::upload::{MANIFEST, ReplicaManifest, catalog_file, engine_file, learner_file};
use super::{CATALOG_TAG, Place, ROOT, backup_of};
use crate::codec::{Checksum, EncodedState};
use crate::error::{Error, Result};
use crate::store::{CATALOG_TABLES, EngineState, NewBackup, Store};
use crate::wire::RecoverReport;
use rustic_core::repofile::SnapshotFile;
use rustic_core::{IndexedFull, Repository};
use std::path::{Path, PathBuf};

/// What to recover.
pub struct RecoverOptions<'a> {
    pub place: &'a Place,
    pub key: &'a str,
    /// The host whose timeline to take (needed when the replica holds
    /// several).
    pub host: Option<&'a str>,
    /// Told (done, total) after each backup.
    pub progress: &'a (dyn Fn(u64, u64) + Sync),
}

/// Rebuilds a whole timeline from a replica into `store` (a new, empty data
/// directory the caller holds the lock of): every backup with its id, kind,
/// time, label, pin, milestone and states, each state checked against its
/// manifest checksum (a damaged one leaves its backup out, said in the
/// report); then the newest catalog (history, learners, settings); then
/// the host id. The engines resume from the newest backup at the next
/// start (the live state is empty).
pub fn recover(store: &mut Store, o: &RecoverOptions<'_>) -> Result<RecoverReport> {
    let started = std::time::Instant::now();
    if store.count_backups()? > 0 {
        return Err(Error::InvalidInput(format!(
            "{} already holds backups: recover into an empty data directory",
            store.path().parent().unwrap_or(Path::new(".")).display()
        )));
    }
    let repo = super::open(o.place, o.key)?;
    let all = super::check::engram_snapshots(&repo, o.place, None)?;
    let host = choose_host(&all, o.host, o.place)?;
    let snaps: Vec<SnapshotFile> = all.into_iter().filter(|s| s.hostname == host).collect();
    let mut catalogs = repo
        .get_matching_snapshots(|s| s.tags.contains(CATALOG_TAG) && s.hostname == host)
        .map_err(|e| o.place.unavailable(&e))?;
    catalogs.sort_by(|a, b| a.time.cmp(&b.time));
    let repo = repo.to_indexed().map_err(|e| o.place.unavailable(&e))?;
    // The catalog first: learners' descriptions and rules, settings and
    // the history (a damaged catalog is said and the backups still come).
    let mut skipped = Vec::new();
    let mut history_points = 0;
    if let Some(cat) = catalogs.last() {
        match load_catalog(&repo, o.place, store, cat) {
            Ok(n) => history_points = n,
            Err(e) => skipped.push(format!(
                "the metric history and learner settings (snapshot {}): {e}",
                cat.id
            )),
        }
    }
    let mut recovered = Vec::new();
    let mut bytes = 0;
    let total = snaps.len() as u64;
    for (i, snap) in snaps.iter().enumerate() {
        let id = backup_of(snap).unwrap_or(0);
        match take_in(&repo, o.place, store, snap) {
            Ok(n) => {
                recovered.push(id);
                bytes += n;
            }
            Err(e) => skipped.push(format!("backup {id} (snapshot {}): {e}", snap.id)),
        }
        (o.progress)(i as u64 + 1, total);
    }
    store.set_host_id(&host)?;
    for s in &skipped {
        tracing::warn!(skipped = %s, "recovery left something out");
    }
    Ok(RecoverReport {
        data_dir: store
            .path()
            .parent()
            .unwrap_or(Path::new("."))
            .display()
            .to_string(),
        host_id: host,
        resumed_from: recovered.last().copied(),
        recovered,
        skipped,
        history_points,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Brings one backup the replica holds back into this data directory, as
/// it was (its id, kind, pin, label): for a backup retention deleted here.
pub fn retrieve(
    place: &Place,
    key: &str,
    store: &mut Store,
    host_id: &str,
    backup_id: i64,
) -> Result<u64> {
    if store.get_backup(backup_id).is_ok() {
        return Err(Error::InvalidInput(format!(
            "backup {backup_id} is here already: restore it from the timeline"
        )));
    }
    let repo = super::open(place, key)?;
    let snap = super::check::engram_snapshots(&repo, place, Some(host_id))?
        .into_iter()
        .find(|s| backup_of(s) == Some(backup_id))
        .ok_or_else(|| Error::NotFound {
            what: "backup on the replica",
            id: backup_id.to_string(),
        })?;
    let repo = repo.to_indexed().map_err(|e| place.unavailable(&e))?;
    take_in(&repo, place, store, &snap)
}

/// Reads one backup's snapshot (restic's snapshot id) of any host from a
/// replica, checked whole as an import file is (sizes, checksums, every
/// state against its engine's bounds). Nothing is written. Returns the
/// host that made it and the snapshot.
pub fn fetch(
    place: &Place,
    key: &str,
    snapshot_id: &str,
) -> Result<(String, crate::snapshot::Snapshot)> {
    let repo = super::open(place, key)?;
    let snap = super::check::engram_snapshots(&repo, place, None)?
        .into_iter()
        .find(|s| s.id.to_hex().to_string() == snapshot_id)
        .ok_or_else(|| Error::NotFound {
            what: "snapshot in the replica",
            id: format!("{snapshot_id} in {}", place.describe()),
        })?;
    let repo = repo.to_indexed().map_err(|e| place.unavailable(&e))?;
    let manifest: ReplicaManifest =
        serde_json::from_slice(&read_file(&repo, place, &snap, MANIFEST)?)
            .map_err(|e| Error::InvalidSnapshot(format!("its manifest: {e}")))?;
    let m = manifest.manifest;
    let mut engines = Vec::with_capacity(m.engines.len());
    for e in &m.engines {
        engines.push(read_file(&repo, place, &snap, &engine_file(&e.name))?);
    }
    let mut learners = Vec::with_capacity(m.learners.len());
    for l in &m.learners {
        learners.push(read_file(&repo, place, &snap, &learner_file(&l.name))?);
    }
    Ok((
        manifest.host_id,
        crate::snapshot::from_parts(m, engines, learners)?,
    ))
}

fn choose_host(snaps: &[SnapshotFile], asked: Option<&str>, place: &Place) -> Result<String> {
    let mut hosts: Vec<&str> = snaps.iter().map(|s| s.hostname.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    match (asked, hosts.as_slice()) {
        (Some(h), _) if hosts.contains(&h) => Ok(h.to_string()),
        (Some(h), _) => Err(Error::NotFound {
            what: "host in the replica",
            id: format!("{h} (it holds: {})", hosts.join(", ")),
        }),
        (None, [one]) => Ok(one.to_string()),
        (None, []) => Err(Error::NotFound {
            what: "backup to recover",
            id: format!("in {} (its repository holds none)", place.describe()),
        }),
        (None, many) => Err(Error::InvalidInput(format!(
            "the replica holds the timelines of several hosts ({}): name one with --host",
            many.join(", ")
        ))),
    }
}

fn read_file<S: IndexedFull>(
    repo: &Repository<S>,
    place: &Place,
    snap: &SnapshotFile,
    name: &str,
) -> Result<Vec<u8>> {
    let path = PathBuf::from(ROOT).join(name);
    let node = repo
        .node_from_path(snap.tree, &path)
        .map_err(|e| place.unavailable(&e))?;
    let mut out = Vec::with_capacity(node.meta.size as usize);
    repo.dump(&node, &mut out)
        .map_err(|e| Error::corrupt(name, super::rustic_message(&e)))?;
    Ok(out)
}

/// Reads one backup's snapshot, checks every state against its manifest,
/// and puts the backup in. Returns the states' bytes.
fn take_in<S: IndexedFull>(
    repo: &Repository<S>,
    place: &Place,
    store: &mut Store,
    snap: &SnapshotFile,
) -> Result<u64> {
    let manifest: ReplicaManifest =
        serde_json::from_slice(&read_file(repo, place, snap, MANIFEST)?)
            .map_err(|e| Error::InvalidSnapshot(format!("its manifest: {e}")))?;
    let m = &manifest.manifest;
    let checked = |name: &str, bytes: &[u8], want: &str| -> Result<()> {
        let got = Checksum::of(bytes).to_hex();
        if got != want {
            return Err(Error::corrupt(
                name,
                format!("checksum {got}, the manifest says {want}"),
            ));
        }
        Ok(())
    };
    let mut states = Vec::with_capacity(m.engines.len());
    let mut bytes = 0;
    for e in &m.engines {
        let raw = read_file(repo, place, snap, &engine_file(&e.name))?;
        checked(&e.name, &raw, &e.checksum)?;
        bytes += raw.len() as u64;
        states.push(EngineState {
            engine: e.name.clone(),
            state: EncodedState::from_bytes(raw)?,
            metrics: e.metrics.clone(),
        });
    }
    let mut learners = Vec::with_capacity(m.learners.len());
    for l in &m.learners {
        let raw = read_file(repo, place, snap, &learner_file(&l.name))?;
        checked(&l.name, &raw, &l.checksum)?;
        bytes += raw.len() as u64;
        learners.push(store.learner_to_take_in(l, &raw)?);
    }
    let origin = manifest.origin.as_ref().map(|o| o.to_string());
    store.insert_recovered(
        &NewBackup {
            kind: m.backup.kind,
            created_at_ms: m.backup.created_at_ms,
            label: m.backup.label.clone(),
            breakthrough: m.backup.breakthrough.clone(),
            states: &states,
        },
        m.backup.id,
        manifest.pinned,
        origin.as_deref(),
        &learners,
    )?;
    Ok(bytes)
}

fn load_catalog<S: IndexedFull>(
    repo: &Repository<S>,
    place: &Place,
    store: &mut Store,
    snap: &SnapshotFile,
) -> Result<u64> {
    // Every table is read before any is loaded.
    let mut dumps = Vec::new();
    for (table, _, _) in CATALOG_TABLES {
        dumps.push((*table, read_file(repo, place, snap, &catalog_file(table))?));
    }
    let mut points = 0;
    for (table, dump) in dumps {
        let n = store.load_catalog_table(table, &dump)?;
        if table == "metric_points" {
            points = n;
        }
    }
    Ok(points)
}
