/**
 * The analysts' dashboard at `/dashboard` on the local stack: its data
 * endpoint only answers a Postgres login the database accepts, connects as
 * that login, and returns what SQL on the views returns; the page, in
 * Chromium, signs in and draws every chart with data.
 *
 * Events are seeded through the real track function first. The database is
 * shared with other tests, so writes are held off while the endpoint and SQL
 * are compared.
 *
 * `DASHBOARD_URL` points the tests at another dashboard (default:
 * `${SUPABASE_URL}/dashboard`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { launchChromium } from "../../test_support/chromium.ts";
import type postgres from "postgres";
import {
  createUser,
  integrationTest,
  postTrack,
  sql,
  stack,
  type TrackResponse,
} from "../../test_support/stack.ts";
import {
  AnalystLogins,
  classifyFailure,
  DashboardBusy,
  DashboardTimeout,
  statementTimeoutMs,
} from "./logins.ts";
import { type Summary, topEntitiesQuery } from "./summary.ts";

const dashboardUrl = Deno.env.get("DASHBOARD_URL") ?? `${stack.url}/dashboard`;
const summaryUrl = `${dashboardUrl}/api/summary`;
const analyst = { user: "analyst_reader", password: "analyst" };
const challenge = 'Basic realm="dashboard"';

function basic(user: string, password: string): string {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  return `Basic ${btoa(Array.from(bytes, (byte) => String.fromCharCode(byte)).join(""))}`;
}

async function getSummary(
  authorization?: string,
  query = "",
): Promise<{ status: number; headers: Headers; body: unknown }> {
  const response = await fetch(`${summaryUrl}${query}`, {
    headers: authorization === undefined ? {} : { Authorization: authorization },
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

// Seeds, once, three sessions through the track function: a signed-in
// visitor who goes through the whole funnel of one event, an anonymous one
// who bounces, and an anonymous one who views, clicks and browses an artist.
let seeded: Promise<{ eventEntity: string; artistEntity: string }> | undefined;
function seed() {
  seeded ??= (async () => {
    const eventEntity = `dashboard-event-${crypto.randomUUID()}`;
    const artistEntity = `dashboard-artist-${crypto.randomUUID()}`;
    const now = Date.now();
    const at = (minutesAgo: number) => new Date(now - minutesAgo * 60_000).toISOString();
    const event = (fields: Record<string, unknown>) => ({
      eventId: crypto.randomUUID(),
      ...fields,
    });
    const user = await createUser();

    const signedIn = crypto.randomUUID();
    const answers: TrackResponse[] = [];
    answers.push(
      await postTrack({
        events: [
          event({ eventType: "view", entityType: "event", entityId: eventEntity }),
          event({ eventType: "click", entityType: "event", entityId: eventEntity }),
          event({
            eventType: "ticket_click",
            entityType: "ticket_link",
            entityId: `dashboard-ticket-${crypto.randomUUID()}`,
            metadata: { event_id: eventEntity, vendor: "Ticketmaster", price: 59 },
          }),
          event({
            eventType: "attendance",
            entityType: "event",
            entityId: eventEntity,
            metadata: { attended: true },
          }),
        ].map((fields, index) => ({
          ...fields,
          sessionId: signedIn,
          timestamp: at(6 - 2 * index),
        })),
      }, { token: user.token }),
    );

    const bouncer = crypto.randomUUID();
    answers.push(
      await postTrack(
        event({
          sessionId: bouncer,
          anonymousId: `dashboard-${bouncer}`,
          eventType: "view",
          entityType: "event",
          entityId: eventEntity,
          timestamp: at(3),
        }),
      ),
    );

    const browser = crypto.randomUUID();
    const anonymous = { sessionId: browser, anonymousId: `dashboard-${browser}` };
    answers.push(
      await postTrack({
        events: [
          event({
            eventType: "view",
            entityType: "event",
            entityId: eventEntity,
            timestamp: at(4),
          }),
          event({
            eventType: "click",
            entityType: "event",
            entityId: eventEntity,
            timestamp: at(3),
          }),
          ...[2, 1, 0].map((minutes) =>
            event({
              eventType: "view",
              entityType: "artist",
              entityId: artistEntity,
              metadata: { artist_name: "The Weeknd" },
              timestamp: at(minutes),
            })
          ),
        ].map((fields) => ({ ...fields, ...anonymous })),
      }),
    );

    assert.deepEqual(
      answers.map(({ status, body }) => ({ status, body })),
      [
        { status: 200, body: { accepted: 4, duplicates: 0, rejected: [] } },
        { status: 200, body: { accepted: 1, duplicates: 0, rejected: [] } },
        { status: 200, body: { accepted: 5, duplicates: 0, rejected: [] } },
      ],
    );
    return { eventEntity, artistEntity };
  })();
  return seeded;
}

// Round half away from zero to 2 decimals, of the exact ratio 100 * part / whole,
// as Postgres's round(numeric, 2) does.
function percentOf(part: number, whole: number): number {
  return Math.floor((20_000 * part + whole) / (2 * whole)) / 100;
}

/**
 * What the summary should say, read as `postgres` straight from the views,
 * computed independently of the endpoint where the views leave room to.
 */
