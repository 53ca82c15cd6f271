-- user_interactions partitioned by month: the layout, the maintenance job
-- that creates partitions ahead of time and applies retention, and event ids
-- that stay unique across partitions. Runs in a time zone far from UTC, as a
-- client's session may: months are UTC months whatever it is.
begin;
select plan(58);

set local timezone = 'America/New_York';

-- Names for the random ids of this run, as in 03-ingestion.sql:
-- pg_temp.id('e1') is the same uuid every time it is asked for within the
-- run, and a new one each run. Immutable, so a query naming one reads the
-- table once, not once per row. Events and sessions named are listed in ids.
select format(
  'create function pg_temp.id(p_name text) returns uuid language sql immutable as %L',
  format('select md5(%L || p_name)::uuid', gen_random_uuid())
) \gexec

create temp table ids (name text primary key, id uuid not null);

create function pg_temp.named(p_name text) returns uuid
language sql
as $$
  insert into ids (name, id) values (p_name, pg_temp.id(p_name)) on conflict (name) do nothing;
  select pg_temp.id(p_name);
$$;

-- The start of the UTC month p_offset months from the current one.
create function pg_temp.month(p_offset integer) returns timestamptz
language sql
stable
as $$
  select (date_trunc('month', now() at time zone 'UTC') + make_interval(months => p_offset))
    at time zone 'UTC'
$$;

-- The name of that month's partition.
create function pg_temp.partition_of(p_offset integer) returns text
language sql
stable
as $$
  select 'interaction_partitions.user_interactions_'
    || to_char(pg_temp.month(p_offset) at time zone 'UTC', 'YYYY_MM')
$$;

-- The partitions of user_interactions other than the default, with their range.
create function pg_temp.monthly_partitions()
returns table (name text, starts timestamptz, ends timestamptz)
language sql
as $$
  select c.oid::regclass::text, b[1]::timestamptz, b[2]::timestamptz
  from pg_inherits i
  join pg_class c on c.oid = i.inhrelid
  cross join lateral regexp_match(
    pg_get_expr(c.relpartbound, c.oid),
    '^FOR VALUES FROM \(''([^'']+)''\) TO \(''([^'']+)''\)$'
  ) as b
  where i.inhparent = 'public.user_interactions'::regclass and b is not null
$$;

-- Creates the partition of the month p_offset months away unless one covers it.
create function pg_temp.ensure_partition(p_offset integer) returns void
language plpgsql
as $$
begin
  if not exists (
    select from pg_temp.monthly_partitions() p
    where p.starts < pg_temp.month(p_offset + 1) and p.ends > pg_temp.month(p_offset)
  ) then
    execute format(
      'create table %s partition of public.user_interactions for values from (%L) to (%L)',
      pg_temp.partition_of(p_offset), pg_temp.month(p_offset), pg_temp.month(p_offset + 1)
    );
  end if;
end;
$$;

-- One anonymous event as the track function passes it.
create function pg_temp.ev(
  p_index integer, p_event text, p_session text, p_event_type text, p_occurred_at timestamptz,
  p_received_at timestamptz default null
) returns jsonb
language sql
as $$
  select jsonb_build_object(
    'index', p_index,
    'event_id', pg_temp.named(p_event),
    'session_id', case when p_session is not null then pg_temp.named(p_session) end,
    'anonymous_id', 'visitor-' || pg_temp.id('visitor'),
    'event_type', p_event_type,
    'entity_type', 'artist',
    'entity_id', 'artist-456',
    'metadata', '{"artist_name": "The Weeknd"}'::jsonb,
    'occurred_at', p_occurred_at,
    'client_timestamp', null,
    'received_at', coalesce(p_received_at, p_occurred_at + interval '1 second')
  )
$$;

-- One anonymous request; its outcomes, in index order.
create function pg_temp.ingest(variadic p_events jsonb[]) returns setof text
language sql
as $$
  select r.outcome
  from public.ingest_interactions(null, to_jsonb(p_events)) r
  order by r.event_index
$$;

