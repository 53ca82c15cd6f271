/**
 * The load of a fault-injection run: simulated visitors, each a real browser
 * client (`createTracker` from `client/src/`, with its durable queue, batching,
 * retries and backoff) on its own supabase-js client, tracking a realistic mix
 * of interactions, signed in or anonymous, while faults strike.
 *
 * What stands in for the browser, in Deno: a {@linkcode MemoryStorage} per
 * visitor instead of `localStorage` (each visitor is its own browser); Deno's
 * own `navigator.locks` for the tracker's tab coordination; no `document`, so
 * no page-hide flushes (the run drains the queues with `flush()` instead); and,
 * as there is no Supabase Auth server locally, a signed-in visitor's session
 * is put in supabase-js's auth storage beforehand, exactly as supabase-js
 * stores one after a sign-in, so `supabase.auth.getSession()` hands it to the
 * tracker without a network call. An anonymous visitor's requests carry an
 * `X-Forwarded-For` address of its own, as the platform's edge would add:
 * all visitors run on one machine, yet each is a different browser.
 *
 * Every HTTP request goes through a recording `fetch` given to supabase-js
 * (`global.fetch`): its events, status, `Retry-After`, timing and the
 * server's counts, so the run can tell what was acknowledged and whether the
 * function always answered in time.
 *
 * @example
 * ```ts
 * import { Recorder, Visitor } from "./load.ts";
 *
 * async function oneAnonymousVisitor(url: string, anonKey: string) {
 *   const recorder = new Recorder({ hangAfterMs: 30_000 });
 *   const random = Math.random;
 *   const visitor = new Visitor({ index: 0, url, anonKey, user: null, recorder, random });
 *   await visitor.ready();
 *   visitor.trackSomething();
 *   await visitor.drain(Date.now() + 10_000);
 *   visitor.stop();
 *   return recorder.requests;
 * }
 * ```
 *
 * @module
 */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { createTracker, type Tracker, type TrackerError } from "../../client/src/tracker.ts";
import { MemoryStorage } from "../../client/src/storage.ts";

/** One HTTP request the clients made, as it went. */
export interface RequestRecord {
  /** The fault phase running when the request ended (or started, while it is in flight). */
  phase: string;
  startedAt: number;
  /** When the answer (or the failure) came; null while in flight. */
  endedAt: number | null;
  status: number | null;
  /** The `Retry-After` header of the answer, if any. */
  retryAfter: string | null;
  /** Why no answer came (a network error), if so. */
  error: string | null;
  /** Given up on after `hangAfterMs` without an answer. */
  hung: boolean;
  eventIds: string[];
  accepted: number;
  duplicates: number;
  rejected: number;
}

/** Where each created event came from: what its row must say. */
export interface CreatedEvent {
  visitor: number;
  userId: string | null;
  anonymousId: string;
  sessionId: string;
}

/** Records every request of every visitor. */
export class Recorder {
  /** The phase requests are filed under: the one in which their answer came. */
  phase = "warm-up";
  readonly requests: RequestRecord[] = [];
  /** Event ids some answer said were stored (accepted now or earlier). */
  readonly acknowledged = new Set<string>();
  /** Event ids the server refused: none are expected. */
  readonly rejected = new Set<string>();
  readonly #hangAfterMs: number;

  constructor(options: { hangAfterMs: number }) {
    this.#hangAfterMs = options.hangAfterMs;
  }

  /** Requests still waiting for an answer. */
  inFlight(): RequestRecord[] {
    return this.requests.filter((request) => request.endedAt === null);
  }

