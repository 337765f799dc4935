// The tests that `npm test` runs a second time on a Redis Cluster (3 primaries, 3 replicas, started
// by tools/scripts/test.sh with tools/scripts/redis-cluster.sh): REDIS_URL names the cluster, and
// each file runs as its project runs it. They are the ones whose Redis use a cluster changes: BullMQ
// under hash-tagged queue names, leases, Lua scripts over several keys (the bridge's
// quotas), sharded pub/sub across instances and processes, reconnects and resumes under churn.
const path = require('node:path');

const root = path.resolve(__dirname, '../..');
const only = (project, files) => ({ ...require(path.join(root, project, 'jest.config.js')), testMatch: files.map((f) => path.join(root, project, f)) });

module.exports = {
  // A global option (a project's own is not read when several run together): the longest any of them sets.
  testTimeout: 60_000,
  reporters: require(path.join(root, 'jest.preset.js')).reporters,
  projects: [
    only('libs/kit', ['test/queues.test.ts', 'test/lease.test.ts']),
    only('apps/runtime', ['test/resilience.test.ts', 'test/fanout.test.ts', 'test/turns-inputs.test.ts', 'test/budgets.test.ts', 'test/tail-crash.test.ts']),
    only('apps/observability', ['test/queue-ingest.test.ts', 'test/runtime.test.ts']),
    only('apps/bridge', ['test/requests.test.ts']),
    only('libs/client', ['test/survival.test.ts']),
    only('apps/gateway', ['test/mcp-instances.test.ts', 'test/e2e-runtime.test.ts']),
  ],
};
