//! The supervisor with real child processes (`sh`), killed for real.

use super::*;
use std::os::unix::process::CommandExt;
use std::time::Duration;

fn sh(script: &str, dir: &Path) -> LearnerCommand {
    LearnerCommand {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        workdir: dir.display().to_string(),
        autostart: true,
    }
}

fn supervisor(dir: &Path) -> Supervisor {
    let (events, _) = broadcast::channel(64);
    let s = Supervisor::new(dir, events).with_grace(Duration::from_millis(500));
    s.activate(Vec::new());
    s
}

/// Polls until `f` holds (10 s at most).
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

fn status(s: &Supervisor, name: &str) -> ProcessStatus {
    s.status(name).expect("supervised")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_is_restarted_with_its_environment_and_output_kept() {
    let dir = tempfile::tempdir().expect("test");
    let s = supervisor(dir.path());
    s.supervise(
        "q",
        sh(
            "echo \"learner=$ENGRAM_LEARNER dir=$ENGRAM_DATA_DIR\"; echo oops >&2; exec sleep 300",
            dir.path(),
        ),
    );
    until("running", || status(&s, "q").pid.is_some()).await;
    let first = status(&s, "q").pid.expect("test");
    until("output", || status(&s, "q").output.len() >= 3).await;
    let out = status(&s, "q").output;
    assert!(out[0].starts_with("[engram] started"), "{out:?}");
    assert!(
        out.contains(&format!("learner=q dir={}", dir.path().display())),
        "{out:?}"
    );
    assert!(out.contains(&"oops".to_string()), "{out:?}");
    let pid_file = std::fs::read_to_string(dir.path().join("learners/q.pid")).expect("test");
    assert!(pid_file.starts_with(&format!("{first} ")), "{pid_file}");

    // kill -9: it comes back (it never saved, so after the first backoff).
    kill_group(first, true);
    until("restarted", || {
        status(&s, "q").pid.is_some_and(|p| p != first)
    })
    .await;
    let st = status(&s, "q");
    assert_eq!(st.phase, ProcessPhase::Running);
    assert_eq!(st.restarts, 1);
    assert_eq!(st.last_exit.as_deref(), Some("killed by signal 9"));
    let log = std::fs::read_to_string(dir.path().join("learners/q.log")).expect("test");
    assert_eq!(log.matches("[engram] started").count(), 2, "{log}");
    assert!(log.contains("[engram] killed by signal 9"), "{log}");
    s.shutdown().await;
    assert!(!alive(st.pid.expect("test")), "shutdown stops the process");
    assert!(!dir.path().join("learners/q.pid").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_exits_zero_is_finished_and_only_a_start_runs_it_again() {
    let dir = tempfile::tempdir().expect("test");
    let s = supervisor(dir.path());
    s.supervise("done", sh("echo run >> runs.txt", dir.path()));
    until("finished", || {
        status(&s, "done").phase == ProcessPhase::Finished
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let runs = || std::fs::read_to_string(dir.path().join("runs.txt")).unwrap_or_default();
    assert_eq!(
        runs().lines().count(),
        1,
        "a finished learner is not restarted"
    );
    assert_eq!(status(&s, "done").restarts, 0);
    assert_eq!(
        status(&s, "done").last_exit.as_deref(),
        Some("exit status 0")
    );
    assert!(s.start("done"));
    until("ran again", || runs().lines().count() == 2).await;
    until("finished again", || {
        status(&s, "done").phase == ProcessPhase::Finished
    })
    .await;
    assert!(!s.start("unknown"), "only supervised learners start");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_terms_the_whole_group_and_kills_what_ignores_it() {
    let dir = tempfile::tempdir().expect("test");
    let s = supervisor(dir.path());
    // The shell ignores SIGTERM and has a child of its own.
    s.supervise(
        "stubborn",
        sh(
            "trap '' TERM; sleep 300 & echo $! > child.pid; wait; wait",
            dir.path(),
        ),
    );
    let child_pid = dir.path().join("child.pid");
    until("child", || {
        std::fs::read_to_string(&child_pid).is_ok_and(|s| s.trim().parse::<u32>().is_ok())
    })
    .await;
    let child: u32 = std::fs::read_to_string(&child_pid)
        .expect("test")
        .trim()
        .parse()
        .expect("test");
    let leader = status(&s, "stubborn").pid.expect("test");
    let t = Instant::now();
    s.stop("stubborn").await;
    // stop() answers once the process is gone: the grace period, then SIGKILL.
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    let st = status(&s, "stubborn");
    assert_eq!(st.phase, ProcessPhase::Stopped);
    assert_eq!(st.last_exit.as_deref(), Some("stopped by Engram"));
    until("group gone", || !alive(leader) && !alive(child)).await;
    // Stopped stays stopped.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(status(&s, "stubborn").phase, ProcessPhase::Stopped);
    assert_eq!(status(&s, "stubborn").restarts, 0);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dying_without_progress_backs_off_doubling_and_a_save_resets_it() {
    let dir = tempfile::tempdir().expect("test");
    let s = supervisor(dir.path());
    s.supervise("crash", sh("exit 3", dir.path()));
    let mut waits = Vec::new();
    let mut seen = 0;
    until("four restarts", || {
        let st = status(&s, "crash");
        if st.phase == ProcessPhase::Restarting && st.restarts > seen {
            seen = st.restarts;
            waits.push(st.next_start_at_ms.expect("test") - st.last_exit_at_ms.expect("test"));
        }
        seen >= 4
    })
    .await;
    assert_eq!(
        status(&s, "crash").last_exit.as_deref(),
        Some("exit status 3")
    );
    // 250, 500, 1000, 2000 ms (± the clock's millisecond).
    for (i, w) in waits.iter().enumerate() {
        let want = 250i64 << i;
        assert!(
            (want - 2..=want + 2).contains(w),
            "wait {i}: {w} ms, want {want}"
        );
    }
    s.shutdown().await;

    // A process that saved before it died comes back after the first wait.
    let s = supervisor(dir.path());
    s.supervise("saver", sh("sleep 0.3; exit 1", dir.path()));
    let mut last = Vec::new();
    until("three restarts", || {
        s.note_save("saver");
        let st = status(&s, "saver");
        if st.phase == ProcessPhase::Restarting && st.restarts as usize > last.len() {
            last.push(st.next_start_at_ms.expect("test") - st.last_exit_at_ms.expect("test"));
        }
        last.len() >= 3
    })
    .await;
    assert!(last.iter().all(|w| *w <= 252), "{last:?}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_cannot_start_is_reported_and_retried() {
    let dir = tempfile::tempdir().expect("test");
    let s = supervisor(dir.path());
    let mut cmd = sh("true", dir.path());
    cmd.argv = vec!["/nonexistent/learner".into()];
    s.supervise("missing", cmd);
    until("reported", || {
        status(&s, "missing")
            .last_exit
            .is_some_and(|e| e.starts_with("could not start \"/nonexistent/learner\""))
    })
    .await;
    assert_eq!(status(&s, "missing").phase, ProcessPhase::Restarting);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_and_resume_starts_only_what_was_wanted_running() {
    let dir = tempfile::tempdir().expect("test");
    let s = supervisor(dir.path());
    s.supervise("a", sh("exec sleep 300", dir.path()));
    let mut off = sh("exec sleep 300", dir.path());
    off.autostart = false;
    s.supervise("b", off);
    until("a runs", || status(&s, "a").pid.is_some()).await;
    let before = status(&s, "a").pid.expect("test");
    let paused = s
        .pause(&["a".to_string(), "b".to_string(), "c".to_string()])
        .await;
    assert_eq!(paused, vec!["a".to_string()]);
    assert!(!alive(before), "paused means the process has exited");
    assert_eq!(status(&s, "a").phase, ProcessPhase::Stopped);
    s.resume(&paused).await;
    until("a again", || {
        status(&s, "a").pid.is_some_and(|p| p != before)
    })
    .await;
    assert_eq!(status(&s, "b").phase, ProcessPhase::Stopped);
    assert_eq!(status(&s, "a").restarts, 0, "a pause is not a crash");
    s.shutdown().await;
}

#[test]
fn orphans_named_by_a_pid_file_are_stopped_and_other_processes_are_not() {
    let dir = tempfile::tempdir().expect("test");
    let learners = dir.path().join(DIR);
    std::fs::create_dir_all(&learners).expect("test");
    let mut orphan = std::process::Command::new("sleep")
        .arg("300")
        .process_group(0)
        .spawn()
        .expect("test");
    write_pid_file(&learners.join("orphan.pid"), orphan.id());
    // Our own pid with another start time: a pid reused by an unrelated process.
    std::fs::write(
        learners.join("reused.pid"),
        format!("{} 1\n", std::process::id()),
    )
    .expect("test");
    std::fs::write(learners.join("garbage.pid"), "not a pid").expect("test");
    assert_eq!(stop_orphans(dir.path()), 1);
    let status = orphan.wait().expect("test");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9));
    assert!(alive(std::process::id()));
    assert_eq!(
        std::fs::read_dir(&learners).expect("test").count(),
        0,
        "pid files go"
    );
}
