import assert from "node:assert/strict";
import { EVENT_TYPES } from "./contract.ts";
import { interactionHelpers, type Metadata } from "./helpers.ts";
import { readQueue } from "./queue.ts";
import { browserStorage, forgetVisitor, keys, keysWithPrefix, MemoryStorage } from "./storage.ts";
import {
  blockedLocalStorage,
  fullLocalStorage,
  withLocalStorage,
} from "../../test_support/local_storage.ts";
import {
  type AuthSession,
  createTracker,
  type Tracker,
  type TrackerError,
  type TrackerOptions,
} from "./tracker.ts";

const ANON_KEY = "header.payload.signature";
const HOUR = 3_600_000;

interface Call {
  body: { events: Array<Record<string, unknown>>; sentAt: string };
  headers: Record<string, string>;
}

type Reply = (call: Call) => { data: unknown; error: unknown; response?: Response };

const accepted: Reply = (call) => ({
  data: { accepted: call.body.events.length, duplicates: 0, rejected: [] },
  error: null,
  response: new Response(null, { status: 200 }),
});

function failing(status: number, headers: Record<string, string> = {}, body = {}): Reply {
  return () => {
    const response = new Response(JSON.stringify(body), { status, headers });
    return { data: null, error: Object.assign(new Error("http"), { context: response }), response };
  };
}

const offline: Reply = () => ({
  data: null,
  error: Object.assign(new Error("fetch"), { context: new TypeError("Failed to fetch") }),
});

/**
 * A stand-in for the app's supabase-js client: scripted replies, recorded
 * calls; once the script is done, `server.reply` answers (each event accepted).
 */
function fakeSupabase(session: AuthSession | null = null) {
  const calls: Call[] = [];
  const replies: Reply[] = [];
  const server = { reply: accepted };
  let listener: ((event: string, session: AuthSession | null) => void) | undefined;
  let answered = Promise.resolve();
  const auth = {
    session,
    /** Set to answer as supabase-js does when it cannot refresh an expired session. */
    refreshError: null as Error | null,
    getSession: () =>
      answered.then(() =>
        auth.refreshError
          ? { data: { session: null }, error: auth.refreshError }
          : { data: { session: auth.session }, error: null }
      ),
    onAuthStateChange(callback: (event: string, session: AuthSession | null) => void) {
      listener = callback;
      answered.then(() => callback("INITIAL_SESSION", auth.refreshError ? null : auth.session));
      return { data: { subscription: { unsubscribe: () => (listener = undefined) } } };
    },
    /** Holds every answer about who is signed in until the function returned is called. */
    holdAnswers(): () => void {
      let answer = () => {};
      answered = new Promise((resolve) => (answer = resolve));
      return answer;
    },
    signIn(next: AuthSession | null) {
      auth.session = next;
      listener?.(next ? "SIGNED_IN" : "SIGNED_OUT", next);
    },
    /** The session the auth server gives on a refresh; null: it cannot be reached. */
    renewed: null as AuthSession | null,
    refreshes: 0,
    refreshSession(): Promise<{ data: { session: AuthSession | null }; error: unknown }> {
      auth.refreshes += 1;
      const next = auth.renewed;
      if (next === null) {
        return Promise.resolve({ data: { session: null }, error: new Error("Failed to fetch") });
      }
      auth.session = next;
      listener?.("TOKEN_REFRESHED", next);
      return Promise.resolve({ data: { session: next }, error: null });
    },
  };
  const supabase = {
    supabaseKey: ANON_KEY,
    functionsUrl: new URL("http://127.0.0.1:9/functions/v1"),
    auth,
    functions: {
      invoke(name: string, options: { body?: string; headers?: Record<string, string> }) {
        assert.equal(name, "track");
        const call = { body: JSON.parse(options.body!), headers: options.headers ?? {} };
        calls.push(call);
        return Promise.resolve((replies.shift() ?? server.reply)(call));
      },
    },
  };
  return { supabase, calls, replies, auth, server };
}

function clock(start = Date.parse("2025-06-01T10:00:00Z")) {
  const state = { now: start };
  return { now: () => state.now, advance: (ms: number) => void (state.now += ms) };
}

const tick = (ms = 0) => new Promise((done) => setTimeout(done, ms));

/** Runs `body` with a tracker, destroying it afterwards. */
async function withTracker(
  options: Partial<TrackerOptions> & { supabase: TrackerOptions["supabase"] },
  body: (tracker: Tracker, errors: TrackerError[]) => Promise<void> | void,
): Promise<void> {
  const errors: TrackerError[] = [];
  const tracker = createTracker({
    storage: new MemoryStorage(),
    flushIntervalMs: HOUR,
    onError: (error) => errors.push(error),
    ...options,
  });
  try {
    await tick(); // supabase-js answers who is signed in
    await body(tracker, errors);
  } finally {
    tracker.destroy();
  }
}

const sentIds = (calls: Call[]) => calls.flatMap((c) => c.body.events.map((e) => e.eventId));

Deno.test("tracker: an event is queued with its ids and time, and sent on flush", async () => {
  const time = clock();
  const { supabase, calls } = fakeSupabase();
  await withTracker({ supabase, now: time.now }, async (tracker, errors) => {
    const eventId = tracker.trackInteraction.view("event", "event-123", {
      artist_name: "Taylor Swift",
    });
    assert.match(eventId!, /^[0-9a-f-]{36}$/);
    assert.equal(tracker.pendingCount(), 1);
    time.advance(1500);
    await tracker.flush();
    assert.equal(tracker.pendingCount(), 0);
    assert.deepEqual(calls.map((c) => c.body), [{
      events: [{
        eventId,
        sessionId: tracker.getSessionId(),
        anonymousId: tracker.getAnonymousId(),
        eventType: "view",
        entityType: "event",
        entityId: "event-123",
        metadata: { artist_name: "Taylor Swift" },
        timestamp: "2025-06-01T10:00:00.000Z",
      }],
      sentAt: "2025-06-01T10:00:01.500Z",
    }]);
    assert.deepEqual(calls[0].headers, {
      Authorization: `Bearer ${ANON_KEY}`,
      "Content-Type": "application/json",
    });
    assert.deepEqual(errors, []);
  });
});

Deno.test("tracker: its methods work passed on alone, away from the tracker", async () => {
  const { supabase, calls } = fakeSupabase();
  await withTracker({ supabase }, async (tracker, errors) => {
    const { track, flush, pendingCount, getSessionId } = tracker;
    const helpers = interactionHelpers(tracker.track);
    const viewed = track("view", "event", "event-1");
    const shared = helpers.share("artist", "artist-1", { artist_name: "A" });
    assert.equal(pendingCount(), 2);
    await flush();
    assert.deepEqual(sentIds(calls), [viewed, shared]);
    assert.equal(calls[0].body.events[0].sessionId, getSessionId());
    assert.deepEqual(errors, []);
  });
});

Deno.test("tracker: a maxEventsPerRequest below 1 sends one event a request, not none", async () => {
  const { supabase, calls } = fakeSupabase();
  await withTracker({ supabase, maxEventsPerRequest: 0.5 }, async (tracker, errors) => {
    const ids = [
      tracker.trackInteraction.view("event", "e1"),
      tracker.trackInteraction.view("event", "e2"),
    ];
    await tracker.flush();
    assert.deepEqual(calls.map((c) => c.body.events.length), [1, 1]);
    assert.deepEqual(sentIds(calls), ids);
    assert.equal(tracker.pendingCount(), 0);
    assert.deepEqual(errors, []);
  });
});

Deno.test("tracker: numeric options that are not positive numbers take their defaults", async () => {
  const { supabase, calls } = fakeSupabase();
  const slow = supabase.functions.invoke;
  // Answered after 20 ms: a request timeout of 0 (or NaN) would abort every request.
  supabase.functions.invoke = (name, options) =>
    new Promise((resolve) => setTimeout(() => resolve(slow(name, options)), 20));
  await withTracker(
    // An interval of 0 would send each event as soon as it is tracked.
    { supabase, batchSize: NaN, requestTimeoutMs: 0, maxQueueSize: -1, flushIntervalMs: 0 },
    async (tracker, errors) => {
      for (let i = 0; i < 19; i++) tracker.trackInteraction.view("event", `e${i}`);
      await tick(30);
      assert.equal(calls.length, 0, "19 events wait for the default batch size of 20");
      tracker.trackInteraction.view("event", "e19");
      await tick(60);
      assert.equal(calls.length, 1, "the 20th sends them");
      assert.equal(tracker.pendingCount(), 0, "answered, not aborted");
      assert.deepEqual(errors, []);
    },
  );
});

Deno.test("tracker: backoff fields that are not positive numbers take their defaults: no retry storm", async () => {
  const cases: Array<[TrackerOptions["backoff"], Record<string, string>, number]> = [
    // [backoff, the 503's headers, the delay before the first retry with no jitter]
    [{ baseMs: 0 }, {}, 500],
    [{ maxMs: 0 }, {}, 500],
    [{ baseMs: undefined }, {}, 500],
    [{ baseMs: NaN, maxMs: Infinity }, {}, 500],
    [{ baseMs: -1_000, maxMs: -1 }, {}, 500],
    [{ maxRetryAfterMs: 0 }, { "Retry-After": "1" }, 1_000],
    [{ maxRetryAfterMs: NaN }, { "Retry-After": "1" }, 1_000],
  ];
  for (const [backoff, headers, delay] of cases) {
    const { supabase, calls, replies } = fakeSupabase();
    for (let i = 0; i < 1_000; i++) replies.push(failing(503, headers));
    await withTracker({ supabase, backoff, random: () => 0 }, async (tracker, errors) => {
      tracker.trackInteraction.view("event", "e1");
      await tracker.flush();
      await tick(100);
      const label = JSON.stringify(backoff);
      assert.equal(calls.length, 1, `${label}: one request, then the wait`);
      assert.deepEqual(
        errors.map((e) => [e.kind, (e as { retryInMs?: number }).retryInMs]),
        [["network", delay]],
        label,
      );
    });
  }
});

Deno.test("tracker: a backoff maxMs below baseMs is raised to baseMs", async () => {
  const { supabase, replies } = fakeSupabase();
  replies.push(offline, offline);
  await withTracker(
    { supabase, backoff: { baseMs: 4_000, maxMs: 1_000 }, random: () => 0 },
    async (tracker, errors) => {
      tracker.trackInteraction.view("event", "e1");
      await tracker.flush();
      await tracker.flush();
      // Half of 4 s, and no more after: the curve is neither cut to 1 s nor grows past 4 s.
      assert.deepEqual(errors.map((e) => (e as { retryInMs?: number }).retryInMs), [2_000, 2_000]);
    },
  );
});

Deno.test("tracker: each helper records its event type and its own value in metadata", async () => {
  const { supabase, calls } = fakeSupabase({
    access_token: "user-token",
    user: { id: "user-1" },
  });
  await withTracker({ supabase }, async (tracker, errors) => {
    const t = tracker.trackInteraction;
    t.view("event", "e1");
    t.click("event", "e1");
    t.like("artist", "a1", true, { artist_name: "The Weeknd" });
    t.share("event", "e1");
    t.interest("event", "e1", false);
    t.search("Taylor Swift concerts", "event", "search-results", { results_count: 15 });
    t.review("review", "r1", 5);
    t.comment("event", "e1");
    t.navigate("view", "/events");
    t.formSubmit("form", "signup", true);
    t.profileUpdate("profile", "me");
    t.swipe("event", "e2", "left");
    t.follow("artist", "a1", { artist_name: "The Weeknd" });
    t.unfollow("artist", "a1", { artist_name: "The Weeknd" });
    t.attendance("event", "e1");
    t.ticketClick("ticket_link", "t1", { price: 50 });
    t.streamingTop("song", "s1");
    t.streamingRecent("song", "s2");
    await tracker.flush();
    assert.deepEqual(errors, []);
    assert.deepEqual(
      calls[0].body.events.map((e) => [e.eventType, e.entityType, e.entityId, e.metadata]),
      [
        ["view", "event", "e1", undefined],
        ["click", "event", "e1", undefined],
        ["like", "artist", "a1", { artist_name: "The Weeknd", liked: true }],
        ["share", "event", "e1", undefined],
        ["interest", "event", "e1", { interested: false }],
        ["search", "event", "search-results", {
          results_count: 15,
          query: "Taylor Swift concerts",
        }],
        ["review", "review", "r1", { rating: 5 }],
        ["comment", "event", "e1", undefined],
        ["navigate", "view", "/events", undefined],
        ["form_submit", "form", "signup", { success: true }],
        ["profile_update", "profile", "me", undefined],
        ["swipe", "event", "e2", { direction: "left" }],
        ["follow", "artist", "a1", { artist_name: "The Weeknd" }],
        ["unfollow", "artist", "a1", { artist_name: "The Weeknd" }],
        ["attendance", "event", "e1", { attended: true }],
        ["ticket_click", "ticket_link", "t1", { price: 50 }],
        ["streaming_top", "song", "s1", undefined],
        ["streaming_recent", "song", "s2", undefined],
      ],
    );
  });
});

Deno.test("tracker: a helper refuses metadata that is not an object, as view does", async () => {
  const { supabase, calls } = fakeSupabase({ access_token: "t", user: { id: "u" } });
  await withTracker({ supabase }, async (tracker, errors) => {
    const t = tracker.trackInteraction;
    const notObjects = [["a", "b"], "oops", null, 5, new Date(0)] as unknown as Metadata[];
    for (const metadata of notObjects) {
      assert.equal(t.view("event", "e1", metadata), null);
      assert.equal(t.like("event", "e1", true, metadata), null);
      assert.equal(t.interest("event", "e1", true, metadata), null);
      assert.equal(t.search("q", "event", "results", metadata), null);
      assert.equal(t.review("review", "r1", 5, metadata), null);
      assert.equal(t.formSubmit("form", "f1", true, metadata), null);
      assert.equal(t.swipe("event", "e1", "left", metadata), null);
      assert.equal(t.attendance("event", "e1", true, metadata), null);
    }
    await tracker.flush();
    assert.equal(calls.length, 0, "nothing reshaped into an object and sent");
    assert.equal(errors.length, notObjects.length * 8);
    for (const error of errors) {
      assert.equal(error.kind, "validation");
      assert.deepEqual((error as { errors: unknown }).errors, [
        { path: "metadata", message: "must be a JSON object" },
      ]);
    }
  });
});

Deno.test("tracker: a helper adds its own value to metadata as JSON writes it", async () => {
  class ArtistModel {
    constructor(readonly name: string) {}
    toJSON() {
      return { artist_name: this.name };
    }
  }
  const { supabase, calls } = fakeSupabase({ access_token: "t", user: { id: "u" } });
  await withTracker({ supabase }, async (tracker, errors) => {
    const model = new ArtistModel("X") as unknown as Metadata;
    assert.notEqual(tracker.trackInteraction.like("artist", "a1", false, model), null);
    assert.notEqual(tracker.trackInteraction.search("x", "artist", "results", model), null);
    await tracker.flush();
    assert.deepEqual(errors, []);
    assert.deepEqual(calls[0].body.events.map((e) => e.metadata), [
      { artist_name: "X", liked: false },
      { artist_name: "X", query: "x" },
    ]);
  });
});

