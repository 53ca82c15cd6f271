/**
 * The interaction tracker: validates each interaction with the shared
 * schemas, queues it durably, and delivers it to the `track` function in
 * batches, by size and by time, through the app's own supabase-js client.
 *
 * Nothing here throws into the app or makes it wait: tracking answers at
 * once, and every failure (an invalid event, a rejected one, a dropped one, a
 * failed request) goes to `onError` and, when
 * `localStorage.synth_debug_interactions === "true"`, to the console.
 *
 * Delivery, in short:
 * - every event gets its `eventId` when tracked, so a retry cannot store it twice;
 * - network errors, 429 and 5xx are retried with exponential backoff and
 *   jitter, never sooner than `Retry-After`; a 413 makes requests smaller
 *   (see `#shrinkRequests`); any other 4xx drops the batch;
 * - when the page is hidden or closed, what waits goes out in a `keepalive`
 *   request within the browser's 64 KiB budget;
 * - each tab sends only its own queue; a queue left behind (reload, closed
 *   or crashed tab) is adopted by one live tab (see `tabs.ts`);
 * - each event is sent with the credentials of the user it was tracked for,
 *   and a session never spans two users, as the server requires.
 *
 * @example
 * ```ts
 * import { createClient } from "@supabase/supabase-js";
 * import { createTracker } from "./tracker.ts";
 *
 * async function startTracking(supabaseUrl: string, supabaseAnonKey: string) {
 *   const supabase = createClient(supabaseUrl, supabaseAnonKey);
 *   const tracker = createTracker({ supabase, functionName: "track" });
 *   tracker.trackInteraction.view("event", "event-123", { artist_name: "Taylor Swift" });
 *   await tracker.flush();
 *   return tracker;
 * }
 * ```
 *
 * @module
 */
import { type BackoffOptions, defaultBackoff, retryDelay } from "./backoff.ts";
import { encodeBatch, ENVELOPE_BYTES, selectBatch } from "./batch.ts";
import {
  type EntityType,
  type EventType,
  type FieldError,
  KEEPALIVE_MAX_BYTES,
  MAX_EVENTS_PER_REQUEST,
  MAX_REQUEST_BYTES,
  type TrackEvent,
  USER_SPECIFIC_EVENT_TYPES,
  validateEvent,
} from "./contract.ts";
import { type InteractionHelpers, interactionHelpers, type Metadata } from "./helpers.ts";
import { randomId } from "./ids.ts";
import { DurableQueue, type QueuedEvent, type QueueProblem, readQueue } from "./queue.ts";
import {
  DEFAULT_SESSION_TIMEOUT_MS,
  metricsOf,
  type Principal,
  type SessionMetrics,
  SessionStore,
} from "./session.ts";
import {
  browserStorage,
  DEBUG_FLAG_KEY,
  forgetVisitor,
  keys,
  keysWithPrefix,
  type KeyValueStorage,
  pageLocalStorage,
  pageMemoryStorage,
  readItem,
  removeItem,
} from "./storage.ts";
import {
  PageCoordinator,
  type TabCoordinator,
  tabCoordinator,
  webLocks,
  WebLocksCoordinator,
} from "./tabs.ts";
import {
  type Delivery,
  type FunctionsInvoker,
  invokeTrack,
  keepaliveTrack,
  REQUEST_TIMEOUT_MS,
} from "./transport.ts";

/** A signed-in user's session, as supabase-js hands it out. */
export interface AuthSession {
  access_token: string;
  /** Epoch seconds. */
  expires_at?: number;
  user: { id: string };
}

/** What the tracker uses of `supabase.auth`. */
export interface AuthClient {
  /** `error` set with no session: supabase-js could not tell (an expired token it could not refresh). */
  getSession(): Promise<{ data: { session: AuthSession | null }; error?: unknown }>;
  onAuthStateChange(
    callback: (event: string, session: AuthSession | null) => void,
  ): { data: { subscription: { unsubscribe(): void } } };
  /** A new session from the auth server, whatever the device's clock says of the current one. */
  refreshSession?(): Promise<{ data: { session: AuthSession | null }; error?: unknown }>;
}

/** What the tracker uses of the app's supabase-js client. */
export interface SupabaseClientLike {
  functions: FunctionsInvoker;
  auth?: AuthClient;
}

/** Something that went wrong, as `onError` receives it. */
export type TrackerError =
  /** The event broke the contract and was not queued. */
  | {
    kind: "validation";
    eventType: string;
    entityType: string;
    entityId: string;
    errors: FieldError[];
    message: string;
  }
  /** The server refused one event of a batch; the others were stored. */
  | { kind: "rejected"; eventId: string; event?: TrackEvent; errors: FieldError[]; message: string }
  /**
   * Events given up on: the queue was full, the server refused
   * the whole request (a 4xx other than 429, or a 413 for one event sent
   * alone), or their user signed out before they could be sent.
   */
  | {
    kind: "dropped";
    reason: "queue_full" | "refused" | "signed_out";
    count: number;
    status?: number;
    message: string;
  }
  /** A delivery failed and will be retried. */
  | { kind: "network"; status: number | null; retryInMs: number; message: string }
  /** The queue cannot be stored, or not all of it: those events are kept in memory only. */
  | { kind: "storage"; message: string }
  /**
   * The client cannot tell the tracker who is signed in (supabase-js with the `accessToken`
   * option, but not the tracker), or a token was not one it can read: those events go anonymously.
   */
  | { kind: "auth"; message: string }
  /** A bug in the tracker itself, caught before it reached the app. */
  | { kind: "internal"; message: string };

/**
 * How the tracker behaves; only `supabase` is required. A numeric option that
 * is not a positive finite number (0, NaN, Infinity) takes its default.
 */
export interface TrackerOptions {
  /** The app's own supabase-js client: its auth decides who the events belong to. */
  supabase: SupabaseClientLike;
  /**
   * The function the app gives supabase-js as its own `accessToken` option (third-party auth,
   * where `supabase.auth` cannot be used): the signed-in user's access token, or null when nobody
   * is. The tracker reads the user and the expiry from the token (JWT `sub` and `exp`; the server
   * verifies it). Without it, such a client's events all go anonymously.
   */
  accessToken?: () => Promise<string | null>;
  /** The edge function to send to. Default "track". */
  functionName?: string;
  /** Send as soon as this many events wait. Default 20. */
  batchSize?: number;
  /** Send what waits at least this often, in milliseconds. Default 5000. */
  flushIntervalMs?: number;
  /** Events one request carries at most. Default (and at most) 500. */
  maxEventsPerRequest?: number;
  /** Events kept while waiting; beyond it the oldest are dropped. Default 1000. */
  maxQueueSize?: number;
  /** Idle time that ends a session, in milliseconds. Default 30 minutes. */
  sessionTimeoutMs?: number;
  /**
   * The retry curve. Default: 1 s doubling up to 60 s, `Retry-After` honoured up to 5 minutes.
   * Each field is a numeric option; a `maxMs` below `baseMs` is raised to it.
   */
  backoff?: Partial<BackoffOptions>;
  /** Told about everything that went wrong. */
  onError?: (error: TrackerError) => void;
  /** Where state is kept. Default `localStorage` (memory where it is unusable). */
  storage?: KeyValueStorage;
  /** The functions endpoint, for keepalive requests. Default: read from the client. */
  functionsUrl?: string;
  /**
   * The project's anon key or publishable key: the bearer of anonymous requests and the `apikey`
   * of keepalive ones. A publishable key, not being a JWT, is accepted by the `track` function
   * (deployed with `verify_jwt = false`), only a gateway verifying JWTs would refuse it.
   * Default: read from the client.
   */
  apiKey?: string;
  /** Send with `keepalive` when the page is hidden or closed. Default true. */
  flushOnHide?: boolean;
  /**
   * How long a request, or supabase-js asked who is signed in, may go unanswered before the
   * tracker goes on without it, in milliseconds. Default 30000.
   */
  requestTimeoutMs?: number;
  /** The clock, in epoch milliseconds. */
  now?: () => number;
  /** The source of jitter, in [0, 1). */
  random?: () => number;
}

