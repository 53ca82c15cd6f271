/**
 * The database side of a function: one postgres.js client per process, made
 * on first use from `SUPABASE_DB_URL` and reused by every request, and the
 * one call the `track` function makes per request.
 *
 * `prepare: false` keeps it working behind Supavisor in transaction mode. The
 * statement timeout is set for the session at connect time, and a deadline a
 * little longer guards against a server that stops answering altogether.
 *
 * @example
 * ```ts
 * import { DatabaseError, ingestInteractions } from "./db.ts";
 * try {
 *   const outcomes = await ingestInteractions({ userId, events, rejected, context });
 * } catch (error) {
 *   if (error instanceof DatabaseError) console.error(error.reason); // "unavailable" | "failed"
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
/** Milliseconds a statement may run before Postgres cancels it. */
const STATEMENT_TIMEOUT_MS = 10_000;
/** Milliseconds after which a call is given up even if Postgres never answers. */
const CALL_DEADLINE_MS = STATEMENT_TIMEOUT_MS + 2_000;

/**
 * Why a database call failed: `unavailable` when Postgres could not be
 * reached or did not answer in time (worth retrying soon), `failed` for any
 * other database error. Either way nothing of the call was committed.
 */
export class DatabaseError extends Error {
  constructor(
    readonly reason: "unavailable" | "failed",
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "DatabaseError";
  }
}

/**
 * One event for `public.ingest_interactions`, in the shape its `p_events`
 * documents: the columns of a `user_interactions` row (types generated from
 * the schema by `scripts/gen-types`) plus the event's index in the request.
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
  & { index: number; metadata: Record<string, unknown> };

/** What `public.ingest_interactions` decided for one event. */
export type IngestOutcome = Omit<IngestRow, "outcome" | "path" | "reason"> & {
  outcome: "accepted" | "duplicate" | "rejected";
  /** The request field a rejection is about ("sessionId", "eventType"...); null otherwise. */
  path: string | null;
  reason: string | null;
};

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
}

let client: postgres.Sql | undefined;

function sql(): postgres.Sql {
  if (client) return client;
  const url = Deno.env.get("SUPABASE_DB_URL");
  if (!url) throw new DatabaseError("unavailable", "SUPABASE_DB_URL is not set");
  client = postgres(url, {
    prepare: false,
    max: POOL_SIZE,
    connect_timeout: CONNECT_TIMEOUT_S,
    idle_timeout: 60,
    onnotice: () => {},
    connection: {
      application_name: "track",
      statement_timeout: STATEMENT_TIMEOUT_MS,
    },
  });
  return client;
}

/** SQLSTATE codes and classes that mean Postgres is down, busy or too slow right now. */
const unavailableStates = /^(08|53|57P0[1-3]|57014|40001|40P01|55P03|25006)/;
/** postgres.js and socket error codes that mean the connection failed. */
const unavailableCodes = new Set([
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

function classify(error: unknown): DatabaseError {
  if (error instanceof DatabaseError) return error;
  const code = (error as { code?: unknown })?.code;
  const message = error instanceof Error ? error.message : String(error);
  const unavailable = typeof code === "string" &&
    (unavailableCodes.has(code) || unavailableStates.test(code));
  return new DatabaseError(unavailable ? "unavailable" : "failed", message, { cause: error });
}

function deadline(ms: number): { promise: Promise<never>; clear: () => void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DatabaseError("unavailable", `no answer from the database in ${ms} ms`)),
      ms,
    );
  });
  return { promise, clear: () => clearTimeout(timer) };
}

/**
 * Stores one request's events with a single call to
 * `public.ingest_interactions`, one transaction: all of it commits or none.
 * Returns the function's outcome for each event, or throws a
 * {@link DatabaseError}.
 */
export async function ingestInteractions(request: IngestRequest): Promise<IngestOutcome[]> {
  const timeout = deadline(CALL_DEADLINE_MS);
  try {
    const db = sql();
    const query = db<IngestOutcome[]>`
      select event_index, event_id, outcome, path, reason
      from public.ingest_interactions(
        ${request.userId}::uuid,
        ${db.json(request.events as unknown as postgres.JSONValue)}::jsonb,
        ${db.json(request.rejected as postgres.JSONValue)}::jsonb,
        ${db.json(request.context as postgres.JSONValue)}::jsonb
      )
    `;
    return await Promise.race([query, timeout.promise]);
  } catch (error) {
    throw classify(error);
  } finally {
    timeout.clear();
  }
}
