//! Crash test, the way sled does it: a child process saves live states and
//! backups in a loop and is SIGKILLed at a random moment; the parent reopens
//! the database and checks every invariant. Repeated on the same database.
//!
//! `ENGRAM_CRASH_ITERS` sets the iteration count (default 100); the ignored
//! `crash_loop_long` runs 2,000. `ENGRAM_CRASH_SEED` replays a run.

mod common;

use common::{ENGINES, KEEP_LAST_PERIODIC, WriterState};
use engram_core::{BackupKind, Store};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn crash_loop_sigkill_100_iterations() {
    let iters = std::env::var("ENGRAM_CRASH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    crash_loop(iters);
}

#[test]
#[ignore = "long: 2,000 SIGKILLs (run with --ignored)"]
fn crash_loop_long() {
    crash_loop(2000);
}

struct Reported {
    live: u64,
    /// id -> (kind, counter)
    backups: BTreeMap<i64, (BackupKind, u64)>,
}

fn crash_loop(iters: u32) {
    let seed: u64 = std::env::var("ENGRAM_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| engram_core::now_ms() as u64);
    eprintln!("crash loop: {iters} iterations, ENGRAM_CRASH_SEED={seed}");
    let mut rng = common::rng(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("engram.db");
    let mut reported = Reported {
        live: 0,
        backups: BTreeMap::new(),
    };
    let mut kills_mid_write = 0;
    for iter in 0..iters {
        let start = reported.live + 1;
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
            .arg(&db)
            .arg(start.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn crash-writer");
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        // Kill anywhere from during open to well into the write loop.
        std::thread::sleep(Duration::from_micros(rng() % 60_000));
        child.kill().expect("SIGKILL"); // std's kill sends SIGKILL on Unix
        let status = child.wait().expect("wait");
        let lines = reader.join().expect("reader");
        if let Some(code) = status.code() {
            let mut err = String::new();
            use std::io::Read;
            child.stderr.take().map(|mut e| e.read_to_string(&mut err));
            panic!("iteration {iter}: writer exited by itself with {code}: {err}");
        }
        for line in &lines {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["L", c] => reported.live = c.parse().expect("counter"),
                ["B", id, kind, c] => {
                    reported.backups.insert(
                        id.parse().expect("id"),
                        (kind.parse().expect("kind"), c.parse().expect("counter")),
                    );
                }
                ["R"] => {}
                _ => panic!("iteration {iter}: unexpected line {line:?}"),
            }
        }
        if !lines.is_empty() {
            kills_mid_write += 1;
        }
        check_invariants(&db, &mut reported, iter);
    }
    assert!(
        kills_mid_write >= iters / 2,
        "only {kills_mid_write} of {iters} kills landed after the writer started committing"
    );
}

fn check_invariants(db: &std::path::Path, reported: &mut Reported, iter: u32) {
    let store = Store::open(db).unwrap_or_else(|e| panic!("iteration {iter}: reopen failed: {e}"));
    assert_eq!(
        store.database_check(true).expect("integrity_check"),
        ["ok"],
        "iteration {iter}"
    );
    let report = store.verify_all(false).expect("verify");
    assert!(report.is_ok(), "iteration {iter}: {:?}", report.problems);

    // Live state: at least what was reported, at most one save further.
    let load = store.load_live(&ENGINES).expect("load");
    assert!(
        load.skipped.is_empty(),
        "iteration {iter}: {:?}",
        load.skipped
    );
    if reported.live > 0 {
        for engine in ENGINES {
            let s: WriterState = load.states[engine].state.decode().expect("decode");
            assert!(
                s.is_consistent(),
                "iteration {iter}: {engine} payload mismatch"
            );
            assert!(
                s.counter >= reported.live && s.counter <= reported.live + 1,
                "iteration {iter}: {engine} live counter {} but {} was reported committed",
                s.counter,
                reported.live
            );
        }
        // An unreported last commit is legitimate: adopt it for the next round.
        let zap: WriterState = load.states["zap"].state.decode().expect("decode");
        reported.live = zap.counter;
    }

    // Backups: every reported one is present and exact, unless retention may
    // legitimately have removed it (periodic, and not among the newest kept).
    let mut present = std::collections::BTreeSet::new();
    // Periodic backups in the database now, including any whose commit the
    // writer did not live to report.
    let periodic_ids: Vec<i64> = store
        .list_backups(&engram_core::BackupQuery {
            kinds: vec![BackupKind::Periodic],
            limit: 1000,
            ..Default::default()
        })
        .expect("list")
        .items
        .iter()
        .map(|b| b.id)
        .collect();
    for (id, (kind, counter)) in &reported.backups {
        match store.get_backup(*id) {
            Ok(info) => {
                present.insert(*id);
                assert_eq!(info.kind, *kind, "iteration {iter}: backup {id}");
                for s in store.backup_states(*id).expect("states") {
                    let w: WriterState = s.state.decode().expect("decode");
                    assert!(w.is_consistent(), "iteration {iter}: backup {id} payload");
                    assert_eq!(
                        w.counter, *counter,
                        "iteration {iter}: backup {id} holds another cut"
                    );
                }
            }
            Err(e) if e.code() != "not_found" => panic!("iteration {iter}: backup {id}: {e}"),
            Err(_) => {
                // Retention removes a periodic backup only while at least
                // KEEP_LAST_PERIODIC newer ones exist, and those it keeps.
                let newer = periodic_ids.iter().filter(|p| **p > *id).count();
                assert!(
                    *kind == BackupKind::Periodic && newer >= KEEP_LAST_PERIODIC as usize,
                    "iteration {iter}: committed {kind} backup {id} (counter {counter}) is missing"
                );
            }
        }
    }
    // Forget what retention removed, so the check stays exact.
    reported.backups.retain(|id, _| present.contains(id));
}
