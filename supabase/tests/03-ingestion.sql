-- public.ingest_interactions: one call per HTTP request. Duplicates within a
-- batch and across calls, batches arriving out of order, sessions of other
-- principals, values the tables refuse, an unknown user, the system_errors
-- row of a request with rejections, and concurrent requests for one session.
-- At the end, every session's figures equal those recomputed from its events.
begin;
select plan(53);

-- Names for the random ids of this run: pg_temp.id('user A') is the same
-- uuid every time it is asked for within the run, and a new one each run.
-- Immutable, so a query naming one reads the table once, not once per row.
select format(
  'create function pg_temp.id(p_name text) returns uuid language sql immutable as %L',
  format('select md5(%L || p_name)::uuid', gen_random_uuid())
) \gexec

-- The events and sessions the run names, for the checks at the end.
create temp table ids (name text primary key, id uuid not null);

create function pg_temp.named(p_name text) returns uuid
language sql
as $$
  insert into ids (name, id) values (p_name, pg_temp.id(p_name)) on conflict (name) do nothing;
  select pg_temp.id(p_name);
$$;

create function pg_temp.visitor(p_name text) returns text
language sql
as $$ select 'visitor-' || pg_temp.id(p_name) $$;

-- One event as the track function passes it, happening p_offset after
-- 10:00 and received at 12:00, with some of its fields replaced.
create function pg_temp.ev(
  p_index integer,
  p_event text,
  p_session text,
  p_visitor text,
  p_event_type text,
  p_offset interval,
  p_changes jsonb default '{}'::jsonb
) returns jsonb
language sql
as $$
  select jsonb_build_object(
    'index', p_index,
    'event_id', pg_temp.named(p_event),
    'session_id', case when p_session is not null then pg_temp.named(p_session) end,
    'anonymous_id', case when p_visitor is not null then pg_temp.visitor(p_visitor) end,
    'event_type', p_event_type,
    'entity_type', 'event',
    'entity_id', 'event-123',
    'metadata', '{"artist_name": "Taylor Swift"}'::jsonb,
    'occurred_at', timestamptz '2026-11-24T10:00:00Z' + p_offset,
    'client_timestamp', timestamptz '2026-11-24T10:00:00Z' + p_offset,
    'received_at', timestamptz '2026-11-24T12:00:00Z'
  ) || p_changes
$$;

create temp table outcomes (
  call text, event_index integer, event_id uuid, outcome text, path text, reason text
);

-- One request: the ingestion call, its outcomes kept under the call's name.
create function pg_temp.ingest(
  p_call text, p_user text, p_events jsonb, p_rejected jsonb default '[]'::jsonb
) returns void
language sql
as $$
  insert into outcomes
  select p_call, r.*
  from public.ingest_interactions(
    case when p_user is not null then pg_temp.id(p_user) end,
    p_events,
    p_rejected,
    jsonb_build_object('function', 'track', 'request_id', pg_temp.id(p_call))
  ) as r;
$$;

-- The system_errors rows a call wrote.
create function pg_temp.errors_of(p_call text) returns setof public.system_errors
language sql
as $$
  select * from public.system_errors
  where metadata -> 'request' ->> 'request_id' = (select pg_temp.id(p_call)::text)
$$;

insert into auth.users (id, email)
select pg_temp.id(u), pg_temp.id(u) || '@example.test'
from unnest(array['user A', 'user B']) as u;

-- Call 1, user A: a new session, an event_id twice in the batch, an event
-- with no session that also carries the browser's anonymous id.

select pg_temp.ingest('call 1', 'user A', jsonb_build_array(
  pg_temp.ev(0, 'e1', 'session A', null, 'view', '0 seconds'),
  pg_temp.ev(1, 'e2', 'session A', null, 'click', '60 seconds'),
  pg_temp.ev(2, 'e1', 'session A', null, 'view', '0 seconds'),
  pg_temp.ev(3, 'e5', null, 'visitor A', 'view', '10 seconds')
));

