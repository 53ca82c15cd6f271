-- The views for analysts and for the personalization jobs: their shape and
-- documentation, the preference weighting, every view against numbers worked
-- out by hand from a small set of interactions, and who may read them.
--
-- The interactions are inserted directly (bypassing the ingestion function),
-- on entities named 'pgtap07-...' and in February 2001, so rows already in
-- the database never change the expectations; everything is rolled back.
begin;
select plan(44);

-- Days are UTC days whatever the reader's time zone: read them from UTC+14,
-- where every event below falls on a different local day.
set local timezone = 'Pacific/Kiritimati';

-- --- structure --------------------------------------------------------------

select has_view('public', 'entity_engagement_daily', 'entity_engagement_daily exists');
select has_view('public', 'event_funnel', 'event_funnel exists');
select has_view('public', 'user_engagement', 'user_engagement exists');
select has_view('public', 'preference_signals', 'preference_signals exists');

select results_eq(
  $$
    select a.attname::text collate "default", format_type(a.atttypid, a.atttypmod)
    from pg_attribute a
    where a.attrelid = 'public.entity_engagement_daily'::regclass and a.attnum > 0
    order by a.attnum
  $$,
  $$
    values
      ('day', 'date'), ('entity_type', 'text'), ('entity_id', 'text'), ('event_type', 'text'),
      ('interactions', 'bigint'), ('visitors', 'bigint'), ('sessions', 'bigint')
  $$,
  'entity_engagement_daily has its columns and types'
);
select results_eq(
  $$
    select a.attname::text collate "default", format_type(a.atttypid, a.atttypmod)
    from pg_attribute a
    where a.attrelid = 'public.event_funnel'::regclass and a.attnum > 0
    order by a.attnum
  $$,
  $$
    values
      ('entity_id', 'text'), ('viewers', 'bigint'), ('clickers', 'bigint'),
      ('ticket_clickers', 'bigint'), ('attendees', 'bigint'),
      ('view_to_click_pct', 'numeric(5,2)'), ('click_to_ticket_click_pct', 'numeric(5,2)'),
      ('view_to_ticket_click_pct', 'numeric(5,2)'), ('view_to_attendance_pct', 'numeric(5,2)')
  $$,
  'event_funnel has its columns and types, rates as numeric(5,2) percents'
);
select results_eq(
  $$
    select a.attname::text collate "default", format_type(a.atttypid, a.atttypmod)
    from pg_attribute a
    where a.attrelid = 'public.user_engagement'::regclass and a.attnum > 0
    order by a.attnum
  $$,
  $$
    values
      ('user_id', 'uuid'), ('sessions', 'bigint'), ('interactions', 'bigint'),
      ('first_seen_at', 'timestamp with time zone'),
      ('last_seen_at', 'timestamp with time zone'), ('avg_session_duration_ms', 'bigint'),
      ('avg_engagement_score', 'numeric'), ('active_days', 'bigint')
  $$,
  'user_engagement has its columns and types'
);
select results_eq(
  $$
    select a.attname::text collate "default", format_type(a.atttypid, a.atttypmod)
    from pg_attribute a
    where a.attrelid = 'public.preference_signals'::regclass and a.attnum > 0
    order by a.attnum
  $$,
  $$
    values
      ('user_id', 'uuid'), ('entity_type', 'text'), ('entity_id', 'text'),
      ('preference_score', 'numeric'), ('views', 'bigint'), ('clicks', 'bigint'),
      ('shares', 'bigint'), ('likes', 'bigint'), ('unlikes', 'bigint'), ('interests', 'bigint'),
      ('interests_withdrawn', 'bigint'), ('follows', 'bigint'), ('unfollows', 'bigint'),
      ('reviews', 'bigint'), ('attendances', 'bigint'), ('attendances_withdrawn', 'bigint'),
      ('ticket_clicks', 'bigint'), ('streaming_top_signals', 'bigint'),
      ('streaming_recent_signals', 'bigint'), ('last_signal_at', 'timestamp with time zone')
  $$,
  'preference_signals has its columns and types'
);

select results_eq(
  $$
    select c.relname::text collate "default", c.reloptions::text collate "default"
    from pg_class c
    where c.oid in (
      'public.entity_engagement_daily'::regclass, 'public.event_funnel'::regclass,
      'public.user_engagement'::regclass, 'public.preference_signals'::regclass
    )
    order by 1
  $$,
  $$
    values
      ('entity_engagement_daily', '{security_invoker=true}'),
      ('event_funnel', '{security_invoker=true}'),
      ('preference_signals', '{security_invoker=true}'),
      ('user_engagement', '{security_invoker=true}')
  $$,
  'every analyst view runs with the reader''s rights (security_invoker)'
);

select is_empty(
  $$
    select c.relname::text
    from pg_class c
    where c.oid in (
      'public.entity_engagement_daily'::regclass, 'public.event_funnel'::regclass,
      'public.user_engagement'::regclass, 'public.preference_signals'::regclass
    )
      and coalesce(obj_description(c.oid, 'pg_class'), '') = ''
  $$,
  'every analyst view has a comment'
);
select is_empty(
  $$
    select c.relname || '.' || a.attname
    from pg_class c
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    where c.oid in (
      'public.entity_engagement_daily'::regclass, 'public.event_funnel'::regclass,
      'public.user_engagement'::regclass, 'public.preference_signals'::regclass
    )
      and coalesce(col_description(c.oid, a.attnum), '') = ''
  $$,
  'every column of every analyst view has a comment'
);
select matches(
  obj_description('public.event_funnel'::regclass, 'pg_class'),
  'on the event itself \(entity_type ''event''\), or on a ticket_link entity whose '
    || 'metadata\.event_id',
  'event_funnel''s comment says how a ticket_click is tied to its event, both ways'
);
select matches(
  obj_description('public.event_funnel'::regclass, 'pg_class'),
  'latest attendance mark',
  'event_funnel''s comment says a visitor''s latest attendance mark decides'
);
select matches(
  obj_description('public.preference_signals'::regclass, 'pg_class'),
  'view 1, click 2, share 3, interest 4, streaming_recent 3, streaming_top 5, ticket_click 6, '
    || 'attendance 8, like 5, follow 6, review \(rating - 3\) \* 2 \+ 4',
  'preference_signals''s comment documents the weighting'
);

