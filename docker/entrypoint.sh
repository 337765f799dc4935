#!/bin/sh
# Entry of every app image: with no command, the app's main bundle; otherwise the command given
# (e.g. `node dist/apps/runtime/worker.js`). `exec` replaces this shell with node, so the SIGTERM
# of `docker stop` reaches the app's graceful shutdown.
set -eu
: "${APP:?APP is not set (build with --build-arg APP=<app>)}"

# Apps that ship workflow files find them here unless told otherwise (bundled code cannot rely on
# its own directory: it runs from dist/apps/<app>).
if [ -z "${WORKFLOWS_DIR:-}" ] && [ -d "/repo/apps/$APP/workflows" ]; then
  export WORKFLOWS_DIR="/repo/apps/$APP/workflows"
fi

if [ "$#" -eq 0 ]; then
  set -- node "dist/apps/$APP/main.js"
fi
exec "$@"
