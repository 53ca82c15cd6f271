-- The ingestion function: the one SQL call the track function makes per HTTP
-- request. It stores a validated batch of events exactly once, keeps the
-- sessions they belong to exact, and records the request's rejections, all in
-- the caller's transaction, with a handful of set-based statements whatever
-- the size of the batch.

/*
 * Stores one request's batch of events for one principal.
 *
 * p_user_id   the signed-in user from the verified JWT; null for an anonymous
 *             caller, whose events must then carry an anonymous_id.
 * p_events    a JSON array of events the track function has validated, each
 *             {"index", "event_id", "session_id", "anonymous_id",
 *             "event_type", "entity_type", "entity_id", "metadata",
 *             "occurred_at", "client_timestamp", "received_at"}, where index
 *             is the event's position in the HTTP request, and
 *             "event_id_generated": true on an event whose event_id the
 *             function made up (the client sent none): its rejection is
 *             logged without that id, which the client never knew. Values
 *             must have the right JSON types (a malformed uuid or time
 *             raises).
 * p_rejected  the events the track function already refused, as
 *             [{"index", "eventId"?, "errors": [{"path", "message"}]}]: only
 *             recorded in system_errors, not returned again.
 * p_context   request context recorded with the rejections, for example
 *             {"function": "track", "role": "authenticated", "request_id": "..."}.
 *
 * Returns one row per element of p_events, in index order: outcome
 * 'accepted' (stored now), 'duplicate' (its event_id is already stored,
 * whatever its month, or appears earlier in the batch) or 'rejected' with the
 * request field at fault in path (as the client names it: 'sessionId',
 * 'eventType'...) and the reason in a sentence.
 *
 * Nothing the database would refuse reaches an insert: an event breaking a
 * table rule, or naming a session another principal opened, is rejected on
 * its own, and a user id missing from auth.users rejects the whole batch,
 * so one bad event never aborts the request.
 *
 * Sessions: a session belongs to whoever opened it (the user, or for an
 * anonymous caller the event's anonymous_id). Its counts grow by the rows
 * inserted now and its times widen to their occurred_at, so they stay exact
 * under duplicates, retries and batches arriving out of order. Sessions are
 * inserted or locked first, in id order: concurrent requests for one session
 * queue behind each other, and of two requests opening the same new session
 * for different principals, the later one finds the session taken and its
 * events are rejected.
 *
 * When the request has any rejection (here or in p_rejected), one
 * public.system_errors row lists them all. Everything commits or rolls back
 * with the caller's transaction.
 *
 * Example:
 *   select * from public.ingest_interactions(
 *     null,
 *     '[{"index": 0, "event_id": "0b6c...", "session_id": null,
 *        "anonymous_id": "visitor-1", "event_type": "view",
 *        "entity_type": "event", "entity_id": "event-123", "metadata": {},
 *        "occurred_at": "2026-11-24T10:00:00Z", "client_timestamp": null,
 *        "received_at": "2026-11-24T10:00:01Z"}]'
 *   );
 */
create function public.ingest_interactions(
  p_user_id uuid,
  p_events jsonb,
  p_rejected jsonb default '[]'::jsonb,
  p_context jsonb default '{}'::jsonb
)
returns table (event_index integer, event_id uuid, outcome text, path text, reason text)
language plpgsql
volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_unknown_user boolean := p_user_id is not null
    and not exists (select from auth.users u where u.id = p_user_id);
  v_rejected jsonb := coalesce(p_rejected, '[]'::jsonb);
