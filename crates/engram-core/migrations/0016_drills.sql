-- 0016: restore drills. A backup's states evaluated again in a sandbox;
-- each result is kept with the backup (the backup's own rows and bytes are
-- never touched) and goes with it.
CREATE TABLE drills (
    id        INTEGER PRIMARY KEY,
    backup_id INTEGER NOT NULL REFERENCES backups (id) ON DELETE CASCADE,
    unit      TEXT NOT NULL,                -- engine or learner
    at_ms     INTEGER NOT NULL,             -- unix milliseconds, when it ended
    took_ms   INTEGER NOT NULL,
    metrics   TEXT NOT NULL,                -- JSON object: what the drill measured
    reported  TEXT NOT NULL,                -- JSON object: what the backup said then
    error     TEXT                          -- NULL: it succeeded
);
CREATE INDEX drills_by_backup ON drills (backup_id, at_ms);

-- A learner's drill command: run with a state on its standard input, it
-- prints its metrics as one JSON object.
CREATE TABLE learner_drills (
    learner    TEXT PRIMARY KEY NOT NULL REFERENCES learners (name) ON DELETE CASCADE,
    argv       TEXT NOT NULL,               -- JSON array of strings
    timeout_ms INTEGER NOT NULL,
    workdir    TEXT NOT NULL
);
