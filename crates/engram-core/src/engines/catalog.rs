//! What every metric the engines report means: its label, how to print it,
//! whether higher is better, and whether the dashboard shows it on a card or
//! a chart. One description, used by the UI (generated TypeScript), the API
//! and the CLI's printouts; a test checks it covers every metric emitted.

use super::set::{EVALUATIONS, Evaluation};
use crate::wire::{MetricFormat, MetricInfo};

impl MetricInfo {
    /// The value in the metric's own unit: integers as integers, shares as %.
    pub fn format_value(&self, v: f64) -> String {
        format_value(self.format, v)
    }
}

/// `v` printed as `format` says.
pub fn format_value(format: MetricFormat, v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    match format {
        MetricFormat::Integer => group_thousands(v.round() as i64),
        MetricFormat::Percent => format!("{:.1} %", v * 100.0),
        MetricFormat::Decimal => format!("{v:.3}"),
        MetricFormat::Milliseconds if v.abs() < 0.1 => format!("{:.1} µs", v * 1000.0),
        MetricFormat::Milliseconds => format!("{v:.2} ms"),
        MetricFormat::Time => crate::rfc3339(v as i64),
    }
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// engine, key, label, unit, format, higher is better, card, chart.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    MetricFormat,
    Option<bool>,
    bool,
    bool,
);

/// Every metric of every engine, in display order.
pub fn metric_catalog() -> Vec<MetricInfo> {
    use MetricFormat::{Decimal, Integer, Milliseconds, Percent, Time};
    const UP: Option<bool> = Some(true);
    const DOWN: Option<bool> = Some(false);
    const NEITHER: Option<bool> = None;
    #[rustfmt::skip]
    let table: [Row; 38] = [
        ("zap", "plans_generated", "Plans", "plans", Integer, NEITHER, true, false),
        ("zap", "heldout_vs_optimal", "Held-out success vs optimum", "", Percent, UP, true, true),
        ("zap", "heldout_success", "Held-out success", "", Percent, UP, true, false),
        ("zap", "heldout_optimal", "Held-out optimum", "", Percent, NEITHER, false, false),
        ("zap", "heldout_at_plans", "Held-out evaluation at", "plans", Integer, NEITHER, false, false),
        ("zap", "heldout_at_ms", "Held-out evaluation time", "", Time, NEITHER, false, false),
        ("zap", "success_rate_last_100", "Success (last 100 plans)", "", Percent, UP, true, true),
        ("zap", "success_rate", "Success (all plans)", "", Percent, UP, false, false),
        ("zap", "mean_planning_ms", "Planning time", "ms", Milliseconds, DOWN, true, false),
        ("zap", "mean_confidence", "Confidence", "", Percent, NEITHER, false, false),
        ("zap", "successful_plans", "Successful plans", "plans", Integer, NEITHER, false, false),
        ("zap", "failed_plans", "Failed plans", "plans", Integer, NEITHER, false, false),
        ("zap", "score", "Score (moving average of returns)", "", Decimal, UP, false, false),
        ("zap", "episodes", "Episodes", "episodes", Integer, NEITHER, false, false),
        ("zap", "total_reward", "Total reward", "", Integer, NEITHER, false, false),
        ("zap", "replay_size", "Replay buffer", "samples", Integer, NEITHER, false, false),
        ("mdp_es", "episodes", "Q episodes", "episodes", Integer, NEITHER, true, false),
        ("mdp_es", "policy_quality", "Q policy vs optimum", "", Percent, UP, true, true),
        ("mdp_es", "greedy_success", "Q greedy success", "", Percent, UP, true, false),
        ("mdp_es", "optimal_success", "Q optimal success", "", Percent, NEITHER, false, false),
        ("mdp_es", "greedy_return", "Q greedy return", "", Decimal, UP, true, false),
        ("mdp_es", "optimal_return", "Q optimal return", "", Decimal, NEITHER, false, false),
        ("mdp_es", "q_evaluated_at_episode", "Q evaluation at", "episodes", Integer, NEITHER, false, false),
        ("mdp_es", "q_evaluated_at_ms", "Q evaluation time", "", Time, NEITHER, false, false),
        ("mdp_es", "behaviour_success_last_100", "Q behaviour success (ε-greedy, last 100)", "", Percent, UP, false, false),
        ("mdp_es", "generation", "ES generation", "generations", Integer, NEITHER, true, false),
        ("mdp_es", "best_fitness", "ES best fitness (validated)", "", Decimal, UP, true, true),
        ("mdp_es", "mean_validated_fitness", "ES mean policy fitness (validated)", "", Decimal, UP, false, false),
        ("mdp_es", "mean_fitness", "ES population fitness (training)", "", Decimal, UP, false, false),
        ("mdp_es", "epsilon", "ε", "", Decimal, NEITHER, false, false),
        ("mdp_es", "alpha", "α", "", Decimal, NEITHER, false, false),
        ("mdp_es", "policy_updates", "Policy updates", "updates", Integer, NEITHER, false, false),
        ("mdp_es", "total_reward", "Q total reward", "", Integer, NEITHER, false, false),
        ("orchestrator", "cross_system_calls", "Cross-system calls", "calls", Integer, NEITHER, true, true),
        ("orchestrator", "failures", "Failures", "calls", Integer, DOWN, true, false),
        ("orchestrator", "mean_latency_ms", "Mean latency", "ms", Milliseconds, DOWN, true, false),
        ("orchestrator", "next_breakthrough_at", "Next milestone at", "calls", Integer, NEITHER, true, false),
        ("orchestrator", "systems_registered", "Systems", "systems", Integer, NEITHER, true, false),
    ];
    table
        .into_iter()
        .map(
            |(engine, key, label, unit, format, higher_is_better, card, chart)| MetricInfo {
                engine: engine.into(),
                key: key.into(),
                label: label.into(),
                unit: unit.into(),
                format,
                higher_is_better,
                card,
                chart,
                measured_at: evaluation_of(engine, key).map(|e| e.step.to_string()),
                measured_when: evaluation_of(engine, key).map(|e| e.when.to_string()),
            },
        )
        .collect()
}

