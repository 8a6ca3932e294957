//! The fleet catalog's schema in PostgreSQL, versioned by numbered
//! migrations recorded in `engram_fleet_schema`. Every host applies what
//! is missing when it connects, one host at a time (an advisory lock); a
//! catalog from a newer Engram is refused, never written.

use crate::error::{Error, Result};

/// The migrations, in order: index i brings the schema to version i + 1.
/// Never edit one that has shipped; add the next.
const MIGRATIONS: &[&str] = &[
    // 1: hosts, their engines and learners, backups, metric history, and
    // the all-hosts timeline's hourly counts.
    r#"
CREATE TABLE hosts (
    host_id         text PRIMARY KEY,
    name            text NOT NULL,
    fingerprint     text NOT NULL,           -- machine + data directory
    joined_at       bigint NOT NULL,         -- unix milliseconds
    last_sync_at    bigint,                  -- its last committed batch
    engram_version  text NOT NULL
);

CREATE TABLE units (                         -- engines and learners of each host
    host_id        text NOT NULL REFERENCES hosts ON DELETE CASCADE,
    name           text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('engine', 'learner')),
    format         text,
    registered_at  bigint,
    removed_at     bigint,
    PRIMARY KEY (host_id, name)
);

CREATE TABLE backups (
    host_id     text NOT NULL REFERENCES hosts ON DELETE CASCADE,
    local_id    bigint NOT NULL,
    kind        text NOT NULL CHECK (kind IN
                  ('initial', 'periodic', 'breakthrough', 'manual', 'pre-restore', 'imported')),
    created_at  bigint NOT NULL,             -- unix milliseconds
    label       text,
    pinned      boolean NOT NULL,
    milestone   jsonb,                       -- {engine, rule, metric, value, step}
    origin      jsonb,
    states      jsonb NOT NULL,              -- [{name, kind, checksum, size, step, metrics}]
    names       text[] NOT NULL,             -- whose states it holds
    bytes       bigint NOT NULL,
    replica     jsonb NOT NULL,              -- [{repository, snapshot}]
    PRIMARY KEY (host_id, local_id)
);
-- The all-hosts list, newest first, and its keyset pages.
CREATE INDEX backups_by_time ON backups (created_at DESC, host_id DESC, local_id DESC);
-- One host's list and timeline.
CREATE INDEX backups_by_host_time ON backups (host_id, created_at DESC, local_id DESC);
-- What the timeline draws one by one when a range holds too many to draw.
CREATE INDEX backups_marked ON backups (created_at)
    WHERE kind IN ('initial', 'breakthrough') OR pinned;
-- A learner's or engine's backups on every host.
CREATE INDEX backups_by_name ON backups USING gin (names);

CREATE TABLE metric_points (
    host_id  text NOT NULL REFERENCES hosts ON DELETE CASCADE,
    engine   text NOT NULL,
    key      text NOT NULL,
    tier     smallint NOT NULL,
    at_ms    bigint NOT NULL,
    branch   bigint NOT NULL,
    value    double precision,
    min      double precision,
    max      double precision,
    n        integer NOT NULL,
    PRIMARY KEY (host_id, engine, key, tier, branch, at_ms)
);
-- One metric across hosts, by time (a learner's curves from every host).
CREATE INDEX metric_points_by_series ON metric_points (engine, key, at_ms);

-- Backups per kind and hour on all hosts, and each host's count, kept by
-- statement-level triggers (one update per batch, not per row): the
-- all-hosts timeline at any zoom and the hosts list read these instead of
-- millions of rows.
CREATE TABLE backup_hours (
    kind  text NOT NULL,
    hour  bigint NOT NULL,                   -- created_at / 3600000
    n     bigint NOT NULL,
    PRIMARY KEY (kind, hour)
);
-- The same per host: one host's timeline at any zoom.
CREATE TABLE host_backup_hours (
    host_id  text NOT NULL REFERENCES hosts ON DELETE CASCADE,
    kind     text NOT NULL,
    hour     bigint NOT NULL,
    n        bigint NOT NULL,
    PRIMARY KEY (host_id, hour, kind)
);
ALTER TABLE hosts ADD COLUMN backups bigint NOT NULL DEFAULT 0;

CREATE FUNCTION engram_count_backups() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE backup_hours h SET n = h.n - c.n
        FROM (SELECT kind, div(created_at, 3600000) AS hour, count(*) AS n
              FROM old_rows GROUP BY 1, 2) c
        WHERE h.kind = c.kind AND h.hour = c.hour;
        UPDATE host_backup_hours h SET n = h.n - c.n
        FROM (SELECT host_id, kind, div(created_at, 3600000) AS hour, count(*) AS n
              FROM old_rows GROUP BY 1, 2, 3) c
        WHERE h.host_id = c.host_id AND h.kind = c.kind AND h.hour = c.hour;
        UPDATE hosts h SET backups = h.backups - c.n
        FROM (SELECT host_id, count(*) AS n FROM old_rows GROUP BY 1) c
        WHERE h.host_id = c.host_id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO backup_hours (kind, hour, n)
        SELECT kind, div(created_at, 3600000), count(*) FROM new_rows GROUP BY 1, 2
        ON CONFLICT (kind, hour) DO UPDATE SET n = backup_hours.n + EXCLUDED.n;
        INSERT INTO host_backup_hours (host_id, kind, hour, n)
        SELECT host_id, kind, div(created_at, 3600000), count(*) FROM new_rows
        WHERE EXISTS (SELECT 1 FROM hosts h WHERE h.host_id = new_rows.host_id)
        GROUP BY 1, 2, 3
        ON CONFLICT (host_id, hour, kind) DO UPDATE SET n = host_backup_hours.n + EXCLUDED.n;
        UPDATE hosts h SET backups = h.backups + c.n
        FROM (SELECT host_id, count(*) AS n FROM new_rows GROUP BY 1) c
        WHERE h.host_id = c.host_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER backups_added AFTER INSERT ON backups
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION engram_count_backups();
CREATE TRIGGER backups_changed AFTER UPDATE ON backups
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION engram_count_backups();
CREATE TRIGGER backups_removed AFTER DELETE ON backups
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION engram_count_backups();
"#,
];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Brings the catalog to this build's version (one host at a time), or
/// refuses one a newer Engram made. `shown` is the masked URL.
pub fn ensure(client: &mut postgres::Client, shown: &str) -> Result<()> {
    let err = |e: postgres::Error| super::error(shown, &e);
    let mut tx = client.transaction().map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock(7226117701)", &[])
        .map_err(err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS engram_fleet_schema (
             version     integer PRIMARY KEY,
             applied_at  timestamptz NOT NULL DEFAULT now(),
             by_engram   text NOT NULL
         )",
    )
    .map_err(err)?;
    let found: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM engram_fleet_schema",
            &[],
        )
        .map_err(err)?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(Error::NewerSchema {
            path: shown.into(),
            found: found.into(),
            supported: SCHEMA_VERSION.into(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i32 + 1;
        tx.batch_execute(sql).map_err(err)?;
        tx.execute(
            "INSERT INTO engram_fleet_schema (version, by_engram) VALUES ($1, $2)",
            &[&version, &env!("CARGO_PKG_VERSION")],
        )
        .map_err(err)?;
        tracing::info!(version, "fleet catalog schema migrated");
    }
    tx.commit().map_err(err)
}

/// Before reading: the catalog exists and is one this build reads (an
/// older one is brought up to date, as a member's sync would).
pub(crate) fn check(client: &mut postgres::Client, shown: &str) -> Result<()> {
    ensure(client, shown)
}
