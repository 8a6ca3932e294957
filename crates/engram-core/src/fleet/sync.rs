//! The push to the fleet catalog: one OS thread with one PostgreSQL
//! connection. Each round takes the queue (`fleet_outbox`) in batches of
//! [`BATCH`] entries, sends each batch as one transaction of set-based
//! upserts (`INSERT … SELECT FROM unnest(…) ON CONFLICT … DO UPDATE`)
//! keyed by (host id, local id), and only once PostgreSQL committed it
//! removes those entries here; then the metric points after each tier's
//! mark. A kill between the two sends the batch again: the upserts are
//! idempotent. A failure leaves the queue as it is, is said in the status
//! and is tried again after a backoff (1 s, doubling, at most a minute).
//!
//! It reads through a read-only connection of its own and takes the
//! writer's store only to remove what was sent and record the attempt, so
//! a slow or absent PostgreSQL never holds back a save or a backup.

use super::{connect, error, fingerprint, read_url};
use crate::error::{Error, ErrorCode, Result};
use crate::store::{FleetBackupRow, FleetPoint, FleetUnitRow, OutboxEntry, PointMark, Store};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Queue entries per transaction.
pub const BATCH: usize = 500;
/// Metric points per transaction.
const POINTS_BATCH: usize = 5_000;
/// How often a member looks for new points without being woken.
const SYNC_EVERY: Duration = Duration::from_secs(2);
/// How often a member that is not syncing anything says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// How often points the host folded or dropped are dropped from the fleet.
const TRIM_EVERY: Duration = Duration::from_secs(600);
/// Points of the last this-many milliseconds are sent again each round:
/// a save written a moment after a later one (a learner's, the engines')
/// is not left behind the mark.
const OVERLAP_MS: i64 = 10_000;
/// The longest wait between attempts while the fleet fails.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often a data directory that is not a member looks again.
const IDLE: Duration = Duration::from_secs(30);

/// The running worker. Dropping it stops it after its current batch.
pub struct Syncer {
    wake: Mutex<Sender<()>>,
    stop: Arc<AtomicBool>,
}

impl Syncer {
    /// Starts the worker over the data directory whose writer's store is
    /// `store`. It does nothing until the data directory joins a fleet.
    pub fn spawn(data_dir: PathBuf, store: Arc<Mutex<Store>>) -> Result<Syncer> {
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            data_dir,
            store: Arc::downgrade(&store),
            stop: stop.clone(),
            conn: None,
            backoff: None,
        };
        std::thread::Builder::new()
            .name("engram-fleet".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| Error::Internal(format!("cannot start the fleet worker: {e}")))?;
        Ok(Syncer {
            wake: Mutex::new(tx),
            stop,
        })
    }

    /// Something changed (a backup committed, a membership).
    pub fn wake(&self) {
        if let Ok(tx) = self.wake.lock() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
    }
}

/// Who this host is in the fleet.
struct Who {
    shown: String,
    host: String,
    fingerprint: String,
}

/// A connection and what was learned on it.
struct Conn {
    client: postgres::Client,
    url: String,
    name: String,
    who: Who,
    /// Per tier: the points sent up to here.
    marks: [Option<PointMark>; 4],
    engines_sent: bool,
    heartbeat: Instant,
    trimmed: Option<Instant>,
}

struct Worker {
    data_dir: PathBuf,
    store: Weak<Mutex<Store>>,
    stop: Arc<AtomicBool>,
    conn: Option<Conn>,
    /// When to try again after a failure, and the wait after the next one.
    backoff: Option<(Instant, Duration)>,
}

