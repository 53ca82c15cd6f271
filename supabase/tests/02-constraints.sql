-- What each table rule accepts and refuses: every allowed value of every
-- CHECK goes in, and a wrong one is refused with the constraint's name.
-- Rows are written directly as the tables' owner, bypassing the ingestion
-- function, to test the database's own last line of defence. Interactions are
-- dated 2001, before any monthly partition, so they land in the default
-- partition, which the errors name (09-partitions.sql checks that every
-- partition carries the same rules).
begin;
select plan(84);

-- A signed-in user to point rows at.
insert into auth.users (id, email)
values (gen_random_uuid(), 'constraints-' || gen_random_uuid() || '@example.test')
returning id as user_id \gset

-- Inserts one valid interaction, with some of its fields replaced.
create function pg_temp.insert_interaction(p_changes jsonb default '{}'::jsonb) returns void
language sql
as $$
  insert into public.user_interactions (
    event_id, user_id, anonymous_id, session_id, event_type, entity_type, entity_id,
    metadata, occurred_at, client_timestamp, received_at
  )
  select r.event_id, r.user_id, r.anonymous_id, r.session_id, r.event_type, r.entity_type,
    r.entity_id, r.metadata, r.occurred_at, r.client_timestamp, r.received_at
  from jsonb_populate_record(
    null::public.user_interactions,
    jsonb_build_object(
      'event_id', gen_random_uuid(),
      'anonymous_id', 'visitor-constraints',
      'event_type', 'view',
      'entity_type', 'event',
      'entity_id', 'event-123',
      'metadata', '{}'::jsonb,
      'occurred_at', '2001-01-01T10:00:00Z',
      'received_at', '2001-01-01T10:00:01Z'
    ) || p_changes
  ) as r
$$;

-- Inserts one valid anonymous session, with some of its fields replaced.
create function pg_temp.insert_session(p_changes jsonb default '{}'::jsonb) returns void
language sql
as $$
  insert into public.sessions (
    id, user_id, anonymous_id, started_at, last_seen_at, interaction_count, page_views
  )
  select r.id, r.user_id, r.anonymous_id, r.started_at, r.last_seen_at, r.interaction_count,
    r.page_views
  from jsonb_populate_record(
    null::public.sessions,
    jsonb_build_object(
      'id', gen_random_uuid(),
      'anonymous_id', 'visitor-constraints',
      'started_at', '2026-01-01T10:00:00Z',
      'last_seen_at', '2026-01-01T10:30:00Z',
      'interaction_count', 3,
      'page_views', 1
    ) || p_changes
  ) as r
$$;

-- Inserts one valid error row, with some of its fields replaced.
create function pg_temp.insert_error(p_changes jsonb default '{}'::jsonb) returns void
language sql
as $$
  insert into public.system_errors (category, context, error_message, metadata, user_id)
  select r.category, r.context, r.error_message, r.metadata, r.user_id
  from jsonb_populate_record(
    null::public.system_errors,
    jsonb_build_object(
      'category', 'validation',
      'context', 'track',
      'error_message', '1 of 1 events in the request were rejected',
      'metadata', '{}'::jsonb
    ) || p_changes
  ) as r
$$;

-- user_interactions.event_type: the 18 event types of the guide.

select lives_ok(
  format('select pg_temp.insert_interaction(%L)', jsonb_build_object('event_type', t)),
  format('user_interactions accepts event_type %s', t)
)
from unnest(array[
  'view', 'click', 'like', 'share', 'interest', 'search', 'review', 'comment', 'navigate',
  'form_submit', 'profile_update', 'swipe', 'follow', 'unfollow', 'attendance',
  'ticket_click', 'streaming_top', 'streaming_recent'
]) as t;

select throws_ok(
  $$ select pg_temp.insert_interaction('{"event_type": "teleport"}') $$,
  '23514',
  'new row for relation "user_interactions_default" violates check constraint "user_interactions_event_type_valid"',
  'user_interactions refuses an unknown event_type'
);
select throws_ok(
  $$ select pg_temp.insert_interaction('{"event_type": "View"}') $$,
  '23514',
  'new row for relation "user_interactions_default" violates check constraint "user_interactions_event_type_valid"',
  'user_interactions refuses an event_type in the wrong case'
);
select results_eq(
  $$
    select array_agg(m[1] order by m[1])
    from pg_constraint c,
      regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''::text', 'g') as m
    where c.conname = 'user_interactions_event_type_valid'
      and c.conrelid = 'public.user_interactions'::regclass
  $$,
  $$
    select array_agg(t order by t) from unnest(array[
      'view', 'click', 'like', 'share', 'interest', 'search', 'review', 'comment', 'navigate',
      'form_submit', 'profile_update', 'swipe', 'follow', 'unfollow', 'attendance',
      'ticket_click', 'streaming_top', 'streaming_recent'
    ]) as t
  $$,
  'user_interactions_event_type_valid lists exactly the 18 event types'
);

