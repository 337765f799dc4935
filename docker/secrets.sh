#!/bin/sh
# The passwords of the compose stack's Redis and PostgreSQL, written once into docker/.secrets/
# (not committed, not in the build context) and kept: compose.yaml hands them to Redis, PostgreSQL,
# the migration job and the apps as secrets. Run it once before the first `docker compose up`:
#
#   sh docker/secrets.sh
#
# Compose bind-mounts a file secret as it is on the host (outside Swarm it takes no uid or mode),
# and the apps run as the image's `node` user: the files are readable by all (644) inside a
# directory only you can enter (700).
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/.secrets"
(umask 077 && mkdir -p "$dir")
chmod 700 "$dir"
for name in redis_password postgres_password; do
  [ -s "$dir/$name" ] && continue
  # 32 random bytes, URL-safe base64: usable in a URL as it is.
  head -c 32 /dev/urandom | base64 | tr -d '\n=' | tr '+/' '-_' >"$dir/$name.tmp"
  chmod 644 "$dir/$name.tmp"
  mv "$dir/$name.tmp" "$dir/$name"
  echo "wrote $dir/$name"
done
