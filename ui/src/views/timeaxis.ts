/** The time axis every uPlot chart in the UI shares: UTC and 24-hour, with
 * ISO dates, like every other time in the UI (uPlot's own are the
 * browser's local time, "8:01pm"), and a sane span for a lone instant. */

import uPlot from "uplot";

/** uPlot's dates in UTC (its timestamps are seconds). */
export const utc = (ts: number): Date => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC");

/** The time axis's labels, by tick increment (seconds): uPlot's table
 * with ISO dates and 24-hour times — [increment, label, then the second
 * line when the year, month, day, hour, minute or second rolls over (the
 * first tick counts as every rollover), and 1: add it to the label].
 * Below a day the year is left out: the first tick's second line stays
 * short enough (~60 px) not to run into the next tick's at uPlot's 50 px
 * spacing (uPlot's own "11/27/26 8:01pm" did). */
export const TIME_STAMPS: uPlot.Axis.TimeValuesConfig = [
  [31_536_000, "{YYYY}", null, null, null, null, null, null, 1],
  [2_419_200, "{MMM}", "\n{YYYY}", null, null, null, null, null, 1],
  [86_400, "{MM}-{DD}", "\n{YYYY}", null, null, null, null, null, 1],
  [3_600, "{HH}:{mm}", "\n{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
  [60, "{HH}:{mm}", "\n{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
  [1, ":{ss}", "\n{MM}-{DD} {HH}:{mm}", null, "\n{MM}-{DD} {HH}:{mm}", null, "\n{HH}:{mm}", null, 1],
  [0.001, ":{ss}.{fff}", "\n{MM}-{DD} {HH}:{mm}", null, "\n{MM}-{DD} {HH}:{mm}", null, "\n{HH}:{mm}", null, 1],
];

/** The least room (px) between two time ticks. A tick's label is centred
 * on it, and the longest pair side by side is the first tick's second line
 * ("12-05 17:20", ~75 px in the axis font) beside the next one's ("17:21",
 * ~34 px): (75 + 34) / 2 ≈ 55 px. uPlot's default of 50 ran them into each
 * other on a narrow chart ("12-05 17:2017:21"); 64 leaves a gap. */
export const TIME_SPACE = 64;

/** A time scale's range that gives a chart with one instant `pad` seconds
 * either side — uPlot pads a lone timestamp to 1,000 days (86,400 / its
 * 0.001 s unit), which drew years of empty axis — and leaves every other
 * range as it is. */
export function loneInstant(pad: number): uPlot.Range.Function {
  return (u, min, max) => {
    const xs = u.data[0];
    return xs.length === 1 && min === xs[0] && max - min === 86_400_000 ? [min - pad, min + pad] : [min, max];
  };
}

/** A uPlot hook that keeps `box`'s `data-x-span` at the seconds the time
 * axis spans (for tests and tools). */
export function recordSpan(box: HTMLElement): (u: uPlot, key: string) => void {
  return (u, key) => {
    if (key !== "x") return;
    const { min, max } = u.scales.x ?? {};
    if (typeof min === "number" && typeof max === "number") box.dataset.xSpan = String(Math.round(max - min));
  };
}
