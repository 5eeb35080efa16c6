#!/usr/bin/env bash
# Installs the Debian packages kvmgate needs to build, run or test, and nothing else.
# Usage: scripts/deps.sh [build|run|test]   (each set includes the ones before it)
# As root it runs apt-get; otherwise it prints the exact command to run and fails.
set -euo pipefail

build=(build-essential pkg-config libfcgi-dev libcurl4-openssl-dev libjson-c-dev
       libssl-dev libwebsockets-dev libpq-dev libturbojpeg0-dev zlib1g-dev check libtesseract-dev)
run=(postgresql nginx-light procps iproute2 curl ca-certificates jq tesseract-ocr-eng
     tigervnc-standalone-server tigervnc-tools xterm)
test=(wrk docker-compose clang libclang-rt-14-dev nodejs npm chromium)

# Packages that count as present when their command is on PATH, whoever installed
# it: NodeSource's nodejs brings its own npm and conflicts with Debian's, so npm
# must not be installed next to it. (tests/e2e runs its clients on the Node 22
# that scripts/e2e-deps.sh installs from npm; any node and npm do for that.)
declare -A command_of=([nodejs]=node [npm]=npm)

want=("${build[@]}")
case "${1:-run}" in
  build) ;;
  run)  want+=("${run[@]}") ;;
  test) want+=("${run[@]}" "${test[@]}") ;;
  *) echo "usage: $0 [build|run|test]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  [ -n "${command_of[$p]:-}" ] && command -v "${command_of[$p]}" >/dev/null && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "kvmgate needs these Debian packages: ${missing[*]}" >&2
  echo "Install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's postgresql package also sets up a system cluster; kvmgate never uses it and
# runs its own private cluster under KVMGATE_VAR_DIR (scripts/stack.sh).
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
