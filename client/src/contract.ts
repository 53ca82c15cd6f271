/**
 * The tracking contract the client shares with the `track` function: event
 * and entity types, limits, the event schema and the engagement score. The
 * client imports it from here only, so this file shows everything it relies
 * on.
 *
 * @module
 */
export {
  ENTITY_TYPES,
  type EntityType,
  EVENT_TYPES,
  type EventType,
  USER_SPECIFIC_EVENT_TYPES,
} from "../../supabase/functions/_shared/event_types.ts";
export {
  KEEPALIVE_MAX_BYTES,
  MAX_EVENTS_PER_REQUEST,
  MAX_REQUEST_BYTES,
} from "../../supabase/functions/_shared/limits.ts";
export {
  type FieldError,
  type TrackEvent,
  type TrackResult,
  validateEvent,
} from "../../supabase/functions/_shared/schemas.ts";
export { bounceRate, engagementScore } from "../../supabase/functions/_shared/score.ts";
