//! `engram backups …` and `engram status` as a user runs them: the whole
//! scenario, bad inputs of every kind (damaged files, unknown ids, a second
//! writer), a read-only file system and a full disk (real tmpfs mounts).

use super::*;
use std::process::Command;

#[test]
fn full_cli_scenario() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    run_for(d, "2s");
    let list = ok_json(d, &["backups", "list", "--json"]);
    let kinds: Vec<&str> = list
        .as_array()
        .expect("a")
        .iter()
        .map(|b| b["kind"].as_str().expect("k"))
        .collect();
    assert!(kinds.contains(&"initial"), "{kinds:?}");
    for b in list.as_array().expect("a") {
        for field in [
            "id",
            "kind",
            "created_at",
            "label",
            "pinned",
            "engines",
            "breakthrough",
        ] {
            assert!(b.get(field).is_some(), "backup lacks {field}: {b}");
        }
    }

    let created = ok_json(
        d,
        &["backups", "create", "--label", "before tuning", "--json"],
    );
    assert_eq!(created["kind"], "manual");
    assert_eq!(created["label"], "before tuning");
    let manual = created["id"].as_i64().expect("id").to_string();
    // Compared with the initial backup: the engines learned in between.
    let compared = ok_json(d, &["backups", "compare", "1", &manual, "--json"]);
    let zap = compared["engines"]
        .as_array()
        .expect("engines")
        .iter()
        .find(|e| e["name"] == "zap")
        .expect("zap");
    assert_eq!(zap["changed"], true, "{compared}");
    let printed = engram(d, &["backups", "compare", "1", &manual]);
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(
        printed.status.success() && text.contains("zap (state changed)"),
        "{text}"
    );
    fails(d, &["backups", "compare", "1", "999999"], "not_found");

    let out = tempfile::tempdir().expect("tempdir");
    let json_file = out.path().join("snap.json");
    let bin_file = out.path().join("snap.bin");
    for (file, format) in [(&json_file, "json"), (&bin_file, "binary")] {
        export(d, &manual, file, format);
        let imported = ok_json(
            d,
            &["backups", "import", file.to_str().expect("p"), "--json"],
        );
        assert_eq!(imported["kind"], "imported");
        assert_eq!(imported["label"], "before tuning");
    }
    let exported: Value =
        serde_json::from_slice(&std::fs::read(&json_file).expect("read")).expect("json");
    assert_eq!(exported["format"], "engram-snapshot");

    // Let the engines move on, then restore the manual backup.
    let mut child = spawn_run(d, &["--for", "1500ms"]);
    assert!(child.wait().expect("wait").success());
    let moved_on = saved_plans(d);
    let backup_plans = created["metrics"]["zap"]["plans_generated"]
        .as_f64()
        .expect("plans");
    assert!(moved_on > backup_plans);
    let restored = ok_json(d, &["backups", "restore", &manual, "--json"]);
    let pre = restored["pre_restore_backup"].as_i64().expect("pre");
    let list = ok_json(d, &["backups", "list", "--json"]);
    let pre_entry = list
        .as_array()
        .expect("a")
        .iter()
        .find(|b| b["id"] == pre)
        .expect("pre-restore listed");
    assert_eq!(pre_entry["kind"], "pre-restore");
    assert_eq!(
        pre_entry["metrics"]["zap"]["plans_generated"].as_f64(),
        Some(moved_on)
    );
    let status = ok_json(d, &["status", "--json"]);
    assert_eq!(
        status["engines"]["zap"]["metrics"], created["metrics"]["zap"],
        "status shows the restored backup's metrics"
    );

    let verify = engram(d, &["backups", "verify"]);
    assert!(verify.status.success());
    assert!(String::from_utf8_lossy(&verify.stdout).contains("0 problems"));

    let out = engram(d, &["backups", "pin", &manual]);
    assert!(out.status.success());
    let list = ok_json(d, &["backups", "list", "--json"]);
    let entry = list
        .as_array()
        .expect("a")
        .iter()
        .find(|b| b["id"].as_i64().map(|i| i.to_string()).as_deref() == Some(manual.as_str()))
        .expect("manual");
    assert_eq!(entry["pinned"], true);
    let pinned = ok_json(d, &["backups", "list", "--pinned", "--json"]);
    let ids: Vec<String> = pinned
        .as_array()
        .expect("a")
        .iter()
        .map(|b| b["id"].to_string())
        .collect();
    assert_eq!(ids, vec![manual.clone()], "only the pinned backup");
    let searched = ok_json(d, &["backups", "list", "--search", "LAUNCH", "--json"]);
    assert_eq!(searched[0]["kind"], "initial", "{searched}");
    assert_eq!(searched.as_array().map(Vec::len), Some(1));
    fails(d, &["backups", "delete", &manual], "pinned");
    let initial = list
        .as_array()
        .expect("a")
        .iter()
        .find(|b| b["kind"] == "initial")
        .expect("initial")["id"]
        .to_string();
    fails(
        d,
        &["backups", "delete", &initial],
        "initial backup is kept forever",
    );
    if let Some(bt) = list
        .as_array()
        .expect("a")
        .iter()
        .find(|b| b["kind"] == "breakthrough")
    {
        fails(
            d,
            &["backups", "delete", &bt["id"].to_string()],
            "permanent",
        );
    }
    assert!(engram(d, &["backups", "unpin", &manual]).status.success());
    assert!(engram(d, &["backups", "delete", &manual]).status.success());
    assert!(!backup_ids(d).contains(&manual.parse().expect("id")));
}

