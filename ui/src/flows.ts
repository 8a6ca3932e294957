/** The user's actions, each a confirmation (where it matters), one API call
 * and an honest report: restore, export, pin, delete, back up now, import. */

import { ApiError, type ExportFormat } from "./api";
import { $, el } from "./dom";
import { ENGINE_TITLES, learnerMetricKeys } from "./model/engines";
import type { Backup, LearnerInfo, MilestoneRule } from "./generated/api";
import { commandText, deletedLearnerText, deleteLearnerText, type MetricRow, metricInfoRequest, metricRows, parseRules, processLine, rulesLine, rulesText, shellCommand } from "./model/learners";
import { attempt, explain, showError, toast } from "./notify";
import { select, state, views } from "./state";
import { api } from "./backend";
import { restoreSummary } from "./model/summary";

/** This module's state, in the one store. */
const my = views.flows;

export function setRefresh(f: () => Promise<void>) {
  my.refresh = f;
}

/** The confirmation dialog: resolves true on OK. */
export function ask(title: string, text: string, extra?: HTMLElement): Promise<boolean> {
  const d = $<HTMLDialogElement>("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-extra").replaceChildren(...(extra ? [extra] : []));
  d.returnValue = "";
  d.showModal();
  return new Promise((resolve) => d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true }));
}

export async function restoreFlow(b: Backup) {
  // Retention must not delete it while the user decides (the selection
  // holds it too; this covers a restore started any other way).
  void api.hold_backup(b.id).catch(() => undefined);
  const choice = el("select", { "data-testid": "restore-engine", "aria-label": "What to restore" });
  choice.append(el("option", { value: "" }, "All engines"));
  for (const e of b.engines) choice.append(el("option", { value: e }, `Only ${ENGINE_TITLES[e] ?? e}`));
  for (const l of b.learners) choice.append(el("option", { value: l }, `Only learner ${l}`));
  const summary = el("p", { "data-testid": "restore-summary" }, restoreSummary(b, state.now, Date.now()));
  choice.addEventListener("change", () => {
    summary.textContent = restoreSummary(b, state.now, Date.now(), choice.value || undefined);
  });
  const extra = el("div");
  extra.append(summary, choice);
  const ok = await ask(
    `Restore backup #${b.id}?`,
    "The engines continue from this backup. A pre-restore backup of the current state is taken first, so you can undo it.",
    extra,
  );
  if (!ok) return;
  const r = await attempt("Restore", () => api.restore(b.id, choice.value || undefined));
  if (r) {
    const pre = r.pre_restore_backup;
    toast(
      `Restored ${r.engines.join(", ")} from backup #${b.id}.${pre === null ? "" : ` The state before is kept as backup #${pre}.`}`,
      pre === null ? undefined : { label: "Undo", run: () => void undoRestore(pre) },
    );
  }
  await my.refresh();
}

/** Undo: restore the pre-restore backup (which itself takes one first). */
async function undoRestore(pre: number) {
  const r = await attempt("Undo", () => api.restore(pre));
  if (r) toast(`Undone: back to the state of backup #${pre}.`);
  await my.refresh();
}

export async function exportFlow(b: Backup) {
  const choice = el("select", { "data-testid": "export-format", "aria-label": "Format" });
  choice.append(el("option", { value: "json" }, "JSON (readable by any tool)"), el("option", { value: "binary" }, "Binary (compact)"));
  if (!(await ask(`Export backup #${b.id}`, "Save it as a portable, self-describing file you can import elsewhere.", choice))) return;
  const format = choice.value as ExportFormat;
  toast("Exporting…");
  const where = await attempt("Export", () => api.saveExport(b.id, format));
  if (where) toast(`Exported backup #${b.id} to ${where}.`);
}

export async function labelFlow(b: Backup) {
  const input = el("input", { type: "text", maxlength: "200", "data-testid": "label-input", "aria-label": "Label", value: b.label ?? "" }) as HTMLInputElement;
  if (!(await ask(`Label backup #${b.id}`, "A short name for this backup (empty: no label).", input))) return;
  const text = input.value.trim();
  const updated = await attempt("Label", () => api.set_label(b.id, { label: text === "" ? null : text }));
  if (updated) {
    toast(text === "" ? `Backup #${b.id}: label removed.` : `Backup #${b.id} labelled “${text}”.`);
    select(updated);
    await my.refresh();
  }
}

export async function pinFlow(b: Backup) {
  const updated = await attempt(b.pinned ? "Unpin" : "Pin", () => api.setPinned(b.id, !b.pinned));
  if (updated) {
    select(updated);
    await my.refresh();
  }
}

export async function deleteFlow(b: Backup) {
  if (!(await ask(`Delete backup #${b.id}?`, "This cannot be undone."))) return;
  try {
    await api.delete_backup(b.id);
    select(null);
    toast(`Deleted backup #${b.id}.`);
  } catch (e) {
    showError(e instanceof ApiError && e.code === "protected" ? `Not deleted: ${e.message}.` : `Delete failed. ${explain(e)}`);
  }
  await my.refresh();
}

