-- session_metrics and daily_engagement against figures worked out by hand.
-- The sessions are written directly and dated 1999-2000, days no other test
-- uses, so the per-day rows hold only them.
begin;
select plan(10);

-- Days are UTC whatever the reader's time zone.
set local timezone = 'America/New_York';

create temp table ids (name text primary key, id uuid not null default gen_random_uuid());

create function pg_temp.id(p_name text) returns uuid
language sql
as $$
  insert into ids (name) values (p_name) on conflict (name) do nothing;
  select id from ids where name = p_name;
$$;

insert into auth.users (id, email)
select pg_temp.id(u), pg_temp.id(u) || '@example.test'
from unnest(array['user A', 'user B']) as u;

-- Per session: duration, score (see engagement_score) and bounce by hand.
--   s1  30 000 ms, 3 interactions, 1 view:  30 halved = 15, bounced
--   s2  1 200 000 ms, 8 interactions:       50 + 20 + 20 = 90
--   s3  2 700 250 ms, 6 interactions:       50 + 20 + 20 + 10 = 100
--   s4  300 000 ms, 1 interaction, 0 views: 10 + 20 = 30, bounced
--   s5  0 ms, 1 interaction, 1 view:        10 halved = 5, bounced
--   s6  60 000 ms, 2 interactions:          20
--   s7  900 000 ms, 4 interactions, 1 view: 40 + 20 + 20 = 80, bounced
--   s8  1.999 ms, 2 interactions:           20 halved = 10
insert into public.sessions (
  id, user_id, anonymous_id, started_at, last_seen_at, interaction_count, page_views
)
values
  (pg_temp.id('s1'), null, 'views-visitor-1',
    '1999-12-30T10:00:00Z', '1999-12-30T10:00:30Z', 3, 1),
  (pg_temp.id('s2'), pg_temp.id('user A'), null,
    '1999-12-30T10:00:00Z', '1999-12-30T10:20:00Z', 8, 4),
  (pg_temp.id('s3'), pg_temp.id('user A'), null,
    '1999-12-30T12:00:00Z', '1999-12-30T12:45:00.250Z', 6, 2),
  (pg_temp.id('s4'), null, 'views-visitor-2',
    '1999-12-30T13:00:00Z', '1999-12-30T13:05:00Z', 1, 0),
  (pg_temp.id('s5'), null, 'views-visitor-1',
    '1999-12-31T23:59:59Z', '1999-12-31T23:59:59Z', 1, 1),
  (pg_temp.id('s6'), null, 'views-visitor-1',
    '1999-12-31T08:00:00Z', '1999-12-31T08:01:00Z', 2, 2),
  (pg_temp.id('s7'), pg_temp.id('user B'), null,
    '1999-12-31T09:00:00Z', '1999-12-31T09:15:00Z', 4, 1),
  -- 23:30 in New York on the 31st is 04:30 UTC on 1 January 2000.
  (pg_temp.id('s8'), pg_temp.id('user B'), null,
    '1999-12-31T23:30:00-05:00', '1999-12-31T23:30:00.001999-05:00', 2, 2);

select results_eq(
  $$
    select m.session_id, m.user_id, m.anonymous_id, m.started_at, m.last_seen_at,
      m.duration_ms, m.interaction_count, m.page_views, m.engagement_score, m.bounce_rate
    from public.session_metrics m
    join ids on ids.id = m.session_id
    order by ids.name
  $$,
  $$
    values
      (pg_temp.id('s1'), null::uuid, 'views-visitor-1'::text,
        timestamptz '1999-12-30T10:00:00Z', timestamptz '1999-12-30T10:00:30Z',
        30000::bigint, 3, 1, 15, 100),
      (pg_temp.id('s2'), pg_temp.id('user A'), null,
        '1999-12-30T10:00:00Z', '1999-12-30T10:20:00Z', 1200000, 8, 4, 90, 0),
      (pg_temp.id('s3'), pg_temp.id('user A'), null,
        '1999-12-30T12:00:00Z', '1999-12-30T12:45:00.250Z', 2700250, 6, 2, 100, 0),
      (pg_temp.id('s4'), null, 'views-visitor-2',
        '1999-12-30T13:00:00Z', '1999-12-30T13:05:00Z', 300000, 1, 0, 30, 100),
      (pg_temp.id('s5'), null, 'views-visitor-1',
        '1999-12-31T23:59:59Z', '1999-12-31T23:59:59Z', 0, 1, 1, 5, 100),
      (pg_temp.id('s6'), null, 'views-visitor-1',
        '1999-12-31T08:00:00Z', '1999-12-31T08:01:00Z', 60000, 2, 2, 20, 0),
      (pg_temp.id('s7'), pg_temp.id('user B'), null,
        '1999-12-31T09:00:00Z', '1999-12-31T09:15:00Z', 900000, 4, 1, 80, 100),
      (pg_temp.id('s8'), pg_temp.id('user B'), null,
        '2000-01-01T04:30:00Z', '2000-01-01T04:30:00.001999Z', 1, 2, 2, 10, 0)
  $$,
  'session_metrics gives each session its duration, counts, score and bounce'
);

