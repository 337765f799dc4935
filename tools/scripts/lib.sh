# Shared by the README's commands: dependencies, Redis and PostgreSQL, Prisma.
# Sourced, not run. Everything is idempotent: a second run on the same machine is fast.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA="$ROOT/.data"
mkdir -p "$DATA"

export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export DATABASE_URL="${DATABASE_URL:-postgresql://tessera:tessera@127.0.0.1:5432/tessera}"

say() { printf '\033[1;34m[tessera]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[tessera]\033[0m %s\n' "$*" >&2; exit 1; }

can_install() {
  [ "${TESSERA_NO_INSTALL:-}" != "1" ] && command -v apt-get >/dev/null 2>&1 &&
    { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }
}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then as_root apt-get update -qq >/dev/null; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_deps() {
  cd "$ROOT"
  local stamp="node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
    say "installing npm dependencies"
    # `npm install` follows package-lock.json as `npm ci` would; `npm ci` itself refuses this lock
    # file with npm 11, which leaves out other platforms' optional packages (npm/cli#8805).
    npm install --no-audit --no-fund --loglevel=error
  fi
}

# The console's browser tests drive Debian's Chromium with playwright-core (Playwright's own
# browser download cannot work offline). CHROMIUM_PATH names another build.
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
ensure_chromium() {
  [ -x "$CHROMIUM_PATH" ] && return 0
  can_install || die "Chromium not found at $CHROMIUM_PATH: install it (apt-get install chromium) or set CHROMIUM_PATH"
  say "installing Chromium (apt-get) for the console's browser tests"
  apt_install chromium
  [ -x "$CHROMIUM_PATH" ] || die "Chromium installed, but not at $CHROMIUM_PATH"
}

url_part() { node -e "const u=new URL(process.argv[1]);console.log(process.argv[2]==='port'?(u.port||process.argv[3]):u[process.argv[2]])" "$1" "$2" "${3:-}"; }

redis_up() {
  node -e "
    const net=require('net');const u=new URL(process.argv[1]);
    const s=net.connect(+(u.port||6379),u.hostname,()=>{s.write('PING\r\n')});
    s.on('data',d=>{process.exit(/PONG|NOAUTH/.test(String(d))?0:1)});s.on('error',()=>process.exit(1));
    setTimeout(()=>process.exit(1),1000);" "$REDIS_URL"
}

ensure_redis() {
  redis_up && return 0
  local host port; host=$(url_part "$REDIS_URL" hostname); port=$(url_part "$REDIS_URL" port 6379)
  case "$host" in 127.0.0.1|localhost) ;; *) die "Redis at $REDIS_URL is not reachable";; esac
  if ! command -v redis-server >/dev/null 2>&1; then
    can_install || die "Redis is missing. Install it (Debian/Ubuntu: sudo apt-get install -y redis-server) or set REDIS_URL."
    say "installing redis-server with apt-get"; apt_install redis-server
  fi
  local dir; dir=$(redis_dir)
  mkdir -p "$dir"
  say "starting redis-server on port $port"
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --dir "$dir" \
    --appendonly yes --appendfsync everysec --save "" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid"
  for _ in $(seq 1 50); do redis_up && return 0; sleep 0.1; done
  die "redis-server did not start; see $dir/redis.log"
}

# The files (and pid) of the Redis this checkout starts, one directory per port: a second Redis
# (a test's, say) never takes over the first one's pid file.
redis_dir() { local port; port=$(url_part "$REDIS_URL" port 6379); if [ "$port" = 6379 ]; then echo "$DATA/redis"; else echo "$DATA/redis-$port"; fi; }

# Pid of the Redis this checkout started for REDIS_URL, when it still runs (and is a Redis:
# a stale pid file may name a process that reused the number).
redis_own_pid() {
  local f pid; f="$(redis_dir)/redis.pid"
  [ -f "$f" ] && pid=$(cat "$f") && [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = redis-server ] && echo "$pid"
}

redis_stop() {
  local pid
  pid=$(redis_own_pid) || { say "no redis-server of this checkout runs for $REDIS_URL"; return 0; }
  say "stopping redis-server (pid $pid)"
  kill "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  die "redis-server $pid did not stop"
}

pg_up() {
  node -e "
    const {Client}=require('pg');const u=new URL(process.argv[1]);u.searchParams.delete('schema');
    const c=new Client({connectionString:u.toString(),connectionTimeoutMillis:1500});
    c.connect().then(()=>c.end()).then(()=>process.exit(0),()=>process.exit(1));" "$DATABASE_URL" 2>/dev/null
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

port_open() { node -e "const s=require('net').connect(+process.argv[2],process.argv[1],()=>process.exit(0));s.on('error',()=>process.exit(1));setTimeout(()=>process.exit(1),1000)" "$1" "$2"; }

# Create the URL's role and database through a superuser session on a local socket.
pg_create_role_db() {
  local sock="$1" port="$2"; shift 2
  local user pass db
  user=$(url_part "$DATABASE_URL" username); pass=$(url_part "$DATABASE_URL" password)
  db=$(url_part "$DATABASE_URL" pathname | sed 's#^/##')
  "$@" "$(pg_bin)/psql" -h "$sock" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q >/dev/null <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN CREATE ROLE "$user" LOGIN CREATEDB PASSWORD '$pass'; END IF;
END \$\$;
SELECT 'CREATE DATABASE "$db" OWNER "$user"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')\gexec
SQL
}

