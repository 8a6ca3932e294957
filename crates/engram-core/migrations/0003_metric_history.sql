-- 0003: every engine's metrics as a time series, kept across restarts,
-- downsampled as it ages (tier 0: every save; 1: one-minute buckets;
-- 2: one-hour buckets; 3: one-day buckets), and split into branches: a
-- restore starts a new line of history, the abandoned one is kept.
CREATE TABLE history_branches (
    id           INTEGER PRIMARY KEY,
    started_at   INTEGER NOT NULL,       -- unix milliseconds
    parent       INTEGER REFERENCES history_branches (id),
    from_backup  INTEGER,                -- the backup restored to start it (no FK: backups may go)
    reason       TEXT NOT NULL           -- 'start' or 'restore'
);

CREATE TABLE metric_points (
    engine  TEXT NOT NULL,
    key     TEXT NOT NULL,
    tier    INTEGER NOT NULL,
    at_ms   INTEGER NOT NULL,            -- the save's time, or the bucket's start
    branch  INTEGER NOT NULL,
    value   REAL,                        -- the mean over the bucket (the value itself in tier 0)
    min     REAL,
    max     REAL,
    n       INTEGER NOT NULL,            -- saves the bucket holds
    PRIMARY KEY (engine, key, at_ms, tier, branch)
) WITHOUT ROWID;

CREATE INDEX metric_points_tier_time ON metric_points (tier, at_ms);
