-- Security as a matrix: every role (anon, signed-in users A and B,
-- service_role, analyst) against every table and view, for select, insert,
-- update and delete, each cell asserting the exact error or exactly what the
-- role sees of this suite's rows; then a signed-in user reaching for another
-- user's rows through every privilege it holds; then rules checked over the
-- whole catalog, so that they also hold for objects added later.
begin;
-- Other suites write to the same tables at the same time: never wait long.
set local lock_timeout = '2s';
select plan(217);

-- Names for the random ids of this run, readable by every role below.
create temp table fixture (name text primary key, id uuid not null default gen_random_uuid());
insert into fixture (name)
select unnest(array[
  'user A', 'user B', 'session A', 'session B', 'session V', 'a1', 'a2', 'a3', 'b1', 'b2', 'v1',
  'request A', 'entity', 'entity B only'
]);
grant select on fixture to public;

create function pg_temp.id(p_name text) returns uuid
language sql
stable
as $$ select id from fixture where name = p_name $$;

/*
 * The entity ids of this run: one every principal acted on, one only user B
 * did.
 */
create function pg_temp.entity(p_name text default 'entity') returns text
language sql
stable
as $$ select 'security-' || pg_temp.id(p_name) $$;

/*
 * Runs p_sql as p_role, with the JWT claims PostgREST would set for it (sub
 * = the fixture user p_user), and returns 'ok <the value it selected>' or
 * '<sqlstate> <message>' when it failed. Back to the session's own role
 * either way, so the assertions themselves run as postgres.
 */
create function pg_temp.attempt(p_role text, p_user text, p_sql text) returns text
language plpgsql
as $$
declare
  v_value text;
  v_state text;
  v_message text;
begin
  perform set_config(
    'request.jwt.claims',
    jsonb_strip_nulls(jsonb_build_object('role', p_role, 'sub', pg_temp.id(p_user)))::text,
    true
  );
  perform set_config('role', p_role, true);
  begin
    execute p_sql into v_value;
    perform set_config('role', 'none', true);
    return 'ok ' || coalesce(v_value, 'null');
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_message = message_text;
    perform set_config('role', 'none', true);
    return v_state || ' ' || v_message;
  end;
end
$$;

/* One event for public.ingest_interactions, on 1931-02-03, about the run's entity. */
create function pg_temp.ev(
  p_index integer, p_event text, p_session text, p_event_type text, p_at text,
  p_visitor text default null, p_entity text default 'entity'
) returns jsonb
language sql
as $$
  select jsonb_build_object(
    'index', p_index,
    'event_id', pg_temp.id(p_event),
    'session_id', pg_temp.id(p_session),
    'anonymous_id', p_visitor,
    'event_type', p_event_type,
    'entity_type', 'event',
    'entity_id', pg_temp.entity(p_entity),
    'metadata', '{}'::jsonb,
    'occurred_at', '1931-02-03T' || p_at || 'Z',
    'client_timestamp', null,
    'received_at', '1931-02-03T23:59:59Z'
  )
$$;

-- The rows every role tries to see and change, stored as the track function
-- stores them: user A viewed then clicked the entity (and sent one event the
-- database refuses, logged in system_errors), user B viewed it and viewed
-- another entity nobody else touched, a visitor viewed it.
insert into auth.users (id, email)
select pg_temp.id(u), pg_temp.id(u) || '@example.test'
from unnest(array['user A', 'user B']) as u;

select count(*) from public.ingest_interactions(
  pg_temp.id('user A'),
  jsonb_build_array(
    pg_temp.ev(0, 'a1', 'session A', 'view', '10:00:00'),
    pg_temp.ev(1, 'a2', 'session A', 'click', '10:05:00'),
    pg_temp.ev(2, 'a3', 'session A', 'teleport', '10:06:00')
  ),
  '[]'::jsonb,
  jsonb_build_object('request_id', pg_temp.id('request A'))
) \g /dev/null
select count(*) from public.ingest_interactions(
  pg_temp.id('user B'),
  jsonb_build_array(
    pg_temp.ev(0, 'b1', 'session B', 'view', '11:00:00'),
    pg_temp.ev(1, 'b2', 'session B', 'view', '11:01:00', null, 'entity B only')
  )
) \g /dev/null
select count(*) from public.ingest_interactions(
  null, jsonb_build_array(pg_temp.ev(0, 'v1', 'session V', 'view', '12:00:00', 'security-visitor'))
) \g /dev/null

