//! The cross-connection orchestrator: a registry of systems and their
//! capabilities, and the router of every cross-system call. It records each
//! call (caller, callee, method, latency, outcome, time) in a bounded history
//! with per-edge totals, and reports a breakthrough every N calls.

use super::bounds::{Bounds, MAX_BUFFER, MAX_COUNTER};
use super::{Bounded, Clock};
use crate::error::{Error, Result};
use crate::wire::{Breakthrough, Metrics};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Engine name of the orchestrator.
pub const NAME: &str = "orchestrator";
const SCHEMA: u32 = 1;

/// Settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrchestratorConfig {
    pub history_cap: usize,
    /// The first milestone at this many calls…
    pub breakthrough_every: u64,
    /// …then the threshold is multiplied by this (10: 1k, 10k, 100k, …), so
    /// a long run has a handful of milestones; 1 adds `breakthrough_every`
    /// each time instead.
    pub breakthrough_growth: u64,
}

impl OrchestratorConfig {
    /// The ranges of the settings.
    pub(crate) fn check(&self, b: &Bounds) -> Result<()> {
        b.range("config.history_cap", self.history_cap, 0, MAX_BUFFER)?;
        b.range(
            "config.breakthrough_every",
            self.breakthrough_every,
            1,
            MAX_COUNTER,
        )?;
        b.range(
            "config.breakthrough_growth",
            self.breakthrough_growth,
            1,
            1_000_000,
        )
    }
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        OrchestratorConfig {
            history_cap: 1000,
            breakthrough_every: 1000,
            breakthrough_growth: 10,
        }
    }
}

/// Systems the registry may hold.
pub const MAX_SYSTEMS: usize = 64;

/// A registered system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    pub capabilities: Vec<String>,
}

/// One routed call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub caller: String,
    pub callee: String,
    pub method: String,
    pub latency_ns: u64,
    /// None when the call succeeded; the error code otherwise.
    pub error: Option<String>,
    /// Clock reading when the call finished.
    pub at_ns: u64,
}

/// Totals for one caller -> callee edge.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeTotals {
    pub calls: u64,
    pub failures: u64,
    pub latency_ns: u64,
}

/// The orchestrator's whole state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Orchestrator {
    pub config: OrchestratorConfig,
    pub registry: BTreeMap<String, SystemInfo>,
    /// A persistent vector of shared records: a capture of the engines (on
    /// the engine thread, each autosave) copies a pointer per 64 records,
    /// and the push after it copies pointers, not three strings a record.
    /// Encoded exactly as a `VecDeque<CallRecord>`.
    pub history: Bounded<Arc<CallRecord>>,
    /// Keyed `"caller->callee"`.
    pub edges: BTreeMap<String, EdgeTotals>,
    pub calls: u64,
    pub failures: u64,
    pub total_latency_ns: u64,
    pub next_breakthrough: u64,
    #[serde(skip)]
    pending: Vec<Breakthrough>,
}

impl Orchestrator {
    pub fn new(config: OrchestratorConfig) -> Self {
        let every = config.breakthrough_every.max(1);
        Orchestrator {
            config,
            registry: BTreeMap::new(),
            history: Bounded::new(),
            edges: BTreeMap::new(),
            calls: 0,
            failures: 0,
            total_latency_ns: 0,
            next_breakthrough: every,
            pending: Vec::new(),
        }
    }

    /// Registers (or re-registers) a system with what it can be asked.
    pub fn register(&mut self, name: &str, capabilities: &[&str]) {
        self.registry.insert(
            name.to_string(),
            SystemInfo {
                capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
            },
        );
    }

