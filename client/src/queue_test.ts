import assert from "node:assert/strict";
import { DurableQueue, type QueueProblem, readQueue } from "./queue.ts";
import { MemoryStorage } from "./storage.ts";

type Event = { eventId: string; n: number };

const KEY = "synth_interactions:queue:tab-1";

function entry(n: number, userId: string | null = null) {
  return { event: { eventId: `id-${n}`, n }, userId };
}

function numbers(queue: DurableQueue<Event>): number[] {
  return queue.entries().map((e) => e.event.n);
}

/** A storage that refuses writes beyond `capacity` characters, as browsers do. */
class SmallStorage extends MemoryStorage {
  constructor(public capacity: number) {
    super();
  }
  override setItem(key: string, value: string): void {
    if (value.length > this.capacity) {
      throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
    }
    super.setItem(key, value);
  }
}

Deno.test("queue: keeps events in order and writes them to storage", () => {
  const storage = new MemoryStorage();
  const queue = new DurableQueue<Event>({ storage, key: KEY, maxSize: 10 });
  queue.push(entry(1));
  queue.push(entry(2, "user-a"));
  queue.save();
  assert.deepEqual(numbers(queue), [1, 2]);
  assert.deepEqual(JSON.parse(storage.getItem(KEY)!), [entry(1), entry(2, "user-a")]);
});

Deno.test("queue: a burst in one task is written once, at the end of the task", async () => {
  let writes = 0;
  const storage = new (class extends MemoryStorage {
    override setItem(key: string, value: string) {
      writes++;
      super.setItem(key, value);
    }
  })();
  const queue = new DurableQueue<Event>({ storage, key: KEY, maxSize: 100 });
  for (let n = 0; n < 50; n++) queue.push(entry(n));
  assert.equal(storage.getItem(KEY), null);
  await Promise.resolve();
  assert.equal(writes, 1);
  assert.equal(readQueue(storage, KEY).length, 50);
});

Deno.test("queue: survives a reload: a new queue on the same storage holds the events", () => {
  const storage = new MemoryStorage();
  const first = new DurableQueue<Event>({ storage, key: KEY, maxSize: 10 });
  first.push(entry(1));
  first.push(entry(2));
  first.save();
  const second = new DurableQueue<Event>({ storage, key: KEY, maxSize: 10 });
  assert.deepEqual(numbers(second), [1, 2]);
});

Deno.test("queue: when full, drops the oldest events and reports how many", () => {
  const problems: QueueProblem[] = [];
  const storage = new MemoryStorage();
  const queue = new DurableQueue<Event>({
    storage,
    key: KEY,
    maxSize: 3,
    onProblem: (p) => problems.push(p),
  });
  for (let n = 1; n <= 5; n++) queue.push(entry(n));
  queue.save();
  assert.deepEqual(numbers(queue), [3, 4, 5]);
  assert.equal(queue.dropped, 2);
  assert.deepEqual(problems, [
    { kind: "dropped", reason: "queue_full", count: 1 },
    { kind: "dropped", reason: "queue_full", count: 1 },
  ]);
  assert.deepEqual(readQueue<Event>(storage, KEY).map((e) => e.event.n), [3, 4, 5]);
});

Deno.test("queue: a stored queue above a smaller bound is cut to it on load", () => {
  const problems: QueueProblem[] = [];
  const storage = new MemoryStorage();
  storage.setItem(KEY, JSON.stringify([entry(1), entry(2), entry(3)]));
  const queue = new DurableQueue<Event>({
    storage,
    key: KEY,
    maxSize: 2,
    onProblem: (p) => problems.push(p),
  });
  assert.deepEqual(numbers(queue), [2, 3]);
  assert.deepEqual(problems, [{ kind: "dropped", reason: "queue_full", count: 1 }]);
});

Deno.test("queue: a full storage drops nothing: the newest that fit are stored, all are kept", () => {
  const problems: QueueProblem[] = [];
  const one = JSON.stringify([entry(10)]).length;
  const storage = new SmallStorage(one * 4);
  const queue = new DurableQueue<Event>({
    storage,
    key: KEY,
    maxSize: 100,
    onProblem: (p) => problems.push(p),
  });
  for (let n = 10; n < 30; n++) queue.push(entry(n));
  queue.save();
  assert.deepEqual(numbers(queue), Array.from({ length: 20 }, (_, i) => 10 + i), "all kept");
  assert.equal(queue.dropped, 0);
  const stored = readQueue<Event>(storage, KEY).map((e) => e.event.n);
  assert.ok(stored.length >= 1 && stored.length < 20, `stored ${stored.length}`);
  assert.deepEqual(stored, numbers(queue).slice(-stored.length), "the newest are stored");
  assert.deepEqual(problems, [{
    kind: "storage",
    message: `the storage is full; ${20 - stored.length} of 20 queued events are kept in memory ` +
      "only until it can hold them",
  }]);

  // Reported once while it lasts; once the storage has room, all of it is stored again.
  queue.push(entry(30));
  queue.save();
  assert.equal(problems.length, 1);
  storage.capacity = Infinity;
  queue.remove(["id-10"]);
  assert.deepEqual(readQueue<Event>(storage, KEY).map((e) => e.event.n), numbers(queue));
  assert.equal(queue.size, 20);
  storage.capacity = 0;
  queue.push(entry(31));
  queue.save();
  assert.equal(problems.length, 2, "a new shortage is reported again");
  assert.equal(queue.size, 21);
});

