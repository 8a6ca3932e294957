//! What a user can change while the engines run: intervals, retention and
//! breakthrough thresholds. Saved in the database; applied without a restart.

use super::RuntimeOptions;
use crate::engines::EngineSet;
use crate::error::{Error, Result};
use crate::store::RetentionPolicy;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The user's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Autosave interval, seconds (0.05 – 3600).
    pub autosave_secs: f64,
    /// Periodic backup interval, seconds (1 – 30 days).
    pub backup_every_secs: f64,
    pub retention: RetentionPolicy,
    /// ZAP: breakthrough when the success rate over the last 100 plans reaches this…
    pub zap_success_rate: f64,
    /// …with at least this many plans.
    pub zap_min_plans: u64,
    /// MDP/ES: breakthrough when best fitness reaches this…
    pub mdp_min_fitness: f64,
    /// …after at least this many generations.
    pub mdp_min_generations: u64,
    /// Orchestrator: a breakthrough every this many cross-system calls.
    pub orchestrator_every: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_options(&RuntimeOptions::new("."))
    }
}

impl Settings {
    /// The settings the options describe.
    pub fn from_options(o: &RuntimeOptions) -> Settings {
        Settings {
            autosave_secs: o.autosave.as_secs_f64(),
            backup_every_secs: o.backup_every.as_secs_f64(),
            retention: o.retention.clone(),
            zap_success_rate: o.engines.zap.breakthrough_success_rate,
            zap_min_plans: o.engines.zap.breakthrough_min_plans,
            mdp_min_fitness: o.engines.mdp_es.rule.min_fitness,
            mdp_min_generations: o.engines.mdp_es.rule.min_generations,
            orchestrator_every: o.engines.orchestrator.breakthrough_every,
        }
    }

    /// Refuses values that make no sense, naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidInput(format!("settings: {m}")));
        if !(0.05..=3600.0).contains(&self.autosave_secs) {
            return bad("autosave_secs must be between 0.05 and 3600");
        }
        if !(1.0..=30.0 * 86_400.0).contains(&self.backup_every_secs) {
            return bad("backup_every_secs must be between 1 and 2592000 (30 days)");
        }
        if !(0.0..=1.0).contains(&self.zap_success_rate)
            || !(0.0..=1.0).contains(&self.mdp_min_fitness)
        {
            return bad("rates and fitness thresholds must be between 0 and 1");
        }
        if self.orchestrator_every == 0 {
            return bad("orchestrator_every must be at least 1");
        }
        Ok(())
    }

    /// Writes these settings into runtime options.
    pub fn apply_to_options(&self, o: &mut RuntimeOptions) {
        o.autosave = Duration::from_secs_f64(self.autosave_secs);
        o.backup_every = Duration::from_secs_f64(self.backup_every_secs);
        o.retention = self.retention.clone();
        o.engines.zap.breakthrough_success_rate = self.zap_success_rate;
        o.engines.zap.breakthrough_min_plans = self.zap_min_plans;
        o.engines.mdp_es.rule.min_fitness = self.mdp_min_fitness;
        o.engines.mdp_es.rule.min_generations = self.mdp_min_generations;
        o.engines.orchestrator.breakthrough_every = self.orchestrator_every;
    }

    /// Writes the thresholds into running (or just restored) engines.
    pub fn apply_to_engines(&self, e: &mut EngineSet) {
        e.zap.config.breakthrough_success_rate = self.zap_success_rate;
        e.zap.config.breakthrough_min_plans = self.zap_min_plans;
        e.mdp_es.config.rule.min_fitness = self.mdp_min_fitness;
        e.mdp_es.config.rule.min_generations = self.mdp_min_generations;
        e.orchestrator.config.breakthrough_every = self.orchestrator_every;
    }
}
