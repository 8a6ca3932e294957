-- 0015: the fleet catalog (PostgreSQL). Local SQLite stays the source of
-- truth; what the fleet has not taken yet waits here.

-- This host's name in the fleet (settable; the system's hostname until set).
ALTER TABLE host ADD COLUMN name TEXT;

-- Membership: one row while this data directory belongs to a fleet. The
-- URL with its password is in `fleet.conf` (owner-only), never here.
CREATE TABLE fleet_member (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    joined_at        INTEGER NOT NULL,   -- unix milliseconds
    last_attempt_at  INTEGER,
    last_success_at  INTEGER,
    last_error_code  TEXT,               -- NULL: the last attempt succeeded
    last_error       TEXT,
    pushed_rows      INTEGER NOT NULL DEFAULT 0,
    refused_rows     INTEGER NOT NULL DEFAULT 0, -- rows PostgreSQL would not take (left out)
    last_refused     TEXT                -- why, for the newest of them
);

-- The queue: what changed since the fleet last took it. Filled by the
-- triggers below (only while a member), in the same transaction as the
-- change; emptied by the sync worker once PostgreSQL committed it.
CREATE TABLE fleet_outbox (
    seq       INTEGER PRIMARY KEY,
    entity    TEXT NOT NULL CHECK (entity IN ('backup', 'learner')),
    local_id  TEXT NOT NULL,             -- a backup's id, a learner's name
    queued_at INTEGER NOT NULL           -- unix milliseconds
);

CREATE TRIGGER fleet_backup_added AFTER INSERT ON backups
WHEN EXISTS (SELECT 1 FROM fleet_member)
BEGIN
    INSERT INTO fleet_outbox (entity, local_id, queued_at)
    VALUES ('backup', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER fleet_backup_changed AFTER UPDATE ON backups
WHEN EXISTS (SELECT 1 FROM fleet_member)
BEGIN
    INSERT INTO fleet_outbox (entity, local_id, queued_at)
    VALUES ('backup', OLD.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
           ('backup', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER fleet_backup_deleted AFTER DELETE ON backups
WHEN EXISTS (SELECT 1 FROM fleet_member)
BEGIN
    INSERT INTO fleet_outbox (entity, local_id, queued_at)
    VALUES ('backup', OLD.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

-- A replica copy says where the fleet can read a backup's states from.
CREATE TRIGGER fleet_backup_replicated AFTER INSERT ON replica_copies
WHEN EXISTS (SELECT 1 FROM fleet_member)
BEGIN
    INSERT INTO fleet_outbox (entity, local_id, queued_at)
    VALUES ('backup', NEW.backup_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER fleet_learner_added AFTER INSERT ON learners
WHEN EXISTS (SELECT 1 FROM fleet_member)
BEGIN
    INSERT INTO fleet_outbox (entity, local_id, queued_at)
    VALUES ('learner', NEW.name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER fleet_learner_changed AFTER UPDATE OF format, registered_at, removed_at ON learners
WHEN EXISTS (SELECT 1 FROM fleet_member)
BEGIN
    INSERT INTO fleet_outbox (entity, local_id, queued_at)
    VALUES ('learner', NEW.name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER fleet_learner_deleted AFTER DELETE ON learners
WHEN EXISTS (SELECT 1 FROM fleet_member)
BEGIN
    INSERT INTO fleet_outbox (entity, local_id, queued_at)
    VALUES ('learner', OLD.name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