async function expectedSummary(sql: postgres.TransactionSql, days: number): Promise<Summary> {
  const [{ first_day: firstDay, last_day: lastDay, window_start: windowStart }] = await sql`
    select
      ((now() at time zone 'utc')::date - ${days - 1}::integer)::text as first_day,
      (now() at time zone 'utc')::date::text as last_day,
      (((now() at time zone 'utc')::date - ${days - 1}::integer)::timestamp at time zone 'utc')
        as window_start
  `;
  const daily = await sql`
    select day::text, sessions, users, avg_duration_ms, avg_engagement_score, bounce_rate
    from public.daily_engagement
    where day >= ${firstDay}::date and day <= ${lastDay}::date
    order by day
  `;
  const sessions = await sql`
    select engagement_score, bounce_rate
    from public.session_metrics
    where (started_at at time zone 'utc')::date >= ${firstDay}::date
  `;
  const scores = sessions.map((row) => Number(row.engagement_score));
  const bounced = sessions.filter((row) => Number(row.bounce_rate) === 100).length;
  const scoreSum = scores.reduce((sum, score) => sum + score, 0);
  const funnel = await sql`
    select entity_id, viewers, clickers, ticket_clickers, attendees, view_to_click_pct,
      click_to_ticket_click_pct, view_to_ticket_click_pct, view_to_attendance_pct
    from public.event_funnel_since(${windowStart})
  `;
  const total = (column: string) => funnel.reduce((sum, row) => sum + Number(row[column]), 0);
  const topEvents = [...funnel]
    .sort((a, b) => Number(b.viewers) - Number(a.viewers) || (a.entity_id < b.entity_id ? -1 : 1))
    .slice(0, 10);
  const entityRows = await sql`
    with ranked as (
      select entity_type, entity_id, sum(interactions) as interactions
      from public.entity_engagement_daily
      where day >= ${firstDay}::date and day <= ${lastDay}::date
      group by entity_type, entity_id
      order by sum(interactions) desc, entity_type, entity_id
      limit 10
    )
    select r.entity_type, r.entity_id, r.interactions, e.event_type,
      sum(e.interactions) as of_type
    from ranked as r
    join public.entity_engagement_daily as e using (entity_type, entity_id)
    where e.day >= ${firstDay}::date and e.day <= ${lastDay}::date
    group by r.entity_type, r.entity_id, r.interactions, e.event_type
    order by r.interactions desc, r.entity_type, r.entity_id, e.event_type
  `;
  const topEntities: Summary["topEntities"] = [];
  for (const row of entityRows) {
    let entity = topEntities.at(-1);
    if (!entity || entity.entityType !== row.entity_type || entity.entityId !== row.entity_id) {
      entity = {
        entityType: row.entity_type,
        entityId: row.entity_id,
        interactions: Number(row.interactions),
        byEventType: {},
      };
      topEntities.push(entity);
    }
    entity.byEventType[row.event_type] = Number(row.of_type);
  }
  const pct = (value: string | null) => value === null ? null : Number(value);
  return {
    window: { days, firstDay, lastDay },
    totals: {
      sessions: scores.length,
      bouncedSessions: bounced,
      bounceRate: scores.length ? percentOf(bounced, scores.length) : null,
      avgEngagementScore: scores.length ? percentOf(scoreSum, 100 * scores.length) : null,
    },
    daily: daily.map((row) => ({
      day: row.day,
      sessions: Number(row.sessions),
      users: Number(row.users),
      avgDurationMs: Number(row.avg_duration_ms),
      avgEngagementScore: Number(row.avg_engagement_score),
      bounceRate: Number(row.bounce_rate),
    })),
    scoreDistribution: Array.from({ length: 10 }, (_, bucket) => ({
      label: bucket === 9 ? "90-100" : `${bucket * 10}-${bucket * 10 + 9}`,
      from: bucket * 10,
      to: bucket === 9 ? 100 : bucket * 10 + 9,
      sessions: scores.filter((score) => Math.min(Math.floor(score / 10), 9) === bucket).length,
    })),
    funnel: {
      events: funnel.length,
      viewers: total("viewers"),
      clickers: total("clickers"),
      ticketClickers: total("ticket_clickers"),
      attendees: total("attendees"),
    },
    topEvents: topEvents.map((row) => ({
      entityId: row.entity_id,
      viewers: Number(row.viewers),
      clickers: Number(row.clickers),
      ticketClickers: Number(row.ticket_clickers),
      attendees: Number(row.attendees),
      viewToClickPct: pct(row.view_to_click_pct),
      clickToTicketClickPct: pct(row.click_to_ticket_click_pct),
      viewToTicketClickPct: pct(row.view_to_ticket_click_pct),
      viewToAttendancePct: pct(row.view_to_attendance_pct),
    })),
    topEntities,
  };
}

