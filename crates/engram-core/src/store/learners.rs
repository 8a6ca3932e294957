//! Learners: engines whose code runs in another process. The store keeps
//! who they are (name, their own state format), their newest durable state
//! (a content-addressed object, see [`crate::objects`]) and, in every backup
//! cut, the state each had at that instant. The object must be durable
//! before any row names it; this module only writes rows.

use super::Store;
use super::blob::{metrics_json, parse_metrics};
use super::types::{Metrics, validate_engine_name};
use crate::codec::Checksum;
use crate::error::{Error, Result};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use ts_rs::TS;

/// Engine names a learner cannot take.
pub const BUILT_IN: [&str; 3] = ["zap", "mdp_es", "orchestrator"];

/// The longest state-format name a learner may declare.
const MAX_FORMAT_CHARS: usize = 64;

/// A learner's state as stored: where it is and what it says of itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct LearnerState {
    /// blake3 of the state bytes, hex: its address in `objects/`.
    pub checksum: String,
    #[ts(type = "number")]
    pub size: u64,
    /// The learner's own step counter, if it gave one.
    #[ts(type = "number | null")]
    pub step: Option<u64>,
    pub metrics: Metrics,
    /// When it became durable (live), or the backup's instant (in a backup).
    #[ts(type = "number")]
    pub saved_at_ms: i64,
}

/// A state to make live: a durable object and what the learner said of it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewLearnerState {
    /// The learner's generation this state continues (see
    /// [`LearnerInfo::generation`]); a save naming an older one is refused
    /// as `stale_state`. None: not checked.
    pub generation: Option<i64>,
    pub object: Checksum,
    pub size: u64,
    pub step: Option<u64>,
    pub metrics: Metrics,
}

/// A learner and the state it resumes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct LearnerInfo {
    pub name: String,
    /// The learner's own name for its state format (Engram stores the bytes
    /// as they are; this tells a reader how to open them).
    pub format: String,
    #[ts(type = "number")]
    pub registered_at_ms: i64,
    /// Its newest durable state; null before its first save.
    pub live: Option<LearnerState>,
    /// One more after each restore of it: a client resumes at a generation
    /// and names it when it saves, so a save from before a restore the
    /// learner has not taken yet cannot overwrite the restored state.
    #[ts(type = "number")]
    pub generation: i64,
    /// The command Engram runs it with, if it supervises it.
    #[serde(default)]
    pub command: Option<LearnerCommand>,
    /// Its process, while Engram supervises it (filled in by the API).
    #[serde(default)]
    pub process: Option<crate::supervisor::ProcessStatus>,
    /// What its metrics mean: as described in Engram, where a metric was,
    /// else as the learner says.
    #[serde(default)]
    pub metric_info: std::collections::BTreeMap<String, LearnerMetric>,
    /// What the learner says its metrics mean (at its last attach).
    #[serde(default)]
    pub declared_metric_info: std::collections::BTreeMap<String, LearnerMetric>,
    /// The metrics described in Engram (the UI, the CLI or the API): their
    /// descriptions win over the learner's own.
    #[serde(default)]
    pub metric_info_set_here: Vec<String>,
    /// The milestones checked at each durable save: the ones set in
    /// Engram, if any were, else the ones the learner declared.
    #[serde(default)]
    pub milestone_rules: Vec<MilestoneRule>,
    /// The milestones the learner declared when it attached.
    #[serde(default)]
    pub declared_milestone_rules: Vec<MilestoneRule>,
    /// True when the rules were set in Engram (the UI, the CLI or the API)
    /// and win over the learner's own.
    #[serde(default)]
    pub milestone_rules_set_here: bool,
    /// When the user asked this learner to stop, if it runs outside Engram
    /// (no command) and has not attached again since; null otherwise.
    #[serde(default)]
    #[ts(type = "number | null")]
    pub stop_requested_at_ms: Option<i64>,
}

/// What is kept of every learner, a deleted one too.
#[derive(Clone, Debug, PartialEq)]
pub struct LearnerRecord {
    /// See [`LearnerInfo::format`].
    pub format: String,
    /// See [`LearnerInfo::generation`].
    pub generation: i64,
    /// Deleted (see [`crate::Store::remove_learner`]).
    pub removed: bool,
}

/// What deleting a learner left: the backups that still hold states of it
/// (restoring one of them, or attaching under the same name, brings the
/// learner back).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct RemovedLearner {
    pub name: String,
    /// How many backups hold a state of it.
    #[ts(type = "number")]
    pub backups: i64,
    /// The newest of them (null: none — its state is gone for good).
    #[ts(type = "number | null")]
    pub newest_backup_id: Option<i64>,
}

/// What a learner says one of its metrics means (every field optional:
/// the metric's name, no unit, three decimals, no direction).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct LearnerMetric {
    pub label: Option<String>,
    pub unit: Option<String>,
    pub format: Option<crate::engines::catalog::MetricFormat>,
    pub higher_is_better: Option<bool>,
}

