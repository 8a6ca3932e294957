//! What the doors show of the fleet, read from PostgreSQL only (a host
//! that is down is still listed, marked stale): hosts, backups of every
//! host, one backup. One connection, kept and shared by the calls in turn
//! (with the worker's, at most two per host).

use super::{connect, error, masked};
use crate::error::{Error, Result};
use crate::wire::{
    BackupKind, FleetBackup, FleetBackupPage, FleetBackupsQuery, FleetCursor, FleetHost, FleetState,
};
use std::sync::Mutex;

/// Hosts that synced within this long are live; older ones are stale.
pub const STALE_AFTER_MS: i64 = 60_000;
/// The longest page.
const MAX_PAGE: u32 = 1_000;

/// The reads' connection: made on first use, made again after a failure.
#[derive(Default)]
pub struct Reader {
    conn: Mutex<Option<(String, postgres::Client)>>,
}

impl Reader {
    /// Runs `f` on a connection to `url` (one kept; a broken one is made
    /// again once).
    pub fn with<T>(
        &self,
        url: &str,
        f: impl Fn(&mut postgres::Client, &str) -> Result<T>,
    ) -> Result<T> {
        let shown = masked(url);
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| Error::Internal("the fleet reader's lock is poisoned".into()))?;
        for attempt in 0..2 {
            if guard
                .as_ref()
                .is_none_or(|(u, c)| u != url || c.is_closed())
            {
                *guard = None;
                let mut client = connect(url)?;
                super::schema::check(&mut client, &shown)?;
                *guard = Some((url.to_string(), client));
            }
            let Some((_, client)) = guard.as_mut() else {
                continue;
            };
            match f(client, &shown) {
                Err(e) if attempt == 0 && client.is_closed() => {
                    tracing::debug!(error = %e, "the fleet reader's connection closed; connecting again");
                    *guard = None;
                }
                other => return other,
            }
        }
        Err(Error::Internal(
            "unreachable: the fleet reader gave up".into(),
        ))
    }
}

impl Drop for Reader {
    /// The blocking client runs a runtime of its own, which may not be
    /// dropped inside an async task (the `Api` is): it goes on a thread.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.get_mut().ok().and_then(|c| c.take()) {
            let _ = std::thread::Builder::new()
                .name("engram-fleet-close".into())
                .spawn(move || drop(conn));
        }
    }
}

/// Every host of the fleet, by name.
pub fn hosts(client: &mut postgres::Client, shown: &str, me: &str) -> Result<Vec<FleetHost>> {
    let rows = client
        .query(
            "SELECT h.host_id, h.name, h.joined_at, h.last_sync_at, h.engram_version, h.backups,
                    (SELECT max(created_at) FROM backups b WHERE b.host_id = h.host_id),
                    (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint,
                    ARRAY(SELECT name FROM units u
                          WHERE u.host_id = h.host_id AND u.removed_at IS NULL ORDER BY name)
             FROM hosts h ORDER BY h.name, h.host_id",
            &[],
        )
        .map_err(|e| error(shown, &e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let host_id: String = r.get(0);
            let last: Option<i64> = r.get(3);
            let now: i64 = r.get(7);
            let lag = last.map(|l| (now - l).max(0));
            FleetHost {
                this_host: host_id == me,
                host_id,
                name: r.get(1),
                joined_at_ms: r.get(2),
                last_sync_at_ms: last,
                lag_ms: lag,
                stale: lag.is_none_or(|l| l > STALE_AFTER_MS),
                engram_version: r.get(4),
                backups: r.get::<_, i64>(5).max(0) as u64,
                newest_backup_ms: r.get(6),
                units: r.get(8),
            }
        })
        .collect())
}

