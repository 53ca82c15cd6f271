/**
 * From validated events to rows for `public.ingest_interactions`: the rules
 * that depend on who is calling and on when the request arrived, applied to
 * each event on its own.
 *
 * - An anonymous caller (the anon key, and the service-role key too: a
 *   server sending on behalf of visitors names no user) must give each event
 *   an `anonymousId` and may not send user-specific event types.
 * - `occurred_at` comes from the server clock, corrected for client clock
 *   skew, and events older than 7 days are refused (see `_shared/time.ts`).
 * - An event without an `eventId` gets a fresh one.
 *
 * @example
 * ```ts
 * import { parseTrackBody } from "../_shared/schemas.ts";
 * import { prepareEvents } from "./prepare.ts";
 *
 * const body = parseTrackBody({
 *   events: [{ eventType: "view", entityType: "event", entityId: "event-1", anonymousId: "v-1" }],
 * });
 * if (body.ok) {
 *   const { rows, rejected } = prepareEvents(body.events, body.sentAt, { kind: "anon" }, new Date());
 * }
 * ```
 *
 * @module
 */
import type { Principal } from "../_shared/auth.ts";
import type { IngestEvent } from "../_shared/db.ts";
import { type EventType, USER_SPECIFIC_EVENT_TYPES } from "../_shared/event_types.ts";
import type { FieldError, RejectedEvent, TrackEvent } from "../_shared/schemas.ts";
import { resolveOccurredAt } from "../_shared/time.ts";

/** The events of one request, split into rows to store and events refused here. */
export interface PreparedEvents {
  rows: IngestEvent[];
  rejected: RejectedEvent[];
}

const userSpecific: ReadonlySet<EventType> = new Set(USER_SPECIFIC_EVENT_TYPES);

function principalErrors(principal: Principal, event: TrackEvent): FieldError[] {
  if (principal.kind === "user") return [];
  const errors: FieldError[] = [];
  if (event.anonymousId === undefined) {
    errors.push({ path: "anonymousId", message: "Required when no user is signed in" });
  }
  if (userSpecific.has(event.eventType)) {
    errors.push({
      path: "eventType",
      message: `"${event.eventType}" events need a signed-in user`,
    });
  }
  return errors;
}

/** Applies the caller's and the clock's rules to each validated event of a request. */
export function prepareEvents(
  events: ReadonlyArray<{ index: number; event: TrackEvent }>,
  sentAt: string | undefined,
  principal: Principal,
  receivedAt: Date,
): PreparedEvents {
  const rows: IngestEvent[] = [];
  const rejected: RejectedEvent[] = [];
  const received = receivedAt.toISOString();
  for (const { index, event } of events) {
    const errors = principalErrors(principal, event);
    const time = resolveOccurredAt({ timestamp: event.timestamp, sentAt, receivedAt });
    if (!time.ok) errors.push(time.error);
    if (errors.length > 0 || !time.ok) {
      rejected.push({ index, ...(event.eventId && { eventId: event.eventId }), errors });
      continue;
    }
    rows.push({
      index,
      event_id: event.eventId ?? crypto.randomUUID(),
      ...(event.eventId === undefined && { event_id_generated: true }),
      session_id: event.sessionId ?? null,
      anonymous_id: event.anonymousId ?? null,
      event_type: event.eventType,
      entity_type: event.entityType,
      entity_id: event.entityId,
      metadata: event.metadata ?? {},
      occurred_at: time.occurredAt,
      client_timestamp: time.clientTimestamp,
      received_at: received,
    });
  }
  return { rows, rejected };
}