select results_eq(
  $$ select event_index, event_id, outcome, reason from outcomes where call = 'call 1' $$,
  $$
    values
      (0, pg_temp.id('e1'), 'accepted', null::text),
      (1, pg_temp.id('e2'), 'accepted', null),
      (2, pg_temp.id('e1'), 'duplicate', null),
      (3, pg_temp.id('e5'), 'accepted', null)
  $$,
  'the second occurrence of an event_id in one batch is a duplicate'
);
select results_eq(
  $$
    select event_id, user_id, anonymous_id, session_id, event_type, entity_type, entity_id,
      metadata, occurred_at, client_timestamp, received_at
    from public.user_interactions
    where event_id in (pg_temp.id('e1'), pg_temp.id('e5'))
    order by occurred_at
  $$,
  $$
    values
      (
        pg_temp.id('e1'), pg_temp.id('user A'), null::text, pg_temp.id('session A'), 'view',
        'event', 'event-123', '{"artist_name": "Taylor Swift"}'::jsonb,
        timestamptz '2026-11-24T10:00:00Z', timestamptz '2026-11-24T10:00:00Z',
        timestamptz '2026-11-24T12:00:00Z'
      ),
      (
        pg_temp.id('e5'), pg_temp.id('user A'), pg_temp.visitor('visitor A'), null, 'view',
        'event', 'event-123', '{"artist_name": "Taylor Swift"}'::jsonb,
        timestamptz '2026-11-24T10:00:10Z', timestamptz '2026-11-24T10:00:10Z',
        timestamptz '2026-11-24T12:00:00Z'
      )
  $$,
  'accepted events are stored once, with the user from the token and every field given'
);
select is(
  (select count(*) from public.user_interactions where event_id = pg_temp.id('e1')),
  1::bigint,
  'an event_id sent twice in one batch is stored once'
);
select results_eq(
  $$
    select user_id, anonymous_id, started_at, last_seen_at, interaction_count, page_views
    from public.sessions where id = pg_temp.id('session A')
  $$,
  $$
    values (
      pg_temp.id('user A'), null::text, timestamptz '2026-11-24T10:00:00Z',
      timestamptz '2026-11-24T10:01:00Z', 2, 1
    )
  $$,
  'a new session belongs to the user and counts its events once, views apart'
);

-- Call 2, user A: a retry of e2 (with a different corrected time), an event
-- that happened before everything seen so far, and a later one.

select pg_temp.ingest('call 2', 'user A', jsonb_build_array(
  pg_temp.ev(0, 'e2', 'session A', null, 'click', '61 seconds'),
  pg_temp.ev(1, 'e3', 'session A', null, 'view', '-120 seconds'),
  pg_temp.ev(2, 'e4', 'session A', null, 'like', '600 seconds')
));

select results_eq(
  $$ select event_index, event_id, outcome, reason from outcomes where call = 'call 2' $$,
  $$
    values
      (0, pg_temp.id('e2'), 'duplicate', null::text),
      (1, pg_temp.id('e3'), 'accepted', null),
      (2, pg_temp.id('e4'), 'accepted', null)
  $$,
  'an event_id stored by an earlier call is a duplicate'
);
select is(
  (select occurred_at from public.user_interactions where event_id = pg_temp.id('e2')),
  timestamptz '2026-11-24T10:01:00Z',
  'a duplicate leaves the stored event as it was'
);
select results_eq(
  $$
    select started_at, last_seen_at, interaction_count, page_views
    from public.sessions where id = pg_temp.id('session A')
  $$,
  $$
    values (timestamptz '2026-11-24T09:58:00Z', timestamptz '2026-11-24T10:10:00Z', 4, 2)
  $$,
  'a late batch widens the session both ways and adds only its new events'
);

-- Call 3, user A: an older batch arriving last, entirely inside the
-- session's span, plus a retry of the whole of call 1.

select pg_temp.ingest('call 3', 'user A', jsonb_build_array(
  pg_temp.ev(0, 'e1', 'session A', null, 'view', '0 seconds'),
  pg_temp.ev(1, 'e2', 'session A', null, 'click', '60 seconds'),
  pg_temp.ev(2, 'e26', 'session A', null, 'view', '30 seconds'),
  pg_temp.ev(3, 'e5', null, 'visitor A', 'view', '10 seconds')
));

select results_eq(
  $$ select event_index, outcome from outcomes where call = 'call 3' $$,
  $$ values (0, 'duplicate'), (1, 'duplicate'), (2, 'accepted'), (3, 'duplicate') $$,
  'a retried batch is all duplicates but for its one new event'
);
select results_eq(
  $$
    select started_at, last_seen_at, interaction_count, page_views
    from public.sessions where id = pg_temp.id('session A')
  $$,
  $$
    values (timestamptz '2026-11-24T09:58:00Z', timestamptz '2026-11-24T10:10:00Z', 5, 3)
  $$,
  'an event inside the session''s span counts without moving its times'
);

-- Call 4, user B: user A's session is not user B's.

select pg_temp.ingest('call 4', 'user B', jsonb_build_array(
  pg_temp.ev(0, 'e6', 'session A', null, 'view', '5 minutes'),
  pg_temp.ev(1, 'e7', 'session B', null, 'view', '0 seconds')
));

