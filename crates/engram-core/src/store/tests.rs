use super::*;
use crate::codec::encode;
use crate::wire::{
    BackupKind, Breakthrough, DensityBucket, LearnerCommand, LearnerMetric, Metrics, MilestoneRule,
    RemovedLearner, RetentionPolicy, TimelineQuery,
};
use blob::{CODEC_RAW, CODEC_ZSTD};
use rusqlite::params;
use std::collections::BTreeSet;

fn state(engine: &str, values: &[f64]) -> EngineState {
    EngineState {
        engine: engine.into(),
        state: encode(1, &values.to_vec()).expect("encode"),
        metrics: Metrics::from([("steps".to_string(), values.len() as f64)]),
    }
}

fn open_temp() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("engram.db")).expect("open");
    (dir, store)
}

fn backup(store: &mut Store, kind: BackupKind, t: i64, states: &[EngineState]) -> i64 {
    let bt = (kind == BackupKind::Breakthrough).then(|| Breakthrough {
        engine: "zap".into(),
        rule: "success_rate>=0.9".into(),
        metric: "success_rate".into(),
        value: 0.91,
        step: 42,
    });
    store
        .create_backup(&NewBackup {
            kind,
            created_at_ms: t,
            label: None,
            breakthrough: bt,
            states,
        })
        .expect("backup")
}

#[test]
fn live_state_round_trips_and_is_overwritten() {
    let (dir, mut store) = open_temp();
    store
        .save_live(&[state("zap", &[1.0, -0.0]), state("mdp_es", &[2.0])], 10)
        .expect("save");
    store
        .save_live(&[state("zap", &[3.0, f64::NAN])], 20)
        .expect("save");
    drop(store);
    let store = Store::open(dir.path().join("engram.db")).expect("reopen");
    let load = store
        .load_live(&["zap", "mdp_es", "orchestrator"])
        .expect("load");
    assert!(load.skipped.is_empty());
    let zap: Vec<f64> = load.states["zap"].state.decode().expect("decode");
    assert_eq!(zap[0], 3.0);
    assert!(zap[1].is_nan());
    assert_eq!(
        load.states["zap"].source,
        StateSource::Live { saved_at_ms: 20 }
    );
    assert_eq!(
        load.states["mdp_es"].source,
        StateSource::Live { saved_at_ms: 10 }
    );
    assert!(!load.states.contains_key("orchestrator"), "never saved");
    assert_eq!(store.live_saved_at().expect("at"), Some(20));
}

#[test]
fn backup_is_one_consistent_cut_and_dedups_unchanged_states() {
    let (_dir, mut store) = open_temp();
    let a = [state("zap", &[1.0]), state("mdp_es", &[2.0])];
    let id1 = backup(&mut store, BackupKind::Manual, 1, &a);
    let b = [state("zap", &[1.0]), state("mdp_es", &[2.5])];
    let id2 = backup(&mut store, BackupKind::Periodic, 2, &b);
    assert_eq!(
        store.blob_count().expect("count"),
        3,
        "zap's unchanged state is stored once"
    );
    let got = store.backup_states(id2).expect("states");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].engine, "mdp_es");
    assert_eq!(got[0].state, b[1].state);
    let info = store.get_backup(id1).expect("get");
    assert_eq!(info.kind, BackupKind::Manual);
    assert_eq!(
        info.engines
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        ["mdp_es", "zap"]
    );
    assert_eq!(info.engines[1].checksum, a[0].state.checksum().to_hex());
    assert_eq!(info.engines[1].metrics["steps"], 1.0);
}

#[test]
fn backup_live_copies_the_live_states() {
    let (_dir, mut store) = open_temp();
    let err = store
        .backup_live(BackupKind::Initial, 1, None, None)
        .expect_err("nothing live");
    assert_eq!(err.code(), "not_found");
    assert_eq!(
        store.count_backups().expect("count"),
        0,
        "failed backup left nothing"
    );
    let s = [state("zap", &[7.0]), state("orchestrator", &[8.0])];
    store.save_live(&s, 5).expect("save");
    let id = store
        .backup_live(BackupKind::Initial, 6, Some("first".into()), None)
        .expect("backup");
    let got = store.backup_states(id).expect("states");
    assert_eq!(got[1].state, s[0].state);
    assert_eq!(
        store.get_backup(id).expect("get").label.as_deref(),
        Some("first")
    );
}

#[test]
fn breakthrough_details_are_stored_and_required() {
    let (_dir, mut store) = open_temp();
    let id = backup(
        &mut store,
        BackupKind::Breakthrough,
        1,
        &[state("zap", &[1.0])],
    );
    let bt = store.get_backup(id).expect("get").breakthrough.expect("bt");
    assert_eq!(
        (bt.rule.as_str(), bt.value, bt.step),
        ("success_rate>=0.9", 0.91, 42)
    );
    let err = store
        .create_backup(&NewBackup {
            kind: BackupKind::Breakthrough,
            created_at_ms: 2,
            label: None,
            breakthrough: None,
            states: &[state("zap", &[1.0])],
        })
        .expect_err("missing details");
    assert_eq!(err.code(), "invalid_input");
}

#[test]
fn bad_names_and_labels_are_refused_without_writing() {
    let (_dir, mut store) = open_temp();
    for name in ["", "Zap", "a b", "x/y", &"e".repeat(65)] {
        let err = store.save_live(&[state(name, &[1.0])], 1).expect_err(name);
        assert_eq!(err.code(), "invalid_input", "{name:?}");
    }
    let dup = [state("zap", &[1.0]), state("zap", &[2.0])];
    assert!(
        store
            .create_backup(&NewBackup {
                kind: BackupKind::Manual,
                created_at_ms: 1,
                label: Some("bad\u{7}label".into()),
                breakthrough: None,
                states: &dup[..1],
            })
            .is_err()
    );
    assert!(
        store
            .create_backup(&NewBackup {
                kind: BackupKind::Manual,
                created_at_ms: 1,
                label: None,
                breakthrough: None,
                states: &dup,
            })
            .is_err()
    );
    assert_eq!(store.count_backups().expect("count"), 0);
    assert!(store.live_metrics().expect("live").is_empty());
}

#[test]
fn delete_refuses_protected_kinds_and_collects_garbage() {
    let (_dir, mut store) = open_temp();
    let init = backup(&mut store, BackupKind::Initial, 1, &[state("zap", &[1.0])]);
    let bt = backup(
        &mut store,
        BackupKind::Breakthrough,
        2,
        &[state("zap", &[2.0])],
    );
    let man = backup(&mut store, BackupKind::Manual, 3, &[state("zap", &[3.0])]);
    for id in [init, bt] {
        let err = store.delete_backup(id).expect_err("protected");
        assert_eq!(err.code(), "protected");
    }
    store.set_pinned(man, true).expect("pin");
    let err = store.delete_backup(man).expect_err("pinned");
    assert!(err.to_string().contains("unpin"), "{err}");
    store.set_pinned(man, false).expect("unpin");
    assert_eq!(store.blob_count().expect("n"), 3);
    store.delete_backup(man).expect("delete");
    assert_eq!(store.blob_count().expect("n"), 2, "its blob went with it");
    assert_eq!(store.get_backup(man).expect_err("gone").code(), "not_found");
    assert_eq!(
        store.delete_backup(999).expect_err("unknown").code(),
        "not_found"
    );
    assert_eq!(
        store.set_pinned(999, true).expect_err("unknown").code(),
        "not_found"
    );
}

#[test]
fn shared_blobs_survive_deleting_one_referrer() {
    let (_dir, mut store) = open_temp();
    let s = [state("zap", &[1.0])];
    let a = backup(&mut store, BackupKind::Manual, 1, &s);
    let b = backup(&mut store, BackupKind::Manual, 2, &s);
    store.delete_backup(a).expect("delete");
    assert_eq!(
        store.backup_states(b).expect("still readable")[0].state,
        s[0].state
    );
}

#[test]
fn retention_deletes_only_what_the_policy_drops() {
    let (_dir, mut store) = open_temp();
    backup(&mut store, BackupKind::Initial, 0, &[state("zap", &[0.0])]);
    let mut periodic = Vec::new();
    for i in 1..=6 {
        periodic.push(backup(
            &mut store,
            BackupKind::Periodic,
            i * 3_600_000,
            &[state("zap", &[i as f64])],
        ));
    }
    store.set_pinned(periodic[0], true).expect("pin");
    let policy = RetentionPolicy::last_periodic(2);
    let report = store.apply_retention(&policy).expect("retention");
    assert_eq!(report.deleted, periodic[1..4].to_vec());
    assert_eq!(report.blobs_removed, 3);
    assert_eq!(report.kept, 4);
    let explained = store.explain_retention(&policy).expect("explain");
    assert!(explained.iter().all(RetentionDecision::keep));
    assert_eq!(
        store.apply_retention(&policy).expect("again").deleted,
        Vec::<i64>::new()
    );
}

