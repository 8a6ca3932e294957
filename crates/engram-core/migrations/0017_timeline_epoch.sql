-- 0017: what a cached line of history must check before it is served. A
-- reader that kept one metric's values along the line serves them again
-- while `rewritten` is unchanged, reading only the backups with a larger
-- id; anything else that changes a line — a backup that is not the newest
-- (an import, a clock that went back, a reused id), a deletion, a backup's
-- time or kind changed, a state added to an older backup or taken away, a
-- branch started or changed — counts here, and the line is read again.
-- Triggers, so no write path can forget it.
CREATE TABLE timeline_epoch (
    only      INTEGER PRIMARY KEY CHECK (only = 1),
    rewritten INTEGER NOT NULL
);
INSERT INTO timeline_epoch (only, rewritten) VALUES (1, 0);

CREATE TRIGGER backups_inserted_behind AFTER INSERT ON backups
WHEN EXISTS (SELECT 1 FROM backups WHERE id > NEW.id)
  OR EXISTS (SELECT 1 FROM backups WHERE created_at > NEW.created_at)
BEGIN UPDATE timeline_epoch SET rewritten = rewritten + 1; END;

CREATE TRIGGER backups_deleted AFTER DELETE ON backups
BEGIN UPDATE timeline_epoch SET rewritten = rewritten + 1; END;

CREATE TRIGGER backups_retimed AFTER UPDATE OF created_at, kind, id ON backups
BEGIN UPDATE timeline_epoch SET rewritten = rewritten + 1; END;

CREATE TRIGGER backup_states_added_behind AFTER INSERT ON backup_states
WHEN EXISTS (SELECT 1 FROM backups WHERE id > NEW.backup_id)
BEGIN UPDATE timeline_epoch SET rewritten = rewritten + 1; END;

CREATE TRIGGER backup_states_deleted AFTER DELETE ON backup_states
BEGIN UPDATE timeline_epoch SET rewritten = rewritten + 1; END;

CREATE TRIGGER backup_states_changed AFTER UPDATE ON backup_states
BEGIN UPDATE timeline_epoch SET rewritten = rewritten + 1; END;

CREATE TRIGGER backup_learner_states_added_behind AFTER INSERT ON backup_learner_states
WHEN EXISTS (SELECT 1 FROM backups WHERE id > NEW.backup_id)
BEGIN UPDATE timeline_epoch SET rewritten = rewritten + 1; END;

CREATE TRIGGER backup_learner_states_deleted AFTER DELETE ON backup_learner_states
BEGIN UPDATE timeline_epoch SET rewritten = rewritten + 1; END;

CREATE TRIGGER backup_learner_states_changed AFTER UPDATE ON backup_learner_states
BEGIN UPDATE timeline_epoch SET rewritten = rewritten + 1; END;

CREATE TRIGGER history_branches_inserted AFTER INSERT ON history_branches
BEGIN UPDATE timeline_epoch SET rewritten = rewritten + 1; END;

CREATE TRIGGER history_branches_deleted AFTER DELETE ON history_branches
BEGIN UPDATE timeline_epoch SET rewritten = rewritten + 1; END;

CREATE TRIGGER history_branches_changed AFTER UPDATE ON history_branches
BEGIN UPDATE timeline_epoch SET rewritten = rewritten + 1; END;
