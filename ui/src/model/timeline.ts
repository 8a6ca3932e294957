/** Layout of the shared time axis: metric charts and the backup timeline use
 * the same scale so breakthrough milestones line up with the curves. Pure. */

import type { Backup, BackupKind, DensityBucket } from "../generated/api";

export interface TimeScale {
  start: number;
  end: number;
  width: number;
}

/** A scale covering `times` (ms) over `width` px, padded so no mark sits on the edge. */
export function timeScale(times: number[], width: number, minSpanMs = 60_000): TimeScale {
  const finite = times.filter(Number.isFinite);
  if (finite.length === 0) {
    const now = Date.now();
    return { start: now - minSpanMs, end: now, width };
  }
  let start = Math.min(...finite);
  let end = Math.max(...finite);
  if (end - start < minSpanMs) {
    const mid = (start + end) / 2;
    start = mid - minSpanMs / 2;
    end = mid + minSpanMs / 2;
  }
  const pad = (end - start) * 0.02;
  return { start: start - pad, end: end + pad, width };
}

export function xOf(scale: TimeScale, t: number): number {
  return ((t - scale.start) / (scale.end - scale.start)) * scale.width;
}

export interface Mark {
  id: number;
  x: number;
  /** Row: marks closer than `minGap` px stack upwards instead of hiding each other. */
  row: number;
  kind: BackupKind;
  milestone: boolean;
}

/** Places backups on the axis; near-coincident marks go to the next row (max `rows`). */
export function layoutMarks(backups: Pick<Backup, "id" | "kind" | "created_at_ms">[], scale: TimeScale, minGap = 6, rows = 3): Mark[] {
  const sorted = [...backups].sort((a, b) => a.created_at_ms - b.created_at_ms || a.id - b.id);
  const lastX: number[] = Array.from({ length: rows }, () => Number.NEGATIVE_INFINITY);
  return sorted.map((b) => {
    const x = xOf(scale, b.created_at_ms);
    let row = lastX.findIndex((lx) => x - lx >= minGap);
    if (row < 0) row = rows - 1;
    lastX[row] = x;
    return { id: b.id, x, row, kind: b.kind, milestone: b.kind === "breakthrough" };
  });
}

/** Evenly spaced tick times with labels for the axis. */
export function ticks(scale: TimeScale, count = 5): { t: number; x: number; label: string }[] {
  const span = scale.end - scale.start;
  const out = [];
  for (let i = 0; i <= count; i += 1) {
    const t = scale.start + (span * i) / count;
    out.push({ t, x: xOf(scale, t), label: tickLabel(t, span) });
  }
  return out;
}

function tickLabel(t: number, span: number): string {
  const iso = new Date(t).toISOString();
  if (span < 2 * 3600_000) return iso.slice(11, 19);
  if (span < 3 * 86_400_000) return iso.slice(5, 16).replace("T", " ");
  return iso.slice(0, 10);
}

/** An SVG path through (t, v) points on the shared scale. */
export function linePath(points: { t: number; v: number }[], scale: TimeScale, height: number, vMin: number, vMax: number): string {
  const span = vMax - vMin || 1;
  return points
    .filter((p) => Number.isFinite(p.v))
    .map((p, i) => {
      const x = xOf(scale, p.t).toFixed(1);
      const y = (height - ((p.v - vMin) / span) * height).toFixed(1);
      return `${i === 0 ? "M" : "L"}${x},${y}`;
    })
    .join(" ");
}

/** A point of a chart: time, value and the line of history it belongs to. */
export interface ChartPoint {
  t: number;
  v: number;
  branch: number;
}

/** Splits points (in time order) into runs of one branch each, so a chart
 * draws a restore as a new line instead of a drop in the old one. */
export function branchRuns(points: ChartPoint[]): ChartPoint[][] {
  const runs: ChartPoint[][] = [];
  for (const p of points) {
    const last = runs[runs.length - 1];
    if (last && last[last.length - 1]!.branch === p.branch) last.push(p);
    else runs.push([p]);
  }
  return runs;
}