select results_eq(
  $$
    select f.name, ui.user_id, ui.event_type
    from public.user_interactions ui join fixture f on f.id = ui.event_id
    order by f.name
  $$,
  $$
    values
      ('a1', pg_temp.id('user A'), 'view'), ('a2', pg_temp.id('user A'), 'click'),
      ('b1', pg_temp.id('user B'), 'view'), ('b2', pg_temp.id('user B'), 'view'),
      ('v1', null, 'view')
  $$,
  'the rows every role tries to reach are in place'
);

-- --- the matrix ------------------------------------------------------------------------------

-- One row per relation and operation: the statement, and what each role gets.
-- Selects count or sum only this suite's rows; writes report how many rows
-- they wrote. Views are not updatable, so every write to one fails in the
-- rewriter, before privileges are checked.
create temp table matrix (
  n serial primary key,
  relation text not null,
  operation text not null,
  statement text not null,
  anon text not null,
  user_a text not null,
  user_b text not null,
  service text not null,
  analyst text not null
);

insert into matrix (relation, operation, statement, anon, user_a, user_b, service, analyst)
select v.relation, v.operation, v.statement,
  coalesce(v.anon, v.denied), coalesce(v.user_a, v.denied), coalesce(v.user_b, v.denied),
  coalesce(v.service, v.denied), coalesce(v.analyst, v.denied)
