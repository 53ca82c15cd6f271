/**
 * The hostile-input corpus of the `track` function: requests that are broken,
 * mistyped, oversized, deeply nested, badly encoded or malicious, each with
 * the answer the contract (SPEC, "HTTP") requires of it. `corpus.json` beside
 * this file is its committed output; `../hostile_test.ts` sends every entry
 * through the functions gateway and checks that the file is current.
 *
 * Bodies too large to commit are described, not spelled out: a body is JSON,
 * text, base64 bytes (for invalid UTF-8), or a list of parts where a part may
 * be a string repeated many times. In JSON and text, `{{uuid}}` becomes a
 * fresh UUID at each occurrence and `{{uuid:name}}` the same fresh UUID for
 * every occurrence of that name in one entry, so that each run stores new
 * rows.
 *
 * Regenerate the committed file after changing this one:
 *
 * ```sh
 * deno run supabase/functions/track/hostile/corpus.ts > supabase/functions/track/hostile/corpus.json
 * deno fmt supabase/functions/track/hostile/corpus.json
 * ```
 *
 * @module
 */
import { USER_SPECIFIC_EVENT_TYPES } from "../../_shared/event_types.ts";

/** A piece of a body: text, text repeated `times` times, or raw bytes. */
export type Part = string | { repeat: string; times: number } | { base64: string };

/** What a corpus request sends as its body. */
export type CorpusBody =
  | { json: unknown }
  | { text: string }
  | { base64: string }
  | { parts: Part[] };

/**
 * Whose token the request carries: the anon key, the service-role key, a
 * signed-in user's access token, none, or a literal `Authorization` value.
 */
export type Auth = "anon" | "service" | "user" | "none" | { authorization: string };

/** A refused event of a processed request (or a run of them): its index and the paths of its errors. */
export interface ExpectedRejection {
  index: number;
  /** The events from `index` through this index are all refused alike. */
  through?: number;
  /** The error paths, in any order; absent when only their number is fixed. */
  paths?: string[];
  /** How many errors, when the paths are too many to list (the server lists 10 at most). */
  errorCount?: number;
}

/** The answer a corpus request must get. */
export type Expectation =
  | {
    /** 200 when at least one event was stored or was a duplicate, else 400. */
    status: 200 | 400;
    accepted: number;
    duplicates: number;
    rejected: ExpectedRejection[];
    /** Every accepted event is stored exactly as sent (its strings, keys and metadata). */
    stored?: true;
  }
  | { status: 400 | 405 | 413; error: string }
  | { status: 401; unauthorized: true }
  | { status: 204; preflight: true };

/** One hostile request and the answer it must get. */
export interface CorpusEntry {
  id: string;
  category: Category;
  description: string;
  /** POST when absent. */
  method?: string;
  /** The anon key when absent. */
  auth?: Auth;
  /** Headers to add; a null value leaves the header out (`Content-Type` is `application/json` otherwise). */
  headers?: Record<string, string | null>;
  /** No body when absent. */
  body?: CorpusBody;
  /** Send the body as a chunked stream, with no `Content-Length`. */
  stream?: true;
  expect: Expectation;
  /**
   * The entry shows a known bug: the expectation is the contract's, the
   * current answer differs. The test of its category leaves it out and a
   * separate, ignored test runs it.
   */
  bug?: string;
}

/** The committed corpus file. */
export interface Corpus {
  description: string;
  entries: CorpusEntry[];
}

/** The categories, in the order the tests run them. */
export const CATEGORIES = [
  "broken_json",
  "envelope",
  "wrong_type",
  "metadata_type",
  "huge_numbers",
  "deep_nesting",
  "oversized",
  "huge_arrays",
  "nul",
  "lone_surrogates",
  "invalid_utf8",
  "sql_injection",
  "strange_strings",
  "prototype_keys",
  "content_types",
  "methods",
  "auth",
  "time",
  "principal",
] as const;

/** A corpus category. */
export type Category = typeof CATEGORIES[number];

// --- materializing a body --------------------------------------------------------------------

const placeholder = /\{\{uuid(?::([A-Za-z0-9_-]+))?\}\}/g;

function fillPlaceholders(text: string, fresh: (name?: string) => string): string {
  return text.replace(placeholder, (_, name?: string) => fresh(name));
}

function decodeBase64(base64: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

/**
 * The bytes of a corpus body, with its placeholders filled by `fresh`
 * (called with the placeholder's name, or none for an anonymous one).
 */
export function bodyBytes(
  body: CorpusBody,
  fresh: (name?: string) => string,
): Uint8Array<ArrayBuffer> {
  const encoder = new TextEncoder();
  if ("json" in body) return encoder.encode(fillPlaceholders(JSON.stringify(body.json), fresh));
  if ("text" in body) return encoder.encode(fillPlaceholders(body.text, fresh));
  if ("base64" in body) return decodeBase64(body.base64);
  const chunks = body.parts.map((part) => {
    if (typeof part === "string") return encoder.encode(fillPlaceholders(part, fresh));
    if ("base64" in part) return decodeBase64(part.base64);
    return encoder.encode(fillPlaceholders(part.repeat.repeat(part.times), fresh));
  });
  const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

// --- building the corpus ---------------------------------------------------------------------

type Json = Record<string, unknown>;

const MAX_REQUEST_BYTES = 512 * 1024;
const MAX_METADATA_BYTES = 16 * 1024;
/** The error path of nesting one level too deep: an event's node at depth 33. */
const TOO_DEEP = 33;
const TEN_MB = 10 * 1024 * 1024;

const base64 = (bytes: number[]) => btoa(String.fromCharCode(...bytes));
const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));

/** A valid anonymous view of an event, with a fresh eventId. */
function event(overrides: Json = {}): Json {
  return {
    eventId: "{{uuid}}",
    eventType: "view",
    entityType: "event",
    entityId: "event-123",
    anonymousId: "hostile-visitor",
    ...overrides,
  };
}

const batch = (...events: unknown[]): Json => ({ events });

/** The metadata each entity type needs to be valid. */
const validMetadata: Record<string, Json> = {
  event: { artist_name: "Taylor Swift" },
  artist: { artist_name: "The Weeknd" },
  venue: { venue_name: "Madison Square Garden" },
  review: { rating: 4 },
  user: {},
  profile: {},
  view: {},
  form: {},
  ticket_link: {},
  song: {},
  album: {},
  playlist: {},
};

const ok = (accepted = 1, extra: { stored?: true } = {}): Expectation => ({
  status: 200,
  accepted,
  duplicates: 0,
  rejected: [],
  ...extra,
});
/** Every event refused: the one at `index` (0) for `paths`. */
const refused = (paths: string[], index = 0): Expectation => ({
  status: 400,
  accepted: 0,
  duplicates: 0,
  rejected: [{ index, paths }],
});
/** A batch of a good event and a bad one: the good one stored, the bad one (index 1) refused. */
const partly = (paths: string[], extra: { stored?: true } = {}): Expectation => ({
  status: 200,
  accepted: 1,
  duplicates: 0,
  rejected: [{ index: 1, paths }],
  ...extra,
});
const error = (status: 400 | 405 | 413, code: string): Expectation => ({ status, error: code });

class CorpusBuilder {
  readonly entries: CorpusEntry[] = [];
  private readonly counts = new Map<Category, number>();

  add(
    category: Category,
    description: string,
    request: Omit<CorpusEntry, "id" | "category" | "description" | "expect">,
    expect: Expectation,
  ): void {
    const n = (this.counts.get(category) ?? 0) + 1;
    this.counts.set(category, n);
    const id = `${category.replaceAll("_", "-")}-${String(n).padStart(3, "0")}`;
    this.entries.push({ id, category, description, ...request, expect });
  }

