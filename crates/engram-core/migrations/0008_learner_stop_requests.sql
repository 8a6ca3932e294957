-- 0008: a request to stop, for a learner Engram does not run (an attached
-- process elsewhere cannot be signalled): the time it was asked, until the
-- learner attaches again (a new run). The client reads it through the
-- event stream (`learner_stop_requested`) and the learner's info.
ALTER TABLE learners ADD COLUMN stop_requested_at INTEGER;
