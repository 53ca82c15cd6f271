import assert from "node:assert/strict";
import { classify, type FunctionsInvoker, invokeTrack, keepaliveTrack } from "./transport.ts";

class FunctionsHttpError extends Error {
  constructor(public context: Response) {
    super("Edge Function returned a non-2xx status code");
  }
}

const RESULT = {
  accepted: 1,
  duplicates: 1,
  rejected: [{ index: 2, eventId: "e3", errors: [{ path: "entityId", message: "Required" }] }],
};
function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

Deno.test("transport: 200 with counts is processed", async () => {
  assert.deepEqual(await classify(json(200, RESULT)), {
    kind: "processed",
    status: 200,
    result: RESULT,
  });
});

Deno.test("transport: 400 with counts (every event invalid) is processed, not retried", async () => {
  const body = { accepted: 0, duplicates: 0, rejected: RESULT.rejected };
  assert.deepEqual(await classify(json(400, body)), {
    kind: "processed",
    status: 400,
    result: body,
  });
});

Deno.test("transport: other 4xx are refused with the server's message", async () => {
  const error = (code: string, message: string) => ({ error: { code, message } });
  assert.deepEqual(await classify(json(400, error("invalid_body", "not JSON"))), {
    kind: "refused",
    status: 400,
    message: "the server answered 400: not JSON",
  });
  assert.deepEqual(await classify(json(401, error("unauthorized", "JWT expired"))), {
    kind: "refused",
    status: 401,
    message: "the server answered 401: JWT expired",
  });
  assert.deepEqual(await classify(new Response("gone", { status: 413 })), {
    kind: "refused",
    status: 413,
    message: "the server answered 413",
  });
});

Deno.test("transport: 429 and 5xx are retried, with Retry-After when given", async () => {
  const now = () => Date.parse("2025-01-01T00:00:00Z");
  assert.deepEqual(await classify(json(429, {}, { "Retry-After": "7" }), now), {
    kind: "retry",
    status: 429,
    retryAfterMs: 7000,
    message: "the server answered 429",
  });
  assert.deepEqual(
    await classify(json(503, {}, { "Retry-After": "Wed, 01 Jan 2025 00:00:02 GMT" }), now),
    { kind: "retry", status: 503, retryAfterMs: 2000, message: "the server answered 503" },
  );
  assert.deepEqual(await classify(new Response("boom", { status: 500 }), now), {
    kind: "retry",
    status: 500,
    retryAfterMs: null,
    message: "the server answered 500",
  });
});

Deno.test("transport: a 2xx without counts still means the batch is done", async () => {
  assert.deepEqual(await classify(new Response("ok", { status: 200 })), {
    kind: "processed",
    status: 200,
    result: { accepted: 0, duplicates: 0, rejected: [] },
  });
});

Deno.test("transport: an invoke that throws is a network retry", async () => {
  const functions = {
    invoke: () => Promise.reject(new TypeError("Failed to fetch")),
  };
  assert.deepEqual(await invokeTrack(functions, "track", "{}", {}), {
    kind: "retry",
    status: null,
    retryAfterMs: null,
    message: "the request failed: Failed to fetch",
  });
});

Deno.test("transport: an HTTP error is read from the error's context when invoke gives no response", async () => {
  const functions = {
    invoke: () =>
      Promise.resolve({
        data: null,
        error: new FunctionsHttpError(json(429, {}, { "Retry-After": "4" })),
      }),
  };
  assert.deepEqual(await invokeTrack(functions, "track", "{}", {}), {
    kind: "retry",
    status: 429,
    retryAfterMs: 4000,
    message: "the server answered 429",
  });
});

Deno.test("transport: invoke's parsed data is the result of a 200", async () => {
  let sent: unknown;
  const functions = {
    invoke: (name: string, options: unknown) => {
      sent = { name, options };
      return Promise.resolve({ data: RESULT, error: null });
    },
  };
  assert.deepEqual(await invokeTrack(functions, "track", '{"events":[]}', { "X-A": "1" }), {
    kind: "processed",
    status: 200,
    result: RESULT,
  });
  assert.deepEqual(sent, {
    name: "track",
    options: {
      body: '{"events":[]}',
      headers: { "X-A": "1", "Content-Type": "application/json" },
      signal: (sent as { options: { signal: AbortSignal } }).options.signal,
    },
  });
});

Deno.test("transport: a request unanswered in time is aborted and retried", async () => {
  let signal: AbortSignal | undefined;
  const functions: FunctionsInvoker = {
    invoke: (_name, options) => {
      signal = options.signal;
      return new Promise(() => {}); // a connection that stalls
    },
  };
  assert.deepEqual(await invokeTrack(functions, "track", "{}", {}, Date.now, 20), {
    kind: "retry",
    status: null,
    retryAfterMs: null,
    message: "the request failed: no answer within 20 ms",
  });
  assert.equal(signal?.aborted, true, "the request itself is aborted");
});

Deno.test({
  name: "transport: with supabase-js, a stalled request is aborted on the wire",
  ignore: Deno.permissions.querySync({ name: "net", host: "127.0.0.1" }).state !== "granted",
  fn: async () => {
    const { createClient } = await import("@supabase/supabase-js");
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    let aborted = false;
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (request) => {
        request.signal.addEventListener("abort", () => (aborted = true));
        await released; // never answers on its own
        return new Response("late");
      },
    );
    try {
      const supabase = createClient(`http://127.0.0.1:${server.addr.port}`, "anon-key");
      const delivery = await invokeTrack(supabase.functions, "track", "{}", {}, Date.now, 100);
      assert.equal(delivery.kind, "retry");
      for (let i = 0; i < 100 && !aborted; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(aborted, "the server saw the request go away");
    } finally {
      release();
      await server.shutdown();
    }
  },
});

Deno.test({
  name: "transport: a stalled keepalive request is aborted and retried while the page lives",
  ignore: Deno.permissions.querySync({ name: "net", host: "127.0.0.1" }).state !== "granted",
  fn: async () => {
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async () => {
      await released; // never answers on its own
      return new Response("late");
    });
    try {
      const url = `http://127.0.0.1:${server.addr.port}/functions/v1/track`;
      const delivery = await keepaliveTrack(url, "{}", {}, Date.now, 100);
      assert.equal(delivery.kind, "retry");
      assert.match((delivery as { message: string }).message, /^the request failed: /);
    } finally {
      release();
      await server.shutdown();
    }
  },
});