  /** A `fetch` that records what goes through it; for supabase-js's `global.fetch`. */
  readonly fetch = async (
    input: RequestInfo | URL,
    init?: RequestInit,
  ): Promise<Response> => {
    const record: RequestRecord = {
      phase: this.phase,
      startedAt: Date.now(),
      endedAt: null,
      status: null,
      retryAfter: null,
      error: null,
      hung: false,
      eventIds: eventIdsOf(init?.body),
      accepted: 0,
      duplicates: 0,
      rejected: 0,
    };
    this.requests.push(record);
    // A request that never gets an answer is a failure of the run: it is
    // counted, and abandoned so the run still ends.
    const watchdog = AbortSignal.timeout(this.#hangAfterMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, watchdog]) : watchdog;
    let response: Response;
    try {
      response = await fetch(input, { ...init, signal });
    } catch (error) {
      record.endedAt = Date.now();
      record.phase = this.phase;
      record.hung = watchdog.aborted;
      record.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw error;
    }
    record.endedAt = Date.now();
    record.phase = this.phase;
    record.status = response.status;
    record.retryAfter = response.headers.get("Retry-After");
    if (response.status === 200 || response.status === 400) {
      await this.#readCounts(record, response.clone());
    }
    return response;
  };

  async #readCounts(record: RequestRecord, response: Response): Promise<void> {
    let body: unknown;
    try {
      body = await response.json();
    } catch {
      return; // the answer was cut while being read: nothing is acknowledged
    }
    const result = body as {
      accepted?: number;
      duplicates?: number;
      rejected?: Array<{ index: number }>;
    };
    if (typeof result.accepted !== "number" || !Array.isArray(result.rejected)) return;
    record.accepted = result.accepted;
    record.duplicates = result.duplicates ?? 0;
    record.rejected = result.rejected.length;
    const refused = new Set(result.rejected.map((rejection) => rejection.index));
    record.eventIds.forEach((id, index) => {
      if (refused.has(index)) this.rejected.add(id);
      else this.acknowledged.add(id);
    });
  }
}

function eventIdsOf(body: BodyInit | null | undefined): string[] {
  if (typeof body !== "string") return [];
  try {
    const parsed = JSON.parse(body) as { events?: Array<{ eventId?: unknown }> };
    return (parsed.events ?? []).map((event) => String(event.eventId));
  } catch {
    return [];
  }
}

/** A signed-in visitor's account. */
export interface VisitorUser {
  id: string;
  accessToken: string;
  /** Epoch seconds. */
  expiresAt: number;
}

/** What a visitor needs. */
export interface VisitorOptions {
  index: number;
  /** The functions gateway (or a proxy in front of it). */
  url: string;
  anonKey: string;
  /** Null for an anonymous visitor. */
  user: VisitorUser | null;
  recorder: Recorder;
  random: () => number;
}

type Helpers = Tracker["trackInteraction"];
type Action = (t: Helpers, pick: (n: number) => number) => string | null;

// What anybody may do.
const browsing: Action[] = [
  (t, pick) =>
    t.view("event", `event-${pick(60)}`, {
      artist_name: `Artist ${pick(30)}`,
      venue_name: `Venue ${pick(10)}`,
      city: "Austin",
      genres: ["indie", "rock"],
    }),
  (t, pick) => t.view("artist", `artist-${pick(30)}`, { artist_name: `Artist ${pick(30)}` }),
  (t, pick) => t.click("event", `event-${pick(60)}`, { ticket_price: 20 + pick(80) }),
  (t, pick) =>
    t.search(`concerts ${pick(20)}`, "event", "search-results", { results_count: pick(40) }),
  (t, pick) => t.view("venue", `venue-${pick(10)}`, { venue_name: `Venue ${pick(10)}` }),
  (t, pick) => t.navigate("view", `page-${pick(8)}`, { page_name: "discover", scroll_depth: 0.5 }),
  (t, pick) => t.ticketClick("ticket_link", `ticket-${pick(60)}`, { price: 45, vendor: "box" }),
  (t, pick) => t.swipe("event", `event-${pick(60)}`, pick(2) === 0 ? "left" : "right"),
  (t, pick) => t.share("event", `event-${pick(60)}`),
];

// What only a signed-in visitor may do.
const signedIn: Action[] = [
  (t, pick) => t.like("artist", `artist-${pick(30)}`, true, { artist_name: `Artist ${pick(30)}` }),
  (t, pick) => t.interest("event", `event-${pick(60)}`, true),
  (t, pick) => t.review("review", `review-${pick(200)}`, 1 + pick(5), { review_text: "great" }),
  (t, pick) => t.follow("artist", `artist-${pick(30)}`, { artist_name: `Artist ${pick(30)}` }),
  (t, pick) =>
    t.streamingRecent("song", `song-${pick(500)}`, {
      song_name: `Song ${pick(500)}`,
      artist_names: [`Artist ${pick(30)}`],
      duration_ms: 180_000 + pick(60_000),
    }),
  (t, pick) => t.attendance("event", `event-${pick(60)}`, true),
];