#[test]
fn bad_inputs_get_clear_errors_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    run_for(d, "1s");
    let id = backup_ids(d)[0].to_string();
    let out = tempfile::tempdir().expect("tempdir");
    let good = out.path().join("good.bin");
    export(d, &id, &good, "binary");
    let good_json = out.path().join("good.json");
    export(d, &id, &good_json, "json");
    let bytes = std::fs::read(&good).expect("read");
    let before = fingerprint(d);

    let case = |name: &str, content: &[u8]| {
        let p = out.path().join(name);
        std::fs::write(&p, content).expect("write");
        p
    };
    let truncated = case("truncated.bin", &bytes[..bytes.len() / 2]);
    fails(
        d,
        &["backups", "import", truncated.to_str().expect("p")],
        "invalid_snapshot",
    );
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    let corrupted = case("corrupted.bin", &flipped);
    fails(
        d,
        &["backups", "import", corrupted.to_str().expect("p")],
        "checksum",
    );
    let text = std::fs::read_to_string(&good_json).expect("json");
    let future = case(
        "future.json",
        text.replacen("\"format_version\": 1", "\"format_version\": 99", 1)
            .as_bytes(),
    );
    fails(
        d,
        &["backups", "import", future.to_str().expect("p")],
        "unsupported_format",
    );
    fails(
        d,
        &[
            "backups",
            "import",
            d.join("missing.json").to_str().expect("p"),
        ],
        "not_found",
    );
    fails(
        d,
        &["backups", "restore", "424242"],
        "backup 424242 not found",
    );
    fails(d, &["backups", "delete", "424242"], "not_found");
    fails(d, &["backups", "pin", "424242"], "not_found");
    fails(
        d,
        &[
            "backups",
            "export",
            "424242",
            "--out",
            out.path().join("x").to_str().expect("p"),
        ],
        "not_found",
    );
    // A data directory that is a file is named as such.
    let file = out.path().join("afile");
    std::fs::write(&file, b"x").expect("write");
    fails(&file, &["status"], "is not a directory");
    fails(&file, &["run", "--for", "1s"], "is not a directory");
    // Export never replaces the database (or anything in the data directory).
    let db = d.join("engram.db");
    fails(
        d,
        &["backups", "export", &id, "--out", db.to_str().expect("p")],
        "inside Engram's data directory",
    );
    fails(
        d,
        &["backups", "list", "--kind", "hourly"],
        "invalid value 'hourly'",
    );
    assert_eq!(fingerprint(d), before, "bad inputs changed stored data");

    // A second writer on the same directory is refused at once.
    let mut running = spawn_run(d, &[]);
    wait_until("the first run holds the lock", || {
        ok_json(d, &["status", "--json"])["running"] == true
    });
    let t = Instant::now();
    fails(
        d,
        &["run", "--for", "5s"],
        "in use by another Engram process",
    );
    assert!(t.elapsed() < Duration::from_secs(3), "refused at once");
    // Changes go through the running Engram (one policy for every command:
    // its writer makes them), never a second writer.
    let made = ok_json(
        d,
        &["backups", "create", "--label", "while running", "--json"],
    );
    assert_eq!(made["kind"], "manual", "{made}");
    let imported = ok_json(
        d,
        &["backups", "import", good.to_str().expect("p"), "--json"],
    );
    assert_eq!(imported["kind"], "imported", "{imported}");
    let listed = ok_json(
        d,
        &["backups", "list", "--json", "--search", "while running"],
    );
    assert_eq!(listed[0]["id"], made["id"], "{listed}");
    // Read-only commands keep working while it runs.
    assert!(engram(d, &["backups", "list"]).status.success());
    assert!(engram(d, &["backups", "verify"]).status.success());
    running.kill().expect("kill");
    running.wait().expect("wait");
}

