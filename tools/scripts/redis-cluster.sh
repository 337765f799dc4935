#!/usr/bin/env bash
# A local Redis Cluster of this checkout (3 primaries, 3 replicas on 127.0.0.1, ports base..base+5,
# files under .data/redis-cluster-<base>/, the generated Redis password), for `npm start --
# --redis-cluster` and for tests that want a throwaway cluster of their own (another base port).
# Logs go to stderr; what a caller reads is stdout's last line.
#
#   bash tools/scripts/redis-cluster.sh up [base_port]       start (or create) it; prints its REDIS_URL
#   bash tools/scripts/redis-cluster.sh url [base_port]      prints its REDIS_URL (started or not)
#   bash tools/scripts/redis-cluster.sh stop [base_port]     stops its nodes (data kept: `up` restarts it)
#   bash tools/scripts/redis-cluster.sh reset [base_port]    stops it and removes its data
#   bash tools/scripts/redis-cluster.sh nodes [base_port]    "port pid" of each running node
#   bash tools/scripts/redis-cluster.sh primary <slot|key> [base_port]   "port pid" of the slot's primary
#
# base_port defaults to 7101. The URL (redis+cluster://:<password>@127.0.0.1:<base>,...) holds the
# password: print it only where it may be read.
source "$(dirname "$0")/lib.sh"
usage() { die "usage: bash tools/scripts/redis-cluster.sh up|url|stop|reset|nodes [base_port] | primary <slot|key> [base_port]"; }
cmd="${1:-}"
[ $# -ge 1 ] || usage
if [ "$cmd" = primary ]; then
  [ $# -ge 2 ] && [ $# -le 3 ] || usage
  base="${3:-$REDIS_CLUSTER_BASE}"
else
  [ $# -le 2 ] || usage
  base="${2:-$REDIS_CLUSTER_BASE}"
fi
redis_cluster_check_base "$base"
case "$cmd" in
  up)
    ensure_redis_cluster "$base"
    say "Redis Cluster on 127.0.0.1:$base..$((base + 5)) ready"
    echo "$REDIS_CLUSTER_URL"
    ;;
  url) redis_cluster_url "$base" ;;
  stop) redis_cluster_stop "$base" ;;
  reset)
    redis_cluster_stop "$base"
    say "removing $(redis_cluster_dir "$base")"
    rm -rf "$(redis_cluster_dir "$base")"
    ;;
  nodes) redis_cluster_nodes "$base" ;;
  primary) redis_cluster_primary "$2" "$base" ;;
  *) usage ;;
esac