/** One kind's part of a density bar. */
export interface Segment {
  kind: BackupKind;
  count: number;
  y: number;
  h: number;
}

/** A time bucket drawn as a bar whose height grows with its count (square
 * root, so one backup stays visible beside thousands), split by kind. */
export interface Bar {
  x: number;
  w: number;
  start: number;
  end: number;
  total: number;
  segments: Segment[];
}

/** Lays out density buckets on the axis: bars rise from `base` to at most
 * `height` px; kinds stack in `order`; at least 2 px each, 1.5 px wide. */
export function densityBars(buckets: DensityBucket[], scale: TimeScale, base: number, height: number, order: readonly BackupKind[]): Bar[] {
  const max = Math.max(1, ...buckets.map((b) => b.counts.reduce((n, c) => n + c.count, 0)));
  return buckets.map((b) => {
    const total = b.counts.reduce((n, c) => n + c.count, 0);
    const x0 = xOf(scale, b.start_ms);
    const x1 = xOf(scale, b.end_ms);
    const w = Math.max(1.5, x1 - x0 - 0.5);
    const barH = Math.max(2, Math.sqrt(total / max) * height);
    let y = base;
    const segments: Segment[] = [];
    for (const kind of order) {
      const count = b.counts.find((c) => c.kind === kind)?.count ?? 0;
      if (count === 0) continue;
      const h = (count / total) * barH;
      y -= h;
      segments.push({ kind, count, y, h });
    }
    return { x: x0, w, start: b.start_ms, end: b.end_ms, total, segments };
  });
}

/** The lowest and highest of the values that are not null (null: none).
 * A loop, not Math.min(...values): 100,000 arguments overflow the stack. */
export function valueRange(values: readonly { value: number | null }[]): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const { value } of values) {
    if (value === null) continue;
    if (value < lo) lo = value;
    if (value > hi) hi = value;
  }
  return lo > hi ? null : [lo, hi];
}

/** One metric's values over the timeline's axis, as polylines (runs
 * broken where a backup holds no value) between `top` and `bottom` px,
 * scaled to the values in view. At most two points a pixel (that pixel's
 * lowest and highest, in their order), so 100,000 backups stay a line of
 * the axis' width. */
export function metricOverTime(values: { created_at_ms: number; value: number | null }[], scale: TimeScale, top: number, bottom: number): string[] {
  const inView = values.filter((v) => v.created_at_ms >= scale.start && v.created_at_ms <= scale.end);
  const range = valueRange(inView);
  if (!range) return [];
  const [lo, hi] = range;
  const span = hi - lo || 1;
  const y = (v: number) => (bottom - ((v - lo) / span) * (bottom - top)).toFixed(1);
  const runs: string[] = [];
  let run: string[] = [];
  // The pixel being gathered: its column, its lowest and highest value
  // and the order they came in.
  let col: { px: number; min: number; max: number; minAt: number; maxAt: number } | null = null;
  const flush = () => {
    if (!col) return;
    const { px, min, max, minAt, maxAt } = col;
    if (min === max) run.push(`${px},${y(min)}`);
    else run.push(...(minAt < maxAt ? [min, max] : [max, min]).map((v) => `${px},${y(v)}`));
    col = null;
  };
  inView.forEach((v, i) => {
    if (v.value === null) {
      flush();
      if (run.length > 0) runs.push(run.join(" "));
      run = [];
      return;
    }
    const px = Math.round(xOf(scale, v.created_at_ms));
    if (col && col.px === px) {
      if (v.value < col.min) [col.min, col.minAt] = [v.value, i];
      if (v.value > col.max) [col.max, col.maxAt] = [v.value, i];
      return;
    }
    flush();
    col = { px, min: v.value, max: v.value, minAt: i, maxAt: i };
  });
  flush();
  if (run.length > 0) runs.push(run.join(" "));
  return runs;
}

/** The UTC day holding `date` ("YYYY-MM-DD"), as a [start, end) range in ms; null if not a date. */
export function dayRange(date: string): { min: number; max: number } | null {
  const t = Date.parse(`${date}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || !Number.isFinite(t)) return null;
  return { min: t, max: t + 86_400_000 };
}