Deno.test("queue: a storage another script filled keeps every event deliverable", () => {
  const problems: QueueProblem[] = [];
  const queue = new DurableQueue<Event>({
    storage: new SmallStorage(0),
    key: KEY,
    maxSize: 100,
    onProblem: (p) => problems.push(p),
  });
  for (let n = 1; n <= 5; n++) {
    queue.push(entry(n));
    queue.save();
  }
  assert.deepEqual(numbers(queue), [1, 2, 3, 4, 5]);
  assert.equal(queue.dropped, 0);
  assert.deepEqual(problems.map((p) => p.kind), ["storage"]);
});

Deno.test("queue: a storage that fails otherwise is reported once and the queue goes on in memory", () => {
  const problems: QueueProblem[] = [];
  const storage = new (class extends MemoryStorage {
    override setItem(): void {
      throw new DOMException("The operation is insecure.", "SecurityError");
    }
  })();
  const queue = new DurableQueue<Event>({
    storage,
    key: KEY,
    maxSize: 10,
    onProblem: (p) => problems.push(p),
  });
  queue.push(entry(1));
  queue.save();
  queue.push(entry(2));
  queue.save();
  assert.deepEqual(numbers(queue), [1, 2]);
  assert.equal(problems.length, 1);
  assert.equal(problems[0].kind, "storage");
  assert.match((problems[0] as { message: string }).message, /insecure/);
});

Deno.test("queue: remove drops exactly the given ids and clear empties storage", () => {
  const storage = new MemoryStorage();
  const queue = new DurableQueue<Event>({ storage, key: KEY, maxSize: 10 });
  for (let n = 1; n <= 4; n++) queue.push(entry(n));
  queue.remove(["id-2", "id-4", "id-unknown"]);
  assert.deepEqual(numbers(queue), [1, 3]);
  assert.deepEqual(readQueue<Event>(storage, KEY).map((e) => e.event.n), [1, 3]);
  queue.clear();
  assert.equal(queue.size, 0);
  assert.equal(storage.getItem(KEY), null);
});

Deno.test("queue: replace puts entries in place of the queued ones with their ids", () => {
  const storage = new MemoryStorage();
  const queue = new DurableQueue<Event>({ storage, key: KEY, maxSize: 10 });
  for (let n = 1; n <= 3; n++) queue.push({ ...entry(n), provisional: true });
  queue.replace([entry(2, "user-a"), { event: { eventId: "id-unknown", n: 9 }, userId: null }]);
  assert.deepEqual(queue.entries(), [
    { ...entry(1), provisional: true },
    entry(2, "user-a"),
    { ...entry(3), provisional: true },
  ]);
  assert.deepEqual(readQueue<Event>(storage, KEY), queue.entries());
});

Deno.test("queue: merge adds only events not queued yet", () => {
  const storage = new MemoryStorage();
  const queue = new DurableQueue<Event>({ storage, key: KEY, maxSize: 10 });
  queue.push(entry(1));
  queue.push(entry(2));
  assert.equal(queue.merge([entry(2), entry(3)]), 1);
  assert.deepEqual(numbers(queue), [1, 2, 3]);
  assert.deepEqual(readQueue<Event>(storage, KEY).map((e) => e.event.n), [1, 2, 3]);
});

Deno.test("queue: merged events take their place by tracking time, so a full queue drops the oldest", () => {
  const problems: QueueProblem[] = [];
  const storage = new MemoryStorage();
  const queue = new DurableQueue<Event>({
    storage,
    key: KEY,
    maxSize: 4,
    onProblem: (p) => problems.push(p),
    trackedAt: (event) => event.n,
  });
  queue.push(entry(3));
  queue.push(entry(5));
  assert.equal(queue.merge([entry(1), entry(2), entry(4), entry(6)]), 4);
  assert.deepEqual(numbers(queue), [3, 4, 5, 6]);
  assert.deepEqual(readQueue<Event>(storage, KEY).map((e) => e.event.n), [3, 4, 5, 6]);
  assert.deepEqual(problems, [{ kind: "dropped", reason: "queue_full", count: 2 }]);
});

Deno.test("queue: a detached queue writes nothing until attached, then merges with storage", () => {
  const storage = new MemoryStorage();
  storage.setItem(KEY, JSON.stringify([entry(1)]));
  const queue = new DurableQueue<Event>({ storage, key: KEY, maxSize: 10, attached: false });
  queue.push(entry(2));
  queue.save();
  assert.deepEqual(readQueue<Event>(storage, KEY).map((e) => e.event.n), [1]);
  queue.attach();
  assert.deepEqual(numbers(queue), [1, 2]);
  assert.deepEqual(readQueue<Event>(storage, KEY).map((e) => e.event.n), [1, 2]);
});

Deno.test("queue: unreadable storage content is ignored, malformed entries are skipped", () => {
  const storage = new MemoryStorage();
  storage.setItem(KEY, "{not json");
  assert.deepEqual(readQueue(storage, KEY), []);
  storage.setItem(
    KEY,
    JSON.stringify([entry(1), { event: {}, userId: null }, { event: { eventId: "x" } }, 7]),
  );
  assert.deepEqual(readQueue<Event>(storage, KEY), [entry(1)]);
});
