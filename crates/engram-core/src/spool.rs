//! The spool: saves a learner made while Engram was not running, written by
//! the client into `<data dir>/spool/<learner>/` and taken in, in order, when
//! the runtime starts.
//!
//! A spooled save is two files with the same 20-digit sequence number:
//! `<seq>.state` (the bytes) and `<seq>.json` (`{"format", "step",
//! "metrics", "at_ms"}`), the JSON written last — it is the commit marker, so
//! a save cut off half-way has no JSON and is left alone (and removed with
//! the directory's other leftovers once older than an hour). Each save is
//! taken in as a normal learner save (object, then row), then its JSON and
//! state files are removed; a crash in between takes it in again at the next
//! start, which changes nothing (same content, same step, same instant).
//! A save of a run from before a restore of its learner, or before the
//! learner was deleted, is dropped (`stale`).
//! A save that cannot be taken in (another format for the name, bad JSON,
//! a name that breaks the rules) stays where it is and is reported.

use crate::error::{Error, Result};
use crate::objects::Objects;
use crate::store::{NewLearnerState, Store, validate_learner_name};
use crate::wire::Metrics;
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    step: Option<u64>,
    #[serde(default)]
    metrics: Metrics,
    at_ms: i64,
    /// The learner's generation when it spooled the save (absent: unchecked).
    #[serde(default)]
    generation: Option<i64>,
}

/// What start-up took in from the spool, and what it had to leave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpoolReport {
    pub taken_in: u64,
    /// Saves of a line the learner was restored away from (an offline
    /// restore while it spooled): dropped, never made live.
    pub stale: u64,
    /// One line per save left behind, with the reason.
    pub left: Vec<String>,
}

/// Takes in every complete spooled save, per learner in sequence order.
pub fn ingest(store: &mut Store, data_dir: &Path) -> Result<SpoolReport> {
    let mut report = SpoolReport::default();
    let root = data_dir.join("spool");
    let Ok(learners) = std::fs::read_dir(&root) else {
        return Ok(report);
    };
    let objects = store.objects();
    let mut dirs: Vec<_> = learners.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs {
        let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        if let Err(e) = validate_learner_name(&name) {
            report.left.push(format!("{}: {e}", dir.display()));
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut seqs: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let f = e.file_name().to_str()?.to_string();
                let seq = f.strip_suffix(".json")?;
                (seq.len() == 20 && seq.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| seq.to_string())
            })
            .collect();
        seqs.sort();
        for seq in seqs {
            let json = dir.join(format!("{seq}.json"));
            let state = dir.join(format!("{seq}.state"));
            match take_in(store, &objects, &name, &json, &state) {
                Err(Error::StaleState { .. }) => {
                    std::fs::remove_file(&json).map_err(|e| Error::io("remove", &json, e))?;
                    let _ = std::fs::remove_file(&state);
                    report.stale += 1;
                }
                Ok(()) => {
                    // The JSON (the commit marker) first: a crash now leaves
                    // a state file without one, which is never taken in.
                    std::fs::remove_file(&json).map_err(|e| Error::io("remove", &json, e))?;
                    let _ = std::fs::remove_file(&state);
                    report.taken_in += 1;
                }
                Err(e) => {
                    report.left.push(format!("{}: {e}", json.display()));
                    // Later saves of this learner must not overtake it.
                    break;
                }
            }
        }
    }
    Ok(report)
}

