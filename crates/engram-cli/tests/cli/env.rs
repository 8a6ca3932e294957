//! `engram env …`, checked against Gymnasium's own tables and trajectories
//! (tests/fixtures), and the one-line errors of bad arguments.

use super::*;

fn engram(args: &[&str]) -> std::process::Output {
    engram_cmd().args(args).output().expect("run engram")
}

fn fixture(name: &str) -> serde_json::Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).expect("fixture")).expect("json")
}

#[test]
fn env_model_json_equals_gymnasium_tables() {
    let golden = fixture("gymnasium_tabular.json");
    for t in golden["tables"].as_array().expect("tables") {
        let mut args = vec![
            "env",
            "model",
            "--env",
            t["env"].as_str().expect("env"),
            "--json",
        ];
        let slippery;
        if let Some(m) = t["map"].as_str() {
            args.extend(["--map", m]);
            slippery = t["slippery"].as_bool().expect("slippery").to_string();
            args.extend(["--slippery", &slippery]);
        }
        let out = engram(&args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(got["n_states"], t["n_states"]);
        assert_eq!(got["n_actions"], t["n_actions"]);
        // Same structure and values (Gymnasium writes some rewards as ints).
        let (gp, tp) = (
            got["P"].as_array().expect("P"),
            t["P"].as_array().expect("P"),
        );
        assert_eq!(gp.len(), tp.len());
        for (a, b) in gp
            .iter()
            .flat_map(|s| s.as_array().into_iter().flatten())
            .zip(tp.iter().flat_map(|s| s.as_array().into_iter().flatten()))
        {
            let (a, b) = (
                a.as_array().expect("outcomes"),
                b.as_array().expect("outcomes"),
            );
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                assert_eq!(x[0].as_f64(), y[0].as_f64());
                assert_eq!(x[1], y[1]);
                assert_eq!(x[2].as_f64(), y[2].as_f64());
                assert_eq!(x[3], y[3]);
            }
        }
    }
}

#[test]
fn env_rollout_json_follows_gymnasium_and_stops_at_the_end() {
    let golden = fixture("gymnasium_cartpole.json");
    for run in golden["runs"].as_array().expect("runs") {
        let start: Vec<String> = run["start"]
            .as_array()
            .expect("start")
            .iter()
            .map(|v| v.to_string())
            .collect();
        let mut actions: Vec<String> = run["actions"]
            .as_array()
            .expect("a")
            .iter()
            .map(|v| v.to_string())
            .collect();
        actions.extend(["1".to_string(), "0".to_string()]); // extra actions after the end are not run
        let out = engram(&[
            "env",
            "rollout",
            "--env",
            "CartPole-v1",
            "--state",
            &start.join(","),
            "--actions",
            &actions.join(","),
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .expect("utf8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        let want = run["steps"].as_array().expect("steps");
        assert_eq!(
            lines.len(),
            want.len(),
            "stops after the step that ends the episode"
        );
        for (g, w) in lines.iter().zip(want) {
            for j in 0..4 {
                let (a, b) = (
                    g["state"][j].as_f64().expect("f64"),
                    w["state"][j].as_f64().expect("f64"),
                );
                assert!((a - b).abs() <= 1e-9 * b.abs().max(1e-9), "{a} vs {b}");
            }
            assert_eq!(g["terminated"], w["terminated"]);
            assert_eq!(g["truncated"], w["truncated"]);
            assert_eq!(g["reward"].as_f64(), w["reward"].as_f64());
        }
    }
}

#[test]
fn bad_arguments_get_one_clear_line_and_a_failure_code() {
    for (args, needle) in [
        (
            vec!["env", "model", "--env", "Pong-v5", "--json"],
            "unknown environment",
        ),
        (
            vec![
                "env",
                "model",
                "--env",
                "FrozenLake-v1",
                "--map",
                "SFX",
                "--json",
            ],
            "unexpected cell",
        ),
        (
            vec![
                "env",
                "rollout",
                "--env",
                "CartPole-v1",
                "--state",
                "0,0,0",
                "--actions",
                "1",
            ],
            "4 numbers",
        ),
        (
            vec![
                "env",
                "rollout",
                "--env",
                "CartPole-v1",
                "--state",
                "0,0,0,0",
                "--actions",
                "1,2",
            ],
            "not 0 or 1",
        ),
        (
            vec![
                "env",
                "rollout",
                "--env",
                "Taxi-v4",
                "--state",
                "0,0,0,0",
                "--actions",
                "1",
            ],
            "CartPole-v1",
        ),
    ] {
        let out = engram(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn negative_start_states_parse() {
    let out = engram(&[
        "env",
        "rollout",
        "--env",
        "CartPole-v1",
        "--state",
        "-0.01,0.02,-0.03,0.04",
        "--actions",
        "0,1",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
}
