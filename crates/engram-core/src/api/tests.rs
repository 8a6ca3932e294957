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
        .compare_backups(first.id, crate::wire::CompareRequest { with: first.id })
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
        .compare_backups(first.id, crate::wire::CompareRequest { with: later.id })
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
    // An unknown backup is `not_found`, on either side.
    let e = api
        .compare_backups(first.id, crate::wire::CompareRequest { with: 999_999 })
        .await
        .expect_err("unknown");
    assert_eq!(e.code, ErrorCode::NotFound);
    api.stop().await.expect("stop");
    drop(api);
    // Offline, the same answer from the data directory.
    let offline = Offline::new(dir.path());
    let again = offline
        .compare_backups(first.id, crate::wire::CompareRequest { with: later.id })
        .expect("offline compare");
    assert_eq!(again, c);
}
