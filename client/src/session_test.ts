import assert from "node:assert/strict";
import { DEFAULT_SESSION_TIMEOUT_MS, metricsOf, SessionStore } from "./session.ts";
import { keys, MemoryStorage } from "./storage.ts";

const MINUTE = 60_000;
const visitor = { userId: null, anonymousId: "visitor-1" };
const user = (userId: string) => ({ userId, anonymousId: "visitor-1" });

function clock(start = Date.parse("2025-06-01T10:00:00Z")) {
  const state = { now: start };
  return {
    now: () => state.now,
    advance: (ms: number) => {
      state.now += ms;
    },
  };
}

function ids() {
  let n = 0;
  return () => `session-${++n}`;
}

Deno.test("session: interactions within 30 minutes of each other share one session", () => {
  const time = clock();
  const sessions = new SessionStore({ storage: new MemoryStorage(), now: time.now, newId: ids() });
  const first = sessions.record("view", visitor);
  time.advance(29 * MINUTE);
  const second = sessions.record("click", visitor);
  time.advance(29 * MINUTE);
  const third = sessions.record("view", visitor);
  assert.equal(first.id, "session-1");
  assert.equal(second.id, "session-1");
  assert.equal(third.id, "session-1");
  assert.deepEqual(third, {
    id: "session-1",
    userId: null,
    anonymousId: "visitor-1",
    startedAt: Date.parse("2025-06-01T10:00:00Z"),
    lastActivityAt: Date.parse("2025-06-01T10:58:00Z"),
    interactionCount: 3,
    pageViews: 2,
  });
});

Deno.test("session: 30 minutes without an interaction start a new session", () => {
  const time = clock();
  const sessions = new SessionStore({ storage: new MemoryStorage(), now: time.now, newId: ids() });
  sessions.record("view", visitor);
  time.advance(DEFAULT_SESSION_TIMEOUT_MS - 1);
  assert.equal(sessions.record("click", visitor).id, "session-1");
  time.advance(DEFAULT_SESSION_TIMEOUT_MS);
  const next = sessions.record("click", visitor);
  assert.equal(next.id, "session-2");
  assert.equal(next.interactionCount, 1);
  assert.equal(next.pageViews, 0);
  assert.equal(next.startedAt, time.now());
});

Deno.test("session: reading an idle session after the timeout gives a fresh one", () => {
  const time = clock();
  const sessions = new SessionStore({
    storage: new MemoryStorage(),
    now: time.now,
    newId: ids(),
    timeoutMs: 5 * MINUTE,
  });
  sessions.record("view", visitor);
  time.advance(5 * MINUTE);
  const current = sessions.current(visitor);
  assert.equal(current.id, "session-2");
  assert.equal(current.interactionCount, 0);
});

Deno.test("session: the session survives a reload (a new store on the same storage)", () => {
  const time = clock();
  const storage = new MemoryStorage();
  new SessionStore({ storage, now: time.now, newId: ids() }).record("view", visitor);
  time.advance(10 * MINUTE);
  const reloaded = new SessionStore({ storage, now: time.now, newId: () => "other" });
  const session = reloaded.record("view", visitor);
  assert.equal(session.id, "session-1");
  assert.equal(session.pageViews, 2);
  assert.deepEqual(JSON.parse(storage.getItem(keys.session)!), session);
});

Deno.test("session: after the wall clock is set back, idle sessions still end after 30 minutes", () => {
  const time = clock();
  const sessions = new SessionStore({ storage: new MemoryStorage(), now: time.now, newId: ids() });
  sessions.record("view", visitor);
  time.advance(10 * MINUTE);
  sessions.record("click", visitor);
  time.advance(-2 * 60 * MINUTE + MINUTE); // corrected by two hours, a minute later
  const moved = sessions.record("view", visitor);
  assert.deepEqual(moved, {
    id: "session-1",
    userId: null,
    anonymousId: "visitor-1",
    startedAt: Date.parse("2025-06-01T08:01:00Z"),
    lastActivityAt: Date.parse("2025-06-01T08:11:00Z"),
    interactionCount: 3,
    pageViews: 2,
  });
  assert.equal(metricsOf(moved).duration, 10 * MINUTE);
  time.advance(45 * MINUTE);
  const second = sessions.record("view", visitor);
  assert.equal(second.id, "session-2");
  time.advance(20 * MINUTE);
  assert.equal(metricsOf(sessions.record("click", visitor)).duration, 20 * MINUTE);
  time.advance(50 * MINUTE);
  assert.equal(sessions.record("view", visitor).id, "session-3");
});

Deno.test("session: read after the wall clock is set back, a session's idle time starts then", () => {
  const time = clock();
  const storage = new MemoryStorage();
  const sessions = new SessionStore({ storage, now: time.now, newId: ids() });
  sessions.record("view", visitor);
  time.advance(-2 * 60 * MINUTE);
  assert.equal(sessions.current(visitor).id, "session-1");
  assert.equal(metricsOf(sessions.current(visitor)).duration, 0);
  time.advance(45 * MINUTE);
  // Another tab, or a reload, sees the same.
  const reloaded = new SessionStore({ storage, now: time.now, newId: () => "session-2" });
  assert.equal(reloaded.record("click", visitor).id, "session-2");
});

