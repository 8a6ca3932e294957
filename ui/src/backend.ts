/** The page's backend: Tauri IPC inside the app, the `engram serve` API in a
 * browser (see `api.ts`), connected once. */

import { connect } from "./api";

export const api = connect();