/** A running tracker. */
export interface Tracker {
  /** One helper per event type. */
  readonly trackInteraction: InteractionHelpers;
  /** Records an interaction of any type; answers its event id, or null when not tracked. */
  track(
    eventType: EventType,
    entityType: EntityType,
    entityId: string,
    metadata?: Metadata,
  ): string | null;
  /** The live metrics of the current session (all zero while the visitor is opted out). */
  getSessionMetrics(): SessionMetrics;
  /** Ends the current session and answers the id of the new one. */
  startNewSession(): string;
  /** The current session's id; while the visitor is opted out, a throwaway one, never stored. */
  getSessionId(): string;
  /**
   * The visitor's persistent anonymous id (sent with every event); while the visitor is opted
   * out, a throwaway one, never stored.
   */
  getAnonymousId(): string;
  /** How many events wait to be sent from this tab. */
  pendingCount(): number;
  /** Sends what waits now; resolves when the queue is empty or a request failed. */
  flush(): Promise<void>;
  /** Stops collecting: clears every queued event and the visitor's ids, remembered across reloads. */
  optOut(): void;
  /** Resumes collecting after `optOut()`. */
  optIn(): void;
  /** Whether the visitor opted out, in this tab or another one. */
  isOptedOut(): boolean;
  /** Stops timers and listeners; what waits stays queued for the next page. */
  destroy(): void;
}

const userSpecific: ReadonlySet<string> = new Set(USER_SPECIFIC_EVENT_TYPES);
// How often a queue taken over from a full localStorage is checked for having gone.
const LOCAL_ADOPTION_CHECK_MS = 250;
const NEEDS_SIGNED_IN_USER: FieldError = { path: "eventType", message: "needs a signed-in user" };
// Room left in the keepalive budget for what the browser counts besides the body.
const KEEPALIVE_MARGIN_BYTES = 1024;
// A token this close to expiry is not used for a request.
const TOKEN_EXPIRY_MARGIN_MS = 10_000;
// With the accessToken option, how often tracking asks who is signed in, at most.
const ACCESS_TOKEN_ASK_MS = 1000;
// The longest delay setTimeout and setInterval take as given.
const MAX_TIMER_MS = 2_147_483_647;

/** Creates a tracker sending through `options.supabase`. */
export function createTracker(options: TrackerOptions): Tracker {
  const tracker = new InteractionTracker(options);
  // Every method works passed on alone (`onClick={tracker.flush}`,
  // `interactionHelpers(tracker.track)`): calls never throw, whoever holds them.
  return {
    trackInteraction: tracker.trackInteraction,
    track: (eventType, entityType, entityId, metadata) =>
      tracker.track(eventType, entityType, entityId, metadata),
    getSessionMetrics: () => tracker.getSessionMetrics(),
    startNewSession: () => tracker.startNewSession(),
    getSessionId: () => tracker.getSessionId(),
    getAnonymousId: () => tracker.getAnonymousId(),
    pendingCount: () => tracker.pendingCount(),
    flush: () => tracker.flush(),
    optOut: () => tracker.optOut(),
    optIn: () => tracker.optIn(),
    isOptedOut: () => tracker.isOptedOut(),
    destroy: () => tracker.destroy(),
  };
}

/** An event as queued: the client always gives it an id. */
type OutgoingEvent = TrackEvent & { eventId: string };
type Entry = QueuedEvent<OutgoingEvent>;

/**
 * When something happened, for telling whose an event is: how many events
 * the page had tracked by then, and the time on the tracker's clock.
 */
interface Moment {
  tracked: number;
  at: number;
}

/**
 * A question who is signed in, or word supabase-js gave unasked: `number`
 * orders them as asked; `asked` tells which events the answer speaks for.
 */
interface Ticket {
  number: number;
  asked: Moment;
}

class InteractionTracker implements Tracker {
  readonly trackInteraction: InteractionHelpers;
  readonly #tabId = randomId();
  readonly #supabase: SupabaseClientLike;
  readonly #functionName: string;
  readonly #batchSize: number;
  readonly #maxEventsPerRequest: number;
  // The request body's size limit: the server's, until a 413 shows a smaller
  // one on the way (see #shrinkRequests).
  #requestBytes = MAX_REQUEST_BYTES;
  readonly #backoff: BackoffOptions;
  readonly #onError?: (error: TrackerError) => void;
  readonly #storage: KeyValueStorage;
  readonly #inPlaceOfLocalStorage: boolean;
  // localStorage itself, given no storage of the app's: page memory may hold
  // queues trackers left there while it was full (see #adoptAbandonedQueues).
  readonly #onLocalStorage: boolean;
  readonly #keepaliveUrl: string | null;
  readonly #apiKey: string | null;
  readonly #clientHeaders: Record<string, string>;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #requestTimeoutMs: number;
  readonly #queue: DurableQueue<OutgoingEvent>;
  readonly #sessions: SessionStore;
  readonly #tabs: TabCoordinator;
  // The locks of the tabs whose queues a full localStorage keeps, where this
  // tracker keeps its own in page memory (see #adoptAbandonedQueues).
  readonly #localTabs: WebLocksCoordinator | null;
  // Ids of events in an ordinary request, and in a keepalive one: at
  // `pagehide` an event can be in both.
  readonly #inFlight = new Set<string>();
  readonly #inKeepalive = new Set<string>();
  // Events this page tracked whose sender is not known yet, and when: before
  // supabase-js first answered, or, with the accessToken option, since the
  // app's function was last asked (see #speaksFor).
  readonly #provisionalHere = new Map<string, Moment>();
  readonly #cleanups: Array<() => void> = [];

  // Who the next event belongs to: null when anonymous. Until supabase-js
  // first answers, the user of the stored session is the best guess, and the
  // events tracked meanwhile are provisional.
  #userId: string | null;
  #authKnown = false;
  #authAvailable = false;
  // Each user's latest token. `expiresAt` is on the device's clock (see
  // #expiryOnDeviceClock); `stretched` when that moved it past the server's.
  #tokens = new Map<string, { token: string; expiresAt: number | null; stretched: boolean }>();
  // Asking supabase-js who is signed in, until it answers or the wait ends.
  #authQuestion: { ticket: Ticket; settled: Promise<void> } | null = null;
  // Events tracked, and questions asked, so far; and the question whose
  // answer is the latest taken: an answer to an earlier one comes too late.
  #trackedCount = 0;
  #askedCount = 0;
  #lastAnswered: Ticket | null = null;
  // The app's accessToken function, asked in place of supabase.auth, and when it last was.
  readonly #accessToken: (() => Promise<string | null>) | null;
  #tokenAskedAt = -Infinity;
  // Armed when an event is tracked too soon after the function was asked to ask again.
  #askTimer: ReturnType<typeof setTimeout> | undefined;
  #reportedUnreadableToken = false;
  #reportedFailingToken = false;
  // Asking the auth server for a new token after a 401, likewise.
  #renewal: Promise<AuthSession | null | undefined> | null = null;
  // The token the last renewal gave, until the server accepts a request:
  // refused in turn, it is not renewed, so a server that refuses every token
  // gets one renewal, not one per batch.
  #renewedToken: string | null = null;
  // Ends each wait for supabase-js under way: `destroy()` calls them.
  readonly #endWaits = new Set<() => void>();
  // Keys of a full localStorage whose queue this tracker is sending (see #adoptKeptInPlace).
  readonly #adoptingFromLocal = new Set<string>();
  // Ids of the events taken over from there, which stay there until sent.
  readonly #keptInPlace = new Set<string>();
  #memoryAnonymousId: string | null = null;
  // The visitor's choice when the storage could not record it; null while
  // the storage holds it, where every tab reads the latest one.
  #optedOutHere: boolean | null = null;
  #ownsQueue = false;
  #running: Promise<void> | null = null;
  #runAgain = false;
  #attempt = 0;
  // Armed while a failed delivery waits for its retry, which it sends when it
  // fires (or when the last `Retry-After` is over, if later); until then only
  // `flush()` or the browser coming back online sends.
  // A timer, not a time to compare with the clock: the wall clock set back
  // cannot hold delivery up.
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  // One armed for each `Retry-After` the server gave, until it is over.
  // While any is, nothing is sent (not even as the page goes away; a plain
  // backoff does not hold that last chance back), and a later failure
  // cannot shorten it: the retry waits for the last of them.
  readonly #retryAfterTimers = new Set<ReturnType<typeof setTimeout>>();
  #soonTimer: ReturnType<typeof setTimeout> | undefined;
  #keepaliveBytes = 0;
  #destroyed = false;

