/** Settings addressed by the descriptor's dotted keys (`retention.keep_daily`).
 * Pure: the settings view uses it, tests check it. */

import type { Settings } from "../generated/api";

type Tree = Record<string, unknown>;

/** The value at `key`. */
export function valueAt(s: Settings, key: string): number {
  return Number(key.split(".").reduce<unknown>((v, k) => (v as Tree | undefined)?.[k], s));
}

/** A copy of `s` with `key` set to `value`. */
export function withValue(s: Settings, key: string, value: number): Settings {
  const next = structuredClone(s) as unknown as Tree;
  const path = key.split(".");
  let at = next;
  for (const k of path.slice(0, -1)) at = at[k] as Tree;
  at[path[path.length - 1]!] = value;
  return next as unknown as Settings;
}