from (
  values
    -- user_interactions: users read their own, service_role and analyst all, nobody writes.
    ('user_interactions', 'select',
      $$ select count(*) from public.user_interactions where event_id in (select id from fixture) $$,
      '42501 permission denied for table user_interactions', null, 'ok 2', 'ok 2', 'ok 5', 'ok 5'),
    ('user_interactions', 'insert',
      $$
        with w as (
          insert into public.user_interactions (
            event_id, user_id, anonymous_id, event_type, entity_type, entity_id, occurred_at,
            received_at
          )
          values (gen_random_uuid(), pg_temp.id('user A'), 'security-visitor', 'view', 'event',
            pg_temp.entity(), now(), now())
          returning 1
        )
        select count(*) from w
      $$,
      '42501 permission denied for table user_interactions', null, null, null, null, null),
    ('user_interactions', 'update',
      $$
        with w as (
          update public.user_interactions set entity_id = 'changed'
          where event_id in (select id from fixture) returning 1
        )
        select count(*) from w
      $$,
      '42501 permission denied for table user_interactions', null, null, null, null, null),
    ('user_interactions', 'delete',
      $$
        with w as (
          delete from public.user_interactions where event_id in (select id from fixture)
          returning 1
        )
        select count(*) from w
      $$,
      '42501 permission denied for table user_interactions', null, null, null, null, null),
    -- sessions: the same.
    ('sessions', 'select',
      $$ select count(*) from public.sessions where id in (select id from fixture) $$,
      '42501 permission denied for table sessions', null, 'ok 1', 'ok 1', 'ok 3', 'ok 3'),
    ('sessions', 'insert',
      $$
        with w as (
          insert into public.sessions (id, user_id, started_at, last_seen_at)
          values (gen_random_uuid(), pg_temp.id('user A'), now(), now())
          returning 1
        )
        select count(*) from w
      $$,
      '42501 permission denied for table sessions', null, null, null, null, null),
    ('sessions', 'update',
      $$
        with w as (
          update public.sessions set interaction_count = 100
          where id in (select id from fixture) returning 1
        )
        select count(*) from w
      $$,
      '42501 permission denied for table sessions', null, null, null, null, null),
    ('sessions', 'delete',
      $$
        with w as (delete from public.sessions where id in (select id from fixture) returning 1)
        select count(*) from w
      $$,
      '42501 permission denied for table sessions', null, null, null, null, null),
    -- system_errors: the service role's; analysts read it.
    ('system_errors', 'select',
      $$
        select count(*) from public.system_errors
        where metadata -> 'request' ->> 'request_id' = pg_temp.id('request A')::text
      $$,
      '42501 permission denied for table system_errors', null, null, null, 'ok 1', 'ok 1'),
    ('system_errors', 'insert',
      $$
        with w as (
          insert into public.system_errors (category, context, error_message)
          values ('network', 'security-suite', pg_temp.id('request A')::text)
          returning 1
        )
        select count(*) from w
      $$,
      '42501 permission denied for table system_errors', null, null, null, 'ok 1', null),
    ('system_errors', 'update',
      $$
        with w as (
          update public.system_errors set error_message = error_message
          where metadata -> 'request' ->> 'request_id' = pg_temp.id('request A')::text
          returning 1
        )
        select count(*) from w
      $$,
      '42501 permission denied for table system_errors', null, null, null, 'ok 1', null),
    ('system_errors', 'delete',
      $$
        with w as (
          delete from public.system_errors
          where context = 'security-suite' and error_message = pg_temp.id('request A')::text
          returning 1
        )
        select count(*) from w
      $$,
      '42501 permission denied for table system_errors', null, null, null, 'ok 1', null),
    -- session_metrics: one row per session the reader may see.
    ('session_metrics', 'select',
      $$ select count(*) from public.session_metrics where session_id in (select id from fixture) $$,
      '42501 permission denied for view session_metrics', null, 'ok 1', 'ok 1', 'ok 3', 'ok 3'),
    ('session_metrics', 'insert',
      $$
        with w as (
          insert into public.session_metrics (session_id) values (gen_random_uuid()) returning 1
        )
        select count(*) from w
      $$,
      '55000 cannot insert into view "session_metrics"', null, null, null, null, null),
    ('session_metrics', 'update',
      $$
        with w as (update public.session_metrics set interaction_count = 100 returning 1)
        select count(*) from w
      $$,
      '55000 cannot update view "session_metrics"', null, null, null, null, null),
    ('session_metrics', 'delete',
      $$ with w as (delete from public.session_metrics returning 1) select count(*) from w $$,
      '55000 cannot delete from view "session_metrics"', null, null, null, null, null),
    -- daily_engagement: the sessions the reader may see, on the suite's day.
    ('daily_engagement', 'select',
      $$ select sum(sessions) from public.daily_engagement where day = date '1931-02-03' $$,
      '42501 permission denied for view daily_engagement', null, 'ok 1', 'ok 1', 'ok 3', 'ok 3'),
    ('daily_engagement', 'insert',
      $$
        with w as (insert into public.daily_engagement (day) values (current_date) returning 1)
        select count(*) from w
      $$,
      '55000 cannot insert into view "daily_engagement"', null, null, null, null, null),
    ('daily_engagement', 'update',
      $$ with w as (update public.daily_engagement set sessions = 0 returning 1) select count(*) from w $$,
      '55000 cannot update view "daily_engagement"', null, null, null, null, null),
    ('daily_engagement', 'delete',
      $$ with w as (delete from public.daily_engagement returning 1) select count(*) from w $$,
      '55000 cannot delete from view "daily_engagement"', null, null, null, null, null),
    -- entity_engagement_daily: the interactions with the entity the reader may see.
    ('entity_engagement_daily', 'select',
      $$
        select sum(interactions) from public.entity_engagement_daily
        where entity_id = pg_temp.entity()
      $$,
      '42501 permission denied for view entity_engagement_daily', null, 'ok 2', 'ok 1', 'ok 4',
      'ok 4'),
    ('entity_engagement_daily', 'insert',
      $$
        with w as (
          insert into public.entity_engagement_daily (entity_id) values ('x') returning 1
        )
        select count(*) from w
      $$,
      '55000 cannot insert into view "entity_engagement_daily"', null, null, null, null, null),
    ('entity_engagement_daily', 'update',
      $$
        with w as (update public.entity_engagement_daily set interactions = 0 returning 1)
        select count(*) from w
      $$,
      '55000 cannot update view "entity_engagement_daily"', null, null, null, null, null),
    ('entity_engagement_daily', 'delete',
      $$ with w as (delete from public.entity_engagement_daily returning 1) select count(*) from w $$,
      '55000 cannot delete from view "entity_engagement_daily"', null, null, null, null, null),
    -- event_funnel: viewers / clickers of the entity among the visitors the reader may see.
    ('event_funnel', 'select',
      $$
        select viewers || '/' || clickers from public.event_funnel
        where entity_id = pg_temp.entity()
      $$,
      '42501 permission denied for view event_funnel', null, 'ok 1/1', 'ok 1/0', 'ok 3/1',
      'ok 3/1'),
    ('event_funnel', 'insert',
      $$
        with w as (insert into public.event_funnel (entity_id) values ('x') returning 1)
        select count(*) from w
      $$,
      '55000 cannot insert into view "event_funnel"', null, null, null, null, null),
    ('event_funnel', 'update',
      $$ with w as (update public.event_funnel set viewers = 0 returning 1) select count(*) from w $$,
      '55000 cannot update view "event_funnel"', null, null, null, null, null),
    ('event_funnel', 'delete',
      $$ with w as (delete from public.event_funnel returning 1) select count(*) from w $$,
      '55000 cannot delete from view "event_funnel"', null, null, null, null, null),
    -- user_engagement: the interactions of users A and B the reader may see.
    ('user_engagement', 'select',
      $$
        select sum(interactions) from public.user_engagement
        where user_id in (pg_temp.id('user A'), pg_temp.id('user B'))
      $$,
      '42501 permission denied for view user_engagement', null, 'ok 2', 'ok 2', 'ok 4', 'ok 4'),
    ('user_engagement', 'insert',
      $$
        with w as (
          insert into public.user_engagement (user_id) values (gen_random_uuid()) returning 1
        )
        select count(*) from w
      $$,
      '55000 cannot insert into view "user_engagement"', null, null, null, null, null),
    ('user_engagement', 'update',
      $$ with w as (update public.user_engagement set sessions = 0 returning 1) select count(*) from w $$,
      '55000 cannot update view "user_engagement"', null, null, null, null, null),
    ('user_engagement', 'delete',
      $$ with w as (delete from public.user_engagement returning 1) select count(*) from w $$,
      '55000 cannot delete from view "user_engagement"', null, null, null, null, null),
    -- preference_signals: the preference for the entity of the users the reader may see
    -- (view 1, click 2).
    ('preference_signals', 'select',
      $$
        select sum(preference_score) from public.preference_signals
        where entity_id = pg_temp.entity()
      $$,
      '42501 permission denied for view preference_signals', null, 'ok 3', 'ok 1', 'ok 4',
      'ok 4'),
    ('preference_signals', 'insert',
      $$
        with w as (
          insert into public.preference_signals (user_id) values (gen_random_uuid()) returning 1
        )
        select count(*) from w
      $$,
      '55000 cannot insert into view "preference_signals"', null, null, null, null, null),
    ('preference_signals', 'update',
      $$
        with w as (update public.preference_signals set preference_score = 0 returning 1)
        select count(*) from w
      $$,
      '55000 cannot update view "preference_signals"', null, null, null, null, null),
    ('preference_signals', 'delete',
      $$ with w as (delete from public.preference_signals returning 1) select count(*) from w $$,
      '55000 cannot delete from view "preference_signals"', null, null, null, null, null)
) as v (relation, operation, statement, denied, anon, user_a, user_b, service, analyst);

