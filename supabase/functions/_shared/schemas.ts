/**
 * The event contract: what the browser client may send and what the `track`
 * function accepts. These zod schemas are its single source of truth; the
 * client validates with them before queueing, the server again on arrival.
 *
 * Written with `zod/mini` so the browser bundle stays small. Import it as a
 * namespace (`import * as z`): a bundler can then drop the parts not used.
 * Error messages are zod's English ones (full `zod` loads the same locale),
 * plus explicit messages for the rules zod has no words for.
 *
 * @example
 * ```ts
 * import { parseTrackBody, validateEvent } from "./schemas.ts";
 * const review = {
 *   eventType: "review",
 *   entityType: "review",
 *   entityId: "review-123",
 *   metadata: { rating: "five" },
 * };
 * validateEvent(review);
 * // { ok: false, errors: [{ path: "metadata.rating",
 * //   message: "Invalid input: expected number, received string" }] }
 * const view = { eventType: "view", entityType: "event", entityId: "event-1", anonymousId: "v-1" };
 * const body = parseTrackBody({ events: [view, review], sentAt: new Date().toISOString() });
 * // ok: true, count: 2, events: the view (index 0), rejected: the review (index 1)
 * ```
 *
 * @module
 */
import * as z from "zod/mini";
import { en } from "zod/locales";
import { ENTITY_TYPES, type EntityType, EVENT_TYPES } from "./event_types.ts";
import {
  MAX_ANONYMOUS_ID_LENGTH,
  MAX_ENTITY_ID_LENGTH,
  MAX_EVENTS_PER_REQUEST,
  MAX_METADATA_BYTES,
  MAX_METADATA_DEPTH,
} from "./limits.ts";

// zod/mini ships without a locale; an app that configured its own keeps it.
if (!z.config().localeError) z.config(en());

/** One problem with one field of an event: `path` is dotted, like `metadata.rating`. */
export type FieldError = z.infer<typeof fieldErrorSchema>;
const fieldErrorSchema = z.object({ path: z.string(), message: z.string() });

/** The outcome of a request the `track` function processed, as its 200 and 400 bodies carry it. */
export type TrackResult = z.infer<typeof trackResultSchema>;
const trackResultSchema = z.object({
  accepted: z.number(),
  duplicates: z.number(),
  rejected: z.array(z.object({
    index: z.number(),
    eventId: z.optional(z.string()),
    errors: z.array(fieldErrorSchema),
  })),
});

/** One refused event of a request: its position in the batch, its `eventId` if it had a valid one. */
export type RejectedEvent = TrackResult["rejected"][number];

/** Errors listed per event at most; a value broken in many places is not worth more. */
const MAX_ERRORS_PER_EVENT = 10;

/** A required field's own message when it is missing, zod's otherwise. */
const requiredField = {
  error: (issue: { input?: unknown }) => issue.input === undefined ? "Required" : undefined,
};

const isoDateTime = z.iso.datetime({
  offset: true,
  error: "must be an ISO-8601 date-time with a time zone, like 2024-06-15T20:00:00Z",
});

// --- metadata, by entity type -------------------------------------------------

const text = z.optional(z.string());
const names = z.optional(z.array(z.string()));
const count = z.optional(z.int().check(z.gte(0)));
const amount = z.optional(z.number().check(z.gte(0)));
const flag = z.optional(z.boolean());
const requiredName = z.string(requiredField).check(z.minLength(1));
const calendarDate = z.optional(
  z.union([z.iso.date(), z.iso.datetime({ offset: true, local: true })], {
    error: "must be an ISO-8601 date or date-time, like 2024-06-15 or 2024-06-15T20:00:00Z",
  }),
);
const releaseDate = z.optional(
  z.union([z.string().check(z.regex(/^\d{4}(-(0[1-9]|1[0-2]))?$/)), z.iso.date()], {
    error: "must be an ISO-8601 year, year-month or date, like 2019, 2019-03 or 2019-03-15",
  }),
);
const between = (min: number, max: number) => z.number().check(z.gte(min), z.lte(max));

