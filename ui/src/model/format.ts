/** Formatting shared by every view. Pure functions, no DOM. */

const UNITS = ["B", "KB", "MB", "GB", "TB"] as const;

// One formatter, made once: `formatCount(x)` builds a new one at
// every call (~12 µs each; a timeline of 300 bars made ~900 of them).
const COUNT = new Intl.NumberFormat("en-US");
const DECIMAL4 = new Intl.NumberFormat("en-US", { maximumFractionDigits: 4 });

/** 12345 -> "12,345" (en-US grouping, as every number in the UI). */
export function formatCount(n: number): string {
  return COUNT.format(n);
}

/** 1234.56789 -> "1,234.5679": at most four decimals. */
export function formatDecimal4(n: number): string {
  return DECIMAL4.format(n);
}

/** 1536 -> "1.5 KB"; binary multiples, one decimal below 10. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return "—";
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u += 1;
  }
  const digits = u === 0 || v >= 10 ? 0 : 1;
  return `${v.toFixed(digits)} ${UNITS[u]}`;
}

/** A length of time in words: "12 s", "3 min", "2 h", "4 d" (rounded). */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

/** Unix milliseconds -> "2026-11-25 19:04:34" in UTC. */
export function formatTimestamp(ms: number): string {
  if (!Number.isFinite(ms)) return "—";
  return new Date(ms).toISOString().slice(0, 19).replace("T", " ");
}