Deno.test("session: a different signed-in user gets a new session", () => {
  const time = clock();
  const sessions = new SessionStore({ storage: new MemoryStorage(), now: time.now, newId: ids() });
  assert.equal(sessions.record("view", visitor).id, "session-1");
  const signedIn = sessions.record("view", user("user-a"));
  assert.equal(signedIn.id, "session-2");
  assert.equal(signedIn.userId, "user-a");
  assert.equal(sessions.record("view", user("user-b")).id, "session-3");
  assert.equal(sessions.record("view", user("user-b")).id, "session-3");
});

Deno.test("session: another anonymous id gets a new session, a signed-in user keeps theirs", () => {
  const time = clock();
  const sessions = new SessionStore({ storage: new MemoryStorage(), now: time.now, newId: ids() });
  assert.equal(sessions.record("view", visitor).id, "session-1");
  assert.equal(sessions.record("view", { userId: null, anonymousId: "visitor-2" }).id, "session-2");
  assert.equal(sessions.record("view", { userId: "u", anonymousId: "visitor-2" }).id, "session-3");
  assert.equal(sessions.record("view", { userId: "u", anonymousId: "visitor-3" }).id, "session-3");
});

Deno.test("session: startNew replaces the session at once, with zero counts", () => {
  const time = clock();
  const sessions = new SessionStore({ storage: new MemoryStorage(), now: time.now, newId: ids() });
  sessions.record("view", visitor);
  sessions.record("view", visitor);
  time.advance(MINUTE);
  const fresh = sessions.start(visitor);
  assert.deepEqual(fresh, {
    id: "session-2",
    userId: null,
    anonymousId: "visitor-1",
    startedAt: time.now(),
    lastActivityAt: time.now(),
    interactionCount: 0,
    pageViews: 0,
  });
  assert.equal(sessions.current(visitor).id, "session-2");
});

Deno.test("session: a session opened before its first interaction starts at that interaction", () => {
  const time = clock();
  const sessions = new SessionStore({ storage: new MemoryStorage(), now: time.now, newId: ids() });
  sessions.start(visitor);
  time.advance(3 * MINUTE);
  const session = sessions.record("click", visitor);
  assert.equal(session.startedAt, time.now());
  assert.equal(metricsOf(session).duration, 0);
});

Deno.test("session: unreadable stored state is replaced by a new session", () => {
  const storage = new MemoryStorage();
  storage.setItem(keys.session, "{broken");
  const sessions = new SessionStore({ storage, newId: () => "fresh" });
  assert.equal(sessions.current(visitor).id, "fresh");
  storage.setItem(keys.session, JSON.stringify({ id: 5 }));
  assert.equal(new SessionStore({ storage, newId: () => "again" }).current(visitor).id, "again");
});

Deno.test("session: with a storage that refuses writes the session lives in memory", () => {
  const storage = new (class extends MemoryStorage {
    override setItem(): void {
      throw new DOMException("full", "QuotaExceededError");
    }
  })();
  const sessions = new SessionStore({ storage, newId: ids() });
  sessions.record("view", visitor);
  const session = sessions.record("view", visitor);
  assert.equal(session.id, "session-1");
  assert.equal(session.pageViews, 2);
});

Deno.test("session: metrics follow the shared engagement score vectors", async () => {
  const file = new URL(
    "../../supabase/functions/_shared/engagement_score_vectors.json",
    import.meta.url,
  );
  const { vectors } = JSON.parse(await Deno.readTextFile(file)) as {
    vectors: Array<{ interactionCount: number; durationMs: number; expected: number }>;
  };
  assert.ok(vectors.length >= 10);
  for (const { interactionCount, durationMs, expected } of vectors) {
    const metrics = metricsOf({
      id: "s",
      userId: null,
      anonymousId: "visitor-1",
      startedAt: 1_000_000,
      lastActivityAt: 1_000_000 + durationMs,
      interactionCount,
      pageViews: 0,
    });
    const duration = interactionCount === 0 ? 0 : Math.max(0, durationMs);
    assert.equal(
      metrics.engagementScore,
      expected,
      JSON.stringify({ interactionCount, durationMs }),
    );
    assert.equal(metrics.duration, duration);
    assert.equal(metrics.interactionCount, interactionCount);
  }
});

Deno.test("session: bounce rate is 100 up to one page view, else 0", () => {
  const base = {
    id: "s",
    userId: null,
    anonymousId: "visitor-1",
    startedAt: 0,
    lastActivityAt: 0,
    interactionCount: 3,
  };
  assert.equal(metricsOf({ ...base, pageViews: 0 }).bounceRate, 100);
  assert.equal(metricsOf({ ...base, pageViews: 1 }).bounceRate, 100);
  assert.equal(metricsOf({ ...base, pageViews: 2 }).bounceRate, 0);
});