/**
 * The guide's metadata fields per entity type. Every listed field is
 * type-checked; `artist_name` (artist), `venue_name` (venue) and `rating`
 * (review) are required; keys the guide does not list are kept as sent.
 * These schemas only check: {@link validateEvent} stores the metadata it was
 * given, so plain `z.object`s serve (they skip the pass over unlisted keys
 * that a loose object makes to copy them).
 */
const metadataByEntityType = {
  event: z.object({
    artist_name: text,
    venue_name: text,
    event_date: calendarDate,
    genres: names,
    city: text,
    state: text,
    country: text,
    capacity: count,
    ticket_price: amount,
    currency: text,
  }),
  artist: z.object({
    artist_name: requiredName,
    genres: names,
    popularity_score: z.optional(between(0, 100)),
    spotify_id: text,
    apple_music_id: text,
    follower_count: count,
    verified: flag,
  }),
  venue: z.object({
    venue_name: requiredName,
    venue_city: text,
    venue_state: text,
    venue_country: text,
    capacity: count,
    venue_type: text,
    coordinates: z.optional(z.object({ lat: between(-90, 90), lng: between(-180, 180) })),
  }),
  review: z.object({
    rating: z.number(requiredField).check(z.gte(1), z.lte(5)),
    review_text: text,
    likes_count: count,
    comments_count: count,
    is_helpful: flag,
    sentiment: text,
    language: text,
  }),
  user: z.object({
    user_name: text,
    location: text,
    preferences: z.optional(
      z.union([z.record(z.string(), z.unknown()), z.array(z.unknown())], {
        error: "must be an object or an array",
      }),
    ),
  }),
  profile: z.object({ profile_type: text, verification_status: text }),
  view: z.object({ page_name: text, duration: amount, scroll_depth: amount }),
  form: z.object({ form_type: text, success: flag, field_count: count }),
  ticket_link: z.object({
    price: amount,
    currency: text,
    vendor: text,
    availability: text,
    fees: amount,
    url: text,
  }),
  song: z.object({ song_name: text, artist_names: names, duration_ms: count }),
  album: z.object({ album_name: text, artist_name: text, release_date: releaseDate }),
  playlist: z.object({ playlist_name: text, track_count: count, genres: names }),
} satisfies Record<EntityType, z.ZodMiniType>;

/** Metadata of a `search` event, whatever it searched for. */
const searchMetadata = z.object({ query: text, results_count: count, filters: names });

/**
 * A search is about a list of results, not one entity: it is checked against
 * the entity type's field types, but the entity's own required fields (an
 * artist's name, a review's rating) are not asked of it.
 */
const searchMetadataByEntityType = Object.fromEntries(
  ENTITY_TYPES.map((type) => [type, z.partial(metadataByEntityType[type]) as z.ZodMiniType]),
) as Record<EntityType, z.ZodMiniType>;

const encoder = new TextEncoder();

/** A plain object (not an array, a Date or a class instance), from any realm. */
function isJsonObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === null || Object.getPrototypeOf(prototype) === null;
}

/** Whether `value` serializes to at most `max` bytes of UTF-8 JSON. */
function jsonBytesAtMost(value: unknown, max: number): boolean {
  const json = JSON.stringify(value);
  // A UTF-16 unit takes one to three bytes: encode only when that cannot tell.
  if (json.length > max) return false;
  if (json.length * 3 <= max) return true;
  return encoder.encode(json).length <= max;
}

const metadataObject = z.custom<Record<string, unknown>>(isJsonObject, {
  error: "must be a JSON object",
}).check(
  z.refine(
    (metadata) => jsonBytesAtMost(metadata, MAX_METADATA_BYTES),
    `must be at most ${MAX_METADATA_BYTES} bytes as JSON`,
  ),
);

// --- integers a float cannot hold ----------------------------------------------

