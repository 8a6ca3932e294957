/** A supervised learner's process in words, the command line the UI
 * takes for a new one, and what deleting one does and did. Pure. */

import { formatMetric, metricInfo } from "./engines";
import type { LearnerCommand, LearnerInfo, LearnerMetric, MetricFormat, MetricInfo, MilestoneRule, ProcessStatus, RemovedLearner, SetMetricInfo } from "../generated/api";
import { formatCount } from "./format";

/** A declared milestone rule as the user reads it: "Success rate ≥ 90.0 %"
 * with the metric described (label, format), else "success ≥ 0.9". */
export function ruleText(rule: MilestoneRule, info: MetricInfo | undefined): string {
  const name = info?.label ?? rule.metric;
  const v = rule.at_least ?? rule.at_most;
  if (v === null) return name;
  const shown = info ? formatMetric(info.format, v) : String(v);
  return `${name} ${rule.at_least !== null ? "≥" : "≤"} ${shown}`;
}

/** A learner's rules read as its metrics are described, "; " between
 * them ("none" for none). */
export function rulesLine(learner: string, rules: MilestoneRule[]): string {
  return rules.map((r) => ruleText(r, metricInfo(learner, r.metric))).join("; ") || "none";
}

/** Rules as the user types them, one per `;` or line: `success >= 0.9`,
 * `loss ≤ 0.05`. The rules, or what is wrong with the first bad one. */
export function parseRules(text: string): { rules: MilestoneRule[] } | { error: string } {
  const rules: MilestoneRule[] = [];
  for (const part of text.split(/[;\n]/)) {
    const t = part.trim();
    if (t === "") continue;
    const m = /^([a-z0-9_-]{1,64})\s*(>=|≥|<=|≤)\s*(\S+)$/.exec(t);
    const [metric, op, value] = m ? [m[1] ?? "", m[2] ?? "", m[3] ?? ""] : ["", "", ""];
    const v = Number(value);
    if (!m || value === "" || !Number.isFinite(v)) return { error: `“${t}” is not a rule: write a metric name (a-z, 0-9, _ and -), >= or <=, and a number — success >= 0.9` };
    const up = op === ">=" || op === "≥";
    rules.push({ metric, at_least: up ? v : null, at_most: up ? null : v });
  }
  return { rules };
}

/** Rules as `parseRules` reads them back: `success >= 0.9; loss <= 0.05`. */
export function rulesText(rules: MilestoneRule[]): string {
  return rules.map((r) => (r.at_least !== null ? `${r.metric} >= ${r.at_least}` : `${r.metric} <= ${r.at_most}`)).join("; ");
}

/** What deleting learner `l` does, said before the user confirms. */
export function deleteLearnerText(l: LearnerInfo): string {
  const process = l.command ? "Engram stops its process and no longer runs it. " : "";
  const saves = l.command ? "" : " If it still runs elsewhere, it is told to stop and its saves are refused.";
  return `${process}Its live state, its curves and its command are deleted.${saves} Backups that hold it keep its states: restoring one brings it back.`;
}

/** What deleting did, for the toast: `backup` is the one taken just before
 * (it holds the learner's state from just before), if the user asked for one. */
export function deletedLearnerText(r: RemovedLearner, backup: number | null): string {
  if (backup !== null) return `Deleted learner ${r.name}. Backup #${backup} holds its state from just before: restore it to bring the learner back.`;
  if (r.newest_backup_id === null) return `Deleted learner ${r.name}. No backup held it: its state is gone.`;
  const n = r.backups === 1 ? "1 backup holds" : `${formatCount(r.backups)} backups hold`;
  return `Deleted learner ${r.name}. ${n} its states (the newest is #${r.newest_backup_id}): restore one to bring it back.`;
}

/** "running (pid 4242) for 3 min", "restarting in 2 s — killed by signal 9",
 * "stopped", "finished — exit status 0", "starts with Engram"; null for a
 * learner Engram does not supervise. */
export function processLine(p: ProcessStatus | null | undefined, cmd: LearnerCommand | null | undefined, nowMs: number): string | null {
  if (!p) {
    if (!cmd) return null;
    return cmd.autostart ? "starts with Engram" : "stopped";
  }
  const exit = p.last_exit ? ` — ${p.last_exit}` : "";
  switch (p.phase) {
    case "running":
      return `running (pid ${p.pid ?? "?"})${p.started_at_ms === null ? "" : ` for ${span(nowMs - p.started_at_ms)}`}`;
    case "restarting":
      return `restarting${p.next_start_at_ms === null ? "" : ` in ${span(Math.max(0, p.next_start_at_ms - nowMs))}`}${exit}`;
    case "stopping":
      return "stopping…";
    case "stopped":
      return "stopped";
    case "finished":
      return `finished${exit}`;
  }
}

/** 0.4 s, 12 s, 3 min, 2 h, 5 d. */
export function span(ms: number): string {
  const s = ms / 1000;
  if (s < 1) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86_400) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}

/** The UI takes a command line as a shell would: it runs as `sh -c LINE`. */
export function shellCommand(line: string): string[] {
  return ["sh", "-c", line];
}

/** How the UI shows a command: a `sh -c` one as its line, else its words. */
export function commandText(cmd: LearnerCommand): string {
  const a = cmd.argv;
  if (a.length === 3 && a[0] === "sh" && a[1] === "-c") return a[2] ?? "";
  return a.map((w) => (/^[\w./=:@%+-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(" ");
}

/** One metric's row in the "Metrics…" dialog: the description shown (set
 * here, else the learner's own) and whether it is set here. */
export interface MetricRow {
  key: string;
  label: string;
  unit: string;
  format: MetricFormat | "";
  /** "higher" | "lower" | "" (no direction). */
  direction: "higher" | "lower" | "";
  here: boolean;
}

/** Every metric a learner described, was described here or logged (its
 * live state's, and `logged` — the catalog's keys of it), in name order. */
export function metricRows(l: LearnerInfo, logged: string[]): MetricRow[] {
  const keys = new Set([...Object.keys(l.metric_info), ...Object.keys(l.live?.metrics ?? {}), ...logged]);
  return [...keys].sort().map((key) => {
    const d = l.metric_info[key];
    return {
      key,
      label: d?.label ?? "",
      unit: d?.unit ?? "",
      format: d?.format ?? "",
      direction: d?.higher_is_better === true ? "higher" : d?.higher_is_better === false ? "lower" : "",
      here: l.metric_info_set_here.includes(key),
    };
  });
}

/** The request that sets the rows marked "here" (none: the learner's own
 * descriptions again). Empty fields are "none". */
export function metricInfoRequest(rows: MetricRow[]): SetMetricInfo {
  const metrics: Record<string, LearnerMetric> = {};
  for (const r of rows) {
    if (!r.here) continue;
    metrics[r.key] = {
      label: r.label.trim() || null,
      unit: r.unit.trim() || null,
      format: r.format || null,
      higher_is_better: r.direction === "" ? null : r.direction === "higher",
    };
  }
  return { metrics: Object.keys(metrics).length > 0 ? metrics : null };
}
