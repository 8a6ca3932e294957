/** The preview of the selected backup: what it holds then, now and the
 * change, and its actions. Built once per selection; a metrics event only
 * rewrites the "now" and "change" cells, so buttons and focus stay put. */

import { $, el, kindLabel } from "../dom";
import { ENGINE_TITLES, cardMetrics, changeClass, changeText, formatMetric, formatValue, learnerMetricKeys, metricInfo } from "../model/engines";
import { formatBytes, formatTimestamp, formatCount } from "../model/format";
import type { Backup, MetricInfo } from "../generated/api";
import { select, state, views } from "../state";
import { measuredText, metricText } from "../model/compare";
import { closeCompare, comparing, drillSection, openCompare } from "./compare";

/** This module's state, in the one store. */
const my = views.preview;

/** What the preview's buttons do (the flows). */
export interface PreviewActions {
  restore(b: Backup): void;
  export(b: Backup): void;
  /** Save one learner's state in this backup to a file. */
  learnerState(b: Backup, learner: string): void;
  pin(b: Backup): void;
  label(b: Backup): void;
  delete(b: Backup): void;
}

/** One metric's row: its value then and now. */
type Row = {
  info: MetricInfo;
  then: number | undefined;
  /** Its value now (a built-in engine's live metrics, a learner's live
   * state's). */
  current: () => number | undefined;
  /** A built-in engine's metrics then and now, where the row reads its
   * value: an evaluation's figure says "not evaluated yet" before its first
   * evaluation, and the step it was measured at is the cell's title. */
  engine?: { then: Record<string, number> | undefined; now: () => Record<string, number> | undefined };
};

export interface LiveCells extends Row {
  now: HTMLElement;
  change: HTMLElement;
}

/** A table of metrics then, now and the change; its rows join `cells`.
 * With `all`, a row known neither then nor now is kept (its value may
 * come). */
function metricsTable(testid: string, title: string, rows: Row[], all = false): HTMLElement {
  const t = el("table", { "data-testid": testid });
  const cap = el("tr");
  cap.append(el("th", {}, title), el("th", {}, "then"), el("th", {}, "now"), el("th", {}, "change"));
  t.append(cap);
  for (const r of rows) {
    // A row known neither then nor now is left out, unless it says an
    // evaluation was not made yet.
    const said = r.engine !== undefined && (metricText(r.info, r.engine.then) !== "—" || metricText(r.info, r.engine.now()) !== "—");
    if (!all && !said && r.then === undefined && r.current() === undefined) continue;
    const now = el("td");
    const change = el("td");
    const row = el("tr");
    const thenCell = el("td", {}, r.engine ? metricText(r.info, r.engine.then) : r.then === undefined ? "—" : formatMetric(r.info.format, r.then));
    if (r.engine) stepTitle(thenCell, r.info, r.engine.then);
    row.append(el("td", {}, r.info.label), thenCell, now, change);
    t.append(row);
    my.cells.push({ ...r, now, change });
  }
  return t;
}


/** The cell's title: when an evaluation's figure was measured. */
function stepTitle(cell: HTMLElement, info: MetricInfo, metrics: Record<string, number> | undefined) {
  const at = measuredText(info, metrics);
  if (at) cell.title = `measured ${at}`;
  else cell.removeAttribute("title");
}

/** A learner's metrics a preview of `b` shows: what it saved then, saves
 * now, or has logged (the catalog's). */
function shownMetricKeys(b: Backup, name: string): string[] {
  const live = state.learners?.find((l) => l.name === name)?.live?.metrics ?? {};
  return [...new Set([...Object.keys(b.learner_metrics[name] ?? {}), ...Object.keys(live), ...learnerMetricKeys(name)])].sort();
}

function learnerKeysOf(b: Backup): string {
  return b.learners.map((n) => `${n}:${shownMetricKeys(b, n).join(",")}`).join(";");
}

/** Says why retention keeps the shown backup, or that it is about to go. */
export function updateRetentionNote(id: number) {
  if (!my.note) return;
  const o = state.retention.get(id);
  my.note.hidden = !o;
  if (!o) return;
  my.note.className = o.rolls_off_next ? "warn-note" : "muted";
  my.note.textContent = o.rolls_off_next
    ? "Retention removes this backup at the next periodic backup. Pin it to keep it."
    : `Kept: ${o.kept_because.join("; ")}.`;
}