  constructor(options: TrackerOptions) {
    this.#supabase = options.supabase;
    this.#accessToken = typeof options.accessToken === "function" ? options.accessToken : null;
    this.#functionName = options.functionName ?? "track";
    // At least one: a fraction would floor to 0, and a request of 0 events
    // sends nothing, ever.
    this.#batchSize = Math.max(1, Math.floor(numberOption(options.batchSize, 20)));
    this.#maxEventsPerRequest = Math.min(
      MAX_EVENTS_PER_REQUEST,
      Math.max(1, Math.floor(numberOption(options.maxEventsPerRequest, MAX_EVENTS_PER_REQUEST))),
    );
    this.#backoff = backoffOptions(options.backoff);
    this.#onError = options.onError;
    this.#storage = options.storage ?? browserStorage();
    // Page memory, given no storage of the app's: localStorage is full (or
    // blocked, when it cannot even be read).
    this.#inPlaceOfLocalStorage = options.storage === undefined &&
      this.#storage !== pageLocalStorage();
    this.#onLocalStorage = options.storage === undefined && !this.#inPlaceOfLocalStorage;
    // Readable but not writable: full. Blocked, it cannot even be read, and
    // there is nothing the visitor could do about it.
    if (this.#inPlaceOfLocalStorage && pageLocalStorage() !== null) {
      this.#report({
        kind: "storage",
        message: "localStorage is full: the queue, the session and the anonymous id are kept " +
          "in memory, for this page only",
      });
    }
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#requestTimeoutMs = numberOption(options.requestTimeoutMs, REQUEST_TIMEOUT_MS);

    // supabase-js keeps these on the client; an app may also pass them.
    const client = options.supabase as unknown as {
      supabaseKey?: unknown;
      functionsUrl?: { href?: unknown };
      headers?: unknown;
    };
    this.#apiKey = options.apiKey ??
      (typeof client.supabaseKey === "string" ? client.supabaseKey : null);
    const functionsUrl = options.functionsUrl ??
      (typeof client.functionsUrl?.href === "string" ? client.functionsUrl.href : null);
    this.#keepaliveUrl = functionsUrl === null || this.#apiKey === null
      ? null
      : `${functionsUrl.replace(/\/+$/, "")}/${this.#functionName}`;
    this.#clientHeaders = stringHeaders(client.headers);

    this.#queue = new DurableQueue<OutgoingEvent>({
      storage: this.#storage,
      key: keys.queuePrefix + this.#tabId,
      maxSize: numberOption(options.maxQueueSize, 1000),
      onProblem: (problem) => this.#reportQueueProblem(problem),
      attached: false,
      trackedAt: (event) => Date.parse(event.timestamp ?? ""),
    });
    this.#sessions = new SessionStore({
      storage: this.#storage,
      timeoutMs: numberOption(options.sessionTimeoutMs, DEFAULT_SESSION_TIMEOUT_MS),
      now: this.#now,
    });
    this.#userId = this.#sessions.stored()?.userId ?? null;
    // Page memory is this page's alone: its trackers need no locks to share it.
    this.#tabs = tabCoordinator(this.#tabId, this.#storage, this.#inPlaceOfLocalStorage);
    const locks = this.#inPlaceOfLocalStorage ? webLocks() : undefined;
    this.#localTabs = locks ? new WebLocksCoordinator(locks) : null;
    this.trackInteraction = interactionHelpers((eventType, entityType, entityId, metadata) =>
      this.track(eventType, entityType, entityId, metadata)
    );

    this.#watchAuth();
    this.#watchPage(options.flushOnHide ?? true);
    const interval = setInterval(
      () => this.#run(false),
      numberOption(options.flushIntervalMs, 5000),
    );
    this.#cleanups.push(() => clearInterval(interval));
    this.#tabs.claim(this.#tabId).then(() => {
      if (this.#destroyed) {
        this.#tabs.release(this.#tabId);
        return;
      }
      this.#ownsQueue = true;
      this.#queue.attach();
      this.#run(false);
    }, (error) => this.#report({ kind: "internal", message: `cannot own the queue: ${error}` }));
    this.#debug("tracker started", { tab: this.#tabId });
  }

  track(
    eventType: EventType,
    entityType: EntityType,
    entityId: string,
    metadata?: Metadata,
  ): string | null {
    try {
      return this.#track(eventType, entityType, entityId, metadata);
    } catch (error) {
      this.#report({ kind: "internal", message: `tracking failed: ${describe(error)}` });
      return null;
    }
  }

  // While the visitor is opted out, nothing that could tell them apart is
  // stored: reading the session opens none, and the ids answered are throwaway.
  getSessionMetrics(): SessionMetrics {
    try {
      if (this.isOptedOut()) return noMetrics();
      return metricsOf(this.#sessions.current(this.#principal()));
    } catch (error) {
      this.#report({ kind: "internal", message: `metrics failed: ${describe(error)}` });
      return noMetrics();
    }
  }

  startNewSession(): string {
    if (this.isOptedOut()) return randomId();
    const session = this.#sessions.start(this.#principal());
    this.#debug("new session", session.id);
    return session.id;
  }

  getSessionId(): string {
    if (this.isOptedOut()) return randomId();
    return this.#sessions.current(this.#principal()).id;
  }

  getAnonymousId(): string {
    const stored = readItem(this.#storage, keys.anonymousId);
    if (stored !== null && stored.length > 0 && stored.length <= 64) return stored;
    if (this.isOptedOut()) return randomId();
    const id = this.#memoryAnonymousId ?? randomId();
    try {
      this.#storage.setItem(keys.anonymousId, id);
      this.#memoryAnonymousId = null;
    } catch {
      this.#memoryAnonymousId = id;
    }
    return id;
  }

  pendingCount(): number {
    return this.#queue.size;
  }

  async flush(): Promise<void> {
    try {
      await this.#run(true);
    } catch (error) {
      this.#report({ kind: "internal", message: `flush failed: ${describe(error)}` });
    }
  }

  optOut(): void {
    this.#optedOutHere = true;
    // Forgotten first: a full storage has room for the flag once the queues are gone.
    this.#forgetEverything();
    // Kept in memory, localStorage being full, the tracker clears what
    // earlier pages left there too, and stores the choice where the next
    // page will look for it, if there is room now.
    const local = pageLocalStorage();
    if (local !== null && local !== this.#storage) {
      forgetVisitor(local);
      try {
        local.setItem(keys.optedOut, "true");
      } catch {
        // Still full: the choice holds for this page.
      }
    }
    try {
      this.#storage.setItem(keys.optedOut, "true");
      this.#optedOutHere = null;
    } catch {
      // Remembered for this page only.
    }
    this.#debug("opted out: queue cleared, nothing more is collected");
  }

  optIn(): void {
    // Also where an opt-out stored there, localStorage being full then, would
    // be taken over again by the next page.
    const local = pageLocalStorage();
    if (local !== null && local !== this.#storage) removeItem(local, keys.optedOut);
    // And in page memory, where one made while localStorage was full stays
    // for the next tracker of this page to take over.
    const memory = pageMemoryStorage();
    if (memory !== null && memory !== this.#storage) removeItem(memory, keys.optedOut);
    try {
      this.#storage.removeItem(keys.optedOut);
      this.#optedOutHere = null;
    } catch {
      this.#optedOutHere = false;
    }
    this.#debug("opted in");
  }

  // Read from the storage each time: the visitor may have changed their mind
  // in another tab since, and this tab must neither collect after an opt-out
  // nor clear what the other tabs keep after an opt-in.
  isOptedOut(): boolean {
    return this.#optedOutHere ?? readItem(this.#storage, keys.optedOut) === "true";
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    // Stopped before the tab owned its key (initTracking() twice at
    // startup, a component mounted twice), the queue has never been
    // written: written now, under this tab's own key, it is adopted by the
    // next tracker, or by another tab once this one is gone. Events a full
    // localStorage still keeps are left out: the next tracker takes them over
    // from there, and would otherwise have them twice, once already sent.
    this.#queue.remove(this.#keptInPlace);
    this.#queue.persist();
    // The key is another tab's to take over from now on: a request that
    // settles later must not write it again.
    this.#queue.detach();
    this.#endBackoff();
    clearTimeout(this.#soonTimer);
    clearTimeout(this.#askTimer);
    for (const end of [...this.#endWaits]) end();
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
    this.#tabs.release(this.#tabId);
  }

  // --- tracking ---------------------------------------------------------------

  #track(
    eventType: EventType,
    entityType: EntityType,
    entityId: string,
    metadata?: Metadata,
  ): string | null {
    if (this.#destroyed || this.isOptedOut()) {
      const why = this.#destroyed ? "the tracker was stopped" : "the visitor opted out";
      this.#debug(`not tracked: ${why}`, { eventType, entityType, entityId });
      return null;
    }
    const invalid = (errors: FieldError[]) => {
      this.#reportInvalid(eventType, entityType, entityId, errors);
      return null;
    };
    let details: unknown;
    try {
      // A copy taken now, as JSON: later changes by the app do not leak in.
      details = metadata === undefined ? undefined : JSON.parse(JSON.stringify(metadata));
    } catch (error) {
      return invalid([{ path: "metadata", message: `is not JSON: ${describe(error)}` }]);
    }
    // Counted first, so that a question asked as it is tracked speaks for it.
    const tracked: Moment = { tracked: ++this.#trackedCount, at: this.#now() };
    const asked = this.#followAccessToken();
    // With the accessToken option, an answer older than the event does not
    // say nobody is signed in now (a sign-in has no word of its own): the
    // event waits for one that does, which refuses it then if need be.
    const unsure = this.#accessToken !== null && !this.#speaksFor(this.#lastAnswered, tracked);
    if (!unsure && this.#authKnown && this.#userId === null && userSpecific.has(eventType)) {
      return invalid([NEEDS_SIGNED_IN_USER]);
    }
    const principal = this.#principal();
    const session = this.#sessions.current(principal);
    const result = validateEvent({
      eventId: randomId(),
      sessionId: session.id,
      anonymousId: principal.anonymousId,
      eventType,
      entityType,
      entityId,
      metadata: details,
      timestamp: new Date(tracked.at).toISOString(),
    });
    if (!result.ok) return invalid(result.errors);
    const event = result.event as OutgoingEvent;
    this.#sessions.record(eventType, principal);
    // Whose it is stays a guess until supabase-js first answers; with the
    // accessToken option, until an answer speaks for the time it was tracked.
    if (this.#awaitingAuth() || unsure) {
      this.#provisionalHere.set(event.eventId, tracked);
      this.#queue.push({ event, userId: principal.userId, provisional: true });
      if (unsure && !asked) this.#askSoon();
    } else {
      this.#queue.push({ event, userId: principal.userId });
    }
    this.#debug(`tracked ${eventType} ${entityType} ${entityId}`, event);
    if (this.#unsentCount() >= this.#batchSize) this.#sendSoon();
    return event.eventId;
  }

  #reportInvalid(
    eventType: string,
    entityType: string,
    entityId: string,
    errors: FieldError[],
  ): void {
    this.#report({
      kind: "validation",
      eventType: String(eventType),
      entityType: String(entityType),
      entityId: String(entityId),
      errors,
      message: `invalid ${String(eventType)} event: ${
        errors.map((e) => `${e.path || "event"} ${e.message}`).join("; ")
      }`,
    });
  }

  #unsentCount(): number {
    // Counted, not subtracted: at a pagehide kept in the back/forward cache an
    // event can be in an ordinary request and a keepalive one at once, and a
    // keepalive can outlive its events in the queue.
    const beingSent = this.#beingSent();
    if (beingSent.size === 0) return this.#queue.size;
    return this.#queue.entries().filter((entry) => !beingSent.has(entry.event.eventId)).length;
  }

  // Soon, not now: the rest of a burst tracked in the same task joins the batch.
  #sendSoon(): void {
    if (this.#soonTimer !== undefined || this.#backingOff()) return;
    this.#soonTimer = setTimeout(() => {
      this.#soonTimer = undefined;
      this.#run(false);
    }, 0);
  }

  // --- delivery ---------------------------------------------------------------

  // One delivery loop at a time; a request for another run while one goes on
  // makes it go round once more.
  #run(force: boolean): Promise<void> {
    if (this.#destroyed) return Promise.resolve();
    if (this.#running !== null) {
      this.#runAgain = true;
      return this.#running;
    }
    this.#running = (async () => {
      try {
        do {
          this.#runAgain = false;
          await this.#deliver(force);
        } while (this.#runAgain && !this.#destroyed && !this.#backingOff());
      } catch (error) {
        this.#report({ kind: "internal", message: `delivery failed: ${describe(error)}` });
      } finally {
        this.#running = null;
      }
    })();
    return this.#running;
  }

  async #deliver(force: boolean): Promise<void> {
    if (this.isOptedOut()) {
      // Whatever a tab wrote before it saw the opt-out goes too.
      this.#forgetEverything();
      return;
    }
    if (!force && this.#backingOff()) return;
    if (this.#ownsQueue) await this.#adoptAbandonedQueues();
    if (this.#unsentCount() <= 0) return;
    await this.#refreshAuth();
    this.#confirmProvisional();
    for (;;) {
      if (this.#destroyed || this.isOptedOut()) return;
      // A Retry-After that came meanwhile (to a keepalive request, say) holds
      // the rest back too, unless the app asked for them.
      if (!force && this.#retryAfterTimers.size > 0) return;
      const batch = selectBatch(this.#queue.entries(), {
        maxEvents: this.#maxEventsPerRequest,
        maxBytes: this.#requestBytes,
        exclude: this.#unsureOrBeingSent(),
        allowOversized: true,
      });
      if (batch.length === 0) return;
      const owner = batch[0].userId;
      const headers = this.#authHeaders(owner);
      if (headers === null) {
        // Still signed in, with no valid token yet (offline, or a refresh under
        // way): the events wait for one. Another user's events cannot be sent.
        if (owner !== null && owner !== this.#userId) {
          this.#dropSignedOut(batch);
          continue;
        }
        this.#settle({
          kind: "retry",
          status: null,
          retryAfterMs: null,
          message: owner === null
            ? "no api key to send anonymous events with while a user is signed in (set apiKey)"
            : "no valid access token for the signed-in user yet",
        }, batch);
        return;
      }
      const body = encodeBatch(batch.map((entry) => entry.event), new Date(this.#now()));
      this.#debug(`sending ${batch.length} events`);
      for (const entry of batch) this.#inFlight.add(entry.event.eventId);
      let delivery: Delivery;
      try {
        delivery = await invokeTrack(
          this.#supabase.functions,
          this.#functionName,
          body,
          headers,
          this.#now,
          this.#requestTimeoutMs,
        );
      } finally {
        for (const entry of batch) this.#inFlight.delete(entry.event.eventId);
      }
      if (delivery.kind === "refused" && delivery.status === 401 && owner !== null) {
        if (this.#destroyed) return;
        const renewal = await this.#renewToken(owner, headers.Authorization);
        if (this.#destroyed) return;
        if (renewal === "renewed") continue;
        if (renewal === "unavailable") {
          delivery = {
            kind: "retry",
            status: 401,
            retryAfterMs: null,
            message: `${delivery.message}, and no new token could be had yet`,
          };
        }
      }
      if (delivery.kind === "refused" && delivery.status === 413 && batch.length > 1) {
        // Nothing was stored: the events stay queued and go again at once,
        // fewer at a time, with no backoff.
        this.#shrinkRequests(
          new TextEncoder().encode(body).length,
          batch.length,
          delivery.message,
        );
        continue;
      }
      if (!this.#settle(delivery, batch)) return;
      // The app asked for it, and the server answered: its wait is over.
      if (force) this.#endBackoff();
    }
  }

  // A 413 means something on the way (a proxy, a CDN, a server deployed with
  // smaller limits than ours) takes less than the `sent` bytes at once.
  // Rather than drop up to 500 valid events, the tracker halves the bytes a
  // request may carry (its events' bytes: the envelope stays), and keeps the
  // limit for the rest of the page so that the next batches do not hit it
  // again. Bytes, not a count of events: two large events refused together
  // must not leave small ones going one at a time for good. Each 413 strictly
  // lowers the limit until a request carries one event, sent alone however
  // large, and one event answered 413 on its own is dropped like any refused
  // batch: a server answering 413 to everything costs log2(events) requests
  // more, then one per event, and never loops. Requests go one after another,
  // so the first half is stored and removed from the queue before the second
  // goes: no event is sent twice, and the oldest still go first.
  #shrinkRequests(sentBytes: number, sentEvents: number, why: string): void {
    const half = ENVELOPE_BYTES + Math.floor((sentBytes - ENVELOPE_BYTES) / 2);
    this.#requestBytes = Math.min(this.#requestBytes, half);
    this.#debug(
      `${why} for ${sentEvents} events; requests now carry at most ${this.#requestBytes} bytes`,
    );
  }

  // The server refused a token of the signed-in user that was taken as valid:
  // the device's clock may be behind the server's, the token was revoked, or
  // it was a stale one taken for fresh on a clock that seemed ahead.
  // A new one from the auth server, and the batch goes again ("renewed"); if
  // none can be had now, it waits for a retry ("unavailable"). The token the
  // last renewal gave, refused before the server accepted any request, or one
  // of a user no longer signed in, is not renewed, and a renewal giving back
  // the token refused renews nothing: the batch is dropped, as any 4xx
  // ("refused").
  // A renewal still open is not asked for again: a stalled auth server holds
  // delivery up once, and the requests do not pile up behind it. A newer
  // token supabase-js gave while the request was under way is used first.
  async #renewToken(
    userId: string,
    sentWith: string | undefined,
  ): Promise<"renewed" | "unavailable" | "refused"> {
    const known = this.#tokens.get(userId);
    const refused = known?.token;
    if (userId === this.#userId && refused !== undefined && sentWith !== `Bearer ${refused}`) {
      return "renewed";
    }
    if (userId !== this.#userId || refused === undefined || refused === this.#renewedToken) {
      return "refused";
    }
    const renew = this.#renewer();
    if (renew === null) {
      // Sent only because the device's clock seemed ahead, the token may just
      // be stale: its user is still signed in, and supabase-js may give another.
      return known?.stretched ? "unavailable" : "refused";
    }
    if (this.#renewal === null) {
      // An answer like any other: taken unless a later one came first.
      const ticket = this.#ticket();
      const asked = renew().then(
        (session) => {
          if (session?.user?.id === userId) this.#useSession(session, ticket);
          return session;
        },
        () => null,
      ).finally(() => (this.#renewal = null));
      this.#renewal = this.#waitAtMost(asked);
    }
    const session = await this.#renewal;
    if (userId !== this.#userId) return "refused";
    const current = this.#tokens.get(userId)?.token;
    if (current !== undefined && current !== refused) {
      this.#renewedToken = current;
      this.#debug("the server refused the access token; sending again with a new one");
      return "renewed";
    }
    // Given back the very token refused (an accessToken function hands over
    // its cached one until it expires): sent again, it would be refused again,
    // so the batch is dropped as any 4xx is, and so are the next ones sent
    // with it, without asking again.
    if (session?.user?.id === userId && session.access_token === refused) {
      this.#renewedToken = refused;
      return "refused";
    }
    return "unavailable";
  }

  // Where a new token comes from after a 401: the accessToken function asked
  // again, or supabase-js's refreshSession(); null when neither can be asked.
  #renewer(): (() => Promise<AuthSession | null>) | null {
    const accessToken = this.#accessToken;
    if (accessToken !== null) {
      return async () => this.#sessionOfToken(await accessToken());
    }
    const auth = this.#authAvailable ? this.#supabase.auth : undefined;
    if (typeof auth?.refreshSession !== "function") return null;
    return async () => (await auth.refreshSession!())?.data?.session ?? null;
  }

  // Applies the outcome of a request to the queue; answers whether to go on sending.
  #settle(delivery: Delivery, batch: Entry[]): boolean {
    const ids = batch.map((entry) => entry.event.eventId);
    if (delivery.kind === "retry") {
      const delay = retryDelay(this.#attempt, delivery.retryAfterMs, this.#backoff, this.#random);
      this.#attempt += 1;
      // Only the backoff is replaced: a `Retry-After` still in force stays.
      clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
      if (!this.#destroyed) {
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined;
          if (!this.#backingOff()) this.#run(false);
        }, delay);
        const asked = Math.min(delivery.retryAfterMs ?? 0, this.#backoff.maxRetryAfterMs);
        if (asked > 0) {
          const timer = setTimeout(() => {
            this.#retryAfterTimers.delete(timer);
            if (!this.#backingOff()) this.#run(false);
          }, asked);
          this.#retryAfterTimers.add(timer);
        }
      }
      this.#report({
        kind: "network",
        status: delivery.status,
        retryInMs: delay,
        message: `${delivery.message}; ${batch.length} events kept, retry in ${delay} ms`,
      });
      return false;
    }
    // The plain backoff ends, but not a `Retry-After`: a keepalive request
    // sent before it came may be answered 200 after it, and a rate limit
    // that refused a large request may take a small one. Only its own timer,
    // `flush()` or the browser coming back online ends it.
    this.#attempt = 0;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#queue.remove(ids);
    // Tokens work again: a later 401 may be worth a renewal.
    if (delivery.kind === "processed") this.#renewedToken = null;
    if (delivery.kind === "refused") {
      this.#report({
        kind: "dropped",
        reason: "refused",
        count: batch.length,
        status: delivery.status,
        message: `${delivery.message}; ${batch.length} events dropped`,
      });
      return true;
    }
    const { accepted, duplicates, rejected } = delivery.result;
    this.#debug(
      `sent: ${accepted} accepted, ${duplicates} duplicates, ${rejected.length} rejected`,
    );
    for (const refusal of rejected) {
      const event = batch[refusal.index]?.event;
      this.#report({
        kind: "rejected",
        eventId: refusal.eventId ?? event?.eventId ?? "",
        event,
        errors: refusal.errors,
        message: `the server rejected ${event?.eventType ?? "an"} event ${refusal.eventId ?? ""}: ${
          refusal.errors.map((e) => `${e.path || "event"} ${e.message}`).join("; ")
        }`,
      });
    }
    return true;
  }

  // Waiting for a retry: its backoff, or a `Retry-After`, is not over yet.
  #backingOff(): boolean {
    return this.#retryTimer !== undefined || this.#retryAfterTimers.size > 0;
  }

  #endBackoff(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    for (const timer of this.#retryAfterTimers) clearTimeout(timer);
    this.#retryAfterTimers.clear();
  }

  #dropSignedOut(batch: Entry[]): void {
    this.#queue.remove(batch.map((entry) => entry.event.eventId));
    this.#report({
      kind: "dropped",
      reason: "signed_out",
      count: batch.length,
      message: `${batch.length} events of a user who is no longer signed in were dropped`,
    });
  }

  #beingSent(): Set<string> {
    return this.#inKeepalive.size === 0
      ? this.#inFlight
      : new Set([...this.#inFlight, ...this.#inKeepalive]);
  }

  // This page's provisional events carry a guess: they wait for an answer
  // that speaks for them. Before supabase-js has said who is signed in, only
  // an anonymous event another page left has a sure sender, with the key as
  // its bearer: a user's have no token at hand yet, and without a key,
  // supabase-js would send the token of whoever is signed in.
  #unsureOrBeingSent(): Set<string> {
    const unsure = new Set(this.#beingSent());
    const awaiting = this.#awaitingAuth();
    for (const { event, userId } of this.#queue.entries()) {
      if (
        this.#provisionalHere.has(event.eventId) ||
        (awaiting && (this.#apiKey === null || userId !== null))
      ) {
        unsure.add(event.eventId);
      }
    }
    return unsure;
  }

  // The times this page's events still provisional were tracked.
  #unconfirmedHere(): Moment[] {
    const found: Moment[] = [];
    for (const { event, provisional } of this.#queue.entries()) {
      const tracked = provisional ? this.#provisionalHere.get(event.eventId) : undefined;
      if (tracked !== undefined) found.push(tracked);
    }
    return found;
  }

  // What the page still holds goes out in keepalive requests, which outlive
  // it. When the page is going away, the browser cancels its ordinary
  // requests: their events go too (the server stores an event once).
  // Events whose sender is not known yet stay: they go once it is, if it is
  // before long (an accessToken function handing over its cached token
  // answers at once), or with the next delivery, or the next page.
  #sendOnHide(pageGoing: boolean, askedAgain = false): void {
    if (
      this.#keepaliveUrl === null || this.#destroyed ||
      this.isOptedOut() || this.#retryAfterTimers.size > 0
    ) return;
    this.#confirmProvisional();
    if (!askedAgain && this.#unconfirmedHere().length > 0) {
      this.#refreshAuth().then(() => this.#sendOnHide(pageGoing, true)).catch((error) =>
        this.#report({ kind: "internal", message: `keepalive failed: ${describe(error)}` })
      );
    }
    if (this.#awaitingAuth()) return;
    this.#queue.save();
    const skip = new Set(pageGoing ? this.#inKeepalive : this.#beingSent());
    for (const id of this.#provisionalHere.keys()) skip.add(id);
    for (;;) {
      const budget = KEEPALIVE_MAX_BYTES - KEEPALIVE_MARGIN_BYTES - this.#keepaliveBytes;
      const batch = selectBatch(this.#queue.entries(), {
        maxEvents: this.#maxEventsPerRequest,
        maxBytes: Math.min(budget, this.#requestBytes),
        exclude: skip,
      });
      if (batch.length === 0) return;
      for (const entry of batch) skip.add(entry.event.eventId);
      const auth = this.#authHeaders(batch[0].userId);
      if (auth === null) continue;
      const body = encodeBatch(batch.map((entry) => entry.event), new Date(this.#now()));
      const bytes = new TextEncoder().encode(body).length;
      const ids = batch.map((entry) => entry.event.eventId);
      for (const id of ids) this.#inKeepalive.add(id);
      this.#keepaliveBytes += bytes;
      this.#debug(`page hidden: sending ${batch.length} events with keepalive (${bytes} bytes)`);
      keepaliveTrack(
        this.#keepaliveUrl,
        body,
        { ...this.#clientHeaders, apikey: this.#apiKey!, ...auth },
        this.#now,
        this.#requestTimeoutMs,
      ).then((delivery) => {
        this.#keepaliveBytes -= bytes;
        for (const id of ids) this.#inKeepalive.delete(id);
        // A user's token refused: the events stay, for the ordinary path to
        // renew the token and send them again (or for the next page).
        if (delivery.kind === "refused" && delivery.status === 401 && batch[0].userId !== null) {
          this.#sendSoon();
          return;
        }
        // Too large: nothing is dropped here, even one event alone. The events
        // stay, for the ordinary path to send in smaller requests (or for the
        // next page, when this one is going away).
        if (delivery.kind === "refused" && delivery.status === 413) {
          if (batch.length > 1) this.#shrinkRequests(bytes, batch.length, delivery.message);
          this.#sendSoon();
          return;
        }
        this.#settle(delivery, batch);
      }).catch((error) =>
        this.#report({ kind: "internal", message: `keepalive failed: ${describe(error)}` })
      );
    }
  }

  // Queues of tabs that are gone join this tab's queue, one owner at a time.
  async #adoptAbandonedQueues(): Promise<void> {
    const own = keys.queuePrefix + this.#tabId;
    for (const key of keysWithPrefix(this.#storage, keys.queuePrefix)) {
      if (key === own) continue;
      if (this.#destroyed) return;
      await this.#adoptQueue(this.#storage, this.#tabs, key);
    }
    // localStorage with room again: a tracker of this page that kept its
    // queue in page memory, localStorage being full then, and that
    // initTracking() replaced, left it there, where no later page looks.
    // Page memory's own coordinator tells a live tracker's queue from a left one.
    const memory = this.#onLocalStorage ? pageMemoryStorage() : null;
    if (memory !== null) {
      for (const key of keysWithPrefix(memory, keys.queuePrefix)) {
        if (this.#destroyed) return;
        await this.#adoptQueue(memory, new PageCoordinator(), key);
      }
    }
    // Page memory standing in for a full localStorage: the queues earlier
    // pages left there would wait for a page that finds room, and keep it
    // full meanwhile. They are taken over too, where Web Locks tell a live
    // tab's queue from a left one without writing to the storage (a lease's
    // claim cannot be written into a full one).
    const local = pageLocalStorage();
    if (this.#localTabs !== null && local !== null) {
      for (const key of keysWithPrefix(local, keys.queuePrefix)) {
        if (this.#adoptingFromLocal.has(key)) continue;
        this.#adoptingFromLocal.add(key);
        this.#adoptKeptInPlace(local, this.#localTabs, key)
          .catch(() => {})
          .finally(() => this.#adoptingFromLocal.delete(key));
      }
    }
  }

  // Moves the queue under `key` in `storage` into this tab's, if nobody owns it.
  async #adoptQueue(storage: KeyValueStorage, tabs: TabCoordinator, key: string): Promise<void> {
    await tabs.adopt(key.slice(keys.queuePrefix.length), () => {
      // Stopped while waiting for the queue (a lock, or the lease's pause):
      // this tracker's own queue no longer reaches the storage, so the
      // events stay where they are, for the next tracker to take over.
      if (this.#destroyed) return;
      // Removed before the merge writes them under this tab's key, in the
      // same task: the storage never has to hold the events twice.
      const entries = readQueue<OutgoingEvent>(storage, key);
      removeItem(storage, key);
      const added = this.#queue.merge(entries);
      if (added > 0) this.#debug(`adopted ${added} events left by another page`);
    });
  }

  // Page memory cannot keep events past this page, so a queue taken over
  // from a full localStorage stays there, its tab's lock held, until every
  // event of it has left this tracker's queue (sent, or given up on): then
  // it is removed. If this page goes first, the lock is released with it and
  // the next page takes the queue over again; what was sent meanwhile the
  // server counts as duplicates.
  async #adoptKeptInPlace(
    local: KeyValueStorage,
    tabs: WebLocksCoordinator,
    key: string,
  ): Promise<void> {
    await tabs.adopt(key.slice(keys.queuePrefix.length), async () => {
      if (this.#destroyed) return;
      const entries = readQueue<OutgoingEvent>(local, key);
      const added = this.#queue.merge(entries);
      if (added > 0) this.#debug(`adopted ${added} events a full localStorage keeps`);
      const ids = new Set(entries.map((entry) => entry.event.eventId));
      for (const id of ids) this.#keptInPlace.add(id);
      const waiting = () => this.#queue.entries().some((entry) => ids.has(entry.event.eventId));
      while (!this.#destroyed && waiting()) await this.#pause(LOCAL_ADOPTION_CHECK_MS);
      if (this.#destroyed) return;
      removeItem(local, key);
      for (const id of ids) this.#keptInPlace.delete(id);
    });
  }

  /** Waits `ms`, or less if the tracker is destroyed meanwhile. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const end = () => {
        clearTimeout(timer);
        this.#endWaits.delete(end);
        resolve();
      };
      const timer = setTimeout(end, ms);
      this.#endWaits.add(end);
    });
  }

  #forgetEverything(): void {
    this.#queue.clear();
    this.#provisionalHere.clear();
    this.#sessions.clear();
    forgetVisitor(this.#storage);
    // What this page's trackers kept in memory, localStorage being full
    // then, would be taken over and sent after an opt-in.
    const memory = this.#onLocalStorage ? pageMemoryStorage() : null;
    if (memory !== null) forgetVisitor(memory);
    this.#memoryAnonymousId = null;
    this.#endBackoff();
  }

  // --- who sends --------------------------------------------------------------

  #principal(): Principal {
    return { userId: this.#userId, anonymousId: this.getAnonymousId() };
  }

  #watchAuth(): void {
    if (this.#accessToken !== null) {
      // The app's function tells who is signed in; supabase.auth, with
      // supabase-js's own `accessToken` option, cannot be touched.
      this.#authAvailable = true;
      void this.#refreshAuth();
      return;
    }
    let auth: AuthClient | undefined;
    let unusable = false;
    try {
      // With the `accessToken` option, supabase-js throws on any use of `auth`.
      auth = this.#supabase.auth;
      if (auth !== undefined && typeof auth?.onAuthStateChange !== "function") {
        auth = undefined;
        unusable = true;
      }
      const { data } = auth?.onAuthStateChange((event, session) => {
        // supabase-js also says INITIAL_SESSION without a session when it could
        // not refresh an expired one (offline): getSession tells the two apart.
        if (event === "INITIAL_SESSION" && session === null) return;
        this.#useSession(session);
      }) ?? { data: undefined };
      if (data) this.#cleanups.push(() => data.subscription.unsubscribe());
    } catch {
      auth = undefined;
      unusable = true;
    }
    this.#authAvailable = auth !== undefined;
    if (!this.#authAvailable) {
      // Nobody is known to be signed in, so every event is anonymous and goes
      // with the key as its bearer: left to choose, supabase-js would send the
      // token of whoever is signed in when the batch goes, and the events
      // would be stored as theirs.
      this.#useSession(null);
      if (unusable) {
        this.#report({
          kind: "auth",
          message: "supabase.auth cannot be used (a client made with the accessToken option?): " +
            "events go anonymously; give the tracker the same accessToken function " +
            "to track signed-in users",
        });
      }
      return;
    }
    void this.#refreshAuth();
  }

  // supabase-js may take long to answer, or never answer: a token refresh
  // whose request stalls, a lock another tab holds. Delivery waits for it as
  // long as for a request of its own (refreshing a token is one request to
  // the auth server), then goes on with what it knows: the tokens it was
  // given, and the guess behind provisional events, which keep waiting.
  // A question still open is asked again only with the accessToken option,
  // when events were tracked after it was asked: its answer does not speak
  // for them.
  #refreshAuth(): Promise<void> {
    if (!this.#authAvailable || this.#destroyed) return Promise.resolve();
    const open = this.#authQuestion;
    if (
      open !== null &&
      (this.#accessToken === null ||
        this.#unconfirmedHere().every((tracked) => this.#speaksFor(open.ticket, tracked)))
    ) {
      return open.settled;
    }
    return this.#ask();
  }

  #ask(): Promise<void> {
    const ticket = this.#ticket();
    const answered = this.#askAuth(ticket);
    const settled = this.#waitAtMost(answered).then(() => {});
    const question = { ticket, settled };
    this.#authQuestion = question;
    // Set first, whatever order the two settle in (Deno, loading setTimeout
    // on first use, runs the microtasks queued).
    const forget = () => {
      if (this.#authQuestion === question) this.#authQuestion = null;
    };
    void answered.finally(forget);
    // Given up on, it is asked anew next time where nothing else would tell
    // who is signed in: with the accessToken option, and before supabase-js
    // first answers. After that, supabase-js says who signs in and out
    // unasked (onAuthStateChange), and a question left open holds delivery
    // up once, not at every delivery.
    void settled.then(() => {
      if (this.#accessToken !== null || !this.#authKnown) forget();
    });
    return settled;
  }

  // A new place in the order of questions and answers, now. supabase-js
  // tells of every change unasked, so its answers speak for every event; the
  // accessToken function's, for those tracked by the time it was asked.
  #ticket(): Ticket {
    const tracked = this.#accessToken === null ? Infinity : this.#trackedCount;
    return { number: ++this.#askedCount, asked: { tracked, at: this.#now() } };
  }

  // Whether the answer to `ticket` speaks for an event `tracked` then: one
  // tracked before the question was asked, or in the same millisecond.
  #speaksFor(ticket: Ticket | null, tracked: Moment): boolean {
    return ticket !== null &&
      (tracked.tracked <= ticket.asked.tracked || tracked.at === ticket.asked.at);
  }

  // `promise`'s value, or undefined once requestTimeoutMs have passed without
  // one, or the tracker was destroyed.
  #waitAtMost<T>(promise: Promise<T>): Promise<T | undefined> {
    if (this.#destroyed) return Promise.resolve(undefined);
    let end = () => {};
    const ended = new Promise<undefined>((resolve) => {
      const timer = setTimeout(() => end(), this.#requestTimeoutMs);
      end = () => {
        clearTimeout(timer);
        this.#endWaits.delete(end);
        resolve(undefined);
      };
      this.#endWaits.add(end);
    });
    return Promise.race([promise, ended]).finally(() => end());
  }

  async #askAuth(ticket: Ticket): Promise<void> {
    if (this.#accessToken !== null) {
      this.#tokenAskedAt = ticket.asked.at;
      let token: string | null;
      try {
        token = await this.#accessToken();
      } catch (error) {
        // What a signed-out visitor gets from some providers (Auth0's
        // login_required): taken as nobody signed in, or every event would
        // wait for an answer that never comes.
        if (!this.#reportedFailingToken) {
          this.#reportedFailingToken = true;
          this.#report({
            kind: "auth",
            message: `the accessToken function failed (${describe(error)}): taken as nobody ` +
              "signed in, events go anonymously",
          });
        }
        token = null;
      }
      this.#useSession(this.#sessionOfToken(token), ticket);
      return;
    }
    try {
      const { data, error } = await this.#supabase.auth!.getSession();
      // No session but an error: an expired session that could not be
      // refreshed, offline say. The user has not signed out; keep what we know.
      if (data.session === null && error) return;
      this.#useSession(data.session, ticket);
    } catch {
      // The cached token, if any, will do.
    }
  }

  // A session as supabase-js would hand it out, from an access token the
  // accessToken function gave: its user is the JWT's `sub`, its expiry `exp`.
  // Not verified: the server does that. A token without a readable `sub`
  // names nobody, and its events go anonymously.
  #sessionOfToken(token: unknown): AuthSession | null {
    if (typeof token !== "string" || token === "" || token === this.#apiKey) return null;
    const claims = jwtClaims(token);
    if (typeof claims?.sub === "string" && claims.sub !== "") {
      const expiresAt = typeof claims.exp === "number" && Number.isFinite(claims.exp)
        ? claims.exp
        : undefined;
      return { access_token: token, expires_at: expiresAt, user: { id: claims.sub } };
    }
    // The anon key handed over while nobody is signed in is no surprise.
    if (claims?.role !== "anon" && !this.#reportedUnreadableToken) {
      this.#reportedUnreadableToken = true;
      this.#report({
        kind: "auth",
        message: "the accessToken function gave a token that is not a JWT naming its user (sub): " +
          "events go anonymously",
      });
    }
    return null;
  }

  // With the accessToken option there is no word when someone signs in or
  // out: tracking asks again, at most once a second, and every event waits
  // for an answer to a question asked when it was tracked, or later, to say
  // whose it is. Answers whether it asked.
  #followAccessToken(): boolean {
    if (this.#accessToken === null || this.#destroyed) return false;
    const since = this.#now() - this.#tokenAskedAt;
    if (since < ACCESS_TOKEN_ASK_MS && since >= 0) return false;
    void this.#ask();
    return true;
  }

  // An event tracked within the second: the function is asked again once the
  // second is over, not only when the event is sent, by which time another
  // user may have signed in.
  #askSoon(): void {
    if (this.#askTimer !== undefined) return;
    const since = this.#now() - this.#tokenAskedAt;
    this.#askTimer = setTimeout(() => {
      this.#askTimer = undefined;
      if (this.#unconfirmedHere().length > 0) void this.#refreshAuth();
    }, Math.min(Math.max(ACCESS_TOKEN_ASK_MS - since, 0), ACCESS_TOKEN_ASK_MS));
  }

  // Takes what supabase-js (or the accessToken function) said in answer to
  // `ticket`; word it gave unasked takes a ticket of its own, now. An answer
  // to a question asked before the one last taken says who was signed in
  // earlier: it is left.
  #useSession(session: AuthSession | null, ticket: Ticket = this.#ticket()): void {
    if (this.#destroyed) return;
    if (this.#lastAnswered !== null && ticket.number < this.#lastAnswered.number) return;
    this.#lastAnswered = ticket;
    const userId = session?.user?.id ?? null;
    // A token handed over again keeps the expiry reckoned when it first came:
    // reckoned again, one gone stale on the way would look fresh for ever.
    if (
      session && userId !== null && typeof session.access_token === "string" &&
      this.#tokens.get(userId)?.token !== session.access_token
    ) {
      const serverExpiry = typeof session.expires_at === "number"
        ? session.expires_at * 1000
        : null;
      const expiresAt = this.#expiryOnDeviceClock(serverExpiry, session.access_token);
      this.#tokens.set(userId, {
        token: session.access_token,
        expiresAt,
        stretched: expiresAt !== serverExpiry,
      });
    }
    if (userId !== this.#userId) this.#debug(`signed-in user is now ${userId ?? "nobody"}`);
    this.#userId = userId;
    this.#authKnown = true;
    this.#confirmProvisional();
  }

  // `expires_at` is on the auth server's clock. On a device whose clock runs
  // ahead of it, every token supabase-js hands over, even one just refreshed,
  // looks expired, and the user's events would wait forever. So a token that
  // looks expired when it arrives gets its lifetime counted from its arrival,
  // as its issue time (`iat`) tells how far ahead the clock is. One really
  // stale is then sent once, refused with a 401, and renewed.
  #expiryOnDeviceClock(serverExpiry: number | null, token: string): number | null {
    if (serverExpiry === null || !this.#looksExpired(serverExpiry)) return serverExpiry;
    const issuedAt = issuedAtMs(token);
    if (issuedAt === null) return serverExpiry;
    return serverExpiry + Math.max(0, this.#now() - issuedAt);
  }

  #looksExpired(expiresAt: number | null): boolean {
    return expiresAt !== null && expiresAt - TOKEN_EXPIRY_MARGIN_MS <= this.#now();
  }

  #awaitingAuth(): boolean {
    return this.#authAvailable && !this.#authKnown;
  }

  // Events tracked before supabase-js first said who is signed in carry a
  // guess, and with the accessToken option so does every event until an
  // answer speaks for it. Once one has, this page's own events whose guess
  // was wrong take the real principal and its current session, keeping their
  // id and time; a signed-out visitor's user-specific ones are refused, as
  // they would have been when tracked. The others keep their principal and
  // session.
  #confirmProvisional(): void {
    const answer = this.#lastAnswered;
    if (!this.#authKnown || answer === null) return;
    const provisional = this.#queue.entries().filter((entry) => entry.provisional);
    if (provisional.length === 0) return;
    const principal = this.#principal();
    const refused: string[] = [];
    const confirmed: Entry[] = [];
    for (const { event, userId } of provisional) {
      // Tracked after the question was asked: the answer says nothing of it.
      const tracked = this.#provisionalHere.get(event.eventId);
      if (tracked !== undefined && !this.#speaksFor(answer, tracked)) continue;
      // Left by another page (a reload, or a tab that is gone), an event
      // keeps the principal it was tracked for: whoever signs in here may be
      // someone else. So does one whose guess was right, in its own session.
      const trackedHere = this.#provisionalHere.delete(event.eventId);
      if (!trackedHere || userId === principal.userId) {
        confirmed.push({ event, userId });
        continue;
      }
      if (principal.userId === null && userSpecific.has(event.eventType)) {
        refused.push(event.eventId);
        this.#reportInvalid(event.eventType, event.entityType, event.entityId, [
          NEEDS_SIGNED_IN_USER,
        ]);
        continue;
      }
      // Counted in the guessed principal's session when tracked: a wrong
      // guess counts it again, in the session it really belongs to.
      const session = this.#sessions.record(event.eventType, principal);
      confirmed.push({
        event: { ...event, sessionId: session.id, anonymousId: principal.anonymousId },
        userId: principal.userId,
      });
    }
    this.#queue.remove(refused);
    this.#queue.replace(confirmed);
  }

  // Headers that make the server see `userId` (null: anonymous) as the
  // sender, or null when no valid token of that user is at hand.
  #authHeaders(userId: string | null): Record<string, string> | null {
    if (userId === null) {
      // Always the key as the bearer, anon key or publishable key: without
      // one, supabase-js sends the token of whoever is signed in now, and the
      // events would become theirs.
      if (this.#apiKey !== null) return { Authorization: `Bearer ${this.#apiKey}` };
      // No key at hand: supabase-js sends its own while nobody is signed in.
      return this.#userId === null ? {} : null;
    }
    const token = this.#tokens.get(userId);
    if (token === undefined || this.#looksExpired(token.expiresAt)) return null;
    return { Authorization: `Bearer ${token.token}` };
  }

  // --- the page ---------------------------------------------------------------

  #watchPage(flushOnHide: boolean): void {
    if (typeof document === "undefined" || typeof addEventListener !== "function") return;
    const listen = (target: EventTarget, type: string, listener: (event: Event) => void) => {
      target.addEventListener(type, listener);
      this.#cleanups.push(() => target.removeEventListener(type, listener));
    };
    const guarded = (work: (event: Event) => void) => (event: Event) => {
      try {
        work(event);
      } catch (error) {
        this.#report({ kind: "internal", message: `${event.type} failed: ${describe(error)}` });
      }
    };
    listen(
      document,
      "visibilitychange",
      guarded(() => {
        if (document.visibilityState === "hidden" && flushOnHide) this.#sendOnHide(false);
      }),
    );
    listen(
      globalThis,
      "pagehide",
      guarded((event) => {
        // Kept in the back/forward cache, the page keeps its requests too.
        const leaving = !(event as PageTransitionEvent).persisted;
        if (flushOnHide) this.#sendOnHide(leaving);
        this.#queue.save();
        // The page is going for good: let the next page adopt the queue at once.
        if (leaving) this.#tabs.release(this.#tabId);
      }),
    );
    listen(
      globalThis,
      "pageshow",
      guarded((event) => {
        if ((event as PageTransitionEvent).persisted) this.#tabs.claim(this.#tabId);
      }),
    );
    listen(
      globalThis,
      "online",
      guarded(() => {
        this.#attempt = 0;
        this.#endBackoff();
        this.#run(false);
      }),
    );
    listen(
      globalThis,
      "storage",
      guarded((event) => {
        const { key, newValue } = event as StorageEvent;
        if (key !== keys.optedOut) return;
        // Chosen in another tab, and stored in localStorage, which holds the
        // latest choice: read there, not from the event, which may be late.
        // A tracker keeping its state elsewhere (page memory, localStorage
        // being full, or the app's own storage) keeps that choice there too;
        // one whose storage shows localStorage finds it there already and
        // writes nothing, which could undo a later choice.
        const local = pageLocalStorage();
        const latest = local !== null ? readItem(local, keys.optedOut) : newValue;
        const own = this.#storage === local ? latest : readItem(this.#storage, keys.optedOut);
        if (latest === "true") {
          // As optOut(): forgotten first, so that a full storage has room
          // for the flag, and held in this tab if it still has none.
          this.#optedOutHere = true;
          this.#forgetEverything();
          if (own !== "true") {
            try {
              this.#storage.setItem(keys.optedOut, "true");
            } catch {
              return;
            }
          }
        } else if (own !== null) {
          removeItem(this.#storage, keys.optedOut);
        }
        this.#optedOutHere = null;
      }),
    );
  }

  // --- reporting --------------------------------------------------------------

  #reportQueueProblem(problem: QueueProblem): void {
    if (problem.kind === "storage") {
      this.#report({ kind: "storage", message: problem.message });
      return;
    }
    this.#report({
      kind: "dropped",
      reason: problem.reason,
      count: problem.count,
      message: `the queue is full: ${problem.count} oldest events dropped`,
    });
  }

  #report(error: TrackerError): void {
    this.#debug(error.message, error);
    try {
      this.#onError?.(error);
    } catch {
      // The app's own handler failing is not the app's tracking problem.
    }
  }

  #debug(message: string, ...details: unknown[]): void {
    if (!this.#debugging()) return;
    console.log(`[interactions] ${message}`, ...details);
  }

  // The developer sets the switch in localStorage, which still says it when
  // the tracker keeps its state elsewhere (in memory, localStorage being full).
  #debugging(): boolean {
    const local = pageLocalStorage();
    return (local !== null && readItem(local, DEBUG_FLAG_KEY) === "true") ||
      readItem(this.#storage, DEBUG_FLAG_KEY) === "true";
  }
}

function noMetrics(): SessionMetrics {
  return { duration: 0, interactionCount: 0, engagementScore: 0, pageViews: 0, bounceRate: 100 };
}

function stringHeaders(value: unknown): Record<string, string> {
  const headers: Record<string, string> = {};
  if (typeof value !== "object" || value === null) return headers;
  for (const [name, header] of Object.entries(value)) {
    if (typeof header === "string") headers[name] = header;
  }
  return headers;
}

// An option's value if it is a positive finite number, its default otherwise;
// at most what a timer can wait (about 24.8 days), beyond which it fires at once.
function numberOption(value: number | undefined, fallback: number): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0
    ? Math.min(value, MAX_TIMER_MS)
    : fallback;
}

// When the JWT `token` was issued, in epoch milliseconds, from its `iat`
// claim; null when it is no JWT or has no readable `iat`.
function issuedAtMs(token: string): number | null {
  const iat = jwtClaims(token)?.iat;
  return typeof iat === "number" && Number.isFinite(iat) ? iat * 1000 : null;
}

// The claims of the JWT `token`, unverified; null when it is no JWT.
function jwtClaims(token: string): Record<string, unknown> | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "="));
    const payload = JSON.parse(
      new TextDecoder().decode(Uint8Array.from(binary, (char) => char.charCodeAt(0))),
    );
    return typeof payload === "object" && payload !== null && !Array.isArray(payload)
      ? payload
      : null;
  } catch {
    return null;
  }
}

// Each field as a numeric option: a zero or NaN delay would retry at once,
// again and again, through an outage. A cap below the first delay is raised to it.
function backoffOptions(given: Partial<BackoffOptions> | undefined): BackoffOptions {
  const baseMs = numberOption(given?.baseMs, defaultBackoff.baseMs);
  return {
    baseMs,
    maxMs: Math.max(baseMs, numberOption(given?.maxMs, defaultBackoff.maxMs)),
    maxRetryAfterMs: numberOption(given?.maxRetryAfterMs, defaultBackoff.maxRetryAfterMs),
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
