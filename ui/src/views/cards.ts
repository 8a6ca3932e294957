/** The dashboard cards: each engine's headline metrics. Built once; a metrics
 * event only rewrites the numbers (a metric the engine does not report, such
 * as FrozenLake's success on Taxi, stays hidden). */

import { $, el } from "../dom";
import { ENGINES, ENGINE_TITLES, cardMetrics } from "../model/engines";
import { measuredText, metricText } from "../model/compare";
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
    const m = state.now[info.engine];
    const text = metricText(info, m);
    // A metric the engine does not report (FrozenLake's success on Taxi)
    // stays hidden; an evaluation not made yet says so.
    dt.hidden = dd.hidden = text === "—";
    // When it was measured, under the figure, small (beside it, it took
    // the labels' room).
    const at = measuredText(info, m, Date.now());
    dd.replaceChildren(text);
    if (at) dd.append(el("small", { class: "measured" }, at));
    dd.classList.toggle("muted", text === "not evaluated yet");
  }
}
