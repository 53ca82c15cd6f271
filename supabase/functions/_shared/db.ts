/**
 * The database side of a function: one postgres.js client per process, made
 * on first use from `SUPABASE_DB_URL` and reused by every request, and the
 * one call the `track` function makes per request.
 *
 * `prepare: false` keeps it working behind Supavisor in transaction mode. The
 * statement timeout (`TRACK_DB_STATEMENT_TIMEOUT_MS`, default 10 000) is set
 * for the session at connect time, and a deadline 2 s longer guards against
 * a server that stops answering altogether: past it, the client and its
 * connections are dropped and the next call opens new ones.
 *
 * @example
 * ```ts
 * import { DatabaseError, type IngestEvent, ingestInteractions } from "./db.ts";
 *
 * async function store(key: string, userId: string | null, events: IngestEvent[]) {
 *   try {
 *     const result = await ingestInteractions({
 *       userId,
 *       events,
 *       rejected: [],
 *       context: { function: "track", request_id: crypto.randomUUID() },
 *       rateLimit: { key, events: events.length, requestsPerMinute: 120, eventsPerMinute: 6000 },
 *     });
 *     if (!result.allowed) console.log(`retry in ${result.retryAfterSeconds} s`);
 *   } catch (error) {
 *     if (!(error instanceof DatabaseError)) throw error;
 *     console.error(error.reason); // "unavailable" | "failed"
 *   }
 * }
 * ```
 *
 * @module
 */
import postgres from "postgres";
import type { Database } from "./database.types.ts";

type Tables = Database["public"]["Tables"];
type IngestRow = Database["public"]["Functions"]["ingest_interactions"]["Returns"][number];

/** Connections one function process keeps open at most. */
const POOL_SIZE = 8;
/** Seconds to wait for a connection to open. */
const CONNECT_TIMEOUT_S = 5;
/** Milliseconds a statement may run before Postgres cancels it, unless the environment says. */
const DEFAULT_STATEMENT_TIMEOUT_MS = 10_000;
/** Milliseconds a call may outlast the statement timeout before it is given up. */
const DEADLINE_MARGIN_MS = 2_000;
/** Milliseconds a call may wait for a free connection, at most (and no longer than its statement timeout). */
const MAX_QUEUE_WAIT_MS = 5_000;

/**
 * What kept a database call from storing a request, in more detail than
 * {@link DatabaseError.reason}: Postgres could not be reached, was too busy
 * (no free connection, a lock, a deadlock, no resources), did not finish the
 * statement within its timeout, takes no writes right now, did not answer at
 * all, or the connection was lost; or any other error (`failed`).
 */
export type DatabaseSituation =
  | "unreachable"
  | "busy"
  | "statement_timeout"
  | "read_only"
  | "no_answer"
  | "connection_lost"
  | "failed";

/**
 * Why a database call failed: `unavailable` when Postgres could not be
 * reached or did not answer in time (worth retrying soon), `failed` for any
 * other database error; `situation` says which. Nothing of the call is
 * half-written: it committed whole or not at all. `maybeStored` says it may
 * have committed: the connection was lost, or the answer did not come, after
 * the statement was sent; a retry with the same event ids is then
 * recognised as duplicates.
 */
export class DatabaseError extends Error {
  constructor(
    readonly situation: DatabaseSituation,
    message: string,
    options?: ErrorOptions & { maybeStored?: boolean },
  ) {
    super(message, options);
    this.name = "DatabaseError";
    this.reason = situation === "failed" ? "failed" : "unavailable";
    this.maybeStored = options?.maybeStored ?? false;
  }

  readonly reason: "unavailable" | "failed";
  readonly maybeStored: boolean;
}

/**
 * One event for `public.ingest_interactions`, in the shape its `p_events`
 * documents: the columns of a `user_interactions` row (types generated from
 * the schema by `scripts/gen-types`) plus the event's index in the request,
 * and `event_id_generated` when the client sent no `eventId` and `event_id`
 * was made up for it.
 */
export type IngestEvent =
  & Required<
    Pick<
      Tables["user_interactions"]["Insert"],
      | "event_id"
      | "session_id"
      | "anonymous_id"
      | "event_type"
      | "entity_type"
      | "entity_id"
      | "occurred_at"
      | "client_timestamp"
      | "received_at"
    >
  >
  & { index: number; metadata: Record<string, unknown>; event_id_generated?: true };

/** What `public.ingest_interactions` decided for one event it did not accept. */
export type IngestOutcome = Omit<IngestRow, "outcome" | "path" | "reason"> & {
  outcome: "duplicate" | "rejected";
  /** The request field a rejection is about ("sessionId", "eventType"...); null otherwise. */
  path: string | null;
  reason: string | null;
};

/** The shared rate limit a request is charged to, in the statement that stores it. */
export interface RateLimitCharge {
  /** The principal: `user:<id>` or `ip:<address>`. */
  key: string;
  /** Events in the request, valid or not. */
  events: number;
  requestsPerMinute: number;
  eventsPerMinute: number;
}

