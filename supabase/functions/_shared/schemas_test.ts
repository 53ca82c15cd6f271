import assert from "node:assert/strict";
import { ENTITY_TYPES, EVENT_TYPES } from "./event_types.ts";
import { MAX_EVENTS_PER_REQUEST, MAX_METADATA_BYTES } from "./limits.ts";
import { type FieldError, parseJson, parseTrackBody, validateEvent } from "./schemas.ts";

const base = { eventType: "view", entityType: "event", entityId: "event-123" };

function errorsOf(input: unknown): FieldError[] {
  const result = validateEvent(input);
  assert.equal(result.ok, false, `expected ${Deno.inspect(input)} to be refused`);
  return result.ok ? [] : result.errors;
}

function accepts(input: unknown): void {
  const result = validateEvent(input);
  assert.deepEqual(result.ok ? [] : result.errors, [], `expected ${Deno.inspect(input)} to pass`);
}

/** The paths of an event's errors, each with a message matching its pattern. */
function assertErrors(input: unknown, expected: Array<[path: string, message: RegExp]>): void {
  const errors = errorsOf(input);
  assert.deepEqual(errors.map((e) => e.path), expected.map(([path]) => path));
  errors.forEach((error, i) => assert.match(error.message, expected[i][1], error.path));
}

Deno.test("the guide's valid event passes and keeps its metadata", () => {
  const input = {
    eventType: "view",
    entityType: "event",
    entityId: "event-123",
    metadata: {
      artist_name: "Taylor Swift",
      venue_name: "Madison Square Garden",
      event_date: "2024-06-15T20:00:00Z",
    },
  };
  assert.deepEqual(validateEvent(input), { ok: true, event: input });
});

Deno.test("the guide's event missing entityType and entityId lists both as required", () => {
  assert.deepEqual(errorsOf({ eventType: "view" }), [
    { path: "entityType", message: "Required" },
    { path: "entityId", message: "Required" },
  ]);
});

Deno.test("the guide's unknown event type is refused on eventType", () => {
  assertErrors({ ...base, eventType: "invalid_type" }, [[
    "eventType",
    /^Invalid option: expected one of "view"\|"click"/,
  ]]);
});

Deno.test("the guide's rating 'five' is refused as a string where a number is expected", () => {
  assert.deepEqual(
    errorsOf({
      eventType: "review",
      entityType: "review",
      entityId: "review-123",
      metadata: { rating: "five" },
    }),
    [{ path: "metadata.rating", message: "Invalid input: expected number, received string" }],
  );
});

Deno.test("every event type and entity type of the guide is accepted", () => {
  assert.equal(EVENT_TYPES.length, 18);
  assert.equal(ENTITY_TYPES.length, 12);
  const metadataFor: Record<string, unknown> = {
    artist: { artist_name: "A" },
    venue: { venue_name: "V" },
    review: { rating: 3 },
  };
  for (const eventType of EVENT_TYPES) {
    for (const entityType of ENTITY_TYPES) {
      accepts({ eventType, entityType, entityId: "x", metadata: metadataFor[entityType] });
    }
  }
});

Deno.test("optional identifiers must be UUIDs and anonymousId 1..64 characters", () => {
  accepts({
    ...base,
    eventId: crypto.randomUUID(),
    sessionId: crypto.randomUUID(),
    anonymousId: "a".repeat(64),
  });
  // Any version and variant Postgres's uuid type stores: version 0 with
  // variant bits 0xxx, and a Microsoft-variant GUID (110x).
  accepts({
    ...base,
    eventId: "12345678-1234-0234-0234-123456789abc",
    sessionId: "12345678-1234-1234-c234-123456789abc",
  });
  assertErrors({ ...base, eventId: "not-a-uuid" }, [["eventId", /^Invalid UUID$/]]);
  assertErrors({ ...base, eventId: "12345678-1234-1234-1234-123456789abz" }, [["eventId", /UUID/]]);
  assertErrors({ ...base, sessionId: 42 }, [["sessionId", /expected string, received number/]]);
  assertErrors({ ...base, anonymousId: "" }, [["anonymousId", />=1 characters/]]);
  assertErrors({ ...base, anonymousId: "a".repeat(65) }, [["anonymousId", /<=64 characters/]]);
});

