//! Engine benchmark (`scripts/bench`, or `cargo bench -p engram-core --bench engines`).
//!
//! Q-learning environment steps per second on FrozenLake 8x8 and Taxi-v4,
//! CartPole steps per second, ZAP plans per second — beside the plain
//! Python + Gymnasium loop (`bench/python_gym_loop.py`) in the same run. Then
//! ZAP's held-out success with and without the MDP/ES concept prior.

use engram_core::engines::envs::{CartPole, EnvSpec};
use engram_core::engines::mdp_es::{MdpEs, MdpEsConfig};
use engram_core::engines::rng::Rng;
use engram_core::engines::zap::{LocalContext, Zap, ZapConfig, held_out_tasks};
use std::time::Instant;

fn q_steps_per_s(env: EnvSpec, steps: u32) -> f64 {
    let mut cfg = MdpEsConfig::default();
    cfg.q.env = env;
    cfg.q.steps_per_tick = steps;
    cfg.es.every_ticks = u64::MAX;
    let mut e = MdpEs::new(cfg, 1);
    let t = Instant::now();
    for _ in 0..steps {
        e.q_step();
    }
    let rate = f64::from(steps) / t.elapsed().as_secs_f64();
    std::hint::black_box(&e.q);
    rate
}

/// What evaluation (separate from behaviour) costs: the engine set's time
/// per tick with the default schedule against the same run with the
/// scheduled evaluations switched off, and each evaluation on its own.
fn evaluation_cost() {
    use engram_core::engines::{EngineSet, EnginesConfig, FakeClock};
    let run = |cfg: EnginesConfig, ticks: u32| {
        let mut set = EngineSet::new(cfg, 3);
        let mut clock = FakeClock { now: 0, step: 1000 };
        let t = Instant::now();
        for _ in 0..ticks {
            std::hint::black_box(set.tick(&mut clock));
        }
        (t.elapsed().as_secs_f64() * 1e3 / f64::from(ticks), set)
    };
    let ticks = 4000;
    let (with, mut set) = run(EnginesConfig::default(), ticks);
    let mut off = EnginesConfig::default();
    off.mdp_es.q.eval_every_ticks = u64::MAX;
    off.mdp_es.es.validate_mean_every = u64::MAX;
    off.zap.heldout_every_plans = u64::MAX;
    let (without, _) = run(off, ticks);
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1e3
    };
    let q = time(&mut || set.mdp_es.evaluate_q());
    let theta = set.mdp_es.es.theta.clone();
    let es = time(&mut || {
        std::hint::black_box(set.mdp_es.validated_fitness(&theta));
    });
    let mut ctx = LocalContext::new(Some(&set.mdp_es));
    let mut zap = set.zap.clone();
    let zap_ms = time(&mut || zap.evaluate_heldout(&mut ctx));
    println!("Evaluation cost ({ticks} ticks of the engine set, default schedule):");
    println!(
        "  {with:.3} ms/tick with evaluation, {without:.3} ms/tick with the scheduled evaluations off: {:.1} % of engine time",
        100.0 * (with - without) / with
    );
    println!(
        "  one exact Q evaluation {q:.3} ms (every 10 ticks = {:.2} % of a tick's time)",
        100.0 * q / (10.0 * with)
    );
    println!("  one ES validation (100 CartPole episodes) {es:.3} ms");
    println!(
        "  one ZAP held-out evaluation (100 maps) {zap_ms:.1} ms (every 2,000 plans = {:.2} % of engine time)",
        100.0 * zap_ms / (2000.0 * with)
    );
}