-- --- the weighting ------------------------------------------------------------

select has_function(
  'public', 'interaction_signal_weight', array['text', 'jsonb'],
  'interaction_signal_weight(text, jsonb) exists'
);
select function_returns(
  'public', 'interaction_signal_weight', array['text', 'jsonb'], 'numeric',
  'interaction_signal_weight returns numeric'
);
select volatility_is(
  'public', 'interaction_signal_weight', array['text', 'jsonb'], 'immutable',
  'interaction_signal_weight is immutable'
);
select isnt_definer(
  'public', 'interaction_signal_weight', array['text', 'jsonb'],
  'interaction_signal_weight runs with the caller''s rights'
);
select results_eq(
  $$
    select p.proconfig = array['search_path=""'], p.proparallel::text collate "default",
      coalesce(obj_description(p.oid, 'pg_proc'), '') <> ''
    from pg_proc p
    where p.oid = 'public.interaction_signal_weight(text, jsonb)'::regprocedure
  $$,
  $$ values (true, 's', true) $$,
  'interaction_signal_weight sets an empty search_path, is parallel safe and has a comment'
);

select results_eq(
  $$
    select w.event_type, w.metadata::text,
      public.interaction_signal_weight(w.event_type, w.metadata)
    from (
      values
        (1, 'view', '{}'::jsonb), (2, 'click', '{}'), (3, 'share', '{}'),
        (4, 'interest', '{}'), (5, 'interest', '{"interested": true}'),
        (6, 'interest', '{"interested": false}'),
        (7, 'streaming_recent', '{}'), (8, 'streaming_top', '{}'), (9, 'ticket_click', '{}'),
        (10, 'attendance', '{}'), (11, 'attendance', '{"attended": false}'),
        (12, 'like', '{}'), (13, 'like', '{"liked": true}'), (14, 'like', '{"liked": false}'),
        (15, 'like', '{"liked": "false"}'),
        (16, 'follow', '{}'), (17, 'unfollow', '{}'),
        (18, 'review', '{"rating": 1}'), (19, 'review', '{"rating": 2}'),
        (20, 'review', '{"rating": 3}'), (21, 'review', '{"rating": 4}'),
        (22, 'review', '{"rating": 5}'), (23, 'review', '{"rating": 4.5}'),
        (24, 'review', '{"rating": 9}'), (25, 'review', '{"rating": -2}'),
        (26, 'review', '{}'), (27, 'review', '{"rating": "5"}'),
        (28, 'search', '{}'), (29, 'comment', '{}'), (30, 'navigate', '{}'),
        (31, 'form_submit', '{}'), (32, 'profile_update', '{}'), (33, 'swipe', '{}')
    ) as w (n, event_type, metadata)
    order by w.n
  $$,
  $$
    values
      ('view', '{}', 1::numeric), ('click', '{}', 2), ('share', '{}', 3),
      ('interest', '{}', 4), ('interest', '{"interested": true}', 4),
      ('interest', '{"interested": false}', -4),
      ('streaming_recent', '{}', 3), ('streaming_top', '{}', 5), ('ticket_click', '{}', 6),
      ('attendance', '{}', 8), ('attendance', '{"attended": false}', -8),
      ('like', '{}', 5), ('like', '{"liked": true}', 5), ('like', '{"liked": false}', -5),
      ('like', '{"liked": "false"}', 5),
      ('follow', '{}', 6), ('unfollow', '{}', -6),
      ('review', '{"rating": 1}', 0), ('review', '{"rating": 2}', 2),
      ('review', '{"rating": 3}', 4), ('review', '{"rating": 4}', 6),
      ('review', '{"rating": 5}', 8), ('review', '{"rating": 4.5}', 7.0),
      ('review', '{"rating": 9}', 8), ('review', '{"rating": -2}', 0),
      ('review', '{}', 4), ('review', '{"rating": "5"}', 4),
      ('search', '{}', 0), ('comment', '{}', 0), ('navigate', '{}', 0),
      ('form_submit', '{}', 0), ('profile_update', '{}', 0), ('swipe', '{}', 0)
  $$,
  'interaction_signal_weight gives every event type its documented weight, withdrawals '
    || 'their opposite and reviews (rating - 3) * 2 + 4 with the rating clamped to 1..5'
);

-- --- privileges -----------------------------------------------------------------