Deno.test("tracker: invalid events are reported through onError and never sent", async () => {
  const { supabase, calls } = fakeSupabase({ access_token: "t", user: { id: "u" } });
  await withTracker({ supabase }, async (tracker, errors) => {
    assert.equal(tracker.trackInteraction.review("review", "review-123", "five" as never), null);
    assert.equal(tracker.track("invalid_type" as never, "event", "event-123"), null);
    assert.equal(tracker.trackInteraction.view("event", ""), null);
    assert.equal(tracker.trackInteraction.view("artist", "a1", {}), null);
    assert.equal(tracker.pendingCount(), 0);
    await tracker.flush();
    assert.equal(calls.length, 0);
    assert.deepEqual(errors.map((e) => e.kind), [
      "validation",
      "validation",
      "validation",
      "validation",
    ]);
    assert.deepEqual(errors.map((e) => (e as { errors: unknown }).errors), [
      [{ path: "metadata.rating", message: "Invalid input: expected number, received string" }],
      [{
        path: "eventType",
        message: `Invalid option: expected one of ${EVENT_TYPES.map((t) => `"${t}"`).join("|")}`,
      }],
      [{ path: "entityId", message: "Too small: expected string to have >=1 characters" }],
      [{ path: "metadata.artist_name", message: "Required" }],
    ]);
    assert.match(errors[0].message, /^invalid review event: metadata.rating Invalid input/);
  });
});

Deno.test("tracker: metadata that is not JSON is an invalid event, not an exception", async () => {
  const { supabase } = fakeSupabase();
  await withTracker({ supabase }, (tracker, errors) => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.equal(tracker.trackInteraction.view("event", "e1", cyclic), null);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].kind, "validation");
    assert.equal((errors[0] as { errors: Array<{ path: string }> }).errors[0].path, "metadata");
  });
});

Deno.test("tracker: a signed-out visitor cannot send user-specific events", async () => {
  const { supabase, calls } = fakeSupabase(null);
  await withTracker({ supabase }, async (tracker, errors) => {
    assert.equal(tracker.trackInteraction.like("artist", "a1", true, { artist_name: "X" }), null);
    assert.notEqual(tracker.trackInteraction.view("artist", "a1", { artist_name: "X" }), null);
    await tracker.flush();
    assert.equal(calls[0].body.events.length, 1);
    assert.deepEqual(errors.map((e) => [e.kind, (e as { errors: unknown }).errors]), [
      ["validation", [{ path: "eventType", message: "needs a signed-in user" }]],
    ]);
  });
});

/** A tracker whose supabase-js has not yet said who is signed in; `answer()` lets it. */
function beforeAuthAnswers(
  session: AuthSession | null,
  options: { storage: MemoryStorage; now?: () => number; requestTimeoutMs?: number },
) {
  const fake = fakeSupabase(session);
  const answer = fake.auth.holdAnswers();
  const errors: TrackerError[] = [];
  const tracker = createTracker({
    supabase: fake.supabase,
    flushIntervalMs: HOUR,
    onError: (error) => errors.push(error),
    ...options,
  });
  return { ...fake, answer, errors, tracker };
}

Deno.test("tracker: events tracked before the first auth answer wait for it, then take its principal", async () => {
  const time = clock();
  const storage = new MemoryStorage();
  const ALICE_SESSION = "0b7e6a0e-3c57-4f6e-9a53-6d4f1c2a9e10";
  // The last page had alice signed in; she has signed out since.
  storage.setItem(
    "synth_interactions:session",
    JSON.stringify({
      id: ALICE_SESSION,
      userId: "alice",
      anonymousId: "visitor-1",
      startedAt: time.now(),
      lastActivityAt: time.now(),
      interactionCount: 3,
      pageViews: 2,
    }),
  );
  storage.setItem("synth_interactions:anonymous_id", "visitor-1");
  const { tracker, answer, calls, errors } = beforeAuthAnswers(null, { storage, now: time.now });
  try {
    const view = tracker.trackInteraction.view("event", "e1");
    const like = tracker.trackInteraction.like("artist", "a1", true, { artist_name: "X" });
    assert.notEqual(like, null, "whether a user is signed in is not known yet");
    time.advance(1000);
    const flushed = tracker.flush();
    await tick(20);
    assert.equal(calls.length, 0, "nothing is sent before auth is known");
    answer();
    await flushed;
    assert.equal(calls.length, 1);
    assert.equal(calls[0].headers.Authorization, `Bearer ${ANON_KEY}`);
    const [sent] = calls[0].body.events;
    assert.deepEqual(
      [sent.eventId, sent.timestamp, sent.anonymousId],
      [view, "2025-06-01T10:00:00.000Z", "visitor-1"],
    );
    assert.equal(sent.sessionId, tracker.getSessionId(), "the visitor's own session");
    assert.notEqual(sent.sessionId, ALICE_SESSION);
    assert.equal(calls[0].body.events.length, 1);
    assert.equal(tracker.pendingCount(), 0);
    assert.deepEqual(errors.map((e) => [e.kind, (e as { errors?: unknown }).errors]), [
      ["validation", [{ path: "eventType", message: "needs a signed-in user" }]],
    ]);
  } finally {
    tracker.destroy();
  }
});

Deno.test("tracker: events tracked before the first auth answer go as the user it names", async () => {
  const alice = { access_token: "alice-token", user: { id: "alice" } };
  const { tracker, answer, calls, errors } = beforeAuthAnswers(alice, {
    storage: new MemoryStorage(),
  });
  try {
    const ids = [
      tracker.trackInteraction.view("event", "e1"),
      tracker.trackInteraction.like("artist", "a1", true, { artist_name: "X" }),
    ];
    answer();
    await tick();
    await tracker.flush();
    assert.deepEqual(errors, []);
    assert.deepEqual(
      calls.map((c) => [c.headers.Authorization, c.body.events.map((e) => e.eventId)]),
      [["Bearer alice-token", ids]],
    );
    assert.deepEqual(
      calls[0].body.events.map((e) => e.sessionId),
      [tracker.getSessionId(), tracker.getSessionId()],
    );
  } finally {
    tracker.destroy();
  }
});

Deno.test("tracker: events a page left before the first auth answer keep the principal it guessed", async () => {
  const storage = new MemoryStorage();
  const first = beforeAuthAnswers(null, { storage });
  const id = first.tracker.trackInteraction.view("event", "e1");
  const session = first.tracker.getSessionId();
  await tick();
  first.tracker.destroy(); // reloaded, or closed, before supabase-js answered
  const [key] = keysWithPrefix(storage, "synth_interactions:queue:");
  assert.deepEqual(
    readQueue(storage, key).map((entry) => [entry.event.eventId, entry.provisional]),
    [[id, true]],
  );
  // Whoever is signed in on the next page may be someone else: the event
  // goes as the visitor it was tracked for, in its own session.
  const bob = { access_token: "bob-token", user: { id: "bob" } };
  const { supabase, calls } = fakeSupabase(bob);
  await withTracker({ supabase, storage }, async (tracker, errors) => {
    await tracker.flush();
    assert.deepEqual(errors, []);
    assert.deepEqual(
      calls.map((c) => [c.headers.Authorization, c.body.events.map((e) => e.eventId)]),
      [[`Bearer ${ANON_KEY}`, [id]]],
    );
    assert.equal(calls[0].body.events[0].sessionId, session);
  });
});

Deno.test("tracker: a signed-in user's events left before the first auth answer never go as another user", async () => {
  const time = clock();
  const storage = new MemoryStorage();
  const alice = {
    access_token: "alice-1",
    expires_at: time.now() / 1000 + 60,
    user: { id: "alice" },
  };
  // alice's earlier page left her session in the tracker's storage.
  await withTracker({ supabase: fakeSupabase(alice).supabase, storage, now: time.now }, (t) => {
    t.trackInteraction.view("event", "e0");
    return t.flush();
  });
  time.advance(120_000);
  // Her next page loads offline with an expired token: supabase-js cannot say
  // who is signed in, so her like waits, provisional. She closes the tab.
  const offlinePage = fakeSupabase(alice);
  offlinePage.auth.refreshError = new Error("Failed to fetch");
  await withTracker({ supabase: offlinePage.supabase, storage, now: time.now }, (t) => {
    assert.notEqual(t.trackInteraction.like("artist", "a1", true, { artist_name: "X" }), null);
  });
  assert.equal(offlinePage.calls.length, 0);
  // A day later bob signs in on the same browser and adopts the queue.
  time.advance(24 * HOUR);
  const bob = { access_token: "bob-token", user: { id: "bob" } };
  const { supabase, calls } = fakeSupabase(bob);
  await withTracker({ supabase, storage, now: time.now }, async (tracker, errors) => {
    await tracker.flush();
    assert.deepEqual(
      calls.filter((c) => c.headers.Authorization === "Bearer bob-token")
        .flatMap((c) => c.body.events.map((e) => e.eventType)),
      [],
      "nothing of alice's went with bob's token",
    );
    assert.ok(errors.some((e) => e.kind === "dropped" && e.reason === "signed_out"), "reported");
  });
});

Deno.test("tracker: events tracked before a right guess is confirmed keep their own sessions", async () => {
  const time = clock();
  const storage = new MemoryStorage();
  const alice = { access_token: "alice-token", user: { id: "alice" } };
  await withTracker({ supabase: fakeSupabase(alice).supabase, storage, now: time.now }, (t) => {
    t.trackInteraction.view("event", "e0");
    return t.flush();
  });
  const { tracker, answer, calls } = beforeAuthAnswers(alice, { storage, now: time.now });
  try {
    tracker.trackInteraction.view("event", "e1");
    const first = tracker.getSessionId();
    const second = tracker.startNewSession();
    tracker.trackInteraction.view("event", "e2");
    time.advance(31 * 60_000); // idle: a third session
    tracker.trackInteraction.view("event", "e3");
    const third = tracker.getSessionId();
    assert.equal(new Set([first, second, third]).size, 3);
    answer();
    await tick();
    await tracker.flush();
    assert.deepEqual(calls.flatMap((c) => c.body.events.map((e) => e.sessionId)), [
      first,
      second,
      third,
    ]);
  } finally {
    tracker.destroy();
  }
});

/** Whether `promise` settles within `ms` milliseconds. */
async function settlesWithin(ms: number, promise: Promise<unknown>): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("tracker: supabase-js not answering who is signed in holds delivery up for requestTimeoutMs, once", async () => {
  const alice = { access_token: "alice-token", user: { id: "alice" } };
  const { supabase, calls, auth } = fakeSupabase(alice);
  await withTracker({ supabase, requestTimeoutMs: 200 }, async (tracker) => {
    const first = tracker.trackInteraction.view("event", "e1");
    await tracker.flush();
    // From now on supabase-js never answers (a token refresh whose request stalls).
    auth.getSession = () => new Promise(() => {});
    const second = tracker.trackInteraction.view("event", "e2");
    assert.equal(await settlesWithin(2000, tracker.flush()), true, "flush() resolves");
    const third = tracker.trackInteraction.view("event", "e3");
    assert.equal(
      await settlesWithin(100, tracker.flush()),
      true,
      "the open question is not waited for again",
    );
    assert.deepEqual(
      calls.map((c) => [c.headers.Authorization, c.body.events.map((e) => e.eventId)]),
      [
        ["Bearer alice-token", [first]],
        ["Bearer alice-token", [second]],
        ["Bearer alice-token", [third]],
      ],
    );
  });
});

Deno.test("tracker: until supabase-js first answers, only anonymous events another page left are sent", async () => {
  const storage = new MemoryStorage();
  const earlier = fakeSupabase(null);
  earlier.replies.push(offline);
  let left: string | null = null;
  await withTracker({ supabase: earlier.supabase, storage }, async (tracker) => {
    left = tracker.trackInteraction.view("event", "e1");
    await tracker.flush(); // offline: left for the next page
  });
  const { tracker, answer, calls } = beforeAuthAnswers(null, { storage, requestTimeoutMs: 50 });
  try {
    const own = tracker.trackInteraction.view("event", "e2");
    await tick(20); // the tab takes over the queue the earlier page left
    assert.equal(await settlesWithin(1000, tracker.flush()), true, "flush() resolves");
    assert.deepEqual(
      calls.map((c) => [c.headers.Authorization, c.body.events.map((e) => e.eventId)]),
      [[`Bearer ${ANON_KEY}`, [left]]],
    );
    assert.equal(tracker.pendingCount(), 1, "this page's own event waits for the answer");
    answer();
    await tick();
    await tracker.flush();
    assert.deepEqual(
      calls.map((c) => [c.headers.Authorization, c.body.events.map((e) => e.eventId)]),
      [[`Bearer ${ANON_KEY}`, [left]], [`Bearer ${ANON_KEY}`, [own]]],
    );
  } finally {
    tracker.destroy();
  }
});

Deno.test("tracker: events go with the token of the user they were tracked for", async () => {
  const time = clock();
  const alice = {
    access_token: "alice-token",
    expires_at: time.now() / 1000 + 3600,
    user: { id: "alice" },
  };
  const { supabase, calls, auth } = fakeSupabase(alice);
  await withTracker({ supabase, now: time.now }, async (tracker) => {
    tracker.trackInteraction.view("event", "e1");
    const aliceSession = tracker.getSessionId();
    auth.signIn(null);
    tracker.trackInteraction.view("event", "e2");
    const anonymousSession = tracker.getSessionId();
    // Alice has signed out by the time they are sent, but her token is still
    // valid: her event still goes as hers, the visitor's with the key.
    await tracker.flush();
    assert.notEqual(aliceSession, anonymousSession);
    assert.deepEqual(
      calls.map((c) => [c.headers.Authorization, c.body.events.map((e) => e.sessionId)]),
      [
        ["Bearer alice-token", [aliceSession]],
        [`Bearer ${ANON_KEY}`, [anonymousSession]],
      ],
    );
  });
});

Deno.test("tracker: events of a user whose token expired are dropped and reported", async () => {
  const time = clock();
  const bob = {
    access_token: "bob-token",
    expires_at: time.now() / 1000 + 60,
    user: { id: "bob" },
  };
  const { supabase, calls, auth } = fakeSupabase(bob);
  await withTracker({ supabase, now: time.now }, async (tracker, errors) => {
    tracker.trackInteraction.view("event", "e1");
    auth.signIn(null);
    time.advance(60_000);
    await tracker.flush();
    assert.equal(calls.length, 0);
    assert.equal(tracker.pendingCount(), 0);
    assert.deepEqual(errors.map((e) => [e.kind, (e as { reason?: string }).reason]), [
      ["dropped", "signed_out"],
    ]);
  });
});

