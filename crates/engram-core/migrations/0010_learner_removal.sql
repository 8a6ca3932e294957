-- 0010: when the user deleted a learner (NULL: in use). Its live state,
-- command and metric history go; its row stays, because backups may hold
-- states of it (its format says how to read them, its metric descriptions
-- how to draw it): a restore of such a backup, or an attach under the same
-- name, brings it back. Every list and lookup of learners skips deleted ones.
ALTER TABLE learners ADD COLUMN removed_at INTEGER;