select results_eq(
  $$
    select v.name, r.role,
      coalesce(
        (
          select string_agg(p.privilege, ',' order by p.n)
          from unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES',
            'TRIGGER']) with ordinality as p (privilege, n)
          where has_table_privilege(r.role, 'public.' || v.name, p.privilege)
        ),
        ''
      )
    from unnest(array['entity_engagement_daily', 'event_funnel', 'user_engagement',
      'preference_signals']) with ordinality as v (name, n)
    cross join unnest(array['anon', 'authenticated', 'service_role', 'analyst'])
      with ordinality as r (role, n)
    order by v.n, r.n
  $$,
  $$
    values
      ('entity_engagement_daily', 'anon', ''),
      ('entity_engagement_daily', 'authenticated', 'SELECT'),
      ('entity_engagement_daily', 'service_role', 'SELECT'),
      ('entity_engagement_daily', 'analyst', 'SELECT'),
      ('event_funnel', 'anon', ''), ('event_funnel', 'authenticated', 'SELECT'),
      ('event_funnel', 'service_role', 'SELECT'), ('event_funnel', 'analyst', 'SELECT'),
      ('user_engagement', 'anon', ''), ('user_engagement', 'authenticated', 'SELECT'),
      ('user_engagement', 'service_role', 'SELECT'), ('user_engagement', 'analyst', 'SELECT'),
      ('preference_signals', 'anon', ''), ('preference_signals', 'authenticated', 'SELECT'),
      ('preference_signals', 'service_role', 'SELECT'), ('preference_signals', 'analyst', 'SELECT')
  $$,
  'the analyst views are readable by authenticated, service_role and analyst, writable by '
    || 'none of them, and closed to anon'
);
select results_eq(
  $$
    select r.role,
      has_function_privilege(r.role, 'public.interaction_signal_weight(text, jsonb)', 'execute')
    from unnest(array['anon', 'authenticated', 'service_role', 'analyst'])
      with ordinality as r (role, n)
    order by r.n
  $$,
  $$ values ('anon', false), ('authenticated', true), ('service_role', true), ('analyst', true) $$,
  'interaction_signal_weight is executable by the views'' readers and not by anon'
);

-- --- the interactions the expectations are worked out from ------------------
--
-- User A, session S1 on 2001-02-03 (8 events, 2 views, 10:00 to 10:20:00.001),
-- events outside any session that day, and session S4 on 2001-02-04 (9 events,
-- no view, 09:00 to 09:45). User B, session S2 (6 events, 1 view, 30 s).
-- Anonymous visitors: anon-1 in session S3 (4 events, 1 view, 10 min), anon-2
-- and anon-3 outside any session. User C has three sessions on 2001-02-05
-- whose events are no longer kept (as after a retention run).

insert into auth.users (id, email) values
  ('07000000-0000-4000-8000-00000000000a', 'pgtap07-a@example.test'),
  ('07000000-0000-4000-8000-00000000000b', 'pgtap07-b@example.test'),
  ('07000000-0000-4000-8000-00000000000c', 'pgtap07-c@example.test');

insert into public.sessions (id, user_id, anonymous_id, started_at, last_seen_at,
  interaction_count, page_views)
values
  ('07000000-0000-4000-8000-000000000051', '07000000-0000-4000-8000-00000000000a', null,
    '2001-02-03 10:00:00+00', '2001-02-03 10:20:00.001+00', 8, 2),
  ('07000000-0000-4000-8000-000000000052', '07000000-0000-4000-8000-00000000000b', null,
    '2001-02-03 11:00:00+00', '2001-02-03 11:00:30+00', 6, 1),
  ('07000000-0000-4000-8000-000000000053', null, 'pgtap07-anon-1',
    '2001-02-03 12:00:00+00', '2001-02-03 12:10:00+00', 4, 1),
  ('07000000-0000-4000-8000-000000000054', '07000000-0000-4000-8000-00000000000a', null,
    '2001-02-04 09:00:00+00', '2001-02-04 09:45:00+00', 9, 0),
  ('07000000-0000-4000-8000-000000000055', '07000000-0000-4000-8000-00000000000c', null,
    '2001-02-05 08:00:00+00', '2001-02-05 08:00:00+00', 1, 1),
  ('07000000-0000-4000-8000-000000000056', '07000000-0000-4000-8000-00000000000c', null,
    '2001-02-05 09:00:00+00', '2001-02-05 09:00:00+00', 2, 1),
  ('07000000-0000-4000-8000-000000000057', '07000000-0000-4000-8000-00000000000c', null,
    '2001-02-05 10:00:00+00', '2001-02-05 10:00:00+00', 1, 0);

