-- Who may read and write what, as each role in turn: anon, a signed-in user
-- A and a signed-in user B, service_role and analyst. Grants first, then
-- what each role actually gets: rows, or the exact error.
begin;
select plan(83);

-- Names for the random ids of this run, readable by every role below.
create temp table ids (name text primary key, id uuid not null default gen_random_uuid());
insert into ids (name)
select unnest(array[
  'user A', 'user B', 'session A', 'session B', 'session V', 'a1', 'a2', 'a3', 'b1', 'v1',
  'request A'
]);
grant select on ids to public;
-- pgTAP lives in schema extensions, which the platform opens to the API
-- roles only; the analyst needs it to run the assertions below.
grant usage on schema extensions to analyst;

create function pg_temp.id(p_name text) returns uuid
language sql
stable
as $$ select id from ids where name = p_name $$;

-- Becomes a role, with the JWT claims PostgREST would set for it.
create function pg_temp.become(p_role text, p_user text default null) returns void
language sql
as $$
  select set_config(
    'request.jwt.claims',
    jsonb_strip_nulls(jsonb_build_object('role', p_role, 'sub', pg_temp.id(p_user)))::text,
    true
  );
  select set_config('role', p_role, true);
$$;

create function pg_temp.ev(
  p_index integer, p_event text, p_session text, p_event_type text, p_visitor text default null
) returns jsonb
language sql
as $$
  select jsonb_build_object(
    'index', p_index,
    'event_id', pg_temp.id(p_event),
    'session_id', pg_temp.id(p_session),
    'anonymous_id', p_visitor,
    'event_type', p_event_type,
    'entity_type', 'artist',
    'entity_id', 'artist-456',
    'metadata', '{"artist_name": "The Weeknd"}'::jsonb,
    'occurred_at', '1998-06-15T10:00:00Z',
    'client_timestamp', null,
    'received_at', '1998-06-15T10:00:01Z'
  )
$$;

-- Rows for everyone to try to see, written as the track function would.
insert into auth.users (id, email)
select pg_temp.id(u), pg_temp.id(u) || '@example.test'
from unnest(array['user A', 'user B']) as u;

select count(*) from public.ingest_interactions(
  pg_temp.id('user A'),
  jsonb_build_array(
    pg_temp.ev(0, 'a1', 'session A', 'view'),
    pg_temp.ev(1, 'a2', 'session A', 'click'),
    pg_temp.ev(2, 'a3', 'session A', 'teleport')
  ),
  '[]'::jsonb,
  jsonb_build_object('request_id', pg_temp.id('request A'))
) \g /dev/null
select count(*) from public.ingest_interactions(
  pg_temp.id('user B'), jsonb_build_array(pg_temp.ev(0, 'b1', 'session B', 'view'))
) \g /dev/null
select count(*) from public.ingest_interactions(
  null, jsonb_build_array(pg_temp.ev(0, 'v1', 'session V', 'view', 'access-visitor'))
) \g /dev/null

-- Grants on every table and view, role by role.

select table_privs_are('public', t, 'anon', '{}', format('anon has no privilege on %s', t))
from unnest(array[
  'user_interactions', 'sessions', 'system_errors', 'session_metrics', 'daily_engagement'
]) as t;

select table_privs_are(
  'public', t, 'authenticated', array['SELECT'], format('authenticated may only select %s', t)
)
from unnest(array['user_interactions', 'sessions', 'session_metrics', 'daily_engagement']) as t;
select table_privs_are(
  'public', 'system_errors', 'authenticated', '{}',
  'authenticated has no privilege on system_errors'
);

select table_privs_are(
  'public', t, 'service_role', array['SELECT'], format('service_role may only select %s', t)
)
from unnest(array['user_interactions', 'sessions', 'session_metrics', 'daily_engagement']) as t;
select table_privs_are(
  'public', 'system_errors', 'service_role',
  array['DELETE', 'INSERT', 'REFERENCES', 'SELECT', 'TRIGGER', 'TRUNCATE', 'UPDATE'],
  'service_role has every privilege on system_errors'
);

select table_privs_are(
  'public', t, 'analyst', array['SELECT'], format('analyst may only select %s', t)
)
from unnest(array[
  'user_interactions', 'sessions', 'system_errors', 'session_metrics', 'daily_engagement'
]) as t;