ensure_postgres() {
  pg_up && return 0
  local host port; host=$(url_part "$DATABASE_URL" hostname); port=$(url_part "$DATABASE_URL" port 5432)
  case "$host" in 127.0.0.1|localhost) ;; *) die "PostgreSQL at $(url_part "$DATABASE_URL" host) is not reachable";; esac
  if [ -z "$(pg_bin)" ]; then
    can_install || die "PostgreSQL is missing. Install it (Debian/Ubuntu: sudo apt-get install -y postgresql) or set DATABASE_URL."
    say "installing postgresql with apt-get"; apt_install postgresql
  fi
  local run=()
  [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
  if port_open 127.0.0.1 "$port"; then
    # A server already runs there (the distribution's cluster, say) without our role: add it.
    local sock
    for sock in /var/run/postgresql /tmp; do
      [ -S "$sock/.s.PGSQL.$port" ] || continue
      say "creating role and database of DATABASE_URL in the PostgreSQL server on port $port"
      pg_create_role_db "$sock" "$port" "${run[@]}" 2>/dev/null && pg_up && return 0
    done
    die "PostgreSQL on port $port does not accept $DATABASE_URL. Create its role and database, e.g.:
  sudo -u postgres psql -c \"CREATE ROLE $(url_part "$DATABASE_URL" username) LOGIN CREATEDB PASSWORD '…'\" && sudo -u postgres createdb -O $(url_part "$DATABASE_URL" username) $(url_part "$DATABASE_URL" pathname | sed 's#^/##')
or set DATABASE_URL to a server you can use."
  fi
  # A cluster of the project's own, owned by the postgres system user when we are root
  # (PostgreSQL refuses to run as root), by the current user otherwise.
  local bin pgdata="$DATA/postgres"; bin=$(pg_bin)
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    pgdata="/var/lib/postgresql/tessera-$(echo "$ROOT" | md5sum | cut -c1-8)"
    mkdir -p "$pgdata"; chown postgres:postgres "$pgdata"; chmod 700 "$pgdata"
  fi
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    say "creating a PostgreSQL cluster in $pgdata"
    "${run[@]}" "$bin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  say "starting PostgreSQL on port $port"
  "${run[@]}" "$bin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -t 30 \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=/tmp -c max_connections=300" start >/dev/null \
    || die "PostgreSQL did not start; see $pgdata/server.log"
  pg_create_role_db /tmp "$port" "${run[@]}"
  pg_up || die "PostgreSQL runs but $DATABASE_URL does not connect"
}

# Apps that own data, each with prisma/schema.prisma and its own PostgreSQL schema.
prisma_apps() { for d in "$ROOT"/apps/*/prisma/schema.prisma; do [ -f "$d" ] && basename "$(dirname "$(dirname "$d")")"; done; }

prisma_generate() {
  local app
  for app in $(prisma_apps); do
    local dir="$ROOT/apps/$app"
    if [ ! -d "$dir/prisma/generated/client" ] || [ "$dir/prisma/schema.prisma" -nt "$dir/prisma/generated/client/index.js" ]; then
      say "prisma generate ($app)"
      (cd "$dir" && "$ROOT/node_modules/.bin/prisma" generate >/dev/null)
    fi
  done
}

prisma_migrate() {
  local app
  for app in $(prisma_apps); do
    say "applying migrations ($app)"
    (cd "$ROOT/apps/$app" && DATABASE_URL="$(app_database_url "$app")" "$ROOT/node_modules/.bin/prisma" migrate deploy >/dev/null)
  done
}

# Each service's tables live in a PostgreSQL schema named after it.
app_database_url() { node -e "const u=new URL(process.argv[1]);u.searchParams.set('schema',process.argv[2].replace(/-/g,'_'));console.log(u.toString())" "$DATABASE_URL" "$1"; }

# Data directories of the PostgreSQL clusters this checkout started that still run.
pg_own_dirs() {
  local d
  for d in "$DATA/postgres" /var/lib/postgresql/tessera-"$(echo "$ROOT" | md5sum | cut -c1-8)"; do
    [ -f "$d/postmaster.pid" ] && kill -0 "$(head -1 "$d/postmaster.pid")" 2>/dev/null && echo "$d"
  done
  return 0
}

pg_stop() {
  local d dirs; dirs=$(pg_own_dirs)
  [ -n "$dirs" ] || { say "no PostgreSQL cluster of this checkout runs"; return 0; }
  for d in $dirs; do
    say "stopping PostgreSQL ($d)"
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$d" -m fast stop >/dev/null 2>&1 || true
    else "$(pg_bin)/pg_ctl" -D "$d" -m fast stop >/dev/null 2>&1 || true; fi
  done
}

# What `npm start` says when it stops: the servers of this checkout it leaves running.
infra_note() {
  local names=() where=" under .data/" pg
  redis_own_pid >/dev/null && names+=(Redis)
  pg=$(pg_own_dirs)
  if [ -n "$pg" ]; then names+=(PostgreSQL); case "$pg" in "$DATA"/*) ;; *) where="";; esac; fi
  case ${#names[@]} in
    0) return 0 ;;
    1) echo "${names[0]} keeps running$where; \`npm run infra -- stop\` stops it" ;;
    *) echo "Redis and PostgreSQL keep running$where; \`npm run infra -- stop\` stops them" ;;
  esac
}
