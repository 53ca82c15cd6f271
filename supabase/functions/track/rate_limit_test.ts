import assert from "node:assert/strict";
import type { Principal } from "../_shared/auth.ts";
import {
  addressKey,
  LocalRateLimiter,
  principalKey,
  type RateLimitDecision,
  rateLimitsFromEnv,
} from "./rate_limit.ts";

/** A clock the test moves by hand, in milliseconds. */
function manualClock(startMs = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let ms = startMs;
  return { now: () => ms, advance: (by) => (ms += by) };
}

const allowed: RateLimitDecision = { ok: true };
const refused = (retryAfterSeconds: number): RateLimitDecision => ({
  ok: false,
  retryAfterSeconds,
});

function takeTimes(limiter: LocalRateLimiter, key: string, times: number): RateLimitDecision[] {
  return Array.from({ length: times }, () => limiter.take(key));
}

// --- the bucket --------------------------------------------------------------------

Deno.test("a minute's worth of requests passes in one burst, and not one more", () => {
  const clock = manualClock();
  const limiter = new LocalRateLimiter(3, { now: clock.now });
  assert.deepEqual(takeTimes(limiter, "ip:a", 4), [allowed, allowed, allowed, refused(20)]);
});

Deno.test("after the burst, one request comes back every 60 / limit seconds", () => {
  const clock = manualClock();
  const limiter = new LocalRateLimiter(3, { now: clock.now });
  takeTimes(limiter, "ip:a", 3);
  clock.advance(19_000);
  assert.deepEqual(limiter.take("ip:a"), refused(1));
  clock.advance(500);
  assert.deepEqual(limiter.take("ip:a"), refused(1), "half a second left is rounded up");
  clock.advance(500);
  assert.deepEqual(takeTimes(limiter, "ip:a", 2), [allowed, refused(20)]);
});

Deno.test("a refused request costs nothing", () => {
  const clock = manualClock();
  const limiter = new LocalRateLimiter(1, { now: clock.now });
  assert.deepEqual(limiter.take("user:u"), allowed);
  clock.advance(30_000);
  assert.deepEqual(takeTimes(limiter, "user:u", 5), Array(5).fill(refused(30)));
  clock.advance(30_000);
  assert.deepEqual(limiter.take("user:u"), allowed);
});

Deno.test("a quiet minute makes the whole burst available again, no more", () => {
  const clock = manualClock();
  const limiter = new LocalRateLimiter(2, { now: clock.now });
  takeTimes(limiter, "ip:a", 2);
  clock.advance(10 * 60_000);
  assert.deepEqual(takeTimes(limiter, "ip:a", 3), [allowed, allowed, refused(30)]);
});

Deno.test("a limit that does not divide the minute still allows its whole burst", () => {
  const clock = manualClock();
  const limiter = new LocalRateLimiter(7, { now: clock.now });
  const decisions = takeTimes(limiter, "ip:a", 8);
  assert.deepEqual(decisions.slice(0, 7), Array(7).fill(allowed));
  // 8 costs of floor(60 s / 7) in microseconds: 68.571424 s, 8.571424 s over the minute.
  assert.deepEqual(decisions[7], refused(9));
});

Deno.test("principals have buckets of their own", () => {
  const clock = manualClock();
  const limiter = new LocalRateLimiter(1, { now: clock.now });
  assert.deepEqual(
    ["ip:a", "ip:a", "ip:b", "user:u", "user:u"].map((key) => limiter.take(key)),
    [allowed, refused(60), allowed, allowed, refused(60)],
  );
});

Deno.test("a steady rate at the limit is never refused", () => {
  const clock = manualClock();
  const limiter = new LocalRateLimiter(120, { now: clock.now });
  for (let i = 0; i < 1000; i++) {
    assert.deepEqual(limiter.take("ip:a"), allowed, `request ${i}`);
    clock.advance(500);
  }
});

Deno.test("memory is bounded: principals whose allowance is whole again are forgotten first", () => {
  const clock = manualClock();
  const limiter = new LocalRateLimiter(1, { now: clock.now, maxKeys: 100 });
  for (let i = 0; i < 100; i++) limiter.take(`ip:old-${i}`);
  clock.advance(60_000);
  limiter.take("ip:busy");
  assert.equal(limiter.size, 1, "the 100 recovered principals were forgotten");
  assert.deepEqual(limiter.take("ip:busy"), refused(60), "the one in debt was kept");
});

Deno.test("memory is bounded even when every principal is in debt, forgetting the least recent", () => {
  const clock = manualClock();
  const limiter = new LocalRateLimiter(1, { now: clock.now, maxKeys: 100 });
  for (let i = 0; i < 1000; i++) limiter.take(`ip:flood-${i}`);
  assert.ok(limiter.size <= 100, `${limiter.size} principals remembered`);
  assert.deepEqual(limiter.take("ip:flood-999"), refused(60), "the most recent is remembered");
  assert.deepEqual(limiter.take("ip:flood-0"), allowed, "the least recent was forgotten");
});

Deno.test("a principal charged again is forgotten last, not by when it was first seen", () => {
  const clock = manualClock();
  const limiter = new LocalRateLimiter(2, { now: clock.now, maxKeys: 4 });
  for (const key of ["ip:a", "ip:b", "ip:c", "ip:d", "ip:a"]) {
    assert.deepEqual(limiter.take(key), allowed, key);
  }
  limiter.take("ip:e"); // one over the bound: down to the two charged last
  assert.equal(limiter.size, 2);
  assert.deepEqual(limiter.take("ip:a"), refused(30), "a's minute of debt is remembered");
  assert.deepEqual(limiter.take("ip:b"), allowed, "b, charged longest ago, was forgotten");
});

