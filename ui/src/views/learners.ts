/** Learners — training processes elsewhere that keep their state in Engram:
 * one card each with its format, step, last durable save, size and the
 * metrics of its last save. Hidden while there are none; reloaded with the
 * rest of the page and at every autosave. */

import { $, el } from "../dom";
import { formatBytes, formatTimestamp } from "../format";
import type { LearnerInfo } from "../generated/api";
import { api } from "../state";

let loads = 0;

export async function loadLearners() {
  const mine = ++loads;
  const learners = await api.learners().catch(() => null);
  if (mine !== loads || learners === null) return;
  renderLearners(learners);
}

function renderLearners(learners: LearnerInfo[]) {
  const host = $("learners");
  host.hidden = learners.length === 0;
  host.replaceChildren(
    ...learners.map((l) => {
      const card = el("article", { class: "card", "data-testid": `learner-${l.name}` });
      card.append(el("h2", {}, `${l.name} (learner)`));
      const dl = el("dl");
      const row = (k: string, v: string) => dl.append(el("dt", {}, k), el("dd", {}, v));
      row("Format", l.format);
      const s = l.live;
      if (s) {
        row("Step", s.step === null ? "—" : s.step.toLocaleString("en-US"));
        row("Saved", `${formatTimestamp(s.saved_at_ms)} UTC`);
        row("State", formatBytes(s.size));
        for (const [k, v] of Object.entries(s.metrics).slice(0, 6)) row(k, Number.isFinite(v) ? v.toLocaleString("en-US", { maximumFractionDigits: 4 }) : String(v));
      } else {
        row("State", "not saved yet");
      }
      card.append(dl);
      return card;
    }),
  );
}
