# lib.sh - helpers for integration tests: a real stack (private PostgreSQL,
# nginx, kvmgate-capture, kvmgate-fcgi) on a free port in a temporary var dir,
# and TAP-style checks. Sourced by tests/integration/test_*.sh.
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${KVMGATE_BIN_DIR:-$top/bin}
export KVMGATE_BIN_DIR=$bin
failures=0
count=0
stacks=()

ok()     { count=$((count + 1)); echo "ok $count - $*"; }
not_ok() { count=$((count + 1)); failures=$((failures + 1)); echo "not ok $count - $*"; }
check()  { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
diag()   { echo "# $*"; }

# Picks a TCP port nothing listens on.
free_port() {
  local p
  while :; do
    p=$(( 20000 + RANDOM % 40000 ))
    ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
  done
}

# new_stack NAME: sets NAME_var, NAME_port, NAME_url, NAME_token for a stack
# in a fresh var dir, started in the background. Extra environment is passed on.
new_stack() {
  local name=$1 var port
  var=$(mktemp -d /tmp/kvmgate-it.XXXXXX)
  chmod 755 "$var"	# the PostgreSQL user must reach it when tests run as root
  port=$(free_port)
  stacks+=("$var")
  printf -v "${name}_var" '%s' "$var"
  printf -v "${name}_port" '%s' "$port"
  printf -v "${name}_url" '%s' "http://127.0.0.1:$port"
  if ! KVMGATE_VAR_DIR=$var KVMGATE_PORT=$port KVMGATE_WORKERS=${WORKERS:-4} \
       "$top/scripts/stack.sh" start >"$var/start.out" 2>&1; then
    cat "$var/start.out" >&2
    return 1
  fi
  printf -v "${name}_token" '%s' "$(cat "$var/admin-token")"
}

# stack_cmd VAR_DIR PORT args...: runs scripts/stack.sh for that stack.
stack_cmd() {
  local var=$1 port=$2
  shift 2
  KVMGATE_VAR_DIR=$var KVMGATE_PORT=$port "$top/scripts/stack.sh" "$@"
}

# stack_sql VAR_DIR SQL: runs SQL with psql on that stack's private cluster.
stack_sql() {
  local run=()
  [ "$(id -u)" -eq 0 ] && run=(runuser -u kvmgate --)
  "${run[@]}" psql -h "$1/pg/run" -U kvmgate -d kvmgate -XAtq -v ON_ERROR_STOP=1 -c "$2"
}

# Stops every stack this test started, reports sanitizer findings, removes them.
cleanup_stacks() {
  local v
  for v in "${stacks[@]}"; do
    KVMGATE_VAR_DIR=$v "$top/scripts/stack.sh" stop >/dev/null 2>&1
    if grep -l -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$v"/log/*.log 2>/dev/null; then
      not_ok "no sanitizer report in $v/log"
      grep -h -A 30 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$v"/log/*.log | head -60
    fi
    [ "${KEEP_STACKS:-0}" = 1 ] || rm -rf "$v"
  done
}

# http METHOD URL [curl args...]: sets status, body (and headers in $hdrs).
http() {
  local method=$1 url=$2 out
  shift 2
  out=$(mktemp)
  hdrs=$(mktemp)
  status=$(curl -s -o "$out" -D "$hdrs" -w '%{http_code}' -X "$method" "$url" "$@")
  body=$(cat "$out")
  headers=$(cat "$hdrs")
  rm -f "$out" "$hdrs"
}

# count_ok N URL [curl args...]: how many of N GETs answer 200.
count_ok() {
  local n=$1 url=$2 good=0
  shift 2
  for _ in $(seq 1 "$n"); do
    http GET "$url" "$@"
    [ "$status" = 200 ] && good=$((good + 1))
  done
  echo "$good"
}

# jqr FILTER: runs jq on the last body.
jqr() { printf '%s' "$body" | jq -r "$1" 2>/dev/null; }

# expect_error STATUS CODE WHAT: the last response is a JSON error of that kind.
expect_error() {
  local want=$1 code=$2 what=$3
  if [ "$status" = "$want" ] && [ "$(jqr .error.code)" = "$code" ] &&
     [ -n "$(jqr .error.message)" ]; then
    ok "$what: $want $code"
  else
    not_ok "$what: want $want $code, got $status $body"
  fi
}

# stack_child VAR_DIR NAME: pid of the stack's process called NAME (kvmgate-fcgi, ...).
stack_child() { pgrep -P "$(cat "$1/run/stack.pid")" -x "$2"; }

# no_process PATTERN: nothing runs whose command line contains PATTERN.
no_process() { ! pgrep -f -- "$1" >/dev/null; }

finish() {
  cleanup_stacks
  echo "1..$count"
  [ "$failures" -eq 0 ] || exit 1
  exit 0
}