/** One request's worth of work for the database. */
export interface IngestRequest {
  /** The signed-in user from the verified JWT, or null for an anonymous caller. */
  userId: string | null;
  /** The events that passed validation. */
  events: IngestEvent[];
  /** The events refused before the database, recorded in `system_errors`. */
  rejected: unknown[];
  /** Request context stored with the rejections. */
  context: Record<string, unknown>;
  /** The rate limit to charge first (none when limits are off); nothing is stored if it refuses. */
  rateLimit?: RateLimitCharge;
}

/**
 * How many events were stored and the outcome of each one that was not (a
 * duplicate or a rejection, in index order), or the rate limit's refusal
 * (then nothing was stored or logged).
 */
export type IngestResult =
  | { allowed: true; accepted: number; notAccepted: IngestOutcome[] }
  | { allowed: false; retryAfterSeconds: number };

/**
 * A row of the rate-limited call: the limit's decision, then one event's
 * outcome (all null when refused, or when the request had no valid event).
 */
type LimitedRow =
  & { allowed: boolean; retry_after_s: number }
  & {
    [K in keyof IngestOutcome]: IngestOutcome[K] | null;
  };

let client: postgres.Sql | undefined;
let statementMs = DEFAULT_STATEMENT_TIMEOUT_MS;

function statementTimeoutMs(): number {
  const value = Deno.env.get("TRACK_DB_STATEMENT_TIMEOUT_MS");
  if (value === undefined || value.trim() === "") return DEFAULT_STATEMENT_TIMEOUT_MS;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 1) {
    throw new Error(
      `TRACK_DB_STATEMENT_TIMEOUT_MS must be a whole number of milliseconds, 1 or more, not "${value}"`,
    );
  }
  return ms;
}

function sql(): postgres.Sql {
  if (client) return client;
  const url = Deno.env.get("SUPABASE_DB_URL");
  if (!url) throw new DatabaseError("unreachable", "SUPABASE_DB_URL is not set");
  const timeoutMs = statementTimeoutMs();
  statementMs = timeoutMs;
  client = postgres(url, {
    prepare: false,
    // Reconnect quickly once Postgres is back: the default backoff grows to
    // 20 s, shared by the whole pool, and requests would wait out their
    // deadline although the database answers again.
    backoff: (attempt: number) => Math.min(0.05 * 2 ** attempt, 0.5),
    max: POOL_SIZE,
    // No array parameters are sent, so the array types need not be read at
    // connect time; that read, when its connection is closed, fails where
    // postgres.js lets the failure go unhandled.
    fetch_types: false,
    connect_timeout: CONNECT_TIMEOUT_S,
    idle_timeout: 60,
    onnotice: () => {},
    connection: {
      application_name: "track",
      statement_timeout: timeoutMs,
    },
  });
  return client;
}

/** SQLSTATE codes and classes, and what each says of a database that failed a call for now. */
const transientStates: ReadonlyArray<[RegExp, DatabaseSituation]> = [
  // Connection exceptions; the server shutting down or starting up.
  [/^(08|57P0[1-3])/, "unreachable"],
  [/^57014$/, "statement_timeout"],
  // Insufficient resources, a lock not granted, serialization failure, deadlock.
  [/^(53|55P03|40001|40P01)/, "busy"],
  [/^25006$/, "read_only"],
];
/** postgres.js and socket error codes that mean no connection could be made. */
const unreachableCodes = new Set([
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
/**
 * Codes that mean a connection was lost, maybe after the statement went out
 * and even after it committed: the answer is all that is known to be lost.
 */
const lostCodes = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
]);

function situationOf(code: string): DatabaseSituation {
  if (lostCodes.has(code)) return "connection_lost";
  if (unreachableCodes.has(code)) return "unreachable";
  return transientStates.find(([states]) => states.test(code))?.[1] ?? "failed";
}

function classify(error: unknown): DatabaseError {
  if (error instanceof DatabaseError) return error;
  const code = (error as { code?: unknown })?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code !== "string") return new DatabaseError("failed", message, { cause: error });
  const situation = situationOf(code);
  return new DatabaseError(situation, message, {
    cause: error,
    maybeStored: situation === "connection_lost",
  });
}

/** Message of the error a call gets when Postgres does not answer in time. */
export const NO_ANSWER = "no answer from the database in time";
/** Message of the error a call gets when no connection was free for it in time. */
export const NO_CONNECTION = "no database connection was free in time";

function maxQueueWaitMs(statementTimeoutMs: number): number {
  return Math.min(MAX_QUEUE_WAIT_MS, statementTimeoutMs);
}

/**
 * How long a call may take at most before it is answered as failed, for a
 * statement timeout: the wait for a connection, the statement, and a margin.
 * Past it, the server is taken to have gone silent.
 */
export function callDeadlineMs(statementTimeoutMs: number): number {
  return maxQueueWaitMs(statementTimeoutMs) + statementTimeoutMs + DEADLINE_MARGIN_MS;
}

/** A query as postgres.js keeps it: `state` is set once a connection has taken it. */
interface Query {
  state?: unknown;
  cancel(): void;
}

