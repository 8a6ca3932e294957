-- 0004: the pinned backups by time, so the timeline finds them among
-- 100,000 backups without reading every row (a partial index: only pinned
-- rows are in it).
CREATE INDEX backups_pinned_by_time ON backups (created_at) WHERE pinned = 1;
