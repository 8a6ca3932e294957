//! Integrity: verifying stored states and the database, and loading the live
//! state with a fallback to the newest good backup when it is damaged.

use super::blob::{blob_col, open_blob, open_live, parse_metrics};
use super::{EngineState, Store};
use crate::codec::EncodedState;
use crate::error::{Error, ErrorCode, Result};
use crate::wire::Metrics;
use crate::wire::{IntegrityReport, SkipNote, VerifyProblem};
use serde::Serialize;
use std::collections::BTreeMap;

impl IntegrityReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.database_ok && self.problems.is_empty()
    }
}

/// Where a loaded state came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StateSource {
    Live { saved_at_ms: i64 },
    Backup { id: i64, created_at_ms: i64 },
}

/// One engine's state as loaded at start-up.
#[derive(Clone, Debug)]
pub struct LoadedState {
    pub state: EncodedState,
    pub metrics: Metrics,
    pub source: StateSource,
}

/// The result of [`Store::load_live`].
#[derive(Clone, Debug, Default)]
pub struct LiveLoad {
    /// Loaded engines. An engine absent here has no good state anywhere.
    pub states: BTreeMap<String, LoadedState>,
    /// What was damaged and passed over, for the UI and the log.
    pub skipped: Vec<SkipNote>,
}

impl Store {
    /// Loads the live state of each engine in `engines`. A live state that is
    /// missing or fails its checks is replaced by that engine's state in the
    /// newest backup that passes them; everything passed over is reported.
    pub fn load_live(&self, engines: &[&str]) -> Result<LiveLoad> {
        let mut out = LiveLoad::default();
        for &engine in engines {
            match self.read_live(engine) {
                Ok(Some(s)) => {
                    out.states.insert(engine.to_string(), s);
                    continue;
                }
                Ok(None) => {}
                Err(e) => out.skipped.push(SkipNote {
                    engine: engine.to_string(),
                    what: "live".into(),
                    code: e.code(),
                    detail: e.to_string(),
                }),
            }
            if let Some(s) = self.newest_good_backup_state(engine, &mut out.skipped)? {
                out.states.insert(engine.to_string(), s);
            }
        }
        Ok(out)
    }