  /** A JSON body, sent alone (all refused: 400) or after a good event (partly refused: 200). */
  typed(
    category: Category,
    description: string,
    bad: Json,
    paths: string[],
    alone: boolean,
  ): void {
    if (alone) this.add(category, description, { body: { json: bad } }, refused(paths));
    else {
      this.add(
        category,
        `${description}, after a good event`,
        { body: { json: batch(event(), bad) } },
        partly(paths),
      );
    }
  }
}

function brokenJson(c: CorpusBuilder): void {
  const texts: Array<[string, string]> = [
    ["an empty body", ""],
    ["only whitespace", " \r\n\t "],
    ["an opening brace", "{"],
    ["a closing brace", "}"],
    ["an unfinished member", '{"eventType":'],
    ["an unterminated string", '{"eventType":"view'],
    ["a missing colon", '{"eventType" "view"}'],
    ["a trailing comma", '{"eventType":"view","entityType":"event","entityId":"e",}'],
    ["single quotes", "{'eventType':'view','entityType':'event','entityId':'e'}"],
    ["unquoted keys", '{eventType:"view",entityType:"event",entityId:"e"}'],
    ["a comment", '// an event\n{"eventType":"view","entityType":"event","entityId":"e"}'],
    ["two values in a row", '{"eventType":"view"}{"eventType":"click"}'],
    ["an invalid escape", '{"eventType":"view","entityType":"event","entityId":"\\x41"}'],
    ["a short unicode escape", '{"eventType":"view","entityType":"event","entityId":"\\u12"}'],
    ["a raw newline in a string", '{"eventType":"view","entityType":"event","entityId":"a\nb"}'],
    ["a raw tab in a string", '{"eventType":"view","entityType":"event","entityId":"a\tb"}'],
    ["a number with a leading zero", '{"metadata":{"capacity":01}}'],
    ["a number with a leading dot", '{"metadata":{"capacity":.5}}'],
    ["a number with a plus sign", '{"metadata":{"capacity":+1}}'],
    ["a hexadecimal number", '{"metadata":{"capacity":0x10}}'],
    ["NaN", '{"metadata":{"capacity":NaN}}'],
    ["Infinity", '{"metadata":{"capacity":Infinity}}'],
    ["undefined", "undefined"],
    ["a truncated literal", "tru"],
    ["XML", '<?xml version="1.0"?><event type="view"/>'],
    ["a JavaScript object", "({eventType: 'view'})"],
    ["an unclosed array of events", '{"events":[{"eventType":"view"}'],
    ["a stray closing bracket", '{"events":[]]}'],
  ];
  for (const [what, text] of texts) {
    c.add("broken_json", `${what} is not JSON`, { body: { text } }, error(400, "invalid_json"));
  }
  c.add(
    "broken_json",
    "no body at all is not JSON",
    {},
    error(400, "invalid_json"),
  );
  c.add(
    "broken_json",
    "a raw NUL byte between tokens is not JSON",
    { body: { parts: ['{"eventType":"view",', { base64: base64([0]) }, '"entityType":"event"}'] } },
    error(400, "invalid_json"),
  );
}

function envelope(c: CorpusBuilder): void {
  const notEvents: Array<[string, unknown]> = [
    ["null", null],
    ["true", true],
    ["a number", 42],
    ["a string", "view"],
    ["an empty array", []],
    ["an array of events, not a batch", [event()]],
  ];
  for (const [what, json] of notEvents) {
    c.add(
      "envelope",
      `${what} is not an event or a batch`,
      { body: { json } },
      error(400, "invalid_body"),
    );
  }
  const badBatches: Array<[string, unknown]> = [
    ["events null", { events: null }],
    ["events an object", { events: { 0: event() } }],
    ["events a string", { events: "view" }],
    ["events empty", { events: [] }],
    ["sentAt a number", { events: [event()], sentAt: 1718481600000 }],
    ["sentAt null", { events: [event()], sentAt: null }],
    ["sentAt not a time", { events: [event()], sentAt: "yesterday" }],
    ["sentAt without a time zone", { events: [event()], sentAt: "2024-06-15T20:00:00" }],
  ];
  for (const [what, json] of badBatches) {
    c.add("envelope", `a batch with ${what} is refused whole`, { body: { json } }, {
      status: 400,
      error: "invalid_body",
    });
  }
  const required = ["entityId", "entityType", "eventType"];
  c.add("envelope", "an empty object misses every required field", { body: { json: {} } }, {
    ...refused(required),
  });
  c.add(
    "envelope",
    "a batch of one empty object",
    { body: { json: batch({}) } },
    refused(required),
  );
  c.add(
    "envelope",
    "a batch of values that are not objects: each refused",
    { body: { json: batch(null, 1, "view", true, []) } },
    {
      status: 400,
      accepted: 0,
      duplicates: 0,
      rejected: [0, 1, 2, 3, 4].map((index) => ({ index, paths: [""] })),
    },
  );
  c.add(
    "envelope",
    "the singular key 'event' is no batch: the body is an event without fields",
    { body: { json: { event: event() } } },
    refused(required),
  );
  c.add(
    "envelope",
    "a duplicated 'events' key: the last one counts",
    {
      body: {
        text: `{"events":[{}],"events":[${JSON.stringify(event())}]}`,
      },
    },
    ok(),
  );
  c.add(
    "envelope",
    "a duplicated 'eventType' key: the last one counts",
    {
      body: {
        text:
          '{"eventId":"{{uuid}}","eventType":"view","eventType":"teleport","entityType":"event","entityId":"e","anonymousId":"v"}',
      },
    },
    refused(["eventType"]),
  );
  c.add(
    "envelope",
    "the same eventId twice in one batch: stored once",
    { body: { json: batch(event({ eventId: "{{uuid:a}}" }), event({ eventId: "{{uuid:a}}" })) } },
    { status: 200, accepted: 1, duplicates: 1, rejected: [] },
  );
  c.add(
    "envelope",
    "unknown batch fields are ignored",
    { body: { json: { events: [event()], user_id: "{{uuid}}", admin: true } } },
    ok(),
  );
  c.add(
    "envelope",
    "500 events of which 499 are empty objects: one stored",
    {
      body: {
        parts: [
          '{"events":[',
          JSON.stringify(event()),
          { repeat: ",{}", times: 499 },
          "]}",
        ],
      },
    },
    {
      status: 200,
      accepted: 1,
      duplicates: 0,
      rejected: [{ index: 1, through: 499, paths: required }],
    },
  );
  c.add(
    "envelope",
    "500 empty objects: every one refused",
    { body: { parts: ['{"events":[{}', { repeat: ",{}", times: 499 }, "]}"] } },
    {
      status: 400,
      accepted: 0,
      duplicates: 0,
      rejected: [{ index: 0, through: 499, paths: required }],
    },
  );
  c.add(
    "envelope",
    "501 events are one too many",
    {
      body: {
        parts: ['{"events":[', JSON.stringify(event()), {
          repeat: `,${JSON.stringify(event())}`,
          times: 500,
        }, "]}"],
      },
    },
    error(413, "too_many_events"),
  );
}

