/**
 * What a fault-injection run must leave behind, checked once every fault is
 * over and the clients' queues are drained:
 * - every event a client created is in `user_interactions` exactly once, with
 *   the user, anonymous id and session it was tracked with;
 * - every session's counts and times in `sessions` equal those recomputed
 *   from its raw rows;
 * - the function kept answering: every request got an answer within the
 *   bound, every 503 carried `Retry-After`, and no request failed with a 500.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * import type { Visitor } from "./load.ts";
 * import { checkStorage } from "./verify.ts";
 *
 * async function verify(sql: postgres.Sql, visitors: Visitor[]) {
 *   const created = new Map(visitors.flatMap((visitor) => [...visitor.created]));
 *   const figures = await checkStorage(sql, created);
 *   console.log(figures.lost, figures.duplicated); // 0 0
 * }
 * ```
 *
 * @module
 */
import type postgres from "postgres";
import type { CreatedEvent, RequestRecord } from "./load.ts";

/** The storage figures of a run. */
export interface StorageFigures {
  created: number;
  stored: number;
  /** Created events with no row. */
  lost: number;
  /** Rows beyond the first for one event id. */
  duplicated: number;
  /** Rows whose user, anonymous id or session is not the one the event was tracked with. */
  misattributed: number;
  /** A few of the lost event ids, to look up. */
  lostExamples: string[];
  /** When the function received the request that stored each event (epoch ms). */
  receivedAt: Map<string, number>;
}

/** Counts the rows of the created events. */
export async function checkStorage(
  sql: postgres.Sql,
  created: ReadonlyMap<string, CreatedEvent>,
): Promise<StorageFigures> {
  const ids = [...created.keys()];
  const rows = await sql<
    {
      event_id: string;
      user_id: string | null;
      anonymous_id: string | null;
      session_id: string;
      received_at: Date;
    }[]
  >`
    select event_id::text, user_id::text, anonymous_id, session_id::text, received_at
    from public.user_interactions
    where event_id = any (${ids}::uuid[])
  `;
  const copies = new Map<string, number>();
  const receivedAt = new Map<string, number>();
  let misattributed = 0;
  for (const row of rows) {
    copies.set(row.event_id, (copies.get(row.event_id) ?? 0) + 1);
    receivedAt.set(row.event_id, row.received_at.getTime());
    const expected = created.get(row.event_id)!;
    if (
      row.user_id !== expected.userId || row.anonymous_id !== expected.anonymousId ||
      row.session_id !== expected.sessionId
    ) misattributed++;
  }
  const lostIds = ids.filter((id) => !copies.has(id));
  let duplicated = 0;
  for (const count of copies.values()) duplicated += count - 1;
  return {
    created: ids.length,
    stored: copies.size,
    lost: lostIds.length,
    duplicated,
    misattributed,
    lostExamples: lostIds.slice(0, 5),
    receivedAt,
  };
}

/** Which attempt stored each event, by what its client was told. */
export interface StoringAttempts {
  /** Stored by a request answered 2xx: the normal case. */
  answeredOk: number;
  /** Stored by a request answered 503: its commit happened, its answer from Postgres was lost. */
  answered503: number;
  /** The same, by the phase in which the answer came. */
  answered503ByPhase: Record<string, number>;
  /** Stored by a request whose answer never reached the client (cut, reset). */
  answerLost: number;
  /** Stored by a request answered with another status. */
  answeredOther: number;
  /** The same, by status. */
  answeredOtherByStatus: Record<string, number>;
  /** Stored, but by no attempt the clients made, going by the times. */
  unmatched: number;
}

/**
 * Finds, for each stored event, the client request that stored it: the
 * attempt carrying the event during which the function received it (its row's
 * `received_at`, same machine clock). Attempts of one event never overlap:
 * the client does not resend an event that is in flight.
 */
export function storingAttempts(
  requests: readonly RequestRecord[],
  receivedAt: ReadonlyMap<string, number>,
): StoringAttempts {
  const figures: StoringAttempts = {
    answeredOk: 0,
    answered503: 0,
    answered503ByPhase: {},
    answerLost: 0,
    answeredOther: 0,
    answeredOtherByStatus: {},
    unmatched: 0,
  };
  const matched = new Set<string>();
  for (const request of requests) {
    const until = request.endedAt ?? Number.POSITIVE_INFINITY;
    for (const id of request.eventIds) {
      const at = receivedAt.get(id);
      if (at === undefined || matched.has(id) || at < request.startedAt || at > until) continue;
      matched.add(id);
      if (request.status === null) figures.answerLost++;
      else if (request.status >= 200 && request.status < 300) figures.answeredOk++;
      else if (request.status === 503) {
        figures.answered503++;
        const byPhase = figures.answered503ByPhase;
        byPhase[request.phase] = (byPhase[request.phase] ?? 0) + 1;
      } else figures.answeredOther++;
    }
  }
  figures.unmatched = receivedAt.size - matched.size;
  return figures;
}

