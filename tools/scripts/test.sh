#!/usr/bin/env bash
# npm test: dependencies, Redis and PostgreSQL, generated Prisma clients, then every project's
# type check, lint and tests (real Redis and PostgreSQL; each test file owns its keys and schema),
# then the scripts' own test (the real `npm start`, stopped by a signal) and `npm run chat`'s when no
# project is chosen.
source "$(dirname "$0")/lib.sh"
ensure_stack
ensure_chromium
cd "$ROOT"
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
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
fi
