/**
 * The guide's `trackInteraction` helpers: one per event type, each taking the
 * entity it is about first, then what only that event type needs, then
 * optional metadata. Values an event type needs are stored in its metadata
 * (`like(..., liked)` sets `metadata.liked`), so they reach analysts too.
 *
 * Each helper answers the new event's id, or null when the event was not
 * tracked (invalid, or the visitor opted out).
 *
 * @example
 * ```ts
 * import { interactionHelpers } from "./helpers.ts";
 * import type { Tracker } from "./tracker.ts";
 *
 * function trackPage(tracker: Tracker) {
 *   const trackInteraction = interactionHelpers(tracker.track);
 *   trackInteraction.like("artist", "artist-456", true, { artist_name: "The Weeknd" });
 *   trackInteraction.search("Taylor Swift concerts", "event", "search-results", {
 *     results_count: 15,
 *   });
 * }
 * ```
 *
 * @module
 */
import type { EntityType, EventType } from "./contract.ts";

/** Free-form details of an interaction, checked against its entity type's fields. */
export type Metadata = Record<string, unknown>;

/** Records one interaction; answers its event id, or null when it was not tracked. */
export type TrackFunction = (
  eventType: EventType,
  entityType: EntityType,
  entityId: string,
  metadata?: Metadata,
) => string | null;

/** One helper per event type, in the guide's order. */
export interface InteractionHelpers {
  /** The user viewed an entity (counts as a page view). */
  view(entityType: EntityType, entityId: string, metadata?: Metadata): string | null;
  /** The user clicked an entity. */
  click(entityType: EntityType, entityId: string, metadata?: Metadata): string | null;
  /** The user liked (or, with `liked` false, unliked) an entity; stored as `metadata.liked`. */
  like(
    entityType: EntityType,
    entityId: string,
    liked?: boolean,
    metadata?: Metadata,
  ): string | null;
  /** The user shared an entity. */
  share(entityType: EntityType, entityId: string, metadata?: Metadata): string | null;
  /** The user marked (or, with `interested` false, withdrew) interest; stored as `metadata.interested`. */
  interest(
    entityType: EntityType,
    entityId: string,
    interested?: boolean,
    metadata?: Metadata,
  ): string | null;
  /** The user searched for `query` (stored as `metadata.query`) among entities of a type. */
  search(
    query: string,
    entityType: EntityType,
    entityId: string,
    metadata?: Metadata,
  ): string | null;
  /**
   * The user reviewed an entity with a `rating` (stored as `metadata.rating`): 1..5 for a
   * `review` entity, as its metadata requires; about another entity, checked against that
   * entity's fields only.
   */
  review(
    entityType: EntityType,
    entityId: string,
    rating: number,
    metadata?: Metadata,
  ): string | null;
  /** The user commented on an entity. */
  comment(entityType: EntityType, entityId: string, metadata?: Metadata): string | null;
  /** The user navigated to a page or view. */
  navigate(entityType: EntityType, entityId: string, metadata?: Metadata): string | null;
  /** The user submitted a form; `success` is stored as `metadata.success`. */
  formSubmit(
    entityType: EntityType,
    entityId: string,
    success?: boolean,
    metadata?: Metadata,
  ): string | null;
  /** The user updated their profile. */
  profileUpdate(entityType: EntityType, entityId: string, metadata?: Metadata): string | null;
  /** The user swiped an entity; `direction` is stored as `metadata.direction`. */
  swipe(
    entityType: EntityType,
    entityId: string,
    direction?: string,
    metadata?: Metadata,
  ): string | null;
  /** The user followed an entity. */
  follow(entityType: EntityType, entityId: string, metadata?: Metadata): string | null;
  /** The user unfollowed an entity. */
  unfollow(entityType: EntityType, entityId: string, metadata?: Metadata): string | null;
  /** The user marked attendance (`attended`, stored as `metadata.attended`). */
  attendance(
    entityType: EntityType,
    entityId: string,
    attended?: boolean,
    metadata?: Metadata,
  ): string | null;
  /** The user clicked a ticket link. */
  ticketClick(entityType: EntityType, entityId: string, metadata?: Metadata): string | null;
  /** One of the user's top streamed songs, artists or albums. */
  streamingTop(entityType: EntityType, entityId: string, metadata?: Metadata): string | null;
  /** One of the user's recently streamed songs, artists or albums. */
  streamingRecent(entityType: EntityType, entityId: string, metadata?: Metadata): string | null;
}

/** The helpers, each recording through `track`. */
export function interactionHelpers(track: TrackFunction): InteractionHelpers {
  const simple = (eventType: EventType) =>
  (
    entityType: EntityType,
    entityId: string,
    metadata?: Metadata,
  ) => track(eventType, entityType, entityId, metadata);
  const withValue = <V>(eventType: EventType, key: string, fallback?: V) =>
  (
    entityType: EntityType,
    entityId: string,
    value: V | undefined = fallback,
    metadata?: Metadata,
  ) => track(eventType, entityType, entityId, withOwnValue(metadata, key, value));
  return {
    view: simple("view"),
    click: simple("click"),
    like: withValue("like", "liked", true),
    share: simple("share"),
    interest: withValue("interest", "interested", true),
    search: (query, entityType, entityId, metadata) =>
      track("search", entityType, entityId, withOwnValue(metadata, "query", query)),
    review: withValue<number>("review", "rating"),
    comment: simple("comment"),
    navigate: simple("navigate"),
    formSubmit: withValue<boolean>("form_submit", "success"),
    profileUpdate: simple("profile_update"),
    swipe: withValue<string>("swipe", "direction"),
    follow: simple("follow"),
    unfollow: simple("unfollow"),
    attendance: withValue("attendance", "attended", true),
    ticketClick: simple("ticket_click"),
    streamingTop: simple("streaming_top"),
    streamingRecent: simple("streaming_recent"),
  };
}

// The event type's own value goes into the metadata as JSON writes it (a
// model's `toJSON` included), over a same-named key. Metadata that JSON would
// not write as an object (an array, a string, null, a Date) is handed on as
// it is, for validation to refuse as it refuses it from `view`: spread, it
// would become an object of its indexes, or nothing.
function withOwnValue(
  metadata: Metadata | undefined,
  key: string,
  value: unknown,
): Metadata | undefined {
  if (value === undefined) return metadata;
  if (metadata === undefined) return { [key]: value };
  const written = asJson(metadata);
  return isJsonObject(written) ? { ...written, [key]: value } : metadata;
}

function asJson(value: unknown): unknown {
  try {
    return JSON.parse(JSON.stringify(value) ?? "null");
  } catch {
    return undefined; // not JSON at all: validation says so
  }
}

function isJsonObject(value: unknown): value is Metadata {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
