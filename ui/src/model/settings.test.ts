import { describe, expect, it } from "vitest";
import { SETTING_FIELDS, type Settings } from "../generated/api";
import { valueAt, withValue } from "./settings";

const base: Settings = {
  autosave_secs: 5,
  backup_every_secs: 3600,
  retention: { keep_last_periodic: 24, keep_hourly: 0, keep_daily: 7, keep_weekly: 4, keep_last_pre_restore: 20 },
  zap_success_rate: 0.9,
  zap_min_plans: 10,
  mdp_min_fitness: 0.95,
  mdp_min_generations: 5,
  mdp_min_policy_quality: 0.95,
  orchestrator_every: 1000,
  orchestrator_growth: 10,
  replica_verify_hours: 24,
};

describe("settings form", () => {
  it("sets nested and top-level fields by their descriptor key without touching the original", () => {
    const next = withValue(withValue(base, "retention.keep_daily", 9), "autosave_secs", 2);
    expect(next.retention.keep_daily).toBe(9);
    expect(next.autosave_secs).toBe(2);
    expect(base.retention.keep_daily).toBe(7);
    expect(valueAt(next, "retention.keep_daily")).toBe(9);
  });

  it("describes every setting, so the form has an input for each", () => {
    const leaves = Object.entries(base).flatMap(([k, v]) => (typeof v === "object" ? Object.keys(v).map((i) => `${k}.${i}`) : [k]));
    expect(SETTING_FIELDS.map((f) => f.key).sort()).toEqual(leaves.sort());
  });
});
