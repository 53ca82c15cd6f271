/**
 * Abuse limits of the track function over HTTP, against the real database:
 * the per-principal rate limit (429 with Retry-After, held across instances
 * by the database, requests and events), system_errors bounded under a flood
 * of bad requests, floods and oversized bodies refused before the body is
 * read, and a slow statement cut off by the statement timeout.
 *
 * Each test starts its own function instances with the limits it needs, so
 * the gateway's own settings do not matter, and uses its own users and
 * addresses.
 *
 * Run with the stack up:
 *   set -a; source <(scripts/stack env); set +a
 *   deno test --allow-all supabase/functions/track/abuse_test.ts
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import {
  createUser,
  type FunctionInstance,
  integrationTest,
  sql,
  stack,
  startFunction,
  type TrackResponse,
} from "../../../test_support/stack.ts";

type Json = Record<string, unknown>;

/** Starts a track instance with the rate limit on, at these limits. */
function startLimited(
  requestsPerMinute: number,
  eventsPerMinute = 100_000,
  env: Record<string, string> = {},
): Promise<FunctionInstance> {
  return startFunction("track", {
    TRACK_RATE_LIMIT: "on",
    TRACK_RATE_LIMIT_REQUESTS_PER_MINUTE: String(requestsPerMinute),
    TRACK_RATE_LIMIT_EVENTS_PER_MINUTE: String(eventsPerMinute),
    ...env,
  });
}

/** Runs `fn` with instances, stopping them whatever happens. */
async function withInstances(
  starting: Array<Promise<FunctionInstance>>,
  fn: (instances: FunctionInstance[]) => Promise<void>,
): Promise<void> {
  const instances = await Promise.all(starting);
  try {
    await fn(instances);
  } finally {
    await Promise.all(instances.map((instance) => instance.stop()));
  }
}

/** A fresh documentation address (2001:db8::/32), so every run is a new principal. */
function randomAddress(): string {
  const group = () => Math.floor(Math.random() * 0x10000).toString(16);
  return `2001:db8:${group()}:${group()}:${group()}::1`;
}

interface SendOptions {
  token?: string;
  forwardedFor?: string;
}

/** POSTs `body` to an instance as the platform's edge would, and reads the answer. */
async function send(
  instance: FunctionInstance,
  body: unknown,
  options: SendOptions = {},
): Promise<TrackResponse> {
  const headers: Record<string, string> = {
    "Authorization": `Bearer ${options.token ?? stack.anonKey}`,
    "apikey": stack.anonKey,
    "Content-Type": "application/json",
  };
  if (options.forwardedFor) headers["X-Forwarded-For"] = options.forwardedFor;
  const response = await fetch(instance.url, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: JSON.parse(text) };
}

function view(overrides: Json = {}): Json {
  return {
    eventId: crypto.randomUUID(),
    eventType: "view",
    entityType: "event",
    entityId: "event-123",
    ...overrides,
  };
}

/** A batch of `count` valid events for a signed-in user. */
const batch = (count: number) => ({ events: Array.from({ length: count }, () => view()) });

const ids = (events: Json[]) => events.map((event) => String(event.eventId));

async function storedCount(eventIds: string[]): Promise<number> {
  const [{ count }] = await sql`
    select count(*)::integer as count from public.user_interactions
    where event_id in ${sql(eventIds)}
  `;
  return count;
}

async function systemErrorsOf(userId: string): Promise<postgres.Row[]> {
  return [...await sql`select * from public.system_errors where user_id = ${userId} order by id`];
}

function assertRateLimited(response: TrackResponse, maxRetryAfter: number): void {
  assert.equal(response.status, 429);
  assert.equal(response.headers.get("access-control-allow-origin"), "*");
  assert.equal(response.headers.get("content-type"), "application/json");
  assert.deepEqual(response.body, {
    error: { code: "rate_limited", message: "too many requests; retry later" },
  });
  const retryAfter = Number(response.headers.get("retry-after"));
  assert.ok(
    Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= maxRetryAfter,
    `Retry-After ${response.headers.get("retry-after")} is within 1..${maxRetryAfter}`,
  );
}

// --- the rate limit ----------------------------------------------------------------

integrationTest(
  "a principal over its requests per minute is answered 429 with Retry-After, CORS and a JSON error",
  async () => {
    await withInstances([startLimited(2)], async ([instance]) => {
      const user = await createUser();
      const events = [view(), view(), view()];
      const statuses = [];
      for (const event of events) {
        statuses.push(await send(instance, event, { token: user.token }));
      }
      assert.deepEqual(statuses.map((r) => r.status), [200, 200, 429]);
      assertRateLimited(statuses[2], 30);
      assert.equal(statuses[2].headers.get("retry-after"), "30");
      assert.equal(await storedCount(ids(events)), 2);
    });
  },
);

