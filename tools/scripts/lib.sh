# Shared by the README's commands: dependencies, Redis and PostgreSQL, Prisma.
# Sourced, not run. Everything is idempotent: a second run on the same machine is fast.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA="$ROOT/.data"
mkdir -p "$DATA"

say() { printf '\033[1;34m[tessera]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[tessera]\033[0m %s\n' "$*" >&2; exit 1; }

# The passwords of the Redis and PostgreSQL this checkout runs: random, generated on first use
# into .data/secrets/<name>.password (directory 700, files 600), kept across runs. Nothing else on
# the machine (an agent server, say) gets into either server without them. A second argument
# names another kind of secret: `secret demo-app ingest-key` is .data/secrets/demo-app.ingest-key.
SECRETS="$DATA/secrets"
secret() {
  local f="$SECRETS/$1.${2:-password}" tmp
  if [ ! -s "$f" ]; then
    (umask 077 && mkdir -p "$SECRETS") && chmod 700 "$SECRETS"
    tmp="$f.$$"
    (umask 077 && node -e "process.stdout.write(require('crypto').randomBytes(32).toString('base64url'))" >"$tmp")
    # ln refuses when a concurrent first run (npm start beside npm test) wrote it meanwhile: then both use that one.
    ln "$tmp" "$f" 2>/dev/null || true
    rm -f "$tmp"
  fi
  cat "$f"
}

