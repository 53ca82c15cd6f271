/**
 * The per-principal rate limit of the `track` function: the handler asks
 * before reading a request's body and answers 429 with `Retry-After` when
 * refused. No limit is enforced yet: every principal is allowed.
 *
 * @example
 * ```ts
 * const decision = checkRateLimit({ kind: "user", userId });
 * if (!decision.ok) console.log(`retry in ${decision.retryAfterSeconds} s`);
 * ```
 *
 * @module
 */
import type { Principal } from "../_shared/auth.ts";

/** Whether a request may proceed, or how long its principal should wait. */
export type RateLimitDecision = { ok: true } | { ok: false; retryAfterSeconds: number };

/** Decides whether `principal` may send one more request now. */
export function checkRateLimit(_principal: Principal): RateLimitDecision {
  return { ok: true };
}