function wrongType(c: CorpusBuilder): void {
  const fields: Array<[string, unknown[]]> = [
    ["eventId", [
      null,
      true,
      42,
      "",
      "not-a-uuid",
      "123e4567-e89b-12d3-a456-42661417400",
      "{123e4567-e89b-12d3-a456-426614174000}",
      "123e4567e89b12d3a456426614174000",
      [],
      {},
    ]],
    ["sessionId", [
      null,
      false,
      7,
      "",
      "session-1",
      "123e4567-e89b-12d3-a456-4266141740000",
      ["{{uuid}}"],
      { id: "{{uuid}}" },
    ]],
    ["anonymousId", [null, true, 42, "", "v".repeat(65), ["visitor"], { id: "visitor" }]],
    ["eventType", [null, true, 0, "", "VIEW", " view", "teleport", "page_view", ["view"], {}]],
    ["entityType", [null, 1, "", "Event", "concert", "events", ["event"], {}]],
    ["entityId", [
      null,
      true,
      123,
      1.5,
      "",
      "e".repeat(256),
      "tab\there",
      "line\nbreak",
      "carriage\rreturn",
      "escape\u001b[31m",
      "delete\u007f",
      "next line\u0085",
      ["event-123"],
      {},
    ]],
    ["metadata", [null, true, 1, "string", "{}", [], [{ artist_name: "x" }]]],
    ["timestamp", [
      null,
      0,
      1718481600000,
      "",
      "yesterday",
      "2024-06-15",
      "2024-06-15T20:00:00",
      "2024-06-15 20:00:00Z",
      "2024-13-01T00:00:00Z",
      "2024-02-30T00:00:00Z",
      "2016-12-31T23:59:60Z",
      [],
      {},
    ]],
  ];
  let n = 0;
  for (const [field, values] of fields) {
    for (const value of values) {
      const shown = JSON.stringify(value);
      c.typed(
        "wrong_type",
        `${field} = ${shown.length > 40 ? `${shown.slice(0, 40)}…` : shown}`,
        event({ [field]: value }),
        [field],
        n++ % 2 === 0,
      );
    }
  }
  c.typed(
    "wrong_type",
    "every field of the wrong type at once",
    {
      eventId: 1,
      sessionId: 2,
      anonymousId: 3,
      eventType: 4,
      entityType: 5,
      entityId: 6,
      metadata: 7,
      timestamp: 8,
    },
    [
      "eventId",
      "sessionId",
      "anonymousId",
      "eventType",
      "entityType",
      "entityId",
      "metadata",
      "timestamp",
    ],
    true,
  );
}

function metadataType(c: CorpusBuilder): void {
  // [entity type, field, wrong value, error paths below metadata (the field when absent)]
  const cases: Array<[string, string, unknown, string[]?]> = [
    ["event", "artist_name", 42],
    ["event", "venue_name", ["Madison Square Garden"]],
    ["event", "event_date", "15/06/2024"],
    ["event", "event_date", 1718481600000],
    ["event", "genres", "pop"],
    ["event", "genres", [1], ["genres.0"]],
    ["event", "city", { name: "New York" }],
    ["event", "state", false],
    ["event", "country", null],
    ["event", "capacity", -1],
    ["event", "capacity", 1.5],
    ["event", "capacity", "20000"],
    ["event", "ticket_price", -0.01],
    ["event", "ticket_price", "99.50"],
    ["event", "currency", 840],
    ["artist", "artist_name", ""],
    ["artist", "artist_name", null],
    ["artist", "genres", [null, "pop"], ["genres.0"]],
    ["artist", "popularity_score", 101],
    ["artist", "popularity_score", -1],
    ["artist", "popularity_score", "50"],
    ["artist", "spotify_id", 123],
    ["artist", "apple_music_id", true],
    ["artist", "follower_count", -5],
    ["artist", "follower_count", 2.5],
    ["artist", "verified", "true"],
    ["artist", "verified", 1],
    ["venue", "venue_name", ""],
    ["venue", "venue_name", 7],
    ["venue", "venue_city", ["New York"]],
    ["venue", "venue_state", 1],
    ["venue", "venue_country", {}],
    ["venue", "capacity", "large"],
    ["venue", "venue_type", false],
    ["venue", "coordinates", "40.75,-73.99"],
    ["venue", "coordinates", { lat: 91, lng: 0 }, ["coordinates.lat"]],
    ["venue", "coordinates", { lat: 0, lng: -181 }, ["coordinates.lng"]],
    ["venue", "coordinates", { lat: "40.75" }, ["coordinates.lat", "coordinates.lng"]],
    ["review", "rating", 0],
    ["review", "rating", 6],
    ["review", "rating", "5"],
    ["review", "rating", null],
    ["review", "review_text", 5],
    ["review", "likes_count", -1],
    ["review", "comments_count", 0.5],
    ["review", "is_helpful", "yes"],
    ["review", "sentiment", 0.9],
    ["review", "language", ["en"]],
    ["user", "user_name", 1],
    ["user", "location", { city: "Paris" }],
    ["user", "preferences", "jazz"],
    ["user", "preferences", null],
    ["profile", "profile_type", 1],
    ["profile", "verification_status", true],
    ["view", "page_name", ["home"]],
    ["view", "duration", -5],
    ["view", "duration", "5s"],
    ["view", "scroll_depth", "50%"],
    ["form", "form_type", 2],
    ["form", "success", "false"],
    ["form", "field_count", 3.5],
    ["ticket_link", "price", -10],
    ["ticket_link", "currency", ["USD"]],
    ["ticket_link", "vendor", 0],
    ["ticket_link", "availability", false],
    ["ticket_link", "fees", "2.50"],
    ["ticket_link", "url", { href: "https://tickets.example" }],
    ["song", "song_name", 1],
    ["song", "artist_names", "The Weeknd"],
    ["song", "duration_ms", 200000.5],
    ["album", "album_name", []],
    ["album", "artist_name", 12],
    ["album", "release_date", "2019-13"],
    ["album", "release_date", "March 2019"],
    ["album", "release_date", 2019],
    ["playlist", "playlist_name", null],
    ["playlist", "track_count", -3],
    ["playlist", "genres", [["rock"]], ["genres.0"]],
  ];
  cases.forEach(([entityType, field, value, paths], i) => {
    const shown = JSON.stringify(value);
    c.typed(
      "metadata_type",
      `${entityType}: metadata.${field} = ${shown.length > 30 ? `${shown.slice(0, 30)}…` : shown}`,
      event({ entityType, metadata: { ...validMetadata[entityType], [field]: value } }),
      (paths ?? [field]).map((path) => `metadata.${path}`),
      i % 2 === 0,
    );
  });
  const missing: Array<[string, string]> = [
    ["artist", "artist_name"],
    ["venue", "venue_name"],
    ["review", "rating"],
  ];
  for (const [entityType, field] of missing) {
    c.typed(
      "metadata_type",
      `${entityType} without metadata.${field}`,
      event({ entityType, metadata: {} }),
      [`metadata.${field}`],
      true,
    );
    c.typed(
      "metadata_type",
      `${entityType} without any metadata`,
      event({ entityType, metadata: undefined }),
      [`metadata.${field}`],
      false,
    );
  }
  const search: Array<[string, Json, string[]]> = [
    ["a search query that is a number", { query: 42 }, ["metadata.query"]],
    ["a search results_count that is negative", { results_count: -1 }, ["metadata.results_count"]],
    ["search filters that are a string", { filters: "rock" }, ["metadata.filters"]],
    ["a search on artists whose artist_name is a number", { artist_name: 1 }, [
      "metadata.artist_name",
    ]],
  ];
  search.forEach(([what, metadata, paths], i) => {
    c.typed(
      "metadata_type",
      what,
      event({ eventType: "search", entityType: "artist", metadata }),
      paths,
      i % 2 === 0,
    );
  });
  c.add(
    "metadata_type",
    "a search on artists needs no artist_name: stored",
    {
      body: {
        json: event({
          eventType: "search",
          entityType: "artist",
          metadata: { query: "weeknd", results_count: 3 },
        }),
      },
    },
    ok(1, { stored: true }),
  );
}

