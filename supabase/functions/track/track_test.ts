/**
 * The track function over HTTP, through the local gateway, against the real
 * database: every status of the contract, the validation rules, who may send
 * what, idempotency, sessions, time, and what a database failure leaves.
 *
 * Run with the stack up:
 *   set -a; source <(scripts/stack env); set +a
 *   deno test --allow-all supabase/functions
 */
import assert from "node:assert/strict";
import { createClient, FunctionsHttpError, type SupabaseClient } from "@supabase/supabase-js";
import { corsHeaders as sdkCors } from "@supabase/supabase-js/cors";
import type postgres from "postgres";
import { FaultProxy } from "../../../scripts/faults/tcp_proxy.ts";
import {
  createUser,
  freePort,
  integrationTest,
  mintUserJwt,
  postTrack,
  sql,
  stack,
  startFunction,
  trackUrl,
} from "../../../test_support/stack.ts";

// --- helpers ---------------------------------------------------------------------

type Json = Record<string, unknown>;

/** A valid anonymous-friendly event with a fresh eventId. */
function view(overrides: Json = {}): Json {
  return {
    eventId: crypto.randomUUID(),
    eventType: "view",
    entityType: "event",
    entityId: "event-123",
    anonymousId: "visitor-1",
    ...overrides,
  };
}

/** The stored rows of these event ids, in the order of `eventIds`. */
async function rowsOf(eventIds: unknown[]): Promise<postgres.Row[]> {
  const ids = eventIds.map(String);
  const rows = await sql`
    select * from public.user_interactions where event_id in ${sql(ids)}
  `;
  return ids.flatMap((id) => rows.filter((row) => row.event_id === id));
}

async function systemErrorsOf(userId: string): Promise<postgres.Row[]> {
  return [...await sql`select * from public.system_errors where user_id = ${userId} order by id`];
}

function assertCors(headers: Headers): void {
  assert.equal(headers.get("access-control-allow-origin"), "*");
}

const ids = (events: Json[]) => events.map((event) => event.eventId as string);

// --- protocol ----------------------------------------------------------------------

integrationTest("a CORS preflight through the gateway is answered without a JWT", async () => {
  const response = await fetch(trackUrl, {
    method: "OPTIONS",
    headers: {
      Origin: "http://localhost:3000",
      "Access-Control-Request-Method": "POST",
      "Access-Control-Request-Headers": "authorization, x-client-info, apikey, content-type",
    },
  });
  await response.body?.cancel();
  assert.equal(response.status, 204);
  assertCors(response.headers);
  assert.equal(response.headers.get("access-control-allow-methods"), "POST, OPTIONS");
  const allowed = response.headers.get("access-control-allow-headers")!.split(", ");
  // Whatever supabase-js may send (its own list, kept in step with what it
  // sends), and the x-region of a regional invoke.
  const sent = [...sdkCors["Access-Control-Allow-Headers"].split(", "), "x-region"];
  for (const header of sent) assert.ok(allowed.includes(header), `${header} is allowed`);
});

integrationTest("GET is answered 405 with Allow and a JSON error", async () => {
  const response = await postTrack(undefined, { method: "GET" });
  assert.equal(response.status, 405);
  assert.equal(response.headers.get("allow"), "POST, OPTIONS");
  assertCors(response.headers);
  assert.deepEqual(response.body, {
    error: { code: "method_not_allowed", message: "GET is not allowed; use POST" },
  });
});

integrationTest(
  "missing, forged, expired and alg-none tokens get 401, from the gateway and from the function itself",
  async () => {
    const userId = crypto.randomUUID();
    const now = Math.floor(Date.now() / 1000);
    const b64 = (value: unknown) =>
      btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
    const tokens: Array<[string, string | null]> = [
      ["missing", null],
      ["forged", await mintUserJwt(userId, { secret: "not-the-project-secret-but-32-chars-long" })],
      ["expired", await mintUserJwt(userId, { expiresIn: -120 })],
      [
        "alg none",
        `${b64({ alg: "none", typ: "JWT" })}.${
          b64({ role: "authenticated", sub: userId, exp: now + 3600 })
        }.`,
      ],
    ];
    const event = view();
    const direct = await startFunction("track");
    try {
      for (const [what, token] of tokens) {
        const viaGateway = await postTrack(event, { token });
        assert.equal(viaGateway.status, 401, `gateway, ${what}`);
        assertCors(viaGateway.headers);
        const viaFunction = await postTrack(event, { token, url: direct.url });
        assert.equal(viaFunction.status, 401, `function, ${what}`);
        assertCors(viaFunction.headers);
        assert.equal(viaFunction.body.error.code, "unauthorized", what);
      }
      // The function on its own still serves a valid token.
      const ok = await postTrack(view(), { url: direct.url });
      assert.equal(ok.status, 200);
    } finally {
      await direct.stop();
    }
    assert.deepEqual(await rowsOf([event.eventId]), []);
  },
);

// --- who is calling ----------------------------------------------------------------

