//! What a learner may declare, checked before anything is stored: its
//! name, its state format, its milestone rules, its metric descriptions
//! and the command Engram runs it with.

use crate::error::{Error, Result};
use crate::store::types::validate_engine_name;
use crate::wire::{LearnerCommand, LearnerMetric, MilestoneRule};

/// Engine names a learner cannot take.
pub const BUILT_IN: [&str; 3] = ["zap", "mdp_es", "orchestrator"];

/// The longest state-format name a learner may declare.
const MAX_FORMAT_CHARS: usize = 64;

impl MilestoneRule {
    /// How the rule reads (and is named in its backups): `success >= 0.9`.
    pub fn text(&self) -> String {
        match (self.at_least, self.at_most) {
            (Some(v), _) => format!("{} >= {v}", self.metric),
            (_, Some(v)) => format!("{} <= {v}", self.metric),
            _ => self.metric.clone(),
        }
    }

    /// Reads a rule as [`MilestoneRule::text`] writes it — `success >= 0.9`,
    /// `loss <= 0.05` (`≥` and `≤` too; spaces optional) — and checks it.
    pub fn parse(text: &str) -> Result<MilestoneRule> {
        let bad = || {
            Error::InvalidInput(format!(
                "not a milestone rule: {text:?} (write `metric >= value` or `metric <= value`)"
            ))
        };
        let (metric, value, at_least) = [(">=", true), ("≥", true), ("<=", false), ("≤", false)]
            .iter()
            .find_map(|(op, up)| text.split_once(op).map(|(m, v)| (m, v, *up)))
            .ok_or_else(bad)?;
        let value: f64 = value.trim().parse().map_err(|_| bad())?;
        let rule = MilestoneRule {
            metric: metric.trim().to_string(),
            at_least: at_least.then_some(value),
            at_most: (!at_least).then_some(value),
        };
        validate_milestone_rules(std::slice::from_ref(&rule))?;
        Ok(rule)
    }

    /// True when `value` meets the rule.
    pub fn met_by(&self, value: f64) -> bool {
        match (self.at_least, self.at_most) {
            (Some(v), None) => value >= v,
            (None, Some(v)) => value <= v,
            _ => false,
        }
    }
}

/// Checks declared milestone rules.
pub fn validate_milestone_rules(rules: &[MilestoneRule]) -> Result<()> {
    if rules.len() > MAX_DESCRIBED {
        return Err(Error::InvalidInput(format!(
            "at most {MAX_DESCRIBED} milestone rules"
        )));
    }
    for r in rules {
        validate_engine_name(&r.metric).map_err(|_| {
            Error::InvalidInput(format!(
                "invalid metric name {:?} in a milestone rule",
                r.metric
            ))
        })?;
        match (r.at_least, r.at_most) {
            (Some(v), None) | (None, Some(v)) if v.is_finite() => {}
            _ => {
                return Err(Error::InvalidInput(format!(
                    "milestone rule on {:?}: give exactly one finite at_least or at_most",
                    r.metric
                )));
            }
        }
    }
    Ok(())
}

/// The most metrics a learner may describe, and the longest label/unit.
const MAX_DESCRIBED: usize = 64;
const MAX_LABEL_CHARS: usize = 100;

/// Checks a learner's metric descriptions.
pub fn validate_metric_info(
    info: &std::collections::BTreeMap<String, LearnerMetric>,
) -> Result<()> {
    if info.len() > MAX_DESCRIBED {
        return Err(Error::InvalidInput(format!(
            "at most {MAX_DESCRIBED} metrics may be described"
        )));
    }
    for (name, m) in info {
        validate_engine_name(name).map_err(|_| {
            Error::InvalidInput(format!(
                "invalid metric name {name:?}: use 1-64 characters of a-z, 0-9, _ and -"
            ))
        })?;
        for text in [&m.label, &m.unit].into_iter().flatten() {
            if text.chars().count() > MAX_LABEL_CHARS || text.chars().any(char::is_control) {
                return Err(Error::InvalidInput(format!(
                    "metric {name:?}: labels and units are at most {MAX_LABEL_CHARS} characters of text"
                )));
            }
        }
    }
    Ok(())
}

/// The most arguments, and bytes per argument, a command may have.
const MAX_ARGS: usize = 256;
const MAX_ARG_BYTES: usize = 4096;

impl LearnerCommand {
    /// Refuses an empty command, NUL bytes, oversized arguments and a
    /// working directory that is not absolute.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidInput(m));
        if self.argv.is_empty() || self.argv[0].is_empty() {
            return bad("a learner's command needs a program to run".into());
        }
        if self.argv.len() > MAX_ARGS {
            return bad(format!("at most {MAX_ARGS} arguments"));
        }
        for a in self.argv.iter().chain([&self.workdir]) {
            if a.len() > MAX_ARG_BYTES || a.contains('\0') {
                return bad(format!(
                    "arguments and the working directory are at most {MAX_ARG_BYTES} bytes, without NUL"
                ));
            }
        }
        if !std::path::Path::new(&self.workdir).is_absolute() {
            return bad(format!(
                "the working directory must be an absolute path, not {:?}",
                self.workdir
            ));
        }
        Ok(())
    }
}

/// Checks a learner's name: an engine name that is not a built-in one.
pub fn validate_learner_name(name: &str) -> Result<()> {
    validate_engine_name(name).map_err(|_| {
        Error::InvalidInput(format!(
            "invalid learner name {name:?}: use 1-64 characters of a-z, 0-9, _ and -"
        ))
    })?;
    if BUILT_IN.contains(&name) {
        return Err(Error::InvalidInput(format!(
            "{name:?} is a built-in engine's name; choose another for a learner"
        )));
    }
    Ok(())
}

pub(super) fn validate_format(format: &str) -> Result<()> {
    let ok = !format.is_empty()
        && format.chars().count() <= MAX_FORMAT_CHARS
        && format.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "invalid state format {format:?}: 1-{MAX_FORMAT_CHARS} printable ASCII characters without spaces"
        )))
    }
}