Deno.test("entityId must be 1..255 characters without control characters", () => {
  accepts({ ...base, entityId: "é".repeat(255) });
  assertErrors({ ...base, entityId: "" }, [["entityId", />=1 characters/]]);
  assertErrors({ ...base, entityId: "x".repeat(256) }, [["entityId", /<=255 characters/]]);
  assertErrors({ ...base, entityId: "line\nbreak" }, [["entityId", /control characters/]]);
  assertErrors({ ...base, entityId: "del\u007f" }, [["entityId", /control characters/]]);
  assertErrors({ ...base, entityId: 123 }, [["entityId", /expected string, received number/]]);
});

Deno.test("timestamp must be ISO-8601 with a time zone", () => {
  accepts({ ...base, timestamp: "2024-06-15T20:00:00Z" });
  accepts({ ...base, timestamp: "2024-06-15T20:00:00.123+02:00" });
  for (const timestamp of ["2024-06-15T20:00:00", "2024-06-15", "yesterday", 1718481600000]) {
    assertErrors({ ...base, timestamp }, [["timestamp", /./]]);
  }
});

Deno.test("metadata must be a JSON object of at most 16 KiB", () => {
  for (const metadata of [[], "x", 1, null]) {
    assertErrors({ ...base, metadata }, [["metadata", /must be a JSON object/]]);
  }
  const filler = (bytes: number) => ({ pad: "x".repeat(bytes - '{"pad":""}'.length) });
  accepts({ ...base, metadata: filler(MAX_METADATA_BYTES) });
  assertErrors({ ...base, metadata: filler(MAX_METADATA_BYTES + 1) }, [[
    "metadata",
    /at most 16384 bytes/,
  ]]);
  // Bytes, not characters: 'é' is two bytes in UTF-8.
  assertErrors({ ...base, metadata: { pad: "é".repeat(MAX_METADATA_BYTES / 2) } }, [[
    "metadata",
    /at most 16384 bytes/,
  ]]);
});

Deno.test("metadata built in code: a bigint, a Date or a class instance is refused, not thrown", () => {
  assertErrors({ ...base, metadata: { count: 10n } }, [[
    "metadata.count",
    /must be a JSON number, not a bigint/,
  ]]);
  for (const metadata of [new Date(0), new Map(), new (class Point {})()]) {
    assertErrors({ ...base, metadata }, [["metadata", /must be a JSON object/]]);
  }
  accepts({ ...base, metadata: Object.assign(Object.create(null), { query: "jazz" }) });
});

Deno.test("metadata may nest 32 levels, not 33", () => {
  // `metadata` is level 1, so `deep` holding n arrays makes n + 1 levels.
  const nested = (arrays: number) => {
    let value: unknown = 1;
    for (let i = 0; i < arrays; i++) value = [value];
    return value;
  };
  accepts({ ...base, metadata: { deep: nested(31) } });
  const errors = errorsOf({ ...base, metadata: { deep: nested(32) } });
  assert.equal(errors.length, 1);
  assert.match(errors[0].path, /^metadata\.deep(\.0)+$/);
  assert.match(errors[0].message, /nested more than 32 levels/);
  // Far deeper than any stack could recurse: still a plain validation error.
  assert.equal(errorsOf({ ...base, metadata: { deep: nested(200_000) } }).length, 1);
});