Deno.test("tracker: offline with an expired token, a user's events wait for a fresh one", async () => {
  const time = clock();
  const carol = {
    access_token: "carol-token-1",
    expires_at: time.now() / 1000 + 60,
    user: { id: "carol" },
  };
  const { supabase, calls, auth } = fakeSupabase(carol);
  await withTracker({ supabase, now: time.now }, async (tracker, errors) => {
    tracker.trackInteraction.view("event", "e1");
    // The token expires while offline: supabase-js cannot refresh it.
    time.advance(120_000);
    auth.refreshError = new Error("Failed to fetch");
    tracker.trackInteraction.like("artist", "a1", true, { artist_name: "X" });
    await tracker.flush();
    assert.equal(calls.length, 0);
    assert.equal(tracker.pendingCount(), 2, "nothing dropped");
    assert.deepEqual(errors.map((e) => [e.kind, (e as { status?: unknown }).status]), [
      ["network", null],
    ]);
    // Back online: supabase-js refreshes the session and the events go as carol's.
    auth.refreshError = null;
    auth.session = {
      ...carol,
      access_token: "carol-token-2",
      expires_at: time.now() / 1000 + 3600,
    };
    await tracker.flush();
    assert.deepEqual(
      calls.map((c) => [c.headers.Authorization, c.body.events.map((e) => e.entityId)]),
      [["Bearer carol-token-2", ["e1", "a1"]]],
    );
    assert.equal(tracker.pendingCount(), 0);
  });
});

Deno.test("tracker: a reload while offline with an expired token keeps the user's queue", async () => {
  const time = clock();
  const storage = new MemoryStorage();
  const dave = { access_token: "dave-1", expires_at: time.now() / 1000 + 60, user: { id: "dave" } };
  const first = fakeSupabase(dave);
  first.replies.push(offline);
  await withTracker({ supabase: first.supabase, storage, now: time.now }, async (tracker) => {
    tracker.trackInteraction.view("event", "e1");
    await tracker.flush();
    assert.equal(tracker.pendingCount(), 1);
  });
  // The next page loads offline, after the token expired.
  time.advance(120_000);
  const second = fakeSupabase(dave);
  second.auth.refreshError = new Error("Failed to fetch");
  await withTracker({ supabase: second.supabase, storage, now: time.now }, async (tracker) => {
    await tick(20); // the tab takes over the queue the first page left
    assert.notEqual(
      tracker.trackInteraction.follow("artist", "a1", { artist_name: "X" }),
      null,
    );
    await tracker.flush();
    assert.equal(second.calls.length, 0);
    assert.equal(tracker.pendingCount(), 2, "nothing dropped, nothing refused");
    second.auth.refreshError = null;
    second.auth.session = { ...dave, access_token: "dave-2", expires_at: time.now() / 1000 + 3600 };
    await tracker.flush();
    assert.deepEqual(
      second.calls.map((c) => [
        c.headers.Authorization,
        c.body.events.map((e) => e.entityId).sort(),
      ]),
      [["Bearer dave-2", ["a1", "e1"]]],
    );
  });
});

/** A JWT with `payload` as its claims (the signature is not checked here). */
function jwt(payload: unknown): string {
  const base64url = (text: string) =>
    btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `${base64url('{"alg":"HS256"}')}.${base64url(JSON.stringify(payload))}.signature`;
}

Deno.test("tracker: a device clock hours ahead of the server's still sends a user's events with their token", async () => {
  const serverNow = Date.parse("2025-06-01T10:00:00Z");
  const time = clock(serverNow + 2 * HOUR);
  // As supabase-js keeps it: the server's expires_at, a token issued just now.
  const token = jwt({ sub: "erin", iat: serverNow / 1000, exp: serverNow / 1000 + 3600 });
  const erin = { access_token: token, expires_at: serverNow / 1000 + 3600, user: { id: "erin" } };
  const { supabase, calls } = fakeSupabase(erin);
  await withTracker({ supabase, now: time.now, random: () => 0 }, async (tracker, errors) => {
    const id = tracker.trackInteraction.like("artist", "a1", true, { artist_name: "X" });
    await tracker.flush();
    assert.deepEqual(
      calls.map((c) => [c.headers.Authorization, c.body.events.map((e) => e.eventId)]),
      [[`Bearer ${token}`, [id]]],
    );
    assert.equal(tracker.pendingCount(), 0);
    assert.equal(errors.length, 0);
    // The token lasts as long as it does on the server's clock (less the
    // usual 10 s margin), and no longer.
    time.advance(HOUR - 10_001);
    tracker.trackInteraction.view("event", "e2");
    await tracker.flush();
    assert.equal(calls.length, 2);
    time.advance(1);
    tracker.trackInteraction.view("event", "e3");
    await tracker.flush();
    assert.equal(calls.length, 2);
    assert.equal(tracker.pendingCount(), 1);
    assert.deepEqual(errors.map((e) => e.message), [
      "no valid access token for the signed-in user yet; 1 events kept, retry in 500 ms",
    ]);
  });
});

Deno.test("tracker: a token that looks expired and tells no issue time waits for a fresh one", async () => {
  const serverNow = Date.parse("2025-06-01T10:00:00Z");
  const expiresAt = serverNow / 1000 + 3600;
  const tokens = [
    jwt({ sub: "erin", exp: expiresAt }),
    jwt({ iat: "yesterday" }),
    jwt(null),
    "header.!!!.signature",
    "not-a-jwt",
  ];
  for (const token of tokens) {
    const time = clock(serverNow + 2 * HOUR);
    const erin = { access_token: token, expires_at: expiresAt, user: { id: "erin" } };
    const { supabase, calls } = fakeSupabase(erin);
    await withTracker({ supabase, now: time.now, random: () => 1 }, async (tracker, errors) => {
      tracker.trackInteraction.view("event", "e1");
      await tracker.flush();
      assert.equal(calls.length, 0, token);
      assert.equal(tracker.pendingCount(), 1, token);
      assert.deepEqual(errors.map((e) => e.kind), ["network"], token);
    });
  }
});

Deno.test("tracker: a stale token taken for fresh on a clock that seemed ahead is refused once, then renewed", async () => {
  const time = clock();
  const issuedAt = time.now() / 1000 - 2 * 3600;
  const stale = jwt({ sub: "frank", iat: issuedAt, exp: issuedAt + 3600 });
  const { supabase, calls, replies, auth } = fakeSupabase({
    access_token: stale,
    expires_at: issuedAt + 3600,
    user: { id: "frank" },
  });
  auth.renewed = {
    access_token: "frank-2",
    expires_at: time.now() / 1000 + 3600,
    user: { id: "frank" },
  };
  replies.push(failing(401, {}, JWT_EXPIRED));
  await withTracker({ supabase, now: time.now }, async (tracker, errors) => {
    const id = tracker.trackInteraction.follow("artist", "a1", { artist_name: "X" });
    await tracker.flush();
    assert.deepEqual(
      calls.map((c) => [c.headers.Authorization, c.body.events.map((e) => e.eventId)]),
      [[`Bearer ${stale}`, [id]], ["Bearer frank-2", [id]]],
    );
    assert.equal(auth.refreshes, 1);
    assert.equal(tracker.pendingCount(), 0);
    assert.deepEqual(errors, []);
  });
});

Deno.test("tracker: with no way to renew it, a stale token taken for fresh keeps the user's events", async () => {
  const time = clock();
  const issuedAt = time.now() / 1000 - 2 * 3600;
  const stale = jwt({ sub: "frank", iat: issuedAt, exp: issuedAt + 3600 });
  const frank = { access_token: stale, expires_at: issuedAt + 3600, user: { id: "frank" } };
  const { supabase, calls, replies, auth } = fakeSupabase(frank);
  const withoutRefresh = { ...supabase, auth: { ...auth, refreshSession: undefined } };
  replies.push(failing(401, {}, JWT_EXPIRED));
  await withTracker({ supabase: withoutRefresh, now: time.now }, async (tracker, errors) => {
    const id = tracker.trackInteraction.follow("artist", "a1", { artist_name: "X" });
    await tracker.flush();
    assert.equal(calls.length, 1);
    assert.equal(tracker.pendingCount(), 1, "kept: frank is still signed in");
    assert.deepEqual(errors.map((e) => [e.kind, (e as { status?: unknown }).status]), [
      ["network", 401],
    ]);
    // supabase-js refreshes the session itself: the events go with the new token.
    auth.signIn({ ...frank, access_token: "frank-2", expires_at: time.now() / 1000 + 3600 });
    await tracker.flush();
    assert.deepEqual(
      calls.map((c) => [c.headers.Authorization, c.body.events.map((e) => e.eventId)]),
      [[`Bearer ${stale}`, [id]], ["Bearer frank-2", [id]]],
    );
    assert.equal(tracker.pendingCount(), 0);
  });
});

Deno.test("tracker: sends as soon as batchSize events wait", async () => {
  const { supabase, calls } = fakeSupabase();
  await withTracker({ supabase, batchSize: 3 }, async (tracker) => {
    tracker.trackInteraction.view("event", "e1");
    tracker.trackInteraction.view("event", "e2");
    await tick(20);
    assert.equal(calls.length, 0);
    tracker.trackInteraction.view("event", "e3");
    await tick(20);
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0].body.events.map((e) => e.entityId), ["e1", "e2", "e3"]);
    assert.equal(tracker.pendingCount(), 0);
  });
});

Deno.test("tracker: sends what waits every flushIntervalMs", async () => {
  const { supabase, calls } = fakeSupabase();
  await withTracker({ supabase, flushIntervalMs: 40 }, async (tracker) => {
    tracker.trackInteraction.view("event", "e1");
    assert.equal(calls.length, 0);
    await tick(120);
    assert.equal(calls.length, 1);
    assert.equal(tracker.pendingCount(), 0);
  });
});

Deno.test("tracker: a request carries at most maxEventsPerRequest events", async () => {
  const { supabase, calls } = fakeSupabase();
  await withTracker({ supabase, batchSize: 1000, maxEventsPerRequest: 4 }, async (tracker) => {
    for (let i = 0; i < 10; i++) tracker.trackInteraction.view("event", `e${i}`);
    await tracker.flush();
    assert.deepEqual(calls.map((c) => c.body.events.length), [4, 4, 2]);
  });
});

Deno.test("tracker: per-event rejections are reported and the batch leaves the queue", async () => {
  const { supabase, calls, replies } = fakeSupabase();
  replies.push((call) => ({
    data: {
      accepted: 1,
      duplicates: 0,
      rejected: [{
        index: 1,
        eventId: call.body.events[1].eventId,
        errors: [{ path: "sessionId", message: "belongs to another user" }],
      }],
    },
    error: null,
  }));
  await withTracker({ supabase }, async (tracker, errors) => {
    tracker.trackInteraction.view("event", "e1");
    const second = tracker.trackInteraction.click("event", "e2");
    await tracker.flush();
    assert.equal(calls.length, 1);
    assert.equal(tracker.pendingCount(), 0);
    assert.equal(errors.length, 1);
    const [error] = errors as Array<Extract<TrackerError, { kind: "rejected" }>>;
    assert.equal(error.kind, "rejected");
    assert.equal(error.eventId, second);
    assert.equal(error.event?.entityId, "e2");
    assert.deepEqual(error.errors, [{ path: "sessionId", message: "belongs to another user" }]);
  });
});

Deno.test("tracker: a 4xx drops the batch, reports it, and is never retried", async () => {
  const { supabase, calls, replies } = fakeSupabase();
  replies.push(failing(401, {}, { error: { code: "unauthorized", message: "JWT expired" } }));
  await withTracker({ supabase, backoff: { baseMs: 5, maxMs: 10 } }, async (tracker, errors) => {
    tracker.trackInteraction.view("event", "e1");
    tracker.trackInteraction.view("event", "e2");
    await tracker.flush();
    await tick(50);
    await tracker.flush();
    assert.equal(calls.length, 1);
    assert.equal(tracker.pendingCount(), 0);
    assert.deepEqual(errors, [{
      kind: "dropped",
      reason: "refused",
      count: 2,
      status: 401,
      message: "the server answered 401: JWT expired; 2 events dropped",
    }]);
  });
});

const TOO_LARGE = { error: { code: "payload_too_large", message: "too many events" } };
const tooLarge = failing(413, {}, TOO_LARGE);

/** A proxy, a CDN or a smaller server that answers 413 to more than `limit` events at once. */
function tooLargeAbove(limit: number): Reply {
  return (call) => (call.body.events.length > limit ? tooLarge : accepted)(call);
}

/** A proxy that answers 413 to a body over `maxBytes`, whatever the number of events. */
function tooLargeOverBytes(maxBytes: number): Reply {
  return (call) => (JSON.stringify(call.body).length > maxBytes ? tooLarge : accepted)(call);
}

/** The ids of the events stored: those of the requests answered 2xx, in order. */
function storedIds(calls: Call[], limit: number): unknown[] {
  return sentIds(calls.filter((call) => call.body.events.length <= limit));
}

Deno.test("tracker: a 413 splits the batch: every event arrives once, in order, in requests the limit takes", async () => {
  const { supabase, calls, server } = fakeSupabase();
  server.reply = tooLargeAbove(3);
  await withTracker({ supabase, batchSize: 1000 }, async (tracker, errors) => {
    const ids = Array.from(
      { length: 10 },
      (_, i) => tracker.trackInteraction.view("event", `e${i}`),
    );
    await tracker.flush();
    // 10 and 5 refused; halved to 2, each request stored before the next goes.
    assert.deepEqual(calls.map((c) => c.body.events.length), [10, 5, 2, 2, 2, 2, 2]);
    assert.deepEqual(sentIds(calls.slice(2)), ids, "each stored once, oldest first");
    assert.equal(tracker.pendingCount(), 0);
    assert.deepEqual(errors, [], "nothing dropped, no backoff");
    // The smaller limit holds for the rest of the page: no 413 again.
    const later = Array.from(
      { length: 5 },
      (_, i) => tracker.trackInteraction.view("event", `l${i}`),
    );
    await tracker.flush();
    assert.deepEqual(calls.slice(7).map((c) => c.body.events.length), [2, 2, 1]);
    assert.deepEqual(storedIds(calls, 3), [...ids, ...later]);
    assert.deepEqual(errors, []);
  });
});

