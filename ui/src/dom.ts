/** DOM helpers shared by every view. No state, no backend. */

import type { BackupKind } from "./generated/api";

const SVG = "http://www.w3.org/2000/svg";

/** The element with this id (the page's fixed skeleton is in index.html). */
export const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

export function svg(tag: string, attrs: Record<string, string | number>) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** A coloured kind badge. */
export function kindLabel(kind: BackupKind) {
  const span = el("span", { class: `kind ${kind}` }, kind);
  // CSSOM, not a style attribute: the CSP forbids inline styles.
  span.style.setProperty("--kc", `var(--k-${kind})`);
  return span;
}
