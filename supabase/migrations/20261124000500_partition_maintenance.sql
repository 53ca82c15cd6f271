-- Keeping the monthly partitions of public.user_interactions in step with the
-- calendar, and applying retention. One function does both; a daily pg_cron
-- job runs it, and this migration runs it once so that a new database has its
-- partitions at once. The retention window lives in the job's command: change
-- it by scheduling the job again under the same name (see below).

-- Where Supabase installs it (its objects live in schema cron regardless).
create extension if not exists pg_cron with schema pg_catalog;

/*
 * Creates the coming months' partitions of public.user_interactions and
 * applies retention. Returns what it did, as JSON.
 *
 * p_months_ahead       how many months after the current one (UTC) must have
 *                      their partition; the current and the previous month
 *                      always do, unless retention already excludes them.
 * p_retention          how long interactions are kept. Partitions entirely
 *                      older than the start of the month now() - p_retention
 *                      falls in are dropped whole; older rows in the default
 *                      partition, the event ids of all those rows and the
 *                      sessions that ended before that start are deleted;
 *                      the sessions that began before it and ended after it
 *                      are recounted from their remaining events, so every
 *                      session still equals its stored events.
 * p_error_retention    how long public.system_errors rows are kept.
 *
 * Months are calendar months in UTC, whatever the session's time zone. A
 * month's partition is named interaction_partitions.user_interactions_yyyy_mm.
 * Rows that reached the default partition because their month had no
 * partition yet are moved into it when it is created: the run creates the
 * partition of every month within retention that has such rows, however
 * old. One run at a time: a
 * second one waits for the first up to lock_timeout (3 s), then fails and
 * changes nothing. Inserts and reads go on while a run deletes and recounts;
 * dropping and creating partitions, which the run does last, lock the table
 * exclusively until it commits, so that lock lasts only for them, and the
 * run gives up (and changes nothing) if it cannot have it within
 * lock_timeout.
 *
 * Example:
 *   select public.maintain_interaction_partitions(
 *     p_months_ahead => 3, p_retention => interval '13 months'
 *   );
 *   -- {"created": ["interaction_partitions.user_interactions_2027_03"],
 *   --  "dropped": ["interaction_partitions.user_interactions_2025_09"],
 *   --  "moved_from_default": 0, "sessions_recounted": 3,
 *   --  "deleted": {"user_interactions": 0, "interaction_event_ids": 81234,
 *   --              "sessions": 5120, "system_errors": 12}}
 */
create function public.maintain_interaction_partitions(
  p_months_ahead integer default 3,
  p_retention interval default interval '13 months',
  p_error_retention interval default interval '30 days'
)
returns jsonb
language plpgsql
volatile
set search_path = ''
set timezone to 'UTC'
set lock_timeout = '3s'
as $$
declare
  v_this_month timestamptz := date_trunc('month', now(), 'UTC');
  v_cutoff timestamptz;
  v_from timestamptz;
  v_to timestamptz;
  v_name text;
  v_create text;
  v_partition record;
  v_moved bigint;
  v_moved_count bigint := 0;
  v_covered tstzmultirange := '{}'::tstzmultirange;
  v_created text[] := '{}'::text[];
  v_dropped text[] := '{}'::text[];
  v_deleted_rows bigint;
  v_deleted_ids bigint;
  v_deleted_sessions bigint;
  v_recounted_sessions bigint;
  v_deleted_errors bigint;