function deadline(
  ms: number,
  onExpiry: () => void,
): { promise: Promise<never>; clear: () => void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onExpiry();
      reject(
        new DatabaseError("no_answer", `${NO_ANSWER} (${ms} ms)`, { maybeStored: true }),
      );
    }, ms);
  });
  return { promise, clear: () => clearTimeout(timer) };
}

/**
 * Drops a client whose statement outlived its deadline, with all its
 * connections: the next call makes a new one. A server that went silent
 * would otherwise keep each such connection busy for good, and the pool
 * would run out for every later call, the database back or not. (Cancelling
 * the one statement would not free its connection either, and postgres.js
 * opens the cancel's connection where nobody can catch its failure.)
 */
function retire(db: postgres.Sql): void {
  if (client === db) client = undefined;
  db.end({ timeout: 0 }).catch(() => {});
}

/**
 * Stores one request's events with a single call to
 * `public.ingest_interactions`, one statement and one transaction: all of it
 * commits or none. With `rateLimit`, the same statement first charges the
 * request to `public.consume_rate_limit`, and the ingestion does not run at
 * all when that refuses. Returns how many events were accepted and the
 * outcome of the others, or the refusal, or throws a {@link DatabaseError}.
 *
 * Only the events not accepted come back over the wire: the function
 * answers one row per event, so the accepted ones are the rest, and a batch
 * of 500 good events costs one row to read instead of 500.
 */
export async function ingestInteractions(request: IngestRequest): Promise<IngestResult> {
  let query: Query | undefined;
  let gaveUpWaiting = false;
  try {
    const db = sql();
    // A call still waiting for a connection is taken out of the queue: the
    // database is busy, and nothing of the call went out.
    const queueWaitMs = maxQueueWaitMs(statementMs);
    const waiting = setTimeout(() => {
      if (query && !query.state) {
        gaveUpWaiting = true;
        query.cancel();
      }
    }, queueWaitMs);
    // Once sent, a statement is ended by Postgres within its statement
    // timeout: an answer later than that by the margin means the server has
    // gone silent.
    const timeout = deadline(callDeadlineMs(statementMs), () => retire(db));
    const running = run(db, request, (taken) => (query = taken));
    // Past the deadline nobody awaits the call any more, and its failure,
    // when its connection is closed, must not go unhandled.
    running.catch(() => {});
    try {
      return await Promise.race([running, timeout.promise]);
    } finally {
      clearTimeout(waiting);
      timeout.clear();
    }
  } catch (error) {
    if (gaveUpWaiting) {
      throw new DatabaseError("busy", NO_CONNECTION, { cause: error });
    }
    const failure = classify(error);
    // Never taken by a connection (its client retired meanwhile, say):
    // nothing of it reached Postgres, whatever the error.
    if (failure.maybeStored && query && !query.state) {
      throw new DatabaseError(failure.situation, failure.message, { cause: error });
    }
    throw failure;
  }
}

async function run(
  db: postgres.Sql,
  request: IngestRequest,
  made: (query: Query) => void,
): Promise<IngestResult> {
  const ingest = db`
    public.ingest_interactions(
      ${request.userId}::uuid,
      ${db.json(request.events as unknown as postgres.JSONValue)}::jsonb,
      ${db.json(request.rejected as postgres.JSONValue)}::jsonb,
      ${db.json(request.context as postgres.JSONValue)}::jsonb
    )
  `;
  const stored = (notAccepted: IngestOutcome[]): IngestResult => ({
    allowed: true,
    accepted: request.events.length - notAccepted.length,
    notAccepted,
  });
  const limit = request.rateLimit;
  if (!limit) {
    const query = db<IngestOutcome[]>`
      select i.event_index, i.event_id, i.outcome, i.path, i.reason
      from ${ingest} as i
      where i.outcome <> 'accepted'
    `;
    made(query as unknown as Query);
    return stored(await query);
  }
  // `offset 0` keeps the subquery from being merged into the join: its
  // `where l.allowed` then gates the ingestion (a one-time filter) instead of
  // filtering the rows of an ingestion that already ran.
  const query = db<LimitedRow[]>`
    select l.allowed, l.retry_after_s, r.event_index, r.event_id, r.outcome, r.path, r.reason
    from public.consume_rate_limit(
      ${limit.key}::text,
      ${limit.events}::integer,
      ${limit.requestsPerMinute}::integer,
      ${limit.eventsPerMinute}::integer
    ) as l
    left join lateral (
      select * from ${ingest} as i
      where l.allowed and i.outcome <> 'accepted'
      offset 0
    ) as r on true
  `;
  made(query as unknown as Query);
  const rows = await query;
  if (!rows[0].allowed) return { allowed: false, retryAfterSeconds: rows[0].retry_after_s };
  return stored(
    rows
      .filter((row) => row.event_index !== null)
      .map(({ event_index, event_id, outcome, path, reason }) =>
        ({ event_index, event_id, outcome, path, reason }) as IngestOutcome
      ),
  );
}
