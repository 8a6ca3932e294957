/** The Engram UI's entry point, kept small: it asks for the first view's
 * data (`firstload.ts`), then loads the page (`app.ts`, its own chunk), so
 * the answers travel while the browser loads, compiles and builds it. */

import "./locale"; // first: see locale.ts
import { api } from "./backend";
import { askFirst } from "./firstload";

askFirst(api);
import("./app").catch((e: unknown) => {
  // Not even the page could load (a damaged install): say so.
  document.body.textContent = `Engram's page could not be loaded: ${String(e)}`;
});
