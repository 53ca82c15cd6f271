/**
 * The handler called in-process, for everything it decides before the
 * database: preflight, methods, the JWT, the body's size and shape. Nothing
 * here reaches Postgres; `track_test.ts` covers the rest over HTTP.
 */
import assert from "node:assert/strict";
import { mintUserJwt, stack } from "../../../test_support/stack.ts";
import { handler } from "./handler.ts";

// The handler reads the JWT secret from its environment, as in the gateway.
if (!Deno.env.get("SUPABASE_JWT_SECRET")) Deno.env.set("SUPABASE_JWT_SECRET", stack.jwtSecret);

const url = "http://127.0.0.1/track";
const userId = crypto.randomUUID();
const view = { eventType: "view", entityType: "event", entityId: "e-1", anonymousId: "v-1" };

function call(init: RequestInit & { token?: string | null } = {}): Promise<Response> {
  const { token = stack.anonKey, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (token !== null) headers.set("Authorization", `Bearer ${token}`);
  return handler(new Request(url, { method: "POST", ...rest, headers }));
}

function assertCors(response: Response): void {
  assert.equal(response.headers.get("Access-Control-Allow-Origin"), "*");
  assert.match(response.headers.get("Access-Control-Allow-Headers") ?? "", /authorization/);
  assert.match(response.headers.get("Access-Control-Allow-Headers") ?? "", /apikey/);
}

async function assertError(response: Response, status: number, code: string): Promise<string> {
  assert.equal(response.status, status);
  assertCors(response);
  const body = await response.json();
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, "string");
  return body.error.message;
}

const base64url = (value: unknown) =>
  btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

Deno.test("OPTIONS is answered 204 with CORS headers and no JWT", async () => {
  const response = await call({ method: "OPTIONS", token: null });
  assert.equal(response.status, 204);
  assertCors(response);
  assert.match(response.headers.get("Access-Control-Allow-Methods") ?? "", /POST/);
  assert.equal(await response.text(), "");
});

Deno.test("methods other than POST and OPTIONS are answered 405 with Allow", async () => {
  for (const method of ["GET", "PUT", "PATCH", "DELETE", "HEAD"]) {
    const response = await call({ method });
    assert.equal(response.status, 405, method);
    assert.equal(response.headers.get("Allow"), "POST, OPTIONS");
    assertCors(response);
    if (method !== "HEAD") {
      assert.deepEqual(await response.json(), {
        error: { code: "method_not_allowed", message: `${method} is not allowed; use POST` },
      });
    } else await response.body?.cancel();
  }
});

Deno.test("the function itself refuses a missing, malformed, forged, expired or alg-none JWT", async () => {
  const now = Math.floor(Date.now() / 1000);
  const cases: Array<[what: string, authorization: string | null, message: RegExp]> = [
    ["missing", null, /missing Authorization header/],
    ["not bearer", `Basic ${btoa("a:b")}`, /must be 'Bearer <jwt>'/],
    ["not a jwt", "Bearer not-a-jwt", /must be 'Bearer <jwt>'/],
    ["three parts, not a jwt", "Bearer foo.bar.baz", /malformed/],
    [
      "forged",
      `Bearer ${await mintUserJwt(userId, {
        secret: "another-secret-of-at-least-32-characters!!",
      })}`,
      /signature is not valid/,
    ],
    ["expired", `Bearer ${await mintUserJwt(userId, { expiresIn: -60 })}`, /expired/],
    [
      "alg none",
      `Bearer ${base64url({ alg: "none", typ: "JWT" })}.${
        base64url({ role: "authenticated", sub: userId, exp: now + 3600 })
      }.`,
      /algorithm is not allowed/,
    ],
    [
      "unknown role",
      `Bearer ${await mintUserJwt(userId, { claims: { role: "supabase_admin" } })}`,
      /role is not one this function serves/,
    ],
    [
      "user without a uuid sub",
      `Bearer ${await mintUserJwt("not-a-uuid")}`,
      /must carry the user's id in 'sub'/,
    ],
  ];
  for (const [what, authorization, message] of cases) {
    const headers = new Headers({ "Content-Type": "application/json" });
    if (authorization !== null) headers.set("Authorization", authorization);
    const response = await handler(
      new Request(url, { method: "POST", headers, body: JSON.stringify(view) }),
    );
    assert.equal(response.status, 401, what);
    assert.equal(response.headers.get("WWW-Authenticate"), 'Bearer error="invalid_token"');
    assert.match(await assertError(response, 401, "unauthorized"), message, what);
  }
});

Deno.test("an endless body is refused 413 after reading at most 512 KiB", async () => {
  let pulled = 0;
  const chunk = new Uint8Array(64 * 1024).fill(0x20);
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled += chunk.byteLength;
      controller.enqueue(chunk);
    },
  }, { highWaterMark: 0 });
  const message = await assertError(await call({ body }), 413, "payload_too_large");
  assert.equal(message, "the body must be at most 524288 bytes");
  assert.ok(pulled <= 512 * 1024 + 2 * chunk.byteLength, `read ${pulled} bytes`);
});

Deno.test("a declared Content-Length over 512 KiB is refused 413 before reading", async () => {
  for (const declared of [512 * 1024 + 1, 10 * 1024 * 1024]) {
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(1024));
      },
    }, { highWaterMark: 0 });
    const response = await call({ body, headers: { "Content-Length": String(declared) } });
    await assertError(response, 413, "payload_too_large");
    assert.equal(pulled, 0, `${declared} bytes declared`);
  }
});

Deno.test("a body that is not UTF-8 JSON is answered 400 invalid_json", async () => {
  for (
    const body of ["", "{", "not json", "{'single': 'quotes'}", new Uint8Array([0x7b, 0xff, 0x7d])]
  ) {
    const message = await assertError(await call({ body }), 400, "invalid_json");
    assert.equal(message, "the body is not valid UTF-8 JSON");
  }
});

Deno.test("JSON that is not an event or a batch is answered 400 invalid_body", async () => {
  for (const json of [null, 42, "view", [view], { events: "all" }, { events: [] }]) {
    await assertError(await call({ body: JSON.stringify(json) }), 400, "invalid_body");
  }
});

Deno.test("a batch of 501 events is answered 413 too_many_events", async () => {
  const body = JSON.stringify({ events: Array.from({ length: 501 }, () => view) });
  const message = await assertError(await call({ body }), 413, "too_many_events");
  assert.equal(message, "a batch holds at most 500 events; this one has 501");
});

Deno.test("a body cut off by a broken connection is answered 400, not 500", async () => {
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent) return controller.error(new Error("connection reset by peer"));
      sent = true;
      controller.enqueue(new TextEncoder().encode('{"eventType":"view",'));
    },
  });
  const response = await call({ body, headers: { "Content-Type": "application/json" } });
  await assertError(response, 400, "incomplete_body");
});
