//! `engram`: the headless command line. Thin: parse arguments, call the
//! core's API, print. Every error is one line on stderr (`engram: error
//! [code]: message`) and a non-zero exit, and leaves stored data unchanged.

mod backups_cmd;
mod door;
mod env_cmd;
mod fleet_cmd;
mod learners_cmd;
mod replicas_cmd;
mod run_cmd;
mod serve_cmd;

use clap::{Parser, Subcommand};
use engram_core::Error;
use engram_core::runtime::default_data_dir;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "engram", version, about = "Keeps what learning engines learn.")]
struct Cli {
    /// Data directory (default: $ENGRAM_DATA_DIR, else ~/.local/share/engram).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engines headless, saving and backing up as they go.
    Run(run_cmd::RunArgs),
    /// Run the engines and serve the UI and its JSON API on 127.0.0.1.
    Serve(serve_cmd::ServeArgs),
    /// Show the saved state of every engine.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// List, create, restore, export, import, verify, pin and delete backups.
    Backups {
        #[command(subcommand)]
        command: backups_cmd::BackupsCommand,
    },
    /// List learners of other processes; supervise them (add, start, stop, logs).
    Learners {
        #[command(subcommand)]
        command: learners_cmd::LearnersCommand,
    },
    /// Offsite replicas (restic repositories): add, status, verify, prune, recover.
    Replicas {
        #[command(subcommand)]
        command: replicas_cmd::ReplicasCommand,
    },
    /// The fleet catalog on PostgreSQL: join, status, hosts, every host's backups, restore across hosts.
    Fleet {
        #[command(subcommand)]
        command: fleet_cmd::FleetCommand,
    },
    /// Inspect the environments the engines learn on (Gymnasium 1.4 conformance).
    Env {
        #[command(subcommand)]
        command: env_cmd::EnvCommand,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let data_dir = cli.data_dir.unwrap_or_else(default_data_dir);
    let result = match cli.command {
        Command::Run(args) => run_cmd::run(&data_dir, args),
        Command::Serve(args) => serve_cmd::serve(&data_dir, args),
        Command::Status { json } => backups_cmd::status(&door::Door::new(&data_dir), json),
        Command::Backups { command } => backups_cmd::run(&door::Door::new(&data_dir), command),
        Command::Learners { command } => {
            learners_cmd::run(&door::Door::new(&data_dir), &data_dir, command)
        }
        Command::Replicas { command } => {
            replicas_cmd::run(&door::Door::new(&data_dir), &data_dir, command)
        }
        Command::Fleet { command } => fleet_cmd::run(&door::Door::new(&data_dir), command),
        Command::Env { command } => env_cmd::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`engram … | head`) is the reader's choice, not an error.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("engram: error [{}]: {}", e.code(), one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// Help and version print as clap renders them; a usage mistake is one line
/// like every other error, with exit code 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        _ => {}
    }
    let text = e.to_string();
    let text: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("For more information"))
        .collect();
    let text = one_line(&text.join(" "));
    eprintln!(
        "engram: error [{}]: {}",
        engram_core::ErrorCode::InvalidInput,
        text.trim_start_matches("error: ")
    );
    ExitCode::from(2)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses `500ms`, `5s`, `10m`, `1h`, `2d` or a number of seconds.
pub(crate) fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (try 5s, 10m, 1h)"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        u => {
            return Err(format!(
                "unknown duration unit {u:?} in {s:?} (use ms, s, m, h, d)"
            ));
        }
    };
    if !(0.0..=1e9).contains(&secs) {
        return Err(format!("duration {s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