/** Rebuilds the preview when the selection (or what it shows of it) changed. */
export function renderPreview(actions: PreviewActions): void {
  // Long by design: the preview top to bottom (header, actions, the
  // engines' and learners' then/now/change rows, the retention note).
  const b = state.selected;
  // A comparison of the selected backup keeps the preview's place until
  // it is closed or another backup is selected.
  if (comparing(b?.id)) return;
  if (views.compare.shown !== null) {
    closeCompare();
    my.shown = null;
  }
  const same = b && my.shown && my.shown.id === b.id && my.shown.pinned === b.pinned && my.shown.label === b.label;
  if (same) {
    updateRetentionNote(b.id);
    return updatePreview();
  }
  my.shown = b ? { id: b.id, pinned: b.pinned, label: b.label } : null;
  my.builtWith = actions;
  my.learnerKeys = b ? learnerKeysOf(b) : "";
  my.note = null;
  my.cells = [];
  my.learnerCells = [];
  const p = $("preview");
  p.classList.toggle("empty", !b);
  if (!b) {
    p.replaceChildren(el("p", { class: "muted" }, "Select a backup to see what it holds."));
    return;
  }
  const head = el("h3");
  const close = el("button", { type: "button", class: "quiet close", "aria-label": "Close the preview", "data-testid": "preview-close" }, "×");
  close.addEventListener("click", () => select(null));
  head.append(el("span", {}, `Backup #${b.id}`), kindLabel(b.kind), close);
  const meta = el("p", { class: "muted" }, `${formatTimestamp(b.created_at_ms)} UTC · ${formatBytes(b.size)}${b.label ? ` · “${b.label}”` : ""}${b.pinned ? " · pinned" : ""}`);
  const nodes: Node[] = [head, meta];
  my.note = el("p", { "data-testid": "retention-note" });
  nodes.push(my.note);
  updateRetentionNote(b.id);
  if (b.breakthrough) {
    const bt = b.breakthrough;
    nodes.push(el("p", {}, `Milestone: ${bt.rule} — ${bt.metric} = ${formatValue(bt.engine, bt.metric, bt.value)} at step ${formatCount(bt.step)}`));
  }
  for (const engine of b.engines) {
    const rows = cardMetrics(engine).map((info) => ({
      info,
      then: b.metrics[engine]?.[info.key],
      current: () => state.now[engine]?.[info.key],
      engine: { then: b.metrics[engine], now: () => state.now[engine] },
    }));
    nodes.push(metricsTable(`preview-${engine}`, ENGINE_TITLES[engine] ?? engine, rows));
  }
  if (b.learners.length > 0) {
    // Learners: the step of each one's state in this backup beside its step now.
    const t = el("table", { "data-testid": "preview-learners" });
    const cap = el("tr");
    cap.append(el("th", {}, "Learner"), el("th", {}, "step then"), el("th", {}, "step now"), el("th", {}, "State"));
    t.append(cap);
    for (const name of b.learners) {
      const then = b.learner_steps[name];
      const now = el("td");
      const row = el("tr");
      // Its own bytes, in its own format (to open in a notebook, say).
      const save = el("button", { type: "button", "data-testid": "preview-learner-state", "aria-label": `Download ${name}'s state in backup #${b.id}` }, "Download");
      save.addEventListener("click", () => actions.learnerState(b, name));
      const cell = el("td");
      cell.append(save);
      row.append(el("td", {}, name), el("td", {}, then === undefined ? "—" : formatCount(then)), now, cell);
      t.append(row);
      my.learnerCells.push({ name, now });
    }
    nodes.push(t);
    // Each learner's metrics in its state then, beside its live state's now
    // (named and printed as it, or Engram, describes them).
    for (const name of b.learners) {
      const live = () => state.learners?.find((l) => l.name === name)?.live?.metrics;
      const then = b.learner_metrics[name] ?? {};
      const keys = shownMetricKeys(b, name);
      if (keys.length === 0) continue;
      const rows = keys.map((key) => ({
        info: metricInfo(name, key) ?? { engine: name, key, label: key, unit: "", format: "decimal" as const, higher_is_better: null, card: false, chart: true, measured_at: null, measured_when: null },
        then: then[key],
        current: () => live()?.[key],
      }));
      nodes.push(metricsTable(`preview-learner-${name}`, `${name} (learner)`, rows, true));
    }
    updatePreview();
  }
  const buttons = el("div", { class: "buttons" });
  const button = (label: string, testid: string, cls: string, run: (b: Backup) => void) => {
    const btn = el("button", { class: cls, "data-testid": testid }, label);
    btn.addEventListener("click", () => run(b));
    return btn;
  };
  buttons.append(
    button("Restore…", "restore", "primary", actions.restore),
    button("Export…", "export", "", actions.export),
    button(b.pinned ? "Unpin" : "Pin", "pin", "", actions.pin),
    button(b.label ? "Edit label…" : "Add label…", "label", "", actions.label),
    button("Delete…", "delete", "danger", actions.delete),
  );
  nodes.push(buttons);
  nodes.push(drillSection(b));
  const live = el("button", { type: "button", class: "quiet", "data-testid": "compare-live" }, "Compare with the live state");
  live.addEventListener("click", () => void openCompare(b, null, redrawPreview));
  nodes.push(live);
  nodes.push(el("p", { class: "muted hint", "data-testid": "compare-hint" }, `To compare #${b.id} with another backup: Shift+click its row, or Shift+Enter on it.`));
  p.replaceChildren(...nodes);
  updatePreview();
}

/** Draws the preview again from scratch (after a comparison closes). */
export function redrawPreview(): void {
  my.shown = null;
  if (my.builtWith) renderPreview(my.builtWith);
}

/** Rewrites the "now" and "change" cells from the latest metrics. */
export function updatePreview(): void {
  const b = state.selected;
  if (b && my.builtWith && my.shown?.id === b.id && learnerKeysOf(b) !== my.learnerKeys) {
    my.shown = null;
    return renderPreview(my.builtWith);
  }
  for (const c of my.learnerCells) {
    const known = state.learners?.find((l) => l.name === c.name);
    const step = known?.live?.step ?? null;
    // A learner deleted since: this backup can bring it back.
    if (state.learners !== null && known === undefined) c.now.textContent = "deleted";
    else c.now.textContent = step === null ? "—" : formatCount(step);
  }
  for (const c of my.cells) {
    const current = c.current();
    c.now.textContent = c.engine ? metricText(c.info, c.engine.now()) : current === undefined ? "—" : formatMetric(c.info.format, current);
    if (c.engine) stepTitle(c.now, c.info, c.engine.now());
    const delta = c.then !== undefined && current !== undefined ? current - c.then : undefined;
    if (delta === undefined) {
      c.change.textContent = "";
      c.change.className = "";
    } else {
      c.change.textContent = changeText(c.info, delta);
      c.change.className = changeClass(c.info, delta);
    }
  }
}