export async function backupNowFlow() {
  const input = $<HTMLInputElement>("backup-label");
  const label = input.value.trim();
  const b = await attempt("Back up now", () => api.backupNow(label === "" ? undefined : label));
  if (b) {
    input.value = "";
    toast(`Backup #${b.id} taken${b.label ? ` (“${b.label}”)` : ""}.`);
    select(b);
    await my.refresh();
  }
}

export async function importFlow(file: File) {
  try {
    const b = await api.importSnapshot(file);
    toast(`Imported ${file.name} as backup #${b.id}.`);
    select(b);
    await my.refresh();
  } catch (e) {
    showError(`Import of ${file.name} refused. ${explain(e)}`);
  }
}

/** The preview's buttons. */
/** Saves one learner's state in a backup — its own bytes, in its own
 * format — to a file (a download, or the app's save dialog). */
export async function learnerStateFlow(b: Backup, learner: string) {
  const where = await attempt("Download state", () => api.saveLearnerState(learner, b.id));
  if (where) toast(`Saved learner ${learner}'s state in backup #${b.id} to ${where}.`);
}

export const previewActions = {
  restore: (b: Backup) => void restoreFlow(b),
  export: (b: Backup) => void exportFlow(b),
  learnerState: (b: Backup, learner: string) => void learnerStateFlow(b, learner),
  pin: (b: Backup) => void pinFlow(b),
  label: (b: Backup) => void labelFlow(b),
  delete: (b: Backup) => void deleteFlow(b),
};

/** Add a supervised learner, or change a learner's command: a name, a
 * command line (run as `sh -c`), and where it runs. */
export async function learnerFlow(existing?: LearnerInfo) {
  const form = el("div", { class: "form" });
  const field = (label: string, input: HTMLInputElement) => {
    const l = el("label", {}, label);
    l.append(input);
    form.append(l);
    return input;
  };
  const name = field(
    "Name",
    el("input", { type: "text", maxlength: "64", pattern: "[a-z0-9_-]{1,64}", placeholder: "frozenlake-q", "data-testid": "learner-name", value: existing?.name ?? "" }) as HTMLInputElement,
  );
  name.disabled = existing !== undefined;
  const line = field(
    "Command (run with sh -c)",
    el("input", { type: "text", placeholder: "python3 train.py", "data-testid": "learner-command", value: existing?.command ? commandText(existing.command) : "" }) as HTMLInputElement,
  );
  const workdir = field(
    "Working directory (absolute; empty: the data directory)",
    el("input", { type: "text", placeholder: "/home/me/project", "data-testid": "learner-workdir", value: existing?.command?.workdir ?? "" }) as HTMLInputElement,
  );
  const title = existing ? `Command of learner ${existing.name}` : "Add a learner";
  const text = "Engram runs it now and whenever Engram starts, restarts it when it dies (it resumes from its last save), and stops it around a restore of its state.";
  if (!(await ask(title, text, form))) return;
  const req = { argv: shellCommand(line.value.trim()), workdir: workdir.value.trim() === "" ? null : workdir.value.trim(), format: null };
  if (line.value.trim() === "") {
    showError("Add learner: the command is empty.");
    return;
  }
  const l = await attempt(existing ? "Change command" : "Add learner", () => api.set_learner_command(name.value.trim(), req));
  if (l) toast(`Learner ${l.name}: ${processLine(l.process, l.command, Date.now()) ?? "supervised"}.`);
}

/** Delete a learner, after a backup of its newest state unless the user
 * unticks it (a failed backup deletes nothing). */
export async function deleteLearnerFlow(l: LearnerInfo) {
  const first = el("input", { type: "checkbox", "data-testid": "learner-delete-backup" }) as HTMLInputElement;
  first.checked = l.live !== null;
  const label = el("label", {});
  label.append(first, document.createTextNode(" Back up first (keeps its state, to bring it back)"));
  label.hidden = l.live === null;
  if (!(await ask(`Delete learner ${l.name}?`, deleteLearnerText(l), label))) return;
  let backup: number | null = null;
  if (first.checked && l.live !== null) {
    const b = await attempt("Back up before deleting", () => api.backupNow(`before deleting learner ${l.name}`));
    if (!b) return;
    backup = b.id;
  }
  const r = await attempt("Delete learner", () => api.remove_learner(l.name));
  if (r) toast(deletedLearnerText(r, backup));
  await my.refresh();
}

/** A learner's milestone rules: its own (as it declares them), or ones set
 * here, which win over its own across its restarts until reset. */
