//! End-to-end tests of the `engram` binary as real processes: kill -9 loops,
//! the full backup scenario, and bad inputs (damaged files, unknown ids, a
//! read-only directory, a full disk, a second writer).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn engram_bin() -> PathBuf {
    // The engram binary is built next to this test's own binaries.
    let mut p = std::env::current_exe().expect("exe");
    p.pop();
    if p.ends_with("deps") {
        p.pop();
    }
    let bin = p.join("engram");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p engram-cli`",
        bin.display()
    );
    bin
}

fn engram(dir: &Path, args: &[&str]) -> Output {
    Command::new(engram_bin())
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("ENGRAM_DATA_DIR")
        .output()
        .expect("run engram")
}

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

fn spawn_run(dir: &Path, extra: &[&str]) -> Child {
    Command::new(engram_bin())
        .args(["run", "--autosave", "200ms", "--pace", "1ms"])
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn engram run")
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

#[test]
fn kill_9_at_random_moments_never_loses_more_than_the_last_autosave() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut last_saved = 0.0;
    let mut known: Vec<i64> = Vec::new();
    for i in 0..20 {
        let mut child = spawn_run(d, &[]);
        // Kill anywhere from start-up to well into the run.
        std::thread::sleep(Duration::from_millis(150 + next() % 900));
        let before = if d.join("engram.db").exists() {
            saved_plans(d)
        } else {
            last_saved
        };
        let before_ids = if d.join("engram.db").exists() {
            backup_ids(d)
        } else {
            Vec::new()
        };
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        let after = saved_plans(d);
        assert!(
            after >= before,
            "iteration {i}: saved plans fell from {before} to {after}"
        );
        assert!(
            after >= last_saved,
            "iteration {i}: fell below an earlier save"
        );
        last_saved = after;
        let ids = backup_ids(d);
        for id in before_ids.iter().chain(&known) {
            assert!(ids.contains(id), "iteration {i}: backup {id} vanished");
        }
        known = ids;
        let verify = engram(d, &["backups", "verify"]);
        assert!(
            verify.status.success(),
            "iteration {i}: {}",
            String::from_utf8_lossy(&verify.stdout)
        );
    }
    assert!(
        last_saved > 0.0,
        "the engines made progress across restarts"
    );
    // A clean run after all that resumes from the last save.
    let mut child = spawn_run(d, &["--for", "1s"]);
    let status = child.wait().expect("wait");
    assert!(status.success());
    assert!(saved_plans(d) >= last_saved);
}

#[test]
fn full_cli_scenario() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut child = spawn_run(d, &["--for", "2s"]);
    assert!(child.wait().expect("wait").success());
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

    let json_file = d.join("snap.json");
    let bin_file = d.join("snap.bin");
    for (file, format) in [(&json_file, "json"), (&bin_file, "binary")] {
        let out = engram(
            d,
            &[
                "backups",
                "export",
                &manual,
                "--out",
                file.to_str().expect("p"),
                "--format",
                format,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
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
    let mut child = spawn_run(d, &["--for", "1s"]);
    assert!(child.wait().expect("wait").success());
    let id = backup_ids(d)[0].to_string();
    let good = d.join("good.bin");
    assert!(
        engram(
            d,
            &[
                "backups",
                "export",
                &id,
                "--out",
                good.to_str().expect("p"),
                "--format",
                "binary"
            ]
        )
        .status
        .success()
    );
    let good_json = d.join("good.json");
    assert!(
        engram(
            d,
            &[
                "backups",
                "export",
                &id,
                "--out",
                good_json.to_str().expect("p")
            ]
        )
        .status
        .success()
    );
    let bytes = std::fs::read(&good).expect("read");
    let before = fingerprint(d);

    let case = |name: &str, content: &[u8]| {
        let p = d.join(name);
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
            d.join("x").to_str().expect("p"),
        ],
        "not_found",
    );
    fails(
        d,
        &["backups", "list", "--kind", "hourly"],
        "unknown backup kind",
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
    fails(d, &["backups", "create"], "stop it first");
    fails(
        d,
        &["backups", "import", good.to_str().expect("p")],
        "stop it first",
    );
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
    let mut child = spawn_run(&src, &["--for", "1s"]);
    assert!(child.wait().expect("wait").success());
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

// ----- engram serve: the JSON API over real HTTP --------------------------------

struct Http {
    addr: String,
    token: String,
}

impl Http {
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, Vec<u8>) {
        self.raw(method, path, token, body, &self.addr)
    }

    fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
        host: &str,
    ) -> (u16, Vec<u8>) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).expect("write");
        s.write_all(body).expect("write body");
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).expect("read");
        let split = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("headers end");
        let head = String::from_utf8_lossy(&resp[..split]).to_string();
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status");
        let mut body = resp[split + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        (status, body)
    }

    fn json(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let (code, bytes) = self.call(method, path, Some(&self.token), body);
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..end]).trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < end + 2 + n {
            break;
        }
        out.extend_from_slice(&b[end + 2..end + 2 + n]);
        b = &b[(end + 4 + n).min(b.len())..];
    }
    out
}

fn start_serve(dir: &Path) -> (Child, Http) {
    use std::io::BufRead;
    let mut child = Command::new(engram_bin())
        .args([
            "serve",
            "--autosave",
            "200ms",
            "--pace",
            "1ms",
            "--data-dir",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read url");
    let url = line.split_whitespace().last().expect("url").to_string();
    let rest = url.trim_start_matches("http://");
    let addr = rest.split('/').next().expect("addr").to_string();
    assert!(
        addr.starts_with("127.0.0.1:"),
        "serves on loopback only: {url}"
    );
    let token = url.split("token=").nth(1).expect("token").to_string();
    (child, Http { addr, token })
}

#[test]
fn serve_api_requires_the_token_and_runs_the_whole_scenario() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, api) = start_serve(dir.path());

    // Without the token (or with a wrong one) nothing is read or changed.
    assert_eq!(api.call("GET", "/api/status", None, b"").0, 401);
    assert_eq!(api.call("GET", "/api/backups", Some("wrong"), b"").0, 401);
    assert_eq!(api.call("POST", "/api/backups", None, b"{}").0, 401);
    assert_eq!(
        api.call("POST", "/api/backups/1/restore", Some("nope"), b"{}")
            .0,
        401
    );
    // A page from another origin (DNS rebinding) is refused by Host.
    assert_eq!(
        api.raw(
            "GET",
            "/api/status",
            Some(&api.token),
            b"",
            "evil.example:80"
        )
        .0,
        403
    );
    let (code, list) = api.json("GET", "/api/backups", b"");
    assert_eq!(code, 200);
    assert_eq!(list["total"], 1, "the refused POST created nothing: {list}");
    assert_eq!(list["items"][0]["kind"], "initial");
    // The UI is served too.
    let (code, page) = api.call("GET", "/", None, b"");
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&page).contains("<title>Engram</title>"));

    let (code, status) = api.json("GET", "/api/status", b"");
    assert_eq!(code, 200);
    assert!(status["engines"]["zap"]["metrics"]["plans_generated"].is_number());

    let (code, manual) = api.json("POST", "/api/backups", br#"{"label":"http checkpoint"}"#);
    assert_eq!(code, 200, "{manual}");
    assert_eq!(manual["kind"], "manual");
    let id = manual["id"].as_i64().expect("id");

    let (code, json_file) = api.call(
        "GET",
        &format!("/api/backups/{id}/export?format=json"),
        Some(&api.token),
        b"",
    );
    assert_eq!(code, 200);
    let (code, bin_file) = api.call(
        "GET",
        &format!("/api/backups/{id}/export?format=binary"),
        Some(&api.token),
        b"",
    );
    assert_eq!(code, 200);
    for file in [&json_file, &bin_file] {
        let (code, imported) = api.json("POST", "/api/import", file);
        assert_eq!(code, 200, "{imported}");
        assert_eq!(imported["kind"], "imported");
    }
    let (code, err) = api.json("POST", "/api/import", b"not a snapshot");
    assert_eq!(
        (code, err["code"].as_str()),
        (400, Some("invalid_snapshot"))
    );

    let (code, restored) = api.json("POST", &format!("/api/backups/{id}/restore"), b"");
    assert_eq!(code, 200, "{restored}");
    let pre = restored["pre_restore_backup"].as_i64().expect("pre");
    let (_, pre_b) = api.json("GET", &format!("/api/backups/{pre}"), b"");
    assert_eq!(pre_b["kind"], "pre-restore");

    let (code, mut settings) = api.json("GET", "/api/settings", b"");
    assert_eq!(code, 200);
    settings["backup_every_secs"] = 7200.into();
    let (code, applied) = api.json("PUT", "/api/settings", settings.to_string().as_bytes());
    assert_eq!(
        (code, applied["backup_every_secs"].as_f64()),
        (200, Some(7200.0))
    );
    settings["autosave_secs"] = (-1).into();
    let (code, err) = api.json("PUT", "/api/settings", settings.to_string().as_bytes());
    assert_eq!((code, err["code"].as_str()), (400, Some("invalid_input")));
    assert_eq!(api.call("PUT", "/api/settings", None, b"{}").0, 401);

    let (code, report) = api.json("POST", "/api/verify", b"");
    assert_eq!(code, 200);
    assert_eq!(report["database_ok"], true);
    assert_eq!(report["problems"].as_array().map(Vec::len), Some(0));

    let (code, pinned) = api.json("POST", &format!("/api/backups/{id}/pin"), b"");
    assert_eq!((code, pinned["pinned"].as_bool()), (200, Some(true)));
    let (code, err) = api.json("DELETE", &format!("/api/backups/{id}"), b"");
    assert_eq!((code, err["code"].as_str()), (409, Some("protected")));
    let (code, err) = api.json("DELETE", "/api/backups/1", b"");
    assert_eq!((code, err["code"].as_str()), (409, Some("protected")));
    let (code, err) = api.json("GET", "/api/backups/999999", b"");
    assert_eq!((code, err["code"].as_str()), (404, Some("not_found")));

    // SIGTERM: a clean stop with a final save.
    let ok = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(ok.success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "serve exits 0 on SIGTERM: {status:?}");
    let list = ok_json(dir.path(), &["backups", "list", "--json"]);
    let kinds: Vec<&str> = list
        .as_array()
        .expect("a")
        .iter()
        .map(|b| b["kind"].as_str().expect("k"))
        .collect();
    for k in ["initial", "manual", "imported", "pre-restore"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
}
