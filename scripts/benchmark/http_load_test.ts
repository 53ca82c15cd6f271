import assert from "node:assert/strict";
import { closedLoop } from "./http_load.ts";

Deno.test("a request that gets no answer still counts in the latencies", async () => {
  // A port nothing listens on: every request fails to connect.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  let sent = 0;
  const next = () => sent++ < 3 ? { body: "{}", token: "t", events: 1 } : undefined;
  const result = await closedLoop(`http://127.0.0.1:${port}/`, "key", next, 1, 10_000);
  assert.equal(result.requests, 3);
  assert.equal(result.goodRequests, 0);
  assert.equal(result.statuses.error, 3);
  assert.equal(result.latenciesMs.length, 3);
  assert.equal(result.answeredAtMs.length, 3);
  assert.ok(result.latenciesMs.every((ms) => ms >= 0));
});