select sequence_privs_are(
  'public', s, r, '{}', format('%s has no privilege on sequence %s', r, s)
)
from unnest(array['user_interactions_id_seq', 'system_errors_id_seq']) as s,
  unnest(array['anon', 'authenticated', 'analyst']) as r;

select function_privs_are(
  'public', 'engagement_score', array['integer', 'bigint'], r, array['EXECUTE'],
  format('%s may execute engagement_score', r)
)
from unnest(array['authenticated', 'service_role', 'analyst']) as r;
select function_privs_are(
  'public', 'engagement_score', array['integer', 'bigint'], 'anon', '{}',
  'anon may not execute engagement_score'
);

-- Policies: users read their own rows, analysts read all; nobody writes.

select policies_are(
  'public', 'user_interactions',
  array['users read their own interactions', 'analysts read all interactions'],
  'user_interactions has a read policy for users and one for analysts'
);
select policies_are(
  'public', 'sessions',
  array['users read their own sessions', 'analysts read all sessions'],
  'sessions has a read policy for users and one for analysts'
);
select policies_are(
  'public', 'system_errors', array['analysts read all errors'],
  'system_errors has a read policy for analysts only'
);
select results_eq(
  $$
    select tablename::text collate "default", policyname::text collate "default",
      array_to_string(roles, ', ') collate "default", cmd::text collate "default",
      qual collate "default", with_check collate "default"
    from pg_policies
    where schemaname = 'public'
      and tablename in ('user_interactions', 'sessions', 'system_errors')
    order by tablename, policyname
  $$,
  $$
    values
      ('sessions', 'analysts read all sessions', 'analyst', 'SELECT', 'true', null::text),
      ('sessions', 'users read their own sessions', 'authenticated', 'SELECT',
        '(user_id = ( SELECT auth.uid() AS uid))', null),
      ('system_errors', 'analysts read all errors', 'analyst', 'SELECT', 'true', null),
      ('user_interactions', 'analysts read all interactions', 'analyst', 'SELECT', 'true',
        null),
      ('user_interactions', 'users read their own interactions', 'authenticated', 'SELECT',
        '(user_id = ( SELECT auth.uid() AS uid))', null)
  $$,
  'every policy is a select policy for one role, users filtered by (select auth.uid())'
);

-- The analyst role: a read-only group role that cannot log in.

select is(
  (
    select array[rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb]
    from pg_roles where rolname = 'analyst'
  ),
  array[false, false, false, false, false],
  'analyst cannot log in and has no special powers'
);
select schema_privs_are('public', 'analyst', array['USAGE'], 'analyst may use schema public');

-- anon: reads nothing, writes nothing, calls nothing.

select pg_temp.become('anon');

select throws_ok(
  'select * from public.user_interactions', '42501',
  'permission denied for table user_interactions', 'anon cannot read user_interactions'
);
select throws_ok(
  'select * from public.sessions', '42501',
  'permission denied for table sessions', 'anon cannot read sessions'
);
select throws_ok(
  'select * from public.system_errors', '42501',
  'permission denied for table system_errors', 'anon cannot read system_errors'
);
select throws_ok(
  'select * from public.session_metrics', '42501',
  'permission denied for view session_metrics', 'anon cannot read session_metrics'
);
select throws_ok(
  'select * from public.daily_engagement', '42501',
  'permission denied for view daily_engagement', 'anon cannot read daily_engagement'
);
select throws_ok(
  $$
    insert into public.user_interactions (
      event_id, anonymous_id, event_type, entity_type, entity_id, occurred_at
    )
    values (gen_random_uuid(), 'access-visitor', 'view', 'event', 'e', now())
  $$,
  '42501', 'permission denied for table user_interactions',
  'anon cannot insert into user_interactions'
);
select throws_ok(
  $$
    insert into public.system_errors (category, context, error_message)
    values ('network', 'client', 'offline')
  $$,
  '42501', 'permission denied for table system_errors',
  'anon cannot insert into system_errors'
);
select throws_ok(
  $$ select * from public.ingest_interactions(null, '[]'::jsonb) $$,
  '42501', 'permission denied for function ingest_interactions',
  'anon cannot call ingest_interactions'
);
select throws_ok(
  'select public.engagement_score(5, 900000)', '42501',
  'permission denied for function engagement_score', 'anon cannot call engagement_score'
);

