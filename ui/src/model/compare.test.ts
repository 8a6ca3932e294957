import { describe, expect, it } from "vitest";
import type { DrillResult, MetricInfo, PolicyMaps } from "../generated/api";
import { METRICS } from "../generated/api";
import { ago, arrayText, drillLines, measuredText, metricText, newestDrills, policyGrid, sparkline } from "./compare";

const info = (engine: string, key: string): MetricInfo => METRICS.find((m) => m.engine === engine && m.key === key)!;

describe("evaluation figures", () => {
  it("say 'not evaluated yet' before the first evaluation, never 0", () => {
    const heldout = info("zap", "heldout_success");
    expect(heldout.measured_at).toBe("heldout_at_plans");
    expect(metricText(heldout, { plans_generated: 1500, score: 0.2 })).toBe("not evaluated yet");
    expect(metricText(heldout, { heldout_success: 0.67, heldout_at_plans: 2000 })).toBe("67.0 %");
    expect(measuredText(heldout, { heldout_success: 0.67, heldout_at_plans: 2000 })).toBe("at 2,000 plans");
    expect(measuredText(heldout, { plans_generated: 3 })).toBe("");
    // With its time: "ago" for a live figure, the moment for a backup's.
    const timed = { heldout_success: 0.67, heldout_at_plans: 2000, heldout_at_ms: 1_796_660_607_204 };
    expect(measuredText(heldout, timed)).toBe("at 2,000 plans, 2026-12-07 16:23:27");
    expect(measuredText(heldout, timed, 1_796_660_607_204 + 180_000)).toBe("at 2,000 plans, 3 min ago");
    // Nothing known at all (no metrics yet): a dash, not a claim.
    expect(metricText(heldout, undefined)).toBe("—");
    // A metric the environment does not have, after an evaluation: a dash.
    expect(metricText(info("mdp_es", "greedy_success"), { q_evaluated_at_episode: 10, greedy_return: -13 })).toBe("—");
    expect(metricText(info("zap", "plans_generated"), { score: 1 })).toBe("—");
  });
});

describe("drills", () => {
  const r = (unit: string, at_ms: number, error: string | null = null): DrillResult => ({
    unit,
    at_ms,
    took_ms: 12,
    metrics: error ? {} : { policy_quality: 0.9 },
    reported: error ? {} : { policy_quality: 0.5 },
    error,
  });
  it("keep the newest of each unit and say each figure beside the backup's own", () => {
    const all = [r("mdp_es", 3000), r("zap", 2500, "its zap state is damaged: checksum"), r("mdp_es", 1000)];
    expect(newestDrills(all).map((d) => d.at_ms)).toEqual([3000, 2500]);
    expect(drillLines(all[0]!, 5000)).toEqual(["mdp_es: drilled 2 s ago, took 12 ms", "Q policy vs optimum: 90.0 % (the backup reported 50.0 %)"]);
    expect(drillLines(all[1]!, 5000)[0]).toContain("drill failed");
    expect(ago(0, 7_200_000)).toBe("2 h ago");
  });
});

describe("inside a state", () => {
  it("an array line names what changed and by how much", () => {
    const base = { name: "w", dtype_from: "<f8", dtype_to: "<f8", shape_from: [2, 3], shape_to: [2, 3] };
    expect(arrayText({ ...base, changed: 2, max_abs: 3.25, mean_abs: 0.5 })).toBe("2 elements changed, max |Δ| 3.2500, mean |Δ| 0.5000 (<f8 [2, 3])");
    expect(arrayText({ ...base, changed: 0, max_abs: 0, mean_abs: 0 })).toBe("unchanged (<f8 [2, 3])");
    expect(arrayText({ ...base, shape_to: [4], changed: null, max_abs: null, mean_abs: null })).toBe("<f8 [2, 3] → <f8 [4]");
  });
  it("a policy map draws arrows, the map's letters, and marks changed cells", () => {
    const p: PolicyMaps = { env: "FrozenLake-v1", rows: 2, cols: 2, cells: ["S", "F", "H", "G"], actions: ["left", "down", "right", "up"], from: [1, 2, 0, 0], to: [2, 2, 3, 0], changed: 1 };
    const g = policyGrid(p, "to");
    expect(g.map((row) => row.map((c) => c.text).join(""))).toEqual(["→→", "HG"]);
    expect(g[0]!.map((c) => c.changed)).toEqual([true, false]);
    expect(g[1]!.map((c) => c.changed)).toEqual([false, false]);
    expect(policyGrid(p, "from")[0]!.map((c) => c.name)).toEqual(["down", "right"]);
  });
});

describe("a metric along the line", () => {
  it("draws runs between backups without a value, scaled into the box", () => {
    const s = sparkline(
      [
        { id: 1, value: 0 },
        { id: 2, value: 1 },
        { id: 3, value: null },
        { id: 4, value: 0.5 },
      ],
      30,
      12,
    );
    expect(s.runs).toEqual(["0.0,10.0 10.0,2.0", "30.0,6.0"]);
    expect(s.at.get(2)).toEqual([10, 2]);
    expect(s.at.has(3)).toBe(false);
    expect(sparkline([{ id: 9, value: null }], 30, 12).runs).toEqual([]);
  });
});
