/** Learners — training processes elsewhere that keep their state in Engram:
 * one card each with its format, step, last durable save, size and the
 * metrics of its last save; for a supervised one, its process (phase, pid,
 * restarts, last exit), its last output lines and Start/Stop/Remove; for
 * one that runs elsewhere, "Ask to stop" (and when it was asked); for
 * either, "Delete…". Hidden
 * while there are none; reloaded with the rest of the page, at every
 * autosave, when a process changes phase, and every few seconds while one
 * runs (its output). */

import { $, el } from "../dom";
import { formatMetric, metricInfo } from "../model/engines";
import { deleteLearnerFlow, learnerFlow, metricsFlow, milestonesFlow } from "../flows";
import { formatBytes, formatTimestamp, formatCount, formatDecimal4 } from "../model/format";
import type { LearnerInfo } from "../generated/api";
import { commandText, processLine, rulesLine } from "../model/learners";
import { attempt, toast } from "../notify";
import { state, views } from "../state";
import { api } from "../backend";
import { updatePreview } from "./preview";

/** This module's state, in the one store. */
const my = views.learners;

const POLL_MS = 3000;

export async function loadLearners() {
  const mine = ++my.loads;
  const learners = await api.learners().catch(() => null);
  if (mine !== my.loads || learners === null) return;
  state.learners = learners;
  renderLearners(learners);
  updatePreview(); // its learners' "step now"
  if (my.poll !== null) clearTimeout(my.poll);
  my.poll = learners.some((l) => l.process?.phase === "running" || l.process?.phase === "restarting") ? setTimeout(() => void loadLearners(), POLL_MS) : null;
}

/** Start, stop or remove, then show the learner as it is now. */
async function act(what: string, f: () => Promise<LearnerInfo>, done: (l: LearnerInfo) => string) {
  const l = await attempt(what, f);
  if (l) toast(done(l));
  await loadLearners();
}

function renderLearners(learners: LearnerInfo[]) {
  const host = $("learners");
  host.hidden = learners.length === 0;
  // Keep open output panels open across reloads.
  const open = new Set([...host.querySelectorAll<HTMLDetailsElement>("details[open]")].map((d) => d.dataset.learner));
  host.replaceChildren(
    ...learners.map((l) => {
      const card = el("article", { class: "card", "data-testid": `learner-${l.name}` });
      card.append(el("h2", {}, `${l.name} (learner)`));
      const dl = el("dl");
      const row = (k: string, v: string, testid?: string) => dl.append(el("dt", {}, k), el("dd", testid ? { "data-testid": testid } : {}, v));
      row("Format", l.format);
      const s = l.live;
      if (s) {
        row("Step", s.step === null ? "—" : formatCount(s.step), "learner-step");
        row("Saved", `${formatTimestamp(s.saved_at_ms)} UTC`);
        row("State", formatBytes(s.size));
        // Named and formatted as the learner described them (else as logged).
        for (const [k, v] of Object.entries(s.metrics).slice(0, 6)) {
          const info = metricInfo(l.name, k);
          const shown = info ? formatMetric(info.format, v) : Number.isFinite(v) ? formatDecimal4(v) : String(v);
          row(info?.label ?? k, shown);
        }
      } else {
        row("State", "not saved yet");
      }
      // The milestones it declared: a breakthrough backup keeps the first
      // saved state that meets each (once per line of history).
      if (l.milestone_rules.length > 0 || l.milestone_rules_set_here) {
        const rules = rulesLine(l.name, l.milestone_rules);
        row("Milestones", l.milestone_rules_set_here ? `${rules} (set here)` : rules, "learner-milestones");
      }
      const line = processLine(l.process, l.command, Date.now());
      if (line !== null) {
        row("Process", line, "learner-process");
        if (l.process && l.process.restarts > 0) row("Restarts", formatCount(l.process.restarts));
      }
      if (!l.command && l.stop_requested_at_ms !== null) row("Stop", `asked ${formatTimestamp(l.stop_requested_at_ms)} UTC — it stops when its loop next checks`, "learner-stop-asked");
      card.append(dl);
      if (!l.command) {
        // It runs elsewhere: Engram cannot signal it, only ask (its client's
        // `run.stop_requested`); a new run of it clears the request.
        const ask = el("button", { type: "button", "data-testid": "learner-ask-stop" }, "Ask to stop");
        ask.disabled = l.stop_requested_at_ms !== null;
        ask.title = "This learner runs outside Engram: it is asked to stop and stops when its training loop checks run.stop_requested.";
        ask.addEventListener("click", () => void act("Ask learner to stop", () => api.stop_learner(l.name), (n) => `Asked learner ${n.name} to stop; it runs outside Engram and stops when its loop next checks.`));
        const actions = el("div", { class: "row-actions" });
        actions.append(ask, milestonesButton(l), metricsButton(l), deleteButton(l));
        card.append(actions);
      }
      if (l.command) {
        const p = l.process;
        const up = p?.phase === "running" || p?.phase === "restarting" || p?.phase === "stopping";
        const actions = el("div", { class: "row-actions" });
        const start = el("button", { type: "button", "data-testid": "learner-start" }, up ? "Restart" : "Start");
        start.addEventListener("click", async () => {
          if (up) await attempt("Stop learner", () => api.stop_learner(l.name));
          await act("Start learner", () => api.start_learner(l.name), (n) => `Learner ${n.name}: ${processLine(n.process, n.command, Date.now())}.`);
        });
        const stop = el("button", { type: "button", "data-testid": "learner-stop" }, "Stop");
        stop.disabled = !up;
        stop.addEventListener("click", () => void act("Stop learner", () => api.stop_learner(l.name), (n) => `Learner ${n.name} stopped; it stays stopped until you start it.`));
        const edit = el("button", { type: "button", "data-testid": "learner-edit" }, "Command…");
        edit.addEventListener("click", () => void learnerFlow(l).then(loadLearners));
        const remove = el("button", { type: "button", "data-testid": "learner-remove" }, "Stop supervising");
        remove.addEventListener("click", () => void act("Stop supervising", () => api.remove_learner_command(l.name), (n) => `Engram no longer runs ${n.name}; its saved states stay.`));
        actions.append(start, stop, edit, remove, milestonesButton(l), metricsButton(l), deleteButton(l));
        card.append(el("p", { class: "muted command", title: l.command.workdir }, commandText(l.command)), actions);
        if (p && p.output.length > 0) {
          const details = el("details", { "data-learner": l.name, "data-testid": "learner-output" });
          details.open = open.has(l.name);
          details.append(el("summary", {}, "Last output"), el("pre", {}, p.output.join("\n")));
          card.append(details);
        }
      }
      return card;
    }),
  );
}

/** "Delete…": the learner goes (after a backup, unless unticked). */
function deleteButton(l: LearnerInfo): HTMLElement {
  const b = el("button", { type: "button", class: "danger", "data-testid": "learner-delete" }, "Delete…");
  b.addEventListener("click", () => void deleteLearnerFlow(l).then(loadLearners));
  return b;
}

/** "Milestones…": the rules its saves are checked against. */
function milestonesButton(l: LearnerInfo): HTMLElement {
  const b = el("button", { type: "button", "data-testid": "learner-milestones-edit" }, "Milestones…");
  b.addEventListener("click", () => void milestonesFlow(l).then(loadLearners));
  return b;
}

/** "Metrics…": how its metrics are named and printed. */
function metricsButton(l: LearnerInfo): HTMLElement {
  const b = el("button", { type: "button", "data-testid": "learner-metrics-edit" }, "Metrics…");
  b.addEventListener("click", () => void metricsFlow(l));
  return b;
}
