/**
 * Property-based fuzzing of the track function with fast-check: any JSON
 * value, and events with mutated fields, sent as the anon key, the
 * service-role key or signed-in users. Whatever the body, the answer is a
 * status of the contract (200, 400 or 413 here: never a 500, nor a 503 that
 * would make a client retry a poison request), with a body of the contract's
 * shape, and afterwards the database holds:
 *
 * - every event the answer did not refuse, once, counted as accepted when it
 *   is new and as a duplicate when its eventId was stored before;
 * - for every session touched, `interaction_count` and `page_views` equal to
 *   counts recomputed from `user_interactions`, `started_at` and
 *   `last_seen_at` equal to their earliest and latest `occurred_at`, and no
 *   event of another principal;
 * - no `event_id` twice.
 *
 * The handler is called in-process (with the stack's database and JWT
 * secret from the environment) for speed, and a smaller number of runs goes
 * over HTTP through the gateway. Runs are bounded and seeded: a failure
 * prints the seed; `FUZZ_SEED=<n>` replays it and `FUZZ_RUNS=<n>` changes
 * the number of runs.
 *
 * Run with the stack up:
 *   set -a; source <(scripts/stack env); set +a
 *   deno test --allow-all supabase/functions/track/fuzz_test.ts
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  createUser,
  integrationTest,
  sql,
  stack,
  type TestUser,
  trackUrl,
} from "../../../test_support/stack.ts";
import { ENTITY_TYPES, EVENT_TYPES } from "../_shared/event_types.ts";
import { handler } from "./handler.ts";

// The handler reads its database and JWT secret from the environment, as in the gateway.
for (
  const [name, value] of [
    ["SUPABASE_JWT_SECRET", stack.jwtSecret],
    ["SUPABASE_DB_URL", stack.dbUrl],
  ]
) {
  if (!Deno.env.get(name)) Deno.env.set(name, value);
}

const seed = Number(Deno.env.get("FUZZ_SEED") ?? "20261124");
const runs = Number(Deno.env.get("FUZZ_RUNS") ?? "300");

type Json = Record<string, unknown>;
type Principal = "anon" | "service" | `user${number}`;

/** Signed-in users to spread the runs over, so that none nears its rate limit. */
const USERS = Math.max(6, Math.ceil(runs / 40));
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const resultKeys = ["accepted", "duplicates", "rejected"];
const bodyErrorCodes = ["invalid_json", "invalid_body", "too_many_events", "payload_too_large"];
const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort().join();

// --- what one run sends, and how -------------------------------------------------------------

/** The state a fuzzing test shares between its runs. */
interface World {
  users: TestUser[];
  principals: Principal[];
  /** A few sessions per principal, which it mostly uses; all of them in `sessions`. */
  sessionsOf: Record<Principal, string[]>;
  sessions: string[];
  /** The anonymous id each principal mostly sends. */
  visitorOf: Record<Principal, string>;
  eventIds: string[];
  /** Every session id a run sent, to check at the end. */
  touched: Set<string>;
  /** Every client event id a run sent. */
  sent: Set<string>;
  /** Each request's source address: anonymous callers are rate-limited per address. */
  requests: number;
  /** Events answered as accepted, and answers by status, over all runs. */
  accepted: number;
  statuses: Record<number, number>;
  addressPrefix: string;
}

async function makeWorld(): Promise<World> {
  const run = crypto.randomUUID().slice(0, 8);
  const principals: Principal[] = [
    "anon",
    "service",
    ...Array.from({ length: USERS }, (_, i) => `user${i}` as const),
  ];
  const sessionsOf = Object.fromEntries(
    principals.map((p) => [p, Array.from({ length: 3 }, () => crypto.randomUUID())]),
  ) as Record<Principal, string[]>;
  return {
    users: await Promise.all(Array.from({ length: USERS }, () => createUser())),
    principals,
    sessionsOf,
    sessions: Object.values(sessionsOf).flat(),
    visitorOf: Object.fromEntries(principals.map((p) => [p, `fuzz-${run}-${p}`])) as Record<
      Principal,
      string
    >,
    eventIds: Array.from({ length: 24 }, () => crypto.randomUUID()),
    touched: new Set(),
    sent: new Set(),
    requests: 0,
    accepted: 0,
    statuses: {},
    addressPrefix: `10.${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 256)}`,
  };
}