/**
 * Reads the endpoint and the views while writers wait: the database is
 * shared with other tests, so the test holds a SHARE lock on the two tables
 * the views read (sessions first, in the order the ingestion function takes
 * them, so neither side can deadlock) for the second or two the comparison
 * takes. Reads, the endpoint's included, are not blocked.
 */
async function assertSummaryMatchesViews(days: number, query: string): Promise<Summary> {
  return await sql.begin(async (tx) => {
    await tx`set local lock_timeout = '10s'`;
    await tx`lock table public.sessions, public.user_interactions in share mode`;
    const expected = await expectedSummary(tx, days);
    const answer = await getSummary(basic(analyst.user, analyst.password), query);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.headers.get("cache-control"), "no-store");
    assert.deepEqual(answer.body, expected);
    return expected;
  });
}

Deno.test("at most a few requests hold a connection at once; a few more wait in turn, the rest are refused", async () => {
  const logins = new AnalystLogins("postgresql://postgres:postgres@127.0.0.1:1/postgres", {
    maxConnections: 2,
    maxWaiting: 1,
  });
  const credentials = { user: "analyst_reader", password: "analyst" };
  let running = 0;
  let most = 0;
  const started: number[] = [];
  const finish: Array<() => void> = [];
  // Work that opens no connection: it only holds its turn until finished.
  const hold = (n: number) => () =>
    new Promise<number>((resolve) => {
      running++;
      most = Math.max(most, running);
      started.push(n);
      finish.push(() => {
        running--;
        resolve(n);
      });
    });
  const runs = [1, 2, 3].map((n) => logins.run(credentials, hold(n)));
  await assert.rejects(logins.run(credentials, hold(4)), DashboardBusy);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(started, [1, 2]);
  finish.shift()!();
  await runs[0];
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(started, [1, 2, 3], "the waiting one goes when a connection is free");
  for (const done of finish.splice(0)) done();
  assert.deepEqual(await Promise.all(runs), [1, 2, 3]);
  assert.equal(most, 2);
  // Free again: a new request starts at once.
  const again = logins.run(credentials, () => Promise.resolve("again"));
  assert.equal(await again, "again");
});