-- Where the named event is stored: the partition of each of its rows.
create function pg_temp.stored_in(p_event text) returns setof text
language sql
as $$
  select ui.tableoid::regclass::text
  from public.user_interactions ui
  where ui.event_id = (select pg_temp.id(p_event))
$$;

-- The layout.

select is(
  pg_get_partkeydef('public.user_interactions'::regclass),
  'RANGE (occurred_at)',
  'user_interactions is partitioned by range on occurred_at'
);
select has_schema('interaction_partitions', 'the partitions live in schema interaction_partitions');
select is(
  (
    select pg_get_expr(c.relpartbound, c.oid)
    from pg_class c
    where c.oid = 'interaction_partitions.user_interactions_default'::regclass
  ),
  'DEFAULT',
  'user_interactions_default takes the rows no monthly partition covers'
);
select set_has(
  $$ select name, starts, ends from pg_temp.monthly_partitions() $$,
  $$
    select pg_temp.partition_of(m) as name, pg_temp.month(m) as starts,
      pg_temp.month(m + 1) as ends
    from generate_series(-1, 3) as m
  $$,
  'the previous month, the current month and the next 3 have their partition'
);
select is_empty(
  $$
    select name from pg_temp.monthly_partitions()
    where name <> 'interaction_partitions.user_interactions_'
        || to_char(starts at time zone 'UTC', 'YYYY_MM')
      or starts <> date_trunc('month', starts at time zone 'UTC') at time zone 'UTC'
      or ends <> (starts at time zone 'UTC' + interval '1 month') at time zone 'UTC'
  $$,
  'every monthly partition spans one UTC calendar month and is named after it'
);
select is_empty(
  $$
    select p.relid::regclass::text, c.conname
    from pg_partition_tree('public.user_interactions') p
    cross join pg_constraint c
    where p.isleaf and c.conrelid = 'public.user_interactions'::regclass
      and c.contype in ('c', 'f')
      and not exists (
        select from pg_constraint pc
        where pc.conrelid = p.relid and pc.conname = c.conname
          and pg_get_constraintdef(pc.oid) = pg_get_constraintdef(c.oid)
      )
  $$,
  'every partition carries every check and foreign key constraint of user_interactions'
);
select is_empty(
  $$
    select p.relid::regclass::text, x.indexrelid::regclass::text
    from pg_partition_tree('public.user_interactions') p
    cross join pg_index x
    where p.isleaf and x.indrelid = 'public.user_interactions'::regclass
      and not exists (
        select from pg_inherits i
        join pg_index px on px.indexrelid = i.inhrelid
        where i.inhparent = x.indexrelid and px.indrelid = p.relid
      )
  $$,
  'every partition has its copy of every index of user_interactions'
);
select is_empty(
  $$
    select r
    from unnest(array['anon', 'authenticated', 'service_role', 'analyst']) as r
    where has_schema_privilege(r, 'interaction_partitions', 'usage')
       or has_schema_privilege(r, 'interaction_partitions', 'create')
  $$,
  'no API role and not the analyst may use schema interaction_partitions'
);
select is_empty(
  $$
    select p.relid::regclass::text, r
    from pg_partition_tree('public.user_interactions') p,
      unnest(array['anon', 'authenticated', 'service_role', 'analyst']) as r,
      unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) as privilege
    where p.isleaf and has_table_privilege(r, p.relid, privilege)
  $$,
  'no API role and not the analyst holds any privilege on a partition'
);

-- The event id registry: analysts read it, nobody else.

select table_privs_are(
  'public', 'interaction_event_ids', r, '{}',
  format('%s has no privilege on interaction_event_ids', r)
)
from unnest(array['anon', 'authenticated', 'service_role']) as r;
select table_privs_are(
  'public', 'interaction_event_ids', 'analyst', array['SELECT'],
  'analyst may only select interaction_event_ids'
);
select policies_are(
  'public', 'interaction_event_ids', array['analysts read all event ids'],
  'interaction_event_ids has a read policy for analysts only'
);

-- The maintenance function and its job.

