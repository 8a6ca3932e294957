import { describe, expect, it } from "vitest";
import { chartData, smooth, spanAt, widenFlat } from "./chartdata";

describe("smoothing", () => {
  it("is the data itself at weight 0, and debiased (no pull towards zero) above it", () => {
    expect(smooth([1, 2, 3], 0)).toEqual([1, 2, 3]);
    const s = smooth([10, 10, 10], 0.9);
    for (const v of s) expect(v).toBeCloseTo(10, 10);
  });
  it("follows a step more slowly the higher the weight, and restarts after a break", () => {
    const light = smooth([0, 0, 1, 1], 0.5);
    const heavy = smooth([0, 0, 1, 1], 0.9);
    expect(light[3]!).toBeGreaterThan(heavy[3]!);
    expect(heavy[3]!).toBeLessThan(1);
    expect(smooth([0, 0, null, 5], 0.9)[3]).toBeCloseTo(5, 10);
  });
});

describe("chart data", () => {
  const pts = [
    { t: 1000, v: 1, branch: 1 },
    { t: 2000, v: 2, branch: 1 },
    { t: 3000, v: 0.5, branch: 2 },
    { t: 4000, v: 0, branch: 2 },
  ];
  it("splits the current line of history from the earlier one and breaks at the restore", () => {
    const [xs, cur, old] = chartData(pts, 2, 0, false);
    expect(xs).toEqual([1, 2, 2.999, 3, 4]);
    expect(old).toEqual([1, 2, null, null, null]);
    expect(cur).toEqual([null, null, null, 0.5, 0]);
  });
  it("draws no line across a span in which nothing ran, and smoothing restarts after it", () => {
    const run = [
      { t: 1000, v: 1, branch: 1 },
      { t: 2000, v: 1, branch: 1 },
      { t: 60000, v: 9, branch: 1 },
      { t: 61000, v: 9, branch: 1 },
    ];
    const spans = [{ from_ms: 2000, to_ms: 60000 }];
    const [xs, cur] = chartData(run, 1, 0.9, false, spans);
    expect(xs).toEqual([1, 2, 31, 60, 61]);
    expect(cur[2]).toBeNull();
    expect(cur[3]).toBeCloseTo(9, 10);
    expect(spanAt(spans, 30000)).toEqual(spans[0]);
    expect(spanAt(spans, 2000)).toBeUndefined();
    // Without the span the line joins the two runs.
    expect(chartData(run, 1, 0, false)[0]).toEqual([1, 2, 60, 61]);
  });
  it("leaves out what a log axis cannot show", () => {
    const [, cur] = chartData(pts, 2, 0, true);
    expect(cur[4]).toBeNull();
  });
});

describe("widenFlat", () => {
  it("gives flat data an axis its format can label, from 0 up for data that never goes below 0", () => {
    expect(widenFlat("percent", 0, 0)).toEqual([0, 0.02]);
    const [lo, hi] = widenFlat("decimal", 0.9999, 1)!;
    expect(lo).toBeCloseTo(0.98995, 6);
    expect(hi).toBeCloseTo(1.00995, 6);
    expect(widenFlat("integer", 7, 7)).toEqual([0, 20]);
    expect(widenFlat("integer", -3, -3)).toEqual([-13, 7]);
  });
  it("leaves data its format prints apart, and no data, to the default range", () => {
    expect(widenFlat("percent", 0, 0.5)).toBeNull();
    expect(widenFlat("decimal", 0.95, 1)).toBeNull();
    expect(widenFlat("integer", 0, 100)).toBeNull();
    expect(widenFlat("percent", null, null)).toBeNull();
  });
});
