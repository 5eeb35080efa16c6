#!/usr/bin/env bash
# Entrypoint of the kvmgate image.
#
#   run (default)   the capture worker and the FastCGI supervisor, supervised by
#                   scripts/stack.sh; `kvmgate init` runs first (migrations, and on the
#                   very first start the admin token, printed to the log once)
#   anything else   run as given, e.g. `kvmgate whoami` or `bash`
set -euo pipefail

if [ "${1:-run}" != run ]; then
  exec "$@"
fi

if [ -z "${DATABASE_URL:-}" ]; then
  echo "kvmgate: DATABASE_URL is not set; the image has no PostgreSQL of its own." >&2
  echo "kvmgate: set it to a libpq conninfo or URI, e.g. postgresql://kvmgate:secret@db/kvmgate" >&2
  exit 1
fi

var=${KVMGATE_VAR_DIR:-/var/lib/kvmgate}
if ! mkdir -p "$var/run" "$var/log" 2>/dev/null || [ ! -w "$var" ]; then
  echo "kvmgate: $var is not writable by uid $(id -u); chown the volume to it" >&2
  exit 1
fi
# Nothing else runs a stack in this container: a pid file left by a killed container
# would name a pid this new container may well reuse, and stack.sh would refuse to start.
rm -f "$var/run/stack.pid"

# With KVMGATE_LOG_STDERR=1 the processes reopen /dev/stderr. If the container's
# stderr belongs to another uid (a runtime that does not hand it to the container's
# user), that fails: relay through a pipe of our own instead.
if [ "${KVMGATE_LOG_STDERR:-0}" = 1 ] && ! [ -w /dev/stderr ]; then
  exec 2> >(exec cat >&2)
fi

exec /usr/share/kvmgate/scripts/stack.sh run