select results_eq(
  $$ select event_index, event_id, outcome, reason from outcomes where call = 'call 4' $$,
  $$
    values
      (0, pg_temp.id('e6'), 'rejected', 'session belongs to another principal'),
      (1, pg_temp.id('e7'), 'accepted', null)
  $$,
  'a user naming another user''s session is rejected for that event only'
);
select is(
  (select count(*) from public.user_interactions where event_id = pg_temp.id('e6')),
  0::bigint,
  'the event naming another user''s session is not stored'
);
select results_eq(
  $$
    select id, user_id, interaction_count
    from public.sessions where id in (pg_temp.id('session A'), pg_temp.id('session B'))
    order by interaction_count desc
  $$,
  $$
    values
      (pg_temp.id('session A'), pg_temp.id('user A'), 5),
      (pg_temp.id('session B'), pg_temp.id('user B'), 1)
  $$,
  'the other user''s session is unchanged, and user B''s own session is opened'
);

-- Calls 5 to 7: anonymous visitors and users against each other's sessions.

select pg_temp.ingest('call 5', null, jsonb_build_array(
  pg_temp.ev(0, 'e8', 'session V1', 'visitor 1', 'view', '0 seconds'),
  pg_temp.ev(1, 'e9', 'session A', 'visitor 1', 'click', '5 seconds'),
  pg_temp.ev(2, 'e10', 'session V1', 'visitor 2', 'view', '6 seconds')
));
select pg_temp.ingest('call 6', null, jsonb_build_array(
  pg_temp.ev(0, 'e12', 'session V1', 'visitor 2', 'view', '7 seconds'),
  pg_temp.ev(1, 'e13', null, 'visitor 2', 'view', '8 seconds')
));
select pg_temp.ingest('call 7', 'user A', jsonb_build_array(
  pg_temp.ev(0, 'e14', 'session V1', null, 'click', '9 seconds')
));

select results_eq(
  $$
    select call, event_index, outcome, reason from outcomes
    where call in ('call 5', 'call 6', 'call 7') order by call, event_index
  $$,
  $$
    values
      ('call 5', 0, 'accepted', null::text),
      ('call 5', 1, 'rejected', 'session belongs to another principal'),
      ('call 5', 2, 'rejected', 'session belongs to another principal'),
      ('call 6', 0, 'rejected', 'session belongs to another principal'),
      ('call 6', 1, 'accepted', null),
      ('call 7', 0, 'rejected', 'session belongs to another principal')
  $$,
  'anonymous vs user, anonymous id vs another (in one batch and across calls), '
    || 'user vs anonymous: each foreign session is refused'
);
select results_eq(
  $$
    select user_id, anonymous_id, interaction_count, page_views
    from public.sessions where id = pg_temp.id('session V1')
  $$,
  $$ values (null::uuid, pg_temp.visitor('visitor 1'), 1, 1) $$,
  'an anonymous session belongs to the visitor who opened it and holds only their event'
);
select results_eq(
  $$
    select event_id, user_id, anonymous_id, session_id from public.user_interactions
    where event_id in (pg_temp.id('e8'), pg_temp.id('e13')) order by occurred_at
  $$,
  $$
    values
      (pg_temp.id('e8'), null::uuid, pg_temp.visitor('visitor 1'), pg_temp.id('session V1')),
      (pg_temp.id('e13'), null, pg_temp.visitor('visitor 2'), null)
  $$,
  'anonymous events are stored with no user and their anonymous id'
);

-- Call 8, user A: values the tables would refuse, beside a valid event,
-- and one event the track function already refused.

select pg_temp.ingest(
  'call 8',
  'user A',
  jsonb_build_array(
    pg_temp.ev(0, 'e15', 'session A', null, 'teleport', '1 minute'),
    pg_temp.ev(1, 'e16', 'session A', null, 'view', '1 minute', '{"entity_type": "concert"}'),
    pg_temp.ev(2, 'e17', 'session A', null, 'view', '1 minute', '{"entity_id": ""}'),
    pg_temp.ev(3, 'e18', 'session A', null, 'view', '1 minute', '{"metadata": ["a"]}'),
    pg_temp.ev(4, 'e19', 'session A', null, 'view', '3 hours'),
    pg_temp.ev(5, 'e20', 'session A', null, 'view', '5 minutes'),
    pg_temp.ev(6, 'e21', null, null, 'view', '1 minute',
      jsonb_build_object('anonymous_id', repeat('v', 65)))
  ),
  jsonb_build_array(jsonb_build_object(
    'index', 7,
    'eventId', pg_temp.id('e22'),
    'errors', jsonb_build_array(jsonb_build_object(
      'path', 'metadata.rating', 'message', 'Expected number, received string'
    ))
  ))
);