select function_privs_are(
  'public', 'maintain_interaction_partitions', array['integer', 'interval', 'interval'], r, '{}',
  format('%s may not execute maintain_interaction_partitions', r)
)
from unnest(array['anon', 'authenticated', 'service_role', 'analyst']) as r;
select throws_ok(
  $$ select public.maintain_interaction_partitions(-1) $$,
  '22023',
  'p_months_ahead must be 0 or more, not -1',
  'a negative number of months ahead is refused'
);
select throws_ok(
  $$ select public.maintain_interaction_partitions(3, interval '0 days') $$,
  '22023',
  'p_retention must be a positive interval, not 00:00:00',
  'an empty retention window is refused'
);
select throws_ok(
  $$ select public.maintain_interaction_partitions(3, interval '13 months', null) $$,
  '22023',
  'p_error_retention must be a positive interval, not null',
  'a missing error retention is refused'
);
select results_eq(
  $$
    select schedule, command, active, database, username
    from cron.job where jobname = 'maintain-interaction-partitions'
  $$,
  $$
    values (
      '17 3 * * *'::text,
      'select public.maintain_interaction_partitions(3, interval ''13 months'', '
        || 'interval ''30 days'')',
      true,
      'postgres'::text,
      'postgres'::text
    )
  $$,
  'pg_cron runs the maintenance daily at 03:17 with 3 months ahead, 13 months of events '
    || 'and 30 days of errors'
);

-- Idempotency across partitions: retries whose corrected times fall in
-- another month than the stored event are still duplicates.

select results_eq(
  $$
    select pg_temp.ingest(
      pg_temp.ev(0, 'e1', 'session S', 'view', pg_temp.month(0) - interval '1 second'),
      pg_temp.ev(1, 'e2', 'session S', 'click', pg_temp.month(0) + interval '1 minute')
    )
  $$,
  $$ values ('accepted'), ('accepted') $$,
  'two events either side of the start of the month are accepted'
);
select results_eq(
  $$
    select pg_temp.ingest(
      pg_temp.ev(0, 'e1', 'session S', 'view', pg_temp.month(0) + interval '5 seconds'),
      pg_temp.ev(1, 'e2', 'session S', 'click', pg_temp.month(0) - interval '2 seconds'),
      pg_temp.ev(2, 'e3', 'session S', 'view', pg_temp.month(0) - interval '3 seconds'),
      pg_temp.ev(3, 'e3', 'session S', 'view', pg_temp.month(0) + interval '3 seconds')
    )
  $$,
  $$ values ('duplicate'), ('duplicate'), ('accepted'), ('duplicate') $$,
  'retries timed in the other month are duplicates, in a later batch and within one batch'
);
select results_eq(
  $$
    select name, p from unnest(array['e1', 'e2', 'e3']) as name, pg_temp.stored_in(name) as p
    order by name
  $$,
  format(
    'values (%1$L, %2$L), (%3$L, %4$L), (%5$L, %2$L)',
    'e1', pg_temp.partition_of(-1), 'e2', pg_temp.partition_of(0), 'e3'
  ),
  'each event is stored once, in the partition of its first accepted time'
);
select results_eq(
  $$
    select k.event_id, k.occurred_at from public.interaction_event_ids k
    where k.event_id in (pg_temp.id('e1'), pg_temp.id('e2'), pg_temp.id('e3'))
    order by k.occurred_at
  $$,
  $$
    values
      (pg_temp.id('e3'), pg_temp.month(0) - interval '3 seconds'),
      (pg_temp.id('e1'), pg_temp.month(0) - interval '1 second'),
      (pg_temp.id('e2'), pg_temp.month(0) + interval '1 minute')
  $$,
  'each event id is registered once, with the time of its stored event'
);
select results_eq(
  $$
    select started_at, last_seen_at, interaction_count, page_views
    from public.sessions where id = pg_temp.id('session S')
  $$,
  $$
    values (pg_temp.month(0) - interval '3 seconds', pg_temp.month(0) + interval '1 minute', 3, 2)
  $$,
  'the session spanning two partitions counts each of its three events once'
);

