-- 0006: supervised learners — the command Engram starts for a learner,
-- restarts when it dies, stops around a restore of it. `autostart` is the
-- user's last word: 0 after "stop", 1 after "add" or "start".
CREATE TABLE learner_commands (
    learner   TEXT PRIMARY KEY NOT NULL REFERENCES learners (name),
    argv      TEXT NOT NULL,                -- JSON array of strings: program and arguments
    workdir   TEXT NOT NULL,                -- absolute directory it runs in
    autostart INTEGER NOT NULL DEFAULT 1,
    added_at  INTEGER NOT NULL              -- unix milliseconds
);

-- What a learner says its metrics mean (label, unit, format, direction):
-- JSON object, metric name -> description; its curves are drawn from it.
ALTER TABLE learners ADD COLUMN metric_info TEXT NOT NULL DEFAULT '{}';

-- A learner's generation: each restore of it adds one. A save that names
-- an older generation (the learner has not taken the restored state yet)
-- is refused, so it cannot overwrite what the user restored.
ALTER TABLE learners ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;

-- Milestone rules a learner declared: JSON array of {metric, at_least |
-- at_most}; Engram checks each durable save's metrics against them.
ALTER TABLE learners ADD COLUMN milestone_rules TEXT NOT NULL DEFAULT '[]';
