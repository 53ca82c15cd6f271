# Shared by the scripts in scripts/: where things live, the local keys, and
# the install steps every entry point runs first. Source it; do not execute it.
# shellcheck shell=bash

# Without symbolic links: scripts/stack knows its gateway by this path.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BIN="$ROOT/node_modules/.bin"
PG_BIN=/usr/lib/postgresql/15/bin

# STACK_NAME runs a second, independent stack beside the default one (its own
# cluster, ports and logs), for jobs that restart or pause it, like scripts/chaos.
STACK_NAME=${STACK_NAME:-}
# A plain name: it names a folder under .stack/named/ that `scripts/stack destroy`
# deletes, so `..` or `/` must never reach it.
if [ -n "$STACK_NAME" ] && ! [[ "$STACK_NAME" =~ ^[A-Za-z0-9][A-Za-z0-9_-]*$ ]]; then
  printf 'error: STACK_NAME must be letters, digits, - and _ (not %q)\n' "$STACK_NAME" >&2
  exit 2
fi
if [ -n "$STACK_NAME" ]; then
  # In a folder of their own: directly under .stack/, a name could be one of
  # the default stack's own folders (pgdata is its cluster, and its destroy
  # deletes test-logs).
  STACK_DIR="$ROOT/.stack/named/$STACK_NAME"
  # A stack made before named/ existed stays where it is until destroyed:
  # moved, its folder would leave the servers it runs. Only a folder with a
  # cluster is one, and never the default stack's own folders or named/.
  case "$STACK_NAME" in
    pgdata | test-logs | named) ;;
    *)
      if [ ! -e "$STACK_DIR" ] &&
        { [ -e "$ROOT/.stack/$STACK_NAME/pgdata" ] || [ -L "$ROOT/.stack/$STACK_NAME/pgdata" ]; }; then
        STACK_DIR="$ROOT/.stack/$STACK_NAME"
      fi
      ;;
  esac
  DB_PORT=${DB_PORT:-55322}
  API_PORT=${API_PORT:-55321}
else
  STACK_DIR="$ROOT/.stack"
  DB_PORT=54322
  API_PORT=54321
fi
DB_HOST=127.0.0.1
# Exported so that the gateways the scripts start carry it: it is how
# scripts/stack tells its own gateway from another stack's (gateway_running).
export STACK_DIR

# The Supabase CLI's well-known local development secret and the keys it
# signs: safe to publish, useless against any hosted project.
JWT_SECRET="super-secret-jwt-token-with-at-least-32-characters-long"
ANON_KEY="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
SERVICE_ROLE_KEY="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
# The CLI's local publishable and secret keys, in the newer format (not JWTs).
PUBLISHABLE_KEY="sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
SECRET_KEY="sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"
DB_URL="postgresql://postgres:postgres@$DB_HOST:$DB_PORT/postgres"
API_URL="http://$DB_HOST:$API_PORT"

export DENO_NO_UPDATE_CHECK=1 SUPABASE_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1

log() { printf '\033[2m[%s]\033[0m %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# Debian packages the project needs; installs only the missing ones.
DEBIAN_PACKAGES=(
  postgresql-15
  postgresql-15-pgtap
  postgresql-15-cron
  postgresql-15-partman
  postgresql-15-plpgsql-check
  libtap-parser-sourcehandler-pgtap-perl
  chromium
  curl
  procps
)

ensure_debian_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages (${missing[*]}); run as root or install them"
  log "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The deno and supabase binaries, pinned by package-lock.json.
ensure_npm_packages() {
  if [ -x "$BIN/deno" ] && [ -x "$BIN/supabase" ] &&
    [ "$ROOT/node_modules/.package-lock.json" -nt "$ROOT/package-lock.json" ]; then
    return 0
  fi
  command -v npm >/dev/null || ensure_debian_packages nodejs npm
  log "installing npm packages (deno, supabase CLI)"
  # `npm install`, not `npm ci`: registry mirrors may lack some platforms'
  # optional binaries of the supabase package, which npm ci then calls out of
  # sync with the lock. npm install follows the lock and leaves it as it is.
  (cd "$ROOT" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
}

ensure_installed() {
  ensure_debian_packages "${DEBIAN_PACKAGES[@]}"
  ensure_npm_packages
}

# Prints the environment a Supabase project gives its functions and clients.
print_env() {
  cat <<ENV
SUPABASE_URL=$API_URL
SUPABASE_ANON_KEY=$ANON_KEY
SUPABASE_SERVICE_ROLE_KEY=$SERVICE_ROLE_KEY
SUPABASE_PUBLISHABLE_KEY=$PUBLISHABLE_KEY
SUPABASE_SECRET_KEY=$SECRET_KEY
SUPABASE_DB_URL=$DB_URL
SUPABASE_JWT_SECRET=$JWT_SECRET
ENV
}