-- Two requests at once for one event, timed in different months, on two
-- more connections that commit for real: the second waits, then finds a
-- duplicate. Their rows are removed at once. (This comes before anything
-- below creates or drops a partition: that locks the table until the end.)

create extension dblink with schema extensions;

do $$
begin
  perform dblink_connect(c, format(
    'host=%s port=%s dbname=%s user=postgres password=postgres',
    host(inet_server_addr()), inet_server_port(), current_database()
  ))
  from unnest(array['first', 'second']) as c;
end
$$;

create function pg_temp.ingest_sql(p_event jsonb) returns text
language sql
as $$
  select format(
    'select outcome from public.ingest_interactions(null, %L::jsonb)',
    jsonb_build_array(p_event)
  )
$$;

do $$ begin perform dblink_exec('first', 'begin'); end $$;
select results_eq(
  format(
    'select * from dblink(%L, %L) as r (outcome text)',
    'first',
    pg_temp.ingest_sql(pg_temp.ev(0, 'c1', null, 'view', pg_temp.month(0) - interval '1 second'))
  ),
  $$ values ('accepted') $$,
  'the first request stores the event in the previous month (not yet committed)'
);
do $$
begin
  perform dblink_send_query('second', pg_temp.ingest_sql(
    pg_temp.ev(0, 'c1', null, 'view', pg_temp.month(0) + interval '1 second')
  ));
  perform pg_sleep(0.3);
end
$$;
select is(dblink_is_busy('second'), 1, 'the second request, timed in this month, waits');
do $$ begin perform dblink_exec('first', 'commit'); end $$;
select results_eq(
  $$ select * from dblink_get_result('second') as r (outcome text) $$,
  $$ values ('duplicate') $$,
  'once the first commits, the second finds the event a duplicate'
);
do $$ begin perform * from dblink_get_result('second') as r (outcome text); end $$;
select results_eq(
  format(
    'select * from dblink(%L, %L) as r (partition text)',
    'first',
    format(
      'select tableoid::regclass::text from public.user_interactions where event_id = %L',
      pg_temp.id('c1')
    )
  ),
  format('values (%L)', pg_temp.partition_of(-1)),
  'the event is stored once, in the previous month'
);

do $$
begin
  perform dblink_exec('first', format(
    'delete from public.user_interactions where event_id = %1$L; '
      || 'delete from public.interaction_event_ids where event_id = %1$L',
    pg_temp.id('c1')
  ));
  perform dblink_disconnect(c) from unnest(array['first', 'second']) as c;
end
$$;

-- Creating partitions ahead: what is missing, once.

create temp table before_run as select * from pg_temp.monthly_partitions();

select is(
  public.maintain_interaction_partitions(6) - 'deleted' - 'sessions_recounted',
  jsonb_build_object(
    'created', (
      select coalesce(jsonb_agg(pg_temp.partition_of(m) order by m), '[]')
      from generate_series(-1, 6) as m
      where pg_temp.partition_of(m) not in (select name from before_run)
    ),
    'dropped', '[]'::jsonb,
    'moved_from_default', 0
  ),
  'the maintenance creates exactly the missing partitions up to 6 months ahead'
);
select set_has(
  $$ select name, starts, ends from pg_temp.monthly_partitions() $$,
  $$
    select pg_temp.partition_of(m) as name, pg_temp.month(m) as starts,
      pg_temp.month(m + 1) as ends
    from generate_series(-1, 6) as m
  $$,
  'partitions now exist up to 6 months ahead, on UTC month boundaries'
);

create temp table after_first_run as select * from pg_temp.monthly_partitions();

select is(
  public.maintain_interaction_partitions(6) - 'deleted' - 'sessions_recounted',
  '{"created": [], "dropped": [], "moved_from_default": 0}'::jsonb,
  'a second run creates nothing'
);
select set_eq(
  $$ select * from pg_temp.monthly_partitions() $$,
  $$ select * from after_first_run $$,
  'a second run leaves the partitions as they were'
);

