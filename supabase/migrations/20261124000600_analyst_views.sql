-- Views for analysts and for the personalization jobs, all read straight from
-- public.user_interactions (and public.session_metrics): how popular each
-- entity is day by day, how visitors move from seeing an event to buying a
-- ticket or attending it, how engaged each signed-in user is, and how much
-- each user seems to like each entity. They run with the reader's rights
-- (security_invoker), so row level security decides what each reader sees:
-- analysts and the service role everything, a signed-in user their own rows.
--
-- A visitor, wherever these views count them, is a signed-in user by user_id,
-- else an anonymous visitor by anonymous_id: a visitor who signs in part way
-- counts once as each.

/*
 * The preference weight of one interaction, for public.preference_signals.
 *
 * The one place the weighting lives:
 *   view 1, click 2, share 3, interest 4, streaming_recent 3,
 *   streaming_top 5, ticket_click 6, attendance 8,
 *   like 5 and follow 6,
 *   review (rating - 3) * 2 + 4, that is 0 for 1 star up to 8 for 5 stars
 *     (metadata.rating, clamped to 1..5; 4 when the event has no numeric rating).
 * Taking a mark back weighs the opposite of giving it, so the two cancel out:
 *   a like with metadata.liked = false -5, an interest with
 *   metadata.interested = false -4, an attendance with
 *   metadata.attended = false -8, and unfollow -6.
 * Every other event type (search, comment, navigate, form_submit,
 * profile_update, swipe) weighs 0.
 *
 * Example: public.interaction_signal_weight('review', '{"rating": 5}') = 8.
 */
create function public.interaction_signal_weight(event_type text, metadata jsonb)
returns numeric
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case event_type
    when 'view' then 1
    when 'click' then 2
    when 'share' then 3
    when 'interest' then case when metadata -> 'interested' = 'false'::jsonb then -4 else 4 end
    when 'streaming_recent' then 3
    when 'streaming_top' then 5
    when 'ticket_click' then 6
    when 'attendance' then case when metadata -> 'attended' = 'false'::jsonb then -8 else 8 end
    when 'like' then case when metadata -> 'liked' = 'false'::jsonb then -5 else 5 end
    when 'follow' then 6
    when 'unfollow' then -6
    when 'review' then (
      case
        when jsonb_typeof(metadata -> 'rating') = 'number'
          then greatest(1, least(5, (metadata ->> 'rating')::numeric))
        else 3
      end - 3
    ) * 2 + 4
    else 0
  end::numeric
$$;

comment on function public.interaction_signal_weight(text, jsonb) is
  'Preference weight of one interaction: view 1, click 2, share 3, interest 4 (-4 when '
  'metadata.interested is false), streaming_recent 3, streaming_top 5, ticket_click 6, '
  'attendance 8 (-8 when metadata.attended is false), like 5 (-5 when metadata.liked is '
  'false), follow 6, unfollow -6, review (rating - 3) * 2 + 4 with the rating clamped to '
  '1..5 (4 without a numeric rating), any other event type 0.';

create view public.entity_engagement_daily
with (security_invoker = true)
as
select
  (ui.occurred_at at time zone 'UTC')::date as day,
  ui.entity_type,
  ui.entity_id,
  ui.event_type,
  count(*) as interactions,
  count(distinct coalesce('user:' || ui.user_id::text, 'anonymous:' || ui.anonymous_id))
    as visitors,
  count(distinct ui.session_id) as sessions
from public.user_interactions as ui
group by 1, 2, 3, 4;

comment on view public.entity_engagement_daily is
  'Popularity of each entity per UTC day and event type: how many interactions, from how '
  'many distinct visitors, in how many distinct sessions. Visitors are signed-in users by '
  'user_id, else anonymous visitors by anonymous_id.';
comment on column public.entity_engagement_daily.day is
  'The UTC calendar day on which the interactions happened (their occurred_at).';
comment on column public.entity_engagement_daily.entity_type is
  'The type of the entity acted on (event, artist, venue...).';
comment on column public.entity_engagement_daily.entity_id is
  'The id of the entity acted on.';
comment on column public.entity_engagement_daily.event_type is
  'What the visitors did to the entity (view, click, like...).';
comment on column public.entity_engagement_daily.interactions is
  'How many interactions of this type the entity had that day.';
comment on column public.entity_engagement_daily.visitors is
  'How many distinct visitors had them: signed-in users by user_id, anonymous visitors by '
  'anonymous_id.';
comment on column public.entity_engagement_daily.sessions is
  'How many distinct sessions they happened in (interactions without a session not counted).';

