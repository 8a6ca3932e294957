//! `engram`: the headless command line. Thin: parse arguments, call the core,
//! print. Every error is one line on stderr and a non-zero exit.

mod env_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "engram", version, about = "Keeps what learning engines learn.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect the environments the engines learn on (Gymnasium 1.4 conformance).
    Env {
        #[command(subcommand)]
        command: env_cmd::EnvCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Env { command } => env_cmd::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`engram … | head`) is the reader's choice, not an error.
        Err(engram_core::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("engram: error [{}]: {e}", e.code());
            ExitCode::FAILURE
        }
    }
}