/** The sessions check of a run. */
export interface SessionFigures {
  checked: number;
  /** Sessions whose row disagrees with its raw rows (or is missing). */
  mismatched: number;
  examples: string[];
}

/** Compares each session's row with the counts and times recomputed from its interactions. */
export async function checkSessions(
  sql: postgres.Sql,
  sessionIds: readonly string[],
): Promise<SessionFigures> {
  const rows = await sql<
    {
      id: string;
      found: boolean;
      interaction_count: number | null;
      page_views: number | null;
      starts_right: boolean;
      ends_right: boolean;
      interactions: number;
      views: number;
    }[]
  >`
    with raw as (
      select
        u.session_id,
        count(*)::integer as interactions,
        (count(*) filter (where u.event_type = 'view'))::integer as views,
        min(u.occurred_at) as first_at,
        max(u.occurred_at) as last_at
      from public.user_interactions u
      where u.session_id = any (${sessionIds}::uuid[])
      group by u.session_id
    )
    select
      ids.id::text as id,
      s.id is not null as found,
      s.interaction_count,
      s.page_views,
      s.started_at is not distinct from r.first_at as starts_right,
      s.last_seen_at is not distinct from r.last_at as ends_right,
      coalesce(r.interactions, 0) as interactions,
      coalesce(r.views, 0) as views
    from unnest(${sessionIds}::uuid[]) as ids (id)
    left join public.sessions s on s.id = ids.id
    left join raw r on r.session_id = ids.id
  `;
  const examples: string[] = [];
  let mismatched = 0;
  let checked = 0;
  for (const row of rows) {
    // A session whose events were all lost has no row, rightly; the events
    // are counted as lost instead.
    if (!row.found && row.interactions === 0) continue;
    checked++;
    const right = row.found && row.interaction_count === row.interactions &&
      row.page_views === row.views && row.starts_right && row.ends_right;
    if (right) continue;
    mismatched++;
    if (examples.length < 5) {
      examples.push(
        `session ${row.id}: row says ${row.interaction_count} interactions, ${row.page_views} views` +
          ` (times ${row.starts_right && row.ends_right ? "right" : "wrong"});` +
          ` raw rows say ${row.interactions}, ${row.views}`,
      );
    }
  }
  return { checked, mismatched, examples };
}

/** What the clients saw of the function during one phase (or the whole run). */
export interface AnswerFigures {
  requests: number;
  /** Answers by HTTP status. */
  statuses: Record<string, number>;
  /** Requests that failed without an answer (connection refused, reset, cut). */
  networkErrors: number;
  /** Requests with no answer within the bound (abandoned by the watchdog, or still waiting). */
  hung: number;
  /** Answers that came, but later than the bound. */
  late: number;
  /** 503 answers without `Retry-After`. */
  unavailableWithoutRetryAfter: number;
  /** Answers with status 500 (an unexpected error in the function). */
  internalErrors: number;
  /** Events the server counted as duplicates: retries of events already stored. */
  duplicateAnswers: number;
  maxLatencyMs: number;
}

/** Figures of no requests at all. */
export function noAnswers(): AnswerFigures {
  return summarizeAnswers([], 0);
}

/** Sums up the requests of a phase; `boundMs` is the longest acceptable wait for an answer. */
export function summarizeAnswers(
  requests: readonly RequestRecord[],
  boundMs: number,
  now = Date.now(),
): AnswerFigures {
  const figures: AnswerFigures = {
    requests: requests.length,
    statuses: {},
    networkErrors: 0,
    hung: 0,
    late: 0,
    unavailableWithoutRetryAfter: 0,
    internalErrors: 0,
    duplicateAnswers: 0,
    maxLatencyMs: 0,
  };
  for (const request of requests) {
    const latency = (request.endedAt ?? now) - request.startedAt;
    figures.maxLatencyMs = Math.max(figures.maxLatencyMs, latency);
    if (request.hung || request.endedAt === null) {
      figures.hung++;
      continue;
    }
    if (latency > boundMs) figures.late++;
    if (request.status === null) {
      figures.networkErrors++;
      continue;
    }
    const status = String(request.status);
    figures.statuses[status] = (figures.statuses[status] ?? 0) + 1;
    if (request.status === 503 && request.retryAfter === null) {
      figures.unavailableWithoutRetryAfter++;
    }
    if (request.status === 500) figures.internalErrors++;
    figures.duplicateAnswers += request.duplicates;
  }
  return figures;
}
