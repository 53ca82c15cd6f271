/**
 * Which queued events go out together, and the request body that carries
 * them: oldest first, one principal per request (the credentials decide who
 * the events belong to), within the server's event and byte limits or the
 * browser's keepalive budget.
 *
 * @example
 * ```ts
 * import { encodeBatch, selectBatch } from "./batch.ts";
 * import { DurableQueue } from "./queue.ts";
 * import { MemoryStorage } from "./storage.ts";
 *
 * const queue = new DurableQueue<{ eventId: string }>({
 *   storage: new MemoryStorage(),
 *   key: "synth_interactions:queue:tab-1",
 *   maxSize: 1000,
 * });
 * queue.push({ event: { eventId: "e1" }, userId: null });
 * queue.push({ event: { eventId: "e2" }, userId: "alice" });
 * queue.push({ event: { eventId: "e3" }, userId: null });
 * const batch = selectBatch(queue.entries(), { maxEvents: 500, maxBytes: 64 * 1024 });
 * // e1 and e3: alice's event waits for a request of its own
 * const body = encodeBatch(batch.map((entry) => entry.event), new Date());
 * ```
 *
 * @module
 */
import type { QueuedEvent } from "./queue.ts";

/** The bounds of one request. */
export interface BatchLimits {
  maxEvents: number;
  /** Bytes of the whole request body. */
  maxBytes: number;
  /** Events that must not be picked (already being sent). */
  exclude?: ReadonlySet<string>;
  /**
   * Pick an event larger than `maxBytes` on its own rather than nothing; the
   * server then refuses it and it is reported instead of blocking the queue.
   */
  allowOversized?: boolean;
}

const encoder = new TextEncoder();
const sizes = new WeakMap<object, number>();

/** Bytes of `value` as JSON, remembered per object. */
export function jsonBytes(value: object): number {
  let size = sizes.get(value);
  if (size === undefined) {
    size = encoder.encode(JSON.stringify(value)).length;
    sizes.set(value, size);
  }
  return size;
}

/** Bytes of a batch's body besides its events: `{"events":[` + `],"sentAt":"...Z"}`. */
export const ENVELOPE_BYTES = 50;

/** The request body for `events`, stamped with the time it is sent. */
export function encodeBatch(events: readonly object[], sentAt: Date): string {
  return JSON.stringify({ events, sentAt: sentAt.toISOString() });
}

/**
 * The oldest events not excluded that share the principal of the first of
 * them, as many as fit the limits.
 */
export function selectBatch<E extends { eventId: string }>(
  entries: readonly QueuedEvent<E>[],
  limits: BatchLimits,
): QueuedEvent<E>[] {
  const batch: QueuedEvent<E>[] = [];
  let bytes = ENVELOPE_BYTES;
  let userId: string | null | undefined;
  for (const entry of entries) {
    if (batch.length >= limits.maxEvents) break;
    if (limits.exclude?.has(entry.event.eventId)) continue;
    if (userId === undefined) userId = entry.userId;
    else if (entry.userId !== userId) continue;
    const size = jsonBytes(entry.event) + (batch.length > 0 ? 1 : 0);
    if (bytes + size > limits.maxBytes) {
      if (batch.length > 0) break;
      if (limits.allowOversized) return [entry];
      userId = undefined;
      continue;
    }
    batch.push(entry);
    bytes += size;
  }
  return batch;
}
