//! Every declared operation, called once through a front door, in an order
//! in which each makes sense (a backup and a learner are made first, deleted
//! last). The HTTP test (`engram-http`) and the desktop IPC test
//! (`src-tauri/tests/ipc.rs`) both walk it: a door that misses an
//! operation, routes it wrongly or answers with another type fails, and an
//! operation declared without a step here fails both.

use engram_core::api::{Operation, op, operations::declared};
use serde_json::{Value, json};

/// One call: the operation, its key (`"$backup"`: the backup the walk
/// made), its request (null: none) and the error code it must get (None:
/// it must succeed).
pub struct Step {
    pub op: &'static str,
    pub key: Value,
    pub request: Value,
    pub refused: Option<&'static str>,
}

fn step(op: &'static str, key: Value, request: Value) -> Step {
    Step {
        op,
        key,
        request,
        refused: None,
    }
}

pub fn steps() -> Vec<Step> {
    let none = Value::Null;
    let b = || json!("$backup");
    let l = || json!("walk");
    vec![
        step("status", none.clone(), none.clone()),
        step(
            "list_backups",
            none.clone(),
            json!({"kinds": ["initial"], "limit": 5}),
        ),
        step("create_backup", none.clone(), json!({"label": "walk"})),
        step("get_backup", b(), none.clone()),
        step("pin_backup", b(), none.clone()),
        step("unpin_backup", b(), none.clone()),
        step("set_label", b(), json!({"label": "walked"})),
        step("hold_backup", b(), none.clone()),
        step("release_backup", b(), none.clone()),
        step("restore_backup", b(), json!({"engine": "zap"})),
        step("compare_backups", b(), json!({"with": 1})),
        step("drill_backup", b(), json!({"units": ["mdp_es"]})),
        step("backup_drills", b(), none.clone()),
        step(
            "timeline",
            none.clone(),
            json!({"kinds": ["manual"], "buckets": 10}),
        ),
        step("storage", none.clone(), none.clone()),
        step("verify", none.clone(), none.clone()),
        step("retention", none.clone(), json!({"ids": [1]})),
        step("attach_learner", none.clone(), json!({"name": "walk"})),
        step("learners", none.clone(), none.clone()),
        step("learner", l(), none.clone()),
        step(
            "set_learner_drill",
            l(),
            json!({"argv": ["/bin/true"], "timeout_ms": 1000}),
        ),
        step("learner_drill", l(), none.clone()),
        step(
            "log_learner_metrics",
            l(),
            json!({"points": [{"step": 1, "metrics": {"loss": 0.5}}]}),
        ),
        step("lease_learner_slot", l(), none.clone()),
        Step {
            // A lease nobody lent: refused by the API, after the door parsed it.
            refused: Some("not_found"),
            ..step(
                "save_leased_learner_state",
                l(),
                json!({"lease": "not-lent", "state": {"step": 1}}),
            )
        },
        Step {
            // No state saved at that step (states are bytes: not in this walk).
            refused: Some("invalid_input"),
            ..step(
                "report_learner_milestone",
                l(),
                json!({"rule": "loss <= 1", "metric": "loss", "value": 0.5, "step": 1}),
            )
        },
        step(
            "set_learner_milestone_rules",
            l(),
            json!({"rules": [{"metric": "loss", "at_most": 0.1}]}),
        ),
        step(
            "set_learner_metric_info",
            l(),
            json!({"metrics": {"loss": {"label": "Loss"}}}),
        ),
        step("set_learner_command", l(), json!({"argv": ["sleep", "60"]})),
        step("stop_learner", l(), none.clone()),
        step("start_learner", l(), none.clone()),
        step("remove_learner_command", l(), none.clone()),
        step("remove_learner", l(), none.clone()),
        step("settings", none.clone(), none.clone()),
        step(
            "patch_settings",
            none.clone(),
            json!({"backup_every_secs": 7200.0}),
        ),
        step("settings_schema", none.clone(), none.clone()),
        step("metric_catalog", none.clone(), none.clone()),
        step(
            "metric_series",
            none.clone(),
            json!({"engine": "zap", "key": "success_rate"}),
        ),
        step(
            "add_replica",
            none.clone(),
            json!({"kind": "local", "location": replica_dir(), "name": "walk"}),
        ),
        step("replicas", none.clone(), none.clone()),
        step("replica", json!("walk"), none.clone()),
        step("replica_key", none.clone(), none.clone()),
        step("replica_backups", json!("walk"), none.clone()),
        step("verify_replica", json!("walk"), json!({"read_data": false})),
        Step {
            // A backup neither here nor on the replica.
            refused: Some("not_found"),
            ..step(
                "retrieve_backup",
                json!("walk"),
                json!({"backup_id": 999_999}),
            )
        },
        // First run: an Engram that runs answers it is running, starting
        // fresh is a no-op, and a recovery into its data is refused.
        step("first_run", none.clone(), none.clone()),
        step("start_fresh", none.clone(), none.clone()),
        Step {
            refused: Some("invalid_input"),
            ..step(
                "recover_here",
                none.clone(),
                json!({"kind": "local", "location": "/nowhere", "key": "k"}),
            )
        },
        step(
            "metric_in_backups",
            none.clone(),
            json!({"engine": "zap", "key": "plans_generated"}),
        ),
        step(
            "find_fall",
            none.clone(),
            json!({"engine": "zap", "key": "plans_generated", "below": 1.0}),
        ),
        step(
            "bisect_fall",
            none.clone(),
            json!({"engine": "zap", "key": "plans_generated", "below": 1.0}),
        ),
        // The fleet: no PostgreSQL in the walk, so a join is refused by the
        // network and the catalog's reads say this Engram is in none.
        step("fleet_status", none.clone(), none.clone()),
        step("fleet_rename", none.clone(), json!({"name": "walk host"})),
        Step {
            refused: Some("fleet_unavailable"),
            ..step(
                "fleet_join",
                none.clone(),
                json!({"url": "postgresql://engram:secret@127.0.0.1:1/fleet"}),
            )
        },
        Step {
            refused: Some("invalid_input"),
            ..step("fleet_hosts", none.clone(), none.clone())
        },
        Step {
            refused: Some("invalid_input"),
            ..step(
                "fleet_backups",
                none.clone(),
                json!({"limit": 10, "kind": "manual"}),
            )
        },
        Step {
            refused: Some("invalid_input"),
            ..step(
                "fleet_timeline",
                none.clone(),
                json!({"buckets": 50, "kinds": "manual,periodic"}),
            )
        },
        Step {
            refused: Some("invalid_input"),
            ..step(
                "fleet_series",
                none.clone(),
                json!({"engine": "zap", "key": "score", "points": 100}),
            )
        },
        Step {
            refused: Some("invalid_input"),
            ..step(
                "fleet_restore",
                none.clone(),
                json!({"host": "elsewhere", "backup": 1}),
            )
        },
        step("fleet_leave", none.clone(), none.clone()),
        step("prune_replica", json!("walk"), none.clone()),
        step("remove_replica", json!("walk"), none.clone()),
        step("delete_backup", b(), none.clone()),
    ]
}

