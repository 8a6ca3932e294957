//! What changed inside the built-in engines' states, read from the states
//! themselves (decoded and checked as a restore would): the MDP/ES
//! engine's Q-table (entries, the largest changes, the greedy policy on
//! the grid) and evolution strategy; ZAP's value weights, replay buffer
//! and held-out evaluation; the orchestrator's calls by route.

use super::arrays::{Tally, array_change};
use crate::EncodedState;
use crate::engines::mdp_es::{self, MdpEs};
use crate::engines::orchestrator::{self, Orchestrator};
use crate::engines::zap::{self, Zap};
use crate::error::Result;
use crate::wire::{ComparedMetric, Counted, EntryChange, Inside, PolicyMaps};

/// How many single entries `largest` lists.
pub const LARGEST: usize = 10;

/// What changed inside built-in engine `engine` from `a` to `b`; a state
/// that cannot be read is an error naming it.
pub fn compare_engine(engine: &str, a: &EncodedState, b: &EncodedState) -> Result<Option<Inside>> {
    Ok(match engine {
        mdp_es::NAME => Some(q_learning(&MdpEs::restore(a)?, &MdpEs::restore(b)?)),
        zap::NAME => Some(planner(&Zap::restore(a)?, &Zap::restore(b)?)),
        orchestrator::NAME => Some(routes(
            &Orchestrator::restore(a)?,
            &Orchestrator::restore(b)?,
        )),
        _ => None,
    })
}

fn figure(key: &str, from: f64, to: f64) -> ComparedMetric {
    ComparedMetric {
        key: key.to_string(),
        from: Some(from),
        to: Some(to),
        change: Some(to - from),
    }
}

fn f64_array(inside: &mut Inside, name: &str, a: &[f64], b: &[f64], shape: (&[u64], &[u64])) {
    let tally = (shape.0 == shape.1).then(|| Tally::of_f64(a, b));
    inside.arrays.push(array_change(
        name,
        Some(("<f8", shape.0)),
        Some(("<f8", shape.1)),
        tally.as_ref(),
    ));
}

/// The entries whose bits differ between `a` and `b`, and the [`LARGEST`]
/// of them by absolute change (first by position among equals), each
/// named by `entry`.
fn largest_changes(
    a: &[f64],
    b: &[f64],
    entry: impl Fn(usize) -> String,
) -> (u64, Vec<EntryChange>) {
    let mut changes: Vec<(usize, f64, f64)> = a
        .iter()
        .zip(b)
        .enumerate()
        .filter(|(_, (x, y))| x.to_bits() != y.to_bits())
        .map(|(i, (x, y))| (i, *x, *y))
        .collect();
    // A stable sort: equal changes stay in position order.
    changes.sort_by(|x, y| (y.2 - y.1).abs().total_cmp(&(x.2 - x.1).abs()));
    let largest = changes
        .iter()
        .take(LARGEST)
        .map(|&(i, from, to)| EntryChange {
            entry: entry(i),
            from,
            to,
        })
        .collect();
    (changes.len() as u64, largest)
}

/// Whether an action applies in a cell (not a hole, cliff or goal).
fn acts_in(cell: &str) -> bool {
    !matches!(cell, "H" | "G" | "C")
}

