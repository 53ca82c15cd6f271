/**
 * The vocabulary of interactions: what a user did (`EVENT_TYPES`) and what
 * they did it to (`ENTITY_TYPES`). Each list is defined once, here; the
 * database's CHECK constraints list the same values, and a test compares the
 * two so they cannot drift apart.
 *
 * @example
 * ```ts
 * import { EVENT_TYPES, USER_SPECIFIC_EVENT_TYPES } from "./event_types.ts";
 * EVENT_TYPES.includes("view"); // true
 * USER_SPECIFIC_EVENT_TYPES.includes("like"); // true: needs a signed-in user
 * ```
 *
 * @module
 */

/** The 18 things a user can do, as the interaction tracking guide lists them. */
export const EVENT_TYPES = [
  "view",
  "click",
  "like",
  "share",
  "interest",
  "search",
  "review",
  "comment",
  "navigate",
  "form_submit",
  "profile_update",
  "swipe",
  "follow",
  "unfollow",
  "attendance",
  "ticket_click",
  "streaming_top",
  "streaming_recent",
] as const;

/** The 12 kinds of thing an interaction can be about. */
export const ENTITY_TYPES = [
  "event",
  "artist",
  "venue",
  "review",
  "user",
  "profile",
  "view",
  "form",
  "ticket_link",
  "song",
  "album",
  "playlist",
] as const;

/** One of {@link EVENT_TYPES}. */
export type EventType = typeof EVENT_TYPES[number];

/** One of {@link ENTITY_TYPES}. */
export type EntityType = typeof ENTITY_TYPES[number];

/**
 * Event types that only make sense for a known person (a preference, a piece
 * of content or a change to their own profile), so anonymous callers may not
 * send them.
 */
export const USER_SPECIFIC_EVENT_TYPES = [
  "like",
  "interest",
  "review",
  "comment",
  "profile_update",
  "follow",
  "unfollow",
  "attendance",
  "streaming_top",
  "streaming_recent",
] as const satisfies readonly EventType[];
