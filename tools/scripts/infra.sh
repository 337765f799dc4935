#!/usr/bin/env bash
# npm run infra: make sure dependencies, Redis and PostgreSQL are there, and migrations applied.
# npm run infra -- stop: stop the Redis (of REDIS_URL's port) and PostgreSQL that this checkout
# started (under .data/); servers it did not start are left alone.
source "$(dirname "$0")/lib.sh"
case "${1:-up}" in
  up)
    ensure_stack
    say "Redis $(redact "$REDIS_URL") and PostgreSQL $(redact "$DATABASE_URL") ready"
    ;;
  stop)
    redis_stop
    pg_stop
    ;;
  *) die "usage: npm run infra [-- up|stop]" ;;
esac