impl Worker {
    fn run(mut self, wake: Receiver<()>) {
        loop {
            if self.stop.load(Ordering::SeqCst) || self.store.strong_count() == 0 {
                return;
            }
            let wait = self.round();
            match wake.recv_timeout(wait) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while wake.try_recv().is_ok() {}
        }
    }

    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        let store = self
            .store
            .upgrade()
            .ok_or_else(|| Error::RuntimeStopped("the runtime has stopped".into()))?;
        let mut guard = store
            .lock()
            .map_err(|_| Error::Internal("the store lock is poisoned".into()))?;
        f(&mut guard)
    }

    /// One round; returns how long to wait before the next.
    fn round(&mut self) -> Duration {
        let member = match self.with_store(|s| s.fleet_member()) {
            Ok(Some(m)) => m,
            Ok(None) => {
                self.conn = None;
                self.backoff = None;
                return IDLE;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the fleet membership");
                return IDLE;
            }
        };
        if let Some((due, _)) = self.backoff {
            let now = Instant::now();
            if due > now {
                return due - now;
            }
        }
        match self.sync() {
            Ok(()) => {
                self.backoff = None;
                // A failure said in the status is over even when this round
                // had nothing to send (a batch sent says so itself).
                if member.last_error.is_some() || member.last_success_at_ms.is_none() {
                    let _ = self.with_store(|s| s.fleet_ok(crate::now_ms()));
                }
                SYNC_EVERY
            }
            Err(e) => {
                self.conn = None;
                let wait = self
                    .backoff
                    .map_or(Duration::from_secs(1), |(_, w)| (w * 2).min(MAX_BACKOFF));
                self.backoff = Some((Instant::now() + wait, wait));
                tracing::warn!(error = %e, code = %e.code(), retry_in_s = wait.as_secs(), "fleet sync failed");
                let (code, msg) = (e.code().as_str().to_string(), e.to_string());
                let _ = self.with_store(|s| s.fleet_failed(crate::now_ms(), &code, &msg));
                wait
            }
        }
    }

    fn sync(&mut self) -> Result<()> {
        let url = read_url(&self.data_dir)?.ok_or_else(|| {
            Error::InvalidInput(format!(
                "{} is missing: join the fleet again (engram fleet join postgresql://…)",
                super::conf_path(&self.data_dir).display()
            ))
        })?;
        let (host, name) = self.with_store(|s| {
            let host = s.host_id()?;
            Ok((host, s.host_name()?))
        })?;
        let name = name.unwrap_or_else(super::system_host_name);
        let reader = Store::open_read_only(self.data_dir.join(crate::store::DB_FILE))?;
        // A new URL, host id or name: connect (and claim) again.
        if self
            .conn
            .as_ref()
            .is_none_or(|c| c.url != url || c.who.host != host || c.name != name)
        {
            self.conn = None;
            let fp = fingerprint(&self.data_dir);
            let shown = super::masked(&url);
            let mut client = connect(&url)?;
            super::schema::ensure(&mut client, &shown)?;
            claim(&mut client, &shown, &host, &name, &fp, false)?;
            let marks = marks(&mut client, &shown, &host)?;
            // The catalog holds fewer or more of this host's backups than
            // there are here while nothing waits: it lost rows (restored
            // from an older copy) or kept some: everything goes again.
            let (queued, _) = reader.fleet_queue()?;
            let refused = reader.fleet_member()?.map_or(0, |m| m.refused_rows) as i64;
            let here = reader.count_backups()? as i64;
            let there: i64 = client
                .query_one("SELECT backups FROM hosts WHERE host_id = $1", &[&host])
                .map_err(|e| error(&shown, &e))?
                .get(0);
            if queued == 0 && (there > here || there + refused < here) {
                tracing::warn!(
                    here,
                    there,
                    "the fleet catalog disagrees with this host's backups; sending them all again"
                );
                self.with_store(|s| s.fleet_requeue_all(crate::now_ms()))?;
                client
                    .execute("DELETE FROM backups WHERE host_id = $1", &[&host])
                    .map_err(|e| error(&shown, &e))?;
            }
            self.conn = Some(Conn {
                client,
                url,
                name,
                who: Who {
                    shown,
                    host,
                    fingerprint: fp,
                },
                marks,
                engines_sent: false,
                heartbeat: Instant::now(),
                trimmed: None,
            });
        }
        self.push_queue(&reader)?;
        self.push_points(&reader)?;
        let Some(c) = self.conn.as_mut() else {
            return Ok(());
        };
        if !c.engines_sent {
            let engines = reader.fleet_engines()?;
            let mut tx = c
                .client
                .transaction()
                .map_err(|e| error(&c.who.shown, &e))?;
            still_ours(&mut tx, &c.who)?;
            upsert_units(&mut tx, &c.who.shown, &c.who.host, &engines)?;
            tx.commit().map_err(|e| error(&c.who.shown, &e))?;
            c.engines_sent = true;
        }
        if c.trimmed.is_none_or(|t| t.elapsed() >= TRIM_EVERY) {
            trim(c, &reader)?;
            c.trimmed = Some(Instant::now());
        }
        if c.heartbeat.elapsed() >= HEARTBEAT {
            let mut tx = c
                .client
                .transaction()
                .map_err(|e| error(&c.who.shown, &e))?;
            still_ours(&mut tx, &c.who)?;
            tx.commit().map_err(|e| error(&c.who.shown, &e))?;
            c.heartbeat = Instant::now();
        }
        Ok(())
    }

    /// Sends the queue, batch by batch, until it is empty.
    fn push_queue(&mut self, reader: &Store) -> Result<()> {
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let entries = reader.fleet_outbox(BATCH)?;
            if entries.is_empty() {
                return Ok(());
            }
            let Some(mut conn) = self.conn.take() else {
                return Ok(());
            };
            let sent = self.push_batch(&mut conn, reader, &entries);
            self.conn = Some(conn);
            sent?;
        }
    }

    /// One batch; a row PostgreSQL will not take sends each entry on its
    /// own, the refused ones counted and left out, the rest sent.
    fn push_batch(&self, c: &mut Conn, reader: &Store, entries: &[OutboxEntry]) -> Result<()> {
        {
            let batch = Batch::read(reader, entries)?;
            match batch.send(c) {
                Ok(rows) => {
                    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
                    self.with_store(|s| s.fleet_pushed(&seqs, rows, crate::now_ms()))?;
                }
                Err(Error::Fleet {
                    code: ErrorCode::FleetRefused,
                    message,
                }) if message.starts_with(REFUSED_ROW) => {
                    for e in entries {
                        let one = Batch::read(reader, std::slice::from_ref(e))?;
                        match one.send(c) {
                            Ok(rows) => self
                                .with_store(|s| s.fleet_pushed(&[e.seq], rows, crate::now_ms()))?,
                            Err(Error::Fleet {
                                code: ErrorCode::FleetRefused,
                                message,
                            }) if message.starts_with(REFUSED_ROW) => {
                                let why = format!("{} {}: {message}", e.entity, e.local_id);
                                tracing::error!(entity = %e.entity, id = %e.local_id, error = %message, "the fleet refused a row; it is left out of the catalog");
                                self.with_store(|s| s.fleet_refused(e.seq, &why))?;
                            }
                            Err(other) => return Err(other),
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends each tier's points after its mark.
    fn push_points(&mut self, reader: &Store) -> Result<()> {
        let Some(c) = self.conn.as_mut() else {
            return Ok(());
        };
        for tier in 0..4i16 {
            let slot = tier as usize;
            // The newest points are sent again each round (idempotent): a
            // save written just after a later one is not left behind.
            let mut from = c.marks[slot].as_ref().map(|(at, e, k, b)| {
                if tier == 0 {
                    (at - OVERLAP_MS, String::new(), String::new(), i64::MIN)
                } else {
                    (*at, e.clone(), k.clone(), *b)
                }
            });
            loop {
                if self.stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
                let points = reader.fleet_points(tier, from.as_ref(), POINTS_BATCH)?;
                let Some(last) = points.last() else {
                    break;
                };
                let mark = (
                    last.at_ms,
                    last.engine.clone(),
                    last.key.clone(),
                    last.branch,
                );
                let mut tx = c
                    .client
                    .transaction()
                    .map_err(|e| error(&c.who.shown, &e))?;
                still_ours(&mut tx, &c.who)?;
                upsert_points(&mut tx, &c.who.shown, &c.who.host, &points)?;
                tx.commit().map_err(|e| error(&c.who.shown, &e))?;
                c.heartbeat = Instant::now();
                c.marks[slot] = Some(mark.clone());
                if points.len() < POINTS_BATCH {
                    break;
                }
                from = Some(mark);
            }
        }
        Ok(())
    }
}

/// What a refused row's message starts with.
const REFUSED_ROW: &str = "the fleet refused a row";

/// One batch of the queue, read from the store.
struct Batch {
    upserts: Vec<FleetBackupRow>,
    deletes: Vec<i64>,
    units: Vec<FleetUnitRow>,
    gone_units: Vec<String>,
}

impl Batch {
    fn read(reader: &Store, entries: &[OutboxEntry]) -> Result<Batch> {
        let mut backups = BTreeSet::new();
        let mut learners = BTreeSet::new();
        for e in entries {
            match e.entity.as_str() {
                "backup" => {
                    if let Ok(id) = e.local_id.parse::<i64>() {
                        backups.insert(id);
                    }
                }
                _ => {
                    learners.insert(e.local_id.clone());
                }
            }
        }
        let mut b = Batch {
            upserts: Vec::new(),
            deletes: Vec::new(),
            units: Vec::new(),
            gone_units: Vec::new(),
        };
        for id in backups {
            match reader.fleet_backup(id)? {
                Some(row) => b.upserts.push(row),
                None => b.deletes.push(id),
            }
        }
        for name in learners {
            match reader.fleet_learner(&name)? {
                Some(row) => b.units.push(row),
                None => b.gone_units.push(name),
            }
        }
        Ok(b)
    }

    fn rows(&self) -> u64 {
        (self.upserts.len() + self.deletes.len() + self.units.len() + self.gone_units.len()) as u64
    }

    /// One transaction; returns the rows it carried.
    fn send(&self, c: &mut Conn) -> Result<u64> {
        let shown = c.who.shown.clone();
        let err = |e: postgres::Error| error(&shown, &e);
        let mut tx = c.client.transaction().map_err(err)?;
        still_ours(&mut tx, &c.who)?;
        upsert_units(&mut tx, &shown, &c.who.host, &self.units)?;
        if !self.gone_units.is_empty() {
            tx.execute(
                "DELETE FROM units WHERE host_id = $1 AND name = ANY($2)",
                &[&c.who.host, &self.gone_units],
            )
            .map_err(err)?;
        }
        upsert_backups(&mut tx, &shown, &c.who.host, &self.upserts)?;
        if !self.deletes.is_empty() {
            tx.execute(
                "DELETE FROM backups WHERE host_id = $1 AND local_id = ANY($2)",
                &[&c.who.host, &self.deletes],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        c.heartbeat = Instant::now();
        Ok(self.rows())
    }
}

/// Claims `host` in the fleet: adds it, or finds it with this fingerprint
/// (then updates its name and version). Another fingerprint is a conflict
/// unless `take_over` (a data directory that moved to another machine).
pub fn claim(
    client: &mut postgres::Client,
    shown: &str,
    host: &str,
    name: &str,
    fp: &str,
    take_over: bool,
) -> Result<()> {
    let err = |e: postgres::Error| error(shown, &e);
    let now = crate::now_ms();
    let version = env!("CARGO_PKG_VERSION");
    let rows = client
        .query(
            "INSERT INTO hosts (host_id, name, fingerprint, joined_at, engram_version)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (host_id) DO UPDATE
               SET name = EXCLUDED.name, engram_version = EXCLUDED.engram_version,
                   fingerprint = CASE WHEN $6 THEN EXCLUDED.fingerprint ELSE hosts.fingerprint END
             WHERE hosts.fingerprint = EXCLUDED.fingerprint OR $6
             RETURNING host_id",
            &[&host, &name, &fp, &now, &version, &take_over],
        )
        .map_err(err)?;
    if rows.is_empty() {
        let other: String = client
            .query_one("SELECT name FROM hosts WHERE host_id = $1", &[&host])
            .map_err(err)?
            .get(0);
        return Err(conflict(host, &other));
    }
    Ok(())
}

fn conflict(host: &str, other: &str) -> Error {
    Error::Fleet {
        code: ErrorCode::FleetConflict,
        message: format!(
            "the host id {host} is already in the fleet as {other:?}, from another machine or data directory: if this data directory is a copy, join with --new-id; if it moved here, join with --take-over"
        ),
    }
}

/// Inside every transaction: this data directory still holds its id (a
/// copy that took it over stops this one), and its last sync is now.
fn still_ours(tx: &mut postgres::Transaction<'_>, c: &Who) -> Result<()> {
    let n = tx
        .execute(
            "UPDATE hosts SET last_sync_at = $3 WHERE host_id = $1 AND fingerprint = $2",
            &[&c.host, &c.fingerprint, &crate::now_ms()],
        )
        .map_err(|e| error(&c.shown, &e))?;
    if n == 0 {
        let other = tx
            .query_opt("SELECT name FROM hosts WHERE host_id = $1", &[&c.host])
            .map_err(|e| error(&c.shown, &e))?
            .map(|r| r.get::<_, String>(0));
        return Err(match other {
            Some(o) => conflict(&c.host, &o),
            None => Error::Fleet {
                code: ErrorCode::FleetRefused,
                message: format!(
                    "this host ({}) was removed from the fleet: join it again to sync",
                    c.host
                ),
            },
        });
    }
    Ok(())
}

/// Per tier, where the fleet's points of `host` end.
fn marks(client: &mut postgres::Client, shown: &str, host: &str) -> Result<[Option<PointMark>; 4]> {
    let mut out: [Option<PointMark>; 4] = Default::default();
    for row in client
        .query(
            "SELECT tier, max(at_ms) FROM metric_points WHERE host_id = $1 GROUP BY tier",
            &[&host],
        )
        .map_err(|e| error(shown, &e))?
    {
        let tier: i16 = row.get(0);
        let at: i64 = row.get(1);
        if let Some(slot) = out.get_mut(tier as usize) {
            // Everything at the newest time is sent again.
            *slot = Some((at - 1, String::new(), String::new(), i64::MAX));
        }
    }
    Ok(out)
}

/// Drops from the fleet the points this host folded into coarser tiers or
/// dropped (older than its oldest point of that tier).
fn trim(c: &mut Conn, reader: &Store) -> Result<()> {
    let oldest = reader.fleet_oldest_points()?;
    for (tier, at) in oldest.iter().enumerate() {
        if let Some(at) = at {
            c.client
                .execute(
                    "DELETE FROM metric_points WHERE host_id = $1 AND tier = $2 AND at_ms < $3",
                    &[&c.who.host, &(tier as i16), at],
                )
                .map_err(|e| error(&c.who.shown, &e))?;
        }
    }
    Ok(())
}

fn upsert_units(
    tx: &mut postgres::Transaction<'_>,
    shown: &str,
    host: &str,
    units: &[FleetUnitRow],
) -> Result<()> {
    if units.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
    let kinds: Vec<&str> = units.iter().map(|u| u.kind).collect();
    let formats: Vec<Option<&str>> = units.iter().map(|u| u.format.as_deref()).collect();
    let registered: Vec<Option<i64>> = units.iter().map(|u| u.registered_at_ms).collect();
    let removed: Vec<Option<i64>> = units.iter().map(|u| u.removed_at_ms).collect();
    tx.execute(
        "INSERT INTO units (host_id, name, kind, format, registered_at, removed_at)
         SELECT $1, u.name, u.kind, u.format, u.registered_at, u.removed_at
         FROM unnest($2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[])
              AS u(name, kind, format, registered_at, removed_at)
         ON CONFLICT (host_id, name) DO UPDATE
           SET kind = EXCLUDED.kind, format = EXCLUDED.format,
               registered_at = EXCLUDED.registered_at, removed_at = EXCLUDED.removed_at",
        &[&host, &names, &kinds, &formats, &registered, &removed],
    )
    .map_err(|e| refused_or(shown, &e))?;
    Ok(())
}

/// The set-based upsert of backups: one statement for the whole batch.
pub fn upsert_backups(
    tx: &mut postgres::Transaction<'_>,
    shown: &str,
    host: &str,
    rows: &[FleetBackupRow],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    let times: Vec<i64> = rows.iter().map(|r| r.created_at_ms).collect();
    let labels: Vec<Option<&str>> = rows.iter().map(|r| r.label.as_deref()).collect();
    let pins: Vec<bool> = rows.iter().map(|r| r.pinned).collect();
    let milestones: Vec<Option<&str>> = rows.iter().map(|r| r.milestone.as_deref()).collect();
    let origins: Vec<Option<&str>> = rows.iter().map(|r| r.origin.as_deref()).collect();
    let states: Vec<&str> = rows.iter().map(|r| r.states.as_str()).collect();
    let names: Vec<String> = rows
        .iter()
        .map(|r| serde_json::Value::from(r.names.clone()).to_string())
        .collect();
    let bytes: Vec<i64> = rows.iter().map(|r| r.bytes).collect();
    let replica: Vec<&str> = rows.iter().map(|r| r.replica.as_str()).collect();
    tx.execute(
        "INSERT INTO backups (host_id, local_id, kind, created_at, label, pinned, milestone, origin,
                              states, names, bytes, replica)
         SELECT $1, u.id, u.kind, u.created_at, u.label, u.pinned, u.milestone::jsonb,
                u.origin::jsonb, u.states::jsonb,
                ARRAY(SELECT jsonb_array_elements_text(u.names::jsonb)), u.bytes, u.replica::jsonb
         FROM unnest($2::int8[], $3::text[], $4::int8[], $5::text[], $6::bool[], $7::text[],
                     $8::text[], $9::text[], $10::text[], $11::int8[], $12::text[])
              AS u(id, kind, created_at, label, pinned, milestone, origin, states, names, bytes,
                   replica)
         ON CONFLICT (host_id, local_id) DO UPDATE
           SET kind = EXCLUDED.kind, created_at = EXCLUDED.created_at, label = EXCLUDED.label,
               pinned = EXCLUDED.pinned, milestone = EXCLUDED.milestone,
               origin = EXCLUDED.origin, states = EXCLUDED.states, names = EXCLUDED.names,
               bytes = EXCLUDED.bytes, replica = EXCLUDED.replica
         WHERE (backups.kind, backups.created_at, backups.label, backups.pinned,
                backups.milestone, backups.origin, backups.states, backups.names,
                backups.bytes, backups.replica)
               IS DISTINCT FROM
               (EXCLUDED.kind, EXCLUDED.created_at, EXCLUDED.label, EXCLUDED.pinned,
                EXCLUDED.milestone, EXCLUDED.origin, EXCLUDED.states, EXCLUDED.names,
                EXCLUDED.bytes, EXCLUDED.replica)",
        &[
            &host, &ids, &kinds, &times, &labels, &pins, &milestones, &origins, &states, &names,
            &bytes, &replica,
        ],
    )
    .map_err(|e| refused_or(shown, &e))?;
    Ok(())
}

/// One backup row per statement: what a batch replaces (kept for the
/// benchmark that compares the two).
pub fn insert_backup_alone(
    tx: &mut postgres::Transaction<'_>,
    shown: &str,
    host: &str,
    r: &FleetBackupRow,
) -> Result<()> {
    let names = serde_json::Value::from(r.names.clone()).to_string();
    tx.execute(
        "INSERT INTO backups (host_id, local_id, kind, created_at, label, pinned, milestone, origin,
                              states, names, bytes, replica)
         VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8::text::jsonb, $9::text::jsonb,
                 ARRAY(SELECT jsonb_array_elements_text($10::text::jsonb)), $11, $12::text::jsonb)
         ON CONFLICT (host_id, local_id) DO UPDATE
           SET kind = EXCLUDED.kind, created_at = EXCLUDED.created_at, label = EXCLUDED.label,
               pinned = EXCLUDED.pinned, milestone = EXCLUDED.milestone,
               origin = EXCLUDED.origin, states = EXCLUDED.states, names = EXCLUDED.names,
               bytes = EXCLUDED.bytes, replica = EXCLUDED.replica",
        &[
            &host,
            &r.id,
            &r.kind,
            &r.created_at_ms,
            &r.label,
            &r.pinned,
            &r.milestone,
            &r.origin,
            &r.states,
            &names,
            &r.bytes,
            &r.replica,
        ],
    )
    .map_err(|e| refused_or(shown, &e))?;
    Ok(())
}

fn upsert_points(
    tx: &mut postgres::Transaction<'_>,
    shown: &str,
    host: &str,
    points: &[FleetPoint],
) -> Result<()> {
    let engines: Vec<&str> = points.iter().map(|p| p.engine.as_str()).collect();
    let keys: Vec<&str> = points.iter().map(|p| p.key.as_str()).collect();
    let tiers: Vec<i16> = points.iter().map(|p| p.tier).collect();
    let ats: Vec<i64> = points.iter().map(|p| p.at_ms).collect();
    let branches: Vec<i64> = points.iter().map(|p| p.branch).collect();
    let values: Vec<Option<f64>> = points.iter().map(|p| p.value).collect();
    let mins: Vec<Option<f64>> = points.iter().map(|p| p.min).collect();
    let maxs: Vec<Option<f64>> = points.iter().map(|p| p.max).collect();
    let ns: Vec<i32> = points
        .iter()
        .map(|p| p.n.clamp(0, i32::MAX as i64) as i32)
        .collect();
    tx.execute(
        "INSERT INTO metric_points (host_id, engine, key, tier, at_ms, branch, value, min, max, n)
         SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::int2[], $5::int8[], $6::int8[],
                                    $7::float8[], $8::float8[], $9::float8[], $10::int4[]) AS u
         ON CONFLICT (host_id, engine, key, tier, branch, at_ms) DO UPDATE
           SET value = EXCLUDED.value, min = EXCLUDED.min, max = EXCLUDED.max, n = EXCLUDED.n
         WHERE (metric_points.value, metric_points.min, metric_points.max, metric_points.n)
               IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.min, EXCLUDED.max, EXCLUDED.n)",
        &[
            &host, &engines, &keys, &tiers, &ats, &branches, &values, &mins, &maxs, &ns,
        ],
    )
    .map_err(|e| refused_or(shown, &e))?;
    Ok(())
}

/// A statement's failure; a constraint's says so in a way the queue
/// recognises (the row is then left out, not retried forever).
fn refused_or(shown: &str, e: &postgres::Error) -> Error {
    if let Some(db) = e.as_db_error()
        && db.code().code().starts_with("23")
    {
        return Error::Fleet {
            code: ErrorCode::FleetRefused,
            message: format!(
                "{REFUSED_ROW}: {}{}",
                db.message(),
                db.detail().map(|d| format!(" ({d})")).unwrap_or_default()
            ),
        };
    }
    error(shown, e)
}