create view public.event_funnel
with (security_invoker = true)
as
-- A ticket click is tied to its event in either of the two ways the client
-- records one: on the event itself (ticketClick('event', id)), or on one of
-- its ticket links, whose metadata.event_id names it. Attendance marks are
-- all kept, withdrawals too: a visitor's latest mark decides whether they
-- attend, so a withdrawal cancels the marks before it.
with steps as (
  select
    case
      when ui.entity_type = 'ticket_link' then ui.metadata ->> 'event_id'
      else ui.entity_id
    end as entity_id,
    ui.event_type as step,
    coalesce('user:' || ui.user_id::text, 'anonymous:' || ui.anonymous_id) as visitor,
    ui.occurred_at,
    ui.id,
    ui.event_type = 'attendance' and ui.metadata -> 'attended' is distinct from 'false'
      as attends
  from public.user_interactions as ui
  where (
      ui.entity_type = 'event'
      and ui.event_type in ('view', 'click', 'ticket_click', 'attendance')
    )
    or (
      ui.entity_type = 'ticket_link'
      and ui.event_type = 'ticket_click'
      and jsonb_typeof(ui.metadata -> 'event_id') = 'string'
    )
),
first_views as (
  select
    s.*,
    min(s.occurred_at) filter (where s.step = 'view')
      over (partition by s.entity_id, s.visitor) as first_view_at
  from steps as s
),
visitors as (
  select
    fv.entity_id,
    fv.visitor,
    min(fv.first_view_at) as first_view_at,
    min(fv.occurred_at) filter (where fv.step = 'click' and fv.occurred_at >= fv.first_view_at)
      as first_click_at,
    max(fv.occurred_at) filter (where fv.step = 'ticket_click') as last_ticket_click_at,
    max(fv.occurred_at) filter (where fv.step = 'attendance') as last_attendance_at,
    -- Of two marks at the same instant, the one stored last.
    (array_agg(fv.attends order by fv.occurred_at desc, fv.id desc)
      filter (where fv.step = 'attendance'))[1] as last_attendance_attends
  from first_views as fv
  group by fv.entity_id, fv.visitor
),
counts as (
  select
    v.entity_id,
    count(v.first_view_at) as viewers,
    count(v.first_click_at) as clickers,
    count(*) filter (where v.last_ticket_click_at >= v.first_click_at) as ticket_clickers,
    count(*) filter (
      where v.last_attendance_attends and v.last_attendance_at >= v.first_view_at
    ) as attendees
  from visitors as v
  group by v.entity_id
)
select
  c.entity_id,
  c.viewers,
  c.clickers,
  c.ticket_clickers,
  c.attendees,
  round(100.0 * c.clickers / nullif(c.viewers, 0), 2)::numeric(5, 2) as view_to_click_pct,
  round(100.0 * c.ticket_clickers / nullif(c.clickers, 0), 2)::numeric(5, 2)
    as click_to_ticket_click_pct,
  round(100.0 * c.ticket_clickers / nullif(c.viewers, 0), 2)::numeric(5, 2)
    as view_to_ticket_click_pct,
  round(100.0 * c.attendees / nullif(c.viewers, 0), 2)::numeric(5, 2) as view_to_attendance_pct
from counts as c;

comment on view public.event_funnel is
  'The discovery-to-action funnel of each event (entity_type ''event''), over all time and '
  'across sessions, counted in distinct visitors (signed-in users by user_id, else anonymous '
  'visitors by anonymous_id). The steps are ordered, each counted only after the one before '
  'it: a view of the event; a click on the event at or after the visitor''s first view; a '
  'ticket_click at or after that first click; and, from the view, attendance: the visitor''s '
  'latest attendance mark on the event (of two at the same instant, the one stored last) is '
  'not a withdrawal (metadata.attended false) and falls at or after the first view, so a '
  'withdrawal cancels the marks before it. So clickers, ticket_clickers and attendees never '
  'exceed viewers, and a click, ticket_click or attendance with no view before it is left '
  'out (it still shows in entity_engagement_daily). A ticket_click belongs to an event when '
  'it is on the event itself (entity_type ''event''), or on a ticket_link entity whose '
  'metadata.event_id (a string) is the event''s entity_id. One row per event with at least '
  'one view, click, ticket_click or attendance mark recorded; rates are percents rounded to '
  '2 decimals, null when their denominator is 0.';
comment on column public.event_funnel.entity_id is
  'The event''s entity_id (user_interactions.entity_id where entity_type is ''event'').';
comment on column public.event_funnel.viewers is
  'How many distinct visitors viewed the event.';
comment on column public.event_funnel.clickers is
  'How many of the viewers clicked the event at or after their first view.';
comment on column public.event_funnel.ticket_clickers is
  'How many of the clickers clicked for tickets to the event (a ticket_click on the event, '
  'or on a ticket_link whose metadata.event_id is the event) at or after their first click '
  'on the event.';
