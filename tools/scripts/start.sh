#!/usr/bin/env bash
# npm start: dependencies, Redis and PostgreSQL (installed and started when missing), migrations,
# then every service. Ctrl-C stops what this command started.
source "$(dirname "$0")/lib.sh"
ensure_deps
REDIS_WAS_UP=0; redis_up && REDIS_WAS_UP=1
PG_WAS_UP=0; pg_up && PG_WAS_UP=1
ensure_redis
ensure_postgres
prisma_generate
prisma_migrate
cleanup() {
  [ "$REDIS_WAS_UP" = 1 ] || { [ -f "$DATA/redis/redis.pid" ] && kill "$(cat "$DATA/redis/redis.pid")" 2>/dev/null || true; }
  [ "$PG_WAS_UP" = 1 ] || pg_stop
}
trap cleanup EXIT
cd "$ROOT"
node_modules/.bin/tsx tools/scripts/start.ts
