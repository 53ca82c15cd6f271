-- public.event_funnel_since: the event funnel over a window of time, as the
-- dashboard reads it. Its shape and rights; over all time it is
-- public.event_funnel; over a window it counts only the window's
-- interactions, worked out by hand; and it reads only the monthly partitions
-- of user_interactions that can hold interactions of the window.
--
-- The interactions are inserted directly, on entities named 'pgtap11-...' and
-- in February 2001, so rows already in the database never change the
-- expectations; everything is rolled back.
begin;
select plan(15);

set local timezone = 'UTC';

-- --- structure and rights ---------------------------------------------------

select has_function(
  'public', 'event_funnel_since', array['timestamp with time zone'],
  'event_funnel_since(timestamptz) exists'
);
select is(
  (
    select array_agg(format('%s %s', a.name, a.type) order by a.ord)
    from pg_proc p
    cross join lateral unnest(p.proargnames, p.proallargtypes::regtype[]::text[])
      with ordinality as a (name, type, ord)
    where p.oid = 'public.event_funnel_since(timestamptz)'::regprocedure
  ),
  array[
    'p_since timestamp with time zone', 'entity_id text', 'viewers bigint', 'clickers bigint',
    'ticket_clickers bigint', 'attendees bigint', 'view_to_click_pct numeric',
    'click_to_ticket_click_pct numeric', 'view_to_ticket_click_pct numeric',
    'view_to_attendance_pct numeric'
  ],
  'event_funnel_since takes the window''s start and returns event_funnel''s columns'
);
select ok(
  (
    select not p.prosecdef and p.provolatile = 's' and p.proconfig = array['search_path=""']
    from pg_proc p
    where p.oid = 'public.event_funnel_since(timestamptz)'::regprocedure
  ),
  'event_funnel_since is stable, runs with the caller''s rights and sets an empty search_path'
);
select ok(
  obj_description('public.event_funnel_since(timestamptz)'::regprocedure, 'pg_proc') is not null,
  'event_funnel_since is documented'
);
select ok(
  has_function_privilege('analyst', 'public.event_funnel_since(timestamptz)', 'execute')
    and has_function_privilege('authenticated', 'public.event_funnel_since(timestamptz)', 'execute')
    and has_function_privilege('service_role', 'public.event_funnel_since(timestamptz)', 'execute'),
  'analysts, signed-in users and the service role may run event_funnel_since'
);
select ok(
  not has_function_privilege('anon', 'public.event_funnel_since(timestamptz)', 'execute'),
  'anon may not run event_funnel_since'
);

-- --- what it counts ---------------------------------------------------------

-- The window starts on 2001-02-10. Visitor a viewed before it and clicked in
-- it; b viewed, clicked and clicked a ticket link in it; c viewed in it and
-- marked attendance (withdrawn before it, given in it). The 'old' event had
-- everything before the window.
insert into public.user_interactions
  (event_id, anonymous_id, event_type, entity_type, entity_id, metadata, occurred_at)
values
  (gen_random_uuid(), 'pgtap11-a', 'view', 'event', 'pgtap11-event', '{}',
    '2001-02-09 23:59:59.999999+00'),
  (gen_random_uuid(), 'pgtap11-a', 'click', 'event', 'pgtap11-event', '{}',
    '2001-02-10 08:00+00'),
  (gen_random_uuid(), 'pgtap11-b', 'view', 'event', 'pgtap11-event', '{}',
    '2001-02-10 00:00+00'),
  (gen_random_uuid(), 'pgtap11-b', 'click', 'event', 'pgtap11-event', '{}',
    '2001-02-10 00:01+00'),
  (gen_random_uuid(), 'pgtap11-b', 'ticket_click', 'ticket_link', 'pgtap11-link',
    '{"event_id": "pgtap11-event"}', '2001-02-11 00:00+00'),
  (gen_random_uuid(), 'pgtap11-c', 'attendance', 'event', 'pgtap11-event',
    '{"attended": false}', '2001-02-01 00:00+00'),
  (gen_random_uuid(), 'pgtap11-c', 'view', 'event', 'pgtap11-event', '{}',
    '2001-02-12 00:00+00'),
  (gen_random_uuid(), 'pgtap11-c', 'attendance', 'event', 'pgtap11-event',
    '{"attended": true}', '2001-02-12 00:05+00'),
  (gen_random_uuid(), 'pgtap11-a', 'view', 'event', 'pgtap11-old', '{}',
    '2001-02-02 00:00+00'),
  (gen_random_uuid(), 'pgtap11-a', 'click', 'event', 'pgtap11-old', '{}',
    '2001-02-02 00:01+00');

