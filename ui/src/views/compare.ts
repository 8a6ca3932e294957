/** Choosing what to restore: two backups side by side in the preview's
 * place (every metric then/then/change and what changed inside each state,
 * the Q policy as two maps), and the restore drill of the shown backup
 * ("Check this backup": its evaluations run again on its states, the
 * result kept with it). */

import { $, el } from "../dom";
import { ENGINE_TITLES, formatValue, changeClass, changeText, metricInfo } from "../model/engines";
import { arrayText, countedLines, drillLines, newestDrills, num, policyGrid } from "../model/compare";
import type { Backup, ComparedState, Comparison, DrillResult, Inside, PolicyMaps } from "../generated/api";
import { api } from "../backend";
import { explain, showError } from "../notify";
import { views } from "../state";

/** This module's state, in the one store. */
const my = views.compare;

/** The drill part of a backup's preview: its newest drill of each engine
 * and learner (asked when shown) and the button that drills it now. */
export function drillSection(b: Backup): HTMLElement {
  const section = el("section", { class: "drill", "data-testid": "drill", "aria-label": `Checks of backup #${b.id}` });
  const button = el("button", { type: "button", "data-testid": "drill-run" }, "Check this backup");
  const out = el("div", { "data-testid": "drill-results", "aria-live": "polite" });
  const show = (results: DrillResult[]) => {
    if (results.length === 0) {
      out.replaceChildren(el("p", { class: "muted" }, "Not checked yet: a check evaluates this backup's states again, without touching the live state."));
      return;
    }
    const now = Date.now();
    out.replaceChildren(
      ...newestDrills(results).map((r) => {
        const [head, ...rest] = drillLines(r, now);
        const block = el("div", { class: r.error === null ? "drilled" : "drilled failed", "data-testid": "drill-result", "data-unit": r.unit });
        block.append(el("strong", {}, head ?? ""));
        if (rest.length > 0) {
          const ul = el("ul");
          for (const line of rest) ul.append(el("li", {}, line));
          block.append(ul);
        }
        return block;
      }),
    );
  };
  const mine = ++my.drillLoads;
  void api
    .backup_drills(b.id)
    .then((d) => {
      if (mine === my.drillLoads) show(d.results);
    })
    .catch(() => {});
  button.addEventListener("click", () => {
    button.disabled = true;
    button.textContent = "Checking…";
    api
      .drill_backup(b.id, { units: [] })
      .then(async (d) => {
        // Shown with the earlier ones: the newest of each unit.
        const all = await api.backup_drills(b.id).catch(() => d);
        show(all.results);
      })
      .catch((e) => showError(`Could not check backup #${b.id}. ${explain(e)}`))
      .finally(() => {
        button.disabled = false;
        button.textContent = "Check this backup";
      });
  });
  section.append(el("h4", {}, "Check"), button, out);
  return section;
}

/** Whether the compare view holds the preview's place for `selectedId`. */
export function comparing(selectedId: number | undefined): boolean {
  return my.shown !== null && my.shown.from === selectedId;
}

/** Closes the compare view (the preview is drawn again by the caller). */
export function closeCompare() {
  my.shown = null;
}

/** How the second side of a comparison is named: "#12" or "live". */
const toName = (c: Comparison): string => (c.to_live ? "live" : `#${c.to}`);

/** Compares backup `a` (the selected one) with `b` — null: the live state
 * as last saved — in the preview's place. */