-- A late job: an event of a month without a partition waits in the default
-- partition, then moves to its month's partition when it is created.

select results_eq(
  $$
    select pg_temp.ingest(
      pg_temp.ev(0, 'future', null, 'view', pg_temp.month(9) + interval '9 days')
    )
  $$,
  $$ values ('accepted') $$,
  'an event of a month with no partition yet is accepted'
);
select results_eq(
  $$ select pg_temp.stored_in('future') $$,
  $$ values ('interaction_partitions.user_interactions_default') $$,
  'it is stored in the default partition'
);
select is(
  public.maintain_interaction_partitions(9) -> 'moved_from_default',
  '1'::jsonb,
  'creating its month''s partition moves it out of the default partition'
);
select results_eq(
  $$ select pg_temp.stored_in('future') $$,
  format('values (%L)', pg_temp.partition_of(9)),
  'the event is now stored once, in its month''s partition'
);
select is(
  (
    select pg_get_expr(c.relpartbound, c.oid)
    from pg_class c
    where c.oid = 'interaction_partitions.user_interactions_default'::regclass
  ),
  'DEFAULT',
  'the default partition is back in place after the move'
);
select results_eq(
  $$
    select ui.event_type, ui.occurred_at, k.occurred_at
    from public.user_interactions ui
    join public.interaction_event_ids k using (event_id)
    where ui.event_id = pg_temp.id('future')
  $$,
  $$ values ('view', pg_temp.month(9) + interval '9 days', pg_temp.month(9) + interval '9 days') $$,
  'the moved event keeps its values and its registered id'
);

-- A job stopped for longer than the months it had created ahead: an event of
-- an older month within retention that has no partition waits in the default
-- partition too, and moves to its own month's partition when the job runs
-- again. The month: the latest from 2 to 12 months ago without a partition.

create temp table stopped_month as
select max(m) as m
from generate_series(-12, -2) as m
where not exists (
  select from pg_temp.monthly_partitions() p
  where p.starts < pg_temp.month(m + 1) and p.ends > pg_temp.month(m)
);

select isnt(
  (select m from stopped_month), null, 'a month 2 to 12 months ago has no partition'
);
select results_eq(
  $$
    select pg_temp.ingest(pg_temp.ev(
      0, 'stopped', null, 'view',
      pg_temp.month((select m from stopped_month)) + interval '3 days'
    ))
  $$,
  $$ values ('accepted') $$,
  'an event of that month is accepted'
);
select results_eq(
  $$ select pg_temp.stored_in('stopped') $$,
  $$ values ('interaction_partitions.user_interactions_default') $$,
  'it is stored in the default partition'
);
select is(
  public.maintain_interaction_partitions(9) - 'deleted' - 'sessions_recounted',
  jsonb_build_object(
    'created', jsonb_build_array(pg_temp.partition_of((select m from stopped_month))),
    'dropped', '[]'::jsonb,
    'moved_from_default', 1
  ),
  'the next run creates that month''s partition, older than the previous month, and moves '
    || 'the event into it'
);
select results_eq(
  $$ select pg_temp.stored_in('stopped') $$,
  $$ select pg_temp.partition_of((select m from stopped_month)) $$,
  'the event is now stored once, in its month''s partition'
);
-- From here on it is one of the rows the database already held.
delete from ids where name = 'stopped';

-- Retention, with a window of 2 months: the partitions that end by the start
-- of the month before last go, with their event ids and the sessions that
-- ended in them; sessions that began before it are recounted.

select pg_temp.ensure_partition(-3);
select pg_temp.ensure_partition(-2);