select results_eq(
  $$ select event_index, event_id, outcome, reason from outcomes where call = 'call 8' $$,
  $$
    values
      (0, pg_temp.id('e15'), 'rejected', 'event_type is not one of the 18 event types'),
      (1, pg_temp.id('e16'), 'rejected', 'entity_type is not one of the 12 entity types'),
      (2, pg_temp.id('e17'), 'rejected', 'entity_id must be 1 to 255 characters'),
      (3, pg_temp.id('e18'), 'rejected', 'metadata must be a JSON object'),
      (4, pg_temp.id('e19'), 'rejected', 'occurred_at is later than received_at'),
      (5, pg_temp.id('e20'), 'accepted', null),
      (6, pg_temp.id('e21'), 'rejected', 'anonymous_id must be 1 to 64 characters')
  $$,
  'each value the tables refuse rejects its event with a reason, and the valid one is kept'
);
select results_eq(
  $$
    select interaction_count, page_views, last_seen_at
    from public.sessions where id = pg_temp.id('session A')
  $$,
  $$ values (6, 4, timestamptz '2026-11-24T10:10:00Z') $$,
  'rejected events leave no trace in the session'
);
select results_eq(
  $$
    select category, context, error_message, user_id, metadata, error_stack
    from pg_temp.errors_of('call 8')
  $$,
  $$
    values (
      'validation', 'track', '7 of 8 events in the request were rejected',
      pg_temp.id('user A'),
      jsonb_build_object(
        'request', jsonb_build_object('function', 'track', 'request_id', pg_temp.id('call 8')),
        'counts', '{"received": 8, "accepted": 1, "duplicates": 0, "rejected": 7}'::jsonb,
        'rejections', jsonb_build_array(
          jsonb_build_object('index', 0, 'eventId', pg_temp.id('e15'), 'errors',
            '[{"path": "eventType", "message": "event_type is not one of the 18 event types"}]'::jsonb),
          jsonb_build_object('index', 1, 'eventId', pg_temp.id('e16'), 'errors',
            '[{"path": "entityType", "message": "entity_type is not one of the 12 entity types"}]'::jsonb),
          jsonb_build_object('index', 2, 'eventId', pg_temp.id('e17'), 'errors',
            '[{"path": "entityId", "message": "entity_id must be 1 to 255 characters"}]'::jsonb),
          jsonb_build_object('index', 3, 'eventId', pg_temp.id('e18'), 'errors',
            '[{"path": "metadata", "message": "metadata must be a JSON object"}]'::jsonb),
          jsonb_build_object('index', 4, 'eventId', pg_temp.id('e19'), 'errors',
            '[{"path": "timestamp", "message": "occurred_at is later than received_at"}]'::jsonb),
          jsonb_build_object('index', 6, 'eventId', pg_temp.id('e21'), 'errors',
            '[{"path": "anonymousId", "message": "anonymous_id must be 1 to 64 characters"}]'::jsonb),
          jsonb_build_object('index', 7, 'eventId', pg_temp.id('e22'), 'errors',
            '[{"path": "metadata.rating", "message": "Expected number, received string"}]'::jsonb)
        )
      ),
      null::text
    )
  $$,
  'a request with rejections writes one system_errors row listing all of them in index order'
);

-- Calls 9 and 10: no principal at all, and a user unknown to auth.users.

select pg_temp.ingest('call 9', null, jsonb_build_array(
  pg_temp.ev(0, 'e23', 'session N', null, 'view', '0 seconds')
));
select pg_temp.ingest('call 10', 'user U', jsonb_build_array(
  pg_temp.ev(0, 'e24', 'session U', null, 'view', '0 seconds'),
  -- The client sent no eventId: the function made this one up.
  pg_temp.ev(1, 'e25', null, null, 'view', '1 second', '{"event_id_generated": true}')
));

