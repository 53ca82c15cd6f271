/**
 * What the dashboard shows, read from the analysts' views in one read-only
 * snapshot: sessions, visitors and bounce rate per day
 * (`public.daily_engagement`), the distribution of engagement scores
 * (`public.session_metrics`), the discovery-to-action funnel
 * (`public.event_funnel_since`, the funnel of `public.event_funnel` over the
 * window) and the most active entities (counted as
 * `public.entity_engagement_daily` counts them).
 *
 * Everything covers the window, the last `days` UTC days, today included.
 * The interactions of the window are read by a range on `occurred_at`, so
 * that Postgres reads only the monthly partitions of
 * `public.user_interactions` the window falls in: the cost of a summary
 * follows the window, not the history kept.
 *
 * The types are shared with the page (`page/app.ts`), which imports them only
 * as types.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * import { readSummary } from "./summary.ts";
 *
 * async function sessionsPerDay(sql: postgres.Sql) {
 *   const summary = await readSummary(sql, 30);
 *   return summary.daily.map((row) => [row.day, row.sessions]);
 * }
 * ```
 *
 * @module
 */
import type postgres from "postgres";

/** The last `days` UTC days, today included: `firstDay` to `lastDay` as `YYYY-MM-DD`. */
export interface SummaryWindow {
  days: number;
  firstDay: string;
  lastDay: string;
}

/** The sessions that started in the window, taken together. */
export interface SessionTotals {
  sessions: number;
  bouncedSessions: number;
  /** Percent of the sessions that bounced, 2 decimals; null without sessions. */
  bounceRate: number | null;
  /** 2 decimals; null without sessions. */
  avgEngagementScore: number | null;
}

/** One row of `public.daily_engagement`. */
export interface DailyEngagement {
  day: string;
  sessions: number;
  users: number;
  avgDurationMs: number;
  avgEngagementScore: number;
  bounceRate: number;
}

/** How many of the window's sessions scored `from` to `to` (both included). */
export interface ScoreBucket {
  label: string;
  from: number;
  to: number;
  sessions: number;
}

/**
 * The window's funnel summed over every event: visitor-and-event pairs at each
 * step, counted from the window's interactions only.
 */
export interface FunnelTotals {
  events: number;
  viewers: number;
  clickers: number;
  ticketClickers: number;
  attendees: number;
}

/** One row of `public.event_funnel_since` for the window. */
export interface EventFunnel {
  entityId: string;
  viewers: number;
  clickers: number;
  ticketClickers: number;
  attendees: number;
  viewToClickPct: number | null;
  clickToTicketClickPct: number | null;
  viewToTicketClickPct: number | null;
  viewToAttendancePct: number | null;
}

/** One entity's interactions in the window, in all and per event type. */
export interface EntityActivity {
  entityType: string;
  entityId: string;
  interactions: number;
  byEventType: Record<string, number>;
}

/** The answer of `GET /dashboard/api/summary`. */
export interface Summary {
  window: SummaryWindow;
  totals: SessionTotals;
  /** Days of the window with sessions, oldest first. */
  daily: DailyEngagement[];
  /** Ten buckets: 0-9, 10-19, ..., 80-89, 90-100. */
  scoreDistribution: ScoreBucket[];
  /** The funnel of the window's interactions. */
  funnel: FunnelTotals;
  /** The 10 events with the most viewers in the window (ties by entity_id). */
  topEvents: EventFunnel[];
  /** The 10 entities with the most interactions in the window (ties by type, then id). */
  topEntities: EntityActivity[];
}

/** How many days the window may span. */
export const maxDays = 366;
/** How many events and entities the top lists hold. */
export const topCount = 10;

/** The ten score buckets, the last one closed at 100. */
export const scoreBuckets: ReadonlyArray<{ label: string; from: number; to: number }> = Array.from(
  { length: 10 },
  (_, index) => {
    const from = index * 10;
    const to = index === 9 ? 100 : from + 9;
    return { label: `${from}-${to}`, from, to };
  },
);

// postgres.js hands bigint and numeric over as strings.
const num = (value: unknown): number => Number(value);
const numOrNull = (value: unknown): number | null => value === null ? null : Number(value);

/**
 * The query of the {@link topCount} entities with the most interactions that
 * happened from `from` (included) to `to` (excluded), both timestamptz as
 * text: the sums of `public.entity_engagement_daily.interactions` over those
 * days, counted straight from `public.user_interactions` by a range on
 * `occurred_at` (the view's day, an expression of it, would make Postgres
 * read every partition). A fragment: await it, or nest it in `explain`.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * import { topEntitiesQuery } from "./summary.ts";
 *
 * async function planOfToday(sql: postgres.Sql) {
 *   const today = new Date().toISOString().slice(0, 10);
 *   return await sql`explain ${
 *     topEntitiesQuery(sql, `${today}T00:00:00Z`, new Date().toISOString())
 *   }`;
 * }
 * ```
 */
export function topEntitiesQuery(
  sql: postgres.Sql | postgres.TransactionSql,
  from: string,
  to: string,
) {
  return sql`
    with per_event_type as (
      select ui.entity_type, ui.entity_id, ui.event_type, count(*) as interactions
      from public.user_interactions as ui
      where ui.occurred_at >= ${from}::timestamptz and ui.occurred_at < ${to}::timestamptz
      group by ui.entity_type, ui.entity_id, ui.event_type
    )
    select
      p.entity_type,
      p.entity_id,
      sum(p.interactions) as interactions,
      jsonb_object_agg(p.event_type, p.interactions) as by_event_type
    from per_event_type as p
    group by p.entity_type, p.entity_id
    order by interactions desc, p.entity_type, p.entity_id
    limit ${topCount}
  `;
}

