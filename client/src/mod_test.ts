import assert from "node:assert/strict";
import { initTracking, interactionTracker, trackInteraction } from "./mod.ts";
import { keys, type KeyValueStorage, MemoryStorage } from "./storage.ts";
import type { SupabaseClientLike, Tracker, TrackerError } from "./tracker.ts";
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

/** Runs `body` where the browser refuses Web Locks, as Chromium does wherever it refuses storage. */
async function withLocksRefused(body: () => Promise<void>): Promise<void> {
  const refused = {
    request: () =>
      Promise.reject(
        new DOMException("Access to the Locks API is denied in this context.", "SecurityError"),
      ),
  };
  Object.defineProperty(navigator, "locks", { value: refused, configurable: true });
  try {
    await body();
  } finally {
    delete (navigator as { locks?: unknown }).locks;
  }
}

/** A localStorage that refuses a write taking it past `quota` characters, as browsers do. */
class QuotaStorage extends MemoryStorage {
  constructor(public quota: number) {
    super();
  }

  /** Characters held, leaving out `key`'s item. */
  used(key?: string): number {
    let used = 0;
    for (let i = 0; i < this.length; i++) {
      const other = this.key(i)!;
      if (other !== key) used += other.length + this.getItem(other)!.length;
    }
    return used;
  }

  override setItem(key: string, value: string): void {
    if (this.used(key) + key.length + value.length > this.quota) {
      throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
    }
    super.setItem(key, value);
  }
}

/** What earlier pages left: two tabs' queues, the session, the anonymous id, and the app's own. */
function leftByEarlierPages(storage: MemoryStorage): void {
  const event = { eventId: "e", sessionId: "s", anonymousId: "visitor-1", eventType: "view" };
  storage.setItem(`${keys.queuePrefix}tab-1`, JSON.stringify([{ event, userId: null }]));
  storage.setItem(`${keys.queuePrefix}tab-2`, JSON.stringify([{ event, userId: null }]));
  storage.setItem(keys.session, JSON.stringify({ id: "s", anonymousId: "visitor-1" }));
  storage.setItem(keys.anonymousId, "visitor-1");
  storage.setItem("app:theme", "dark");
}

function contents(storage: MemoryStorage): Record<string, string> {
  const items: Record<string, string> = {};
  for (let i = 0; i < storage.length; i++) {
    const key = storage.key(i)!;
    items[key] = storage.getItem(key)!;
  }
  return items;
}

// First in this file: before any initTracking(), the singletons have no tracker.
Deno.test("mod: an opt-out before initTracking() clears every queue, the session and the anonymous id", async () => {
  const local = new MemoryStorage();
  leftByEarlierPages(local);
  await withLocalStorage({ value: local }, () => {
    interactionTracker.optOut();
    assert.deepEqual(contents(local), { [keys.optedOut]: "true", "app:theme": "dark" });
    interactionTracker.optIn();
    assert.deepEqual(contents(local), { "app:theme": "dark" });
  });
});

Deno.test("mod: an opt-out before initTracking() in a full localStorage clears it and is stored there", async () => {
  const local = new QuotaStorage(1_000);
  leftByEarlierPages(local);
  local.setItem("app:cache", "x".repeat(1_000 - local.used() - "app:cache".length));
  await withLocalStorage({ value: local }, () => {
    assert.throws(() => local.setItem(keys.optedOut, "true"), /quota/, "full");
    interactionTracker.optOut();
    assert.deepEqual(Object.keys(contents(local)).sort(), [
      "app:cache",
      "app:theme",
      keys.optedOut,
    ]);
    interactionTracker.optIn();
  });
});

/** What the browser tells the other tabs when one of them changes `key` in localStorage. */
function storageEventFromAnotherTab(key: string, newValue: string | null): void {
  globalThis.dispatchEvent(Object.assign(new Event("storage"), { key, newValue }));
}

/** Another tab opts out, stores it in `local`: this tab collects and sends nothing. */
async function optedOutInAnotherTab(
  local: KeyValueStorage,
  tracker: Tracker,
  sent: string[],
): Promise<void> {
  local.setItem(keys.optedOut, "true");
  storageEventFromAnotherTab(keys.optedOut, "true");
  assert.equal(tracker.isOptedOut(), true);
  assert.equal(trackInteraction.view("event", "e1"), null);
  await interactionTracker.flush();
  assert.deepEqual(sent, []);
}

/**
 * A tab of a page whose localStorage is `local`: a tracker started by
 * initTracking() (on `storage` when given), listening to the page, stopped
 * after `body`.
 */
async function inTab(
  local: KeyValueStorage,
  storage: KeyValueStorage | undefined,
  body: (tracker: Tracker, sent: string[]) => Promise<void> | void,
): Promise<void> {
  const globals = globalThis as { document?: unknown };
  globals.document = Object.assign(new EventTarget(), { visibilityState: "visible" });
  await withLocalStorage({ value: local }, async () => {
    const { supabase, sent } = fakeSupabase();
    const tracker = initTracking({
      supabase,
      apiKey: "anon-key",
      flushIntervalMs: 60_000,
      ...(storage && { storage }),
    });
    try {
      await body(tracker, sent);
    } finally {
      tracker.destroy();
      delete globals.document;
    }
  });
}

