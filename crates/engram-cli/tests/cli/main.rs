//! The `engram` binary as real processes — one harness for all of its
//! end-to-end tests (`CARGO_BIN_EXE_engram`, never a guessed path).

mod backups;
mod env;
mod fleet;
mod kill;
mod learners;
mod replicas;
mod serve;
mod sftp;

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `engram`, without the caller's data directory.
fn engram_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_engram"));
    c.env_remove("ENGRAM_DATA_DIR");
    c
}

/// `engram <args> --data-dir <dir>`.
fn engram(dir: &Path, args: &[&str]) -> Output {
    engram_cmd()
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("run engram")
}

/// Succeeds and prints JSON.
fn ok_json(dir: &Path, args: &[&str]) -> Value {
    let out = engram(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Fails with one clear line on stderr containing `needle`.
fn fails(dir: &Path, args: &[&str], needle: &str) {
    let out = engram(dir, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: one line, got {err:?}"
    );
    assert!(
        err.contains(needle),
        "{args:?}: {err:?} should mention {needle:?}"
    );
}

/// A background `engram` killed (SIGKILL) and reaped when dropped, so a
/// test that fails half-way leaves no process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `engram run` with a fast autosave, in the background.
fn spawn_run(dir: &Path, extra: &[&str]) -> Child {
    engram_cmd()
        .args(["run", "--autosave", "200ms", "--pace", "1ms"])
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn engram run")
}

/// Runs the engines for `secs` seconds and waits for a clean exit.
fn run_for(dir: &Path, secs: &str) {
    let mut child = spawn_run(dir, &["--for", secs]);
    assert!(
        child.wait().expect("wait").success(),
        "engram run --for {secs}"
    );
}

fn saved_plans(dir: &Path) -> f64 {
    let s = ok_json(dir, &["status", "--json"]);
    s["engines"]["zap"]["metrics"]["plans_generated"]
        .as_f64()
        .unwrap_or(0.0)
}

fn backup_ids(dir: &Path) -> Vec<i64> {
    let list = ok_json(dir, &["backups", "list", "--json"]);
    list.as_array()
        .expect("array")
        .iter()
        .map(|b| b["id"].as_i64().expect("id"))
        .collect()
}

/// What a bad input must leave untouched.
fn fingerprint(dir: &Path) -> (Value, Value) {
    let mut status = ok_json(dir, &["status", "--json"]);
    for volatile in ["running", "pid", "data_dir"] {
        status[volatile] = Value::Null;
    }
    (status, ok_json(dir, &["backups", "list", "--json"]))
}

/// Exports backup `id` to `out` in `format`; the CLI's confirmation line.
fn export(dir: &Path, id: &str, out: &Path, format: &str) -> String {
    let o = engram(
        dir,
        &[
            "backups",
            "export",
            id,
            "--out",
            out.to_str().expect("utf-8 path"),
            "--format",
            format,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
