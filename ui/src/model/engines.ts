/** What the UI shows of each engine's metrics, from the core's metric
 * catalog (`METRICS`, generated from Rust): labels, formats, whether higher
 * is better, which go on cards and charts. */

import { METRICS, type MetricFormat, type MetricInfo } from "../generated/api";
import { state } from "../state";
import { formatCount, formatDuration, formatTimestamp } from "./format";

export const ENGINES = ["zap", "mdp_es", "orchestrator"] as const;
export type EngineName = (typeof ENGINES)[number];

export const ENGINE_TITLES: Record<string, string> = { zap: "ZAP planner", mdp_es: "MDP/ES optimizer", orchestrator: "Orchestrator" };

/** `v` in the metric's own unit: integers as integers, shares as %. */
export function formatMetric(format: MetricFormat, v: number): string {
  if (!Number.isFinite(v)) return "—";
  switch (format) {
    case "integer":
      return formatCount(Math.round(v));
    case "percent":
      return `${(v * 100).toFixed(1)} %`;
    case "decimal":
      return v.toFixed(3);
    case "milliseconds":
      return Math.abs(v) < 0.1 ? `${(v * 1000).toFixed(1)} µs` : `${v.toFixed(2)} ms`;
    case "time":
      return formatTimestamp(v);
  }
}


/** Takes the learners' part of the catalog (so their values, milestones
 * included, print in the unit each learner gave). */
export function setLearnerMetrics(list: MetricInfo[]): void {
  state.learnerCatalog = list;
}

/** A learner's metrics in the catalog (described or logged), by key. */
export function learnerMetricKeys(learner: string): string[] {
  return state.learnerCatalog.filter((m) => m.engine === learner).map((m) => m.key);
}

/** The catalog entry of `engine`/`key` (a built-in engine's or a
 * learner's), if any. */
export function metricInfo(engine: string, key: string): MetricInfo | undefined {
  return METRICS.find((m) => m.engine === engine && m.key === key) ?? state.learnerCatalog.find((m) => m.engine === engine && m.key === key);
}

/** A metric's value as its catalog says, or a plain number for unknown ones. */
export function formatValue(engine: string, key: string, v: number): string {
  const info = metricInfo(engine, key);
  return info ? formatMetric(info.format, v) : String(v);
}

/** The rows of an engine's card and preview table, in catalog order. */
export function cardMetrics(engine: string): MetricInfo[] {
  return METRICS.filter((m) => m.engine === engine && m.card);
}

/** The learning curves, in catalog order. */
export const CHARTS: MetricInfo[] = METRICS.filter((m) => m.chart);

/** True when a change of `delta` prints as no change at all. */
export function isNoChange(info: MetricInfo, delta: number): boolean {
  return formatMetric(info.format, Math.abs(delta)) === formatMetric(info.format, 0);
}

/** A change of `delta` as the metric prints: "±0" when it prints as none,
 * else signed ("+1.2 %", "−3"). */
export function changeText(info: MetricInfo, delta: number): string {
  if (isNoChange(info, delta)) return "±0";
  // A change of a moment is a length of time, not a moment.
  const size = info.format === "time" ? formatDuration(Math.abs(delta)) : formatMetric(info.format, Math.abs(delta));
  return `${delta > 0 ? "+" : "−"}${size}`;
}

/** "good", "bad" or "" for a change of `delta` in a metric. */
export function changeClass(info: MetricInfo, delta: number): "good" | "bad" | "" {
  if (info.higher_is_better === null || isNoChange(info, delta)) return "";
  return delta > 0 === info.higher_is_better ? "good" : "bad";
}