type Send = (world: World, principal: Principal, body: string) => Promise<Response>;

function requestHeaders(world: World, principal: Principal): Headers {
  const token = principal === "anon"
    ? stack.anonKey
    : principal === "service"
    ? stack.serviceRoleKey
    : world.users[Number(principal.slice(4))].token;
  return new Headers({
    "Authorization": `Bearer ${token}`,
    "apikey": stack.anonKey,
    "Content-Type": "application/json",
    // 64 addresses, so that no anonymous address nears the rate limit.
    "X-Forwarded-For": `${world.addressPrefix}.${world.requests++ % 64}`,
  });
}

const inProcess: Send = (world, principal, body) =>
  handler(
    new Request("http://127.0.0.1/functions/v1/track", {
      method: "POST",
      headers: requestHeaders(world, principal),
      body,
    }),
  );

const overHttp: Send = (world, principal, body) =>
  fetch(trackUrl, {
    method: "POST",
    headers: requestHeaders(world, principal),
    body,
    signal: AbortSignal.timeout(30_000),
  });

// --- the property ----------------------------------------------------------------------------

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The events of a body, as the function tells a batch from a single event. */
function eventsOf(body: unknown): unknown[] {
  if (isObject(body) && "events" in body) return Array.isArray(body.events) ? body.events : [];
  return [body];
}

function clientEventId(event: unknown): string | undefined {
  const id = isObject(event) ? event.eventId : undefined;
  return typeof id === "string" && uuidPattern.test(id) ? id.toLowerCase() : undefined;
}

async function storedIds(ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await sql`
    select event_id::text as id from public.user_interactions where event_id = any(${ids}::uuid[])
  `;
  return new Set(rows.map((row) => row.id));
}

/** Sends one body and checks the answer and what it stored. */
async function exercise(world: World, send: Send, principal: Principal, body: unknown) {
  const text = JSON.stringify(body) ?? "null";
  const events = eventsOf(body);
  const ids = [...new Set(events.map(clientEventId).filter((id) => id !== undefined))];
  for (const event of events) {
    const session = isObject(event) ? event.sessionId : undefined;
    if (typeof session === "string" && uuidPattern.test(session)) {
      world.touched.add(session.toLowerCase());
    }
  }
  for (const id of ids) world.sent.add(id);
  const before = await storedIds(ids);

  const response = await send(world, principal, text);
  const answer = await response.text();
  world.statuses[response.status] = (world.statuses[response.status] ?? 0) + 1;
  const where = `${principal} sent ${text.slice(0, 500)}\n  and got ${response.status} ${
    answer.slice(0, 500)
  }`;
  assert.ok([200, 400, 413].includes(response.status), `an unexpected status: ${where}`);
  assert.equal(response.headers.get("access-control-allow-origin"), "*", `CORS: ${where}`);
  // Only a handler running in this process could have changed it.
  if (send === inProcess) {
    assert.equal(
      Object.getOwnPropertyNames(Object.prototype).sort().join(),
      prototypeKeys,
      `Object.prototype is untouched: ${where}`,
    );
  }
  const json = JSON.parse(answer);

  if (Object.keys(json).join() === "error") {
    assert.notEqual(response.status, 200, where);
    assert.deepEqual(Object.keys(json.error), ["code", "message"], where);
    assert.ok(bodyErrorCodes.includes(json.error.code), where);
    assert.deepEqual(
      [...await storedIds(ids)].sort(),
      [...before].sort(),
      `a refused body stores nothing: ${where}`,
    );
    return;
  }
  assert.deepEqual(Object.keys(json), resultKeys, where);
  const { accepted, duplicates, rejected } = json as {
    accepted: number;
    duplicates: number;
    rejected: Array<{ index: number; eventId?: string; errors: unknown[] }>;
  };
  assert.equal(response.status, accepted + duplicates > 0 ? 200 : 400, where);
  world.accepted += accepted;
  const refused = rejected.map((r) => r.index);
  assert.deepEqual(
    refused,
    [...new Set(refused)].sort((a, b) => a - b),
    `refused once each: ${where}`,
  );
  assert.ok(refused.every((i) => Number.isInteger(i) && i >= 0 && i < events.length), where);
  assert.equal(
    accepted + duplicates + rejected.length,
    events.length,
    `every event counted: ${where}`,
  );
  for (const { index, eventId, errors } of rejected) {
    assert.equal(eventId?.toLowerCase(), clientEventId(events[index]), `eventId echoed: ${where}`);
    assert.ok(errors.length > 0 && errors.length <= 10, where);
  }

  const after = await storedIds(ids);
  const taken = events.filter((_, i) => !refused.includes(i));
  const takenIds = taken.map(clientEventId);
  for (const id of takenIds) {
    if (id) assert.ok(after.has(id), `event ${id} was not refused, so it is stored: ${where}`);
  }
  const fresh = [...after].filter((id) => !before.has(id));
  const withoutId = takenIds.filter((id) => id === undefined).length;
  const withId = takenIds.length - withoutId;
  assert.equal(accepted, fresh.length + withoutId, `new events are accepted: ${where}`);
  assert.equal(duplicates, withId - fresh.length, `known events are duplicates: ${where}`);
  if (fresh.length > 0) {
    const owners = await sql`
      select distinct user_id::text as user_id from public.user_interactions
      where event_id = any(${fresh}::uuid[])
    `;
    const user = principal.startsWith("user") ? world.users[Number(principal.slice(4))].id : null;
    assert.deepEqual(owners.map((o) => o.user_id), [user], `stored for the caller: ${where}`);
  }
  await assertInvariants(world, [...world.touched], ids);
}