/// A new, empty directory for the walk's replica (removed when the walk
/// ends: [`RemovedAtEnd`]).
fn replica_dir() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir()
        .join(format!(
            "engram-walk-replica-{}-{nanos}",
            std::process::id()
        ))
        .display()
        .to_string()
}

/// Directories removed when this is dropped.
struct RemovedAtEnd(Vec<std::path::PathBuf>);

impl Drop for RemovedAtEnd {
    fn drop(&mut self) {
        for dir in &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Whether `answer` reads as `name`'s declared response type.
pub fn answer_is_declared_type(name: &str, answer: &Value) -> Result<(), String> {
    macro_rules! check {
        ($($name:ident)*) => {
            match name {
                $(stringify!($name) => serde_json::from_value::<<op::$name as Operation>::Response>(answer.clone())
                    .map(drop)
                    .map_err(|e| format!("{name}: {e}: {answer}")),)*
                _ => Err(format!("{name} is not declared")),
            }
        };
    }
    engram_core::for_each_operation_name!(check)
}

/// Walks every step through `call(op, key, request) -> Ok(answer) |
/// Err(error {code, message})`; panics on the first step that answers
/// otherwise than it must.
pub fn walk(mut call: impl FnMut(&str, &Value, &Value) -> Result<Value, Value>) {
    let steps = steps();
    // The replica directories the steps name go when the walk ends, also
    // when a step panics.
    let _replicas = RemovedAtEnd(
        steps
            .iter()
            .filter(|s| s.op == "add_replica")
            .filter_map(|s| s.request["location"].as_str())
            .filter(|l| l.contains("engram-walk-replica-"))
            .map(std::path::PathBuf::from)
            .collect(),
    );
    let walked: Vec<&str> = steps.iter().map(|s| s.op).collect();
    for d in declared() {
        assert!(walked.contains(&d.name), "no step walks {}", d.name);
    }
    let mut backup = Value::Null;
    for s in &steps {
        let key = if s.key == json!("$backup") {
            backup.clone()
        } else {
            s.key.clone()
        };
        let answer = call(s.op, &key, &s.request);
        match (&answer, s.refused) {
            (Ok(v), None) => {
                answer_is_declared_type(s.op, v).unwrap_or_else(|e| panic!("{e}"));
                if s.op == "create_backup" {
                    backup = v["id"].clone();
                }
            }
            (Err(e), Some(code)) => assert_eq!(e["code"], code, "{}: {e}", s.op),
            (Ok(v), Some(code)) => panic!("{} answered {v}; it must be refused ({code})", s.op),
            (Err(e), None) => panic!("{} was refused: {e}", s.op),
        }
    }
    for s in &steps {
        if s.op == "add_replica"
            && let Some(dir) = s.request["location"].as_str()
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
