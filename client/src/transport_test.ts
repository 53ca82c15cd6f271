import assert from "node:assert/strict";
import { classify, invokeTrack } from "./transport.ts";

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
    options: { body: '{"events":[]}', headers: { "X-A": "1", "Content-Type": "application/json" } },
  });
});
