//! Offsite replicas against Debian's stock `restic` (installed by
//! `scripts/setup`): what Engram writes, restic checks, lists and dumps
//! byte for byte; a whole timeline comes back into an empty data
//! directory; a flipped byte is found and named; a target that goes away
//! holds nothing up and is caught up on when it returns.

use engram_core::api::{self, Api, Offline};
use engram_core::replica::Place;
use engram_core::runtime::{Runtime, RuntimeOptions};
use engram_core::wire::{AddReplica, ReplicaKind, VerifyReplica};
use engram_core::{BackupQuery, Store};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[path = "support/learner.rs"]
mod support_learner;
#[path = "support/restic.rs"]
mod support_restic;
use support_restic::{Snap, restic, snapshots};

fn options(dir: &Path) -> RuntimeOptions {
    let mut o = RuntimeOptions::new(dir);
    o.pace = Duration::from_millis(1);
    o.metrics_every = Duration::from_millis(20);
    o.engines.zap.simulations = 8;
    o
}

fn ok(out: std::process::Output, what: &str) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Replica `name` caught up: nothing behind, the history sent, no problem.
async fn wait_caught_up(api: &Api, name: &str) -> engram_core::wire::ReplicaStatus {
    wait_on(api, name, "the catch-up", |s| {
        s.behind == 0 && s.history_at_ms.is_some() && s.problem.is_none()
    })
    .await
}

