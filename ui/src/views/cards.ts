/** The dashboard cards: each engine's headline metrics. Built once; a metrics
 * event only rewrites the numbers. */

import { $, el } from "../dom";
import { CARD_METRICS, ENGINES, ENGINE_TITLES } from "../engines";
import { state } from "../state";

const cells = new Map<string, { dd: HTMLElement; fmt: (v: number) => string }>();

export function buildCards() {
  cells.clear();
  $("cards").replaceChildren(
    ...ENGINES.map((engine) => {
      const card = el("article", { class: "card", "data-testid": `card-${engine}` });
      card.append(el("h3", {}, ENGINE_TITLES[engine] ?? engine));
      const dl = el("dl");
      for (const [key, label, fmt] of CARD_METRICS[engine] ?? []) {
        const dd = el("dd", { "data-testid": `metric-${engine}-${key}` }, "—");
        cells.set(`${engine}/${key}`, { dd, fmt });
        dl.append(el("dt", {}, label), dd);
      }
      card.append(dl);
      return card;
    }),
  );
  updateCards();
}

export function updateCards() {
  for (const [id, { dd, fmt }] of cells) {
    const [engine, key] = id.split("/") as [string, string];
    const v = state.now[engine]?.[key];
    dd.textContent = v === undefined ? "—" : fmt(v);
  }
}
