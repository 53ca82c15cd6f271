/**
 * When to try again after a failed delivery: exponential backoff with jitter,
 * so that many browsers failing at once do not retry in lockstep, and never
 * sooner than the server's `Retry-After`.
 *
 * @example
 * ```ts
 * import { defaultBackoff, parseRetryAfter, retryDelay } from "./backoff.ts";
 *
 * const delay = retryDelay(2, parseRetryAfter("3", Date.now()), defaultBackoff);
 * // 3000 to 4000: at least the 3 s asked, and within the backoff's bounds
 *
 * function retryLater(retry: () => void) {
 *   setTimeout(retry, delay);
 * }
 * ```
 *
 * @module
 */

/** The shape of the backoff curve. */
export interface BackoffOptions {
  /** The delay's upper bound on the first retry (attempt 0). */
  baseMs: number;
  /** The delay's upper bound on any retry. */
  maxMs: number;
  /** A longer `Retry-After` than this is cut to it. */
  maxRetryAfterMs: number;
}

/** One second, doubling up to a minute; `Retry-After` honoured up to five minutes. */
export const defaultBackoff: BackoffOptions = {
  baseMs: 1_000,
  maxMs: 60_000,
  maxRetryAfterMs: 300_000,
};

/**
 * The delay before retry number `attempt` (0 for the first retry): a random
 * point in the upper half of `min(maxMs, baseMs * 2^attempt)`.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

/**
 * The delay before retry number `attempt` when the server may have said
 * when to come back: at least the `Retry-After` (plus up to a fifth of it, so
 * clients told the same time spread out), at least the backoff delay.
 */
export function retryDelay(
  attempt: number,
  retryAfterMs: number | null,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const backoff = backoffDelay(attempt, options, random);
  if (retryAfterMs === null) return backoff;
  const asked = Math.min(Math.max(0, retryAfterMs), options.maxRetryAfterMs);
  return Math.max(backoff, Math.round(asked * (1 + 0.2 * random())));
}

/**
 * Milliseconds to wait according to a `Retry-After` header: either seconds
 * or an HTTP date. Null when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | null {
  if (value === null || value === undefined) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[a-z]/i.test(text)) return null;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - nowMs);
}
