/**
 * The limits of the tracking contract, shared by the `track` function and the
 * browser client so both refuse the same things.
 *
 * @example
 * ```ts
 * import { MAX_EVENTS_PER_REQUEST } from "./limits.ts";
 * const queue = Array.from({ length: 1_234 }, (_, i) => ({ entityId: `event-${i}` }));
 * const requests = Math.ceil(queue.length / MAX_EVENTS_PER_REQUEST); // 3
 * ```
 *
 * @module
 */

/** Events in one request; more is answered 413. */
export const MAX_EVENTS_PER_REQUEST = 500;

/** Bytes of one request body; more is answered 413 without reading further. */
export const MAX_REQUEST_BYTES = 512 * 1024;

/** Bytes of one event's `metadata`, serialized as JSON (UTF-8). */
export const MAX_METADATA_BYTES = 16 * 1024;

/**
 * Levels of nesting inside one event's `metadata` (the metadata object itself
 * is level 1). Deeper values are refused: they carry no analytic meaning and
 * deep recursion is costly for every reader, Postgres included.
 */
export const MAX_METADATA_DEPTH = 32;

/** Events that happened longer ago than this are refused: 7 days. */
export const MAX_EVENT_AGE_MS = 7 * 24 * 60 * 60 * 1000;

/** Bytes of a request sent with `keepalive` while the page unloads (the browser's own cap). */
export const KEEPALIVE_MAX_BYTES = 64 * 1024;

/** Characters of an `entityId`, as the database's CHECK constraint allows. */
export const MAX_ENTITY_ID_LENGTH = 255;

/** Characters of an `anonymousId`. */
export const MAX_ANONYMOUS_ID_LENGTH = 64;