/// The evaluation that measures an evaluation's figure (the figure is
/// absent until its first evaluation).
fn evaluation_of(engine: &str, key: &str) -> Option<&'static Evaluation> {
    let figure = match engine {
        "zap" => matches!(
            key,
            "heldout_vs_optimal" | "heldout_success" | "heldout_optimal"
        ),
        "mdp_es" => matches!(
            key,
            "policy_quality"
                | "greedy_success"
                | "optimal_success"
                | "greedy_return"
                | "optimal_return"
        ),
        _ => false,
    };
    if !figure {
        return None;
    }
    EVALUATIONS.iter().find(|e| e.engine == engine)
}

/// The description of `engine`'s `key`, if it has one.
pub fn metric_info(engine: &str, key: &str) -> Option<MetricInfo> {
    metric_catalog()
        .into_iter()
        .find(|m| m.engine == engine && m.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::envs::EnvSpec;
    use crate::engines::{EngineSet, EnginesConfig};

    #[test]
    fn every_emitted_metric_is_described_once() {
        let catalog = metric_catalog();
        let mut seen = std::collections::BTreeSet::new();
        for m in &catalog {
            assert!(
                seen.insert((m.engine.clone(), m.key.clone())),
                "{}/{} twice",
                m.engine,
                m.key
            );
        }
        // Both kinds of Q environment: success (FrozenLake) and return (others).
        for env in [EnvSpec::frozen_lake_4x4(), EnvSpec::Taxi] {
            let mut cfg = EnginesConfig::default();
            cfg.mdp_es.q.env = env;
            let set = EngineSet::new(cfg, 1);
            for (engine, metrics) in set.metrics() {
                for key in metrics.keys() {
                    assert!(
                        seen.contains(&(engine.clone(), key.clone())),
                        "{engine}/{key} is not described"
                    );
                }
            }
        }
    }

    #[test]
    fn values_print_in_their_own_unit() {
        assert_eq!(format_value(MetricFormat::Integer, 22_000.0), "22,000");
        assert_eq!(
            format_value(MetricFormat::Integer, -1_234_567.4),
            "-1,234,567"
        );
        assert_eq!(format_value(MetricFormat::Percent, 0.9), "90.0 %");
        assert_eq!(format_value(MetricFormat::Decimal, 0.95), "0.950");
        assert_eq!(format_value(MetricFormat::Milliseconds, 1.234), "1.23 ms");
        assert_eq!(format_value(MetricFormat::Milliseconds, 0.0032), "3.2 µs");
        assert_eq!(format_value(MetricFormat::Percent, f64::NAN), "—");
        assert_eq!(
            format_value(MetricFormat::Time, 1_796_660_607_204.0),
            "2026-12-07T16:23:27.204Z"
        );
        let calls = metric_info("orchestrator", "cross_system_calls").expect("described");
        assert_eq!(calls.format_value(1000.0), "1,000");
    }

    /// An evaluation carries the time it was stamped at (the running
    /// Engram stamps after every tick), keeps it while it is the newest,
    /// takes it back from the metrics it was saved with, and is never
    /// given a time it was not made at (a state loaded without one).
    #[test]
    fn an_evaluation_carries_when_it_was_made_and_no_invented_time() {
        let mut cfg = EnginesConfig::default();
        cfg.zap.heldout_every_plans = 20;
        cfg.zap.heldout_maps = 5;
        let mut set = EngineSet::new(cfg.clone(), 3);
        let mut clock = crate::engines::FakeClock {
            now: 0,
            step: 1_000,
        };
        set.stamp_evaluations(|| 1);
        assert!(!set.metrics()["zap"].contains_key("heldout_at_ms"));
        let mut ticks = 0;
        while set.zap.heldout_at_plans().is_none() {
            set.tick(&mut clock);
            set.stamp_evaluations(|| 5_000);
            ticks += 1;
            assert!(ticks < 1_000, "no held-out evaluation");
        }
        let first = set.zap.heldout_at_plans();
        let m = set.metrics();
        assert_eq!(m["zap"]["heldout_at_ms"], 5_000.0);
        // Every key now emitted is described, the time as a time.
        for (engine, metrics) in &m {
            for key in metrics.keys() {
                assert!(metric_info(engine, key).is_some(), "{engine}/{key}");
            }
        }
        let info = metric_info("zap", "heldout_success").expect("described");
        assert_eq!(info.measured_when.as_deref(), Some("heldout_at_ms"));
        assert_eq!(
            metric_info("zap", "heldout_at_ms").map(|i| i.format),
            Some(MetricFormat::Time)
        );
        // The same evaluation keeps its time; the next one gets its own.
        set.stamp_evaluations(|| 9_000);
        assert_eq!(set.metrics()["zap"]["heldout_at_ms"], 5_000.0);
        while set.zap.heldout_at_plans() == first {
            set.tick(&mut clock);
            set.stamp_evaluations(|| 7_000);
        }
        assert_eq!(set.metrics()["zap"]["heldout_at_ms"], 7_000.0);
        // Saved and loaded: unknown until taken from the saved metrics.
        let saved = set.capture().expect("capture");
        let zap = saved.iter().find(|s| s.engine == "zap").expect("zap");
        let mut loaded = EngineSet::new(cfg, 3);
        loaded.restore_engine("zap", &zap.state).expect("restore");
        loaded.stamp_evaluations(|| 8_000);
        assert!(
            !loaded.metrics()["zap"].contains_key("heldout_at_ms"),
            "a loaded evaluation is not given the time of loading"
        );
        loaded.take_evaluation_times("zap", &zap.metrics);
        assert_eq!(loaded.metrics()["zap"]["heldout_at_ms"], 7_000.0);
        // Saved metrics of another evaluation say nothing of this one.
        let mut other = zap.metrics.clone();
        other.insert("heldout_at_plans".into(), 1.0);
        loaded.take_evaluation_times("zap", &other);
        assert!(!loaded.metrics()["zap"].contains_key("heldout_at_ms"));
    }
}
