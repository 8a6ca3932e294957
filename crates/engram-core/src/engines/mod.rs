//! The learning engines and their environments. Pure: no IO, no clock of
//! their own (time comes in through [`Clock`]), deterministic given a seed.
//!
//! - [`mdp_es::MdpEs`]: tabular Q-learning on Gymnasium's discrete
//!   environments and an OpenAI-ES evolving a CartPole policy.
//! - [`zap::Zap`]: the ZAP planner — MCTS guided by a learned value function
//!   on procedurally generated grid worlds.
//! - [`orchestrator::Orchestrator`]: the registry and router of every
//!   cross-system call.
//! - [`EngineSet`]: the three together, advanced one tick at a time.

pub mod bounds;
pub mod catalog;
pub mod envs;
pub mod grid;
pub mod mdp_es;
pub mod orchestrator;
pub mod rng;
mod set;
pub mod zap;

pub use set::{ENGINE_NAMES, EngineSet, EnginesConfig, check_state, check_states, is_builtin};

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A monotonic time source, in nanoseconds. The engines measure planning time
/// and call latency with it; tests pass a [`FakeClock`] so runs are exactly
/// repeatable.
pub trait Clock {
    fn now_ns(&mut self) -> u64;
}

/// The real monotonic clock.
#[derive(Debug)]
pub struct SystemClock(std::time::Instant);

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock(std::time::Instant::now())
    }
}

impl Clock for SystemClock {
    fn now_ns(&mut self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// A clock that advances a fixed amount on every reading.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FakeClock {
    pub now: u64,
    pub step: u64,
}

impl Clock for FakeClock {
    fn now_ns(&mut self) -> u64 {
        self.now += self.step;
        self.now
    }
}

/// The milestones an engine has recorded in its line of history: each rule
/// (its text names the thresholds) fires once — not again when the condition
/// dips and returns, not after a restart (the log is part of the captured
/// state). Restoring a state from before a milestone restores a log without
/// it, so crossing it again on that new branch is a new event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MilestoneLog {
    fired: std::collections::BTreeSet<String>,
}

impl MilestoneLog {
    /// True exactly once per `rule`: the first time `condition` holds.
    pub fn once(&mut self, rule: &str, condition: bool) -> bool {
        condition && self.fired.insert(rule.to_string())
    }

    /// Whether `rule` has fired in this line of history.
    pub fn has_fired(&self, rule: &str) -> bool {
        self.fired.contains(rule)
    }

    /// The rules that have fired, in order.
    pub fn rules(&self) -> impl Iterator<Item = &str> {
        self.fired.iter().map(String::as_str)
    }

    /// How many rules have fired.
    pub fn len(&self) -> usize {
        self.fired.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fired.is_empty()
    }
}

/// Fires when its condition becomes true, not again while it stays true.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeTrigger {
    active: bool,
}

impl EdgeTrigger {
    /// Feeds the current condition; true exactly on a false -> true edge.
    pub fn update(&mut self, condition: bool) -> bool {
        let fire = condition && !self.active;
        self.active = condition;
        fire
    }
}

/// Pushes onto a bounded buffer, dropping the oldest beyond `cap`.
pub(crate) fn push_bounded<T>(buf: &mut VecDeque<T>, cap: usize, item: T) {
    if cap == 0 {
        buf.clear();
        return;
    }
    while buf.len() >= cap {
        buf.pop_front();
    }
    buf.push_back(item);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milestones_fire_once_per_rule_even_when_the_condition_returns() {
        let mut log = MilestoneLog::default();
        assert!(!log.once("a >= 1", false));
        assert!(log.once("a >= 1", true));
        assert!(!log.once("a >= 1", true));
        assert!(!log.once("a >= 1", false));
        assert!(
            !log.once("a >= 1", true),
            "a dip and a return is not a new milestone"
        );
        assert!(log.once("a >= 2", true), "a new threshold is a new rule");
        assert_eq!(log.len(), 2);
        assert!(log.has_fired("a >= 1"));
    }

    #[test]
    fn edge_trigger_fires_once_per_crossing() {
        let mut t = EdgeTrigger::default();
        let fired: Vec<bool> = [false, true, true, false, true, true]
            .into_iter()
            .map(|c| t.update(c))
            .collect();
        assert_eq!(fired, [false, true, false, false, true, false]);
    }

    #[test]
    fn bounded_push_keeps_the_newest() {
        let mut b = VecDeque::new();
        for i in 0..10 {
            push_bounded(&mut b, 3, i);
        }
        assert_eq!(b, [7, 8, 9]);
        push_bounded(&mut b, 0, 1);
        assert!(b.is_empty());
    }
}