# A REDIS_URL / DATABASE_URL set by the user is used as is; otherwise this checkout's servers,
# with the generated passwords. REDIS_PASSWORD_FILE / DATABASE_PASSWORD_FILE (compose secrets)
# put a file's password into the URL, as the services' config does (libs/kit/src/config.ts).
REDIS_URL_GIVEN="${REDIS_URL:-}"
[ -n "${REDIS_URL:-}" ] || REDIS_URL="redis://:$(secret redis)@127.0.0.1:6379"
[ -n "${DATABASE_URL:-}" ] || DATABASE_URL="postgresql://tessera:$(secret postgres)@127.0.0.1:5432/tessera"
# A Redis Cluster or Sentinel URL names several servers, which `new URL` refuses:
#   redis+cluster://[:password@]host:port[,host:port...]            (rediss+cluster:// for TLS)
#   redis+sentinel://[:password@]host:port[,host:port...]/<master-name>
# url_part and redis_dir are for one-server URLs only; these URLs go through multi_url_part.
multi_url() { case "$1" in redis+cluster://*|rediss+cluster://*|redis+sentinel://*|rediss+sentinel://*) return 0;; *) return 1;; esac; }
# node -e "$MULTI_URL_JS" part <scheme|username|password|hosts|name> | with-password (PW) | redact; URL_IN in the environment.
# hosts: host:port ..., space-separated; name: the path without its slash (a Sentinel's master name).
MULTI_URL_JS='
const m=/^([^:\/?#]+):\/\/(?:([^\/?#]*)@)?([^\/?#]*)(.*)$/.exec(process.env.URL_IN||"");
if(!m){console.error("not a URL of the form scheme://[user:password@]host:port[,host:port...]");process.exit(1);}
const [,scheme,userinfo,hosts,rest]=m;const i=userinfo===undefined?-1:userinfo.indexOf(":");
const user=userinfo===undefined?"":i<0?userinfo:userinfo.slice(0,i);const pass=i<0?"":userinfo.slice(i+1);
const build=(p)=>scheme+"://"+(user||p?user+(p?":"+p:"")+"@":"")+hosts+rest;
const [op,key]=process.argv.slice(1);
if(op==="redact")console.log(build(pass?"***":"").replace(/([?&]sentinelPassword=)[^&#]*/g,"$1***"));
else if(op==="with-password")console.log(build(encodeURIComponent(process.env.PW)));
else if(key==="scheme")console.log(scheme);
else if(key==="username")console.log(decodeURIComponent(user));
else if(key==="password")console.log(decodeURIComponent(pass));
else if(key==="hosts")console.log(hosts.split(",").filter(Boolean).join(" "));
else if(key==="name")console.log(decodeURIComponent(rest.replace(/[?#].*$/,"").replace(/^\//,"")));
else process.exit(2);'
multi_url_part() { URL_IN="$1" node -e "$MULTI_URL_JS" part "$2"; }
url_with_password() {
  if multi_url "$1"; then URL_IN="$1" PW="$2" node -e "$MULTI_URL_JS" with-password; return; fi
  URL_IN="$1" PW="$2" node -e "const u=new URL(process.env.URL_IN);u.password=process.env.PW;console.log(u.toString())"
}
url_with_password_file() {
  local pw; pw=$(cat "$2"); pw="${pw#"${pw%%[![:space:]]*}"}"; pw="${pw%"${pw##*[![:space:]]}"}"
  url_with_password "$1" "$pw"
}
if [ -n "${REDIS_PASSWORD_FILE:-}" ]; then REDIS_URL=$(url_with_password_file "$REDIS_URL" "$REDIS_PASSWORD_FILE"); fi
if [ -n "${DATABASE_PASSWORD_FILE:-}" ]; then DATABASE_URL=$(url_with_password_file "$DATABASE_URL" "$DATABASE_PASSWORD_FILE"); fi
export REDIS_URL DATABASE_URL

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

# The gateway benchmark's peer: nginx in front of the same runtime (tools/bench/gateway.ts).
ensure_nginx() {
  command -v nginx >/dev/null 2>&1 && return 0
  [ -x /usr/sbin/nginx ] && return 0
  can_install || { say "nginx is missing (Debian/Ubuntu: apt-get install nginx): the gateway benchmark runs without its peer"; return 1; }
  say "installing nginx (apt-get) as the gateway benchmark's peer"
  apt_install nginx
}

# The bridge runs agent servers (user-controlled code) in a bubblewrap sandbox, as the system user
# AGENT_SANDBOX_USER (tessera-agent) when it can switch to it (running as root).
ensure_sandbox() {
  if ! command -v bwrap >/dev/null 2>&1; then
    if can_install; then say "installing bubblewrap (apt-get) for the bridge's agent-server sandbox"; apt_install bubblewrap
    else say "bubblewrap is missing (Debian/Ubuntu: sudo apt-get install -y bubblewrap): the bridge needs it to sandbox agent servers"; fi
  fi
  local user="${AGENT_SANDBOX_USER:-tessera-agent}"
  id "$user" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ]; then
    say "creating the system user $user (agent servers run under it)"
    useradd --system --no-create-home --shell /usr/sbin/nologin --user-group "$user" 2>/dev/null || id "$user" >/dev/null 2>&1 || die "could not create the system user $user"
  else
    say "agent servers will run under $(id -un) in a bubblewrap sandbox (no system user $user; running once as root creates it)"
  fi
}

# A part of a URL (username and password decoded). The URL goes through the environment, not the
# command line, where `ps` would show its password.
url_part() { URL_IN="$1" node -e "const u=new URL(process.env.URL_IN);const k=process.argv[1];console.log(k==='port'?(u.port||process.argv[2]):k==='username'||k==='password'?decodeURIComponent(u[k]):u[k])" "$2" "${3:-}"; }
# The URL as it may be printed: its password masked.
redact() {
  if multi_url "$1"; then URL_IN="$1" node -e "$MULTI_URL_JS" redact; return; fi
  URL_IN="$1" node -e "const u=new URL(process.env.URL_IN);if(u.password)u.password='***';console.log(u.toString())"
}

# down | open (asks for no password) | ok (takes REDIS_URL's) | refused: tools/scripts/redis-auth.mjs.
redis_state() { node "$ROOT/tools/scripts/redis-auth.mjs" state; }
# Something answers PING on REDIS_URL's port, with or without a password.
redis_up() { [ "$(redis_state)" != down ]; }

# AOF fsync for this checkout's Redis: `always` when the timeline's tail is on (EVENT_TAIL=on: an
# event is delivered once Redis has it, so only `always` keeps every delivered event through a
# Redis crash), else `everysec` (PostgreSQL holds every delivered event). docs/architecture.md.
redis_fsync() {
  if [ "${EVENT_TAIL:-off}" = on ]; then echo always; else echo everysec; fi
}

ensure_redis() {
  ensure_redis_up || return
  # A Redis this checkout started earlier, without the tail: fsync every write from now on.
  if [ "$(redis_fsync)" = always ] && ! multi_url "$REDIS_URL" && redis_own_pid >/dev/null; then
    node "$ROOT/tools/scripts/redis-auth.mjs" set-fsync always || die "could not set appendfsync always on this checkout's Redis"
  fi
}

ensure_redis_up() {
  if multi_url "$REDIS_URL"; then ensure_redis_multi; return; fi
  local state pid port; port=$(url_part "$REDIS_URL" port 6379)
  state=$(redis_state)
  [ "$state" = ok ] && return 0
  pid=$(redis_own_pid) || pid=""
  if [ "$state" != down ] && [ -z "$pid" ]; then
    # A Redis that this checkout did not start. One the user named, asking for no password, is theirs to run so.
    [ "$state" = open ] && [ -n "$REDIS_URL_GIVEN" ] && return 0
    if [ "$state" = open ]; then
      die "A Redis not started by this checkout runs on port $port without a password, so it cannot take the generated one (.data/secrets/redis.password). Stop it, or set REDIS_URL to use it as it is (e.g. REDIS_URL=redis://127.0.0.1:$port)."
    fi
    die "The Redis at $(redact "$REDIS_URL") was not started by this checkout and refuses its password. Set REDIS_URL to it with its password (redis://:PASSWORD@host:port)."
  fi
  case "$(url_part "$REDIS_URL" hostname)" in 127.0.0.1|localhost) ;; *) die "Redis at $(redact "$REDIS_URL") is not reachable";; esac
  # This checkout's Redis always asks for a password: the URL's, or the generated one added to the URL.
  if [ -z "$(url_part "$REDIS_URL" password)" ]; then
    REDIS_URL=$(url_with_password "$REDIS_URL" "$(secret redis)"); export REDIS_URL
    state=$(redis_state)
    [ "$state" = ok ] && return 0
  fi
  if [ -n "$pid" ]; then
    # Started before it had a password: set one live (CONFIG SET), nothing restarts.
    case "$state" in
      down) die "This checkout's redis-server (pid $pid, port $port) does not answer; see $(redis_dir)/redis.log" ;;
      refused) die "This checkout's redis-server (pid $pid, port $port) refuses the password of REDIS_URL: stop it (npm run infra -- stop) and run again." ;;
    esac
    say "setting a password on this checkout's running redis-server (pid $pid)"
    node "$ROOT/tools/scripts/redis-auth.mjs" set-password && [ "$(redis_state)" = ok ] || die "could not set a password on redis-server $pid"
    return 0
  fi
  ensure_redis_server
  local dir; dir=$(redis_dir)
  (umask 077 && mkdir -p "$dir") && chmod 700 "$dir"
  # The settings, password included, in a file only this user reads, not on the command line.
  local pw; pw=$(url_part "$REDIS_URL" password); pw=${pw//\\/\\\\}; pw=${pw//\"/\\\"}
  (umask 077 && cat >"$dir/redis.conf" <<CONF
# Written by tools/scripts/lib.sh at every start of this Redis.
port $port
bind 127.0.0.1
daemonize yes
dir "$dir"
appendonly yes
appendfsync $(redis_fsync)
save ""
logfile "$dir/redis.log"
pidfile "$dir/redis.pid"
requirepass "$pw"
CONF
  )
  say "starting redis-server on port $port (password required)"
  redis-server "$dir/redis.conf"
  for _ in $(seq 1 50); do [ "$(redis_state)" = ok ] && return 0; sleep 0.1; done
  die "redis-server did not start; see $dir/redis.log"
}

ensure_redis_server() {
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return 0
  can_install || die "Redis is missing. Install it (Debian/Ubuntu: sudo apt-get install -y redis-server) or set REDIS_URL."
  say "installing redis-server with apt-get"; apt_install redis-server
}

# REDIS_URL names a Redis Cluster or Sentinel. A redis+cluster:// URL whose servers are all ports
# 127.0.0.1 (or localhost) of one cluster of this checkout (base..base+5, base = its first port) is
# that cluster, started when it is not running, unless a Redis this checkout did not start answers
# there; any other is the user's, and only has to answer.
ensure_redis_multi() {
  local scheme hosts h port base="" ours=1
  scheme=$(multi_url_part "$REDIS_URL" scheme); hosts=$(multi_url_part "$REDIS_URL" hosts)
  [ -n "$hosts" ] || die "REDIS_URL $(redact "$REDIS_URL") names no server"
  for h in $hosts; do
    case "$h" in 127.0.0.1:*|localhost:*) port=${h##*:} ;; *) ours=0; break ;; esac
    case "$port" in ''|*[!0-9]*) ours=0; break ;; esac
    [ -n "$base" ] || base=$port
    { [ "$port" -ge "$base" ] && [ "$port" -le $((base + 5)) ]; } || ours=0
  done
  if [ "$scheme" = redis+cluster ] && [ "$ours" = 1 ] && { [ -n "$(redis_cluster_pids "$base")" ] || [ "$(redis_state)" = down ]; }; then
    local pw; pw=$(multi_url_part "$REDIS_URL" password)
    ensure_redis_cluster "$base" "$pw"
    # This checkout's cluster always asks for a password: the URL's, or the generated one added to it.
    if [ -z "$pw" ]; then REDIS_URL=$(url_with_password "$REDIS_URL" "$(secret redis)"); export REDIS_URL; fi
    return 0
  fi
  case "$scheme" in
    rediss+*)
      # TLS: redis-auth.mjs speaks plain TCP; a server that accepts the connection is enough here.
      for h in $hosts; do port_open "$(host_of "$h")" "$(port_of "$h" 6379)" && return 0; done ;;
    *) [ "$(redis_state)" != down ] && return 0 ;;
  esac
  die "no server of $(redact "$REDIS_URL") answers"
}
host_of() { local h="$1"; case "$h" in \[*) h=${h#\[}; echo "${h%%]*}" ;; *) echo "${h%%:*}" ;; esac; }
port_of() { local h="$1"; h=${h##*]}; case "$h" in *:*) echo "${h##*:}" ;; *) echo "$2" ;; esac; }

# A local Redis Cluster of this checkout: 3 primaries and 3 replicas on 127.0.0.1, ports base..base+5
# (7101..7106 by default; the cluster bus on each port + 10000), each node with its files under
# .data/redis-cluster-<base>/<port>/ and the generated Redis password (or the one given), required
# of clients and between nodes. Idempotent: a running healthy cluster is left as it is; stopped
# nodes start (a cluster created before finds itself again through its nodes.conf); fresh nodes
# are made into a cluster (redis-cli --cluster create). Exports REDIS_CLUSTER_URL (three seeds).
#   ensure_redis_cluster [base_port [password]]
REDIS_CLUSTER_BASE=7101
redis_cluster_ports() { local b=${1:-$REDIS_CLUSTER_BASE}; seq "$b" $((b + 5)); }
redis_cluster_dir() { echo "$DATA/redis-cluster-${1:-$REDIS_CLUSTER_BASE}"; }
redis_cluster_check_base() {
  case "$1" in ''|*[!0-9]*) die "not a port: $1" ;; esac
  { [ "$1" -ge 1024 ] && [ "$1" -le 55530 ]; } || die "a cluster's base port is 1024..55530 (its nodes take base..base+5, their bus ports 10000 more): $1"
}
# The URL of the cluster at base: password URL-encoded, the first three nodes as seeds.
redis_cluster_url() {
  local b=${1:-$REDIS_CLUSTER_BASE} pw="${2:-}"
  [ -n "$pw" ] || pw=$(secret redis)
  PW="$pw" node -e "console.log('redis+cluster://:'+encodeURIComponent(process.env.PW)+'@'+process.argv.slice(1).map((p)=>'127.0.0.1:'+p).join(','))" "$b" $((b + 1)) $((b + 2))
}
# Pid of this checkout's node on port $2 of the cluster at base $1, when it runs.
redis_cluster_node_pid() {
  local f pid; f="$(redis_cluster_dir "$1")/$2/redis.pid"
  [ -f "$f" ] && pid=$(cat "$f") && [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = redis-server ] && echo "$pid"
}
# "port pid" of each running node of the cluster at base (none: no output).
redis_cluster_nodes() {
  local p pid
  for p in $(redis_cluster_ports "${1:-}"); do pid=$(redis_cluster_node_pid "${1:-$REDIS_CLUSTER_BASE}" "$p") && echo "$p $pid"; done
  return 0
}
redis_cluster_pids() { redis_cluster_nodes "${1:-}" | cut -d' ' -f2; }
# Base ports of this checkout's clusters that have a node running.
redis_cluster_bases() {
  local d b
  for d in "$DATA"/redis-cluster-*; do
    [ -d "$d" ] || continue; b=${d##*/redis-cluster-}
    case "$b" in ''|*[!0-9]*) continue ;; esac
    [ -n "$(redis_cluster_pids "$b")" ] && echo "$b"
  done
  return 0
}
# redis-cli on one node, the password in REDISCLI_AUTH (never on the command line, where `ps`
# shows it), bounded in time (a stopped node must not hang the caller).
redis_cluster_cli() { local port=$1; shift; REDISCLI_AUTH="${RC_PW:-$(secret redis)}" timeout 5 redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null; }
redis_cluster_info() { redis_cluster_cli "$1" cluster info | tr -d '\r' | sed -n "s/^$2://p"; }
# Every node answers with cluster_state:ok, every replica has synced with its primary and every
# primary has a replica (a replica that never synced refuses to fail over), and, with "check",
# redis-cli --cluster check agrees.
redis_cluster_healthy() {
  local p repl
  for p in $(redis_cluster_ports "$1"); do
    [ "$(redis_cluster_info "$p" cluster_state)" = ok ] || return 1
    repl=$(redis_cluster_cli "$p" info replication | tr -d '\r') || return 1
    case "$repl" in
      *role:slave*) case "$repl" in *master_link_status:up*) ;; *) return 1 ;; esac ;;
      *role:master*) case "$repl" in *connected_slaves:0*) return 1 ;; esac ;;
      *) return 1 ;;
    esac
  done
  [ "${2:-}" = check ] || return 0
  local out; out=$(REDISCLI_AUTH="$RC_PW" timeout 10 redis-cli --cluster check "127.0.0.1:$1" 2>&1) || return 1
  case "$out" in *"[ERR]"*) return 1 ;; *"All 16384 slots covered"*) return 0 ;; *) return 1 ;; esac
}