reset role;

-- authenticated as user A: their own rows only, read-only.

select pg_temp.become('authenticated', 'user A');

select results_eq(
  'select event_id, user_id from public.user_interactions order by event_id',
  $$
    select ids.id, pg_temp.id('user A') from ids where name in ('a1', 'a2') order by ids.id
  $$,
  'user A reads exactly their own interactions'
);
select results_eq(
  'select id, interaction_count, page_views from public.sessions',
  $$ values (pg_temp.id('session A'), 2, 1) $$,
  'user A reads exactly their own session'
);
select results_eq(
  'select session_id, interaction_count, engagement_score, bounce_rate from public.session_metrics',
  $$ values (pg_temp.id('session A'), 2, 10, 100) $$,
  'user A''s session_metrics hold only their own session'
);
select results_eq(
  'select day, sessions, users from public.daily_engagement',
  $$ values (date '1998-06-15', 1::bigint, 1::bigint) $$,
  'user A''s daily_engagement sums only their own sessions'
);
select is_empty(
  $$ select * from public.user_interactions where user_id = pg_temp.id('user B') $$,
  'user A cannot see user B''s interactions even by asking for them'
);
select is_empty(
  $$
    select * from public.sessions
    where id in (pg_temp.id('session B'), pg_temp.id('session V'))
  $$,
  'user A cannot see user B''s or the visitor''s sessions even by asking for them'
);
select throws_ok(
  'select * from public.system_errors', '42501',
  'permission denied for table system_errors', 'user A cannot read system_errors'
);
select throws_ok(
  $$
    insert into public.user_interactions (
      event_id, user_id, event_type, entity_type, entity_id, occurred_at
    )
    values (gen_random_uuid(), auth.uid(), 'view', 'event', 'e', now())
  $$,
  '42501', 'permission denied for table user_interactions',
  'user A cannot insert even their own interaction'
);
select throws_ok(
  $$ update public.sessions set interaction_count = 100 where user_id = auth.uid() $$,
  '42501', 'permission denied for table sessions',
  'user A cannot update their own session'
);
select throws_ok(
  $$ delete from public.user_interactions where user_id = auth.uid() $$,
  '42501', 'permission denied for table user_interactions',
  'user A cannot delete their own interactions'
);
select throws_ok(
  'truncate public.user_interactions', '42501',
  'permission denied for table user_interactions', 'user A cannot truncate user_interactions'
);
select throws_ok(
  $$ update public.session_metrics set interaction_count = 100 $$,
  '55000', 'cannot update view "session_metrics"',
  'user A cannot write through session_metrics'
);
select throws_ok(
  $$ select * from public.ingest_interactions(auth.uid(), '[]'::jsonb) $$,
  '42501', 'permission denied for function ingest_interactions',
  'user A cannot call ingest_interactions'
);
select is(public.engagement_score(5, 900000), 90, 'user A can compute an engagement score');

reset role;

-- authenticated as user B: their own rows, not user A's.

select pg_temp.become('authenticated', 'user B');

select results_eq(
  'select event_id from public.user_interactions',
  $$ values (pg_temp.id('b1')) $$,
  'user B reads exactly their own interaction'
);
select results_eq(
  'select id from public.sessions',
  $$ values (pg_temp.id('session B')) $$,
  'user B reads exactly their own session'
);
select results_eq(
  'select session_id, engagement_score from public.session_metrics',
  $$ values (pg_temp.id('session B'), 5) $$,
  'user B''s session_metrics hold only their own session'
);
select throws_ok(
  $$ delete from public.sessions where id = pg_temp.id('session A') $$,
  '42501', 'permission denied for table sessions',
  'user B cannot delete user A''s session'
);

reset role;

-- A signed-in request without a user id sees no one's rows.

select pg_temp.become('authenticated');

select is_empty(
  'select * from public.user_interactions',
  'authenticated without a sub claim reads no interactions'
);

reset role;

-- service_role: reads everything, writes only system_errors.

select pg_temp.become('service_role');