integrationTest(
  "the guide's valid event is stored for the signed-in user with its metadata",
  async () => {
    const user = await createUser();
    const event = {
      eventId: crypto.randomUUID(),
      eventType: "view",
      entityType: "event",
      entityId: "event-123",
      metadata: {
        artist_name: "Taylor Swift",
        venue_name: "Madison Square Garden",
        event_date: "2024-06-15T20:00:00Z",
      },
    };
    const response = await postTrack(event, { token: user.token });
    assert.equal(response.status, 200);
    assertCors(response.headers);
    assert.deepEqual(response.body, { accepted: 1, duplicates: 0, rejected: [] });
    const [row] = await rowsOf([event.eventId]);
    assert.equal(row.user_id, user.id);
    assert.equal(row.anonymous_id, null);
    assert.equal(row.session_id, null);
    assert.equal(row.event_type, "view");
    assert.equal(row.entity_type, "event");
    assert.equal(row.entity_id, "event-123");
    assert.deepEqual(row.metadata, event.metadata);
    assert.deepEqual(await systemErrorsOf(user.id), []);
  },
);

integrationTest(
  "a user_id in the body is ignored: the row belongs to the token's user",
  async () => {
    const [user, other] = [await createUser(), await createUser()];
    const event = view({ user_id: other.id, userId: other.id });
    const response = await postTrack({ events: [event], user_id: other.id }, { token: user.token });
    assert.deepEqual(response.body, { accepted: 1, duplicates: 0, rejected: [] });
    const [row] = await rowsOf([event.eventId]);
    assert.equal(row.user_id, user.id);
    assert.equal(
      (await sql`select count(*)::int as n from public.user_interactions where user_id = ${other.id}`)[
        0
      ].n,
      0,
    );
  },
);

integrationTest(
  "the anon key stores anonymous events, requires anonymousId and refuses user-specific types",
  async () => {
    const visitor = `visitor-${crypto.randomUUID()}`;
    const events = [
      view({ anonymousId: visitor }),
      view({ anonymousId: undefined }),
      view({
        anonymousId: visitor,
        eventType: "like",
        entityType: "artist",
        metadata: { artist_name: "A" },
      }),
      view({ anonymousId: visitor, eventType: "ticket_click", entityType: "ticket_link" }),
    ];
    const response = await postTrack({ events });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, {
      accepted: 2,
      duplicates: 0,
      rejected: [
        {
          index: 1,
          eventId: events[1].eventId,
          errors: [{ path: "anonymousId", message: "Required when no user is signed in" }],
        },
        {
          index: 2,
          eventId: events[2].eventId,
          errors: [{ path: "eventType", message: '"like" events need a signed-in user' }],
        },
      ],
    });
    const rows = await rowsOf(ids(events));
    assert.deepEqual(rows.map((r) => [r.event_id, r.user_id, r.anonymous_id]), [
      [events[0].eventId, null, visitor],
      [events[3].eventId, null, visitor],
    ]);
  },
);

integrationTest(
  "the service-role key is an anonymous caller: no user, anonymousId required",
  async () => {
    const events = [
      view({ anonymousId: "server-visitor" }),
      view({ anonymousId: undefined }),
      view({
        anonymousId: "server-visitor",
        eventType: "follow",
        entityType: "artist",
        metadata: { artist_name: "A" },
      }),
    ];
    const response = await postTrack({ events }, { token: stack.serviceRoleKey });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body.accepted, 1);
    assert.deepEqual(response.body.rejected.map((r: { index: number }) => r.index), [1, 2]);
    const rows = await rowsOf(ids(events));
    assert.deepEqual(rows.map((r) => [r.user_id, r.anonymous_id]), [[null, "server-visitor"]]);
  },
);

integrationTest("a signed-in user may send every user-specific event type", async () => {
  const user = await createUser();
  const metadataFor: Record<string, Json> = {
    artist: { artist_name: "The Weeknd" },
    review: { rating: 5 },
  };
  const kinds: Array<[string, string]> = [
    ["like", "artist"],
    ["interest", "event"],
    ["review", "review"],
    ["comment", "event"],
    ["profile_update", "profile"],
    ["follow", "artist"],
    ["unfollow", "artist"],
    ["attendance", "event"],
    ["streaming_top", "song"],
    ["streaming_recent", "song"],
  ];
  const events = kinds.map(([eventType, entityType]) =>
    view({ anonymousId: undefined, eventType, entityType, metadata: metadataFor[entityType] })
  );
  const response = await postTrack({ events }, { token: user.token });
  assert.deepEqual(response.body, { accepted: 10, duplicates: 0, rejected: [] });
  const rows = await rowsOf(ids(events));
  assert.deepEqual(rows.map((r) => r.event_type), kinds.map(([type]) => type));
  assert.ok(rows.every((r) => r.user_id === user.id));
});

integrationTest(
  "a token for a user who does not exist stores nothing and answers 400",
  async () => {
    const token = await mintUserJwt(crypto.randomUUID());
    const event = view({ anonymousId: undefined });
    const response = await postTrack(event, { token });
    assert.equal(response.status, 400);
    assert.equal(response.body.accepted, 0);
    assert.equal(response.body.rejected.length, 1);
    assert.match(response.body.rejected[0].errors[0].message, /unknown user/);
    assert.deepEqual(await rowsOf([event.eventId]), []);
  },
);

