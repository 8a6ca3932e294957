//! `engram learners …` on a stopped data directory, then under `engram run`
//! (which serves the learner API and supervises).

use super::*;

/// `engram --data-dir <dir> learners add <name> [flags] -- <command…>`.
fn add(dir: &Path, name: &str, flags: &[&str], command: &[&str]) -> Output {
    engram_cmd()
        .arg("--data-dir")
        .arg(dir)
        .args(["learners", "add", name])
        .args(flags)
        .arg("--")
        .args(command)
        .output()
        .expect("run engram")
}

fn learner(dir: &Path, name: &str) -> Value {
    let all = ok_json(dir, &["learners", "list", "--json"]);
    all.as_array()
        .expect("array")
        .iter()
        .find(|l| l["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn learners_added_offline_start_with_engram_run_and_stopped_ones_do_not() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).expect("mkdir");
    let workdir = work.to_str().expect("utf-8");
    // Added before Engram ever ran: the data directory is created for it.
    let out = add(
        &dir,
        "writer",
        &["--workdir", workdir, "--format", "lines/1"],
        &[
            "sh",
            "-c",
            "echo \"$ENGRAM_LEARNER ran\" >> runs.txt; echo done",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("starts when Engram does"));
    let out = add(
        &dir,
        "idle",
        &["--workdir", workdir],
        &["sh", "-c", "echo idle >> idle.txt"],
    );
    assert!(out.status.success());
    let w = learner(&dir, "writer");
    assert_eq!(w["format"], "lines/1");
    assert_eq!(w["command"]["workdir"], workdir);
    assert_eq!(w["command"]["autostart"], true);
    assert!(w["process"].is_null(), "nothing runs yet");
    let stop = engram(&dir, &["learners", "stop", "idle"]);
    assert!(stop.status.success());
    assert_eq!(learner(&dir, "idle")["command"]["autostart"], false);

    // Bad input: one clear line, nothing stored changes.
    let before = ok_json(&dir, &["learners", "list", "--json"]);
    let o = add(&dir, "zap", &[], &["true"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("built-in"));
    let o = add(&dir, "Bad Name", &[], &["true"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("[invalid_input]"));
    fails(&dir, &["learners", "start", "nobody"], "[not_found]");
    fails(&dir, &["learners", "remove", "nobody"], "[not_found]");
    fails(&dir, &["learners", "logs", "writer"], "[not_found]");
    fails(&dir, &["learners", "logs", "../x"], "[invalid_input]");
    let no_cmd = engram_cmd()
        .arg("--data-dir")
        .arg(&dir)
        .args(["learners", "add", "x"])
        .output()
        .expect("run");
    assert_eq!(no_cmd.status.code(), Some(2), "a usage error");
    assert_eq!(ok_json(&dir, &["learners", "list", "--json"]), before);

    // `engram run` serves the learner API and runs what should start.
    run_for(&dir, "3s");
    let runs = std::fs::read_to_string(work.join("runs.txt")).expect("it ran");
    assert_eq!(runs, "writer ran\n", "one run: it finished with status 0");
    assert!(
        !work.join("idle.txt").exists(),
        "a stopped learner stays stopped"
    );
    let logs = engram(&dir, &["learners", "logs", "writer"]);
    let logs = String::from_utf8_lossy(&logs.stdout);
    assert!(
        logs.contains("[engram] started") && logs.contains("done"),
        "{logs}"
    );
    assert!(logs.contains("[engram] exit status 0"), "{logs}");
    assert!(
        dir.join("serve.port").exists(),
        "engram run publishes its API"
    );

    // Removed: its command goes, it does not run again.
    let rm = engram(&dir, &["learners", "remove", "writer"]);
    assert!(rm.status.success());
    assert!(learner(&dir, "writer")["command"].is_null());
    run_for(&dir, "2s");
    assert_eq!(
        std::fs::read_to_string(work.join("runs.txt")).expect("runs"),
        "writer ran\n"
    );

    // Milestones set in Engram (offline here), then the learner's own again.
    let set = engram(
        &dir,
        &[
            "learners",
            "milestones",
            "idle",
            "success >= 0.9",
            "loss<=0.1",
        ],
    );
    assert!(
        String::from_utf8_lossy(&set.stdout)
            .contains("idle's milestones (set in Engram): success >= 0.9; loss <= 0.1"),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    assert_eq!(learner(&dir, "idle")["milestone_rules_set_here"], true);
    fails(
        &dir,
        &["learners", "milestones", "idle", "success > 0.9"],
        "[invalid_input]",
    );
    let reset = engram(&dir, &["learners", "milestones", "idle", "--reset"]);
    assert!(String::from_utf8_lossy(&reset.stdout).contains("(its own): none"));

    // A metric described in Engram (offline here), one reset, then all.
    let said = engram(
        &dir,
        &[
            "learners",
            "describe",
            "idle",
            "loss",
            "--label",
            "TD loss",
            "--unit",
            "nats",
            "--lower-is-better",
        ],
    );
    assert!(
        String::from_utf8_lossy(&said.stdout).contains(
            "idle's metric loss: TD loss (nats, decimal, lower is better) (described in Engram)"
        ),
        "{}",
        String::from_utf8_lossy(&said.stderr)
    );
    assert!(
        engram(
            &dir,
            &[
                "learners", "describe", "idle", "success", "--format", "percent"
            ]
        )
        .status
        .success()
    );
    let idle = learner(&dir, "idle");
    assert_eq!(
        idle["metric_info_set_here"],
        serde_json::json!(["loss", "success"])
    );
    assert_eq!(idle["metric_info"]["success"]["format"], "percent");
    fails(
        &dir,
        &["learners", "describe", "idle", "Bad Name", "--label", "x"],
        "[invalid_input]",
    );
    fails(
        &dir,
        &["learners", "describe", "nobody", "loss", "--label", "x"],
        "[not_found]",
    );
    let one = engram(&dir, &["learners", "describe", "idle", "loss", "--reset"]);
    assert!(
        String::from_utf8_lossy(&one.stdout)
            .contains("idle's metric loss: loss (decimal, no direction) (its own)"),
        "{}",
        String::from_utf8_lossy(&one.stdout)
    );
    assert_eq!(
        learner(&dir, "idle")["metric_info_set_here"],
        serde_json::json!(["success"])
    );
    assert!(
        engram(&dir, &["learners", "describe", "idle", "--reset"])
            .status
            .success()
    );
    assert_eq!(
        learner(&dir, "idle")["metric_info_set_here"],
        serde_json::json!([])
    );

    // Deleted with Engram stopped: listed no more, once.
    let del = engram(&dir, &["learners", "delete", "idle"]);
    assert!(
        del.status.success(),
        "{}",
        String::from_utf8_lossy(&del.stderr)
    );
    assert!(
        String::from_utf8_lossy(&del.stdout)
            .contains("learner idle deleted; no backup held a state of it")
    );
    assert!(learner(&dir, "idle").is_null());
    assert!(!learner(&dir, "writer").is_null(), "the other stays");
    fails(&dir, &["learners", "delete", "idle"], "[not_found]");
    run_for(&dir, "2s");
    assert!(!work.join("idle.txt").exists(), "its command went with it");
    // A learner that ran: its output goes with it.
    assert!(dir.join("learners/writer.log").exists());
    assert!(
        engram(&dir, &["learners", "delete", "writer"])
            .status
            .success()
    );
    assert!(!dir.join("learners/writer.log").exists());
    fails(&dir, &["learners", "logs", "writer"], "[not_found]");
}

#[test]
fn a_learner_outside_engram_is_asked_to_stop_through_the_running_engram() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    // Registered with a command, then let go: a learner that runs elsewhere.
    assert!(add(&dir, "outside", &[], &["true"]).status.success());
    assert!(
        engram(&dir, &["learners", "remove", "outside"])
            .status
            .success()
    );
    // With Engram stopped nothing can reach it: a clear refusal, nothing kept.
    fails(
        &dir,
        &["learners", "stop", "outside"],
        "only while Engram runs",
    );
    assert!(learner(&dir, "outside")["stop_requested_at_ms"].is_null());
    let mut running = spawn_run(&dir, &[]);
    wait_until("engram run serves the learner API", || {
        engram(&dir, &["learners", "list", "--json"])
            .status
            .success()
            && ok_json(&dir, &["status", "--json"])["running"] == true
    });
    let out = engram(&dir, &["learners", "stop", "outside"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("outside asked to stop"), "{said}");
    assert!(learner(&dir, "outside")["stop_requested_at_ms"].is_i64());
    // A metric described through the running Engram.
    let d = ok_json(
        &dir,
        &[
            "learners",
            "describe",
            "outside",
            "reward",
            "--label",
            "Reward",
            "--higher-is-better",
            "--json",
        ],
    );
    assert_eq!(d["metric_info"]["reward"]["label"], "Reward");
    assert_eq!(d["metric_info"]["reward"]["higher_is_better"], true);
    assert_eq!(d["metric_info_set_here"], serde_json::json!(["reward"]));
    // A second learner, deleted through the running Engram.
    assert!(
        add(&dir, "passing", &[], &["sleep", "300"])
            .status
            .success()
    );
    let del = ok_json(&dir, &["learners", "delete", "passing", "--json"]);
    assert_eq!(
        del,
        serde_json::json!({"name": "passing", "backups": 0, "newest_backup_id": null})
    );
    assert!(learner(&dir, "passing").is_null());
    running.kill().expect("kill");
    running.wait().expect("wait");
    // The request is stored: it stands after Engram stops.
    assert!(learner(&dir, "outside")["stop_requested_at_ms"].is_i64());
    assert!(learner(&dir, "passing").is_null(), "the deletion is stored");
}

#[test]
fn a_learners_state_exports_to_a_file_live_or_from_a_backup() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    // A learner's save spooled while Engram was away: taken in at start.
    let spooled_then_run = |step: u64, bytes: &[u8]| {
        let spool = dir.join("spool").join("q");
        std::fs::create_dir_all(&spool).expect("mkdir");
        std::fs::write(spool.join(format!("{step:020}.state")), bytes).expect("state");
        let meta = format!(r#"{{"step":{step},"at_ms":{}}}"#, step * 1000);
        std::fs::write(spool.join(format!("{step:020}.json")), meta).expect("json");
        run_for(&dir, "1s");
    };
    spooled_then_run(1, b"q at 1");
    let backup = ok_json(&dir, &["backups", "create", "--json"])["id"]
        .as_i64()
        .expect("id");
    spooled_then_run(2, b"q at 2");
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let live = out.join("live.state");
    let said = engram(
        &dir,
        &[
            "learners",
            "export",
            "q",
            "--out",
            live.to_str().expect("utf-8"),
        ],
    );
    assert!(
        said.status.success(),
        "{}",
        String::from_utf8_lossy(&said.stderr)
    );
    assert_eq!(std::fs::read(&live).expect("live"), b"q at 2");
    let then = out.join("then.state");
    let id = backup.to_string();
    let j = ok_json(
        &dir,
        &[
            "learners",
            "export",
            "q",
            "--backup",
            &id,
            "--out",
            then.to_str().expect("utf-8"),
            "--json",
        ],
    );
    assert_eq!(
        (j["bytes"].as_u64(), j["backup"].as_i64()),
        (Some(6), Some(backup))
    );
    assert_eq!(std::fs::read(&then).expect("then"), b"q at 1");
    // `--out -`: the checked bytes on standard output, and nothing else
    // (how the Python client resumes with Engram stopped).
    let piped = engram(&dir, &["learners", "export", "q", "--out", "-"]);
    assert!(
        piped.status.success(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    assert_eq!(piped.stdout, b"q at 2");
    let piped = engram(
        &dir,
        &["learners", "export", "q", "--backup", &id, "--out", "-"],
    );
    assert_eq!(piped.stdout, b"q at 1");
    fails(
        &dir,
        &["learners", "export", "nobody", "--out", "-"],
        "not_found",
    );
    // Refusals: one clear line, nothing written.
    let inside = dir.join("q.state");
    fails(
        &dir,
        &[
            "learners",
            "export",
            "q",
            "--out",
            inside.to_str().expect("utf-8"),
        ],
        "inside Engram's data directory",
    );
    assert!(!inside.exists());
    let nowhere = out.join("x.state");
    let p = nowhere.to_str().expect("utf-8");
    fails(
        &dir,
        &["learners", "export", "nobody", "--out", p],
        "[not_found]",
    );
    fails(
        &dir,
        &["learners", "export", "q", "--backup", "999999", "--out", p],
        "[not_found]",
    );
    assert!(!nowhere.exists());
}
