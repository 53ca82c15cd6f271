import assert from "node:assert/strict";
import { LeaseCoordinator, PageCoordinator, WebLocksCoordinator } from "./tabs.ts";
import { keys, MemoryStorage } from "./storage.ts";

function clock(start = 1_000_000) {
  const state = { now: start };
  return { now: () => state.now, advance: (ms: number) => void (state.now += ms) };
}

const LEASE = 60_000;

Deno.test("lease: a queue whose owner renews its lease cannot be adopted", async () => {
  const storage = new MemoryStorage();
  const time = clock();
  const owner = new LeaseCoordinator("tab-a", storage, { leaseMs: LEASE, now: time.now });
  const other = new LeaseCoordinator("tab-b", storage, {
    leaseMs: LEASE,
    now: time.now,
    sleep: async () => {},
  });
  await owner.claim("tab-a");
  try {
    let ran = false;
    time.advance(LEASE - 1);
    assert.equal(await other.adopt("tab-a", () => void (ran = true)), false);
    assert.equal(ran, false);
  } finally {
    owner.release("tab-a");
  }
});

Deno.test("lease: a lease not renewed for leaseMs is abandoned and adopted once", async () => {
  const storage = new MemoryStorage();
  const time = clock();
  storage.setItem(keys.leasePrefix + "tab-a", String(time.now()));
  time.advance(LEASE);
  const adopter = new LeaseCoordinator("tab-b", storage, {
    leaseMs: LEASE,
    now: time.now,
    sleep: async () => {},
  });
  let runs = 0;
  assert.equal(await adopter.adopt("tab-a", () => void runs++), true);
  assert.equal(runs, 1);
  assert.equal(storage.getItem(keys.leasePrefix + "tab-a"), null, "the lease is cleaned up");
  assert.equal(storage.getItem(keys.claimPrefix + "tab-a"), null, "the claim is cleaned up");
});

Deno.test("lease: a released lease is adoptable at once", async () => {
  const storage = new MemoryStorage();
  const time = clock();
  const owner = new LeaseCoordinator("tab-a", storage, { leaseMs: LEASE, now: time.now });
  await owner.claim("tab-a");
  owner.release("tab-a");
  const adopter = new LeaseCoordinator("tab-b", storage, {
    leaseMs: LEASE,
    now: time.now,
    sleep: async () => {},
  });
  assert.equal(await adopter.adopt("tab-a", () => {}), true);
});

Deno.test("lease: of two tabs adopting the same queue at once, only one runs", async () => {
  const storage = new MemoryStorage();
  const time = clock();
  const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));
  const first = new LeaseCoordinator("tab-b", storage, { leaseMs: LEASE, now: time.now, sleep });
  const second = new LeaseCoordinator("tab-c", storage, { leaseMs: LEASE, now: time.now, sleep });
  const ran: string[] = [];
  // The second stake is written while the first is still fresh: it is refused.
  const results = await Promise.all([
    first.adopt("tab-a", () => void ran.push("tab-b")),
    second.adopt("tab-a", () => void ran.push("tab-c")),
  ]);
  assert.deepEqual(results, [true, false]);
  assert.deepEqual(ran, ["tab-b"]);
});

Deno.test("lease: two adopters whose stakes race: the one overwritten backs off", async () => {
  const storage = new MemoryStorage();
  const time = clock();
  const ran: string[] = [];
  let overwrite = () => {};
  const first = new LeaseCoordinator("tab-b", storage, {
    leaseMs: LEASE,
    now: time.now,
    // While tab-b pauses, tab-c's stake replaces its own.
    sleep: () => {
      overwrite();
      return Promise.resolve();
    },
  });
  overwrite = () => storage.setItem(keys.claimPrefix + "tab-a", `${time.now()}|tab-c|0.5`);
  assert.equal(await first.adopt("tab-a", () => void ran.push("tab-b")), false);
  assert.deepEqual(ran, []);
});

Deno.test("lease: the owner never adopts its own queue", async () => {
  const storage = new MemoryStorage();
  const time = clock();
  const owner = new LeaseCoordinator("tab-a", storage, {
    leaseMs: LEASE,
    now: time.now,
    sleep: async () => {},
  });
  await owner.claim("tab-a");
  try {
    time.advance(10 * LEASE);
    assert.equal(await owner.adopt("tab-a", () => {}), false);
  } finally {
    owner.release("tab-a");
  }
});

