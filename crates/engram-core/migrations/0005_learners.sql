-- 0005: learners — engines whose code runs in another process. Their states
-- are content-addressed files (`objects/`, see objects.rs); rows here name
-- them by blake3 checksum. A backup holds each learner's newest durable
-- state at the instant it was taken.
CREATE TABLE learners (
    name          TEXT PRIMARY KEY NOT NULL,
    format        TEXT NOT NULL,            -- the learner's own state format, e.g. "engram.pack/1"
    registered_at INTEGER NOT NULL          -- unix milliseconds
);

CREATE TABLE learner_live (
    learner   TEXT PRIMARY KEY NOT NULL REFERENCES learners (name),
    object    BLOB NOT NULL,                -- blake3 of the state: objects/<hex>
    size      INTEGER NOT NULL,
    step      INTEGER,                      -- the learner's own step counter, if it gave one
    metrics   TEXT NOT NULL,                -- JSON object: metric name -> number
    saved_at  INTEGER NOT NULL              -- unix milliseconds
);

CREATE TABLE backup_learner_states (
    backup_id INTEGER NOT NULL REFERENCES backups (id) ON DELETE CASCADE,
    learner   TEXT NOT NULL,
    object    BLOB NOT NULL,
    size      INTEGER NOT NULL,
    step      INTEGER,
    metrics   TEXT NOT NULL,
    PRIMARY KEY (backup_id, learner)
) WITHOUT ROWID;
CREATE INDEX backup_learner_states_by_object ON backup_learner_states (object);