select results_eq(
  $$
    select call, event_index, outcome, reason from outcomes
    where call in ('call 9', 'call 10') order by call, event_index
  $$,
  $$
    values
      ('call 10', 0, 'rejected', 'unknown user: the signed-in user does not exist'),
      ('call 10', 1, 'rejected', 'unknown user: the signed-in user does not exist'),
      ('call 9', 0, 'rejected', 'anonymous_id is required when no user is signed in')
  $$,
  'an anonymous event without anonymous_id, and every event of an unknown user, are rejected'
);
select is(
  (
    select count(*) from public.user_interactions
    where event_id in (pg_temp.id('e23'), pg_temp.id('e24'), pg_temp.id('e25'))
  ),
  0::bigint,
  'nothing of those calls is stored'
);
select is(
  (
    select count(*) from public.sessions
    where id in (pg_temp.id('session N'), pg_temp.id('session U'))
  ),
  0::bigint,
  'no session is opened for them'
);
select results_eq(
  $$ select user_id, metadata ->> 'user_id', error_message from pg_temp.errors_of('call 10') $$,
  $$
    values (
      null::uuid, pg_temp.id('user U')::text, '2 of 2 events in the request were rejected'
    )
  $$,
  'the unknown user''s rejections are logged with the user id in metadata only'
);
select is(
  (select metadata -> 'rejections' from pg_temp.errors_of('call 10')),
  jsonb_build_array(
    jsonb_build_object('index', 0, 'eventId', pg_temp.id('e24'), 'errors',
      '[{"path": "", "message": "unknown user: the signed-in user does not exist"}]'::jsonb),
    jsonb_build_object('index', 1, 'errors',
      '[{"path": "", "message": "unknown user: the signed-in user does not exist"}]'::jsonb)
  ),
  'a rejection is logged with the client''s eventId, not with one the function made up'
);

-- Call 10b, user A: three events at one instant whose ids sort against the
-- request's order.
select pg_temp.ingest('call 10b', 'user A', jsonb_build_array(
  pg_temp.ev(0, 'order 0', null, null, 'view', '50 minutes',
    '{"event_id": "ffffffff-0000-4000-8000-000000000011"}'),
  pg_temp.ev(1, 'order 1', null, null, 'click', '50 minutes',
    '{"event_id": "88888888-0000-4000-8000-000000000011"}'),
  pg_temp.ev(2, 'order 2', null, null, 'share', '50 minutes',
    '{"event_id": "11111111-0000-4000-8000-000000000011"}')
));
select is(
  (
    select array_agg(event_type order by id) from public.user_interactions
    where event_id in (
      'ffffffff-0000-4000-8000-000000000011', '88888888-0000-4000-8000-000000000011',
      '11111111-0000-4000-8000-000000000011'
    )
  ),
  array['view', 'click', 'share'],
  'the events of a request get ids in the request''s order, so the one sent last is stored last'
);

-- Call 11, user A: new sessions that receive nothing are not kept.

select pg_temp.ingest('call 11', 'user A', jsonb_build_array(
  pg_temp.ev(0, 'e1', 'session D', null, 'view', '0 seconds'),
  pg_temp.ev(1, 'e27', 'session R', null, 'teleport', '0 seconds'),
  pg_temp.ev(2, 'e28', 'session R', null, 'view', '0 seconds', '{"entity_id": ""}')
));

select results_eq(
  $$ select event_index, outcome from outcomes where call = 'call 11' $$,
  $$ values (0, 'duplicate'), (1, 'rejected'), (2, 'rejected') $$,
  'a stored event resent under a new session is a duplicate'
);
select is(
  (
    select count(*) from public.sessions
    where id in (pg_temp.id('session D'), pg_temp.id('session R'))
  ),
  0::bigint,
  'a new session whose events are all duplicates or rejected is not kept'
);
select is(
  (select session_id from public.user_interactions where event_id = pg_temp.id('e1')),
  pg_temp.id('session A'),
  'the duplicate keeps its original session'
);

-- Calls 12 and 13: rejections found only by the track function still make
-- one row; an empty batch returns no rows.

select pg_temp.ingest(
  'call 12',
  'user B',
  '[]'::jsonb,
  jsonb_build_array(
    jsonb_build_object('index', 0, 'errors', jsonb_build_array(
      jsonb_build_object('path', 'eventType', 'message', 'Invalid option')
    )),
    jsonb_build_object('index', 1, 'errors', jsonb_build_array(
      jsonb_build_object('path', 'entityId', 'message', 'Too small')
    ))
  )
);
select pg_temp.ingest('call 13', 'user B', '[]'::jsonb);

select is(
  (select count(*) from outcomes where call in ('call 12', 'call 13')),
  0::bigint,
  'a call with no events to store returns no rows'
);
select results_eq(
  $$
    select error_message, user_id, metadata -> 'counts', metadata -> 'rejections'
    from pg_temp.errors_of('call 12')
  $$,
  $$
    values (
      '2 of 2 events in the request were rejected',
      pg_temp.id('user B'),
      '{"received": 2, "accepted": 0, "duplicates": 0, "rejected": 2}'::jsonb,
      '[
        {"index": 0, "errors": [{"path": "eventType", "message": "Invalid option"}]},
        {"index": 1, "errors": [{"path": "entityId", "message": "Too small"}]}
      ]'::jsonb
    )
  $$,
  'rejections passed in by the track function are recorded as given'
);