-- Each event id is registered first, with its occurred_at, as the ingestion
-- function does.
create temp table fixture as
select gen_random_uuid() as event_id, e.*
from (
  values
    -- A, session S1
    ('07000000-0000-4000-8000-00000000000a'::uuid, null::text,
      '07000000-0000-4000-8000-000000000051'::uuid, 'view', 'event', 'pgtap07-ev-1',
      '{}'::jsonb, '2001-02-03 10:00:00+00'::timestamptz),
    ('07000000-0000-4000-8000-00000000000a', null, '07000000-0000-4000-8000-000000000051',
      'click', 'event', 'pgtap07-ev-1', '{}', '2001-02-03 10:01:00+00'),
    ('07000000-0000-4000-8000-00000000000a', null, '07000000-0000-4000-8000-000000000051',
      'ticket_click', 'ticket_link', 'pgtap07-tl-1',
      '{"event_id": "pgtap07-ev-1", "vendor": "Ticketmaster"}', '2001-02-03 10:02:00+00'),
    ('07000000-0000-4000-8000-00000000000a', null, '07000000-0000-4000-8000-000000000051',
      'like', 'artist', 'pgtap07-ar-1', '{"artist_name": "A", "liked": true}',
      '2001-02-03 10:03:00+00'),
    ('07000000-0000-4000-8000-00000000000a', null, '07000000-0000-4000-8000-000000000051',
      'like', 'artist', 'pgtap07-ar-1', '{"artist_name": "A", "liked": false}',
      '2001-02-03 10:04:00+00'),
    ('07000000-0000-4000-8000-00000000000a', null, '07000000-0000-4000-8000-000000000051',
      'like', 'artist', 'pgtap07-ar-1', '{"artist_name": "A"}', '2001-02-03 10:05:00+00'),
    ('07000000-0000-4000-8000-00000000000a', null, '07000000-0000-4000-8000-000000000051',
      'follow', 'artist', 'pgtap07-ar-1', '{"artist_name": "A"}', '2001-02-03 10:06:00+00'),
    ('07000000-0000-4000-8000-00000000000a', null, '07000000-0000-4000-8000-000000000051',
      'view', 'event', 'pgtap07-ev-1', '{}', '2001-02-03 10:20:00.001+00'),
    -- A, outside any session: a click on ev-2 that no view precedes, its
    -- ticket, and a ticket link naming its event with a number (not tied)
    ('07000000-0000-4000-8000-00000000000a', null, null,
      'click', 'event', 'pgtap07-ev-2', '{}', '2001-02-03 13:00:00+00'),
    ('07000000-0000-4000-8000-00000000000a', null, null,
      'ticket_click', 'ticket_link', 'pgtap07-tl-2', '{"event_id": "pgtap07-ev-2"}',
      '2001-02-03 13:05:00+00'),
    ('07000000-0000-4000-8000-00000000000a', null, null,
      'ticket_click', 'ticket_link', 'pgtap07-tl-3', '{"event_id": 12345}',
      '2001-02-03 13:10:00+00'),
    -- A, session S4
    ('07000000-0000-4000-8000-00000000000a', null, '07000000-0000-4000-8000-000000000054',
      'attendance', 'event', 'pgtap07-ev-1', '{"attended": true}', '2001-02-04 09:00:00+00'),
    ('07000000-0000-4000-8000-00000000000a', null, '07000000-0000-4000-8000-000000000054',
      'review', 'review', 'pgtap07-rv-1', '{"rating": 5}', '2001-02-04 09:30:00+00'),
    ('07000000-0000-4000-8000-00000000000a', null, '07000000-0000-4000-8000-000000000054',
      'search', 'event', 'pgtap07-search-results', '{"query": "x"}', '2001-02-04 09:31:00+00'),
    ('07000000-0000-4000-8000-00000000000a', null, '07000000-0000-4000-8000-000000000054',
      'streaming_top', 'song', 'pgtap07-song-1', '{}', '2001-02-04 09:40:00+00'),
    ('07000000-0000-4000-8000-00000000000a', null, '07000000-0000-4000-8000-000000000054',
      'streaming_recent', 'song', 'pgtap07-song-1', '{}', '2001-02-04 09:41:00+00'),
    ('07000000-0000-4000-8000-00000000000a', null, '07000000-0000-4000-8000-000000000054',
      'interest', 'event', 'pgtap07-ev-1', '{"interested": true}', '2001-02-04 09:42:00+00'),
    ('07000000-0000-4000-8000-00000000000a', null, '07000000-0000-4000-8000-000000000054',
      'interest', 'event', 'pgtap07-ev-1', '{"interested": false}', '2001-02-04 09:43:00+00'),
    ('07000000-0000-4000-8000-00000000000a', null, '07000000-0000-4000-8000-000000000054',
      'share', 'event', 'pgtap07-ev-1', '{}', '2001-02-04 09:44:00+00'),
    ('07000000-0000-4000-8000-00000000000a', null, '07000000-0000-4000-8000-000000000054',
      'review', 'album', 'pgtap07-album-1', '{}', '2001-02-04 09:45:00+00'),
    -- B, session S2: clicks before viewing, withdraws attendance, ticket
    -- click without a click after the view
    ('07000000-0000-4000-8000-00000000000b', null, '07000000-0000-4000-8000-000000000052',
      'click', 'event', 'pgtap07-ev-1', '{}', '2001-02-03 11:00:00+00'),
    ('07000000-0000-4000-8000-00000000000b', null, '07000000-0000-4000-8000-000000000052',
      'view', 'event', 'pgtap07-ev-1', '{}', '2001-02-03 11:00:10+00'),
    ('07000000-0000-4000-8000-00000000000b', null, '07000000-0000-4000-8000-000000000052',
      'attendance', 'event', 'pgtap07-ev-1', '{"attended": false}', '2001-02-03 11:00:20+00'),
    ('07000000-0000-4000-8000-00000000000b', null, '07000000-0000-4000-8000-000000000052',
      'review', 'review', 'pgtap07-rv-1', '{"rating": 1}', '2001-02-03 11:00:25+00'),
    ('07000000-0000-4000-8000-00000000000b', null, '07000000-0000-4000-8000-000000000052',
      'ticket_click', 'ticket_link', 'pgtap07-tl-1', '{"event_id": "pgtap07-ev-1"}',
      '2001-02-03 11:00:30+00'),
    ('07000000-0000-4000-8000-00000000000b', null, '07000000-0000-4000-8000-000000000052',
      'unfollow', 'artist', 'pgtap07-ar-1', '{"artist_name": "A"}', '2001-02-03 11:00:30+00'),
    -- anon-1, session S3: views, then clicks twice, and between the clicks
    -- clicks for tickets on the event itself (no ticket_link entity)
    (null, 'pgtap07-anon-1', '07000000-0000-4000-8000-000000000053',
      'view', 'event', 'pgtap07-ev-1', '{}', '2001-02-03 12:00:00+00'),
    (null, 'pgtap07-anon-1', '07000000-0000-4000-8000-000000000053',
      'click', 'event', 'pgtap07-ev-1', '{}', '2001-02-03 12:05:00+00'),
    (null, 'pgtap07-anon-1', '07000000-0000-4000-8000-000000000053',
      'ticket_click', 'event', 'pgtap07-ev-1', '{"vendor": "Ticketmaster"}',
      '2001-02-03 12:08:00+00'),
    (null, 'pgtap07-anon-1', '07000000-0000-4000-8000-000000000053',
      'click', 'event', 'pgtap07-ev-1', '{}', '2001-02-03 12:10:00+00'),
    -- anon-2: views in the last millisecond of the UTC day, ticket click the
    -- next UTC day without clicking, marks attendance, then withdraws it
    (null, 'pgtap07-anon-2', null,
      'view', 'event', 'pgtap07-ev-1', '{}', '2001-02-03 23:59:59.999+00'),
    (null, 'pgtap07-anon-2', null,
      'ticket_click', 'ticket_link', 'pgtap07-tl-1', '{"event_id": "pgtap07-ev-1"}',
      '2001-02-04 00:00:00+00'),
    (null, 'pgtap07-anon-2', null,
      'attendance', 'event', 'pgtap07-ev-1', '{"attended": true}', '2001-02-04 00:01:00+00'),
    (null, 'pgtap07-anon-2', null,
      'attendance', 'event', 'pgtap07-ev-1', '{"attended": false}', '2001-02-04 00:02:00+00'),
    -- anon-3: a ticket click first, then a view and a click at the same
    -- instant; withdraws an attendance it never marked, then marks it
    (null, 'pgtap07-anon-3', null,
      'ticket_click', 'ticket_link', 'pgtap07-tl-1', '{"event_id": "pgtap07-ev-1"}',
      '2001-02-03 13:59:00+00'),
    (null, 'pgtap07-anon-3', null,
      'view', 'event', 'pgtap07-ev-1', '{}', '2001-02-03 14:00:00+00'),
    (null, 'pgtap07-anon-3', null,
      'click', 'event', 'pgtap07-ev-1', '{}', '2001-02-03 14:00:00+00'),
    (null, 'pgtap07-anon-3', null,
      'attendance', 'event', 'pgtap07-ev-1', '{"attended": false}', '2001-02-03 14:01:00+00'),
    (null, 'pgtap07-anon-3', null,
      'attendance', 'event', 'pgtap07-ev-1', '{"attended": true}', '2001-02-03 14:02:00+00')
) as e (user_id, anonymous_id, session_id, event_type, entity_type, entity_id, metadata,
  occurred_at);