Deno.test("tracker: a 413 for a batch cut short by bytes halves what was sent, within the byte limit", async () => {
  const { supabase, calls, server } = fakeSupabase();
  const maxBytes = 200 * 1024;
  server.reply = tooLargeOverBytes(maxBytes);
  await withTracker({ supabase, batchSize: 1000 }, async (tracker, errors) => {
    const big = { artist_name: "x".repeat(16_000) };
    const ids = Array.from(
      { length: 40 },
      (_, i) => tracker.trackInteraction.view("artist", `a${i}`, big),
    );
    await tracker.flush();
    // 512 KiB hold 32 of these events, far below 500: halving 500 would send
    // the same 32 again. Halved from 32's bytes, then 16's, it fits: 8 events
    // a request, or 7 once the ids have two digits (a byte more each).
    assert.deepEqual(calls.map((c) => c.body.events.length), [32, 16, 8, 7, 7, 7, 7, 4]);
    assert.ok(calls.slice(2).every((c) => JSON.stringify(c.body).length <= maxBytes));
    assert.deepEqual(sentIds(calls.slice(2)), ids);
    assert.equal(tracker.pendingCount(), 0);
    assert.deepEqual(errors, []);
  });
});

Deno.test("tracker: two large events refused together do not leave small ones going one at a time", async () => {
  const { supabase, calls, server } = fakeSupabase();
  server.reply = tooLargeOverBytes(24 * 1024);
  await withTracker({ supabase, batchSize: 1000 }, async (tracker, errors) => {
    const big = { artist_name: "x".repeat(16_000) };
    const large = [1, 2].map((i) => tracker.trackInteraction.view("artist", `big${i}`, big));
    const small = Array.from(
      { length: 40 },
      (_, i) => tracker.trackInteraction.view("event", `e${i}`),
    );
    await tracker.flush();
    // Refused once together; then each large one goes with what fits beside it.
    assert.deepEqual(calls[0].body.events.length, 42);
    assert.deepEqual(storedIds(calls.slice(1), 500), [...large, ...small]);
    assert.ok(calls.length <= 4, `${calls.length} requests`);
    assert.deepEqual(errors, []);
    // Small events later still go many at a time.
    const later = Array.from(
      { length: 40 },
      (_, i) => tracker.trackInteraction.view("event", `l${i}`),
    );
    const before = calls.length;
    await tracker.flush();
    assert.deepEqual(calls.slice(before).map((c) => c.body.events.length), [40]);
    assert.deepEqual(sentIds(calls.slice(before)), later);
  });
});

Deno.test("tracker: a 413 then success: the first half is stored and removed before the other half goes", async () => {
  const { supabase, calls, replies } = fakeSupabase();
  // The first request is too large; then the first half is stored, the
  // second half is too large again, and its halves are stored.
  replies.push(tooLarge, accepted, tooLarge);
  await withTracker({ supabase, batchSize: 1000 }, async (tracker, errors) => {
    const ids = Array.from(
      { length: 4 },
      (_, i) => tracker.trackInteraction.view("event", `e${i}`),
    );
    await tracker.flush();
    assert.deepEqual(calls.map((c) => c.body.events.map((e) => e.eventId)), [
      ids,
      ids.slice(0, 2),
      ids.slice(2),
      [ids[2]],
      [ids[3]],
    ]);
    assert.equal(tracker.pendingCount(), 0);
    assert.deepEqual(errors, []);
  });
});

Deno.test("tracker: a server answering 413 to everything gets each event alone once, then drops it", async () => {
  const { supabase, calls, server } = fakeSupabase();
  server.reply = tooLarge;
  await withTracker({ supabase, batchSize: 1000 }, async (tracker, errors) => {
    const ids = Array.from(
      { length: 8 },
      (_, i) => tracker.trackInteraction.view("event", `e${i}`),
    );
    await tracker.flush();
    // log2(8) requests to learn the limit, then one per event.
    assert.deepEqual(calls.map((c) => c.body.events.length), [8, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1]);
    assert.deepEqual(sentIds(calls.slice(3)), ids);
    assert.equal(tracker.pendingCount(), 0);
    assert.deepEqual(
      errors,
      ids.map(() => ({
        kind: "dropped",
        reason: "refused",
        count: 1,
        status: 413,
        message: "the server answered 413: too many events; 1 events dropped",
      })),
    );
    await tracker.flush();
    assert.equal(calls.length, 11, "nothing is left to send again");
  });
});

const JWT_EXPIRED = { error: { code: "unauthorized", message: "JWT expired" } };
/** alice's token as the device sees it: valid for an hour, by a clock behind the server's. */
const aliceSkewed = (time: { now: () => number }, token: string) => ({
  access_token: token,
  expires_at: time.now() / 1000 + 3600,
  user: { id: "alice" },
});

Deno.test("tracker: a user's token the server refuses is renewed, and the batch sent again", async () => {
  const time = clock();
  const { supabase, calls, replies, auth } = fakeSupabase(aliceSkewed(time, "alice-old"));
  auth.renewed = aliceSkewed(time, "alice-new");
  replies.push(failing(401, {}, JWT_EXPIRED));
  await withTracker({ supabase, now: time.now }, async (tracker, errors) => {
    const id = tracker.trackInteraction.like("artist", "a1", true, { artist_name: "X" });
    await tracker.flush();
    assert.deepEqual(calls.map((c) => c.headers.Authorization), [
      "Bearer alice-old",
      "Bearer alice-new",
    ]);
    assert.deepEqual(sentIds(calls), [id, id]);
    assert.equal(tracker.pendingCount(), 0);
    assert.deepEqual(errors, []);
  });
});

Deno.test("tracker: after a 401, a token supabase-js refreshed meanwhile is used without a renewal", async () => {
  const time = clock();
  const { supabase, calls, replies, auth } = fakeSupabase(aliceSkewed(time, "alice-1"));
  replies.push((call) => {
    auth.signIn(aliceSkewed(time, "alice-2")); // refreshed while the request was under way
    return failing(401, {}, JWT_EXPIRED)(call);
  });
  await withTracker({ supabase, now: time.now }, async (tracker, errors) => {
    const id = tracker.trackInteraction.like("artist", "a1", true, { artist_name: "X" });
    await tracker.flush();
    assert.deepEqual(calls.map((c) => c.headers.Authorization), [
      "Bearer alice-1",
      "Bearer alice-2",
    ]);
    assert.deepEqual(sentIds(calls), [id, id]);
    assert.equal(auth.refreshes, 0);
    assert.deepEqual(errors, []);
  });
});

Deno.test("tracker: a renewed token the server refuses too drops the batch, once", async () => {
  const time = clock();
  const { supabase, calls, replies, auth } = fakeSupabase(aliceSkewed(time, "alice-old"));
  auth.renewed = aliceSkewed(time, "alice-new");
  replies.push(failing(401, {}, JWT_EXPIRED), failing(401, {}, JWT_EXPIRED));
  await withTracker({ supabase, now: time.now }, async (tracker, errors) => {
    tracker.trackInteraction.like("artist", "a1", true, { artist_name: "X" });
    await tracker.flush();
    await tracker.flush();
    assert.equal(calls.length, 2);
    assert.equal(auth.refreshes, 1);
    assert.equal(tracker.pendingCount(), 0);
    assert.deepEqual(errors, [{
      kind: "dropped",
      reason: "refused",
      count: 1,
      status: 401,
      message: "the server answered 401: JWT expired; 1 events dropped",
    }]);
  });
});

Deno.test("tracker: with no new token to be had after a 401, the batch waits for a retry", async () => {
  const time = clock();
  const { supabase, calls, replies, auth } = fakeSupabase(aliceSkewed(time, "alice-old"));
  replies.push(failing(401, {}, JWT_EXPIRED));
  await withTracker(
    { supabase, now: time.now, backoff: { baseMs: 20, maxMs: 40 }, random: () => 0 },
    async (tracker, errors) => {
      const id = tracker.trackInteraction.like("artist", "a1", true, { artist_name: "X" });
      await tracker.flush();
      assert.equal(tracker.pendingCount(), 1);
      assert.equal(errors.length, 1);
      assert.equal(errors[0].kind, "network");
      assert.match(errors[0].message, /401: JWT expired, and no new token could be had yet/);
      // The auth server is back: the retry renews the token and delivers.
      auth.renewed = aliceSkewed(time, "alice-new");
      replies.push(failing(401, {}, JWT_EXPIRED));
      await tick(100);
      await tracker.flush();
      assert.deepEqual(calls.map((c) => c.headers.Authorization), [
        "Bearer alice-old",
        "Bearer alice-old",
        "Bearer alice-new",
      ]);
      assert.deepEqual(sentIds(calls.slice(2)), [id]);
      assert.equal(tracker.pendingCount(), 0);
    },
  );
});

Deno.test("tracker: a token a renewal gave is renewed in turn when the server refuses it later", async () => {
  const time = clock();
  const { supabase, calls, replies, auth } = fakeSupabase(aliceSkewed(time, "alice-old"));
  auth.renewed = aliceSkewed(time, "alice-new");
  replies.push(failing(401, {}, JWT_EXPIRED));
  await withTracker({ supabase, now: time.now }, async (tracker, errors) => {
    tracker.trackInteraction.like("artist", "a1", true, { artist_name: "X" });
    await tracker.flush();
    time.advance(50 * 60_000); // still valid by the device's clock, expired by the server's
    auth.renewed = aliceSkewed(time, "alice-newer");
    replies.push(failing(401, {}, JWT_EXPIRED));
    const later = tracker.trackInteraction.like("artist", "a2", true, { artist_name: "Y" });
    await tracker.flush();
    assert.equal(auth.refreshes, 2);
    assert.deepEqual(calls.map((c) => c.headers.Authorization).slice(2), [
      "Bearer alice-new",
      "Bearer alice-newer",
    ]);
    assert.deepEqual(sentIds(calls.slice(-1)), [later]);
    assert.equal(tracker.pendingCount(), 0);
    assert.deepEqual(errors, []);
  });
});

Deno.test("tracker: a server that refuses every token of a user gets one renewal, not one per batch", async () => {
  const time = clock();
  const { supabase, calls, replies, auth } = fakeSupabase(aliceSkewed(time, "alice-0"));
  const refresh = auth.refreshSession;
  auth.refreshSession = () => {
    auth.renewed = aliceSkewed(time, `alice-${auth.refreshes + 1}`);
    return refresh();
  };
  for (let i = 0; i < 100; i++) replies.push(failing(401, {}, JWT_EXPIRED));
  await withTracker({ supabase, now: time.now, batchSize: 1 }, async (tracker, errors) => {
    for (let i = 0; i < 10; i++) {
      tracker.trackInteraction.like("artist", `a${i}`, true, { artist_name: "X" });
      await tick(1);
    }
    await tracker.flush();
    assert.equal(auth.refreshes, 1);
    assert.equal(calls.length, 11, "one request per batch, and one again after the renewal");
    assert.equal(errors.filter((e) => e.kind === "dropped").length, 10);
  });
});

Deno.test("tracker: a 401 answered after destroy() asks for no renewal", async () => {
  const time = clock();
  const { supabase, auth } = fakeSupabase(aliceSkewed(time, "alice-old"));
  const answers: Array<() => void> = [];
  supabase.functions.invoke = () =>
    new Promise((resolve) =>
      answers.push(() => resolve(failing(401, {}, JWT_EXPIRED)({} as Call)))
    );
  const tracker = createTracker({
    supabase,
    storage: new MemoryStorage(),
    now: time.now,
    flushIntervalMs: HOUR,
  });
  await tick();
  tracker.trackInteraction.like("artist", "a1", true, { artist_name: "X" });
  const flushing = tracker.flush();
  await tick(10);
  assert.equal(answers.length, 1);
  tracker.destroy();
  answers[0]();
  assert.equal(await settlesWithin(100, flushing), true);
  assert.equal(auth.refreshes, 0);
});

Deno.test("tracker: a renewal under way is not asked for again by the retries behind it", async () => {
  const time = clock();
  const { supabase, calls, replies, auth } = fakeSupabase(aliceSkewed(time, "alice-old"));
  auth.refreshSession = () => {
    auth.refreshes += 1;
    return new Promise(() => {}); // the auth server never answers
  };
  for (let i = 0; i < 100; i++) replies.push(failing(401, {}, JWT_EXPIRED));
  await withTracker(
    { supabase, now: time.now, requestTimeoutMs: 30, backoff: { baseMs: 10, maxMs: 20 } },
    async (tracker) => {
      tracker.trackInteraction.like("artist", "a1", true, { artist_name: "X" });
      await tracker.flush();
      await tick(400);
      assert.ok(calls.length > 3, `the batch was retried (${calls.length} requests)`);
      assert.equal(auth.refreshes, 1);
      assert.equal(tracker.pendingCount(), 1);
    },
  );
});

Deno.test("tracker: destroyed during a renewal, a tracker settles flush() and reports nothing more", async () => {
  const time = clock();
  const { supabase, replies, auth } = fakeSupabase(aliceSkewed(time, "alice-old"));
  auth.refreshSession = () => new Promise(() => {});
  replies.push(failing(401, {}, JWT_EXPIRED));
  const storage = new MemoryStorage();
  const errors: TrackerError[] = [];
  const tracker = createTracker({
    supabase,
    storage,
    now: time.now,
    flushIntervalMs: HOUR,
    requestTimeoutMs: 300,
    onError: (error) => errors.push(error),
  });
  await tick();
  const id = tracker.trackInteraction.like("artist", "a1", true, { artist_name: "X" });
  const flushing = tracker.flush();
  await tick(20); // answered 401; the renewal waits
  tracker.destroy();
  assert.equal(await settlesWithin(100, flushing), true);
  await tick(400);
  assert.deepEqual(errors, []);
  const queued = keysWithPrefix(storage, "synth_interactions:queue:");
  assert.deepEqual(
    queued.flatMap((key) => readQueue(storage, key).map((entry) => entry.event.eventId)),
    [id],
    "kept for the next page",
  );
});

Deno.test("tracker: a keepalive refused for a user's token keeps the events for a renewal", async () => {
  const page = fakePage();
  const time = clock();
  const { supabase, calls, replies, auth } = fakeSupabase(aliceSkewed(time, "alice-old"));
  auth.renewed = aliceSkewed(time, "alice-new");
  replies.push(failing(401, {}, JWT_EXPIRED));
  try {
    await withTracker({ supabase, now: time.now }, async (tracker, errors) => {
      const id = tracker.trackInteraction.like("artist", "a1", true, { artist_name: "X" });
      page.hideAndShow();
      assert.equal(page.keepalives.length, 1);
      page.refuseKeepalives(401, JWT_EXPIRED);
      await tick(20);
      assert.deepEqual(errors, []);
      await tracker.flush();
      // The ordinary path: refused again with the old token, renewed, delivered.
      assert.equal(auth.refreshes, 1);
      assert.deepEqual(sentIds(calls.slice(-1)), [id]);
      assert.equal(calls.at(-1)!.headers.Authorization, "Bearer alice-new");
      assert.equal(tracker.pendingCount(), 0);
    });
  } finally {
    page.restore();
  }
});