select is(
  (
    select duration_ms from public.session_metrics where session_id = pg_temp.id('s8')
  ),
  1::bigint,
  'duration_ms counts whole milliseconds, dropping the fraction'
);

select is(
  (
    select bounce_rate from public.session_metrics where session_id = pg_temp.id('s7')
  ),
  100,
  'a session with exactly one page view bounced, however many other events it has'
);

-- Per day, by hand:
--   1999-12-30: s1..s4; visitors user A, views-visitor-1, views-visitor-2;
--               duration (30000 + 1200000 + 2700250 + 300000) / 4 = 1057562.5 -> 1057563;
--               score (15 + 90 + 100 + 30) / 4 = 58.75; bounced 2 of 4.
--   1999-12-31: s5..s7; visitors views-visitor-1 (twice), user B;
--               duration (0 + 60000 + 900000) / 3 = 320000;
--               score (5 + 20 + 80) / 3 = 35; bounced 2 of 3 = 66.67.
--   2000-01-01: s8 alone (its New York evening is the next UTC day).
select results_eq(
  $$
    select day, sessions, users, avg_duration_ms, avg_engagement_score, bounce_rate
    from public.daily_engagement
    where day between date '1999-12-30' and date '2000-01-01'
    order by day
  $$,
  $$
    values
      (date '1999-12-30', 4::bigint, 3::bigint, 1057563::bigint, 58.75, 50.00),
      (date '1999-12-31', 3, 2, 320000, 35.00, 66.67),
      (date '2000-01-01', 1, 1, 1, 10.00, 0.00)
  $$,
  'daily_engagement sums each UTC day''s sessions, visitors, durations, scores and bounces'
);

select is(
  (select avg_engagement_score::text from public.daily_engagement where day = '1999-12-31'),
  '35.00',
  'averages are rounded to 2 decimals'
);

select is(
  (select bounce_rate::text from public.daily_engagement where day = '1999-12-31'),
  '66.67',
  'the bounce rate is a percentage rounded to 2 decimals'
);

-- A session that runs across UTC midnight, 23:50 to 00:10 (1 200 000 ms),
-- on days no other session uses: it belongs to the day it started on, and
-- the next day has no row for it.
insert into public.sessions (
  id, user_id, anonymous_id, started_at, last_seen_at, interaction_count, page_views
)
values
  (pg_temp.id('s12'), null, 'views-visitor-3',
    '1999-12-27T23:50:00Z', '1999-12-28T00:10:00Z', 3, 2);

select results_eq(
  $$
    select day, sessions, users, avg_duration_ms
    from public.daily_engagement
    where day between date '1999-12-27' and date '1999-12-28'
    order by day
  $$,
  $$ values (date '1999-12-27', 1::bigint, 1::bigint, 1200000::bigint) $$,
  'a session across UTC midnight counts on the day it started, not the day it ended'
);

-- A signed-in user and an anonymous visitor with the same text are two visitors.
insert into public.sessions (
  id, user_id, anonymous_id, started_at, last_seen_at, interaction_count, page_views
)
values
  (pg_temp.id('s9'), null, pg_temp.id('user A')::text,
    '1999-12-29T10:00:00Z', '1999-12-29T10:00:00Z', 1, 1),
  (pg_temp.id('s10'), pg_temp.id('user A'), null,
    '1999-12-29T11:00:00Z', '1999-12-29T11:00:00Z', 1, 1),
  (pg_temp.id('s11'), pg_temp.id('user A'), null,
    '1999-12-29T12:00:00Z', '1999-12-29T12:00:00Z', 1, 1);

select results_eq(
  $$ select sessions, users from public.daily_engagement where day = '1999-12-29' $$,
  $$ values (3::bigint, 2::bigint) $$,
  'users counts distinct visitors: a user''s two sessions once, an anonymous id apart'
);

-- The views follow the sessions table: no copy to refresh.
update public.sessions
set interaction_count = 6, page_views = 2, last_seen_at = '1999-12-29T10:31:00Z'
where id = pg_temp.id('s9');

select results_eq(
  $$
    select duration_ms, engagement_score, bounce_rate
    from public.session_metrics where session_id = pg_temp.id('s9')
  $$,
  $$ values (1860000::bigint, 100, 0) $$,
  'session_metrics reflects the session as it is now'
);
select results_eq(
  $$
    select avg_duration_ms, avg_engagement_score, bounce_rate
    from public.daily_engagement where day = '1999-12-29'
  $$,
  $$ values (620000::bigint, 36.67, 66.67) $$,
  'daily_engagement reflects the sessions as they are now'
);

select * from finish();
rollback;