    /// Routes one call: checks the callee and method are registered, runs
    /// `call`, records the outcome. Unknown systems or methods are typed
    /// errors (and recorded as failures), never panics.
    pub fn route<R>(
        &mut self,
        caller: &str,
        callee: &str,
        method: &str,
        clock: &mut dyn Clock,
        call: impl FnOnce() -> Result<R>,
    ) -> Result<R> {
        let start = clock.now_ns();
        let result = match self.registry.get(callee) {
            None => Err(Error::NotFound {
                what: "system",
                id: callee.to_string(),
            }),
            Some(info) if !info.capabilities.iter().any(|c| c == method) => Err(Error::NotFound {
                what: "method",
                id: format!("{callee}.{method}"),
            }),
            Some(_) => call(),
        };
        let end = clock.now_ns();
        let latency = end.saturating_sub(start);
        let error = result.as_ref().err().map(|e| e.code().to_string());
        self.calls += 1;
        self.total_latency_ns += latency;
        let edge = self.edges.entry(format!("{caller}->{callee}")).or_default();
        edge.calls += 1;
        edge.latency_ns += latency;
        if error.is_some() {
            self.failures += 1;
            edge.failures += 1;
        }
        self.history.push(
            self.config.history_cap,
            Arc::new(CallRecord {
                caller: caller.to_string(),
                callee: callee.to_string(),
                method: method.to_string(),
                latency_ns: latency,
                error,
                at_ns: end,
            }),
        );
        if self.calls >= self.next_breakthrough {
            self.pending.push(Breakthrough {
                engine: NAME.into(),
                rule: format!("cross_system_calls >= {}", self.next_breakthrough),
                metric: "cross_system_calls".into(),
                value: self.calls as f64,
                step: self.calls,
            });
            self.next_breakthrough = self.threshold_after(self.next_breakthrough);
        }
        result
    }

    /// The milestone threshold after `t`: geometric, saturating (a threshold
    /// never wraps around to a small number).
    fn threshold_after(&self, t: u64) -> u64 {
        match self.config.breakthrough_growth {
            0 | 1 => t.saturating_add(self.config.breakthrough_every.max(1)),
            g => t.saturating_mul(g),
        }
    }

    /// Breakthroughs since the last call.
    pub fn take_breakthroughs(&mut self) -> Vec<Breakthrough> {
        std::mem::take(&mut self.pending)
    }

    pub fn metrics(&self) -> Metrics {
        let mean_latency_ms = if self.calls == 0 {
            0.0
        } else {
            self.total_latency_ns as f64 / self.calls as f64 / 1e6
        };
        Metrics::from([
            ("systems_registered".into(), self.registry.len() as f64),
            ("cross_system_calls".into(), self.calls as f64),
            ("failures".into(), self.failures as f64),
            ("mean_latency_ms".into(), mean_latency_ms),
            ("next_breakthrough_at".into(), self.next_breakthrough as f64),
        ])
    }

    pub fn capture(&self) -> Result<crate::EncodedState> {
        crate::codec::encode(SCHEMA, self)
    }

    /// Decodes a captured state and checks it ([`Orchestrator::check`])
    /// before anything runs it.
    pub fn restore(state: &crate::EncodedState) -> Result<Self> {
        check_schema(state, SCHEMA)?;
        let o: Orchestrator = state.decode()?;
        o.check()?;
        Ok(o)
    }

    /// Settings in range, a bounded registry and history, counters that
    /// cannot overflow, and a next milestone above zero (a threshold of 0
    /// would fire on every call).
    pub fn check(&self) -> Result<()> {
        let b = Bounds::new(NAME);
        let c = &self.config;
        c.check(&b)?;
        b.range("next_breakthrough", self.next_breakthrough, 1, u64::MAX)?;
        b.at_most("registry", self.registry.len(), MAX_SYSTEMS)?;
        b.holds(
            "registry",
            self.registry.iter().all(|(name, info)| {
                name.len() <= 64
                    && info.capabilities.len() <= 64
                    && info.capabilities.iter().all(|c| c.len() <= 64)
            }),
            "holds a name or capability list beyond 64",
        )?;
        b.at_most("history", self.history.len(), c.history_cap)?;
        b.at_most("edges", self.edges.len(), MAX_SYSTEMS * MAX_SYSTEMS)?;
        for (field, v) in [
            ("calls", self.calls),
            ("failures", self.failures),
            ("total_latency_ns", self.total_latency_ns),
        ] {
            b.range(field, v, 0, MAX_COUNTER)?;
        }
        for e in self.edges.values() {
            for (field, v) in [
                ("edges.calls", e.calls),
                ("edges.failures", e.failures),
                ("edges.latency_ns", e.latency_ns),
            ] {
                b.range(field, v, 0, MAX_COUNTER)?;
            }
        }
        Ok(())
    }
}

