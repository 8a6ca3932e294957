/** The first view's questions, asked the moment the page starts — before
 * the page's own code (`app.ts`, a chunk of its own) is loaded, compiled
 * and has built the page — so the answers travel meanwhile
 * (BENCHMARKS.md, "UI at scale"). The views ask the same calls when they
 * load and are handed these answers (`Backend.askAhead`); the sizes of
 * those calls live here, so both ask the same. A first view with a filter
 * or zoom asks its own (nothing is shown that was not asked for). */

import type { Backend } from "./api";
import { CHARTS } from "./model/engines";

/** Rows per page of the list. */
export const PAGE = 50;
/** Buckets over the timeline's axis (the density bars when there are too
 * many backups to mark each). */
export const BUCKETS = 300;
/** Timeline ranges holding at most this many backups are drawn one mark each. */
export const MARKS = 1500;
/** Points per chart's series. */
export const POINTS = 600;

/** Asks what the page shows first: the status, the metric catalog, the
 * list's first page, the timeline and the built-in charts' series, all
 * unfiltered and unzoomed. */
export function askFirst(api: Backend) {
  api.askAhead((b) => {
    void b.status();
    void b.metric_catalog();
    void b.listBackups({ kinds: [], text: "", pinned: false, limit: PAGE, offset: 0 });
    void b.timeline({ kinds: [], from_ms: null, to_ms: null, buckets: BUCKETS, marks: MARKS });
    for (const c of CHARTS) void b.metric_series({ engine: c.engine, key: c.key, from_ms: null, to_ms: null, points: POINTS });
  });
}