/**
 * What stands in for an integer a 64-bit float cannot hold (see
 * {@link parseJson}): a string no accepted event can hold, since `\u0000` is
 * refused everywhere, that validation reports as this integer's problem.
 */
const UNSAFE_INTEGER = "\u0000unsafe integer:";

/** Whether a parsed JSON value holds a number beyond 2^53 in magnitude, at any depth. */
function holdsBigNumber(root: unknown): boolean {
  const stack = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === "number") {
      if (Math.abs(value) > Number.MAX_SAFE_INTEGER && Number.isFinite(value)) return true;
    } else if (Array.isArray(value)) {
      // One by one: spread, an array of 200,000 numbers would overflow the call.
      for (const item of value) stack.push(item);
    } else if (typeof value === "object" && value !== null) {
      for (const key in value) stack.push((value as Record<string, unknown>)[key]);
    }
  }
  return false;
}

/** Whether the quote at `at` is escaped: an odd number of backslashes before it. */
function escapedAt(text: string, at: number): boolean {
  let backslashes = 0;
  while (text.charCodeAt(at - 1 - backslashes) === 92) backslashes++;
  return backslashes % 2 === 1;
}

/** `text`, a JSON number, as sign, significant digits and exponent: `-12e3`. */
function canonicalNumber(text: string): string {
  const [, sign, whole, fraction = "", exponent = "0"] =
    /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text)!;
  const digits = (whole + fraction).replace(/^0+/, "");
  if (digits === "") return "0";
  const significant = digits.replace(/0+$/, "");
  const power = Number(exponent) - fraction.length + (digits.length - significant.length);
  return `${sign}${significant}e${power}`;
}

/**
 * Whether the integer literal `written` stands for a value the float it
 * parses to does not hold: neither that float's exact value (2^60 written in
 * full) nor the shortest way to write it, which is how JavaScript and most
 * JSON writers write a float (`3899683423474922500`).
 */
function roundedInteger(written: string): boolean {
  const value = Number(written);
  return BigInt(written) !== BigInt(value) &&
    canonicalNumber(written) !== canonicalNumber(String(value));
}

/**
 * Where JSON `text` writes an integer literal (digits, maybe a zero
 * fraction) that the float it parses to does not hold (see
 * {@link roundedInteger}): `[start, end)` of each, strings left out.
 */
function unsafeIntegerLiterals(text: string): Array<[number, number]> {
  const found: Array<[number, number]> = [];
  let at = 0;
  while (at < text.length) {
    const quote = text.indexOf('"', at);
    const outside = quote === -1 ? text.length : quote;
    for (let start = at; start < outside; start++) {
      const c = text.charCodeAt(start);
      if (c !== 45 && (c < 48 || c > 57)) continue;
      let end = start + 1;
      while (end < outside && /[\d.eE+-]/.test(text[end])) end++;
      const integer = /^(-?\d{16,})(?:\.0*)?$/.exec(text.slice(start, end));
      if (integer && roundedInteger(integer[1])) found.push([start, end]);
      start = end;
    }
    if (quote === -1) break;
    let close = quote;
    do close = text.indexOf('"', close + 1); while (close !== -1 && escapedAt(text, close));
    if (close === -1) break;
    at = close + 1;
  }
  return found;
}

/**
 * Parses a request body like `JSON.parse`, with one difference: an integer
 * a 64-bit float cannot hold (past 2^53, like a 19-digit id) is not rounded
 * into another number but kept as a marker that {@link validateEvent}
 * refuses at its field. Other numbers are read as JSON.parse reads them.
 * Only a body holding a number past 2^53 is looked at twice. Throws a
 * SyntaxError for text that is not JSON.
 */