begin
  -- Open the sessions this batch names, or lock the ones that exist, in id
  -- order so that concurrent requests cannot deadlock. Existing rows are not
  -- written here: the owner decides below whether the events may join. A new
  -- row starts with no interactions; its times are placeholders until the
  -- events it receives below set them.
  insert into public.sessions as s (id, user_id, anonymous_id, started_at, last_seen_at)
  select distinct on (e.session_id)
    e.session_id,
    p_user_id,
    case when p_user_id is null then e.anonymous_id end,
    e.occurred_at,
    e.occurred_at
  from jsonb_to_recordset(coalesce(p_events, '[]'::jsonb))
    as e ("index" integer, session_id uuid, anonymous_id text, occurred_at timestamptz)
  where e.session_id is not null
    and e.occurred_at is not null
    and not v_unknown_user
    and (p_user_id is not null or char_length(e.anonymous_id) between 1 and 64)
  order by e.session_id, e."index"
  on conflict (id) do update set last_seen_at = s.last_seen_at where false;

  return query
  with problems (problem, path, message) as (
    values
      ('unknown_user', '', 'unknown user: the signed-in user does not exist'),
      ('event_id_missing', 'eventId', 'event_id is missing'),
      ('event_type_invalid', 'eventType', 'event_type is not one of the 18 event types'),
      ('entity_type_invalid', 'entityType', 'entity_type is not one of the 12 entity types'),
      ('entity_id_length', 'entityId', 'entity_id must be 1 to 255 characters'),
      ('metadata_not_object', 'metadata', 'metadata must be a JSON object'),
      ('occurred_at_missing', 'timestamp', 'occurred_at is missing'),
      ('occurred_after_received', 'timestamp', 'occurred_at is later than received_at'),
      ('principal_missing', 'anonymousId', 'anonymous_id is required when no user is signed in'),
      ('anonymous_id_length', 'anonymousId', 'anonymous_id must be 1 to 64 characters'),
      ('foreign_session', 'sessionId', 'session belongs to another principal')
  ),
  incoming as (
    select
      e."index",
      e.event_id,
      e.session_id,
      e.anonymous_id,
      e.event_type,
      e.entity_type,
      e.entity_id,
      coalesce(e.metadata, '{}'::jsonb) as metadata,
      e.occurred_at,
      e.client_timestamp,
      coalesce(e.received_at, now()) as received_at,
      coalesce(e.event_id_generated, false) as event_id_generated
    from jsonb_to_recordset(coalesce(p_events, '[]'::jsonb)) as e (
      "index" integer,
      event_id uuid,
      event_id_generated boolean,
      session_id uuid,
      anonymous_id text,
      event_type text,
      entity_type text,
      entity_id text,
      metadata jsonb,
      occurred_at timestamptz,
      client_timestamp timestamptz,
      received_at timestamptz
    )
  ),
  -- The sessions the batch names, found through the primary key.
  named_sessions as (
    select s.id, s.user_id, s.anonymous_id, s.interaction_count
    from public.sessions s
    where s.id = any (array(
      select distinct i.session_id from incoming i where i.session_id is not null
    ))
  ),
  -- The first rule each event breaks, in the order of the table's checks.
  -- The type lists repeat the CHECK constraints of public.user_interactions.
  checked as (
    select
      i.*,
      case
        when v_unknown_user then 'unknown_user'
        when i.event_id is null then 'event_id_missing'
        when i.event_type is null or i.event_type not in (
          'view', 'click', 'like', 'share', 'interest', 'search', 'review', 'comment',
          'navigate', 'form_submit', 'profile_update', 'swipe', 'follow', 'unfollow',
          'attendance', 'ticket_click', 'streaming_top', 'streaming_recent'
        ) then 'event_type_invalid'
        when i.entity_type is null or i.entity_type not in (
          'event', 'artist', 'venue', 'review', 'user', 'profile', 'view', 'form',
          'ticket_link', 'song', 'album', 'playlist'
        ) then 'entity_type_invalid'
        when i.entity_id is null or char_length(i.entity_id) not between 1 and 255
          then 'entity_id_length'
        when jsonb_typeof(i.metadata) <> 'object' then 'metadata_not_object'
        when i.occurred_at is null then 'occurred_at_missing'
        when i.occurred_at > i.received_at then 'occurred_after_received'
        when p_user_id is null and i.anonymous_id is null then 'principal_missing'
        when char_length(i.anonymous_id) not between 1 and 64 then 'anonymous_id_length'
        when i.session_id is not null and not coalesce(
          s.user_id is not distinct from p_user_id
            and (p_user_id is not null or s.anonymous_id = i.anonymous_id),
          false
        ) then 'foreign_session'
      end as problem
    from incoming i
    left join named_sessions s on s.id = i.session_id
  ),
  -- Among the acceptable events, the first occurrence of each event_id is
  -- the one to insert; later ones in the batch are duplicates.
  judged as (
    select
      c.*,
      row_number() over (
        partition by c.event_id, c.problem is null order by c."index"
      ) as occurrence
    from checked c
  ),
  -- An event id is unique in public.interaction_event_ids, whichever monthly
  -- partition its event lands in: the ids registered now are the events to
  -- store; an id already there (stored earlier, or by a concurrent request
  -- that commits first) is a duplicate. Key order, so that two requests
  -- sharing event ids cannot deadlock.
  registered as (
    insert into public.interaction_event_ids as k (event_id, occurred_at)
    select j.event_id, j.occurred_at
    from judged j
    where j.problem is null and j.occurrence = 1
    order by j.event_id
    on conflict (event_id) do nothing
    returning k.event_id
  ),
  inserted as (
    insert into public.user_interactions as ui (
      event_id, user_id, anonymous_id, session_id, event_type, entity_type, entity_id,
      metadata, occurred_at, client_timestamp, received_at
    )
    select
      j.event_id, p_user_id, j.anonymous_id, j.session_id, j.event_type, j.entity_type,
      j.entity_id, j.metadata, j.occurred_at, j.client_timestamp, j.received_at
    from judged j
    where j.problem is null and j.occurrence = 1
      -- An array, not a join: misled by jsonb_to_recordset's row estimate,
      -- the planner would join the two CTEs with a nested loop, several
      -- times slower on a batch of 500.
      and j.event_id = any (array(select r.event_id from registered r))
    -- Ids follow the request's order, so that of two events at the same
    -- instant, the one stored last is the one the client sent last.
    order by j."index"
    returning ui.event_id, ui.session_id, ui.event_type, ui.occurred_at
  ),
  session_totals as (
    select
      n.session_id,
      count(*)::integer as interactions,
      (count(*) filter (where n.event_type = 'view'))::integer as views,
      min(n.occurred_at) as first_at,
      max(n.occurred_at) as last_at
    from inserted n
    where n.session_id is not null
    group by n.session_id
  ),
  -- A session with no interactions yet was opened by this call: its
  -- placeholder times give way to those of its first events.
  updated_sessions as (
    update public.sessions s
    set
      started_at = case
        when s.interaction_count = 0 then t.first_at else least(s.started_at, t.first_at)
      end,
      last_seen_at = case
        when s.interaction_count = 0 then t.last_at else greatest(s.last_seen_at, t.last_at)
      end,
      interaction_count = s.interaction_count + t.interactions,
      page_views = s.page_views + t.views
    from session_totals t
    where s.id = t.session_id
  ),
  -- A session this call opened but gave no event to (all its events were
  -- rejected or duplicates) is removed again.
  unused_sessions as (
    delete from public.sessions s
    where s.id = any (array(
      select n.id from named_sessions n
      where n.interaction_count = 0
        -- An array, not an anti-join, for the same reason.
        and n.id <> all (array(select t.session_id from session_totals t))
    ))
  ),
  outcomes as (
    select
      j."index",
      j.event_id,
      case
        when j.problem is not null then 'rejected'
        when n.event_id is not null then 'accepted'
        else 'duplicate'
      end as outcome,
      p.path,
      p.message as reason,
      j.event_id_generated
    from judged j
    left join inserted n
      on n.event_id = j.event_id and j.problem is null and j.occurrence = 1
    left join problems p on p.problem = j.problem
  ),
  summary as (
    select
      count(*) filter (where o.outcome = 'accepted')::integer as accepted,
      count(*) filter (where o.outcome = 'duplicate')::integer as duplicates,
      count(*) filter (where o.outcome = 'rejected')::integer + jsonb_array_length(v_rejected)
        as rejected,
      count(*)::integer + jsonb_array_length(v_rejected) as received,
      coalesce(
        jsonb_agg(
          jsonb_strip_nulls(jsonb_build_object(
            'index', o."index",
            'eventId', case when not o.event_id_generated then o.event_id end,
            'errors', jsonb_build_array(jsonb_build_object('path', o.path, 'message', o.reason))
          ))
        ) filter (where o.outcome = 'rejected'),
        '[]'::jsonb
      ) as found_here
    from outcomes o
  ),
  logged as (
    insert into public.system_errors (category, context, error_message, metadata, user_id)
    select
      'validation',
      'track',
      format('%s of %s events in the request were rejected', m.rejected, m.received),
      jsonb_build_object(
        'request', coalesce(p_context, '{}'::jsonb),
        'counts', jsonb_build_object(
          'received', m.received,
          'accepted', m.accepted,
          'duplicates', m.duplicates,
          'rejected', m.rejected
        ),
        'rejections', (
          select jsonb_agg(r.rejection order by (r.rejection ->> 'index')::integer)
          from (
            select jsonb_array_elements(v_rejected)
            union all
            select jsonb_array_elements(m.found_here)
          ) as r (rejection)
        )
      )
      -- An unknown user's id, which the user_id column cannot hold. A known
      -- user's id is only in that column, and goes when the user does.
      || case
        when v_unknown_user then jsonb_build_object('user_id', p_user_id)
        else '{}'::jsonb
      end,
      case when not v_unknown_user then p_user_id end
    from summary m
    where m.rejected > 0
  )
  select o."index", o.event_id, o.outcome, o.path, o.reason
  from outcomes o
  order by o."index";
end;
$$;

comment on function public.ingest_interactions(uuid, jsonb, jsonb, jsonb) is
  'Stores one request''s validated events for one principal exactly once, keeps their '
  'sessions exact, logs the request''s rejections to system_errors, and returns one outcome '
  '(accepted, duplicate, rejected with a reason) per event. Called by the track function only.';

-- Only the owner, the role the track function connects as, may call it.
revoke execute on function public.ingest_interactions(uuid, jsonb, jsonb, jsonb)
  from public, anon, authenticated, service_role;