Deno.test("work that overruns its deadline gives its turn up, and a waiter waits a bounded time", async () => {
  const logins = new AnalystLogins("postgresql://postgres:postgres@127.0.0.1:1/postgres", {
    maxConnections: 1,
    maxWaiting: 1,
    maxWaitMs: 20,
    deadlineMs: 100,
  });
  const credentials = { user: "analyst_reader", password: "analyst" };
  // A database that stopped answering: the work never ends by itself.
  const hung = logins.run(credentials, () => new Promise<never>(() => {}));
  // Waiting for the one connection's turn ends after maxWaitMs.
  await assert.rejects(logins.run(credentials, () => Promise.resolve(1)), DashboardBusy);
  await assert.rejects(hung, DashboardTimeout);
  assert.equal(classifyFailure(new DashboardTimeout(100)), "unavailable");
  // The turn is free again.
  assert.equal(await logins.run(credentials, () => Promise.resolve("next")), "next");
  // Work that throws at once leaves no deadline behind to reject unhandled.
  await assert.rejects(
    logins.run(credentials, () => {
      throw new Error("at once");
    }),
    /at once/,
  );
  await new Promise((resolve) => setTimeout(resolve, 150));
});

integrationTest(
  "the analyst_reader login exists (scripts/stack up applies local_roles.sql)",
  async () => {
    const [role] = await sql`
    select r.rolcanlogin, pg_has_role(r.oid, 'analyst', 'member') as is_analyst, r.rolsuper
    from pg_roles as r
    where r.rolname = 'analyst_reader'
  `;
    assert.deepEqual(role && { ...role }, { rolcanlogin: true, is_analyst: true, rolsuper: false });
  },
);

integrationTest("the summary answers 401 with a Basic challenge without credentials", async () => {
  for (const authorization of [undefined, "", "Bearer x", "Basic", "Basic !!!", basic("", "x")]) {
    const answer = await getSummary(authorization);
    assert.equal(answer.status, 401, `Authorization: ${authorization}`);
    assert.equal(answer.headers.get("www-authenticate"), challenge);
    assert.deepEqual(answer.body, {
      error: { code: "unauthorized", message: "sign in with a Postgres login (HTTP Basic)" },
    });
  }
});

integrationTest("the summary answers 401 to credentials the database refuses", async () => {
  const refused = [
    basic(analyst.user, "not-the-password"),
    basic(`nobody_${crypto.randomUUID().slice(0, 8)}`, "analyst"),
    // The NOLOGIN role itself.
    basic("analyst", "analyst"),
  ];
  for (const authorization of refused) {
    const answer = await getSummary(authorization);
    assert.equal(answer.status, 401, atob(authorization.slice(6)));
    assert.equal(answer.headers.get("www-authenticate"), challenge);
    assert.deepEqual(answer.body, {
      error: { code: "unauthorized", message: "the database refused this login" },
    });
  }
});

integrationTest("the summary answers 403 to a login that may not read the views", async () => {
  const role = `dashboard_test_${crypto.randomUUID().replaceAll("-", "")}`;
  const password = crypto.randomUUID();
  await sql.unsafe(`create role ${role} login password '${password}'`);
  try {
    const answer = await getSummary(basic(role, password));
    assert.equal(answer.status, 403);
    assert.deepEqual(answer.body, {
      error: { code: "forbidden", message: "this login may not read the analysts' views" },
    });
  } finally {
    await sql.unsafe(`drop role ${role}`);
  }
});

integrationTest("the summary refuses a days parameter outside 1..366", async () => {
  for (const days of ["0", "367", "abc", "7.5", "-1"]) {
    const answer = await getSummary(basic(analyst.user, analyst.password), `?days=${days}`);
    assert.equal(answer.status, 400, days);
    assert.deepEqual(answer.body, {
      error: { code: "invalid_days", message: "days must be an integer from 1 to 366" },
    });
  }
});

