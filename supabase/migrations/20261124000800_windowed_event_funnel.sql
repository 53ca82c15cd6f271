-- The event funnel over a window of time, for the analysts' dashboard.
-- public.event_funnel counts every interaction ever kept, so reading it costs
-- as much as the whole history; the dashboard shows the last few days, and at
-- ten million rows the all-time funnel outlasts its statement timeout. This
-- function counts the same funnel from the interactions that happened since a
-- given instant only: its range on occurred_at lets Postgres skip the monthly
-- partitions of public.user_interactions that end before it. The view stays
-- as it is for analysts who want all time: a function that sets its
-- search_path cannot be inlined, so a view over this one would compute the
-- whole funnel before filtering it by event (ten times slower for one event
-- at 400,000 rows). The two bodies are held equal by pgTAP.

/*
 * The discovery-to-action funnel of each event, as public.event_funnel counts
 * it, from the interactions that happened at or after p_since only.
 *
 * The steps, their order and the visitors are those of public.event_funnel
 * (see its comment): a view; a click at or after the visitor's first view; a
 * ticket_click (on the event, or on a ticket_link whose metadata.event_id
 * names it) at or after the first click; and attendance, the visitor's latest
 * attendance mark falling at or after the first view and not a withdrawal.
 * Interactions before p_since are not seen at all: a visitor who viewed an
 * event before p_since and clicked it after is not a viewer, nor a clicker,
 * of the window. With p_since '-infinity' the rows are those of
 * public.event_funnel; with a null p_since there are none.
 *
 * It runs with the caller's rights, so row level security decides which
 * interactions it counts. p_since is compared with occurred_at as it is, so
 * only the partitions that can hold later rows are read.
 *
 * Example (the last 7 UTC days, today included):
 *   select *
 *   from public.event_funnel_since(
 *     ((now() at time zone 'utc')::date - 6)::timestamp at time zone 'utc'
 *   )
 *   order by viewers desc
 *   limit 10;
 */
create function public.event_funnel_since(p_since timestamptz)
returns table (
  entity_id text,
  viewers bigint,
  clickers bigint,
  ticket_clickers bigint,
  attendees bigint,
  view_to_click_pct numeric,
  click_to_ticket_click_pct numeric,
  view_to_ticket_click_pct numeric,
  view_to_attendance_pct numeric
)
language sql
stable
security invoker
parallel safe
set search_path = ''
as $$
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
    where ui.occurred_at >= p_since
      and (
        (
          ui.entity_type = 'event'
          and ui.event_type in ('view', 'click', 'ticket_click', 'attendance')
        )
        or (
          ui.entity_type = 'ticket_link'
          and ui.event_type = 'ticket_click'
          and jsonb_typeof(ui.metadata -> 'event_id') = 'string'
        )
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
      min(fv.occurred_at) filter (
        where fv.step = 'click' and fv.occurred_at >= fv.first_view_at
      ) as first_click_at,
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
    round(100.0 * c.clickers / nullif(c.viewers, 0), 2)::numeric(5, 2),
    round(100.0 * c.ticket_clickers / nullif(c.clickers, 0), 2)::numeric(5, 2),
    round(100.0 * c.ticket_clickers / nullif(c.viewers, 0), 2)::numeric(5, 2),
    round(100.0 * c.attendees / nullif(c.viewers, 0), 2)::numeric(5, 2)
  from counts as c
$$;

comment on function public.event_funnel_since(timestamptz) is
  'The funnel of public.event_funnel (same steps, same order, same visitors, one row per '
  'event, rates as percents rounded to 2 decimals) counted from the interactions that '
  'happened at or after p_since only: earlier interactions are not seen, so a view before '
  'p_since does not make a click after it count. Reads only the monthly partitions of '
  'user_interactions that can hold interactions from p_since on. With the caller''s rights.';

-- Whoever may read event_funnel may run it; row level security still applies.
revoke execute on function public.event_funnel_since(timestamptz) from public, anon;
grant execute on function public.event_funnel_since(timestamptz)
  to analyst, authenticated, service_role;