insert into public.interaction_event_ids (event_id, occurred_at)
select f.event_id, f.occurred_at from fixture as f;
insert into public.user_interactions (event_id, user_id, anonymous_id, session_id, event_type,
  entity_type, entity_id, metadata, occurred_at)
select f.event_id, f.user_id, f.anonymous_id, f.session_id, f.event_type, f.entity_type,
  f.entity_id, f.metadata, f.occurred_at
from fixture as f;

-- --- the views against hand-computed expectations ---------------------------

select results_eq(
  $$
    select day, entity_type, entity_id, event_type, interactions, visitors, sessions
    from public.entity_engagement_daily
    where entity_id like 'pgtap07-%'
    order by day, entity_type collate "C", entity_id collate "C", event_type collate "C"
  $$,
  $$
    values
      ('2001-02-03'::date, 'artist', 'pgtap07-ar-1', 'follow', 1::bigint, 1::bigint, 1::bigint),
      ('2001-02-03', 'artist', 'pgtap07-ar-1', 'like', 3, 1, 1),
      ('2001-02-03', 'artist', 'pgtap07-ar-1', 'unfollow', 1, 1, 1),
      ('2001-02-03', 'event', 'pgtap07-ev-1', 'attendance', 3, 2, 1),
      ('2001-02-03', 'event', 'pgtap07-ev-1', 'click', 5, 4, 3),
      ('2001-02-03', 'event', 'pgtap07-ev-1', 'ticket_click', 1, 1, 1),
      ('2001-02-03', 'event', 'pgtap07-ev-1', 'view', 6, 5, 3),
      ('2001-02-03', 'event', 'pgtap07-ev-2', 'click', 1, 1, 0),
      ('2001-02-03', 'review', 'pgtap07-rv-1', 'review', 1, 1, 1),
      ('2001-02-03', 'ticket_link', 'pgtap07-tl-1', 'ticket_click', 3, 3, 2),
      ('2001-02-03', 'ticket_link', 'pgtap07-tl-2', 'ticket_click', 1, 1, 0),
      ('2001-02-03', 'ticket_link', 'pgtap07-tl-3', 'ticket_click', 1, 1, 0),
      ('2001-02-04', 'album', 'pgtap07-album-1', 'review', 1, 1, 1),
      ('2001-02-04', 'event', 'pgtap07-ev-1', 'attendance', 3, 2, 1),
      ('2001-02-04', 'event', 'pgtap07-ev-1', 'interest', 2, 1, 1),
      ('2001-02-04', 'event', 'pgtap07-ev-1', 'share', 1, 1, 1),
      ('2001-02-04', 'event', 'pgtap07-search-results', 'search', 1, 1, 1),
      ('2001-02-04', 'review', 'pgtap07-rv-1', 'review', 1, 1, 1),
      ('2001-02-04', 'song', 'pgtap07-song-1', 'streaming_recent', 1, 1, 1),
      ('2001-02-04', 'song', 'pgtap07-song-1', 'streaming_top', 1, 1, 1),
      ('2001-02-04', 'ticket_link', 'pgtap07-tl-1', 'ticket_click', 1, 1, 0)
  $$,
  'entity_engagement_daily counts interactions, distinct visitors and distinct sessions per '
    || 'UTC day, entity and event type'
);

