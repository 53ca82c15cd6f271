-- public.consume_rate_limit and its table: a minute's burst then a steady
-- rate, the retry time it gives, events costing their share of the second
-- budget, refusals charging nothing, principals kept apart, forgotten rows,
-- who may call it, and the track function's statement, in which a refusal
-- keeps public.ingest_interactions from running at all.
begin;
select plan(56);

-- Names for the random keys of this run.
create temp table keys (name text primary key, key text not null);

create function pg_temp.key(p_name text) returns text
language sql
as $$
  insert into keys (name, key) values (p_name, 'test:' || gen_random_uuid())
  on conflict (name) do nothing;
  select key from keys where name = p_name;
$$;

-- One call at p_at seconds after 2000-01-01 00:00 UTC (long past, so that the
-- rows it forgets on the way are this test's own), as 'allowed' or
-- 'refused, retry after <n> s'.
create function pg_temp.consume(
  p_name text, p_events integer, p_requests_per_minute integer, p_events_per_minute integer,
  p_at numeric
) returns text
language sql
as $$
  select case when l.allowed and l.retry_after_s = 0 then 'allowed'
    when not l.allowed then format('refused, retry after %s s', l.retry_after_s)
  end
  from public.consume_rate_limit(
    pg_temp.key(p_name), p_events, p_requests_per_minute, p_events_per_minute,
    timestamptz '2000-01-01T00:00:00Z' + make_interval(secs => p_at)
  ) as l
$$;

-- The stored state of a key, to compare before and after a call.
create function pg_temp.state(p_name text) returns text
language sql
as $$
  select format('%s %s', r.requests_recovered_at, r.events_recovered_at)
  from public.rate_limits r
  where r.key = pg_temp.key(p_name)
$$;

-- The table and the function: shape and access.

select has_table('public', 'rate_limits', 'public.rate_limits exists');
select is(
  (select relpersistence from pg_catalog.pg_class where oid = 'public.rate_limits'::regclass),
  'u'::"char",
  'rate_limits is unlogged'
);
select columns_are(
  'public', 'rate_limits',
  array['key', 'requests_recovered_at', 'events_recovered_at', 'expires_at'],
  'rate_limits has exactly its four columns'
);
select col_is_pk('public', 'rate_limits', 'key', 'one row per principal');
select has_index(
  'public', 'rate_limits', 'rate_limits_expires_at_idx', 'expires_at',
  'expired rows are found through an index'
);
select is(
  (select relrowsecurity from pg_catalog.pg_class where oid = 'public.rate_limits'::regclass),
  true,
  'rate_limits has row level security enabled'
);
select table_privs_are(
  'public', 'rate_limits', 'anon', '{}', 'anon has no privilege on rate_limits'
);
select table_privs_are(
  'public', 'rate_limits', 'authenticated', '{}', 'authenticated has no privilege on rate_limits'
);
select table_privs_are(
  'public', 'rate_limits', 'service_role', '{}', 'service_role has no privilege on rate_limits'
);
select table_privs_are(
  'public', 'rate_limits', 'analyst', array['SELECT'], 'analyst may only read rate_limits'
);
select is_definer(
  'public', 'consume_rate_limit',
  array['text', 'integer', 'integer', 'integer', 'timestamp with time zone'],
  'consume_rate_limit runs as its owner'
);
select is(
  (
    select proconfig
    from pg_catalog.pg_proc
    where oid
      = 'public.consume_rate_limit(text, integer, integer, integer, timestamptz)'::regprocedure
  ),
  array['search_path=""'],
  'consume_rate_limit sets an empty search_path'
);
select is(
  array(
    select r
    from unnest(array['anon', 'authenticated', 'service_role', 'analyst']) as r
    where has_function_privilege(
      r, 'public.consume_rate_limit(text, integer, integer, integer, timestamptz)', 'execute'
    )
  ),
  '{}'::text[],
  'neither anon, authenticated, service_role nor analyst may execute consume_rate_limit'
);

-- A minute's burst of requests, then one every 60 / limit seconds.

select is(
  pg_temp.consume('burst', 1, 3, 1000, 0), 'allowed', 'request 1 of 3 per minute is allowed'
);
select is(pg_temp.consume('burst', 1, 3, 1000, 0), 'allowed', 'request 2 of 3 is allowed');
select is(pg_temp.consume('burst', 1, 3, 1000, 0), 'allowed', 'request 3 of 3 is allowed');
select is(
  pg_temp.consume('burst', 1, 3, 1000, 0), 'refused, retry after 20 s',
  'request 4 in the same instant is refused: one request every 20 s comes back'
);
select is(
  pg_temp.consume('burst', 1, 3, 1000, 19), 'refused, retry after 1 s',
  '19 s later it is still refused, with 1 s to wait'
);
select is(
  pg_temp.consume('burst', 1, 3, 1000, 19.5), 'refused, retry after 1 s',
  'a wait of half a second is rounded up to 1 s'
);
select is(pg_temp.consume('burst', 1, 3, 1000, 20), 'allowed', '20 s later one request is allowed');
select is(
  pg_temp.consume('burst', 1, 3, 1000, 20), 'refused, retry after 20 s',
  'and the next one waits 20 s again'
);
select is(
  pg_temp.consume('burst', 1, 3, 1000, 100), 'allowed',
  'after a quiet minute the burst is whole again: 1 of 3'
);
select is(pg_temp.consume('burst', 1, 3, 1000, 100), 'allowed', 'burst 2 of 3');
select is(pg_temp.consume('burst', 1, 3, 1000, 100), 'allowed', 'burst 3 of 3');
select is(pg_temp.consume('burst', 1, 3, 1000, 100), 'refused, retry after 20 s', 'and no fourth');
select is(
  pg_temp.consume('burst', 1, 3, 1000, 99.5), 'refused, retry after 20 s',
  'a call whose transaction started before the last charge (it queued behind it) waits no longer'
);
select is(
  pg_temp.consume('burst', 1, 3, 1000, 100.5), 'refused, retry after 20 s',
  'one arriving half a second after it waits the rest of the slot, rounded up'
);

select is(
  (
    select string_agg(pg_temp.consume('sevenths', 0, 7, 1000, 0), ', ' order by i)
    from generate_series(1, 8) as i
  ),
  'allowed, allowed, allowed, allowed, allowed, allowed, allowed, refused, retry after 9 s',
  'a limit that does not divide the minute still allows its whole burst'
);

-- A refusal charges nothing.

select pg_temp.consume('steady', 1, 1, 1000, 0) \g /dev/null
create temp table before_refusal as select pg_temp.state('steady') as state;
select is(
  pg_temp.consume('steady', 1, 1, 1000, 30), 'refused, retry after 30 s',
  'a second request 30 s later waits 30 s'
);
select is(
  pg_temp.state('steady'), (select state from before_refusal),
  'the refused request left the state as it was'
);
select is(
  pg_temp.consume('steady', 1, 1, 1000, 45), 'refused, retry after 15 s',
  'so 15 s later the wait is 15 s, not longer'
);
select is(pg_temp.consume('steady', 1, 1, 1000, 60), 'allowed', 'and at 60 s it is allowed');

-- Events cost their share of the second budget.

select is(
  pg_temp.consume('events', 6, 1000, 10, 0), 'allowed', '6 of 10 events per minute are allowed'
);
select is(
  pg_temp.consume('events', 5, 1000, 10, 0), 'refused, retry after 6 s',
  '5 more are refused: one event comes back every 6 s'
);
select is(pg_temp.consume('events', 4, 1000, 10, 0), 'allowed', 'but 4 more fit');
select is(
  pg_temp.consume('events', 0, 1000, 10, 0), 'allowed',
  'a request without events still fits when only the events are used up'
);
select is(
  pg_temp.consume('events', 1, 1000, 10, 0), 'refused, retry after 6 s', 'one more event waits 6 s'
);
select is(pg_temp.consume('events', 2, 1000, 10, 12), 'allowed', '12 s later 2 events fit');
select is(
  pg_temp.consume('big batch', 500, 1000, 10, 0), 'allowed',
  'a batch larger than the whole allowance is allowed when the allowance is whole'
);
select is(
  pg_temp.consume('big batch', 1, 1000, 10, 0), 'refused, retry after 6 s',
  'and costs exactly the whole minute, no more'
);
select is(
  concat_ws(
    ' ', pg_temp.consume('both', 1, 2, 10, 0), pg_temp.consume('both', 9, 2, 10, 0),
    pg_temp.consume('both', 1, 2, 10, 0)
  ),
  'allowed allowed refused, retry after 30 s',
  'the longer of the two waits is given when both budgets are used up'
);

-- Principals are kept apart.

select is(pg_temp.consume('one', 1, 1, 1000, 0), 'allowed', 'principal one uses its only request');
select is(
  pg_temp.consume('one', 1, 1, 1000, 0), 'refused, retry after 60 s', 'and has to wait a minute'
);
select is(pg_temp.consume('two', 1, 1, 1000, 0), 'allowed', 'principal two is not affected');

-- Rows whose allowance is whole again are forgotten by later calls.

select public.consume_rate_limit(pg_temp.key('in debt'), 1, 1, 1000, '1999-12-31T23:59:30Z')
\g /dev/null
select public.consume_rate_limit(pg_temp.key('forgotten'), 1, 60, 1000, '1990-01-01T00:00:00Z')
\g /dev/null
select is(
  (
    select count(*) from public.rate_limits
    where key in (pg_temp.key('forgotten'), pg_temp.key('in debt'))
  ),
  2::bigint,
  'two principals have rows'
);
select public.consume_rate_limit(pg_temp.key('sweeper'), 1, 60, 1000, '2000-01-01T00:00:00Z')
\g /dev/null
select is(
  (select count(*) from public.rate_limits where key = pg_temp.key('forgotten')),
  0::bigint,
  'a later call deleted the row whose allowance was whole again'
);
select is(
  (select count(*) from public.rate_limits where key = pg_temp.key('in debt')),
  1::bigint,
  'and kept the row still in debt'
);
select is(
  pg_temp.consume('forgotten', 1, 1, 1000, 0), 'allowed',
  'a forgotten principal starts with a whole allowance'
);

-- Nonsense arguments are refused.

select throws_ok(
  $$select public.consume_rate_limit('k', 1, 0, 100)$$,
  '22023', null, 'a limit of 0 requests per minute is refused'
);
select throws_ok(
  $$select public.consume_rate_limit('k', -1, 10, 100)$$,
  '22023', null, 'a negative number of events is refused'
);
select throws_ok(
  $$select public.consume_rate_limit(null, 1, 10, 100)$$,
  '22023', null, 'a null key is refused'
);

-- The gating pattern of the track function's statement: consume_rate_limit
-- gates ingest_interactions in the same statement, and a refusal keeps the
-- ingestion from running. pg_temp.track is a copy of that pattern, so these
-- tests pin what Postgres does with it (the plan included); the statement
-- itself, in supabase/functions/_shared/db.ts, is tested end to end through
-- the function by supabase/functions/track/abuse_test.ts.

create function pg_temp.track(p_name text, p_event_id uuid, p_request_id uuid)
returns table (allowed boolean, retry_after_s integer, event_index integer, outcome text)
language sql
as $$
  select l.allowed, l.retry_after_s, r.event_index, r.outcome
  from public.consume_rate_limit(pg_temp.key(p_name), 2, 1, 6000) as l
  left join lateral (
    select *
    from public.ingest_interactions(
      null,
      jsonb_build_array(jsonb_build_object(
        'index', 0, 'event_id', p_event_id, 'session_id', null,
        'anonymous_id', 'rate-limit-visitor', 'event_type', 'view', 'entity_type', 'event',
        'entity_id', 'event-123', 'metadata', '{}'::jsonb, 'occurred_at', now(),
        'client_timestamp', null, 'received_at', now()
      )),
      '[{"index": 1, "errors": [{"path": "eventType", "message": "not an event type"}]}]',
      jsonb_build_object('request_id', p_request_id)
    ) as i
    where l.allowed
    offset 0
  ) as r on true
$$;

create temp table requests (name text primary key, event_id uuid, request_id uuid);
insert into requests
values ('first', gen_random_uuid(), gen_random_uuid()),
  ('second', gen_random_uuid(), gen_random_uuid());

select results_eq(
  $$
    select t.* from requests q, pg_temp.track('gated', q.event_id, q.request_id) t
    where q.name = 'first'
  $$,
  $$values (true, 0, 0, 'accepted')$$,
  'the first request is allowed and its event accepted'
);
select results_eq(
  $$
    select t.* from requests q, pg_temp.track('gated', q.event_id, q.request_id) t
    where q.name = 'second'
  $$,
  $$values (false, 60, null::integer, null::text)$$,
  'the second is refused with one row, no outcomes'
);
select is(
  (
    select array_agg(q.name order by q.name)
    from requests q
    where exists (select from public.user_interactions u where u.event_id = q.event_id)
  ),
  array['first'],
  'only the allowed request stored its event'
);
select is(
  (
    select array_agg(q.name order by q.name)
    from requests q
    where exists (
      select from public.system_errors e
      where e.metadata -> 'request' ->> 'request_id' = q.request_id::text
    )
  ),
  array['first'],
  'only the allowed request wrote its system_errors row'
);

-- The plan says so too: with the limit refusing, the ingestion is never executed.
create function pg_temp.plan_of_refused() returns text
language plpgsql
as $$
declare
  v_line text;
  v_plan text := '';
begin
  for v_line in
    execute $q$
      explain (analyze, costs off, timing off, summary off)
      select l.allowed, r.*
      from public.consume_rate_limit(
        'test:refused-in-plan', 0, 1, 6000, '1990-01-01T00:00:00Z'
      ) as l
      left join lateral (
        select * from public.ingest_interactions(null, '[]', '[]', '{}') as i
        where l.allowed
        offset 0
      ) as r on true
    $q$
  loop
    v_plan := v_plan || v_line || E'\n';
  end loop;
  return v_plan;
end;
$$;
select public.consume_rate_limit('test:refused-in-plan', 0, 1, 6000, '1990-01-01T00:00:00Z')
\g /dev/null
select matches(
  pg_temp.plan_of_refused(),
  'Function Scan on ingest_interactions i \(never executed\)',
  'EXPLAIN ANALYZE shows the ingestion never executed when the limit refuses'
);

select * from finish();
rollback;