/// Replica `name`'s status once `ok` holds (a minute at most).
async fn wait_on(
    api: &Api,
    name: &str,
    what: &str,
    ok: impl Fn(&engram_core::wire::ReplicaStatus) -> bool,
) -> engram_core::wire::ReplicaStatus {
    for _ in 0..1200 {
        let s = api.replica(name.to_string()).await.expect("status");
        if ok(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{what}: never came: {:?}",
        api.replica(name.to_string()).await
    );
}

/// Adds a local replica at `repo` (named `offsite`) to a running Engram
/// and waits until it has caught up; the key, when this add made it.
async fn add_local_replica(api: &Api, repo: &Path) -> Option<String> {
    let added = api
        .add_replica(AddReplica {
            kind: ReplicaKind::Local,
            location: repo.display().to_string(),
            ..Default::default()
        })
        .await
        .expect("add");
    wait_caught_up(api, "offsite").await;
    added.new_key
}

/// Saves a learner state of `bytes` (an object file when large).
async fn save_learner(rt: &Runtime, name: &'static str, bytes: Vec<u8>, step: u64) {
    support_learner::save_learner(rt, name, bytes, step)
        .await
        .expect("learner save");
}

/// Everything of a backup list a recovery must give back.
fn timeline(dir: &Path) -> Vec<String> {
    let store = Store::open_read_only(dir.join("engram.db")).expect("open");
    let q = BackupQuery {
        limit: 1000,
        ..Default::default()
    };
    let page = store.list_backups(&q).expect("list");
    page.items
        .iter()
        .map(|b| {
            let states = store.backup_states(b.id).expect("states");
            let learners = store.backup_learners(b.id).expect("learners");
            format!(
                "{} {} {} {:?} pinned={} bt={:?} engines={:?} learners={:?}",
                b.id,
                b.kind,
                b.created_at_ms,
                b.label,
                b.pinned,
                b.breakthrough,
                states
                    .iter()
                    .map(|s| (s.engine.clone(), s.state.checksum().to_hex()))
                    .collect::<Vec<_>>(),
                learners
                    .iter()
                    .map(|(n, l)| (n.clone(), l.checksum.clone(), l.step))
                    .collect::<Vec<_>>()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_passes_stock_restic_and_recovers_a_whole_timeline() {
    // Long by design: one timeline carried through upload, restic's own
    // checks, a same-size change, damage and recovery, in that order.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let repo = tmp.path().join("offsite");
    let cache = tmp.path().join("restic-cache");
    let rt = Runtime::start(options(&dir)).await.expect("start");
    let api = Api::new(rt);
    let rt = api.runtime().expect("runtime");

    // A save puts the engines' metrics into the history.
    rt.save_now().await.expect("save");
    // A learner with a large state (an object file) and one with a small one.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    save_learner(rt, "big", big.clone(), 1).await;
    save_learner(rt, "small", b"small state v1".to_vec(), 1).await;
    let first = rt.backup_now(Some("first".into())).await.expect("backup");
    api.pin_backup(first.id).await.expect("pin");

    let added = api
        .add_replica(AddReplica {
            kind: ReplicaKind::Local,
            location: repo.display().to_string(),
            name: Some("disk2".into()),
            ..Default::default()
        })
        .await
        .expect("add replica");
    assert!(added.created);
    let key = added.new_key.clone().expect("the key is shown once, now");
    assert_eq!(
        api.replica_key().await.expect("key").key,
        key,
        "the key file holds the key shown"
    );
    let mode = std::fs::metadata(dir.join("replica.key"))
        .expect("key file")
        .permissions();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.mode() & 0o777, 0o600, "the key file is owner-only");

    // The same bytes under a changed size-preserving edit: the trap where a
    // parent snapshot records old bytes as new.
    let mut big2 = big.clone();
    big2[1_500_000] ^= 0xff;
    save_learner(rt, "big", big2.clone(), 2).await;
    let second = rt.backup_now(Some("second".into())).await.expect("backup");
    let status = wait_caught_up(&api, "disk2").await;
    let host = status.host_id.clone();
    assert!(host.starts_with("engram-"), "{host}");

    // restic checks every byte.
    ok(
        restic(&repo, &key, &cache, &["check", "--read-data"]),
        "restic check --read-data",
    );
    // The engines may cut a milestone backup at any moment (it runs): one
    // made after the catch-up is taken by the next look once uploaded.
    let (mut snaps, mut here, mut held, mut ids) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        wait_caught_up(&api, "disk2").await;
        snaps = snapshots(&repo, &key, &cache);
        here = api
            .list_backups(Default::default())
            .await
            .expect("list")
            .items;
        held = snaps.iter().filter_map(Snap::backup).collect();
        held.sort_unstable();
        ids = here.iter().map(|b| b.id).collect();
        ids.sort_unstable();
        if held == ids {
            break;
        }
    }
    assert_eq!(held, ids, "one snapshot per backup, none twice");
    for s in snaps.iter().filter(|s| s.backup().is_some()) {
        assert_eq!(s.hostname, host);
        let b = here
            .iter()
            .find(|b| Some(b.id) == s.backup())
            .expect("backup");
        assert!(
            s.tags.contains(&b.kind.as_str().to_string()),
            "{:?}",
            s.tags
        );
        assert_eq!(s.tags.contains(&"pinned".to_string()), b.pinned);
    }
    assert!(
        snaps
            .iter()
            .any(|s| s.tags.contains(&"engram-catalog".into())),
        "the metric history went up too"
    );

    // What restic dumps is byte for byte what Engram exports.
    let snap_of = |id: i64| {
        snaps
            .iter()
            .find(|s| s.backup() == Some(id))
            .expect("snapshot")
            .id
            .clone()
    };
    let dump = |snap: &str, file: &str| {
        ok(
            restic(
                &repo,
                &key,
                &cache,
                &["dump", snap, &format!("/engram/{file}")],
            ),
            "restic dump",
        )
    };
    let big_then = dump(&snap_of(first.id), "learners/big.state");
    let big_now = dump(&snap_of(second.id), "learners/big.state");
    assert!(big_then == big, "the first backup's learner state");
    assert!(big_now == big2, "a same-size change is stored as changed");
    let exported = api
        .runtime()
        .expect("rt")
        .with_store(move |s| s.backup_states(second.id))
        .await
        .expect("states");
    for s in &exported {
        assert!(
            dump(&snap_of(second.id), &format!("engines/{}.state", s.engine)) == s.state.as_bytes(),
            "engine {} as restic dumps it",
            s.engine
        );
    }
    let engram_report = api
        .verify_replica(
            "disk2".into(),
            VerifyReplica {
                read_data: true,
                subset: None,
            },
        )
        .await
        .expect("verify");
    assert!(engram_report.ok, "{engram_report:?}");
    assert!(engram_report.problems.is_empty());

    let original = {
        api.runtime()
            .expect("rt")
            .with_store(|s| {
                s.compact_history(engram_core::now_ms())?;
                Ok(())
            })
            .await
            .expect("compact");
        drop(api);
        // The runtime's last save and backup have committed; the worker is
        // stopped with it. Wait for the catalog of the final state.
        tokio::time::sleep(Duration::from_millis(100)).await;
        timeline(&dir)
    };

    // Recovery into an empty data directory, as a new machine would.
    let new_dir = tmp.path().join("recovered");
    let key_file = tmp.path().join("key.txt");
    std::fs::write(&key_file, format!("{key}\n")).expect("key file");
    let report = tokio::task::spawn_blocking({
        let (repo, new_dir, key_file) = (repo.clone(), new_dir.clone(), key_file.clone());
        move || {
            api::recover(
                api::Recover {
                    place: Place::parse(
                        ReplicaKind::Local,
                        &repo.display().to_string(),
                        None,
                        None,
                    )
                    .expect("place"),
                    key_file: Some(key_file),
                    key: None,
                    data_dir: new_dir,
                    host: None,
                    name: None,
                },
                &|_, _| {},
            )
        }
    })
    .await
    .expect("join")
    .expect("recover");
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.host_id, host);
    let recovered = timeline(&new_dir);
    // The original may have taken one more backup (the final one) after
    // the replica caught up; everything the replica held is back as it was.
    for line in &recovered {
        assert!(
            original.contains(line),
            "recovered {line}\noriginal {original:#?}"
        );
    }
    assert_eq!(recovered.len(), report.recovered.len());
    assert!(report.recovered.contains(&first.id) && report.recovered.contains(&second.id));
    assert!(report.history_points > 0, "the metric history came back");

    // The recovered directory starts and resumes from its newest backup.
    let newest = *report.recovered.iter().max().expect("some");
    let rt2 = Runtime::start(options(&new_dir))
        .await
        .expect("start recovered");
    assert!(!rt2.startup_report().first_start);
    for (engine, from) in &rt2.startup_report().restored_from {
        assert!(
            from.contains(&newest.to_string()),
            "{engine} resumed from {from}, not backup {newest}"
        );
    }
    rt2.shutdown().await.expect("shutdown");

    // A flipped byte in a pack: restic and Engram both find it; Engram names
    // the backups it reaches; a recovery leaves them out and says so.
    let packs: Vec<PathBuf> = walk(&repo.join("data"));
    let biggest = packs
        .iter()
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a pack")
        .clone();
    let mut bytes = std::fs::read(&biggest).expect("pack");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    std::fs::write(&biggest, &bytes).expect("flip");
    let out = restic(&repo, &key, &cache, &["check", "--read-data"]);
    assert!(
        !out.status.success(),
        "restic check must fail on a flipped byte"
    );
    let offline = Offline::new(&dir);
    let report = offline
        .verify_replica(
            "disk2".into(),
            VerifyReplica {
                read_data: true,
                subset: None,
            },
        )
        .expect("verify runs");
    assert!(!report.ok);
    assert!(
        !report.affected_backups.is_empty(),
        "names the backups: {report:?}"
    );
    let damaged_dir = tmp.path().join("recovered-damaged");
    let again = api::recover(
        api::Recover {
            place: Place::parse(ReplicaKind::Local, &repo.display().to_string(), None, None)
                .expect("place"),
            key_file: Some(key_file.clone()),
            key: None,
            data_dir: damaged_dir,
            host: None,
            name: None,
        },
        &|_, _| {},
    )
    .expect("recovery goes on past damage");
    for id in &report.affected_backups {
        assert!(
            !again.recovered.contains(id),
            "damaged backup {id} recovered"
        );
        assert!(
            again
                .skipped
                .iter()
                .any(|s| s.contains(&format!("backup {id} "))),
            "{:?}",
            again.skipped
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn bad_keys_and_targets_are_clear_errors_that_write_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("offsite");
    // A repository made with one key…
    let dir = tmp.path().join("data");
    let offline = Offline::new(&dir);
    offline
        .add_replica(AddReplica {
            kind: ReplicaKind::Local,
            location: repo.display().to_string(),
            ..Default::default()
        })
        .expect("add");
    let place =
        Place::parse(ReplicaKind::Local, &repo.display().to_string(), None, None).expect("place");
    let recover = |key: Option<&str>, key_file: Option<PathBuf>, place: Place, into: &str| {
        api::recover(
            api::Recover {
                place,
                key_file,
                key: key.map(str::to_string),
                data_dir: tmp.path().join(into),
                host: None,
                name: None,
            },
            &|_, _| {},
        )
    };
    // …refuses another, and nothing is created.
    let e = recover(Some("not the key"), None, place.clone(), "new1").expect_err("wrong key");
    assert_eq!(e.code(), "wrong_key", "{e}");
    assert!(!tmp.path().join("new1").exists());
    // An unknown target.
    let nowhere = Place::parse(
        ReplicaKind::Local,
        &tmp.path().join("nothing-here").display().to_string(),
        None,
        None,
    )
    .expect("place");
    let e = recover(Some("k"), None, nowhere, "new2").expect_err("no repository");
    assert_eq!(e.code(), "not_found", "{e}");
    assert!(!tmp.path().join("new2").exists());
    // A key file that cannot be read.
    let e = recover(
        None,
        Some(tmp.path().join("missing.key")),
        place.clone(),
        "new3",
    )
    .expect_err("no key file");
    assert_eq!(e.code(), "not_found", "{e}");
    let empty = tmp.path().join("empty.key");
    std::fs::write(&empty, "\n").expect("write");
    let e = recover(None, Some(empty), place.clone(), "new4").expect_err("empty key file");
    assert_eq!(e.code(), "invalid_input", "{e}");
    assert!(!tmp.path().join("new3").exists() && !tmp.path().join("new4").exists());
    // A data directory that has Engram data already is refused.
    let e = recover(Some("k"), None, place, "data").expect_err("not empty");
    assert_eq!(e.code(), "invalid_input", "{e}");
    // A name taken, a directory that is not a repository and not empty.
    let e = offline
        .add_replica(AddReplica {
            kind: ReplicaKind::Local,
            location: dir.display().to_string(),
            ..Default::default()
        })
        .expect_err("a non-empty directory");
    assert_eq!(e.code(), "invalid_input", "{e}");
    let e = offline.replica("nope".into()).expect_err("unknown replica");
    assert_eq!(e.code(), "not_found");
}

/// Each backup's offsite mark, as the backup list shows it.
fn marks(dir: &Path) -> Vec<(i64, Option<engram_core::wire::OffsiteMark>)> {
    let store = Store::open_read_only(dir.join("engram.db")).expect("open");
    let q = BackupQuery {
        limit: 1000,
        ..Default::default()
    };
    let page = store.list_backups(&q).expect("list");
    page.items.iter().map(|b| (b.id, b.offsite)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_goes_away_holds_nothing_up_and_is_caught_up_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let mount = tmp.path().join("mnt");
    std::fs::create_dir_all(&mount).expect("mnt");
    let repo = mount.join("offsite");
    let api = Api::new(Runtime::start(options(&dir)).await.expect("start"));
    let before = marks(&dir);
    assert!(
        !before.is_empty() && before.iter().all(|(_, m)| m.is_none()),
        "no replica, no mark: {before:?}"
    );
    add_local_replica(&api, &repo).await;
    // The disk goes away (its mount point with it).
    let away = tmp.path().join("unplugged");
    std::fs::rename(&mount, &away).expect("unplug");
    let rt = api.runtime().expect("rt");
    for i in 0..3 {
        rt.backup_now(Some(format!("while away {i}")))
            .await
            .expect("local backups go on");
    }
    let s = wait_on(&api, "offsite", "the failure reported", |s| {
        s.problem.is_some()
    })
    .await;
    assert_eq!(s.state, "failing");
    use engram_core::wire::OffsiteMark;
    let queued = marks(&dir)
        .iter()
        .filter(|(_, m)| *m == Some(OffsiteMark::Queued))
        .count();
    assert!(
        queued >= 3,
        "the backups made while away are queued: {:?}",
        marks(&dir)
    );
    assert!(s.behind >= 3, "{s:?}");
    assert!(
        s.summary.starts_with(&format!("behind {}", s.behind)) && s.summary.contains("mounted"),
        "{}",
        s.summary
    );
    // It comes back: everything goes up.
    std::fs::rename(&away, &mount).expect("plug in");
    api.runtime().expect("rt").replicate_soon();
    wait_on(&api, "offsite", "the catch-up", |s| {
        s.behind == 0 && s.problem.is_none()
    })
    .await;
    let all = marks(&dir);
    assert!(
        all.iter().all(|(_, m)| *m == Some(OffsiteMark::Replicated)),
        "{all:?}"
    );
    let key = api.replica_key().await.expect("key").key;
    ok(
        restic(&repo, &key, &tmp.path().join("cache"), &["check"]),
        "restic check",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_verify_runs_by_itself_when_the_setting_says() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let api = Api::new(Runtime::start(options(&dir)).await.expect("start"));
    // Off: nothing is verified however long it has been.
    api.patch_settings(serde_json::json!({ "replica_verify_hours": 0.0 }))
        .await
        .expect("off");
    add_local_replica(&api, &tmp.path().join("offsite")).await;
    let rt = api.runtime().expect("rt");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rt.backup_now(None).await.expect("backup");
    wait_caught_up(&api, "offsite").await;
    assert!(
        api.replica("offsite".into())
            .await
            .expect("status")
            .last_verify
            .is_none()
    );
    // Every 0.0003 h (about a second): the worker checks the structure itself.
    api.patch_settings(serde_json::json!({ "replica_verify_hours": 0.0003 }))
        .await
        .expect("on");
    // (Woken now and then, as a backup would: nothing else is asked of it.)
    let mut seen = None;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = api.replica("offsite".into()).await.expect("status");
        if let Some(v) = s.last_verify {
            seen = Some(v);
            break;
        }
        rt.replicate_soon();
    }
    let v = seen.expect("a verify ran without being asked");
    assert!(v.ok && !v.read_data && v.snapshots >= 2, "{v:?}");
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).expect("mkdir");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }

    fn grow(&self, size: &str) {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_target_holds_nothing_up_says_so_and_is_caught_up_on_once_there_is_room() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(disk) = Tmpfs::mount(&tmp.path().join("mnt"), "8m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root?)");
        return;
    };
    let dir = tmp.path().join("data");
    let repo = disk.0.join("offsite");
    let api = Api::new(Runtime::start(options(&dir)).await.expect("start"));
    add_local_replica(&api, &repo).await;
    let rt = api.runtime().expect("rt");
    // A 24 MB state (nothing to compress) on an 8 MB disk.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let big: Vec<u8> = (0..24 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    save_learner(rt, "big", big, 1).await;
    rt.backup_now(Some("too big for the replica".into()))
        .await
        .expect("the local backup goes on");
    let s = wait_on(&api, "offsite", "the full disk reported", |s| {
        s.problem.is_some()
    })
    .await;
    assert!(
        s.summary.starts_with(&format!("behind {}", s.behind))
            && s.summary.contains("disk is full"),
        "{}",
        s.summary
    );
    for i in 0..2 {
        rt.backup_now(Some(format!("while full {i}")))
            .await
            .expect("local backups go on");
    }
    // Room again: everything goes up.
    disk.grow("256m");
    rt.replicate_soon();
    wait_on(&api, "offsite", "the catch-up", |s| {
        s.behind == 0 && s.problem.is_none()
    })
    .await;
    let key = api.replica_key().await.expect("key").key;
    ok(
        restic(
            &repo,
            &key,
            &tmp.path().join("cache"),
            &["check", "--read-data"],
        ),
        "restic check after the disk was full",
    );
    api.runtime().expect("rt").stop().await.expect("stop");
}

/// The files in a directory (none when it does not exist).
fn names_in(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_run_waits_for_the_choice_and_recovers_all_or_nothing() {
    // Long by design: one replica, then every first-run choice against it.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let repo = tmp.path().join("offsite");
    let src = Api::new(Runtime::start(options(&dir)).await.expect("start"));
    let rt = src.runtime().expect("rt");
    rt.save_now().await.expect("save");
    save_learner(rt, "small", b"small state".to_vec(), 3).await;
    rt.backup_now(Some("keep me".into())).await.expect("backup");
    let key = add_local_replica(&src, &repo).await.expect("key");
    src.stop().await.expect("stop");
    let original = timeline(&dir);

    // A data directory without Engram data: nothing starts, nothing is written.
    let new_dir = tmp.path().join("new-machine");
    let api = std::sync::Arc::new(Api::start_or_wait(options(&new_dir)).await);
    let e = api.status().await.expect_err("waits");
    assert_eq!(e.code, engram_core::ErrorCode::NotStarted, "{e:?}");
    let fr = api.first_run().await.expect("first run");
    assert_eq!(fr.state, engram_core::wire::FirstRunState::Waiting);
    assert_eq!(names_in(&new_dir), Vec::<String>::new());
    let started = {
        let api = api.clone();
        tokio::spawn(async move { api.started().await.data_dir().to_path_buf() })
    };
    let here = |key: &str, location: &Path| engram_core::wire::RecoverHere {
        kind: ReplicaKind::Local,
        location: location.display().to_string(),
        key: key.to_string(),
        ..Default::default()
    };

    // Refusals: one clear error each, the data directory left as it was.
    let e = api
        .recover_here(here("not the key", &repo))
        .await
        .expect_err("wrong key");
    assert_eq!(e.code, engram_core::ErrorCode::WrongKey, "{e:?}");
    assert_eq!(api.first_run().await.expect("fr").failed, Some(e));
    let e = api
        .recover_here(here(&key, &tmp.path().join("nowhere")))
        .await
        .expect_err("no repository");
    assert_eq!(e.code, engram_core::ErrorCode::NotFound, "{e:?}");
    let e = api
        .recover_here(here(" ", &repo))
        .await
        .expect_err("no key");
    assert_eq!(e.code, engram_core::ErrorCode::InvalidInput, "{e:?}");
    // A repository that holds no backup: refused, and its half-built
    // database removed.
    let empty_repo = tmp.path().join("empty-offsite");
    Offline::new(tmp.path().join("other"))
        .add_replica(AddReplica {
            kind: ReplicaKind::Local,
            location: empty_repo.display().to_string(),
            ..Default::default()
        })
        .expect("an empty repository");
    let other_key = std::fs::read_to_string(tmp.path().join("other/replica.key")).expect("key");
    let e = api
        .recover_here(here(other_key.trim(), &empty_repo))
        .await
        .expect_err("nothing to recover");
    assert_eq!(e.code, engram_core::ErrorCode::NotFound, "{e:?}");
    assert!(e.message.contains("holds none"), "{e:?}");
    let left: Vec<String> = names_in(&new_dir)
        .into_iter()
        .filter(|n| n.starts_with("engram.db"))
        .collect();
    assert_eq!(
        left,
        Vec::<String>::new(),
        "a failed recovery leaves no database"
    );
    assert!(!new_dir.join("replica.key").exists(), "nor a key");
    assert!(api.status().await.is_err(), "still waiting");
    assert!(!started.is_finished());

    // What a recovery killed half-way leaves behind does not get in the way.
    std::fs::write(new_dir.join(api::RECOVERING_DB), b"half a database").expect("leftover");

    let report = api.recover_here(here(&key, &repo)).await.expect("recover");
    assert_eq!(
        timeline(&new_dir),
        original,
        "the whole timeline, as it was"
    );
    let fr = api.first_run().await.expect("first run");
    assert_eq!(fr.state, engram_core::wire::FirstRunState::Running);
    assert_eq!(
        (fr.done, fr.total),
        (original.len() as u64, original.len() as u64)
    );
    assert_eq!(report.recovered.len(), original.len());
    assert!(!new_dir.join(api::RECOVERING_DB).exists());
    let status = api.status().await.expect("runs");
    assert!(status.running);
    let newest = *report.recovered.iter().max().expect("some");
    let rt2 = api.runtime().expect("rt");
    assert!(!rt2.startup_report().first_start);
    for (engine, from) in &rt2.startup_report().restored_from {
        assert!(
            from.contains(&newest.to_string()),
            "{engine} resumed from {from}"
        );
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), started)
            .await
            .expect("started() answers once it runs")
            .expect("task"),
        new_dir
    );
    // It goes on replicating where the lost machine stopped.
    assert_eq!(
        api.replicas().await.expect("replicas")[0].location,
        repo.display().to_string()
    );
    // Once it runs: a second recovery is refused, a fresh start is a no-op.
    let e = api.recover_here(here(&key, &repo)).await.expect_err("runs");
    assert_eq!(e.code, engram_core::ErrorCode::InvalidInput, "{e:?}");
    assert!(api.start_fresh().await.expect("status").running);
    api.stop().await.expect("stop");

    // Start fresh: the engines start on the empty directory.
    let fresh_dir = tmp.path().join("fresh");
    let fresh = Api::start_or_wait(options(&fresh_dir)).await;
    assert!(fresh.runtime().is_err());
    // A recovery killed half-way left its database behind: not kept.
    std::fs::create_dir_all(&fresh_dir).expect("dir");
    std::fs::write(fresh_dir.join(api::RECOVERING_DB), b"half").expect("leftover");
    let status = fresh.start_fresh().await.expect("starts");
    assert!(status.running && fresh_dir.join("engram.db").exists());
    assert!(!fresh_dir.join(api::RECOVERING_DB).exists());
    assert!(fresh.runtime().expect("rt").startup_report().first_start);
    fresh.stop().await.expect("stop");
    drop(fresh);
    // A data directory with Engram data starts at once.
    let again = Api::start_or_wait(options(&fresh_dir)).await;
    assert!(again.status().await.expect("runs").running);
    assert_eq!(
        again.first_run().await.expect("fr").state,
        engram_core::wire::FirstRunState::Running
    );
    again.stop().await.expect("stop");
}
