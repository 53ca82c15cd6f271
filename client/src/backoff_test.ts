import assert from "node:assert/strict";
import {
  backoffDelay,
  type BackoffOptions,
  defaultBackoff,
  parseRetryAfter,
  retryDelay,
} from "./backoff.ts";

const options: BackoffOptions = { baseMs: 1_000, maxMs: 60_000, maxRetryAfterMs: 300_000 };
const lowest = () => 0;
const highest = () => 0.999999;

Deno.test("backoff: the delay doubles per attempt within [ceiling / 2, ceiling]", () => {
  for (let attempt = 0; attempt <= 5; attempt++) {
    const ceiling = 1_000 * 2 ** attempt;
    assert.equal(backoffDelay(attempt, options, lowest), ceiling / 2);
    assert.equal(backoffDelay(attempt, options, highest), ceiling);
  }
});

Deno.test("backoff: the delay stops growing at maxMs", () => {
  assert.equal(backoffDelay(6, options, highest), 60_000);
  assert.equal(backoffDelay(40, options, highest), 60_000);
  assert.equal(backoffDelay(40, options, lowest), 30_000);
});

Deno.test("backoff: random delays spread over the whole jitter range", () => {
  const delays = Array.from({ length: 2000 }, () => backoffDelay(3, options));
  assert.ok(delays.every((d) => d >= 4_000 && d <= 8_000));
  assert.ok(Math.min(...delays) < 4_400, "some delays near the lower bound");
  assert.ok(Math.max(...delays) > 7_600, "some delays near the upper bound");
  assert.ok(new Set(delays).size > 1000, "delays are not in lockstep");
});

Deno.test("backoff: Retry-After in seconds or as an HTTP date, else null", () => {
  const now = Date.parse("2025-01-01T12:00:00Z");
  assert.equal(parseRetryAfter("3", now), 3_000);
  assert.equal(parseRetryAfter(" 120 ", now), 120_000);
  assert.equal(parseRetryAfter("0", now), 0);
  assert.equal(parseRetryAfter("Wed, 01 Jan 2025 12:00:30 GMT", now), 30_000);
  assert.equal(parseRetryAfter("Wed, 01 Jan 2025 11:00:00 GMT", now), 0);
  assert.equal(parseRetryAfter(null, now), null);
  assert.equal(parseRetryAfter(undefined, now), null);
  assert.equal(parseRetryAfter("soon", now), null);
  assert.equal(parseRetryAfter("-5", now), null);
  assert.equal(parseRetryAfter("1.5", now), null);
});

Deno.test("backoff: never retries sooner than Retry-After, and adds at most a fifth of it", () => {
  assert.equal(retryDelay(0, 10_000, options, lowest), 10_000);
  assert.equal(retryDelay(0, 10_000, options, highest), 12_000);
  for (let i = 0; i < 500; i++) {
    const delay = retryDelay(0, 10_000, options);
    assert.ok(delay >= 10_000 && delay <= 12_000, `${delay}`);
  }
});

Deno.test("backoff: a backoff longer than Retry-After wins", () => {
  // Attempt 6: at least 30 s of backoff against a 1 s Retry-After.
  assert.equal(retryDelay(6, 1_000, options, lowest), 30_000);
});

Deno.test("backoff: a huge Retry-After is cut to maxRetryAfterMs", () => {
  assert.equal(retryDelay(0, 86_400_000, options, lowest), 300_000);
});

Deno.test("backoff: without Retry-After the delay is the backoff delay", () => {
  assert.equal(retryDelay(2, null, options, lowest), 2_000);
  assert.equal(retryDelay(2, null, options, highest), 4_000);
});

Deno.test("backoff: the defaults start at one second and cap at a minute", () => {
  assert.deepEqual(defaultBackoff, { baseMs: 1_000, maxMs: 60_000, maxRetryAfterMs: 300_000 });
});