ensure_redis_cluster() {
  local base=${1:-$REDIS_CLUSTER_BASE} pw="${2:-}"
  redis_cluster_check_base "$base"
  [ -n "$pw" ] || pw=$(secret redis)
  ensure_redis_server
  local dir; dir=$(redis_cluster_dir "$base")
  (umask 077 && mkdir -p "$dir") && chmod 700 "$dir"
  # One start at a time (npm start beside npm test): a second waits, then finds the cluster up.
  ( flock -w 60 9 || die "another start of the Redis Cluster in $dir holds its lock"
    RC_PW="$pw" redis_cluster_up "$base" "$dir"
  ) 9>"$dir/.lock" || exit 1
  REDIS_CLUSTER_URL=$(redis_cluster_url "$base" "$pw"); export REDIS_CLUSTER_URL
}

redis_cluster_up() {
  local base=$1 dir=$2 p pid started=0
  redis_cluster_healthy "$base" && return 0
  local conf_pw=${RC_PW//\\/\\\\}; conf_pw=${conf_pw//\"/\\\"}
  for p in $(redis_cluster_ports "$base"); do
    redis_cluster_node_pid "$base" "$p" >/dev/null && continue
    port_open 127.0.0.1 "$p" && die "port $p is taken by a process that is not this checkout's Redis Cluster node (the cluster at $base takes $base..$((base + 5)))"
    (umask 077 && mkdir -p "$dir/$p")
    (umask 077 && cat >"$dir/$p/redis.conf" <<CONF
# Written by tools/scripts/lib.sh at every start of this node (Redis Cluster at base port $base).
port $p
bind 127.0.0.1
daemonize yes
dir "$dir/$p"
appendonly yes
appendfsync $(redis_fsync)
save ""
logfile "$dir/$p/redis.log"
pidfile "$dir/$p/redis.pid"
requirepass "$conf_pw"
masterauth "$conf_pw"
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout 2000
# A replica's first copy at once (Redis waits 5 s for more replicas by default): a new cluster is
# ready to fail over sooner.
repl-diskless-sync-delay 0
CONF
    )
    # Without the lock's descriptor: a daemon holding it would keep every later start waiting.
    redis-server "$dir/$p/redis.conf" 9>&- || die "redis-server did not start on port $p; see $dir/$p/redis.log"
    started=$((started + 1))
  done
  [ "$started" = 0 ] || say "started $started Redis Cluster node(s) on ports $base..$((base + 5)) (password required)"
  # Every node up and taking the password.
  local reply ready
  for _ in $(seq 1 100); do
    ready=1
    for p in $(redis_cluster_ports "$base"); do
      reply=$(redis_cluster_cli "$p" ping) || reply=""
      case "$reply" in
        PONG) ;;
        *WRONGPASS*|*NOAUTH*|*"invalid password"*) die "the Redis Cluster node on port $p refuses the password: stop the cluster (bash tools/scripts/redis-cluster.sh stop $base) and run again" ;;
        *) ready=0 ;;
      esac
    done
    [ "$ready" = 1 ] && break
    sleep 0.1
  done
  [ "$ready" = 1 ] || die "Redis Cluster nodes on $base..$((base + 5)) do not answer; see $dir/<port>/redis.log"
  # Fresh nodes (each knows only itself, no slot assigned): make them a cluster.
  local fresh=1
  for p in $(redis_cluster_ports "$base"); do
    { [ "$(redis_cluster_info "$p" cluster_known_nodes)" = 1 ] && [ "$(redis_cluster_info "$p" cluster_slots_assigned)" = 0 ]; } || fresh=0
  done
  if [ "$fresh" = 1 ]; then
    say "creating the Redis Cluster on ports $base..$((base + 5)) (3 primaries, 3 replicas)"
    local nodes=(); for p in $(redis_cluster_ports "$base"); do nodes+=("127.0.0.1:$p"); done
    REDISCLI_AUTH="$RC_PW" redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 \
      || die "redis-cli --cluster create failed; see $dir/create.log"
  fi
  for _ in $(seq 1 100); do
    redis_cluster_healthy "$base" check && return 0
    sleep 0.2
  done
  die "the Redis Cluster on ports $base..$((base + 5)) is not healthy after 20 s (redis-cli --cluster check 127.0.0.1:$base with REDISCLI_AUTH; logs in $dir/<port>/redis.log). \
bash tools/scripts/redis-cluster.sh reset $base removes it, to be created anew."
}

