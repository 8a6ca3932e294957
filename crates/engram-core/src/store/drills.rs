//! Restore drills kept with their backups, and learners' drill commands.

use super::Store;
use super::blob::{metrics_json, parse_metrics};
use crate::error::{Error, Result};
use crate::wire::DrillResult;
use rusqlite::{OptionalExtension, params};

/// A learner's drill command as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrillCommand {
    pub argv: Vec<String>,
    pub timeout_ms: u64,
    pub workdir: String,
}

impl Store {
    /// Keeps drill results with backup `id` (`not_found` if it is gone).
    pub fn record_drills(&mut self, id: i64, results: &[DrillResult]) -> Result<()> {
        self.get_backup(id)?;
        let tx = self.conn.transaction()?;
        for r in results {
            tx.prepare_cached(
                "INSERT INTO drills (backup_id, unit, at_ms, took_ms, metrics, reported, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                id,
                r.unit,
                r.at_ms,
                r.took_ms as i64,
                metrics_json(&r.metrics)?,
                metrics_json(&r.reported)?,
                r.error
            ])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Backup `id`'s drills, newest first (`not_found` for an unknown one).
    pub fn drills(&self, id: i64) -> Result<Vec<DrillResult>> {
        self.get_backup(id)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT unit, at_ms, took_ms, metrics, reported, error FROM drills
             WHERE backup_id = ?1 ORDER BY at_ms DESC, id DESC",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(DrillResult {
                unit: r.get(0)?,
                at_ms: r.get(1)?,
                took_ms: r.get::<_, i64>(2)?.max(0) as u64,
                metrics: parse_metrics(&r.get::<_, String>(3)?),
                reported: parse_metrics(&r.get::<_, String>(4)?),
                error: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Sets a learner's drill command (an unknown learner: `not_found`).
    pub fn set_learner_drill(&mut self, name: &str, cmd: &DrillCommand) -> Result<()> {
        self.learner(name)?;
        if cmd.argv.is_empty() || cmd.argv[0].trim().is_empty() {
            return Err(Error::InvalidInput(
                "a drill command needs a program".into(),
            ));
        }
        let argv = serde_json::to_string(&cmd.argv).map_err(|e| Error::Encode(e.to_string()))?;
        self.conn.execute(
            "INSERT INTO learner_drills (learner, argv, timeout_ms, workdir) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (learner) DO UPDATE SET argv = ?2, timeout_ms = ?3, workdir = ?4",
            params![name, argv, cmd.timeout_ms as i64, cmd.workdir],
        )?;
        Ok(())
    }

    /// Removes a learner's drill command (none: nothing happens).
    pub fn remove_learner_drill(&mut self, name: &str) -> Result<()> {
        self.learner(name)?;
        self.conn
            .execute("DELETE FROM learner_drills WHERE learner = ?1", [name])?;
        Ok(())
    }

    /// A learner's drill command, if it has one.
    pub fn learner_drill(&self, name: &str) -> Result<Option<DrillCommand>> {
        let row: Option<(String, i64, String)> = self
            .conn
            .prepare_cached(
                "SELECT argv, timeout_ms, workdir FROM learner_drills WHERE learner = ?1",
            )?
            .query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        row.map(|(argv, timeout_ms, workdir)| {
            let argv = serde_json::from_str(&argv)
                .map_err(|e| Error::corrupt("learner drill command", e.to_string()))?;
            Ok(DrillCommand {
                argv,
                timeout_ms: timeout_ms.max(0) as u64,
                workdir,
            })
        })
        .transpose()
    }
}