// The last before any tracker: it starts the first.
Deno.test("mod: an opt-in before initTracking() with a full localStorage holds when tracking starts", async () => {
  const local = new QuotaStorage(1_000);
  local.setItem(keys.optedOut, "true");
  local.setItem("app:cache", "x".repeat(1_000 - local.used() - "app:cache".length));
  await withLocalStorage({ value: local }, () => {
    interactionTracker.optIn();
    assert.equal(local.getItem(keys.optedOut), null);
    const { supabase } = fakeSupabase();
    const tracker = initTracking({ supabase, apiKey: "anon-key", flushIntervalMs: 60_000 });
    try {
      assert.equal(tracker.isOptedOut(), false);
    } finally {
      tracker.destroy();
    }
  });
});

Deno.test("mod: a tracker kept in memory by a full localStorage follows another tab's opt-out and opt-in", async () => {
  const local = new QuotaStorage(1_000);
  local.setItem("app:cache", "x".repeat(1_000 - local.used() - "app:cache".length));
  await inTab(local, undefined, async (tracker, sent) => {
    assert.equal(tracker.isOptedOut(), false);
    // Another tab makes room, opts out and stores it there.
    local.removeItem("app:cache");
    await optedOutInAnotherTab(local, tracker, sent);
    // And back in.
    local.removeItem(keys.optedOut);
    storageEventFromAnotherTab(keys.optedOut, null);
    assert.equal(tracker.isOptedOut(), false);
  });
});
Deno.test("mod: a late storage event never writes an older choice back to localStorage", async () => {
  const local = new MemoryStorage();
  // The app's own adapter over localStorage, as the storage option allows.
  const adapter = {
    get length() {
      return local.length;
    },
    key: (index: number) => local.key(index),
    getItem: (key: string) => local.getItem(key),
    setItem: (key: string, value: string) => local.setItem(key, value),
    removeItem: (key: string) => local.removeItem(key),
  };
  await inTab(local, adapter, (tracker) => {
    const id = trackInteraction.view("event", "e1");
    // One tab opted out, another opted in since: the first one's event
    // arrives last.
    storageEventFromAnotherTab(keys.optedOut, "true");
    assert.equal(local.getItem(keys.optedOut), null);
    assert.equal(tracker.isOptedOut(), false);
    assert.equal(tracker.pendingCount(), 1, `${id} is still queued`);
  });
});
Deno.test("mod: a tracker on the app's own storage follows another tab's opt-out, and not a late one", async () => {
  const local = new MemoryStorage();
  await inTab(local, new MemoryStorage(), async (tracker, sent) => {
    await optedOutInAnotherTab(local, tracker, sent);
    // Opted in since in a third tab; the opt-out's event comes late.
    local.removeItem(keys.optedOut);
    storageEventFromAnotherTab(keys.optedOut, null);
    const id = trackInteraction.view("event", "e2");
    storageEventFromAnotherTab(keys.optedOut, "true");
    assert.equal(tracker.isOptedOut(), false);
    assert.equal(tracker.pendingCount(), 1, `${id} is still queued`);
  });
});
Deno.test("mod: a tracker whose own storage is full still follows another tab's opt-out", async () => {
  const local = new MemoryStorage();
  const own = new QuotaStorage(Infinity);
  await inTab(local, own, async (tracker, sent) => {
    try {
      own.quota = 0;
      await optedOutInAnotherTab(local, tracker, sent);
    } finally {
      own.quota = Infinity;
      tracker.optIn();
    }
  });
});
Deno.test("mod: a tracker kept in memory by a full localStorage opts out and in there too", async () => {
  const local = new QuotaStorage(1_000);
  leftByEarlierPages(local);
  local.setItem(keys.optedOut, "true");
  local.setItem("app:cache", "x".repeat(1_000 - local.used() - "app:cache".length));
  await withLocalStorage({ value: local }, () => {
    const { supabase } = fakeSupabase();
    const tracker = initTracking({ supabase, apiKey: "anon-key", flushIntervalMs: 60_000 });
    try {
      assert.equal(tracker.isOptedOut(), true, "the stored opt-out is taken over");
      // Opted in: the next page, reading localStorage, must not opt out again.
      tracker.optIn();
      assert.equal(local.getItem(keys.optedOut), null);
      assert.equal(tracker.isOptedOut(), false);
      // Opted out again: what earlier pages left in localStorage goes too,
      // and the choice is stored there for the next page.
      tracker.optOut();
      assert.deepEqual(Object.keys(contents(local)).sort(), [
        "app:cache",
        "app:theme",
        keys.optedOut,
      ]);
    } finally {
      tracker.optIn();
      tracker.destroy();
    }
  });
});

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

Deno.test("mod: where localStorage and Web Locks are both refused, initTracking() again sends what the earlier tracker held", async () => {
  await withLocalStorage(blockedLocalStorage, async () => {
    await withLocksRefused(async () => {
      const errors: TrackerError[] = [];
      const onError = (error: TrackerError) => errors.push(error);
      const { supabase, sent } = fakeSupabase();
      initTracking({ supabase, apiKey: "anon-key", flushIntervalMs: 60_000, onError });
      // Replaced before its first delivery: what it tracked is left in page memory.
      const held = [trackInteraction.view("event", "e1"), trackInteraction.view("event", "e2")];
      const tracker = initTracking({
        supabase,
        apiKey: "anon-key",
        flushIntervalMs: 60_000,
        onError,
      });
      try {
        const own = trackInteraction.view("event", "e3");
        await tick(20);
        await interactionTracker.flush();
        assert.deepEqual(sent.toSorted(), [...held, own].toSorted());
        assert.equal(tracker.pendingCount(), 0);
        assert.deepEqual(errors, [], "nothing is lost: nothing to report");
      } finally {
        tracker.destroy();
      }
    });
  });
});