#[test]
fn listing_filters_by_kind_and_engine_newest_first() {
    let (_dir, mut store) = open_temp();
    let a = backup(&mut store, BackupKind::Manual, 10, &[state("zap", &[1.0])]);
    let b = backup(
        &mut store,
        BackupKind::Periodic,
        30,
        &[state("mdp_es", &[1.0])],
    );
    let c = backup(
        &mut store,
        BackupKind::Periodic,
        20,
        &[state("zap", &[2.0]), state("mdp_es", &[2.0])],
    );
    let ids = |q: BackupQuery| -> Vec<i64> {
        store
            .list_backups(&q)
            .expect("list")
            .items
            .iter()
            .map(|b| b.id)
            .collect()
    };
    assert_eq!(ids(BackupQuery::default()), vec![b, c, a]);
    assert_eq!(
        ids(BackupQuery {
            kinds: vec![BackupKind::Periodic],
            ..Default::default()
        }),
        vec![b, c]
    );
    assert_eq!(
        ids(BackupQuery {
            engine: Some("zap".into()),
            ..Default::default()
        }),
        vec![c, a]
    );
    let page = store
        .list_backups(&BackupQuery {
            limit: 1,
            offset: 1,
            ..Default::default()
        })
        .expect("list");
    assert_eq!(page.items[0].id, c);
    assert_eq!(page.total, 3);
}

#[test]
fn paging_through_100_000_backups_is_complete_ordered_and_indexed() {
    let (_dir, mut store) = open_temp();
    let s = state("zap", &[1.0]);
    backup(&mut store, BackupKind::Initial, 0, std::slice::from_ref(&s));
    // Bulk-insert through SQL in one transaction: 100,000 durable commits
    // would test the disk, not the listing.
    {
        let tx = store.conn.transaction().expect("tx");
        let blob: i64 = tx
            .query_row("SELECT id FROM blobs", [], |r| r.get(0))
            .expect("blob");
        let mut ins = tx
            .prepare("INSERT INTO backups (kind, created_at) VALUES (?1, ?2)")
            .expect("prep");
        let mut st = tx
            .prepare("INSERT INTO backup_states (backup_id, engine, blob_id, metrics) VALUES (?1, 'zap', ?2, '{}')")
            .expect("prep");
        for i in 1..100_000i64 {
            // Timestamps collide in groups of 3 to exercise the id tie-break.
            let kind = if i % 10 == 0 { "manual" } else { "periodic" };
            ins.execute(params![kind, i / 3]).expect("ins");
            st.execute(params![tx.last_insert_rowid(), blob])
                .expect("st");
        }
        drop((ins, st));
        tx.commit().expect("commit");
    }
    let mut seen = 0u64;
    let mut last: Option<(i64, i64)> = None;
    let mut q = BackupQuery {
        limit: 1000,
        ..Default::default()
    };
    loop {
        let page = store.list_backups(&q).expect("page");
        assert_eq!(page.total, 100_000);
        for b in &page.items {
            let key = (b.created_at_ms, b.id);
            if let Some(prev) = last {
                assert!(key < prev, "strictly newest first: {key:?} after {prev:?}");
            }
            last = Some(key);
            assert_eq!(b.engines.len(), 1);
        }
        seen += page.items.len() as u64;
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, 100_000);
    let manual = store
        .list_backups(&BackupQuery {
            kinds: vec![BackupKind::Manual],
            limit: 10,
            ..Default::default()
        })
        .expect("manual");
    assert_eq!(manual.total, 9_999);
    assert!(manual.items.iter().all(|b| b.kind == BackupKind::Manual));
    // The timeline counts all of them, by kind.
    let t = store
        .timeline(&TimelineQuery {
            kinds: vec![BackupKind::Manual, BackupKind::Manual, BackupKind::Periodic],
            ..Default::default()
        })
        .expect("timeline");
    // (one of the 100,000 is the first backup, of another kind)
    assert_eq!(
        (t.in_range, t.total),
        (99_999, 99_999),
        "each kind counted once"
    );
    let all = store.timeline(&TimelineQuery::default()).expect("all");
    assert_eq!((all.in_range, all.total), (100_000, 100_000));
    let counted: u64 = all
        .buckets
        .iter()
        .flat_map(|b| &b.counts)
        .map(|c| u64::from(c.count))
        .sum();
    assert_eq!(counted, 100_000);
    let plan: Vec<String> = store
        .conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", timeline::COUNT_SQL))
        .expect("explain")
        .query_map(params!["manual", 0, 10], |r| r.get::<_, String>(3))
        .expect("rows")
        .collect::<std::result::Result<_, _>>()
        .expect("plan");
    assert!(
        plan.join(" ")
            .contains("COVERING INDEX backups_by_kind_time"),
        "counting reads only the index: {plan:?}"
    );
    // The listing must walk an index, never sort 100,000 rows per page.
    for sql in [
        "SELECT id FROM backups b WHERE 1 ORDER BY b.created_at DESC, b.id DESC LIMIT 50",
        "SELECT id FROM backups b WHERE b.kind IN ('manual') ORDER BY b.created_at DESC, b.id DESC LIMIT 50",
        "SELECT id FROM backups b WHERE 1 AND (b.created_at, b.id) < (5, 16) ORDER BY b.created_at DESC, b.id DESC LIMIT 50",
    ] {
        let plan: Vec<String> = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain")
            .query_map([], |r| r.get::<_, String>(3))
            .expect("rows")
            .collect::<std::result::Result<_, _>>()
            .expect("plan");
        let plan = plan.join(" | ");
        assert!(
            plan.contains("USING") && !plan.contains("TEMP B-TREE"),
            "{sql}: {plan}"
        );
    }
}

#[test]
fn corrupt_live_state_falls_back_to_newest_good_backup() {
    let (_dir, mut store) = open_temp();
    let old = [state("zap", &[1.0])];
    let newer = [state("zap", &[2.0])];
    let live = [state("zap", &[3.0])];
    let b_old = backup(&mut store, BackupKind::Periodic, 10, &old);
    let b_new = backup(&mut store, BackupKind::Periodic, 20, &newer);
    store.save_live(&live, 30).expect("save");
    // Damage the live state and the newest backup's blob.
    store
        .conn
        .execute("UPDATE live_states SET data = zeroblob(length(data))", [])
        .expect("damage live");
    store
        .conn
        .execute(
            "UPDATE blobs SET data = substr(data, 1, 8) || x'ffffffff' || substr(data, 13) WHERE id =
             (SELECT blob_id FROM backup_states WHERE backup_id = ?1)",
            [b_new],
        )
        .expect("damage backup");
    let load = store.load_live(&["zap"]).expect("load");
    let got = &load.states["zap"];
    assert_eq!(
        got.state, old[0].state,
        "{:?} {:?}",
        got.source, load.skipped
    );
    assert_eq!(
        got.source,
        StateSource::Backup {
            id: b_old,
            created_at_ms: 10
        }
    );
    let what: Vec<&str> = load.skipped.iter().map(|s| s.what.as_str()).collect();
    assert_eq!(what, vec!["live".to_string(), format!("backup {b_new}")]);
    assert!(
        load.skipped.iter().all(|s| s.code == "corrupt_state"),
        "{:?}",
        load.skipped
    );

    let report = store.verify_all(true).expect("verify");
    assert!(report.database_ok);
    assert!(!report.is_ok());
    assert_eq!(report.backups_checked, 2);
    let bad: Vec<Option<i64>> = report.problems.iter().map(|p| p.backup_id).collect();
    assert_eq!(bad, vec![None, Some(b_new)]);
    assert!(store.verify_backup(b_old).expect("verify").is_empty());
}

#[test]
fn read_only_open_reads_but_cannot_write() {
    let (dir, mut store) = open_temp();
    backup(&mut store, BackupKind::Manual, 1, &[state("zap", &[1.0])]);
    let path = dir.path().join("engram.db");
    let mut ro = Store::open_read_only(&path).expect("ro");
    assert_eq!(ro.count_backups().expect("count"), 1);
    let err = ro
        .save_live(&[state("zap", &[2.0])], 2)
        .expect_err("read-only");
    assert_eq!(err.code(), "read_only", "{err}");
    let missing = Store::open_read_only(dir.path().join("nope.db")).expect_err("missing");
    assert_eq!(missing.code(), "not_found");
}

#[test]
fn kinds_parse_and_print_stably() {
    for k in BackupKind::ALL {
        assert_eq!(k.as_str().parse::<BackupKind>().expect("parse"), k);
        assert_eq!(
            serde_json::to_string(&k).expect("json"),
            format!("\"{}\"", k.as_str())
        );
    }
    assert_eq!(
        "hourly".parse::<BackupKind>().expect_err("unknown").code(),
        "invalid_input"
    );
}

#[test]
fn blobs_are_compressed_only_when_it_helps_and_both_read_back() {
    let (_dir, mut store) = open_temp();
    let compressible = state("zap", &vec![0.5; 4000]);
    // A tiny state: zstd's frame overhead makes it larger, so it stays raw.
    let incompressible = state("mdp_es", &[0.25]);
    let id = backup(
        &mut store,
        BackupKind::Manual,
        1,
        &[compressible.clone(), incompressible.clone()],
    );
    let codecs: Vec<(i64, i64, i64)> = store
        .conn
        .prepare("SELECT codec, raw_len, length(data) FROM blobs ORDER BY id")
        .expect("prep")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("q")
        .collect::<std::result::Result<_, _>>()
        .expect("rows");
    assert_eq!(codecs[0].0, CODEC_ZSTD);
    assert!(codecs[0].2 < codecs[0].1 / 10, "{codecs:?}");
    assert_eq!(codecs[1].0, CODEC_RAW);
    assert_eq!(codecs[1].1, codecs[1].2);
    let back = store.backup_states(id).expect("states");
    assert_eq!(back[0].state, incompressible.state);
    assert_eq!(back[1].state, compressible.state);
}

