-- The tables the tracking system writes: raw interaction events (partitioned
-- by month, with the registry of their event ids that keeps them unique), the
-- sessions they belong to, and the errors met while accepting them. Every rule
-- a row must obey on its own is a named CHECK constraint, so a bad row is
-- refused by the database whatever path it comes from, and the error names the
-- rule. The one rule across rows, an event_id stored once, is kept by the only
-- writer, the ingestion function, through public.interaction_event_ids: a
-- foreign key from every stored row to its registered id would make the
-- database refuse a second copy too, but it costs more than half again of the
-- ingestion's database time (an index on each side and a row lock per row).

-- The monthly partitions of public.user_interactions live in a schema of
-- their own: they are storage, not part of the API. No API role may use the
-- schema, so a partition can never be read or written around the parent's
-- grants and row level security, and the generated types and the API do not
-- change as months come and go. 20261124000500_partition_maintenance.sql
-- creates and drops the monthly partitions.
create schema interaction_partitions;

comment on schema interaction_partitions is
  'The partitions of public.user_interactions: one per calendar month (UTC) named '
  'user_interactions_yyyy_mm, plus user_interactions_default for any other time. '
  'Read and write them through public.user_interactions only.';

-- One row per interaction event, as sent by a browser and accepted by the
-- `track` function. Rows are never updated: this is the raw log the views and
-- the personalization jobs read. Range-partitioned by month on occurred_at,
-- so that old months are dropped whole instead of deleted row by row. A
-- partitioned table's unique keys must contain occurred_at, so the key is
-- (id, occurred_at) and the uniqueness of event_id across every partition is
-- kept by public.interaction_event_ids below.
create table public.user_interactions (
  id bigint generated always as identity,
  event_id uuid not null,
  user_id uuid references auth.users (id) on delete cascade,
  anonymous_id text,
  session_id uuid,
  event_type text not null,
  entity_type text not null,
  entity_id text not null,
  metadata jsonb not null default '{}'::jsonb,
  occurred_at timestamptz not null,
  client_timestamp timestamptz,
  received_at timestamptz not null default now(),
  constraint user_interactions_pkey primary key (id, occurred_at),
  constraint user_interactions_event_type_valid check (
    event_type in (
      'view', 'click', 'like', 'share', 'interest', 'search', 'review', 'comment', 'navigate',
      'form_submit', 'profile_update', 'swipe', 'follow', 'unfollow', 'attendance',
      'ticket_click', 'streaming_top', 'streaming_recent'
    )
  ),
  constraint user_interactions_entity_type_valid check (
    entity_type in (
      'event', 'artist', 'venue', 'review', 'user', 'profile', 'view', 'form', 'ticket_link',
      'song', 'album', 'playlist'
    )
  ),
  constraint user_interactions_entity_id_length check (char_length(entity_id) between 1 and 255),
  constraint user_interactions_anonymous_id_length check (
    char_length(anonymous_id) between 1 and 64
  ),
  constraint user_interactions_metadata_is_object check (jsonb_typeof(metadata) = 'object'),
  constraint user_interactions_principal_present check (
    user_id is not null or anonymous_id is not null
  ),
  constraint user_interactions_occurred_not_after_received check (occurred_at <= received_at)
)
partition by range (occurred_at);

-- Events of a time no monthly partition covers: before the oldest month kept,
-- or in a month whose partition does not exist yet. Nothing is lost when the
-- maintenance job is late; it moves such rows into their month's partition
-- when it creates it.
create table interaction_partitions.user_interactions_default
  partition of public.user_interactions default;

comment on table public.user_interactions is
  'One row per interaction event (a view, a click, a like...) accepted by the track function. '
  'Append-only: the source of session counts, analytics views and preference signals.';
comment on column public.user_interactions.id is
  'Surrogate key in insertion order, unique across partitions (the primary key is '
  '(id, occurred_at), as partitioning requires).';
comment on column public.user_interactions.event_id is
  'The client''s idempotency key: an event is stored once however often it is sent '
  '(registered in public.interaction_event_ids).';
comment on column public.user_interactions.user_id is
  'The signed-in user, taken from the verified JWT; null for anonymous visitors.';
comment on column public.user_interactions.anonymous_id is
  'The browser''s anonymous visitor id (1 to 64 characters); required when user_id is null.';
comment on column public.user_interactions.session_id is
  'The client''s session id (public.sessions.id), or null when the event names no session.';
comment on column public.user_interactions.event_type is
  'What the user did: one of the 18 event types of the tracking guide.';
comment on column public.user_interactions.entity_type is
  'What the user acted on: one of the 12 entity types of the tracking guide.';
comment on column public.user_interactions.entity_id is
  'The id of the entity acted on, 1 to 255 characters.';
comment on column public.user_interactions.metadata is
  'Extra context as a JSON object, validated by entity type before it is stored.';
comment on column public.user_interactions.occurred_at is
  'When the event happened, on the server''s clock (client time corrected for clock skew).';
comment on column public.user_interactions.client_timestamp is
  'The time the client reported for the event, uncorrected; null when it sent none.';
comment on column public.user_interactions.received_at is
  'When the server received the event; occurred_at is never later.';

-- Per-user reads (and the row level security filter) go by user and time; the
-- same index serves the cascade when a user is deleted.
create index user_interactions_user_id_occurred_at_idx
  on public.user_interactions (user_id, occurred_at);
-- Recomputing or inspecting one session's events.
create index user_interactions_session_id_idx
  on public.user_interactions (session_id);

