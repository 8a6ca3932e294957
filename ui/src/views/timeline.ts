/** The backup timeline at any scale, on the charts' time axis.
 *
 * The core summarises the range on the axis (`api.timeline`): when it holds
 * few enough backups each is a mark (breakthroughs as diamonds); otherwise
 * each time bucket is a bar whose height grows with its count, split by
 * kind, and only the initial backup, milestones and pinned backups are
 * marks of their own. The whole history is on the axis unless zoomed.
 *
 * - Drag across the timeline (a brush) or click a bar to zoom in: the
 *   charts follow, and bars separate into marks as the range narrows.
 *   Double-click or "Reset zoom" to see everything again.
 * - "Show day" jumps to a date (UTC, like every time on the page).
 * - Keyboard: marks and bars are buttons; arrows move along the axis,
 *   Enter selects a mark or zooms into a bar.
 * - A note says what is drawn when not every backup is ("showing N of M"). */

import { $, el, svg } from "../dom";
import { formatValue } from "../model/engines";
import { formatTimestamp, formatCount } from "../model/format";
import { BACKUP_KINDS, type TimelineMark } from "../generated/api";
import { explain, toast } from "../notify";
import { select, state, views } from "../state";
import { api } from "../backend";
import { dayRange, densityBars, layoutMarks, metricOverTime, ticks, type TimeScale } from "../model/timeline";
import { sharedScale, zoomTo } from "./charts";

/** This module's state, in the one store. */
const my = views.timeline;

const HEIGHT = 84;
const BASE = 60;

function measure(host: Element): number {
  const w = Math.round(host.getBoundingClientRect().width);
  return w > 0 ? w : 1200;
}

export function renderLegend() {
  $("legend").replaceChildren(
    ...BACKUP_KINDS.map((k) => {
      const s = el("span");
      const swatch = el("i");
      swatch.style.setProperty("background", `var(--k-${k})`);
      s.append(swatch, document.createTextNode(k));
      return s;
    }),
  );
}

/** Wires the brush, the double-click reset and "Show day" (once). */
export function buildTimeline() {
  const host = $("timeline") as unknown as SVGSVGElement;
  let from: number | null = null;
  let brush: SVGRectElement | null = null;
  const toUnits = (ev: PointerEvent) => {
    const r = host.getBoundingClientRect();
    return ((ev.clientX - r.left) / Math.max(1, r.width)) * my.width;
  };
  host.addEventListener("pointerdown", (ev) => {
    // Anywhere but on a mark (a bar is fine: a click on it zooms into it,
    // a drag from it brushes).
    if (ev.button !== 0 || (ev.target as Element).closest(".mark")) return;
    from = toUnits(ev);
    brush = svg("rect", { class: "brush", x: from, y: 0, width: 0, height: BASE }) as SVGRectElement;
    host.append(brush);
    host.setPointerCapture(ev.pointerId);
  });
  host.addEventListener("pointermove", (ev) => {
    if (from === null || !brush) return;
    const x = toUnits(ev);
    brush.setAttribute("x", String(Math.min(from, x)));
    brush.setAttribute("width", String(Math.abs(x - from)));
  });
  const end = (ev: PointerEvent) => {
    if (from === null) return;
    const x = toUnits(ev);
    const a = Math.min(from, x);
    const b = Math.max(from, x);
    from = null;
    brush?.remove();
    brush = null;
    if (b - a < 4) return; // a click, not a drag
    const scale = sharedScale(my.width);
    zoomTo({ min: timeAt(scale, a), max: timeAt(scale, b) });
  };
  host.addEventListener("pointerup", end);
  host.addEventListener("pointercancel", () => {
    from = null;
    brush?.remove();
    brush = null;
  });
  host.addEventListener("dblclick", () => zoomTo(null));
  // A new width (the window resized): drawn again at its size.
  my.width = measure(host);
  new ResizeObserver((entries) => {
    const w = Math.round(entries[entries.length - 1]?.contentRect.width ?? 0);
    if (w <= 0 || w === my.width) return;
    my.width = w;
    renderTimeline();
  }).observe(host);
  const go = () => {
    const day = dayRange($<HTMLInputElement>("jump-date").value);
    if (day) zoomTo(day);
    else toast("Pick a day to show (UTC).");
  };
  $("jump-go").addEventListener("click", go);
  $("jump-date").addEventListener("keydown", (ev) => {
    if ((ev as KeyboardEvent).key === "Enter") go();
  });
}

function timeAt(scale: TimeScale, x: number): number {
  return scale.start + (x / scale.width) * (scale.end - scale.start);
}

function describe(m: TimelineMark): string {
  const bt = m.breakthrough;
  const what = bt ? ` — ${bt.rule}: ${formatValue(bt.engine, bt.metric, bt.value)}` : m.label ? ` — ${m.label}` : "";
  return `#${m.id} ${m.kind}${m.pinned ? " (pinned)" : ""} ${formatTimestamp(m.created_at_ms)}${what}`;
}

/** Selects a backup drawn on the timeline (its details come from the core). */
async function open(m: TimelineMark) {
  try {
    select(await api.get_backup(m.id));
  } catch (e) {
    toast(`Backup #${m.id} could not be opened. ${explain(e)}`);
  }
}

/** Arrow keys move between the timeline's buttons in axis order. */
function moveFocus(host: Element, from: Element, key: string) {
  const items = [...host.querySelectorAll<SVGElement>("[data-x]")].sort((a, b) => Number(a.dataset.x) - Number(b.dataset.x));
  const i = items.indexOf(from as SVGElement);
  items[i + (key === "ArrowRight" ? 1 : -1)]?.focus();
}