// --- the principal's key -------------------------------------------------------------

const anon: Principal = { kind: "anon" };
const headers = (forwardedFor?: string) =>
  new Headers(forwardedFor === undefined ? {} : { "X-Forwarded-For": forwardedFor });

Deno.test("a signed-in user is keyed by id, whatever address it comes from", () => {
  const user: Principal = { kind: "user", userId: "8f6b1c1e-9a0e-4a57-9d43-0c1c1a9f2b11" };
  assert.equal(
    principalKey(user, headers("203.0.113.7"), "127.0.0.1"),
    "user:8f6b1c1e-9a0e-4a57-9d43-0c1c1a9f2b11",
  );
});

Deno.test("anon and service callers are keyed by the first X-Forwarded-For address", () => {
  assert.equal(principalKey(anon, headers("203.0.113.7, 10.0.0.1"), "127.0.0.1"), "ip:203.0.113.7");
  assert.equal(
    principalKey({ kind: "service" }, headers(" 2001:DB8::1 "), "127.0.0.1"),
    "ip:2001:db8:0:0::/64",
  );
});

Deno.test("an address has one key however it is written", () => {
  const spellings = {
    "ip:203.0.113.7": ["203.0.113.7", " 203.0.113.7 ", "203.0.113.7:1234", "203.000.113.007"],
    "ip:2001:db8:0:0::/64": [
      "2001:db8::1",
      "2001:0DB8:0:0:0:0:0:1",
      "[2001:db8::1]",
      "[2001:db8::1]:443",
      "2001:db8::1%eth0",
    ],
    // An IPv4 address inside IPv6 is the IPv4 address.
    "ip:192.0.2.5": ["::ffff:192.0.2.5", "::FFFF:c000:205", "[::ffff:192.0.2.5]:80"],
  };
  for (const [key, texts] of Object.entries(spellings)) {
    for (const text of texts) assert.equal(addressKey(text), key, text);
  }
});

Deno.test("the addresses of one IPv6 /64 share a key; other blocks do not", () => {
  assert.equal(addressKey("2001:db8:1:2:aaaa::1"), "ip:2001:db8:1:2::/64");
  assert.equal(addressKey("2001:db8:1:2:ffff:ffff:ffff:ffff"), "ip:2001:db8:1:2::/64");
  assert.equal(addressKey("2001:db8:1:3::1"), "ip:2001:db8:1:3::/64");
  assert.notEqual(addressKey("::1"), addressKey("::2:0:0:0:1"));
});

Deno.test("text that is not an address has no key", () => {
  for (
    const text of [
      "",
      "1",
      "1.2.3",
      "256.1.1.1",
      "0x7f.0.0.1",
      "[1.2.3.4]",
      "2001:db8::1::2",
      "1:2:3:4:5:6:7:8:9",
      "::ffff:1.2.3.4:80",
      "unknown",
      "1".repeat(1000),
    ]
  ) {
    assert.equal(addressKey(text), null, text);
  }
});

Deno.test("without a usable X-Forwarded-For, the connection's address is the key", () => {
  assert.equal(principalKey(anon, headers(), "192.0.2.5"), "ip:192.0.2.5");
  assert.equal(principalKey(anon, headers(""), "192.0.2.5"), "ip:192.0.2.5");
  assert.equal(principalKey(anon, headers("'; drop table x; --"), "192.0.2.5"), "ip:192.0.2.5");
  assert.equal(principalKey(anon, headers("1".repeat(1000)), "192.0.2.5"), "ip:192.0.2.5");
  assert.equal(principalKey(anon, headers()), "ip:unknown");
});

// --- configuration -------------------------------------------------------------------

const env = (values: Record<string, string>) => ({ get: (name: string) => values[name] });

Deno.test("the default limits are 120 requests and 6000 events per minute", () => {
  assert.deepEqual(rateLimitsFromEnv(env({})), { requestsPerMinute: 120, eventsPerMinute: 6000 });
  assert.deepEqual(rateLimitsFromEnv(env({ TRACK_RATE_LIMIT: "on" })), {
    requestsPerMinute: 120,
    eventsPerMinute: 6000,
  });
});

Deno.test("the limits are set from the environment", () => {
  assert.deepEqual(
    rateLimitsFromEnv(env({
      TRACK_RATE_LIMIT_REQUESTS_PER_MINUTE: "100000",
      TRACK_RATE_LIMIT_EVENTS_PER_MINUTE: "5000000",
    })),
    { requestsPerMinute: 100_000, eventsPerMinute: 5_000_000 },
  );
});

Deno.test("TRACK_RATE_LIMIT=off turns the limit off", () => {
  assert.equal(rateLimitsFromEnv(env({ TRACK_RATE_LIMIT: "off" })), null);
  assert.equal(rateLimitsFromEnv(env({ TRACK_RATE_LIMIT: " OFF " })), null);
});

Deno.test("a value that is not a limit is an error, not a different limit", () => {
  for (
    const [name, value] of [
      ["TRACK_RATE_LIMIT", "no"],
      ["TRACK_RATE_LIMIT_REQUESTS_PER_MINUTE", "0"],
      ["TRACK_RATE_LIMIT_REQUESTS_PER_MINUTE", "1.5"],
      ["TRACK_RATE_LIMIT_REQUESTS_PER_MINUTE", "lots"],
      ["TRACK_RATE_LIMIT_EVENTS_PER_MINUTE", "-1"],
      ["TRACK_RATE_LIMIT_EVENTS_PER_MINUTE", "2147483648"],
    ]
  ) {
    assert.throws(
      () => rateLimitsFromEnv(env({ [name]: value })),
      new RegExp(name),
      `${name}=${value}`,
    );
  }
});
