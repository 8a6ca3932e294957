//! `engram replicas` as real processes: a replica added offline, 20
//! `kill -9`s of `engram run` while it uploads (the replica still passes
//! Debian's `restic check`; once caught up no backup is missing or held
//! twice), then a whole timeline recovered into a new data directory.

use super::*;
use std::collections::BTreeSet;

#[path = "../../../engram-core/tests/support/restic.rs"]
#[allow(dead_code)] // the CLI test reads only the tags
mod support_restic;
use support_restic::{restic, snapshots};

/// The backup each snapshot holds, from restic's own listing.
fn replicated(repo: &Path, key: &str, cache: &Path) -> Vec<i64> {
    snapshots(repo, key, cache)
        .iter()
        .filter_map(|s| s.backup())
        .collect()
}

#[test]
fn kill_9_during_uploads_then_recovery_on_a_new_machine() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path().join("data");
    let repo = tmp.path().join("offsite");
    let cache = tmp.path().join("cache");
    let repo_s = repo.display().to_string();
    let added = ok_json(&d, &["replicas", "add", "local", &repo_s, "--json"]);
    let key = added["new_key"]
        .as_str()
        .expect("the key, shown once")
        .to_string();
    // `replicas key` prints it again, alone on its last line.
    let out = engram(&d, &["replicas", "key"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim_end().lines().last(), Some(key.as_str()));

    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..20 {
        let mut child = spawn_run(&d, &["--backup-every", "300ms"]);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(300 + rng % 1200));
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
    }
    // Whatever the kills cut, the repository is whole.
    let check = restic(&repo, &key, &cache, &["check"]);
    assert!(
        check.status.success(),
        "restic check after 20 kills: {}",
        String::from_utf8_lossy(&check.stdout)
    );
    // A clean run catches up; then every backup is there exactly once.
    let mut status = Value::Null;
    for _ in 0..10 {
        run_for(&d, "3s");
        status = ok_json(&d, &["replicas", "status", "offsite", "--json"]);
        if status[0]["behind"] == 0 {
            break;
        }
    }
    assert_eq!(status[0]["behind"], 0, "{status}");
    let held = replicated(&repo, &key, &cache);
    let unique: BTreeSet<i64> = held.iter().copied().collect();
    assert_eq!(held.len(), unique.len(), "a backup held twice: {held:?}");
    let here: BTreeSet<i64> = backup_ids(&d).into_iter().collect();
    assert!(
        here.is_subset(&unique),
        "missing: {:?}",
        here.difference(&unique)
    );
    let check = restic(&repo, &key, &cache, &["check", "--read-data"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // A new machine: the key from a file, an empty data directory.
    let key_file = tmp.path().join("key");
    std::fs::write(&key_file, format!("{key}\n")).expect("key");
    let wrong = tmp.path().join("wrong");
    std::fs::write(&wrong, "not-the-key\n").expect("key");
    let new = tmp.path().join("new-machine");
    let kf = key_file.display().to_string();
    fails(
        &new,
        &[
            "replicas",
            "recover",
            "--from",
            &repo_s,
            "--key-file",
            &wrong.display().to_string(),
        ],
        "wrong_key",
    );
    assert!(!new.exists(), "a wrong key writes nothing");
    let report = ok_json(
        &new,
        &[
            "replicas",
            "recover",
            "--from",
            &repo_s,
            "--key-file",
            &kf,
            "--json",
        ],
    );
    assert_eq!(report["skipped"], serde_json::json!([]), "{report}");
    let recovered: BTreeSet<i64> = backup_ids(&new).into_iter().collect();
    assert_eq!(recovered, unique, "the recovered timeline is the replica's");
    // It runs, and goes on replicating to the same repository as the same host.
    run_for(&new, "2s");
    let s = ok_json(&new, &["replicas", "status", "--json"]);
    assert_eq!(s[0]["host_id"], status[0]["host_id"]);
    fails(
        &new,
        &["replicas", "recover", "--from", &repo_s, "--key-file", &kf],
        "already holds",
    );
}
