//! A learner's drill command: a child process given one state's bytes on
//! its standard input, expected to print one JSON object of metrics (name
//! → number) as the last line of its standard output and exit 0 within its
//! time limit. At the limit its whole process group is killed — also when
//! it exited but left a process behind that holds its output open.
//!
//! The child starts in a process group of its own, in the command's
//! working directory, with `ENGRAM_LEARNER` and `ENGRAM_DRILL=1` set. It
//! inherits the calling thread's priority (drills run on the lowest).

use crate::error::Result;
use crate::store::{DrillCommand, StateBytes};
use crate::wire::Metrics;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// What is kept of the child's standard output and error.
const KEEP: u64 = 1 << 20;

/// Runs the drill command on `state`; its metrics, or a sentence saying
/// what went wrong.
pub fn run(
    learner: &str,
    cmd: &DrillCommand,
    state: StateBytes,
) -> std::result::Result<Metrics, String> {
    let program = cmd.argv.first().ok_or("the drill command has no program")?;
    let mut child = Command::new(program)
        .args(&cmd.argv[1..])
        .current_dir(&cmd.workdir)
        .env("ENGRAM_LEARNER", learner)
        .env("ENGRAM_DRILL", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("the drill command {program:?} could not start: {e}"))?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("the drill command's pipes could not be opened".into());
    };
    let feeder = in_thread(move || -> Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0u64;
        while at < state.len() {
            let n = (state.len() - at).min(buf.len() as u64) as usize;
            state.read_at(at, &mut buf[..n])?;
            // A command that stops reading early is its own business.
            if stdin.write_all(&buf[..n]).is_err() {
                return Ok(());
            }
            at += n as u64;
        }
        Ok(())
    });
    let read_all = |mut r: Box<dyn Read + Send>| {
        in_thread(move || {
            let mut out = Vec::new();
            let _ = (&mut r).take(KEEP).read_to_end(&mut out);
            // Drain the rest so the child never blocks on a full pipe.
            let _ = std::io::copy(&mut r, &mut std::io::sink());
            out
        })
    };
    let (out, err) = (read_all(Box::new(stdout)), read_all(Box::new(stderr)));
    let limit = Duration::from_millis(cmd.timeout_ms);
    let t0 = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if t0.elapsed() >= limit => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("waiting for the drill command failed: {e}")),
        }
    };
    // The whole group: a shell's children go too.
    let group = rustix::process::Pid::from_child(&child);
    let kill_group = || {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    };
    if status.is_none() {
        kill_group();
        let _ = child.wait();
    }
    // A process the command left behind can hold its pipes open after it
    // exited: waited for until the time limit, then its group is killed.
    let deadline = t0 + limit;
    let fed = collect(&feeder, deadline, &kill_group).unwrap_or(Ok(()));
    let out = collect(&out, deadline, &kill_group).unwrap_or_default();
    let err = collect(&err, deadline, &kill_group).unwrap_or_default();
    let said = tail(&err);
    let Some(status) = status else {
        return Err(format!(
            "the drill command ran past its time limit of {:.1} s and was stopped{said}",
            limit.as_secs_f64()
        ));
    };
    fed.map_err(|e| format!("the state could not be read: {e}"))?;
    if !status.success() {
        return Err(format!("the drill command failed ({status}){said}"));
    }
    parse(&out).map_err(|why| format!("the drill command {why}{said}"))
}

/// Runs `f` on a thread of its own; its result comes on the receiver.
fn in_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Receiver<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

/// What `rx` brings by `deadline`; past it, `kill` (the command's process
/// group, whose members hold the pipe) and a second more.
fn collect<T>(rx: &Receiver<T>, deadline: Instant, kill: &dyn Fn()) -> Option<T> {
    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(v) => Some(v),
        Err(RecvTimeoutError::Disconnected) => None,
        Err(RecvTimeoutError::Timeout) => {
            kill();
            rx.recv_timeout(Duration::from_secs(1)).ok()
        }
    }
}

/// The last line of standard error, to quote.
fn tail(err: &[u8]) -> String {
    let text = String::from_utf8_lossy(err);
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.chars().take(300).collect::<String>()))
        .unwrap_or_default()
}

/// The metrics on the last non-empty line of `out`.
fn parse(out: &[u8]) -> std::result::Result<Metrics, String> {
    let text = String::from_utf8_lossy(out);
    let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) else {
        return Err("printed nothing (it must print one JSON object of metrics)".into());
    };
    let v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(line).map_err(|_| {
            format!(
                "did not end with a JSON object of metrics: {:?}",
                short(line)
            )
        })?;
    v.into_iter()
        .map(|(k, v)| match v.as_f64() {
            Some(x) if !k.is_empty() => Ok((k, x)),
            _ => Err(format!("printed {k:?}: {v}, which is not a number")),
        })
        .collect()
}

fn short(s: &str) -> String {
    s.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout_ms: u64) -> DrillCommand {
        DrillCommand {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            timeout_ms,
            workdir: "/".into(),
        }
    }

    #[test]
    fn a_drill_command_reads_the_state_and_prints_its_metrics() {
        let state = StateBytes::Memory(vec![7u8; 3_000_000]);
        let m = run(
            "l",
            &sh(
                r#"n=$(wc -c); echo noise; echo "{\"bytes\": $n, \"ok\": 1}""#,
                20_000,
            ),
            state,
        )
        .expect("ran");
        assert_eq!(m["bytes"], 3_000_000.0);
        assert_eq!(m["ok"], 1.0);
    }

    #[test]
    fn a_drill_command_is_stopped_at_its_limit_and_failures_are_said() {
        let t0 = Instant::now();
        let e = run(
            "l",
            &sh("sleep 30 & sleep 30", 300),
            StateBytes::Memory(vec![]),
        )
        .expect_err("limit");
        assert!(e.contains("time limit of 0.3 s"), "{e}");
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "stopped at its limit, not at the sleep's end"
        );
        // Exited with its metrics printed, a process it left behind still
        // holding its output: taken at the limit, that process stopped.
        let t0 = Instant::now();
        let m = run(
            "l",
            &sh("sleep 30 & echo '{\"ok\": 1}'", 500),
            StateBytes::Memory(vec![]),
        )
        .expect("its metrics");
        assert_eq!(m["ok"], 1.0);
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "not held until the left-behind process ends"
        );
        let e = run(
            "l",
            &sh("echo boom >&2; exit 3", 5000),
            StateBytes::Memory(vec![1]),
        )
        .expect_err("exit");
        assert!(e.contains("exit status: 3") && e.ends_with("boom"), "{e}");
        let e = run(
            "l",
            &sh("echo '{\"a\": \"x\"}'", 5000),
            StateBytes::Memory(vec![]),
        )
        .expect_err("not a number");
        assert!(e.contains("not a number"), "{e}");
        let e = run("l", &sh("true", 5000), StateBytes::Memory(vec![])).expect_err("nothing");
        assert!(e.contains("printed nothing"), "{e}");
        let missing = DrillCommand {
            argv: vec!["/no/such/program".into()],
            timeout_ms: 1000,
            workdir: "/".into(),
        };
        let e = run("l", &missing, StateBytes::Memory(vec![])).expect_err("missing");
        assert!(e.contains("could not start"), "{e}");
    }
}