select is(
  (select count(*)::integer from matrix), 36,
  'the matrix covers 9 relations times select, insert, update and delete'
);

select is(
  pg_temp.attempt(a.role, a.user_name, m.statement),
  case a.actor
    when 'anon' then m.anon
    when 'user A' then m.user_a
    when 'user B' then m.user_b
    when 'service_role' then m.service
    else m.analyst
  end,
  format('%s: %s %s', a.actor, m.operation, m.relation)
)
from matrix m
cross join (
  values
    (1, 'anon', 'anon', null),
    (2, 'user A', 'authenticated', 'user A'),
    (3, 'user B', 'authenticated', 'user B'),
    (4, 'service_role', 'service_role', null),
    (5, 'analyst', 'analyst', null)
) as a (k, actor, role, user_name)
order by a.k, m.n;

-- After the matrix, the suite's rows are as they were.
select results_eq(
  $$
    select f.name,
      ui.entity_id = pg_temp.entity(case f.name when 'b2' then 'entity B only' else 'entity' end)
    from public.user_interactions ui join fixture f on f.id = ui.event_id
    order by f.name
  $$,
  $$ values ('a1', true), ('a2', true), ('b1', true), ('b2', true), ('v1', true) $$,
  'no role changed an interaction'
);
select results_eq(
  $$
    select f.name, s.interaction_count, s.page_views
    from public.sessions s join fixture f on f.id = s.id
    order by f.name
  $$,
  $$ values ('session A', 2, 1), ('session B', 2, 2), ('session V', 1, 1) $$,
  'no role changed a session'
);

