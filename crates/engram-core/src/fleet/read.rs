//! What the doors show of the fleet, read from PostgreSQL only (a host
//! that is down is still listed, marked stale): hosts, backups of every
//! host, one backup, the all-hosts timeline. One connection, kept and shared by the calls in turn
//! (with the worker's, at most two per host).

use super::{connect, error, masked};
use crate::error::{Error, Result};
use crate::wire::{
    BackupKind, DensityBucket, FleetBackup, FleetBackupPage, FleetBackupsQuery, FleetCursor,
    FleetHost, FleetMark, FleetSeries, FleetState, FleetTimeline, FleetTimelineQuery, KindCount,
    SeriesPoint, SeriesRequest,
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

const HOUR_MS: i64 = 3_600_000;
/// Buckets at least this wide are counted from the hourly summaries.
const SUMMARY_FROM_MS: i64 = HOUR_MS / 3;
const DEFAULT_BUCKETS: u32 = 200;
const MAX_BUCKETS: u32 = 4_000;
const DEFAULT_MARKS: u32 = 1_000;
const MAX_MARKS: u32 = 5_000;

/// The all-hosts (or one host's) timeline of a range: counts by kind per
/// bucket and the backups to draw one by one. Buckets of 20 minutes or
/// more are rounded up to whole hours and counted from the hourly counts
/// (`backup_hours`, `host_backup_hours`, kept by triggers) plus an exact
/// count of the range's two partial hours; narrower buckets count rows on
/// the time index (a range of at most ~66 hours).
pub fn timeline(
    client: &mut postgres::Client,
    shown: &str,
    q: &FleetTimelineQuery,
) -> Result<FleetTimeline> {
    // Long by design: the range, then the counts (two ways), then marks.
    let err = |e: postgres::Error| error(shown, &e);
    let buckets = q.buckets.unwrap_or(DEFAULT_BUCKETS);
    let marks = q.marks.unwrap_or(DEFAULT_MARKS);
    if !(1..=MAX_BUCKETS).contains(&buckets) || marks > MAX_MARKS {
        return Err(Error::InvalidInput(format!(
            "buckets must be 1 to {MAX_BUCKETS} and marks at most {MAX_MARKS}"
        )));
    }
    let kinds: Option<Vec<String>> = match q.kinds.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(list) => Some(
            list.split(',')
                .map(|k| {
                    k.trim()
                        .parse::<BackupKind>()
                        .map(|k| k.as_str().to_string())
                        .map_err(|_| Error::InvalidInput(format!("unknown backup kind {k:?}")))
                })
                .collect::<Result<_>>()?,
        ),
    };
    let host = match q.host.as_deref() {
        Some(h) => Some(resolve_host(client, shown, h)?),
        None => None,
    };
    let ends = client
        .query_one(
            "SELECT (SELECT created_at FROM backups WHERE ($1::text IS NULL OR host_id = $1)
                     ORDER BY created_at ASC LIMIT 1),
                    (SELECT created_at FROM backups WHERE ($1::text IS NULL OR host_id = $1)
                     ORDER BY created_at DESC LIMIT 1)",
            &[&host],
        )
        .map_err(err)?;
    let (first, last): (Option<i64>, Option<i64>) = (ends.get(0), ends.get(1));
    let from = q.from_ms.or(first).unwrap_or(0);
    let to = q.to_ms.or(last).unwrap_or(from);
    if to < from {
        return Err(Error::InvalidInput(
            "the range ends before it starts".into(),
        ));
    }
    let total: i64 = match &host {
        None => client
            .query_one(
                "SELECT coalesce(sum(n), 0)::int8 FROM backup_hours
                 WHERE ($1::text[] IS NULL OR kind = ANY($1))",
                &[&kinds],
            )
            .map_err(err)?
            .get(0),
        Some(h) => client
            .query_one(
                "SELECT coalesce(sum(n), 0)::int8 FROM host_backup_hours WHERE host_id = $1
                 AND ($2::text[] IS NULL OR kind = ANY($2))",
                &[h, &kinds],
            )
            .map_err(err)?
            .get(0),
    };
    let span = to - from + 1;
    let width = (span + i64::from(buckets) - 1) / i64::from(buckets);
    let mut counts: std::collections::BTreeMap<(i64, String), i64> = Default::default();
    // Buckets of a third of an hour or more become whole hours and are
    // counted from the hourly summary (of all hosts, or of the one host);
    // the range's partial hours at each end are counted exactly.
    let (start, width) = if width >= SUMMARY_FROM_MS {
        let width = (width + HOUR_MS - 1) / HOUR_MS * HOUR_MS;
        let start = from.div_euclid(HOUR_MS) * HOUR_MS;
        let full_from = (from + HOUR_MS - 1).div_euclid(HOUR_MS);
        let full_to = (to + 1).div_euclid(HOUR_MS); // exclusive, in hours
        let hours = client
            .query(
                "SELECT kind, hour, n FROM backup_hours
                 WHERE $4::text IS NULL AND hour >= $1 AND hour < $2 AND n > 0
                   AND ($3::text[] IS NULL OR kind = ANY($3))
                 UNION ALL
                 SELECT kind, hour, n FROM host_backup_hours
                 WHERE host_id = $4 AND hour >= $1 AND hour < $2 AND n > 0
                   AND ($3::text[] IS NULL OR kind = ANY($3))",
                &[&full_from, &full_to, &kinds, &host],
            )
            .map_err(err)?;
        for r in hours {
            let hour: i64 = r.get(1);
            let b = (hour * HOUR_MS - start) / width;
            *counts.entry((b, r.get(0))).or_default() += r.get::<_, i64>(2);
        }
        let exact: Vec<(i64, i64)> = if full_from < full_to {
            vec![(from, full_from * HOUR_MS), (full_to * HOUR_MS, to + 1)]
        } else {
            vec![(from, to + 1)]
        };
        for (a, z) in exact {
            if z <= a {
                continue;
            }
            for r in client
                .query(
                    "SELECT kind, created_at FROM backups
                     WHERE created_at >= $1 AND created_at < $2
                       AND ($3::text IS NULL OR host_id = $3)
                       AND ($4::text[] IS NULL OR kind = ANY($4))",
                    &[&a, &z, &host, &kinds],
                )
                .map_err(err)?
            {
                let at: i64 = r.get(1);
                *counts.entry(((at - start) / width, r.get(0))).or_default() += 1;
            }
        }
        (start, width)
    } else {
        for r in client
            .query(
                "SELECT kind, (created_at - $1) / $2 AS b, count(*) FROM backups
                 WHERE created_at >= $1 AND created_at <= $3
                   AND ($4::text IS NULL OR host_id = $4)
                   AND ($5::text[] IS NULL OR kind = ANY($5))
                 GROUP BY 1, 2",
                &[&from, &width, &to, &host, &kinds],
            )
            .map_err(err)?
        {
            *counts.entry((r.get(1), r.get(0))).or_default() += r.get::<_, i64>(2);
        }
        (from, width)
    };
    let mut out: std::collections::BTreeMap<i64, Vec<KindCount>> = Default::default();
    let mut in_range = 0i64;
    for ((b, kind), n) in counts {
        if n <= 0 {
            continue;
        }
        in_range += n;
        if let Ok(kind) = kind.parse::<BackupKind>() {
            out.entry(b).or_default().push(KindCount {
                kind,
                count: n.min(i64::from(u32::MAX)) as u32,
            });
        }
    }
    let buckets = out
        .into_iter()
        .map(|(b, counts)| DensityBucket {
            start_ms: start + b * width,
            end_ms: start + (b + 1) * width,
            counts,
        })
        .collect();
    let complete = in_range <= i64::from(marks);
    let mark_rows = if complete {
        client
            .query(
                "SELECT b.host_id, h.name, b.local_id, b.kind, b.created_at, b.pinned, b.label
                 FROM backups b JOIN hosts h ON h.host_id = b.host_id
                 WHERE b.created_at >= $1 AND b.created_at <= $2
                   AND ($3::text IS NULL OR b.host_id = $3)
                   AND ($4::text[] IS NULL OR b.kind = ANY($4))
                 ORDER BY b.created_at, b.host_id, b.local_id",
                &[&from, &to, &host, &kinds],
            )
            .map_err(err)?
    } else {
        let mut rows = client
            .query(
                "SELECT b.host_id, h.name, b.local_id, b.kind, b.created_at, b.pinned, b.label
                 FROM backups b JOIN hosts h ON h.host_id = b.host_id
                 WHERE (b.kind IN ('initial', 'breakthrough') OR b.pinned)
                   AND b.created_at >= $1 AND b.created_at <= $2
                   AND ($3::text IS NULL OR b.host_id = $3)
                   AND ($4::text[] IS NULL OR b.kind = ANY($4))
                 ORDER BY b.created_at DESC LIMIT $5",
                &[&from, &to, &host, &kinds, &i64::from(marks)],
            )
            .map_err(err)?;
        rows.reverse();
        rows
    };
    let marks = mark_rows
        .iter()
        .filter_map(|r| {
            Some(FleetMark {
                host_id: r.get(0),
                host_name: r.get(1),
                id: r.get(2),
                kind: r.get::<_, String>(3).parse().ok()?,
                created_at_ms: r.get(4),
                pinned: r.get(5),
                label: r.get(6),
            })
        })
        .collect();
    Ok(FleetTimeline {
        first_ms: first,
        last_ms: last,
        from_ms: from,
        to_ms: to,
        in_range: in_range.max(0) as u64,
        total: total.max(0) as u64,
        buckets,
        marks,
        complete,
    })
}

