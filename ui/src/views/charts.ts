/** The learning curves: each metric's stored history (across restarts,
 * downsampled by the core) plus what this page saw live since, on the time
 * axis the timeline shares. A restore starts a new line (a dashed mark says
 * which backup); breakthroughs are vertical marks. Imports never appear. */

import { $, el, svg } from "../dom";
import { CHARTS, formatMetric, formatValue } from "../engines";
import { state } from "../state";
import { branchRuns, linePath, timeScale, type ChartPoint, type TimeScale } from "../timeline";

/** The time axis the charts and the timeline share. */
export function sharedScale(width: number): TimeScale {
  const times = state.timeline.map((b) => b.created_at_ms).concat(state.live.map((p) => p.t));
  for (const series of Object.values(state.history)) {
    const first = series.points[0];
    if (first) times.push(first.at_ms);
  }
  times.push(Date.now());
  return timeScale(times, width);
}

export function renderCharts() {
  const width = 600;
  const height = 90;
  const scale = sharedScale(width);
  const milestones = state.timeline.filter((b) => b.kind === "breakthrough");
  $("charts").replaceChildren(
    ...CHARTS.map((c) => {
      const points = chartPoints(c.engine, c.key);
      const values = points.map((p) => p.v);
      const [lo, hi] = [Math.min(0, ...values), Math.max(1, ...values)];
      const box = el("div", { class: "chart", "data-testid": `chart-${c.engine}-${c.key}` });
      const header = el("header");
      const latest = state.now[c.engine]?.[c.key];
      header.append(el("span", {}, c.label), el("b", {}, latest === undefined ? "—" : formatMetric(c.format, latest)));
      const s = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
      for (const m of milestones) {
        const x = ((m.created_at_ms - scale.start) / (scale.end - scale.start)) * width;
        const line = svg("line", { class: "milestone", x1: x, x2: x, y1: 0, y2: height });
        const title = svg("title", {});
        title.textContent = m.breakthrough ? `${m.breakthrough.rule}: ${formatValue(m.breakthrough.engine, m.breakthrough.metric, m.breakthrough.value)}` : "breakthrough";
        line.append(title);
        s.append(line);
      }
      for (const b of state.history[`${c.engine}/${c.key}`]?.branches ?? []) {
        if (b.reason !== "restore") continue;
        const x = ((b.started_at - scale.start) / (scale.end - scale.start)) * width;
        const line = svg("line", { class: "branch", x1: x, x2: x, y1: 0, y2: height });
        const title = svg("title", {});
        title.textContent = b.from_backup === null ? "restore: a new line of history" : `restored backup #${b.from_backup}: a new line of history`;
        line.append(title);
        s.append(line);
      }
      for (const run of branchRuns(points)) {
        s.append(svg("path", { class: "line", d: linePath(run, scale, height - 4, lo, hi), "vector-effect": "non-scaling-stroke" }));
      }
      box.append(header, s);
      return box;
    }),
  );
}

/** The stored history of a metric, then the live points this page saw after it. */
function chartPoints(engine: string, key: string): ChartPoint[] {
  const series = state.history[`${engine}/${key}`];
  const stored: ChartPoint[] = (series?.points ?? []).flatMap((p) => (p.value === null ? [] : [{ t: p.at_ms, v: p.value, branch: p.branch }]));
  const last = stored[stored.length - 1];
  const branch = series?.branches[series.branches.length - 1]?.id ?? last?.branch ?? 0;
  const live = state.live
    .filter((p) => (last === undefined || p.t > last.t) && p.engines[engine]?.[key] !== undefined)
    .map((p) => ({ t: p.t, v: p.engines[engine]![key]!, branch }));
  return stored.concat(live);
}
