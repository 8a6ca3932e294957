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

/// (probability, next state, reward, terminated), as Gymnasium lists them.
type GymTransition = (f64, u32, f64, bool);

#[derive(Deserialize)]
struct Table {
    env: String,
    map: Option<String>,
    slippery: Option<bool>,
    n_states: u32,
    n_actions: u32,
    #[serde(rename = "P")]
    p: Vec<Vec<Vec<GymTransition>>>,
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

// ----- learning -------------------------------------------------------------

use engram_core::engines::mdp_es::{MdpEs, MdpEsConfig};
use engram_core::engines::zap::{LocalContext, Zap, ZapConfig, held_out_tasks};
use engram_core::engines::{EngineSet, EnginesConfig, FakeClock};

#[test]
fn q_learning_reaches_95_percent_of_the_optimum_on_frozen_lake_4x4_slippery() {
    let mut cfg = MdpEsConfig::default();
    cfg.es.every_ticks = u64::MAX; // Q-learning only
    let mut e = MdpEs::new(cfg, 11);
    let model = EnvSpec::frozen_lake_4x4().build();
    let optimum = model.value_iteration(1.0, 1e-12)[0];
    let mut ratio = 0.0;
    for tick in 1..=3000 {
        e.tick();
        if tick % 250 == 0 {
            let achieved = model.evaluate_policy(&e.greedy_policy(), 1.0, 1e-12)[0];
            ratio = achieved / optimum;
            eprintln!(
                "tick {tick}: episodes {} greedy success {achieved:.4} / optimum {optimum:.4} = {ratio:.3}",
                e.episodes
            );
        }
    }
    assert!(
        ratio >= 0.95,
        "greedy policy reaches {ratio:.3} of the optimum"
    );
}

#[test]
fn evolution_strategy_balances_cartpole() {
    let mut cfg = MdpEsConfig::default();
    cfg.q.steps_per_tick = 0;
    cfg.es.every_ticks = 1;
    let mut e = MdpEs::new(cfg, 5);
    let mut fired = Vec::new();
    for _ in 0..60 {
        e.tick();
        fired.extend(e.take_breakthroughs());
    }
    eprintln!(
        "best fitness {} after {} generations",
        e.es.best_fitness, e.es.generation
    );
    assert!(
        e.es.best_fitness >= 0.95,
        "best fitness {}",
        e.es.best_fitness
    );
    // best_fitness never falls, so the rule fires exactly once, with its fields.
    assert_eq!(fired.len(), 1, "{fired:?}");
    let b = &fired[0];
    assert_eq!(
        (b.engine.as_str(), b.metric.as_str()),
        ("mdp_es", "best_fitness")
    );
    assert!(b.value >= 0.95 && b.step >= 5);
}

#[test]
fn zap_success_on_200_held_out_maps_rises_with_training() {
    let cfg = ZapConfig {
        use_concepts: false,
        ..Default::default()
    };
    let tasks = held_out_tasks(&cfg.tasks, 200, 0xBEEF);
    let mut zap = Zap::new(cfg, 3);
    let mut ctx = LocalContext::new(None);
    let before = zap.evaluate(&tasks, 1, &mut ctx);
    for _ in 0..300 {
        zap.plan_once(&mut ctx);
    }
    let after = zap.evaluate(&tasks, 1, &mut ctx);
    eprintln!("ZAP held-out success: before training {before:.3}, after 300 plans {after:.3}");
    assert!(
        after >= before + 0.15,
        "before {before:.3}, after {after:.3}"
    );
}

// ----- exact resume -----------------------------------------------------------

fn small_config() -> EnginesConfig {
    let mut c = EnginesConfig::default();
    c.mdp_es.q.steps_per_tick = 50;
    c.mdp_es.es.every_ticks = 2;
    c.mdp_es.es.pairs = 3;
    c.zap.simulations = 8;
    c.orchestrator.breakthrough_every = 7;
    c
}

fn states_bytes(set: &EngineSet) -> Vec<Vec<u8>> {
    set.capture()
        .expect("capture")
        .into_iter()
        .map(|s| s.state.into_bytes())
        .collect()
}

#[test]
fn every_engine_resumes_exactly_after_capture_encode_decode_restore() {
    let (n, k) = (40, 17);
    let mut clock = FakeClock {
        now: 0,
        step: 1_000,
    };
    let mut straight = EngineSet::new(small_config(), 99);
    for _ in 0..n {
        straight.tick(&mut clock);
    }

    let mut clock2 = FakeClock {
        now: 0,
        step: 1_000,
    };
    let mut first = EngineSet::new(small_config(), 99);
    for _ in 0..k {
        first.tick(&mut clock2);
    }
    let captured = first.capture().expect("capture");
    drop(first);
    let mut resumed = EngineSet::new(small_config(), 12345); // a different seed: all must come from the state
    for s in &captured {
        let bytes = s.state.as_bytes().to_vec();
        let decoded = engram_core::EncodedState::from_bytes(bytes).expect("decode");
        resumed
            .restore_engine(&s.engine, &decoded)
            .expect("restore");
    }
    for _ in k..n {
        resumed.tick(&mut clock2);
    }
    assert_eq!(
        states_bytes(&resumed),
        states_bytes(&straight),
        "bit-identical final states"
    );
    assert!(straight.zap.plans_generated == n as u64 && straight.orchestrator.calls == n as u64);
}

#[test]
fn restore_engine_refuses_unknown_names_and_foreign_states() {
    let mut set = EngineSet::new(small_config(), 1);
    let zap_state = set.zap.capture().expect("capture");
    let e = set.restore_engine("nope", &zap_state).expect_err("unknown");
    assert_eq!(e.code(), "not_found");
    let e = set
        .restore_engine("mdp_es", &zap_state)
        .expect_err("wrong engine");
    assert!(
        ["corrupt_state", "unsupported_format"].contains(&e.code().as_str()),
        "{e}"
    );
}

// ----- bounded buffers and breakthroughs ---------------------------------------

#[test]
fn buffers_stay_within_their_caps_over_long_runs() {
    let mut c = small_config();
    c.zap.replay_cap = 64;
    c.zap.plan_history_cap = 10;
    c.mdp_es.history_cap = 30;
    c.orchestrator.history_cap = 20;
    let mut set = EngineSet::new(c, 4);
    let mut clock = FakeClock { now: 0, step: 1 };
    for _ in 0..150 {
        set.tick(&mut clock);
        assert!(set.zap.replay.len() <= 64);
        assert!(set.zap.plan_history.len() <= 10);
        assert!(set.mdp_es.history.len() <= 30);
        assert!(set.orchestrator.history.len() <= 20);
    }
    assert_eq!(
        (
            set.zap.replay.len(),
            set.zap.plan_history.len(),
            set.mdp_es.history.len(),
            set.orchestrator.history.len()
        ),
        (64, 10, 30, 20),
        "full, not empty"
    );
}

#[test]
fn zap_breakthrough_fires_once_per_crossing_with_its_fields() {
    // Easy tasks (no holes, no slip) so the success rate crosses the bar.
    let mut cfg = ZapConfig {
        use_concepts: false,
        breakthrough_min_plans: 10,
        ..Default::default()
    };
    cfg.tasks.hole_density = 0.0;
    cfg.tasks.slip_max = 0.0;
    cfg.simulations = 64;
    let mut zap = Zap::new(cfg, 8);
    let mut ctx = LocalContext::new(None);
    let mut fired = Vec::new();
    let mut rates = Vec::new();
    for _ in 0..60 {
        zap.plan_once(&mut ctx);
        fired.extend(zap.take_breakthroughs());
        rates.push((zap.plans_generated, zap.metrics()["success_rate_last_100"]));
    }
    // Count the crossings the metric actually made, and compare.
    let mut crossings = Vec::new();
    let mut above = false;
    for &(plans, rate) in &rates {
        let now = plans >= 10 && rate >= 0.9;
        if now && !above {
            crossings.push(plans);
        }
        above = now;
    }
    assert!(
        !crossings.is_empty(),
        "the easy tasks never crossed 0.9: {rates:?}"
    );
    let steps: Vec<u64> = fired.iter().map(|b| b.step).collect();
    assert_eq!(steps, crossings);
    for b in &fired {
        assert_eq!(
            (b.engine.as_str(), b.metric.as_str()),
            ("zap", "success_rate_last_100")
        );
        assert!(b.value >= 0.9);
        assert!(b.rule.contains("0.9"));
    }
}
