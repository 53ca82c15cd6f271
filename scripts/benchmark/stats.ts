/**
 * Latency percentiles, the least-squares slope used for memory growth, and
 * the least value per time window.
 *
 * @example
 * ```ts
 * import { latencySummary, slope, windowMinima } from "./stats.ts";
 * latencySummary([5, 1, 3, 2, 4]).p50; // 3
 * slope([{ x: 0, y: 1 }, { x: 1, y: 3 }]); // 2
 * windowMinima([{ t: 0, y: 3 }, { t: 5, y: 2 }, { t: 12, y: 4 }], 10); // [{ t: 0, seconds: 10, min: 2 }, { t: 10, seconds: 10, min: 4 }]
 * ```
 *
 * @module
 */

/** p50, p95, p99 and the maximum of request latencies, in milliseconds. */
export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Summarizes request latencies (milliseconds) with nearest-rank percentiles; NaN when empty. */
export function latencySummary(values: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) =>
    sorted.length === 0 ? NaN : sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1];
  return {
    p50: at(50),
    p95: at(95),
    p99: at(99),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
  };
}

/** The least-squares slope of y against x; 0 with fewer than two points. */
export function slope(points: ReadonlyArray<{ x: number; y: number }>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/**
 * The least `y` in each `seconds`-long window of `t` (seconds), in time
 * order, each window named by its start; windows without points are left out.
 */
export function windowMinima(
  points: ReadonlyArray<{ t: number; y: number }>,
  seconds: number,
): Array<{ t: number; seconds: number; min: number }> {
  const minima = new Map<number, number>();
  for (const { t, y } of points) {
    const start = Math.floor(t / seconds) * seconds;
    minima.set(start, Math.min(minima.get(start) ?? Infinity, y));
  }
  return [...minima.entries()].sort(([a], [b]) => a - b).map(([t, min]) => ({ t, seconds, min }));
}