# Stop the nodes of this checkout's cluster at base (SIGTERM, each writes its AOF and nodes.conf).
redis_cluster_stop() {
  local base=${1:-$REDIS_CLUSTER_BASE} pids pid alive
  pids=$(redis_cluster_pids "$base")
  [ -n "$pids" ] || { say "no Redis Cluster node of this checkout runs on ports $base..$((base + 5))"; return 0; }
  say "stopping the Redis Cluster on ports $base..$((base + 5)) (pids $(echo $pids))"
  kill $pids 2>/dev/null || true
  for _ in $(seq 1 100); do
    alive=""
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
    [ -n "$alive" ] || return 0
    sleep 0.1
  done
  die "Redis Cluster nodes did not stop:$alive"
}

# The primary that serves a slot (or a key's slot) in the cluster at base, as its nodes see it now:
# "port pid" (pid empty when the node is not this checkout's). A primary marked failing does not count.
#   redis_cluster_primary <slot|key> [base_port [password]]
redis_cluster_primary() {
  local what=$1 base=${2:-$REDIS_CLUSTER_BASE} RC_PW="${3:-}" slot="" p nodes="" port
  [ -n "$RC_PW" ] || RC_PW=$(secret redis)
  for p in $(redis_cluster_ports "$base"); do
    nodes=$(redis_cluster_cli "$p" cluster nodes | tr -d '\r') || nodes=""
    case "$nodes" in *master*) break ;; *) nodes="" ;; esac
  done
  [ -n "$nodes" ] || die "no node of the Redis Cluster at $base answers"
  case "$what" in
    ''|*[!0-9]*) slot=$(redis_cluster_cli "$p" cluster keyslot "$what") || slot="" ;;
    *) slot=$what ;;
  esac
  case "$slot" in ''|*[!0-9]*) die "not a slot: $what" ;; esac
  # CLUSTER NODES: <id> <ip:port@bus> <flags> <primary> <ping> <pong> <epoch> <link> <slot ranges...>
  port=$(printf '%s\n' "$nodes" | awk -v s="$slot" '
    $3 ~ /master/ && $3 !~ /fail/ {
      for (i = 9; i <= NF; i++) {
        if ($i ~ /^\[/) continue
        n = split($i, r, "-"); lo = r[1] + 0; hi = (n > 1 ? r[2] : r[1]) + 0
        if (s + 0 >= lo && s + 0 <= hi) { split($2, a, "@"); sub(/.*:/, "", a[1]); print a[1]; exit }
      }
    }')
  [ -n "$port" ] || die "no live primary serves slot $slot in the Redis Cluster at $base (a failover under way?)"
  echo "$port $(redis_cluster_node_pid "$base" "$port" || true)"
}

# The files (and pid) of the Redis this checkout starts, one directory per port: a second Redis
# (a test's, say) never takes over the first one's pid file.
redis_dir() { local port; port=$(url_part "$REDIS_URL" port 6379); if [ "$port" = 6379 ]; then echo "$DATA/redis"; else echo "$DATA/redis-$port"; fi; }

# Pid of the Redis this checkout started for REDIS_URL, when it still runs (and is a Redis:
# a stale pid file may name a process that reused the number).
redis_own_pid() {
  multi_url "$REDIS_URL" && return 1
  local f pid; f="$(redis_dir)/redis.pid"
  [ -f "$f" ] && pid=$(cat "$f") && [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = redis-server ] && echo "$pid"
}

redis_stop() {
  local pid
  if multi_url "$REDIS_URL"; then
    local h; h=$(multi_url_part "$REDIS_URL" hosts); h=${h%% *}
    case "$(multi_url_part "$REDIS_URL" scheme):$h" in
      redis+cluster:127.0.0.1:*|redis+cluster:localhost:*) redis_cluster_stop "${h##*:}" ;;
      *) say "$(redact "$REDIS_URL") is not this checkout's: left running" ;;
    esac
    return 0
  fi
  pid=$(redis_own_pid) || { say "no redis-server of this checkout runs for $(redact "$REDIS_URL")"; return 0; }
  say "stopping redis-server (pid $pid)"
  kill "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  die "redis-server $pid did not stop"
}