Deno.test("tracker: a keepalive answered 413 drops nothing: the events go again in smaller requests", async () => {
  const page = fakePage();
  const { supabase, calls } = fakeSupabase(null);
  try {
    await withTracker({ supabase, batchSize: 1000 }, async (tracker, errors) => {
      const ids = Array.from(
        { length: 3 },
        (_, i) => tracker.trackInteraction.view("event", `e${i}`),
      );
      page.hideAndShow();
      assert.deepEqual(page.keepalives.map((k) => k.events.map((e) => e.eventId)), [ids]);
      page.refuseKeepalives(413, TOO_LARGE);
      await tick(20);
      assert.deepEqual(errors, []);
      // The keepalive's 3 events halved to 1 per request.
      assert.deepEqual(
        calls.map((c) => c.body.events.map((e) => e.eventId)),
        ids.map((id) => [id]),
      );
      assert.equal(tracker.pendingCount(), 0);
    });
  } finally {
    page.restore();
  }
});

Deno.test("tracker: a keepalive answered 413 as the page goes away leaves its events for the next page", async () => {
  const page = fakePage();
  const { supabase, calls, server } = fakeSupabase(null);
  // The browser cancels the page's ordinary requests as it goes away.
  server.reply = offline;
  const storage = new MemoryStorage();
  try {
    await withTracker({ supabase, storage, batchSize: 1000 }, async (tracker, errors) => {
      const ids = Array.from(
        { length: 2 },
        (_, i) => tracker.trackInteraction.view("event", `e${i}`),
      );
      page.pagehide(false);
      assert.equal(page.keepalives.length, 1);
      page.refuseKeepalives(413, TOO_LARGE);
      await tick(20);
      assert.deepEqual(sentIds(calls), [ids[0]], "tried alone, and cancelled");
      assert.deepEqual(errors.map((e) => e.kind), ["network"]);
      assert.equal(tracker.pendingCount(), 2);
      const queued = keysWithPrefix(storage, "synth_interactions:queue:");
      assert.deepEqual(
        queued.flatMap((key) => readQueue(storage, key).map((entry) => entry.event.eventId)),
        ids,
      );
    });
  } finally {
    page.restore();
  }
});

Deno.test("tracker: 503 keeps the events and retries them, same ids, after Retry-After", async () => {
  const { supabase, calls, replies } = fakeSupabase();
  replies.push(failing(503, { "Retry-After": "1" }));
  await withTracker(
    { supabase, backoff: { baseMs: 20, maxMs: 40 }, random: () => 0 },
    async (tracker, errors) => {
      const id = tracker.trackInteraction.view("event", "e1");
      await tracker.flush();
      assert.equal(tracker.pendingCount(), 1);
      await tick(600);
      assert.equal(calls.length, 1, "the backoff alone would have retried after 10 ms");
      await tick(600);
      assert.equal(calls.length, 2);
      assert.equal(tracker.pendingCount(), 0);
      assert.deepEqual(sentIds(calls), [id, id]);
      assert.deepEqual(errors.map((e) => [e.kind, (e as { retryInMs?: number }).retryInMs]), [
        ["network", 1000],
      ]);
    },
  );
});

Deno.test("tracker: a wall clock stepped back an hour does not hold up a retry", async () => {
  const time = clock();
  const { supabase, calls, replies } = fakeSupabase();
  replies.push(offline);
  await withTracker(
    { supabase, now: time.now, backoff: { baseMs: 20, maxMs: 40 }, random: () => 0 },
    async (tracker) => {
      const id = tracker.trackInteraction.view("event", "e1");
      await tracker.flush();
      assert.equal(calls.length, 1);
      time.advance(-HOUR); // the system clock is corrected while the retry waits
      await tick(100);
      assert.deepEqual(sentIds(calls), [id, id]);
      assert.equal(tracker.pendingCount(), 0);
    },
  );
});

Deno.test("tracker: while backing off, only an explicit flush sends early", async () => {
  const { supabase, calls, replies } = fakeSupabase();
  replies.push(failing(429, { "Retry-After": "3600" }));
  await withTracker({ supabase, batchSize: 1, flushIntervalMs: 10 }, async (tracker, errors) => {
    tracker.trackInteraction.view("event", "e1");
    await tick(60);
    assert.equal(calls.length, 1, "the size trigger and the interval wait for Retry-After");
    assert.equal(errors[0].kind, "network");
    assert.ok((errors[0] as { retryInMs: number }).retryInMs >= 300_000);
    await tracker.flush();
    assert.equal(calls.length, 2);
    assert.equal(tracker.pendingCount(), 0);
  });
});

Deno.test("tracker: network errors are retried with growing delays", async () => {
  const { supabase, calls, replies } = fakeSupabase();
  replies.push(offline, offline, offline);
  await withTracker(
    { supabase, backoff: { baseMs: 8, maxMs: 1000 }, random: () => 0 },
    async (tracker, errors) => {
      tracker.trackInteraction.view("event", "e1");
      await tracker.flush();
      await tick(100);
      assert.equal(calls.length, 4);
      assert.equal(tracker.pendingCount(), 0);
      assert.deepEqual(errors.map((e) => (e as { retryInMs: number }).retryInMs), [4, 8, 16]);
      assert.match(errors[0].message, /^the request failed: Failed to fetch; 1 events kept/);
    },
  );
});

Deno.test("tracker: when the queue is full the oldest events are dropped and reported", async () => {
  const { supabase, calls } = fakeSupabase();
  await withTracker({ supabase, maxQueueSize: 3, batchSize: 100 }, async (tracker, errors) => {
    const ids = [1, 2, 3, 4, 5].map((n) => tracker.trackInteraction.view("event", `e${n}`));
    assert.equal(tracker.pendingCount(), 3);
    await tracker.flush();
    assert.deepEqual(sentIds(calls), ids.slice(2));
    assert.deepEqual(errors.map((e) => [e.kind, (e as { count: number }).count]), [
      ["dropped", 1],
      ["dropped", 1],
    ]);
  });
});

Deno.test("tracker: opting out clears the queue, stops tracking, and is remembered", async () => {
  const storage = new MemoryStorage();
  const { supabase, calls } = fakeSupabase();
  await withTracker({ supabase, storage }, async (tracker) => {
    tracker.trackInteraction.view("event", "e1");
    const anonymousId = tracker.getAnonymousId();
    tracker.optOut();
    assert.equal(tracker.pendingCount(), 0);
    assert.equal(tracker.isOptedOut(), true);
    assert.equal(tracker.trackInteraction.view("event", "e2"), null);
    await tracker.flush();
    assert.equal(calls.length, 0);
    assert.notEqual(tracker.getAnonymousId(), anonymousId, "the anonymous id was forgotten");
  });
  await withTracker({ supabase, storage }, async (tracker) => {
    assert.equal(tracker.isOptedOut(), true);
    assert.equal(tracker.trackInteraction.view("event", "e3"), null);
    tracker.optIn();
    assert.notEqual(tracker.trackInteraction.view("event", "e4"), null);
    await tracker.flush();
    assert.deepEqual(calls.map((c) => c.body.events.map((e) => e.entityId)), [["e4"]]);
  });
});

Deno.test("tracker: while the visitor is opted out, reading the session or the ids stores nothing", async () => {
  const storage = new MemoryStorage();
  const { supabase } = fakeSupabase();
  await withTracker({ supabase, storage }, (tracker) => {
    tracker.trackInteraction.view("event", "e1");
    tracker.optOut();
    assert.deepEqual(tracker.getSessionMetrics(), {
      duration: 0,
      interactionCount: 0,
      engagementScore: 0,
      pageViews: 0,
      bounceRate: 100,
    });
    tracker.getSessionId();
    tracker.getAnonymousId();
    tracker.startNewSession();
    assert.deepEqual(keysWithPrefix(storage, "synth_interactions:"), [
      "synth_interactions:opted_out",
    ]);
  });
});

Deno.test("tracker: a tab that opted out leaves every tab's state alone once the visitor opts back in in another", async () => {
  const storage = new MemoryStorage();
  const a = fakeSupabase();
  const b = fakeSupabase();
  b.replies.push(offline);
  const tabA = createTracker({ supabase: a.supabase, storage, flushIntervalMs: 10 });
  const tabB = createTracker({
    supabase: b.supabase,
    storage,
    flushIntervalMs: HOUR,
    backoff: { baseMs: HOUR, maxMs: HOUR },
  });
  try {
    await tick();
    tabA.optOut();
    tabB.optIn();
    assert.equal(tabA.isOptedOut(), false, "the visitor's latest choice holds in every tab");
    const id = tabB.trackInteraction.view("event", "e1");
    await tabB.flush(); // offline: the event waits in storage
    const anonymousId = storage.getItem("synth_interactions:anonymous_id");
    const session = storage.getItem("synth_interactions:session");
    await tick(60); // several of tab A's delivery runs
    const queued = keysWithPrefix(storage, "synth_interactions:queue:");
    assert.equal(queued.length, 1);
    assert.deepEqual(readQueue(storage, queued[0]).map((entry) => entry.event.eventId), [id]);
    assert.equal(storage.getItem("synth_interactions:anonymous_id"), anonymousId);
    assert.equal(storage.getItem("synth_interactions:session"), session);
    assert.equal(a.calls.length, 0);
  } finally {
    tabA.destroy();
    tabB.destroy();
  }
});

Deno.test("tracker: a new page sends the queue an earlier page left behind", async () => {
  const storage = new MemoryStorage();
  const { supabase, calls } = fakeSupabase();
  const first = createTracker({ supabase, storage, flushIntervalMs: HOUR });
  await tick();
  const left = [
    first.trackInteraction.view("event", "e1"),
    first.trackInteraction.view("event", "e2"),
  ];
  first.destroy(); // the page is gone; its events stay in storage
  assert.equal(calls.length, 0);
  await withTracker({ supabase, storage }, async (second) => {
    const own = second.trackInteraction.view("event", "e3");
    await second.flush();
    assert.deepEqual(new Set(sentIds(calls)), new Set([...left, own]));
    assert.equal(sentIds(calls).length, 3);
  });
});

Deno.test("tracker: events tracked just before destroy(), in the task that created it, are sent once by the next tracker", async () => {
  const storage = new MemoryStorage();
  const { supabase, calls } = fakeSupabase();
  // initTracking() twice at startup, or a component mounted, unmounted and
  // mounted again: the first tracker never got to own its queue.
  const replaced = createTracker({ supabase, storage, flushIntervalMs: HOUR });
  const id = replaced.trackInteraction.view("event", "e1");
  replaced.destroy();
  await tick(); // the browser frees the lock the first tracker asked for
  assert.equal(calls.length, 0);
  await withTracker({ supabase, storage }, async (tracker) => {
    await tracker.flush();
    assert.deepEqual(sentIds(calls), [id]);
    assert.deepEqual(keysWithPrefix(storage, "synth_interactions:queue:"), []);
  });
});

/** A page that tracks two events and goes away: answers their ids, left in `storage`. */
async function leaveQueue(
  storage: MemoryStorage,
  supabase: TrackerOptions["supabase"],
): Promise<Array<string | null>> {
  const page = createTracker({ supabase, storage, flushIntervalMs: HOUR });
  await tick();
  const left = [
    page.trackInteraction.view("event", "e1"),
    page.trackInteraction.view("event", "e2"),
  ];
  page.destroy();
  await tick(); // the browser frees its lock
  return left;
}

Deno.test("tracker: a tracker stopped during the pause before it takes over a left queue leaves it for the next", async () => {
  // Without Web Locks (pages not served over https), taking a queue over waits
  // a moment to see that no other tab claimed it too.
  Object.defineProperty(navigator, "locks", { value: undefined, configurable: true });
  try {
    const storage = new MemoryStorage();
    const { supabase, calls } = fakeSupabase();
    const left = await leaveQueue(storage, supabase);
    const replaced = createTracker({ supabase, storage, flushIntervalMs: HOUR });
    await tick(10); // within the pause
    replaced.destroy(); // initTracking() again, a component remounted, ...
    await tick(100);
    assert.equal(calls.length, 0);
    await withTracker({ supabase, storage }, async (tracker) => {
      await tracker.flush();
      assert.deepEqual(new Set(sentIds(calls)), new Set(left));
      assert.equal(sentIds(calls).length, 2);
    });
  } finally {
    delete (navigator as { locks?: unknown }).locks;
  }
});

Deno.test("tracker: a tracker stopped while it waits for a left queue's lock leaves it for the next", async () => {
  const storage = new MemoryStorage();
  const { supabase, calls } = fakeSupabase();
  const left = await leaveQueue(storage, supabase);
  const locks = navigator.locks;
  let replaced: Tracker | undefined;
  // The app stops the tracker as it asks for the lock, before the browser grants it.
  const stoppingOnRequest = {
    request(...args: Parameters<LockManager["request"]>) {
      if ((args[1] as LockOptions).ifAvailable) replaced?.destroy();
      return locks.request(...args);
    },
  };
  Object.defineProperty(navigator, "locks", { value: stoppingOnRequest, configurable: true });
  try {
    replaced = createTracker({ supabase, storage, flushIntervalMs: HOUR });
    await tick(20);
  } finally {
    delete (navigator as { locks?: unknown }).locks;
  }
  assert.equal(calls.length, 0);
  await withTracker({ supabase, storage }, async (tracker) => {
    await tracker.flush();
    assert.deepEqual(new Set(sentIds(calls)), new Set(left));
    assert.equal(sentIds(calls).length, 2);
  });
});

Deno.test("tracker: a queue taken over joins in tracking order: the oldest go first, or are dropped first", async () => {
  const time = clock();
  const storage = new MemoryStorage();
  const { supabase, calls } = fakeSupabase();
  const options = { supabase, storage, now: time.now, flushIntervalMs: HOUR, maxQueueSize: 5 };
  const earlier = createTracker(options);
  await tick();
  const old = [1, 2, 3, 4, 5].map((n) => {
    time.advance(1000);
    return earlier.trackInteraction.view("event", `old-${n}`);
  });
  earlier.destroy(); // a reload, with nothing sent yet
  await tick();
  time.advance(1000);
  const errors: TrackerError[] = [];
  const tracker = createTracker({ ...options, onError: (error) => errors.push(error) });
  try {
    // The new page records its page view at once, before it takes the old queue over.
    const fresh = [
      tracker.trackInteraction.view("event", "new-1"),
      tracker.trackInteraction.view("event", "new-2"),
    ];
    await tick(20);
    await tracker.flush();
    assert.deepEqual(sentIds(calls), [...old.slice(2), ...fresh]);
    assert.deepEqual(errors.map((e) => e.message), [
      "the queue is full: 2 oldest events dropped",
    ]);
  } finally {
    tracker.destroy();
  }
});

/** A storage with a quota on everything it holds, as browsers have. */
class QuotaStorage extends MemoryStorage {
  capacity = Infinity;
  used(): number {
    let total = 0;
    for (let i = 0; i < this.length; i++) total += this.getItem(this.key(i)!)!.length;
    return total;
  }
  override setItem(key: string, value: string): void {
    if (this.used() - (this.getItem(key)?.length ?? 0) + value.length > this.capacity) {
      throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
    }
    super.setItem(key, value);
  }
}