export async function milestonesFlow(l: LearnerInfo) {
  const form = el("div", { class: "form" });
  const own = rulesLine(l.name, l.declared_milestone_rules);
  const choice = (value: string, text: string, checked: boolean) => {
    const input = el("input", { type: "radio", name: "milestone-source", value, "data-testid": `milestones-${value}` }) as HTMLInputElement;
    input.checked = checked;
    const label = el("label", {});
    label.append(input, document.createTextNode(` ${text}`));
    form.append(label);
    return input;
  };
  choice("own", `The learner's own: ${own}`, !l.milestone_rules_set_here);
  const here = choice("here", "These, set here:", l.milestone_rules_set_here);
  const rules = el("input", {
    type: "text",
    "data-testid": "milestones-rules",
    "aria-label": "Milestone rules",
    placeholder: "success >= 0.9; loss <= 0.05",
    value: rulesText(l.milestone_rules),
  }) as HTMLInputElement;
  rules.addEventListener("input", () => (here.checked = true));
  form.append(rules);
  const text = "A durable save that meets a rule is kept as a milestone (a breakthrough backup), once per line of history. Empty: no milestones.";
  if (!(await ask(`Milestones of learner ${l.name}`, text, form))) return;
  let req: { rules: MilestoneRule[] | null } = { rules: null };
  if (here.checked) {
    const parsed = parseRules(rules.value);
    if ("error" in parsed) {
      showError(`Milestones: ${parsed.error}.`);
      return;
    }
    req = { rules: parsed.rules };
  }
  const n = await attempt("Set milestones", () => api.set_learner_milestone_rules(l.name, req));
  if (n) {
    const now = rulesLine(n.name, n.milestone_rules);
    toast(`Learner ${n.name}'s milestones${n.milestone_rules_set_here ? " (set here)" : " (its own)"}: ${now}.`);
  }
}

/** How a learner's metrics are named and printed: each as the learner
 * describes it, or as described here (wins over its own across its
 * restarts until unticked). Cards, charts and milestones read it. */
export async function metricsFlow(l: LearnerInfo) {
  // Long by design: one dialog — a row per metric, its fields, and the
  // answer — built and read in one place.
  const rows = metricRows(l, learnerMetricKeys(l.name));
  const form = el("div", { class: "form metric-rows", "data-testid": "metrics-form" });
  const read: (() => MetricRow)[] = [];
  for (const row of rows) {
    const own = l.declared_metric_info[row.key];
    const set = el("fieldset", { class: "metric-row", "data-metric": row.key });
    set.append(el("legend", {}, row.key));
    const here = el("input", { type: "checkbox", "data-testid": `metric-here-${row.key}` }) as HTMLInputElement;
    here.checked = row.here;
    const hereLabel = el("label", { class: "inline" });
    hereLabel.append(here, document.createTextNode(" Described here (else as the learner says)"));
    const text = (what: string, value: string, placeholder: string) => {
      const input = el("input", { type: "text", "data-testid": `metric-${what}-${row.key}`, maxlength: "100", placeholder, value }) as HTMLInputElement;
      const label = el("label", {}, what === "label" ? "Name" : "Unit");
      label.append(input);
      return { input, label };
    };
    const choice = (what: string, title: string, options: [string, string][], value: string) => {
      const select = el("select", { "data-testid": `metric-${what}-${row.key}` }) as HTMLSelectElement;
      for (const [v, t] of options) select.append(el("option", { value: v }, t));
      select.value = value;
      const label = el("label", {}, title);
      label.append(select);
      return { select, label };
    };
    const label = text("label", row.label, row.key);
    const unit = text("unit", row.unit, "none");
    const format = choice(
      "format",
      "Printed as",
      [
        ["", "decimal (default)"],
        ["decimal", "decimal: 0.953"],
        ["percent", "percent: 73.5 %"],
        ["integer", "integer: 12,345"],
        ["milliseconds", "milliseconds: 1.25 ms"],
        ["time", "time (unix ms): 2026-12-07 17:20:03"],
      ],
      row.format,
    );
    const direction = choice(
      "direction",
      "Better when",
      [
        ["", "no direction"],
        ["higher", "higher"],
        ["lower", "lower"],
      ],
      row.direction,
    );
    // Editing a field sets it here; unticking shows the learner's own again.
    for (const f of [label.input, unit.input, format.select, direction.select]) f.addEventListener("input", () => (here.checked = true));
    here.addEventListener("change", () => {
      if (here.checked) return;
      label.input.value = own?.label ?? "";
      unit.input.value = own?.unit ?? "";
      format.select.value = own?.format ?? "";
      direction.select.value = own?.higher_is_better === true ? "higher" : own?.higher_is_better === false ? "lower" : "";
    });
    set.append(hereLabel, label.label, unit.label, format.label, direction.label);
    form.append(set);
    read.push(() => ({
      key: row.key,
      label: label.input.value,
      unit: unit.input.value,
      format: format.select.value as MetricRow["format"],
      direction: direction.select.value as MetricRow["direction"],
      here: here.checked,
    }));
  }
  const intro =
    rows.length === 0
      ? "This learner has not described or logged a metric yet."
      : "How each metric is named and printed on the cards, charts and milestones: as the learner describes it, or as described here, which wins until unticked.";
  if (!(await ask(`Metrics of learner ${l.name}`, intro, rows.length === 0 ? undefined : form))) return;
  if (rows.length === 0) return;
  const n = await attempt("Describe metrics", () => api.set_learner_metric_info(l.name, metricInfoRequest(read.map((r) => r()))));
  if (n) {
    const here = n.metric_info_set_here;
    toast(`Learner ${n.name}'s metrics: ${here.length === 0 ? "all as the learner describes them" : `${here.join(", ")} described here`}.`);
  }
  await my.refresh();
}
