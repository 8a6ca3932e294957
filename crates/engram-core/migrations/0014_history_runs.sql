-- 0014: when each run of a series' owner began — the built-in engines at
-- every start of Engram, a learner at every attach (a new process) — so a
-- chart draws no line across a span in which nothing ran: the span from
-- the last point before a run's start to the first point of the run.
CREATE TABLE history_runs (
    engine      TEXT NOT NULL,          -- a built-in engine or a learner
    started_at  INTEGER NOT NULL,       -- unix milliseconds
    PRIMARY KEY (engine, started_at)
) WITHOUT ROWID;

-- History stored before this: a run starts wherever two stored points of
-- an owner lie further apart than its saves ever do — more than three
-- autosave intervals (the saved setting, else 5 s) and a minute at full
-- resolution, more than two buckets once folded into minutes, hours or
-- days. Shorter stops cannot be told apart from the saves and stay joined.
INSERT OR IGNORE INTO history_runs (engine, started_at)
SELECT engine, at_ms FROM (
    SELECT engine, at_ms, tier,
           lag(at_ms) OVER (PARTITION BY engine ORDER BY at_ms) AS prev,
           lag(tier) OVER (PARTITION BY engine ORDER BY at_ms) AS prev_tier
    FROM (SELECT engine, at_ms, max(tier) AS tier FROM metric_points GROUP BY engine, at_ms)
)
WHERE prev IS NOT NULL
  AND at_ms - prev > max(
      60000,
      3000 * coalesce((SELECT json_extract(value, '$.autosave_secs') FROM settings WHERE id = 1), 5),
      2 * (CASE max(tier, prev_tier) WHEN 0 THEN 0 WHEN 1 THEN 60000 WHEN 2 THEN 3600000 ELSE 86400000 END)
  );
