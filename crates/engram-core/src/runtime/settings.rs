//! What a user can change while the engines run: intervals, retention and
//! breakthrough thresholds. Saved in the database; applied without a restart.
//!
//! [`Settings::fields`] is the one description of every field — its range,
//! label and help text. Validation checks against it, and the UI builds its
//! settings form from it (served by the API, typed by the generated
//! TypeScript), so a field is described in exactly one place.

use super::RuntimeOptions;
use crate::engines::EngineSet;
use crate::error::{Error, Result};
use crate::wire::Settings;
use crate::wire::{SettingField, SettingKind};
use std::time::Duration;

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
            mdp_min_policy_quality: o.engines.mdp_es.rule.min_policy_quality,
            orchestrator_every: o.engines.orchestrator.breakthrough_every,
            orchestrator_growth: o.engines.orchestrator.breakthrough_growth,
            replica_verify_hours: o.replica_verify_every.as_secs_f64() / 3600.0,
        }
    }

    /// Every field: where it sits, its range, label and help text.
    pub fn fields() -> Vec<SettingField> {
        use SettingKind::{Integer, Number};
        // Integers stay below 2^53 so that JavaScript holds them exactly.
        const BIG: f64 = 9_007_199_254_740_991.0;
        const SAVING: &str = "Saving";
        const RETENTION: &str = "Retention";
        const RULES: &str = "Breakthrough thresholds";
        const OFFSITE: &str = "Offsite replicas";
        #[rustfmt::skip]
        let table: [(&str, &str, &str, &str, SettingKind, f64, f64); 15] = [
            ("autosave_secs", SAVING, "Autosave every (seconds)",
             "How often the live state is saved; a crash loses at most this much.", Number, 0.05, 3600.0),
            ("backup_every_secs", SAVING, "Periodic backup every (seconds)",
             "How often a periodic backup is added to the timeline (at most 30 days).", Number, 1.0, 30.0 * 86_400.0),
            ("retention.keep_last_periodic", RETENTION, "Keep last periodic",
             "The newest this many periodic backups are kept.", Integer, 0.0, 1_000_000.0),
            ("retention.keep_hourly", RETENTION, "Keep hourly",
             "Also keep the newest periodic backup of each of the last this many hours.", Integer, 0.0, 1_000_000.0),
            ("retention.keep_daily", RETENTION, "Keep daily",
             "… of each of the last this many days (UTC).", Integer, 0.0, 1_000_000.0),
            ("retention.keep_weekly", RETENTION, "Keep weekly",
             "… of each of the last this many weeks.", Integer, 0.0, 1_000_000.0),
            ("retention.keep_last_pre_restore", RETENTION, "Keep last pre-restore",
             "The newest this many pre-restore backups (the undo history of restores).", Integer, 0.0, 1_000_000.0),
            ("zap_success_rate", RULES, "ZAP held-out success (share of optimum)",
             "A ZAP milestone when its success on the held-out maps, as a share of each map's optimum, reaches this (0–1).", Number, 0.0, 1.0),
            ("zap_min_plans", RULES, "ZAP minimum plans",
             "…after at least this many plans.", Integer, 0.0, BIG),
            ("mdp_min_fitness", RULES, "ES validated best fitness",
             "An MDP/ES milestone when the best policy's fitness on the 100-episode validation set reaches this (0–1).", Number, 0.0, 1.0),
            ("mdp_min_generations", RULES, "ES minimum generations",
             "…after at least this many ES generations.", Integer, 0.0, BIG),
            ("mdp_min_policy_quality", RULES, "Q policy quality",
             "An MDP/ES milestone when the greedy Q policy's exact expected return reaches this share of the optimum (0–1).", Number, 0.0, 1.0),
            ("orchestrator_every", RULES, "Orchestrator first milestone (calls)",
             "The first orchestrator milestone at this many cross-system calls.", Integer, 1.0, 1e12),
            ("orchestrator_growth", RULES, "Orchestrator threshold growth (×)",
             "Each later milestone needs this many times more calls (10: 1k, 10k, 100k…); 1 means every N calls.", Integer, 1.0, 1000.0),
            ("replica_verify_hours", OFFSITE, "Verify replicas every (hours)",
             "How often each replica's structure is checked by itself (restic's check, no pack read); 0 never. Reading every pack is `Verify every pack`.", Number, 0.0, 8760.0),
        ];
        table
            .into_iter()
            .map(|(key, group, label, help, kind, min, max)| SettingField {
                key: key.into(),
                group: group.into(),
                label: label.into(),
                help: help.into(),
                kind,
                min,
                max,
            })
            .collect()
    }

    /// These settings with the fields `patch` names replaced. Refuses a patch
    /// that is not an object, names a setting that does not exist, or has a
    /// value of the wrong type (ranges are checked by [`Settings::validate`]).
    pub fn patched(&self, patch: &serde_json::Value) -> Result<Settings> {
        fn merge(
            into: &mut serde_json::Value,
            patch: &serde_json::Value,
            path: &str,
        ) -> Result<()> {
            let (Some(into), Some(patch)) = (into.as_object_mut(), patch.as_object()) else {
                return Err(Error::InvalidInput(format!(
                    "settings: {} must be an object",
                    if path.is_empty() { "the body" } else { path }
                )));
            };
            for (k, v) in patch {
                let name = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match into.get_mut(k) {
                    None => {
                        return Err(Error::InvalidInput(format!(
                            "settings: unknown setting {name}"
                        )));
                    }
                    Some(slot) if slot.is_object() => merge(slot, v, &name)?,
                    Some(slot) => *slot = v.clone(),
                }
            }
            Ok(())
        }
        let mut value = serde_json::to_value(self).map_err(|e| Error::Encode(e.to_string()))?;
        merge(&mut value, patch, "")?;
        serde_json::from_value(value).map_err(|e| Error::InvalidInput(format!("settings: {e}")))
    }

    /// Refuses values outside [`Settings::fields`], naming the field.
    pub fn validate(&self) -> Result<()> {
        let value = serde_json::to_value(self).map_err(|e| Error::Encode(e.to_string()))?;
        for field in Self::fields() {
            let v = field
                .key
                .split('.')
                .try_fold(&value, |v, k| v.get(k))
                .and_then(serde_json::Value::as_f64);
            let ok = v.is_some_and(|v| {
                (field.min..=field.max).contains(&v)
                    && (field.kind == SettingKind::Number || v.fract() == 0.0)
            });
            if !ok {
                return Err(Error::InvalidInput(format!(
                    "settings: {} must be {} between {} and {}",
                    field.key,
                    match field.kind {
                        SettingKind::Integer => "a whole number",
                        SettingKind::Number => "a number",
                    },
                    field.min,
                    field.max
                )));
            }
        }
        Ok(())
    }

    /// Writes these settings into runtime options.
    pub fn apply_to_options(&self, o: &mut RuntimeOptions) {
        o.autosave = Duration::from_secs_f64(self.autosave_secs);
        o.backup_every = Duration::from_secs_f64(self.backup_every_secs);
        o.replica_verify_every = Duration::from_secs_f64(self.replica_verify_hours * 3600.0);
        o.retention = self.retention.clone();
        o.engines.zap.breakthrough_success_rate = self.zap_success_rate;
        o.engines.zap.breakthrough_min_plans = self.zap_min_plans;
        o.engines.mdp_es.rule.min_fitness = self.mdp_min_fitness;
        o.engines.mdp_es.rule.min_generations = self.mdp_min_generations;
        o.engines.mdp_es.rule.min_policy_quality = self.mdp_min_policy_quality;
        o.engines.orchestrator.breakthrough_every = self.orchestrator_every;
        o.engines.orchestrator.breakthrough_growth = self.orchestrator_growth;
    }

    /// Writes the thresholds into running (or just restored) engines.
    pub fn apply_to_engines(&self, e: &mut EngineSet) {
        e.zap.config.breakthrough_success_rate = self.zap_success_rate;
        e.zap.config.breakthrough_min_plans = self.zap_min_plans;
        e.mdp_es.config.rule.min_fitness = self.mdp_min_fitness;
        e.mdp_es.config.rule.min_generations = self.mdp_min_generations;
        e.mdp_es.config.rule.min_policy_quality = self.mdp_min_policy_quality;
        e.orchestrator.config.breakthrough_every = self.orchestrator_every;
        e.orchestrator.config.breakthrough_growth = self.orchestrator_growth;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_describes_a_real_setting_and_defaults_are_valid() {
        let defaults = Settings::default();
        defaults.validate().expect("defaults are valid");
        let value = serde_json::to_value(&defaults).expect("json");
        let mut described = Vec::new();
        for field in Settings::fields() {
            let v = field.key.split('.').try_fold(&value, |v, k| v.get(k));
            assert!(
                v.is_some_and(serde_json::Value::is_number),
                "{} is not a setting",
                field.key
            );
            assert!(field.min <= field.max, "{}", field.key);
            described.push(field.key);
        }
        // And every numeric setting is described (nothing escapes validation).
        let mut leaves = Vec::new();
        for (k, v) in value.as_object().expect("object") {
            match v.as_object() {
                Some(inner) => leaves.extend(inner.keys().map(|i| format!("{k}.{i}"))),
                None => leaves.push(k.clone()),
            }
        }
        leaves.sort();
        described.sort();
        assert_eq!(leaves, described);
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let s = Settings::default();
        let p = s
            .patched(&serde_json::json!({"autosave_secs": 2.0, "retention": {"keep_daily": 3}}))
            .expect("patch");
        assert_eq!((p.autosave_secs, p.retention.keep_daily), (2.0, 3));
        assert_eq!(p.retention.keep_weekly, s.retention.keep_weekly);
        assert_eq!(p.backup_every_secs, s.backup_every_secs);
        // An empty patch changes nothing at all.
        assert_eq!(s.patched(&serde_json::json!({})).expect("empty"), s);
        for (bad, says) in [
            (
                serde_json::json!({"autosave": 2}),
                "unknown setting autosave",
            ),
            (
                serde_json::json!({"retention": {"keep_monthly": 1}}),
                "retention.keep_monthly",
            ),
            (
                serde_json::json!({"retention": 5}),
                "retention must be an object",
            ),
            (serde_json::json!({"zap_min_plans": "ten"}), "settings:"),
            (serde_json::json!(null), "the body must be an object"),
        ] {
            let e = s.patched(&bad).expect_err(says);
            assert_eq!(e.code(), "invalid_input");
            assert!(e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_field_name() {
        let check = |change: fn(&mut Settings), field: &str| {
            let mut s = Settings::default();
            change(&mut s);
            let e = s.validate().expect_err(field);
            assert_eq!(e.code(), "invalid_input");
            assert!(e.to_string().contains(field), "{e}");
        };
        check(|s| s.autosave_secs = 0.0, "autosave_secs");
        check(|s| s.autosave_secs = f64::NAN, "autosave_secs");
        check(
            |s| s.backup_every_secs = 31.0 * 86_400.0,
            "backup_every_secs",
        );
        check(|s| s.zap_success_rate = 1.5, "zap_success_rate");
        check(|s| s.mdp_min_fitness = -0.1, "mdp_min_fitness");
        check(|s| s.orchestrator_every = 0, "orchestrator_every");
        check(|s| s.orchestrator_every = u64::MAX, "orchestrator_every");
        check(
            |s| s.retention.keep_daily = 2_000_000,
            "retention.keep_daily",
        );
    }
}
