/** What the UI knows about each engine's metrics: titles, the card rows and
 * the charts, with their formats. Pure data. */

export const ENGINES = ["zap", "mdp_es", "orchestrator"] as const;
export type EngineName = (typeof ENGINES)[number];

export function int(v: number) {
  return Math.round(v).toLocaleString("en-US");
}
export function pct(v: number) {
  return `${(v * 100).toFixed(1)}%`;
}

export const ENGINE_TITLES: Record<string, string> = { zap: "ZAP planner", mdp_es: "MDP/ES optimizer", orchestrator: "Orchestrator" };

/** [metric key, label, format] rows of each engine's card and preview table. */
export const CARD_METRICS: Record<string, [string, string, (v: number) => string][]> = {
  zap: [
    ["plans_generated", "Plans", int],
    ["success_rate_last_100", "Success (last 100)", pct],
    ["success_rate", "Success (all)", pct],
    ["mean_planning_ms", "Planning time", (v) => `${v.toFixed(2)} ms`],
    ["mean_confidence", "Confidence", pct],
  ],
  mdp_es: [
    ["episodes", "Episodes", int],
    ["generation", "ES generation", int],
    ["best_fitness", "Best fitness", (v) => v.toFixed(3)],
    ["success_rate_last_100", "Q success (last 100)", pct],
    ["epsilon", "ε", (v) => v.toFixed(3)],
  ],
  orchestrator: [
    ["cross_system_calls", "Cross-system calls", int],
    ["failures", "Failures", int],
    ["systems_registered", "Systems", int],
    ["mean_latency_ms", "Mean latency", (v) => `${(v * 1000).toFixed(1)} µs`],
  ],
};

export interface ChartSpec {
  engine: string;
  metric: string;
  title: string;
  range?: [number, number];
  fmt: (v: number) => string;
}

export const CHARTS: ChartSpec[] = [
  { engine: "zap", metric: "success_rate_last_100", title: "ZAP success (last 100)", range: [0, 1], fmt: pct },
  { engine: "zap", metric: "total_reward", title: "ZAP total reward", fmt: int },
  { engine: "mdp_es", metric: "best_fitness", title: "MDP/ES best fitness", range: [0, 1], fmt: (v) => v.toFixed(3) },
  { engine: "orchestrator", metric: "cross_system_calls", title: "Cross-system calls", fmt: int },
];