fn take_in(
    store: &mut Store,
    objects: &Objects,
    name: &str,
    json: &Path,
    state: &Path,
) -> Result<()> {
    let meta: Meta =
        serde_json::from_slice(&std::fs::read(json).map_err(|e| Error::io("read", json, e))?)
            .map_err(|e| Error::InvalidInput(format!("not a spooled save's description: {e}")))?;
    // A save of a run from before the learner was deleted does not bring
    // it back (the attach below would).
    if let Ok(kept) = store.learner_record(name)
        && kept.removed
        && let Some(sent) = meta.generation
        && sent != kept.generation
    {
        return Err(Error::StaleState {
            learner: name.to_string(),
            sent,
            current: kept.generation,
        });
    }
    store.attach_learner(name, meta.format.as_deref(), meta.at_ms)?;
    let mut file = std::fs::File::open(state).map_err(|e| Error::io("open", state, e))?;
    let branch = store.current_branch(crate::now_ms())?;
    let new_state = |object, size| NewLearnerState {
        generation: meta.generation,
        object,
        size,
        step: meta.step,
        metrics: meta.metrics.clone(),
    };
    // A small state goes inside the database, as a live save's does (one
    // fsync, not three: a long spool is taken in that much sooner). Read
    // one byte past the limit to know which it is.
    let mut head = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(&mut file, crate::limits::INLINE_STATE_BYTES as u64 + 1),
        &mut head,
    )
    .map_err(|e| Error::io("read", state, e))?;
    if head.len() <= crate::limits::INLINE_STATE_BYTES {
        let inline = crate::store::InlineState::new(head)
            .ok_or_else(|| Error::Internal("an inline state grew too large".into()))?;
        let s = new_state(inline.checksum(), inline.len());
        store.save_learner_live_inline(name, &s, &inline, meta.at_ms, Some(branch))?;
        return Ok(());
    }
    // Streamed (what was read first, then the rest): a spooled state may
    // be far larger than memory allows twice.
    let rest = std::io::Read::chain(&head[..], file);
    let info = objects.put_from(rest, crate::limits::MAX_OBJECT_BYTES, state)?;
    store.save_learner_live(
        name,
        &new_state(info.checksum, info.size),
        meta.at_ms,
        Some(branch),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(dir: &Path, name: &str, seq: u64, bytes: &[u8], json: &str) {
        let d = dir.join("spool").join(name);
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::write(d.join(format!("{seq:020}.state")), bytes).expect("state");
        std::fs::write(d.join(format!("{seq:020}.json")), json).expect("json");
    }

    #[test]
    fn spooled_saves_from_before_an_offline_restore_are_dropped_not_made_live() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path().join("engram.db")).expect("open");
        store.attach_learner("l", None, 1).expect("attach");
        store
            .save_live(
                &[crate::store::EngineState {
                    engine: "zap".into(),
                    state: crate::codec::encode(1, &1u64).expect("encode"),
                    metrics: crate::wire::Metrics::new(),
                }],
                1,
            )
            .expect("an engine's live state, for backups");
        spool(
            dir.path(),
            "l",
            1,
            b"kept",
            r#"{"step":1,"at_ms":1000,"generation":0}"#,
        );
        assert_eq!(ingest(&mut store, dir.path()).expect("ingest").taken_in, 1);
        let b = store
            .backup_live(crate::BackupKind::Manual, 1500, None, None)
            .expect("backup");
        // Restored (offline) while the learner spooled on, unaware.
        store.restore_learner(b, "l", 1600).expect("restore");
        spool(
            dir.path(),
            "l",
            2,
            b"stale",
            r#"{"step":2,"at_ms":2000,"generation":0}"#,
        );
        spool(
            dir.path(),
            "l",
            3,
            b"next",
            r#"{"step":3,"at_ms":3000,"generation":1}"#,
        );
        let r = ingest(&mut store, dir.path()).expect("ingest");
        assert_eq!((r.taken_in, r.stale, r.left.len()), (1, 1, 0), "{r:?}");
        assert_eq!(
            store.learner("l").expect("l").live.expect("live").step,
            Some(3)
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("spool/l"))
                .expect("dir")
                .count(),
            0,
            "the stale one is gone, not left to block later ones"
        );
    }

    #[test]
    fn spooled_saves_of_a_run_from_before_its_learner_was_deleted_do_not_bring_it_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path().join("engram.db")).expect("open");
        let generation = store
            .attach_learner("l", None, 1)
            .expect("attach")
            .generation;
        spool(
            dir.path(),
            "l",
            1,
            b"old run",
            &format!(r#"{{"step":1,"at_ms":1000,"generation":{generation}}}"#),
        );
        store.remove_learner("l", 1500).expect("deleted offline");
        let r = ingest(&mut store, dir.path()).expect("ingest");
        assert_eq!((r.taken_in, r.stale, r.left.len()), (0, 1, 0), "{r:?}");
        assert_eq!(
            store.learner("l").expect_err("still deleted").code(),
            "not_found"
        );
        // A new run (it attached after the deletion: no older generation)
        // is the learner again.
        spool(dir.path(), "l", 2, b"new run", r#"{"step":1,"at_ms":2000}"#);
        let r = ingest(&mut store, dir.path()).expect("ingest");
        assert_eq!((r.taken_in, r.stale), (1, 0), "{r:?}");
        assert_eq!(
            store
                .learner("l")
                .expect("back")
                .live
                .expect("live")
                .checksum,
            crate::Checksum::of(b"new run").to_hex()
        );
    }

    #[test]
    fn spooled_saves_are_taken_in_in_order_once_and_bad_ones_are_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path().join("engram.db")).expect("open");
        spool(
            dir.path(),
            "learner",
            2,
            b"second",
            r#"{"step":2,"at_ms":2000}"#,
        );
        spool(
            dir.path(),
            "learner",
            1,
            b"first",
            r#"{"step":1,"at_ms":1000,"metrics":{"loss":0.5}}"#,
        );
        // Cut off before its JSON: never taken in.
        std::fs::write(
            dir.path().join("spool/learner/00000000000000000003.state"),
            b"half",
        )
        .expect("w");
        spool(dir.path(), "Bad Name", 1, b"x", r#"{"at_ms":1}"#);
        spool(dir.path(), "other", 1, b"x", "not json");
        spool(dir.path(), "other", 2, b"y", r#"{"at_ms":2}"#);
        let r = ingest(&mut store, dir.path()).expect("ingest");
        assert_eq!(r.taken_in, 2);
        assert_eq!(r.left.len(), 2, "{:?}", r.left);
        let live = store
            .learner("learner")
            .expect("learner")
            .live
            .expect("live");
        assert_eq!(live.step, Some(2), "the newest save is live");
        assert_eq!(live.checksum, crate::Checksum::of(b"second").to_hex());
        // The earlier save went into the history too.
        let series = store
            .metric_series("learner", "loss", 0, i64::MAX, 10)
            .expect("series");
        assert_eq!(series.points.len(), 1);
        // Taken-in files are gone; the others stay; "other" 2 did not overtake 1.
        let left: Vec<String> = std::fs::read_dir(dir.path().join("spool/learner"))
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec!["00000000000000000003.state".to_string()]);
        assert_eq!(
            store.learner("other").expect_err("not attached").code(),
            "not_found"
        );
        // Again: nothing new.
        assert_eq!(ingest(&mut store, dir.path()).expect("again").taken_in, 0);
    }

    #[test]
    fn a_small_spooled_state_goes_inside_the_database_and_a_large_one_into_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path().join("engram.db")).expect("open");
        let files = |d: &Path| {
            walk(&d.join("objects"))
                .into_iter()
                .filter(|p| !p.starts_with(d.join("objects/trash")))
                .count()
        };
        // (learner, state, object files after it is taken in)
        let cases = [
            ("small", vec![7u8; crate::limits::INLINE_STATE_BYTES], 0),
            ("large", vec![9u8; crate::limits::INLINE_STATE_BYTES + 1], 1),
        ];
        for (at_ms, (name, state, object_files)) in cases.into_iter().enumerate() {
            let meta = format!(r#"{{"step":1,"at_ms":{}}}"#, at_ms + 1);
            spool(dir.path(), name, 1, &state, &meta);
            assert_eq!(ingest(&mut store, dir.path()).expect("ingest").taken_in, 1);
            assert_eq!(files(dir.path()), object_files, "{name}");
            let sum = crate::Checksum::of(&state);
            assert_eq!(
                store.read_learner_bytes(&sum, u64::MAX).expect("read"),
                state
            );
        }
    }

    fn walk(d: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