// --- validation ----------------------------------------------------------------------

integrationTest(
  "the guide's three invalid examples are answered 400 with per-event errors",
  async () => {
    const user = await createUser();
    const cases: Array<[Json, Array<{ path: string; message: RegExp }>]> = [
      [{ eventType: "view" }, [
        { path: "entityType", message: /^Required$/ },
        { path: "entityId", message: /^Required$/ },
      ]],
      [{ eventType: "invalid_type", entityType: "event", entityId: "event-123" }, [
        { path: "eventType", message: /^Invalid option: expected one of "view"/ },
      ]],
      [
        {
          eventType: "review",
          entityType: "review",
          entityId: "review-123",
          metadata: { rating: "five" },
        },
        [{ path: "metadata.rating", message: /expected number, received string/ }],
      ],
    ];
    for (const [event, expected] of cases) {
      const response = await postTrack(event, { token: user.token });
      assert.equal(response.status, 400);
      assertCors(response.headers);
      assert.equal(response.body.accepted, 0);
      assert.equal(response.body.duplicates, 0);
      assert.equal(response.body.rejected.length, 1);
      const [{ index, errors }] = response.body.rejected;
      assert.equal(index, 0);
      assert.deepEqual(errors.map((e: { path: string }) => e.path), expected.map((e) => e.path));
      errors.forEach((e: { message: string }, i: number) =>
        assert.match(e.message, expected[i].message)
      );
    }
    const logged = await systemErrorsOf(user.id);
    assert.equal(logged.length, 3, "one system_errors row per request");
    assert.ok(logged.every((row) => row.category === "validation"));
    assert.equal(
      await sql`select count(*)::int as n from public.user_interactions where user_id = ${user.id}`
        .then((r) => r[0].n),
      0,
    );
  },
);

integrationTest(
  "a partly invalid batch stores its valid events and logs one system_errors row",
  async () => {
    const user = await createUser();
    const events = [
      view(),
      view({ entityId: "" }),
      view(),
      view({ eventType: "teleport" }),
      view({ entityType: "venue" }),
    ];
    const response = await postTrack({ events }, { token: user.token });
    assert.equal(response.status, 200);
    assert.equal(response.body.accepted, 2);
    assert.deepEqual(
      response.body.rejected.map((
        r: { index: number; eventId: string; errors: Array<{ path: string }> },
      ) => [
        r.index,
        r.eventId,
        r.errors.map((e) => e.path),
      ]),
      [
        [1, events[1].eventId, ["entityId"]],
        [3, events[3].eventId, ["eventType"]],
        [4, events[4].eventId, ["metadata.venue_name"]],
      ],
    );
    assert.deepEqual((await rowsOf(ids(events))).map((r) => r.event_id), [
      events[0].eventId,
      events[2].eventId,
    ]);
    const logged = await systemErrorsOf(user.id);
    assert.equal(logged.length, 1);
    const metadata = logged[0].metadata as { rejections: Array<{ index: number }> };
    assert.deepEqual(metadata.rejections.map((r) => r.index), [1, 3, 4]);
  },
);

integrationTest(
  "refusals of the schema, of the caller's rules and of the database are listed in request order",
  async () => {
    const owner = `v-${crypto.randomUUID().slice(0, 8)}`;
    const sessionId = crypto.randomUUID();
    await postTrack(view({ anonymousId: owner, sessionId }));
    const events = [
      view({ anonymousId: undefined }), // the caller's rules: an anonymous event needs one
      view({ sessionId }), // the database: another visitor's session
      view({ eventType: "teleport" }), // the schema
      view(),
      view({ eventType: "follow" }), // the caller's rules: a user-specific type
    ];
    const response = await postTrack({ events });
    assert.equal(response.status, 200);
    assert.deepEqual(
      response.body.rejected.map((r: { index: number; errors: Array<{ path: string }> }) => [
        r.index,
        r.errors[0].path,
      ]),
      [[0, "anonymousId"], [1, "sessionId"], [2, "eventType"], [4, "eventType"]],
    );
  },
);

