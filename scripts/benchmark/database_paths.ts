/**
 * The paths that bypass the `track` function, on the same tables and indexes:
 *
 * - the ceiling: the rows a request would store, loaded with `COPY` straight
 *   into `public.user_interactions`, plus the `public.sessions` upsert they
 *   imply, one transaction per batch (or one for everything, for the bulk
 *   figure);
 * - the SQL half of our path: the call to `public.ingest_interactions` the
 *   track function makes for a batch, made here directly, so that what
 *   Postgres can ingest through it is measured with no HTTP, gateway or
 *   function process competing for the cores;
 * - the naive path: one statement per event, each its own transaction, as a
 *   client writing rows one at a time would: it stores the row and upserts
 *   its session, so that it leaves the same `sessions` as the other paths.
 *
 * When the schema keeps event ids unique in a registry table
 * (`public.interaction_event_ids`, needed once `user_interactions` is
 * partitioned), the COPY and naive paths register each event id there too,
 * as storing an event then requires. Only the SQL half goes through the
 * ingestion function.
 *
 * @example
 * ```ts
 * import { copyJob, ingestJob, openStore, rowsOf, runCopy, runIngest } from "./database_paths.ts";
 * import type { Batch } from "./workload.ts";
 *
 * async function bothPaths(dbUrl: string, batches: Batch[]) {
 *   const store = await openStore(dbUrl, 16);
 *   const jobs = batches.map((batch) => copyJob(rowsOf(batch.events, batch.visitor, new Date())));
 *   const copied = await runCopy(store, jobs, 4, 5_000);
 *   const calls = batches.map((batch) => ingestJob(batch.events, batch.visitor, new Date()));
 *   const direct = await runIngest(store, calls, 4, 5_000, null);
 *   await store.sql.end();
 *   return { copied, direct };
 * }
 * ```
 *
 * @module
 */
import net from "node:net";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import postgres from "postgres";
import type { RateLimits } from "../../supabase/functions/track/rate_limit.ts";
import type { TrackEvent, Visitor } from "./workload.ts";

/** A client pool from postgres.js. */
export type Sql = postgres.Sql;

/** The database the benchmark loads: a connection pool and what its schema holds. */
export interface Store {
  sql: Sql;
  /** Whether event ids are kept unique in `public.interaction_event_ids`. */
  eventIdRegistry: boolean;
  /** Whether `public.user_interactions` is a partitioned table. */
  partitioned: boolean;
}

/** Connects with up to `max` connections and looks at the schema. */
export async function openStore(url: string, max: number): Promise<Store> {
  const sql = connect(url, max);
  const [{ registry, partitioned }] = await sql<{ registry: boolean; partitioned: boolean }[]>`
    select
      to_regclass('public.interaction_event_ids') is not null as registry,
      exists (
        select from pg_class
        where oid = to_regclass('public.user_interactions') and relkind = 'p'
      ) as partitioned
  `;
  return { sql, eventIdRegistry: registry, partitioned };
}

/**
 * A postgres.js pool of up to `max` connections whose sockets send at once
 * (TCP_NODELAY). Without it, a COPY's last small message waits for the
 * server's delayed ACK, about 40 ms, twice per transaction.
 */
function connect(url: string, max: number): Sql {
  const { hostname, port } = new URL(url);
  // postgres.js takes a `socket` factory its type declarations do not list.
  const options: postgres.Options<Record<string, postgres.PostgresType>> & {
    socket: () => Promise<net.Socket>;
  } = {
    max,
    onnotice: () => {},
    connection: { application_name: "bench" },
    socket: () =>
      new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect({ host: hostname, port: Number(port || 5432) });
        socket.setNoDelay(true);
        socket.once("connect", () => resolve(socket));
        socket.once("error", reject);
      }),
  };
  return postgres(url, options);
}

/** One `user_interactions` row, as text ready for COPY or a bound parameter. */
export interface InteractionRow {
  event_id: string;
  user_id: string | null;
  anonymous_id: string | null;
  session_id: string;
  event_type: string;
  entity_type: string;
  entity_id: string;
  metadata: string;
  occurred_at: string;
  client_timestamp: string;
  received_at: string;
}

const columns = [
  "event_id",
  "user_id",
  "anonymous_id",
  "session_id",
  "event_type",
  "entity_type",
  "entity_id",
  "metadata",
  "occurred_at",
  "client_timestamp",
  "received_at",
] as const;

/**
 * The rows the ingestion path stores for `events`: the batch is sent as it is
 * received, so each event's `occurred_at` is its own `timestamp`.
 */
