/** Runs first (main.ts imports it before anything else): under LANG=C,
 * WebKitGTK reports the language "C", which `Intl` rejects — and uPlot
 * builds an `Intl.NumberFormat` from `navigator.language` when its module
 * loads, so the whole page would fail to start. Fall back to a language
 * `Intl` accepts. */
try {
  new Intl.NumberFormat(navigator.language);
} catch {
  Object.defineProperty(navigator, "language", { value: "en-US", configurable: true });
}

export {};
