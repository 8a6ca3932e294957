/** The learning curves: backups' metrics plus what this page saw live, on the
 * time axis the timeline shares; breakthroughs are vertical marks. */

import { $, el, svg } from "../dom";
import { CHARTS, formatMetric, formatValue } from "../engines";
import { state } from "../state";
import { linePath, timeScale, type TimeScale } from "../timeline";

/** The time axis the charts and the timeline share. */
export function sharedScale(width: number): TimeScale {
  const times = state.timeline.map((b) => b.created_at_ms).concat(state.live.map((p) => p.t));
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
      const points = state.timeline
        .filter((b) => b.metrics[c.engine]?.[c.key] !== undefined)
        .map((b) => ({ t: b.created_at_ms, v: b.metrics[c.engine]![c.key]! }))
        .concat(state.live.filter((p) => p.engines[c.engine]?.[c.key] !== undefined).map((p) => ({ t: p.t, v: p.engines[c.engine]![c.key]! })))
        .sort((a, b) => a.t - b.t);
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
      s.append(svg("path", { class: "line", d: linePath(points, scale, height - 4, lo, hi), "vector-effect": "non-scaling-stroke" }));
      box.append(header, s);
      return box;
    }),
  );
}
