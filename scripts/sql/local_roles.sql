-- Local-only logins, applied by `scripts/stack` after the migrations (they
-- need the roles those create). Never part of a migration: on a hosted
-- project, analysts get their own logins from whoever runs the database.
--
-- `analyst_reader` / `analyst` is the login the dashboard asks for: a member
-- of the NOLOGIN `analyst` role, so it reads every table and view and writes
-- nothing.

set client_min_messages = warning;

do $$
begin
  if not exists (select from pg_roles where rolname = 'analyst_reader') then
    create role analyst_reader login password 'analyst' in role analyst;
  end if;
end
$$;
