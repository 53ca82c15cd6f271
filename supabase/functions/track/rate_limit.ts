/**
 * The per-principal rate limit of the `track` function.
 *
 * A principal may make `requestsPerMinute` requests and send
 * `eventsPerMinute` events per minute, a minute's worth of either in one
 * burst. Two checks enforce it, both the same generic cell rate algorithm (a
 * token bucket kept as one timestamp: when the allowance is whole again):
 *
 * - {@link LocalRateLimiter}, in this process's memory, charges every
 *   authenticated request before its body is read, so a flood from one
 *   principal is shed without reading, parsing or calling the database. It has
 *   the whole limit's size, so a principal whose requests all reach the
 *   database is refused here only once it has made more requests through
 *   this one instance within the window than the limit allows in total. It
 *   counts every request it lets through, though, also those refused later:
 *   a malformed body (400, 413), which the shared limit never sees, and a
 *   request the shared limit refuses, which costs nothing there. A
 *   principal sending those is refused here sooner than by the shared limit
 *   alone: they cost this process a read and a parse each all the same.
 * - `public.consume_rate_limit` in Postgres charges the requests and events
 *   of every instance, in the same statement that stores the events (see
 *   `_shared/db.ts`): the limit holds however many instances serve the
 *   function, at no extra round trip.
 *
 * The principal is `user:<id>` for a signed-in user and `ip:<address>` for
 * an anonymous or service-role caller, the address being the first entry of
 * `X-Forwarded-For` (which the platform's edge sets) or else the connection's
 * own, written one way whatever its spelling, and for IPv6 its /64 block.
 *
 * Environment: `TRACK_RATE_LIMIT=off` turns both checks off (for a benchmark
 * from one address); `TRACK_RATE_LIMIT_REQUESTS_PER_MINUTE` (default 120)
 * and `TRACK_RATE_LIMIT_EVENTS_PER_MINUTE` (default 6000) set the limit.
 *
 * @example
 * ```ts
 * import { LocalRateLimiter, principalKey, rateLimitsFromEnv } from "./rate_limit.ts";
 *
 * const request = new Request("http://localhost/functions/v1/track", { method: "POST" });
 * const limits = rateLimitsFromEnv(Deno.env);
 * if (limits) {
 *   const local = new LocalRateLimiter(limits.requestsPerMinute);
 *   const key = principalKey({ kind: "anon" }, request.headers, "203.0.113.7"); // "ip:203.0.113.7"
 *   const decision = local.take(key);
 *   if (!decision.ok) console.log(`retry in ${decision.retryAfterSeconds} s`);
 * }
 * ```
 *
 * @module
 */
import type { Principal } from "../_shared/auth.ts";

/** Whether a request may proceed, or how long its principal should wait. */
export type RateLimitDecision = { ok: true } | { ok: false; retryAfterSeconds: number };

/** A principal's allowance per minute. */
export interface RateLimits {
  requestsPerMinute: number;
  eventsPerMinute: number;
}

const DEFAULT_REQUESTS_PER_MINUTE = 120;
const DEFAULT_EVENTS_PER_MINUTE = 6000;
/** The largest value Postgres's `integer` holds, where the limits are passed. */
const MAX_LIMIT = 2_147_483_647;

function positiveInteger(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === "") return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > MAX_LIMIT) {
    throw new Error(`${name} must be a whole number from 1 to ${MAX_LIMIT}, not "${value}"`);
  }
  return parsed;
}

/**
 * The limits from the function's environment, or null when
 * `TRACK_RATE_LIMIT=off`. Throws on a value that is not a limit, so that a
 * typo is not silently a different limit.
 */
export function rateLimitsFromEnv(
  env: { get(name: string): string | undefined },
): RateLimits | null {
  const switched = (env.get("TRACK_RATE_LIMIT") ?? "on").trim().toLowerCase();
  if (switched === "off") return null;
  if (switched !== "on" && switched !== "") {
    throw new Error(`TRACK_RATE_LIMIT must be "on" or "off", not "${switched}"`);
  }
  return {
    requestsPerMinute: positiveInteger(
      "TRACK_RATE_LIMIT_REQUESTS_PER_MINUTE",
      env.get("TRACK_RATE_LIMIT_REQUESTS_PER_MINUTE"),
      DEFAULT_REQUESTS_PER_MINUTE,
    ),
    eventsPerMinute: positiveInteger(
      "TRACK_RATE_LIMIT_EVENTS_PER_MINUTE",
      env.get("TRACK_RATE_LIMIT_EVENTS_PER_MINUTE"),
      DEFAULT_EVENTS_PER_MINUTE,
    ),
  };
}

/**
 * The rate-limit key of a principal: `user:<id>` for a signed-in user, else
 * the key of the client's address ({@link addressKey}) from the first
 * `X-Forwarded-For` entry, else from `remoteAddress` (the connection's peer),
 * else `ip:unknown`.
 */
export function principalKey(
  principal: Principal,
  headers: Headers,
  remoteAddress?: string,
): string {
  if (principal.kind === "user") return `user:${principal.userId}`;
  const forwarded = headers.get("x-forwarded-for")?.split(",", 1)[0];
  for (const candidate of [forwarded, remoteAddress]) {
    const key = candidate === undefined ? null : addressKey(candidate);
    if (key) return key;
  }
  return "ip:unknown";
}

