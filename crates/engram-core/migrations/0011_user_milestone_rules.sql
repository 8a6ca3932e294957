-- 0011: milestone rules the user set in Engram for a learner (JSON array
-- of {metric, at_least | at_most}; empty: none), which win over the ones
-- the learner declares at attach (`milestone_rules`, kept as it said). NULL:
-- the learner's own apply.
ALTER TABLE learners ADD COLUMN user_milestone_rules TEXT;
