#!/usr/bin/env bash
# Make sure dependencies, Redis and PostgreSQL are there, and migrations applied.
source "$(dirname "$0")/lib.sh"
ensure_deps
ensure_redis
ensure_postgres
prisma_generate
prisma_migrate
say "Redis $REDIS_URL and PostgreSQL ready"
