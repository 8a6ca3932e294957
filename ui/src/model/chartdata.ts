/** Pure helpers for the charts: TensorBoard-style smoothing and the data
 * layout uPlot draws (one x array; the current line of history and the
 * earlier ones — abandoned by a restore — as two series, broken at every
 * change of branch). */

import type { MetricFormat } from "../generated/api";
import type { ChartPoint } from "./timeline";

/** The smallest step each format prints (0.1 %, 0.001, 1, 0.1 µs, 1 s). */
const RESOLUTION: Record<MetricFormat, number> = { percent: 0.001, decimal: 0.001, integer: 1, milliseconds: 0.0001, time: 1000 };

/** A value axis for data flatter than its format can print apart — a
 * metric at 0.0 % from the start, a fitness at 1.000 — spans twenty of its
 * printed steps around the data (from 0 up for data that never goes
 * below 0, so a share never reads "-1.0 %"), so its labels differ; null
 * for anything wider (the default range applies). */
export function widenFlat(format: MetricFormat, min: number | null, max: number | null): [number, number] | null {
  if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) return null;
  const span = RESOLUTION[format] * 20;
  if (max - min >= span) return null;
  const lo = (min + max) / 2 - span / 2;
  if (min >= 0 && lo < 0) return [0, span];
  return [lo, lo + span];
}

/** Exponential moving average with TensorBoard's debiasing: weight 0 is
 * the raw data, 0.99 very smooth; the first points are not pulled towards
 * zero. A null (a break in the line) restarts the average. */
export function smooth(values: (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) return values.slice();
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) {
      last = 0;
      n = 0;
      return v;
    }
    last = last * weight + (1 - weight) * v;
    n += 1;
    return last / (1 - Math.pow(weight, n));
  });
}

/** A span between two measurements in which nothing ran (ms). */
export interface Span {
  from_ms: number;
  to_ms: number;
}

/** The span in which nothing ran that `t_ms` lies inside, if any. */
export function spanAt(spans: Span[], t_ms: number): Span | undefined {
  return spans.find((s) => t_ms > s.from_ms && t_ms < s.to_ms);
}

/** uPlot's data: x in seconds, the current branch's values, the earlier
 * branches' values (null where a series has no point, at each change of
 * branch, and inside each span in which nothing ran, so the lines break
 * there). With `log`, values ≤ 0 (which a log axis cannot show) become
 * null. */
export function chartData(
  points: ChartPoint[],
  current: number,
  weight: number,
  log: boolean,
  notRunning: Span[] = [],
): [number[], (number | null)[], (number | null)[]] {
  const xs: number[] = [];
  const raw: (number | null)[] = [];
  const isCurrent: boolean[] = [];
  let prev: ChartPoint | undefined;
  for (const p of points) {
    if (prev !== undefined && p.branch !== prev.branch) {
      // A break between two lines of history.
      xs.push((p.t - 1) / 1000);
      raw.push(null);
      isCurrent.push(false);
    } else if (prev !== undefined && spanAt(notRunning, (prev.t + p.t) / 2) !== undefined) {
      // Nothing ran between these two: no line joins them.
      xs.push((prev.t + p.t) / 2000);
      raw.push(null);
      isCurrent.push(p.branch === current);
    }
    xs.push(p.t / 1000);
    raw.push(log && p.v <= 0 ? null : p.v);
    isCurrent.push(p.branch === current);
    prev = p;
  }
  const smoothed = smooth(raw, weight);
  return [xs, smoothed.map((v, i) => (isCurrent[i] ? v : null)), smoothed.map((v, i) => (isCurrent[i] ? null : v))];
}