-- user_interactions.entity_type: the 12 entity types of the guide.

select lives_ok(
  format('select pg_temp.insert_interaction(%L)', jsonb_build_object('entity_type', t)),
  format('user_interactions accepts entity_type %s', t)
)
from unnest(array[
  'event', 'artist', 'venue', 'review', 'user', 'profile', 'view', 'form', 'ticket_link',
  'song', 'album', 'playlist'
]) as t;

select throws_ok(
  $$ select pg_temp.insert_interaction('{"entity_type": "concert"}') $$,
  '23514',
  'new row for relation "user_interactions_default" violates check constraint "user_interactions_entity_type_valid"',
  'user_interactions refuses an unknown entity_type'
);
select results_eq(
  $$
    select array_agg(m[1] order by m[1])
    from pg_constraint c,
      regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''::text', 'g') as m
    where c.conname = 'user_interactions_entity_type_valid'
      and c.conrelid = 'public.user_interactions'::regclass
  $$,
  $$
    select array_agg(t order by t) from unnest(array[
      'event', 'artist', 'venue', 'review', 'user', 'profile', 'view', 'form', 'ticket_link',
      'song', 'album', 'playlist'
    ]) as t
  $$,
  'user_interactions_entity_type_valid lists exactly the 12 entity types'
);

-- user_interactions.entity_id: 1 to 255 characters.

select lives_ok(
  $$ select pg_temp.insert_interaction('{"entity_id": "e"}') $$,
  'user_interactions accepts a 1-character entity_id'
);
select lives_ok(
  format('select pg_temp.insert_interaction(%L)', jsonb_build_object('entity_id', repeat('é', 255))),
  'user_interactions accepts a 255-character entity_id'
);
select throws_ok(
  $$ select pg_temp.insert_interaction('{"entity_id": ""}') $$,
  '23514',
  'new row for relation "user_interactions_default" violates check constraint "user_interactions_entity_id_length"',
  'user_interactions refuses an empty entity_id'
);
select throws_ok(
  format('select pg_temp.insert_interaction(%L)', jsonb_build_object('entity_id', repeat('x', 256))),
  '23514',
  'new row for relation "user_interactions_default" violates check constraint "user_interactions_entity_id_length"',
  'user_interactions refuses a 256-character entity_id'
);

-- user_interactions.anonymous_id: 1 to 64 characters.

select lives_ok(
  $$ select pg_temp.insert_interaction('{"anonymous_id": "v"}') $$,
  'user_interactions accepts a 1-character anonymous_id'
);
select lives_ok(
  format('select pg_temp.insert_interaction(%L)', jsonb_build_object('anonymous_id', repeat('v', 64))),
  'user_interactions accepts a 64-character anonymous_id'
);
select throws_ok(
  $$ select pg_temp.insert_interaction('{"anonymous_id": ""}') $$,
  '23514',
  'new row for relation "user_interactions_default" violates check constraint "user_interactions_anonymous_id_length"',
  'user_interactions refuses an empty anonymous_id'
);
select throws_ok(
  format('select pg_temp.insert_interaction(%L)', jsonb_build_object('anonymous_id', repeat('v', 65))),
  '23514',
  'new row for relation "user_interactions_default" violates check constraint "user_interactions_anonymous_id_length"',
  'user_interactions refuses a 65-character anonymous_id'
);

-- user_interactions.metadata: a JSON object.

select lives_ok(
  $$ select pg_temp.insert_interaction('{"metadata": {"artist_name": "Taylor Swift"}}') $$,
  'user_interactions accepts an object as metadata'
);
select throws_ok(
  $$ select pg_temp.insert_interaction('{"metadata": ["Taylor Swift"]}') $$,
  '23514',
  'new row for relation "user_interactions_default" violates check constraint "user_interactions_metadata_is_object"',
  'user_interactions refuses an array as metadata'
);
select throws_ok(
  $$ select pg_temp.insert_interaction('{"metadata": "Taylor Swift"}') $$,
  '23514',
  'new row for relation "user_interactions_default" violates check constraint "user_interactions_metadata_is_object"',
  'user_interactions refuses a string as metadata'
);
select throws_ok(
  $$
    insert into public.user_interactions (
      event_id, anonymous_id, event_type, entity_type, entity_id, metadata, occurred_at
    )
    values (gen_random_uuid(), 'v', 'view', 'event', 'e', 'null'::jsonb, '2001-01-01T10:00:00Z')
  $$,
  '23514',
  'new row for relation "user_interactions_default" violates check constraint "user_interactions_metadata_is_object"',
  'user_interactions refuses JSON null as metadata'
);
with inserted as (
  insert into public.user_interactions (
    event_id, anonymous_id, event_type, entity_type, entity_id, occurred_at
  )
  values (gen_random_uuid(), 'v', 'view', 'event', 'e', now())
  returning metadata
)
select is(metadata, '{}'::jsonb, 'user_interactions metadata defaults to an empty object')
from inserted;

