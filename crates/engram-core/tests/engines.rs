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
fn zap_milestone_is_measured_on_held_out_maps_and_fires_once() {
    // Easy tasks (no holes, no slip) so held-out success reaches the bar.
    let mut cfg = ZapConfig {
        use_concepts: false,
        breakthrough_min_plans: 10,
        heldout_every_plans: 10,
        heldout_maps: 100,
        ..Default::default()
    };
    cfg.tasks.hole_density = 0.0;
    cfg.tasks.slip_max = 0.0;
    cfg.simulations = 64;
    let mut zap = Zap::new(cfg.clone(), 8);
    let mut ctx = LocalContext::new(None);
    let mut fired = Vec::new();
    let mut evals = Vec::new();
    for _ in 0..60 {
        zap.plan_once(&mut ctx);
        fired.extend(zap.take_breakthroughs());
        if zap.heldout.at_plans == zap.plans_generated {
            evals.push((zap.plans_generated, zap.heldout.vs_optimal));
        }
    }
    assert_eq!(
        evals.iter().map(|e| e.0).collect::<Vec<_>>(),
        [10, 20, 30, 40, 50, 60]
    );
    // The optimum is each held-out map's own, computed independently here.
    let tasks = held_out_tasks(&cfg.tasks, 100, engram_core::engines::zap::HELDOUT_SEED);
    let optimal = tasks.iter().map(|t| t.optimal_success()).sum::<f64>() / 100.0;
    assert!((zap.heldout.optimal - optimal).abs() < 1e-12);
    assert!(
        optimal > 0.99,
        "no slip, no holes: every map is solvable ({optimal})"
    );
    // And the planner's held-out success matches an independent evaluation.
    let again = zap.evaluate(
        &tasks,
        engram_core::engines::zap::HELDOUT_SEED ^ 1,
        &mut ctx,
    );
    assert_eq!(again, zap.heldout.success);
    // Once, at the first evaluation that met the bar, never again.
    let first = evals.iter().find(|(plans, v)| *plans >= 10 && *v >= 0.9);
    let (plans, value) = first
        .copied()
        .unwrap_or_else(|| panic!("never reached 0.9: {evals:?}"));
    assert_eq!(fired.len(), 1, "{fired:?}");
    let b = &fired[0];
    assert_eq!(
        (b.engine.as_str(), b.metric.as_str()),
        ("zap", "heldout_vs_optimal")
    );
    assert_eq!((b.step, b.value), (plans, value));
    assert!(b.rule.contains("0.9"), "{}", b.rule);
    // Deterministic for a seed.
    let mut twin = Zap::new(cfg, 8);
    let mut ctx2 = LocalContext::new(None);
    for _ in 0..60 {
        twin.plan_once(&mut ctx2);
    }
    assert_eq!(twin.heldout, zap.heldout);
}

/// Runs the greedy policy in the model with Gymnasium's time limit, `n`
/// episodes: the mean return and its standard error.
fn monte_carlo_return(spec: &EnvSpec, policy: &[u32], n: u32, seed: u64) -> (f64, f64) {
    let model = spec.build();
    let mut rng = engram_core::engines::rng::Rng::new(seed);
    let (mut sum, mut sq) = (0.0, 0.0);
    for _ in 0..n {
        let mut s = model.sample_initial(&mut rng);
        let mut g = 0.0;
        for _ in 0..spec.max_episode_steps() {
            let t = model.sample_step(s, policy[s as usize], &mut rng);
            g += t.reward;
            if t.terminated {
                break;
            }
            s = t.next;
        }
        sum += g;
        sq += g * g;
    }
    let mean = sum / f64::from(n);
    let var = (sq / f64::from(n) - mean * mean).max(0.0);
    (mean, (var / f64::from(n)).sqrt())
}

#[test]
fn q_evaluation_is_exact_for_every_environment() {
    use engram_core::engines::mdp_es::{MdpEs, MdpEsConfig, policy_quality};
    let specs = [
        EnvSpec::frozen_lake_4x4(),
        EnvSpec::frozen_lake_8x8(),
        EnvSpec::Taxi,
        EnvSpec::CliffWalking,
    ];
    for spec in specs {
        let mut cfg = MdpEsConfig::default();
        cfg.q.env = spec.clone();
        cfg.es.every_ticks = u64::MAX; // Q-learning only
        let mut e = MdpEs::new(cfg, 5);
        for _ in 0..300 {
            e.tick();
        }
        e.evaluate_q();
        let ev = e.q_eval.clone();
        // The greedy figure is what running the greedy policy gives (Monte Carlo).
        let (mc, se) = monte_carlo_return(&spec, &e.greedy_policy(), 20_000, 99);
        assert!(
            (ev.greedy - mc).abs() <= 4.0 * se + 1e-9,
            "{spec:?}: exact {} vs sampled {mc} ± {se}",
            ev.greedy
        );
        // The optimum is at least as good as the greedy policy, and close to
        // the infinite-horizon optimum where the time limit rarely binds.
        assert!(ev.optimal >= ev.greedy - 1e-9, "{spec:?}: {ev:?}");
        assert_eq!(ev.quality, policy_quality(ev.greedy, ev.optimal));
        assert!((0.0..=1.0).contains(&ev.quality));
        let model = spec.build();
        // Discounted a hair so that value iteration converges on Taxi and
        // CliffWalking too; its policy is then optimal under the limit as well.
        let optimal_policy = model.optimal_policy(1.0 - 1e-9);
        let (mc_opt, se_opt) = monte_carlo_return(&spec, &optimal_policy, 20_000, 7);
        assert!(
            ev.optimal >= mc_opt - 4.0 * se_opt,
            "{spec:?}: optimum {} below what value iteration's policy achieves {mc_opt} ± {se_opt}",
            ev.optimal
        );
        let metrics = e.metrics();
        assert_eq!(metrics["policy_quality"], ev.quality);
    }
}

#[test]
fn es_best_fitness_is_its_validated_fitness_and_never_regresses() {
    use engram_core::engines::mdp_es::{MdpEs, MdpEsConfig, cartpole_fitness};
    use engram_core::engines::rng::Rng;
    let mut cfg = MdpEsConfig::default();
    cfg.q.steps_per_tick = 1;
    cfg.es.every_ticks = 1;
    let mut e = MdpEs::new(cfg, 11);
    let mut last = 0.0;
    for _ in 0..60 {
        e.tick();
        assert!(e.es.best_fitness >= last, "best fitness fell");
        last = e.es.best_fitness;
    }
    // An independent re-evaluation on the same validation set.
    let mut rng = Rng::new(e.es.validation_seed);
    let starts: Vec<CartPole> = (0..100).map(|_| CartPole::reset(&mut rng)).collect();
    assert_eq!(
        cartpole_fitness(&e.es.best_individual, &starts),
        e.es.best_fitness
    );
    assert!(e.es.best_fitness > 0.5, "ES learns: {}", e.es.best_fitness);
    // The search mean was validated too, at generation 60 (every 10).
    assert_eq!(e.es.generation, 60);
    assert_eq!(
        cartpole_fitness(&e.es.theta, &starts),
        e.es.mean_validated_fitness
    );
}
