#!/usr/bin/env bash
# npm run infra: make sure dependencies, Redis and PostgreSQL are there, and migrations applied.
# npm run infra -- up --redis-cluster[=BASE_PORT]: Redis is this checkout's Redis Cluster (3
# primaries, 3 replicas on 127.0.0.1:7101..7106, or BASE_PORT..+5) instead of the one Redis.
# npm run infra -- stop: stop the Redis (of REDIS_URL's port), the Redis Clusters and the
# PostgreSQL that this checkout started (under .data/); servers it did not start are left alone.
source "$(dirname "$0")/lib.sh"
usage() { die "usage: npm run infra [-- up [--redis-cluster[=BASE_PORT]] | stop]"; }
action=up cluster_base=""
for arg in "$@"; do
  case "$arg" in
    up|stop) action=$arg ;;
    --redis-cluster) cluster_base=$REDIS_CLUSTER_BASE ;;
    --redis-cluster=*) cluster_base=${arg#*=} ;;
    *) usage ;;
  esac
done
case "$action" in
  up)
    if [ -n "$cluster_base" ]; then
      ensure_redis_cluster "$cluster_base"
      REDIS_URL=$REDIS_CLUSTER_URL; export REDIS_URL
    fi
    ensure_stack
    say "Redis $(redact "$REDIS_URL") and PostgreSQL $(redact "$DATABASE_URL") ready"
    [ -z "$cluster_base" ] || say "the cluster's REDIS_URL, password included: bash tools/scripts/redis-cluster.sh url $cluster_base"
    ;;
  stop)
    [ -z "$cluster_base" ] || usage
    redis_stop
    for base in $(redis_cluster_bases); do redis_cluster_stop "$base"; done
    pg_stop
    ;;
esac
