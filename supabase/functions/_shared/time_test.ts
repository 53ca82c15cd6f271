import assert from "node:assert/strict";
import { MAX_EVENT_AGE_MS } from "./limits.ts";
import { resolveOccurredAt } from "./time.ts";

const receivedAt = new Date("2025-03-10T12:00:00.000Z");
const at = (offsetMs: number) => new Date(receivedAt.getTime() + offsetMs).toISOString();
const HOUR = 3_600_000;

Deno.test("with neither timestamp nor sentAt the event happened when it was received", () => {
  assert.deepEqual(resolveOccurredAt({ receivedAt }), {
    ok: true,
    occurredAt: receivedAt.toISOString(),
    clientTimestamp: null,
  });
  assert.deepEqual(resolveOccurredAt({ sentAt: at(HOUR), receivedAt }), {
    ok: true,
    occurredAt: receivedAt.toISOString(),
    clientTimestamp: null,
  });
});

Deno.test("with a timestamp alone the event happened at that timestamp", () => {
  assert.deepEqual(resolveOccurredAt({ timestamp: at(-90_000), receivedAt }), {
    ok: true,
    occurredAt: at(-90_000),
    clientTimestamp: at(-90_000),
  });
});

Deno.test("with timestamp and sentAt the client's clock skew is corrected", () => {
  // The client clock runs an hour fast; the event happened 10 s before sending.
  assert.deepEqual(
    resolveOccurredAt({ timestamp: at(HOUR - 10_000), sentAt: at(HOUR), receivedAt }),
    { ok: true, occurredAt: at(-10_000), clientTimestamp: at(HOUR - 10_000) },
  );
  // The client clock is two days slow.
  assert.deepEqual(
    resolveOccurredAt({ timestamp: at(-48 * HOUR - 5_000), sentAt: at(-48 * HOUR), receivedAt }),
    {
      ok: true,
      occurredAt: at(-5_000),
      clientTimestamp: at(-48 * HOUR - 5_000),
    },
  );
});

Deno.test("an event is never dated after it was received", () => {
  const future = resolveOccurredAt({ timestamp: at(HOUR), receivedAt });
  assert.deepEqual(future, {
    ok: true,
    occurredAt: receivedAt.toISOString(),
    clientTimestamp: at(HOUR),
  });
  const sentBeforeItHappened = resolveOccurredAt({
    timestamp: at(5_000),
    sentAt: at(0),
    receivedAt,
  });
  assert.equal(
    sentBeforeItHappened.ok && sentBeforeItHappened.occurredAt,
    receivedAt.toISOString(),
  );
});

Deno.test("an event exactly 7 days old is kept, one a millisecond older is refused", () => {
  const keptAt = resolveOccurredAt({ timestamp: at(-MAX_EVENT_AGE_MS), receivedAt });
  assert.equal(keptAt.ok && keptAt.occurredAt, at(-MAX_EVENT_AGE_MS));
  assert.deepEqual(resolveOccurredAt({ timestamp: at(-MAX_EVENT_AGE_MS - 1), receivedAt }), {
    ok: false,
    error: { path: "timestamp", message: "the event happened more than 7 days ago" },
  });
});

Deno.test("age is judged after skew correction", () => {
  // Eight days old on a clock that is eight days slow: it happened a second ago.
  const slow = -8 * 24 * HOUR;
  const result = resolveOccurredAt({ timestamp: at(slow - 1_000), sentAt: at(slow), receivedAt });
  assert.equal(result.ok && result.occurredAt, at(-1_000));
  // Sent now, but 8 days after it happened: refused.
  const late = resolveOccurredAt({ timestamp: at(slow), sentAt: at(0), receivedAt });
  assert.equal(late.ok, false);
});

Deno.test("a timestamp Postgres could not store is refused", () => {
  const refused = {
    ok: false,
    error: { path: "timestamp", message: "must be a valid time in the years 1 to 9999" },
  };
  // Year 0, and year 10000 in UTC though its local date is in 9999.
  for (const timestamp of ["0000-12-31T23:59:59Z", "9999-12-31T23:59:59-14:00"]) {
    assert.deepEqual(resolveOccurredAt({ timestamp, sentAt: timestamp, receivedAt }), refused);
  }
  const last = resolveOccurredAt({
    timestamp: "9999-12-31T23:59:59.999Z",
    sentAt: "9999-12-31T23:59:59.999Z",
    receivedAt,
  });
  assert.ok(last.ok);
  assert.equal(last.clientTimestamp, "9999-12-31T23:59:59.999Z");
});

Deno.test("a timestamp keeps its microseconds, written in UTC", () => {
  // Alone, it dates the event: occurred_at is the same instant.
  assert.deepEqual(
    resolveOccurredAt({ timestamp: "2025-03-10T11:59:00.123456+01:00", receivedAt }),
    {
      ok: true,
      occurredAt: "2025-03-10T10:59:00.123456Z",
      clientTimestamp: "2025-03-10T10:59:00.123456Z",
    },
  );
  // Past the microsecond, cut, as a Date cuts past the millisecond; a fourth digit alone pads.
  assert.deepEqual(resolveOccurredAt({ timestamp: "2025-03-10T11:59:00.1239999Z", receivedAt }), {
    ok: true,
    occurredAt: "2025-03-10T11:59:00.123999Z",
    clientTimestamp: "2025-03-10T11:59:00.123999Z",
  });
  const padded = resolveOccurredAt({ timestamp: "2025-03-10T11:59:00.1234Z", receivedAt });
  assert.equal(padded.ok && padded.clientTimestamp, "2025-03-10T11:59:00.123400Z");
  // Skew-corrected or clamped, occurred_at is the server's, to the millisecond.
  assert.deepEqual(
    resolveOccurredAt({
      timestamp: "2025-03-10T12:59:50.000500Z",
      sentAt: "2025-03-10T13:00:00.000Z",
      receivedAt,
    }),
    { ok: true, occurredAt: at(-10_000), clientTimestamp: "2025-03-10T12:59:50.000500Z" },
  );
  assert.deepEqual(resolveOccurredAt({ timestamp: "2025-03-10T12:00:00.000500Z", receivedAt }), {
    ok: true,
    occurredAt: receivedAt.toISOString(),
    clientTimestamp: "2025-03-10T12:00:00.000500Z",
  });
});

Deno.test("an offset ISO-8601 allows and Postgres would refuse is written in UTC", () => {
  // Postgres refuses offsets past 15 hours; ISO-8601 and zod allow up to 23:59.
  assert.deepEqual(resolveOccurredAt({ timestamp: "2025-03-11T07:59:00+20:00", receivedAt }), {
    ok: true,
    occurredAt: "2025-03-10T11:59:00.000Z",
    clientTimestamp: "2025-03-10T11:59:00.000Z",
  });
});