/// A host by its id or its name (a name two hosts share is refused).
pub fn resolve_host(client: &mut postgres::Client, shown: &str, host: &str) -> Result<String> {
    let rows = client
        .query(
            "SELECT host_id FROM hosts WHERE host_id = $1
             UNION SELECT host_id FROM hosts WHERE name = $1 AND NOT EXISTS
                   (SELECT 1 FROM hosts WHERE host_id = $1)",
            &[&host],
        )
        .map_err(|e| error(shown, &e))?;
    match rows.as_slice() {
        [one] => Ok(one.get(0)),
        [] => Err(Error::NotFound {
            what: "host in the fleet",
            id: host.to_string(),
        }),
        many => Err(Error::InvalidInput(format!(
            "{} hosts of the fleet are named {host:?}: name one by its id ({})",
            many.len(),
            many.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

const BACKUP_COLUMNS: &str = "b.host_id, h.name, b.local_id, b.kind, b.created_at, b.label,
     b.pinned, b.milestone::text, b.states::text, b.bytes, b.replica::text";

/// One page of the fleet's backups, newest first.
pub fn backups(
    client: &mut postgres::Client,
    shown: &str,
    q: &FleetBackupsQuery,
) -> Result<FleetBackupPage> {
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(Error::InvalidInput(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let host = match q.host.as_deref() {
        Some(h) => Some(resolve_host(client, shown, h)?),
        None => None,
    };
    let after = match (q.after_created_at_ms, &q.after_host, q.after_id) {
        (Some(t), Some(h), Some(i)) => Some((t, h.clone(), i)),
        (None, None, None) => None,
        _ => {
            return Err(Error::InvalidInput(
                "after_created_at_ms, after_host and after_id go together".into(),
            ));
        }
    };
    let kind = q.kind.map(|k| k.as_str().to_string());
    let (at, ah, ai) = match &after {
        Some((t, h, i)) => (Some(*t), Some(h.as_str()), Some(*i)),
        None => (None, None, None),
    };
    let rows = client
        .query(
            &format!(
                "SELECT {BACKUP_COLUMNS} FROM backups b JOIN hosts h ON h.host_id = b.host_id
                 WHERE ($1::text IS NULL OR b.host_id = $1)
                   AND ($2::text IS NULL OR b.names @> ARRAY[$2::text])
                   AND ($3::text IS NULL OR b.kind = $3)
                   AND ($4::int8 IS NULL OR (b.created_at, b.host_id, b.local_id) < ($4, $5, $6))
                 ORDER BY b.created_at DESC, b.host_id DESC, b.local_id DESC
                 LIMIT $7"
            ),
            &[&host, &q.learner, &kind, &at, &ah, &ai, &(limit as i64 + 1)],
        )
        .map_err(|e| error(shown, &e))?;
    let mut backups = rows.iter().map(backup_of).collect::<Result<Vec<_>>>()?;
    let next = if backups.len() > limit as usize {
        backups.truncate(limit as usize);
        backups.last().map(|b| FleetCursor {
            created_at_ms: b.created_at_ms,
            host: b.host_id.clone(),
            id: b.id,
        })
    } else {
        None
    };
    Ok(FleetBackupPage { backups, next })
}

/// One backup of the fleet.
pub fn backup(
    client: &mut postgres::Client,
    shown: &str,
    host_id: &str,
    id: i64,
) -> Result<FleetBackup> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {BACKUP_COLUMNS} FROM backups b JOIN hosts h ON h.host_id = b.host_id
                 WHERE b.host_id = $1 AND b.local_id = $2"
            ),
            &[&host_id, &id],
        )
        .map_err(|e| error(shown, &e))?
        .ok_or_else(|| Error::NotFound {
            what: "backup in the fleet",
            id: format!("{id} of host {host_id}"),
        })?;
    backup_of(&row)
}

fn backup_of(r: &postgres::Row) -> Result<FleetBackup> {
    let kind_name: String = r.get(3);
    let kind: BackupKind = kind_name.parse().map_err(|_| {
        Error::Internal(format!(
            "the fleet holds a backup of unknown kind {kind_name:?}"
        ))
    })?;
    let milestone: Option<String> = r.get(7);
    let states: String = r.get(8);
    let replica: String = r.get(10);
    let states: Vec<FleetState> = serde_json::from_str::<Vec<serde_json::Value>>(&states)
        .map_err(|e| Error::Internal(format!("a backup's states in the fleet: {e}")))?
        .into_iter()
        .map(|s| FleetState {
            name: s["name"].as_str().unwrap_or_default().to_string(),
            kind: s["kind"].as_str().unwrap_or_default().to_string(),
            checksum: s["checksum"].as_str().unwrap_or_default().to_string(),
            size: s["size"].as_u64().unwrap_or(0),
            step: s["step"].as_u64(),
            metrics: serde_json::from_value(s["metrics"].clone()).unwrap_or_default(),
        })
        .collect();
    let replicas = serde_json::from_str::<Vec<serde_json::Value>>(&replica)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v["repository"].as_str().map(str::to_string))
        .collect();
    Ok(FleetBackup {
        host_id: r.get(0),
        host_name: r.get(1),
        id: r.get(2),
        kind,
        created_at_ms: r.get(4),
        label: r.get(5),
        pinned: r.get(6),
        milestone: milestone.and_then(|m| serde_json::from_str(&m).ok()),
        states,
        bytes: r.get::<_, i64>(9).max(0) as u64,
        replicas,
    })
}

/// The snapshot id of a backup in the replica repository `repository`.
pub fn replica_snapshot(
    client: &mut postgres::Client,
    shown: &str,
    host_id: &str,
    id: i64,
    repository: &str,
) -> Result<Option<String>> {
    let row = client
        .query_opt(
            "SELECT r->>'snapshot' FROM backups b, jsonb_array_elements(b.replica) r
             WHERE b.host_id = $1 AND b.local_id = $2 AND r->>'repository' = $3",
            &[&host_id, &id, &repository],
        )
        .map_err(|e| error(shown, &e))?;
    Ok(row.and_then(|r| r.get(0)))
}
