//! `engram env model` and `engram env rollout`: the environments as the
//! engines see them, in Gymnasium's numbering, so anyone can check them.

use clap::Subcommand;
use engram_core::engines::envs::{CartPole, EnvSpec};
use engram_core::{Error, Result};
use std::io::Write;

#[derive(Subcommand)]
pub enum EnvCommand {
    /// Print a tabular environment's transition table P[s][a].
    Model {
        /// FrozenLake-v1, Taxi-v4 or CliffWalking-v1.
        #[arg(long)]
        env: String,
        /// FrozenLake map: 4x4, 8x8, or rows like SFFF,FHFH,FFFH,HFFG.
        #[arg(long)]
        map: Option<String>,
        /// FrozenLake: slippery ice (default true, as in Gymnasium).
        #[arg(long)]
        slippery: Option<bool>,
        /// Print JSON: {"n_states", "n_actions", "P"} with P[s][a] a list of
        /// [probability, next_state, reward, terminated].
        #[arg(long)]
        json: bool,
    },
    /// Step CartPole-v1 from a given state with given actions.
    Rollout {
        /// CartPole-v1.
        #[arg(long)]
        env: String,
        /// Start state: x,x_dot,theta,theta_dot.
        #[arg(long, allow_hyphen_values = true)]
        state: String,
        /// Actions, comma-separated 0 (left) / 1 (right).
        #[arg(long)]
        actions: String,
        /// Print one JSON object per step.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: EnvCommand) -> Result<()> {
    match cmd {
        EnvCommand::Model {
            env,
            map,
            slippery,
            json,
        } => model(&env, map.as_deref(), slippery, json),
        EnvCommand::Rollout {
            env,
            state,
            actions,
            json,
        } => rollout(&env, &state, &actions, json),
    }
}

fn model(env: &str, map: Option<&str>, slippery: Option<bool>, json: bool) -> Result<()> {
    let m = EnvSpec::parse(env, map, slippery)?.build();
    let mut out = std::io::stdout().lock();
    if json {
        let p: Vec<Vec<Vec<serde_json::Value>>> = m
            .p
            .iter()
            .map(|actions| {
                actions
                    .iter()
                    .map(|outcomes| {
                        outcomes
                            .iter()
                            .map(|t| serde_json::json!([t.prob, t.next, t.reward, t.terminated]))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let doc = serde_json::json!({"n_states": m.n_states, "n_actions": m.n_actions, "P": p});
        writeln!(out, "{doc}").map_err(stdout_error)?;
    } else {
        let transitions: usize = m.p.iter().flatten().map(Vec::len).sum();
        writeln!(
            out,
            "{env}: {} states, {} actions, {transitions} transitions (use --json for the table)",
            m.n_states, m.n_actions
        )
        .map_err(stdout_error)?;
    }
    Ok(())
}

fn rollout(env: &str, state: &str, actions: &str, json: bool) -> Result<()> {
    if env != "CartPole-v1" {
        return Err(Error::InvalidInput(format!(
            "rollout supports CartPole-v1, not {env:?}"
        )));
    }
    let values: Vec<f64> = state
        .split(',')
        .map(|v| v.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::InvalidInput(format!("--state: {e}")))?;
    let start: [f64; 4] = values.try_into().map_err(|v: Vec<f64>| {
        Error::InvalidInput(format!("--state needs 4 numbers, got {}", v.len()))
    })?;
    let actions: Vec<u32> = actions
        .split(',')
        .filter(|a| !a.trim().is_empty())
        .map(|a| match a.trim() {
            "0" => Ok(0),
            "1" => Ok(1),
            other => Err(Error::InvalidInput(format!(
                "action {other:?} is not 0 or 1"
            ))),
        })
        .collect::<Result<_>>()?;
    let mut cart = CartPole::from_state(start);
    let mut out = std::io::stdout().lock();
    for (i, a) in actions.into_iter().enumerate() {
        let step = cart.step(a);
        if json {
            writeln!(out, "{}", serde_json::to_string(&step).map_err(|e| Error::Encode(e.to_string()))?)
        } else {
            writeln!(
                out,
                "{:>4}  x {:>10.6}  x_dot {:>10.6}  theta {:>10.6}  theta_dot {:>10.6}  reward {}{}{}",
                i + 1,
                step.state[0],
                step.state[1],
                step.state[2],
                step.state[3],
                step.reward,
                if step.terminated { "  terminated" } else { "" },
                if step.truncated { "  truncated" } else { "" }
            )
        }
        .map_err(stdout_error)?;
        if step.terminated || step.truncated {
            break;
        }
    }
    Ok(())
}

fn stdout_error(e: std::io::Error) -> Error {
    Error::Io {
        action: "write to",
        path: "stdout".into(),
        source: e,
    }
}
