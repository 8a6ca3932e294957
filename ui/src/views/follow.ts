/** One metric across the backups: its value in every backup along the
 * current line of history, as a sparkline above the list and a column in
 * it, and where it first fell below a threshold (with the last good backup
 * before it, each one click from its preview). */

import { $, el, svg } from "../dom";
import { formatValue, metricInfo } from "../model/engines";
import { sparkline } from "../model/compare";
import type { FallFound, MetricInfo } from "../generated/api";
import { METRICS } from "../generated/api";
import { api } from "../backend";
import { explain, showError } from "../notify";
import { select, state, views } from "../state";
import { renderTimeline } from "./timeline";

/** This module's state, in the one store. */
const my = views.follow;

const W = 300;
const H = 40;

/** The metrics one can follow: the engines' charted and card metrics, then
 * the learners' (as the catalog lists them). */
function choices(): MetricInfo[] {
  return [...METRICS.filter((m) => m.card || m.chart), ...state.learnerCatalog];
}

/** `rerender` draws the list again (its column follows the metric). */
export function buildFollow(rerender: () => void) {
  const sel = $<HTMLSelectElement>("follow-metric");
  const fill = () => {
    const keep = sel.value;
    sel.replaceChildren(...choices().map((m) => el("option", { value: `${m.engine}.${m.key}` }, `${m.engine}: ${m.label}`)));
    if (keep) sel.value = keep;
  };
  fill();
  $("follow").addEventListener("toggle", fill);
  $("follow-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const [engine, ...rest] = sel.value.split(".");
    if (!engine || rest.length === 0) return;
    void follow(engine, rest.join("."), rerender);
  });
  $("follow-stop").addEventListener("click", () => {
    my.metric = null;
    my.values = new Map();
    my.elsewhere = new Map();
    my.line = [];
    renderTimeline();
    $("follow-spark").hidden = true;
    $("follow-stop").hidden = true;
    $("follow-result").textContent = "";
    rerender();
  });
}

async function follow(engine: string, key: string, rerender: () => void) {
  const mine = ++my.loads;
  const belowText = $<HTMLInputElement>("follow-below").value.trim();
  const below = belowText === "" ? null : Number(belowText);
  let fall: FallFound | null = null;
  try {
    const line = await api.metric_in_backups({ engine, key, other_lines: true });
    const drill = $<HTMLInputElement>("follow-drill").checked;
    if (below !== null && Number.isFinite(below)) fall = drill ? await api.bisect_fall({ engine, key, below }) : await api.find_fall({ engine, key, below });
    if (mine !== my.loads) return;
    my.metric = { engine, key };
    my.values = new Map(line.backups.map((b) => [b.id, b.value]));
    my.elsewhere = new Map(line.elsewhere.map((b) => [b.id, b.value]));
    my.line = line.backups;
    renderTimeline();
    drawSpark(line.backups, fall);
    $("follow-stop").hidden = false;
    const info = metricInfo(engine, key);
    const label = info?.label ?? key;
    const withValue = line.backups.filter((b) => b.value !== null).length;
    const result = $("follow-result");
    const others = line.elsewhere.length > 0 ? ` ${line.elsewhere.length} more on other lines (left by a restore) are in the column, marked.` : "";
    result.replaceChildren(
      document.createTextNode(`${label}: ${withValue} of ${line.backups.length} backups along the current line of history hold a value.${others} `),
    );
    if (fall) {
      const fmt = (v: number | null) => (v === null ? "—" : formatValue(engine, key, v));
      if (fall.fell_at) {
        const show = (id: number, text: string, testid: string) => {
          const b = el("button", { type: "button", class: "quiet", "data-testid": testid }, text);
          b.addEventListener("click", () => void api.get_backup(id).then(select).catch((e) => showError(explain(e))));
          return b;
        };
        result.append(document.createTextNode(`It fell below ${fmt(below)} at `), show(fall.fell_at.id, `#${fall.fell_at.id} (${fmt(fall.fell_at.value)})`, "follow-fell-at"));
        if (fall.last_good) result.append(document.createTextNode("; the last good backup before it: "), show(fall.last_good.id, `#${fall.last_good.id} (${fmt(fall.last_good.value)})`, "follow-last-good"));
        result.append(document.createTextNode("."));
      } else result.append(document.createTextNode(`It never fell below ${fmt(below)} along this line.`));
      if (fall.drilled.length > 0) result.append(document.createTextNode(` Drilled to find it: ${fall.drilled.map((id) => `#${id}`).join(", ")}.`));
    }
    rerender();
  } catch (e) {
    showError(`Could not follow ${engine}.${key}. ${explain(e)}`);
  }
}

function drawSpark(values: { id: number; value: number | null }[], fall: FallFound | null) {
  const s = $("follow-spark") as unknown as SVGSVGElement;
  s.setAttribute("viewBox", `0 0 ${W} ${H}`);
  s.setAttribute("width", String(W));
  s.setAttribute("height", String(H));
  const { runs, at } = sparkline(values, W, H);
  s.replaceChildren(...runs.map((points) => svg("polyline", { points, fill: "none", stroke: "currentColor", "stroke-width": 1.5 })));
  const mark = fall?.fell_at ? at.get(fall.fell_at.id) : undefined;
  if (mark) s.append(svg("circle", { cx: mark[0], cy: mark[1], r: 3.5, class: "fell", "data-testid": "follow-fell-mark" }));
  (s as unknown as HTMLElement).hidden = false;
}

/** The list's column for the followed metric: its header, and a row's cell. */
export function followHeader() {
  const th = $("follow-col");
  const m = my.metric;
  th.hidden = m === null;
  th.textContent = m ? (metricInfo(m.engine, m.key)?.label ?? m.key) : "";
}

export function followCell(id: number): HTMLElement | null {
  const m = my.metric;
  if (!m) return null;
  const shown = (v: number | null) => (v === null ? "—" : formatValue(m.engine, m.key, v));
  if (my.values.has(id)) return el("td", { class: "follow-value", "data-testid": "follow-value" }, shown(my.values.get(id) ?? null));
  if (my.elsewhere.has(id)) {
    return el(
      "td",
      { class: "follow-value other-line", "data-testid": "follow-value", "data-line": "other", title: "On another line of history (left by a restore)" },
      `${shown(my.elsewhere.get(id) ?? null)} · other line`,
    );
  }
  return el("td", { class: "follow-value", "data-testid": "follow-value", title: `This backup holds no state of ${m.engine}` }, "—");
}
