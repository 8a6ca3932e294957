//! The API over a real runtime and over the same data directory offline.

use super::*;
use crate::error::ErrorCode;
use crate::wire::ListBackupsQuery;
use std::collections::BTreeSet;

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_status_shape_online_and_offline_and_locked_stays_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(RuntimeOptions::new(dir.path())).await;
    let offline = Offline::new(dir.path());

    let online = api.status().await.expect("status");
    assert!(online.running && online.startup.is_some());
    // Offline reads work while the engines run, and see them running.
    let seen = offline.status().expect("offline status");
    assert!(seen.running, "the lock holder is seen");
    assert_eq!(seen.pid, online.pid);
    // Offline changes are refused with `locked`, not rewritten into another code.
    let e = offline
        .create_backup(CreateBackup::default())
        .expect_err("second writer");
    assert_eq!(e.code(), ErrorCode::Locked);
    assert!(e.to_string().contains("stop it first"), "{e}");

    api.stop().await.expect("stop");
    drop(api);
    let stopped = offline.status().expect("offline status");
    assert!(!stopped.running && stopped.startup.is_none());
    let a = serde_json::to_value(&online).expect("json");
    let b = serde_json::to_value(&stopped).expect("json");
    assert_eq!(keys(&a), keys(&b), "one status shape");
    assert_eq!(keys(&a["engines"]), keys(&b["engines"]));
    assert_eq!(keys(&a["engines"]["zap"]), keys(&b["engines"]["zap"]));

    // Now the directory is free: offline changes go through the same types.
    let made = offline
        .create_backup(CreateBackup {
            label: Some("offline".into()),
        })
        .expect("create");
    assert_eq!(made.kind, crate::BackupKind::Manual);
    let listed = offline
        .list_backups(ListBackups {
            limit: Some(1),
            ..Default::default()
        })
        .expect("list")
        .items;
    assert_eq!(listed, vec![made.clone()]);
    let r = offline
        .restore_backup(made.id, RestoreRequest::default())
        .expect("restore");
    assert!(r.pre_restore_backup.is_some());
    assert_eq!(
        offline.delete_backup(1).expect_err("initial").code(),
        ErrorCode::Protected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_could_not_start_reports_why_on_every_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Api::start(RuntimeOptions::new(dir.path())).await;
    assert!(first.runtime().is_ok());
    let second = Api::start(RuntimeOptions::new(dir.path())).await;
    let e = second.status().await.expect_err("second instance");
    assert_eq!(e.code, ErrorCode::Locked);
    assert_eq!(
        second
            .create_backup(CreateBackup::default())
            .await
            .expect_err("locked")
            .code,
        ErrorCode::Locked
    );
    assert!(second.events().is_err());
    first.stop().await.expect("stop");
}