/// One metric of one engine or learner on every host that has it, each
/// host's curve reduced to about `points` buckets in PostgreSQL (weighted
/// means, with each bucket's min and max): a learner's curves from several
/// hosts on one chart.
pub fn series(
    client: &mut postgres::Client,
    shown: &str,
    q: &SeriesRequest,
) -> Result<Vec<FleetSeries>> {
    let err = |e: postgres::Error| error(shown, &e);
    let points = i64::from(q.points.unwrap_or(500));
    if !(2..=crate::limits::MAX_SERIES_POINTS as i64).contains(&points) {
        return Err(Error::InvalidInput(format!(
            "points must be between 2 and {}",
            crate::limits::MAX_SERIES_POINTS
        )));
    }
    let ends = client
        .query_one(
            "SELECT min(at_ms), max(at_ms) FROM metric_points WHERE engine = $1 AND key = $2",
            &[&q.engine, &q.key],
        )
        .map_err(err)?;
    let (Some(first), Some(last)) = (ends.get::<_, Option<i64>>(0), ends.get::<_, Option<i64>>(1))
    else {
        return Ok(Vec::new());
    };
    let from = q.from_ms.unwrap_or(first);
    let to = q.to_ms.unwrap_or(last);
    if to < from {
        return Err(Error::InvalidInput(
            "the range ends before it starts".into(),
        ));
    }
    let width = ((to - from + 1) + points - 1) / points;
    let rows = client
        .query(
            "SELECT p.host_id, h.name, (p.at_ms - $3) / $5 AS b, min(p.at_ms),
                    sum(p.value * p.n) / nullif(sum(CASE WHEN p.value IS NULL THEN 0 ELSE p.n END), 0),
                    min(p.min), max(p.max), max(p.branch), count(*)
             FROM metric_points p JOIN hosts h ON h.host_id = p.host_id
             WHERE p.engine = $1 AND p.key = $2 AND p.at_ms >= $3 AND p.at_ms <= $4
             GROUP BY 1, 2, 3 ORDER BY 2, 1, 3",
            &[&q.engine, &q.key, &from, &to, &width],
        )
        .map_err(err)?;
    let mut out: Vec<FleetSeries> = Vec::new();
    for r in rows {
        let host: String = r.get(0);
        if out.last().is_none_or(|s| s.host_id != host) {
            out.push(FleetSeries {
                host_id: host,
                host_name: r.get(1),
                points: Vec::new(),
                stored: 0,
            });
        }
        if let Some(s) = out.last_mut() {
            s.points.push(SeriesPoint {
                at_ms: r.get(3),
                value: r.get(4),
                min: r.get(5),
                max: r.get(6),
                branch: r.get(7),
            });
            s.stored += r.get::<_, i64>(8).max(0) as u64;
        }
    }
    Ok(out)
}