#[test]
fn backup_live_refuses_to_copy_a_damaged_live_state() {
    let (_dir, mut store) = open_temp();
    store
        .save_live(&[state("zap", &[1.0, 2.0])], 1)
        .expect("save");
    store
        .conn
        .execute(
            "UPDATE live_states SET data = substr(data, 1, 12) || x'00'",
            [],
        )
        .expect("damage");
    let err = store
        .backup_live(BackupKind::Periodic, 2, None, None)
        .expect_err("damaged");
    assert_eq!(err.code(), "corrupt_state");
    assert_eq!(store.count_backups().expect("n"), 0, "nothing half-written");
}

#[test]
fn offline_restore_keeps_an_undo_point_and_survives_a_damaged_live_state() {
    let (_dir, mut store) = open_temp();
    let old = [state("zap", &[1.0]), state("mdp_es", &[2.0])];
    store.save_live(&old, 1).expect("save");
    let b = store
        .backup_live(BackupKind::Manual, 2, None, None)
        .expect("backup");
    store
        .save_live(&[state("zap", &[9.0]), state("mdp_es", &[9.5])], 3)
        .expect("save");

    let (pre, engines) = store
        .restore_to_live(b, Some("zap"), 4)
        .expect("restore zap");
    assert_eq!(engines, ["zap"]);
    let pre = pre.expect("pre-restore taken");
    assert_eq!(
        store.get_backup(pre).expect("pre").kind,
        BackupKind::PreRestore
    );
    let live = store.load_live(&["zap", "mdp_es"]).expect("load");
    assert_eq!(live.states["zap"].state, old[0].state, "zap restored");
    let mdp: Vec<f64> = live.states["mdp_es"].state.decode().expect("decode");
    assert_eq!(mdp, [9.5], "the other engine untouched");
    assert_eq!(
        store
            .restore_to_live(b, Some("nope"), 5)
            .expect_err("engine")
            .code(),
        "not_found"
    );
    assert_eq!(
        store.restore_to_live(999, None, 5).expect_err("id").code(),
        "not_found"
    );

    // A damaged live state does not block restoring away from it.
    store
        .conn
        .execute("UPDATE live_states SET data = zeroblob(length(data))", [])
        .expect("damage");
    let (pre, _) = store
        .restore_to_live(b, None, 6)
        .expect("restore over damage");
    assert_eq!(pre, None, "nothing good to keep");
    assert!(
        store
            .load_live(&["zap", "mdp_es"])
            .expect("load")
            .skipped
            .is_empty()
    );
}

#[test]
fn listing_searches_labels_and_milestones_and_filters_pinned() {
    let (_dir, mut store) = open_temp();
    let s = [state("zap", &[1.0])];
    let a = backup(&mut store, BackupKind::Manual, 10, &s);
    store
        .set_label(a, Some("Before 50%_tuning"))
        .expect("label");
    let b = backup(&mut store, BackupKind::Breakthrough, 20, &s);
    let c = backup(&mut store, BackupKind::Periodic, 30, &s);
    store.set_pinned(c, true).expect("pin");
    let ids = |text: Option<&str>, pinned_only: bool| -> (Vec<i64>, u64) {
        let page = store
            .list_backups(&BackupQuery {
                text: text.map(str::to_string),
                pinned_only,
                ..Default::default()
            })
            .expect("list");
        (page.items.iter().map(|b| b.id).collect(), page.total)
    };
    // Case is ignored; % and _ are plain characters, not patterns.
    assert_eq!(ids(Some("before"), false), (vec![a], 1));
    assert_eq!(ids(Some("50%_T"), false), (vec![a], 1));
    assert_eq!(ids(Some("5%"), false), (vec![], 0));
    // The milestone's rule, metric and engine are searched.
    assert_eq!(ids(Some("SUCCESS_RATE>="), false), (vec![b], 1));
    assert_eq!(ids(Some("zap"), false), (vec![b], 1));
    assert_eq!(ids(Some(""), false), (vec![c, b, a], 3));
    assert_eq!(ids(None, true), (vec![c], 1));
    assert_eq!(ids(Some("before"), true), (vec![], 0));
    let long = "x".repeat(MAX_SEARCH_CHARS + 1);
    let err = store
        .list_backups(&BackupQuery {
            text: Some(long),
            ..Default::default()
        })
        .expect_err("too long");
    assert_eq!(err.code(), "invalid_input");
}

#[test]
fn timeline_buckets_count_what_the_bucket_formula_says_at_odd_widths() {
    // Irregular times (clusters, repeats, both ends), two kinds; ranges and
    // bucket counts whose widths are not whole milliseconds: every backup
    // is counted in the bucket its time falls in, computed here per backup.
    let (_dir, mut store) = open_temp();
    let s = [state("zap", &[1.0])];
    let mut times = Vec::new();
    for i in 0..400i64 {
        let t = (i * i * 7919) % 100_003 + if i % 5 == 0 { 0 } else { i % 3 };
        let kind = if i % 7 == 0 {
            BackupKind::Manual
        } else {
            BackupKind::Periodic
        };
        backup(&mut store, kind, t, &s);
        times.push((kind, t));
    }
    let (lo, hi) = (
        times.iter().map(|x| x.1).min().expect("min"),
        times.iter().map(|x| x.1).max().expect("max"),
    );
    for (from, to, n) in [
        (None, None, 7u32),
        (Some(13), Some(77_777), 300),
        (Some(lo), Some(lo + 2), 9),
        (Some(50_000), Some(50_000), 4),
        (None, None, 4000),
    ] {
        let view = store
            .timeline(&TimelineQuery {
                from_ms: from,
                to_ms: to,
                buckets: Some(n),
                ..Default::default()
            })
            .expect("timeline");
        let (f, t) = (from.unwrap_or(lo), to.unwrap_or(hi));
        let width = ((t as f64 - f as f64) + 1.0) / f64::from(n);
        let mut want = std::collections::BTreeMap::new();
        for (kind, at) in &times {
            if (f..=t).contains(at) {
                let i = (((*at as f64 - f as f64) / width) as i64).clamp(0, i64::from(n) - 1);
                *want.entry((i, kind.as_str())).or_insert(0u32) += 1;
            }
        }
        let mut got = std::collections::BTreeMap::new();
        for b in &view.buckets {
            let i = (((b.start_ms as f64 - f as f64) / width).round()) as i64;
            for c in &b.counts {
                got.insert((i, c.kind.as_str()), c.count);
            }
        }
        assert_eq!(got, want, "from {from:?} to {to:?} in {n} buckets");
        assert_eq!(
            view.in_range,
            want.values().map(|c| u64::from(*c)).sum::<u64>()
        );
    }
}

#[test]
fn timeline_counts_by_kind_per_bucket_and_draws_marks_when_few() {
    let (_dir, mut store) = open_temp();
    let s = [state("zap", &[1.0])];
    let initial = backup(&mut store, BackupKind::Initial, 0, &s);
    // 1,000 periodic backups, one a second from t = 1 s, a milestone at
    // 500.5 s and a pinned periodic one.
    let mut periodic = Vec::new();
    for i in 1..=1000 {
        periodic.push(backup(&mut store, BackupKind::Periodic, i * 1000, &s));
    }
    let bt = backup(&mut store, BackupKind::Breakthrough, 500_500, &s);
    store.set_pinned(periodic[9], true).expect("pin");
    let all = store
        .timeline(&TimelineQuery {
            buckets: Some(10),
            marks: Some(100),
            ..Default::default()
        })
        .expect("timeline");
    assert_eq!((all.first_ms, all.last_ms), (Some(0), Some(1_000_000)));
    assert_eq!((all.from_ms, all.to_ms), (0, 1_000_000));
    assert_eq!((all.in_range, all.total), (1002, 1002));
    assert_eq!(all.buckets.len(), 10);
    let sum: u32 = all
        .buckets
        .iter()
        .flat_map(|b| b.counts.iter().map(|c| c.count))
        .sum();
    assert_eq!(sum, 1002, "every backup is counted once");
    // Bucket 0 holds [0, 100 000.1): the initial backup and periodic 1..=100.
    let first = &all.buckets[0];
    assert_eq!(first.start_ms, 0);
    let count = |b: &DensityBucket, k: BackupKind| {
        b.counts.iter().find(|c| c.kind == k).map_or(0, |c| c.count)
    };
    assert_eq!(count(first, BackupKind::Initial), 1);
    assert_eq!(count(first, BackupKind::Periodic), 100);
    assert_eq!(count(&all.buckets[5], BackupKind::Breakthrough), 1);
    // Too many to draw one by one: only the initial, milestone and pinned.
    assert!(!all.complete);
    let ids: Vec<i64> = all.marks.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![initial, periodic[9], bt]);
    assert_eq!(all.marks[2].breakthrough.as_ref().map(|b| b.step), Some(42));
    // Zoomed in to 50 s: every backup, oldest first, and the kind filter.
    let zoom = store
        .timeline(&TimelineQuery {
            from_ms: Some(480_000),
            to_ms: Some(530_000),
            marks: Some(100),
            ..Default::default()
        })
        .expect("zoom");
    assert!(zoom.complete);
    assert_eq!(zoom.in_range, 52);
    assert_eq!(zoom.marks.len(), 52);
    assert!(
        zoom.marks
            .windows(2)
            .all(|w| w[0].created_at_ms <= w[1].created_at_ms)
    );
    assert_eq!(
        zoom.first_ms,
        Some(0),
        "the whole history is still reported"
    );
    let only = store
        .timeline(&TimelineQuery {
            kinds: vec![BackupKind::Breakthrough, BackupKind::Initial],
            ..Default::default()
        })
        .expect("filtered");
    assert_eq!((only.in_range, only.total), (2, 2));
    assert!(only.complete);
    // Hostile ranges: reversed is refused; the extremes of i64 are fine.
    let err = store
        .timeline(&TimelineQuery {
            from_ms: Some(10),
            to_ms: Some(0),
            ..Default::default()
        })
        .expect_err("reversed");
    assert_eq!(err.code(), "invalid_input");
    let wide = store
        .timeline(&TimelineQuery {
            from_ms: Some(i64::MIN),
            to_ms: Some(i64::MAX),
            buckets: Some(u32::MAX),
            marks: Some(u32::MAX),
            ..Default::default()
        })
        .expect("extremes");
    assert_eq!(wide.in_range, 1002);
    assert!(wide.buckets.iter().all(|b| b.start_ms <= b.end_ms));
}