function hugeNumbers(c: CorpusBuilder): void {
  const cases: Array<[string, Json, string[]]> = [
    ["capacity 1e400 (Infinity)", { capacity: "@1e400" }, ["metadata.capacity"]],
    ["capacity 2^53 + 1", { capacity: "@9007199254740993" }, ["metadata.capacity"]],
    ["capacity 1e20", { capacity: "@1e20" }, ["metadata.capacity"]],
    ["ticket_price -1e400", { ticket_price: "@-1e400" }, ["metadata.ticket_price"]],
    ["ticket_price 1e400", { ticket_price: "@1e400" }, ["metadata.ticket_price"]],
  ];
  for (const [what, metadata, paths] of cases) {
    c.add(
      "huge_numbers",
      `metadata.${what} is refused`,
      { body: { text: eventText({ metadata }) } },
      refused(paths),
    );
  }
  const artistCases: Array<[string, string, string[]]> = [
    ["popularity_score 1e400", '"popularity_score":1e400', ["metadata.popularity_score"]],
    ["follower_count 1e400", '"follower_count":1e400', ["metadata.follower_count"]],
  ];
  for (const [what, member, paths] of artistCases) {
    c.add(
      "huge_numbers",
      `artist metadata.${what} is refused`,
      {
        body: {
          text:
            `{"eventId":"{{uuid}}","eventType":"view","entityType":"artist","entityId":"a","anonymousId":"v","metadata":{"artist_name":"x",${member}}}`,
        },
      },
      refused(paths),
    );
  }
  c.add(
    "huge_numbers",
    "a review rating of 1e-400 (0) is below 1",
    {
      body: {
        text:
          '{"eventId":"{{uuid}}","eventType":"view","entityType":"review","entityId":"r","anonymousId":"v","metadata":{"rating":1e-400}}',
      },
    },
    refused(["metadata.rating"]),
  );
  c.add(
    "huge_numbers",
    "entityId as a 400-digit number is not a string",
    { body: { text: eventText({ entityId: `@${"9".repeat(400)}` }) } },
    refused(["entityId"]),
  );
  c.add(
    "huge_numbers",
    "timestamp as 1e400 is not a time",
    { body: { text: eventText({ timestamp: "@1e400" }) } },
    refused(["timestamp"]),
  );
  c.add(
    "huge_numbers",
    "a finite ticket_price of 1.7976931348623157e308 is stored",
    { body: { text: eventText({ metadata: { ticket_price: "@1.7976931348623157e308" } }) } },
    ok(1, { stored: true }),
  );
  c.add(
    "huge_numbers",
    "1e400 in a batch field the contract does not name is ignored",
    { body: { text: `{"events":[${JSON.stringify(event())}],"extra":1e400}` } },
    ok(),
  );
  c.add(
    "huge_numbers",
    "a number with 100 000 digits in a batch field the contract does not name is ignored",
    {
      body: {
        parts: [
          `{"events":[${JSON.stringify(event())}],"extra":1`,
          { repeat: "0", times: 100_000 },
          "}",
        ],
      },
    },
    ok(),
  );
  c.add(
    "huge_numbers",
    "1e400 under a metadata key the guide does not list is refused (it would be stored as null)",
    { body: { text: eventText({ metadata: { extra: "@1e400" } }) } },
    refused(["metadata.extra"]),
  );
  c.add(
    "huge_numbers",
    "-1e400 inside a metadata array the guide does not list is refused",
    { body: { text: eventText({ metadata: { extra: ["@-1e400"] } }) } },
    refused(["metadata.extra.0"]),
  );
  c.add(
    "huge_numbers",
    "1e400 in an event field the contract does not name is refused too",
    { body: { text: eventText({ extra: "@1e400" }) } },
    refused(["extra"]),
  );
}

/**
 * An event as JSON text, where a string value starting with `@` is written
 * raw (a number JSON.stringify cannot produce, like 1e400).
 */
function eventText(overrides: Json): string {
  return JSON.stringify(event(overrides)).replace(/"@([^"]*)"/g, "$1");
}

function deepNesting(c: CorpusBuilder): void {
  const tooDeep = (prefix: string[], segment: string) =>
    [...prefix, ...Array(TOO_DEEP - prefix.length).fill(segment)].join(".");
  const nestedArrays = (levels: number): Part[] => [
    { repeat: "[", times: levels },
    { repeat: "]", times: levels },
  ];
  const nestedObjects = (levels: number, key = "a") => ({
    parts: [{ repeat: `{"${key}":`, times: levels }, "1", { repeat: "}", times: levels }],
  });
  const withMetadata = (metadata: Part[]): Part[] => [
    '{"eventId":"{{uuid}}","eventType":"view","entityType":"event","entityId":"e","anonymousId":"v","metadata":',
    ...metadata,
    "}",
  ];
  c.add(
    "deep_nesting",
    "metadata nested 5 000 objects deep",
    { body: { parts: withMetadata(nestedObjects(5000).parts) } },
    refused([tooDeep(["metadata"], "a")]),
  );
  c.add(
    "deep_nesting",
    "metadata holding arrays nested 5 000 deep",
    { body: { parts: withMetadata(['{"x":', ...nestedArrays(5000), "}"]) } },
    refused([tooDeep(["metadata", "x"], "0")]),
  );
  c.add(
    "deep_nesting",
    "metadata holding arrays nested 200 000 deep",
    { body: { parts: withMetadata(['{"x":', ...nestedArrays(200_000), "}"]) } },
    refused([tooDeep(["metadata", "x"], "0")]),
  );
  c.add(
    "deep_nesting",
    "metadata nested 32 levels (the limit) is stored",
    {
      body: {
        parts: withMetadata([{ repeat: '{"a":', times: 32 }, "1", { repeat: "}", times: 32 }]),
      },
    },
    ok(1, { stored: true }),
  );
  c.add(
    "deep_nesting",
    "metadata nested 33 levels is one too many",
    {
      body: {
        parts: withMetadata([{ repeat: '{"a":', times: 33 }, "1", { repeat: "}", times: 33 }]),
      },
    },
    refused([tooDeep(["metadata"], "a")]),
  );
  c.add(
    "deep_nesting",
    "an event nested 80 000 objects deep",
    { body: nestedObjects(80_000) },
    refused([tooDeep([], "a")]),
  );
  c.add(
    "deep_nesting",
    "a top-level array nested 250 000 deep",
    { body: { parts: nestedArrays(250_000) } },
    error(400, "invalid_body"),
  );
  c.add(
    "deep_nesting",
    "a batch whose one event is an array nested 5 000 deep",
    { body: { parts: ['{"events":[', ...nestedArrays(5000), "]}"] } },
    refused([tooDeep([], "0")]),
  );
  c.add(
    "deep_nesting",
    "deep nesting in an event field the contract does not name is refused too",
    {
      body: {
        parts: [
          '{"eventId":"{{uuid}}","eventType":"view","entityType":"event","entityId":"e","anonymousId":"v","extra":',
          ...nestedArrays(5000),
          "}",
        ],
      },
    },
    refused([tooDeep(["extra"], "0")]),
  );
  c.add(
    "deep_nesting",
    "deep nesting in a batch field the contract does not name is ignored",
    {
      body: {
        parts: [`{"events":[${JSON.stringify(event())}],"extra":`, ...nestedArrays(5000), "}"],
      },
    },
    ok(),
  );
  c.add(
    "deep_nesting",
    "an unclosed nesting 100 000 deep is not JSON",
    { body: { parts: [{ repeat: "[", times: 100_000 }] } },
    error(400, "invalid_json"),
  );
}

