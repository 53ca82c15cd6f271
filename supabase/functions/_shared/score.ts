/**
 * Session quality, computed exactly as the database's `engagement_score`
 * function and the `session_metrics` view compute it, so the browser shows
 * the numbers an analyst later reads. Both sides are tested against the same
 * vectors in `engagement_score_vectors.json`.
 *
 * @example
 * ```ts
 * import { bounceRate, engagementScore } from "./score.ts";
 * engagementScore(5, 20 * 60_000); // 90
 * bounceRate(1); // 100
 * ```
 *
 * @module
 */

const MINUTE_MS = 60_000;

/**
 * The 0..100 engagement score of a session: 10 points per interaction up to
 * 50, plus 20 at 5 minutes, 20 more at 15 minutes and 10 more at 30 minutes;
 * a session shorter than a minute scores half. No interactions score 0.
 */
export function engagementScore(interactionCount: number, durationMs: number): number {
  if (!(interactionCount > 0)) return 0;
  let score = Math.min(10 * interactionCount, 50);
  if (durationMs >= 5 * MINUTE_MS) score += 20;
  if (durationMs >= 15 * MINUTE_MS) score += 20;
  if (durationMs >= 30 * MINUTE_MS) score += 10;
  if (durationMs < MINUTE_MS) score *= 0.5;
  return Math.min(Math.max(Math.round(score), 0), 100);
}

/** A session's bounce rate in percent: 100 when it saw at most one page, else 0. */
export function bounceRate(pageViews: number): number {
  return pageViews <= 1 ? 100 : 0;
}