#[test]
fn storage_report_counts_dedup_and_growth() {
    let (_dir, mut store) = open_temp();
    const DAY: i64 = 86_400_000;
    let one = [state("zap", &[1.0; 1000])];
    let two = [state("zap", &[2.0; 1000])];
    backup(&mut store, BackupKind::Initial, DAY + 5, &one);
    // Same content again (deduplicated), then new content on day 3.
    backup(&mut store, BackupKind::Periodic, DAY + 10, &one);
    backup(&mut store, BackupKind::Periodic, 3 * DAY + 1, &two);
    let r = store.storage_report().expect("report");
    assert_eq!(r.backups, 3);
    assert_eq!(r.blobs, 2);
    assert_eq!(r.referenced_bytes, 3 * one[0].state.as_bytes().len() as u64);
    assert_eq!(r.unique_bytes, 2 * one[0].state.as_bytes().len() as u64);
    assert!(
        r.stored_bytes > 0 && r.stored_bytes < r.unique_bytes,
        "compressed"
    );
    assert!(r.db_bytes > 0);
    let kinds: Vec<(BackupKind, u64, bool)> = r
        .by_kind
        .iter()
        .map(|k| (k.kind, k.backups, k.added_bytes > 0))
        .collect();
    // The shared content is the initial backup's: the periodic ones add only `two`.
    assert_eq!(
        kinds,
        vec![
            (BackupKind::Initial, 1, true),
            (BackupKind::Periodic, 2, true)
        ]
    );
    let added: u64 = r.by_kind.iter().map(|k| k.added_bytes).sum();
    assert_eq!(added, r.stored_bytes);
    let days: Vec<(i64, u64)> = r.growth.iter().map(|d| (d.day_ms, d.backups)).collect();
    assert_eq!(days, vec![(DAY, 2), (3 * DAY, 1)]);
    let grown: u64 = r.growth.iter().map(|d| d.added_bytes).sum();
    assert_eq!(grown, r.stored_bytes);
    assert_eq!(
        (r.learner_states, r.learner_referenced_bytes),
        (0, 0),
        "no learners yet"
    );

    // A learner: a small state (inline) that two backups and the live row
    // name, then a large one (a file) live.
    store.attach_learner("q", None, 1).expect("attach");
    let small = super::InlineState::new(vec![7; 1000]).expect("small");
    let meta = |object, size| NewLearnerState {
        generation: None,
        object,
        size,
        step: None,
        metrics: Metrics::new(),
    };
    store
        .save_learner_live_inline(
            "q",
            &meta(small.checksum(), 1000),
            &small,
            3 * DAY + 2,
            None,
        )
        .expect("save small");
    backup(&mut store, BackupKind::Manual, 3 * DAY + 3, &two);
    backup(&mut store, BackupKind::Manual, 3 * DAY + 4, &two);
    let big = store.objects().put(&vec![9; 300_000]).expect("file");
    store
        .save_learner_live("q", &meta(big.checksum, big.size), 3 * DAY + 5, None)
        .expect("save big");
    let r = store.storage_report().expect("report");
    assert_eq!(r.learner_states, 2);
    assert_eq!(r.learner_referenced_bytes, 2 * 1000 + 300_000);
    assert_eq!(
        (r.learner_inline_bytes, r.learner_file_bytes),
        (1000, 300_000)
    );
    assert_eq!(r.learner_slot_bytes, 0, "no slot written");
    // A slot file counts as what it takes on disk, live or not.
    let mut w = store.objects().slot_writer("q", 2, 1 << 20).expect("w");
    w.write(&[5; 4096]).expect("write");
    w.finish_slot(None).expect("finish");
    assert_eq!(
        store.storage_report().expect("report").learner_slot_bytes,
        4096
    );
}

#[test]
fn a_held_backup_is_kept_by_retention_until_released() {
    let (_dir, mut store) = open_temp();
    let s = [state("zap", &[1.0])];
    let old = backup(&mut store, BackupKind::Periodic, 1000, &s);
    backup(&mut store, BackupKind::Periodic, 2000, &s);
    let policy = RetentionPolicy::last_periodic(1);
    store.hold(old).expect("hold");
    let why = store.explain_retention(&policy).expect("explain");
    let d = why.iter().find(|d| d.id == old).expect("old");
    assert_eq!(d.reasons, vec![KeepReason::Held]);
    let outlook = store.retention_outlook(&policy, 3000).expect("outlook");
    let o = outlook.iter().find(|o| o.id == old).expect("old");
    assert!(!o.rolls_off_next);
    assert_eq!(o.kept_because, vec![KeepReason::Held]);
    assert!(KeepReason::Held.describe().contains("open in the UI"));
    assert!(
        store
            .apply_retention(&policy)
            .expect("kept")
            .deleted
            .is_empty()
    );
    store.release(old);
    assert_eq!(
        store.apply_retention(&policy).expect("rolls").deleted,
        vec![old]
    );
    let err = store.hold(old).expect_err("gone");
    assert_eq!(err.code(), "not_found");
}

#[test]
fn learners_attach_idempotently_and_every_backup_cut_holds_their_newest_state() {
    let (dir, mut store) = open_temp();
    let objects = crate::objects::Objects::new(dir.path());
    let first = store
        .attach_learner("frozenlake-q", Some("engram.pack/1"), 10)
        .expect("attach");
    assert_eq!(
        (first.name.as_str(), first.live.is_none()),
        ("frozenlake-q", true)
    );
    let again = store
        .attach_learner("frozenlake-q", Some("engram.pack/1"), 20)
        .expect("again");
    assert_eq!(
        again.registered_at_ms, 10,
        "attaching again changes nothing"
    );
    // Before its first save the format may still change (fixed after it:
    // see a_learner_command_is_kept_validated_and_its_format_settles_at_the_first_save).
    let changed = store
        .attach_learner("frozenlake-q", Some("pickle"), 30)
        .expect("unsaved: another format");
    assert_eq!(changed.format, "pickle");
    store
        .attach_learner("frozenlake-q", Some("engram.pack/1"), 30)
        .expect("and back");
    for bad in [
        "",
        "Zap",
        "a b",
        "zap",
        "orchestrator",
        "é",
        &"x".repeat(65),
    ] {
        let err = store.attach_learner(bad, Some("raw"), 1).expect_err(bad);
        assert_eq!(err.code(), "invalid_input", "{bad:?}");
    }
    assert_eq!(
        store
            .attach_learner("ok", Some("with space"), 1)
            .expect_err("format")
            .code(),
        "invalid_input"
    );
    // No format: the registered one (and `raw` for a new learner).
    let found = store
        .attach_learner("frozenlake-q", None, 25)
        .expect("no format");
    assert_eq!(found.format, "engram.pack/1");
    assert_eq!(
        store.attach_learner("plain", None, 26).expect("new").format,
        "raw"
    );
    // An unknown learner's state is refused and nothing is stored.
    let obj = objects.put(b"q-table v1").expect("object");
    let new_state = |o: &crate::objects::ObjectInfo, step: u64| NewLearnerState {
        generation: None,
        object: o.checksum,
        size: o.size,
        step: Some(step),
        metrics: Metrics::from([("success".to_string(), 0.5)]),
    };
    let err = store
        .save_learner_live("nobody", &new_state(&obj, 1), 40, None)
        .expect_err("unknown");
    assert_eq!(err.code(), "not_found");
    let branch = store.current_branch(40).expect("branch");
    let saved = store
        .save_learner_live("frozenlake-q", &new_state(&obj, 100), 50, Some(branch))
        .expect("save");
    assert_eq!(saved.step, Some(100));
    // A backup holds it; a later save does not change the backup.
    let b1 = backup(&mut store, BackupKind::Manual, 60, &[state("zap", &[1.0])]);
    let obj2 = objects.put(b"q-table v2").expect("object");
    store
        .save_learner_live("frozenlake-q", &new_state(&obj2, 200), 70, Some(branch))
        .expect("save 2");
    let in_b1 = store
        .backup_learner_state(b1, "frozenlake-q")
        .expect("in b1");
    assert_eq!(
        (in_b1.checksum.as_str(), in_b1.step),
        (obj.checksum.to_hex().as_str(), Some(100))
    );
    let live = store
        .learner("frozenlake-q")
        .expect("learner")
        .live
        .expect("live");
    assert_eq!(
        (live.checksum, live.step),
        (obj2.checksum.to_hex(), Some(200))
    );
    assert_eq!(
        store.learner_objects().expect("objects"),
        BTreeSet::from([obj.checksum, obj2.checksum])
    );
    // Metrics went into the history under the learner's name.
    let series = store
        .metric_series("frozenlake-q", "success", 0, i64::MAX, 10)
        .expect("series");
    assert_eq!(series.points.len(), 2);
    // Deleting the backup drops its reference: only the live object is left.
    store.delete_backups_unchecked(&[b1]).expect("delete");
    assert_eq!(
        store.learner_objects().expect("objects"),
        BTreeSet::from([obj2.checksum])
    );
    assert_eq!(
        store
            .backup_learner_state(b1, "frozenlake-q")
            .expect_err("gone")
            .code(),
        "not_found"
    );
}