/** The database's invariants for these sessions and event ids. */
async function assertInvariants(world: World, sessions: string[], eventIds: string[]) {
  const broken = await sql`
    select s.id, s.interaction_count, s.page_views, c.interactions, c.views,
      s.started_at = c.first_at as started_ok, s.last_seen_at = c.last_at as last_seen_ok,
      c.foreign_events
    from public.sessions s
    cross join lateral (
      select
        count(*)::integer as interactions,
        (count(*) filter (where ui.event_type = 'view'))::integer as views,
        min(ui.occurred_at) as first_at,
        max(ui.occurred_at) as last_at,
        (count(*) filter (
          where ui.user_id is distinct from s.user_id
            or (s.user_id is null and ui.anonymous_id is distinct from s.anonymous_id)
        ))::integer as foreign_events
      from public.user_interactions ui
      where ui.session_id = s.id
    ) c
    where s.id = any(${sessions}::uuid[])
      and (
        s.interaction_count <> c.interactions or s.page_views <> c.views
        or s.started_at is distinct from c.first_at or s.last_seen_at is distinct from c.last_at
        or c.foreign_events > 0
      )
  `;
  assert.deepEqual([...broken], [], "sessions agree with their interactions");
  const orphans = await sql`
    select distinct ui.session_id from public.user_interactions ui
    where ui.session_id = any(${sessions}::uuid[])
      and not exists (select from public.sessions s where s.id = ui.session_id)
  `;
  assert.deepEqual([...orphans], [], "every interaction's session exists");
  const twice = await sql`
    select event_id, count(*)::integer as copies from public.user_interactions
    where event_id = any(${[...new Set([...eventIds, ...world.eventIds])]}::uuid[])
    group by event_id having count(*) > 1
  `;
  assert.deepEqual([...twice], [], "no event_id is stored twice");
}

// --- arbitraries -----------------------------------------------------------------------------

/** Single characters that trouble JSON, Postgres or JavaScript. */
const troublesomeCharacters = ["\u0000", "\ud800", "\udfff", "\u202e", "😀", "\\", '"'];
/** Whole strings that do. */
const troublesomeStrings = [
  ...troublesomeCharacters,
  "'; drop table public.user_interactions; --",
  "__proto__",
  "é".repeat(130),
];

