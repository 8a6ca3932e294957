import { describe, expect, it } from "vitest";
import { branchRuns, dayRange, densityBars, layoutMarks, linePath, metricOverTime, ticks, timeScale, xOf } from "./timeline";
import type { Backup, BackupKind } from "../generated/api";

function backup(id: number, t: number, kind: BackupKind = "periodic"): Backup {
  return { id, kind, created_at: "", created_at_ms: t, label: null, pinned: false, engines: [], learners: [], learner_steps: {}, learner_metrics: {}, metrics: {}, size: 0, breakthrough: null, origin: null, offsite: null };
}

describe("timeScale", () => {
  it("covers every time with padding and keeps order", () => {
    const s = timeScale([1_000_000, 5_000_000], 500);
    expect(s.start).toBeLessThan(1_000_000);
    expect(s.end).toBeGreaterThan(5_000_000);
    expect(xOf(s, 1_000_000)).toBeGreaterThan(0);
    expect(xOf(s, 5_000_000)).toBeLessThan(500);
    expect(xOf(s, 2_000_000)).toBeLessThan(xOf(s, 3_000_000));
  });
  it("widens a single instant to the minimum span", () => {
    const s = timeScale([10_000_000], 100, 60_000);
    expect(s.end - s.start).toBeGreaterThanOrEqual(60_000);
    expect(xOf(s, 10_000_000)).toBeCloseTo(50, 5);
  });
});

describe("layoutMarks", () => {
  it("stacks near-coincident marks and flags milestones", () => {
    const s = { start: 0, end: 1000, width: 1000 };
    const marks = layoutMarks([backup(1, 100), backup(2, 102), backup(3, 500, "breakthrough"), backup(4, 101)], s, 6, 3);
    const byId = new Map(marks.map((m) => [m.id, m]));
    expect(byId.get(1)?.row).toBe(0);
    expect(byId.get(4)?.row).toBe(1);
    expect(byId.get(2)?.row).toBe(2);
    expect(byId.get(3)).toMatchObject({ row: 0, milestone: true, x: 500 });
  });
  it("handles 10,000 backups quickly and in time order", () => {
    const many = Array.from({ length: 10_000 }, (_, i) => backup(i + 1, i * 1000));
    const s = timeScale(many.map((b) => b.created_at_ms), 1200);
    const marks = layoutMarks(many, s);
    expect(marks).toHaveLength(10_000);
    expect(marks[0]!.x).toBeLessThan(marks[9_999]!.x);
  });
});

describe("ticks and paths", () => {
  it("labels ticks by span and draws paths in the box", () => {
    const s = { start: Date.UTC(2026, 0, 1, 12), end: Date.UTC(2026, 0, 1, 13), width: 100 };
    const t = ticks(s, 4);
    expect(t).toHaveLength(5);
    expect(t[0]!.label).toBe("12:00:00");
    const d = linePath([{ t: s.start, v: 0 }, { t: s.end, v: 1 }, { t: s.end, v: Number.NaN }], s, 50, 0, 1);
    expect(d).toBe("M0.0,50.0 L100.0,0.0");
  });
});

describe("branchRuns", () => {
  it("starts a new run where the branch changes, keeping time order", () => {
    const pts = [
      { t: 1, v: 1, branch: 1 },
      { t: 2, v: 2, branch: 1 },
      { t: 3, v: 0, branch: 2 },
      { t: 4, v: 1, branch: 2 },
    ];
    const runs = branchRuns(pts);
    expect(runs.map((r) => r.map((p) => p.t))).toEqual([[1, 2], [3, 4]]);
    expect(branchRuns([])).toEqual([]);
  });
});

describe("densityBars", () => {
  const scale = { start: 0, end: 1000, width: 1000 };
  const order = ["initial", "periodic", "breakthrough"] as const;
  it("places each bucket at its time, height by square root of its count, kinds stacked in order", () => {
    const bars = densityBars(
      [
        { start_ms: 0, end_ms: 100, counts: [{ kind: "periodic", count: 300 }, { kind: "initial", count: 100 }] },
        { start_ms: 500, end_ms: 600, counts: [{ kind: "breakthrough", count: 1 }] },
      ],
      scale,
      60,
      40,
      order,
    );
    expect(bars).toHaveLength(2);
    const [a, b] = bars as [(typeof bars)[0], (typeof bars)[0]];
    expect(a.x).toBe(0);
    expect(a.total).toBe(400);
    // The fullest bucket is full height; kinds stack bottom-up in legend order.
    expect(a.segments.map((s) => s.kind)).toEqual(["initial", "periodic"]);
    expect(a.segments[0]!.y + a.segments[0]!.h).toBeCloseTo(60);
    expect(a.segments[1]!.y).toBeCloseTo(20);
    expect(a.segments[0]!.h * 3).toBeCloseTo(a.segments[1]!.h);
    // One backup beside 400: sqrt(1/400) of the height, still visible.
    expect(b.x).toBe(500);
    expect(b.segments[0]!.h).toBeCloseTo(2);
  });
});

describe("dayRange", () => {
  it("is the UTC day of a date, and null for anything else", () => {
    expect(dayRange("2026-11-27")).toEqual({ min: Date.UTC(2026, 10, 27), max: Date.UTC(2026, 10, 28) });
    expect(dayRange("27/11/2026")).toBeNull();
    expect(dayRange("")).toBeNull();
  });
});

describe("one metric over the timeline", () => {
  const scale = { start: 0, end: 1000, width: 100 };
  it("draws the values in view between top and bottom, broken where a backup holds none", () => {
    const runs = metricOverTime(
      [
        { created_at_ms: -50, value: 99 },
        { created_at_ms: 0, value: 0 },
        { created_at_ms: 500, value: 1 },
        { created_at_ms: 600, value: null },
        { created_at_ms: 1000, value: 0.5 },
      ],
      scale,
      10,
      50,
    );
    // The one outside the range neither drawn nor scaling the rest.
    expect(runs).toEqual(["0,50.0 50,10.0", "100,30.0"]);
  });
  it("keeps at most a pixel's lowest and highest, in their order", () => {
    const many = Array.from({ length: 100_000 }, (_, i) => ({ created_at_ms: i / 100, value: i % 7 }));
    const [run] = metricOverTime(many, scale, 0, 60);
    const points = run!.split(" ");
    expect(points.length).toBeLessThanOrEqual(2 * 101);
    expect(points.slice(0, 2)).toEqual(["0,60.0", "0,0.0"]);
  });
  it("draws nothing without a value in view", () => {
    expect(metricOverTime([{ created_at_ms: 5, value: null }], scale, 0, 60)).toEqual([]);
  });
});

