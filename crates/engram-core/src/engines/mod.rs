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

/// A bounded first-in-first-out buffer (replay buffer, histories) whose
/// copy shares its contents: a persistent vector ([`imbl::Vector`], chunks
/// of 64 behind reference counts), so the capture the engine thread makes
/// for every save copies a few pointers, not the buffer; the next push after
/// a copy copies only the chunk it writes into.
///
/// Encoded exactly as a `VecDeque<T>` (a sequence), so states written before
/// it read the same and encode to the same bytes. Decoding goes through a
/// `Vec<T>` — serde's cautious preallocation, whatever the length a file
/// claims.
#[derive(Clone, Debug, PartialEq)]
pub struct Bounded<T: Clone>(imbl::Vector<T>);

impl<T: Clone> Bounded<T> {
    pub fn new() -> Self {
        Bounded(imbl::Vector::new())
    }

    /// Pushes `item`, dropping the oldest beyond `cap` (`cap` 0 keeps
    /// nothing).
    pub fn push(&mut self, cap: usize, item: T) {
        if cap == 0 {
            self.0.clear();
            return;
        }
        while self.0.len() >= cap {
            self.0.pop_front();
        }
        self.0.push_back(item);
    }
}

impl<T: Clone> Default for Bounded<T> {
    fn default() -> Self {
        Bounded::new()
    }
}

impl<T: Clone> std::ops::Deref for Bounded<T> {
    type Target = imbl::Vector<T>;
    fn deref(&self) -> &imbl::Vector<T> {
        &self.0
    }
}

impl<T: Clone> FromIterator<T> for Bounded<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Bounded(iter.into_iter().collect())
    }
}

impl<T: Clone> Extend<T> for Bounded<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        self.0.extend(iter)
    }
}

impl<T: Clone + Serialize> Serialize for Bounded<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

impl<'de, T: Clone + Deserialize<'de>> Deserialize<'de> for Bounded<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<T>::deserialize(d).map(|v| Bounded(imbl::Vector::from(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

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
        let mut b = Bounded::new();
        for i in 0..10 {
            b.push(3, i);
        }
        assert_eq!(b.iter().copied().collect::<Vec<_>>(), [7, 8, 9]);
        b.push(0, 1);
        assert!(b.is_empty());
    }

    #[test]
    fn a_bounded_buffer_encodes_exactly_as_a_deque_and_its_copy_is_independent() {
        let mut b = Bounded::new();
        let mut d = VecDeque::new();
        for i in 0..1000u32 {
            b.push(300, (i, f64::from(i) / 7.0));
            if d.len() >= 300 {
                d.pop_front();
            }
            d.push_back((i, f64::from(i) / 7.0));
        }
        let bytes = crate::codec::encode(1, &b).expect("encode");
        assert_eq!(bytes, crate::codec::encode(1, &d).expect("encode"));
        let back: Bounded<(u32, f64)> = bytes.decode().expect("decode");
        assert_eq!(back, b);
        // A copy (what a capture takes) keeps what it saw while the
        // original moves on.
        let copy = b.clone();
        for i in 1000..1100u32 {
            b.push(300, (i, 0.0));
        }
        assert_eq!(copy.len(), 300);
        assert_eq!(copy[0].0, 700);
        assert_eq!(copy[299].0, 999);
        assert_eq!(b[0].0, 800);
        assert_eq!(bytes, crate::codec::encode(1, &copy).expect("encode"));
    }
}
