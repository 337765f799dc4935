#!/usr/bin/env bash
# npm start: dependencies, Redis and PostgreSQL (installed and started when missing), migrations,
# then every service (start.ts). Ctrl-C, or SIGINT/SIGTERM/SIGHUP to npm, stops the services.
# Redis and PostgreSQL keep running, since another command (`npm test`) may be using them:
# `npm run infra -- stop` stops the ones this checkout started.
# RUNTIME_PORT, BROKER_PORT, OBSERVABILITY_PORT, AGENT_MANAGER_PORT, DOCUMENTS_PORT and
# GATEWAY_PORT move the services off 8000, 8001, 8765, 8767, 8766 and 8080.
# npm start -- --redis-cluster[=BASE_PORT]: every service on this checkout's Redis Cluster (3
# primaries, 3 replicas on 127.0.0.1:7101..7106, or BASE_PORT..+5; started, or created, when needed),
# instead of the one Redis or REDIS_URL.
source "$(dirname "$0")/lib.sh"
cluster_base=""
for arg in "$@"; do
  case "$arg" in
    --redis-cluster) cluster_base=$REDIS_CLUSTER_BASE ;;
    --redis-cluster=*) cluster_base=${arg#*=} ;;
    *) die "usage: npm start [-- --redis-cluster[=BASE_PORT]]" ;;
  esac
done
if [ -n "$cluster_base" ]; then
  [ -z "$REDIS_URL_GIVEN" ] || say "--redis-cluster: REDIS_URL ($(redact "$REDIS_URL_GIVEN")) is not used"
  ensure_redis_cluster "$cluster_base"
  REDIS_URL=$REDIS_CLUSTER_URL; export REDIS_URL
  say "services use the Redis Cluster on 127.0.0.1:$cluster_base..$((cluster_base + 5)) ($(redact "$REDIS_URL"))"
fi
ensure_stack
cd "$ROOT"
# Document 002's example mission, with the development user enrolled (idempotent).
node --import tsx apps/runtime/src/mission/seed-main.ts dev-user >/dev/null
# The operator console (/console): built when missing or older than its sources. NODE_ENV
# production, or React's development build is bundled.
if [ ! -f apps/console/dist/index.html ] || [ -n "$(find apps/console/src apps/console/index.html apps/console/vite.config.mts apps/console/public libs/client/src libs/contracts/src -newer apps/console/dist/index.html -print -quit 2>/dev/null)" ]; then
  say "building the operator console"
  NODE_ENV=production node_modules/.bin/vite build --config apps/console/vite.config.mts >/dev/null || say "console build failed: /console answers 503"
fi
TESSERA_INFRA_NOTE="$(infra_note)"
export TESSERA_INFRA_NOTE
# demo-app's ingest key (what its outside agents and OpenTelemetry exporters send as x-ingest-key),
# random, generated once into .data/secrets/demo-app.ingest-key; start.ts gives it to observability
# and prints it. INGEST_KEYS set by the user is used as it is, and then no key is made.
if [ -z "${INGEST_KEYS:-}" ]; then
  TESSERA_DEV_INGEST_KEY="$(secret demo-app ingest-key)"
  export TESSERA_DEV_INGEST_KEY
fi
# exec, so that nothing stands between npm (and its shell) and the process that stops the services.
exec node --import tsx tools/scripts/start.ts
