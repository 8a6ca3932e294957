//! `engram run`: the engines, headless, until `--for` expires or SIGINT/SIGTERM.

use crate::parse_duration;
use clap::Args;
use engram_core::api::Api;
use engram_core::runtime::{Runtime, RuntimeOptions};
use engram_core::{Error, Result};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Clone)]
pub struct RunArgs {
    /// Seed for a fresh start (a resumed run continues its saved streams).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop after this long (e.g. 30s, 10m); default: until SIGINT/SIGTERM.
    #[arg(long = "for", value_parser = parse_duration)]
    pub run_for: Option<Duration>,
    /// Save the live state this often (default: the saved setting, else 5s).
    #[arg(long, value_parser = parse_duration)]
    pub autosave: Option<Duration>,
    /// Take a periodic backup this often (default: the saved setting, else 1h).
    #[arg(long, value_parser = parse_duration)]
    pub backup_every: Option<Duration>,
    /// Pause between engine ticks (leaves CPU for other work).
    #[arg(long, value_parser = parse_duration, default_value = "10ms")]
    pub pace: Duration,
}

impl RunArgs {
    pub fn options(&self, data_dir: &Path) -> RuntimeOptions {
        let mut o = RuntimeOptions::new(data_dir);
        o.seed = self.seed;
        // Intervals given on the command line win over saved settings for this run.
        if let Some(a) = self.autosave {
            o.autosave = a.max(Duration::from_millis(50));
            o.options_win = true;
        }
        if let Some(b) = self.backup_every {
            o.backup_every = b.max(Duration::from_secs(1));
            o.options_win = true;
        }
        o.pace = self.pace;
        o
    }
}

/// Logs to a daily-rotated file in the data directory and warnings to stderr.
fn init_logging(data_dir: &Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};
    let logs = data_dir.join("logs");
    let file = std::fs::create_dir_all(&logs).ok().and_then(|_| {
        tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("engram")
            .filename_suffix("log")
            .max_log_files(7)
            .build(&logs)
            .ok()
    });
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(
            EnvFilter::try_from_env("ENGRAM_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        );
    match file {
        Some(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let file_layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer)
                .with_filter(EnvFilter::new("info"));
            let _ = tracing_subscriber::registry()
                .with(stderr)
                .with(file_layer)
                .try_init();
            Some(guard)
        }
        None => {
            let _ = tracing_subscriber::registry().with(stderr).try_init();
            None
        }
    }
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("start", "the async runtime", e))
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The start-up `run` and `serve` share: data directory, logs, the engines
/// (reporting what start-up skipped), then `body` until it ends, `--for`
/// expires or SIGINT/SIGTERM arrives; then a final save.
pub fn run_engines<F, Fut>(data_dir: &Path, args: &RunArgs, body: F) -> Result<()>
where
    F: FnOnce(Arc<Api>) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    engram_core::runtime::check_data_dir(data_dir)?;
    std::fs::create_dir_all(data_dir).map_err(|e| Error::io("create", data_dir, e))?;
    let _guard = init_logging(data_dir);
    let rt = tokio_runtime()?;
    let result = rt.block_on(async {
        let api = Arc::new(Api::new(Runtime::start(args.options(data_dir)).await?));
        report_startup(&api);
        let deadline = async {
            match args.run_for {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            r = body(api.clone()) => r,
            _ = deadline => Ok(()),
            _ = shutdown_signal() => Ok(()),
        };
        // The final save waits for the engines' current tick. A tick never
        // takes long with a state that passed its bounds; should one stall
        // anyway, the process still ends (the last durable save is kept).
        let stopped = tokio::select! {
            r = api.stop_within(Api::STOP_LIMIT) => r.map_err(|e| Error::RuntimeStopped(e.to_string())),
            _ = shutdown_signal() => Err(Error::RuntimeStopped(
                "a second signal ended the final save; the last durable save is kept".into(),
            )),
        };
        result.and(stopped)
    });
    // Do not wait for a stalled engine thread or store task at exit.
    rt.shutdown_timeout(Duration::from_secs(5));
    result
}

pub fn run(data_dir: &Path, args: RunArgs) -> Result<()> {
    let tty = std::io::stderr().is_terminal();
    let dir = data_dir.to_path_buf();
    let result = run_engines(data_dir, &args, |api| async move {
        // The loopback API runs here too, for learners of other processes
        // (and the UI, for whoever has the token); headless work goes on
        // without it if it cannot listen.
        match engram_http::start(api.clone(), &dir, Default::default()).await {
            Ok(serving) => {
                tracing::info!(addr = %serving.addr, "the API (and learner API) listens");
                tokio::spawn(serving.serve);
            }
            Err(e) => tracing::warn!(error = %e, "the API could not listen; learners will spool"),
        }
        if !tty {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Ok(rt) = api.runtime() else { return Ok(()) };
            let m = rt.metrics();
            let get = |e: &str, k: &str| m.get(e).and_then(|x| x.get(k)).copied().unwrap_or(0.0);
            let _ = write!(
                std::io::stderr(),
                "\rzap {:.0} plans, {:.0}% recent success | mdp_es {:.0} episodes, gen {:.0}, best {:.3} | {:.0} calls   ",
                get("zap", "plans_generated"),
                100.0 * get("zap", "success_rate_last_100"),
                get("mdp_es", "episodes"),
                get("mdp_es", "generation"),
                get("mdp_es", "best_fitness"),
                get("orchestrator", "cross_system_calls"),
            );
        }
    });
    if tty {
        eprintln!();
    }
    result
}

fn report_startup(api: &Api) {
    let Ok(runtime) = api.runtime() else { return };
    let r = runtime.startup_report();
    if r.first_start {
        tracing::info!("first start: initial backup taken");
    }
    for s in &r.skipped {
        eprintln!(
            "engram: warning [{}]: skipped damaged {} of {}: {}",
            s.code, s.what, s.engine, s.detail
        );
    }
}
