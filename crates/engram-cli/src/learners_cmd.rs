//! `engram learners …`: list learners and supervise them. Each subcommand
//! is one declared operation through the [`Door`]: with Engram stopped,
//! changes go into the data directory (a learner added now starts at the
//! next launch); while `engram serve` (or the app) holds it, they go to that
//! process through its loopback API, so its supervisor acts at once — there
//! is never a second writer.

use crate::backups_cmd::{out, out_json};
use crate::door::Door;
use clap::{Args, Subcommand};
use engram_core::api::{NoKey, op};
use engram_core::wire::MetricFormat;
use engram_core::wire::ProcessPhase;
use engram_core::wire::{LearnerInfo, LearnerMetric, MilestoneRule};
use engram_core::wire::{ReadLearnerState, SetLearnerCommand, SetMetricInfo, SetMilestoneRules};
use engram_core::{Error, Result, rfc3339};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum LearnersCommand {
    /// List learners: state, command and process.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Supervise a learner: Engram runs COMMAND (now if Engram runs, else at
    /// its next start), restarts it when it dies and stops it around a
    /// restore of its state. `engram learners add q -- python3 train.py`
    Add(AddArgs),
    /// Stop supervising a learner (its process stops; its states stay).
    Remove { name: String },
    /// Set the command that drills a learner's backed-up state: run with
    /// the state's bytes on its standard input, it prints one JSON object
    /// of metrics. `engram learners drill q -- python3 -m engram.drill
    /// train:evaluate`; `--remove` drops it; neither: shows it.
    Drill(DrillArgs),
    /// Delete a learner: its process stops, its live state, command and
    /// metric history go, and it is listed no more. Backups that hold states
    /// of it keep them: restoring one brings it back.
    Delete {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Set a learner's milestone rules in Engram — they win over the ones
    /// it declares: `engram learners milestones q "success >= 0.9"`.
    /// `--none`: no milestones; `--reset`: the learner's own again.
    Milestones(MilestonesArgs),
    /// Describe one of a learner's metrics in Engram — this description
    /// wins, as a whole, over what the learner says of it:
    /// `engram learners describe q loss --label "TD loss" --lower-is-better`.
    /// `--reset`: the learner's own description again (of METRIC, or with
    /// no METRIC of every metric).
    Describe(DescribeArgs),
    /// Start a supervised learner (now, and at every launch).
    Start { name: String },
    /// Stop a supervised learner and keep it stopped until started; ask one
    /// that runs outside Engram to stop (it stops when its loop checks).
    Stop { name: String },
    /// Print a supervised learner's last output lines (its log file).
    Logs {
        name: String,
        #[arg(long, default_value_t = 40)]
        lines: usize,
    },
    /// Write a learner's state — its own bytes, checked — to a file: the
    /// live one, or the one backup ID holds. Works beside a running Engram.
    /// `--out -` writes the bytes to standard output (how the Python client
    /// resumes while Engram is stopped).
    Export(ExportArgs),
}

#[derive(Args)]
pub struct AddArgs {
    pub name: String,
    /// Its state format, if the learner is new.
    #[arg(long)]
    pub format: Option<String>,
    /// The directory it runs in (default: this one).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Args)]
pub struct MilestonesArgs {
    pub name: String,
    /// Rules: `metric >= value` or `metric <= value`.
    #[arg(conflicts_with_all = ["none", "reset"], required_unless_present_any = ["none", "reset"])]
    pub rules: Vec<String>,
    #[arg(long, conflicts_with = "reset")]
    pub none: bool,
    #[arg(long)]
    pub reset: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct DescribeArgs {
    pub name: String,
    /// The metric (omit with --reset: all of them).
    #[arg(required_unless_present = "reset")]
    pub metric: Option<String>,
    /// How it is named in the cards and charts (default: its name).
    #[arg(long, conflicts_with = "reset")]
    pub label: Option<String>,
    /// Printed after its value.
    #[arg(long, conflicts_with = "reset")]
    pub unit: Option<String>,
    /// How its value is printed (default: decimal).
    #[arg(long, value_enum, conflicts_with = "reset")]
    pub format: Option<MetricFormat>,
    #[arg(long, conflicts_with_all = ["lower_is_better", "reset"])]
    pub higher_is_better: bool,
    #[arg(long, conflicts_with = "reset")]
    pub lower_is_better: bool,
    #[arg(long)]
    pub reset: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    pub name: String,
    /// The backup whose state of the learner to write (default: live).
    #[arg(long)]
    pub backup: Option<i64>,
    /// Where to write it (not inside the data directory); `-`: stdout.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub json: bool,
}

/// A metric's description in a line: `TD loss (nats, decimal, lower is
/// better)`.
fn describe(metric: &str, d: &LearnerMetric) -> String {
    // The name `--format` takes (clap's, the same as the API's).
    let format = clap::ValueEnum::to_possible_value(&d.format.unwrap_or(MetricFormat::Decimal))
        .map(|v| v.get_name().to_string())
        .unwrap_or_default();
    let mut parts: Vec<&str> = d.unit.iter().map(String::as_str).collect();
    parts.push(&format);
    parts.push(match d.higher_is_better {
        Some(true) => "higher is better",
        Some(false) => "lower is better",
        None => "no direction",
    });
    format!(
        "{} ({})",
        d.label.as_deref().unwrap_or(metric),
        parts.join(", ")
    )
}

pub fn run(door: &Door, data_dir: &Path, cmd: LearnersCommand) -> Result<()> {
    use LearnersCommand as C;
    match cmd {
        C::List { json } => list(&door.call::<op::learners>(NoKey, ())?, json),
        C::Add(args) => add(door, args),
        C::Remove { name } => {
            door.call::<op::remove_learner_command>(name.clone(), ())?;
            out(format!(
                "learner {name} is no longer supervised (its states stay)"
            ))
        }
        C::Delete { name, json } => {
            let removed = door.call::<op::remove_learner>(name.clone(), ())?;
            if json {
                return out_json(&removed);
            }
            out(match removed.newest_backup_id {
                Some(id) => format!(
                    "learner {name} deleted; {} backup(s) still hold states of it — restoring one (the newest is {id}) brings it back",
                    removed.backups
                ),
                None => format!("learner {name} deleted; no backup held a state of it"),
            })
        }
        C::Drill(args) => drill(door, args),
        C::Milestones(args) => milestones(door, args),
        C::Describe(args) => describe_metric(door, args),
        C::Start { name } => start_stop(door, &name, true),
        C::Stop { name } => start_stop(door, &name, false),
        C::Logs { name, lines } => logs(data_dir, &name, lines),
        C::Export(args) => export(door, args),
    }
}

#[derive(Args)]
pub struct DrillArgs {
    name: String,
    /// Its time limit, in seconds (default 60): killed after it.
    #[arg(long)]
    timeout: Option<f64>,
    /// Where it runs (default: the data directory).
    #[arg(long)]
    workdir: Option<PathBuf>,
    #[arg(long, conflicts_with = "command")]
    remove: bool,
    #[arg(long)]
    json: bool,
    #[arg(last = true)]
    command: Vec<String>,
}

fn drill(door: &Door, a: DrillArgs) -> Result<()> {
    let d = if a.remove || !a.command.is_empty() {
        let timeout_ms = match a.timeout {
            Some(t) if !(t.is_finite() && t > 0.0) => {
                return Err(Error::InvalidInput(format!(
                    "--timeout {t}: seconds above 0"
                )));
            }
            t => t.map(|t| (t * 1000.0).round() as u64),
        };
        let cwd = match a.workdir {
            Some(d) => Some(
                std::path::absolute(&d)
                    .map_err(|e| Error::io("resolve", d, e))?
                    .display()
                    .to_string(),
            ),
            None => None,
        };
        let req = engram_core::wire::SetLearnerDrill {
            argv: a.command,
            timeout_ms,
            cwd,
        };
        door.call::<op::set_learner_drill>(a.name.clone(), req)?
    } else {
        door.call::<op::learner_drill>(a.name.clone(), ())?
    };
    if a.json {
        return out_json(&d);
    }
    out(match (&d.argv, d.timeout_ms) {
        (Some(argv), Some(t)) => format!(
            "learner {} is drilled by: {} (time limit {:.1} s, in {})",
            d.learner,
            argv.join(" "),
            t as f64 / 1000.0,
            d.workdir.as_deref().unwrap_or("-")
        ),
        _ => format!("learner {} has no drill command", d.learner),
    })
}

fn add(door: &Door, args: AddArgs) -> Result<()> {
    let running = door.running();
    let AddArgs {
        name,
        format,
        workdir,
        json,
        command,
    } = args;
    let workdir = match workdir {
        Some(d) => std::path::absolute(&d).map_err(|e| Error::io("resolve", d, e))?,
        None => {
            std::env::current_dir().map_err(|e| Error::io("find", "the current directory", e))?
        }
    };
    let req = SetLearnerCommand {
        argv: command,
        workdir: Some(workdir.display().to_string()),
        format,
    };
    let l = door.call::<op::set_learner_command>(name.clone(), req)?;
    if json {
        return out_json(&l);
    }
    out(format!(
        "learner {name} is supervised: {}",
        if running {
            "started"
        } else {
            "it starts when Engram does"
        }
    ))
}

fn milestones(door: &Door, args: MilestonesArgs) -> Result<()> {
    let MilestonesArgs {
        name,
        rules,
        none,
        reset,
        json,
    } = args;
    let req = SetMilestoneRules {
        rules: if reset {
            None
        } else if none {
            Some(Vec::new())
        } else {
            Some(
                rules
                    .iter()
                    .map(|r| MilestoneRule::parse(r))
                    .collect::<Result<_>>()?,
            )
        },
    };
    let l = door.call::<op::set_learner_milestone_rules>(name.clone(), req)?;
    if json {
        return out_json(&l);
    }
    let listed: Vec<String> = l.milestone_rules.iter().map(MilestoneRule::text).collect();
    out(format!(
        "learner {name}'s milestones{}: {}",
        if l.milestone_rules_set_here {
            " (set in Engram)"
        } else {
            " (its own)"
        },
        if listed.is_empty() {
            "none".to_string()
        } else {
            listed.join("; ")
        }
    ))
}

fn describe_metric(door: &Door, args: DescribeArgs) -> Result<()> {
    let DescribeArgs {
        name,
        metric,
        label,
        unit,
        format,
        higher_is_better,
        lower_is_better,
        reset,
        json,
    } = args;
    // Read, change one entry, write the whole: the API takes every
    // metric described here at once.
    let now = door.call::<op::learner>(name.clone(), ())?;
    let mut here: std::collections::BTreeMap<String, LearnerMetric> = now
        .metric_info
        .into_iter()
        .filter(|(k, _)| now.metric_info_set_here.contains(k))
        .collect();
    match (&metric, reset) {
        (None, _) => here.clear(),
        (Some(m), true) => {
            here.remove(m);
        }
        (Some(m), false) => {
            here.insert(
                m.clone(),
                LearnerMetric {
                    label,
                    unit,
                    format,
                    higher_is_better: (higher_is_better || lower_is_better)
                        .then_some(higher_is_better),
                },
            );
        }
    }
    let req = SetMetricInfo {
        metrics: Some(here),
    };
    let l = door.call::<op::set_learner_metric_info>(name.clone(), req)?;
    if json {
        return out_json(&l);
    }
    let shown: Vec<String> = match &metric {
        Some(m) => vec![m.clone()],
        None => l.metric_info.keys().cloned().collect(),
    };
    if shown.is_empty() {
        return out(format!("learner {name} describes none of its metrics"));
    }
    out(shown
        .iter()
        .map(|m| {
            let d = l.metric_info.get(m).cloned().unwrap_or_default();
            format!(
                "learner {name}'s metric {m}: {}{}",
                describe(m, &d),
                if l.metric_info_set_here.contains(m) {
                    " (described in Engram)"
                } else {
                    " (its own)"
                }
            )
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

fn export(door: &Door, args: ExportArgs) -> Result<()> {
    let ExportArgs {
        name,
        backup,
        out: path,
        json,
    } = args;
    let req = ReadLearnerState { backup };
    if path.as_os_str() == "-" {
        if json {
            return Err(Error::InvalidInput(
                "--json describes a file written; with --out - the bytes are the output".into(),
            ));
        }
        let (_, bytes) = door.offline().read_learner_state(&name, req)?;
        return write_stdout(&bytes);
    }
    let done = door.offline().read_learner_state_to(&name, req, &path)?;
    if json {
        return out_json(&done);
    }
    out(format!(
        "wrote learner {name}'s state{} to {} ({} bytes, blake3 {})",
        backup.map_or(String::new(), |id| format!(" in backup {id}")),
        done.path,
        done.bytes,
        done.checksum
    ))
}

fn start_stop(door: &Door, name: &str, start: bool) -> Result<()> {
    let l = if start {
        door.call::<op::start_learner>(name.to_string(), ())?
    } else {
        door.call::<op::stop_learner>(name.to_string(), ())?
    };
    if !door.running() {
        return out(format!(
            "learner {name} {}",
            if start {
                "starts when Engram does"
            } else {
                "stays stopped when Engram starts"
            }
        ));
    }
    if !start && l.command.is_none() {
        // It runs elsewhere: asked, not stopped (yet).
        return out(format!(
            "learner {name} asked to stop: it runs outside Engram and stops when its loop next checks run.stop_requested"
        ));
    }
    out(format!(
        "learner {name} {}",
        if start { "started" } else { "stopped" }
    ))
}

/// Bytes as they are, to standard output.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::io("write to", "stdout", e))
}

fn list(all: &[LearnerInfo], json: bool) -> Result<()> {
    if json {
        return out_json(&all);
    }
    out(format!(
        "{:<24}  {:<16}  {:>10}  {:<24}  {:<22}  command",
        "name", "format", "step", "saved", "process"
    ))?;
    for l in all {
        let (step, saved) = match &l.live {
            Some(s) => (
                s.step.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                rfc3339(s.saved_at_ms),
            ),
            None => ("-".into(), "never".into()),
        };
        let process = match (&l.process, &l.command) {
            (Some(p), _) => {
                let phase = phase_word(p.phase);
                match p.pid {
                    Some(pid) => format!("{phase} (pid {pid}, {} restarts)", p.restarts),
                    None => format!("{phase} ({} restarts)", p.restarts),
                }
            }
            (None, Some(c)) if c.autostart => "starts with Engram".into(),
            (None, Some(_)) => "stopped".into(),
            (None, None) => "-".into(),
        };
        let command = l
            .command
            .as_ref()
            .map(|c| c.argv.join(" "))
            .unwrap_or_else(|| "(not supervised)".into());
        out(format!(
            "{:<24}  {:<16}  {:>10}  {:<24}  {:<22}  {command}",
            l.name, l.format, step, saved, process
        ))?;
    }
    Ok(())
}

fn phase_word(p: ProcessPhase) -> &'static str {
    match p {
        ProcessPhase::Running => "running",
        ProcessPhase::Restarting => "restarting",
        ProcessPhase::Stopping => "stopping",
        ProcessPhase::Stopped => "stopped",
        ProcessPhase::Finished => "finished",
    }
}

/// The last `lines` lines of a learner's log file.
fn logs(data_dir: &Path, name: &str, lines: usize) -> Result<()> {
    engram_core::store::validate_learner_name(name)?;
    let path = engram_core::supervisor::log_path(data_dir, name);
    let text = match std::fs::read(&path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound {
                what: "output of learner",
                id: format!("{name} (it has not run under Engram)"),
            });
        }
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let all: Vec<&str> = text.lines().collect();
    for l in &all[all.len().saturating_sub(lines)..] {
        out(l)?;
    }
    Ok(())
}
