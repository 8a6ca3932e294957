//! Schema migrations: numbered SQL files applied in order, tracked in
//! `PRAGMA user_version`. A database from a newer Engram is refused.

use crate::error::{Error, Result};
use rusqlite::Connection;
use std::path::Path;

/// The migrations, in order. File `000N_*.sql` brings the schema to version N.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_initial.sql",
        include_str!("../../migrations/0001_initial.sql"),
    ),
    (
        "0002_settings.sql",
        include_str!("../../migrations/0002_settings.sql"),
    ),
    (
        "0003_metric_history.sql",
        include_str!("../../migrations/0003_metric_history.sql"),
    ),
    (
        "0004_pinned_index.sql",
        include_str!("../../migrations/0004_pinned_index.sql"),
    ),
    (
        "0005_learners.sql",
        include_str!("../../migrations/0005_learners.sql"),
    ),
    (
        "0006_learner_commands.sql",
        include_str!("../../migrations/0006_learner_commands.sql"),
    ),
    (
        "0007_inline_learner_states.sql",
        include_str!("../../migrations/0007_inline_learner_states.sql"),
    ),
    (
        "0008_learner_stop_requests.sql",
        include_str!("../../migrations/0008_learner_stop_requests.sql"),
    ),
    (
        "0009_learner_slots.sql",
        include_str!("../../migrations/0009_learner_slots.sql"),
    ),
    (
        "0010_learner_removal.sql",
        include_str!("../../migrations/0010_learner_removal.sql"),
    ),
    (
        "0011_user_milestone_rules.sql",
        include_str!("../../migrations/0011_user_milestone_rules.sql"),
    ),
    (
        "0012_user_metric_info.sql",
        include_str!("../../migrations/0012_user_metric_info.sql"),
    ),
    (
        "0013_replicas.sql",
        include_str!("../../migrations/0013_replicas.sql"),
    ),
    (
        "0014_history_runs.sql",
        include_str!("../../migrations/0014_history_runs.sql"),
    ),
    (
        "0015_fleet.sql",
        include_str!("../../migrations/0015_fleet.sql"),
    ),
    (
        "0016_drills.sql",
        include_str!("../../migrations/0016_drills.sql"),
    ),
    (
        "0017_timeline_epoch.sql",
        include_str!("../../migrations/0017_timeline_epoch.sql"),
    ),
];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `application_id` written into every Engram database ("Engr").
pub(crate) const APPLICATION_ID: i64 = 0x456E_6772;

/// Refuses a database from a newer Engram, or a SQLite file Engram did not
/// create. Reads only: it runs before anything that writes (WAL mode,
/// migrations), so a refused file is left exactly as it was.
pub(crate) fn check_ownership(conn: &Connection, path: &Path) -> Result<i64> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(Error::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let app_id: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if found == 0 {
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if tables > 0 && app_id != APPLICATION_ID {
            return Err(Error::InvalidInput(format!(
                "{} is a SQLite database that Engram did not create; refusing to touch it",
                path.display()
            )));
        }
    } else if app_id != APPLICATION_ID {
        return Err(Error::InvalidInput(format!(
            "{} is not an Engram database (application_id {app_id:#x})",
            path.display()
        )));
    }
    Ok(found)
}

/// Brings `conn` up to [`SCHEMA_VERSION`], or refuses a newer or foreign database.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let found = check_ownership(conn, path)?;
    for (i, (_, sql)) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.commit()?;
    }
    Ok(())
}