const ipv4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?::\d{1,5})?$/;
const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/;

/**
 * The rate-limit key of a client address, or null for text that is not one.
 *
 * One form per address, however it is written: an IPv4 address is
 * `ip:<a.b.c.d>` without leading zeros; an IPv6 address is keyed by its /64,
 * `ip:<first four groups>::/64` (the block one subscriber is given, so that
 * the addresses of one block share one allowance), and one that embeds an
 * IPv4 address (`::ffff:a.b.c.d`) is that IPv4 address. A port, brackets and
 * an IPv6 zone (`%eth0`) are dropped.
 *
 * @example
 * ```ts
 * import { addressKey } from "./rate_limit.ts";
 *
 * addressKey("203.0.113.7:443");          // "ip:203.0.113.7"
 * addressKey("2001:0DB8:0:0:1::7");       // "ip:2001:db8:0:0::/64"
 * addressKey("[::ffff:203.0.113.7]:443"); // "ip:203.0.113.7"
 * addressKey("not an address");           // null
 * ```
 */
export function addressKey(text: string): string | null {
  const value = text.trim();
  const v4 = ipv4.exec(value);
  if (v4) {
    const octets = v4.slice(1).map(Number);
    return octets.every((octet) => octet <= 255) ? `ip:${octets.join(".")}` : null;
  }
  const groups = ipv6Groups((bracketed.exec(value)?.[1] ?? value).replace(/%[\w.-]{1,32}$/, ""));
  if (!groups) return null;
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    return `ip:${groups[6] >> 8}.${groups[6] & 255}.${groups[7] >> 8}.${groups[7] & 255}`;
  }
  return `ip:${groups.slice(0, 4).map((group) => group.toString(16)).join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, or null if it is not one. */
function ipv6Groups(text: string): number[] | null {
  if (text.length > 45 || !/^[0-9a-f:.]+$/i.test(text)) return null;
  // The URL parser checks the address and writes it in hex groups only (an
  // IPv4 tail too), compressing the longest run of zeros into "::".
  let host: string;
  try {
    host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
  const [head, tail] = host.split("::");
  const parse = (part: string | undefined) =>
    part ? part.split(":").map((group) => parseInt(group, 16)) : [];
  const front = parse(head);
  const back = parse(tail);
  const zeros = tail === undefined ? [] : Array(8 - front.length - back.length).fill(0);
  return [...front, ...zeros, ...back];
}

/** Microseconds in the period every allowance is counted over. */
const PERIOD_US = 60_000_000;

/** Options of {@link LocalRateLimiter}. */
export interface LocalRateLimiterOptions {
  /** The clock, in milliseconds; `performance.now` unless a test drives it. */
  now?: () => number;
  /**
   * Principals remembered at most. Beyond it, those whose allowance is whole
   * again are forgotten, then the least recently charged: forgetting one
   * only gives it a whole allowance, so it can make the check more lenient,
   * never stricter.
   */
  maxKeys?: number;
}

/**
 * Requests per minute per principal, in this process's memory, with the
 * same rule and the same rounding as `public.consume_rate_limit`: a
 * request costs 60 s / `requestsPerMinute` (in whole microseconds, rounded
 * down) and is allowed while the principal's debt stays within a minute. A
 * refused request costs nothing.
 */
export class LocalRateLimiter {
  readonly requestsPerMinute: number;
  readonly #costUs: number;
  readonly #now: () => number;
  readonly #maxKeys: number;
  /** When each principal's allowance is whole again (µs), least recently charged first. */
  readonly #recoveredAt = new Map<string, number>();

  constructor(requestsPerMinute: number, options: LocalRateLimiterOptions = {}) {
    this.requestsPerMinute = requestsPerMinute;
    this.#costUs = Math.floor(PERIOD_US / requestsPerMinute);
    this.#now = options.now ?? (() => performance.now());
    this.#maxKeys = options.maxKeys ?? 10_000;
  }

  /** Principals remembered now. */
  get size(): number {
    return this.#recoveredAt.size;
  }

  /** Charges one request to `key` if its allowance permits, and says whether it did. */
  take(key: string): RateLimitDecision {
    // Whole microseconds keep the sums exact, as in Postgres.
    const now = Math.round(this.#now() * 1000);
    const recoveredAt = Math.max(this.#recoveredAt.get(key) ?? now, now) + this.#costUs;
    const overshoot = recoveredAt - now - PERIOD_US;
    if (overshoot > 0) {
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(overshoot / 1_000_000)) };
    }
    this.#recoveredAt.delete(key);
    this.#recoveredAt.set(key, recoveredAt);
    if (this.#recoveredAt.size > this.#maxKeys) this.#forget(now);
    return { ok: true };
  }

  /** Brings the map down to half its bound, so forgetting costs O(1) per request over time. */
  #forget(now: number): void {
    for (const [key, recoveredAt] of this.#recoveredAt) {
      if (recoveredAt <= now) this.#recoveredAt.delete(key);
    }
    const target = Math.floor(this.#maxKeys / 2);
    for (const key of this.#recoveredAt.keys()) {
      if (this.#recoveredAt.size <= target) break;
      this.#recoveredAt.delete(key);
    }
  }
}