select results_eq(
  $$
    select pg_temp.ingest(
      pg_temp.ev(0, 'r1', 'session R1', 'view', pg_temp.month(-3) + interval '1 day'),
      pg_temp.ev(1, 'r2', 'session R1', 'click', pg_temp.month(-3) + interval '1 day 1 minute'),
      pg_temp.ev(2, 'r3', 'session R2', 'view', pg_temp.month(-2) - interval '1 minute'),
      pg_temp.ev(3, 'r4', 'session R2', 'view', pg_temp.month(-2) + interval '1 minute'),
      pg_temp.ev(4, 'r5', 'session R2', 'navigate', pg_temp.month(-2) + interval '2 minutes'),
      pg_temp.ev(5, 'r6', 'session R3', 'view', pg_temp.month(-2) + interval '1 day'),
      pg_temp.ev(6, 'r7', null, 'view', timestamptz '2001-02-03T10:00:00Z')
    )
  $$,
  $$
    values ('accepted'), ('accepted'), ('accepted'), ('accepted'), ('accepted'), ('accepted'),
      ('accepted')
  $$,
  'events three and two months ago, across the boundary, and in 2001 are accepted'
);

-- Ages in hours: days in this session's time zone may be 23 or 25 hours.
insert into public.system_errors (category, context, error_message, "timestamp")
select 'validation', 'retention test ' || pg_temp.id('errors'), label, now() - age
from (
  values
    ('30 days and 1 second old', interval '720 hours 1 second'),
    ('30 days old', interval '720 hours'),
    ('29 days old', interval '696 hours')
) as e (label, age);

create temp table before_retention as select * from pg_temp.monthly_partitions();

-- What the run will find beside the rows above, if the database holds any:
-- counted with the run's own rules, so that its report can be checked exactly.
create temp table others_before_retention as
select
  (
    select count(*) from public.user_interactions ui
    where ui.occurred_at < pg_temp.month(-2)
      and ui.tableoid not in (
        select name::regclass from before_retention where ends <= pg_temp.month(-2)
      )
      and ui.event_id not in (select id from ids)
  ) as user_interactions,
  (
    select count(*) from public.interaction_event_ids k
    where k.occurred_at < pg_temp.month(-2) and k.event_id not in (select id from ids)
  ) as interaction_event_ids,
  (
    select count(*) from public.sessions s
    where s.started_at < pg_temp.month(-2) and s.last_seen_at < pg_temp.month(-2)
      and s.id not in (select id from ids)
  ) as sessions,
  (
    select count(*) from public.sessions s
    where s.started_at < pg_temp.month(-2) and s.last_seen_at >= pg_temp.month(-2)
      and s.id not in (select id from ids)
      and exists (
        select from public.user_interactions ui
        where ui.session_id = s.id and ui.occurred_at >= pg_temp.month(-2)
      )
  ) as sessions_recounted,
  (
    select count(*) from public.system_errors e
    where e."timestamp" < now() - interval '30 days'
      and e.context <> 'retention test ' || pg_temp.id('errors')
  ) as system_errors;

-- The order of the run's steps: a partition's drop locks the whole table
-- until the run commits, so it must come after the row-by-row work.
create temp table retention_steps (step text not null, at bigint generated always as identity);
create function pg_temp.note_step() returns trigger
language plpgsql
as $$
begin
  insert into pg_temp.retention_steps (step) values (tg_argv[0]);
  return null;
end;
$$;
create function pg_temp.note_drop() returns event_trigger
language plpgsql
as $$
begin
  insert into pg_temp.retention_steps (step) values ('partition dropped');
end;
$$;
create trigger note_ids_deleted after delete on public.interaction_event_ids
  for each statement execute function pg_temp.note_step('event ids deleted');
create trigger note_sessions_recounted after update on public.sessions
  for each statement execute function pg_temp.note_step('sessions recounted');
create event trigger note_partition_dropped on sql_drop
  when tag in ('DROP TABLE') execute function pg_temp.note_drop();

create temp table result as
select public.maintain_interaction_partitions(3, interval '2 months') as r;

drop event trigger note_partition_dropped;
drop trigger note_ids_deleted on public.interaction_event_ids;
drop trigger note_sessions_recounted on public.sessions;

select ok(
  (select max(at) from retention_steps where step <> 'partition dropped')
    < (select min(at) from retention_steps where step = 'partition dropped'),
  'retention deletes event ids and recounts sessions before it drops a partition, so the '
    || 'exclusive lock a drop takes is not held through that work'
);