export async function openCompare(a: Backup, b: Backup | null, back: () => void) {
  const mine = ++my.loads;
  let c: Comparison;
  try {
    c = await api.compare_backups(a.id, { with: b?.id ?? 0, live: b === null });
  } catch (e) {
    showError(`Could not compare #${a.id} with ${b ? `#${b.id}` : "the live state"}. ${explain(e)}`);
    return;
  }
  if (mine !== my.loads) return;
  my.shown = { from: a.id, to: c.to };
  const p = $("preview");
  p.classList.remove("empty");
  const head = el("h3", { id: "compare-title" });
  const close = el("button", { type: "button", class: "quiet close", "aria-label": "Close the comparison", "data-testid": "compare-close" }, "×");
  close.addEventListener("click", () => {
    closeCompare();
    back();
  });
  head.append(el("span", {}, `Backup #${a.id} → ${c.to_live ? "the live state" : `#${c.to}`}`), close);
  const view = el("section", { "data-testid": "compare", "aria-labelledby": "compare-title" });
  view.append(head);
  for (const s of [...c.engines, ...c.learners]) view.append(stateBlock(s, c));
  p.replaceChildren(view);
  close.focus();
}

/** A table: a header row of `cols`, then per row a header cell and its
 * cells (text, or an element as it is). */
function table(attrs: Record<string, string>, cols: string[], rows: { head: string; cells: (string | HTMLElement)[]; attrs?: Record<string, string> }[]): HTMLElement {
  const t = el("table", attrs);
  const cap = el("tr");
  cap.append(...cols.map((col) => el("th", { scope: "col" }, col)));
  t.append(cap);
  for (const r of rows) {
    const row = el("tr", r.attrs);
    row.append(el("th", { scope: "row" }, r.head), ...r.cells.map((cell) => (typeof cell === "string" ? el("td", {}, cell) : cell)));
    t.append(row);
  }
  return t;
}

function stateBlock(s: ComparedState, c: Comparison): HTMLElement {
  const block = el("div", { class: "compared", "data-testid": "compared", "data-name": s.name });
  const what = !s.in_to ? `only in #${c.from}` : !s.in_from ? `only in ${toName(c)}` : s.changed === false ? "state unchanged" : "state changed";
  block.append(el("h4", {}, `${ENGINE_TITLES[s.name] ?? s.name} — ${what}`));
  if (s.metrics.length > 0) {
    const rows = s.metrics.map((m) => {
      const info = metricInfo(s.name, m.key);
      const shown = (v: number | null) => (v === null ? "—" : formatValue(s.name, m.key, v));
      const change = el("td");
      if (m.change !== null && info) {
        change.textContent = changeText(info, m.change);
        change.className = changeClass(info, m.change);
      } else if (m.change !== null) change.textContent = num(m.change);
      return { head: info?.label ?? m.key, cells: [shown(m.from), shown(m.to), change] };
    });
    block.append(table({ "data-testid": `compare-metrics-${s.name}` }, ["Metric", `#${c.from}`, toName(c), "change"], rows));
  }
  if (s.inside) block.append(insideBlock(s.name, s.inside, c));
  return block;
}

function insideBlock(name: string, i: Inside, c: Comparison): HTMLElement {
  const d = el("div", { class: "inside", "data-testid": `inside-${name}` });
  if (i.note) d.append(el("p", { class: "warn-note" }, i.note));
  const lines = countedLines(i);
  if (i.values_changed.length > 0) lines.push(`values changed: ${i.values_changed.join(", ")}`);
  if (lines.length > 0) {
    const ul = el("ul");
    for (const l of lines) ul.append(el("li", {}, l));
    d.append(ul);
  }
  if (i.figures.length > 0) {
    const rows = i.figures.map((f) => ({ head: f.key, cells: [num(f.from), num(f.to)] }));
    d.append(table({}, ["Inside the state", `#${c.from}`, toName(c)], rows));
  }
  if (i.arrays.length > 0) {
    const rows = i.arrays.map((a) => ({ head: a.name, cells: [arrayText(a)], attrs: { "data-array": a.name } }));
    d.append(table({ "data-testid": `arrays-${name}` }, ["Array", "What changed"], rows));
  }
  if (i.largest.length > 0) {
    const rows = i.largest.map((e) => ({ head: e.entry, cells: [num(e.from), num(e.to)] }));
    d.append(table({}, ["Largest changes", `#${c.from}`, toName(c)], rows));
  }
  if (i.policy) d.append(policyMaps(i.policy, c));
  return d;
}

/** The greedy policy of each backup as two grids side by side; a changed
 * cell is marked (and named for screen readers). */
function policyMaps(p: PolicyMaps, c: Comparison): HTMLElement {
  const wrap = el("div", { class: "policy-maps", "data-testid": "policy-maps" });
  for (const [side, id] of [["from", `#${c.from}`], ["to", toName(c)]] as const) {
    const t = el("table", { class: "policy", "data-testid": `policy-${side}` });
    t.append(el("caption", {}, `Greedy policy in ${id} (${p.env})`));
    for (const row of policyGrid(p, side)) {
      const tr = el("tr");
      for (const cell of row) {
        const td = el("td", { title: cell.name, "aria-label": cell.changed ? `${cell.name}, changed` : cell.name }, cell.text);
        if (cell.changed) td.classList.add("changed");
        tr.append(td);
      }
      t.append(tr);
    }
    wrap.append(t);
  }
  wrap.append(el("p", { class: "muted" }, `${p.changed} cell(s) changed their greedy action (marked).`));
  return wrap;
}
