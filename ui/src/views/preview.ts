/** The preview of the selected backup: what it holds then, now and the
 * change, and its actions. Built once per selection; a metrics event only
 * rewrites the "now" and "change" cells, so buttons and focus stay put. */

import { $, el, kindLabel } from "../dom";
import { ENGINE_TITLES, cardMetrics, changeClass, formatMetric, formatValue, isNoChange, learnerMetricKeys, metricInfo } from "../model/engines";
import { formatBytes, formatTimestamp, formatCount } from "../model/format";
import type { Backup, MetricInfo } from "../generated/api";
import { select, state, views } from "../state";

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

export interface LiveCells {
  info: MetricInfo;
  then: number | undefined;
  /** Its value now (a built-in engine's live metrics, a learner's live
   * state's). */
  current: () => number | undefined;
  now: HTMLElement;
  change: HTMLElement;
}

/** A table of metrics then, now and the change; its rows join `cells`.
 * With `all`, a row known neither then nor now is kept (its value may
 * come). */
function metricsTable(testid: string, title: string, rows: { info: MetricInfo; then: number | undefined; current: () => number | undefined }[], all = false): HTMLElement {
  const t = el("table", { "data-testid": testid });
  const cap = el("tr");
  cap.append(el("th", {}, title), el("th", {}, "then"), el("th", {}, "now"), el("th", {}, "change"));
  t.append(cap);
  for (const r of rows) {
    if (!all && r.then === undefined && r.current() === undefined) continue;
    const now = el("td");
    const change = el("td");
    const row = el("tr");
    row.append(el("td", {}, r.info.label), el("td", {}, r.then === undefined ? "—" : formatMetric(r.info.format, r.then)), now, change);
    t.append(row);
    my.cells.push({ ...r, now, change });
  }
  return t;
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
    const rows = cardMetrics(engine).map((info) => ({ info, then: b.metrics[engine]?.[info.key], current: () => state.now[engine]?.[info.key] }));
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
        info: metricInfo(name, key) ?? { engine: name, key, label: key, unit: "", format: "decimal" as const, higher_is_better: null, card: false, chart: true },
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
  p.replaceChildren(...nodes);
  updatePreview();
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
    c.now.textContent = current === undefined ? "—" : formatMetric(c.info.format, current);
    const delta = c.then !== undefined && current !== undefined ? current - c.then : undefined;
    if (delta === undefined) {
      c.change.textContent = "";
      c.change.className = "";
    } else {
      c.change.textContent = isNoChange(c.info, delta) ? "±0" : `${delta > 0 ? "+" : "−"}${formatMetric(c.info.format, Math.abs(delta))}`;
      c.change.className = changeClass(c.info, delta);
    }
  }
}