#[test]
fn small_learner_states_live_in_the_database_and_go_when_no_row_refers_to_them() {
    let (_dir, mut store) = open_temp();
    store.attach_learner("q", None, 1).expect("attach");
    let inline = |bytes: &[u8]| super::InlineState::new(bytes.to_vec()).expect("small");
    let meta = |st: &super::InlineState, step: u64| NewLearnerState {
        generation: None,
        object: st.checksum(),
        size: st.len(),
        step: Some(step),
        metrics: Metrics::new(),
    };
    let inline_rows = |store: &Store| -> i64 {
        store
            .conn()
            .query_row("SELECT count(*) FROM learner_inline_states", [], |r| {
                r.get(0)
            })
            .expect("count")
    };
    let (a, b, c) = (inline(b"state a"), inline(b"state b"), inline(b"state c"));
    store
        .save_learner_live_inline("q", &meta(&a, 1), &a, 10, None)
        .expect("save a");
    assert_eq!(
        store.read_learner_bytes(&a.checksum(), 100).expect("read"),
        b"state a"
    );
    assert!(store.has_learner_bytes(&a.checksum()).expect("has"));
    assert!(
        !store.objects().contains(&a.checksum()),
        "no file for a small state"
    );
    // A backup holds a; b replaces it as live (a stays), c replaces b (b goes).
    let held = backup(&mut store, BackupKind::Manual, 20, &[state("zap", &[1.0])]);
    store
        .save_learner_live_inline("q", &meta(&b, 2), &b, 30, None)
        .expect("save b");
    assert_eq!(inline_rows(&store), 2);
    store
        .save_learner_live_inline("q", &meta(&c, 3), &c, 40, None)
        .expect("save c");
    assert_eq!(
        inline_rows(&store),
        2,
        "b went with the save that let go of it"
    );
    assert!(!store.has_learner_bytes(&b.checksum()).expect("has"));
    assert_eq!(
        store
            .read_learner_bytes(&b.checksum(), 100)
            .expect_err("gone")
            .code(),
        "corrupt_state"
    );
    // Bytes that are not the state described are refused; nothing changes.
    let err = store
        .save_learner_live_inline("q", &meta(&a, 4), &b, 50, None)
        .expect_err("mismatch");
    assert_eq!(err.code(), "internal");
    assert_eq!(
        store.learner("q").expect("q").live.expect("live").step,
        Some(3)
    );
    assert_eq!(inline_rows(&store), 2);
    // Over the limit: not kept inline at all.
    assert!(super::InlineState::new(vec![0; crate::limits::INLINE_STATE_BYTES + 1]).is_none());
    // The backup's deletion frees a at once (nothing left to collect).
    store.delete_backup(held).expect("delete");
    assert!(!store.has_learner_bytes(&a.checksum()).expect("has"));
    assert_eq!(store.collect_learner_states().expect("collect"), 0);
    // The same for a file: kept while a backup names it, gone with it.
    let big = store.objects().put(&vec![5; 300_000]).expect("file");
    let file_meta = NewLearnerState {
        generation: None,
        object: big.checksum,
        size: big.size,
        step: Some(5),
        metrics: Metrics::new(),
    };
    store
        .save_learner_live("q", &file_meta, 60, None)
        .expect("save file");
    let holds_file = backup(&mut store, BackupKind::Manual, 70, &[state("zap", &[1.0])]);
    store
        .save_learner_live_inline("q", &meta(&c, 6), &c, 80, None)
        .expect("save c again");
    assert!(store.objects().contains(&big.checksum), "a backup names it");
    store.delete_backup(holds_file).expect("delete");
    assert!(
        !store.objects().contains(&big.checksum),
        "gone with its backup"
    );
    assert!(
        store.has_learner_bytes(&c.checksum()).expect("has"),
        "live stays"
    );
    // A damaged inline state is found by its checksum, by reads and verify.
    store
        .conn()
        .execute(
            "UPDATE learner_inline_states SET bytes = ?1 WHERE checksum = ?2",
            rusqlite::params![b"state C".to_vec(), &c.checksum().0[..]],
        )
        .expect("rot");
    assert_eq!(
        store
            .read_learner_bytes(&c.checksum(), 100)
            .expect_err("rotten")
            .code(),
        "corrupt_state"
    );
    let report = store.verify_all(false).expect("verify");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.engine.as_deref() == Some("q") && p.code == crate::ErrorCode::CorruptState),
        "{report:?}"
    );
}

#[test]
fn a_learner_command_is_kept_validated_and_its_format_settles_at_the_first_save() {
    let (dir, mut store) = open_temp();
    let workdir = dir.path().display().to_string();
    let cmd = LearnerCommand {
        argv: vec!["python3".into(), "train.py".into()],
        workdir: workdir.clone(),
        autostart: true,
    };
    // A command registers the learner (format raw until it attaches).
    let l = store.set_learner_command("q", &cmd, 5).expect("set");
    assert_eq!(l.format, "raw");
    assert_eq!(l.command.as_ref(), Some(&cmd));
    // Before its first save, its own attach sets the format...
    let l = store
        .attach_learner("q", Some("engram.pack/1"), 6)
        .expect("format while unsaved");
    assert_eq!(l.format, "engram.pack/1");
    assert_eq!(l.command.as_ref(), Some(&cmd), "attach keeps the command");
    // ...after it, another format is refused.
    let objects = crate::objects::Objects::new(dir.path());
    let info = objects.put(b"state").expect("put");
    store
        .save_learner_live(
            "q",
            &NewLearnerState {
                generation: None,
                object: info.checksum,
                size: info.size,
                step: Some(1),
                metrics: Metrics::new(),
            },
            7,
            None,
        )
        .expect("save");
    let err = store
        .attach_learner("q", Some("pickle"), 8)
        .expect_err("fixed");
    assert_eq!(err.code(), "invalid_input");

    let stopped = store.set_learner_autostart("q", false).expect("stop");
    assert!(!stopped.autostart);
    assert!(
        !store
            .learner("q")
            .expect("q")
            .command
            .expect("cmd")
            .autostart
    );

    // Refusals leave the stored command as it was.
    for bad in [
        LearnerCommand {
            argv: vec![],
            ..cmd.clone()
        },
        LearnerCommand {
            argv: vec!["".into()],
            ..cmd.clone()
        },
        LearnerCommand {
            argv: vec!["a\0b".into()],
            ..cmd.clone()
        },
        LearnerCommand {
            argv: vec!["x".repeat(5000)],
            ..cmd.clone()
        },
        LearnerCommand {
            argv: vec!["x".into(); 300],
            ..cmd.clone()
        },
        LearnerCommand {
            workdir: "relative/dir".into(),
            ..cmd.clone()
        },
    ] {
        let err = store.set_learner_command("q", &bad, 9).expect_err("bad");
        assert_eq!(err.code(), "invalid_input", "{bad:?}");
    }
    let err = store
        .set_learner_command("zap", &cmd, 9)
        .expect_err("built-in");
    assert_eq!(err.code(), "invalid_input");
    assert_eq!(
        store.learner("q").expect("q").command.expect("cmd").argv,
        cmd.argv
    );

    store.remove_learner_command("q").expect("remove");
    let l = store.learner("q").expect("q");
    assert!(l.command.is_none());
    assert!(l.live.is_some(), "its states stay");
    assert_eq!(
        store.remove_learner_command("q").expect_err("none").code(),
        "not_found"
    );
    assert_eq!(
        store
            .set_learner_autostart("q", true)
            .expect_err("none")
            .code(),
        "not_found"
    );
    assert_eq!(
        store
            .remove_learner_command("nobody")
            .expect_err("unknown")
            .code(),
        "not_found"
    );
}