Deno.test("required metadata: artist_name for artist, venue_name for venue, rating for review", () => {
  assertErrors({ ...base, entityType: "artist" }, [["metadata.artist_name", /^Required$/]]);
  assertErrors({ ...base, entityType: "artist", metadata: {} }, [[
    "metadata.artist_name",
    /^Required$/,
  ]]);
  assertErrors({ ...base, entityType: "artist", metadata: { artist_name: "" } }, [[
    "metadata.artist_name",
    />=1 characters/,
  ]]);
  assertErrors({ ...base, entityType: "venue", metadata: { venue_city: "Paris" } }, [[
    "metadata.venue_name",
    /^Required$/,
  ]]);
  assertErrors({ ...base, entityType: "review", metadata: {} }, [[
    "metadata.rating",
    /^Required$/,
  ]]);
  for (const rating of [1, 2.5, 5]) {
    accepts({ ...base, entityType: "review", metadata: { rating } });
  }
  assertErrors({ ...base, entityType: "review", metadata: { rating: 0 } }, [[
    "metadata.rating",
    />=1/,
  ]]);
  assertErrors({ ...base, entityType: "review", metadata: { rating: 6 } }, [[
    "metadata.rating",
    /<=5/,
  ]]);
});

Deno.test("metadata field types are checked per entity type, unknown keys kept", () => {
  const cases: Array<[entityType: string, metadata: Record<string, unknown>, path: string]> = [
    ["event", { artist_name: 1 }, "metadata.artist_name"],
    ["event", { event_date: "next friday" }, "metadata.event_date"],
    ["event", { genres: "pop" }, "metadata.genres"],
    ["event", { genres: ["pop", 1] }, "metadata.genres.1"],
    ["event", { capacity: -1 }, "metadata.capacity"],
    ["event", { capacity: 10.5 }, "metadata.capacity"],
    ["event", { ticket_price: "12" }, "metadata.ticket_price"],
    ["artist", { artist_name: "A", popularity_score: 101 }, "metadata.popularity_score"],
    ["artist", { artist_name: "A", verified: "yes" }, "metadata.verified"],
    ["artist", { artist_name: "A", follower_count: -5 }, "metadata.follower_count"],
    ["venue", { venue_name: "V", coordinates: { lat: 91, lng: 0 } }, "metadata.coordinates.lat"],
    ["venue", { venue_name: "V", coordinates: { lat: 0 } }, "metadata.coordinates.lng"],
    ["review", { rating: 4, is_helpful: 1 }, "metadata.is_helpful"],
    ["review", { rating: 4, likes_count: "3" }, "metadata.likes_count"],
    ["user", { user_name: 7 }, "metadata.user_name"],
    ["user", { preferences: "jazz" }, "metadata.preferences"],
    ["profile", { verification_status: false }, "metadata.verification_status"],
    ["view", { scroll_depth: -1 }, "metadata.scroll_depth"],
    ["form", { success: "true" }, "metadata.success"],
    ["form", { field_count: 2.5 }, "metadata.field_count"],
    ["ticket_link", { price: -10 }, "metadata.price"],
    ["ticket_link", { url: 3 }, "metadata.url"],
    ["song", { artist_names: "A" }, "metadata.artist_names"],
    ["song", { duration_ms: "200000" }, "metadata.duration_ms"],
    ["album", { release_date: "March 2019" }, "metadata.release_date"],
    ["playlist", { track_count: -1 }, "metadata.track_count"],
  ];
  for (const [entityType, metadata, path] of cases) {
    assert.deepEqual(errorsOf({ ...base, entityType, metadata }).map((e) => e.path), [path]);
  }
  const kept = {
    artist_name: "Taylor Swift",
    genres: ["pop"],
    popularity_score: 99,
    verified: true,
    custom: { nested: [1, "two"] },
  };
  const result = validateEvent({ ...base, entityType: "artist", metadata: kept });
  assert.deepEqual(result.ok && result.event.metadata, kept);
  accepts({
    ...base,
    entityType: "album",
    metadata: { album_name: "1989", artist_name: "T", release_date: "2014" },
  });
  accepts({ ...base, entityType: "album", metadata: { release_date: "2014-10" } });
  accepts({ ...base, entityType: "album", metadata: { release_date: "2014-10-27" } });
  accepts({ ...base, metadata: { event_date: "2024-06-15" } });
  accepts({ ...base, metadata: { event_date: "2024-06-15T20:00:00" } });
});