integrationTest("every metadata rule is enforced per event by the function", async () => {
  const user = await createUser();
  const cases: Array<
    [entityType: string, metadata: Json | undefined, refusedAt: string | null, eventType?: string]
  > = [
    ["artist", undefined, "metadata.artist_name"],
    ["artist", { genres: ["pop"] }, "metadata.artist_name"],
    ["artist", { artist_name: "The Weeknd", popularity_score: 101 }, "metadata.popularity_score"],
    [
      "artist",
      { artist_name: "The Weeknd", popularity_score: 87, verified: true, extra: "kept" },
      null,
    ],
    ["venue", { venue_city: "NYC" }, "metadata.venue_name"],
    ["venue", { venue_name: "MSG", coordinates: { lat: 40.75, lng: -73.99 } }, null],
    ["venue", { venue_name: "MSG", capacity: "big" }, "metadata.capacity"],
    ["review", {}, "metadata.rating"],
    ["review", { rating: 0 }, "metadata.rating"],
    ["review", { rating: 6 }, "metadata.rating"],
    ["review", { rating: 1 }, null],
    ["review", { rating: 5, review_text: "great" }, null],
    ["event", { event_date: "soon" }, "metadata.event_date"],
    ["event", { genres: "rock" }, "metadata.genres"],
    ["ticket_link", { price: 89.5, currency: "USD", vendor: "Ticketmaster" }, null],
    ["ticket_link", { fees: -1 }, "metadata.fees"],
    ["song", { duration_ms: 1.5 }, "metadata.duration_ms"],
    ["playlist", { track_count: 12, genres: ["jazz"] }, null],
    ["form", { success: "yes" }, "metadata.success"],
    ["event", [] as unknown as Json, "metadata"],
    ["event", { pad: "x".repeat(16 * 1024) }, "metadata"],
    [
      "event",
      { query: "Taylor Swift concerts", results_count: 15, filters: ["upcoming"] },
      null,
      "search",
    ],
    ["event", { results_count: "15" }, "metadata.results_count", "search"],
    ["artist", { query: "weeknd" }, null, "search"],
  ];
  const events = cases.map(([entityType, metadata, , eventType = "view"]) =>
    view({ entityType, metadata, eventType })
  );
  const response = await postTrack({ events }, { token: user.token });
  assert.equal(response.status, 200);
  const refused = cases.flatMap(([, , path], index) => (path === null ? [] : [[index, path]]));
  assert.deepEqual(
    response.body.rejected.map((r: { index: number; errors: Array<{ path: string }> }) => [
      r.index,
      r.errors[0].path,
    ]),
    refused,
  );
  assert.equal(response.body.accepted, cases.length - refused.length);
  const stored = await rowsOf(ids(events));
  assert.deepEqual(
    stored.map((r) => r.event_id),
    events.filter((_, i) => cases[i][2] === null).map((e) => e.eventId),
  );
  assert.deepEqual(stored[0].metadata, cases[3][1], "unknown metadata keys are kept");
});

integrationTest(
  "\\u0000 or an unpaired surrogate anywhere is a 400 validation error, never a 500",
  async () => {
    const bodies: Array<[string, string]> = [
      [JSON.stringify(view({ entityId: "a\u0000b" })), "entityId"],
      [JSON.stringify(view({ metadata: { note: "nul\u0000" } })), "metadata.note"],
      [JSON.stringify(view({ metadata: { "k\u0000": 1 } })), "metadata.k\uFFFD"],
      [
        JSON.stringify(view({ metadata: { list: [{ deep: ["\u0000"] }] } })),
        "metadata.list.0.deep.0",
      ],
      [JSON.stringify(view({ anonymousId: "\u0000" })), "anonymousId"],
      [JSON.stringify(view({ stray: "\u0000" })), "stray"],
      [
        `{"eventType":"view","entityType":"event","entityId":"e","anonymousId":"v","metadata":{"s":"\\ud800"}}`,
        "metadata.s",
      ],
    ];
    for (const [raw, path] of bodies) {
      const response = await postTrack(undefined, { raw });
      assert.equal(response.status, 400, raw);
      assert.equal(response.body.rejected[0].errors[0].path, path);
      assert.match(response.body.rejected[0].errors[0].message, /\\u0000 or an unpaired surrogate/);
    }
    const good = view();
    const mixed = await postTrack({ events: [view({ entityId: "\u0000" }), good] });
    assert.equal(mixed.status, 200);
    assert.equal(mixed.body.accepted, 1);
    assert.equal((await rowsOf([good.eventId])).length, 1);
  },
);

integrationTest(
  "a metadata integer a float cannot hold is refused, not stored rounded",
  async () => {
    const rounded = view({ metadata: {} });
    const exact = view({ metadata: { discord_id: "1234567890123456789", score: 0.1 } });
    // JSON.stringify cannot write the number itself: JavaScript has already rounded it.
    const raw = JSON.stringify({ events: [rounded, exact] }).replace(
      '"metadata":{}',
      '"metadata":{"discord_id":1234567890123456789}',
    );
    const response = await postTrack(undefined, { raw });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, {
      accepted: 1,
      duplicates: 0,
      rejected: [{
        index: 0,
        eventId: rounded.eventId,
        errors: [{
          path: "metadata.discord_id",
          message: "is an integer beyond 2^53, which a 64-bit float cannot hold: " +
            "send 1234567890123456789 as a string",
        }],
      }],
    });
    assert.deepEqual(await rowsOf([rounded.eventId]), []);
    const [row] = await rowsOf([exact.eventId]);
    assert.deepEqual(row.metadata, { discord_id: "1234567890123456789", score: 0.1 });
  },
);

