/** The dashboard cards: each engine's headline metrics. Built once; a metrics
 * event only rewrites the numbers (a metric the engine does not report, such
 * as FrozenLake's success on Taxi, stays hidden). */

import { $, el } from "../dom";
import { ENGINES, ENGINE_TITLES, cardMetrics, formatMetric } from "../model/engines";
import { state, views } from "../state";

/** This module's state, in the one store. */
const my = views.cards;


export function buildCards() {
  my.cells.length = 0;
  $("cards").replaceChildren(
    ...ENGINES.map((engine) => {
      const card = el("article", { class: "card", "data-testid": `card-${engine}` });
      card.append(el("h2", {}, ENGINE_TITLES[engine] ?? engine));
      const dl = el("dl");
      for (const info of cardMetrics(engine)) {
        const dt = el("dt", {}, info.label);
        const dd = el("dd", { "data-testid": `metric-${engine}-${info.key}` }, "—");
        my.cells.push({ info, dt, dd });
        dl.append(dt, dd);
      }
      card.append(dl);
      return card;
    }),
  );
  updateCards();
}

export function updateCards() {
  for (const { info, dt, dd } of my.cells) {
    const v = state.now[info.engine]?.[info.key];
    dt.hidden = dd.hidden = v === undefined;
    dd.textContent = v === undefined ? "—" : formatMetric(info.format, v);
  }
}
