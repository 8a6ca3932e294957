//! The fleet catalog against a real PostgreSQL (a throwaway cluster on
//! 127.0.0.1, `support/pg.rs`): several Engram runtimes with their own
//! data directories and host ids sync into one catalog with no duplicate
//! and no gap; an outage only delays the sync; bad URLs, passwords,
//! schemas, copied data directories and refused rows each get a clear
//! error and lose nothing here; a backup made on one host is restored on
//! another from a shared replica, bit-exactly.

use engram_core::api::{Api, Offline};
use engram_core::runtime::{Runtime, RuntimeOptions};
use engram_core::wire::{
    AddReplica, CreateBackup, FleetBackupsQuery, FleetJoin, FleetRestore, FleetStatus, ReplicaKind,
};
use engram_core::{BackupKind, ErrorCode, Store};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

#[path = "support/pg.rs"]
mod pg;
#[path = "support/learner.rs"]
mod support_learner;

fn options(dir: &Path) -> RuntimeOptions {
    let mut o = RuntimeOptions::new(dir);
    o.pace = Duration::from_millis(1);
    o.metrics_every = Duration::from_millis(20);
    o.autosave = Duration::from_millis(200);
    o.engines.zap.simulations = 8;
    o
}

async fn start(dir: &Path) -> Api {
    Api::new(Runtime::start(options(dir)).await.expect("start"))
}

fn join(url: &str, name: &str) -> FleetJoin {
    FleetJoin {
        url: url.to_string(),
        name: Some(name.to_string()),
        ..Default::default()
    }
}