comment on column public.event_funnel.attendees is
  'How many of the viewers attend: their latest attendance mark on the event is not a '
  'withdrawal (metadata.attended false) and falls at or after their first view.';
comment on column public.event_funnel.view_to_click_pct is
  'clickers as a percent of viewers, rounded to 2 decimals; null when there are no viewers.';
comment on column public.event_funnel.click_to_ticket_click_pct is
  'ticket_clickers as a percent of clickers, rounded to 2 decimals; null when there are no '
  'clickers.';
comment on column public.event_funnel.view_to_ticket_click_pct is
  'ticket_clickers as a percent of viewers, rounded to 2 decimals; null when there are no '
  'viewers.';
comment on column public.event_funnel.view_to_attendance_pct is
  'attendees as a percent of viewers, rounded to 2 decimals; null when there are no viewers.';

create view public.user_engagement
with (security_invoker = true)
as
-- Interactions and sessions side by side, one row each, so that a filter on
-- user_id reaches both tables' user_id indexes.
select
  a.user_id,
  count(a.session_id) as sessions,
  count(a.occurred_at) as interactions,
  min(a.occurred_at) as first_seen_at,
  max(a.occurred_at) as last_seen_at,
  round(avg(a.session_duration_ms))::bigint as avg_session_duration_ms,
  round(avg(a.session_engagement_score), 2) as avg_engagement_score,
  count(distinct (a.occurred_at at time zone 'UTC')::date) as active_days
from (
  select
    ui.user_id,
    ui.occurred_at,
    null::uuid as session_id,
    null::bigint as session_duration_ms,
    null::integer as session_engagement_score
  from public.user_interactions as ui
  where ui.user_id is not null
  union all
  select m.user_id, null, m.session_id, m.duration_ms, m.engagement_score
  from public.session_metrics as m
  where m.user_id is not null
) as a
group by a.user_id;

comment on view public.user_engagement is
  'One row per signed-in user with interactions or sessions: how many sessions and '
  'interactions, when first and last seen, how long and how engaged the sessions were on '
  'average (from session_metrics), and on how many UTC days the user was active. Anonymous '
  'visitors are not in it.';
comment on column public.user_engagement.user_id is
  'The signed-in user (auth.users.id).';
comment on column public.user_engagement.sessions is
  'How many sessions the user opened.';
comment on column public.user_engagement.interactions is
  'How many interactions the user made, in sessions or not.';
comment on column public.user_engagement.first_seen_at is
  'When the user''s earliest interaction happened; null when none is kept.';
comment on column public.user_engagement.last_seen_at is
  'When the user''s latest interaction happened; null when none is kept.';
comment on column public.user_engagement.avg_session_duration_ms is
  'The average duration of the user''s sessions in milliseconds, rounded to a whole '
  'millisecond; null without sessions.';
comment on column public.user_engagement.avg_engagement_score is
  'The average engagement score (0 to 100) of the user''s sessions, rounded to 2 decimals; '
  'null without sessions.';
comment on column public.user_engagement.active_days is
  'On how many distinct UTC days the user made at least one interaction.';

create view public.preference_signals
with (security_invoker = true)
as
with signals as (
  select
    ui.user_id,
    case when ui.event_type = 'ticket_click' and ui.entity_type = 'ticket_link'
      and jsonb_typeof(ui.metadata -> 'event_id') = 'string' then 'event'
      else ui.entity_type
    end as entity_type,
    case when ui.event_type = 'ticket_click' and ui.entity_type = 'ticket_link'
      and jsonb_typeof(ui.metadata -> 'event_id') = 'string' then ui.metadata ->> 'event_id'
      else ui.entity_id
    end as entity_id,
    ui.event_type,
    ui.metadata,
    ui.occurred_at
  from public.user_interactions as ui
  where ui.user_id is not null
    and ui.event_type in (
      'view', 'click', 'share', 'like', 'interest', 'follow', 'unfollow', 'review',
      'attendance', 'ticket_click', 'streaming_top', 'streaming_recent'
    )
)
select
  s.user_id,
  s.entity_type,
  s.entity_id,
  sum(public.interaction_signal_weight(s.event_type, s.metadata)) as preference_score,
  count(*) filter (where s.event_type = 'view') as views,
  count(*) filter (where s.event_type = 'click') as clicks,
  count(*) filter (where s.event_type = 'share') as shares,
  count(*) filter (
    where s.event_type = 'like' and s.metadata -> 'liked' is distinct from 'false'
  ) as likes,
  count(*) filter (where s.event_type = 'like' and s.metadata -> 'liked' = 'false') as unlikes,
  count(*) filter (
    where s.event_type = 'interest' and s.metadata -> 'interested' is distinct from 'false'
  ) as interests,
  count(*) filter (
    where s.event_type = 'interest' and s.metadata -> 'interested' = 'false'
  ) as interests_withdrawn,
  count(*) filter (where s.event_type = 'follow') as follows,
  count(*) filter (where s.event_type = 'unfollow') as unfollows,
  count(*) filter (where s.event_type = 'review') as reviews,
  count(*) filter (
    where s.event_type = 'attendance' and s.metadata -> 'attended' is distinct from 'false'
  ) as attendances,
  count(*) filter (
    where s.event_type = 'attendance' and s.metadata -> 'attended' = 'false'
  ) as attendances_withdrawn,
  count(*) filter (where s.event_type = 'ticket_click') as ticket_clicks,
  count(*) filter (where s.event_type = 'streaming_top') as streaming_top_signals,
  count(*) filter (where s.event_type = 'streaming_recent') as streaming_recent_signals,
  max(s.occurred_at) as last_signal_at