fn q_learning(a: &MdpEs, b: &MdpEs) -> Inside {
    let mut inside = Inside {
        kind: "q_learning".into(),
        ..Inside::default()
    };
    let same_env = a.config.q.env == b.config.q.env && a.q.len() == b.q.len();
    let shape = |e: &MdpEs| vec![u64::from(e.n_states), u64::from(e.n_actions)];
    let (sa, sb) = (shape(a), shape(b));
    f64_array(
        &mut inside,
        "q",
        &a.q,
        &b.q,
        (&sa, if same_env { &sa } else { &sb }),
    );
    if !same_env {
        inside.note = Some("the two states learn different environments".into());
    } else {
        let env = &a.config.q.env;
        let names = env.action_names();
        let n_a = a.n_actions.max(1) as usize;
        let (n, largest) = largest_changes(&a.q, &b.q, |i| {
            let (s, act) = (i / n_a, i % n_a);
            let name = names.get(act).map_or(String::new(), |n| format!(" ({n})"));
            format!("state {s}, action {act}{name}")
        });
        inside.counted.push(Counted {
            what: "Q-table entries changed".into(),
            n,
            of: Some(a.q.len() as u64),
        });
        inside.largest = largest;
        let (pa, pb) = (a.greedy_policy(), b.greedy_policy());
        let cells = env.grid();
        let applies = |s: usize| cells.as_ref().is_none_or(|(_, _, c)| acts_in(&c[s]));
        let differ = (0..pa.len())
            .filter(|&s| applies(s) && pa[s] != pb[s])
            .count() as u64;
        let of = (0..pa.len()).filter(|&s| applies(s)).count() as u64;
        inside.counted.push(Counted {
            what: "greedy actions changed".into(),
            n: differ,
            of: Some(of),
        });
        inside.policy = cells.map(|(rows, cols, cells)| PolicyMaps {
            env: env.id().into(),
            rows,
            cols,
            cells,
            actions: names.iter().map(|n| n.to_string()).collect(),
            from: pa,
            to: pb,
            changed: differ,
        });
    }
    let p = [mdp_es::POLICY_PARAMS as u64];
    f64_array(&mut inside, "es.theta", &a.es.theta, &b.es.theta, (&p, &p));
    f64_array(
        &mut inside,
        "es.best_individual",
        &a.es.best_individual,
        &b.es.best_individual,
        (&p, &p),
    );
    let last = |e: &MdpEs| e.es.fitness_history.back().copied().unwrap_or(0.0);
    inside.figures = vec![
        figure("episodes", a.episodes as f64, b.episodes as f64),
        figure(
            "es.generation",
            a.es.generation as f64,
            b.es.generation as f64,
        ),
        figure("es.best_fitness", a.es.best_fitness, b.es.best_fitness),
        figure("es.mean_fitness", last(a), last(b)),
        figure("es.population_spread", spread(a), spread(b)),
        figure("epsilon", a.epsilon, b.epsilon),
    ];
    inside
}

/// How far apart the ES population is: each parameter's standard deviation
/// across the population, averaged over parameters (0 for no population).
fn spread(e: &MdpEs) -> f64 {
    let pop = &e.es.population;
    let Some(dim) = pop.first().map(Vec::len).filter(|d| *d > 0) else {
        return 0.0;
    };
    let n = pop.len() as f64;
    (0..dim)
        .map(|j| {
            let mean = pop.iter().map(|p| p[j]).sum::<f64>() / n;
            (pop.iter().map(|p| (p[j] - mean).powi(2)).sum::<f64>() / n).sqrt()
        })
        .sum::<f64>()
        / dim as f64
}

fn planner(a: &Zap, b: &Zap) -> Inside {
    let mut inside = Inside {
        kind: "zap".into(),
        ..Inside::default()
    };
    let (wa, wb) = ([a.weights.len() as u64], [b.weights.len() as u64]);
    f64_array(&mut inside, "weights", &a.weights, &b.weights, (&wa, &wb));
    if wa == wb {
        inside.largest = largest_changes(&a.weights, &b.weights, |i| format!("value weight {i}")).1;
    }
    inside.figures = vec![
        figure(
            "plans_generated",
            a.plans_generated as f64,
            b.plans_generated as f64,
        ),
        figure("replay_size", a.replay.len() as f64, b.replay.len() as f64),
        figure(
            "value_updates",
            a.value_updates as f64,
            b.value_updates as f64,
        ),
        figure("score", a.score, b.score),
    ];
    // Held-out figures only where they were measured.
    if a.heldout.at_plans > 0 || b.heldout.at_plans > 0 {
        let side = |z: &Zap, v: f64| (z.heldout.at_plans > 0).then_some(v);
        for (key, x, y) in [
            (
                "heldout_success",
                side(a, a.heldout.success),
                side(b, b.heldout.success),
            ),
            (
                "heldout_vs_optimal",
                side(a, a.heldout.vs_optimal),
                side(b, b.heldout.vs_optimal),
            ),
            (
                "heldout_measured_at_plans",
                side(a, a.heldout.at_plans as f64),
                side(b, b.heldout.at_plans as f64),
            ),
        ] {
            inside.figures.push(ComparedMetric {
                key: key.into(),
                from: x,
                to: y,
                change: x.zip(y).map(|(x, y)| y - x),
            });
        }
    }
    inside
}

