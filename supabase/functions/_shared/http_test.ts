import assert from "node:assert/strict";
import { errorResponse, readBodyCapped } from "./http.ts";

/** A body that never ends, counting the bytes it was asked for. */
function endlessBody(
  chunkBytes = 16 * 1024,
): { stream: ReadableStream<Uint8Array>; pulled: () => number } {
  let pulled = 0;
  const chunk = new Uint8Array(chunkBytes).fill(0x20);
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled += chunk.byteLength;
      controller.enqueue(chunk);
    },
  }, { highWaterMark: 0 });
  return { stream, pulled: () => pulled };
}

const post = (body: BodyInit, headers: HeadersInit = {}) =>
  new Request("http://localhost/track", { method: "POST", body, headers });

Deno.test("readBodyCapped returns a body of exactly the cap", async () => {
  const body = await readBodyCapped(post("x".repeat(1024)), 1024);
  assert.equal(body?.byteLength, 1024);
  assert.equal(new TextDecoder().decode(body!), "x".repeat(1024));
});

Deno.test("readBodyCapped refuses one byte over the cap", async () => {
  assert.equal(await readBodyCapped(post("x".repeat(1025)), 1024), null);
});

Deno.test("readBodyCapped stops reading an endless body just past the cap", async () => {
  const { stream, pulled } = endlessBody();
  assert.equal(await readBodyCapped(post(stream), 512 * 1024), null);
  assert.ok(pulled() <= 512 * 1024 + 2 * 16 * 1024, `read ${pulled()} bytes`);
});

Deno.test("readBodyCapped refuses a declared Content-Length over the cap without reading", async () => {
  const { stream, pulled } = endlessBody();
  assert.equal(await readBodyCapped(post(stream, { "Content-Length": "10000000" }), 1024), null);
  assert.equal(pulled(), 0);
});

Deno.test("errorResponse shapes { error: { code, message } } with CORS headers", async () => {
  const response = errorResponse(429, "rate_limited", "slow down", { "Retry-After": "7" });
  assert.equal(response.status, 429);
  assert.equal(response.headers.get("Access-Control-Allow-Origin"), "*");
  assert.equal(response.headers.get("Retry-After"), "7");
  assert.equal(response.headers.get("Content-Type"), "application/json");
  assert.deepEqual(await response.json(), {
    error: { code: "rate_limited", message: "slow down" },
  });
});