#[test]
fn restore_to_live_takes_learners_back_too_alone_or_with_the_engines() {
    let (dir, mut store) = open_temp();
    let objects = crate::objects::Objects::new(dir.path());
    store
        .save_live(
            &[EngineState {
                engine: "zap".into(),
                state: encode(1, &1u64).expect("encode"),
                metrics: Metrics::from([("plans".into(), 1.0)]),
            }],
            10,
        )
        .expect("live");
    store.attach_learner("q", None, 10).expect("attach");
    let save = |store: &mut Store, bytes: &[u8], step: u64, at: i64| {
        let info = objects.put(bytes).expect("put");
        store
            .save_learner_live(
                "q",
                &NewLearnerState {
                    generation: None,
                    object: info.checksum,
                    size: info.size,
                    step: Some(step),
                    metrics: Metrics::new(),
                },
                at,
                None,
            )
            .expect("save");
    };
    save(&mut store, b"q at 1", 1, 11);
    let b = store
        .backup_live(BackupKind::Manual, 12, None, None)
        .expect("backup");
    save(&mut store, b"q at 2", 2, 13);
    // Only the learner: the engines stay; a pre-restore backup holds step 2.
    let (pre, names) = store.restore_to_live(b, Some("q"), 14).expect("restore");
    assert_eq!(names, vec!["q".to_string()]);
    assert_eq!(
        store.learner("q").expect("q").live.expect("live").step,
        Some(1)
    );
    let pre = pre.expect("a pre-restore backup");
    assert_eq!(
        store.backup_learner_state(pre, "q").expect("held").step,
        Some(2)
    );
    // Everything: engines and learners.
    save(&mut store, b"q at 3", 3, 15);
    let (_, names) = store.restore_to_live(b, None, 16).expect("restore all");
    assert_eq!(names, vec!["zap".to_string(), "q".to_string()]);
    assert_eq!(
        store.learner("q").expect("q").live.expect("live").step,
        Some(1)
    );
    // A learner whose file is gone: refused before anything changes.
    let sum = crate::Checksum::from_hex(&store.backup_learner_state(b, "q").expect("q").checksum)
        .expect("hex");
    let path = dir
        .path()
        .join("objects")
        .join(&sum.to_hex()[..2])
        .join(&sum.to_hex()[2..]);
    std::fs::remove_file(&path).expect("remove");
    let before = store.count_backups().expect("n");
    let err = store
        .restore_to_live(b, Some("q"), 17)
        .expect_err("missing file");
    assert_eq!(err.code(), "corrupt_state", "{err}");
    assert_eq!(
        store.count_backups().expect("n"),
        before,
        "no pre-restore backup for a refusal"
    );
}

#[test]
fn a_restore_starts_a_learners_next_generation_and_saves_of_the_old_one_are_refused() {
    let (dir, mut store) = open_temp();
    let objects = crate::objects::Objects::new(dir.path());
    store.attach_learner("g", None, 1).expect("attach");
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
    let save = |store: &mut Store, bytes: &[u8], step: u64, generation: Option<i64>| {
        let info = objects.put(bytes).expect("put");
        store.save_learner_live(
            "g",
            &NewLearnerState {
                generation,
                object: info.checksum,
                size: info.size,
                step: Some(step),
                metrics: Metrics::new(),
            },
            10 + step as i64,
            None,
        )
    };
    save(&mut store, b"one", 1, Some(0)).expect("generation 0");
    let b = store
        .backup_live(BackupKind::Manual, 20, None, None)
        .expect("backup");
    save(&mut store, b"two", 2, Some(0)).expect("still 0");
    assert_eq!(store.learner("g").expect("g").generation, 0);
    store.restore_learner(b, "g", 30).expect("restore");
    assert_eq!(store.learner("g").expect("g").generation, 1);
    // The line restored away from: refused, and the restore stands.
    let err = save(&mut store, b"three", 3, Some(0)).expect_err("stale");
    assert_eq!(err.code(), "stale_state", "{err}");
    assert!(err.to_string().contains("restored"), "{err}");
    assert_eq!(
        store.learner("g").expect("g").live.expect("live").step,
        Some(1)
    );
    // The next generation, or no check at all, goes through.
    save(&mut store, b"three", 3, Some(1)).expect("generation 1");
    save(&mut store, b"four", 4, None).expect("unchecked");
    assert_eq!(
        store.learner("g").expect("g").live.expect("live").step,
        Some(4)
    );
}

#[test]
fn a_live_state_held_in_a_slot_reads_verifies_and_becomes_an_object_at_a_cut() {
    let (dir, mut store) = open_temp();
    store.attach_learner("q", None, 1).expect("attach");
    store
        .save_live(&[state("zap", &[1.0])], 5)
        .expect("an engine's live state, for backups");
    let in_slot = |store: &mut Store, slot: u8, bytes: &[u8], step: u64| {
        let mut w = store.objects().slot_writer("q", slot, 1 << 20).expect("w");
        w.write(bytes).expect("write");
        let held = w.finish_slot(None).expect("finish");
        let meta = NewLearnerState {
            generation: None,
            object: held.checksum(),
            size: held.size(),
            step: Some(step),
            metrics: Metrics::new(),
        };
        store
            .save_learner_live_in_slot("q", &meta, slot, 10 + step as i64, None)
            .expect("save");
        held.checksum()
    };
    let slot_of = |store: &Store| store.learner_live_slot("q").expect("slot").0;
    let a = in_slot(&mut store, 0, b"state a, held in slot 0", 1);
    assert_eq!(slot_of(&store), Some(0));
    assert_eq!(
        store.read_live_learner_bytes("q", &a, 100).expect("read"),
        b"state a, held in slot 0"
    );
    assert!(!store.objects().contains(&a), "no object file yet");
    assert!(store.verify_all(false).expect("verify").problems.is_empty());
    // A cut: the slot's file becomes the object the backup names.
    let id = store
        .backup_live(BackupKind::Manual, 20, None, None)
        .expect("backup");
    assert_eq!(slot_of(&store), None, "found by checksum from now on");
    assert!(store.objects().contains(&a));
    let held = store.backup_learner_state(id, "q").expect("held");
    assert_eq!(held.checksum, a.to_hex());
    assert_eq!(
        store.read_live_learner_bytes("q", &a, 100).expect("read"),
        b"state a, held in slot 0"
    );
    // The next save writes a slot again; the backup's object stays.
    let b = in_slot(&mut store, 1, b"state b", 2);
    assert_eq!(slot_of(&store), Some(1));
    assert!(store.objects().contains(&a), "a backup names it");
    assert!(store.verify_all(false).expect("verify").problems.is_empty());
    // A slot that no longer holds the live state (damaged): verify says so,
    // and resuming falls back to the newest backup's intact state.
    std::fs::write(dir.path().join("slots/q/1"), b"state B").expect("rot");
    let report = store.verify_all(false).expect("verify");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].engine.as_deref(), Some("q"));
    assert_eq!(
        store
            .read_live_learner_bytes("q", &b, 100)
            .expect_err("damaged")
            .code(),
        "corrupt_state"
    );
    let (live, bytes, from) = store.learner_live_or_fallback("q", 30).expect("fallback");
    assert_eq!(
        (from, bytes.as_slice()),
        (Some(id), &b"state a, held in slot 0"[..])
    );
    assert_eq!(live.checksum, a.to_hex());
}

