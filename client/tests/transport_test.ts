import assert from "node:assert/strict";
import { createClient } from "@supabase/supabase-js";
import { invokeTrack, keepaliveTrack } from "../src/transport.ts";

const RESULT = {
  accepted: 1,
  duplicates: 1,
  rejected: [{ index: 2, eventId: "e3", errors: [{ path: "entityId", message: "Required" }] }],
};
const ANON_KEY =
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0";

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

interface Seen {
  method: string;
  path: string;
  headers: Headers;
  body: string;
}

/** A local stand-in for the functions endpoint answering `respond`, recording requests. */
async function withServer(
  respond: (seen: Seen) => Response,
  run: (url: string, seen: Seen[]) => Promise<void>,
): Promise<void> {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const request = {
      method: req.method,
      path: new URL(req.url).pathname,
      headers: req.headers,
      body: await req.text(),
    };
    seen.push(request);
    return respond(request);
  });
  try {
    await run(`http://127.0.0.1:${server.addr.port}`, seen);
  } finally {
    await server.shutdown();
  }
}

function supabaseAt(url: string) {
  return createClient(url, ANON_KEY, { auth: { persistSession: false, autoRefreshToken: false } });
}

Deno.test("transport: supabase-js invoke sends the JSON batch with our headers", async () => {
  await withServer(() => json(200, RESULT), async (url, seen) => {
    const body = JSON.stringify({ events: [{ eventId: "e1" }], sentAt: "2025-01-01T00:00:00Z" });
    const delivery = await invokeTrack(supabaseAt(url).functions, "track", body, {
      Authorization: "Bearer user-token",
    });
    assert.deepEqual(delivery, { kind: "processed", status: 200, result: RESULT });
    assert.equal(seen.length, 1);
    assert.equal(seen[0].method, "POST");
    assert.equal(seen[0].path, "/functions/v1/track");
    assert.equal(seen[0].body, body);
    assert.equal(seen[0].headers.get("content-type"), "application/json");
    assert.equal(seen[0].headers.get("authorization"), "Bearer user-token");
    assert.equal(seen[0].headers.get("apikey"), ANON_KEY);
  });
});

Deno.test("transport: supabase-js invoke answers 503 + Retry-After as a retry", async () => {
  await withServer(
    () => json(503, { error: { code: "unavailable" } }, { "Retry-After": "2" }),
    async (url) => {
      assert.deepEqual(await invokeTrack(supabaseAt(url).functions, "track", "{}", {}), {
        kind: "retry",
        status: 503,
        retryAfterMs: 2000,
        message: "the server answered 503",
      });
    },
  );
});

Deno.test("transport: supabase-js invoke answers a 401 as refused", async () => {
  await withServer(
    () => json(401, { error: { code: "unauthorized", message: "bad token" } }),
    async (url) => {
      assert.deepEqual(await invokeTrack(supabaseAt(url).functions, "track", "{}", {}), {
        kind: "refused",
        status: 401,
        message: "the server answered 401: bad token",
      });
    },
  );
});

Deno.test("transport: supabase-js invoke with nobody listening is a network retry", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  const delivery = await invokeTrack(
    supabaseAt(`http://127.0.0.1:${port}`).functions,
    "track",
    "{}",
    {},
  );
  assert.equal(delivery.kind, "retry");
  assert.equal((delivery as { status: unknown }).status, null);
  assert.match((delivery as { message: string }).message, /^the request failed: /);
});

Deno.test("transport: keepalive sends the batch with the given headers", async () => {
  await withServer(() => json(200, RESULT), async (url, seen) => {
    const delivery = await keepaliveTrack(`${url}/functions/v1/track`, '{"events":[]}', {
      apikey: ANON_KEY,
      Authorization: `Bearer ${ANON_KEY}`,
    });
    assert.deepEqual(delivery, { kind: "processed", status: 200, result: RESULT });
    assert.equal(seen[0].body, '{"events":[]}');
    assert.equal(seen[0].headers.get("apikey"), ANON_KEY);
    assert.equal(seen[0].headers.get("authorization"), `Bearer ${ANON_KEY}`);
    assert.equal(seen[0].headers.get("content-type"), "application/json");
  });
});