fn routes(a: &Orchestrator, b: &Orchestrator) -> Inside {
    let mut inside = Inside {
        kind: "orchestrator".into(),
        ..Inside::default()
    };
    let names: std::collections::BTreeSet<&String> = a.edges.keys().chain(b.edges.keys()).collect();
    for route in names {
        let (x, y) = (a.edges.get(route), b.edges.get(route));
        let calls = |e: Option<&orchestrator::EdgeTotals>| e.map_or(0.0, |e| e.calls as f64);
        let fails = |e: Option<&orchestrator::EdgeTotals>| e.map_or(0.0, |e| e.failures as f64);
        inside
            .figures
            .push(figure(&format!("calls {route}"), calls(x), calls(y)));
        if fails(x) + fails(y) > 0.0 {
            inside
                .figures
                .push(figure(&format!("failures {route}"), fails(x), fails(y)));
        }
    }
    inside
        .figures
        .push(figure("calls in all", a.calls as f64, b.calls as f64));
    inside.figures.push(figure(
        "systems registered",
        a.registry.len() as f64,
        b.registry.len() as f64,
    ));
    inside
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::mdp_es::MdpEsConfig;

    #[test]
    fn a_q_table_with_known_changes_reports_exactly_those() {
        let a = MdpEs::new(MdpEsConfig::default(), 7);
        let mut b = a.clone();
        // Three entries changed; the largest first, then by size.
        b.q[5] += 0.25;
        b.q[17] -= 0.5;
        b.q[40] = 0.75;
        let (sa, sb) = (a.capture().expect("a"), b.capture().expect("b"));
        let d = compare_engine(mdp_es::NAME, &sa, &sb)
            .expect("read")
            .expect("engine");
        assert_eq!(d.kind, "q_learning");
        assert_eq!(d.counted[0].n, 3);
        assert_eq!(d.counted[0].of, Some(a.q.len() as u64));
        let entries: Vec<&str> = d.largest.iter().map(|e| e.entry.as_str()).collect();
        let n_a = a.n_actions as usize;
        let name = |i: usize| {
            let acts = a.config.q.env.action_names();
            format!("state {}, action {} ({})", i / n_a, i % n_a, acts[i % n_a])
        };
        assert_eq!(entries, [name(40), name(17), name(5)]);
        assert_eq!((d.largest[1].from, d.largest[1].to), (a.q[17], b.q[17]));
        let q = d.arrays.iter().find(|x| x.name == "q").expect("q");
        assert_eq!(q.changed, Some(3));
        assert_eq!(q.max_abs, Some(0.75));
        // The greedy actions that changed are exactly the cells whose
        // argmax moved.
        let (pa, pb) = (a.greedy_policy(), b.greedy_policy());
        let maps = d.policy.as_ref().expect("a grid world");
        let cells = &maps.cells;
        let moved = (0..pa.len())
            .filter(|&s| acts_in(&cells[s]) && pa[s] != pb[s])
            .count();
        assert_eq!(maps.changed, moved as u64);
        assert_eq!((maps.from.clone(), maps.to.clone()), (pa, pb));
        assert_eq!(maps.rows * maps.cols, cells.len() as u32);
        // Compared with itself: nothing.
        let same = compare_engine(mdp_es::NAME, &sa, &sa)
            .expect("read")
            .expect("engine");
        assert_eq!(same.counted[0].n, 0);
        assert!(same.largest.is_empty());
    }

    #[test]
    fn a_damaged_engine_state_is_an_error_not_a_difference() {
        let a = MdpEs::new(MdpEsConfig::default(), 7).capture().expect("a");
        // Another engine's bytes where this engine's should be.
        let other = Zap::new(Default::default(), 7).capture().expect("zap");
        let e = compare_engine(mdp_es::NAME, &a, &other).expect_err("not its state");
        assert_eq!(e.code(), crate::error::ErrorCode::CorruptState, "{e}");
    }
}