-- A signed-in user, and an anonymous visitor whose anonymous id is that
-- user's id as text: two visitors.
insert into auth.users (id, email)
values ('70000000-0000-4000-8000-0000000000f0', 'pgtap07-same@example.test');
insert into public.user_interactions (event_id, user_id, anonymous_id, event_type,
  entity_type, entity_id, metadata, occurred_at)
values
  ('07000000-0000-4000-8000-0000000000f1', '70000000-0000-4000-8000-0000000000f0', null,
    'view', 'event', 'pgtap07same-ev', '{}', '2001-02-05 11:00:00+00'),
  ('07000000-0000-4000-8000-0000000000f2', null, '70000000-0000-4000-8000-0000000000f0',
    'view', 'event', 'pgtap07same-ev', '{}', '2001-02-05 11:01:00+00');

select is(
  (select visitors from public.entity_engagement_daily where entity_id = 'pgtap07same-ev'),
  2::bigint,
  'entity_engagement_daily tells a user from an anonymous visitor whose id reads the same'
);

-- ev-1: A views, clicks, ticket-clicks and attends; B clicks only before its
-- view and withdraws attendance; anon-1 views, clicks and ticket-clicks on the
-- event itself; anon-2 views and ticket-clicks without clicking, and withdraws
-- the attendance it marked; anon-3 clicks at the instant of its view but
-- ticket-clicked before, and marks attendance after withdrawing it. ev-2 has
-- a click and a ticket but no view.
select results_eq(
  $$
    select entity_id, viewers, clickers, ticket_clickers, attendees, view_to_click_pct,
      click_to_ticket_click_pct, view_to_ticket_click_pct, view_to_attendance_pct
    from public.event_funnel
    where entity_id like 'pgtap07-%'
    order by entity_id collate "C"
  $$,
  $$
    values
      ('pgtap07-ev-1', 5::bigint, 3::bigint, 2::bigint, 2::bigint, 60.00::numeric(5, 2),
        66.67::numeric(5, 2), 40.00::numeric(5, 2), 40.00::numeric(5, 2)),
      ('pgtap07-ev-2', 0, 0, 0, 0, null, null, null, null)
  $$,
  'event_funnel counts each step only after the one before it, ties a ticket_click to its '
    || 'event (on the event, or on a ticket_link naming it in metadata.event_id), counts an '
    || 'attendee by their latest mark, and leaves a rate null when its denominator is 0'
);

-- Two attendance marks at the same instant: the one stored last decides.
insert into public.user_interactions (event_id, anonymous_id, event_type, entity_type,
  entity_id, metadata, occurred_at)
values
  ('07000000-0000-4000-8000-0000000000e1', 'pgtap07tie-visitor', 'view', 'event',
    'pgtap07tie-withdrawn', '{}', '2001-02-05 10:00:00+00'),
  ('07000000-0000-4000-8000-0000000000e2', 'pgtap07tie-visitor', 'attendance', 'event',
    'pgtap07tie-withdrawn', '{"attended": true}', '2001-02-05 10:01:00+00'),
  ('07000000-0000-4000-8000-0000000000e3', 'pgtap07tie-visitor', 'attendance', 'event',
    'pgtap07tie-withdrawn', '{"attended": false}', '2001-02-05 10:01:00+00'),
  ('07000000-0000-4000-8000-0000000000e4', 'pgtap07tie-visitor', 'view', 'event',
    'pgtap07tie-marked', '{}', '2001-02-05 10:00:00+00'),
  ('07000000-0000-4000-8000-0000000000e5', 'pgtap07tie-visitor', 'attendance', 'event',
    'pgtap07tie-marked', '{"attended": false}', '2001-02-05 10:01:00+00'),
  ('07000000-0000-4000-8000-0000000000e6', 'pgtap07tie-visitor', 'attendance', 'event',
    'pgtap07tie-marked', '{"attended": true}', '2001-02-05 10:01:00+00');

select results_eq(
  $$
    select entity_id, attendees from public.event_funnel
    where entity_id like 'pgtap07tie-%' order by entity_id collate "C"
  $$,
  $$ values ('pgtap07tie-marked', 1::bigint), ('pgtap07tie-withdrawn', 0::bigint) $$,
  'of two attendance marks at the same instant, event_funnel counts the one stored last'
);

