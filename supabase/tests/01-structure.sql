-- The shape of the schema: tables, columns, keys, constraints, indexes, row
-- level security, views and functions, and their documentation.
begin;
select plan(72);

-- Tables and columns: name, type, not null, identity, default, in order.

select has_table('public', t, format('public.%s exists', t))
from unnest(
  array['user_interactions', 'interaction_event_ids', 'sessions', 'system_errors']
) as t;

select results_eq(
  $$
    select a.attname::text collate "default", format_type(a.atttypid, a.atttypmod), a.attnotnull,
      a.attidentity::text, pg_get_expr(d.adbin, d.adrelid) collate "default"
    from pg_attribute a
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where a.attrelid = 'public.user_interactions'::regclass and a.attnum > 0
      and not a.attisdropped
    order by a.attnum
  $$,
  $$
    values
      ('id', 'bigint', true, 'a', null::text),
      ('event_id', 'uuid', true, '', null),
      ('user_id', 'uuid', false, '', null),
      ('anonymous_id', 'text', false, '', null),
      ('session_id', 'uuid', false, '', null),
      ('event_type', 'text', true, '', null),
      ('entity_type', 'text', true, '', null),
      ('entity_id', 'text', true, '', null),
      ('metadata', 'jsonb', true, '', '''{}''::jsonb'),
      ('occurred_at', 'timestamp with time zone', true, '', null),
      ('client_timestamp', 'timestamp with time zone', false, '', null),
      ('received_at', 'timestamp with time zone', true, '', 'now()')
  $$,
  'user_interactions has its columns with their types, nullability and defaults'
);

select results_eq(
  $$
    select a.attname::text collate "default", format_type(a.atttypid, a.atttypmod), a.attnotnull,
      a.attidentity::text, pg_get_expr(d.adbin, d.adrelid) collate "default"
    from pg_attribute a
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where a.attrelid = 'public.interaction_event_ids'::regclass and a.attnum > 0
      and not a.attisdropped
    order by a.attnum
  $$,
  $$
    values
      ('event_id', 'uuid', true, '', null::text),
      ('occurred_at', 'timestamp with time zone', true, '', null)
  $$,
  'interaction_event_ids has its columns with their types, nullability and defaults'
);

select results_eq(
  $$
    select a.attname::text collate "default", format_type(a.atttypid, a.atttypmod), a.attnotnull,
      a.attidentity::text, pg_get_expr(d.adbin, d.adrelid) collate "default"
    from pg_attribute a
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where a.attrelid = 'public.sessions'::regclass and a.attnum > 0 and not a.attisdropped
    order by a.attnum
  $$,
  $$
    values
      ('id', 'uuid', true, '', null::text),
      ('user_id', 'uuid', false, '', null),
      ('anonymous_id', 'text', false, '', null),
      ('started_at', 'timestamp with time zone', true, '', null),
      ('last_seen_at', 'timestamp with time zone', true, '', null),
      ('interaction_count', 'integer', true, '', '0'),
      ('page_views', 'integer', true, '', '0')
  $$,
  'sessions has its columns with their types, nullability and defaults'
);

select results_eq(
  $$
    select a.attname::text collate "default", format_type(a.atttypid, a.atttypmod), a.attnotnull,
      a.attidentity::text, pg_get_expr(d.adbin, d.adrelid) collate "default"
    from pg_attribute a
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where a.attrelid = 'public.system_errors'::regclass and a.attnum > 0
      and not a.attisdropped
    order by a.attnum
  $$,
  $$
    values
      ('id', 'bigint', true, 'a', null::text),
      ('category', 'text', true, '', null),
      ('context', 'text', true, '', null),
      ('error_message', 'text', true, '', null),
      ('error_stack', 'text', false, '', null),
      ('metadata', 'jsonb', true, '', '''{}''::jsonb'),
      ('user_id', 'uuid', false, '', null),
      ('timestamp', 'timestamp with time zone', true, '', 'now()')
  $$,
  'system_errors has its columns with their types, nullability and defaults'
);

-- Keys.

select col_is_pk(
  'public', 'user_interactions', array['id', 'occurred_at'],
  'user_interactions has the primary key (id, occurred_at), as its partitioning requires'
);
select col_is_pk(
  'public', 'interaction_event_ids', 'event_id',
  'interaction_event_ids.event_id is the primary key: an event id is registered once'
);
select col_is_pk('public', 'sessions', 'id', 'sessions.id is the primary key');
select col_is_pk('public', 'system_errors', 'id', 'system_errors.id is the primary key');

select results_eq(
  $$
    select c.conrelid::regclass::text, c.conname::text collate "default", c.confrelid::regclass::text,
      c.confdeltype::text
    from pg_constraint c
    where c.contype = 'f'
      and c.conrelid in (
        'public.user_interactions'::regclass, 'public.sessions'::regclass,
        'public.system_errors'::regclass
      )
    order by 1, 2
  $$,
  $$
    values
      ('sessions', 'sessions_user_id_fkey', 'auth.users', 'c'),
      ('system_errors', 'system_errors_user_id_fkey', 'auth.users', 'n'),
      ('user_interactions', 'user_interactions_user_id_fkey', 'auth.users', 'c')
  $$,
  'user_id references auth.users: cascading for events and sessions, set null for errors'
);
select fk_ok(
  'public', 'user_interactions', 'user_id', 'auth', 'users', 'id',
  'user_interactions.user_id references auth.users.id'
);
select fk_ok(
  'public', 'sessions', 'user_id', 'auth', 'users', 'id',
  'sessions.user_id references auth.users.id'
);
select fk_ok(
  'public', 'system_errors', 'user_id', 'auth', 'users', 'id',
  'system_errors.user_id references auth.users.id'
);

-- Check constraints, by name (02-constraints.sql tests what each accepts).

select results_eq(
  $$
    select conrelid::regclass::text, conname::text collate "default"
    from pg_constraint
    where contype = 'c'
      and conrelid in (
        'public.user_interactions'::regclass, 'public.sessions'::regclass,
        'public.system_errors'::regclass
      )
    order by 1, 2
  $$,
  $$
    values
      ('sessions', 'sessions_anonymous_id_length'),
      ('sessions', 'sessions_interaction_count_non_negative'),
      ('sessions', 'sessions_last_seen_not_before_start'),
      ('sessions', 'sessions_one_principal'),
      ('sessions', 'sessions_page_views_non_negative'),
      ('sessions', 'sessions_page_views_within_interactions'),
      ('system_errors', 'system_errors_category_valid'),
      ('system_errors', 'system_errors_metadata_is_object'),
      ('user_interactions', 'user_interactions_anonymous_id_length'),
      ('user_interactions', 'user_interactions_entity_id_length'),
      ('user_interactions', 'user_interactions_entity_type_valid'),
      ('user_interactions', 'user_interactions_event_type_valid'),
      ('user_interactions', 'user_interactions_metadata_is_object'),
      ('user_interactions', 'user_interactions_occurred_not_after_received'),
      ('user_interactions', 'user_interactions_principal_present')
  $$,
  'the tables carry exactly the named check constraints'
);

-- Indexes.

select indexes_are(
  'public', 'user_interactions',
  array[
    'user_interactions_pkey', 'user_interactions_user_id_occurred_at_idx',
    'user_interactions_session_id_idx'
  ],
  'user_interactions has its key, per-user and per-session indexes'
);
select indexes_are(
  'public', 'interaction_event_ids',
  array['interaction_event_ids_pkey', 'interaction_event_ids_occurred_at_idx'],
  'interaction_event_ids has its key and time indexes'
);
select indexes_are(
  'public', 'sessions',
  array[
    'sessions_pkey', 'sessions_user_id_idx', 'sessions_started_at_idx',
    'sessions_start_day_utc_idx'
  ],
  'sessions has its key, per-user, start-time and start-day indexes'
);
select indexes_are(
  'public', 'system_errors',
  array['system_errors_pkey', 'system_errors_timestamp_idx', 'system_errors_user_id_idx'],
  'system_errors has its key, time and per-user indexes'
);
select has_index(
  'public', 'user_interactions', 'user_interactions_user_id_occurred_at_idx',
  array['user_id', 'occurred_at'], 'user_interactions is indexed on (user_id, occurred_at)'
);
select has_index(
  'public', 'user_interactions', 'user_interactions_session_id_idx', array['session_id'],
  'user_interactions is indexed on session_id'
);
select has_index(
  'public', 'interaction_event_ids', 'interaction_event_ids_occurred_at_idx',
  array['occurred_at'], 'interaction_event_ids is indexed on occurred_at'
);
select index_is_type(
  'public', 'interaction_event_ids', 'interaction_event_ids_occurred_at_idx', 'brin',
  'the occurred_at index of interaction_event_ids is a block range (brin) index'
);
select has_index(
  'public', 'sessions', 'sessions_user_id_idx', array['user_id'],
  'sessions is indexed on user_id'
);
select has_index(
  'public', 'sessions', 'sessions_started_at_idx', array['started_at'],
  'sessions is indexed on started_at'
);
select has_index(
  'public', 'sessions', 'sessions_start_day_utc_idx',
  '(((started_at AT TIME ZONE ''UTC''::text))::date)',
  'sessions is indexed on the UTC day it started, the day of daily_engagement'
);
select has_index(
  'public', 'system_errors', 'system_errors_timestamp_idx', array['"timestamp"'],
  'system_errors is indexed on timestamp'
);
select has_index(
  'public', 'system_errors', 'system_errors_user_id_idx', array['user_id'],
  'system_errors is indexed on user_id'
);

-- Each index serves the query it exists for. With sequential scans off, as
-- on a large table, the planner must choose it; running the query (explain
-- analyze) also records the use in the statistics. On the partitioned
-- user_interactions, every partition's copy of the index must be used.
-- (A statement that writes is only planned, not run.)
create function pg_temp.plan_of(p_query text, p_run boolean default true) returns text
language plpgsql
as $$
declare
  v_line text;
  v_plan text := '';
begin
  for v_line in execute
    case when p_run then 'explain (analyze, costs off, timing off, summary off) '
      else 'explain (costs off) '
    end || p_query
  loop
    v_plan := v_plan || v_line || E'\n';
  end loop;
  return v_plan;
end;
$$;

-- The indexes a plan reads, by name.
create function pg_temp.indexes_in(p_plan text) returns setof text
language sql
as $$
  select m[1]
  from regexp_matches(p_plan, 'Index (?:Only )?Scan (?:Backward )?(?:using|on) (\S+)', 'g') as m
$$;

-- The partitions' copies of a partitioned index.
create function pg_temp.partition_indexes(p_index regclass) returns setof text
language sql
as $$
  select c.relname::text
  from pg_inherits i join pg_class c on c.oid = i.inhrelid
  where i.inhparent = p_index
$$;

set local enable_seqscan = off;

select set_eq(
  $$
    select pg_temp.indexes_in(pg_temp.plan_of($q$
      select * from public.user_interactions
      where user_id = '00000000-0000-4000-8000-000000000001'
      order by occurred_at desc limit 50
    $q$))
  $$,
  $$ select pg_temp.partition_indexes('public.user_interactions_user_id_occurred_at_idx') $$,
  'a user''s latest interactions are read through user_interactions_user_id_occurred_at_idx, '
    || 'in every partition'
);
select set_eq(
  $$
    select pg_temp.indexes_in(pg_temp.plan_of($q$
      select count(*) from public.user_interactions
      where session_id = '00000000-0000-4000-8000-000000000002'
    $q$))
  $$,
  $$ select pg_temp.partition_indexes('public.user_interactions_session_id_idx') $$,
  'a session''s interactions are read through user_interactions_session_id_idx, '
    || 'in every partition'
);

-- Retention's own statement, read from public.maintain_interaction_partitions,
-- with its cutoff variable as the parameter PL/pgSQL passes.
select format(
  'prepare retention_deletes_event_ids (timestamptz) as %s',
  coalesce(
    (
      select replace(m[1], 'v_cutoff', '$1')
      from pg_proc p
      cross join lateral regexp_match(
        p.prosrc, '(delete from public\.interaction_event_ids\s[^;]*);'
      ) as m
      where p.oid = 'public.maintain_interaction_partitions(integer, interval, interval)'
        ::regprocedure
    ),
    'select where $1 is null'
  )
) \gexec

select is(
  (
    select regexp_replace(statement, '\s+', ' ', 'g')
    from pg_prepared_statements where name = 'retention_deletes_event_ids'
  ),
  'prepare retention_deletes_event_ids (timestamptz) as delete from '
    || 'public.interaction_event_ids where occurred_at < $1',
  'retention deletes old event ids by occurred_at alone'
);
set local plan_cache_mode = force_custom_plan;
select alike(
  pg_temp.plan_of($$
    execute retention_deletes_event_ids(
      date_trunc('month', now() - interval '13 months', 'UTC')
    )
  $$, false),
  '%Bitmap Index Scan on interaction_event_ids_occurred_at_idx%',
  'retention''s delete, planned for its cutoff as each daily run plans it, finds old event '
    || 'ids through interaction_event_ids_occurred_at_idx'
);
-- Run for a cutoff that removes nothing, which records the index's use.
set local plan_cache_mode = force_generic_plan;
select alike(
  pg_temp.plan_of($$ execute retention_deletes_event_ids('-infinity') $$),
  '%Bitmap Index Scan on interaction_event_ids_occurred_at_idx%',
  'retention''s delete, planned for any cutoff (a generic plan, as later runs in one session '
    || 'may use), finds old event ids through interaction_event_ids_occurred_at_idx'
);
set local plan_cache_mode = auto;
deallocate retention_deletes_event_ids;
select alike(
  pg_temp.plan_of($$
    select * from public.sessions where user_id = '00000000-0000-4000-8000-000000000001'
  $$),
  '%sessions_user_id_idx%',
  'a user''s sessions are read through sessions_user_id_idx'
);
select alike(
  pg_temp.plan_of($$
    select * from public.session_metrics where started_at >= '2999-01-01T00:00:00Z'
  $$),
  '%sessions_started_at_idx%',
  'session metrics over a time range are read through sessions_started_at_idx'
);
select alike(
  pg_temp.plan_of($$
    select * from public.daily_engagement where day = '2999-01-01'
  $$),
  '%Index Scan % sessions_start_day_utc_idx%'
    || 'Index Cond: (((started_at AT TIME ZONE ''UTC''::text))::date = ''2999-01-01''::date)%',
  'daily_engagement of one day is read through sessions_start_day_utc_idx, the view''s day '
    || 'being the indexed expression'
);
select alike(
  pg_temp.plan_of($$
    select * from public.system_errors
    where "timestamp" >= '2999-01-01T00:00:00Z' order by "timestamp" desc
  $$),
  '%system_errors_timestamp_idx%',
  'recent errors are read through system_errors_timestamp_idx'
);
select alike(
  pg_temp.plan_of($$
    select * from public.system_errors where user_id = '00000000-0000-4000-8000-000000000001'
  $$),
  '%system_errors_user_id_idx%',
  'a user''s errors are read through system_errors_user_id_idx'
);

reset enable_seqscan;

-- Row level security.

select ok(
  (select relrowsecurity from pg_class where oid = 'public.user_interactions'::regclass),
  'row level security is enabled on user_interactions'
);
select ok(
  (select relrowsecurity from pg_class where oid = 'public.interaction_event_ids'::regclass),
  'row level security is enabled on interaction_event_ids'
);
select ok(
  (select relrowsecurity from pg_class where oid = 'public.sessions'::regclass),
  'row level security is enabled on sessions'
);
select ok(
  (select relrowsecurity from pg_class where oid = 'public.system_errors'::regclass),
  'row level security is enabled on system_errors'
);

-- Views.

select has_view('public', v, format('public.%s exists', v))
from unnest(array['session_metrics', 'daily_engagement']) as v;
select columns_are(
  'public', 'session_metrics',
  array[
    'session_id', 'user_id', 'anonymous_id', 'started_at', 'last_seen_at', 'duration_ms',
    'interaction_count', 'page_views', 'engagement_score', 'bounce_rate'
  ],
  'session_metrics has its columns'
);
select columns_are(
  'public', 'daily_engagement',
  array['day', 'sessions', 'users', 'avg_duration_ms', 'avg_engagement_score', 'bounce_rate'],
  'daily_engagement has its columns'
);
select results_eq(
  $$
    select a.attname::text collate "default", format_type(a.atttypid, a.atttypmod)
    from pg_attribute a
    where a.attrelid = 'public.session_metrics'::regclass and a.attnum > 0
    order by a.attnum
  $$,
  $$
    values
      ('session_id', 'uuid'), ('user_id', 'uuid'), ('anonymous_id', 'text'),
      ('started_at', 'timestamp with time zone'), ('last_seen_at', 'timestamp with time zone'),
      ('duration_ms', 'bigint'), ('interaction_count', 'integer'), ('page_views', 'integer'),
      ('engagement_score', 'integer'), ('bounce_rate', 'integer')
  $$,
  'session_metrics columns have their types'
);
select results_eq(
  $$
    select a.attname::text collate "default", format_type(a.atttypid, a.atttypmod)
    from pg_attribute a
    where a.attrelid = 'public.daily_engagement'::regclass and a.attnum > 0
    order by a.attnum
  $$,
  $$
    values
      ('day', 'date'), ('sessions', 'bigint'), ('users', 'bigint'),
      ('avg_duration_ms', 'bigint'), ('avg_engagement_score', 'numeric'),
      ('bounce_rate', 'numeric')
  $$,
  'daily_engagement columns have their types'
);
select is(
  (select reloptions from pg_class where oid = 'public.session_metrics'::regclass),
  array['security_invoker=true'],
  'session_metrics runs with the reader''s rights (security_invoker)'
);
select is(
  (select reloptions from pg_class where oid = 'public.daily_engagement'::regclass),
  array['security_invoker=true'],
  'daily_engagement runs with the reader''s rights (security_invoker)'
);

-- Functions.

select has_function(
  'public', 'ingest_interactions', array['uuid', 'jsonb', 'jsonb', 'jsonb'],
  'ingest_interactions(uuid, jsonb, jsonb, jsonb) exists'
);
select is(
  (
    select pg_get_function_arguments(p.oid) || ' -> ' || pg_get_function_result(p.oid)
    from pg_proc p
    where p.oid = 'public.ingest_interactions(uuid, jsonb, jsonb, jsonb)'::regprocedure
  ),
  'p_user_id uuid, p_events jsonb, p_rejected jsonb DEFAULT ''[]''::jsonb, '
    || 'p_context jsonb DEFAULT ''{}''::jsonb -> '
    || 'TABLE(event_index integer, event_id uuid, outcome text, path text, reason text)',
  'ingest_interactions has the argument names, defaults and result columns callers rely on'
);
select is_definer(
  'public', 'ingest_interactions', array['uuid', 'jsonb', 'jsonb', 'jsonb'],
  'ingest_interactions is security definer'
);
select volatility_is(
  'public', 'ingest_interactions', array['uuid', 'jsonb', 'jsonb', 'jsonb'], 'volatile',
  'ingest_interactions is volatile'
);
select function_lang_is(
  'public', 'ingest_interactions', array['uuid', 'jsonb', 'jsonb', 'jsonb'], 'plpgsql',
  'ingest_interactions is written in plpgsql'
);
select is(
  (
    select pg_get_userbyid(proowner)::text from pg_proc
    where oid = 'public.ingest_interactions(uuid, jsonb, jsonb, jsonb)'::regprocedure
  ),
  'postgres',
  'ingest_interactions is owned by postgres, the role the track function connects as'
);
select has_function(
  'public', 'maintain_interaction_partitions', array['integer', 'interval', 'interval'],
  'maintain_interaction_partitions(integer, interval, interval) exists'
);
select is(
  (
    select pg_get_function_arguments(p.oid) || ' -> ' || pg_get_function_result(p.oid)
    from pg_proc p
    where p.oid
      = 'public.maintain_interaction_partitions(integer, interval, interval)'::regprocedure
  ),
  'p_months_ahead integer DEFAULT 3, p_retention interval DEFAULT ''1 year 1 mon''::interval, '
    || 'p_error_retention interval DEFAULT ''30 days''::interval -> jsonb',
  'maintain_interaction_partitions keeps 3 months ahead, 13 months of events and 30 days of '
    || 'errors by default'
);
select isnt_definer(
  'public', 'maintain_interaction_partitions', array['integer', 'interval', 'interval'],
  'maintain_interaction_partitions runs with the caller''s rights'
);
select volatility_is(
  'public', 'maintain_interaction_partitions', array['integer', 'interval', 'interval'],
  'volatile', 'maintain_interaction_partitions is volatile'
);
select is(
  (
    select proconfig from pg_proc
    where oid = 'public.maintain_interaction_partitions(integer, interval, interval)'::regprocedure
  ),
  array['search_path=""', 'TimeZone=UTC', 'lock_timeout=3s'],
  'maintain_interaction_partitions works in UTC and waits at most 3 seconds for a lock'
);
select has_function(
  'public', 'engagement_score', array['integer', 'bigint'],
  'engagement_score(integer, bigint) exists'
);
select function_returns(
  'public', 'engagement_score', array['integer', 'bigint'], 'integer',
  'engagement_score returns integer'
);
select isnt_definer(
  'public', 'engagement_score', array['integer', 'bigint'],
  'engagement_score runs with the caller''s rights'
);
select volatility_is(
  'public', 'engagement_score', array['integer', 'bigint'], 'immutable',
  'engagement_score is immutable'
);
select is(
  (
    select proparallel::text from pg_proc
    where oid = 'public.engagement_score(integer, bigint)'::regprocedure
  ),
  's',
  'engagement_score is parallel safe'
);
select is_empty(
  $$
    select p.oid::regprocedure::text
    from pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and not coalesce(p.proconfig @> array['search_path=""'], false)
  $$,
  'every function in public sets search_path to the empty string'
);

-- Documentation: every table, view, column and function says what it is.

select is_empty(
  $$
    select c.relname::text
    from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v')
      and obj_description(c.oid, 'pg_class') is null
  $$,
  'every table and view in public has a comment'
);
select is_empty(
  $$
    select c.relname || '.' || a.attname
    from pg_class c
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v')
      and col_description(c.oid, a.attnum) is null
  $$,
  'every column of every table and view in public has a comment'
);
select is_empty(
  $$
    select p.oid::regprocedure::text
    from pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and obj_description(p.oid, 'pg_proc') is null
  $$,
  'every function in public has a comment'
);

select * from finish();
rollback;