Deno.test("tracker: taking over a left queue needs no room for a second copy of it", async () => {
  const storage = new QuotaStorage();
  const { supabase, calls, replies } = fakeSupabase();
  const first = createTracker({ supabase, storage, flushIntervalMs: HOUR, batchSize: 100 });
  await tick();
  const left = Array.from({ length: 20 }, (_, i) => first.trackInteraction.view("event", `e${i}`));
  await tick();
  first.destroy();
  // Room for what is stored now and half as much again, not for two copies of the queue.
  storage.capacity = storage.used() * 1.5;
  replies.push(offline);
  await withTracker({ supabase, storage, batchSize: 100 }, async (second, errors) => {
    assert.equal(calls.length, 0);
    await second.flush();
    assert.equal(calls.length, 1, "one attempt, offline");
    assert.deepEqual(errors.map((e) => e.kind), ["network"], "nothing dropped or left unstored");
    const queued = keysWithPrefix(storage, "synth_interactions:queue:");
    assert.equal(queued.length, 1, "the left queue's key is gone");
    assert.deepEqual(
      new Set(readQueue<{ eventId: string }>(storage, queued[0]).map((e) => e.event.eventId)),
      new Set(left),
    );
  });
});

Deno.test("tracker: a request that settles after destroy arms no timer and writes no storage", async () => {
  const storage = new MemoryStorage();
  const { supabase, calls } = fakeSupabase();
  const answers: Array<(reply: { data: unknown; error: unknown }) => void> = [];
  supabase.functions.invoke = (_name: string, options: { body?: string }) => {
    calls.push({ body: JSON.parse(options.body!), headers: {} });
    return new Promise((resolve) => answers.push(resolve));
  };
  const tracker = createTracker({ supabase, storage, flushIntervalMs: HOUR });
  await tick();
  tracker.trackInteraction.view("event", "e1");
  const flushed = tracker.flush();
  await tick();
  assert.equal(answers.length, 1);
  tracker.destroy();
  // Another page takes the queue over.
  const [key] = keysWithPrefix(storage, "synth_interactions:queue:");
  assert.equal(readQueue(storage, key).length, 1);
  storage.removeItem(key);
  // The old request fails late: no retry timer is armed, and the taken-over
  // key is not written again.
  const armed: number[] = [];
  const setTimer = globalThis.setTimeout;
  globalThis.setTimeout = ((callback: () => void, ms?: number) => {
    armed.push(ms ?? 0);
    return setTimer(callback, ms);
  }) as typeof setTimeout;
  try {
    answers[0](offline(calls[0]));
    await flushed;
  } finally {
    globalThis.setTimeout = setTimer;
  }
  assert.deepEqual(armed, []);
  assert.deepEqual(keysWithPrefix(storage, "synth_interactions:queue:"), []);
  assert.equal(calls.length, 1);
});

Deno.test("tracker: two tabs on one storage never send the same event", async () => {
  const storage = new MemoryStorage();
  const a = fakeSupabase();
  const b = fakeSupabase();
  const tabA = createTracker({ supabase: a.supabase, storage, flushIntervalMs: HOUR });
  const tabB = createTracker({ supabase: b.supabase, storage, flushIntervalMs: HOUR });
  try {
    await tick();
    const ids: Array<string | null> = [];
    for (let i = 0; i < 20; i++) {
      ids.push(tabA.trackInteraction.view("event", `a${i}`));
      ids.push(tabB.trackInteraction.view("event", `b${i}`));
    }
    await Promise.all([tabA.flush(), tabB.flush(), tabA.flush(), tabB.flush()]);
    const sentByA = sentIds(a.calls);
    const sentByB = sentIds(b.calls);
    assert.equal(sentByA.length, 20);
    assert.equal(sentByB.length, 20);
    assert.deepEqual(new Set([...sentByA, ...sentByB]), new Set(ids));
  } finally {
    tabA.destroy();
    tabB.destroy();
  }
});

Deno.test("tracker: session metrics are live and use the shared engagement score", async () => {
  const time = clock();
  const { supabase } = fakeSupabase();
  await withTracker({ supabase, now: time.now }, (tracker) => {
    assert.deepEqual(tracker.getSessionMetrics(), {
      duration: 0,
      interactionCount: 0,
      engagementScore: 0,
      pageViews: 0,
      bounceRate: 100,
    });
    tracker.trackInteraction.view("event", "e1");
    time.advance(6 * 60_000);
    tracker.trackInteraction.view("event", "e2");
    tracker.trackInteraction.click("event", "e2");
    assert.deepEqual(tracker.getSessionMetrics(), {
      duration: 360_000,
      interactionCount: 3,
      engagementScore: 50,
      pageViews: 2,
      bounceRate: 0,
    });
    time.advance(30 * 60_000);
    assert.equal(tracker.getSessionMetrics().interactionCount, 0, "idle: a new session");
  });
});

Deno.test("tracker: startNewSession answers the id the next events carry", async () => {
  const { supabase, calls } = fakeSupabase();
  await withTracker({ supabase }, async (tracker) => {
    tracker.trackInteraction.view("event", "e1");
    const before = tracker.getSessionId();
    const after = tracker.startNewSession();
    tracker.trackInteraction.view("event", "e2");
    await tracker.flush();
    assert.notEqual(before, after);
    assert.deepEqual(calls[0].body.events.map((e) => e.sessionId), [before, after]);
    assert.equal(tracker.getSessionMetrics().interactionCount, 1);
  });
});

Deno.test("tracker: logs to the console only when synth_debug_interactions is true", async () => {
  const storage = new MemoryStorage();
  const { supabase } = fakeSupabase();
  const logged: string[] = [];
  const original = console.log;
  console.log = (message: string) => void logged.push(message);
  try {
    await withTracker({ supabase, storage }, (tracker) => {
      tracker.trackInteraction.view("event", "e1");
      tracker.trackInteraction.view("artist", "a1");
      assert.deepEqual(logged, []);
      storage.setItem("synth_debug_interactions", "true");
      tracker.trackInteraction.view("event", "e2");
      tracker.trackInteraction.view("artist", "a2");
    });
  } finally {
    console.log = original;
  }
  assert.deepEqual(logged, [
    "[interactions] tracked view event e2",
    "[interactions] invalid view event: metadata.artist_name Required",
  ]);
});

Deno.test("tracker: logs when localStorage, full, says synth_debug_interactions and the tracker keeps its state in memory", async () => {
  const items = new Map([["synth_debug_interactions", "true"]]);
  const full = fullLocalStorage(items);
  const { supabase } = fakeSupabase();
  const logged: string[] = [];
  const original = console.log;
  console.log = (message: string) => void logged.push(message);
  try {
    await withLocalStorage(
      { value: full },
      () =>
        withTracker({ supabase, storage: new MemoryStorage() }, (tracker) => {
          tracker.trackInteraction.view("event", "e1");
        }),
    );
  } finally {
    console.log = original;
  }
  assert.ok(logged.includes("[interactions] tracked view event e1"), logged.join("\n"));
});

Deno.test("tracker: where localStorage is blocked, the debug switch is read from the tracker's storage", async () => {
  const storage = new MemoryStorage();
  storage.setItem("synth_debug_interactions", "true");
  const { supabase } = fakeSupabase();
  const logged: string[] = [];
  const original = console.log;
  console.log = (message: string) => void logged.push(message);
  try {
    await withLocalStorage(
      blockedLocalStorage,
      () =>
        withTracker({ supabase, storage }, (tracker) => {
          tracker.trackInteraction.view("event", "e1");
        }),
    );
  } finally {
    console.log = original;
  }
  assert.ok(logged.includes("[interactions] tracked view event e1"), logged.join("\n"));
});

Deno.test("tracker: an onError handler that throws never reaches the app", async () => {
  const { supabase } = fakeSupabase();
  await withTracker({
    supabase,
    onError: () => {
      throw new Error("app bug");
    },
  }, (tracker) => {
    assert.equal(tracker.trackInteraction.view("artist", "a1"), null);
  });
});

/**
 * A page for the tracker's page listeners, in Deno: a `document` whose
 * visibility can change, `pagehide` on globalThis, and keepalive requests
 * held until `answerKeepalives` or `failKeepalives`. Install before creating
 * the tracker.
 */
function fakePage() {
  const doc = Object.assign(new EventTarget(), { visibilityState: "visible" });
  const globals = globalThis as { document?: unknown };
  globals.document = doc;
  const keepalives: Array<{ events: Array<Record<string, unknown>> }> = [];
  // Each keepalive request's headers and body bytes, in the order sent.
  const sent: Array<{ headers: Record<string, string>; bytes: number }> = [];
  const pending: Array<{
    answer: () => void;
    refuse: (status: number, body: unknown, headers?: Record<string, string>) => void;
    fail: () => void;
  }> = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = ((_url: string | URL | Request, init?: RequestInit) => {
    const body = JSON.parse(String(init!.body));
    keepalives.push(body);
    sent.push({
      headers: init!.headers as Record<string, string>,
      bytes: new TextEncoder().encode(String(init!.body)).length,
    });
    return new Promise<Response>((resolve, reject) =>
      pending.push({
        answer: () =>
          resolve(Response.json({ accepted: body.events.length, duplicates: 0, rejected: [] })),
        refuse: (status, answer, headers) => resolve(Response.json(answer, { status, headers })),
        fail: () => reject(new TypeError("Failed to fetch")),
      })
    );
  }) as typeof fetch;
  return {
    keepalives,
    sent,
    /** The visitor switches to another tab, and back. */
    hideAndShow() {
      doc.visibilityState = "hidden";
      doc.dispatchEvent(new Event("visibilitychange"));
      doc.visibilityState = "visible";
    },
    pagehide(persisted: boolean) {
      const event = new Event("pagehide");
      Object.defineProperty(event, "persisted", { value: persisted });
      globalThis.dispatchEvent(event);
    },
    answerKeepalives() {
      for (const { answer } of pending.splice(0)) answer();
    },
    refuseKeepalives(status: number, body: unknown, headers?: Record<string, string>) {
      for (const { refuse } of pending.splice(0)) refuse(status, body, headers);
    },
    failKeepalives() {
      for (const { fail } of pending.splice(0)) fail();
    },
    restore() {
      globalThis.fetch = realFetch;
      delete globals.document;
    },
  };
}

/**
 * Holds the answer to the first request `supabase` is sent until the
 * returned function is called; later requests are answered at once.
 */
function holdFirstAnswer(
  supabase: ReturnType<typeof fakeSupabase>["supabase"],
  calls: Call[],
): () => void {
  const invoke = supabase.functions.invoke;
  let release = () => {};
  supabase.functions.invoke = (name, options) => {
    if (calls.length > 0) return invoke(name, options);
    const answer = invoke(name, options);
    return new Promise((resolve) => (release = () => resolve(answer)));
  };
  return () => release();
}

Deno.test("tracker: a page kept in the back/forward cache keeps its requests, and sends on", async () => {
  const page = fakePage();
  const { supabase, calls } = fakeSupabase(null);
  const release = holdFirstAnswer(supabase, calls);
  try {
    await withTracker({ supabase }, async (tracker) => {
      const first = tracker.trackInteraction.view("event", "e1");
      const flushing = tracker.flush();
      await tick();
      assert.equal(calls.length, 1, "the first request is under way");
      page.pagehide(true);
      // The page is not going away: its request goes on, and is not doubled.
      assert.deepEqual(page.keepalives, []);
      release();
      await flushing;
      const second = tracker.trackInteraction.view("event", "e2");
      await tracker.flush();
      assert.deepEqual(sentIds(calls), [first, second]);
    });
  } finally {
    page.answerKeepalives();
    page.restore();
  }
});

Deno.test("tracker: keepalive requests on hide, then on close while the first is under way, stay within 64 KiB together", async () => {
  const page = fakePage();
  const { supabase, calls } = fakeSupabase(null);
  try {
    await withTracker({ supabase }, (tracker, errors) => {
      // 10 events of about 12 KiB: twice what the browser lets keepalive requests carry at once.
      const ids = Array.from(
        { length: 10 },
        (_, n) => tracker.trackInteraction.view("event", `big-${n}`, { notes: "x".repeat(12_000) }),
      );
      assert.ok(ids.every((id) => id !== null));
      page.hideAndShow();
      assert.ok(page.sent.length > 0, "the page hidden, what fits goes with keepalive");
      const onHide = page.sent.length;
      // Closed before the first keepalive is answered: what it carries still counts.
      page.pagehide(false);
      const total = page.sent.reduce((sum, request) => sum + request.bytes, 0);
      assert.ok(total <= 64 * 1024, `${total} bytes in ${page.sent.length} keepalive requests`);
      assert.equal(page.sent.length, onHide, "nothing more fits while the first is under way");
      assert.equal(calls.length, 0);
      assert.deepEqual(errors, []);
    });
  } finally {
    page.restore();
  }
});

Deno.test("tracker: without an api key, anonymous events go with supabase-js's own, and wait while a user is signed in", async () => {
  const { supabase, calls, auth } = fakeSupabase(null);
  delete (supabase as { supabaseKey?: string }).supabaseKey;
  await withTracker({ supabase }, async (tracker, errors) => {
    const first = tracker.trackInteraction.view("event", "e1");
    await tracker.flush();
    assert.deepEqual(sentIds(calls), [first]);
    assert.equal(calls[0].headers.Authorization, undefined, "supabase-js adds its key");
    const second = tracker.trackInteraction.view("event", "e2");
    auth.signIn({ access_token: "alice-token", user: { id: "alice" } });
    await tracker.flush();
    // supabase-js would send alice's token: the visitor's event waits instead.
    assert.equal(calls.length, 1);
    assert.equal(tracker.pendingCount(), 1);
    assert.ok(errors.every((e) => e.kind === "network"), JSON.stringify(errors));
    assert.match(errors.at(-1)!.message, /no api key/);
    auth.signIn(null);
    await tracker.flush();
    assert.deepEqual(sentIds(calls), [first, second]);
  });
});

Deno.test("tracker: a keepalive failing while a Retry-After is in force does not bring the retry forward", async () => {
  const page = fakePage();
  const { supabase, calls, replies } = fakeSupabase(null);
  replies.push(failing(429, { "Retry-After": "1" }));
  const release = holdFirstAnswer(supabase, calls);
  try {
    await withTracker({ supabase, backoff: { baseMs: 20, maxMs: 40 } }, async (tracker, errors) => {
      const first = tracker.trackInteraction.view("event", "e1");
      const flushing = tracker.flush();
      await tick();
      const second = tracker.trackInteraction.view("event", "e2");
      page.hideAndShow();
      assert.equal(
        page.keepalives.length,
        1,
        "e2 goes with keepalive while e1's request is under way",
      );
      release(); // 429, Retry-After: 1
      await flushing;
      page.failKeepalives(); // a plain network failure, retried after 10 to 20 ms
      await tick(200);
      assert.equal(calls.length, 1, "nothing is sent before the Retry-After is over");
      await tick(1100);
      assert.deepEqual(sentIds(calls), [first, first, second], "then both go");
      assert.deepEqual(errors.map((e) => [e.kind, (e as { status?: unknown }).status]), [
        ["network", 429],
        ["network", null],
      ]);
    });
  } finally {
    page.restore();
  }
});