Deno.test("a release date's month is 01 to 12", () => {
  const album = (release_date: string) => ({
    ...base,
    entityType: "album",
    metadata: { release_date },
  });
  for (const month of ["01", "12"]) accepts(album(`2019-${month}`));
  for (const month of ["00", "13"]) {
    assertErrors(album(`2019-${month}`), [["metadata.release_date", /ISO-8601 year, year-month/]]);
  }
});

Deno.test("venue coordinates are within -90..90 and -180..180, bounds included", () => {
  const venue = (lat: number, lng: number) => ({
    ...base,
    entityType: "venue",
    metadata: { venue_name: "V", coordinates: { lat, lng } },
  });
  for (const [lat, lng] of [[-90, -180], [90, 180]]) accepts(venue(lat, lng));
  for (const lat of [-90.5, 90.5]) {
    assertErrors(venue(lat, 0), [["metadata.coordinates.lat", /./]]);
  }
  for (const lng of [-180.5, 180.5]) {
    assertErrors(venue(0, lng), [["metadata.coordinates.lng", /./]]);
  }
});

Deno.test("search metadata is checked by event type, without the entity's required fields", () => {
  const search = { ...base, eventType: "search", entityId: "search-results" };
  accepts({
    ...search,
    metadata: { query: "Taylor Swift concerts", results_count: 15, filters: ["upcoming"] },
  });
  assertErrors({ ...search, metadata: { query: 1 } }, [["metadata.query", /expected string/]]);
  assertErrors({ ...search, metadata: { results_count: -1 } }, [["metadata.results_count", />=0/]]);
  assertErrors({ ...search, metadata: { filters: "upcoming" } }, [[
    "metadata.filters",
    /expected array/,
  ]]);
  accepts({ ...search, entityType: "artist", metadata: { query: "weeknd" } });
  assertErrors({ ...search, entityType: "artist", metadata: { artist_name: 5 } }, [[
    "metadata.artist_name",
    /expected string/,
  ]]);
});

Deno.test("\\u0000 anywhere in an event is refused with its path, keys and nesting included", () => {
  assertErrors({ ...base, entityId: "a\u0000b" }, [["entityId", /\\u0000/]]);
  assertErrors({ ...base, anonymousId: "\u0000" }, [["anonymousId", /\\u0000/]]);
  assertErrors({ ...base, metadata: { artist_name: "\u0000" } }, [[
    "metadata.artist_name",
    /\\u0000/,
  ]]);
  assertErrors({ ...base, metadata: { list: [{ deep: ["ok", "x\u0000"] }] } }, [[
    "metadata.list.0.deep.1",
    /\\u0000/,
  ]]);
  assertErrors({ ...base, metadata: { "key\u0000": 1 } }, [["metadata.key\uFFFD", /key must not/]]);
  assertErrors({ ...base, user_id: "\u0000" }, [["user_id", /\\u0000/]]);
  assertErrors({ ...base, eventType: "view\u0000" }, [["eventType", /\\u0000/]]);
});

Deno.test("unpaired surrogates are refused like \\u0000", () => {
  assertErrors({ ...base, metadata: { name: "\ud800" } }, [[
    "metadata.name",
    /unpaired surrogate/,
  ]]);
  accepts({ ...base, metadata: { name: "\ud83c\udfb5" } });
});

Deno.test("fields the contract does not name, like user_id, are dropped", () => {
  const result = validateEvent({ ...base, user_id: crypto.randomUUID(), userId: "x" });
  assert.deepEqual(result, { ok: true, event: base });
});

Deno.test("errors are reported in full for each field, at most 10 per event", () => {
  assertErrors({ eventType: "nope", entityType: "review", entityId: "", metadata: { rating: 9 } }, [
    ["eventType", /Invalid option/],
    ["entityId", />=1 characters/],
    ["metadata.rating", /<=5/],
  ]);
  const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, "\u0000"]));
  assert.equal(errorsOf({ ...base, metadata: many }).length, 10);
  assertErrors("view", [["", /expected object, received string/]]);
});

