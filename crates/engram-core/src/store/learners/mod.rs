//! Learners: engines whose code runs in another process. The store keeps
//! who they are (name, their own state format), their newest durable state
//! (a content-addressed object, see [`crate::objects`]) and, in every backup
//! cut, the state each had at that instant. The object must be durable
//! before any row names it; this module only writes rows.
//!
//! Rooms: this file (who learners are: register, list, describe, delete,
//! command), [`rules`] (what a learner may declare: names, formats,
//! milestone rules, metric descriptions, commands), `live` (their live
//! states: saves, slots, reads) and `backups` (their states in backup cuts:
//! include, import, restore).

mod backups;
mod live;
pub mod rules;

pub use backups::ImportedLearner;
pub(super) use backups::{include_learners, insert_imported_learners};
pub(super) use live::trace_commit;
use rules::validate_format;
pub use rules::{BUILT_IN, validate_learner_name, validate_metric_info, validate_milestone_rules};

use super::Store;
use super::blob::parse_metrics;
use crate::codec::Checksum;
use crate::error::{Error, Result};
use crate::wire::Metrics;
use crate::wire::{
    LearnerCommand, LearnerInfo, LearnerMetric, LearnerState, MilestoneRule, RemovedLearner,
};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

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

pub(super) fn state_from_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<LearnerState> {
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
        // A new run: a stop asked of the previous one is not for it, and
        // its curves do not join the previous run's.
        tx.execute(
            "UPDATE learners SET stop_requested_at = NULL WHERE name = ?1",
            [name],
        )?;
        super::history::insert_run(&tx, name, now_ms)?;
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
        tx.execute("DELETE FROM learner_drills WHERE learner = ?1", [name])?;
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
}
