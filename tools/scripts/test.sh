#!/usr/bin/env bash
# npm test: dependencies, Redis and PostgreSQL, generated Prisma clients, then every project's
# type check, lint and tests (real Redis and PostgreSQL; each test file owns its keys and schema),
# then the scripts' own test (the real `npm start`, stopped by a signal), `npm run chat`'s, the
# timeline-tail pass and the Redis Cluster pass when no project is chosen.
source "$(dirname "$0")/lib.sh"
ensure_stack
ensure_chromium
cd "$ROOT"
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
# Every failed test, appended by jest's failure reporter (tools/scripts/failure-reporter.js) and
# printed once more at the end, however the run ends: the streamed log interleaves two projects.
export TESSERA_TEST_FAILURES="$DATA/test-failures.txt"
: >"$TESSERA_TEST_FAILURES"
cluster_port=""
on_exit() {
  if [ -n "$cluster_port" ]; then bash tools/scripts/redis-cluster.sh stop "$cluster_port" >/dev/null 2>&1 || true; fi
  if [ -s "$TESSERA_TEST_FAILURES" ]; then
    echo
    echo "==== failed tests ($TESSERA_TEST_FAILURES) ===="
    cat "$TESSERA_TEST_FAILURES"
  fi
}
trap on_exit EXIT
# Two projects at a time: a type check is one core's work, and most test time is waiting on real
# processes, sockets and timers; each project's tests still run one file at a time.
node_modules/.bin/nx run-many -t typecheck lint --parallel=2 --outputStyle=stream "$@"
node_modules/.bin/nx run-many -t test --parallel=2 --outputStyle=stream "$@"
if [ $# -eq 0 ]; then
  node_modules/.bin/tsc -p tools/scripts/tsconfig.json
  node_modules/.bin/tsc -p tools/chat/tsconfig.json
  node_modules/.bin/eslint tools/scripts tools/chat
  node_modules/.bin/jest -c tools/scripts/jest.config.js
  node_modules/.bin/jest -c tools/chat/jest.config.js
  # Again with the timeline's tail on (EVENT_TAIL=on; tail*.test.ts set it themselves): the runtime
  # tests of crashed and stopped workers, a Redis killed mid-burst (with `appendfsync always`, the
  # tail's setting), re-runs, stops, races on one chat and fan-out.
  EVENT_TAIL=on node_modules/.bin/jest -c apps/runtime/jest.config.js -i apps/runtime/test/resilience.test.ts apps/runtime/test/redis-crash.test.ts apps/runtime/test/turns-rerun.test.ts apps/runtime/test/turns-stop.test.ts apps/runtime/test/timeline.test.ts apps/runtime/test/fanout.test.ts
  # Again on a Redis Cluster (3 primaries, 3 replicas, on ports 7111-7116): the tests whose Redis
  # use a cluster changes (tools/scripts/cluster.jest.config.js says which), with REDIS_URL naming it.
  # Stopped however the pass ends (a failing test exits here at once).
  cluster_port=7111
  cluster_url=$(bash tools/scripts/redis-cluster.sh up "$cluster_port" | tail -1)
  REDIS_URL="$cluster_url" node_modules/.bin/jest -c tools/scripts/cluster.jest.config.js -i
fi