Deno.test("parseTrackBody takes a single event as a batch of one", () => {
  assert.deepEqual(parseTrackBody(base), {
    ok: true,
    count: 1,
    events: [{ index: 0, event: base }],
    rejected: [],
  });
});

Deno.test("parseTrackBody validates each event of a batch on its own", () => {
  const eventId = crypto.randomUUID();
  const sentAt = "2024-06-15T20:00:00Z";
  const body = parseTrackBody({
    sentAt,
    events: [
      base,
      { ...base, eventId, entityId: "" },
      { ...base, eventId: "bad", entityType: "x" },
      base,
    ],
  });
  assert.deepEqual(body, {
    ok: true,
    sentAt,
    count: 4,
    events: [{ index: 0, event: base }, { index: 3, event: base }],
    rejected: [
      {
        index: 1,
        eventId,
        errors: [{
          path: "entityId",
          message: "Too small: expected string to have >=1 characters",
        }],
      },
      {
        index: 2,
        errors: [
          { path: "eventId", message: "Invalid UUID" },
          {
            path: "entityType",
            message:
              'Invalid option: expected one of "event"|"artist"|"venue"|"review"|"user"|"profile"|"view"|"form"|"ticket_link"|"song"|"album"|"playlist"',
          },
        ],
      },
    ],
  });
});

Deno.test("parseTrackBody refuses what is not an event or a batch", () => {
  for (const json of [null, 1, "event", [base], true]) {
    assert.deepEqual(parseTrackBody(json), {
      ok: false,
      error: {
        code: "invalid_body",
        message: 'the body must be an event object or a batch {"events": [...]}',
      },
    });
  }
  assert.deepEqual(parseTrackBody({ events: base }), {
    ok: false,
    error: { code: "invalid_body", message: "events: must be an array of events" },
  });
  assert.deepEqual(parseTrackBody({ events: [] }), {
    ok: false,
    error: { code: "invalid_body", message: "events: must hold at least one event" },
  });
  assert.deepEqual(parseTrackBody({ events: [base], sentAt: "now" }), {
    ok: false,
    error: {
      code: "invalid_body",
      message: "sentAt: must be an ISO-8601 date-time with a time zone, like 2024-06-15T20:00:00Z",
    },
  });
});

Deno.test("parseTrackBody accepts 500 events and refuses 501 as too many", () => {
  const batch = (n: number) => ({ events: Array.from({ length: n }, () => base) });
  const ok = parseTrackBody(batch(MAX_EVENTS_PER_REQUEST));
  assert.equal(ok.ok && ok.events.length, 500);
  assert.deepEqual(parseTrackBody(batch(MAX_EVENTS_PER_REQUEST + 1)), {
    ok: false,
    error: {
      code: "too_many_events",
      message: "a batch holds at most 500 events; this one has 501",
    },
  });
});

// --- integers a float cannot hold ------------------------------------------------

/** An event with `metadata` written as raw JSON text, parsed as the function parses it. */
const eventWithMetadata = (metadataJson: string) =>
  parseJson(
    `{"eventType":"view","entityType":"event","entityId":"event-1","metadata":${metadataJson}}`,
  );

Deno.test("parseJson reads every float as JSON.parse does, in any notation, even beside a big id", () => {
  const floats = [
    "0.30000000000000004",
    "0.10000000000000001",
    "0.12345678901234567890123",
    "9007199254740992",
    "1152921504606846976",
    "-1.7976931348623157e308",
    "5e-324",
    "1e-400",
    "1.5e300",
    "1E2",
    "100.000000000000000",
    "-0.0",
    "1e400",
  ];
  for (let i = 0; i < 1000; i++) {
    const x = (Math.random() - 0.5) * 10 ** Math.floor(Math.random() * 40 - 20);
    floats.push(String(x), x.toPrecision(17), x.toExponential(16));
  }
  const text = `{"numbers": [${floats.join(", ")}]}`;
  assert.deepEqual(parseJson(text), JSON.parse(text));
  // Read the same where a big id elsewhere makes the body be looked at twice.
  const mixed = `{"numbers": [${floats.join(", ")}], "id": 1234567890123456789}`;
  const parsed = parseJson(mixed) as { numbers: number[]; id: unknown };
  assert.deepEqual(parsed.numbers, JSON.parse(mixed).numbers);
  assert.equal(typeof parsed.id, "string");
});

