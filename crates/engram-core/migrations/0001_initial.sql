-- 0001: live states, content-addressed blobs, backups and their states.
-- Never edit a migration that has landed; add a new numbered file instead.

-- The latest state of each engine, overwritten on every save.
CREATE TABLE live_states (
    engine    TEXT PRIMARY KEY NOT NULL,
    checksum  BLOB NOT NULL,            -- blake3 of the encoded (uncompressed) state
    raw_len   INTEGER NOT NULL,         -- encoded length in bytes
    data      BLOB NOT NULL,            -- the encoded state, uncompressed (saves are the hot path)
    metrics   TEXT NOT NULL,            -- JSON object: metric name -> number
    saved_at  INTEGER NOT NULL          -- unix milliseconds
);

-- Encoded states referenced by backups, stored once per distinct content.
CREATE TABLE blobs (
    id        INTEGER PRIMARY KEY,
    checksum  BLOB NOT NULL UNIQUE,     -- blake3 of the encoded state: the content address
    raw_len   INTEGER NOT NULL,
    codec     INTEGER NOT NULL CHECK (codec IN (0, 1)),  -- 0: stored as is, 1: zstd
    data      BLOB NOT NULL
);

-- One consistent cut of several engines.
CREATE TABLE backups (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN
                  ('initial', 'periodic', 'breakthrough', 'manual', 'pre-restore', 'imported')),
    created_at  INTEGER NOT NULL,       -- unix milliseconds
    label       TEXT,
    pinned      INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1)),
    bt_engine   TEXT,                   -- breakthrough: engine, rule, metric, value, step
    bt_rule     TEXT,
    bt_metric   TEXT,
    bt_value    REAL,
    bt_step     INTEGER,
    origin      TEXT,                   -- imported: JSON describing where it came from
    CHECK ((kind = 'breakthrough') = (bt_rule IS NOT NULL))
);
CREATE INDEX backups_by_time ON backups (created_at DESC, id DESC);
CREATE INDEX backups_by_kind_time ON backups (kind, created_at DESC, id DESC);

CREATE TABLE backup_states (
    backup_id  INTEGER NOT NULL REFERENCES backups (id) ON DELETE CASCADE,
    engine     TEXT NOT NULL,
    blob_id    INTEGER NOT NULL REFERENCES blobs (id),
    metrics    TEXT NOT NULL,           -- JSON object: metric name -> number
    PRIMARY KEY (backup_id, engine)
) WITHOUT ROWID;
CREATE INDEX backup_states_by_engine ON backup_states (engine, backup_id);
CREATE INDEX backup_states_by_blob ON backup_states (blob_id);
