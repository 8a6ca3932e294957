//! An SFTP replica against a real `sshd` this test starts on 127.0.0.1
//! (its own config, host key and user key; `internal-sftp -P remove,rmdir`,
//! so deletes are refused) and stops: an unknown host key and a refused
//! login are clear errors that write nothing; backups go up while
//! `engram run` works; the server killed for a while holds nothing up and
//! the status says why; everything goes up once it is back; Debian's
//! `restic` checks the repository **over SFTP** (`--read-data`) and lists
//! one snapshot per backup; a whole timeline is recovered over SFTP; a
//! server whose host key changed is refused.

use super::*;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// A throwaway `sshd` on 127.0.0.1, stopped when dropped.
struct Sshd {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "engram-test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen (scripts/setup installs openssh-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Sshd {
    fn start(dir: &Path, user_key: &Path) -> Sshd {
        std::fs::create_dir_all(dir).expect("sshd dir");
        keygen(&dir.join("host_key"));
        let pubkey = std::fs::read_to_string(user_key.with_extension("pub")).expect("pub");
        std::fs::write(dir.join("authorized_keys"), pubkey).expect("authorized_keys");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mut sshd = Sshd {
            dir: dir.to_path_buf(),
            port,
            child: None,
        };
        sshd.resume();
        sshd
    }

