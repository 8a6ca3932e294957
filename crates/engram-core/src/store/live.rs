//! Live states: one row per engine, overwritten in place by every autosave,
//! stored inline and uncompressed (the hot path).

use super::Store;
use super::blob::{metrics_json, parse_metrics};
use super::types::{EngineState, validate_engine_name};
use crate::error::Result;
use crate::wire::Metrics;
use rusqlite::params;
use std::collections::BTreeMap;

impl Store {
    /// Overwrites the live state of each given engine, in one transaction.
    /// Durable when it returns.
    pub fn save_live(&mut self, states: &[EngineState], saved_at_ms: i64) -> Result<()> {
        let tx = self.conn.transaction()?;
        upsert_live(&tx, states, saved_at_ms, false)?;
        tx.commit()?;
        Ok(())
    }

    /// Overwrites the live state and records its metrics in the history on
    /// `branch`, in one transaction (one fsync per autosave, as before).
    pub fn save_live_with_history(
        &mut self,
        states: &[EngineState],
        saved_at_ms: i64,
        branch: i64,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        upsert_live(&tx, states, saved_at_ms, false)?;
        super::history::record_points(
            &tx,
            saved_at_ms,
            branch,
            states.iter().map(|s| (&s.engine, &s.metrics)),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// When the live state was last saved (newest engine), if ever.
    /// Removes `engine`'s live state and returns its stored bytes (None if
    /// it had none), so that the next launch falls back to the engine's
    /// newest backup.
    pub fn take_live(&mut self, engine: &str) -> Result<Option<Vec<u8>>> {
        use rusqlite::OptionalExtension as _;
        let tx = self.conn.transaction()?;
        let data: Option<Vec<u8>> = tx
            .query_row(
                "SELECT data FROM live_states WHERE engine = ?1",
                [engine],
                |r| super::blob::blob_col(r, 0),
            )
            .optional()?;
        tx.execute("DELETE FROM live_states WHERE engine = ?1", [engine])?;
        tx.commit()?;
        Ok(data)
    }

    pub fn live_saved_at(&self) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT max(saved_at) FROM live_states", [], |r| r.get(0))?)
    }

    /// Every engine's live state as last saved, checked as a launch checks
    /// it (a damaged one is an error naming it), with its metrics.
    pub fn live_states(&self) -> Result<Vec<EngineState>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT engine, checksum, raw_len, data, metrics FROM live_states ORDER BY engine",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                super::blob::blob_col(r, 1)?,
                r.get::<_, i64>(2)?,
                super::blob::blob_col(r, 3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (engine, sum, raw_len, data, metrics) = row?;
            let state = super::blob::open_live(&engine, &sum, raw_len, &data)?;
            out.push(EngineState {
                engine,
                state,
                metrics: parse_metrics(&metrics),
            });
        }
        Ok(out)
    }

    /// Metrics of the live states, without decoding them.
    pub fn live_metrics(&self) -> Result<BTreeMap<String, (Metrics, i64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT engine, metrics, saved_at FROM live_states ORDER BY engine")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (engine, metrics, at) = row?;
            out.insert(engine, (parse_metrics(&metrics), at));
        }
        Ok(out)
    }
}

/// Writes live rows inside `tx`. With `only_if_newer`, a row changes only
/// when `saved_at_ms` (the instant the state was captured) is not older than
/// the one it replaces: a cut taken before the last autosave never wins.
pub(super) fn upsert_live(
    tx: &rusqlite::Transaction<'_>,
    states: &[EngineState],
    saved_at_ms: i64,
    only_if_newer: bool,
) -> Result<()> {
    let sql = format!(
        "INSERT INTO live_states (engine, checksum, raw_len, data, metrics, saved_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (engine) DO UPDATE SET checksum = excluded.checksum,
           raw_len = excluded.raw_len, data = excluded.data,
           metrics = excluded.metrics, saved_at = excluded.saved_at{}",
        if only_if_newer {
            " WHERE live_states.saved_at <= excluded.saved_at"
        } else {
            ""
        }
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    for s in states {
        validate_engine_name(&s.engine)?;
        stmt.execute(params![
            s.engine,
            &s.state.checksum().0[..],
            s.state.len() as i64,
            s.state.as_bytes(),
            metrics_json(&s.metrics)?,
            saved_at_ms
        ])?;
    }
    Ok(())
}