function oversized(c: CorpusBuilder): void {
  const prefix = '{"eventType":"view","entityType":"event","entityId":"e","anonymousId":"v"}';
  c.add(
    "oversized",
    "10 MB of padding after an event",
    { body: { parts: [prefix, { repeat: " ", times: TEN_MB }] } },
    error(413, "payload_too_large"),
  );
  c.add(
    "oversized",
    "a 10 MB entityId",
    {
      body: {
        parts: [
          '{"eventType":"view","entityType":"event","anonymousId":"v","entityId":"',
          { repeat: "x", times: TEN_MB },
          '"}',
        ],
      },
    },
    error(413, "payload_too_large"),
  );
  c.add(
    "oversized",
    "10 MB of padding, streamed without a Content-Length",
    { body: { parts: [prefix, { repeat: " ", times: TEN_MB }] }, stream: true },
    error(413, "payload_too_large"),
  );
  c.add(
    "oversized",
    "10 MB of text that is not JSON, streamed",
    { body: { parts: [{ repeat: "x", times: TEN_MB }] }, stream: true },
    error(413, "payload_too_large"),
  );
  c.add(
    "oversized",
    "exactly 512 KiB (an event and padding) is within the limit",
    { body: { parts: [prefix, { repeat: " ", times: MAX_REQUEST_BYTES - prefix.length }] } },
    ok(),
  );
  c.add(
    "oversized",
    "512 KiB and one byte is over the limit",
    { body: { parts: [prefix, { repeat: " ", times: MAX_REQUEST_BYTES - prefix.length + 1 }] } },
    error(413, "payload_too_large"),
  );
  c.add(
    "oversized",
    "512 KiB and one byte, streamed",
    {
      body: { parts: [prefix, { repeat: " ", times: MAX_REQUEST_BYTES - prefix.length + 1 }] },
      stream: true,
    },
    error(413, "payload_too_large"),
  );
  // {"x":"<n characters>"} is 8 bytes and the characters' own.
  const metadataString = (unit: string, times: number): CorpusBody => ({
    parts: [
      `${JSON.stringify(event()).slice(0, -1)},"metadata":{"x":"`,
      { repeat: unit, times },
      '"}}',
    ],
  });
  c.add(
    "oversized",
    "metadata of exactly 16 KiB is stored",
    { body: metadataString("a", MAX_METADATA_BYTES - 8) },
    ok(1, { stored: true }),
  );
  c.add(
    "oversized",
    "metadata of 16 KiB and one byte is refused",
    { body: metadataString("a", MAX_METADATA_BYTES - 7) },
    refused(["metadata"]),
  );
  c.add(
    "oversized",
    "metadata of 5 500 euro signs is 5 500 characters but 16 508 bytes: refused",
    { body: metadataString("€", 5500) },
    refused(["metadata"]),
  );
  c.add(
    "oversized",
    "an entityId of 255 two-byte characters is stored",
    { body: { json: event({ entityId: "é".repeat(255) }) } },
    ok(1, { stored: true }),
  );
  c.add(
    "oversized",
    "an entityId of 256 two-byte characters is refused",
    { body: { json: event({ entityId: "é".repeat(256) }) } },
    refused(["entityId"]),
  );
  c.add(
    "oversized",
    "an anonymousId of 64 characters is stored",
    { body: { json: event({ anonymousId: "v".repeat(64) }) } },
    ok(1, { stored: true }),
  );
  c.add(
    "oversized",
    "20 000 repeats of one metadata key collapse into one: stored",
    {
      body: {
        parts: [
          '{"eventType":"view","entityType":"event","entityId":"e","anonymousId":"v","metadata":{"k":0',
          { repeat: ',"k":0', times: 19_999 },
          "}}",
        ],
      },
    },
    ok(1),
  );
}

function hugeArrays(c: CorpusBuilder): void {
  const E100K = 100_000;
  c.add(
    "huge_arrays",
    "a batch of 100 000 empty objects",
    { body: { parts: ['{"events":[{}', { repeat: ",{}", times: E100K - 1 }, "]}"] } },
    error(413, "too_many_events"),
  );
  c.add(
    "huge_arrays",
    "a batch of 100 000 zeros",
    { body: { parts: ['{"events":[0', { repeat: ",0", times: E100K - 1 }, "]}"] } },
    error(413, "too_many_events"),
  );
  c.add(
    "huge_arrays",
    "a top-level array of 100 000 zeros",
    { body: { parts: ["[0", { repeat: ",0", times: E100K - 1 }, "]"] } },
    error(400, "invalid_body"),
  );
  const metadataArray = (key: string, unit: string, length = E100K): Part[] => [
    `{"eventId":"{{uuid}}","eventType":"view","entityType":"event","entityId":"e","anonymousId":"v","metadata":{"${key}":[${unit}`,
    { repeat: `,${unit}`, times: length - 1 },
    "]}}",
  ];
  c.add(
    "huge_arrays",
    "metadata.genres with 100 000 names is over 16 KiB",
    { body: { parts: metadataArray("genres", '"a"') } },
    refused(["metadata"]),
  );
  c.add(
    "huge_arrays",
    "metadata.genres with 100 000 numbers: the first ten errors are listed",
    { body: { parts: metadataArray("genres", "1") } },
    { status: 400, accepted: 0, duplicates: 0, rejected: [{ index: 0, errorCount: 10 }] },
  );
  c.add(
    "huge_arrays",
    "an unknown metadata key with 100 000 numbers is over 16 KiB",
    { body: { parts: metadataArray("extra", "0") } },
    refused(["metadata"]),
  );
  c.add(
    "huge_arrays",
    "50 000 strings holding \\u0000 (450 kB): the first ten errors are listed",
    { body: { parts: metadataArray("extra", '"\\u0000"', 50_000) } },
    { status: 400, accepted: 0, duplicates: 0, rejected: [{ index: 0, errorCount: 10 }] },
  );
  c.add(
    "huge_arrays",
    "an event field the contract does not name with 100 000 numbers is dropped",
    {
      body: {
        parts: [
          '{"eventId":"{{uuid}}","eventType":"view","entityType":"event","entityId":"e","anonymousId":"v","extra":[0',
          { repeat: ",0", times: E100K - 1 },
          "]}",
        ],
      },
    },
    ok(),
  );
}

function nul(c: CorpusBuilder): void {
  const cases: Array<[string, Json, string[]]> = [
    ["entityId", { entityId: "a\u0000b" }, ["entityId"]],
    ["anonymousId", { anonymousId: "visitor\u0000" }, ["anonymousId"]],
    ["eventType", { eventType: "view\u0000" }, ["eventType"]],
    ["entityType", { entityType: "\u0000event" }, ["entityType"]],
    ["eventId", { eventId: "\u0000" }, ["eventId"]],
    ["timestamp", { timestamp: "2024-06-15T20:00:00Z\u0000" }, ["timestamp"]],
    ["a metadata value", { metadata: { artist_name: "Taylor\u0000Swift" } }, [
      "metadata.artist_name",
    ]],
    ["a metadata key", { metadata: { "a\u0000b": 1 } }, ["metadata.a\uFFFDb"]],
    ["a nested metadata value", { metadata: { a: { b: ["ok", "\u0000"] } } }, ["metadata.a.b.1"]],
    ["a nested metadata key", { metadata: { a: [{ "\u0000": true }] } }, ["metadata.a.0.\uFFFD"]],
    ["a field the contract does not name", { extra: "\u0000" }, ["extra"]],
    ["the key of a field the contract does not name", { "\u0000": 1 }, ["\uFFFD"]],
    ["a review text", {
      entityType: "review",
      metadata: { rating: 5, review_text: "great\u0000" },
    }, ["metadata.review_text"]],
  ];
  cases.forEach(([what, overrides, paths], i) => {
    c.typed("nul", `\\u0000 in ${what}`, event(overrides), paths, i % 2 === 0);
  });
  c.add(
    "nul",
    "\\u0000 in sentAt refuses the batch",
    { body: { json: { events: [event()], sentAt: "2024-06-15T20:00:00Z\u0000" } } },
    error(400, "invalid_body"),
  );
  c.add(
    "nul",
    "\\u0000 in a batch field the contract does not name is ignored",
    { body: { json: { events: [event()], "\u0000": "\u0000" } } },
    ok(),
  );
  c.add(
    "nul",
    "a raw NUL byte inside a string is not JSON",
    {
      body: {
        parts: [
          '{"eventType":"view","entityType":"event","entityId":"a',
          { base64: base64([0]) },
          '"}',
        ],
      },
    },
    error(400, "invalid_json"),
  );
}

