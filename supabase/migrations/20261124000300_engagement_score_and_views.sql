-- How engaged a session was, and the views analysts read: one row per session
-- with its duration, score and bounce, and one row per day summing them up
-- (with the index that lets that one be read a day at a time).
-- The score formula is shared with the browser client, which computes the
-- same numbers from the same test vectors.

/*
 * The engagement score of a session, 0 to 100.
 *
 * No interactions (or a null or negative count) score 0. Otherwise:
 * 10 points per interaction up to 50, plus 20 at 5 minutes or more, 20 more
 * at 15 minutes or more and 10 more at 30 minutes or more; a session shorter
 * than 1 minute scores half. A null or negative duration counts as 0. The
 * result is rounded and clamped to 0..100.
 *
 * Example: public.engagement_score(5, 900000) = 90.
 */
create function public.engagement_score(interaction_count integer, duration_ms bigint)
returns integer
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case
    when coalesce(interaction_count, 0) <= 0 then 0
    else greatest(0, least(100, round(
      (
        least(interaction_count, 5) * 10
        + case when coalesce(duration_ms, 0) >= 300000 then 20 else 0 end
        + case when coalesce(duration_ms, 0) >= 900000 then 20 else 0 end
        + case when coalesce(duration_ms, 0) >= 1800000 then 10 else 0 end
      ) * case when coalesce(duration_ms, 0) < 60000 then 0.5 else 1 end
    )))::integer
  end
$$;

comment on function public.engagement_score(integer, bigint) is
  'Engagement score 0..100 of a session with this many interactions lasting this many '
  'milliseconds: min(10 * count, 50), +20 at 5 min, +20 at 15 min, +10 at 30 min, halved '
  'under 1 min, 0 with no interactions.';

create view public.session_metrics
with (security_invoker = true)
as
select
  s.id as session_id,
  s.user_id,
  s.anonymous_id,
  s.started_at,
  s.last_seen_at,
  d.duration_ms,
  s.interaction_count,
  s.page_views,
  public.engagement_score(s.interaction_count, d.duration_ms) as engagement_score,
  case when s.page_views <= 1 then 100 else 0 end as bounce_rate
from public.sessions s
cross join lateral (
  select floor(extract(epoch from s.last_seen_at - s.started_at) * 1000)::bigint as duration_ms
) d;

comment on view public.session_metrics is
  'One row per session with its duration, engagement score and bounce, as the tracking '
  'client reports them. Each reader sees the sessions row level security lets them see.';
comment on column public.session_metrics.session_id is
  'The session id chosen by the client.';
comment on column public.session_metrics.user_id is
  'The signed-in user of the session; null for an anonymous visitor.';
comment on column public.session_metrics.anonymous_id is
  'The anonymous visitor of the session; null for a signed-in user.';
comment on column public.session_metrics.started_at is
  'When the session''s first event happened.';
comment on column public.session_metrics.last_seen_at is
  'When the session''s last event happened.';
comment on column public.session_metrics.duration_ms is
  'last_seen_at minus started_at, in whole milliseconds.';
comment on column public.session_metrics.interaction_count is
  'How many events the session holds.';
comment on column public.session_metrics.page_views is
  'How many of the session''s events are views.';
comment on column public.session_metrics.engagement_score is
  'public.engagement_score(interaction_count, duration_ms), 0 to 100.';
comment on column public.session_metrics.bounce_rate is
  '100 when the session has at most one page view (a bounce), else 0.';

create view public.daily_engagement
with (security_invoker = true)
as
select
  (m.started_at at time zone 'UTC')::date as day,
  count(*) as sessions,
  -- A session has exactly one principal, so the two distinct counts add up.
  count(distinct m.user_id) + count(distinct m.anonymous_id) as users,
  round(avg(m.duration_ms))::bigint as avg_duration_ms,
  round(avg(m.engagement_score), 2) as avg_engagement_score,
  round(100.0 * count(*) filter (where m.bounce_rate = 100) / count(*), 2) as bounce_rate
from public.session_metrics m
group by 1;

comment on view public.daily_engagement is
  'One row per UTC day on which sessions started: how many sessions and visitors, how long '
  'and how engaged the sessions were, and how many bounced.';
comment on column public.daily_engagement.day is
  'The UTC calendar day on which the sessions started.';
comment on column public.daily_engagement.sessions is
  'How many sessions started that day.';
comment on column public.daily_engagement.users is
  'How many distinct visitors had those sessions: signed-in users by user_id plus anonymous '
  'visitors by anonymous_id (a visitor who later signs in counts once as each).';
comment on column public.daily_engagement.avg_duration_ms is
  'The average session duration in milliseconds, rounded to a whole millisecond.';
comment on column public.daily_engagement.avg_engagement_score is
  'The average engagement score of the sessions, rounded to 2 decimals.';
comment on column public.daily_engagement.bounce_rate is
  'The percentage of the sessions that bounced (at most one page view), rounded to 2 decimals.';

-- For daily_engagement read by day (where day = ..., or a range of days): the
-- filter reaches public.sessions as this very expression, which an index on
-- started_at cannot serve, so without this index every such read scans every
-- session. It lives beside the view because the two expressions must stay
-- the same: change the view's day and this index no longer serves it.
create index sessions_start_day_utc_idx
  on public.sessions (((started_at at time zone 'UTC')::date));