select results_eq(
  $$
    select f.entity_id, f.viewers, f.clickers, f.ticket_clickers, f.attendees,
      f.view_to_click_pct, f.click_to_ticket_click_pct, f.view_to_ticket_click_pct,
      f.view_to_attendance_pct
    from public.event_funnel_since('2001-02-10 00:00+00') as f
    where f.entity_id like 'pgtap11-%'
    order by f.entity_id
  $$,
  $$
    values ('pgtap11-event', 2::bigint, 1::bigint, 1::bigint, 1::bigint,
      50.00::numeric, 100.00::numeric, 50.00::numeric, 50.00::numeric)
  $$,
  'over a window, only the window''s interactions count: a view before it does not make a '
    || 'click in it count, and an event with nothing in it has no row'
);
select set_eq(
  $$
    select f.* from public.event_funnel_since('-infinity') as f
    where f.entity_id like 'pgtap11-%'
  $$,
  $$
    select f.* from public.event_funnel as f
    where f.entity_id like 'pgtap11-%'
  $$,
  'over all time (''-infinity''), event_funnel_since is event_funnel'
);
select results_eq(
  $$
    select f.viewers, f.clickers from public.event_funnel_since('-infinity') as f
    where f.entity_id = 'pgtap11-event'
  $$,
  $$ values (3::bigint, 2::bigint) $$,
  'over all time, the view before the window counts again'
);
select is_empty(
  $$ select * from public.event_funnel_since(null) $$,
  'with a null start there are no rows'
);

-- Row level security applies: a signed-in user counts only their own rows.
set local role authenticated;
set local request.jwt.claims = '{"role": "authenticated", "sub": "00000000-0000-4000-8000-0000000f0011"}';
select is_empty(
  $$ select * from public.event_funnel_since('-infinity') where entity_id like 'pgtap11-%' $$,
  'a signed-in user sees no one else''s interactions in it'
);
reset role;

-- --- the partitions it reads ------------------------------------------------

-- The partitions of user_interactions a query scanned, as this transaction's
-- statistics record them: pruned partitions are never opened.
create function pg_temp.partitions_read(p_query text) returns setof text
language plpgsql
as $$
declare
  v_before jsonb;
begin
  select jsonb_object_agg(s.relname, coalesce(s.seq_scan, 0) + coalesce(s.idx_scan, 0))
  into v_before
  from pg_stat_xact_user_tables as s
  where s.schemaname = 'interaction_partitions';
  execute p_query;
  return query
    select s.relname::text
    from pg_stat_xact_user_tables as s
    where s.schemaname = 'interaction_partitions'
      and coalesce(s.seq_scan, 0) + coalesce(s.idx_scan, 0)
        > coalesce((v_before ->> s.relname)::bigint, 0);
end;
$$;

-- The monthly partitions that end at or before an instant.
create function pg_temp.partitions_before(p_at timestamptz) returns setof text
language sql
as $$
  select c.relname::text
  from pg_inherits as i
  join pg_class as c on c.oid = i.inhrelid
  cross join lateral regexp_match(
    pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'
  ) as bound
  where i.inhparent = 'public.user_interactions'::regclass
    and bound[1]::timestamptz <= p_at
$$;

-- The maintenance job keeps last month's partition, so there is always one
-- that a window starting this month must not read. A 7-day window starts last
-- month on the 1st to the 6th: the month before it gets a partition (unless
-- it has one), so that there is always one the window must not read either.
do $$
declare
  v_window_month timestamptz := date_trunc(
    'month', ((now() at time zone 'utc')::date - 6)::timestamp at time zone 'utc', 'UTC'
  );
begin
  if not exists (select from pg_temp.partitions_before(v_window_month)) then
    execute format(
      'create table interaction_partitions.pgtap11_before_window partition of '
        || 'public.user_interactions for values from (%L) to (%L)',
      v_window_month - interval '1 month', v_window_month
    );
  end if;
end;
$$;
select ok(
  (select count(*) from pg_temp.partitions_before(date_trunc('month', now(), 'UTC'))) > 0,
  'user_interactions has a partition that ends before this month'
);
select ok(
  (
    select count(*) from pg_temp.partitions_before(
      ((now() at time zone 'utc')::date - 6)::timestamp at time zone 'utc'
    )
  ) > 0,
  'user_interactions has a partition that ends before the last 7 days'
);
select is_empty(
  $$
    select pg_temp.partitions_read($q$
      select * from public.event_funnel_since(
        ((now() at time zone 'utc')::date - 6)::timestamp at time zone 'utc'
      )
    $q$)
    intersect
    select pg_temp.partitions_before(
      ((now() at time zone 'utc')::date - 6)::timestamp at time zone 'utc'
    )
  $$,
  'the funnel of the last 7 days reads no partition that ends before the window'
);
select ok(
  format('user_interactions_%s', to_char(now() at time zone 'utc', 'YYYY_MM')) in (
    select pg_temp.partitions_read($q$
      select * from public.event_funnel_since(date_trunc('month', now(), 'UTC'))
    $q$)
  )
  and not exists (
    select pg_temp.partitions_read($q$
      select * from public.event_funnel_since(date_trunc('month', now(), 'UTC'))
    $q$)
    intersect
    select pg_temp.partitions_before(date_trunc('month', now(), 'UTC'))
  ),
  'the funnel from this month''s start reads this month''s partition and none before it'
);

select * from finish();
rollback;
