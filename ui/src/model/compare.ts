/** What the compare view, the drill results and every evaluation figure
 * say, as text: pure functions of the core's answers (tested without a
 * page). */

import type { ArrayChange, DrillResult, Inside, MetricInfo, PolicyMaps } from "../generated/api";
import { formatMetric, formatValue, metricInfo } from "./engines";
import { formatCount, formatDuration, formatTimestamp } from "./format";
import { valueRange } from "./timeline";

/** A metric's value in `metrics` as its catalog prints it; an evaluation's
 * figure before its first evaluation reads "not evaluated yet" (never a
 * 0 that looks measured); anything else absent is "—". */
export function metricText(info: MetricInfo, metrics: Record<string, number> | undefined): string {
  const v = metrics?.[info.key];
  if (v !== undefined) return formatMetric(info.format, v);
  if (info.measured_at && metrics && Object.keys(metrics).length > 0 && metrics[info.measured_at] === undefined) return "not evaluated yet";
  return "—";
}

/** When an evaluation's figure was measured: its step and, where known,
 * its time — "at 2,000 plans, 3 min ago" given `now` (a live figure),
 * "at 2,000 plans, 2026-12-07 17:20:03" without (a backup's) — or "". */
export function measuredText(info: MetricInfo, metrics: Record<string, number> | undefined, now?: number): string {
  if (!info.measured_at) return "";
  const step = metrics?.[info.measured_at];
  if (step === undefined || metrics?.[info.key] === undefined) return "";
  const unit = metricInfo(info.engine, info.measured_at)?.unit ?? "steps";
  const at = info.measured_when ? metrics?.[info.measured_when] : undefined;
  const when = at === undefined ? "" : now === undefined ? `, ${formatTimestamp(at)}` : `, ${ago(at, now)}`;
  return `at ${formatCount(step)} ${unit}${when}`;
}

/** How long ago `at` was, from `now`, in words ("2 s ago", "3 min ago"). */
export function ago(at: number, now: number): string {
  return `${formatDuration(now - at)} ago`;
}

/** The newest drill of each unit (results come newest first). */
export function newestDrills(results: DrillResult[]): DrillResult[] {
  const seen = new Set<string>();
  return results.filter((r) => !seen.has(r.unit) && (seen.add(r.unit), true));
}

/** One drill as lines: each figure beside what the backup reported, or why
 * it failed. */
export function drillLines(r: DrillResult, now: number): string[] {
  const when = `${ago(r.at_ms, now)}, took ${formatCount(r.took_ms)} ms`;
  if (r.error !== null) return [`${r.unit}: drill failed (${when}): ${r.error}`];
  const lines = [`${r.unit}: drilled ${when}`];
  for (const [key, v] of Object.entries(r.metrics)) {
    const label = metricInfo(r.unit, key)?.label ?? key;
    const then = r.reported[key];
    const said = then === undefined ? "the backup had not evaluated it" : `the backup reported ${formatValue(r.unit, key, then)}`;
    lines.push(`${label}: ${formatValue(r.unit, key, v)} (${said})`);
  }
  return lines;
}

/** A number for a compare table: short, exact enough. */
export function num(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e6)) return v.toExponential(3);
  return Number.isInteger(v) ? formatCount(v) : v.toFixed(4);
}

/** One array's line: what changed and by how much. */
export function arrayText(a: ArrayChange): string {
  const shape = (d: string | null, s: number[] | null) => (d === null || s === null ? "absent" : `${d} [${s.join(", ")}]`);
  if (a.changed === null) return `${shape(a.dtype_from, a.shape_from)} → ${shape(a.dtype_to, a.shape_to)}`;
  if (a.changed === 0) return `unchanged (${shape(a.dtype_to, a.shape_to)})`;
  const by = a.max_abs === null ? "" : `, max |Δ| ${num(a.max_abs)}, mean |Δ| ${num(a.mean_abs)}`;
  return `${formatCount(a.changed)} elements changed${by} (${shape(a.dtype_to, a.shape_to)})`;
}

/** The counted changes as short lines ("Q-table entries changed: 12 of 64"). */
export function countedLines(i: Inside): string[] {
  return i.counted.map((c) => `${c.what}: ${formatCount(c.n)}${c.of === null ? "" : ` of ${formatCount(c.of)}`}`);
}

const ARROWS: Record<string, string> = { left: "←", right: "→", up: "↑", down: "↓", north: "↑", south: "↓", east: "→", west: "←" };

/** One side of a policy map, row by row: an arrow per cell where an action
 * applies, the map's letter where none does (hole, cliff, goal); and
 * whether each cell's action differs from the other side's. */
export function policyGrid(p: PolicyMaps, side: "from" | "to"): { text: string; changed: boolean; name: string }[][] {
  const pol = p[side];
  const rows: { text: string; changed: boolean; name: string }[][] = [];
  for (let r = 0; r < p.rows; r++) {
    const row = [];
    for (let c = 0; c < p.cols; c++) {
      const k = r * p.cols + c;
      const cell = p.cells[k] ?? "";
      const fixed = cell === "H" || cell === "G" || cell === "C";
      const action = p.actions[pol[k] ?? 0] ?? "?";
      row.push({
        text: fixed ? cell : (ARROWS[action] ?? action.slice(0, 1)),
        changed: !fixed && p.from[k] !== p.to[k],
        name: fixed ? ({ H: "hole", G: "goal", C: "cliff" } as Record<string, string>)[cell]! : action,
      });
    }
    rows.push(row);
  }
  return rows;
}

/** A sparkline of a metric along the line of history: the polyline's
 * points in a `w`×`h` box (backups without a value leave a gap between
 * runs), and where each backup with a value sits. */
export function sparkline(values: { id: number; value: number | null }[], w: number, h: number): { runs: string[]; at: Map<number, [number, number]> } {
  const at = new Map<number, [number, number]>();
  const range = valueRange(values);
  if (!range) return { runs: [], at };
  const [lo, hi] = range;
  const span = hi - lo || 1;
  const n = values.length;
  const runs: string[] = [];
  let run: string[] = [];
  values.forEach((v, i) => {
    if (v.value === null) {
      if (run.length > 0) runs.push(run.join(" "));
      run = [];
      return;
    }
    const x = n === 1 ? w / 2 : (i / (n - 1)) * w;
    const y = h - 2 - ((v.value - lo) / span) * (h - 4);
    at.set(v.id, [x, y]);
    run.push(`${x.toFixed(1)},${y.toFixed(1)}`);
  });
  if (run.length > 0) runs.push(run.join(" "));
  return { runs, at };
}
