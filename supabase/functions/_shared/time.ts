/**
 * When an event happened, as the server records it. Client clocks are often
 * wrong, so when a batch says when it was sent (`sentAt`), the event's age on
 * the client clock (`sentAt - timestamp`) is measured back from the server's
 * own `receivedAt`. An event is never dated after it was received, and one
 * more than {@link MAX_EVENT_AGE_MS} old is refused.
 *
 * @example
 * ```ts
 * import { resolveOccurredAt } from "./time.ts";
 * const receivedAt = new Date("2025-01-01T12:00:00Z");
 * // the client clock is an hour fast; the event happened 10 s before sending
 * resolveOccurredAt({
 *   timestamp: "2025-01-01T12:59:50Z",
 *   sentAt: "2025-01-01T13:00:00Z",
 *   receivedAt,
 * }); // { ok: true, occurredAt: "2025-01-01T11:59:50.000Z", clientTimestamp: "2025-01-01T12:59:50.000Z" }
 * ```
 *
 * @module
 */
import { MAX_EVENT_AGE_MS } from "./limits.ts";
import type { FieldError } from "./schemas.ts";

/** What the server knows about an event's time. */
export interface TimeInput {
  /** The event's own ISO-8601 `timestamp`, on the client clock. */
  timestamp?: string;
  /** The batch's ISO-8601 `sentAt`, on the same client clock. */
  sentAt?: string;
  /** When the server received the request, on the server clock. */
  receivedAt: Date;
}

/**
 * The event's time on the server clock, and the client's own timestamp, if
 * any: ISO-8601 in UTC, to the microsecond a timestamp was sent with (a Date
 * alone would cut it to the millisecond). Written in UTC, not in the offset
 * sent: Postgres refuses offsets past 15 hours, which ISO-8601 allows.
 */
export type ResolvedTime =
  | { ok: true; occurredAt: string; clientTimestamp: string | null }
  | { ok: false; error: FieldError };

/**
 * The storable client times: Postgres has no year 0, and reads the `+010000-`
 * that JavaScript writes for year 10000 as a time zone, refusing the batch.
 */
const EARLIEST_MS = Date.parse("0001-01-01T00:00:00Z");
const LATEST_MS = Date.parse("9999-12-31T23:59:59.999Z");

/** Resolves `occurred_at` as SPEC's "Time" section says, or explains why the event is refused. */
export function resolveOccurredAt({ timestamp, sentAt, receivedAt }: TimeInput): ResolvedTime {
  const received = receivedAt.getTime();
  const happened = timestamp === undefined ? undefined : Date.parse(timestamp);
  const sent = sentAt === undefined ? undefined : Date.parse(sentAt);
  if (happened !== undefined && !(happened >= EARLIEST_MS && happened <= LATEST_MS)) {
    return {
      ok: false,
      error: { path: "timestamp", message: "must be a valid time in the years 1 to 9999" },
    };
  }
  if (sent !== undefined && !Number.isFinite(sent)) {
    return { ok: false, error: { path: "sentAt", message: "must be a valid time" } };
  }
  let occurred = received;
  if (happened !== undefined) {
    occurred = sent !== undefined ? received - (sent - happened) : happened;
  }
  occurred = Math.min(occurred, received);
  if (received - occurred > MAX_EVENT_AGE_MS) {
    return {
      ok: false,
      error: { path: "timestamp", message: "the event happened more than 7 days ago" },
    };
  }
  const micro = timestamp === undefined ? "" : subMillisecond(timestamp);
  // Dated by its timestamp alone, the event's time is that timestamp, to the
  // microsecond; one the server computed or clamped is to the millisecond.
  const asSent = happened !== undefined && sent === undefined && happened < received;
  return {
    ok: true,
    occurredAt: isoUtc(occurred, asSent ? micro : ""),
    clientTimestamp: happened === undefined ? null : isoUtc(happened, micro),
  };
}

/** The digits of a time's fraction past the millisecond, to the microsecond ("456" of ".123456"). */
function subMillisecond(timestamp: string): string {
  const fraction = /\.(\d+)/.exec(timestamp)?.[1] ?? "";
  return fraction.length > 3 ? fraction.slice(3, 6).padEnd(3, "0") : "";
}

/** `ms` as ISO-8601 in UTC, with `micro` digits after its milliseconds. */
function isoUtc(ms: number, micro: string): string {
  const text = new Date(ms).toISOString();
  return micro === "" ? text : `${text.slice(0, -1)}${micro}Z`;
}
