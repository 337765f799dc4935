#!/usr/bin/env bash
# npm run db:migrate -- <app> <name>: create a migration from the app's schema.prisma changes and
# apply it. With no arguments: apply every app's pending migrations.
source "$(dirname "$0")/lib.sh"
ensure_deps
ensure_postgres
if [ $# -ge 2 ]; then
  cd "$ROOT/apps/$1"
  DATABASE_URL="$(app_database_url "$1")" "$ROOT/node_modules/.bin/prisma" migrate dev --name "$2"
else
  prisma_generate
  prisma_migrate
fi