/// Refuses a state written with another schema version of an engine.
pub(crate) fn check_schema(state: &crate::EncodedState, want: u32) -> Result<()> {
    let found = state.header().schema;
    if found != want {
        return Err(Error::UnsupportedFormat {
            what: "engine state",
            found: found.into(),
            supported: want.into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::FakeClock;

    #[test]
    fn unknown_systems_and_methods_are_typed_errors_and_recorded() {
        let mut o = Orchestrator::new(OrchestratorConfig::default());
        o.register("mdp_es", &["request_concepts"]);
        let mut clock = FakeClock { now: 0, step: 10 };
        let ok: Result<u32> = o.route("zap", "mdp_es", "request_concepts", &mut clock, || Ok(7));
        assert_eq!(ok.expect("ok"), 7);
        let e = o
            .route("zap", "nobody", "x", &mut clock, || Ok(1))
            .expect_err("unknown");
        assert_eq!(e.code(), "not_found");
        let e = o
            .route("zap", "mdp_es", "launch", &mut clock, || Ok(1))
            .expect_err("method");
        assert!(e.to_string().contains("mdp_es.launch"));
        let m = o.metrics();
        assert_eq!((m["cross_system_calls"], m["failures"]), (3.0, 2.0));
        assert_eq!(o.edges["zap->mdp_es"].calls, 2);
        assert_eq!(o.history[1].error.as_deref(), Some("not_found"));
        assert_eq!(o.history[0].latency_ns, 10);
    }

    #[test]
    fn shared_call_records_encode_exactly_as_owned_ones() {
        // States stored before the records were shared must read back, and
        // new ones must read in older builds: the encoding is the same.
        let mut o = Orchestrator::new(OrchestratorConfig::default());
        o.register("mdp_es", &["request_concepts"]);
        let mut clock = FakeClock { now: 0, step: 10 };
        let _: Result<u32> = o.route("zap", "mdp_es", "request_concepts", &mut clock, || Ok(7));
        let _: Result<u32> = o.route("zap", "nobody", "x", &mut clock, || Ok(1));
        let owned: std::collections::VecDeque<CallRecord> =
            o.history.iter().map(|r| (**r).clone()).collect();
        let owned = crate::codec::encode(1, &owned).expect("encode");
        let shared = crate::codec::encode(1, &o.history).expect("encode");
        assert_eq!(shared.as_bytes(), owned.as_bytes());
        let back: Bounded<Arc<CallRecord>> = owned.decode().expect("decode");
        assert_eq!(back, o.history);
    }

    #[test]
    fn milestone_thresholds_grow_geometrically_and_never_wrap() {
        let mut o = Orchestrator::new(OrchestratorConfig {
            history_cap: 10,
            breakthrough_every: 10,
            breakthrough_growth: 10,
        });
        o.register("a", &["m"]);
        let mut clock = FakeClock::default();
        let mut fired = Vec::new();
        for _ in 0..12_000 {
            let _ = o.route("b", "a", "m", &mut clock, || Ok(()));
            fired.extend(o.take_breakthroughs());
        }
        let steps: Vec<u64> = fired.iter().map(|b| b.step).collect();
        assert_eq!(steps, [10, 100, 1000, 10_000]);
        assert_eq!(fired[2].rule, "cross_system_calls >= 1000");
        assert_eq!(o.next_breakthrough, 100_000);
        o.next_breakthrough = u64::MAX / 3;
        assert_eq!(
            o.threshold_after(o.next_breakthrough),
            u64::MAX,
            "saturates"
        );
    }

    #[test]
    fn breakthroughs_fire_at_every_threshold_exactly_once() {
        let mut o = Orchestrator::new(OrchestratorConfig {
            history_cap: 50,
            breakthrough_every: 1000,
            breakthrough_growth: 1,
        });
        o.register("a", &["m"]);
        let mut clock = FakeClock::default();
        let mut fired = Vec::new();
        for _ in 0..3500 {
            let _ = o.route("b", "a", "m", &mut clock, || Ok(()));
            fired.extend(o.take_breakthroughs());
        }
        let steps: Vec<u64> = fired.iter().map(|b| b.step).collect();
        assert_eq!(steps, [1000, 2000, 3000]);
        assert!(
            fired
                .iter()
                .all(|b| b.engine == NAME && b.metric == "cross_system_calls")
        );
        assert_eq!(fired[1].value, 2000.0);
        assert_eq!(o.history.len(), 50, "history stays within its cap");
        assert_eq!(o.next_breakthrough, 4000);
    }
}