Deno.test("tracker: a keepalive answered 200 does not end a Retry-After the server just gave", async () => {
  const page = fakePage();
  const { supabase, calls, replies } = fakeSupabase(null);
  replies.push(failing(429, { "Retry-After": "1" }));
  const release = holdFirstAnswer(supabase, calls);
  try {
    await withTracker({ supabase, batchSize: 1 }, async (tracker) => {
      const first = tracker.trackInteraction.view("event", "e1");
      await tick();
      assert.equal(calls.length, 1, "e1's request is under way");
      const second = tracker.trackInteraction.view("event", "e2");
      page.hideAndShow();
      assert.equal(page.keepalives.length, 1, "e2 goes with keepalive");
      release(); // 429, Retry-After: 1
      await tick();
      // A per-principal rate limit refused the large request and took the small one.
      page.answerKeepalives();
      await tick();
      const third = tracker.trackInteraction.view("event", "e3"); // batchSize 1: would send at once
      await tick(200);
      assert.equal(calls.length, 1, "nothing is sent before the Retry-After is over");
      await tick(1100);
      assert.deepEqual(sentIds(calls), [first, first, third]);
      assert.deepEqual(page.keepalives.map((k) => k.events.map((e) => e.eventId)), [[second]]);
      assert.equal(tracker.pendingCount(), 0);
    });
  } finally {
    page.restore();
  }
});

Deno.test("tracker: a Retry-After a keepalive got stops the requests under way from sending more", async () => {
  const page = fakePage();
  const { supabase, calls } = fakeSupabase(null);
  const release = holdFirstAnswer(supabase, calls);
  try {
    await withTracker({ supabase, batchSize: 3, maxEventsPerRequest: 1 }, async (tracker) => {
      const ids = ["e1", "e2", "e3"].map((id) => tracker.trackInteraction.view("event", id));
      await tick();
      assert.equal(calls.length, 1, "e1's request is under way");
      page.hideAndShow();
      assert.deepEqual(page.keepalives.map((k) => k.events.map((e) => e.eventId)), [
        [ids[1]],
        [ids[2]],
      ]);
      page.refuseKeepalives(429, { error: { code: "rate_limited", message: "slow down" } }, {
        "Retry-After": "1",
      });
      await tick();
      release(); // e1: 200
      await tick(200);
      assert.deepEqual(sentIds(calls), [ids[0]], "e2 and e3 wait out the Retry-After");
      await tick(1100);
      assert.deepEqual(sentIds(calls), ids);
      assert.equal(tracker.pendingCount(), 0);
    });
  } finally {
    page.restore();
  }
});

/**
 * What a full localStorage holds: one event a page that is gone left queued
 * (under `oldKey`), and the app's own data.
 */
function leftInFullStorage() {
  const left = {
    eventId: crypto.randomUUID(),
    sessionId: crypto.randomUUID(),
    anonymousId: "visitor-1",
    eventType: "view",
    entityType: "event",
    entityId: "e-old",
    timestamp: new Date().toISOString(),
  };
  const oldKey = "synth_interactions:queue:old-tab";
  const items = new Map([
    [oldKey, JSON.stringify([{ event: left, userId: null }])],
    ["app:cache", "x".repeat(1000)],
  ]);
  return { left, oldKey, items };
}

Deno.test("tracker: queues earlier pages left in a full localStorage are sent from page memory, then removed", async () => {
  const { left, oldKey, items } = leftInFullStorage();
  const { supabase, calls } = fakeSupabase();
  await withLocalStorage({ value: fullLocalStorage(items) }, async () => {
    // No storage option: localStorage is full, so page memory stands in for it.
    await withTracker({ supabase, storage: undefined }, async (tracker) => {
      await tick(20); // the tab owns its queue, and takes the left one over
      assert.equal(items.has(oldKey), true, "kept there until its events have gone");
      await tracker.flush();
      assert.deepEqual(sentIds(calls), [left.eventId]);
      await tick(300);
      assert.equal(items.has(oldKey), false, "the old queue no longer fills localStorage");
      assert.equal(items.has("app:cache"), true, "the app's own data is left alone");
      assert.equal(tracker.pendingCount(), 0);
    });
  });
});

Deno.test("tracker: a localStorage full before the page starts keeps the visitor and their session, reported once", async () => {
  const { left, items } = leftInFullStorage();
  const session = {
    id: left.sessionId,
    userId: null,
    anonymousId: left.anonymousId,
    startedAt: Date.now() - 60_000,
    lastActivityAt: Date.now() - 30_000,
    interactionCount: 1,
    pageViews: 1,
  };
  items.set(keys.anonymousId, left.anonymousId);
  items.set(keys.session, JSON.stringify(session));
  const { supabase, calls } = fakeSupabase();
  await withLocalStorage({ value: fullLocalStorage(items) }, async () => {
    try {
      await withTracker({ supabase, storage: undefined }, async (tracker, errors) => {
        assert.equal(tracker.getAnonymousId(), left.anonymousId);
        assert.equal(tracker.getSessionId(), left.sessionId);
        const id = tracker.trackInteraction.view("event", "e-new");
        await tracker.flush();
        const sent = calls.flatMap((call) => call.body.events).find((e) => e.eventId === id);
        assert.deepEqual([sent?.anonymousId, sent?.sessionId], [left.anonymousId, left.sessionId]);
        assert.equal(tracker.getSessionMetrics().interactionCount, 2);
        assert.deepEqual(errors.map((error) => error.kind), ["storage"]);
        assert.match(errors[0].message, /localStorage is full/);
      });
    } finally {
      // Page memory outlives the test: the next one starts with a visitor of its own.
      forgetVisitor(browserStorage());
    }
  });
});

Deno.test("tracker: a live tab's queue in a full localStorage is not taken over", async () => {
  const oldKey = "synth_interactions:queue:live-tab";
  const queued = { event: { eventId: crypto.randomUUID() }, userId: null };
  const items = new Map([[oldKey, JSON.stringify([queued])], ["app:cache", "x".repeat(1000)]]);
  const { supabase, calls } = fakeSupabase();
  // The other tab, alive: it holds its lock.
  let letGo = () => {};
  const holding = new Promise<void>((resolve) => (letGo = resolve));
  const held = new Promise<void>((ready) => {
    navigator.locks.request("synth_interactions:tab:live-tab", () => {
      ready();
      return holding;
    });
  });
  await held;
  try {
    await withLocalStorage({ value: fullLocalStorage(items) }, async () => {
      await withTracker({ supabase, storage: undefined }, async (tracker) => {
        await tick(20);
        await tracker.flush();
        assert.deepEqual(calls.length, 0);
        assert.equal(items.has(oldKey), true, "the live tab's queue stays where it is");
      });
    });
  } finally {
    letGo();
  }
});

Deno.test("tracker: a queue taken from a full localStorage stays there while its events wait", async () => {
  const { left, oldKey, items } = leftInFullStorage();
  const { supabase, calls, server } = fakeSupabase();
  server.reply = offline;
  await withLocalStorage({ value: fullLocalStorage(items) }, async () => {
    await withTracker({ supabase, storage: undefined }, async (tracker) => {
      await tick(20);
      await tracker.flush(); // offline: the event waits in page memory
      assert.ok(calls.length > 0 && sentIds(calls).every((id) => id === left.eventId));
      await tick(300);
      assert.equal(items.has(oldKey), true, "the page may close before it is sent");
    });
    // The page is gone: the next one takes the queue over and sends it.
    server.reply = accepted;
    const before = calls.length;
    await withTracker({ supabase, storage: undefined }, async (tracker) => {
      await tick(20);
      await tracker.flush();
      assert.deepEqual(sentIds(calls.slice(before)), [left.eventId]);
      await tick(300);
      assert.equal(items.has(oldKey), false);
    });
  });
});

Deno.test("tracker: a tracker on the app's own storage never writes to localStorage", async () => {
  const writes: string[] = [];
  const items = new Map<string, string>();
  const spy = fullLocalStorage(items);
  const setItem = spy.setItem.bind(spy);
  spy.setItem = (key: string, value: string) => {
    writes.push(key);
    setItem(key, value);
  };
  const { supabase, calls } = fakeSupabase();
  await withLocalStorage({ value: spy }, async () => {
    await withTracker({ supabase, storage: new MemoryStorage() }, async (tracker) => {
      await tick(20);
      for (let i = 0; i < 3; i++) {
        tracker.trackInteraction.view("event", `e${i}`);
        await tracker.flush();
      }
      assert.equal(calls.length, 3);
    });
  });
  assert.deepEqual(writes, []);
});

/**
 * The app's supabase-js client made with the `accessToken` option (third-party
 * auth): as supabase-js does, `auth` is a Proxy that throws on any use. The
 * access token the app's function gives is `signedIn.token`.
 */
function thirdPartyAuth(time: { now: () => number }) {
  const fake = fakeSupabase(null);
  const supabase = fake.supabase as unknown as Record<string, unknown>;
  supabase.auth = new Proxy({}, {
    get(_, property) {
      throw new Error(
        `@supabase/supabase-js: Supabase Client is configured with the accessToken option, ` +
          `accessing supabase.auth.${String(property)} is not possible`,
      );
    },
  });
  const tokenOf = (sub: string) => {
    const iat = Math.floor(time.now() / 1000);
    return jwt({ sub, role: "authenticated", iat, exp: iat + 3600 });
  };
  const signedIn = { token: null as string | null, asked: 0 };
  // Each call answers the token of its time, once the gate it found open lets it.
  let gate = Promise.resolve();
  const accessToken = () => {
    signedIn.asked += 1;
    const token = signedIn.token;
    return gate.then(() => token);
  };
  /** Holds the answers of the calls from now on until the function returned is called. */
  const holdAnswers = (): () => void => {
    let release = () => {};
    gate = new Promise((resolve) => (release = resolve));
    return () => release();
  };
  /** The calls from now on answer at once (those held stay held). */
  const answerAtOnce = () => void (gate = Promise.resolve());
  return { ...fake, tokenOf, signedIn, accessToken, holdAnswers, answerAtOnce };
}

Deno.test("tracker: with the accessToken option, each event goes with the token of the user it was tracked for", async () => {
  const time = clock();
  const { supabase, calls, tokenOf, signedIn, accessToken } = thirdPartyAuth(time);
  const [alice, bob] = [tokenOf("alice"), tokenOf("bob")];
  signedIn.token = alice;
  await withTracker({ supabase, accessToken, now: time.now }, async (tracker, errors) => {
    const liked = tracker.trackInteraction.like("artist", "a1", true, { artist_name: "A" });
    const aliceSession = tracker.getSessionId();
    // Bob signs in: the next event, tracked a second later, asks who is signed in.
    signedIn.token = bob;
    time.advance(1000);
    const viewed = tracker.trackInteraction.view("event", "e1");
    await tick();
    const bobSession = tracker.getSessionId();
    // Signed out: a user-specific event is refused here, and the session changes again.
    signedIn.token = null;
    time.advance(1000);
    const searched = tracker.trackInteraction.search("q", "event", "results");
    await tick();
    assert.equal(tracker.trackInteraction.review("event", "e1", 5), null);
    const anonymousSession = tracker.getSessionId();
    assert.equal(new Set([aliceSession, bobSession, anonymousSession]).size, 3);
    await tracker.flush();
    const sent = calls.map((call) => ({
      authorization: call.headers.Authorization,
      events: call.body.events.map((e) => [e.eventId, e.sessionId]),
    }));
    assert.deepEqual(sent, [
      { authorization: `Bearer ${alice}`, events: [[liked, aliceSession]] },
      { authorization: `Bearer ${bob}`, events: [[viewed, bobSession]] },
      { authorization: `Bearer ${ANON_KEY}`, events: [[searched, anonymousSession]] },
    ]);
    assert.deepEqual(errors.map((e) => [e.kind, e.kind === "validation" && e.eventType]), [
      ["validation", "review"],
    ]);
    assert.equal(tracker.pendingCount(), 0);
  });
});

Deno.test("tracker: with the accessToken option, hiding the page sends each user's events with their token", async () => {
  const page = fakePage();
  const time = clock();
  const { supabase, calls, tokenOf, signedIn, accessToken } = thirdPartyAuth(time);
  const [alice, bob] = [tokenOf("alice"), tokenOf("bob")];
  signedIn.token = alice;
  try {
    await withTracker({ supabase, accessToken, now: time.now }, async (tracker, errors) => {
      const liked = tracker.trackInteraction.like("artist", "a1", true, { artist_name: "A" });
      signedIn.token = bob;
      time.advance(1000);
      const viewed = tracker.trackInteraction.view("event", "e1");
      await tick();
      page.hideAndShow();
      assert.deepEqual(
        page.keepalives.map((body, n) => [
          page.sent[n].headers.Authorization,
          body.events.map((e) => e.eventId),
        ]),
        [[`Bearer ${alice}`, [liked]], [`Bearer ${bob}`, [viewed]]],
      );
      assert.equal(calls.length, 0);
      page.answerKeepalives();
      await tick(20);
      assert.equal(tracker.pendingCount(), 0);
      assert.deepEqual(errors, []);
    });
  } finally {
    page.restore();
  }
});

Deno.test("tracker: where supabase.auth cannot be used, events go anonymously with the key, reported once", async () => {
  const time = clock();
  const { supabase, calls } = thirdPartyAuth(time);
  await withTracker({ supabase, now: time.now }, async (tracker, errors) => {
    assert.equal(tracker.trackInteraction.like("artist", "a1", true, { artist_name: "A" }), null);
    const viewed = tracker.trackInteraction.view("event", "e1");
    await tracker.flush();
    assert.deepEqual(calls.map((c) => [c.headers.Authorization, sentIds([c])]), [
      [`Bearer ${ANON_KEY}`, [viewed]],
    ]);
    assert.deepEqual(errors.map((e) => e.kind), ["auth", "validation"]);
    assert.match(errors[0].message, /accessToken/);
  });
});