integrationTest("500 events are stored; 501 are refused with 413 and nothing stored", async () => {
  const visitor = `v-${crypto.randomUUID().slice(0, 8)}`;
  const five00 = Array.from({ length: 500 }, () => view({ anonymousId: visitor }));
  const ok = await postTrack({ events: five00 });
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.body, { accepted: 500, duplicates: 0, rejected: [] });
  assert.equal((await rowsOf(ids(five00))).length, 500);

  const five01 = Array.from({ length: 501 }, () => view({ anonymousId: visitor }));
  const refused = await postTrack({ events: five01 });
  assert.equal(refused.status, 413);
  assertCors(refused.headers);
  assert.deepEqual(refused.body, {
    error: {
      code: "too_many_events",
      message: "a batch holds at most 500 events; this one has 501",
    },
  });
  assert.equal((await rowsOf(ids(five01))).length, 0);
});

integrationTest(
  "a body of exactly 512 KiB is processed; one byte more is refused with 413",
  async () => {
    const sized = (event: Json, bytes: number) => {
      const json = JSON.stringify(event);
      return json + " ".repeat(bytes - new TextEncoder().encode(json).length);
    };
    const fits = view();
    const ok = await postTrack(undefined, { raw: sized(fits, 512 * 1024) });
    assert.equal(ok.status, 200);
    assert.equal((await rowsOf([fits.eventId])).length, 1);

    const over = view();
    const refused = await postTrack(undefined, { raw: sized(over, 512 * 1024 + 1) });
    assert.equal(refused.status, 413);
    assertCors(refused.headers);
    assert.deepEqual(refused.body, {
      error: { code: "payload_too_large", message: "the body must be at most 524288 bytes" },
    });
    assert.equal((await rowsOf([over.eventId])).length, 0);

    const huge = await postTrack(undefined, { raw: new Uint8Array(10 * 1024 * 1024).fill(0x20) });
    assert.equal(huge.status, 413);
  },
);

integrationTest(
  "a request refused in many places is answered and logged no larger than it was sent",
  async () => {
    // Metadata 30 keys deep, each key 63 characters, ending in 10 values
    // Postgres cannot store: 10 errors per event, each with a path of about
    // 1,900 characters.
    const user = await createUser();
    const key = (n: number) => `${n}`.padStart(63, "k");
    const events = Array.from({ length: 200 }, (_, i) => {
      let metadata: Json = Object.fromEntries(
        Array.from({ length: 10 }, (_, leaf) => [`leaf${leaf}`, "\u0000"]),
      );
      for (let depth = 29; depth >= 0; depth--) metadata = { [key(i * 100 + depth)]: metadata };
      return view({ anonymousId: undefined, metadata });
    });
    const raw = JSON.stringify({ events });
    assert.ok(raw.length <= 512 * 1024, `${raw.length} bytes`);

    const response = await fetch(trackUrl, {
      method: "POST",
      headers: { Authorization: `Bearer ${user.token}`, "Content-Type": "application/json" },
      body: raw,
    });
    const text = await response.text();
    assert.equal(response.status, 400);
    assert.ok(text.length < raw.length, `${text.length} characters answered to ${raw.length}`);
    const body = JSON.parse(text);
    // Every event is still listed, with its eventId; the first in full.
    assert.deepEqual(
      body.rejected.map((event: Json) => [event.index, event.eventId]),
      events.map((event, index) => [index, event.eventId]),
    );
    assert.equal(body.rejected[0].errors.length, 10);
    assert.deepEqual(body.rejected.at(-1).errors[1], {
      path: "",
      message: "and 9 more not listed: the request's error report is full",
    });
    assert.ok(body.rejected.at(-1).errors[0].path.length <= 64);

    const [logged] = await systemErrorsOf(user.id);
    assert.ok(JSON.stringify(logged.metadata).length < raw.length);
    assert.deepEqual(logged.metadata.rejections, body.rejected);
  },
);

integrationTest(
  "a body that is not JSON, or not an event or batch, is answered 400 with an error",
  async () => {
    const notJson = await postTrack(undefined, { raw: "{not json" });
    assert.equal(notJson.status, 400);
    assertCors(notJson.headers);
    assert.deepEqual(notJson.body, {
      error: { code: "invalid_json", message: "the body is not valid UTF-8 JSON" },
    });
    const notEvent = await postTrack([view()]);
    assert.equal(notEvent.status, 400);
    assert.equal(notEvent.body.error.code, "invalid_body");
  },
);

// --- idempotency -------------------------------------------------------------------

integrationTest(
  "the same eventId twice in one batch is stored once and counted as a duplicate",
  async () => {
    const event = view();
    const response = await postTrack({ events: [event, { ...event, entityId: "changed" }] });
    assert.deepEqual(response.body, { accepted: 1, duplicates: 1, rejected: [] });
    const rows = await rowsOf([event.eventId]);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].entity_id, "event-123");
  },
);