-- Every event id stored in public.user_interactions, with the time that
-- chose its partition. A partitioned table cannot hold a unique index on
-- event_id alone, so this unpartitioned table is where an event id is unique:
-- the ingestion function (the only writer of events) registers each event id
-- here first and stores the event only when the id was new. Two retries of
-- one event whose corrected times fall in different months are therefore
-- still one row. Ids are removed with their month when the retention job
-- drops it; an id whose row went with its deleted user stays registered, so
-- a late retry cannot bring the event back.
create table public.interaction_event_ids (
  event_id uuid primary key,
  occurred_at timestamptz not null
);

comment on table public.interaction_event_ids is
  'The event id of every stored interaction, unique across the monthly partitions of '
  'public.user_interactions: the ingestion function stores an event only if its id is new '
  'here.';
comment on column public.interaction_event_ids.event_id is
  'The event''s idempotency key (public.user_interactions.event_id).';
comment on column public.interaction_event_ids.occurred_at is
  'The stored event''s occurred_at, which decides its partition and when retention '
  'removes it.';

-- Like the events themselves, the registry is written by the ingestion
-- function only and read by no API role; analysts get read access in
-- 20261124000500_partition_maintenance.sql, once their role exists.
alter table public.interaction_event_ids enable row level security;
revoke all on table public.interaction_event_ids from public, anon, authenticated, service_role;

-- Retention removes ids by time. Ids are registered roughly in time order, so
-- a block range index finds old ones for almost nothing per insert.
create index interaction_event_ids_occurred_at_idx
  on public.interaction_event_ids using brin (occurred_at);

-- One row per client session, kept up to date by the ingestion function from
-- the events it accepts. A session belongs to the principal that opened it:
-- a signed-in user, or an anonymous visitor.
create table public.sessions (
  id uuid primary key,
  user_id uuid references auth.users (id) on delete cascade,
  anonymous_id text,
  started_at timestamptz not null,
  last_seen_at timestamptz not null,
  interaction_count integer not null default 0,
  page_views integer not null default 0,
  constraint sessions_one_principal check ((user_id is null) <> (anonymous_id is null)),
  constraint sessions_anonymous_id_length check (char_length(anonymous_id) between 1 and 64),
  constraint sessions_last_seen_not_before_start check (last_seen_at >= started_at),
  constraint sessions_interaction_count_non_negative check (interaction_count >= 0),
  constraint sessions_page_views_non_negative check (page_views >= 0),
  constraint sessions_page_views_within_interactions check (page_views <= interaction_count)
);

comment on table public.sessions is
  'One row per client session, derived from public.user_interactions by the ingestion '
  'function: exact whatever the order in which batches arrive, never counting a duplicate.';
comment on column public.sessions.id is
  'The session id chosen by the client.';
comment on column public.sessions.user_id is
  'The signed-in user who opened the session; null for an anonymous visitor''s session.';
comment on column public.sessions.anonymous_id is
  'The anonymous visitor who opened the session; null for a signed-in user''s session.';
comment on column public.sessions.started_at is
  'The earliest occurred_at of the session''s events.';
comment on column public.sessions.last_seen_at is
  'The latest occurred_at of the session''s events.';
comment on column public.sessions.interaction_count is
  'How many events the session holds.';
comment on column public.sessions.page_views is
  'How many of the session''s events are views (event_type ''view'').';

-- A signed-in user's sessions, for their own reads and for the cascade.
create index sessions_user_id_idx on public.sessions (user_id);
-- Sessions by start time, for ranges of started_at: retention
-- (20261124000500_partition_maintenance.sql) deletes and recounts the
-- sessions that began before its cutoff, and session_metrics is read over a
-- time window (the dashboard's summary). Reading daily_engagement by day
-- needs an index on the UTC day instead: sessions_start_day_utc_idx, created
-- beside that view in 20261124000300_engagement_score_and_views.sql.
create index sessions_started_at_idx on public.sessions (started_at);

-- Errors met by the tracking system, for the people operating it. The track
-- function writes one row per request that had rejected events.
create table public.system_errors (
  id bigint generated always as identity primary key,
  category text not null,
  context text not null,
  error_message text not null,
  error_stack text,
  metadata jsonb not null default '{}'::jsonb,
  user_id uuid references auth.users (id) on delete set null,
  "timestamp" timestamptz not null default now(),
  constraint system_errors_category_valid check (
    category in ('validation', 'network', 'database', 'authentication')
  ),
  constraint system_errors_metadata_is_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.system_errors is
  'Errors met while tracking interactions: one row per request with rejected events, '
  'listing them in metadata. Readable by the service role and analysts only.';
comment on column public.system_errors.id is
  'Surrogate key in insertion order.';
comment on column public.system_errors.category is
  'The kind of error: validation, network, database or authentication.';
comment on column public.system_errors.context is
  'Where the error happened, for example ''track'' for the track function.';
comment on column public.system_errors.error_message is
  'A one-line description of the error.';
comment on column public.system_errors.error_stack is
  'The stack trace, when there is one.';
comment on column public.system_errors.metadata is
  'Details as a JSON object: for validation errors, every rejected event with its reasons.';
comment on column public.system_errors.user_id is
  'The signed-in user whose request failed, if any; set to null when that user is deleted.';
comment on column public.system_errors."timestamp" is
  'When the error was recorded.';

-- Recent errors first, and pruning old ones.
create index system_errors_timestamp_idx on public.system_errors ("timestamp");
-- A user's errors, and the set-null when that user is deleted.
create index system_errors_user_id_idx on public.system_errors (user_id);
