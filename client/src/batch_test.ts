import assert from "node:assert/strict";
import { encodeBatch, jsonBytes, selectBatch } from "./batch.ts";
import type { QueuedEvent } from "./queue.ts";

type Event = { eventId: string; pad: string };

function entry(n: number, userId: string | null = null, padding = 0): QueuedEvent<Event> {
  return { event: { eventId: `id-${n}`, pad: "x".repeat(padding) }, userId };
}

const ids = (batch: QueuedEvent<Event>[]) => batch.map((e) => e.event.eventId);

Deno.test("batch: takes the oldest events up to maxEvents", () => {
  const entries = [1, 2, 3, 4, 5].map((n) => entry(n));
  assert.deepEqual(ids(selectBatch(entries, { maxEvents: 3, maxBytes: 1e6 })), [
    "id-1",
    "id-2",
    "id-3",
  ]);
});

Deno.test("batch: one principal per batch, the principal of the oldest event", () => {
  const entries = [entry(1, "a"), entry(2, null), entry(3, "a"), entry(4, "b"), entry(5, "a")];
  assert.deepEqual(ids(selectBatch(entries, { maxEvents: 10, maxBytes: 1e6 })), [
    "id-1",
    "id-3",
    "id-5",
  ]);
  assert.deepEqual(ids(selectBatch(entries.slice(1), { maxEvents: 10, maxBytes: 1e6 })), [
    "id-2",
  ]);
});

Deno.test("batch: skips excluded events (already being sent)", () => {
  const entries = [1, 2, 3].map((n) => entry(n));
  const batch = selectBatch(entries, { maxEvents: 10, maxBytes: 1e6, exclude: new Set(["id-1"]) });
  assert.deepEqual(ids(batch), ["id-2", "id-3"]);
});

Deno.test("batch: the encoded body stays within maxBytes", () => {
  const entries = Array.from({ length: 40 }, (_, n) => entry(n, null, 1000));
  for (const maxBytes of [1100, 5000, 20_000, 39_000]) {
    const batch = selectBatch(entries, { maxEvents: 500, maxBytes });
    const body = encodeBatch(batch.map((e) => e.event), new Date());
    const bytes = new TextEncoder().encode(body).length;
    assert.ok(bytes <= maxBytes, `${bytes} > ${maxBytes}`);
    assert.ok(batch.length < entries.length);
    // One more event would not have fitted.
    const more = encodeBatch(entries.slice(0, batch.length + 1).map((e) => e.event), new Date());
    assert.ok(new TextEncoder().encode(more).length > maxBytes);
  }
});

Deno.test("batch: an event larger than the budget is skipped, or sent alone when allowed", () => {
  const entries = [entry(1, null, 5000), entry(2), entry(3)];
  assert.deepEqual(ids(selectBatch(entries, { maxEvents: 10, maxBytes: 1000 })), ["id-2", "id-3"]);
  assert.deepEqual(
    ids(selectBatch(entries, { maxEvents: 10, maxBytes: 1000, allowOversized: true })),
    ["id-1"],
  );
});

Deno.test("batch: the body is {events, sentAt} and sizes count UTF-8 bytes", () => {
  const event = { eventId: "é", pad: "€" };
  assert.equal(jsonBytes(event), new TextEncoder().encode(JSON.stringify(event)).length);
  assert.equal(jsonBytes(event), JSON.stringify(event).length + 1 + 2);
  assert.deepEqual(JSON.parse(encodeBatch([event], new Date("2025-01-01T00:00:00Z"))), {
    events: [event],
    sentAt: "2025-01-01T00:00:00.000Z",
  });
});