integrationTest(
  "the limit holds across instances: the database refuses what neither instance alone would, storing nothing",
  async () => {
    await withInstances([startLimited(3), startLimited(3)], async ([a, b]) => {
      const user = await createUser();
      const allowed = [view(), view(), view()];
      const statuses = [];
      for (
        const [instance, event] of [[a, allowed[0]], [a, allowed[1]], [b, allowed[2]]] as const
      ) {
        statuses.push((await send(instance, event, { token: user.token })).status);
      }
      assert.deepEqual(statuses, [200, 200, 200]);

      // Instance b has seen one request of its three: only the database can refuse this one.
      // It holds a valid and an invalid event: had the ingestion run, one would be stored
      // and the other logged.
      const refused = [view(), view({ eventType: "teleport" })];
      const response = await send(b, { events: refused }, { token: user.token });
      assertRateLimited(response, 20);
      assert.ok(Number(response.headers.get("retry-after")) >= 18);
      assert.equal(await storedCount(ids(allowed)), 3);
      assert.equal(await storedCount(ids(refused)), 0);
      assert.deepEqual(await systemErrorsOf(user.id), []);
    });
  },
);

integrationTest(
  "events per minute are counted across instances too, every event of a request counting",
  async () => {
    await withInstances([startLimited(100, 600), startLimited(100, 600)], async ([a, b]) => {
      const user = await createUser();
      const first = batch(500);
      assert.equal((await send(a, first, { token: user.token })).status, 200);
      // 500 of 600 events cost 50 s of the minute; 200 more would need 20 s.
      const over = batch(200);
      const refused = await send(b, over, { token: user.token });
      assertRateLimited(refused, 10);
      assert.ok(Number(refused.headers.get("retry-after")) >= 8);
      const fits = batch(100);
      const accepted = await send(b, fits, { token: user.token });
      assert.equal(accepted.status, 200);
      assert.deepEqual(accepted.body, { accepted: 100, duplicates: 0, rejected: [] });
      assert.equal(await storedCount(ids(first.events)), 500);
      assert.equal(await storedCount(ids(over.events)), 0);
      assert.equal(await storedCount(ids(fits.events)), 100);
    });
  },
);

integrationTest(
  "events refused by validation count against the events per minute too",
  async () => {
    await withInstances([startLimited(100, 10)], async ([instance]) => {
      const user = await createUser();
      // Ten events without an entityId: all refused, and all charged.
      const invalid = { events: Array.from({ length: 10 }, () => view({ entityId: undefined })) };
      const refused = await send(instance, invalid, { token: user.token });
      assert.equal(refused.status, 400);
      assert.equal((refused.body as { rejected: unknown[] }).rejected.length, 10);
      const valid = batch(1);
      assertRateLimited(await send(instance, valid, { token: user.token }), 60);
      assert.equal(await storedCount(ids(valid.events)), 0);
    });
  },
);

integrationTest(
  "anonymous callers are limited per address from X-Forwarded-For, whatever their anonymousId",
  async () => {
    await withInstances([startLimited(2)], async ([instance]) => {
      const address = randomAddress();
      const other = randomAddress();
      const statuses = [];
      for (
        const [anonymousId, forwardedFor] of [
          ["visitor-1", address],
          ["visitor-2", `${address}, 10.0.0.1`],
          ["visitor-3", address],
          ["visitor-4", other],
        ]
      ) {
        const response = await send(instance, view({ anonymousId }), { forwardedFor });
        statuses.push(response.status);
      }
      assert.deepEqual(statuses, [200, 200, 429, 200]);
    });
  },
);

integrationTest("TRACK_RATE_LIMIT=off lets a principal past any limit", async () => {
  await withInstances(
    [startLimited(1, 1, { TRACK_RATE_LIMIT: "off" })],
    async ([instance]) => {
      const user = await createUser();
      const statuses = [];
      for (let i = 0; i < 3; i++) {
        statuses.push((await send(instance, batch(2), { token: user.token })).status);
      }
      assert.deepEqual(statuses, [200, 200, 200]);
    },
  );
});

// --- system_errors under a flood -----------------------------------------------------

integrationTest(
  "a flood of bad requests across instances writes one system_errors row per allowed request, then 429s",
  async () => {
    const limit = 5;
    await withInstances([startLimited(limit), startLimited(limit)], async (instances) => {
      const user = await createUser();
      // Every request is a valid batch of one invalid event: answered 400 and
      // logged to system_errors when it reaches the ingestion.
      const flood = Array.from(
        { length: 30 },
        (_, i) =>
          send(instances[i % 2], { events: [view({ eventType: "teleport" })] }, {
            token: user.token,
          }),
      );
      const responses = await Promise.all(flood);
      const statuses = responses.map((r) => r.status);
      assert.equal(statuses.filter((s) => s === 400).length, limit, `statuses ${statuses}`);
      assert.equal(statuses.filter((s) => s === 429).length, 30 - limit, `statuses ${statuses}`);
      for (const response of responses.filter((r) => r.status === 429)) {
        assertRateLimited(response, 60 / limit);
      }
      const errors = await systemErrorsOf(user.id);
      assert.equal(errors.length, limit);
      assert.ok(errors.every((row) => row.category === "validation"));

      // And after the flood, still refused.
      const after = await send(instances[0], view(), { token: user.token });
      assertRateLimited(after, 60 / limit);
      assert.equal((await systemErrorsOf(user.id)).length, limit);
    });
  },
);

