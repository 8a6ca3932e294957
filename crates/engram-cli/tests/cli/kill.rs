//! `engram run` killed with SIGKILL at random moments, restarted each time:
//! saved progress never falls back, no backup vanishes, verify stays clean,
//! and no milestone is recorded twice.

use super::*;
use engram_core::engines::rng::Rng;

#[test]
fn kill_9_at_random_moments_never_loses_more_than_the_last_autosave() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut rng = Rng::new(0x2545_F491_4F6C_DD1D);
    let mut next = move || rng.next_u64();
    let mut last_saved = 0.0;
    let mut known: Vec<i64> = Vec::new();
    for i in 0..20 {
        let mut child = spawn_run(d, &[]);
        // Kill anywhere from start-up to well into the run.
        std::thread::sleep(Duration::from_millis(150 + next() % 900));
        let before = if d.join("engram.db").exists() {
            saved_plans(d)
        } else {
            last_saved
        };
        let before_ids = if d.join("engram.db").exists() {
            backup_ids(d)
        } else {
            Vec::new()
        };
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        let after = saved_plans(d);
        assert!(
            after >= before,
            "iteration {i}: saved plans fell from {before} to {after}"
        );
        assert!(
            after >= last_saved,
            "iteration {i}: fell below an earlier save"
        );
        last_saved = after;
        let ids = backup_ids(d);
        for id in before_ids.iter().chain(&known) {
            assert!(ids.contains(id), "iteration {i}: backup {id} vanished");
        }
        known = ids;
        let verify = engram(d, &["backups", "verify"]);
        assert!(
            verify.status.success(),
            "iteration {i}: {}",
            String::from_utf8_lossy(&verify.stdout)
        );
    }
    assert!(
        last_saved > 0.0,
        "the engines made progress across restarts"
    );
    // Every milestone was recorded once in this one line of history, however
    // often a kill landed right after one (the backup's cut is also the live
    // state, so a restart does not cross the same threshold again).
    let list = ok_json(d, &["backups", "list", "--kind", "breakthrough", "--json"]);
    let rules: Vec<(String, String)> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|b| {
            let bt = &b["breakthrough"];
            (bt["engine"].to_string(), bt["rule"].to_string())
        })
        .collect();
    assert!(!rules.is_empty(), "the run reached at least one milestone");
    let unique: std::collections::BTreeSet<_> = rules.iter().collect();
    assert_eq!(unique.len(), rules.len(), "a milestone repeated: {rules:?}");
    // A clean run after all that resumes from the last save.
    let mut child = spawn_run(d, &["--for", "1s"]);
    let status = child.wait().expect("wait");
    assert!(status.success());
    assert!(saved_plans(d) >= last_saved);
}