integrationTest(
  "the same eventId in two requests is stored once; the second is a duplicate",
  async () => {
    const user = await createUser();
    const sessionId = crypto.randomUUID();
    const event = view({ sessionId, anonymousId: undefined });
    const first = await postTrack(event, { token: user.token });
    assert.deepEqual(first.body, { accepted: 1, duplicates: 0, rejected: [] });
    const second = await postTrack(event, { token: user.token });
    assert.equal(second.status, 200);
    assert.deepEqual(second.body, { accepted: 0, duplicates: 1, rejected: [] });
    assert.equal((await rowsOf([event.eventId])).length, 1);
    const [session] = await sql`select * from public.sessions where id = ${sessionId}`;
    assert.equal(session.interaction_count, 1, "a duplicate is not counted twice");
    assert.equal(session.page_views, 1);
  },
);

// --- sessions ------------------------------------------------------------------------

integrationTest("a sessionId opened by another user is refused per event", async () => {
  const [owner, intruder] = [await createUser(), await createUser()];
  const sessionId = crypto.randomUUID();
  const opening = view({ sessionId, anonymousId: undefined });
  assert.equal((await postTrack(opening, { token: owner.token })).body.accepted, 1);

  const events = [view({ sessionId, anonymousId: undefined }), view({ anonymousId: undefined })];
  const response = await postTrack({ events }, { token: intruder.token });
  assert.equal(response.status, 200);
  assert.deepEqual(response.body, {
    accepted: 1,
    duplicates: 0,
    rejected: [{
      index: 0,
      eventId: events[0].eventId,
      errors: [{ path: "sessionId", message: "session belongs to another principal" }],
    }],
  });
  assert.deepEqual((await rowsOf(ids(events))).map((r) => r.event_id), [events[1].eventId]);
  const [session] = await sql`select * from public.sessions where id = ${sessionId}`;
  assert.equal(session.user_id, owner.id);
  assert.equal(session.interaction_count, 1);
});

integrationTest("an anonymous visitor cannot add events to another visitor's session", async () => {
  const sessionId = crypto.randomUUID();
  assert.equal((await postTrack(view({ sessionId, anonymousId: "visitor-a" }))).body.accepted, 1);
  const intruding = view({ sessionId, anonymousId: "visitor-b" });
  const response = await postTrack(intruding);
  assert.equal(response.status, 400);
  assert.deepEqual(response.body.rejected[0].errors, [
    { path: "sessionId", message: "session belongs to another principal" },
  ]);
  assert.deepEqual(await rowsOf([intruding.eventId]), []);
});

// --- time ---------------------------------------------------------------------------

integrationTest("clock skew is corrected from sentAt, and the raw timestamp is kept", async () => {
  const fastClock = Date.now() + 3_600_000;
  const event = view({ timestamp: new Date(fastClock - 10_000).toISOString() });
  const response = await postTrack({ events: [event], sentAt: new Date(fastClock).toISOString() });
  assert.equal(response.body.accepted, 1);
  const [row] = await rowsOf([event.eventId]);
  const receivedAt = (row.received_at as Date).getTime();
  assert.equal(receivedAt - (row.occurred_at as Date).getTime(), 10_000);
  assert.equal((row.client_timestamp as Date).toISOString(), event.timestamp);
  assert.ok(Math.abs(receivedAt - Date.now()) < 60_000, "received_at is the server clock");

  // Finer than a millisecond, in an offset Postgres would refuse (past 15
  // hours): kept to the microsecond, and alone it dates the event exactly.
  const local = new Date(Date.now() - 60_000 + 20 * 3_600_000).toISOString().slice(0, 19);
  const precise = view({ timestamp: `${local}.123456+20:00` });
  const response2 = await postTrack({ events: [precise] });
  assert.deepEqual(response2.body, { accepted: 1, duplicates: 0, rejected: [] });
  const [kept] = await sql`
    select to_char(client_timestamp at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') as raw,
      occurred_at = client_timestamp as same
    from public.user_interactions where event_id = ${precise.eventId as string}
  `;
  const utc = new Date(Date.parse(`${local}+20:00`)).toISOString().slice(0, 19);
  assert.deepEqual({ ...kept }, { raw: `${utc}.123456`, same: true });
});

integrationTest(
  "a timestamp alone is kept as occurred_at, none means received_at, a future one is clamped",
  async () => {
    const past = new Date(Date.now() - 90_000).toISOString();
    const events = [
      view({ timestamp: past }),
      view(),
      view({ timestamp: new Date(Date.now() + 86_400_000).toISOString() }),
    ];
    assert.equal((await postTrack({ events })).body.accepted, 3);
    const [alone, none, future] = await rowsOf(ids(events));
    assert.equal((alone.occurred_at as Date).toISOString(), past);
    assert.equal((alone.client_timestamp as Date).toISOString(), past);
    assert.equal((none.occurred_at as Date).getTime(), (none.received_at as Date).getTime());
    assert.equal(none.client_timestamp, null);
    assert.equal((future.occurred_at as Date).getTime(), (future.received_at as Date).getTime());
    assert.equal((future.client_timestamp as Date).toISOString(), events[2].timestamp);
  },
);