// --- refused before the body is read -------------------------------------------------

/**
 * Sends only the head of a POST (no body bytes, however many it declares)
 * over a raw connection and returns the status line and headers the server
 * answers with, or throws if none comes within `withinMs`.
 */
async function headOnly(
  instance: FunctionInstance,
  headers: Record<string, string>,
  withinMs = 5_000,
): Promise<{ status: number; headers: Headers }> {
  const url = new URL(instance.url);
  const connection = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  const timer = setTimeout(() => connection.close(), withinMs);
  try {
    const head = [
      `POST ${url.pathname} HTTP/1.1`,
      `Host: ${url.host}`,
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
      "",
      "",
    ].join("\r\n");
    await connection.write(new TextEncoder().encode(head));
    const buffer = new Uint8Array(64 * 1024);
    let received = "";
    while (!received.includes("\r\n\r\n")) {
      const read = await connection.read(buffer);
      if (read === null) throw new Error(`no answer within ${withinMs} ms: ${received}`);
      received += new TextDecoder().decode(buffer.subarray(0, read));
    }
    const [statusLine, ...lines] = received.split("\r\n\r\n")[0].split("\r\n");
    const answered = new Headers();
    for (const line of lines) {
      const colon = line.indexOf(":");
      answered.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    return { status: Number(statusLine.split(" ")[1]), headers: answered };
  } finally {
    clearTimeout(timer);
    try {
      connection.close();
    } catch { /* closed by the timer */ }
  }
}

integrationTest(
  "a principal over its limit is answered 429 before its body is sent at all",
  async () => {
    await withInstances([startLimited(1)], async ([instance]) => {
      const user = await createUser();
      assert.equal((await send(instance, view(), { token: user.token })).status, 200);
      const answer = await headOnly(instance, {
        "Authorization": `Bearer ${user.token}`,
        "Content-Type": "application/json",
        "Content-Length": "100000",
      });
      assert.equal(answer.status, 429);
      assert.equal(answer.headers.get("retry-after"), "60");
      assert.equal(answer.headers.get("access-control-allow-origin"), "*");
    });
  },
);

integrationTest(
  "a declared Content-Length over 512 KiB is answered 413 before the body is sent",
  async () => {
    await withInstances([startLimited(100)], async ([instance]) => {
      const answer = await headOnly(instance, {
        "Authorization": `Bearer ${stack.anonKey}`,
        "Content-Type": "application/json",
        "Content-Length": String(10 * 1024 * 1024),
        "X-Forwarded-For": randomAddress(),
      });
      assert.equal(answer.status, 413);
      assert.equal(answer.headers.get("access-control-allow-origin"), "*");
    });
  },
);

// --- the statement timeout -----------------------------------------------------------

integrationTest(
  "a statement slower than the statement timeout is cut off by Postgres and answered 503 with Retry-After",
  async () => {
    const timeoutMs = 500;
    await withInstances(
      [startLimited(100, 100_000, { TRACK_DB_STATEMENT_TIMEOUT_MS: String(timeoutMs) })],
      async ([instance]) => {
        const user = await createUser();
        const sessionId = crypto.randomUUID();
        const opening = view({ sessionId });
        assert.equal((await send(instance, opening, { token: user.token })).status, 200);

        // Hold the session's row, which the next request must lock to add to it.
        let release = () => {};
        const released = new Promise<void>((resolve) => (release = resolve));
        let locked = () => {};
        const isLocked = new Promise<void>((resolve) => (locked = resolve));
        const holder = sql.begin(async (tx) => {
          await tx`select id from public.sessions where id = ${sessionId} for update`;
          locked();
          await released;
        });
        await isLocked;

        const slow = view({ sessionId });
        let response: TrackResponse;
        try {
          response = await send(instance, slow, { token: user.token });
        } finally {
          release();
          await holder;
        }

        assert.equal(response.status, 503);
        assert.equal(response.headers.get("retry-after"), "5");
        assert.equal(response.headers.get("access-control-allow-origin"), "*");
        assert.deepEqual(response.body, {
          error: {
            code: "database_unavailable",
            message:
              "the database did not finish storing the events in time; nothing was stored, " +
              "retry later",
          },
        });
        // Postgres cancelled the statement (SQLSTATE 57014), not the function's
        // own deadline, which would say it had no answer in time.
        assert.match(
          instance.log(),
          /track: database unavailable: canceling statement due to statement timeout/,
        );
        assert.doesNotMatch(instance.log(), /no answer from the database in time/);
        assert.equal(await storedCount([String(slow.eventId)]), 0);

        // Nothing was half-written: sent again, the event is new, not a duplicate.
        const again = await send(instance, slow, { token: user.token });
        assert.deepEqual(again.body, { accepted: 1, duplicates: 0, rejected: [] });
        const [session] = await sql`
          select interaction_count from public.sessions where id = ${sessionId}
        `;
        assert.equal(session.interaction_count, 2);
      },
    );
  },
);