export function parseJson(text: string): unknown {
  const parsed = JSON.parse(text);
  if (!holdsBigNumber(parsed)) return parsed;
  const unsafe = unsafeIntegerLiterals(text);
  if (unsafe.length === 0) return parsed;
  let marked = "";
  let from = 0;
  for (const [start, end] of unsafe) {
    marked += text.slice(from, start) + JSON.stringify(UNSAFE_INTEGER + text.slice(start, end));
    from = end;
  }
  return JSON.parse(marked + text.slice(from));
}

/** The problem of a value {@link parseJson} marked, or null for any other value. */
function unsafeIntegerProblem(value: string): string | null {
  if (!value.startsWith(UNSAFE_INTEGER)) return null;
  const written = value.slice(UNSAFE_INTEGER.length);
  const shown = written.length > 40 ? `${written.slice(0, 39)}…` : written;
  return `is an integer beyond 2^53, which a 64-bit float cannot hold: send ${shown} as a string`;
}

// --- strings Postgres can store ------------------------------------------------

/** A problem found by {@link unstorableParts}, at a path of raw keys. */
interface Unstorable {
  path: PropertyKey[];
  message: string;
}

/**
 * Walks a JSON value without recursion (it may be nested thousands of levels)
 * and reports every string, key or value, that Postgres cannot store: one
 * holding `\u0000` or a lone UTF-16 surrogate, and every number JSON parsing
 * turned into Infinity (`1e400`), which would be stored as null (and every
 * bigint, which JSON cannot hold); an integer {@link parseJson} marked is
 * reported as such. It also
 * reports nesting deeper than `maxDepth` levels. Reports stop at
 * {@link MAX_ERRORS_PER_EVENT}.
 */
function unstorableParts(root: unknown, maxDepth: number): Unstorable[] {
  const found: Unstorable[] = [];
  const stack: Array<{ value: unknown; path: PropertyKey[]; depth: number }> = [
    { value: root, path: [], depth: 0 },
  ];
  while (stack.length > 0 && found.length < MAX_ERRORS_PER_EVENT) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value === "string") {
      if (!storableString(value)) {
        found.push({
          path,
          message: unsafeIntegerProblem(value) ??
            "must not contain \\u0000 or an unpaired surrogate",
        });
      }
      continue;
    }
    if (typeof value === "number") {
      if (!Number.isFinite(value)) found.push({ path, message: "must be a finite number" });
      continue;
    }
    if (typeof value === "bigint") {
      found.push({ path, message: "must be a JSON number, not a bigint" });
      continue;
    }
    if (typeof value !== "object" || value === null) continue;
    if (depth + 1 > maxDepth) {
      found.push({ path, message: `is nested more than ${maxDepth - 1} levels deep` });
      continue;
    }
    const isArray = Array.isArray(value);
    for (const [key, child] of Object.entries(value)) {
      const childPath = [...path, isArray ? Number(key) : key];
      if (!isArray && !storableString(key)) {
        found.push({
          path: childPath,
          message: "key must not contain \\u0000 or an unpaired surrogate",
        });
      }
      stack.push({ value: child, path: childPath, depth: depth + 1 });
    }
  }
  return found;
}

/**
 * A dotted path safe to show and to store: the characters Postgres refuses
 * are replaced and each segment is cut to 64 characters.
 */
function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path
    .map((segment) => {
      // Cut first: a cut may split a surrogate pair, which toWellFormed mends.
      const s = String(segment);
      const cut = s.length > 64 ? `${s.slice(0, 63)}…` : s;
      return cut.toWellFormed().replaceAll("\u0000", "\uFFFD");
    })
    .join(".");
}

/** Whether Postgres can store a string: no `\u0000`, no lone surrogate. */
function storableString(s: string): boolean {
  return !s.includes("\u0000") && s.isWellFormed();
}

/**
 * The quick yes of {@link unstorableParts}, for the common case: whether
 * every string and number in `value` is storable and it nests at most
 * `levels` levels. The recursion is bounded by `levels`.
 */
