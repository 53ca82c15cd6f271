-- The per-principal rate limit of the track function, shared by every
-- instance of the function. Each instance also keeps a bucket of its own in
-- memory, but only the database sees the requests of all of them; checking
-- here, in the same statement as the ingestion call, costs no extra round
-- trip. A principal is whoever the track function says it is: 'user:<id>' for
-- a signed-in user, 'ip:<address>' for an anonymous caller.
--
-- The limit is a generic cell rate algorithm (GCRA), the token bucket written
-- as one timestamp per budget: the time at which the principal's allowance is
-- whole again. A request is allowed when its cost fits in one period (a
-- minute) of allowance from now. That allows a burst of a minute's worth, then
-- a steady rate, with no doubled burst at the edge of a fixed window.

-- Unlogged: the counters are worth nothing after a crash (a restart forgets
-- them, which only forgives) and are not worth a WAL record per request. One
-- row per principal, updated in place; rows whose allowance is whole again
-- are deleted by later calls, so the table holds the principals of roughly the
-- last minute.
create unlogged table public.rate_limits (
  key text primary key,
  requests_recovered_at timestamptz not null,
  events_recovered_at timestamptz not null,
  expires_at timestamptz generated always as (
    greatest(requests_recovered_at, events_recovered_at)
  ) stored,
  constraint rate_limits_key_length check (length(key) between 1 and 300)
);

comment on table public.rate_limits is
  'Rate-limit state of the track function, one row per principal (''user:<id>'' or '
  '''ip:<address>'') that used some of its allowance in the last minute. Unlogged: '
  'emptied by a crash. Written only by public.consume_rate_limit.';
comment on column public.rate_limits.key is
  'The principal: ''user:<id>'' for a signed-in user, ''ip:<address>'' for an anonymous caller.';
comment on column public.rate_limits.requests_recovered_at is
  'When the principal''s allowance of requests is whole again, if it sends no more.';
comment on column public.rate_limits.events_recovered_at is
  'When the principal''s allowance of events is whole again, if it sends no more.';
comment on column public.rate_limits.expires_at is
  'When the row can be forgotten: the later of the two recovery times.';

-- Finding the rows that can be forgotten.
create index rate_limits_expires_at_idx on public.rate_limits (expires_at);

/*
 * Charges one request of p_events events to principal p_key, if both of its
 * budgets allow it, and says whether they did.
 *
 * p_key                  the principal: 'user:<id>' or 'ip:<address>'.
 * p_events               how many events the request carries (0 or more). A
 *                        request with more events than p_events_per_minute
 *                        costs a whole minute of events, no more.
 * p_requests_per_minute  the principal's allowance of requests per minute, at
 *                        least 1; a minute's worth may come in one burst.
 * p_events_per_minute    the same for events.
 * p_now                  the time of the request; the transaction's start by
 *                        default.
 *
 * Returns one row: allowed true, and retry_after_s 0, when the request was
 * charged; allowed false, and retry_after_s the whole seconds (at least 1)
 * after which the same request would be allowed, when it was not. A refused
 * request charges nothing, so a principal that keeps trying still gets its
 * steady rate through.
 *
 * Concurrent calls for one principal queue on its row, which stays locked
 * until the caller's transaction ends: call it in the statement that does the
 * work it guards, as the track function does,
 *
 *   select l.allowed, l.retry_after_s, r.*
 *   from public.consume_rate_limit('ip:203.0.113.7', 1, 120, 6000) as l
 *   left join lateral (
 *     select * from public.ingest_interactions(...) where l.allowed
 *   ) as r on true;
 *
 * where ingest_interactions does not run at all when the limit refuses.
 * Each call also deletes a few rows of other principals whose allowance is
 * whole again, which is the same as never having seen them.
 */
create function public.consume_rate_limit(
  p_key text,
  p_events integer,
  p_requests_per_minute integer,
  p_events_per_minute integer,
  p_now timestamptz default now()
)
returns table (allowed boolean, retry_after_s integer)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_period constant interval := interval '1 minute';
  v_request_cost interval;
  v_events_cost interval;
  v_requests_at timestamptz;
  v_events_at timestamptz;
  v_overshoot interval;
  v_now timestamptz;
begin
  if p_key is null or p_events is null or p_events < 0 or p_now is null
    or coalesce(p_requests_per_minute, 0) < 1 or coalesce(p_events_per_minute, 0) < 1 then
    raise exception 'consume_rate_limit(%, %, %, %, %): invalid argument',
      p_key, p_events, p_requests_per_minute, p_events_per_minute, p_now
      using errcode = 'invalid_parameter_value';
  end if;
  -- Costs in whole microseconds, rounded down so that a minute's worth adds
  -- up to no more than the minute (60 s / 7 would round up and let 6 through).
  v_request_cost := make_interval(secs => floor(60e6 / p_requests_per_minute) / 1e6);
  v_events_cost := make_interval(
    secs => floor(60e6 * least(p_events, p_events_per_minute) / p_events_per_minute) / 1e6
  );

  -- Lock the principal's row, creating it (with a whole allowance) when it is
  -- missing. The loop covers a row deleted as expired between the two steps.
  loop
    select greatest(r.requests_recovered_at, p_now) + v_request_cost,
      greatest(r.events_recovered_at, p_now) + v_events_cost,
      -- No earlier than the last charge, which is at most a period before
      -- its recovery: a call whose transaction started before a charge it
      -- then queued behind must not count the difference into its wait.
      greatest(p_now, greatest(r.requests_recovered_at, r.events_recovered_at) - v_period)
    into v_requests_at, v_events_at, v_now
    from public.rate_limits r
    where r.key = p_key
    for update;
    exit when found;
    insert into public.rate_limits (key, requests_recovered_at, events_recovered_at)
    values (p_key, p_now, p_now)
    on conflict (key) do nothing;
  end loop;

  -- How far past one period of allowance the request would reach.
  v_overshoot := greatest(v_requests_at, v_events_at) - v_now - v_period;
  allowed := v_overshoot <= interval '0';
  if allowed then
    update public.rate_limits r
    set requests_recovered_at = v_requests_at, events_recovered_at = v_events_at
    where r.key = p_key;
    retry_after_s := 0;
  else
    retry_after_s := greatest(1, ceil(extract(epoch from v_overshoot)))::integer;
  end if;

  -- Forget a few principals whose allowance is whole again (never this one:
  -- its row is locked by this transaction and either charged or in debt).
  delete from public.rate_limits r
  where r.key in (
    select e.key
    from public.rate_limits e
    where e.expires_at < p_now
    order by e.expires_at
    limit 8
    for update skip locked
  );

  return next;
end;
$$;

comment on function public.consume_rate_limit(text, integer, integer, integer, timestamptz) is
  'Charges one request of p_events events to a principal if its per-minute allowances of '
  'requests and events allow it; returns (allowed, retry_after_s). Called by the track '
  'function only, in the statement that stores the events.';

-- Only the owner, the role the track function connects as, may call it; the
-- API roles have no business with the counters. Analysts may see them.
revoke execute on function public.consume_rate_limit(text, integer, integer, integer, timestamptz)
  from public, anon, authenticated, service_role;

alter table public.rate_limits enable row level security;
revoke all on table public.rate_limits from public, anon, authenticated, service_role;
grant select on table public.rate_limits to analyst;

create policy "analysts read all rate limits"
  on public.rate_limits
  for select
  to analyst
  using (true);