    /// Starts (again) on the same port with the host key now in `dir`.
    fn resume(&mut self) {
        let d = &self.dir;
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             PermitRootLogin prohibit-password\n\
             Subsystem sftp internal-sftp -P remove,rmdir\n",
            port = self.port,
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).expect("sshd_config");
        // sshd running as root wants its privilege-separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let mut child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sshd (scripts/setup installs openssh-server)");
        let t = Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read as _;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("sshd exited ({status}): {err}");
            }
            assert!(t.elapsed() < Duration::from_secs(10), "sshd did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // The sessions it serves are its descendants: end them too, as
            // a server that went away would (and only them: never another
            // sshd's).
            let family = descendants(c.id());
            let _ = c.kill();
            let _ = c.wait();
            for pid in family {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }

    /// The line `~/.ssh/known_hosts` needs for this server.
    fn known_hosts_line(&self) -> String {
        let key = std::fs::read_to_string(self.dir.join("host_key.pub")).expect("host pub");
        let mut parts = key.split_whitespace();
        let (kind, blob) = (parts.next().expect("type"), parts.next().expect("blob"));
        format!("[127.0.0.1]:{} {kind} {blob}\n", self.port)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every process below `root`, from `/proc/*/stat`'s parent ids.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

/// `engram` with its own HOME (where `.ssh/known_hosts` is read).
fn engram_home(home: &Path, dir: &Path, args: &[&str]) -> Output {
    engram_cmd()
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("run engram")
}

fn ok_home(home: &Path, dir: &Path, args: &[&str]) -> Value {
    let out = engram_home(home, dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn fails_home(home: &Path, dir: &Path, args: &[&str], needles: &[&str]) -> String {
    let out = engram_home(home, dir, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} should fail");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: one line: {err:?}"
    );
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err:?} should mention {n:?}");
    }
    err
}

/// Stock restic on the repository over SFTP (its own `ssh`, this test's
/// key and known hosts; `--no-lock`, as the server refuses deletes).
fn restic_sftp(
    sshd: &Sshd,
    home: &Path,
    key: &Path,
    repo: &Path,
    pass: &str,
    args: &[&str],
) -> Output {
    let ssh = format!(
        "ssh -p {} -i {} -o BatchMode=yes -o UserKnownHostsFile={}/.ssh/known_hosts {}@127.0.0.1 -s sftp",
        sshd.port,
        key.display(),
        home.display(),
        user()
    );
    Command::new("restic")
        .arg("-r")
        .arg(format!("sftp:{}@127.0.0.1:{}", user(), repo.display()))
        .args(["-o", &format!("sftp.command={ssh}"), "--no-lock"])
        .args(args)
        .env("RESTIC_PASSWORD", pass)
        .env("RESTIC_CACHE_DIR", home.join("restic-cache"))
        .env("HOME", home)
        .output()
        .expect("restic")
}

fn status(home: &Path, dir: &Path) -> Value {
    ok_home(home, dir, &["replicas", "status", "offsite", "--json"])[0].clone()
}

#[test]
fn an_sftp_replica_through_a_real_sshd() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).expect("home");
    let key = tmp.path().join("user_key");
    keygen(&key);
    let stranger = tmp.path().join("stranger_key");
    keygen(&stranger);
    let mut sshd = Sshd::start(&tmp.path().join("sshd"), &key);
    let port = sshd.port.to_string();
    let repo = tmp.path().join("offsite");
    let location = format!("{}@127.0.0.1:{}", user(), repo.display());
    let key_s = key.display().to_string();
    let d = tmp.path().join("data");
    let add = |identity: &str| -> Output {
        engram_home(
            &home,
            &d,
            &[
                "replicas",
                "add",
                "sftp",
                &location,
                "--port",
                &port,
                "--identity",
                identity,
                "--name",
                "offsite",
                "--json",
            ],
        )
    };

    // An unknown server: refused with its fingerprint; nothing written.
    let out = add(&key_s);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("is not a known host")
            && err.contains("SHA256:")
            && err.contains("ssh-keyscan"),
        "{err}"
    );
    assert!(!repo.exists(), "nothing is written to an unknown server");
    std::fs::write(home.join(".ssh/known_hosts"), sshd.known_hosts_line()).expect("known");
    // A key the server does not take.
    let out = add(&stranger.display().to_string());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("refused the key"), "{err}");
    assert!(!repo.exists());
    let listed = ok_home(&home, &d, &["replicas", "list", "--json"]);
    assert_eq!(listed, serde_json::json!([]), "a refused add adds nothing");

    let out = add(&key_s);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: Value = serde_json::from_slice(&out.stdout).expect("json");
    let pass = added["new_key"]
        .as_str()
        .expect("key shown once")
        .to_string();

    // Engram runs and uploads.
    let run = Running(
        engram_cmd()
            .env("HOME", &home)
            .env_remove("SSH_AUTH_SOCK")
            .args([
                "run",
                "--autosave",
                "200ms",
                "--pace",
                "1ms",
                "--backup-every",
                "500ms",
            ])
            .arg("--data-dir")
            .arg(&d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("engram run"),
    );
    wait_until("first uploads", || {
        status(&home, &d)["replicated"].as_i64().unwrap_or(0) >= 2
    });

    // The server goes away: backups go on, the status says why.
    sshd.stop();
    let newest = |d: &Path| backup_ids(d).into_iter().max().unwrap_or(0);
    let before = newest(&d);
    let mut away = Value::Null;
    wait_until("the outage reported", || {
        away = status(&home, &d);
        // (A login cut by the kill may first report itself otherwise.)
        away["summary"]
            .as_str()
            .is_some_and(|m| m.contains("cannot reach"))
            && away["behind"].as_i64().unwrap_or(0) >= 2
    });
    let summary = away["summary"].as_str().unwrap_or("").to_string();
    assert!(
        summary.starts_with(&format!("behind {}", away["behind"]))
            && summary.contains("cannot reach 127.0.0.1:"),
        "{summary}"
    );
    wait_until("local backups going on", || newest(&d) > before + 1);

    // It comes back: everything goes up (the worker's backoff is under 16 s here).
    sshd.resume();
    let t = Instant::now();
    loop {
        let s = status(&home, &d);
        if s["behind"] == 0 && s["problem"].is_null() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "never caught up: {s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(run);

    // Stock restic, over SFTP: the repository is whole, every pack reads.
    let check = restic_sftp(&sshd, &home, &key, &repo, &pass, &["check", "--read-data"]);
    assert!(
        check.status.success(),
        "restic check --read-data over sftp: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let snaps = restic_sftp(&sshd, &home, &key, &repo, &pass, &["snapshots", "--json"]);
    assert!(
        snaps.status.success(),
        "{}",
        String::from_utf8_lossy(&snaps.stderr)
    );
    let snaps: Value = serde_json::from_slice(&snaps.stdout).expect("snapshots json");
    let held: Vec<i64> = snaps
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| {
            s["tags"]
                .as_array()?
                .iter()
                .find_map(|t| t.as_str()?.strip_prefix("engram-backup:")?.parse().ok())
        })
        .collect();
    let unique: BTreeSet<i64> = held.iter().copied().collect();
    assert_eq!(
        held.len(),
        unique.len(),
        "one snapshot per backup: {held:?}"
    );
    let here: BTreeSet<i64> = backup_ids(&d).into_iter().collect();
    assert!(
        here.is_subset(&unique),
        "missing: {:?}",
        here.difference(&unique)
    );

    // A new machine recovers the timeline over SFTP.
    let kf = tmp.path().join("key");
    std::fs::write(&kf, format!("{pass}\n")).expect("key file");
    let new = tmp.path().join("new-machine");
    let from = format!("sftp:{location}");
    let report = ok_home(
        &home,
        &new,
        &[
            "replicas",
            "recover",
            "--from",
            &from,
            "--port",
            &port,
            "--identity",
            &key_s,
            "--key-file",
            &kf.display().to_string(),
            "--json",
        ],
    );
    assert_eq!(report["skipped"], serde_json::json!([]), "{report}");
    let recovered: BTreeSet<i64> = backup_ids(&new).into_iter().collect();
    assert_eq!(recovered, unique);

    // The server's host key changes: refused, said loudly.
    sshd.stop();
    std::fs::remove_file(sshd.dir.join("host_key")).expect("old host key");
    std::fs::remove_file(sshd.dir.join("host_key.pub")).expect("old host key");
    keygen(&sshd.dir.join("host_key"));
    sshd.resume();
    fails_home(
        &home,
        &d,
        &["replicas", "verify", "offsite"],
        &["CHANGED", "known_hosts"],
    );
}