pg_up() {
  URL_IN="$DATABASE_URL" node -e "
    const {Client}=require('pg');const u=new URL(process.env.URL_IN);u.searchParams.delete('schema');
    const c=new Client({connectionString:u.toString(),connectionTimeoutMillis:1500});
    c.connect().then(()=>c.end()).then(()=>process.exit(0),()=>process.exit(1));" 2>/dev/null
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

port_open() { node -e "const s=require('net').connect(+process.argv[2],process.argv[1],()=>process.exit(0));s.on('error',()=>process.exit(1));setTimeout(()=>process.exit(1),1000)" "$1" "$2"; }

# Create the URL's role (or set its password when it exists) and database, through a superuser
# session on a local socket. The password goes over as a SCRAM-SHA-256 verifier, so it is in no
# statement (and no server log line).
pg_role_db() {
  local sock="$1" port="$2"; shift 2
  local user db verifier
  user=$(url_part "$DATABASE_URL" username)
  db=$(url_part "$DATABASE_URL" pathname | sed 's#^/##')
  verifier=$(URL_IN="$DATABASE_URL" node -e "
    const c=require('crypto');const pw=decodeURIComponent(new URL(process.env.URL_IN).password);
    const salt=c.randomBytes(16),it=4096,salted=c.pbkdf2Sync(pw,salt,it,32,'sha256');
    const hmac=(k,s)=>c.createHmac('sha256',k).update(s).digest();
    const stored=c.createHash('sha256').update(hmac(salted,'Client Key')).digest();
    console.log('SCRAM-SHA-256\$'+it+':'+salt.toString('base64')+'\$'+stored.toString('base64')+':'+hmac(salted,'Server Key').toString('base64'));")
  "$@" "$(pg_bin)/psql" -h "$sock" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q >/dev/null <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN CREATE ROLE "$user" LOGIN CREATEDB; END IF;
END \$\$;
ALTER ROLE "$user" WITH LOGIN PASSWORD '$verifier';
SELECT 'CREATE DATABASE "$db" OWNER "$user"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')\gexec
SQL
}

# Where this checkout's cluster lives: owned by the postgres system user when we are root
# (PostgreSQL refuses to run as root), by the current user under .data/ otherwise.
pg_own_dir() {
  if [ "$(id -u)" = 0 ]; then echo "/var/lib/postgresql/tessera-$(echo "$ROOT" | md5sum | cut -c1-8)"; else echo "$DATA/postgres"; fi
}
# The port of the cluster in $1 when it runs.
pg_running_port() { [ -f "$1/postmaster.pid" ] && kill -0 "$(head -1 "$1/postmaster.pid")" 2>/dev/null && sed -n 4p "$1/postmaster.pid"; }
# Its socket directory: the data directory itself (mode 700: only the cluster's owner gets in),
# unless the socket's path would be too long for a Unix socket (107 bytes).
pg_socket_dir() {
  if [ $((${#1} + 16)) -lt 108 ]; then echo "$1"; else echo "/tmp/tessera-pg-$(echo "$ROOT" | md5sum | cut -c1-8)"; fi
}

# The cluster's authentication, rewritten on every run (a cluster created before it, with trust
# everywhere, is hardened by the next one): every TCP connection needs its role's password
# (scram-sha-256; the postgres superuser has none, so it cannot log in that way); the socket takes
# the postgres superuser from the cluster's owning system user only (peer), to administer it.
# Returns 0 when a file changed (a running server must reload).
pg_write_auth() {
  local d="$1" owner=postgres changed=1 hba ident
  [ "$(id -u)" = 0 ] || owner=$(id -un)
  hba="# Written by tools/scripts/lib.sh on every npm start / npm test / npm run infra: edits are lost.
# TCP: every role with its password. Socket: the postgres superuser, from the system user $owner only.
local   all   postgres                  peer map=tessera
host    all   all        127.0.0.1/32   scram-sha-256
host    all   all        ::1/128        scram-sha-256"
  ident="# Written by tools/scripts/lib.sh: the system user that administers this cluster over its socket.
tessera   $owner   postgres"
  if [ "$(cat "$d/pg_hba.conf" 2>/dev/null)" != "$hba" ]; then printf '%s\n' "$hba" >"$d/pg_hba.conf"; changed=0; fi
  if [ "$(cat "$d/pg_ident.conf" 2>/dev/null)" != "$ident" ]; then printf '%s\n' "$ident" >"$d/pg_ident.conf"; changed=0; fi
  return $changed
}

ensure_postgres() {
  local host port; host=$(url_part "$DATABASE_URL" hostname); port=$(url_part "$DATABASE_URL" port 5432)
  case "$host" in 127.0.0.1|localhost) ;; *) pg_up && return 0; die "PostgreSQL at $(url_part "$DATABASE_URL" host) is not reachable";; esac
  local run=() pgdata; pgdata=$(pg_own_dir)
  [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
  if [ "$(pg_running_port "$pgdata" || true)" = "$port" ]; then
    # This checkout's cluster runs: its authentication and the role's password, as they must be.
    pg_need_password
    if pg_write_auth "$pgdata"; then
      say "PostgreSQL ($pgdata): password authentication on every TCP connection"
      "${run[@]}" "$(pg_bin)/pg_ctl" -D "$pgdata" reload >/dev/null
    fi
    pg_role_db "$(sed -n 5p "$pgdata/postmaster.pid")" "$port" "${run[@]}"
    pg_up || die "this checkout's PostgreSQL ($pgdata) runs but $(redact "$DATABASE_URL") does not connect"
    return 0
  fi
  pg_up && return 0
  if [ -z "$(pg_bin)" ]; then
    can_install || die "PostgreSQL is missing. Install it (Debian/Ubuntu: sudo apt-get install -y postgresql) or set DATABASE_URL."
    say "installing postgresql with apt-get"; apt_install postgresql
  fi
  if port_open 127.0.0.1 "$port"; then
    # A server already runs there (the distribution's cluster, say) without our role: add it.
    pg_need_password
    local sock
    for sock in /var/run/postgresql /tmp; do
      [ -S "$sock/.s.PGSQL.$port" ] || continue
      say "creating role and database of DATABASE_URL in the PostgreSQL server on port $port"
      pg_role_db "$sock" "$port" "${run[@]}" 2>/dev/null && pg_up && return 0
    done
    die "PostgreSQL on port $port does not accept $(redact "$DATABASE_URL"). Create its role and database, e.g.:
  sudo -u postgres psql -c \"CREATE ROLE $(url_part "$DATABASE_URL" username) LOGIN CREATEDB PASSWORD '…'\" && sudo -u postgres createdb -O $(url_part "$DATABASE_URL" username) $(url_part "$DATABASE_URL" pathname | sed 's#^/##')
or set DATABASE_URL to a server you can use."
  fi
  local bin sock; bin=$(pg_bin); sock=$(pg_socket_dir "$pgdata")
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    mkdir -p "$pgdata"; chown postgres:postgres "$pgdata"; chmod 700 "$pgdata"
  fi
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    say "creating a PostgreSQL cluster in $pgdata"
    "${run[@]}" "$bin/initdb" -D "$pgdata" -U postgres --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  pg_need_password
  pg_write_auth "$pgdata" || true
  if [ "$sock" != "$pgdata" ]; then
    "${run[@]}" mkdir -p -m 700 "$sock"
    [ "$(stat -c %u "$sock")" = "$("${run[@]}" id -u)" ] || die "$sock is not the cluster owner's: remove it"
  fi
  say "starting PostgreSQL on port $port"
  "${run[@]}" "$bin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -t 30 \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='$sock' -c unix_socket_permissions=0700 -c max_connections=300" start >/dev/null \
    || die "PostgreSQL did not start; see $pgdata/server.log"
  pg_role_db "$sock" "$port" "${run[@]}"
  pg_up || die "PostgreSQL runs but $(redact "$DATABASE_URL") does not connect"
}

# A role this checkout creates or administers always has a password: the URL's, or the generated
# one added to the URL.
pg_need_password() {
  [ -n "$(url_part "$DATABASE_URL" password)" ] && return 0
  DATABASE_URL=$(url_with_password "$DATABASE_URL" "$(secret postgres)"); export DATABASE_URL
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

# What every entry (npm start, npm test, npm run infra) needs before a service runs: dependencies,
# Redis and PostgreSQL up, the agent sandbox, the Prisma clients generated and migrations applied.
ensure_stack() {
  ensure_deps
  ensure_redis
  ensure_postgres
  ensure_sandbox
  prisma_generate
  prisma_migrate
}

# Each service's tables live in a PostgreSQL schema named after it.
app_database_url() { URL_IN="$DATABASE_URL" node -e "const u=new URL(process.env.URL_IN);u.searchParams.set('schema',process.argv[1].replace(/-/g,'_'));console.log(u.toString())" "$1"; }

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
  { redis_own_pid >/dev/null || [ -n "$(redis_cluster_bases)" ]; } && names+=(Redis)
  pg=$(pg_own_dirs)
  if [ -n "$pg" ]; then names+=(PostgreSQL); case "$pg" in "$DATA"/*) ;; *) where="";; esac; fi
  case ${#names[@]} in
    0) return 0 ;;
    1) echo "${names[0]} keeps running$where; \`npm run infra -- stop\` stops it" ;;
    *) echo "Redis and PostgreSQL keep running$where; \`npm run infra -- stop\` stops them" ;;
  esac
}
