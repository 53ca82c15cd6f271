-- Who may read and write what. The platform grants every new table, view and
-- function in `public` to anon, authenticated and service_role; this narrows
-- that down: signed-in users read their own interactions and sessions, anon
-- reads nothing, only the ingestion function writes events and sessions,
-- system_errors belongs to the service role, and the `analyst` role reads
-- everything and writes nothing.

-- Analysts (people and reporting jobs) log in as roles granted `analyst`.
-- Roles belong to the cluster, not the database, so it may already exist.
do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'analyst') then
    create role analyst nologin;
  end if;
end
$$;

comment on role analyst is
  'Read-only access to the interaction tables and views, for analysts and reporting jobs.';

grant usage on schema public to analyst;

alter table public.user_interactions enable row level security;
alter table public.sessions enable row level security;
alter table public.system_errors enable row level security;

-- Events and sessions: read-only for the API roles and analysts; the
-- ingestion function, running as the tables' owner, is the only writer.
revoke all on table public.user_interactions, public.sessions
  from public, anon, authenticated, service_role;
grant select on table public.user_interactions, public.sessions
  to authenticated, service_role, analyst;

create policy "users read their own interactions"
  on public.user_interactions
  for select
  to authenticated
  using (user_id = (select auth.uid()));

create policy "analysts read all interactions"
  on public.user_interactions
  for select
  to analyst
  using (true);

create policy "users read their own sessions"
  on public.sessions
  for select
  to authenticated
  using (user_id = (select auth.uid()));

create policy "analysts read all sessions"
  on public.sessions
  for select
  to analyst
  using (true);

-- Errors: the service role (which bypasses row level security) reads and
-- writes them; analysts read them.
revoke all on table public.system_errors from public, anon, authenticated;
grant select on table public.system_errors to analyst;

create policy "analysts read all errors"
  on public.system_errors
  for select
  to analyst
  using (true);

-- The identity sequences behind the ids.
revoke all on sequence public.user_interactions_id_seq, public.system_errors_id_seq
  from public, anon, authenticated;
revoke all on sequence public.user_interactions_id_seq from service_role;

-- Views run with the reader's rights (security_invoker), so the policies
-- above decide which sessions each reader sees in them.
revoke all on table public.session_metrics, public.daily_engagement
  from public, anon, authenticated, service_role;
grant select on table public.session_metrics, public.daily_engagement
  to authenticated, service_role, analyst;

-- The score is pure; whoever reads the views needs to run it.
revoke execute on function public.engagement_score(integer, bigint) from public, anon;
grant execute on function public.engagement_score(integer, bigint)
  to authenticated, service_role, analyst;
