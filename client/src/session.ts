/**
 * The visitor's session: one id shared by every tab and kept across reloads,
 * replaced after 30 minutes without an interaction, when the principal
 * changes (a session belongs to one principal, as on the server: a signed-in
 * user, or else an anonymous id), or on demand. It also keeps the live counts
 * behind `getSessionMetrics()`.
 *
 * The counts follow the server's `sessions` row: the session starts at its
 * first interaction, lasts until its latest one, and its page views are its
 * `view` events.
 *
 * @example
 * ```ts
 * import { SessionStore } from "./session.ts";
 * import { MemoryStorage } from "./storage.ts";
 *
 * const sessions = new SessionStore({ storage: new MemoryStorage() });
 * const visitor = { userId: null, anonymousId: "visitor-1" };
 * const session = sessions.record("view", visitor); // the session the event belongs to
 * console.log(session.id, session.pageViews); // "…", 1
 * ```
 *
 * @module
 */
import { bounceRate, engagementScore } from "./contract.ts";
import { randomId } from "./ids.ts";
import { keys, type KeyValueStorage, readItem, removeItem } from "./storage.ts";

/** Thirty minutes, the usual web analytics idle timeout. */
export const DEFAULT_SESSION_TIMEOUT_MS = 30 * 60 * 1000;

/** Who interacts: the server keys sessions by user, and anonymous ones by anonymous id. */
export interface Principal {
  /** The signed-in user; null when anonymous. */
  userId: string | null;
  anonymousId: string;
}

/** A session as stored. */
export interface SessionState {
  id: string;
  /** The signed-in user the session belongs to; null when anonymous. */
  userId: string | null;
  /** The anonymous id the session was opened with. */
  anonymousId: string;
  /** Epoch milliseconds of the first interaction (of the start, before any). */
  startedAt: number;
  /** Epoch milliseconds of the latest interaction. */
  lastActivityAt: number;
  interactionCount: number;
  pageViews: number;
}

/** A session's metrics, as the guide shows them. */
export interface SessionMetrics {
  /** Milliseconds from the session's first interaction to its latest. */
  duration: number;
  interactionCount: number;
  /** 0..100, computed as the database's `engagement_score`. */
  engagementScore: number;
  /** `view` events in the session. */
  pageViews: number;
  /** 100 when the session saw at most one page, else 0. */
  bounceRate: number;
}

/** The metrics of `session`, the numbers the `session_metrics` view will show for it. */
export function metricsOf(session: SessionState): SessionMetrics {
  const duration = session.interactionCount === 0
    ? 0
    : Math.max(0, session.lastActivityAt - session.startedAt);
  return {
    duration,
    interactionCount: session.interactionCount,
    engagementScore: engagementScore(session.interactionCount, duration),
    pageViews: session.pageViews,
    bounceRate: bounceRate(session.pageViews),
  };
}

/** How sessions are kept. */
export interface SessionOptions {
  storage: KeyValueStorage;
  /** Idle time after which the next interaction opens a new session. */
  timeoutMs?: number;
  /** The clock, in epoch milliseconds. */
  now?: () => number;
  /** A new session id. */
  newId?: () => string;
}

/** Reads and updates the visitor's session in storage. */
export class SessionStore {
  readonly timeoutMs: number;
  #storage: KeyValueStorage;
  #now: () => number;
  #newId: () => string;
  // When storage cannot be written, the session lives here.
  #fallback: SessionState | null = null;

  constructor(options: SessionOptions) {
    this.#storage = options.storage;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
    this.#now = options.now ?? Date.now;
    this.#newId = options.newId ?? randomId;
  }

  /** The stored session as it is, expired or not; null when there is none. */
  stored(): SessionState | null {
    if (this.#fallback !== null) return this.#fallback;
    const text = readItem(this.#storage, keys.session);
    if (text === null) return null;
    try {
      const value = JSON.parse(text);
      return isSessionState(value) ? value : null;
    } catch {
      return null;
    }
  }

  /** The session `principal` is in now, opening a new one if needed. */
  current(principal: Principal): SessionState {
    const session = this.stored();
    if (session !== null && belongsTo(session, principal) && !this.#expired(session)) {
      return this.#onClockNow(session);
    }
    return this.start(principal);
  }

  /** Counts one interaction of `eventType` and answers the session it belongs to. */
  record(eventType: string, principal: Principal): SessionState {
    const session = { ...this.current(principal) };
    const now = this.#now();
    if (session.interactionCount === 0) session.startedAt = now;
    session.lastActivityAt = Math.max(now, session.lastActivityAt);
    session.interactionCount += 1;
    if (eventType === "view") session.pageViews += 1;
    this.#write(session);
    return session;
  }

  /** Opens a new session for `principal`, whatever the current one. */
  start(principal: Principal): SessionState {
    const now = this.#now();
    const session: SessionState = {
      id: this.#newId(),
      userId: principal.userId,
      anonymousId: principal.anonymousId,
      startedAt: now,
      lastActivityAt: now,
      interactionCount: 0,
      pageViews: 0,
    };
    this.#write(session);
    return session;
  }

  /** Forgets the session. */
  clear(): void {
    this.#fallback = null;
    removeItem(this.#storage, keys.session);
  }

  // A wall clock set back (corrected after running ahead) puts the latest
  // interaction in the future: idle time would be negative until the clock
  // caught up, and the session would not end however long the visitor was
  // away. Moved back by the same step, the session keeps its duration, and
  // its idle time counts from now.
  #onClockNow(session: SessionState): SessionState {
    const step = session.lastActivityAt - this.#now();
    if (step <= 0) return session;
    const moved = {
      ...session,
      startedAt: session.startedAt - step,
      lastActivityAt: session.lastActivityAt - step,
    };
    this.#write(moved);
    return moved;
  }

  #expired(session: SessionState): boolean {
    return this.#now() - session.lastActivityAt >= this.timeoutMs;
  }

  #write(session: SessionState): void {
    try {
      this.#storage.setItem(keys.session, JSON.stringify(session));
      this.#fallback = null;
    } catch {
      this.#fallback = session;
    }
  }
}

// A user's session is theirs whatever the anonymous id; an anonymous
// session belongs to its anonymous id. Two tabs opened at once on a first
// visit may briefly hold different anonymous ids.
function belongsTo(session: SessionState, principal: Principal): boolean {
  if (session.userId !== principal.userId) return false;
  return principal.userId !== null || session.anonymousId === principal.anonymousId;
}

function isSessionState(value: unknown): value is SessionState {
  if (typeof value !== "object" || value === null) return false;
  const s = value as Record<string, unknown>;
  return typeof s.id === "string" && (s.userId === null || typeof s.userId === "string") &&
    typeof s.anonymousId === "string" &&
    typeof s.startedAt === "number" && typeof s.lastActivityAt === "number" &&
    typeof s.interactionCount === "number" && typeof s.pageViews === "number";
}