integrationTest("the summary, as analyst_reader, is what SQL on the views returns", async () => {
  const { eventEntity, artistEntity } = await seed();
  const month = await assertSummaryMatchesViews(30, "");
  await assertSummaryMatchesViews(1, "?days=1");

  // The seeded sessions are in it, and its parts agree with each other.
  assert.ok(month.totals.sessions >= 3 && month.funnel.attendees >= 1, JSON.stringify(month));
  const dailySessions = month.daily.reduce((sum, row) => sum + row.sessions, 0);
  const bucketSessions = month.scoreDistribution.reduce((sum, row) => sum + row.sessions, 0);
  assert.deepEqual([dailySessions, bucketSessions], [month.totals.sessions, month.totals.sessions]);
  const [seededFunnel] = await sql`
    select viewers, clickers, ticket_clickers, attendees
    from public.event_funnel where entity_id = ${eventEntity}
  `;
  assert.deepEqual({ ...seededFunnel }, {
    viewers: "3",
    clickers: "2",
    ticket_clickers: "1",
    attendees: "1",
  });
  const [artist] = await sql`
    select sum(interactions)::integer as views from public.entity_engagement_daily
    where entity_id = ${artistEntity} and event_type = 'view'
  `;
  assert.equal(artist.views, 3);

  // Read as the analyst's own login, never the superuser's: held up by a
  // lock, the dashboard's connection shows who it is.
  let pending: Promise<{ status: number }> | undefined;
  const names = await sql.begin(async (tx) => {
    await tx`lock table public.sessions in access exclusive mode`;
    pending = getSummary(basic(analyst.user, analyst.password), "?days=1");
    for (let i = 0; i < 500; i++) {
      const waiting = await sql<{ login: string }[]>`
        select usename::text as login from pg_stat_activity
        where application_name = 'dashboard' and wait_event_type = 'Lock'
      `;
      if (waiting.length > 0) return waiting.map((row) => row.login);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return [];
  });
  assert.deepEqual([...new Set(names)], ["analyst_reader"]);
  assert.equal((await pending!).status, 200);
});

integrationTest("the summary's funnel counts the window's interactions only", async () => {
  // Twenty visitors who viewed a new event ten days ago: in the funnel of the
  // last 30 days, not in that of the last 7.
  // Written directly, each id registered as ingestion would, and removed
  // afterwards.
  const eventEntity = `dashboard-old-event-${crypto.randomUUID()}`;
  const rows = await sql<{ event_id: string }[]>`
    with events as (
      select gen_random_uuid() as event_id, 'dashboard-old-' || n as anonymous_id,
        now() - interval '10 days' as occurred_at
      from generate_series(1, 20) as n
    ),
    registered as (
      insert into public.interaction_event_ids (event_id, occurred_at)
      select e.event_id, e.occurred_at from events as e
    )
    insert into public.user_interactions
      (event_id, anonymous_id, event_type, entity_type, entity_id, metadata, occurred_at)
    select e.event_id, e.anonymous_id, 'view', 'event', ${eventEntity}, '{}', e.occurred_at
    from events as e
    returning event_id
  `;
  try {
    const [week, month] = await sql.begin(async (tx) => {
      await tx`set local lock_timeout = '10s'`;
      await tx`lock table public.sessions, public.user_interactions in share mode`;
      const read = async (days: number) => {
        const answer = await getSummary(basic(analyst.user, analyst.password), `?days=${days}`);
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        return answer.body as Summary;
      };
      return [await read(7), await read(30)];
    });
    assert.ok(
      month.funnel.viewers >= week.funnel.viewers + 20 && month.funnel.events > week.funnel.events,
      JSON.stringify({ week: week.funnel, month: month.funnel }),
    );
    assert.ok(!week.topEvents.some((row) => row.entityId === eventEntity));
  } finally {
    const ids = rows.map((row) => row.event_id);
    await sql`delete from public.user_interactions where event_id = any(${ids}::uuid[])`;
    await sql`delete from public.interaction_event_ids where event_id = any(${ids}::uuid[])`;
  }
});

integrationTest(
  "the top entities of a window read only the monthly partitions the window falls in",
  async () => {
    for (const days of [1, 7]) {
      const [window] = await sql`
        select
          ((now() at time zone 'utc')::date - ${days - 1}::integer)::timestamp
            at time zone 'utc' as start,
          ((now() at time zone 'utc')::date + 1)::timestamp at time zone 'utc' as end,
          array(
            select distinct 'user_interactions_' || to_char(day, 'YYYY_MM')
            from generate_series(
              (now() at time zone 'utc')::date - ${days - 1}::integer,
              (now() at time zone 'utc')::date,
              interval '1 day'
            ) as day
            order by 1
          ) as months
      `;
      const plan = await sql`
        explain (costs off) ${
        topEntitiesQuery(sql, window.start.toISOString(), window.end.toISOString())
      }
      `;
      const text = plan.map((row) => row["QUERY PLAN"]).join("\n");
      const read = [...text.matchAll(/ on (user_interactions_(?:\d{4}_\d{2}|default))\b/g)].map((
        match,
      ) => match[1]);
      assert.deepEqual([...new Set(read)].sort(), window.months, `${days} days:\n${text}`);
    }
  },
);

Deno.test("a statement cancelled by the statement timeout fails as too_slow, not unavailable", () => {
  assert.equal(classifyFailure({ code: "57014" }), "too_slow");
  assert.equal(statementTimeoutMs, 15_000);
});

integrationTest("a statement of an analyst is cut at the statement timeout", async () => {
  const logins = new AnalystLogins(stack.dbUrl, { statementTimeoutMs: 100 });
  const failure = await logins.run(analyst, (sql) => sql`select pg_sleep(2)`).then(
    () => null,
    (error) => error,
  );
  assert.equal(failure?.code, "57014", String(failure));
  assert.equal(classifyFailure(failure), "too_slow");
});

integrationTest(
  "the summary answers 504 too_slow when its queries outlast the statement timeout",
  async () => {
    // Held up by a lock for longer than the statement timeout, the summary's
    // statement is cancelled by the database (SQLSTATE 57014).
    const answer = await sql.begin(async (tx) => {
      await tx`lock table public.sessions in access exclusive mode`;
      return await getSummary(basic(analyst.user, analyst.password), "?days=1");
    });
    assert.equal(answer.status, 504);
    assert.equal(answer.headers.get("retry-after"), null);
    assert.deepEqual(answer.body, {
      error: {
        code: "too_slow",
        message: "the query took longer than 15 s; a shorter window may help",
      },
    });
  },
);

integrationTest(
  "a login whose password changed, or that may no longer log in, is refused at once",
  async () => {
    const role = `dashboard_test_${crypto.randomUUID().replaceAll("-", "")}`;
    await sql.unsafe(`create role ${role} login password 'first' in role analyst`);
    try {
      assert.equal((await getSummary(basic(role, "first"), "?days=1")).status, 200);
      await sql.unsafe(`alter role ${role} password 'second'`);
      assert.equal((await getSummary(basic(role, "first"), "?days=1")).status, 401);
      assert.equal((await getSummary(basic(role, "second"), "?days=1")).status, 200);
      await sql.unsafe(`alter role ${role} nologin`);
      assert.equal((await getSummary(basic(role, "second"), "?days=1")).status, 401);
    } finally {
      await sql.unsafe(`drop role ${role}`);
    }
  },
);

integrationTest("a login with another DateStyle and time zone reads the same summary", async () => {
  const role = `dashboard_test_${crypto.randomUUID().replaceAll("-", "")}`;
  await sql.unsafe(`create role ${role} login password 'dmy' in role analyst`);
  await sql.unsafe(`alter role ${role} set datestyle = 'SQL, DMY'`);
  await sql.unsafe(`alter role ${role} set timezone = 'Pacific/Kiritimati'`);
  try {
    const theirs = await getSummary(basic(role, "dmy"), "?days=2");
    const ours = await getSummary(basic(analyst.user, analyst.password), "?days=2");
    assert.equal(theirs.status, 200, JSON.stringify(theirs.body));
    const { window, daily } = theirs.body as Summary;
    const expected = ours.body as Summary;
    assert.deepEqual(window, expected.window);
    assert.deepEqual(daily.map((row) => row.day), expected.daily.map((row) => row.day));
  } finally {
    await sql.unsafe(`drop role ${role}`);
  }
});

integrationTest("the page and its script are served, other paths and methods are not", async () => {
  const page = await fetch(dashboardUrl);
  assert.equal(page.status, 200);
  assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
  assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
  assert.match(await page.text(), /<script type="module" src="\/dashboard\/app\.js"><\/script>/);
  const script = await fetch(`${dashboardUrl}/app.js`);
  assert.equal(script.status, 200);
  assert.equal(script.headers.get("content-type"), "text/javascript; charset=utf-8");
  assert.ok((await script.text()).length > 50_000, "the script bundles Chart.js");
  const css = await fetch(`${dashboardUrl}/dashboard.css`);
  assert.equal(css.status, 200);
  await css.body?.cancel();

  const missing = await fetch(`${dashboardUrl}/secrets`);
  assert.equal(missing.status, 404);
  assert.deepEqual(await missing.json(), {
    error: { code: "not_found", message: "no such dashboard page" },
  });
  const post = await fetch(summaryUrl, { method: "POST", body: "{}" });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET, HEAD");
  await post.body?.cancel();
});

integrationTest("the page signs in and draws every chart with data, offline", async () => {
  await seed();
  const browser = await launchChromium();
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const origin = new URL(dashboardUrl).origin;
    const elsewhere: string[] = [];
    await context.route((url) => url.origin !== origin, (route) => {
      elsewhere.push(route.request().url());
      return route.abort();
    });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error" || message.type() === "warning") {
        problems.push(message.text());
      }
    });
    page.on("pageerror", (error) => problems.push(String(error)));

    await page.goto(dashboardUrl);
    await page.waitForSelector("body[data-state='signed-out']");

    // A wrong password keeps the form up with a message.
    await page.fill("input[name=user]", analyst.user);
    await page.fill("input[name=password]", "not-the-password");
    const refused = page.waitForResponse((r) => r.url().startsWith(summaryUrl));
    await page.click("button[type=submit]");
    assert.equal((await refused).status(), 401);
    await page.waitForFunction(() =>
      document.getElementById("login-error")?.textContent === "Wrong login or password."
    );
    assert.equal(await page.isVisible("#dashboard"), false);
    problems.splice(0); // Chromium logs the refused request itself.

    await page.fill("input[name=user]", analyst.user);
    await page.fill("input[name=password]", analyst.password);
    const answered = page.waitForResponse((r) => r.url().startsWith(summaryUrl));
    await page.click("button[type=submit]");
    const response = await answered;
    assert.equal(response.status(), 200);
    const summary: Summary = await response.json();
    await page.waitForSelector("body[data-state='ready']");

    // Each chart drew the series the page was sent.
    const drawn = await page.evaluate(() =>
      Object.fromEntries(
        [...document.querySelectorAll("canvas")].map((canvas) => {
          const { data } = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height);
          let colored = 0;
          for (let i = 0; i < data.length; i += 4) {
            const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
            if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 60) colored++;
          }
          return [canvas.id, {
            series: JSON.parse(canvas.dataset.series ?? "null") as Array<Array<number | null>>,
            colored,
          }];
        }),
      )
    );
    const days = summary.window.days;
    const byDay = new Map(summary.daily.map((row) => [row.day, row]));
    const today = summary.window.lastDay;
    const { funnel } = summary;
    assert.equal(days, 30);
    assert.deepEqual(Object.keys(drawn).sort(), [
      "chart-bounce",
      "chart-entities",
      "chart-funnel",
      "chart-scores",
      "chart-sessions",
    ]);
    // What each chart holds, read back from Chart.js.
    const [sessions, visitors] = drawn["chart-sessions"].series;
    assert.equal(sessions.length, days);
    assert.equal(sessions.at(-1), byDay.get(today)!.sessions);
    assert.equal(visitors.at(-1), byDay.get(today)!.users);
    assert.equal(
      sessions.reduce((sum: number, n) => sum + (n ?? 0), 0),
      summary.totals.sessions,
    );
    const [bounce] = drawn["chart-bounce"].series;
    assert.equal(bounce.length, days);
    assert.equal(bounce.at(-1), byDay.get(today)!.bounceRate);
    assert.deepEqual(
      drawn["chart-scores"].series,
      [summary.scoreDistribution.map((bucket) => bucket.sessions)],
    );
    assert.deepEqual(drawn["chart-funnel"].series, [[
      funnel.viewers,
      funnel.clickers,
      funnel.ticketClickers,
      funnel.attendees,
    ]]);
    assert.ok(funnel.viewers >= 3 && funnel.attendees >= 1, JSON.stringify(funnel));
    // The entities' bars are stacked by event type: together they make each entity's total.
    const stacked = drawn["chart-entities"].series;
    assert.deepEqual(
      summary.topEntities.map((_, i) => stacked.reduce((sum, series) => sum + (series[i] ?? 0), 0)),
      summary.topEntities.map((entity) => entity.interactions),
    );
    assert.ok(summary.topEntities.length > 0);
    // And the pixels show it: every canvas holds a good many coloured (non-grey) pixels.
    for (const [id, { colored }] of Object.entries(drawn)) {
      assert.ok(colored > 300, `${id}: ${colored} coloured pixels`);
    }
    assert.equal(
      await page.locator("#top-events tbody tr").count(),
      summary.topEvents.length,
    );
    // The funnel says which window it covers, the window of the rest.
    const dates = `(${summary.window.firstDay} to ${summary.window.lastDay}, UTC)`;
    assert.equal(await page.textContent("#funnel-window"), dates);
    assert.equal(await page.textContent("#top-events-window"), dates);
    assert.equal(
      await page.textContent("#kpi-sessions"),
      new Intl.NumberFormat("en").format(summary.totals.sessions),
    );

    const screenshot = await page.screenshot({ fullPage: true });
    await Deno.mkdir(new URL("../../.stack/", import.meta.url), { recursive: true });
    await Deno.writeFile(new URL("../../.stack/dashboard.png", import.meta.url), screenshot);
    await Deno.writeFile("/tmp/dashboard.png", screenshot);

    assert.deepEqual(elsewhere, [], "the page fetched nothing but its own server");
    assert.deepEqual(problems, [], "the page logged no errors or warnings");
  } finally {
    await browser.close();
  }
});

