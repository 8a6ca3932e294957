-- 0012: how the user described a learner's metrics in Engram (JSON object
-- metric -> {label, unit, format, higher_is_better}), each entry winning
-- over what the learner says of that metric at attach (`metric_info`, kept
-- as it said). NULL: the learner's own descriptions apply.
ALTER TABLE learners ADD COLUMN user_metric_info TEXT;
