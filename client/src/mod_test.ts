import assert from "node:assert/strict";
import { initTracking, interactionTracker, trackInteraction } from "./mod.ts";
import type { SupabaseClientLike } from "./tracker.ts";
import { blockedLocalStorage, withLocalStorage } from "../../test_support/local_storage.ts";

/** A supabase-js client with nobody signed in, whose requests fail while `offline` is true. */
function fakeSupabase() {
  const sent: string[] = [];
  const network = { offline: false };
  const supabase: SupabaseClientLike = {
    functions: {
      invoke(_name, options) {
        if (network.offline) {
          return Promise.resolve({ data: null, error: new TypeError("Failed to fetch") });
        }
        const { events } = JSON.parse(options.body!) as { events: Array<{ eventId: string }> };
        sent.push(...events.map((event) => event.eventId));
        return Promise.resolve({
          data: { accepted: events.length, duplicates: 0, rejected: [] },
          error: null,
        });
      },
    },
  };
  return { supabase, sent, network };
}

const tick = (ms = 0) => new Promise((done) => setTimeout(done, ms));

Deno.test("mod: where localStorage is unusable, an opt-out before initTracking() still holds", async () => {
  await withLocalStorage(blockedLocalStorage, async () => {
    interactionTracker.optOut();
    const { supabase, sent } = fakeSupabase();
    const tracker = initTracking({ supabase, apiKey: "anon-key", flushIntervalMs: 60_000 });
    try {
      assert.equal(tracker.isOptedOut(), true);
      assert.equal(trackInteraction.view("event", "e1"), null);
      await interactionTracker.flush();
      assert.deepEqual(sent, []);
    } finally {
      tracker.optIn();
      tracker.destroy();
    }
  });
});

Deno.test("mod: where localStorage is unusable, initTracking() again sends what the earlier tracker held", async () => {
  await withLocalStorage(blockedLocalStorage, async () => {
    const { supabase, sent, network } = fakeSupabase();
    network.offline = true;
    initTracking({ supabase, apiKey: "anon-key", flushIntervalMs: 60_000 });
    await tick();
    const held = [trackInteraction.view("event", "e1"), trackInteraction.view("event", "e2")];
    await interactionTracker.flush(); // offline: kept
    network.offline = false;
    const tracker = initTracking({ supabase, apiKey: "anon-key", flushIntervalMs: 60_000 });
    try {
      await tick(20); // the new tracker takes over the queue the earlier one left
      await interactionTracker.flush();
      assert.deepEqual(sent, held);
    } finally {
      tracker.destroy();
    }
  });
});