    fn read_live(&self, engine: &str) -> Result<Option<LoadedState>> {
        let row = self
            .conn()
            .prepare_cached(
                "SELECT checksum, raw_len, data, metrics, saved_at FROM live_states WHERE engine = ?1",
            )?
            .query_row([engine], |r| {
                Ok((
                    blob_col(r, 0)?,
                    r.get::<_, i64>(1)?,
                    blob_col(r, 2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            });
        let (sum, raw_len, data, metrics, saved_at) = match row {
            Ok(r) => r,
            Err(rusqlite::Error::QueryReturnedNoRows) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let state = open_live(engine, &sum, raw_len, &data)?;
        Ok(Some(LoadedState {
            state,
            metrics: parse_metrics(&metrics),
            source: StateSource::Live {
                saved_at_ms: saved_at,
            },
        }))
    }

    fn newest_good_backup_state(
        &self,
        engine: &str,
        skipped: &mut Vec<SkipNote>,
    ) -> Result<Option<LoadedState>> {
        // Candidate ids first (cheap), then open states one by one.
        let candidates: Vec<(i64, i64)> = {
            let stmt = self.conn().prepare_cached(
                "SELECT b.id, b.created_at FROM backups b
                 JOIN backup_states s ON s.backup_id = b.id AND s.engine = ?1
                 ORDER BY b.created_at DESC, b.id DESC",
            );
            match stmt {
                Ok(mut stmt) => match stmt
                    .query_map([engine], |r| Ok((r.get(0)?, r.get(1)?)))
                    .and_then(|rows| rows.collect())
                {
                    Ok(v) => v,
                    Err(e) => {
                        skipped.push(skip(engine, "backup index", &e.into()));
                        return Ok(None);
                    }
                },
                Err(e) => {
                    skipped.push(skip(engine, "backup index", &e.into()));
                    return Ok(None);
                }
            }
        };
        for (id, created_at) in candidates {
            match self.backup_state(id, engine) {
                Ok(s) => {
                    return Ok(Some(LoadedState {
                        state: s.state,
                        metrics: s.metrics,
                        source: StateSource::Backup {
                            id,
                            created_at_ms: created_at,
                        },
                    }));
                }
                Err(e) => skipped.push(skip(engine, &format!("backup {id}"), &e)),
            }
        }
        Ok(None)
    }

    /// One engine's state from one backup, checked.
    pub fn backup_state(&self, id: i64, engine: &str) -> Result<EngineState> {
        let row = self
            .conn()
            .prepare_cached(
                "SELECT s.metrics, b.checksum, b.raw_len, b.data, b.codec
                 FROM backup_states s JOIN blobs b ON b.id = s.blob_id
                 WHERE s.backup_id = ?1 AND s.engine = ?2",
            )?
            .query_row(rusqlite::params![id, engine], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    blob_col(r, 1)?,
                    r.get::<_, i64>(2)?,
                    blob_col(r, 3)?,
                    r.get::<_, i64>(4)?,
                ))
            });
        let (metrics, sum, raw_len, data, codec) = match row {
            Ok(r) => r,
            Err(rusqlite::Error::QueryReturnedNoRows) => {
                return Err(Error::NotFound {
                    what: "engine state",
                    id: format!("{engine} in backup {id}"),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let state = open_blob(
            &format!("{engine} in backup {id}"),
            &sum,
            raw_len,
            codec,
            &data,
        )?;
        Ok(EngineState {
            engine: engine.to_string(),
            state,
            metrics: parse_metrics(&metrics),
        })
    }

    /// Verifies one backup: every state decompresses, matches its checksum
    /// and decodes. Returns the problems (empty when good).
    pub fn verify_backup(&self, id: i64) -> Result<Vec<VerifyProblem>> {
        Ok(self.verify_info(&self.get_backup(id)?))
    }

    fn verify_info(&self, info: &crate::store::BackupInfo) -> Vec<VerifyProblem> {
        let id = info.id;
        let mut problems = Vec::new();
        if info.engines.is_empty() {
            problems.push(VerifyProblem {
                backup_id: Some(id),
                engine: None,
                code: ErrorCode::CorruptState,
                detail: "backup holds no engine states".into(),
            });
        }
        for e in &info.engines {
            if let Err(err) = self.backup_state(id, &e.name) {
                problems.push(VerifyProblem {
                    backup_id: Some(id),
                    engine: Some(e.name.clone()),
                    code: err.code(),
                    detail: err.to_string(),
                });
            }
        }
        problems
    }

    /// Verifies the database (`quick_check`, or the slower `integrity_check`
    /// when `full`), every live state and every backup.
    /// Checks every learner state object a row refers to (each distinct one
    /// read and hashed once); a missing or damaged one is a problem of every
    /// live state and backup that names it.
    fn verify_learner_objects(&self, report: &mut IntegrityReport) -> Result<()> {
        let rows: Vec<(Option<i64>, String, Vec<u8>)> = self
            .conn()
            .prepare(
                "SELECT NULL, learner, object FROM learner_live
                 UNION ALL SELECT backup_id, learner, object FROM backup_learner_states
                 ORDER BY 3",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<std::result::Result<_, _>>()?;
        let mut verdicts: std::collections::BTreeMap<Vec<u8>, Option<Error>> = Default::default();
        for (backup_id, learner, object) in rows {
            report.states_checked += 1;
            // A live state may be held in the learner's slot (its own file).
            let live = backup_id.is_none().then(|| {
                crate::Checksum::from_slice(&object)
                    .and_then(|c| self.verify_live_learner_bytes(&learner, &c))
                    .err()
            });
            let verdict = match &live {
                Some(v) => v,
                None => verdicts.entry(object.clone()).or_insert_with(|| {
                    crate::Checksum::from_slice(&object)
                        .and_then(|c| self.verify_learner_bytes(&c))
                        .err()
                }),
            };
            if let Some(e) = verdict {
                report.problems.push(VerifyProblem {
                    backup_id,
                    engine: Some(learner),
                    code: e.code(),
                    detail: e.to_string(),
                });
            }
        }
        Ok(())
    }

    pub fn verify_all(&self, full: bool) -> Result<IntegrityReport> {
        let mut report = IntegrityReport::default();
        match self.database_check(full) {
            Ok(lines) if lines == ["ok"] => report.database_ok = true,
            Ok(lines) => report.problems.push(VerifyProblem {
                backup_id: None,
                engine: None,
                code: ErrorCode::CorruptDatabase,
                detail: lines.join("; "),
            }),
            Err(e) => report.problems.push(VerifyProblem {
                backup_id: None,
                engine: None,
                code: e.code(),
                detail: e.to_string(),
            }),
        }
        let engines: Vec<String> = self
            .conn()
            .prepare("SELECT engine FROM live_states ORDER BY engine")?
            .query_map([], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        for engine in engines {
            report.states_checked += 1;
            if let Err(e) = self.read_live(&engine) {
                report.problems.push(VerifyProblem {
                    backup_id: None,
                    engine: Some(engine),
                    code: e.code(),
                    detail: e.to_string(),
                });
            }
        }
        let ids: Vec<i64> = self
            .conn()
            .prepare("SELECT id FROM backups ORDER BY id")?
            .query_map([], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        for id in ids {
            report.backups_checked += 1;
            // One read of the backup's summary serves both the count and the checks.
            let info = self.get_backup(id)?;
            report.states_checked += info.engines.len() as u64;
            report.problems.extend(self.verify_info(&info));
        }
        self.verify_learner_objects(&mut report)?;
        Ok(report)
    }

    /// `PRAGMA quick_check` (or `integrity_check` when `full`): `["ok"]` when healthy.
    pub fn database_check(&self, full: bool) -> Result<Vec<String>> {
        let pragma = if full {
            "integrity_check"
        } else {
            "quick_check"
        };
        let mut stmt = self.conn().prepare(&format!("PRAGMA {pragma}"))?;
        let lines = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(lines)
    }
}

fn skip(engine: &str, what: &str, e: &Error) -> SkipNote {
    SkipNote {
        engine: engine.to_string(),
        what: what.to_string(),
        code: e.code(),
        detail: e.to_string(),
    }
}
