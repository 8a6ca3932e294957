/** The backup timeline: every drawn backup as a mark by kind, breakthroughs
 * as diamonds, on the charts' time axis. Clicking a mark selects it. */

import { $, el, svg } from "../dom";
import { formatValue } from "../engines";
import { formatTimestamp } from "../format";
import { BACKUP_KINDS } from "../generated/api";
import { select, state } from "../state";
import { layoutMarks, ticks } from "../timeline";
import { sharedScale } from "./charts";

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

export function renderTimeline() {
  const host = $<HTMLElement>("timeline") as unknown as SVGSVGElement;
  const width = 1200;
  const scale = sharedScale(width);
  host.setAttribute("viewBox", `0 0 ${width} 84`);
  host.setAttribute("preserveAspectRatio", "none");
  const nodes: Element[] = [svg("line", { class: "axis", x1: 0, x2: width, y1: 60, y2: 60 })];
  for (const t of ticks(scale, 6)) {
    const text = svg("text", { x: Math.min(Math.max(t.x, 30), width - 30), y: 78, "text-anchor": "middle" });
    text.textContent = t.label;
    nodes.push(text);
  }
  const byId = new Map(state.timeline.map((b) => [b.id, b]));
  for (const m of layoutMarks(state.timeline, scale)) {
    const y = 48 - m.row * 16;
    const color = `var(--k-${m.kind})`;
    const shape = m.milestone
      ? svg("rect", { x: m.x - 5, y: y - 5, width: 10, height: 10, transform: `rotate(45 ${m.x} ${y})`, fill: color })
      : svg("circle", { cx: m.x, cy: y, r: 4.5, fill: color });
    shape.classList.add("mark");
    if (state.selected?.id === m.id) shape.classList.add("selected");
    shape.setAttribute("data-id", String(m.id));
    const b = byId.get(m.id);
    const title = svg("title", {});
    const bt = b?.breakthrough;
    title.textContent = b ? `#${b.id} ${b.kind} ${formatTimestamp(b.created_at_ms)}${bt ? ` — ${bt.rule}: ${formatValue(bt.engine, bt.metric, bt.value)}` : ""}` : "";
    shape.append(title);
    shape.addEventListener("click", () => b && select(b));
    // Keyboard: each mark is a button; arrows move along the axis.
    shape.setAttribute("tabindex", "0");
    shape.setAttribute("role", "button");
    shape.setAttribute("aria-label", title.textContent ?? `backup ${m.id}`);
    shape.addEventListener("keydown", (ev) => {
      const k = (ev as KeyboardEvent).key;
      if ((k === "Enter" || k === " ") && b) {
        ev.preventDefault();
        select(b);
      } else if (k === "ArrowRight" || k === "ArrowLeft") {
        ev.preventDefault();
        const marks = [...host.querySelectorAll<SVGElement>(".mark")].sort((a, c) => Number(a.dataset.x) - Number(c.dataset.x));
        const i = marks.indexOf(shape as SVGElement);
        marks[i + (k === "ArrowRight" ? 1 : -1)]?.focus();
      }
    });
    shape.setAttribute("data-x", String(m.x));
    nodes.push(shape);
  }
  // A redraw (a new backup, a refresh) keeps the keyboard focus on the same mark.
  const focused = host.contains(document.activeElement) ? document.activeElement?.getAttribute("data-id") : null;
  host.replaceChildren(...nodes);
  if (focused) host.querySelector<SVGElement>(`.mark[data-id="${focused}"]`)?.focus();
}

/** Marks the selected backup without redrawing the timeline. */
export function markSelected() {
  for (const mark of $("timeline").querySelectorAll(".mark")) {
    mark.classList.toggle("selected", mark.getAttribute("data-id") === String(state.selected?.id));
  }
}