function allStorable(value: unknown, levels: number): boolean {
  switch (typeof value) {
    case "string":
      return storableString(value);
    case "number":
      return Number.isFinite(value);
    case "bigint":
      return false;
    case "object":
      break;
    default:
      return true;
  }
  if (value === null) return true;
  if (levels === 0) return false;
  if (Array.isArray(value)) {
    for (const child of value) if (!allStorable(child, levels - 1)) return false;
    return true;
  }
  for (const key of Object.keys(value)) {
    const child = (value as Record<string, unknown>)[key];
    if (!storableString(key) || !allStorable(child, levels - 1)) return false;
  }
  return true;
}

/** Every string storable, and no deeper than the metadata may go (the event is level 1). */
const storable = z.unknown().check(
  z.superRefine((value, context) => {
    if (allStorable(value, MAX_METADATA_DEPTH + 1)) return;
    for (const { path, message } of unstorableParts(value, MAX_METADATA_DEPTH + 1)) {
      context.addIssue({ code: "custom", input: value, message, path });
    }
  }),
);

// --- the event ----------------------------------------------------------------

/** Unicode's control characters (category Cc), as a plain range: faster than `\p{Cc}`. */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const controlCharacter = /[\u0000-\u001F\u007F-\u009F]/;

/**
 * A UUID as Postgres's `uuid` takes it: 32 hex digits in the 8-4-4-4-12 form,
 * whatever its version and variant bits. `z.uuid()` would accept only RFC
 * 9562's versions, and refuse ids another sender's generator made that the
 * column stores well.
 */
const anyUuid = z.guid({
  error: (issue) => issue.code === "invalid_format" ? "Invalid UUID" : undefined,
});

const eventFields = z.object({
  eventId: z.optional(anyUuid),
  sessionId: z.optional(anyUuid),
  anonymousId: z.optional(z.string().check(z.minLength(1), z.maxLength(MAX_ANONYMOUS_ID_LENGTH))),
  eventType: z.enum(EVENT_TYPES, requiredField),
  entityType: z.enum(ENTITY_TYPES, requiredField),
  entityId: z.string(requiredField).check(
    z.minLength(1),
    z.maxLength(MAX_ENTITY_ID_LENGTH),
    z.refine((id) => !controlCharacter.test(id), "must not contain control characters"),
  ),
  metadata: z.optional(metadataObject),
  timestamp: z.optional(isoDateTime),
});

/** An object as `z.object` takes one: anything but null and arrays (see {@link isJsonObject}). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Checks `metadata` against its entity type's fields, and a search's own fields. */
const metadataRules = z.superRefine((event: z.output<typeof eventFields>, context) => {
  const { entityType, eventType } = event;
  // No metadata is an empty one: an artist still needs its name.
  const metadata = event.metadata ?? {};
  if (!isJsonObject(metadata)) return;
  const schemas = eventType === "search"
    ? [searchMetadataByEntityType[entityType], searchMetadata]
    : [metadataByEntityType[entityType]];
  for (const schema of schemas) {
    const result = schema.safeParse(metadata);
    if (result.success) continue;
    for (const issue of result.error.issues) {
      context.addIssue({
        code: "custom",
        input: metadata,
        message: issue.message,
        path: ["metadata", ...issue.path],
      });
    }
  }
}, {
  // Also when another field failed, as long as the entity type is known.
  when: ({ value }) =>
    isPlainObject(value) && (ENTITY_TYPES as readonly unknown[]).includes(value.entityType),
});

/**
 * One interaction event. Strings Postgres cannot store are refused first
 * (anywhere in the event, keys included); then every field is checked, and
 * `metadata` by entity type (and by event type for `search`). Fields the
 * contract does not name, like a `user_id`, are dropped.
 */
export const eventSchema = z.pipe(storable, eventFields.check(metadataRules));

/** One validated event, as the client sends it and the server stores it. */
export type TrackEvent = z.infer<typeof eventSchema>;

/**
 * The envelope of a batch. Its events are checked one by one with
 * {@link validateEvent} (see {@link parseTrackBody}), so that one bad event
 * never hides the good ones.
 */