#[test]
fn a_deleted_learner_is_gone_from_every_list_yet_its_backups_keep_it_and_bring_it_back() {
    let (dir, mut store) = open_temp();
    let objects = crate::objects::Objects::new(dir.path());
    store
        .attach_learner("q", Some("engram.pack/1"), 10)
        .expect("attach");
    store.attach_learner("other", None, 10).expect("attach");
    let branch = store.current_branch(10).expect("branch");
    let save = |store: &mut Store, name: &str, bytes: &[u8], step: u64, at: i64| {
        let info = objects.put(bytes).expect("put");
        store
            .save_learner_live(
                name,
                &NewLearnerState {
                    generation: None,
                    object: info.checksum,
                    size: info.size,
                    step: Some(step),
                    metrics: Metrics::from([("success".to_string(), step as f64)]),
                },
                at,
                Some(branch),
            )
            .expect("save");
        info.checksum
    };
    store
        .save_live(&[state("zap", &[1.0])], 11)
        .expect("engines");
    let in_backup = save(&mut store, "q", b"q at 1", 1, 11);
    save(&mut store, "other", b"other at 1", 1, 11);
    let b = store
        .backup_live(BackupKind::Manual, 12, None, None)
        .expect("backup");
    let newer = save(&mut store, "q", b"q at 2", 2, 13);
    let cmd = LearnerCommand {
        argv: vec!["python3".into(), "train.py".into()],
        workdir: dir.path().display().to_string(),
        autostart: true,
    };
    store.set_learner_command("q", &cmd, 14).expect("command");
    let lent = objects.lease_slot("q", 1, "abc").expect("a slot file");
    assert!(lent.path().exists());
    let generation = store.learner("q").expect("q").generation;

    let removed = store.remove_learner("q", 20).expect("delete");
    assert_eq!(
        removed,
        RemovedLearner {
            name: "q".into(),
            backups: 1,
            newest_backup_id: Some(b),
        }
    );
    // Gone from every list and lookup; the other learner is untouched.
    let names: Vec<String> = store
        .learners()
        .expect("list")
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(names, vec!["other".to_string()]);
    assert_eq!(store.learner("q").expect_err("gone").code(), "not_found");
    assert_eq!(
        store.remove_learner("q", 21).expect_err("twice").code(),
        "not_found"
    );
    assert_eq!(
        store
            .set_learner_autostart("q", true)
            .expect_err("no command")
            .code(),
        "not_found"
    );
    // Its saves are refused; its newer state's file, its slot files and its
    // metric history went; the backup's state and the other learner stay.
    let info = objects.put(b"q at 3").expect("put");
    let refused = store
        .save_learner_live(
            "q",
            &NewLearnerState {
                generation: Some(generation),
                object: info.checksum,
                size: info.size,
                step: Some(3),
                metrics: Metrics::new(),
            },
            22,
            None,
        )
        .expect_err("deleted");
    assert_eq!(refused.code(), "not_found");
    objects.remove(&info.checksum).expect("tidy");
    assert!(!objects.contains(&newer), "its live state's file went");
    assert!(objects.contains(&in_backup), "the backup's state stays");
    assert!(
        !dir.path().join("slots").join("q").exists(),
        "its slot files went"
    );
    assert!(
        store
            .metric_series("q", "success", 0, i64::MAX, 10)
            .expect("series")
            .points
            .is_empty()
    );
    assert_eq!(
        store
            .metric_series("other", "success", 0, i64::MAX, 10)
            .expect("series")
            .points
            .len(),
        1
    );
    assert_eq!(
        store.learner_objects().expect("objects").len(),
        2,
        "the backup's state of q and other's live state"
    );
    // The backup still reads it, in its format.
    assert_eq!(
        store.backup_learner_state(b, "q").expect("held").step,
        Some(1)
    );
    let record = store.learner_record("q").expect("kept");
    assert_eq!(
        (record.format.as_str(), record.removed),
        ("engram.pack/1", true)
    );
    assert!(
        record.generation > generation,
        "a save of the deleted run is stale"
    );
    // A restore of that backup brings it back, at the backup's state.
    store.restore_to_live(b, Some("q"), 30).expect("restore");
    let back = store.learner("q").expect("back");
    assert_eq!(back.live.expect("live").step, Some(1));
    assert!(back.command.is_none(), "its command stays deleted");
    // Deleted again, then attached under the same name: a fresh learner.
    store.remove_learner("q", 40).expect("delete again");
    let fresh = store.attach_learner("q", None, 50).expect("attach");
    assert_eq!(
        (
            fresh.live.is_none(),
            fresh.registered_at_ms,
            fresh.format.as_str()
        ),
        (true, 50, "engram.pack/1")
    );
}

#[test]
fn a_learner_deleted_and_attached_again_reaches_its_milestones_afresh() {
    let (_dir, mut store) = open_temp();
    store.attach_learner("q", None, 10).expect("attach");
    let branch = store.current_branch(10).expect("branch");
    let bt = Breakthrough {
        engine: "q".into(),
        rule: "success >= 0.9".into(),
        metric: "success".into(),
        value: 0.95,
        step: 7,
    };
    let reached = store
        .create_backup(&NewBackup {
            kind: BackupKind::Breakthrough,
            created_at_ms: 20,
            label: None,
            breakthrough: Some(bt.clone()),
            states: &[state("zap", &[1.0])],
        })
        .expect("breakthrough");
    assert_eq!(
        store.milestone_on_branch("q", &bt.rule, branch).expect("q"),
        Some(reached),
        "reached once on this line"
    );
    assert!(
        store
            .repeat_milestone_label(&bt, branch)
            .expect("label")
            .is_some()
    );
    store.remove_learner("q", 30).expect("delete");
    store.attach_learner("q", None, 40).expect("a new q");
    // The same line of history, but a new learner: not reached yet, and
    // its first time is not "again".
    assert_eq!(
        store.milestone_on_branch("q", &bt.rule, branch).expect("q"),
        None
    );
    assert_eq!(
        store.repeat_milestone_label(&bt, branch).expect("label"),
        None
    );
    // A built-in engine (no learner row) is counted as ever.
    let zap = backup(
        &mut store,
        BackupKind::Breakthrough,
        50,
        &[state("zap", &[1.0])],
    );
    assert_eq!(
        store
            .milestone_on_branch("zap", "success_rate>=0.9", branch)
            .expect("zap"),
        Some(zap)
    );
}

#[test]
fn milestone_rules_set_in_engram_win_over_the_learners_own_until_reset() {
    let (_dir, mut store) = open_temp();
    let rule = |t: &str| MilestoneRule::parse(t).expect(t);
    assert_eq!(
        rule("success >= 0.9"),
        MilestoneRule {
            metric: "success".into(),
            at_least: Some(0.9),
            at_most: None
        }
    );
    assert_eq!(rule("loss≤0.05").at_most, Some(0.05));
    for bad in [
        "success > 0.9",
        "success >= x",
        "Bad Name >= 1",
        ">= 1",
        "loss <= inf",
    ] {
        assert_eq!(
            MilestoneRule::parse(bad).expect_err(bad).code(),
            "invalid_input",
            "{bad}"
        );
    }
    store.attach_learner("q", None, 1).expect("attach");
    store
        .set_learner_milestone_rules("q", &[rule("success >= 0.9")])
        .expect("declared");
    let own = store.learner("q").expect("q");
    assert_eq!(own.milestone_rules, vec![rule("success >= 0.9")]);
    assert!(!own.milestone_rules_set_here);
    // Set in Engram: they apply, and the learner declaring its own again
    // (a restart) changes only what it declared.
    store
        .set_user_milestone_rules("q", Some(&[rule("success >= 0.5"), rule("loss <= 0.1")]))
        .expect("set");
    store
        .set_learner_milestone_rules("q", &[rule("success >= 0.95")])
        .expect("declared again");
    let set = store.learner("q").expect("q");
    assert_eq!(
        set.milestone_rules,
        vec![rule("success >= 0.5"), rule("loss <= 0.1")]
    );
    assert_eq!(set.declared_milestone_rules, vec![rule("success >= 0.95")]);
    assert!(set.milestone_rules_set_here);
    // None at all, set here; then back to the learner's own.
    store
        .set_user_milestone_rules("q", Some(&[]))
        .expect("none");
    assert!(store.learner("q").expect("q").milestone_rules.is_empty());
    store.set_user_milestone_rules("q", None).expect("reset");
    let back = store.learner("q").expect("q");
    assert_eq!(back.milestone_rules, vec![rule("success >= 0.95")]);
    assert!(!back.milestone_rules_set_here);
    // Refusals change nothing.
    let bad = MilestoneRule {
        metric: "x".into(),
        at_least: Some(1.0),
        at_most: Some(2.0),
    };
    assert_eq!(
        store
            .set_user_milestone_rules("q", Some(&[bad]))
            .expect_err("both")
            .code(),
        "invalid_input"
    );
    assert_eq!(
        store
            .set_user_milestone_rules("nobody", Some(&[]))
            .expect_err("unknown")
            .code(),
        "not_found"
    );
    assert_eq!(store.learner("q").expect("q"), back);
    // Deleted: what was set here goes with it.
    store
        .set_user_milestone_rules("q", Some(&[]))
        .expect("none");
    store.remove_learner("q", 5).expect("delete");
    let fresh = store.attach_learner("q", None, 6).expect("again");
    assert!(!fresh.milestone_rules_set_here);
}

