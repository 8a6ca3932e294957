//! `engram fleet` as real processes against a real PostgreSQL (a throwaway
//! cluster, `engram-core/tests/support/pg.rs`): a host killed with SIGKILL
//! twenty times mid-sync, PostgreSQL stopped for part of it, leaves the
//! catalog with no duplicate and no gap — every backup of the host is in
//! the catalog or still queued here, and nothing is in the catalog that
//! is neither here nor a queued deletion.

use super::*;
use engram_core::Store;
use engram_core::engines::rng::Rng;
use std::collections::BTreeSet;

#[path = "../../../engram-core/tests/support/pg.rs"]
mod pg;

/// (the host's backups, the queued backup ids) from its database.
fn local(d: &Path) -> (BTreeSet<i64>, BTreeSet<i64>) {
    let ids = backup_ids(d).into_iter().collect();
    let store = Store::open_read_only(d.join("engram.db")).expect("open");
    let queued = store
        .fleet_outbox(1_000_000)
        .expect("outbox")
        .into_iter()
        .filter(|e| e.entity == "backup")
        .filter_map(|e| e.local_id.parse().ok())
        .collect();
    (ids, queued)
}

fn catalog(cluster: &pg::Cluster, host: &str) -> BTreeSet<i64> {
    let all = cluster.psql(
        "fleet",
        &format!("SELECT local_id FROM backups WHERE host_id = '{host}' ORDER BY local_id"),
    );
    let ids: Vec<i64> = all.lines().map(|l| l.parse().expect("id")).collect();
    let set: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(set.len(), ids.len(), "a duplicate in the catalog");
    set
}

fn no_gap(cluster: &pg::Cluster, d: &Path, host: &str, when: &str) {
    let (here, queued) = local(d);
    let there = catalog(cluster, host);
    for id in here.difference(&there) {
        assert!(
            queued.contains(id),
            "{when}: backup {id} is neither in the catalog nor queued"
        );
    }
    for id in there.difference(&here) {
        assert!(
            queued.contains(id),
            "{when}: backup {id} is in the catalog, gone here, and its deletion is not queued"
        );
    }
}

/// Waits (90 s at most) until the running host has sent everything.
fn caught_up(d: &Path) {
    let t = Instant::now();
    loop {
        let s = ok_json(d, &["fleet", "status", "--json"]);
        if s["queued"] == 0 && s["state"] == "up_to_date" {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "never caught up: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_engram_processes_sync_into_one_catalog() {
    let cluster = pg::Cluster::start(false);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<_> = (0..3)
        .map(|i| tmp.path().join(format!("host{i}")))
        .collect();
    let mut hosts = Vec::new();
    let mut running = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        let s = ok_json(
            d,
            &[
                "fleet",
                "join",
                &cluster.url(),
                "--name",
                &format!("box-{i}"),
                "--json",
            ],
        );
        hosts.push(s["host_id"].as_str().expect("id").to_string());
        running.push(Running(spawn_run(d, &["--backup-every", "500ms"])));
    }
    std::thread::sleep(Duration::from_secs(3));
    for d in &dirs {
        ok_json(d, &["backups", "create", "--label", "by hand", "--json"]);
    }
    // Stopped cleanly (SIGTERM: a final save), then each runs again until
    // it has sent everything and stops making backups: nothing is left out.
    for r in &mut running {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&r.0),
            rustix::process::Signal::TERM,
        );
        let _ = r.0.wait();
    }
    let mut total = 0;
    for (d, host) in dirs.iter().zip(&hosts) {
        {
            let _run = Running(spawn_run(d, &["--backup-every", "1h"]));
            caught_up(d);
        }
        // A backup made in the moment before the kill may still wait here.
        let (here, queued) = local(d);
        let sent: BTreeSet<i64> = here.difference(&queued).copied().collect();
        let there = catalog(&cluster, host);
        assert!(
            sent.is_subset(&there),
            "{host}: sent backups missing from the catalog"
        );
        assert!(
            there.is_subset(&here),
            "{host}: the catalog holds a backup that is not here"
        );
        total += sent.len() + there.intersection(&queued).count();
    }
    let count: usize = cluster
        .psql("fleet", "SELECT count(*) FROM backups")
        .parse()
        .expect("count");
    assert_eq!(count, total, "the catalog's count is the hosts' sum");
    let listed = ok_json(&dirs[0], &["fleet", "hosts", "--json"]);
    assert_eq!(listed.as_array().expect("hosts").len(), 3);
}

#[test]
fn kill_9_mid_sync_and_a_postgresql_outage_leave_no_duplicate_and_no_gap() {
    let mut cluster = pg::Cluster::start(false);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // Joining works on a data directory nobody runs (it is made).
    let s = ok_json(
        d,
        &[
            "fleet",
            "join",
            &cluster.url(),
            "--name",
            "killed",
            "--json",
        ],
    );
    let host = s["host_id"].as_str().expect("host id").to_string();
    assert_eq!(s["state"], "behind", "{s}");
    fails(
        d,
        &["fleet", "join", "postgresql://engram:x@127.0.0.1:1/fleet"],
        "fleet_unavailable",
    );
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let mut down_at = None;
    for i in 0..20 {
        // PostgreSQL is away from iteration 8 to 12, a minute at least: the
        // rest of the minute a host runs and makes backups with it away.
        if i == 8 {
            cluster.down();
            down_at = Some(Instant::now());
        }
        if i == 13 {
            if let Some(t) = down_at {
                let left = Duration::from_secs(61).saturating_sub(t.elapsed());
                let mut child = spawn_run(d, &["--backup-every", "2s"]);
                std::thread::sleep(left);
                child.kill().expect("SIGKILL");
                child.wait().expect("wait");
                assert!(t.elapsed() >= Duration::from_secs(60));
            }
            cluster.up();
        }
        let mut child = spawn_run(d, &["--backup-every", "300ms"]);
        std::thread::sleep(Duration::from_millis(100 + rng.next_u64() % 400));
        // A backup made through the running Engram (or here, if it is not
        // up yet), then the kill at a random moment of its sync.
        let _ = engram(d, &["backups", "create", "--label", &format!("run {i}")]);
        std::thread::sleep(Duration::from_millis(rng.next_u64() % 300));
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        if !(8..13).contains(&i) {
            no_gap(&cluster, d, &host, &format!("after kill {i}"));
        }
    }
    // Running again, it catches up by itself.
    let _run = Running(spawn_run(d, &[]));
    caught_up(d);
    no_gap(&cluster, d, &host, "after the catch-up");
    let (here, _) = local(d);
    assert!(here.len() >= 20, "backups were made: {}", here.len());
    let hosts = ok_json(d, &["fleet", "hosts", "--json"]);
    assert_eq!(hosts[0]["name"], "killed");
    assert_eq!(hosts[0]["this_host"], true);
    let page = ok_json(
        d,
        &[
            "fleet", "backups", "--host", "killed", "--limit", "5", "--json",
        ],
    );
    assert_eq!(page["backups"].as_array().expect("array").len(), 5);
    let left = ok_json(d, &["fleet", "leave", "--json"]);
    assert_eq!(left["was_member"], true, "{left}");
    assert_eq!(left["removed_from_catalog"], true, "{left}");
    assert!(
        catalog(&cluster, &host).is_empty(),
        "its rows left the catalog"
    );
    cluster.down();
}