-- user_interactions: a principal, a time no later than receipt, a known user.

select lives_ok(
  format(
    'select pg_temp.insert_interaction(%L)',
    jsonb_build_object('user_id', :'user_id'::uuid, 'anonymous_id', null)
  ),
  'user_interactions accepts a signed-in user''s event without anonymous_id'
);
select throws_ok(
  $$ select pg_temp.insert_interaction('{"anonymous_id": null}') $$,
  '23514',
  'new row for relation "user_interactions_default" violates check constraint "user_interactions_principal_present"',
  'user_interactions refuses an event with neither user_id nor anonymous_id'
);
select lives_ok(
  $$
    select pg_temp.insert_interaction(
      '{"occurred_at": "2001-01-01T10:00:00Z", "received_at": "2001-01-01T10:00:00Z"}'
    )
  $$,
  'user_interactions accepts occurred_at equal to received_at'
);
select throws_ok(
  $$
    select pg_temp.insert_interaction(
      '{"occurred_at": "2001-01-01T10:00:00.001Z", "received_at": "2001-01-01T10:00:00Z"}'
    )
  $$,
  '23514',
  'new row for relation "user_interactions_default" violates check constraint "user_interactions_occurred_not_after_received"',
  'user_interactions refuses occurred_at later than received_at'
);
select throws_ok(
  format(
    'select pg_temp.insert_interaction(%L)',
    jsonb_build_object('user_id', gen_random_uuid())
  ),
  '23503',
  'insert or update on table "user_interactions_default" violates foreign key constraint "user_interactions_user_id_fkey"',
  'user_interactions refuses a user_id missing from auth.users'
);
select throws_ok(
  $$ select pg_temp.insert_interaction('{"event_type": null}') $$,
  '23502',
  'null value in column "event_type" of relation "user_interactions_default" violates not-null constraint',
  'user_interactions refuses a missing event_type'
);

-- interaction_event_ids: an event id once, whatever its time (and so its
-- partition); the time is required.

select lives_ok(
  $$
    insert into public.interaction_event_ids (event_id, occurred_at)
    values ('5b1e2a52-56d5-4d8e-9c53-000000000001', '2026-01-31T23:59:59Z')
  $$,
  'interaction_event_ids accepts a new event id'
);
select throws_ok(
  $$
    insert into public.interaction_event_ids (event_id, occurred_at)
    values ('5b1e2a52-56d5-4d8e-9c53-000000000001', '2026-02-01T00:00:01Z')
  $$,
  '23505',
  'duplicate key value violates unique constraint "interaction_event_ids_pkey"',
  'interaction_event_ids refuses an event id already registered, even for another month'
);
select throws_ok(
  $$
    insert into public.interaction_event_ids (event_id, occurred_at)
    values (gen_random_uuid(), null)
  $$,
  '23502',
  'null value in column "occurred_at" of relation "interaction_event_ids" violates not-null constraint',
  'interaction_event_ids refuses an event id without its time'
);

-- sessions: exactly one principal.

select lives_ok(
  $$ select pg_temp.insert_session() $$,
  'sessions accepts an anonymous visitor''s session'
);
select lives_ok(
  format(
    'select pg_temp.insert_session(%L)',
    jsonb_build_object('user_id', :'user_id'::uuid, 'anonymous_id', null)
  ),
  'sessions accepts a signed-in user''s session'
);
select throws_ok(
  $$ select pg_temp.insert_session('{"anonymous_id": null}') $$,
  '23514',
  'new row for relation "sessions" violates check constraint "sessions_one_principal"',
  'sessions refuses a session with no principal'
);
select throws_ok(
  format(
    'select pg_temp.insert_session(%L)',
    jsonb_build_object('user_id', :'user_id'::uuid, 'anonymous_id', 'visitor-constraints')
  ),
  '23514',
  'new row for relation "sessions" violates check constraint "sessions_one_principal"',
  'sessions refuses a session with both a user and an anonymous visitor'
);
select lives_ok(
  format('select pg_temp.insert_session(%L)', jsonb_build_object('anonymous_id', repeat('v', 64))),
  'sessions accepts a 64-character anonymous_id'
);
select throws_ok(
  $$ select pg_temp.insert_session('{"anonymous_id": ""}') $$,
  '23514',
  'new row for relation "sessions" violates check constraint "sessions_anonymous_id_length"',
  'sessions refuses an empty anonymous_id'
);
select throws_ok(
  format('select pg_temp.insert_session(%L)', jsonb_build_object('anonymous_id', repeat('v', 65))),
  '23514',
  'new row for relation "sessions" violates check constraint "sessions_anonymous_id_length"',
  'sessions refuses a 65-character anonymous_id'
);