-- --- a signed-in user reaching for another user's rows ----------------------------------------

-- User A holds select on the tables and views and execute on two pure
-- functions. Through each, she sees nothing of user B's, and she can neither
-- lock, change nor add to user B's rows.
select is(
  pg_temp.attempt('authenticated', 'user A', q.statement), q.expected,
  'user A, ' || q.description
)
from (
  values
    (1, $$ select count(*) from public.user_interactions where user_id = pg_temp.id('user B') $$,
      'ok 0', 'asking for user B''s interactions by user_id, sees none'),
    (2, $$ select count(*) from public.user_interactions where event_id = pg_temp.id('b1') $$,
      'ok 0', 'asking for user B''s interaction by event_id, sees none'),
    (3, $$ select count(*) from public.user_interactions where user_id is distinct from pg_temp.id('user A') $$,
      'ok 0', 'reading every interaction, sees only her own'),
    (4, $$ select count(*) from public.sessions where id = pg_temp.id('session B') $$,
      'ok 0', 'asking for user B''s session, sees none'),
    (5, $$ select count(*) from public.sessions where user_id is distinct from pg_temp.id('user A') $$,
      'ok 0', 'reading every session, sees only her own'),
    (6, $$ select count(*) from public.session_metrics where user_id = pg_temp.id('user B') $$,
      'ok 0', 'asking session_metrics for user B, sees none'),
    (7, $$ select count(*) from public.user_engagement where user_id = pg_temp.id('user B') $$,
      'ok 0', 'asking user_engagement for user B, sees none'),
    (8, $$ select count(*) from public.preference_signals where user_id = pg_temp.id('user B') $$,
      'ok 0', 'asking preference_signals for user B, sees none'),
    (9, $$ select count(*) from public.entity_engagement_daily where entity_id = pg_temp.entity('entity B only') $$,
      'ok 0', 'asking entity_engagement_daily for the entity only user B saw, sees none'),
    (10, $$ select count(*) from public.event_funnel where entity_id = pg_temp.entity('entity B only') $$,
      'ok 0', 'asking event_funnel for the entity only user B saw, sees none'),
    (11, $$ select count(*) from public.daily_engagement where day = date '1931-02-03' and sessions > 1 $$,
      'ok 0', 'reading daily_engagement, counts her own session only'),
    (12, $$ select count(*) from (select 1 from public.user_interactions where user_id = pg_temp.id('user B') for update) l $$,
      '42501 permission denied for table user_interactions', 'locking user B''s interactions, is refused'),
    (13, $$ select count(*) from (select 1 from public.sessions where id = pg_temp.id('session B') for share) l $$,
      '42501 permission denied for table sessions', 'share-locking user B''s session, is refused'),
    (14, $$ with w as (update public.sessions set user_id = pg_temp.id('user A') where id = pg_temp.id('session B') returning 1) select count(*) from w $$,
      '42501 permission denied for table sessions', 'taking over user B''s session, is refused'),
    (15, $$ with w as (delete from public.user_interactions where user_id = pg_temp.id('user B') returning 1) select count(*) from w $$,
      '42501 permission denied for table user_interactions', 'deleting user B''s interactions, is refused'),
    (16, $$ select count(*) from public.ingest_interactions(pg_temp.id('user B'), jsonb_build_array(pg_temp.ev(0, 'b1', 'session B', 'view', '13:00:00'))) $$,
      '42501 permission denied for function ingest_interactions', 'storing events as user B through the ingestion function, is refused'),
    (17, $$ with w as (delete from public.system_errors where user_id = pg_temp.id('user B') returning 1) select count(*) from w $$,
      '42501 permission denied for table system_errors', 'deleting user B''s errors, is refused')
) as q (n, statement, expected, description)
order by q.n;

