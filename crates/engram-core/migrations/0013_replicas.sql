-- 0013: offsite replicas (restic repositories) and what each holds.

-- This data directory's stable id: the hostname of its snapshots in every
-- replica. A recovery adopts the id of the timeline it recovers.
CREATE TABLE host (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    host_id     TEXT NOT NULL,
    created_at  INTEGER NOT NULL          -- unix milliseconds
);

-- Where replicas go. Forgetting a target deletes nothing there.
CREATE TABLE replica_targets (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    kind              TEXT NOT NULL CHECK (kind IN ('local', 'sftp')),
    location          TEXT NOT NULL,      -- local: absolute path; sftp: user@host:path
    port              INTEGER,
    identity          TEXT,               -- sftp: the private key file
    append_only       INTEGER NOT NULL DEFAULT 0 CHECK (append_only IN (0, 1)),
    added_at          INTEGER NOT NULL,
    repository_id     TEXT,               -- the restic repository's config id, once seen
    last_attempt_at   INTEGER,
    last_success_at   INTEGER,
    last_error_code   TEXT,               -- NULL: the last attempt succeeded
    last_error        TEXT,
    history_at        INTEGER,            -- when the metric history was last replicated
    history_mark      TEXT,               -- what the history held then (rows, newest time)
    last_verify       TEXT                -- JSON: the last verify's report
);

-- Backups each replica holds: one restic snapshot each. No foreign key to
-- backups: a backup deleted here by retention stays on the replica, and
-- this row is how it is found again.
CREATE TABLE replica_copies (
    target_id    INTEGER NOT NULL REFERENCES replica_targets (id) ON DELETE CASCADE,
    backup_id    INTEGER NOT NULL,
    snapshot_id  TEXT NOT NULL,
    kind         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,        -- the backup's time
    label        TEXT,
    pinned       INTEGER NOT NULL DEFAULT 0,
    uploaded_at  INTEGER NOT NULL,
    bytes        INTEGER NOT NULL,        -- the states' size
    bytes_added  INTEGER NOT NULL,        -- what the upload added to the repository (after dedup)
    PRIMARY KEY (target_id, backup_id)
) WITHOUT ROWID;

-- Backups a replica will not get, and why (deleted here before their turn,
-- or a state that failed its checksum): the queue passes them by.
CREATE TABLE replica_skips (
    target_id  INTEGER NOT NULL REFERENCES replica_targets (id) ON DELETE CASCADE,
    backup_id  INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (target_id, backup_id)
) WITHOUT ROWID;