begin
  if p_months_ahead is null or p_months_ahead < 0 then
    raise exception 'p_months_ahead must be 0 or more, not %',
      coalesce(p_months_ahead::text, 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  if p_retention is null or p_retention <= interval '0' then
    raise exception 'p_retention must be a positive interval, not %',
      coalesce(p_retention::text, 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  if p_error_retention is null or p_error_retention <= interval '0' then
    raise exception 'p_error_retention must be a positive interval, not %',
      coalesce(p_error_retention::text, 'null')
      using errcode = 'invalid_parameter_value';
  end if;

  v_cutoff := date_trunc('month', now() - p_retention, 'UTC');

  -- One run at a time. This lock does not conflict with inserts or reads.
  lock table only public.user_interactions in share update exclusive mode;

  -- Retention. What a run deletes row by row comes first, while inserts and
  -- reads go on; dropping partitions, which locks the whole table until the
  -- run commits, comes last. Partitions are whole months and the cutoff is a
  -- month's start: a partition is either all older than the cutoff, and
  -- dropped, or all newer. Only the default partition holds older rows to
  -- delete one by one.
  delete from interaction_partitions.user_interactions_default where occurred_at < v_cutoff;
  get diagnostics v_deleted_rows = row_count;
  delete from public.interaction_event_ids where occurred_at < v_cutoff;
  get diagnostics v_deleted_ids = row_count;
  -- A session's events all happened between started_at and last_seen_at:
  -- sessions that ended before the cutoff have none left, and those that
  -- began before it lose some, so their figures are recomputed from the
  -- events the cutoff keeps (the sessions_started_at_idx range holds only
  -- those now).
  delete from public.sessions where started_at < v_cutoff and last_seen_at < v_cutoff;
  get diagnostics v_deleted_sessions = row_count;
  -- Lock them first (in id order, as ingestion does), so that the recount,
  -- a later statement, counts every event a concurrent ingestion added to
  -- them: counted from a snapshot taken before that commit, it would write
  -- back totals without it.
  perform 1 from public.sessions where started_at < v_cutoff order by id for update;
  update public.sessions as s
  set
    started_at = t.first_at,
    last_seen_at = t.last_at,
    interaction_count = t.interactions,
    page_views = t.views
  from (
    select
      ui.session_id,
      min(ui.occurred_at) as first_at,
      max(ui.occurred_at) as last_at,
      count(*)::integer as interactions,
      (count(*) filter (where ui.event_type = 'view'))::integer as views
    from public.user_interactions as ui
    where ui.session_id = any (array(
      select o.id from public.sessions as o where o.started_at < v_cutoff
    ))
      and ui.occurred_at >= v_cutoff
    group by ui.session_id
  ) as t
  where s.id = t.session_id;
  get diagnostics v_recounted_sessions = row_count;
  delete from public.system_errors where "timestamp" < now() - p_error_retention;
  get diagnostics v_deleted_errors = row_count;

  -- Drop the partitions whose whole range is older than the cutoff, and
  -- note the months the others cover.
  for v_partition in
    select c.oid::regclass::text as name,
      tstzrange(m.bounds[1]::timestamptz, m.bounds[2]::timestamptz) as bounds
    from pg_inherits as i
    join pg_class as c on c.oid = i.inhrelid
    cross join lateral regexp_match(
      pg_get_expr(c.relpartbound, c.oid),
      '^FOR VALUES FROM \(''([^'']+)''\) TO \(''([^'']+)''\)$'
    ) as m (bounds)
    where i.inhparent = 'public.user_interactions'::regclass
      and m.bounds is not null
    order by 2
  loop
    if upper(v_partition.bounds) <= v_cutoff then
      execute format('drop table %s', v_partition.name);
      v_dropped := v_dropped || v_partition.name;
    else
      v_covered := v_covered + tstzmultirange(v_partition.bounds);
    end if;
  end loop;

  -- The previous month (events may arrive days late), this one and those
  -- ahead; and any older month within retention that has rows in the default
  -- partition (the job stopped for longer than the months it had created
  -- ahead), so that those rows reach their month's partition too.
  for v_from in
    select m
    from generate_series(
      greatest(v_this_month - interval '1 month', v_cutoff),
      v_this_month + make_interval(months => p_months_ahead),
      interval '1 month'
    ) as m
    union
    select date_trunc('month', d.occurred_at, 'UTC')
    from interaction_partitions.user_interactions_default as d
    where d.occurred_at >= v_cutoff
    order by 1
  loop
    v_to := v_from + interval '1 month';
    continue when v_covered && tstzrange(v_from, v_to);
    v_name := 'user_interactions_' || to_char(v_from at time zone 'UTC', 'YYYY_MM');

    v_create := format(
      'create table interaction_partitions.%I partition of public.user_interactions '
        || 'for values from (%L) to (%L)',
      v_name, v_from, v_to
    );
    if exists (
      select from interaction_partitions.user_interactions_default as d
      where d.occurred_at >= v_from and d.occurred_at < v_to
    ) then
      -- Rows of this month went to the default partition meanwhile: the
      -- month's partition cannot exist beside them. The default partition
      -- steps aside while they move (nobody else can see it meanwhile).
      alter table public.user_interactions
        detach partition interaction_partitions.user_interactions_default;
      execute v_create;
      insert into public.user_interactions overriding system value
      select * from interaction_partitions.user_interactions_default as d
      where d.occurred_at >= v_from and d.occurred_at < v_to;
      get diagnostics v_moved = row_count;
      delete from interaction_partitions.user_interactions_default as d
      where d.occurred_at >= v_from and d.occurred_at < v_to;
      alter table public.user_interactions
        attach partition interaction_partitions.user_interactions_default default;
      v_moved_count := v_moved_count + v_moved;
    else
      execute v_create;
    end if;
    v_created := v_created || ('interaction_partitions.' || v_name);
  end loop;

  return jsonb_build_object(
    'created', to_jsonb(v_created),
    'dropped', to_jsonb(v_dropped),
    'moved_from_default', v_moved_count,
    'sessions_recounted', v_recounted_sessions,
    'deleted', jsonb_build_object(
      'user_interactions', v_deleted_rows,
      'interaction_event_ids', v_deleted_ids,
      'sessions', v_deleted_sessions,
      'system_errors', v_deleted_errors
    )
  );
end;
$$;

comment on function public.maintain_interaction_partitions(integer, interval, interval) is
  'Creates the partitions of public.user_interactions for the previous, the current and the '
  'next p_months_ahead months (and for any month within retention with rows in the default '
  'partition), drops those older than p_retention with their event ids and '
  'sessions, and deletes system_errors older than p_error_retention. Run daily by pg_cron.';

-- It creates and drops tables: only the owner, as whom the job runs, may.
revoke execute on function public.maintain_interaction_partitions(integer, interval, interval)
  from public, anon, authenticated, service_role;

-- The partitions a new database needs now; nothing is old enough to drop yet.
select public.maintain_interaction_partitions();

-- Every day at 03:17 UTC. The arguments are the settings: partitions 3
-- months ahead, 13 months of interactions, 30 days of errors. To keep a
-- different window, schedule the job again under the same name, e.g.
--   select cron.schedule('maintain-interaction-partitions', '17 3 * * *',
--     $$select public.maintain_interaction_partitions(3, interval '25 months')$$);
-- Each run's outcome is in cron.job_run_details.
select cron.schedule(
  'maintain-interaction-partitions',
  '17 3 * * *',
  $$select public.maintain_interaction_partitions(3, interval '13 months', interval '30 days')$$
);

-- Analysts read the event id registry like every other table
-- (20261124000400_access_control.sql); nobody else does.
grant select on table public.interaction_event_ids to analyst;

create policy "analysts read all event ids"
  on public.interaction_event_ids
  for select
  to analyst
  using (true);