integrationTest(
  "events more than 7 days old are refused, unless the client clock was simply behind",
  async () => {
    const eightDaysAgo = Date.now() - 8 * 86_400_000;
    const old = view({ timestamp: new Date(eightDaysAgo).toISOString() });
    const refused = await postTrack(old);
    assert.equal(refused.status, 400);
    assert.deepEqual(refused.body.rejected, [{
      index: 0,
      eventId: old.eventId,
      errors: [{ path: "timestamp", message: "the event happened more than 7 days ago" }],
    }]);
    assert.deepEqual(await rowsOf([old.eventId]), []);

    const skewed = view({ timestamp: new Date(eightDaysAgo - 2_000).toISOString() });
    const accepted = await postTrack({
      events: [skewed],
      sentAt: new Date(eightDaysAgo).toISOString(),
    });
    assert.equal(accepted.body.accepted, 1);
    const [row] = await rowsOf([skewed.eventId]);
    assert.equal((row.received_at as Date).getTime() - (row.occurred_at as Date).getTime(), 2_000);
  },
);

// --- database failures ------------------------------------------------------------

integrationTest("an unreachable database is answered 503 with Retry-After", async () => {
  const instance = await startFunction("track", {
    SUPABASE_DB_URL: `postgresql://postgres:postgres@127.0.0.1:${freePort()}/postgres`,
  });
  try {
    const event = view();
    const response = await postTrack(event, { url: instance.url });
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("retry-after"), "5");
    assertCors(response.headers);
    assert.deepEqual(response.body, {
      error: {
        code: "database_unavailable",
        message: "the database is unreachable; nothing was stored, retry later",
      },
    });
    assert.deepEqual(await rowsOf([event.eventId]), []);
  } finally {
    await instance.stop();
  }
});

/**
 * Runs DDL on a table others use at the same time without ever queueing for
 * its lock: a lock waited for would stall everyone queued behind it (and
 * could deadlock a session that waits on another connection). It gives up
 * the lock after 200 ms and tries again, for up to 30 s.
 */
async function politeDdl(statements: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await sql.begin(async (tx) => {
        await tx.unsafe("set local lock_timeout = '200ms'");
        await tx.unsafe(statements);
      });
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== "55P03" || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 400));
    }
  }
}

/**
 * Sends a batch whose last-inserted event makes a temporary trigger run
 * `action`, then checks that nothing of the request was kept: not the events
 * inserted before it, not the session the call opened, not the
 * system_errors row for its one invalid event.
 */
async function failMidRequest(
  action: string,
): Promise<{ status: number; body: Json; retryAfter: string | null }> {
  const user = await createUser();
  const suffix = crypto.randomUUID().replaceAll("-", "");
  const marker = `fail-here-${suffix}`;
  const sessionId = crypto.randomUUID();
  // Rows are inserted in event_id order: the marker gets the largest id.
  const eventIds = Array.from({ length: 5 }, () => crypto.randomUUID()).sort();
  const events = eventIds.map((eventId, i) =>
    view({ eventId, sessionId, anonymousId: undefined, entityId: i === 4 ? marker : `ok-${i}` })
  );
  events.push(view({ eventType: "nonsense" }));
  await politeDdl(`
    create function public.fail_${suffix}() returns trigger language plpgsql as $$
    begin ${action}; return new; end $$;
    create trigger fail_${suffix} before insert on public.user_interactions
      for each row when (new.entity_id = '${marker}') execute function public.fail_${suffix}();
  `);
  try {
    const response = await postTrack({ events }, { token: user.token });
    assert.deepEqual(await rowsOf(eventIds), [], "no event of the request is stored");
    assert.deepEqual(
      await sql`select id from public.sessions where id = ${sessionId}`.then((r) => [...r]),
      [],
    );
    assert.deepEqual(await systemErrorsOf(user.id), []);
    return {
      status: response.status,
      body: response.body,
      retryAfter: response.headers.get("retry-after"),
    };
  } finally {
    await politeDdl(`
      drop trigger fail_${suffix} on public.user_interactions;
      drop function public.fail_${suffix}();
    `);
  }
}

integrationTest(
  "a database error in the middle of a request stores nothing and answers 503",
  async () => {
    const { status, body, retryAfter } = await failMidRequest(
      "raise exception 'injected failure on the last row'",
    );
    assert.equal(status, 503);
    assert.equal(retryAfter, "30");
    assert.deepEqual(body, {
      error: {
        code: "database_error",
        message: "the database could not store the events; nothing was stored, retry later",
      },
    });
  },
);

integrationTest(
  "a connection lost in the middle of a request stores nothing and answers 503",
  async () => {
    const { status, body, retryAfter } = await failMidRequest(
      "perform pg_terminate_backend(pg_backend_pid())",
    );
    assert.equal(status, 503);
    assert.equal(retryAfter, "5");
    assert.equal((body.error as Json).code, "database_unavailable");
    // The function's pool recovers: the next request is stored.
    const after = view();
    assert.equal((await postTrack(after)).status, 200);
    assert.equal((await rowsOf([after.eventId])).length, 1);
  },
);