/** Characters of generated strings: mostly any well-formed one, sometimes a troublesome one. */
const unit = fc.oneof(
  {
    arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 })
      .filter((c) => c !== "\u0000" && c.isWellFormed()),
    weight: 15,
  },
  { arbitrary: fc.constantFrom(...troublesomeCharacters), weight: 1 },
);

const anyJson = fc.jsonValue({ maxDepth: 4, stringUnit: unit });

const hostileString = fc.oneof(
  { arbitrary: fc.string({ maxLength: 24 }), weight: 6 },
  { arbitrary: fc.string({ unit, maxLength: 12 }), weight: 2 },
  { arbitrary: fc.constantFrom(...troublesomeStrings), weight: 1 },
);

function arbitraries(world: World) {
  const now = Date.now();
  const day = 24 * 60 * 60 * 1000;
  // Mostly within the 7 days the contract accepts, sometimes older, now and
  // then at the edges of what Postgres can store.
  const time = fc.oneof(
    {
      arbitrary: fc.integer({ min: -6 * day, max: day / 24 })
        .map((offset) => new Date(now + offset).toISOString()),
      weight: 12,
    },
    {
      arbitrary: fc.integer({ min: -30 * day, max: -6 * day })
        .map((offset) => new Date(now + offset).toISOString()),
      weight: 2,
    },
    {
      arbitrary: fc.constantFrom(
        "9999-12-31T23:59:59.999Z",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
      ),
      weight: 1,
    },
  );
  const principal = fc.constantFrom(...world.principals);
  /** Mostly the principal's own, sometimes anyone's. */
  const mostlyOwn = <T>(own: T[], all: T[]) =>
    fc.oneof({ arbitrary: fc.constantFrom(...own), weight: 4 }, {
      arbitrary: fc.constantFrom(...all),
      weight: 1,
    });
  const name = fc.oneof(
    { arbitrary: fc.string({ minLength: 1, maxLength: 20 }), weight: 4 },
    { arbitrary: hostileString, weight: 1 },
  );
  const metadata = fc.oneof(
    fc.record({
      artist_name: name,
      venue_name: name,
      rating: fc.integer({ min: 1, max: 5 }),
      genres: fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
      capacity: fc.nat(),
      query: fc.string({ maxLength: 20 }),
    }, { requiredKeys: ["artist_name", "venue_name", "rating"] }),
    fc.dictionary(hostileString, anyJson, { maxKeys: 4 }),
  );
  const event = (who: Principal) =>
    fc.record({
      eventId: fc.oneof(fc.constantFrom(...world.eventIds), fc.uuid()),
      sessionId: mostlyOwn(world.sessionsOf[who], world.sessions),
      anonymousId: mostlyOwn([world.visitorOf[who]], Object.values(world.visitorOf)),
      eventType: fc.constantFrom(...EVENT_TYPES),
      entityType: fc.constantFrom(...ENTITY_TYPES),
      entityId: fc.string({ minLength: 1, maxLength: 40 }),
      metadata,
      timestamp: time,
    }, { requiredKeys: ["anonymousId", "eventType", "entityType", "entityId"] });

  const fields = [
    "eventId",
    "sessionId",
    "anonymousId",
    "eventType",
    "entityType",
    "entityId",
    "metadata",
    "timestamp",
    "user_id",
    "__proto__",
    "constructor",
    "events",
  ];
  type Mutation =
    | { set: string; to: unknown }
    | { remove: string }
    | { append: string; text: string }
    | { metadataKey: string; to: unknown }
    | { nestMetadata: number };
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ set: fc.constantFrom(...fields), to: anyJson }),
    fc.record({ remove: fc.constantFrom(...fields) }),
    fc.record({
      append: fc.constantFrom(...fields.slice(0, 8)),
      text: fc.constantFrom(...troublesomeStrings),
    }),
    fc.record({ metadataKey: hostileString, to: anyJson }),
    fc.record({ nestMetadata: fc.integer({ min: 28, max: 40 }) }),
  );
  const define = (target: Json, key: string, value: unknown) =>
    Object.defineProperty(target, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  // Half the events are left as generated, the others get one to three changes.
  const changes = fc.oneof(fc.constant([]), fc.array(mutation, { minLength: 1, maxLength: 3 }));
  const mutated = (who: Principal) =>
    fc.tuple(event(who), changes).map(([base, changes]) => {
      const e: Json = structuredClone(base);
      for (const change of changes) {
        if ("set" in change) define(e, change.set, structuredClone(change.to));
        else if ("remove" in change) delete e[change.remove];
        else if ("append" in change) {
          define(e, change.append, `${e[change.append] ?? ""}${change.text}`);
        } else if ("metadataKey" in change) {
          const metadata = isObject(e.metadata) ? e.metadata : define(e, "metadata", {}).metadata;
          define(metadata as Json, change.metadataKey, structuredClone(change.to));
        } else {
          let nested: unknown = 1;
          for (let i = 0; i < change.nestMetadata; i++) {
            nested = { a: nested };
          }
          e.metadata = nested;
        }
      }
      return e;
    });
  const body = (who: Principal) =>
    fc.oneof(
      mutated(who),
      fc.record({
        events: fc.array(mutated(who), { minLength: 1, maxLength: 12 }),
        sentAt: fc.oneof(time, anyJson),
      }, { requiredKeys: ["events"] }),
    );
  const request = principal.chain((who) =>
    body(who).map((sent) => [who, sent] as [Principal, unknown])
  );
  return { principal, request };
}