/// The host's fleet status once `ok` holds (a minute at most).
async fn wait_status(api: &Api, what: &str, ok: impl Fn(&FleetStatus) -> bool) -> FleetStatus {
    for _ in 0..1200 {
        let s = api.fleet_status().await.expect("status");
        if ok(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: never came: {:?}", api.fleet_status().await);
}

async fn synced(api: &Api) -> FleetStatus {
    wait_status(api, "the sync", |s| {
        s.state == "up_to_date" && s.queued == 0 && s.problem.is_none()
    })
    .await
}

/// Every backup id of the data directory.
fn local_ids(dir: &Path) -> BTreeSet<i64> {
    let store = Store::open_read_only(dir.join("engram.db")).expect("open");
    let q = engram_core::BackupQuery {
        limit: 1000,
        ..Default::default()
    };
    store
        .list_backups(&q)
        .expect("list")
        .items
        .iter()
        .map(|b| b.id)
        .collect()
}

/// Every (host, id) of the catalog, walked page by page through the API.
async fn fleet_ids(api: &Api) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let mut q = FleetBackupsQuery {
        limit: Some(7),
        ..Default::default()
    };
    loop {
        let page = api.fleet_backups(q.clone()).await.expect("fleet backups");
        out.extend(page.backups.iter().map(|b| (b.host_id.clone(), b.id)));
        match page.next {
            Some(c) => {
                q.after_created_at_ms = Some(c.created_at_ms);
                q.after_host = Some(c.host);
                q.after_id = Some(c.id);
            }
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hosts_sync_into_one_catalog_with_no_duplicate_and_no_gap() {
    // Long by design: join, backups, changes, deletions and a restart on
    // three hosts, then the catalog checked against each host's database.
    let mut cluster = pg::Cluster::start(false);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<_> = (0..3)
        .map(|i| tmp.path().join(format!("host{i}")))
        .collect();
    let mut apis = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        let api = start(d).await;
        // A backup from before joining is sent too.
        api.create_backup(CreateBackup {
            label: Some(format!("before joining {i}")),
        })
        .await
        .expect("backup");
        let s = api
            .fleet_join(join(&cluster.url(), &format!("box-{i}")))
            .await
            .expect("join");
        assert!(s.joined);
        assert_eq!(
            s.url.as_deref(),
            Some(cluster.url_with("***").as_str()),
            "the password is never shown"
        );
        apis.push(api);
    }
    // Host ids differ; the URL file is owner-only.
    let ids: BTreeSet<String> = futures_ids(&apis).await;
    assert_eq!(ids.len(), 3, "three distinct host ids: {ids:?}");
    for d in &dirs {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("fleet.conf"))
            .expect("conf")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    for (i, api) in apis.iter().enumerate() {
        for k in 0..5 {
            api.create_backup(CreateBackup {
                label: Some(format!("b{k} on {i}")),
            })
            .await
            .expect("backup");
        }
    }
    // A pin, a label and a deletion reach the catalog too.
    let first = *local_ids(&dirs[0]).iter().min().expect("a backup");
    apis[0].pin_backup(first).await.expect("pin");
    let renamed = *local_ids(&dirs[1]).iter().max().expect("a backup");
    apis[1]
        .set_label(
            renamed,
            engram_core::wire::LabelRequest {
                label: Some("renamed".into()),
            },
        )
        .await
        .expect("label");
    let doomed = *local_ids(&dirs[2]).iter().max().expect("a backup");
    apis[2].delete_backup(doomed).await.expect("delete");
    // The engines stop (no new backup from here on); the sync goes on.
    for api in &apis {
        api.runtime().expect("rt").stop().await.expect("stop");
    }
    for api in &apis {
        synced(api).await;
    }
    let hosts = apis[0].fleet_hosts().await.expect("hosts");
    assert_eq!(hosts.len(), 3);
    assert_eq!(hosts.iter().filter(|h| h.this_host).count(), 1);
    assert!(hosts.iter().all(|h| !h.stale), "{hosts:?}");
    let mut want = Vec::new();
    for (api, d) in apis.iter().zip(&dirs) {
        let host = api.fleet_status().await.expect("status").host_id;
        let local = local_ids(d);
        let h = hosts
            .iter()
            .find(|h| h.host_id == host)
            .expect("host listed");
        assert_eq!(
            h.backups,
            local.len() as u64,
            "the host's count in the catalog"
        );
        assert!(
            h.units.contains(&"mdp_es".to_string()),
            "engines listed: {:?}",
            h.units
        );
        want.extend(local.into_iter().map(|id| (host.clone(), id)));
    }
    let got = fleet_ids(&apis[1]).await;
    let unique: BTreeSet<_> = got.iter().cloned().collect();
    assert_eq!(unique.len(), got.len(), "no duplicate in the catalog");
    let want: BTreeSet<_> = want.into_iter().collect();
    assert_eq!(
        unique, want,
        "the catalog holds exactly every host's backups"
    );
    let total: i64 = cluster
        .psql("fleet", "SELECT count(*) FROM backups")
        .parse()
        .expect("count");
    assert_eq!(total as usize, want.len());
    let hours: i64 = cluster
        .psql("fleet", "SELECT sum(n) FROM backup_hours")
        .parse()
        .expect("sum");
    assert_eq!(
        hours as usize,
        want.len(),
        "the timeline's counts agree with the rows"
    );
    // What changed is there as it is here.
    let host0 = apis[0].fleet_status().await.expect("s").host_id;
    let pinned = cluster.psql(
        "fleet",
        &format!("SELECT pinned FROM backups WHERE host_id = '{host0}' AND local_id = {first}"),
    );
    assert_eq!(pinned, "t");
    let of_box1 = apis[0]
        .fleet_backups(FleetBackupsQuery {
            host: Some("box-1".into()),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .expect("by host name");
    assert!(of_box1.backups.iter().all(|b| b.host_name == "box-1"));
    let labelled = of_box1
        .backups
        .iter()
        .find(|b| b.id == renamed)
        .expect("the labelled one");
    assert_eq!(labelled.label.as_deref(), Some("renamed"));
    assert!(
        !fleet_ids(&apis[0])
            .await
            .contains(&(apis[2].fleet_status().await.expect("s").host_id, doomed)),
        "the deleted one is gone"
    );
    // Filters: by learner (engine) and kind.
    let manual = apis[0]
        .fleet_backups(FleetBackupsQuery {
            kind: Some(BackupKind::Manual),
            learner: Some("zap".into()),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .expect("filtered");
    assert!(!manual.backups.is_empty());
    assert!(manual.backups.iter().all(|b| {
        b.kind == BackupKind::Manual
            && b.states
                .iter()
                .any(|s| s.name == "zap" && s.checksum.len() == 64)
    }));
    // The metric history went up too.
    let points: i64 = cluster
        .psql("fleet", "SELECT count(*) FROM metric_points")
        .parse()
        .expect("points");
    assert!(points > 0, "metric points in the catalog");
    // One metric, one curve per host.
    let curves = apis[0]
        .fleet_series(engram_core::wire::SeriesRequest {
            engine: "zap".into(),
            key: "plans_generated".into(),
            from_ms: None,
            to_ms: None,
            points: Some(50),
        })
        .await
        .expect("series");
    assert_eq!(curves.len(), 3, "a curve per host: {curves:?}");
    for c in &curves {
        assert!(
            !c.points.is_empty() && c.points.len() <= 51,
            "{}",
            c.points.len()
        );
        assert!(
            c.points.windows(2).all(|w| w[0].at_ms < w[1].at_ms),
            "oldest first"
        );
        let local: i64 = cluster
            .psql("fleet", &format!("SELECT count(*) FROM metric_points WHERE host_id = '{}' AND engine = 'zap' AND key = 'plans_generated'", c.host_id))
            .parse()
            .expect("n");
        assert_eq!(
            c.stored, local as u64,
            "every stored point of the host is in its curve"
        );
    }
    // At most two connections per host (the worker's and the reads').
    let conns: i64 = cluster
        .psql(
            "fleet",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'engram'",
        )
        .parse()
        .expect("conns");
    assert!(conns <= 6, "{conns} connections for 3 hosts");
    cluster.down();
}

async fn futures_ids(apis: &[Api]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for a in apis {
        out.insert(a.fleet_status().await.expect("status").host_id);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_only_delays_the_sync() {
    let mut cluster = pg::Cluster::start(false);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let api = start(&dir).await;
    api.fleet_join(join(&cluster.url(), "laptop"))
        .await
        .expect("join");
    synced(&api).await;
    cluster.down();
    for k in 0..4 {
        api.create_backup(CreateBackup {
            label: Some(format!("offline {k}")),
        })
        .await
        .expect("backups go on while the fleet is away");
    }
    let failing = wait_status(&api, "the failure", |s| s.state == "failing").await;
    let p = failing.problem.clone().expect("problem");
    assert_eq!(p.code, ErrorCode::FleetUnavailable, "{}", p.message);
    assert!(failing.queued >= 4, "the changes wait here: {failing:?}");
    cluster.up();
    api.runtime().expect("rt").stop().await.expect("stop");
    // The worker tries again by itself (backoff at most a minute).
    synced(&api).await;
    let host = api.fleet_status().await.expect("s").host_id;
    let n: i64 = cluster
        .psql(
            "fleet",
            &format!("SELECT count(*) FROM backups WHERE host_id = '{host}'"),
        )
        .parse()
        .expect("count");
    assert_eq!(n as usize, local_ids(&dir).len());
    // The catalog loses this host's rows (restored from an older copy):
    // at its next connection the host sees it and sends everything again.
    cluster.psql(
        "fleet",
        &format!("DELETE FROM backups WHERE host_id = '{host}' AND local_id > 1"),
    );
    cluster.psql(
        "fleet",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'engram'",
    );
    let mut again = 0;
    for _ in 0..1200 {
        again = cluster
            .psql(
                "fleet",
                &format!("SELECT count(*) FROM backups WHERE host_id = '{host}'"),
            )
            .parse()
            .expect("count");
        if again as usize == local_ids(&dir).len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        again as usize,
        local_ids(&dir).len(),
        "everything sent again"
    );
    // Away and back with nothing to send (the engines stopped): the
    // failure is said, and its end too.
    synced(&api).await;
    cluster.down();
    wait_status(&api, "the failure, with nothing queued", |s| {
        s.state == "failing" && s.queued == 0
    })
    .await;
    cluster.up();
    synced(&api).await;
    cluster.down();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_urls_passwords_schemas_and_copies_get_clear_errors_and_change_nothing() {
    // Long by design: one refusal after another, each checked to leave the
    // data directory as it was.
    let cluster = pg::Cluster::start(false);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let off = Offline::new(&dir);
    // A data directory with a backup, nobody running it.
    {
        let api = start(&dir).await;
        api.runtime().expect("rt").stop().await.expect("stop");
    }
    let not_joined = |what: &str| {
        let s = off.fleet_status().expect("status");
        assert!(!s.joined, "{what}: {s:?}");
        assert!(!dir.join("fleet.conf").exists(), "{what}: no URL kept");
    };
    let e = off
        .fleet_join(join("mysql://a:b@c/d", "x"))
        .expect_err("not postgres");
    assert_eq!(e.code(), ErrorCode::InvalidInput);
    not_joined("bad url");
    let e = off
        .fleet_join(join(&cluster.url_with("wrong"), "x"))
        .expect_err("wrong password");
    assert_eq!(e.code(), ErrorCode::FleetRefused, "{e}");
    assert!(
        !e.to_string().contains("wrong@"),
        "the password is not shown: {e}"
    );
    not_joined("wrong password");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let e = off
        .fleet_join(join(
            &format!("postgresql://engram:x@127.0.0.1:{port}/fleet"),
            "x",
        ))
        .expect_err("nothing listens");
    assert_eq!(e.code(), ErrorCode::FleetUnavailable, "{e}");
    assert!(e.to_string().contains("is PostgreSQL running"), "{e}");
    not_joined("refused");
    let e = off
        .fleet_join(join(&cluster.url().replace("/fleet", "/nosuchdb"), "x"))
        .expect_err("no database");
    assert_eq!(e.code(), ErrorCode::FleetRefused, "{e}");
    not_joined("no database");

    // A good join; then a copy of the data directory claims the same id.
    off.fleet_join(join(&cluster.url(), "original"))
        .expect("join");
    let copy = tmp.path().join("copy");
    copy_dir(&dir, &copy);
    let off_copy = Offline::new(&copy);
    let e = off_copy
        .fleet_join(join(&cluster.url(), "copy"))
        .expect_err("same id elsewhere");
    assert_eq!(e.code(), ErrorCode::FleetConflict, "{e}");
    assert!(e.to_string().contains("--new-id"), "{e}");
    let s = off_copy
        .fleet_join(FleetJoin {
            new_id: true,
            ..join(&cluster.url(), "copy")
        })
        .expect("a copy joins with an id of its own");
    assert_ne!(s.host_id, off.fleet_status().expect("s").host_id);

    // A catalog from a newer Engram is refused and not written.
    cluster.psql(
        "fleet",
        "INSERT INTO engram_fleet_schema (version, by_engram) VALUES (99, 'future')",
    );
    let e = Offline::new(tmp.path().join("third"))
        .fleet_join(join(&cluster.url(), "third"))
        .expect_err("newer schema");
    assert_eq!(e.code(), ErrorCode::NewerSchema, "{e}");
    assert!(e.to_string().contains("99"), "{e}");
    let e = off.fleet_hosts().expect_err("reads refuse it too");
    assert_eq!(e.code(), ErrorCode::NewerSchema);
    cluster.psql(
        "fleet",
        "DELETE FROM engram_fleet_schema WHERE version = 99",
    );

    // A row PostgreSQL refuses is left out, said in the status; the rest syncs.
    cluster.psql(
        "fleet",
        "ALTER TABLE backups ADD CONSTRAINT no_refuse CHECK (label IS DISTINCT FROM 'refuse me')",
    );
    let api = start(&dir).await;
    synced(&api).await;
    let refused = api
        .create_backup(CreateBackup {
            label: Some("refuse me".into()),
        })
        .await
        .expect("backup");
    let fine = api
        .create_backup(CreateBackup {
            label: Some("fine".into()),
        })
        .await
        .expect("backup");
    let s = wait_status(&api, "the refusal", |s| {
        s.refused_rows >= 1 && s.queued == 0
    })
    .await;
    assert!(
        s.last_refused
            .as_deref()
            .is_some_and(|r| r.contains("no_refuse")),
        "{s:?}"
    );
    assert_eq!(
        s.state, "up_to_date",
        "a refused row does not stop the sync"
    );
    let host = s.host_id;
    let have = cluster.psql(
        "fleet",
        &format!("SELECT string_agg(local_id::text, ',' ORDER BY local_id) FROM backups WHERE host_id = '{host}' AND local_id IN ({}, {})", refused.id, fine.id),
    );
    assert_eq!(
        have,
        fine.id.to_string(),
        "the refused row is left out, the next one is in"
    );
    assert!(
        Store::open_read_only(dir.join("engram.db"))
            .expect("open")
            .get_backup(refused.id)
            .is_ok(),
        "nothing is lost here"
    );
    api.runtime().expect("rt").stop().await.expect("stop");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else if e.file_name() != "engram.lock" {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_made_on_one_host_is_restored_on_another_bit_exactly() {
    let cluster = pg::Cluster::start(false);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a_dir, b_dir, repo) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("offsite"),
    );
    let a = start(&a_dir).await;
    a.add_replica(AddReplica {
        kind: ReplicaKind::Local,
        location: repo.display().to_string(),
        ..Default::default()
    })
    .await
    .expect("replica");
    a.fleet_join(join(&cluster.url(), "gpu-a"))
        .await
        .expect("join a");
    // A learner's state (an object file: larger than the inline limit).
    let learned: Vec<u8> = (0..400_000u32).map(|i| (i * 31 % 251) as u8).collect();
    support_learner::save_learner(a.runtime().expect("rt"), "ppo", learned.clone(), 7)
        .await
        .expect("learner save");
    let made = a
        .create_backup(CreateBackup {
            label: Some("worth keeping".into()),
        })
        .await
        .expect("backup");
    // Wait until the catalog knows a replica holds it.
    let mut on_replica = false;
    for _ in 0..1200 {
        let page = a
            .fleet_backups(FleetBackupsQuery {
                host: Some("gpu-a".into()),
                limit: Some(1000),
                ..Default::default()
            })
            .await
            .expect("list");
        if page
            .backups
            .iter()
            .any(|b| b.id == made.id && !b.replicas.is_empty())
        {
            on_replica = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(on_replica, "the catalog never learned where the backup is");
    let want: Vec<(String, String)> = {
        let s = Store::open_read_only(a_dir.join("engram.db")).expect("open");
        assert_eq!(
            s.backup_learners(made.id).expect("learners").len(),
            1,
            "the backup holds the learner's state"
        );
        s.backup_states(made.id)
            .expect("states")
            .iter()
            .map(|e| (e.engine.clone(), e.state.checksum().to_hex()))
            .collect()
    };
    a.runtime().expect("rt").stop().await.expect("stop a");

    // Host B: its own data directory, the same replica (its key copied).
    {
        let b = start(&b_dir).await;
        b.runtime().expect("rt").stop().await.expect("stop b");
    }
    let b = Offline::new(&b_dir);
    b.fleet_join(join(&cluster.url(), "laptop-b"))
        .expect("join b");
    // Without the replica here it says what to do.
    let e = b
        .fleet_restore(FleetRestore {
            host: "gpu-a".into(),
            backup: made.id,
            only: None,
        })
        .expect_err("no replica here");
    assert_eq!(e.code(), ErrorCode::InvalidInput);
    assert!(e.to_string().contains("replicas add"), "{e}");
    std::fs::copy(a_dir.join("replica.key"), b_dir.join("replica.key")).expect("key");
    b.add_replica(AddReplica {
        kind: ReplicaKind::Local,
        location: repo.display().to_string(),
        ..Default::default()
    })
    .expect("b's replica");
    let e = b
        .fleet_restore(FleetRestore {
            host: "gpu-a".into(),
            backup: 999_999,
            only: None,
        })
        .expect_err("unknown backup");
    assert_eq!(e.code(), ErrorCode::NotFound);
    let report = b
        .fleet_restore(FleetRestore {
            host: "gpu-a".into(),
            backup: made.id,
            only: None,
        })
        .expect("restore across hosts");
    assert_eq!(
        report.verified.len(),
        want.len() + 1,
        "every state checked by hash, the learner's too"
    );
    assert_eq!(report.learners, vec!["ppo".to_string()]);
    assert!(
        report.restore.pre_restore_backup.is_some(),
        "a pre-restore backup undoes it"
    );
    let store = Store::open_read_only(b_dir.join("engram.db")).expect("open b");
    let imported = store.get_backup(report.imported_as).expect("imported");
    assert_eq!(imported.kind, BackupKind::Imported);
    assert!(
        imported
            .label
            .as_deref()
            .is_some_and(|l| l.contains("gpu-a")),
        "{:?}",
        imported.label
    );
    let names: Vec<&str> = want.iter().map(|(n, _)| n.as_str()).collect();
    let live = store.load_live(&names).expect("live");
    for (engine, sum) in &want {
        let got = live.states.get(engine).expect("live state");
        assert_eq!(
            &got.state.checksum().to_hex(),
            sum,
            "{engine} resumes bit-exactly from host A's state"
        );
    }
    drop(store);
    // The learner attached on B resumes from A's bytes, bit for bit.
    let mut store = Store::open(b_dir.join("engram.db")).expect("open b");
    let (state, bytes, _) = store
        .learner_live_or_fallback("ppo", engram_core::now_ms())
        .expect("the learner's live state on B");
    assert_eq!(bytes, learned, "the learner's state is A's, bit for bit");
    assert_eq!(state.step, Some(7));
}

#[test]
fn the_all_hosts_timeline_counts_exactly_what_each_bucket_holds() {
    // Fifty hosts' worth of rows written straight into the catalog, spread
    // irregularly over ten days; each bucket's count checked against a
    // count of the rows between its bounds, over the hourly summary (wide
    // buckets), the rows (narrow ones) and one host.
    let cluster = pg::Cluster::start(false);
    let tmp = tempfile::tempdir().expect("tempdir");
    let off = Offline::new(tmp.path().join("viewer"));
    off.fleet_join(join(&cluster.url(), "viewer"))
        .expect("join");
    cluster.psql(
        "fleet",
        "INSERT INTO hosts (host_id, name, fingerprint, joined_at, engram_version)
         SELECT 'h' || i, 'host ' || i, 'fp', 0, 'test' FROM generate_series(1, 50) i;
         INSERT INTO backups (host_id, local_id, kind, created_at, pinned, states, names, bytes, replica)
         SELECT 'h' || (1 + j % 50), j,
                (ARRAY['periodic','periodic','periodic','manual','breakthrough','pre-restore'])[1 + (j * 7) % 6],
                1700000000000 + (j::int8 * j::int8 * 7919) % (10 * 86400000::int8),
                j % 97 = 0, '[]', '{}', 0, '[]'
         FROM generate_series(1, 20000) j",
    );
    let count = |from: i64, to_excl: i64, host: Option<&str>, kinds: Option<&str>| -> u64 {
        let mut sql = format!(
            "SELECT count(*) FROM backups WHERE created_at >= {from} AND created_at < {to_excl}"
        );
        if let Some(h) = host {
            sql.push_str(&format!(" AND host_id = '{h}'"));
        }
        if let Some(k) = kinds {
            let list: Vec<String> = k.split(',').map(|k| format!("'{k}'")).collect();
            sql.push_str(&format!(" AND kind IN ({})", list.join(",")));
        }
        cluster.psql("fleet", &sql).parse().expect("count")
    };
    let day = 86_400_000i64;
    let t0 = 1_700_000_000_000i64;
    /// (from, to, buckets, host, kinds)
    type Case<'a> = (
        Option<i64>,
        Option<i64>,
        u32,
        Option<&'a str>,
        Option<&'a str>,
    );
    let cases: [Case; 8] = [
        (Some(t0 + day + 5), Some(t0 + 4 * day + 5), 200, None, None),
        (
            Some(t0 + day + 5),
            Some(t0 + 2 * day + 5),
            200,
            Some("host 3"),
            None,
        ),
        (None, None, 200, None, None),
        (
            Some(t0 + 12_345_678),
            Some(t0 + 3 * day + 999_999),
            37,
            None,
            None,
        ),
        (
            Some(t0 + day + 1),
            Some(t0 + day + 50 * 60_000),
            100,
            None,
            None,
        ),
        (None, None, 120, Some("host 7"), None),
        (
            Some(t0 + 7_777),
            Some(t0 + 9 * day + 7_777),
            200,
            None,
            Some("breakthrough,manual"),
        ),
        (
            Some(t0 + 3 * day),
            Some(t0 + 3 * day + 5 * 3_600_000 - 1),
            3,
            None,
            None,
        ),
    ];
    for (from, to, buckets, host, kinds) in cases {
        let t = off
            .fleet_timeline(engram_core::wire::FleetTimelineQuery {
                host: host.map(str::to_string),
                kinds: kinds.map(str::to_string),
                from_ms: from,
                to_ms: to,
                buckets: Some(buckets),
                marks: Some(100),
            })
            .expect("timeline");
        let host_id = host.map(|h| format!("h{}", h.trim_start_matches("host ")));
        let mut sum = 0;
        for b in &t.buckets {
            let lo = b.start_ms.max(t.from_ms);
            let hi = b.end_ms.min(t.to_ms + 1);
            let got: u64 = b.counts.iter().map(|c| u64::from(c.count)).sum();
            assert_eq!(
                got,
                count(lo, hi, host_id.as_deref(), kinds),
                "bucket {}..{} of {from:?}..{to:?}/{buckets}",
                b.start_ms,
                b.end_ms
            );
            sum += got;
        }
        let all = count(t.from_ms, t.to_ms + 1, host_id.as_deref(), kinds);
        assert_eq!(
            sum, all,
            "the buckets hold the whole range ({from:?}..{to:?}/{buckets})"
        );
        assert_eq!(t.in_range, all);
        assert!(
            t.buckets.len() <= buckets as usize + 1,
            "{} buckets for {buckets}",
            t.buckets.len()
        );
        if t.complete {
            assert_eq!(t.marks.len() as u64, all);
        } else {
            assert!(t.marks.iter().all(|m| m.pinned
                || m.kind == BackupKind::Breakthrough
                || m.kind == BackupKind::Initial));
            assert!(t.marks.len() <= 100);
        }
    }
    let whole = off.fleet_timeline(Default::default()).expect("timeline");
    assert_eq!(whole.total, 20_000, "the viewer made no backup of its own");
    let one = off
        .fleet_timeline(engram_core::wire::FleetTimelineQuery {
            host: Some("host 9".into()),
            ..Default::default()
        })
        .expect("one host");
    assert_eq!(one.total, count(0, i64::MAX, Some("h9"), None));
}

#[test]
fn tls_when_the_url_asks_for_it_and_an_untrusted_certificate_is_refused() {
    // A server that takes TCP logins over TLS only, its certificate signed
    // by a CA of its own.
    let cluster = pg::Cluster::start_tls();
    let tmp = tempfile::tempdir().expect("tempdir");
    let off = Offline::new(tmp.path().join("data"));
    let e = off
        .fleet_join(join(&format!("{}?sslmode=disable", cluster.url()), "plain"))
        .expect_err("the server refuses a login without TLS");
    assert_eq!(e.code(), ErrorCode::FleetRefused, "{e}");
    let e = off
        .fleet_join(join(
            &format!("{}?sslmode=require", cluster.url()),
            "untrusted",
        ))
        .expect_err("a certificate no known CA signed");
    assert_eq!(e.code(), ErrorCode::FleetUnavailable, "{e}");
    assert!(
        e.to_string().contains("sslrootcert"),
        "says what to do: {e}"
    );
    assert!(!off.fleet_status().expect("s").joined);
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        cluster.url(),
        cluster.ca_file().display()
    );
    let s = off
        .fleet_join(join(&url, "over-tls"))
        .expect("TLS with the CA");
    assert!(s.joined);
    assert!(!s.url.unwrap_or_default().contains(pg::PASSWORD));
    let hosts = off.fleet_hosts().expect("reads over TLS too");
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].name, "over-tls");
}
