//! Reads on connections of their own: a read never waits for the writer (an
//! autosave, a backup cut) and the writer never waits for a read, and a
//! read sees one commit from its start to its end. The assertions are on
//! ordering (which finished while the other was still held), never on
//! milliseconds; the timings are printed.

use engram_core::api::Api;
use engram_core::runtime::{Runtime, RuntimeOptions};
use engram_core::wire::{ListBackups, SeriesRequest, TimelineQuery};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn options(dir: &std::path::Path) -> RuntimeOptions {
    let mut o = RuntimeOptions::new(dir);
    o.pace = Duration::from_millis(1);
    o.metrics_every = Duration::from_millis(20);
    o.autosave = Duration::from_millis(200);
    o.options_win = true;
    o.engines.zap.simulations = 8;
    o
}

/// Every page of the backup list, 7 at a time: how many backups it saw.
async fn every_page(api: &Api) -> usize {
    let mut seen = 0;
    let mut after = None;
    loop {
        let page = api
            .list_backups(ListBackups {
                limit: Some(7),
                after,
                ..Default::default()
            })
            .await
            .expect("page");
        seen += page.items.len();
        match page.next {
            Some(c) => after = Some(c),
            None => return seen,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_the_writer_never_wait_for_each_other() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let api = std::sync::Arc::new(Api::new(
        Runtime::start(options(tmp.path())).await.expect("start"),
    ));
    let rt = api.runtime().expect("rt");
    for i in 0..30 {
        rt.backup_now(Some(format!("b{i}"))).await.expect("backup");
    }
    rt.save_now().await.expect("save");
    let total = api.status().await.expect("status").backups as usize;

    // 1. The writer is held (as by a long autosave or backup cut): every
    //    read still answers, while it is held.
    let (release, held) = mpsc::channel::<()>();
    let a = api.clone();
    let writer = tokio::spawn(async move {
        a.runtime()?
            .with_store(move |_| {
                let _ = held.recv_timeout(Duration::from_secs(30));
                Ok(())
            })
            .await?;
        Ok::<_, engram_core::wire::ApiError>(())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    let reads = async {
        let seen = every_page(&api).await;
        api.timeline(TimelineQuery::default())
            .await
            .expect("timeline");
        api.metric_series(SeriesRequest {
            engine: "zap".into(),
            key: "success_rate".into(),
            ..Default::default()
        })
        .await
        .expect("series");
        api.storage().await.expect("storage");
        api.get_backup(1).await.expect("backup 1");
        seen
    };
    let seen = tokio::time::timeout(Duration::from_secs(20), reads)
        .await
        .expect("the reads waited for the writer");
    eprintln!(
        "every page of {seen} backups, the timeline, a series and the storage report: {:?} while the writer was held",
        t.elapsed()
    );
    assert_eq!(seen, total);
    assert!(!writer.is_finished(), "the writer was held throughout");
    release.send(()).expect("release");
    writer.await.expect("join").expect("writer");

    // 2. A read is held open (one read transaction, as a long read is):
    //    backups and saves commit meanwhile, and the read keeps seeing the
    //    commit it started on.
    let (go_on, wait) = mpsc::channel::<()>();
    let (started_tx, started) = tokio::sync::oneshot::channel::<usize>();
    let a = api.clone();
    let reader = tokio::spawn(async move {
        let counts = a
            .runtime()?
            .read(move |s| {
                let before = s.count_backups()? as usize;
                let _ = started_tx.send(before);
                let _ = wait.recv_timeout(Duration::from_secs(30));
                Ok((before, s.count_backups()? as usize))
            })
            .await?;
        Ok::<_, engram_core::wire::ApiError>(counts)
    });
    let before = started.await.expect("the read started");
    let t = Instant::now();
    let writes = async {
        for i in 0..5 {
            rt.backup_now(Some(format!("during the read {i}")))
                .await
                .expect("backup");
            rt.save_now().await.expect("save");
        }
    };
    tokio::time::timeout(Duration::from_secs(20), writes)
        .await
        .expect("the writer waited for the read");
    eprintln!(
        "5 backups and 5 saves committed in {:?} while a read was held open",
        t.elapsed()
    );
    assert!(!reader.is_finished(), "the read was held throughout");
    go_on.send(()).expect("go on");
    let (first, last) = reader.await.expect("join").expect("read");
    assert_eq!(first, before);
    assert_eq!(last, before, "one read sees one commit throughout");
    let during = api
        .list_backups(ListBackups {
            text: Some("during the read".into()),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(during.total, 5, "the next read sees what was acknowledged");
    api.stop().await.expect("stop");
}