Deno.test("tracker: an access token that names no user sends the events anonymously, reported once", async () => {
  const time = clock();
  const { supabase, calls, signedIn, accessToken } = thirdPartyAuth(time);
  signedIn.token = "not-a-jwt";
  await withTracker({ supabase, accessToken, now: time.now }, async (tracker, errors) => {
    const viewed = tracker.trackInteraction.view("event", "e1");
    await tracker.flush();
    time.advance(1000);
    const again = tracker.trackInteraction.view("event", "e2");
    await tracker.flush();
    assert.deepEqual(calls.map((c) => [c.headers.Authorization, sentIds([c])]), [
      [`Bearer ${ANON_KEY}`, [viewed]],
      [`Bearer ${ANON_KEY}`, [again]],
    ]);
    assert.deepEqual(errors.map((e) => e.kind), ["auth"]);
  });
});

Deno.test("tracker: with the accessToken option, hiding the page while it asks who is signed in sends the events as the user it answers", async () => {
  const page = fakePage();
  const time = clock();
  const { supabase, calls, tokenOf, signedIn, accessToken, holdAnswers } = thirdPartyAuth(time);
  const [alice, bob] = [tokenOf("alice"), tokenOf("bob")];
  signedIn.token = alice;
  try {
    await withTracker({ supabase, accessToken, now: time.now }, async (tracker, errors) => {
      // Bob signs in; the function is slow to say so.
      signedIn.token = bob;
      const answer = holdAnswers();
      time.advance(1000);
      const viewed = tracker.trackInteraction.view("event", "e1");
      page.hideAndShow();
      assert.equal(page.keepalives.length, 0, "nothing goes as alice's while it asks");
      answer();
      await tick();
      assert.deepEqual(
        page.keepalives.map((body, n) => [
          page.sent[n].headers.Authorization,
          body.events.map((e) => e.eventId),
        ]),
        [[`Bearer ${bob}`, [viewed]]],
      );
      page.answerKeepalives();
      await tick(20);
      assert.equal(tracker.pendingCount(), 0);
      assert.equal(calls.length, 0);
      assert.deepEqual(errors, []);
    });
  } finally {
    page.restore();
  }
});

Deno.test("tracker: with the accessToken option, events tracked while it asks join no batch before the answer", async () => {
  const time = clock();
  const { supabase, calls, tokenOf, signedIn, accessToken, holdAnswers } = thirdPartyAuth(time);
  const [alice, bob] = [tokenOf("alice"), tokenOf("bob")];
  signedIn.token = alice;
  const releaseRequest = holdFirstAnswer(supabase, calls);
  await withTracker({ supabase, accessToken, now: time.now }, async (tracker, errors) => {
    const first = tracker.trackInteraction.view("event", "e0");
    const flushing = tracker.flush();
    await tick();
    assert.equal(calls.length, 1, "the first request is under way");
    // Bob signs in while it is; the function is slow to say so.
    signedIn.token = bob;
    const answer = holdAnswers();
    time.advance(1000);
    const second = tracker.trackInteraction.view("event", "e1");
    releaseRequest();
    await flushing;
    assert.deepEqual(sentIds(calls), [first], "the second waits for the answer");
    answer();
    await tracker.flush();
    assert.deepEqual(calls.map((c) => [c.headers.Authorization, sentIds([c])]), [
      [`Bearer ${alice}`, [first]],
      [`Bearer ${bob}`, [second]],
    ]);
    assert.deepEqual(errors, []);
  });
});

Deno.test("tracker: an accessToken call that never answers is asked again after requestTimeoutMs, and its late answer is ignored", async () => {
  const time = clock();
  const { supabase, calls, tokenOf, signedIn, accessToken, holdAnswers, answerAtOnce } =
    thirdPartyAuth(time);
  const [alice, bob] = [tokenOf("alice"), tokenOf("bob")];
  signedIn.token = alice;
  const late = holdAnswers(); // the first call, as the tracker starts, hangs
  await withTracker(
    { supabase, accessToken, now: time.now, requestTimeoutMs: 50 },
    async (tracker, errors) => {
      const viewed = tracker.trackInteraction.view("event", "e1");
      assert.equal(await settlesWithin(1000, tracker.flush()), true, "flush() resolves");
      assert.equal(calls.length, 0, "whose it is is not known yet");
      signedIn.token = bob;
      answerAtOnce();
      await tracker.flush();
      assert.deepEqual(calls.map((c) => [c.headers.Authorization, sentIds([c])]), [
        [`Bearer ${bob}`, [viewed]],
      ]);
      const bobSession = tracker.getSessionId();
      assert.equal(calls[0].body.events[0].sessionId, bobSession);
      // The first call answers at last, that alice is signed in: she was, then.
      late();
      await tick();
      assert.equal(tracker.getSessionId(), bobSession, "still bob's");
      assert.deepEqual(errors, []);
    },
  );
});

Deno.test("tracker: a first getSession that never answers is asked again after requestTimeoutMs", async () => {
  const alice = { access_token: "alice-token", user: { id: "alice" } };
  const { supabase, calls, auth } = fakeSupabase(alice);
  auth.holdAnswers(); // no INITIAL_SESSION either
  let asked = 0;
  auth.getSession = () => {
    asked += 1;
    if (asked === 1) return new Promise(() => {});
    return Promise.resolve({ data: { session: alice }, error: null });
  };
  await withTracker({ supabase, requestTimeoutMs: 50 }, async (tracker, errors) => {
    const viewed = tracker.trackInteraction.view("event", "e1");
    assert.equal(await settlesWithin(1000, tracker.flush()), true, "flush() resolves");
    assert.equal(calls.length, 0, "whose it is is not known yet");
    await tracker.flush();
    assert.equal(asked, 2);
    assert.deepEqual(calls.map((c) => [c.headers.Authorization, sentIds([c])]), [
      ["Bearer alice-token", [viewed]],
    ]);
    assert.deepEqual(errors, []);
  });
});

Deno.test("tracker: a 401 the accessToken function answers with the token just refused drops the batch, once", async () => {
  const time = clock();
  const { supabase, calls, server, tokenOf, signedIn, accessToken } = thirdPartyAuth(time);
  const revoked = tokenOf("alice");
  signedIn.token = revoked;
  // The function hands over its cached token until it expires; the server refuses it.
  server.reply = (call) =>
    call.headers.Authorization === `Bearer ${revoked}`
      ? failing(401, {}, JWT_EXPIRED)(call)
      : accepted(call);
  await withTracker(
    { supabase, accessToken, now: time.now, backoff: { baseMs: 10, maxMs: 20 } },
    async (tracker, errors) => {
      tracker.trackInteraction.like("artist", "a1", true, { artist_name: "A" });
      await tracker.flush();
      await tick(100);
      assert.equal(calls.length, 1, "not retried");
      assert.equal(tracker.pendingCount(), 0);
      // A new token: the next events go with it, nothing holds them up.
      time.advance(1000);
      const fresh = tokenOf("alice");
      signedIn.token = fresh;
      const viewed = tracker.trackInteraction.view("event", "e1");
      await tracker.flush();
      assert.deepEqual(calls.map((c) => c.headers.Authorization), [
        `Bearer ${revoked}`,
        `Bearer ${fresh}`,
      ]);
      assert.deepEqual(sentIds(calls.slice(1)), [viewed]);
      assert.deepEqual(errors, [{
        kind: "dropped",
        reason: "refused",
        count: 1,
        status: 401,
        message: "the server answered 401: JWT expired; 1 events dropped",
      }]);
    },
  );
});

Deno.test("tracker: with the accessToken option, a user-specific event tracked just after a sign-out is refused, not sent as the user gone", async () => {
  const time = clock();
  const { supabase, calls, tokenOf, signedIn, accessToken } = thirdPartyAuth(time);
  const alice = tokenOf("alice");
  signedIn.token = alice;
  await withTracker({ supabase, accessToken, now: time.now }, async (tracker, errors) => {
    const viewed = tracker.trackInteraction.view("event", "e1");
    signedIn.token = null; // alice signs out
    time.advance(500);
    const liked = tracker.trackInteraction.like("artist", "a1", true, { artist_name: "A" });
    assert.notEqual(liked, null, "whether she is still signed in is not known yet");
    const browsed = tracker.trackInteraction.view("event", "e2");
    await tracker.flush();
    assert.deepEqual(calls.map((c) => [c.headers.Authorization, sentIds([c])]), [
      [`Bearer ${alice}`, [viewed]],
      [`Bearer ${ANON_KEY}`, [browsed]],
    ]);
    assert.deepEqual(errors.map((e) => [e.kind, e.kind === "validation" && e.eventType]), [
      ["validation", "like"],
    ]);
    assert.equal(tracker.pendingCount(), 0);
  });
});

Deno.test("tracker: with the accessToken option, a like tracked just after a sign-in goes as the user signed in", async () => {
  const time = clock();
  const { supabase, calls, tokenOf, signedIn, accessToken } = thirdPartyAuth(time);
  const bob = tokenOf("bob");
  await withTracker({ supabase, accessToken, now: time.now }, async (tracker, errors) => {
    const viewed = tracker.trackInteraction.view("event", "e1");
    await tracker.flush();
    // Idle for a minute, then bob signs in (no word of it) and likes at once.
    time.advance(60_000);
    signedIn.token = bob;
    const liked = tracker.trackInteraction.like("artist", "a1", true, { artist_name: "A" });
    assert.notEqual(
      liked,
      null,
      "the last answer, a minute old, does not say nobody is signed in now",
    );
    await tracker.flush();
    assert.deepEqual(calls.map((c) => [c.headers.Authorization, sentIds([c])]), [
      [`Bearer ${ANON_KEY}`, [viewed]],
      [`Bearer ${bob}`, [liked]],
    ]);
    assert.deepEqual(errors, []);
  });
});

Deno.test("tracker: an accessToken function that fails is taken as nobody signed in, reported once", async () => {
  const time = clock();
  const { supabase, calls } = thirdPartyAuth(time);
  // Auth0's getTokenSilently() for a signed-out visitor, say.
  const accessToken = () => Promise.reject(new Error("Login required"));
  await withTracker({ supabase, accessToken, now: time.now }, async (tracker, errors) => {
    const viewed: Array<string | null> = [];
    for (let i = 0; i < 3; i++) {
      viewed.push(tracker.trackInteraction.view("event", `e${i}`));
      time.advance(2000);
      await tracker.flush();
    }
    assert.deepEqual(sentIds(calls), viewed);
    assert.ok(calls.every((c) => c.headers.Authorization === `Bearer ${ANON_KEY}`));
    assert.equal(tracker.pendingCount(), 0);
    assert.deepEqual(errors.map((e) => e.kind), ["auth"]);
    assert.match(errors[0].message, /Login required.*nobody signed in/);
  });
});

Deno.test("tracker: with the accessToken option, an event tracked within a second of the last question is confirmed by one asked when the second is over", async () => {
  const time = clock();
  const { supabase, calls, tokenOf, signedIn, accessToken } = thirdPartyAuth(time);
  const [alice, bob] = [tokenOf("alice"), tokenOf("bob")];
  signedIn.token = alice;
  await withTracker({ supabase, accessToken, now: time.now }, async (tracker, errors) => {
    time.advance(500);
    const viewed = tracker.trackInteraction.view("event", "e1");
    const asked = signedIn.asked;
    await tick(700); // the second is over: it asks who tracked it
    assert.equal(signedIn.asked, asked + 1);
    // Alice signs out, bob signs in, before the events are sent.
    signedIn.token = bob;
    await tracker.flush();
    assert.deepEqual(calls.map((c) => [c.headers.Authorization, sentIds([c])]), [
      [`Bearer ${alice}`, [viewed]],
    ]);
    assert.deepEqual(errors, []);
  });
});

/** A localStorage that refuses every write while `full` is true. */
class FillableStorage extends MemoryStorage {
  full = true;

  override setItem(key: string, value: string): void {
    if (this.full) throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
    super.setItem(key, value);
  }
}

Deno.test("tracker: a page-memory tracker's queue is sent by the tracker replacing it on a localStorage with room again", async () => {
  const local = new FillableStorage();
  const { supabase, calls } = fakeSupabase();
  await withLocalStorage({ value: local }, async () => {
    try {
      // localStorage full: the first tracker keeps its queue in page memory.
      const first = createTracker({ supabase, flushIntervalMs: HOUR });
      await tick();
      const held = first.trackInteraction.view("event", "e1");
      await tick();
      // Room again when initTracking() replaces it: the next one runs on localStorage.
      local.full = false;
      first.destroy();
      await withTracker({ supabase, storage: undefined }, async (tracker) => {
        await tick(20);
        await tracker.flush();
        assert.deepEqual(sentIds(calls), [held]);
        assert.equal(tracker.pendingCount(), 0);
      });
      // Taken over once: a third tracker has nothing of it to send.
      await withTracker({ supabase, storage: undefined }, async (tracker) => {
        await tick(20);
        await tracker.flush();
        assert.deepEqual(sentIds(calls), [held]);
      });
    } finally {
      // Page memory outlives the test: the next one starts with a visitor of its own.
      local.full = true;
      forgetVisitor(browserStorage());
    }
  });
});

Deno.test("tracker: an opt-out kept in page memory holds for a tracker on a localStorage with room again, until an opt-in", async () => {
  const local = new FillableStorage();
  const { supabase, calls } = fakeSupabase();
  await withLocalStorage({ value: local }, async () => {
    try {
      // localStorage full: the opt-out can be kept in page memory only.
      const first = createTracker({ supabase, flushIntervalMs: HOUR });
      first.optOut();
      first.destroy();
      local.full = false;
      const tracker = createTracker({ supabase, flushIntervalMs: HOUR });
      try {
        assert.equal(tracker.isOptedOut(), true);
        assert.equal(tracker.trackInteraction.view("event", "e1"), null);
        await tracker.flush();
        assert.deepEqual(calls, []);
        tracker.optIn();
      } finally {
        tracker.destroy();
      }
      // Opted in: neither store keeps the opt-out for the next tracker.
      const next = createTracker({ supabase, flushIntervalMs: HOUR });
      try {
        assert.equal(next.isOptedOut(), false);
      } finally {
        next.destroy();
      }
    } finally {
      local.full = true;
      forgetVisitor(browserStorage());
      browserStorage().removeItem(keys.optedOut);
    }
  });
});

Deno.test("tracker: an opt-out on a localStorage with room again forgets what a page-memory tracker left", async () => {
  const local = new FillableStorage();
  const { supabase, calls } = fakeSupabase();
  await withLocalStorage({ value: local }, async () => {
    try {
      const first = createTracker({ supabase, flushIntervalMs: HOUR });
      await tick();
      first.trackInteraction.view("event", "e1");
      await tick();
      local.full = false;
      first.destroy();
      // The visitor opts out before the next tracker has taken anything over.
      const tracker = createTracker({ supabase, flushIntervalMs: HOUR });
      try {
        tracker.optOut();
        tracker.optIn();
        await tick(20);
        await tracker.flush();
        assert.deepEqual(calls, [], "nothing tracked before the opt-out is sent after it");
      } finally {
        tracker.destroy();
      }
    } finally {
      local.full = true;
      forgetVisitor(browserStorage());
    }
  });
});