function asButton(shape: Element, label: string, x: number, activate: () => void, host: Element) {
  shape.setAttribute("tabindex", "0");
  shape.setAttribute("role", "button");
  shape.setAttribute("aria-label", label);
  shape.setAttribute("data-x", String(x));
  const title = svg("title", {});
  title.textContent = label;
  shape.append(title);
  shape.addEventListener("click", activate);
  shape.addEventListener("keydown", (ev) => {
    const k = (ev as KeyboardEvent).key;
    if (k === "Enter" || k === " ") {
      ev.preventDefault();
      activate();
    } else if (k === "ArrowRight" || k === "ArrowLeft") {
      ev.preventDefault();
      moveFocus(host, shape, k);
    }
  });
}

export function renderTimeline() {
  const started = performance.now();
  const host = $("timeline") as unknown as SVGSVGElement;
  const view = state.timelineView;
  const scale = sharedScale(my.width);
  host.setAttribute("viewBox", `0 0 ${my.width} ${HEIGHT}`);
  host.setAttribute("preserveAspectRatio", "none");
  const nodes: Element[] = [svg("line", { class: "axis", x1: 0, x2: my.width, y1: BASE, y2: BASE })];
  // A label per ~170 px (six at most): they never run into each other.
  for (const t of ticks(scale, Math.max(1, Math.min(6, Math.floor(my.width / 170))))) {
    const text = svg("text", { x: Math.min(Math.max(t.x, 30), my.width - 30), y: 78, "text-anchor": "middle" });
    text.textContent = t.label;
    nodes.push(text);
  }
  if (view && !view.complete) {
    for (const bar of densityBars(view.buckets, scale, BASE, 44, BACKUP_KINDS)) {
      if (bar.x + bar.w < 0 || bar.x > my.width) continue;
      const g = svg("g", { class: "bar" });
      for (const s of bar.segments) {
        g.append(svg("rect", { x: bar.x, y: s.y, width: bar.w, height: s.h, fill: `var(--k-${s.kind})` }));
      }
      const kinds = bar.segments.map((s) => `${formatCount(s.count)} ${s.kind}`).join(", ");
      const label = `${formatCount(bar.total)} backups ${formatTimestamp(bar.start)} – ${formatTimestamp(bar.end)} (${kinds}); zoom in`;
      asButton(g, label, bar.x, () => zoomTo({ min: bar.start, max: bar.end }), host);
      nodes.push(g);
    }
  }
  // A metric followed across the backups: its line over the strip, under
  // the marks (the list's column says each value in words).
  const followed = views.follow.metric ? metricOverTime(views.follow.line, scale, 4, BASE - 4) : [];
  if (followed.length > 0) {
    const g = svg("g", { class: "follow-line", "data-testid": "timeline-follow", "aria-hidden": "true" });
    for (const points of followed) g.append(svg("polyline", { points, fill: "none", stroke: "currentColor", "stroke-width": 1.25 }));
    nodes.push(g);
  }
  const byId = new Map(state.timeline.map((t) => [t.id, t]));
  for (const m of layoutMarks(state.timeline, scale)) {
    if (m.x < -5 || m.x > my.width + 5) continue;
    const mark = byId.get(m.id);
    if (!mark) continue;
    // Over density bars, the marks of their own ride above them.
    const y = (view?.complete === false ? 12 : 48) - m.row * (view?.complete === false ? 0 : 16);
    const color = `var(--k-${m.kind})`;
    const shape = m.milestone
      ? svg("rect", { x: m.x - 5, y: y - 5, width: 10, height: 10, transform: `rotate(45 ${m.x} ${y})`, fill: color })
      : svg("circle", { cx: m.x, cy: y, r: 4.5, fill: color });
    shape.classList.add("mark");
    if (state.selected?.id === m.id) shape.classList.add("selected");
    shape.setAttribute("data-id", String(m.id));
    shape.setAttribute("data-kind", m.kind);
    asButton(shape, describe(mark), m.x, () => void open(mark), host);
    nodes.push(shape);
  }
  // A redraw (a new backup, a refresh) keeps the keyboard focus on the same mark.
  const focused = host.contains(document.activeElement) ? document.activeElement?.getAttribute("data-id") : null;
  host.replaceChildren(...nodes);
  if (focused) host.querySelector<SVGElement>(`.mark[data-id="${focused}"]`)?.focus();
  renderNote();
  performance.clearMeasures("engram:timeline-render"); // only the latest is kept
  performance.measure("engram:timeline-render", { start: started });
}

/** Says what the timeline leaves out, if anything. */
function renderNote() {
  const note = $("timeline-note");
  const view = state.timelineView;
  const n = formatCount;
  if (!view || (view.complete && view.in_range === view.total)) {
    note.hidden = true;
    return;
  }
  note.hidden = false;
  const range = view.in_range === view.total ? `All ${n(view.total)} backups` : `${n(view.in_range)} of ${n(view.total)} backups are in this range;`;
  note.textContent = view.complete
    ? `${range} each is drawn. Double-click the timeline or reset the zoom to see all.`
    : `${range} ${view.in_range === view.total ? "are" : "they are"} drawn as counts by kind, with the initial backup, milestones and pinned backups marked (${n(state.timeline.length)}). Drag across the timeline or click a bar to zoom in until each backup is drawn.`;
}

/** Marks the selected backup without redrawing the timeline. */
export function markSelected() {
  for (const mark of $("timeline").querySelectorAll(".mark")) {
    mark.classList.toggle("selected", mark.getAttribute("data-id") === String(state.selected?.id));
  }
}