-- system_errors: one row per request with rejections, none otherwise.

select results_eq(
  $$
    select c.call, (select count(*) from pg_temp.errors_of(c.call))
    from unnest(array[
      'call 1', 'call 2', 'call 3', 'call 4', 'call 5', 'call 6', 'call 7', 'call 8',
      'call 9', 'call 10', 'call 11', 'call 12', 'call 13'
    ]) with ordinality as c (call, n)
    order by c.n
  $$,
  $$
    values
      ('call 1', 0::bigint), ('call 2', 0), ('call 3', 0), ('call 4', 1), ('call 5', 1),
      ('call 6', 1), ('call 7', 1), ('call 8', 1), ('call 9', 1), ('call 10', 1),
      ('call 11', 1), ('call 12', 1), ('call 13', 0)
  $$,
  'exactly the requests with rejections wrote a system_errors row, one each'
);
select results_eq(
  $$
    select category, context, error_message, user_id, metadata -> 'counts'
    from pg_temp.errors_of('call 4')
  $$,
  $$
    values (
      'validation', 'track', '1 of 2 events in the request were rejected', pg_temp.id('user B'),
      '{"received": 2, "accepted": 1, "duplicates": 0, "rejected": 1}'::jsonb
    )
  $$,
  'the row names the category, the context, the user and the counts'
);

-- Outcome rows: one per event, in index order, whatever the order given.

select pg_temp.ingest('call 14', 'user B', jsonb_build_array(
  pg_temp.ev(2, 'e29', 'session B', null, 'view', '2 seconds'),
  pg_temp.ev(0, 'e30', 'session B', null, 'view', '1 second'),
  pg_temp.ev(1, 'e29', 'session B', null, 'view', '2 seconds')
));
select results_eq(
  $$ select event_index, event_id, outcome from outcomes where call = 'call 14' $$,
  $$
    values
      (0, pg_temp.id('e30'), 'accepted'),
      (1, pg_temp.id('e29'), 'accepted'),
      (2, pg_temp.id('e29'), 'duplicate')
  $$,
  'outcomes come back in index order, and the lowest index of an event_id is the one accepted'
);

-- Call 14b, user B: an event_id whose first copy is rejected and whose
-- second is valid. Only acceptable copies compete to be the first: the
-- rejected one must not make the valid one a duplicate, or the event would
-- be stored by nobody.

select pg_temp.ingest('call 14b', 'user B', jsonb_build_array(
  pg_temp.ev(0, 'e31', 'session C', null, 'teleport', '0 seconds'),
  pg_temp.ev(1, 'e31', 'session C', null, 'view', '0 seconds')
));
select results_eq(
  $$ select event_index, event_id, outcome, reason from outcomes where call = 'call 14b' $$,
  $$
    values
      (0, pg_temp.id('e31'), 'rejected', 'event_type is not one of the 18 event types'),
      (1, pg_temp.id('e31'), 'accepted', null::text)
  $$,
  'a valid copy of an event_id after a rejected copy in one batch is accepted, not a duplicate'
);
select results_eq(
  $$ select event_type from public.user_interactions where event_id = pg_temp.id('e31') $$,
  $$ values ('view') $$,
  'the valid copy after a rejected one is stored, once'
);
select results_eq(
  $$
    select user_id, interaction_count, page_views
    from public.sessions where id = pg_temp.id('session C')
  $$,
  $$ values (pg_temp.id('user B'), 1, 1) $$,
  'the session of the valid copy after a rejected one counts it once'
);

-- The function's own lists match the table's: every event type and every
-- entity type the CHECK constraints allow is accepted. The event types share
-- one session, in which only the view is a page view.

select pg_temp.ingest('call 15', 'user B', (
  select jsonb_agg(
    pg_temp.ev(n::integer - 1, 'type ' || t, 'session T', null, t, '0 seconds') order by n
  )
  from unnest(array[
    'view', 'click', 'like', 'share', 'interest', 'search', 'review', 'comment', 'navigate',
    'form_submit', 'profile_update', 'swipe', 'follow', 'unfollow', 'attendance',
    'ticket_click', 'streaming_top', 'streaming_recent'
  ]) with ordinality as x (t, n)
));
select pg_temp.ingest('call 16', 'user B', (
  select jsonb_agg(
    pg_temp.ev(
      n::integer - 1, 'entity ' || t, null, null, 'view', '0 seconds',
      jsonb_build_object('entity_type', t)
    )
    order by n
  )
  from unnest(array[
    'event', 'artist', 'venue', 'review', 'user', 'profile', 'view', 'form', 'ticket_link',
    'song', 'album', 'playlist'
  ]) with ordinality as x (t, n)
));
select results_eq(
  $$
    select call, count(*) filter (where outcome = 'accepted'), count(*)
    from outcomes where call in ('call 15', 'call 16') group by call order by call
  $$,
  $$ values ('call 15', 18::bigint, 18::bigint), ('call 16', 12, 12) $$,
  'all 18 event types and all 12 entity types are accepted'
);
select results_eq(
  $$ select interaction_count, page_views from public.sessions where id = pg_temp.id('session T') $$,
  $$ values (18, 1) $$,
  'of all 18 event types only view counts as a page view'
);