export const batchSchema = z.object({
  events: z.array(z.unknown(), { error: "must be an array of events" }).check(
    z.minLength(1, "must hold at least one event"),
    z.maxLength(MAX_EVENTS_PER_REQUEST, `must hold at most ${MAX_EVENTS_PER_REQUEST} events`),
  ),
  sentAt: z.optional(isoDateTime),
});

/** A batch as the client sends it. */
export type TrackBatch = { events: TrackEvent[]; sentAt?: string };

function toFieldErrors(issues: ReadonlyArray<z.core.$ZodIssue>): FieldError[] {
  return issues.slice(0, MAX_ERRORS_PER_EVENT).map((issue) => ({
    path: formatPath(issue.path),
    message: issue.message,
  }));
}

/** Validates one event: the event, or every problem found (at most 10). */
export function validateEvent(
  input: unknown,
): { ok: true; event: TrackEvent } | { ok: false; errors: FieldError[] } {
  const result = eventSchema.safeParse(input);
  if (result.success) {
    // Metadata is stored as sent. zod's copy would lose a key named
    // `__proto__` (assigning it sets the copy's prototype instead), and the
    // schemas only check metadata, they never change it.
    const metadata = (input as { metadata?: unknown }).metadata;
    if (isJsonObject(metadata)) result.data.metadata = metadata;
    return { ok: true, event: result.data };
  }
  return { ok: false, errors: toFieldErrors(result.error.issues) };
}

/** A request body that is not an event or a batch of them. */
export interface BodyError {
  code: "invalid_body" | "too_many_events";
  message: string;
}

/** A request body taken apart: the valid events with their positions, and the refused ones. */
export type ParsedBody =
  | {
    ok: true;
    sentAt?: string;
    count: number;
    events: Array<{ index: number; event: TrackEvent }>;
    rejected: RejectedEvent[];
  }
  | { ok: false; error: BodyError };

function clientEventId(input: unknown): string | undefined {
  const id = isPlainObject(input) ? input.eventId : undefined;
  return typeof id === "string" && anyUuid.safeParse(id).success ? id : undefined;
}

/**
 * Tells a single event from a batch (`{ events: [...], sentAt? }`) and
 * validates each event on its own. A body that is neither, or a batch with
 * more than {@link MAX_EVENTS_PER_REQUEST} events, is an error of the whole
 * request; a bad event is only that event's problem.
 */
export function parseTrackBody(json: unknown): ParsedBody {
  if (!isPlainObject(json)) {
    return {
      ok: false,
      error: {
        code: "invalid_body",
        message: 'the body must be an event object or a batch {"events": [...]}',
      },
    };
  }
  let inputs: unknown[] = [json];
  let sentAt: string | undefined;
  if ("events" in json) {
    if (Array.isArray(json.events) && json.events.length > MAX_EVENTS_PER_REQUEST) {
      return {
        ok: false,
        error: {
          code: "too_many_events",
          message:
            `a batch holds at most ${MAX_EVENTS_PER_REQUEST} events; this one has ${json.events.length}`,
        },
      };
    }
    const batch = batchSchema.safeParse(json);
    if (!batch.success) {
      const [first] = toFieldErrors(batch.error.issues);
      return {
        ok: false,
        error: { code: "invalid_body", message: `${first.path}: ${first.message}` },
      };
    }
    inputs = batch.data.events;
    sentAt = batch.data.sentAt;
  }
  const events: Array<{ index: number; event: TrackEvent }> = [];
  const rejected: RejectedEvent[] = [];
  inputs.forEach((input, index) => {
    const result = validateEvent(input);
    if (result.ok) {
      events.push({ index, event: result.event });
    } else {
      const eventId = clientEventId(input);
      rejected.push({ index, ...(eventId && { eventId }), errors: result.errors });
    }
  });
  return { ok: true, ...(sentAt && { sentAt }), count: inputs.length, events, rejected };
}