integrationTest(
  "an answer lost after the commit is a 503 that says the events may be stored; the retry finds them",
  async () => {
    const database = new URL(stack.dbUrl);
    const proxy = new FaultProxy({
      port: 0,
      targetPort: Number(database.port),
      protocol: "postgres",
    });
    database.port = String(proxy.port);
    const instance = await startFunction("track", {
      SUPABASE_DB_URL: database.href,
      TRACK_RATE_LIMIT: "off",
    });
    try {
      const event = view();
      proxy.cutResponses(1);
      const lost = await postTrack(event, { url: instance.url });
      assert.equal(lost.status, 503);
      assert.equal(lost.headers.get("retry-after"), "5");
      assert.deepEqual(lost.body, {
        error: {
          code: "database_unavailable",
          message: "the connection to the database was lost; the events may have been stored: " +
            "retry later with the same eventIds (events already stored are recognised as " +
            "duplicates)",
        },
      });
      assert.equal(proxy.counts.responsesCut, 1);
      assert.equal((await rowsOf([event.eventId])).length, 1, "it was committed");
      const retried = await postTrack(event, { url: instance.url });
      assert.deepEqual(retried.body, { accepted: 0, duplicates: 1, rejected: [] });
    } finally {
      await instance.stop();
      await proxy.close();
    }
  },
);

// --- the real client --------------------------------------------------------------

/** Sends `body` with supabase-js's functions.invoke and checks its one event was stored. */
async function invokeStoresOne(client: SupabaseClient, body: Json): Promise<void> {
  const { data, error } = await client.functions.invoke("track", { body });
  assert.equal(error, null);
  assert.deepEqual(data, { accepted: 1, duplicates: 0, rejected: [] });
}

integrationTest(
  "supabase-js functions.invoke('track') stores events, signed in and anonymous",
  async () => {
    const user = await createUser();
    const options = { auth: { persistSession: false, autoRefreshToken: false } };
    const signedIn = createClient(stack.url, stack.anonKey, {
      ...options,
      accessToken: () => Promise.resolve(user.token),
    });
    const anonymous = createClient(stack.url, stack.anonKey, options);

    const liked = view({
      anonymousId: undefined,
      eventType: "like",
      entityType: "artist",
      metadata: { artist_name: "The Weeknd" },
    });
    await invokeStoresOne(signedIn, { events: [liked], sentAt: new Date().toISOString() });

    const visit = view({ anonymousId: "invoke-visitor" });
    await invokeStoresOne(anonymous, visit);

    const [likeRow, visitRow] = await rowsOf([liked.eventId, visit.eventId]);
    assert.equal(likeRow.user_id, user.id);
    assert.equal(likeRow.event_type, "like");
    assert.deepEqual(likeRow.metadata, { artist_name: "The Weeknd" });
    assert.equal(visitRow.user_id, null);
    assert.equal(visitRow.anonymous_id, "invoke-visitor");

    const refused = await anonymous.functions.invoke("track", {
      body: { ...view(), eventType: "like" },
    });
    assert.ok(refused.error instanceof FunctionsHttpError);
    assert.equal(refused.error.context.status, 400);
    const body = await refused.error.context.json();
    assert.equal(body.rejected[0].errors[0].path, "eventType");
  },
);

integrationTest(
  "supabase-js with the newer API keys: a publishable key tracks anonymously, a secret key as a server",
  async () => {
    const options = { auth: { persistSession: false, autoRefreshToken: false } };
    // functions.invoke sends such a key in `apikey` only, not as the bearer.
    const browser = createClient(stack.url, stack.publishableKey, options);
    const server = createClient(stack.url, stack.secretKey, options);

    const visit = view({ anonymousId: "publishable-visitor" });
    await invokeStoresOne(browser, visit);

    const relayed = view({ anonymousId: "relayed-visitor" });
    await invokeStoresOne(server, relayed);

    const rows = await rowsOf([visit.eventId, relayed.eventId]);
    assert.deepEqual(rows.map((row) => [row.user_id, row.anonymous_id]), [
      [null, "publishable-visitor"],
      [null, "relayed-visitor"],
    ]);

    // A server names no signed-in user: user-specific events stay refused.
    const like = await server.functions.invoke("track", {
      body: { ...view(), eventType: "like" },
    });
    assert.ok(like.error instanceof FunctionsHttpError);
    assert.equal(like.error.context.status, 400);
  },
);

integrationTest(
  "an API key of another project is refused 401, as the bearer or in apikey",
  async () => {
    const credentials: Array<Record<string, string>> = [
      { Authorization: "Bearer sb_publishable_another-projects-key" },
      { apikey: "sb_publishable_another-projects-key" },
    ];
    for (const headers of credentials) {
      const response = await fetch(trackUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...headers },
        body: JSON.stringify(view()),
      });
      assert.equal(response.status, 401);
      assert.equal(response.headers.get("access-control-allow-origin"), "*");
      assert.deepEqual(await response.json(), {
        error: {
          code: "unauthorized",
          message: "the API key is not one of the project's publishable or secret keys",
        },
      });
    }
  },
);