-- Attendance comes after the view in the funnel: a mark with no view, or
-- whose latest mark falls before the first view, is not an attendee. One
-- visitor views then attends (the event's one attendee); one marks
-- attendance and never views; one marks attendance, then views, and never
-- marks again.
insert into public.user_interactions (event_id, anonymous_id, event_type, entity_type,
  entity_id, metadata, occurred_at)
values
  ('07000000-0000-4000-8000-0000000000d1', 'pgtap07early-viewer', 'view', 'event',
    'pgtap07early-ev', '{}', '2001-02-06 10:00:00+00'),
  ('07000000-0000-4000-8000-0000000000d2', 'pgtap07early-viewer', 'attendance', 'event',
    'pgtap07early-ev', '{"attended": true}', '2001-02-06 10:01:00+00'),
  ('07000000-0000-4000-8000-0000000000d3', 'pgtap07early-no-view', 'attendance', 'event',
    'pgtap07early-ev', '{"attended": true}', '2001-02-06 10:02:00+00'),
  ('07000000-0000-4000-8000-0000000000d4', 'pgtap07early-marks-first', 'attendance', 'event',
    'pgtap07early-ev', '{"attended": true}', '2001-02-06 10:03:00+00'),
  ('07000000-0000-4000-8000-0000000000d5', 'pgtap07early-marks-first', 'view', 'event',
    'pgtap07early-ev', '{}', '2001-02-06 10:04:00+00');

select results_eq(
  $$
    select viewers, attendees, view_to_attendance_pct from public.event_funnel
    where entity_id = 'pgtap07early-ev'
  $$,
  $$ values (2::bigint, 1::bigint, 50.00::numeric(5, 2)) $$,
  'event_funnel counts no attendee whose latest attendance mark has no view at or before it'
);
select is_empty(
  $$
    select entity_id, viewers, attendees from public.event_funnel
    where attendees > viewers
  $$,
  'event_funnel never counts more attendees than viewers'
);
-- Each step counts at the instant of the one before it: a ticket_click at the
-- instant of the first click, an attendance mark at the instant of the first
-- view.
insert into public.user_interactions (event_id, anonymous_id, event_type, entity_type,
  entity_id, metadata, occurred_at)
values
  ('07000000-0000-4000-8000-0000000000c1', 'pgtap07same-instant-visitor', 'view', 'event',
    'pgtap07same-instant-ev', '{}', '2001-02-07 10:00:00+00'),
  ('07000000-0000-4000-8000-0000000000c2', 'pgtap07same-instant-visitor', 'attendance',
    'event', 'pgtap07same-instant-ev', '{"attended": true}', '2001-02-07 10:00:00+00'),
  ('07000000-0000-4000-8000-0000000000c3', 'pgtap07same-instant-visitor', 'click', 'event',
    'pgtap07same-instant-ev', '{}', '2001-02-07 10:01:00+00'),
  ('07000000-0000-4000-8000-0000000000c4', 'pgtap07same-instant-visitor', 'ticket_click',
    'event', 'pgtap07same-instant-ev', '{}', '2001-02-07 10:01:00+00');

select results_eq(
  $$
    select viewers, clickers, ticket_clickers, attendees from public.event_funnel
    where entity_id = 'pgtap07same-instant-ev'
  $$,
  $$ values (1::bigint, 1::bigint, 1::bigint, 1::bigint) $$,
  'event_funnel counts a ticket_click at the instant of the first click, and an attendance '
    || 'mark at the instant of the first view'
);
-- The windowed funnel keeps its own copy of the view's body (see migration
-- 20261124000800): over all time, on every fixture above, the two agree.
select set_eq(
  'select * from public.event_funnel_since(''-infinity'')',
  'select * from public.event_funnel',
  'event_funnel_since from -infinity is event_funnel, row for row'
);

select results_eq(
  $$
    select user_id, sessions, interactions, first_seen_at, last_seen_at,
      avg_session_duration_ms, avg_engagement_score, active_days
    from public.user_engagement
    where user_id in (
      '07000000-0000-4000-8000-00000000000a', '07000000-0000-4000-8000-00000000000b',
      '07000000-0000-4000-8000-00000000000c'
    )
    order by user_id
  $$,
  $$
    values
      -- S1: 1 200 001 ms, score 90; S4: 2 700 000 ms, score 100
      ('07000000-0000-4000-8000-00000000000a'::uuid, 2::bigint, 20::bigint,
        '2001-02-03 10:00:00+00'::timestamptz, '2001-02-04 09:45:00+00'::timestamptz,
        1950001::bigint, 95.00::numeric, 2::bigint),
      -- S2: 30 000 ms, 6 interactions, halved: 25
      ('07000000-0000-4000-8000-00000000000b', 1, 6, '2001-02-03 11:00:00+00',
        '2001-02-03 11:00:30+00', 30000, 25.00, 1),
      -- scores 5, 10 and 5, no interactions kept
      ('07000000-0000-4000-8000-00000000000c', 3, 0, null, null, 0, 6.67, 0)
  $$,
  'user_engagement sums up each signed-in user''s sessions and interactions'
);

select results_eq(
  $$
    select
      case user_id
        when '07000000-0000-4000-8000-00000000000a' then 'A'
        when '07000000-0000-4000-8000-00000000000b' then 'B'
      end,
      entity_type, entity_id, preference_score,
      array[views, clicks, shares, likes, unlikes, interests, interests_withdrawn, follows,
        unfollows, reviews, attendances, attendances_withdrawn, ticket_clicks,
        streaming_top_signals, streaming_recent_signals],
      last_signal_at
    from public.preference_signals
    where entity_id like 'pgtap07-%'
    order by 1, entity_type collate "C", entity_id collate "C"
  $$,
  $$
    values
      --                                       v  c  s  l  ul i  iw f  uf r  a  aw t  st sr
      ('A', 'album', 'pgtap07-album-1', 4::numeric,
        array[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]::bigint[],
        '2001-02-04 09:45:00+00'::timestamptz),
      ('A', 'artist', 'pgtap07-ar-1', 11,
        array[0, 0, 0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], '2001-02-03 10:06:00+00'),
      ('A', 'event', 'pgtap07-ev-1', 21,
        array[2, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0], '2001-02-04 09:44:00+00'),
      ('A', 'event', 'pgtap07-ev-2', 8,
        array[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0], '2001-02-03 13:05:00+00'),
      ('A', 'review', 'pgtap07-rv-1', 8,
        array[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0], '2001-02-04 09:30:00+00'),
      ('A', 'song', 'pgtap07-song-1', 8,
        array[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1], '2001-02-04 09:41:00+00'),
      ('A', 'ticket_link', 'pgtap07-tl-3', 6,
        array[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0], '2001-02-03 13:10:00+00'),
      ('B', 'artist', 'pgtap07-ar-1', -6,
        array[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0], '2001-02-03 11:00:30+00'),
      ('B', 'event', 'pgtap07-ev-1', 1,
        array[1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0], '2001-02-03 11:00:30+00'),
      ('B', 'review', 'pgtap07-rv-1', 0,
        array[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0], '2001-02-03 11:00:25+00')
  $$,
  'preference_signals weighs and counts each signed-in user''s signals per entity, crediting '
    || 'a ticket_click to the event its ticket link names'
);