Deno.test("lease: a starting tab forgets the leases of dead tabs with nothing queued", async () => {
  const storage = new MemoryStorage();
  const time = clock();
  const stamp = (key: string) => storage.setItem(key, String(time.now()));
  stamp(keys.leasePrefix + "tab-dead");
  stamp(keys.leasePrefix + "tab-left");
  storage.setItem(keys.queuePrefix + "tab-left", "[]");
  stamp(keys.claimPrefix + "tab-gone");
  time.advance(LEASE);
  stamp(keys.leasePrefix + "tab-live");
  stamp(keys.claimPrefix + "tab-claimed");
  const starting = new LeaseCoordinator("tab-new", storage, { leaseMs: LEASE, now: time.now });
  await starting.claim("tab-new");
  try {
    const remaining = [keys.leasePrefix, keys.claimPrefix].flatMap((prefix) =>
      ["tab-dead", "tab-left", "tab-gone", "tab-live", "tab-claimed", "tab-new"]
        .filter((tab) => storage.getItem(prefix + tab) !== null)
        .map((tab) => prefix + tab)
    );
    assert.deepEqual(remaining, [
      keys.leasePrefix + "tab-left", // its queue waits for an adopter, who removes both
      keys.leasePrefix + "tab-live",
      keys.leasePrefix + "tab-new",
      keys.claimPrefix + "tab-claimed",
    ]);
  } finally {
    starting.release("tab-new");
  }
});

Deno.test("web locks: a live tab's queue cannot be adopted; once released, one adopter runs", async () => {
  const tabId = crypto.randomUUID();
  const owner = new WebLocksCoordinator(navigator.locks);
  const adopters = [
    new WebLocksCoordinator(navigator.locks),
    new WebLocksCoordinator(navigator.locks),
  ];
  await owner.claim(tabId);
  let runs = 0;
  assert.equal(await adopters[0].adopt(tabId, () => void runs++), false);
  assert.equal(runs, 0);
  owner.release(tabId);
  await new Promise((done) => setTimeout(done, 0)); // the browser frees the lock
  const gate = Promise.withResolvers<void>();
  const results = await Promise.all([
    adopters[0].adopt(tabId, async () => {
      runs++;
      await gate.promise;
    }),
    (async () => {
      // Asked while the first adopter holds the queue.
      await new Promise((done) => setTimeout(done, 10));
      const result = await adopters[1].adopt(tabId, () => void runs++);
      gate.resolve();
      return result;
    })(),
  ]);
  assert.deepEqual(results, [true, false]);
  assert.equal(runs, 1);
});

Deno.test("web locks: claiming twice is one claim, released once", async () => {
  const tabId = crypto.randomUUID();
  const owner = new WebLocksCoordinator(navigator.locks);
  await owner.claim(tabId);
  await owner.claim(tabId);
  owner.release(tabId);
  await new Promise((done) => setTimeout(done, 0));
  const other = new WebLocksCoordinator(navigator.locks);
  assert.equal(await other.adopt(tabId, () => {}), true);
});

/** Web Locks as Chromium answers where it refuses the page storage: every request rejected. */
const refusedLocks = {
  request: () =>
    Promise.reject(
      new DOMException("Access to the Locks API is denied in this context.", "SecurityError"),
    ),
} as unknown as LockManager;

Deno.test("web locks: refused by the browser, leases in storage take over", async () => {
  const storage = new MemoryStorage();
  const time = clock();
  const leases = () =>
    new LeaseCoordinator("tab-a", storage, {
      leaseMs: LEASE,
      now: time.now,
      sleep: async () => {},
    });
  const owner = new WebLocksCoordinator(refusedLocks, leases);
  await owner.claim("tab-a");
  try {
    assert.notEqual(
      storage.getItem(keys.leasePrefix + "tab-a"),
      null,
      "a lease stands for the lock",
    );
    const other = new WebLocksCoordinator(refusedLocks, leases);
    let runs = 0;
    assert.equal(await other.adopt("tab-a", () => void runs++), false, "owned: not adopted");
    storage.setItem(keys.leasePrefix + "tab-gone", String(time.now() - LEASE));
    assert.equal(await other.adopt("tab-gone", () => void runs++), true, "left: adopted");
    assert.equal(runs, 1);
  } finally {
    owner.release("tab-a");
  }
});

Deno.test("page: a tracker's queue is its own at once; one a stopped tracker left is adopted once", async () => {
  const [first, second, third] = [
    new PageCoordinator(),
    new PageCoordinator(),
    new PageCoordinator(),
  ];
  await first.claim("tab-1");
  let runs = 0;
  assert.equal(await second.adopt("tab-1", () => void runs++), false);
  first.release("tab-1");
  const gate = Promise.withResolvers<void>();
  const adopting = second.adopt("tab-1", async () => {
    runs++;
    await gate.promise;
  });
  assert.equal(await third.adopt("tab-1", () => void runs++), false, "taken while adopted");
  gate.resolve();
  assert.equal(await adopting, true);
  assert.equal(runs, 1);
});