fn cartpole_steps_per_s(steps: u32) -> f64 {
    let mut rng = Rng::new(0);
    let mut env = CartPole::reset(&mut rng);
    let w = [0.1, 0.5, 1.0, 0.5];
    let t = Instant::now();
    for _ in 0..steps {
        let s = env.state;
        let a = u32::from(s[0] * w[0] + s[1] * w[1] + s[2] * w[2] + s[3] * w[3] > 0.0);
        let r = env.step(a);
        if r.terminated || r.truncated {
            env = CartPole::reset(&mut rng);
        }
    }
    let rate = f64::from(steps) / t.elapsed().as_secs_f64();
    std::hint::black_box(env.state);
    rate
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Long by design: a benchmark's runs in sequence, each printing its
    // figures.
    let steps = 2_000_000;
    let runs = 5;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let fl = median(
        (0..runs)
            .map(|_| q_steps_per_s(EnvSpec::frozen_lake_8x8(), steps))
            .collect(),
    );
    let taxi = median(
        (0..runs)
            .map(|_| q_steps_per_s(EnvSpec::Taxi, steps))
            .collect(),
    );
    let cp = median((0..runs).map(|_| cartpole_steps_per_s(steps)).collect());
    let mut zap = Zap::new(ZapConfig::default(), 1);
    let mut ctx = LocalContext::new(None);
    let t = Instant::now();
    let plans = 400;
    for _ in 0..plans {
        zap.plan_once(&mut ctx);
    }
    let zap_rate = f64::from(plans) / t.elapsed().as_secs_f64();

    println!("Rust (median of {runs} runs of {steps} steps):");
    println!("  Q-learning FrozenLake 8x8  {:>14.0} steps/s", fl);
    println!("  Q-learning Taxi-v4         {:>14.0} steps/s", taxi);
    println!("  CartPole-v1                {:>14.0} steps/s", cp);
    println!(
        "  ZAP planner                {:>14.1} plans/s (default config, {plans} plans)",
        zap_rate
    );

    evaluation_cost();

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../bench/python_gym_loop.py"
    );
    match std::process::Command::new("python3").arg(script).output() {
        Ok(o) if o.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
            let py = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            println!(
                "Python + Gymnasium {} (same run, 200000 steps each):",
                v["gymnasium"]
            );
            for (name, ours, key) in [
                ("Q-learning FrozenLake 8x8", fl, "frozenlake8x8_steps_per_s"),
                ("Q-learning Taxi-v4", taxi, "taxi_steps_per_s"),
                ("CartPole-v1", cp, "cartpole_steps_per_s"),
            ] {
                println!(
                    "  {name:<26} {:>14.0} steps/s   Rust is {:.0}x faster",
                    py(key),
                    ours / py(key)
                );
            }
        }
        Ok(o) => println!(
            "python loop failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => println!("python loop not run: {e}"),
    }

    // ZAP with and without the concept prior, on 200 held-out maps.
    let mut cfg = MdpEsConfig::default();
    cfg.q.env = EnvSpec::frozen_lake_8x8();
    cfg.es.every_ticks = u64::MAX;
    let mut mdp = MdpEs::new(cfg, 2);
    for _ in 0..3000 {
        mdp.tick();
    }
    let tasks = held_out_tasks(&ZapConfig::default().tasks, 200, 0xBEEF);
    println!("ZAP success on 200 held-out maps (concepts from Q-learning on FrozenLake 8x8):");
    for train in [0u32, 50, 300] {
        let mut results = Vec::new();
        for use_concepts in [false, true] {
            // Mean over three training seeds: single runs differ by ±5 points.
            let mut sum = 0.0;
            for seed in [7, 8, 9] {
                let mut z = Zap::new(
                    ZapConfig {
                        use_concepts,
                        ..Default::default()
                    },
                    seed,
                );
                let mut ctx = LocalContext::new(use_concepts.then_some(&mdp));
                for _ in 0..train {
                    z.plan_once(&mut ctx);
                }
                sum += z.evaluate(&tasks, 1, &mut ctx);
            }
            results.push(sum / 3.0);
        }
        println!(
            "  after {train:>3} training plans: without prior {:.3}, with prior {:.3} (mean of 3 seeds)",
            results[0], results[1]
        );
    }
    Ok(())
}