from signals as s
group by s.user_id, s.entity_type, s.entity_id;

comment on view public.preference_signals is
  'How much each signed-in user seems to like each entity, for the personalization jobs: '
  'one row per user and entity with at least one signal, the weighted preference_score and '
  'the raw count of each signal. Weights (public.interaction_signal_weight): view 1, click 2, '
  'share 3, interest 4, streaming_recent 3, streaming_top 5, ticket_click 6, attendance 8, '
  'like 5, follow 6, review (rating - 3) * 2 + 4 (0 for 1 star up to 8 for 5 stars); taking a '
  'mark back weighs its opposite (unlike -5, interest withdrawn -4, attendance withdrawn -8, '
  'unfollow -6). A ticket_click on a ticket_link whose metadata.event_id (a string) names an '
  'event counts toward that event (entity_type ''event''), as in event_funnel. Anonymous '
  'visitors are not in it.';
comment on column public.preference_signals.user_id is
  'The signed-in user (auth.users.id).';
comment on column public.preference_signals.entity_type is
  'The type of the entity the signals are about (''event'' for ticket clicks attributed to '
  'an event).';
comment on column public.preference_signals.entity_id is
  'The id of the entity the signals are about.';
comment on column public.preference_signals.preference_score is
  'The sum of the weights of the user''s signals about the entity (see the view''s comment); '
  'negative when withdrawals outweigh the rest.';
comment on column public.preference_signals.views is
  'How many times the user viewed the entity.';
comment on column public.preference_signals.clicks is
  'How many times the user clicked the entity.';
comment on column public.preference_signals.shares is
  'How many times the user shared the entity.';
comment on column public.preference_signals.likes is
  'How many likes the user gave the entity (metadata.liked not false).';
comment on column public.preference_signals.unlikes is
  'How many likes the user took back (like events with metadata.liked false).';
comment on column public.preference_signals.interests is
  'How many times the user marked interest (metadata.interested not false).';
comment on column public.preference_signals.interests_withdrawn is
  'How many times the user withdrew interest (interest events with metadata.interested false).';
comment on column public.preference_signals.follows is
  'How many times the user followed the entity.';
comment on column public.preference_signals.unfollows is
  'How many times the user unfollowed the entity.';
comment on column public.preference_signals.reviews is
  'How many reviews the user wrote about the entity.';
comment on column public.preference_signals.attendances is
  'How many times the user marked attendance (metadata.attended not false).';
comment on column public.preference_signals.attendances_withdrawn is
  'How many times the user withdrew attendance (attendance events with metadata.attended false).';
comment on column public.preference_signals.ticket_clicks is
  'How many times the user clicked a ticket link of the entity.';
comment on column public.preference_signals.streaming_top_signals is
  'How many times the entity was reported among the user''s top streamed items.';
comment on column public.preference_signals.streaming_recent_signals is
  'How many times the entity was reported among the user''s recently streamed items.';
comment on column public.preference_signals.last_signal_at is
  'When the user''s latest signal about the entity happened.';

-- Read-only for analysts, the service role and signed-in users (whom row level
-- security limits to their own rows); nothing for anon.
revoke all on table
  public.entity_engagement_daily,
  public.event_funnel,
  public.user_engagement,
  public.preference_signals
  from public, anon, authenticated, service_role;
grant select on table
  public.entity_engagement_daily,
  public.event_funnel,
  public.user_engagement,
  public.preference_signals
  to analyst, authenticated, service_role;

-- The weight is pure; whoever reads preference_signals needs to run it.
revoke execute on function public.interaction_signal_weight(text, jsonb) from public, anon;
grant execute on function public.interaction_signal_weight(text, jsonb)
  to analyst, authenticated, service_role;