select results_eq(
  $$
    select event_id from public.user_interactions
    where event_id in (select id from ids where name in ('a1', 'a2', 'a3', 'b1', 'v1'))
    order by event_id
  $$,
  $$ select id from ids where name in ('a1', 'a2', 'b1', 'v1') order by id $$,
  'service_role reads every user''s and visitor''s interactions'
);
select results_eq(
  $$
    select session_id from public.session_metrics
    where session_id in (select id from ids where name like 'session %')
    order by session_id
  $$,
  $$ select id from ids where name like 'session %' order by id $$,
  'service_role reads every session''s metrics'
);
select results_eq(
  $$
    select user_id, error_message from public.system_errors
    where metadata -> 'request' ->> 'request_id' = pg_temp.id('request A')::text
  $$,
  $$ values (pg_temp.id('user A'), '1 of 3 events in the request were rejected') $$,
  'service_role reads system_errors'
);
select lives_ok(
  $$
    insert into public.system_errors (category, context, error_message)
    values ('database', 'track', 'connection reset')
  $$,
  'service_role writes system_errors'
);
select throws_ok(
  $$
    insert into public.user_interactions (
      event_id, anonymous_id, event_type, entity_type, entity_id, occurred_at
    )
    values (gen_random_uuid(), 'access-visitor', 'view', 'event', 'e', now())
  $$,
  '42501', 'permission denied for table user_interactions',
  'service_role cannot insert into user_interactions'
);
select throws_ok(
  $$ update public.sessions set page_views = 0 $$,
  '42501', 'permission denied for table sessions',
  'service_role cannot update sessions'
);
select throws_ok(
  $$ delete from public.user_interactions $$,
  '42501', 'permission denied for table user_interactions',
  'service_role cannot delete interactions'
);
select throws_ok(
  $$ select * from public.ingest_interactions(null, '[]'::jsonb) $$,
  '42501', 'permission denied for function ingest_interactions',
  'service_role cannot call ingest_interactions'
);

reset role;

-- analyst: reads every table and view, writes nothing.

select pg_temp.become('analyst');

select results_eq(
  $$
    select event_id from public.user_interactions
    where event_id in (select id from ids)
    order by event_id
  $$,
  $$ select id from ids where name in ('a1', 'a2', 'b1', 'v1') order by id $$,
  'analyst reads every user''s and visitor''s interactions'
);
select results_eq(
  $$
    select id, user_id, anonymous_id from public.sessions
    where id in (select id from ids) order by id
  $$,
  $$
    select id,
      case name when 'session A' then pg_temp.id('user A')
        when 'session B' then pg_temp.id('user B') end,
      case name when 'session V' then 'access-visitor' end
    from ids where name like 'session %' order by id
  $$,
  'analyst reads every session'
);
select results_eq(
  $$ select sessions, users from public.daily_engagement where day = '1998-06-15' $$,
  $$ values (3::bigint, 3::bigint) $$,
  'analyst reads daily_engagement over every session'
);
select results_eq(
  $$
    select error_message from public.system_errors
    where metadata -> 'request' ->> 'request_id' = pg_temp.id('request A')::text
  $$,
  $$ values ('1 of 3 events in the request were rejected') $$,
  'analyst reads system_errors'
);
select is(public.engagement_score(1, 0), 5, 'analyst can compute an engagement score');
select throws_ok(
  $$
    insert into public.user_interactions (
      event_id, anonymous_id, event_type, entity_type, entity_id, occurred_at
    )
    values (gen_random_uuid(), 'access-visitor', 'view', 'event', 'e', now())
  $$,
  '42501', 'permission denied for table user_interactions',
  'analyst cannot insert into user_interactions'
);
select throws_ok(
  $$ update public.sessions set page_views = 0 $$,
  '42501', 'permission denied for table sessions',
  'analyst cannot update sessions'
);
select throws_ok(
  $$ delete from public.system_errors $$,
  '42501', 'permission denied for table system_errors',
  'analyst cannot delete system_errors'
);
select throws_ok(
  $$
    insert into public.system_errors (category, context, error_message)
    values ('network', 'client', 'offline')
  $$,
  '42501', 'permission denied for table system_errors',
  'analyst cannot insert into system_errors'
);
select throws_ok(
  'truncate public.sessions', '42501',
  'permission denied for table sessions', 'analyst cannot truncate sessions'
);
select throws_ok(
  $$ select * from public.ingest_interactions(null, '[]'::jsonb) $$,
  '42501', 'permission denied for function ingest_interactions',
  'analyst cannot call ingest_interactions'
);

reset role;

select * from finish();
rollback;