/// A milestone a learner declares: Engram checks the metrics of each of
/// its durable saves, and the first saved state of a line of history that
/// meets it is kept in a protected `breakthrough` backup.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct MilestoneRule {
    pub metric: String,
    /// Reached when the metric is at least this…
    #[serde(default)]
    pub at_least: Option<f64>,
    /// …or at most this (exactly one of the two).
    #[serde(default)]
    pub at_most: Option<f64>,
}

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

/// How Engram starts a supervised learner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct LearnerCommand {
    /// The program and its arguments (no shell: `["sh", "-c", "…"]` for one).
    pub argv: Vec<String>,
    /// The absolute directory it runs in.
    pub workdir: String,
    /// False after the user stopped it: Engram does not start it at launch.
    #[serde(default = "yes")]
    pub autostart: bool,
}

fn yes() -> bool {
    true
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

fn validate_format(format: &str) -> Result<()> {
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

fn state_from_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<LearnerState> {
    let sum: Vec<u8> = r.get(at)?;
    Ok(LearnerState {
        checksum: Checksum::from_slice(&sum)
            .map(|c| c.to_hex())
            .unwrap_or_else(|_| "invalid".into()),
        size: r.get::<_, i64>(at + 1)?.max(0) as u64,
        step: r.get::<_, Option<i64>>(at + 2)?.map(|s| s.max(0) as u64),
        metrics: parse_metrics(&r.get::<_, String>(at + 3)?),
        saved_at_ms: r.get(at + 4)?,
    })
}

impl Store {
    /// Registers a learner, or finds it: attaching again with the same
    /// format is a no-op that returns what to resume from. Another format
    /// for an existing name is refused (its stored states would be read
    /// the wrong way).
    ///
    /// No format: the registered one (or `raw` for a new learner).
    pub fn attach_learner(
        &mut self,
        name: &str,
        format: Option<&str>,
        now_ms: i64,
    ) -> Result<LearnerInfo> {
        validate_learner_name(name)?;
        if let Some(f) = format {
            validate_format(f)?;
        }
        let tx = self.conn.transaction()?;
        let existing: Option<(String, Option<i64>)> = tx
            .query_row(
                "SELECT format, removed_at FROM learners WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        // A deleted learner attached again is registered anew (its
        // milestones count afresh); its backups are its again.
        if let Some((_, Some(_))) = existing {
            tx.execute(
                "UPDATE learners SET removed_at = NULL, registered_at = ?2 WHERE name = ?1",
                params![name, now_ms],
            )?;
        }
        let existing = existing.map(|(format, _)| format);
        match (existing, format) {
            (Some(f), Some(format)) if f != format => {
                // The format is fixed by the first saved state: until then
                // (say, registered by `engram learners add`) it may change.
                let saved: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM learner_live WHERE learner = ?1)
                         OR EXISTS (SELECT 1 FROM backup_learner_states WHERE learner = ?1)",
                    [name],
                    |r| r.get(0),
                )?;
                if saved {
                    return Err(Error::InvalidInput(format!(
                        "learner {name:?} keeps its state in format {f:?}, not {format:?}"
                    )));
                }
                tx.execute(
                    "UPDATE learners SET format = ?2 WHERE name = ?1",
                    params![name, format],
                )?;
            }
            (Some(_), _) => {}
            (None, format) => {
                tx.execute(
                    "INSERT INTO learners (name, format, registered_at) VALUES (?1, ?2, ?3)",
                    params![name, format.unwrap_or("raw"), now_ms],
                )?;
            }
        }
        // A new run: a stop asked of the previous one is not for it.
        tx.execute(
            "UPDATE learners SET stop_requested_at = NULL WHERE name = ?1",
            [name],
        )?;
        tx.commit()?;
        self.learner(name)
    }

    /// Asks a learner that runs outside Engram to stop (its client sees the
    /// request); the request stands until the learner attaches again. A
    /// learner Engram supervises is stopped by the supervisor instead:
    /// nothing is recorded and the answer is `None`.
    pub fn request_learner_stop(&mut self, name: &str, now_ms: i64) -> Result<Option<LearnerInfo>> {
        if self.learner(name)?.command.is_some() {
            return Ok(None);
        }
        self.conn.execute(
            "UPDATE learners SET stop_requested_at = ?2 WHERE name = ?1",
            params![name, now_ms],
        )?;
        self.learner(name).map(Some)
    }

    /// One learner and its live state; unknown names are `not_found`.
    pub fn learner(&self, name: &str) -> Result<LearnerInfo> {
        self.learners_where(Some(name))?
            .pop()
            .ok_or_else(|| Error::NotFound {
                what: "learner",
                id: name.to_string(),
            })
    }

    /// Every learner, by name.
    pub fn learners(&self) -> Result<Vec<LearnerInfo>> {
        self.learners_where(None)
    }

    /// A learner's format and generation — a deleted one's too (backups
    /// may hold its states); unknown names are `not_found`.
    pub fn learner_record(&self, name: &str) -> Result<LearnerRecord> {
        self.conn
            .prepare_cached(
                "SELECT format, generation, removed_at IS NOT NULL FROM learners WHERE name = ?1",
            )?
            .query_row([name], |r| {
                Ok(LearnerRecord {
                    format: r.get(0)?,
                    generation: r.get(1)?,
                    removed: r.get(2)?,
                })
            })
            .optional()?
            .ok_or_else(|| Error::NotFound {
                what: "learner",
                id: name.to_string(),
            })
    }

    /// Deletes a learner (unknown or deleted: `not_found`), in one
    /// transaction: its live state (its file goes when nothing else names
    /// it), its command, its metric history and any stop request go, its
    /// generation moves on (a save of the deleted run is refused), and it
    /// is listed no more. Backups that hold states of it keep them, so its
    /// row stays (see migration 0010); the answer says which. Its slot
    /// files go after the commit. The caller stops its process first.
    pub fn remove_learner(&mut self, name: &str, now_ms: i64) -> Result<RemovedLearner> {
        self.learner(name)?;
        let tx = self.conn.transaction()?;
        let live: Option<Vec<u8>> = tx
            .query_row(
                "DELETE FROM learner_live WHERE learner = ?1 RETURNING object",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        let freed = match live {
            Some(object) => super::learner_bytes::release(&tx, &object)?,
            None => None,
        };
        tx.execute("DELETE FROM learner_commands WHERE learner = ?1", [name])?;
        tx.execute("DELETE FROM metric_points WHERE engine = ?1", [name])?;
        tx.execute(
            "UPDATE learners SET removed_at = ?2, stop_requested_at = NULL,
                 user_milestone_rules = NULL, user_metric_info = NULL,
                 generation = generation + 1
             WHERE name = ?1",
            params![name, now_ms],
        )?;
        let (backups, newest_backup_id) = tx.query_row(
            "SELECT count(*),
                    (SELECT s.backup_id FROM backup_learner_states s
                     JOIN backups b ON b.id = s.backup_id
                     WHERE s.learner = ?1 ORDER BY b.created_at DESC, b.id DESC LIMIT 1)
             FROM backup_learner_states WHERE learner = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.commit()?;
        self.remove_freed(freed);
        if let Err(e) = self.objects().remove_slots(name) {
            // Garbage only: the next start clears slot files no row names.
            tracing::warn!(learner = name, error = %e, "a deleted learner's slot files stay");
        }
        Ok(RemovedLearner {
            name: name.to_string(),
            backups,
            newest_backup_id,
        })
    }

    fn learners_where(&self, name: Option<&str>) -> Result<Vec<LearnerInfo>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT l.name, l.format, l.registered_at,
                    s.object, s.size, s.step, s.metrics, s.saved_at,
                    c.argv, c.workdir, c.autostart, l.metric_info, l.generation,
                    l.milestone_rules, l.stop_requested_at, l.user_milestone_rules,
                    l.user_metric_info
             FROM learners l LEFT JOIN learner_live s ON s.learner = l.name
                             LEFT JOIN learner_commands c ON c.learner = l.name
             WHERE l.removed_at IS NULL AND (?1 IS NULL OR l.name = ?1) ORDER BY l.name",
        )?;
        let rows = stmt.query_map([name], |r| {
            let has_state = r.get::<_, Option<Vec<u8>>>(3)?.is_some();
            // Milestone rules: the learner's, and any set in Engram (which win).
            let declared: Vec<MilestoneRule> =
                serde_json::from_str(&r.get::<_, String>(13)?).unwrap_or_default();
            let set_here: Option<Vec<MilestoneRule>> = r
                .get::<_, Option<String>>(15)?
                .map(|j| serde_json::from_str(&j).unwrap_or_default());
            // Metric descriptions: the learner's, each overridden by one
            // set in Engram.
            let declared_info: std::collections::BTreeMap<String, LearnerMetric> =
                serde_json::from_str(&r.get::<_, String>(11)?).unwrap_or_default();
            let info_here: std::collections::BTreeMap<String, LearnerMetric> = r
                .get::<_, Option<String>>(16)?
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default();
            let metric_info_set_here: Vec<String> = info_here.keys().cloned().collect();
            let mut metric_info = declared_info.clone();
            metric_info.extend(info_here);
            Ok(LearnerInfo {
                name: r.get(0)?,
                format: r.get(1)?,
                registered_at_ms: r.get(2)?,
                live: if has_state {
                    Some(state_from_row(r, 3)?)
                } else {
                    None
                },
                command: match r.get::<_, Option<String>>(8)? {
                    Some(argv) => Some(LearnerCommand {
                        // A row this build wrote always parses; anything
                        // else reads as an empty command, which never runs.
                        argv: serde_json::from_str(&argv).unwrap_or_default(),
                        workdir: r.get(9)?,
                        autostart: r.get(10)?,
                    }),
                    None => None,
                },
                process: None,
                metric_info,
                declared_metric_info: declared_info,
                metric_info_set_here,
                generation: r.get(12)?,
                milestone_rules: set_here.clone().unwrap_or_else(|| declared.clone()),
                milestone_rules_set_here: set_here.is_some(),
                declared_milestone_rules: declared,
                stop_requested_at_ms: r.get(14)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Replaces what a learner says its metrics mean.
    pub fn set_learner_metric_info(
        &mut self,
        name: &str,
        info: &std::collections::BTreeMap<String, LearnerMetric>,
    ) -> Result<()> {
        validate_metric_info(info)?;
        self.set_learner_json(name, "metric_info", info)
    }

    /// Describes a learner's metrics in Engram: each entry wins over what
    /// the learner says of that metric, across its attaches, until reset
    /// with `None` (an empty map is the same: nothing described here).
    pub fn set_user_metric_info(
        &mut self,
        name: &str,
        info: Option<&std::collections::BTreeMap<String, LearnerMetric>>,
    ) -> Result<()> {
        match info {
            Some(info) if !info.is_empty() => {
                validate_metric_info(info)?;
                self.set_learner_json(name, "user_metric_info", info)
            }
            _ => self.clear_learner_json(name, "user_metric_info"),
        }
    }

    /// Sets the milestone rules for a learner in Engram (they win over the
    /// ones it declares, until reset with `None`; `Some(&[])`: none).
    pub fn set_user_milestone_rules(
        &mut self,
        name: &str,
        rules: Option<&[MilestoneRule]>,
    ) -> Result<()> {
        match rules {
            Some(rules) => {
                validate_milestone_rules(rules)?;
                self.set_learner_json(name, "user_milestone_rules", &rules)
            }
            None => self.clear_learner_json(name, "user_milestone_rules"),
        }
    }

    /// Replaces a learner's declared milestone rules.
    pub fn set_learner_milestone_rules(
        &mut self,
        name: &str,
        rules: &[MilestoneRule],
    ) -> Result<()> {
        validate_milestone_rules(rules)?;
        self.set_learner_json(name, "milestone_rules", &rules)
    }

    /// Empties one of a learner's JSON columns (a fixed name, never input):
    /// what was set in Engram gives way to the learner's own again.
    fn clear_learner_json(&mut self, name: &str, column: &'static str) -> Result<()> {
        self.learner(name)?;
        self.conn.execute(
            &format!("UPDATE learners SET {column} = NULL WHERE name = ?1"),
            [name],
        )?;
        Ok(())
    }

    /// Writes one of a learner's JSON columns (a fixed name, never input).
    fn set_learner_json(
        &mut self,
        name: &str,
        column: &'static str,
        value: &impl Serialize,
    ) -> Result<()> {
        self.learner(name)?;
        let json = serde_json::to_string(value)
            .map_err(|e| Error::Internal(format!("encoding {column}: {e}")))?;
        self.conn.execute(
            &format!("UPDATE learners SET {column} = ?2 WHERE name = ?1"),
            params![name, json],
        )?;
        Ok(())
    }

    /// The names of the metrics a learner has in the metric history.
    pub fn learner_metric_keys(&self, name: &str) -> Result<Vec<String>> {
        // One index seek per name (not a scan of every point): jump from
        // each key to the next along the primary key (engine, key, …).
        let mut stmt = self.conn.prepare_cached(
            "WITH RECURSIVE k(key) AS (
                 SELECT (SELECT key FROM metric_points WHERE engine = ?1 ORDER BY key LIMIT 1)
                 UNION ALL
                 SELECT (SELECT key FROM metric_points WHERE engine = ?1 AND key > k.key
                         ORDER BY key LIMIT 1)
                 FROM k WHERE k.key IS NOT NULL
             )
             SELECT key FROM k WHERE key IS NOT NULL",
        )?;
        let keys = stmt.query_map([name], |r| r.get(0))?;
        Ok(keys.collect::<std::result::Result<_, _>>()?)
    }

    /// Sets the command Engram supervises a learner with (registering the
    /// learner if it is new, format `raw` until its first attach says
    /// otherwise); autostart as the command says.
    pub fn set_learner_command(
        &mut self,
        name: &str,
        cmd: &LearnerCommand,
        now_ms: i64,
    ) -> Result<LearnerInfo> {
        cmd.validate()?;
        self.attach_learner(name, None, now_ms)?;
        let argv = serde_json::to_string(&cmd.argv)
            .map_err(|e| Error::Internal(format!("encoding a command: {e}")))?;
        self.conn.execute(
            "INSERT INTO learner_commands (learner, argv, workdir, autostart, added_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (learner) DO UPDATE SET argv = ?2, workdir = ?3, autostart = ?4",
            params![name, argv, cmd.workdir, cmd.autostart, now_ms],
        )?;
        self.learner(name)
    }

    /// Forgets a learner's command (its states stay). `not_found` when it
    /// had none.
    pub fn remove_learner_command(&mut self, name: &str) -> Result<()> {
        self.learner(name)?;
        let n = self
            .conn
            .execute("DELETE FROM learner_commands WHERE learner = ?1", [name])?;
        if n == 0 {
            return Err(Error::NotFound {
                what: "command of learner",
                id: name.to_string(),
            });
        }
        Ok(())
    }

    /// Records whether Engram starts a supervised learner at launch; the
    /// learner's command (`not_found` without one).
    pub fn set_learner_autostart(&mut self, name: &str, autostart: bool) -> Result<LearnerCommand> {
        self.learner(name)?;
        self.conn.execute(
            "UPDATE learner_commands SET autostart = ?2 WHERE learner = ?1",
            params![name, autostart],
        )?;
        self.learner(name)?.command.ok_or_else(|| Error::NotFound {
            what: "command of learner",
            id: name.to_string(),
        })
    }

    /// Makes a stored object the learner's live state (the object must be
    /// durable already) and, with a history branch, records its metrics in
    /// the metric history — one transaction.
    pub fn save_learner_live(
        &mut self,
        name: &str,
        s: &NewLearnerState,
        at_ms: i64,
        branch: Option<i64>,
    ) -> Result<LearnerState> {
        self.save_learner_live_with(name, s, None, None, at_ms, branch)
    }

    /// The same for a state held in one of the learner's slots (durable
    /// already: see [`crate::objects::Objects::slot_writer`]).
    pub fn save_learner_live_in_slot(
        &mut self,
        name: &str,
        s: &NewLearnerState,
        slot: u8,
        at_ms: i64,
        branch: Option<i64>,
    ) -> Result<LearnerState> {
        self.save_learner_live_with(name, s, None, Some(slot), at_ms, branch)
    }

    /// The live states held in slots: learner, slot and checksum (what a
    /// backup cut will adopt; see [`crate::objects::Objects::prove_slot`]).
    pub fn live_slots(&self) -> Result<Vec<(String, u8, Checksum)>> {
        live_slots_in(&self.conn)
    }

    /// At start, before saves or leases: removes the slot files no live
    /// state is held in and the names of leases an earlier run lent (see
    /// [`crate::objects::Objects::clear_slots`]). Returns how many went.
    pub fn clear_unused_slots(&self) -> Result<usize> {
        let live = self
            .live_slots()?
            .into_iter()
            .map(|(learner, slot, _)| (learner, slot))
            .collect();
        self.objects().clear_slots(&live)
    }

    /// The slot a learner's live state is held in, and its checksum (none:
    /// no live state, or it is found by checksum).
    pub fn learner_live_slot(&self, name: &str) -> Result<(Option<u8>, Option<Checksum>)> {
        let row: Option<(Option<i64>, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT slot, object FROM learner_live WHERE learner = ?1")?
            .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(match row {
            Some((slot, object)) => (
                slot.and_then(|s| u8::try_from(s).ok()),
                Checksum::from_slice(&object).ok(),
            ),
            None => (None, None),
        })
    }

    /// A learner's live state's bytes, checked: from its slot if it is held
    /// in one, else (or if the slot no longer holds it) by checksum.
    pub fn read_live_learner_bytes(&self, name: &str, c: &Checksum, limit: u64) -> Result<Vec<u8>> {
        if let Some(slot) = self.live_slot_of(name, c)?
            && let Some(bytes) = self.objects().read_slot(name, slot, c, limit)?
        {
            return Ok(bytes);
        }
        self.read_learner_bytes(c, limit)
    }

    /// Checks a learner's live state's bytes: in its slot if it is held in
    /// one (and the slot still holds it), else by checksum.
    pub fn verify_live_learner_bytes(&self, name: &str, c: &Checksum) -> Result<()> {
        if let Some(slot) = self.live_slot_of(name, c)?
            && self.objects().slot_holds(name, slot, c)?
        {
            return Ok(());
        }
        self.verify_learner_bytes(c)
    }

    /// The slot the learner's live state is held in, if that state is `c`.
    fn live_slot_of(&self, name: &str, c: &Checksum) -> Result<Option<u8>> {
        Ok(match self.learner_live_slot(name)? {
            (Some(slot), Some(live)) if live == *c => Some(slot),
            _ => None,
        })
    }

    /// The same, with a small state's bytes kept inside the database in
    /// the same transaction: one fsync for the whole save. `s.object` and
    /// `s.size` must be theirs.
    pub fn save_learner_live_inline(
        &mut self,
        name: &str,
        s: &NewLearnerState,
        bytes: &super::InlineState,
        at_ms: i64,
        branch: Option<i64>,
    ) -> Result<LearnerState> {
        self.save_learner_live_with(name, s, Some(bytes), None, at_ms, branch)
    }

    fn save_learner_live_with(
        &mut self,
        name: &str,
        s: &NewLearnerState,
        inline: Option<&super::InlineState>,
        slot: Option<u8>,
        at_ms: i64,
        branch: Option<i64>,
    ) -> Result<LearnerState> {
        let NewLearnerState {
            generation,
            object,
            size,
            step,
            metrics,
        } = s;
        let (size, step) = (*size, *step);
        let json = metrics_json(metrics)?;
        // For the power-loss check only (see crate::iotrace).
        let traced = crate::iotrace::armed().then(|| self.objects());
        let tx = self.conn.transaction()?;
        let current: Option<i64> = tx
            .prepare_cached(
                "SELECT generation FROM learners WHERE name = ?1 AND removed_at IS NULL",
            )?
            .query_row([name], |r| r.get(0))
            .optional()?;
        let Some(current) = current else {
            return Err(Error::NotFound {
                what: "learner",
                id: name.to_string(),
            });
        };
        // Checked in the save's own transaction: a restore cannot slip in
        // between the check and the write.
        if let Some(sent) = *generation
            && sent != current
        {
            return Err(Error::StaleState {
                learner: name.to_string(),
                sent,
                current,
            });
        }
        if let Some(state) = inline {
            if state.checksum() != *object || state.len() != size {
                return Err(Error::Internal(
                    "a state's bytes do not match the checksum and size given".into(),
                ));
            }
            super::learner_bytes::put_inline(&tx, state)?;
        }
        let freed = set_live_row(&tx, name, object, size, step, &json, at_ms, slot)?;
        if let Some(objects) = &traced
            && inline.is_none()
        {
            trace_commit(&tx, objects, name, object, slot)?;
        }
        if let Some(branch) = branch
            && !metrics.is_empty()
        {
            let m = std::collections::BTreeMap::from([(name.to_string(), metrics.clone())]);
            super::history::record_points(&tx, at_ms, branch, m.iter())?;
        }
        tx.commit()?;
        self.remove_freed(freed);
        Ok(LearnerState {
            checksum: object.to_hex(),
            size,
            step,
            metrics: metrics.clone(),
            saved_at_ms: at_ms,
        })
    }

    /// A learner's state in a backup (`not_found` if the backup did not
    /// hold it).
    pub fn backup_learner_state(&self, backup_id: i64, name: &str) -> Result<LearnerState> {
        backup_learner_state_in(&self.conn, backup_id, name)
    }

    /// `corrupt_state` unless the state of each of `names` in backup
    /// `backup_id` is there to be made live (checked before a restore
    /// changes anything).
    pub fn check_learner_objects(&self, backup_id: i64, names: &[String]) -> Result<()> {
        for name in names {
            let state = self.backup_learner_state(backup_id, name)?;
            if !self.has_learner_bytes(&Checksum::from_hex(&state.checksum)?)? {
                return Err(Error::corrupt(
                    "learner state",
                    format!("the state of {name} in backup {backup_id} is missing"),
                ));
            }
        }
        Ok(())
    }

    /// Makes a backup's state of a learner its live state again (a restore
    /// from the timeline), in its next generation. `not_found` if the backup
    /// does not hold the learner, `corrupt_state` if its file is gone.
    pub fn restore_learner(
        &mut self,
        backup_id: i64,
        name: &str,
        now_ms: i64,
    ) -> Result<LearnerState> {
        self.check_learner_objects(backup_id, &[name.to_string()])?;
        let tx = self.conn.transaction()?;
        let (state, freed) = restore_learner_row(&tx, backup_id, name, now_ms)?;
        tx.commit()?;
        self.remove_freed(freed);
        Ok(state)
    }

    /// A restore, made live in one transaction: the engines' `states` (from
    /// backup `backup_id`) and the backup's state of each of `learners`
    /// (each in its next generation) become the live state, and a new line
    /// of metric history starts — all of it or, on any error, none. Returns
    /// the new line's id. The learners' files are checked first.
    pub fn make_restored_live(
        &mut self,
        backup_id: i64,
        states: &[super::types::EngineState],
        learners: &[String],
        now_ms: i64,
    ) -> Result<i64> {
        self.check_learner_objects(backup_id, learners)?;
        let tx = self.conn.transaction()?;
        if !states.is_empty() {
            super::live::upsert_live(&tx, states, now_ms, false)?;
        }
        let mut freed = Vec::new();
        for name in learners {
            freed.push(restore_learner_row(&tx, backup_id, name, now_ms)?.1);
        }
        let branch = super::history::insert_branch(&tx, now_ms, Some(backup_id), "restore")?;
        tx.commit()?;
        for f in freed {
            self.remove_freed(f);
        }
        Ok(branch)
    }

    /// A learner's live state and its bytes — or, when the live state's file
    /// is damaged or missing, the newest backup's state of it that reads
    /// back intact, made live (a restore: the learner's next generation).
    /// Returns the backup fallen back to, if any. With none intact, the
    /// damage is the error.
    pub fn learner_live_or_fallback(
        &mut self,
        name: &str,
        now_ms: i64,
    ) -> Result<(LearnerState, Vec<u8>, Option<i64>)> {
        let live = self.learner(name)?.live.ok_or_else(|| Error::NotFound {
            what: "saved state of learner",
            id: name.to_string(),
        })?;
        let limit = crate::api::MAX_LEARNER_STATE_BYTES;
        let damage =
            match self.read_live_learner_bytes(name, &Checksum::from_hex(&live.checksum)?, limit) {
                Ok(bytes) => return Ok((live, bytes, None)),
                Err(e @ Error::CorruptState { .. }) => e,
                Err(e) => return Err(e),
            };
        let held: Vec<(i64, Vec<u8>)> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT s.backup_id, s.object FROM backup_learner_states s
                 JOIN backups b ON b.id = s.backup_id
                 WHERE s.learner = ?1 ORDER BY b.created_at DESC, b.id DESC",
            )?;
            stmt.query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<std::result::Result<_, _>>()?
        };
        let damaged = Checksum::from_hex(&live.checksum)?;
        for (id, object) in held {
            let object = Checksum::from_slice(&object)?;
            if object == damaged {
                continue; // the same damaged state
            }
            if let Ok(bytes) = self.read_learner_bytes(&object, limit) {
                let state = self.restore_learner(id, name, now_ms)?;
                return Ok((state, bytes, Some(id)));
            }
        }
        Err(damage)
    }

    /// The learners a backup holds, by name.
    pub fn backup_learners(&self, backup_id: i64) -> Result<Vec<(String, LearnerState)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.learner, s.object, s.size, s.step, s.metrics, b.created_at
             FROM backup_learner_states s JOIN backups b ON b.id = s.backup_id
             WHERE s.backup_id = ?1 ORDER BY s.learner",
        )?;
        let rows = stmt.query_map([backup_id], |r| Ok((r.get(0)?, state_from_row(r, 1)?)))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Every object a row refers to (live or in a backup): what object
    /// collection must keep.
    pub fn learner_objects(&self) -> Result<BTreeSet<Checksum>> {
        let mut stmt = self.conn.prepare(
            "SELECT object FROM learner_live UNION SELECT object FROM backup_learner_states",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = BTreeSet::new();
        for row in rows {
            if let Ok(c) = Checksum::from_slice(&row?) {
                out.insert(c);
            }
        }
        Ok(out)
    }
}

/// Copies every learner's live state into a backup being written (same
/// transaction as the backup row: the cut holds each learner's newest
/// durable state at that instant).
/// A learner's state from an imported snapshot: its object is durable.
#[derive(Clone, Debug)]
pub struct ImportedLearner {
    pub name: String,
    pub format: String,
    pub state: NewLearnerState,
    /// Its bytes, when small enough to keep inside the database (else the
    /// state is an object file already).
    pub inline: Option<super::InlineState>,
}

/// Adds imported learner states to backup `backup_id` (in the import's
/// transaction), registering learners this database did not know.
pub(super) fn insert_imported_learners(
    tx: &rusqlite::Transaction<'_>,
    backup_id: i64,
    learners: &[ImportedLearner],
    now_ms: i64,
) -> Result<()> {
    for l in learners {
        tx.prepare_cached(
            "INSERT INTO learners (name, format, registered_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO NOTHING",
        )?
        .execute(params![l.name, l.format, now_ms])?;
        if let Some(inline) = &l.inline {
            super::learner_bytes::put_inline(tx, inline)?;
        }
        tx.prepare_cached(
            "INSERT INTO backup_learner_states (backup_id, learner, object, size, step, metrics)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            backup_id,
            l.name,
            l.state.object.0.to_vec(),
            l.state.size as i64,
            l.state.step.map(|s| s as i64),
            metrics_json(&l.state.metrics)?,
        ])?;
    }
    Ok(())
}

/// The live states held in slots (see [`Store::live_slots`]), read
/// through `conn` (a transaction too).
fn live_slots_in(conn: &rusqlite::Connection) -> Result<Vec<(String, u8, Checksum)>> {
    let mut stmt = conn
        .prepare_cached("SELECT learner, slot, object FROM learner_live WHERE slot IS NOT NULL")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (learner, slot, object) = row?;
        if let (Ok(slot), Ok(c)) = (u8::try_from(slot), Checksum::from_slice(&object)) {
            out.push((learner, slot, c));
        }
    }
    Ok(out)
}

pub(super) fn include_learners(
    tx: &rusqlite::Transaction<'_>,
    objects: &crate::objects::Objects,
    backup_id: i64,
    proofs: &[crate::objects::SlotProof],
) -> Result<()> {
    // A backup names states by checksum, and a slot is overwritten later:
    // a live state held in a slot becomes the object it is first (a
    // rename), and is found by checksum from now on.
    for (learner, slot, c) in live_slots_in(tx)? {
        objects.adopt_slot(&learner, slot, &c, proofs)?;
        if objects.contains(&c) || super::learner_bytes::is_inline(tx, &c)? {
            tx.execute(
                "UPDATE learner_live SET slot = NULL WHERE learner = ?1",
                [&learner],
            )?;
        }
    }
    tx.prepare_cached(
        "INSERT INTO backup_learner_states (backup_id, learner, object, size, step, metrics)
         SELECT ?1, learner, object, size, step, metrics FROM learner_live",
    )?
    .execute([backup_id])?;
    if crate::iotrace::armed() {
        let named: Vec<(String, Vec<u8>)> = tx
            .prepare("SELECT learner, object FROM learner_live")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?;
        for (learner, object) in named {
            trace_commit(tx, objects, &learner, &Checksum::from_slice(&object)?, None)?;
        }
    }
    Ok(())
}

/// For the power-loss check ([`crate::iotrace`]): the file a row about to
/// be committed names (its slot's, or its object's — none for a state
/// kept inside the database).
pub(super) fn trace_commit(
    tx: &rusqlite::Transaction<'_>,
    objects: &crate::objects::Objects,
    learner: &str,
    object: &Checksum,
    slot: Option<u8>,
) -> Result<()> {
    let named = match slot {
        Some(k) => objects.slot_path(learner, k),
        None if super::learner_bytes::is_inline(tx, object)? => return Ok(()),
        None => objects.path_of(object),
    };
    crate::iotrace::record(|| crate::iotrace::Op::Commit(named));
    Ok(())
}

/// Makes a backup's state of a learner live (next generation), inside the
/// caller's transaction; also returns the state it let go of, if no row
/// refers to that any more (its file goes after the commit).
fn restore_learner_row(
    tx: &rusqlite::Transaction<'_>,
    backup_id: i64,
    name: &str,
    now_ms: i64,
) -> Result<(LearnerState, Option<Checksum>)> {
    let mut state = backup_learner_state_in(tx, backup_id, name)?;
    let object = Checksum::from_hex(&state.checksum)?;
    // A new generation: saves of the line restored away from are refused.
    // A deleted learner is back.
    tx.execute(
        "UPDATE learners SET generation = generation + 1, removed_at = NULL WHERE name = ?1",
        [name],
    )?;
    let freed = set_live_row(
        tx,
        name,
        &object,
        state.size,
        state.step,
        &metrics_json(&state.metrics)?,
        now_ms,
        None,
    )?;
    state.saved_at_ms = now_ms;
    Ok((state, freed))
}

/// Makes `object` a learner's live state inside the caller's transaction
/// (an upsert: a learner known only from an imported backup has no live row
/// yet); returns the state it let go of if no row refers to that any more
/// (its inline copy is gone; its file goes after the commit).
#[allow(clippy::too_many_arguments)]
fn set_live_row(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    object: &Checksum,
    size: u64,
    step: Option<u64>,
    metrics_json: &str,
    at_ms: i64,
    slot: Option<u8>,
) -> Result<Option<Checksum>> {
    // Prepared once per connection: a save runs these every time.
    let replaced: Option<Vec<u8>> = tx
        .prepare_cached("SELECT object FROM learner_live WHERE learner = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    tx.prepare_cached(
        "INSERT INTO learner_live (learner, object, size, step, metrics, saved_at, slot)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (learner) DO UPDATE SET object = excluded.object, size = excluded.size,
           step = excluded.step, metrics = excluded.metrics, saved_at = excluded.saved_at,
           slot = excluded.slot",
    )?
    .execute(params![
        name,
        &object.0[..],
        size.min(i64::MAX as u64) as i64,
        step.map(|s| s.min(i64::MAX as u64) as i64),
        metrics_json,
        at_ms,
        slot.map(i64::from)
    ])?;
    match replaced {
        Some(old) if old[..] != object.0[..] => super::learner_bytes::release(tx, &old),
        _ => Ok(None),
    }
}

/// A backup's state of a learner (`not_found` if it holds none).
fn backup_learner_state_in(
    conn: &rusqlite::Connection,
    backup_id: i64,
    name: &str,
) -> Result<LearnerState> {
    conn.prepare_cached(
        "SELECT s.object, s.size, s.step, s.metrics, b.created_at
         FROM backup_learner_states s JOIN backups b ON b.id = s.backup_id
         WHERE s.backup_id = ?1 AND s.learner = ?2",
    )?
    .query_row(params![backup_id, name], |r| state_from_row(r, 0))
    .optional()?
    .ok_or_else(|| Error::NotFound {
        what: "learner state in backup",
        id: format!("{backup_id}/{name}"),
    })
}