select is(
  pg_temp.attempt('authenticated', 'user B', q.statement), q.expected,
  'user B, ' || q.description
)
from (
  values
    (1, $$ select count(*) from public.user_interactions where user_id = pg_temp.id('user A') $$,
      'ok 0', 'asking for user A''s interactions, sees none'),
    (2, $$ select count(*) from public.session_metrics where session_id = pg_temp.id('session A') $$,
      'ok 0', 'asking session_metrics for user A''s session, sees none'),
    (3, $$ with w as (update public.user_interactions set user_id = pg_temp.id('user B') where user_id = pg_temp.id('user A') returning 1) select count(*) from w $$,
      '42501 permission denied for table user_interactions', 'claiming user A''s interactions, is refused')
) as q (n, statement, expected, description)
order by q.n;

-- --- the ingestion function --------------------------------------------------------------------

select is(
  pg_temp.attempt(r.role, r.user_name, $$ select count(*) from public.ingest_interactions(null, '[]'::jsonb) $$),
  '42501 permission denied for function ingest_interactions',
  format('%s cannot call ingest_interactions', r.actor)
)
from (
  values
    (1, 'anon', 'anon', null),
    (2, 'user A', 'authenticated', 'user A'),
    (3, 'service_role', 'service_role', null),
    (4, 'analyst', 'analyst', null)
) as r (n, actor, role, user_name)
order by r.n;

-- --- rules over the whole catalog ------------------------------------------------------------

select is_empty(
  $$
    select c.relname from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
      and not c.relrowsecurity
  $$,
  'every table in public has row level security enabled'
);

select is_empty(
  $$
    select c.relname, r.role, p.privilege
    from pg_class c
    cross join unnest(array['anon', 'authenticated', 'analyst']) as r (role)
    cross join unnest(array['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'])
      as p (privilege)
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
      and has_table_privilege(r.role, c.oid, p.privilege)
  $$,
  'anon, authenticated and analyst can write to no table or view in public'
);

select is_empty(
  $$
    select c.relname from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
      and has_table_privilege('anon', c.oid, 'SELECT')
  $$,
  'anon can read no table or view in public'
);

select is_empty(
  $$
    select c.relname, r.role
    from pg_class c
    cross join unnest(array['authenticated', 'service_role']) as r (role)
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
      and c.relname not in ('user_interactions', 'sessions', 'system_errors')
      and has_table_privilege(r.role, c.oid, 'SELECT, INSERT, UPDATE, DELETE')
  $$,
  'the API roles reach no table in public beyond interactions, sessions and errors'
);

select is_empty(
  $$
    select child.oid::regclass, r.role
    from pg_inherits i
    join pg_class child on child.oid = i.inhrelid
    cross join unnest(array['anon', 'authenticated', 'service_role']) as r (role)
    where i.inhparent = 'public.user_interactions'::regclass
      and has_table_privilege(r.role, child.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
  $$,
  'no API role can reach a partition of user_interactions directly, around its policies'
);

select is_empty(
  $$
    select c.relname from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind = 'v'
      and not coalesce(c.reloptions @> array['security_invoker=true'], false)
  $$,
  'every view in public runs with the reader''s rights (security_invoker)'
);

select is_empty(
  $$
    select p.oid::regprocedure, r.role
    from pg_proc p
    cross join unnest(array['anon', 'authenticated', 'service_role', 'analyst', 'public'])
      as r (role)
    where p.pronamespace = 'public'::regnamespace and p.prosecdef
      and (
        (r.role = 'public' and exists (
          select from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
          where a.grantee = 0 and a.privilege_type = 'EXECUTE'
        ))
        or (r.role <> 'public' and has_function_privilege(r.role, p.oid, 'EXECUTE'))
      )
  $$,
  'no security-definer function in public is executable by public or an API role'
);

select is_empty(
  $$
    select p.oid::regprocedure from pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and not exists (
        select from unnest(coalesce(p.proconfig, '{}')) as setting
        where setting like 'search_path=%'
      )
  $$,
  'every function in public sets its search_path'
);

select is_empty(
  $$
    select p.oid::regprocedure from pg_proc p
    where p.pronamespace = 'public'::regnamespace and p.prosecdef
      and not (p.proconfig @> array['search_path=""'])
  $$,
  'every security-definer function in public runs with an empty search_path'
);

select * from finish();
rollback;