#[test]
fn metric_descriptions_set_in_engram_win_over_the_learners_own_until_reset() {
    use crate::wire::MetricFormat;
    use std::collections::BTreeMap;
    let (_d, mut store) = open_temp();
    let said = |label: &str| LearnerMetric {
        label: Some(label.into()),
        unit: None,
        format: Some(MetricFormat::Percent),
        higher_is_better: Some(true),
    };
    store.attach_learner("q", None, 1).expect("attach");
    store
        .set_learner_metric_info(
            "q",
            &BTreeMap::from([
                ("success".to_string(), said("Success rate")),
                ("loss".to_string(), said("Loss")),
            ]),
        )
        .expect("declared");
    // Described here: that metric's description wins, as a whole; the
    // others stay the learner's; the learner saying its own again (a
    // restart) changes only what it said.
    let loss = LearnerMetric {
        label: Some("TD loss".into()),
        unit: Some("nats".into()),
        format: Some(MetricFormat::Decimal),
        higher_is_better: Some(false),
    };
    store
        .set_user_metric_info(
            "q",
            Some(&BTreeMap::from([("loss".to_string(), loss.clone())])),
        )
        .expect("set");
    store
        .set_learner_metric_info(
            "q",
            &BTreeMap::from([
                ("success".to_string(), said("Success")),
                ("loss".to_string(), said("Loss (said again)")),
            ]),
        )
        .expect("declared again");
    let set = store.learner("q").expect("q");
    assert_eq!(set.metric_info["loss"], loss);
    assert_eq!(set.metric_info["success"], said("Success"));
    assert_eq!(set.declared_metric_info["loss"], said("Loss (said again)"));
    assert_eq!(set.metric_info_set_here, vec!["loss".to_string()]);
    // Refusals change nothing.
    for (bad, code) in [
        (
            BTreeMap::from([("Bad Name".to_string(), loss.clone())]),
            "invalid_input",
        ),
        (
            BTreeMap::from([(
                "loss".to_string(),
                LearnerMetric {
                    label: Some("a\u{7}b".into()),
                    ..Default::default()
                },
            )]),
            "invalid_input",
        ),
    ] {
        assert_eq!(
            store
                .set_user_metric_info("q", Some(&bad))
                .expect_err("bad")
                .code(),
            code
        );
    }
    assert_eq!(
        store
            .set_user_metric_info("nobody", None)
            .expect_err("unknown")
            .code(),
        "not_found"
    );
    assert_eq!(store.learner("q").expect("q"), set);
    // Reset (an empty map is the same): the learner's own again.
    store
        .set_user_metric_info("q", Some(&BTreeMap::new()))
        .expect("reset");
    let back = store.learner("q").expect("q");
    assert_eq!(back.metric_info, back.declared_metric_info);
    assert!(back.metric_info_set_here.is_empty());
    // Deleted: what was described here goes with it.
    store
        .set_user_metric_info("q", Some(&BTreeMap::from([("loss".to_string(), loss)])))
        .expect("set");
    store.remove_learner("q", 5).expect("delete");
    let fresh = store.attach_learner("q", None, 6).expect("again");
    assert!(fresh.metric_info_set_here.is_empty());
}

#[test]
fn a_metric_is_followed_along_the_line_of_history_and_its_fall_found() {
    // Branch 1: six backups, the score rising then falling at the fifth.
    // A restore of the third starts branch 2, which has two more. The line
    // is 1, 2, 3 then 7, 8: the fourth to sixth were left by the restore.
    let (_dir, mut store) = open_temp();
    store.start_branch(0, None, "start").expect("branch");
    let scored = |v: f64| EngineState {
        metrics: Metrics::from([("score".to_string(), v)]),
        ..state("zap", &[v])
    };
    let mut ids = Vec::new();
    for (i, v) in [0.1, 0.6, 0.7, 0.8, 0.3, 0.2].iter().enumerate() {
        ids.push(backup(
            &mut store,
            BackupKind::Periodic,
            10 * (i as i64 + 1),
            &[scored(*v)],
        ));
    }
    store
        .start_branch(70, Some(ids[2]), "restore")
        .expect("restore branch");
    for (t, v) in [(80, 0.75), (90, 0.4)] {
        ids.push(backup(&mut store, BackupKind::Periodic, t, &[scored(v)]));
    }
    // A backup of another engine only, on the line: not in zap's line.
    backup(
        &mut store,
        BackupKind::Manual,
        95,
        &[state("mdp_es", &[1.0])],
    );
    let line = store.metric_along_line(None, "zap", "score").expect("line");
    let got: Vec<i64> = line.iter().map(|b| b.id).collect();
    assert_eq!(got, vec![ids[0], ids[1], ids[2], ids[6], ids[7]]);
    assert_eq!(line[3].value, Some(0.75));
    let (good, fell) = first_fall(&line, 0.5).expect("a fall");
    assert_eq!(
        (good.id, fell.id),
        (ids[6], ids[7]),
        "along the line, not the abandoned branch"
    );
    // Every backup holding zap's state, on any line, in time order: the
    // three the restore left are there too, with their values.
    let every = store
        .metric_in_every_backup(None, "zap", "score")
        .expect("every");
    assert_eq!(every.iter().map(|b| b.id).collect::<Vec<_>>(), ids);
    assert_eq!(every[4].value, Some(0.3));
    let cache = LineCache::default();
    for _ in 0..2 {
        let kept = store
            .metric_in_every_backup(Some(&cache), "zap", "score")
            .expect("every, kept");
        assert_eq!(kept, every);
    }
    // A metric the states do not carry: every backup, no value.
    let none = store.metric_along_line(None, "zap", "nope").expect("line");
    assert_eq!(none.len(), 5);
    assert!(none.iter().all(|b| b.value.is_none()));
    // A key with a quote cannot break out of the JSON path.
    assert!(
        store
            .metric_along_line(None, "zap", "a\"b")
            .expect("line")
            .iter()
            .all(|b| b.value.is_none())
    );
}

#[test]
fn a_kept_line_is_the_line_read_again_whatever_changed_the_timeline() {
    // Every step that changes the timeline, then the line served through
    // the cache equals the line read from scratch; plain appends do not
    // move the epoch (they are read alone), everything else does.
    let (_dir, mut store) = open_temp();
    store.start_branch(0, None, "start").expect("branch");
    let scored = |v: f64| EngineState {
        metrics: Metrics::from([("score".to_string(), v)]),
        ..state("zap", &[v])
    };
    let cache = LineCache::default();
    let epoch = |s: &Store| -> i64 {
        s.conn
            .query_row("SELECT rewritten FROM timeline_epoch", [], |r| r.get(0))
            .expect("epoch")
    };
    let same = |s: &Store, what: &str| {
        let fresh = s.metric_along_line(None, "zap", "score").expect("line");
        let kept = s
            .metric_along_line(Some(&cache), "zap", "score")
            .expect("kept line");
        assert_eq!(kept, fresh, "after {what}");
        fresh
    };
    let mut ids = Vec::new();
    for t in [10, 20, 30] {
        ids.push(backup(
            &mut store,
            BackupKind::Periodic,
            t,
            &[scored(t as f64)],
        ));
    }
    assert_eq!(same(&store, "the first read").len(), 3);
    assert_eq!(same(&store, "nothing").len(), 3);
    let e = epoch(&store);
    // Appends, one at the newest time exactly, one of another engine only.
    ids.push(backup(&mut store, BackupKind::Manual, 40, &[scored(0.4)]));
    ids.push(backup(
        &mut store,
        BackupKind::Periodic,
        40,
        &[scored(0.41)],
    ));
    backup(
        &mut store,
        BackupKind::Manual,
        45,
        &[state("mdp_es", &[1.0])],
    );
    assert_eq!(epoch(&store), e, "appends leave the epoch");
    let line = same(&store, "appends");
    assert_eq!(
        line.iter().map(|b| b.id).collect::<Vec<_>>(),
        ids,
        "both appends, in time then id order"
    );
    // A clock that went back: a backup behind the newest.
    backup(&mut store, BackupKind::Periodic, 25, &[scored(0.25)]);
    assert!(
        epoch(&store) > e,
        "a backup behind the newest moves the epoch"
    );
    assert_eq!(same(&store, "a backup behind").len(), 6);
    // Pins and labels change nothing of the line.
    let e = epoch(&store);
    store.set_pinned(ids[0], true).expect("pin");
    store.set_label(ids[1], Some("x")).expect("label");
    assert_eq!(epoch(&store), e);
    same(&store, "a pin and a label");
    // A deletion.
    store.delete_backup(ids[1]).expect("delete");
    assert!(epoch(&store) > e);
    assert_eq!(same(&store, "a deletion").len(), 5);
    // A restore of the first backup starts a branch: the line turns there.
    store
        .start_branch(50, Some(ids[0]), "restore")
        .expect("restore");
    let line = same(&store, "a restore");
    assert_eq!(line.iter().map(|b| b.id).collect::<Vec<_>>(), vec![ids[0]]);
    ids.push(backup(&mut store, BackupKind::Periodic, 60, &[scored(0.6)]));
    let line = same(&store, "an append on the new branch");
    assert_eq!(line.len(), 2);
    assert_eq!(line[1].value, Some(0.6));
}

#[test]
fn a_restore_of_the_initial_backup_keeps_it_on_the_line_and_its_pre_restore_backup_off() {
    // As a first start records it: the initial backup is cut a moment
    // before the first branch starts. A restore of it then starts a
    // branch at the instant of its pre-restore backup, which holds the
    // line the restore left.
    let (_dir, mut store) = open_temp();
    let scored = |v: f64| EngineState {
        metrics: Metrics::from([("score".to_string(), v)]),
        ..state("zap", &[v])
    };
    let initial = backup(&mut store, BackupKind::Initial, 9, &[scored(0.0)]);
    store.start_branch(10, None, "start").expect("branch");
    let later = backup(&mut store, BackupKind::Manual, 20, &[scored(0.5)]);
    let pre = backup(&mut store, BackupKind::PreRestore, 30, &[scored(0.6)]);
    store
        .start_branch(30, Some(initial), "restore")
        .expect("restore");
    let after = backup(&mut store, BackupKind::Periodic, 40, &[scored(0.1)]);
    let line = store.metric_along_line(None, "zap", "score").expect("line");
    assert_eq!(
        line.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![initial, after]
    );
    let every = store
        .metric_in_every_backup(None, "zap", "score")
        .expect("every");
    assert_eq!(
        every.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![initial, later, pre, after]
    );
}
