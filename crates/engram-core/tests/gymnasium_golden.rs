//! Golden tests: our environments against tables and trajectories written by
//! Gymnasium 1.4 itself (`tests/fixtures/gen_gymnasium_golden.py`).

use engram_core::engines::envs::{CartPole, EnvSpec};
use serde::Deserialize;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Deserialize)]
struct Tables {
    gymnasium: String,
    tables: Vec<Table>,
}

#[derive(Deserialize)]
struct Table {
    env: String,
    map: Option<String>,
    slippery: Option<bool>,
    n_states: u32,
    n_actions: u32,
    #[serde(rename = "P")]
    p: Vec<Vec<Vec<(f64, u32, f64, bool)>>>,
}

#[test]
fn tabular_transition_tables_match_gymnasium_exactly() {
    let t: Tables = serde_json::from_str(&fixture("gymnasium_tabular.json")).expect("fixture");
    assert_eq!(t.gymnasium, "1.4.0");
    assert_eq!(t.tables.len(), 6);
    for table in &t.tables {
        let spec = EnvSpec::parse(&table.env, table.map.as_deref(), table.slippery).expect("spec");
        let m = spec.build();
        let what = format!(
            "{} {:?} slippery={:?}",
            table.env, table.map, table.slippery
        );
        assert_eq!(
            (m.n_states, m.n_actions),
            (table.n_states, table.n_actions),
            "{what}"
        );
        for (s, actions) in table.p.iter().enumerate() {
            for (a, outcomes) in actions.iter().enumerate() {
                let ours: Vec<(u64, u32, u64, bool)> = m.p[s][a]
                    .iter()
                    .map(|t| (t.prob.to_bits(), t.next, t.reward.to_bits(), t.terminated))
                    .collect();
                let theirs: Vec<(u64, u32, u64, bool)> = outcomes
                    .iter()
                    .map(|&(p, n, r, d)| (p.to_bits(), n, r.to_bits(), d))
                    .collect();
                assert_eq!(ours, theirs, "{what}: P[{s}][{a}]");
            }
        }
    }
}

#[derive(Deserialize)]
struct Runs {
    runs: Vec<Run>,
}

#[derive(Deserialize)]
struct Run {
    start: [f64; 4],
    actions: Vec<u32>,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
struct Step {
    state: [f64; 4],
    reward: f64,
    terminated: bool,
    truncated: bool,
}

#[test]
fn cartpole_trajectories_match_gymnasium() {
    let r: Runs = serde_json::from_str(&fixture("gymnasium_cartpole.json")).expect("fixture");
    assert_eq!(r.runs.len(), 6);
    let mut truncations = 0;
    for (i, run) in r.runs.iter().enumerate() {
        let mut env = CartPole::from_state(run.start);
        assert_eq!(run.actions.len(), run.steps.len());
        for (k, (a, want)) in run.actions.iter().zip(&run.steps).enumerate() {
            let got = env.step(*a);
            for j in 0..4 {
                let (g, w) = (got.state[j], want.state[j]);
                let tol = 1e-9 * w.abs().max(1e-9);
                assert!(
                    (g - w).abs() <= tol,
                    "run {i} step {k} component {j}: {g} vs {w}"
                );
            }
            assert_eq!(
                (got.reward, got.terminated, got.truncated),
                (want.reward, want.terminated, want.truncated),
                "run {i} step {k}"
            );
        }
        truncations += usize::from(run.steps.last().map(|s| s.truncated).unwrap_or(false));
    }
    assert_eq!(
        truncations, 3,
        "the fixtures exercise the 500-step truncation"
    );
}
