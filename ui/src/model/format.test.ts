import { describe, expect, it } from "vitest";
import { formatBytes, formatTimestamp } from "./format";

describe("formatBytes", () => {
  it.each([
    [0, "0 B"],
    [1023, "1023 B"],
    [1536, "1.5 KB"],
    [10 * 1024 * 1024, "10 MB"],
    [-1, "—"],
    [Number.NaN, "—"],
  ])("%s -> %s", (n, want) => {
    expect(formatBytes(n)).toBe(want);
  });
});

describe("formatTimestamp", () => {
  it("formats UTC", () => {
    expect(formatTimestamp(1_795_633_474_123)).toBe("2026-11-25 19:04:34");
    expect(formatTimestamp(Number.POSITIVE_INFINITY)).toBe("—");
  });
});

import { changeClass, changeText, formatMetric, formatValue, metricInfo, setLearnerMetrics } from "./engines";

describe("metric formats from the core's catalog", () => {
  it("prints values in their own unit", () => {
    expect(formatMetric("integer", 22000)).toBe("22,000");
    expect(formatMetric("percent", 0.9)).toBe("90.0 %");
    expect(formatMetric("decimal", 0.95)).toBe("0.950");
    expect(formatMetric("milliseconds", 1.234)).toBe("1.23 ms");
    expect(formatMetric("milliseconds", 0.0032)).toBe("3.2 µs");
  });
  it("colours a change by whether higher is better, and a rounding-level change not at all", () => {
    const quality = metricInfo("mdp_es", "policy_quality")!;
    const latency = metricInfo("orchestrator", "mean_latency_ms")!;
    const plans = metricInfo("zap", "plans_generated")!;
    expect(changeClass(quality, 0.1)).toBe("good");
    expect(changeClass(quality, -0.1)).toBe("bad");
    expect(changeClass(latency, 0.5)).toBe("bad");
    expect(changeClass(plans, 100)).toBe("");
    expect(changeClass(quality, -0.00001)).toBe("");
  });
});

describe("a learner's metrics", () => {
  it("print in the unit the learner described, once the catalog has them", () => {
    expect(formatValue("frozenlake-q", "success", 0.93)).toBe("0.93");
    setLearnerMetrics([{ engine: "frozenlake-q", key: "success", label: "Success", unit: "", format: "percent", higher_is_better: true, card: false, chart: true, measured_at: null, measured_when: null }]);
    expect(formatValue("frozenlake-q", "success", 0.93)).toBe("93.0 %");
    expect(formatValue("zap", "plans_generated", 22000)).toBe("22,000");
    setLearnerMetrics([]);
    expect(formatValue("frozenlake-q", "success", 0.93)).toBe("0.93");
  });
});

describe("a change as it prints", () => {
  it("is signed in the metric's own format, and ±0 when it prints as none", () => {
    const quality = metricInfo("mdp_es", "policy_quality")!;
    expect(changeText(quality, 0.0123)).toBe("+1.2 %");
    expect(changeText(quality, -0.5)).toBe("−50.0 %");
    // A moment prints as a date and time; its change as a length of time.
    const when = metricInfo("zap", "heldout_at_ms")!;
    expect(formatMetric("time", 1_796_660_607_204)).toBe("2026-12-07 16:23:27");
    expect(changeText(when, 180_000)).toBe("+3 min");
    expect(changeText(when, -7_200_000)).toBe("−2 h");
    expect(changeText(quality, 0.00001)).toBe("±0");
    expect(changeText(metricInfo("zap", "plans_generated")!, 1650)).toBe("+1,650");
  });
});