Deno.test("an integer beyond 2^53 that a float cannot hold is refused at its path, not rounded", () => {
  assert.deepEqual(
    errorsOf(eventWithMetadata('{"discord_id": 1234567890123456789, "city": "Austin"}')),
    [{
      path: "metadata.discord_id",
      message: "is an integer beyond 2^53, which a 64-bit float cannot hold: " +
        "send 1234567890123456789 as a string",
    }],
  );
  for (const written of ["9007199254740993", "-9007199254740993", "12345678901234567891.000"]) {
    assertErrors(eventWithMetadata(`{"deep": {"list": [1, ${written}]}}`), [
      ["metadata.deep.list.1", /^is an integer beyond 2\^53/],
    ]);
  }
  // A declared field says the same, not that a string is no number.
  assertErrors(eventWithMetadata('{"capacity": 12345678901234567890}'), [
    ["metadata.capacity", /^is an integer beyond 2\^53/],
  ]);
});

Deno.test("digits in strings are never taken for numbers", () => {
  const parsed = eventWithMetadata(
    '{"order": "1234567890123456789012", "note": "x\\": 12345678901234567890, y", ' +
      '"big": 18014398509481984, "id": 98765432109876543210}',
  ) as { metadata: Record<string, unknown> };
  assert.deepEqual(parsed.metadata, {
    order: "1234567890123456789012",
    note: 'x": 12345678901234567890, y',
    big: 18014398509481984,
    id: "\u0000unsafe integer:98765432109876543210",
  });
});

Deno.test("a big integer where an event or the body should be is refused as any non-event is", () => {
  assert.deepEqual(parseTrackBody(parseJson("12345678901234567890")), {
    ok: false,
    error: {
      code: "invalid_body",
      message: 'the body must be an event object or a batch {"events": [...]}',
    },
  });
  const batch = parseTrackBody(
    parseJson(`{"events": [${JSON.stringify(base)}, 12345678901234567890]}`),
  );
  assert.ok(batch.ok);
  assert.deepEqual(batch.events.map(({ index }) => index), [0]);
  assert.deepEqual(batch.rejected.map(({ index }) => index), [1]);
});

Deno.test("a deeply nested event beside a big integer costs only those two events", () => {
  const deep = `{"x": ${"[".repeat(20_000)}${"]".repeat(20_000)}}`;
  const text = `{"events": [${JSON.stringify(base)}, ${
    JSON.stringify({ ...base, metadata: "@deep" }).replace('"@deep"', deep)
  }, ${
    JSON.stringify({ ...base, metadata: "@id" }).replace('"@id"', '{"id": 12345678901234567890}')
  }]}`;
  const batch = parseTrackBody(parseJson(text));
  assert.ok(batch.ok);
  assert.deepEqual(batch.events.map(({ index }) => index), [0]);
  // The nesting is reported where it goes too deep, under metadata.x.
  const where = (path: string) => path.split(".").slice(0, 2).join(".");
  assert.deepEqual(batch.rejected.map(({ index, errors }) => [index, where(errors[0].path)]), [
    [1, "metadata.x"],
    [2, "metadata.id"],
  ]);
});

Deno.test("parseJson reads a body with a very long array as JSON.parse does", () => {
  const text = `{"events": [${JSON.stringify(base)}], "x": [${"0,".repeat(250_000)}0]}`;
  assert.deepEqual(parseJson(text), JSON.parse(text));
});

Deno.test("an inexact integer in a batch field the contract does not name is ignored", () => {
  const body = parseTrackBody(
    parseJson(`{"events": [${JSON.stringify(base)}], "trace": 98765432109876543210}`),
  );
  assert.ok(body.ok);
  assert.equal(body.events.length, 1);
  assert.deepEqual(body.rejected, []);
});
