//! Power loss and learner state files: every way a learner's state reaches
//! a file — sent into a new or an existing slot, into an object file when
//! every slot is busy, written by the learner into a lent slot, unchanged,
//! after a cut-off or failed save left a file behind, adopted as an object
//! by a backup cut, taken in from the spool — is traced
//! (`engram_core::iotrace`), and the trace is replayed: at every commit
//! that names a file, that file's bytes and its name (and its directories'
//! names) must already be durable, or a power cut right after the commit
//! would leave a row naming a torn or missing file. (SQLite's own files
//! are checked by the lazy VFS in `tests/powerloss`.)

use engram_core::api::Api;
use engram_core::iotrace::{self, Op};
use engram_core::runtime::{Runtime, RuntimeOptions};
use engram_core::wire::{AttachLearner, CreateBackup, SaveLearnerState, SaveLeasedState};
use std::time::Duration;

fn options(dir: &std::path::Path) -> RuntimeOptions {
    let mut o = RuntimeOptions::new(dir);
    o.pace = Duration::from_millis(1);
    o.engines.zap.simulations = 8;
    o
}

/// `n` bytes, different for each `seed`.
fn state(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn attach(api: &Api, name: &str) {
    api.attach_learner(AttachLearner {
        name: name.into(),
        ..Default::default()
    })
    .await
    .map_err(|e| e.message)
    .expect("attach");
}

async fn save(api: &Api, name: &str, bytes: Vec<u8>) -> Result<(), String> {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(256 << 10).map(|c| Ok(c.to_vec())).collect();
    api.save_learner_state(
        name.into(),
        SaveLearnerState::default(),
        tokio_stream::iter(chunks),
    )
    .await
    .map(|_| ())
    .map_err(|e| e.message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_commit_names_a_learner_state_file_a_power_cut_would_keep() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let runtime = Runtime::start(options(&dir)).await.expect("start");
    let api = std::sync::Arc::new(Api::new(runtime));
    iotrace::arm(&dir);
    attach(&api, "l").await;

    // Sent: into new slot files, then into existing ones (overwritten in
    // place), the same bytes again (kept nothing), and four at once (the
    // fourth finds every slot busy: an object file).
    for seed in 0..6 {
        save(&api, "l", state(seed, 1 << 20)).await.expect("save");
    }
    save(&api, "l", state(5, 1 << 20)).await.expect("unchanged");
    let together: Vec<_> = (10..15)
        .map(|seed| {
            let api = api.clone();
            tokio::spawn(async move { save(&api, "l", state(seed, 600 << 10)).await })
        })
        .collect();
    for t in together {
        t.await.expect("join").expect("a save at once");
    }

    // Cut off half-way — a new learner's first save, into a new slot
    // file: whatever it left must not fool the next save into that slot.
    for name in ["l", "m"] {
        attach(&api, name).await;
        let cut: Vec<Result<Vec<u8>, std::io::Error>> = vec![
            Ok(state(20, 300 << 10)),
            Err(std::io::Error::other("the learner died")),
        ];
        api.save_learner_state(
            name.into(),
            SaveLearnerState::default(),
            tokio_stream::iter(cut),
        )
        .await
        .expect_err("cut off");
        for seed in 21..25 {
            save(&api, name, state(seed, 1 << 20))
                .await
                .expect("save after");
        }
    }

    // Lent: the learner writes the slot (its writes traced as the client's
    // would be), once too large (refused: a new learner's first slot
    // file), then as it should.
    attach(&api, "n").await;
    let lend = async || {
        api.lease_learner_slot("n".into())
            .await
            .map_err(|e| e.message)
            .expect("lease")
            .expect("a slot")
    };
    let write_lent = |path: &str, bytes: &[u8]| {
        std::fs::write(path, bytes).expect("the learner writes");
        iotrace::record(|| Op::Write(path.into()));
    };
    let save_lent = async |lease: String| {
        api.save_leased_learner_state(
            "n".into(),
            SaveLeasedState {
                lease,
                state: SaveLearnerState::default(),
                next: false,
            },
        )
        .await
        .map(|_| ())
        .map_err(|e| e.message)
    };
    let lease = lend().await;
    // Past the limit without writing a GiB: a sparse file that long.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&lease.path)
        .and_then(|f| f.set_len((1 << 30) + 1))
        .expect("grow");
    iotrace::record(|| Op::Write(lease.path.as_str().into()));
    save_lent(lease.lease).await.expect_err("too large");
    for seed in 40..44 {
        let lease = lend().await;
        write_lent(&lease.path, &state(seed, 900 << 10));
        save_lent(lease.lease).await.expect("lent save after");
    }

    // A backup cut adopts the live slot as an object; saves go on.
    api.create_backup(CreateBackup::default())
        .await
        .map_err(|e| e.message)
        .expect("backup");
    for seed in 50..53 {
        save(&api, "l", state(seed, 1 << 20))
            .await
            .expect("save after a cut");
    }
    api.stop().await.map_err(|e| e.message).expect("stop");
    drop(api);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Spooled while Engram was away, taken in at the next start.
    let spool = dir.join("spool/l");
    std::fs::create_dir_all(&spool).expect("spool");
    std::fs::write(spool.join("00000000000000000001.state"), state(60, 2 << 20)).expect("w");
    std::fs::write(
        spool.join("00000000000000000001.json"),
        r#"{"step":60,"at_ms":1}"#,
    )
    .expect("w");
    let runtime = Runtime::start(options(&dir)).await.expect("restart");
    let live = runtime
        .with_store(|s| s.learner("l"))
        .await
        .expect("l")
        .live
        .expect("live");
    assert_eq!(live.step, Some(60), "the spooled save was taken in");

    // The newest backup (it holds every learner), exported.
    let api = Api::new(runtime);
    let newest = api
        .list_backups(Default::default())
        .await
        .map_err(|e| e.message)
        .expect("list")
        .items[0]
        .id;
    let snapshot = api
        .export_backup(
            newest,
            engram_core::wire::ExportRequest {
                format: engram_core::wire::SnapshotFormat::Binary,
            },
        )
        .await
        .map_err(|e| e.message)
        .expect("export")
        .bytes;
    api.stop().await.map_err(|e| e.message).expect("stop");
    let trace = iotrace::disarm();
    let commits = trace
        .iter()
        .filter(|(_, op)| matches!(op, Op::Commit(_)))
        .count();
    let made_here = trace
        .iter()
        .filter(|(_, op)| matches!(op, Op::Create(_) | Op::Rename { .. }))
        .count();
    // Not vacuous: the saves above committed files the trace saw made.
    assert!(commits >= 25, "{commits} commits traced");
    assert!(made_here >= 10, "{made_here} files made");
    let problems = iotrace::check(&dir, &trace);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Imported into another data directory: its learners' states become
    // files there, named by the import's commit.
    let other = tmp.path().join("other");
    let runtime = Runtime::start(options(&other)).await.expect("start");
    let api = Api::new(runtime);
    iotrace::arm(&other);
    api.import_snapshot(&snapshot)
        .await
        .map_err(|e| e.message)
        .expect("import");
    let trace = iotrace::disarm();
    api.stop().await.map_err(|e| e.message).expect("stop");
    let commits = trace
        .iter()
        .filter(|(_, op)| matches!(op, Op::Commit(_)))
        .count();
    assert!(commits >= 3, "{commits} imported learner states traced");
    let problems = iotrace::check(&other, &trace);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_finds_a_file_not_synced_and_a_name_not_made_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_path_buf();
    let f = d.join("slots/l/0");
    let step = |ops: &[Op]| -> Vec<(u64, Op)> {
        ops.iter()
            .cloned()
            .enumerate()
            .map(|(i, o)| (i as u64, o))
            .collect()
    };
    let made = [
        Op::MkDir(d.join("slots")),
        Op::MkDir(d.join("slots/l")),
        Op::Create(f.clone()),
        Op::Write(f.clone()),
    ];
    let synced = |ops: &mut Vec<Op>| {
        let n = ops.len() as u64;
        ops.push(Op::Sync {
            path: f.clone(),
            started: n,
        });
        ops.push(Op::SyncDir {
            path: d.join("slots/l"),
            started: n,
        });
        ops.push(Op::SyncDir {
            path: d.join("slots"),
            started: n,
        });
        ops.push(Op::SyncDir {
            path: d.clone(),
            started: n,
        });
    };
    // Everything synced after it was made: nothing to report.
    let mut good = made.to_vec();
    synced(&mut good);
    good.push(Op::Commit(f.clone()));
    assert_eq!(iotrace::check(&d, &step(&good)), Vec::<String>::new());
    // A write after the sync began.
    let mut late = good.clone();
    late.insert(late.len() - 1, Op::Write(f.clone()));
    let found = iotrace::check(&d, &step(&late));
    assert!(
        found.len() == 1 && found[0].contains("no sync has covered"),
        "{found:?}"
    );
    // No sync of the data directory: the slots directory's name may go.
    let mut no_root = made.to_vec();
    synced(&mut no_root);
    no_root.remove(no_root.len() - 1);
    no_root.push(Op::Commit(f.clone()));
    let found = iotrace::check(&d, &step(&no_root));
    assert!(
        found.len() == 1 && found[0].contains("slots") && found[0].contains("not durable"),
        "{found:?}"
    );
    // A renamed file's new name needs its own directory synced.
    let o = d.join("objects/ab/cd");
    let renamed = [
        Op::Rename {
            from: f.clone(),
            to: o.clone(),
        },
        Op::Commit(o.clone()),
    ];
    let mut after = good.clone();
    after.extend(renamed);
    let found = iotrace::check(&d, &step(&after));
    assert!(
        found.iter().any(|p| p.contains("objects/ab/cd")),
        "{found:?}"
    );
}
