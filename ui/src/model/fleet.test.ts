import { describe, expect, it } from "vitest";
import { alignCurves, densityBars, hostCells, joinRequest, restoreHint, statusLines } from "./fleet";
import type { FleetBackup, FleetHost, FleetStatus, FleetTimeline } from "../generated/api";

const joined: FleetStatus = {
  joined: true, url: "postgresql://engram:***@db:5432/fleet", host_id: "engram-1", name: "gpu-a", state: "behind", summary: "sending 3 changes",
  queued: 3, lag_ms: 4000, joined_at_ms: 0, last_success_at_ms: 50_000, pushed_rows: 1234, refused_rows: 0, last_refused: null, problem: null,
};

describe("fleet status", () => {
  it("says where, how far and what was sent, never a password", () => {
    const l = statusLines(joined, 60_000);
    expect(l[0]).toContain("***");
    expect(l[1]).toBe("Sending 3 changes; the oldest has waited 4 s.");
    expect(l[2]).toBe("Last sent 10 s ago; 1,234 rows sent since joining.");
    expect(statusLines({ ...joined, refused_rows: 2, last_refused: "backup 7: check" }, 60_000)[3]).toContain("backup 7: check");
  });
  it("invites a host that is in none to join", () => {
    expect(statusLines({ ...joined, joined: false }, 0)[0]).toContain("not in a fleet");
  });
});

describe("joining", () => {
  it("takes a PostgreSQL URL and an optional name", () => {
    expect(joinRequest(" postgresql://u:p@h:5432/d ", "")).toEqual({ url: "postgresql://u:p@h:5432/d", name: null, take_over: false, new_id: false });
    expect(joinRequest("postgres://u@h/d", "box")).toMatchObject({ name: "box" });
  });
  it("refuses anything else before asking", () => {
    expect(typeof joinRequest("mysql://u@h/d", "")).toBe("string");
    expect(typeof joinRequest("postgresql://", "")).toBe("string");
    expect(typeof joinRequest("postgresql://h/d", "x".repeat(65))).toBe("string");
  });
});

describe("hosts", () => {
  const h: FleetHost = { host_id: "a", name: "a", joined_at_ms: 0, last_sync_at_ms: 1000, lag_ms: 125_000, stale: true, engram_version: "0.1.0", backups: 3, newest_backup_ms: null, units: [], this_host: false };
  it("names a stale host so", () => {
    const c = hostCells(h, 0);
    expect(c.sync).toBe("2 min ago");
    expect(c.health).toContain("stale");
    expect(c.newest).toBe("none");
    expect(hostCells({ ...h, stale: false, last_sync_at_ms: null }, 0)).toMatchObject({ sync: "never", health: "live" });
  });
});

describe("restore across hosts", () => {
  const b = { host_id: "a", host_name: "gpu-a", id: 7, replicas: ["r1"] } as FleetBackup;
  it("is offered only for a backup a replica holds", () => {
    expect(restoreHint(b, "b").can).toBe(true);
    expect(restoreHint(b, "b").why).toContain("gpu-a's backup #7");
    expect(restoreHint({ ...b, replicas: [] }, "b")).toMatchObject({ can: false });
  });
});

describe("curves from several hosts", () => {
  it("share one time axis with gaps where a host has no point", () => {
    const p = (at_ms: number, value: number) => ({ at_ms, value, min: value, max: value, branch: 1 });
    const d = alignCurves([
      { host_id: "a", host_name: "a", points: [p(1000, 1), p(3000, 3)], stored: 2 },
      { host_id: "b", host_name: "b", points: [p(2000, 20), p(3000, 30)], stored: 2 },
    ]);
    expect(d[0]).toEqual([1, 2, 3]);
    expect(d[1]).toEqual([1, null, 3]);
    expect(d[2]).toEqual([null, 20, 30]);
  });
});

describe("the all-hosts timeline strip", () => {
  it("places each bucket by its own bounds, the fullest at full height", () => {
    const t: FleetTimeline = {
      first_ms: 0, last_ms: 999, from_ms: 0, to_ms: 999, in_range: 6, total: 6, complete: true, marks: [],
      buckets: [
        { start_ms: 0, end_ms: 100, counts: [{ kind: "periodic", count: 4 }] },
        { start_ms: 500, end_ms: 1000, counts: [{ kind: "manual", count: 1 }, { kind: "breakthrough", count: 1 }] },
      ],
    };
    const bars = densityBars(t, 1000, 50);
    expect(bars[0]).toMatchObject({ x: 0, w: 100, h: 50, count: 4 });
    expect(bars[1]).toMatchObject({ x: 500, w: 500, h: 25, count: 2, kinds: "1 manual, 1 breakthrough" });
    // Stacked by kind from the bottom, filling the bar.
    expect(bars[1]?.segments).toEqual([
      { kind: "manual", y: 37.5, h: 12.5 },
      { kind: "breakthrough", y: 25, h: 12.5 },
    ]);
  });
});