export function rowsOf(events: TrackEvent[], visitor: Visitor, receivedAt: Date): InteractionRow[] {
  const received = receivedAt.toISOString();
  return events.map((event) => ({
    event_id: event.eventId,
    user_id: visitor.userId ?? null,
    anonymous_id: visitor.userId ? null : event.anonymousId ?? null,
    session_id: event.sessionId,
    event_type: event.eventType,
    entity_type: event.entityType,
    entity_id: event.entityId,
    metadata: JSON.stringify(event.metadata),
    occurred_at: event.timestamp,
    client_timestamp: event.timestamp,
    received_at: received,
  }));
}

const csvField = (value: string | null) => value === null ? "" : `"${value.replaceAll('"', '""')}"`;

/** A Postgres array literal of text values, for `unnest(...::type[])`. */
function arrayLiteral(values: ReadonlyArray<string | number | null>): string {
  return `{${
    values.map((v) =>
      v === null ? "NULL" : `"${String(v).replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`
    ).join(",")
  }}`;
}

/** A batch prepared for the COPY path: its CSV text and its sessions' aggregates. */
export interface CopyJob {
  rows: number;
  csv: string;
  /** `event_id,occurred_at` lines for the event id registry. */
  eventIdsCsv: string;
  sessions: {
    ids: string;
    userIds: string;
    anonymousIds: string;
    startedAt: string;
    lastSeenAt: string;
    interactions: string;
    pageViews: string;
  };
}

/** Prepares rows for {@link runCopy}: nothing is left to compute while the clock runs. */
export function copyJob(rows: InteractionRow[]): CopyJob {
  const csv = rows.map((row) => columns.map((c) => csvField(row[c])).join(",")).join("\n") + "\n";
  const bySession = new Map<
    string,
    {
      user: string | null;
      anon: string | null;
      first: string;
      last: string;
      n: number;
      views: number;
    }
  >();
  for (const row of rows) {
    const s = bySession.get(row.session_id);
    if (!s) {
      bySession.set(row.session_id, {
        user: row.user_id,
        anon: row.anonymous_id,
        first: row.occurred_at,
        last: row.occurred_at,
        n: 1,
        views: row.event_type === "view" ? 1 : 0,
      });
      continue;
    }
    if (row.occurred_at < s.first) s.first = row.occurred_at;
    if (row.occurred_at > s.last) s.last = row.occurred_at;
    s.n++;
    if (row.event_type === "view") s.views++;
  }
  // Sorted, so concurrent transactions lock session rows in the same order.
  const sessions = [...bySession.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
  return {
    rows: rows.length,
    csv,
    eventIdsCsv: rows.map((row) => `${row.event_id},${row.occurred_at}\n`).join(""),
    sessions: {
      ids: arrayLiteral(sessions.map(([id]) => id)),
      userIds: arrayLiteral(sessions.map(([, s]) => s.user)),
      anonymousIds: arrayLiteral(sessions.map(([, s]) => s.anon)),
      startedAt: arrayLiteral(sessions.map(([, s]) => s.first)),
      lastSeenAt: arrayLiteral(sessions.map(([, s]) => s.last)),
      interactions: arrayLiteral(sessions.map(([, s]) => s.n)),
      pageViews: arrayLiteral(sessions.map(([, s]) => s.views)),
    },
  };
}

/** What a database-side run achieved. */
export interface DbLoadResult {
  /** Transactions (COPY, SQL path) or statements (naive). */
  requests: number;
  events: number;
  wallSeconds: number;
  latenciesMs: number[];
  errors: number;
  failures: string[];
}

function emptyResult(): DbLoadResult {
  return { requests: 0, events: 0, wallSeconds: 0, latenciesMs: [], errors: 0, failures: [] };
}

/**
 * Loads one prepared batch in one transaction: the sessions upsert, then
 * COPY into the event id registry (when the schema has one) and into
 * `public.user_interactions`.
 */
export async function loadWithCopy(store: Store, job: CopyJob): Promise<void> {
  const s = job.sessions;
  await store.sql.begin(async (tx) => {
    await tx`
      insert into public.sessions as current
        (id, user_id, anonymous_id, started_at, last_seen_at, interaction_count, page_views)
      select *
      from unnest(
        ${s.ids}::uuid[], ${s.userIds}::uuid[], ${s.anonymousIds}::text[],
        ${s.startedAt}::timestamptz[], ${s.lastSeenAt}::timestamptz[],
        ${s.interactions}::integer[], ${s.pageViews}::integer[]
      )
      on conflict (id) do update set
        started_at = least(current.started_at, excluded.started_at),
        last_seen_at = greatest(current.last_seen_at, excluded.last_seen_at),
        interaction_count = current.interaction_count + excluded.interaction_count,
        page_views = current.page_views + excluded.page_views
    `;
    if (store.eventIdRegistry) {
      const ids = await tx`
        copy public.interaction_event_ids (event_id, occurred_at) from stdin with (format csv)
      `.writable();
      await pipeline(Readable.from([job.eventIdsCsv]), ids);
    }
    const writable = await tx`
      copy public.user_interactions (${tx(columns as unknown as string[])})
      from stdin with (format csv)
    `.writable();
    await pipeline(Readable.from([job.csv]), writable);
  });
}

/** Runs `concurrency` loaders over `jobs` until `durationMs` has passed or the jobs run out. */
export function runCopy(
  store: Store,
  jobs: CopyJob[],
  concurrency: number,
  durationMs: number,
): Promise<DbLoadResult> {
  return runJobs(jobs, concurrency, durationMs, (job) => loadWithCopy(store, job));
}

/** A batch for the SQL path: its caller and `p_events` as the track function would send them. */
export interface IngestJob {
  rows: number;
  userId: string | null;
  /** The principal the function charges the request to: `user:<id>` or `ip:<address>`. */
  rateLimitKey: string;
  /** `p_events` of `public.ingest_interactions`, as JSON text. */
  events: string;
}

/**
 * Prepares a batch for {@link runIngest}: the events as the track function
 * hands them to the database once it has validated them (each event's
 * `occurred_at` is its own `timestamp`, as in {@link rowsOf}).
 */
export function ingestJob(events: TrackEvent[], visitor: Visitor, receivedAt: Date): IngestJob {
  const received = receivedAt.toISOString();
  return {
    rows: events.length,
    userId: visitor.userId ?? null,
    rateLimitKey: visitor.userId ? `user:${visitor.userId}` : `ip:${visitor.address}`,
    events: JSON.stringify(events.map((event, index) => ({
      index,
      event_id: event.eventId,
      session_id: event.sessionId,
      anonymous_id: visitor.userId ? null : event.anonymousId ?? null,
      event_type: event.eventType,
      entity_type: event.entityType,
      entity_id: event.entityId,
      metadata: event.metadata,
      occurred_at: event.timestamp,
      client_timestamp: event.timestamp,
      received_at: received,
    }))),
  };
}

/**
 * Stores one batch with the statement the track function sends (see
 * `ingestInteractions` in `supabase/functions/_shared/db.ts`), one statement
 * and one transaction: with `limits`, the request is charged to the rate
 * limit in it first, as the function charges every request while limits are
 * on. Fails unless every event was accepted.
 */
export async function loadWithIngest(
  store: Store,
  job: IngestJob,
  limits: RateLimits | null,
): Promise<void> {
  // `::text` first: a string bound to a jsonb parameter would be sent as a JSON string.
  const ingest = store
    .sql`public.ingest_interactions(${job.userId}::uuid, ${job.events}::text::jsonb)`;
  const [{ allowed, accepted }] = limits
    ? await store.sql<{ allowed: boolean; accepted: number }[]>`
      select l.allowed, count(r.outcome) filter (where r.outcome = 'accepted')::integer as accepted
      from public.consume_rate_limit(
        ${job.rateLimitKey}::text, ${job.rows}::integer,
        ${limits.requestsPerMinute}::integer, ${limits.eventsPerMinute}::integer
      ) as l
      left join lateral (select i.outcome from ${ingest} as i where l.allowed offset 0) as r
        on true
      group by l.allowed
    `
    : await store.sql<{ allowed: boolean; accepted: number }[]>`
      select true as allowed, count(*)::integer as accepted
      from ${ingest} as i
      where i.outcome = 'accepted'
    `;
  if (!allowed) throw new Error("the rate limit refused the call; raise TRACK_RATE_LIMIT_*");
  if (accepted !== job.rows) {
    throw new Error(`${job.rows - accepted} of ${job.rows} events were not accepted`);
  }
}

/**
 * Runs `concurrency` callers of the ingestion function over `jobs`, like
 * {@link runCopy}, charging each call to `limits` as the function would.
 */
export function runIngest(
  store: Store,
  jobs: IngestJob[],
  concurrency: number,
  durationMs: number,
  limits: RateLimits | null,
): Promise<DbLoadResult> {
  return runJobs(jobs, concurrency, durationMs, (job) => loadWithIngest(store, job, limits));
}

async function runJobs<Job extends { rows: number }>(
  jobs: Job[],
  concurrency: number,
  durationMs: number,
  load: (job: Job) => Promise<void>,
): Promise<DbLoadResult> {
  const result = emptyResult();
  let next = 0;
  const start = performance.now();
  const end = start + durationMs;
  const worker = async () => {
    while (performance.now() < end && next < jobs.length) {
      const job = jobs[next++];
      const began = performance.now();
      try {
        await load(job);
        result.latenciesMs.push(performance.now() - began);
        result.events += job.rows;
      } catch (error) {
        result.errors++;
        if (result.failures.length < 5) result.failures.push(String(error));
      }
      result.requests++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  result.wallSeconds = (performance.now() - start) / 1000;
  return result;
}

/**
 * Stores rows one statement each, from `concurrency` clients, until time or
 * rows run out: the naive path. Each statement does the whole job for its
 * event, as the other paths do for theirs, so that all three leave the same
 * database state: it registers the event id (with a registry; otherwise
 * `on conflict (event_id) do nothing`), stores the row only when the id was
 * new, and then upserts its session with the arithmetic of {@link loadWithCopy}
 * (one more interaction, one more page view for a view, the earliest start,
 * the latest activity). An event counts as stored only when the statement
 * returned its row; one it skipped counts as an error, with a failure
 * saying so.
 */
export function runNaive(
  store: Store,
  rows: InteractionRow[],
  concurrency: number,
  durationMs: number,
): Promise<DbLoadResult> {
  const { sql } = store;
  const storeOne = (r: InteractionRow) => {
    const inserted = store.eventIdRegistry
      ? sql`
        registered as (
          insert into public.interaction_event_ids (event_id, occurred_at)
          values (${r.event_id}, ${r.occurred_at})
          on conflict (event_id) do nothing
          returning event_id
        ),
        inserted as (
          insert into public.user_interactions
            (event_id, user_id, anonymous_id, session_id, event_type, entity_type, entity_id,
             metadata, occurred_at, client_timestamp, received_at)
          select
            registered.event_id, ${r.user_id}, ${r.anonymous_id}, ${r.session_id},
            ${r.event_type}, ${r.entity_type}, ${r.entity_id}, ${r.metadata}::text::jsonb,
            ${r.occurred_at}, ${r.client_timestamp}, ${r.received_at}
          from registered
          returning session_id, user_id, anonymous_id, event_type, occurred_at
        )
      `
      : sql`
        inserted as (
          insert into public.user_interactions
            (event_id, user_id, anonymous_id, session_id, event_type, entity_type, entity_id,
             metadata, occurred_at, client_timestamp, received_at)
          values
            (${r.event_id}, ${r.user_id}, ${r.anonymous_id}, ${r.session_id}, ${r.event_type},
             ${r.entity_type}, ${r.entity_id}, ${r.metadata}::text::jsonb, ${r.occurred_at},
             ${r.client_timestamp}, ${r.received_at})
          on conflict (event_id) do nothing
          returning session_id, user_id, anonymous_id, event_type, occurred_at
        )
      `;
    return sql<{ stored: number }[]>`
      with ${inserted},
      counted as (
        insert into public.sessions as current
          (id, user_id, anonymous_id, started_at, last_seen_at, interaction_count, page_views)
        select
          i.session_id, i.user_id, i.anonymous_id, i.occurred_at, i.occurred_at, 1,
          case when i.event_type = 'view' then 1 else 0 end
        from inserted i
        on conflict (id) do update set
          started_at = least(current.started_at, excluded.started_at),
          last_seen_at = greatest(current.last_seen_at, excluded.last_seen_at),
          interaction_count = current.interaction_count + excluded.interaction_count,
          page_views = current.page_views + excluded.page_views
      )
      select count(*)::integer as stored from inserted
    `;
  };
  const jobs = rows.map((row) => ({ rows: 1, row }));
  return runJobs(jobs, concurrency, durationMs, async ({ row }) => {
    const [{ stored }] = await storeOne(row);
    if (stored !== 1) {
      throw new Error(`event ${row.event_id} was not stored: its id was already registered`);
    }
  });
}

/**
 * Empties the tables the benchmark loads, so each measurement starts from the
 * same state. The lock is asked for briefly and retried, so that a waiting
 * TRUNCATE never holds up other sessions for long.
 */
export async function truncateTables(store: Store): Promise<void> {
  const { sql } = store;
  for (let attempt = 1;; attempt++) {
    try {
      await sql.begin(async (tx) => {
        await tx`set local lock_timeout = '1s'`;
        await tx`truncate public.user_interactions, public.sessions, public.system_errors`;
        if (store.eventIdRegistry) await tx`truncate public.interaction_event_ids`;
      });
      break;
    } catch (error) {
      if ((error as { code?: string }).code !== "55P03" || attempt === 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  await sql`checkpoint`;
}