function loneSurrogates(c: CorpusBuilder): void {
  const cases: Array<[string, string, Json, string[]]> = [
    ["a lone high surrogate", "entityId", { entityId: "\\ud800" }, ["entityId"]],
    ["a lone low surrogate", "anonymousId", { anonymousId: "\\udfff" }, ["anonymousId"]],
    ["a high surrogate at the end", "entityId", { entityId: "abc\\ud83d" }, ["entityId"]],
    ["a reversed pair", "entityId", { entityId: "\\ude00\\ud83d" }, ["entityId"]],
    ["a lone surrogate", "a metadata value", { metadata: { city: "\\udc00" } }, ["metadata.city"]],
    ["a lone surrogate", "a metadata key", { metadata: { "\\ud800": 1 } }, ["metadata.\uFFFD"]],
    ["a lone surrogate", "nested metadata", { metadata: { a: [["\\udbff"]] } }, [
      "metadata.a.0.0",
    ]],
    ["a lone surrogate", "eventType", { eventType: "\\ud800" }, ["eventType"]],
  ];
  cases.forEach(([what, where, overrides, paths], i) => {
    // Written as JSON escapes: the string holds the unpaired UTF-16 unit.
    const text = JSON.stringify(event(overrides)).replaceAll("\\\\u", "\\u");
    if (i % 2 === 0) {
      c.add("lone_surrogates", `${what} in ${where}`, { body: { text } }, refused(paths));
    } else {
      c.add(
        "lone_surrogates",
        `${what} in ${where}, after a good event`,
        { body: { text: `{"events":[${JSON.stringify(event())},${text}]}` } },
        partly(paths),
      );
    }
  });
  c.add(
    "lone_surrogates",
    "an escaped surrogate pair (an emoji) is stored",
    {
      body: {
        text: JSON.stringify(event({ entityId: "\\ud83d\\ude00" })).replaceAll("\\\\u", "\\u"),
      },
    },
    ok(1, { stored: true }),
  );
  c.add(
    "lone_surrogates",
    "an error path cut at 64 characters must not split an emoji into a lone surrogate",
    {
      body: {
        json: batch(event(), event({ metadata: { [`${"a".repeat(62)}😀\u0000`]: 1 } })),
      },
    },
    { status: 200, accepted: 1, duplicates: 0, rejected: [{ index: 1, errorCount: 1 }] },
  );
  c.add(
    "lone_surrogates",
    "a surrogate encoded as UTF-8 bytes (CESU-8) is invalid UTF-8",
    {
      body: {
        parts: [
          '{"eventType":"view","entityType":"event","anonymousId":"v","entityId":"',
          { base64: base64([0xed, 0xa0, 0x80]) },
          '"}',
        ],
      },
    },
    error(400, "invalid_json"),
  );
}

function invalidUtf8(c: CorpusBuilder): void {
  const inEntityId = (bytes: number[]): CorpusBody => ({
    base64: base64([
      ...ascii('{"eventType":"view","entityType":"event","anonymousId":"v","entityId":"a'),
      ...bytes,
      ...ascii('b"}'),
    ]),
  });
  const cases: Array<[string, number[]]> = [
    ["the byte 0xFF", [0xff]],
    ["the byte 0xFE", [0xfe]],
    ["a lone continuation byte", [0x80]],
    ["an overlong slash (C0 AF)", [0xc0, 0xaf]],
    ["an overlong NUL (C0 80)", [0xc0, 0x80]],
    ["an overlong three-byte form (E0 80 80)", [0xe0, 0x80, 0x80]],
    ["a code point above U+10FFFF (F4 90 80 80)", [0xf4, 0x90, 0x80, 0x80]],
    ["a five-byte form (F8 88 80 80 80)", [0xf8, 0x88, 0x80, 0x80, 0x80]],
    ["a truncated euro sign (E2 82)", [0xe2, 0x82]],
    ["Latin-1 é (E9)", [0xe9]],
  ];
  for (const [what, bytes] of cases) {
    c.add(
      "invalid_utf8",
      `${what} in a string`,
      { body: inEntityId(bytes) },
      error(400, "invalid_json"),
    );
  }
  const event16 = '{"eventType":"view","entityType":"event","entityId":"e","anonymousId":"v"}';
  const utf16le = [0xff, 0xfe, ...[...event16].flatMap((ch) => [ch.charCodeAt(0), 0])];
  const utf16be = [...event16].flatMap((ch) => [0, ch.charCodeAt(0)]);
  c.add("invalid_utf8", "a body in UTF-16LE with its BOM", { body: { base64: base64(utf16le) } }, {
    status: 400,
    error: "invalid_json",
  });
  c.add("invalid_utf8", "a body in UTF-16BE without a BOM", { body: { base64: base64(utf16be) } }, {
    status: 400,
    error: "invalid_json",
  });
  c.add(
    "invalid_utf8",
    "a truncated multi-byte character at the very end",
    { body: { base64: base64([...ascii(event16), 0xe2, 0x82]) } },
    error(400, "invalid_json"),
  );
  c.add(
    "invalid_utf8",
    "a UTF-8 byte order mark before valid JSON is accepted",
    { body: { base64: base64([0xef, 0xbb, 0xbf, ...ascii(event16)]) } },
    ok(),
  );
}