/// The schema as text: every table and index definition, sorted by name.
pub fn schema_dump(conn: &Connection) -> Result<String> {
    let mut stmt = conn.prepare(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type DESC, name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(format!(
            "-- {} {}\n{};\n",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?
        ))
    })?;
    let mut out = String::new();
    for row in rows {
        out.push_str(&row?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_files_are_numbered_contiguously_and_all_listed() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("migrations dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(
            on_disk, listed,
            "every migrations/*.sql file must be in MIGRATIONS, in order"
        );
        for (i, name) in listed.iter().enumerate() {
            assert!(
                name.starts_with(&format!("{:04}_", i + 1)),
                "{name} should be numbered {:04}",
                i + 1
            );
            let text = std::fs::read_to_string(dir.join(name)).expect("read");
            assert_eq!(
                text, MIGRATIONS[i].1,
                "{name} differs from the compiled-in copy"
            );
        }
    }

    #[test]
    fn each_migration_applies_cleanly_one_at_a_time() {
        let mut conn = Connection::open_in_memory().expect("open");
        for (i, (name, sql)) in MIGRATIONS.iter().enumerate() {
            let tx = conn.transaction().expect("tx");
            tx.execute_batch(sql)
                .unwrap_or_else(|e| panic!("{name} fails to apply: {e}"));
            tx.commit().expect("commit");
            let check: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .expect("check");
            assert_eq!(check, "ok", "after {name} (#{})", i + 1);
        }
        let fk: Vec<String> = conn
            .prepare("PRAGMA foreign_key_check")
            .expect("prepare")
            .query_map([], |r| r.get::<_, String>(0))
            .expect("query")
            .collect::<std::result::Result<_, _>>()
            .expect("rows");
        assert!(fk.is_empty());
    }

    #[test]
    fn history_from_before_runs_were_recorded_gets_its_stops_from_the_gaps() {
        let mut conn = Connection::open_in_memory().expect("open");
        let at = MIGRATIONS
            .iter()
            .position(|(name, _)| *name == "0014_history_runs.sql")
            .expect("0014 is a migration");
        let (before, last) = MIGRATIONS.split_at(at);
        for (_, sql) in before {
            conn.execute_batch(sql).expect("apply");
        }
        // zap saved every 5 s from 0 to 60 s, stopped, ran again from 200 s;
        // a minute bucket further on (folded history), then one 3 min later.
        let tx = conn.transaction().expect("tx");
        let point = |engine: &str, tier: i64, at: i64| {
            tx.execute(
                "INSERT INTO metric_points (engine, key, tier, at_ms, branch, value, min, max, n)
                 VALUES (?1, 'k', ?2, ?3, 1, 1.0, 1.0, 1.0, 1)",
                rusqlite::params![engine, tier, at],
            )
            .expect("point");
        };
        for s in (0..=60).step_by(5).chain((200..=230).step_by(5)) {
            point("zap", 0, s * 1000);
        }
        point("zap", 1, 600_000);
        point("zap", 1, 660_000);
        point("zap", 1, 840_000);
        // A learner that saves every 30 s, never stopped: no run start.
        for s in (0..=300).step_by(30) {
            point("desk", 0, s * 1000);
        }
        tx.commit().expect("commit");
        conn.execute_batch(last[0].1).expect("0014");
        let runs: Vec<(String, i64)> = conn
            .prepare("SELECT engine, started_at FROM history_runs ORDER BY engine, started_at")
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<std::result::Result<_, _>>()
            .expect("rows");
        assert_eq!(
            runs,
            vec![
                ("zap".to_string(), 200_000),
                ("zap".to_string(), 600_000),
                ("zap".to_string(), 840_000)
            ]
        );
    }

    #[test]
    fn schema_matches_snapshot() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn, Path::new(":memory:")).expect("migrate");
        let dump = schema_dump(&conn).expect("dump");
        let snap = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/schema.snapshot");
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&snap, &dump).expect("write snapshot");
        }
        let expected = std::fs::read_to_string(&snap)
            .expect("migrations/schema.snapshot missing: run with UPDATE_SNAPSHOTS=1");
        assert_eq!(
            dump, expected,
            "schema changed: review, then UPDATE_SNAPSHOTS=1"
        );
    }

    #[test]
    fn newer_database_is_refused_with_a_clear_error() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn, Path::new("x.db")).expect("migrate");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("bump");
        let err = migrate(&mut conn, Path::new("x.db")).expect_err("must refuse");
        assert_eq!(err.code(), "newer_schema");
        assert!(err.to_string().contains("newer Engram"), "{err}");
    }

    #[test]
    fn foreign_database_is_refused() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE t (x)").expect("create");
        let err = migrate(&mut conn, Path::new("other.db")).expect_err("refuse");
        assert_eq!(err.code(), "invalid_input");
        let t: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .expect("count");
        assert_eq!(t, 1, "the foreign database was left untouched");
    }

    #[test]
    fn another_applications_file_is_not_modified_at_all() {
        // Regression (issue 11, item 10): opening it switched it to WAL.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("other.db");
        {
            let c = Connection::open(&path).expect("create");
            c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
                .expect("fill");
        }
        let before = std::fs::read(&path).expect("read");
        let err = crate::Store::open(&path).expect_err("refused");
        assert_eq!(err.code(), "invalid_input");
        assert_eq!(std::fs::read(&path).expect("read"), before, "byte for byte");
        for side in ["other.db-wal", "other.db-shm"] {
            assert!(!dir.path().join(side).exists(), "{side} appeared");
        }
    }
}
