//! The runtime, in-process: start-up and resume, backups, restore, the
//! schedule under paused tokio time, one writer per directory, failed saves.

use engram_core::runtime::{Runtime, RuntimeOptions};
use engram_core::wire::Event;
use engram_core::{BackupKind, BackupQuery, RetentionPolicy};
use std::time::Duration;

fn options(dir: &std::path::Path) -> RuntimeOptions {
    let mut o = RuntimeOptions::new(dir);
    o.pace = Duration::from_millis(1);
    o.metrics_every = Duration::from_millis(20);
    o.engines.zap.simulations = 8;
    o
}

fn plans(rt: &Runtime) -> f64 {
    rt.metrics()["zap"]["plans_generated"]
}

/// A full disk, simulated: the database capped at the pages it uses now
/// (`true`), or the cap lifted again (`false`).
async fn full_disk(rt: &Runtime, full: bool) {
    rt.with_store(move |s| {
        let pages = if full { s.page_count()? } else { 1 << 30 };
        s.set_max_pages(pages)
    })
    .await
    .expect("page cap");
}

async fn wait_for(rt: &Runtime, what: &str, mut ok: impl FnMut(&Runtime) -> bool) {
    for _ in 0..500 {
        if ok(rt) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_takes_initial_backup_and_restart_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::start(options(dir.path())).await.expect("start");
    assert!(rt.startup_report().first_start);
    wait_for(&rt, "plans", |rt| plans(rt) >= 20.0).await;
    let list = rt
        .with_store(|s| s.list_backups(&BackupQuery::default()))
        .await
        .expect("list");
    let initial = list
        .items
        .iter()
        .filter(|b| b.kind == BackupKind::Initial)
        .count();
    assert_eq!(
        initial,
        1,
        "{:?}",
        list.items.iter().map(|b| b.kind).collect::<Vec<_>>()
    );
    rt.shutdown().await.expect("shutdown");

    // The final save on shutdown holds at least what the metrics showed.
    let store = engram_core::Store::open_read_only(dir.path().join("engram.db")).expect("open");
    let saved = store.live_metrics().expect("live")["zap"].0["plans_generated"];
    assert!(saved >= 20.0, "{saved}");
    drop(store);

    let rt = Runtime::start(options(dir.path())).await.expect("restart");
    assert!(!rt.startup_report().first_start);
    assert_eq!(rt.startup_report().restored_from["zap"], "live");
    assert!(
        plans(&rt) >= saved,
        "resumed from {} < saved {saved}",
        plans(&rt)
    );
    let initial = rt
        .with_store(|s| {
            s.list_backups(&BackupQuery {
                kinds: vec![BackupKind::Initial],
                ..Default::default()
            })
        })
        .await
        .expect("list")
        .total;
    assert_eq!(initial, 1, "no second initial backup");
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_runtime_on_the_same_directory_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::start(options(dir.path())).await.expect("start");
    let err = Runtime::start(options(dir.path()))
        .await
        .err()
        .expect("second must fail");
    assert_eq!(err.code(), "locked");
    assert!(
        err.to_string().contains(&std::process::id().to_string()),
        "{err}"
    );
    rt.shutdown().await.expect("shutdown");
    let again = Runtime::start(options(dir.path()))
        .await
        .expect("free after shutdown");
    again.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_takes_a_pre_restore_backup_and_continues_from_the_backup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::start(options(dir.path())).await.expect("start");
    let mut events = rt.subscribe();
    wait_for(&rt, "plans", |rt| plans(rt) >= 10.0).await;
    let manual = rt
        .backup_now(Some("checkpoint".into()))
        .await
        .expect("backup");
    assert_eq!(manual.kind, BackupKind::Manual);
    assert_eq!(manual.label.as_deref(), Some("checkpoint"));
    let at_backup = manual
        .engines
        .iter()
        .find(|e| e.name == "zap")
        .expect("zap")
        .metrics["plans_generated"];
    wait_for(&rt, "more plans", |rt| plans(rt) >= at_backup + 30.0).await;

    let report = rt.restore(manual.id, None).await.expect("restore");
    assert_eq!(report.engines, ["mdp_es", "orchestrator", "zap"]);
    let now = plans(&rt);
    assert!(
        now < at_backup + 30.0,
        "metrics went back: {now} vs {at_backup}"
    );
    let pre = rt
        .with_store(move |s| s.get_backup(report.pre_restore_backup))
        .await
        .expect("pre");
    assert_eq!(pre.kind, BackupKind::PreRestore);
    let pre_plans = pre
        .engines
        .iter()
        .find(|e| e.name == "zap")
        .expect("zap")
        .metrics["plans_generated"];
    assert!(
        pre_plans >= at_backup + 30.0,
        "the pre-restore backup holds the state before the restore"
    );

    // Restoring one engine leaves the others alone.
    let one = rt
        .restore(manual.id, Some("zap".into()))
        .await
        .expect("restore zap");
    assert_eq!(one.engines, ["zap"]);
    // Unknown ids and engines change nothing.
    // (Count pre-restore backups only: breakthrough backups may arrive any time.)
    let pre_restores = || {
        rt.with_store(|s| {
            Ok(s.list_backups(&BackupQuery {
                kinds: vec![BackupKind::PreRestore],
                ..Default::default()
            })?
            .total)
        })
    };
    let before = pre_restores().await.expect("count");
    assert_eq!(
        rt.restore(999_999, None).await.expect_err("unknown").code(),
        "not_found"
    );
    assert_eq!(
        rt.restore(manual.id, Some("nope".into()))
            .await
            .expect_err("engine")
            .code(),
        "not_found"
    );
    assert_eq!(pre_restores().await.expect("count"), before);

    let mut seen_restored = false;
    while let Ok(ev) = events.try_recv() {
        if let Event::Restored { from_backup, .. } = ev {
            seen_restored |= from_backup == manual.id;
        }
    }
    assert!(seen_restored, "a Restored event was broadcast");
    rt.shutdown().await.expect("shutdown");
}

/// A learner's live state at `step` (stored as the runtime's own saves are).
async fn learner_saves(rt: &Runtime, name: &'static str, step: u64) {
    rt.with_store(move |s| {
        let now = engram_core::now_ms();
        s.attach_learner(name, None, now)?;
        let object = s.objects().put(format!("{name} at {step}").as_bytes())?;
        let state = engram_core::store::NewLearnerState {
            generation: None,
            object: object.checksum,
            size: object.size,
            step: Some(step),
            metrics: Default::default(),
        };
        s.save_learner_live(name, &state, now, None)?;
        Ok(())
    })
    .await
    .expect("learner save");
}

/// A learner's live step and generation.
async fn learner_now(rt: &Runtime, name: &'static str) -> (Option<u64>, i64) {
    let l = rt
        .with_store(move |s| s.learner(name))
        .await
        .expect("learner");
    (l.live.and_then(|l| l.step), l.generation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_commits_engines_learners_and_history_together_or_not_at_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::start(options(dir.path())).await.expect("start");
    wait_for(&rt, "plans", |rt| plans(rt) >= 10.0).await;
    learner_saves(&rt, "l", 1).await;
    let backup = rt.backup_now(None).await.expect("backup");
    let at_backup = backup
        .engines
        .iter()
        .find(|e| e.name == "zap")
        .expect("zap")
        .metrics["plans_generated"];
    learner_saves(&rt, "l", 2).await;
    wait_for(&rt, "more plans", |rt| plans(rt) >= at_backup + 30.0).await;
    let branch = || rt.with_store(|s| s.current_branch(engram_core::now_ms()));
    let (branch_before, learner_before) =
        (branch().await.expect("branch"), learner_now(&rt, "l").await);

    // The last write of the restore's transaction fails (a trigger, from a
    // second connection, refuses the new line of history): nothing of the
    // restore becomes live, and the engines run on from where they were.
    let db = rusqlite::Connection::open(dir.path().join("engram.db")).expect("second connection");
    db.execute_batch(
        "CREATE TRIGGER refuse_restore BEFORE INSERT ON history_branches
         WHEN NEW.reason = 'restore' BEGIN SELECT RAISE(ABORT, 'injected: no restore'); END;",
    )
    .expect("trigger");
    let err = rt
        .restore(backup.id, None)
        .await
        .expect_err("the commit fails");
    assert!(err.to_string().contains("injected"), "{err}");
    assert_eq!(
        learner_now(&rt, "l").await,
        learner_before,
        "the learner is not restored"
    );
    assert_eq!(
        branch().await.expect("branch"),
        branch_before,
        "no new line of history"
    );
    let now = plans(&rt);
    assert!(
        now >= at_backup + 30.0,
        "the engines were put back: {now} vs {at_backup}"
    );
    rt.save_now().await.expect("save");
    let live = rt.with_store(|s| s.live_metrics()).await.expect("live");
    assert!(
        live["zap"].0["plans_generated"] >= at_backup + 30.0,
        "the engines' live state is theirs, not the backup's: {live:?}"
    );

    // Without the fault the same restore takes engines and learner back
    // together, and the learner starts its next generation.
    db.execute_batch("DROP TRIGGER refuse_restore")
        .expect("drop trigger");
    let report = rt.restore(backup.id, None).await.expect("restore");
    assert_eq!(report.engines, ["mdp_es", "orchestrator", "zap", "l"]);
    assert_eq!(learner_now(&rt, "l").await, (Some(1), learner_before.1 + 1));
    assert!(branch().await.expect("branch") > branch_before);
    let now = plans(&rt);
    assert!(
        now < at_backup + 30.0,
        "the engines went back: {now} vs {at_backup}"
    );
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_and_the_engines_keep_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::start(options(dir.path())).await.expect("start");
    // Let the state grow (replay buffers fill), so a new backup needs new pages.
    wait_for(&rt, "plans", |rt| plans(rt) >= 60.0).await;
    full_disk(&rt, true).await;
    let manual_count = || {
        rt.with_store(|s| {
            Ok(s.list_backups(&BackupQuery {
                kinds: vec![BackupKind::Manual],
                ..Default::default()
            })?
            .total)
        })
    };
    let backups_before = manual_count().await.expect("count");
    let err = rt.backup_now(None).await.expect_err("disk full");
    assert_eq!(err.code(), "disk_full", "{err}");
    let p = plans(&rt);
    wait_for(&rt, "engines still running", |rt| plans(rt) > p + 5.0).await;
    assert_eq!(manual_count().await.expect("count"), backups_before);
    // Lift the cap: the next save works.
    full_disk(&rt, false).await;
    rt.save_now().await.expect("save after space returns");
    rt.backup_now(None)
        .await
        .expect("backup after space returns");
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test(start_paused = true)]
async fn an_hour_of_schedule_runs_in_milliseconds_with_paused_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = options(dir.path());
    o.autosave = Duration::from_secs(5);
    o.backup_every = Duration::from_secs(600);
    o.pace = Duration::from_millis(2);
    o.retention = RetentionPolicy::last_periodic(3);
    let rt = Runtime::start(o).await.expect("start");
    let mut events = rt.subscribe();
    let start = tokio::time::Instant::now();
    let wall = std::time::Instant::now();
    let (mut saves, mut periodic, mut deleted) = (0, 0, 0);
    while periodic < 6 {
        match events.recv().await {
            Ok(Event::Saved { .. }) => saves += 1,
            Ok(Event::BackupCreated { backup }) if backup.kind == BackupKind::Periodic => {
                periodic += 1
            }
            Ok(Event::BackupsDeleted { ids }) => deleted += ids.len(),
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let virtual_elapsed = start.elapsed();
    // Commands run after the scheduler's current work: retention is done now.
    rt.save_now().await.expect("save");
    while let Ok(ev) = events.try_recv() {
        if let Event::BackupsDeleted { ids } = ev {
            deleted += ids.len();
        }
    }
    eprintln!(
        "6 periodic backups after {virtual_elapsed:?} of schedule, {saves} autosaves, {deleted} deleted, in {:?} of wall time",
        wall.elapsed()
    );
    assert!(
        virtual_elapsed >= Duration::from_secs(3600)
            && virtual_elapsed < Duration::from_secs(3600 + 60)
    );
    assert!(
        (700..=725).contains(&saves),
        "{saves} autosaves in an hour of 5 s intervals"
    );
    let kinds = rt
        .with_store(|s| s.list_backups(&BackupQuery::default()))
        .await
        .expect("list")
        .items
        .iter()
        .map(|b| b.kind)
        .collect::<Vec<_>>();
    let periodic_left = kinds.iter().filter(|k| **k == BackupKind::Periodic).count();
    // Retention ran after each backup, but the hour was virtual: all six
    // were taken within the same real minute, and no backup is deleted in
    // the minute it was taken. The three beyond the policy are kept for
    // that reason only (the week-long soak shows retention deleting).
    assert_eq!(periodic_left, 6, "{kinds:?}");
    assert_eq!(deleted, 0);
    assert!(kinds.contains(&BackupKind::Initial));
    let policy = engram_core::wire::RetentionPolicy::last_periodic(3);
    let why = rt
        .with_store(move |s| s.explain_retention(&policy))
        .await
        .expect("explain");
    let only_grace = why
        .iter()
        .filter(|d| d.reasons == [engram_core::store::KeepReason::JustTaken])
        .count();
    assert_eq!(only_grace, 3, "{why:?}");
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_saved_applied_at_once_and_survive_a_restart() {
    use engram_core::wire::Settings;
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::start(options(dir.path())).await.expect("start");
    let mut s = rt.settings().await.expect("settings");
    assert_eq!(s.autosave_secs, 5.0);
    let bad = Settings {
        autosave_secs: 0.0,
        ..s.clone()
    };
    assert_eq!(
        rt.update_settings(bad).await.expect_err("invalid").code(),
        "invalid_input"
    );
    // Fast autosave and a low orchestrator threshold take effect without a restart.
    s.autosave_secs = 0.1;
    s.orchestrator_every = 5;
    let mut events = rt.subscribe();
    rt.update_settings(s.clone()).await.expect("update");
    let mut saves = 0;
    let mut orchestrator_breakthrough = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while (saves < 3 || !orchestrator_breakthrough) && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Ok(Event::Saved { .. })) => saves += 1,
            Ok(Ok(Event::Breakthrough { breakthrough, .. }))
                if breakthrough.engine == "orchestrator" =>
            {
                orchestrator_breakthrough = true
            }
            _ => {}
        }
    }
    assert!(saves >= 3, "autosave every 0.1 s took effect");
    assert!(
        orchestrator_breakthrough,
        "the lower orchestrator threshold took effect"
    );
    rt.shutdown().await.expect("shutdown");
    let rt = Runtime::start(options(dir.path())).await.expect("restart");
    assert_eq!(
        rt.settings().await.expect("settings"),
        s,
        "saved settings survive a restart"
    );
    assert_eq!(
        rt.metrics()["orchestrator"]["next_breakthrough_at"] as u64 % 5,
        0
    );
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backup_is_also_the_live_state_so_a_crash_never_resumes_older() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = options(dir.path());
    // No autosave during the test: only backups can move the live state.
    o.autosave = Duration::from_secs(3600);
    o.options_win = true;
    o.engines.orchestrator.breakthrough_every = 50;
    let rt = Runtime::start(o.clone()).await.expect("start");
    let mut events = rt.subscribe();
    let (bt, bt_backup) = loop {
        match tokio::time::timeout(Duration::from_secs(20), events.recv()).await {
            Ok(Ok(Event::Breakthrough {
                breakthrough,
                backup_id: Some(id),
            })) if breakthrough.engine == "orchestrator" => break (breakthrough, id),
            Ok(_) => {}
            Err(_) => panic!("no orchestrator breakthrough"),
        }
    };
    assert_eq!(bt.rule, "cross_system_calls >= 50");
    // What a process killed now would resume from: the live rows on disk.
    let live = |dir: &std::path::Path| {
        let store = engram_core::Store::open_read_only(dir.join("engram.db")).expect("open");
        store.live_metrics().expect("live")
    };
    let after_bt = live(dir.path());
    let calls = after_bt["orchestrator"].0["cross_system_calls"];
    assert!(
        calls >= bt.value,
        "live state ({calls} calls) is not older than the breakthrough backup #{bt_backup} ({})",
        bt.value
    );
    let manual = rt.backup_now(None).await.expect("backup");
    let after_manual = live(dir.path());
    for e in &manual.engines {
        assert_eq!(
            after_manual[&e.name].0, e.metrics,
            "{}: live = the manual backup's cut",
            e.name
        );
    }
    // A restart from that live state does not record the milestone again.
    drop(rt);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rt = Runtime::start(o).await.expect("restart");
    assert!(rt.metrics()["orchestrator"]["next_breakthrough_at"] >= 500.0);
    let mut events = rt.subscribe();
    let until = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(Ok(ev)) = tokio::time::timeout_at(until, events.recv()).await {
        if let Event::Breakthrough { breakthrough, .. } = ev {
            assert_ne!(breakthrough.rule, bt.rule, "the same milestone fired twice");
        }
    }
    rt.shutdown().await.expect("shutdown");
}

async fn saves(rt: &Runtime, n: usize) {
    let mut events = rt.subscribe();
    let mut seen = 0;
    while seen < n {
        if let Ok(Ok(Event::Saved { .. })) =
            tokio::time::timeout(Duration::from_secs(10), events.recv()).await
        {
            seen += 1;
        }
    }
}

async fn plans_series(rt: &Runtime) -> engram_core::wire::MetricSeries {
    rt.with_store(|s| s.metric_series("zap", "plans_generated", 0, i64::MAX, 10_000))
        .await
        .expect("series")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_history_survives_restarts_and_a_restore_starts_a_branch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = options(dir.path());
    o.autosave = Duration::from_millis(50);
    o.options_win = true;
    let rt = Runtime::start(o.clone()).await.expect("start");
    saves(&rt, 3).await;
    let backup = rt.backup_now(None).await.expect("backup");
    rt.shutdown().await.expect("shutdown");
    let rt = Runtime::start(o).await.expect("restart");
    let before = plans_series(&rt).await;
    assert!(
        before.stored >= 4,
        "saves before the restart are kept: {}",
        before.stored
    );
    assert_eq!(before.branches.len(), 1);
    saves(&rt, 2).await;
    rt.restore(backup.id, None).await.expect("restore");
    saves(&rt, 2).await;
    let after = plans_series(&rt).await;
    assert_eq!(after.branches.len(), 2, "{:?}", after.branches);
    let branch = &after.branches[1];
    assert_eq!(
        (branch.from_backup, branch.reason.as_str()),
        (Some(backup.id), "restore")
    );
    assert!(after.points.iter().any(|p| p.branch == branch.id));
    assert!(
        after.points.iter().any(|p| p.branch != branch.id),
        "the old line is kept"
    );
    // The restored line starts from the backup's value, not the old line's last.
    let first_new = after
        .points
        .iter()
        .find(|p| p.branch == branch.id)
        .expect("new");
    let last_old = after
        .points
        .iter()
        .rev()
        .find(|p| p.branch != branch.id)
        .expect("old");
    assert!(
        first_new.value < last_old.value,
        "{first_new:?} vs {last_old:?}"
    );
    // An import does not enter the history (counted under the store's lock,
    // so no autosave can interleave).
    let (before_import, after_import) = rt
        .with_store(|s| {
            let file = engram_core::snapshot::export_backup(
                s,
                1,
                engram_core::wire::SnapshotFormat::Binary,
            )?;
            let n = s.history_rows()?;
            s.import_snapshot(&engram_core::snapshot::parse(&file)?, engram_core::now_ms())?;
            Ok((n, s.history_rows()?))
        })
        .await
        .expect("import");
    assert_eq!(before_import, after_import);
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_milestone_crossed_again_after_a_restore_is_labelled_as_a_new_branch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = options(dir.path());
    o.options_win = true;
    o.engines.orchestrator.breakthrough_every = 50;
    let rt = Runtime::start(o).await.expect("start");
    async fn next_orchestrator_milestone(
        events: &mut tokio::sync::broadcast::Receiver<Event>,
    ) -> (String, i64) {
        loop {
            match tokio::time::timeout(Duration::from_secs(20), events.recv()).await {
                Ok(Ok(Event::Breakthrough {
                    breakthrough,
                    backup_id: Some(id),
                })) if breakthrough.engine == "orchestrator" => return (breakthrough.rule, id),
                Ok(_) => {}
                Err(_) => panic!("no orchestrator milestone"),
            }
        }
    }
    let mut events = rt.subscribe();
    let (rule, first) = next_orchestrator_milestone(&mut events).await;
    let first = rt
        .with_store(move |s| s.get_backup(first))
        .await
        .expect("get");
    assert_eq!(first.label, None, "the first time is not labelled");
    // Back to the initial backup (0 calls): the same threshold lies ahead again.
    let mut events = rt.subscribe();
    rt.restore(1, None).await.expect("restore");
    let (again, second) = next_orchestrator_milestone(&mut events).await;
    assert_eq!(again, rule);
    let second = rt
        .with_store(move |s| s.get_backup(second))
        .await
        .expect("get");
    let label = second.label.expect("labelled");
    assert!(
        label.contains("new line of history") && label.contains("backup 1"),
        "{label}"
    );
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breakthrough_whose_backup_fails_is_kept_and_committed_when_space_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = options(dir.path());
    o.options_win = true;
    o.autosave = Duration::from_millis(100);
    o.engines.orchestrator.breakthrough_every = 1500;
    let rt = Runtime::start(o).await.expect("start");
    wait_for(&rt, "plans", |rt| plans(rt) >= 60.0).await;
    // A full disk: the database capped at its size.
    full_disk(&rt, true).await;
    async fn next(events: &mut tokio::sync::broadcast::Receiver<Event>) -> (String, Option<i64>) {
        loop {
            match tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
                Ok(Ok(Event::Breakthrough {
                    breakthrough,
                    backup_id,
                })) if breakthrough.engine == "orchestrator" => {
                    return (breakthrough.rule, backup_id);
                }
                Ok(_) => {}
                Err(_) => panic!("no orchestrator breakthrough event"),
            }
        }
    }
    let mut events = rt.subscribe();
    let (rule, id) = next(&mut events).await;
    assert_eq!(id, None, "announced as pending while the disk is full");
    // Space returns: the next autosave commits it, and says so.
    let mut events = rt.subscribe();
    full_disk(&rt, false).await;
    let (again, id) = next(&mut events).await;
    assert_eq!(again, rule);
    let id = id.expect("committed");
    let b = rt
        .with_store(move |s| s.get_backup(id))
        .await
        .expect("backup");
    assert_eq!(b.kind, BackupKind::Breakthrough);
    assert_eq!(b.breakthrough.expect("details").rule, rule);
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_live_state_falls_back_to_the_newest_good_backup_and_is_kept() {
    // Regression (issue 11, item 7): it used to start that engine from scratch
    // and overwrite the live state.
    falls_back_at_launch(
        engram_core::codec::encode(1, &"not a planner").expect("encode"),
        "state body",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_state_outside_its_engines_bounds_falls_back_instead_of_hanging_every_launch() {
    // Regression (issue 11, item 1): a decodable state whose settings made
    // a tick last forever was resumed on every launch.
    let mut z = engram_core::engines::zap::Zap::new(Default::default(), 1);
    z.config.tasks.wall_density = 1.0;
    z.config.simulations = u32::MAX;
    falls_back_at_launch(z.capture().expect("capture"), "wall_density").await;
}

/// Writes `bad` as ZAP's live state after a backup, restarts, and checks
/// that ZAP resumed from the backup, the bad state was reported (naming
/// `detail`) and kept in quarantine/.
async fn falls_back_at_launch(bad: engram_core::EncodedState, detail: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::start(options(dir.path())).await.expect("start");
    wait_for(&rt, "plans", |rt| plans(rt) >= 30.0).await;
    let manual = rt.backup_now(None).await.expect("backup");
    let backed_up = manual
        .engines
        .iter()
        .find(|e| e.name == "zap")
        .expect("zap")
        .metrics["plans_generated"];
    rt.shutdown().await.expect("shutdown");
    {
        // A state with a valid checksum that ZAP must not run.
        let mut store = engram_core::Store::open(dir.path().join("engram.db")).expect("open");
        let bad = engram_core::EngineState {
            engine: "zap".into(),
            state: bad,
            metrics: Default::default(),
        };
        store
            .save_live(&[bad], engram_core::now_ms())
            .expect("save");
    }
    let rt = Runtime::start(options(dir.path())).await.expect("restart");
    let report = rt.startup_report().clone();
    assert!(
        report.restored_from["zap"].starts_with("backup "),
        "{report:?}"
    );
    let note = report
        .skipped
        .iter()
        .find(|s| s.engine == "zap")
        .expect("reported");
    assert_eq!(note.what, "live state");
    assert!(note.detail.contains("kept as"), "{}", note.detail);
    assert!(note.detail.contains(detail), "{}", note.detail);
    assert!(
        plans(&rt) >= backed_up,
        "resumed from the backup ({backed_up} plans), not from scratch: {}",
        plans(&rt)
    );
    let kept: Vec<_> = std::fs::read_dir(dir.path().join("quarantine"))
        .expect("quarantine")
        .collect();
    assert_eq!(kept.len(), 1);
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_a_stored_state_outside_its_bounds_is_a_clear_refusal_that_changes_nothing() {
    // Regression (issue 11, items 1 and 12): a restore of such a state was
    // accepted (then hung) or answered 500.
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::start(options(dir.path())).await.expect("start");
    let mut zap = engram_core::engines::zap::Zap::new(Default::default(), 1);
    zap.config.tasks.max_size = 1_000_000;
    let id = engram_core::Store::open(dir.path().join("engram.db"))
        .expect("open")
        .create_backup(&engram_core::NewBackup {
            kind: engram_core::BackupKind::Manual,
            created_at_ms: engram_core::now_ms(),
            label: Some("hostile".into()),
            breakthrough: None,
            states: &[engram_core::EngineState {
                engine: "zap".into(),
                state: zap.capture().expect("capture"),
                metrics: Default::default(),
            }],
        })
        .expect("backup");
    let count = || async { rt.with_store(|s| s.count_backups()).await.expect("count") };
    let before = count().await;
    let err = rt.restore(id, None).await.expect_err("refused");
    assert_eq!(err.code(), "corrupt_state", "{err}");
    assert_eq!(err.code().http_status(), 422);
    assert!(err.to_string().contains("config.tasks.max_size"), "{err}");
    assert_eq!(
        before,
        count().await,
        "a refused restore took no pre-restore backup"
    );
    let p = plans(&rt);
    wait_for(&rt, "plans", |rt| plans(rt) > p).await;
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_lock_file_does_not_let_a_second_writer_in() {
    // Regression (issue 11, item 5): a second `engram run` started and both wrote.
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::start(options(dir.path())).await.expect("start");
    let lock = dir.path().join("engram.lock");
    std::fs::remove_file(&lock).expect("delete the lock file");
    let err = Runtime::start(options(dir.path()))
        .await
        .err()
        .expect("a second writer must be refused");
    assert_eq!(err.code(), "locked", "{err}");
    // The writer goes on, and writes its lock file again for the next one.
    rt.save_now().await.expect("saves go on");
    assert_eq!(
        std::fs::read_to_string(&lock).expect("lock file again"),
        std::process::id().to_string()
    );
    rt.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_or_database_removed_under_the_writer_stops_every_acknowledgement() {
    // Regression (issue 11, item 11): saves and backups acknowledged after
    // the WAL was removed were gone after a kill -9, with no error.
    for victim in ["engram.db-wal", "engram.db"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = Runtime::start(options(dir.path())).await.expect("start");
        rt.save_now().await.expect("save before");
        let path = dir.path().join(victim);
        if victim == "engram.db" {
            // Replaced: a copy renamed over it (a new file at the same path).
            let copy = dir.path().join("copy");
            std::fs::copy(&path, &copy).expect("copy");
            std::fs::rename(&copy, &path).expect("replace");
        } else {
            std::fs::remove_file(&path).expect("remove the WAL");
        }
        let mut events = rt.subscribe();
        let err = rt.save_now().await.expect_err("not acknowledged");
        assert_eq!(err.code(), "storage_changed", "{victim}: {err}");
        assert!(err.to_string().contains(victim), "{err}");
        let err = rt.backup_now(None).await.expect_err("not acknowledged");
        assert_eq!(err.code(), "storage_changed", "{victim}: {err}");
        // No Saved or BackupCreated event went out.
        while let Ok(ev) = events.try_recv() {
            assert!(
                !matches!(
                    ev,
                    engram_core::wire::Event::Saved { .. }
                        | engram_core::wire::Event::BackupCreated { .. }
                ),
                "{victim}: a save was announced"
            );
        }
        // The engines keep their state in memory and run on.
        let p = plans(&rt);
        wait_for(&rt, "plans", |rt| plans(rt) > p).await;
        let _ = rt.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_backup_that_fails_is_kept_and_committed_when_space_returns() {
    // Issue 11: breakthrough *and manual* backups are never lost to a
    // transient failure; the user is told it failed now and is kept.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = options(dir.path());
    o.options_win = true;
    o.autosave = Duration::from_millis(100);
    let rt = Runtime::start(o).await.expect("start");
    // Let the states grow first: a cap on the database's pages stops only
    // growth, and a small backup (7 KB compressed at 25 plans) once fitted
    // in pages the database had free, so the "full" disk took it (CI).
    wait_for(&rt, "plans", |rt| plans(rt) >= 60.0).await;
    full_disk(&rt, true).await;
    let err = rt
        .backup_now(Some("before the weekend".into()))
        .await
        .expect_err("the disk is full");
    assert_eq!(err.code(), "disk_full", "{err}");
    assert!(err.to_string().contains("kept and retried"), "{err}");
    let mut events = rt.subscribe();
    full_disk(&rt, false).await;
    let created = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Ok(Event::BackupCreated { backup }) if backup.kind == BackupKind::Manual => {
                    break backup;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("committed once space returned");
    assert_eq!(created.label.as_deref(), Some("before the weekend"));
    rt.shutdown().await.expect("shutdown");
}