-- sessions: times and counts.

select lives_ok(
  $$
    select pg_temp.insert_session(
      '{"started_at": "2026-01-01T10:00:00Z", "last_seen_at": "2026-01-01T10:00:00Z"}'
    )
  $$,
  'sessions accepts a session that ends when it starts'
);
select throws_ok(
  $$
    select pg_temp.insert_session(
      '{"started_at": "2026-01-01T10:00:00Z", "last_seen_at": "2026-01-01T09:59:59.999Z"}'
    )
  $$,
  '23514',
  'new row for relation "sessions" violates check constraint "sessions_last_seen_not_before_start"',
  'sessions refuses last_seen_at before started_at'
);
select lives_ok(
  $$ select pg_temp.insert_session('{"interaction_count": 0, "page_views": 0}') $$,
  'sessions accepts zero interactions and page views'
);
select throws_ok(
  $$ select pg_temp.insert_session('{"interaction_count": -1, "page_views": 0}') $$,
  '23514',
  'new row for relation "sessions" violates check constraint "sessions_interaction_count_non_negative"',
  'sessions refuses a negative interaction_count'
);
select throws_ok(
  $$ select pg_temp.insert_session('{"interaction_count": 0, "page_views": -1}') $$,
  '23514',
  'new row for relation "sessions" violates check constraint "sessions_page_views_non_negative"',
  'sessions refuses a negative page_views'
);
select lives_ok(
  $$ select pg_temp.insert_session('{"interaction_count": 4, "page_views": 4}') $$,
  'sessions accepts as many page views as interactions'
);
select throws_ok(
  $$ select pg_temp.insert_session('{"interaction_count": 4, "page_views": 5}') $$,
  '23514',
  'new row for relation "sessions" violates check constraint "sessions_page_views_within_interactions"',
  'sessions refuses more page views than interactions'
);
select throws_ok(
  format(
    'select pg_temp.insert_session(%1$L); select pg_temp.insert_session(%1$L)',
    jsonb_build_object('id', gen_random_uuid())
  ),
  '23505',
  'duplicate key value violates unique constraint "sessions_pkey"',
  'sessions refuses a second session with the same id'
);

-- system_errors: the four categories, an object as metadata.

select lives_ok(
  format('select pg_temp.insert_error(%L)', jsonb_build_object('category', c)),
  format('system_errors accepts category %s', c)
)
from unnest(array['validation', 'network', 'database', 'authentication']) as c;

select throws_ok(
  $$ select pg_temp.insert_error('{"category": "performance"}') $$,
  '23514',
  'new row for relation "system_errors" violates check constraint "system_errors_category_valid"',
  'system_errors refuses an unknown category'
);
select throws_ok(
  $$ select pg_temp.insert_error('{"metadata": [1, 2]}') $$,
  '23514',
  'new row for relation "system_errors" violates check constraint "system_errors_metadata_is_object"',
  'system_errors refuses an array as metadata'
);
select throws_ok(
  $$ select pg_temp.insert_error('{"context": null}') $$,
  '23502',
  'null value in column "context" of relation "system_errors" violates not-null constraint',
  'system_errors refuses a missing context'
);
with inserted as (
  insert into public.system_errors (category, context, error_message)
  values ('network', 'client', 'fetch failed')
  returning "timestamp", metadata
)
select ok(
  "timestamp" = now() and metadata = '{}'::jsonb,
  'system_errors timestamp defaults to now() and metadata to an empty object'
)
from inserted;

-- Deleting a user removes their events and sessions and keeps their errors.

select pg_temp.insert_error(
  jsonb_build_object('user_id', :'user_id'::uuid, 'error_message', 'error of ' || :'user_id')
);
select is(
  (
    select array[
      (select count(*) from public.user_interactions where user_id = :'user_id'),
      (select count(*) from public.sessions where user_id = :'user_id'),
      (select count(*) from public.system_errors where user_id = :'user_id')
    ]
  ),
  array[1, 1, 1]::bigint[],
  'before the user is deleted, one interaction, one session and one error point at them'
);

delete from auth.users where id = :'user_id';

select is(
  (select count(*) from public.user_interactions where user_id = :'user_id'),
  0::bigint,
  'deleting a user deletes their interactions'
);
select is(
  (select count(*) from public.sessions where user_id = :'user_id'),
  0::bigint,
  'deleting a user deletes their sessions'
);
select results_eq(
  format(
    'select user_id from public.system_errors where error_message = %L',
    'error of ' || :'user_id'
  ),
  'values (null::uuid)',
  'deleting a user keeps their errors, with user_id set to null'
);

select * from finish();
rollback;
