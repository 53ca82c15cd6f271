import assert from "node:assert/strict";
import type { TrackEvent } from "../_shared/schemas.ts";
import { USER_SPECIFIC_EVENT_TYPES } from "../_shared/event_types.ts";
import { prepareEvents } from "./prepare.ts";

const receivedAt = new Date("2025-03-10T12:00:00.000Z");
const view: TrackEvent = { eventType: "view", entityType: "event", entityId: "event-123" };
const user = { kind: "user", userId: "7f1c2a4e-5b6d-4e8f-9a0b-1c2d3e4f5a6b" } as const;

Deno.test("a signed-in user's event becomes a row with a fresh event id, marked as made up, and server times", () => {
  const { rows, rejected } = prepareEvents(
    [{ index: 0, event: view }],
    undefined,
    user,
    receivedAt,
  );
  assert.deepEqual(rejected, []);
  assert.equal(rows.length, 1);
  const [row] = rows;
  assert.match(
    row.event_id,
    /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
  );
  assert.deepEqual({ ...row, event_id: "" }, {
    index: 0,
    event_id: "",
    event_id_generated: true,
    session_id: null,
    anonymous_id: null,
    event_type: "view",
    entity_type: "event",
    entity_id: "event-123",
    metadata: {},
    occurred_at: "2025-03-10T12:00:00.000Z",
    client_timestamp: null,
    received_at: "2025-03-10T12:00:00.000Z",
  });
});

Deno.test("the client's ids, metadata and corrected times are carried over", () => {
  const eventId = crypto.randomUUID();
  const sessionId = crypto.randomUUID();
  const event: TrackEvent = {
    ...view,
    eventId,
    sessionId,
    anonymousId: "visitor-1",
    metadata: { artist_name: "Taylor Swift" },
    timestamp: "2025-03-10T12:59:50.000Z",
  };
  const { rows } = prepareEvents(
    [{ index: 4, event }],
    "2025-03-10T13:00:00.000Z",
    user,
    receivedAt,
  );
  assert.deepEqual(rows, [{
    index: 4,
    event_id: eventId,
    session_id: sessionId,
    anonymous_id: "visitor-1",
    event_type: "view",
    entity_type: "event",
    entity_id: "event-123",
    metadata: { artist_name: "Taylor Swift" },
    occurred_at: "2025-03-10T11:59:50.000Z",
    client_timestamp: "2025-03-10T12:59:50.000Z",
    received_at: "2025-03-10T12:00:00.000Z",
  }]);
});

for (const principal of [{ kind: "anon" }, { kind: "service" }] as const) {
  Deno.test(`a ${principal.kind} caller must name an anonymousId and may not send user-specific types`, () => {
    const eventId = crypto.randomUUID();
    const { rows, rejected } = prepareEvents(
      [
        { index: 0, event: { ...view, anonymousId: "visitor-1" } },
        { index: 1, event: { ...view, eventId } },
        { index: 2, event: { ...view, eventType: "like", anonymousId: "visitor-1" } },
        { index: 3, event: { ...view, eventType: "streaming_top" } },
        { index: 4, event: { ...view, eventType: "ticket_click", anonymousId: "visitor-1" } },
      ],
      undefined,
      principal,
      receivedAt,
    );
    assert.deepEqual(rows.map((row) => [row.index, row.anonymous_id]), [[0, "visitor-1"], [
      4,
      "visitor-1",
    ]]);
    assert.deepEqual(rejected, [
      {
        index: 1,
        eventId,
        errors: [{ path: "anonymousId", message: "Required when no user is signed in" }],
      },
      {
        index: 2,
        errors: [{ path: "eventType", message: '"like" events need a signed-in user' }],
      },
      {
        index: 3,
        errors: [
          { path: "anonymousId", message: "Required when no user is signed in" },
          { path: "eventType", message: '"streaming_top" events need a signed-in user' },
        ],
      },
    ]);
  });
}

Deno.test("a signed-in user may send every user-specific type", () => {
  const types = USER_SPECIFIC_EVENT_TYPES;
  assert.ok(types.length >= 10, "every user-specific type of the guide");
  const { rows, rejected } = prepareEvents(
    types.map((eventType, index) => ({ index, event: { ...view, eventType } })),
    undefined,
    user,
    receivedAt,
  );
  assert.equal(rows.length, types.length);
  assert.deepEqual(rejected, []);
});

Deno.test("an event more than 7 days old is refused on its timestamp", () => {
  const { rows, rejected } = prepareEvents(
    [{ index: 0, event: { ...view, timestamp: "2025-03-03T11:59:59.999Z" } }],
    undefined,
    user,
    receivedAt,
  );
  assert.deepEqual(rows, []);
  assert.deepEqual(rejected, [{
    index: 0,
    errors: [{ path: "timestamp", message: "the event happened more than 7 days ago" }],
  }]);
});