integrationTest("a failure on the first sign-in shows under the sign-in form", async () => {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    // The dashboard answers as it does when every connection is taken.
    const busy = { code: "busy", message: "the dashboard is busy; try again shortly" };
    await page.route((url) => url.href.startsWith(summaryUrl), (route) =>
      route.fulfill({
        status: 503,
        contentType: "application/json",
        headers: { "Retry-After": "5" },
        body: JSON.stringify({ error: busy }),
      }));
    await page.goto(dashboardUrl);
    await page.waitForSelector("body[data-state='signed-out']");
    await page.fill("input[name=user]", analyst.user);
    await page.fill("input[name=password]", analyst.password);
    await page.click("button[type=submit]");
    await page.waitForSelector("body[data-state='error']");
    assert.equal(await page.textContent("#login-error"), busy.message);
    assert.equal(await page.isVisible("#login-error"), true);
    assert.equal(await page.isVisible("#login"), true);
    assert.equal(await page.isVisible("#dashboard"), false);

    // Once signed in, a failed refresh shows above the charts, which stay.
    await page.unrouteAll();
    await page.click("button[type=submit]");
    await page.waitForSelector("body[data-state='ready']");
    assert.equal(await page.textContent("#login-error"), "");
    await page.route((url) => url.href.startsWith(summaryUrl), (route) =>
      route.fulfill({
        status: 503,
        contentType: "application/json",
        body: JSON.stringify({ error: busy }),
      }));
    await page.click("#refresh");
    await page.waitForSelector("body[data-state='error']");
    assert.equal(await page.textContent("#load-error"), busy.message);
    assert.equal(await page.isVisible("#load-error"), true);
    assert.equal(await page.isVisible("#dashboard"), true);
  } finally {
    await browser.close();
  }
});