#[test]
fn list_queries_parse_from_the_http_form() {
    let q = ListBackupsQuery {
        kind: Some("manual,pre-restore".into()),
        after_created_at_ms: Some(5),
        after_id: Some(2),
        ..Default::default()
    };
    let req = ListBackups::try_from(q).expect("parse");
    assert_eq!(
        req.kinds,
        vec![crate::BackupKind::Manual, crate::BackupKind::PreRestore]
    );
    assert_eq!(
        req.after,
        Some(crate::wire::Cursor {
            created_at_ms: 5,
            id: 2
        })
    );
    let bad = ListBackupsQuery {
        kind: Some("hourly".into()),
        ..Default::default()
    };
    assert_eq!(
        ListBackups::try_from(bad).expect_err("kind").code(),
        ErrorCode::InvalidInput
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_backups_compare_by_metrics_and_state_online_and_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = RuntimeOptions::new(dir.path());
    opts.pace = std::time::Duration::from_millis(1);
    let api = Api::start(opts).await;
    let first = api
        .create_backup(CreateBackup::default())
        .await
        .expect("first");
    // Compared with itself: every state unchanged, every change zero.
    let same = api
        .compare_backups(
            first.id,
            crate::wire::CompareRequest {
                with: first.id,
                live: false,
            },
        )
        .await
        .expect("compare");
    assert_eq!(same.engines.len(), 3, "{same:?}");
    for e in &same.engines {
        assert_eq!((e.in_from, e.in_to, e.changed), (true, true, Some(false)));
        assert!(!e.metrics.is_empty());
        assert!(e.metrics.iter().all(|m| m.change == Some(0.0)), "{e:?}");
    }
    // The engines learn on: a later backup differs from the first.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let later = api
        .create_backup(CreateBackup::default())
        .await
        .expect("later");
    let c = api
        .compare_backups(
            first.id,
            crate::wire::CompareRequest {
                with: later.id,
                live: false,
            },
        )
        .await
        .expect("compare");
    assert_eq!((c.from, c.to), (first.id, later.id));
    let zap = c.engines.iter().find(|e| e.name == "zap").expect("zap");
    assert_eq!(zap.changed, Some(true), "{zap:?}");
    let plans = zap
        .metrics
        .iter()
        .find(|m| m.key == "plans_generated")
        .expect("plans");
    let (from, to) = (plans.from.expect("from"), plans.to.expect("to"));
    assert_eq!(from, first.metrics["zap"]["plans_generated"]);
    assert_eq!(to, later.metrics["zap"]["plans_generated"]);
    assert!(to > from, "{plans:?}");
    assert_eq!(plans.change, Some(to - from));
    // Inside: read from the states themselves, agreeing with the metrics.
    let inside = zap.inside.as_ref().expect("zap changed inside");
    assert_eq!(inside.kind, "zap");
    let plans_inside = inside
        .figures
        .iter()
        .find(|f| f.key == "plans_generated")
        .expect("plans inside");
    assert_eq!((plans_inside.from, plans_inside.to), (Some(from), Some(to)));
    let mdp = c
        .engines
        .iter()
        .find(|e| e.name == "mdp_es")
        .expect("mdp_es");
    let q = mdp.inside.as_ref().expect("mdp_es inside");
    assert_eq!(q.kind, "q_learning");
    assert!(q.counted[0].n > 0, "the Q-table learned: {q:?}");
    assert!(same.engines.iter().all(|e| e.inside.is_none()), "{same:?}");
    // An unknown backup is `not_found`, on either side.
    let e = api
        .compare_backups(
            first.id,
            crate::wire::CompareRequest {
                with: 999_999,
                live: false,
            },
        )
        .await
        .expect_err("unknown");
    assert_eq!(e.code, ErrorCode::NotFound);
    api.stop().await.expect("stop");
    drop(api);
    // Offline, the same answer from the data directory.
    let offline = Offline::new(dir.path());
    let again = offline
        .compare_backups(
            first.id,
            crate::wire::CompareRequest {
                with: later.id,
                live: false,
            },
        )
        .expect("offline compare");
    assert_eq!(again, c);
    // A backup against the live state as last saved: its metrics are the
    // saved ones, and what changed inside is read from the live states.
    let live = offline
        .compare_backups(
            first.id,
            crate::wire::CompareRequest {
                with: 0,
                live: true,
            },
        )
        .expect("live");
    assert!(live.to_live);
    let saved = offline.status().expect("status");
    let zap = live.engines.iter().find(|e| e.name == "zap").expect("zap");
    let plans = zap
        .metrics
        .iter()
        .find(|m| m.key == "plans_generated")
        .expect("plans");
    assert_eq!(
        plans.to,
        Some(saved.engines["zap"].metrics["plans_generated"])
    );
    assert_eq!(zap.changed, Some(true));
    assert_eq!(zap.inside.as_ref().map(|i| i.kind.as_str()), Some("zap"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fall_with_no_stored_values_is_found_by_drilling_and_bisecting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = RuntimeOptions::new(dir.path());
    opts.pace = std::time::Duration::from_millis(5);
    let api = Api::start(opts).await;
    let rt = api.runtime().expect("running");
    // A learner whose states carry no metric; its drill reads the number
    // each state holds. The metric falls below 0.5 at the seventh backup.
    let values = [
        0.9, 0.9, 0.85, 0.8, 0.7, 0.6, 0.3, 0.2, 0.2, 0.1, 0.1, 0.05, 0.05,
    ];
    let mut ids = Vec::new();
    for (step, v) in values.iter().enumerate() {
        let text = v.to_string();
        rt.with_store(move |s| {
            let now = crate::now_ms();
            s.attach_learner("q", None, now)?;
            let object = s.objects().put(text.as_bytes())?;
            let state = crate::store::NewLearnerState {
                generation: None,
                object: object.checksum,
                size: object.size,
                step: Some(step as u64),
                metrics: Default::default(),
            };
            s.save_learner_live("q", &state, now, None)
        })
        .await
        .expect("save");
        ids.push(
            api.create_backup(CreateBackup::default())
                .await
                .expect("backup")
                .id,
        );
    }
    let find = || crate::wire::FindFall {
        engine: "q".into(),
        key: "success".into(),
        below: 0.5,
    };
    // Without drills: no value anywhere, no fall found, said so.
    let plain = api.find_fall(find()).await.expect("plain");
    assert_eq!(
        (plain.fell_at.as_ref(), plain.checked, plain.without_value),
        (None, 13, 13)
    );
    // A drill command is needed; without one the search says so.
    let e = api.bisect_fall(find()).await.expect_err("no drill command");
    assert!(e.message.contains("no drill command"), "{e:?}");
    api.set_learner_drill(
        "q".into(),
        crate::wire::SetLearnerDrill {
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                r#"x=$(cat); echo "{\"success\": $x}""#.into(),
            ],
            timeout_ms: Some(10_000),
            cwd: None,
        },
    )
    .await
    .expect("drill command");
    let found = api.bisect_fall(find()).await.expect("bisected");
    let (good, fell) = (found.last_good.expect("good"), found.fell_at.expect("fell"));
    assert_eq!((good.id, good.value), (ids[5], Some(0.6)));
    assert_eq!((fell.id, fell.value), (ids[6], Some(0.3)));
    assert!(
        !found.drilled.is_empty() && found.drilled.len() <= 6,
        "bisection, not a drill of each: {:?}",
        found.drilled
    );
    // The drills are kept with their backups.
    let kept = api.backup_drills(ids[6]).await.expect("kept");
    assert_eq!(kept.results.len(), 1);
    assert_eq!(kept.results[0].metrics["success"], 0.3);
    api.stop().await.expect("stop");
}