/** Reads the summary of the last `days` days (1 to {@link maxDays}) as whoever `sql` logs in as. */
export async function readSummary(sql: postgres.Sql, days: number): Promise<Summary> {
  if (!Number.isInteger(days) || days < 1 || days > maxDays) {
    throw new RangeError(`days must be an integer from 1 to ${maxDays}`);
  }
  return await sql.begin("isolation level repeatable read read only", async (tx) => {
    const [window] = await tx`
      select
        ((now() at time zone 'utc')::date - ${days - 1}::integer)::text as first_day,
        (now() at time zone 'utc')::date::text as last_day,
        -- Sessions belong to the UTC day they started on, as in daily_engagement.
        ((((now() at time zone 'utc')::date - ${days - 1}::integer)::timestamp)
          at time zone 'utc')::text as window_start,
        ((((now() at time zone 'utc')::date + 1)::timestamp) at time zone 'utc')::text
          as window_end
    `;
    const firstDay: string = window.first_day;
    const lastDay: string = window.last_day;
    const windowStart: string = window.window_start;
    const windowEnd: string = window.window_end;

    const daily = await tx`
      select
        d.day::text as day,
        d.sessions,
        d.users,
        d.avg_duration_ms,
        d.avg_engagement_score,
        d.bounce_rate
      from public.daily_engagement as d
      where d.day between ${firstDay}::date and ${lastDay}::date
      order by d.day
    `;

    const [totals] = await tx`
      select
        count(*) as sessions,
        count(*) filter (where m.bounce_rate = 100) as bounced_sessions,
        round(100.0 * count(*) filter (where m.bounce_rate = 100) / nullif(count(*), 0), 2)
          as bounce_rate,
        round(avg(m.engagement_score), 2) as avg_engagement_score
      from public.session_metrics as m
      where m.started_at >= ${windowStart}::timestamptz
    `;

    const buckets = await tx`
      select least(m.engagement_score / 10, 9) as bucket, count(*) as sessions
      from public.session_metrics as m
      where m.started_at >= ${windowStart}::timestamptz
      group by 1
    `;
    const sessionsPerBucket = new Map(buckets.map((row) => [num(row.bucket), num(row.sessions)]));

    // One pass over the window's funnel: the totals ride along as window aggregates.
    const funnelRows = await tx`
      select
        f.entity_id,
        f.viewers,
        f.clickers,
        f.ticket_clickers,
        f.attendees,
        f.view_to_click_pct,
        f.click_to_ticket_click_pct,
        f.view_to_ticket_click_pct,
        f.view_to_attendance_pct,
        count(*) over () as total_events,
        sum(f.viewers) over () as total_viewers,
        sum(f.clickers) over () as total_clickers,
        sum(f.ticket_clickers) over () as total_ticket_clickers,
        sum(f.attendees) over () as total_attendees
      from public.event_funnel_since(${windowStart}::timestamptz) as f
      order by f.viewers desc, f.entity_id
      limit ${topCount}
    `;
    const first = funnelRows[0];

    const entities = await topEntitiesQuery(tx, windowStart, windowEnd);

    return {
      window: { days, firstDay, lastDay },
      totals: {
        sessions: num(totals.sessions),
        bouncedSessions: num(totals.bounced_sessions),
        bounceRate: numOrNull(totals.bounce_rate),
        avgEngagementScore: numOrNull(totals.avg_engagement_score),
      },
      daily: daily.map((row) => ({
        day: row.day,
        sessions: num(row.sessions),
        users: num(row.users),
        avgDurationMs: num(row.avg_duration_ms),
        avgEngagementScore: num(row.avg_engagement_score),
        bounceRate: num(row.bounce_rate),
      })),
      scoreDistribution: scoreBuckets.map((bucket, index) => ({
        ...bucket,
        sessions: sessionsPerBucket.get(index) ?? 0,
      })),
      funnel: {
        events: first ? num(first.total_events) : 0,
        viewers: first ? num(first.total_viewers) : 0,
        clickers: first ? num(first.total_clickers) : 0,
        ticketClickers: first ? num(first.total_ticket_clickers) : 0,
        attendees: first ? num(first.total_attendees) : 0,
      },
      topEvents: funnelRows.map((row) => ({
        entityId: row.entity_id,
        viewers: num(row.viewers),
        clickers: num(row.clickers),
        ticketClickers: num(row.ticket_clickers),
        attendees: num(row.attendees),
        viewToClickPct: numOrNull(row.view_to_click_pct),
        clickToTicketClickPct: numOrNull(row.click_to_ticket_click_pct),
        viewToTicketClickPct: numOrNull(row.view_to_ticket_click_pct),
        viewToAttendancePct: numOrNull(row.view_to_attendance_pct),
      })),
      topEntities: entities.map((row) => ({
        entityType: row.entity_type,
        entityId: row.entity_id,
        interactions: num(row.interactions),
        byEventType: Object.fromEntries(
          Object.entries(row.by_event_type as Record<string, unknown>).map((
            [type, count],
          ) => [type, num(count)]),
        ),
      })),
    };
  });
}