// --- the tests -------------------------------------------------------------------------------

/** Runs a property with the seed, keeping the handler's per-request log lines for a failure. */
async function check<T extends unknown[]>(
  property: fc.IAsyncPropertyWithHooks<T>,
  numRuns: number,
): Promise<void> {
  const log: string[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => {
    log.push(args.map(String).join(" "));
    if (log.length > 40) log.shift();
  };
  try {
    await fc.assert(property, { seed, numRuns });
  } catch (error) {
    console.error = consoleError;
    console.error(`the last lines the handler logged:\n${log.join("\n")}`);
    throw new Error(
      `fuzzing failed with seed ${seed}; replay it with FUZZ_SEED=${seed}\n${error}`,
      { cause: error },
    );
  } finally {
    console.error = consoleError;
  }
}

// Arbitrary JSON almost never names a valid event, so this one checks the
// answers; what is stored is checked by the mutated-events properties below.
integrationTest(
  "fuzz: any JSON value gets 200, 400 or 413, a well-formed answer and CORS headers",
  async () => {
    const world = await makeWorld();
    const { principal } = arbitraries(world);
    await check(
      fc.asyncProperty(principal, anyJson, (who, body) => exercise(world, inProcess, who, body)),
      runs,
    );
    assert.equal(world.requests, runs, "every generated value was sent");
  },
);

integrationTest(
  "fuzz: events with mutated fields are stored once or refused, and sessions stay exact",
  async () => {
    const world = await makeWorld();
    const { request } = arbitraries(world);
    await check(
      fc.asyncProperty(request, ([who, sent]) => exercise(world, inProcess, who, sent)),
      runs,
    );
    await assertInvariants(world, [...world.touched], [...world.sent]);
    // A property that refused everything would prove little.
    assert.ok(world.accepted >= runs / 10, `only ${world.accepted} events were accepted`);
    assert.ok(
      (world.statuses[200] ?? 0) >= runs / 10,
      `answers: ${JSON.stringify(world.statuses)}`,
    );
  },
);

integrationTest(
  "fuzz over HTTP: mutated events and any JSON value through the gateway",
  async () => {
    const world = await makeWorld();
    const { principal, request } = arbitraries(world);
    await check(
      fc.asyncProperty(
        fc.oneof(request, fc.tuple(principal, anyJson)),
        ([who, sent]) => exercise(world, overHttp, who, sent),
      ),
      Math.max(1, Math.round(runs / 6)),
    );
    await assertInvariants(world, [...world.touched], [...world.sent]);
  },
);
