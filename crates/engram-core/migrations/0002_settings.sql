-- 0002: user settings (intervals, retention, breakthrough thresholds), one JSON document.
CREATE TABLE settings (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    value       TEXT NOT NULL,          -- JSON, see runtime::Settings
    updated_at  INTEGER NOT NULL        -- unix milliseconds
);