function sqlInjection(c: CorpusBuilder): void {
  const strings = [
    "'; drop table public.user_interactions; --",
    '"; drop table public.sessions; --',
    "' or '1'='1",
    "1; delete from public.user_interactions where true; --",
    "$$; drop table public.user_interactions; $$",
    "'); select pg_sleep(10); --",
    "' || (select pg_sleep(10)) || '",
    "\\'; truncate public.sessions; --",
    "e'\\\\x00'",
    "); drop function public.ingest_interactions(uuid, jsonb, jsonb, jsonb); --",
    "'::jsonb; update public.sessions set page_views = 0; --",
    "Robert'); drop table students;--",
    '{"index": 0, "event_id": null}',
    "%s%s%s%n",
    "${7*7}",
    "\\\\'; drop schema public cascade; --",
  ];
  strings.forEach((s, i) => {
    const field = ["entityId", "metadata", "anonymousId", "metadata key"][i % 4];
    const overrides: Json = field === "entityId"
      ? { entityId: s }
      : field === "anonymousId"
      ? { anonymousId: s.slice(0, 64) }
      : field === "metadata"
      ? { metadata: { venue_name: s, genres: [s], nested: { value: s } } }
      : { metadata: { [s]: s } };
    const auth: Auth = i % 3 === 0 ? "user" : "anon";
    c.add(
      "sql_injection",
      `${JSON.stringify(s)} in ${field}, as ${auth === "user" ? "a signed-in user" : "anon"}`,
      { auth, body: { json: event(overrides) } },
      ok(1, { stored: true }),
    );
  });
  c.add(
    "sql_injection",
    "a search query carrying SQL is stored as sent",
    {
      body: {
        json: event({
          eventType: "search",
          metadata: {
            query: "taylor'; drop table public.user_interactions; --",
            filters: ["' or 1=1"],
          },
        }),
      },
    },
    ok(1, { stored: true }),
  );
  c.add(
    "sql_injection",
    "SQL in eventType is refused by the list of types",
    { body: { json: event({ eventType: "view'; drop table public.user_interactions; --" }) } },
    refused(["eventType"]),
  );
  c.add(
    "sql_injection",
    "SQL in entityType is refused by the list of types",
    { body: { json: event({ entityType: "event' or '1'='1" }) } },
    refused(["entityType"]),
  );
  c.add(
    "sql_injection",
    "SQL in sessionId is refused as not a UUID",
    { body: { json: event({ sessionId: "00000000-0000-0000-0000-000000000000' or '1'='1" }) } },
    refused(["sessionId"]),
  );
  c.add(
    "sql_injection",
    "SQL in sentAt refuses the batch",
    { body: { json: { events: [event()], sentAt: "2024-06-15T20:00:00Z'; drop table x; --" } } },
    error(400, "invalid_body"),
  );
  c.add(
    "sql_injection",
    "SQL in timestamp is refused as not a time",
    { body: { json: event({ timestamp: "now()); drop table public.sessions; --" }) } },
    refused(["timestamp"]),
  );
}

function strangeStrings(c: CorpusBuilder): void {
  const values: Array<[string, string]> = [
    ["an emoji", "🎤🎸"],
    ["a right-to-left override", "\u202egnp.exe"],
    ["zero-width characters", "a\u200bb\u200dc\ufeff"],
    ["a line separator (not a control character)", "a\u2028b"],
    ["combining marks", "e\u0301\u0301\u0301"],
    ["HTML", "<script>alert(1)</script>"],
    ["a private-use character", "\ue000"],
    ["a noncharacter", "\uffff"],
  ];
  values.forEach(([what, value], i) => {
    c.add(
      "strange_strings",
      `${what} in ${i % 2 === 0 ? "entityId" : "metadata"} is stored as sent`,
      {
        body: {
          json: event(i % 2 === 0 ? { entityId: value } : { metadata: { [value]: value } }),
        },
      },
      ok(1, { stored: true }),
    );
  });
  c.add(
    "strange_strings",
    "a CRLF header injection in anonymousId is stored as sent",
    { body: { json: event({ anonymousId: "v\r\nSet-Cookie: admin=1" }) } },
    ok(1, { stored: true }),
  );
  c.add(
    "strange_strings",
    "an empty metadata key and a dotted one are stored as sent",
    { body: { json: event({ metadata: { "": 1, "a.b": { "c.d": 2 } } }) } },
    ok(1, { stored: true }),
  );
  c.add(
    "strange_strings",
    "an entityId of 127 emoji (254 UTF-16 units) is stored",
    { body: { json: event({ entityId: "😀".repeat(127) }) } },
    ok(1, { stored: true }),
  );
}

function prototypeKeys(c: CorpusBuilder): void {
  const stored = (description: string, body: CorpusBody) => {
    c.add("prototype_keys", description, { body }, ok(1, { stored: true }));
  };
  stored(
    "metadata with a __proto__ object key keeps it",
    { text: eventText({}).replace(/}$/, ',"metadata":{"__proto__":{"polluted":true},"a":2}}') },
  );
  stored(
    "metadata with a __proto__ null key keeps it",
    { text: eventText({}).replace(/}$/, ',"metadata":{"__proto__":null}}') },
  );
  stored(
    "metadata with constructor.prototype keys keeps them",
    {
      text: eventText({}).replace(
        /}$/,
        ',"metadata":{"constructor":{"prototype":{"polluted":true}}}}',
      ),
    },
  );
  stored(
    "metadata with keys named like Object methods keeps them",
    {
      json: event({
        metadata: { hasOwnProperty: 1, toString: "x", valueOf: [], isPrototypeOf: null },
      }),
    },
  );
  stored(
    "a nested __proto__ key inside metadata is kept",
    { text: eventText({}).replace(/}$/, ',"metadata":{"a":{"__proto__":{"polluted":true}}}}') },
  );
  c.add(
    "prototype_keys",
    "an artist_name under metadata.__proto__ does not count as the artist's name",
    {
      body: {
        text:
          '{"eventId":"{{uuid}}","eventType":"view","entityType":"artist","entityId":"a","anonymousId":"v","metadata":{"__proto__":{"artist_name":"x"}}}',
      },
    },
    refused(["metadata.artist_name"]),
  );
  c.add(
    "prototype_keys",
    "event fields under __proto__ do not count as the event's",
    {
      body: {
        text:
          '{"__proto__":{"eventType":"view","entityType":"event","entityId":"e","anonymousId":"v"}}',
      },
    },
    refused(["entityId", "entityType", "eventType"]),
  );
  c.add(
    "prototype_keys",
    "a __proto__ key beside valid event fields is dropped like any unknown field",
    {
      body: {
        text: eventText({}).replace(/}$/, ',"__proto__":{"eventType":"like","user_id":"x"}}'),
      },
    },
    ok(1, { stored: true }),
  );
  c.add(
    "prototype_keys",
    "a batch under __proto__ is not a batch",
    { body: { text: `{"__proto__":{"events":[${JSON.stringify(event())}]}}` } },
    refused(["entityId", "entityType", "eventType"]),
  );
  c.add(
    "prototype_keys",
    "constructor and prototype keys beside a batch are ignored",
    {
      body: {
        text: `{"constructor":{"prototype":{"sentAt":1}},"prototype":1,"events":[${
          JSON.stringify(event())
        }]}`,
      },
    },
    ok(),
  );
}

function contentTypes(c: CorpusBuilder): void {
  const valid = { json: event() };
  const accepted: Array<[string, string | null]> = [
    ["text/plain (a simple request, no preflight)", "text/plain"],
    ["no Content-Type at all", null],
    ["application/octet-stream", "application/octet-stream"],
    [
      "application/json with a UTF-16 charset (the body is read as UTF-8)",
      "application/json; charset=utf-16",
    ],
    ["a made-up type", "application/x-made-up"],
  ];
  for (const [what, type] of accepted) {
    c.add(
      "content_types",
      `valid JSON sent as ${what} is accepted`,
      { headers: { "Content-Type": type }, body: valid },
      ok(),
    );
  }
  const refusedBodies: Array<[string, string, string]> = [
    [
      "a form",
      "application/x-www-form-urlencoded",
      "eventType=view&entityType=event&entityId=e&anonymousId=v",
    ],
    [
      "multipart form data",
      "multipart/form-data; boundary=x",
      '--x\r\nContent-Disposition: form-data; name="eventType"\r\n\r\nview\r\n--x--\r\n',
    ],
    ["XML", "application/xml", '<event type="view" entity="event" id="e"/>'],
    ["YAML", "application/yaml", "eventType: view\nentityType: event\nentityId: e\n"],
    ["plain words", "application/json", "view event e"],
  ];
  for (const [what, type, text] of refusedBodies) {
    c.add(
      "content_types",
      `${what} (${type}) is not JSON`,
      { headers: { "Content-Type": type }, body: { text } },
      error(400, "invalid_json"),
    );
  }
  c.add(
    "content_types",
    "a gzip body is not decompressed: not JSON",
    {
      headers: { "Content-Encoding": "gzip" },
      body: {
        base64: base64([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x03, 0x00]),
      },
    },
    error(400, "invalid_json"),
  );
  c.add(
    "content_types",
    "a Latin-1 body declared as such is not UTF-8",
    {
      headers: { "Content-Type": "application/json; charset=iso-8859-1" },
      body: {
        base64: base64([
          ...ascii('{"eventType":"view","entityType":"event","anonymousId":"v","entityId":"caf'),
          0xe9,
          ...ascii('"}'),
        ]),
      },
    },
    error(400, "invalid_json"),
  );
}