-- Access: only the owner may call the function.

select function_privs_are(
  'public', 'ingest_interactions', array['uuid', 'jsonb', 'jsonb', 'jsonb'], 'anon', '{}',
  'anon may not execute ingest_interactions'
);
select function_privs_are(
  'public', 'ingest_interactions', array['uuid', 'jsonb', 'jsonb', 'jsonb'], 'authenticated',
  '{}', 'authenticated may not execute ingest_interactions'
);
select function_privs_are(
  'public', 'ingest_interactions', array['uuid', 'jsonb', 'jsonb', 'jsonb'], 'service_role',
  '{}', 'service_role may not execute ingest_interactions'
);
select is(
  (
    select array_agg(a.grantee::regrole::text order by a.grantee::regrole::text)
    from pg_proc p, aclexplode(p.proacl) as a
    where p.oid = 'public.ingest_interactions(uuid, jsonb, jsonb, jsonb)'::regprocedure
      and a.privilege_type = 'EXECUTE'
  ),
  array['postgres'],
  'postgres, the owner, is the only role that may execute ingest_interactions'
);

-- Concurrent requests, on two more connections that commit for real. They
-- use anonymous visitors and fresh ids, and remove their rows at the end.

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

-- The ingestion call as SQL text, for the other connections, tagged with the
-- request id of p_call (see errors_of) so its system_errors row can be found.
create function pg_temp.ingest_sql(p_call text, p_events jsonb) returns text
language sql
as $$
  select format(
    'select event_index, event_id, outcome, reason '
      || 'from public.ingest_interactions(null, %L::jsonb, ''[]''::jsonb, %L::jsonb) '
      || 'order by event_index',
    p_events,
    jsonb_build_object('function', 'track', 'request_id', pg_temp.id(p_call))
  )
$$;

-- Two visitors open the same new session at the same time: the first to
-- commit owns it, the other is refused.

do $$ begin perform dblink_exec('first', 'begin'); end $$;
select results_eq(
  format(
    'select * from dblink(%L, %L) '
      || 'as r (event_index integer, event_id uuid, outcome text, reason text)',
    'first',
    pg_temp.ingest_sql('concurrent 1', jsonb_build_array(
      pg_temp.ev(0, 'c1', 'session X', 'visitor 3', 'view', '0 seconds')
    ))
  ),
  $$ values (0, pg_temp.id('c1'), 'accepted', null::text) $$,
  'the first of two visitors opening a new session is accepted (not yet committed)'
);
do $$
begin
  perform dblink_send_query('second', pg_temp.ingest_sql('concurrent 2', jsonb_build_array(
    pg_temp.ev(0, 'c2', 'session X', 'visitor 4', 'view', '1 second')
  )));
  perform pg_sleep(0.3);
end
$$;
select is(dblink_is_busy('second'), 1, 'the second visitor''s request waits for the first');
do $$ begin perform dblink_exec('first', 'commit'); end $$;
select results_eq(
  $$
    select * from dblink_get_result('second')
      as r (event_index integer, event_id uuid, outcome text, reason text)
  $$,
  $$ values (0, pg_temp.id('c2'), 'rejected', 'session belongs to another principal') $$,
  'once the first commits, the second visitor''s event is rejected, not merged'
);
do $$ begin perform * from dblink_get_result('second') as r (event_index integer); end $$;
select results_eq(
  $$ select metadata -> 'rejections' -> 0 ->> 'eventId' from pg_temp.errors_of('concurrent 2') $$,
  $$ values (pg_temp.id('c2')::text) $$,
  'the refused request committed its system_errors row, tagged with its request id'
);

select results_eq(
  $$
    select anonymous_id, interaction_count from public.sessions
    where id = pg_temp.id('session X')
  $$,
  $$ values (pg_temp.visitor('visitor 3'), 1) $$,
  'the session belongs to the first visitor and holds only their event'
);

-- One visitor's two overlapping requests for one new session at once (two
-- tabs flushing): the second waits, then adds only what is new.