select is(
  (select r -> 'dropped' from result),
  (
    select coalesce(jsonb_agg(name order by ends), '[]')
    from before_retention where ends <= pg_temp.month(-2)
  ),
  'retention drops exactly the partitions that end by the start of the month before last'
);
select ok(
  (select r -> 'dropped' from result) ? pg_temp.partition_of(-3)
    and to_regclass(pg_temp.partition_of(-3)) is null,
  'the partition of three months ago is dropped'
);
select ok(
  (
    select bool_and(to_regclass(pg_temp.partition_of(m)) is not null)
    from generate_series(-2, 3) as m
  ),
  'the partitions of two months ago and after are kept'
);
select results_eq(
  $$
    select ids.name from public.user_interactions ui join ids on ids.id = ui.event_id
    where ids.name like 'r_' order by ids.name
  $$,
  $$ values ('r4'), ('r5'), ('r6') $$,
  'the events older than the window are gone, the newer ones kept'
);
select results_eq(
  $$
    select ids.name from public.interaction_event_ids k join ids on ids.id = k.event_id
    where ids.name like 'r_' order by ids.name
  $$,
  $$ values ('r4'), ('r5'), ('r6') $$,
  'the ids of the events gone are unregistered, in dropped partitions and the default one'
);
select results_eq(
  $$
    select ids.name, s.started_at, s.last_seen_at, s.interaction_count, s.page_views
    from public.sessions s join ids on ids.id = s.id
    where ids.name like 'session R_' order by ids.name
  $$,
  $$
    values
      ('session R2', pg_temp.month(-2) + interval '1 minute',
        pg_temp.month(-2) + interval '2 minutes', 2, 1),
      ('session R3', pg_temp.month(-2) + interval '1 day',
        pg_temp.month(-2) + interval '1 day', 1, 1)
  $$,
  'a session that ended before the window is deleted, one that began before it is recounted'
);
select results_eq(
  $$
    select error_message from public.system_errors
    where context = 'retention test ' || pg_temp.id('errors') order by error_message
  $$,
  $$ values ('29 days old'), ('30 days old') $$,
  'system_errors older than 30 days are deleted, those 30 days old or newer kept'
);
-- Of the rows above: r7 (2001) is deleted from the default partition; r1, r2,
-- r3 and r7 lose their ids; session R1 is deleted and R2 recounted; one error
-- is older than 30 days.
select is(
  (select r - 'created' - 'dropped' - 'moved_from_default' from result),
  (
    select jsonb_build_object(
      'sessions_recounted', 1 + o.sessions_recounted,
      'deleted', jsonb_build_object(
        'user_interactions', 1 + o.user_interactions,
        'interaction_event_ids', 4 + o.interaction_event_ids,
        'sessions', 1 + o.sessions,
        'system_errors', 1 + o.system_errors
      )
    )
    from others_before_retention as o
  ),
  'the run reports exactly what it deleted and recounted'
);
select is(
  public.maintain_interaction_partitions(3, interval '2 months') - 'deleted' - 'sessions_recounted',
  '{"created": [], "dropped": [], "moved_from_default": 0}'::jsonb,
  'a second run with the same window finds nothing more to drop'
);

-- The invariant, after all of it: every session's figures are those of its
-- stored events.

select results_eq(
  $$
    select s.id, s.interaction_count, s.page_views, s.started_at, s.last_seen_at
    from public.sessions s
    where s.id in (select id from ids where name like 'session %')
    order by s.id
  $$,
  $$
    select ui.session_id, count(*)::integer,
      (count(*) filter (where ui.event_type = 'view'))::integer,
      min(ui.occurred_at), max(ui.occurred_at)
    from public.user_interactions ui
    where ui.session_id in (select id from ids where name like 'session %')
    group by ui.session_id
    order by ui.session_id
  $$,
  'every session''s counts and times equal those recomputed from user_interactions'
);

select * from finish();
rollback;
