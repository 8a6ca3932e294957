-- 0009: a learner's live state may be held in one of its slots — a file
-- `slots/<learner>/<slot>` overwritten in place by a later save (durable
-- with one fdatasync, no new directory entry) — instead of an object or
-- inline. NULL: the state is found by its checksum (inline or objects/).
-- A backup never names a slot: before a cut, the live slot's file becomes
-- the object it holds (renamed into objects/) and this goes back to NULL.
ALTER TABLE learner_live ADD COLUMN slot INTEGER;