-- --- who may read them ------------------------------------------------------------

-- Analysts read every row through the views but write nothing. (pgTAP lives in
-- schema extensions, which analysts have no use for outside this test.)
grant usage on schema extensions to analyst;
set local role analyst;
select results_eq(
  $$
    select
      (select count(*) from public.entity_engagement_daily where entity_id like 'pgtap07-%'),
      (select count(*) from public.event_funnel where entity_id like 'pgtap07-%'),
      (select count(*) from public.user_engagement where user_id::text like '07000000-%'),
      (select count(*) from public.preference_signals where entity_id like 'pgtap07-%'),
      (select viewers from public.event_funnel where entity_id = 'pgtap07-ev-1')
  $$,
  $$ values (21::bigint, 2::bigint, 3::bigint, 10::bigint, 5::bigint) $$,
  'analyst reads every row of every analyst view'
);
select throws_ok(
  $$
    insert into public.preference_signals (user_id, entity_type, entity_id)
    values ('07000000-0000-4000-8000-00000000000a', 'event', 'pgtap07-ev-9')
  $$,
  '55000',
  'cannot insert into view "preference_signals"',
  'analyst cannot insert into preference_signals'
);
reset role;

set local role service_role;
select results_eq(
  $$
    select
      (select count(*) from public.entity_engagement_daily where entity_id like 'pgtap07-%'),
      (select count(*) from public.user_engagement where user_id::text like '07000000-%'),
      (select count(*) from public.preference_signals where entity_id like 'pgtap07-%')
  $$,
  $$ values (21::bigint, 3::bigint, 10::bigint) $$,
  'service_role reads every row of the analyst views'
);
reset role;

set local role anon;
select throws_ok(
  'select * from public.entity_engagement_daily', '42501',
  'permission denied for view entity_engagement_daily', 'anon cannot read entity_engagement_daily'
);
select throws_ok(
  'select * from public.event_funnel', '42501',
  'permission denied for view event_funnel', 'anon cannot read event_funnel'
);
select throws_ok(
  'select * from public.user_engagement', '42501',
  'permission denied for view user_engagement', 'anon cannot read user_engagement'
);
select throws_ok(
  'select * from public.preference_signals', '42501',
  'permission denied for view preference_signals', 'anon cannot read preference_signals'
);
reset role;

-- A signed-in user sees the views computed from their own rows only.
set local request.jwt.claims =
  '{"sub": "07000000-0000-4000-8000-00000000000a", "role": "authenticated"}';
set local role authenticated;
select results_eq(
  $$
    select user_id, count(*), sum(preference_score)
    from public.preference_signals
    group by user_id
  $$,
  $$ values ('07000000-0000-4000-8000-00000000000a'::uuid, 7::bigint, 66::numeric) $$,
  'user A sees only their own preference signals'
);
select results_eq(
  $$ select user_id, sessions, interactions, active_days from public.user_engagement $$,
  $$ values ('07000000-0000-4000-8000-00000000000a'::uuid, 2::bigint, 20::bigint, 2::bigint) $$,
  'user A sees only their own engagement'
);
select results_eq(
  $$
    select entity_id, viewers, clickers, ticket_clickers, attendees, view_to_click_pct,
      click_to_ticket_click_pct, view_to_ticket_click_pct, view_to_attendance_pct
    from public.event_funnel
    order by entity_id collate "C"
  $$,
  $$
    values
      ('pgtap07-ev-1', 1::bigint, 1::bigint, 1::bigint, 1::bigint, 100.00::numeric(5, 2),
        100.00::numeric(5, 2), 100.00::numeric(5, 2), 100.00::numeric(5, 2)),
      ('pgtap07-ev-2', 0, 0, 0, 0, null, null, null, null)
  $$,
  'user A''s funnel counts only user A'
);
select results_eq(
  $$
    select interactions, visitors, sessions
    from public.entity_engagement_daily
    where day = '2001-02-03' and entity_id = 'pgtap07-ev-1' and event_type = 'view'
  $$,
  $$ values (2::bigint, 1::bigint, 1::bigint) $$,
  'user A''s entity engagement counts only user A''s interactions'
);
reset role;

set local request.jwt.claims =
  '{"sub": "07000000-0000-4000-8000-00000000000b", "role": "authenticated"}';
set local role authenticated;
select results_eq(
  $$
    select user_id, count(*) over (), min(last_signal_at) over ()
    from public.user_engagement
    cross join lateral (
      select max(last_signal_at) as last_signal_at from public.preference_signals
    ) as p
  $$,
  $$
    values (
      '07000000-0000-4000-8000-00000000000b'::uuid, 1::bigint,
      '2001-02-03 11:00:30+00'::timestamptz
    )
  $$,
  'user B sees only their own engagement and signals'
);
reset role;

select * from finish();
rollback;