fn mount_tmpfs(at: &Path, opts: &str) -> bool {
    std::fs::create_dir_all(at).expect("mkdir");
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
        .arg(at)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn umount(at: &Path) {
    let _ = Command::new("umount").arg(at).status();
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}

#[test]
fn read_only_directory_and_full_disk_are_clear_errors_that_keep_committed_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    run_for(&src, "1s");
    let reference = fingerprint(&src);

    // Read-only file system.
    let ro = dir.path().join("ro");
    if !mount_tmpfs(&ro, "size=16m") {
        eprintln!(
            "SKIPPED read-only/full-disk cases: cannot mount tmpfs here (not root?); the runtime's simulated disk-full test still runs"
        );
        return;
    }
    copy_dir(&src, &ro);
    let remount = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&ro)
        .status()
        .expect("remount");
    assert!(remount.success());
    fails(&ro, &["run", "--for", "1s"], "read_only");
    fails(&ro, &["backups", "create"], "read_only");
    umount(&ro);

    // Full disk: a tiny tmpfs, filled up.
    let full = dir.path().join("full");
    let db_size = std::fs::metadata(src.join("engram.db"))
        .expect("meta")
        .len();
    assert!(mount_tmpfs(
        &full,
        &format!("size={}k", db_size / 1024 + 256)
    ));
    copy_dir(&src, &full);
    let filler = full.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    let out = engram(&full, &["backups", "create", "--label", "no room"]);
    assert!(!out.status.success(), "a backup on a full disk must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("disk_full") || err.contains("io"), "{err}");
    std::fs::remove_file(&filler).expect("free space");
    assert_eq!(
        fingerprint(&full),
        reference,
        "the failed backup left no trace"
    );
    let verify = engram(&full, &["backups", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    umount(&full);
}

#[test]
fn a_metric_across_the_backups_and_where_it_fell() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    run_for(d, "2s");
    ok_json(d, &["backups", "create", "--label", "later", "--json"]);
    let line = ok_json(
        d,
        &[
            "backups",
            "metric",
            "--metric",
            "zap.plans_generated",
            "--json",
        ],
    );
    let values: Vec<f64> = line["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .map(|b| b["value"].as_f64().expect("a value in every backup"))
        .collect();
    assert!(values.len() >= 2, "{line}");
    assert!(
        values.windows(2).all(|w| w[0] <= w[1]),
        "plans only grow along one line: {values:?}"
    );
    // Never above a threshold this high: no fall, said so.
    let found = ok_json(
        d,
        &[
            "backups",
            "find",
            "--metric",
            "zap.plans_generated",
            "--below",
            "1e15",
            "--json",
        ],
    );
    assert_eq!(found["fell_at"], serde_json::Value::Null);
    assert_eq!(found["checked"].as_u64(), Some(values.len() as u64));
    let text = engram(
        d,
        &[
            "backups",
            "find",
            "--metric",
            "zap.plans_generated",
            "--below",
            "-1",
        ],
    );
    assert!(String::from_utf8_lossy(&text.stdout).contains("never fell below -1"));
    fails(
        d,
        &["backups", "find", "--metric", "zap", "--below", "1"],
        "ENGINE.KEY",
    );
    // A restore of the first backup leaves "later" on another line: off
    // the line, and with --all-lines listed with its value, marked.
    let ids: Vec<i64> = line["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .map(|b| b["id"].as_i64().expect("id"))
        .collect();
    let first = ids[0].to_string();
    ok_json(d, &["backups", "restore", &first, "--json"]);
    let later = *ids.last().expect("later");
    let now = ok_json(
        d,
        &[
            "backups",
            "metric",
            "--metric",
            "zap.plans_generated",
            "--all-lines",
            "--json",
        ],
    );
    let on = |key: &str| -> Vec<i64> {
        now[key]
            .as_array()
            .expect(key)
            .iter()
            .map(|b| b["id"].as_i64().expect("id"))
            .collect()
    };
    assert!(!on("backups").contains(&later), "{now}");
    assert!(on("backups").contains(&ids[0]), "{now}");
    assert!(on("elsewhere").contains(&later), "{now}");
    let kept = now["elsewhere"]
        .as_array()
        .expect("elsewhere")
        .iter()
        .find(|b| b["id"].as_i64() == Some(later))
        .expect("later");
    assert_eq!(kept["value"].as_f64(), values.last().copied());
    let text = engram(
        d,
        &[
            "backups",
            "metric",
            "--metric",
            "zap.plans_generated",
            "--all-lines",
        ],
    );
    let text = String::from_utf8_lossy(&text.stdout);
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{later} ")))
        .expect("the later backup listed");
    assert!(row.ends_with("(other line)"), "{row}");
}

/// `engram backups drill`: the drilled Q figure equals what Gymnasium
/// itself measures for the exported state (bench/verify_in_gymnasium.py,
/// within four standard errors), and the backup's bytes and the live state
/// are the same after the drill.
#[test]
fn a_drill_measures_what_gymnasium_measures_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = &dir.path().join("data");
    let exports = dir.path();
    run_for(d, "3s");
    let b = ok_json(d, &["backups", "create", "--label", "drill me", "--json"]);
    let id = b["id"].as_i64().expect("id").to_string();
    let export = |name: &str| {
        let path = exports.join(name);
        let out = engram(
            d,
            &[
                "backups",
                "export",
                &id,
                "--out",
                path.to_str().expect("utf-8"),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut v: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("exported")).expect("json");
        // When it was exported is the one thing allowed to differ.
        v.as_object_mut().expect("object").remove("exported_at");
        v
    };
    let before = export("before.json");
    let status_before = ok_json(d, &["status", "--json"]);
    let drilled = ok_json(d, &["backups", "drill", &id, "--json"]);
    // (Not assert_eq: the states are large.)
    assert!(
        export("after.json") == before,
        "the backup's states are unchanged"
    );
    let mut status_after = ok_json(d, &["status", "--json"]);
    status_after["backups"] = status_before["backups"].clone();
    assert_eq!(status_after, status_before, "the live state is unchanged");
    let results = drilled["results"].as_array().expect("results");
    let units: Vec<&str> = results
        .iter()
        .map(|r| r["unit"].as_str().expect("unit"))
        .collect();
    assert_eq!(units, ["mdp_es", "zap"], "{drilled}");
    assert!(results.iter().all(|r| r["error"].is_null()), "{drilled}");
    let greedy = results[0]["metrics"]["greedy_success"]
        .as_f64()
        .expect("greedy");
    // Gymnasium's own Monte Carlo of the exported Q-table's greedy policy.
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/verify_in_gymnasium.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(exports.join("before.json"))
        .args(["--episodes", "4000"])
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = text.split("Gymnasium ").nth(1).expect("a Gymnasium figure");
    let mut nums = after.split_whitespace();
    let mean: f64 = nums.next().and_then(|m| m.parse().ok()).expect("mean");
    nums.next(); // ±
    let se: f64 = nums
        .next()
        .and_then(|s| s.parse().ok())
        .expect("standard error");
    assert!(
        (greedy - mean).abs() <= 4.0 * se + 1e-9,
        "drilled {greedy}, Gymnasium {mean} ± {se}"
    );
    // Kept with the backup: listed again, newest first, the same figures.
    let kept = ok_json(d, &["backups", "drills", &id, "--json"]);
    let kept = kept["results"].as_array().expect("kept");
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[1]["metrics"], results[0]["metrics"]);
    // Unknown backups and units are refused, with the store untouched.
    fails(d, &["backups", "drill", "999999"], "not found");
    fails(d, &["backups", "drill", &id, "--unit", "nosuch"], "nosuch");
    assert_eq!(
        ok_json(d, &["backups", "drills", &id, "--json"])["results"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}