/** One simulated browser: its own storage, supabase-js client and tracker. */
export class Visitor {
  readonly index: number;
  readonly user: VisitorUser | null;
  readonly tracker: Tracker;
  /** Every event this visitor's tracker accepted for sending, by event id. */
  readonly created = new Map<string, CreatedEvent>();
  /** What the tracker reported, by kind. */
  readonly reports = new Map<TrackerError["kind"], number>();
  /** The first few reports of kinds that should never happen under faults. */
  readonly problems: string[] = [];
  readonly #random: () => number;
  readonly #supabase: SupabaseClient;

  constructor(options: VisitorOptions) {
    this.index = options.index;
    this.user = options.user;
    this.#random = options.random;
    const authStorage = new MemoryStorage();
    const storageKey = `sb-chaos-visitor-${options.index}-auth-token`;
    if (options.user) {
      // What supabase-js keeps after a sign-in, minus what a refresh needs.
      authStorage.setItem(
        storageKey,
        JSON.stringify({
          access_token: options.user.accessToken,
          refresh_token: "unused",
          token_type: "bearer",
          expires_in: options.user.expiresAt - Math.floor(Date.now() / 1000),
          expires_at: options.user.expiresAt,
          user: { id: options.user.id, aud: "authenticated", role: "authenticated" },
        }),
      );
    }
    const supabase = this.#supabase = createClient(options.url, options.anonKey, {
      auth: {
        storage: authStorage,
        storageKey,
        persistSession: true,
        autoRefreshToken: false,
        detectSessionInUrl: false,
      },
      global: {
        fetch: options.recorder.fetch,
        // Each anonymous visitor is a browser of its own, with its own
        // address: what the platform's edge would put in X-Forwarded-For,
        // and what anonymous rate limits count by.
        headers: options.user ? {} : { "X-Forwarded-For": `198.51.100.${options.index + 1}` },
      },
    });
    this.tracker = createTracker({
      supabase,
      functionName: "track",
      batchSize: 10,
      flushIntervalMs: 1_000,
      // Faster than a browser's default curve, so a run recovers in seconds;
      // the server's Retry-After is still honoured.
      backoff: { baseMs: 400, maxMs: 4_000 },
      storage: new MemoryStorage(),
      onError: (error) => this.#report(error),
    });
  }

  /** Resolves once supabase-js has told the tracker who is signed in. */
  async ready(): Promise<void> {
    await this.#supabase.auth.getSession();
    await sleep(0);
  }

  /** Tracks one interaction picked at random; now and then starts a new session. */
  trackSomething(): void {
    if (this.#random() < 0.02) this.tracker.startNewSession();
    const pick = (n: number) => Math.floor(this.#random() * n);
    const actions = this.user && this.#random() < 0.3 ? signedIn : browsing;
    const eventId = actions[pick(actions.length)](this.tracker.trackInteraction, pick);
    if (eventId === null) return;
    this.created.set(eventId, {
      visitor: this.index,
      userId: this.user?.id ?? null,
      anonymousId: this.tracker.getAnonymousId(),
      sessionId: this.tracker.getSessionId(),
    });
  }

  /** Flushes until the queue is empty or `deadline` (epoch ms) passes; answers what is left. */
  async drain(deadline: number): Promise<number> {
    while (this.tracker.pendingCount() > 0 && Date.now() < deadline) {
      await this.tracker.flush();
      if (this.tracker.pendingCount() > 0) await sleep(250);
    }
    return this.tracker.pendingCount();
  }

  /** Stops the tracker's timers; what is queued stays queued. */
  stop(): void {
    this.tracker.destroy();
  }

  #report(error: TrackerError): void {
    this.reports.set(error.kind, (this.reports.get(error.kind) ?? 0) + 1);
    if (error.kind !== "network" && this.problems.length < 5) {
      this.problems.push(`${error.kind}: ${error.message}`);
    }
  }
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