function methods(c: CorpusBuilder): void {
  for (const method of ["GET", "HEAD"]) {
    c.add("methods", `${method} is not allowed`, { method }, error(405, "method_not_allowed"));
  }
  for (const method of ["PUT", "PATCH", "DELETE", "PROPFIND", "patch"]) {
    c.add(
      "methods",
      `${method} with a valid event is not allowed and stores nothing`,
      { method, body: { json: event() } },
      error(405, "method_not_allowed"),
    );
  }
  c.add(
    "methods",
    "OPTIONS is a CORS preflight, answered without a JWT",
    {
      method: "OPTIONS",
      auth: "none",
      headers: {
        Origin: "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, x-client-info, apikey, content-type",
        "Content-Type": null,
      },
    },
    { status: 204, preflight: true },
  );
  c.add(
    "methods",
    "OPTIONS with a body is still only a preflight",
    { method: "OPTIONS", auth: "none", body: { json: event() } },
    { status: 204, preflight: true },
  );
}

function auth(c: CorpusBuilder): void {
  const cases: Array<[string, Auth]> = [
    ["no Authorization header", "none"],
    ["an empty Authorization header", { authorization: "" }],
    ["'Bearer' and no token", { authorization: "Bearer " }],
    ["Basic credentials", { authorization: "Basic YW5vbjphbm9u" }],
    ["a token that is not a JWT", { authorization: "Bearer not-a-jwt" }],
    ["three dots of nothing", { authorization: "Bearer .." }],
    ["a JWT with a garbage signature", {
      authorization:
        "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.AAAA",
    }],
    ["the anon key's header and payload with alg none", {
      authorization:
        "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.",
    }],
    ["SQL in the token", { authorization: "Bearer ' or '1'='1" }],
  ];
  for (const [what, value] of cases) {
    c.add(
      "auth",
      `${what} is unauthorized and stores nothing`,
      { auth: value, body: { json: event() } },
      { status: 401, unauthorized: true },
    );
  }
}

function time(c: CorpusBuilder): void {
  c.typed(
    "time",
    "a timestamp in 1970 is older than 7 days",
    event({ timestamp: "1970-01-01T00:00:00Z" }),
    [
      "timestamp",
    ],
    true,
  );
  c.typed("time", "a timestamp in year 0", event({ timestamp: "0000-01-01T00:00:00Z" }), [
    "timestamp",
  ], false);
  c.typed("time", "a timestamp in 2000", event({ timestamp: "2000-01-01T00:00:00+14:00" }), [
    "timestamp",
  ], true);
  c.add(
    "time",
    "a timestamp in year 9999 is dated at arrival and stored",
    { body: { json: event({ timestamp: "9999-12-31T23:59:59Z" }) } },
    ok(),
  );
  c.add(
    "time",
    "a client clock 25 years slow is corrected by sentAt: stored",
    {
      body: {
        json: {
          events: [event({ timestamp: "2000-01-01T00:00:00Z" })],
          sentAt: "2000-01-01T00:00:10Z",
        },
      },
    },
    ok(),
  );
  c.add(
    "time",
    "an event sent before it happened is dated at arrival: stored",
    {
      body: {
        json: {
          events: [event({ timestamp: "2000-01-01T00:00:10Z" })],
          sentAt: "2000-01-01T00:00:00Z",
        },
      },
    },
    ok(),
  );
  c.add(
    "time",
    "an event 8 000 years older than its sentAt is refused",
    {
      body: {
        json: {
          events: [event({ timestamp: "2000-01-01T00:00:00Z" })],
          sentAt: "9999-12-31T23:59:59Z",
        },
      },
    },
    refused(["timestamp"]),
  );
  c.add(
    "time",
    "sentAt in year 9999 makes the timed event too old; the untimed one is stored",
    {
      body: {
        json: {
          events: [event(), event({ timestamp: "2000-01-01T00:00:00Z" })],
          sentAt: "9999-12-31T23:59:59Z",
        },
      },
    },
    partly(["timestamp"]),
  );
  c.add(
    "time",
    "a timestamp in year 9999 on its own clock but in year 10000 in UTC, after a good event, " +
      "with sentAt: refused on its own",
    {
      body: {
        json: {
          events: [event(), event({ timestamp: "9999-12-31T23:59:59-14:00" })],
          sentAt: "9999-12-31T23:59:59-14:00",
        },
      },
    },
    partly(["timestamp"]),
  );
  c.add(
    "time",
    "the last millisecond of year 9999, with a sentAt from the same clock, is stored",
    {
      body: {
        json: {
          events: [event({ timestamp: "9999-12-31T23:59:59.999Z" })],
          sentAt: "9999-12-31T23:59:59.999Z",
        },
      },
    },
    ok(),
  );
}

function principal(c: CorpusBuilder): void {
  const userSpecific = USER_SPECIFIC_EVENT_TYPES;
  userSpecific.forEach((eventType, i) => {
    c.typed(
      "principal",
      `an anonymous ${eventType}`,
      event({ eventType, entityType: "review", metadata: { rating: 5 } }),
      ["eventType"],
      i % 2 === 0,
    );
  });
  c.typed(
    "principal",
    "an anonymous event without anonymousId",
    event({ anonymousId: undefined }),
    [
      "anonymousId",
    ],
    true,
  );
  c.typed(
    "principal",
    "an anonymous like without anonymousId",
    event({ eventType: "like", anonymousId: undefined }),
    ["anonymousId", "eventType"],
    false,
  );
  c.add(
    "principal",
    "the service-role key is no user: a like is refused",
    { auth: "service", body: { json: event({ eventType: "like" }) } },
    refused(["eventType"]),
  );
  c.add(
    "principal",
    "a user_id in the body is ignored: stored for the signed-in user",
    {
      auth: "user",
      body: { json: event({ eventType: "like", user_id: "{{uuid}}", userId: "{{uuid}}" }) },
    },
    ok(1, { stored: true }),
  );
  c.add(
    "principal",
    "a user_id in an anonymous body is ignored: stored with no user",
    { body: { json: event({ user_id: "{{uuid}}" }) } },
    ok(1, { stored: true }),
  );
}

/** Builds the whole corpus, in category order. */
export function buildCorpus(): Corpus {
  const c = new CorpusBuilder();
  brokenJson(c);
  envelope(c);
  wrongType(c);
  metadataType(c);
  hugeNumbers(c);
  deepNesting(c);
  oversized(c);
  hugeArrays(c);
  nul(c);
  loneSurrogates(c);
  invalidUtf8(c);
  sqlInjection(c);
  strangeStrings(c);
  prototypeKeys(c);
  contentTypes(c);
  methods(c);
  auth(c);
  time(c);
  principal(c);
  return {
    description:
      "Hostile requests to POST /functions/v1/track and the answer each must get. Generated by corpus.ts; bodies are JSON, text, base64 bytes or repeated parts; {{uuid}} is a fresh UUID per occurrence, {{uuid:name}} one per name and entry.",
    entries: c.entries,
  };
}

if (import.meta.main) {
  console.log(JSON.stringify(buildCorpus(), null, 2));
}
