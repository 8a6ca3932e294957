//! `engram serve` as a real process over real HTTP (the routes themselves are
//! tested in process in `src/http/tests.rs`): loopback only, the token, the
//! UI built into the binary — also from a copy installed elsewhere — and a
//! clean stop with a final save on SIGTERM.

use super::*;
use std::io::BufRead;

/// A running `engram serve` and the URL it printed.
struct Serve {
    child: Child,
    base: String,
    token: String,
}

impl Serve {
    fn start(bin: &Path, dir: &Path, cwd: &Path) -> Serve {
        Serve::start_with(bin, dir, cwd, &[])
    }

    fn start_with(bin: &Path, dir: &Path, cwd: &Path, extra: &[&str]) -> Serve {
        let mut child = Command::new(bin)
            .args([
                "serve",
                "--autosave",
                "200ms",
                "--pace",
                "1ms",
                "--data-dir",
            ])
            .arg(dir)
            .args(extra)
            .current_dir(cwd)
            .env_remove("ENGRAM_DATA_DIR")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn serve");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read url");
        let url = line.split_whitespace().last().expect("url").to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "loopback only: {url}");
        let (base, token) = url.split_once("/?token=").expect("token in url");
        Serve {
            child,
            base: base.to_string(),
            token: token.to_string(),
        }
    }

    /// Status and body of a request (`token`: the Bearer token, if any).
    fn call(&self, method: &str, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let res = agent
            .run(req.body(Vec::<u8>::new()).expect("request"))
            .expect("http");
        let status = res.status().as_u16();
        (status, res.into_body().read_to_vec().expect("body"))
    }

    fn json(&self, method: &str, path: &str) -> Value {
        let (code, body) = self.call(method, path, Some(&self.token));
        assert_eq!(
            code,
            200,
            "{method} {path}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).expect("json")
    }

    /// SIGTERM, then a clean exit.
    fn stop(mut self) {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(ok.success());
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "serve exits 0 on SIGTERM: {status:?}");
    }
}

#[test]
fn serve_requires_the_token_serves_the_ui_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let serve = Serve::start(Path::new(env!("CARGO_BIN_EXE_engram")), d, d);
    assert_eq!(serve.call("GET", "/api/status", None).0, 401);
    assert_eq!(serve.call("POST", "/api/backups", Some("wrong")).0, 401);
    let status = serve.json("GET", "/api/status");
    assert_eq!(status["running"], true);
    let manual = serve.json("POST", "/api/backups");
    assert_eq!(manual["kind"], "manual");
    let (code, page) = serve.call("GET", "/", None);
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&page).contains("<title>Engram</title>"));
    serve.stop();
    // The final save and the backup are on disk for the offline CLI.
    let list = ok_json(d, &["backups", "list", "--json"]);
    assert!(
        list.as_array()
            .expect("array")
            .iter()
            .any(|b| b["id"] == manual["id"] && b["kind"] == "manual")
    );
    assert_eq!(ok_json(d, &["status", "--json"])["running"], false);
}

#[test]
fn an_installed_copy_of_the_binary_serves_its_ui_from_anywhere() {
    // Copy the binary far from the workspace and run it from another
    // directory: the UI must come from the binary itself.
    let install = tempfile::tempdir().expect("tempdir");
    let bin = install.path().join("bin/engram");
    std::fs::create_dir_all(bin.parent().expect("dir")).expect("mkdir");
    std::fs::copy(env!("CARGO_BIN_EXE_engram"), &bin).expect("copy");
    let data = tempfile::tempdir().expect("tempdir");
    let serve = Serve::start(&bin, data.path(), install.path());
    let (code, page) = serve.call("GET", "/", None);
    assert_eq!(code, 200);
    let html = String::from_utf8_lossy(&page).into_owned();
    assert!(html.contains("<title>Engram</title>"));
    // And the scripts and styles the page names.
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("/assets/") || s.starts_with("./assets/"))
        .collect();
    assert!(!assets.is_empty(), "the page references its assets: {html}");
    for a in assets {
        let (code, body) = serve.call(
            "GET",
            &format!("/{}", a.trim_start_matches("./").trim_start_matches('/')),
            None,
        );
        assert_eq!(code, 200, "{a}");
        assert!(!body.is_empty(), "{a}");
    }
    serve.stop();
}

#[test]
fn the_access_token_and_port_survive_a_restart_so_open_pages_reconnect_until_renewed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let bin = Path::new(env!("CARGO_BIN_EXE_engram"));
    let first = Serve::start(bin, d, d);
    let (token, base) = (first.token.clone(), first.base.clone());
    first.json("GET", "/api/status");
    first.stop();
    let mode = std::fs::metadata(d.join("access.token"))
        .expect("token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "owner-only: {mode:o}");
    let second = Serve::start(bin, d, d);
    assert_eq!(second.token, token, "the same token after a restart");
    assert_eq!(second.base, base, "and the same port, while it is free");
    second.stop();
    let third = Serve::start_with(bin, d, d, &["--new-token"]);
    assert_ne!(third.token, token, "--new-token renews it");
    assert_eq!(
        third.call("GET", "/api/status", Some(&token)).0,
        401,
        "the old one stops working"
    );
    third.json("GET", "/api/status");
    third.stop();
}
