//! The engine thread: ticks the engines at the configured pace, answers
//! capture requests with a clone (the only moment the engines wait), applies
//! restores, and reports breakthroughs with the cut taken at that instant.

use super::RuntimeOptions;
use crate::engines::{EngineSet, SystemClock};
use crate::error::Result;
use crate::store::EngineState;
use crate::wire::{Breakthrough, Metrics};
use crate::wire::{Event, Settings};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot};

pub(crate) enum EngineCmd {
    Capture(oneshot::Sender<EngineSet>),
    /// States to run from now, each with the metrics it was saved with.
    Restore(Vec<EngineState>, oneshot::Sender<Result<()>>),
    Stop(oneshot::Sender<EngineSet>),
    Configure(Settings),
    /// Tests: the next tick of this engine panics.
    #[cfg(test)]
    PanicNext(&'static str),
    /// Tests: the next tick takes this long.
    #[cfg(test)]
    StallNext(Duration),
}

/// A breakthrough and the engines as they were when it happened.
pub(crate) struct BreakthroughCut {
    pub breakthroughs: Vec<Breakthrough>,
    pub engines: EngineSet,
    /// When the cut was taken (Unix ms).
    pub at_ms: i64,
}

/// Handle to the engine thread.
#[derive(Clone)]
pub(crate) struct EngineHandle {
    tx: Sender<EngineCmd>,
    /// Durations of captures (the engines' stall), for the benchmark.
    pub stalls: Arc<Mutex<Vec<CaptureStall>>>,
}

impl EngineHandle {
    pub fn send(&self, cmd: EngineCmd) -> bool {
        self.tx.send(cmd).is_ok()
    }
}

/// Where the engine thread reports what happens.
pub(crate) struct Outputs {
    pub events: broadcast::Sender<Event>,
    /// The newest metrics of every engine.
    pub metrics: Arc<Mutex<BTreeMap<String, Metrics>>>,
    pub breakthroughs: mpsc::UnboundedSender<BreakthroughCut>,
    /// An engine failed (panicked) and is paused: (engine, why).
    pub failures: mpsc::UnboundedSender<(String, String)>,
    /// Engines paused by a failure, with why (cleared by a restore).
    pub paused: Arc<Mutex<BTreeMap<String, String>>>,
}

pub(crate) fn spawn(mut engines: EngineSet, opts: RuntimeOptions, out: Outputs) -> EngineHandle {
    // Long by design: the engine thread's loop (tick, answer captures and
    // restores, report breakthroughs and stalls); its state is the loop's.
    let Outputs {
        events,
        metrics,
        breakthroughs,
        failures,
        paused,
    } = out;
    let (tx, rx): (Sender<EngineCmd>, Receiver<EngineCmd>) = channel();
    let stalls = Arc::new(Mutex::new(Vec::new()));
    let handle = EngineHandle {
        tx,
        stalls: stalls.clone(),
    };
    // When the running tick started (ms since `epoch`, + 1); 0: between ticks.
    let epoch = Instant::now();
    let busy_since = Arc::new(AtomicU64::new(0));
    watch_for_stalls(
        busy_since.clone(),
        epoch,
        opts.stall_warning,
        events.clone(),
    );
    let spawned = std::thread::Builder::new()
        .name("engram-engines".into())
        .spawn(move || {
            let mut clock = SystemClock::default();
            let mut settings = Settings::from_options(&opts);
            // None: publish after the very first tick, so listeners see the
            // engines running at once rather than after `metrics_every`.
            let mut last_metrics: Option<Instant> = None;
            #[cfg(test)]
            let mut stall_next: Option<Duration> = None;
            loop {
                // Commands first; wait for one at most `pace` (that is the pacing).
                let cmd = if opts.pace.is_zero() {
                    rx.try_recv().map_err(|e| match e {
                        std::sync::mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                        std::sync::mpsc::TryRecvError::Disconnected => {
                            RecvTimeoutError::Disconnected
                        }
                    })
                } else {
                    rx.recv_timeout(opts.pace)
                };
                match cmd {
                    Ok(EngineCmd::Capture(reply)) => {
                        let t = StallTimer::start();
                        let copy = engines.clone();
                        record_stall(&stalls, t.stop());
                        let _ = reply.send(copy);
                        continue;
                    }
                    Ok(EngineCmd::Restore(states, reply)) => {
                        // All or nothing: restore into a copy, then swap.
                        let mut next = engines.clone();
                        let result = states.iter().try_for_each(|s| {
                            next.restore_engine(&s.engine, &s.state)?;
                            next.take_evaluation_times(&s.engine, &s.metrics);
                            Ok(())
                        });
                        if result.is_ok() {
                            // A backup carries the thresholds of its day; today's apply.
                            settings.apply_to_engines(&mut next);
                            engines = next;
                            publish_paused(&engines, &paused);
                            publish_metrics(&engines, &events, &metrics);
                        }
                        let _ = reply.send(result);
                        continue;
                    }
                    Ok(EngineCmd::Configure(new)) => {
                        new.apply_to_engines(&mut engines);
                        settings = new;
                        continue;
                    }
                    #[cfg(test)]
                    Ok(EngineCmd::StallNext(d)) => {
                        stall_next = Some(d);
                        continue;
                    }
                    #[cfg(test)]
                    Ok(EngineCmd::PanicNext(engine)) => {
                        engines.panic_next = Some(engine);
                        continue;
                    }
                    Ok(EngineCmd::Stop(reply)) => {
                        let _ = reply.send(engines);
                        return;
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                    Err(RecvTimeoutError::Timeout) => {}
                }
                busy_since.store(epoch.elapsed().as_millis() as u64 + 1, Ordering::SeqCst);
                #[cfg(test)]
                if let Some(d) = stall_next.take() {
                    std::thread::sleep(d);
                }
                let fired = engines.tick(&mut clock);
                engines.stamp_evaluations(crate::now_ms);
                busy_since.store(0, Ordering::SeqCst);
                let failed = engines.take_failures();
                if !failed.is_empty() {
                    // Its last metrics first: what is shown of a paused
                    // engine is where it stopped, not up to a period before.
                    last_metrics = Some(Instant::now());
                    publish_metrics(&engines, &events, &metrics);
                    publish_paused(&engines, &paused);
                }
                for (engine, why) in failed {
                    // The scheduler sets its state aside, then announces it.
                    tracing::error!(engine = %engine, "engine failed and is paused: {why}");
                    let _ = failures.send((engine, why));
                }
                if !fired.is_empty() {
                    let t = StallTimer::start();
                    let cut = engines.clone();
                    record_stall(&stalls, t.stop());
                    let _ = breakthroughs.send(BreakthroughCut {
                        breakthroughs: fired,
                        engines: cut,
                        at_ms: crate::now_ms(),
                    });
                }
                if last_metrics.is_none_or(|t| t.elapsed() >= opts.metrics_every) {
                    last_metrics = Some(Instant::now());
                    publish_metrics(&engines, &events, &metrics);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("could not start the engine thread: {e}");
    }
    handle
}

/// A watchdog beside the engine thread: a tick that has run longer than
/// `limit` is reported once (log and error event). It cannot stop the tick
/// — nothing can stop a thread — but says what is wrong while saves of the
/// last captured state, the API and shutdown's final save go on. Ends when
/// the engine thread does (it holds the other reference to `busy_since`).
fn watch_for_stalls(
    busy_since: Arc<AtomicU64>,
    epoch: Instant,
    limit: Duration,
    events: broadcast::Sender<Event>,
) {
    let check = (limit / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let spawned = std::thread::Builder::new()
        .name("engram-watchdog".into())
        .spawn(move || {
            let mut reported = 0;
            while Arc::strong_count(&busy_since) > 1 {
                std::thread::sleep(check);
                let started = busy_since.load(Ordering::SeqCst);
                if started == 0 || started == reported {
                    continue;
                }
                let ran = Duration::from_millis(
                    (epoch.elapsed().as_millis() as u64 + 1).saturating_sub(started),
                );
                if ran >= limit {
                    reported = started;
                    let message = format!(
                        "the engines' current tick has run for {:.1} s (limit {:.1} s): they are stalled; \
                         saves keep the last captured state",
                        ran.as_secs_f64(),
                        limit.as_secs_f64()
                    );
                    tracing::error!("{message}");
                    let _ = events.send(Event::Error {
                        code: crate::ErrorCode::Internal,
                        message,
                    });
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("could not start the stall watchdog: {e}");
    }
}

/// How long the engines waited for one capture of their state.
#[derive(Clone, Copy, Debug)]
pub struct CaptureStall {
    /// From start to end, as the engines felt it (including any time the
    /// thread was not running: another thread had the CPU).
    pub wall: Duration,
    /// The engine thread's own CPU time in it: what the copy itself cost,
    /// whatever else the machine was doing (on Linux; elsewhere the wall
    /// time).
    pub on_cpu: Duration,
}

/// Times one capture in wall and thread CPU time.
struct StallTimer {
    wall: Instant,
    cpu: Option<Duration>,
}

impl StallTimer {
    fn start() -> StallTimer {
        StallTimer {
            cpu: thread_cpu_time(),
            wall: Instant::now(),
        }
    }

    fn stop(self) -> CaptureStall {
        let wall = self.wall.elapsed();
        let on_cpu = match (self.cpu, thread_cpu_time()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => wall,
        };
        CaptureStall { wall, on_cpu }
    }
}

/// The calling thread's CPU time so far (Linux; `None` elsewhere).
fn thread_cpu_time() -> Option<Duration> {
    #[cfg(target_os = "linux")]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Some(Duration::new(
            u64::try_from(t.tv_sec).ok()?,
            u32::try_from(t.tv_nsec).ok()?,
        ))
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

fn record_stall(stalls: &Mutex<Vec<CaptureStall>>, d: CaptureStall) {
    if let Ok(mut s) = stalls.lock() {
        if s.len() >= 10_000 {
            s.drain(..5_000);
        }
        s.push(d);
    }
}

fn publish_paused(engines: &EngineSet, shared: &Mutex<BTreeMap<String, String>>) {
    if let Ok(mut s) = shared.lock() {
        *s = engines.failed().clone();
    }
}

fn publish_metrics(
    engines: &EngineSet,
    events: &broadcast::Sender<Event>,
    shared: &Mutex<BTreeMap<String, Metrics>>,
) {
    let m = engines.metrics();
    if let Ok(mut s) = shared.lock() {
        *s = m.clone();
    }
    let _ = events.send(Event::Metrics {
        at_ms: crate::now_ms(),
        engines: m,
    });
}