do $$ begin perform dblink_exec('first', 'begin'); end $$;
select results_eq(
  format(
    'select outcome from dblink(%L, %L) '
      || 'as r (event_index integer, event_id uuid, outcome text, reason text)',
    'first',
    pg_temp.ingest_sql('concurrent 3', jsonb_build_array(
      pg_temp.ev(0, 'c3', 'session Y', 'visitor 3', 'view', '0 seconds'),
      pg_temp.ev(1, 'c4', 'session Y', 'visitor 3', 'click', '10 seconds')
    ))
  ),
  $$ values ('accepted'), ('accepted') $$,
  'the first request is accepted (not yet committed)'
);
do $$
begin
  perform dblink_send_query('second', pg_temp.ingest_sql('concurrent 4', jsonb_build_array(
    pg_temp.ev(0, 'c4', 'session Y', 'visitor 3', 'click', '10 seconds'),
    pg_temp.ev(1, 'c5', 'session Y', 'visitor 3', 'view', '-20 seconds'),
    pg_temp.ev(2, 'c6', 'session Y', 'visitor 3', 'view', '40 seconds')
  )));
  perform pg_sleep(0.3);
end
$$;
select is(dblink_is_busy('second'), 1, 'the same visitor''s second request waits for the first');
do $$ begin perform dblink_exec('first', 'commit'); end $$;
select results_eq(
  $$
    select outcome from dblink_get_result('second')
      as r (event_index integer, event_id uuid, outcome text, reason text)
  $$,
  $$ values ('duplicate'), ('accepted'), ('accepted') $$,
  'the second request, run after the first, finds the shared event a duplicate'
);
do $$ begin perform * from dblink_get_result('second') as r (event_index integer); end $$;

select results_eq(
  $$
    select started_at, last_seen_at, interaction_count, page_views
    from public.sessions where id = pg_temp.id('session Y')
  $$,
  $$
    values (timestamptz '2026-11-24T09:59:40Z', timestamptz '2026-11-24T10:00:40Z', 4, 3)
  $$,
  'the session counts each of the four events once'
);

-- The registry of event ids holds exactly the stored events, each with the
-- time that chose its partition.

select results_eq(
  $$
    select k.event_id, k.occurred_at from public.interaction_event_ids k
    where k.event_id in (select id from ids) order by k.event_id
  $$,
  $$
    select ui.event_id, ui.occurred_at from public.user_interactions ui
    where ui.event_id in (select id from ids) order by ui.event_id
  $$,
  'exactly the stored events have their event id registered, with their occurred_at'
);

-- The invariant: every session's figures are those of its stored events.

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

-- Remove what the other connections committed: the events, their ids, the
-- sessions and the refused request's system_errors row.
do $$
begin
  perform dblink_exec('first', format(
    'delete from public.interaction_event_ids where event_id in ('
      || 'select event_id from public.user_interactions where session_id in (%1$L, %2$L)); '
      || 'delete from public.user_interactions where session_id in (%1$L, %2$L); '
      || 'delete from public.sessions where id in (%1$L, %2$L); '
      || 'delete from public.system_errors '
      || 'where metadata -> ''request'' ->> ''request_id'' = any (%3$L::text[])',
    pg_temp.id('session X'), pg_temp.id('session Y'),
    array(select pg_temp.id('concurrent ' || n)::text from generate_series(1, 4) as n)
  ));
  perform dblink_disconnect(c) from unnest(array['first', 'second']) as c;
end
$$;

-- What the other connections committed is all gone, checked from a third
-- connection that sees only committed rows.
select results_eq(
  format(
    'select * from dblink(%L, %L) as r (events bigint, ids bigint, sessions bigint, '
      || 'errors bigint)',
    format(
      'host=%s port=%s dbname=%s user=postgres password=postgres',
      host(inet_server_addr()), inet_server_port(), current_database()
    ),
    format(
      'select (select count(*) from public.user_interactions where event_id = any (%1$L)), '
        || '(select count(*) from public.interaction_event_ids where event_id = any (%1$L)), '
        || '(select count(*) from public.sessions where id = any (%2$L)), '
        || '(select count(*) from public.system_errors where metadata -> ''rejections'' '
        || '@> any (array(select jsonb_build_array(jsonb_build_object(''eventId'', e)) '
        || 'from unnest(%1$L::uuid[]) as e))) ',
      array(select pg_temp.id(c) from unnest(array['c1', 'c2', 'c3', 'c4', 'c5', 'c6']) as c),
      array[pg_temp.id('session X'), pg_temp.id('session Y')]
    )
  ),
  $$ values (0::bigint, 0::bigint, 0::bigint, 0::bigint) $$,
  'the concurrent requests leave no event, event id, session or system_errors row behind'
);

select * from finish();
rollback;
