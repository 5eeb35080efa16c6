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
# check WHAT CMD...: one test, passed when CMD succeeds; fails (status 1) when not,
# so that `check ... || diag ...` explains a failure. CMD is one command: for a
# compound condition run it first, then `check WHAT [ $? = 0 ]` (a `&& ...` after
# check's CMD would not be part of the test).
check()  { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; return 1; fi; }
# lacks TEXT PATTERN: TEXT has no line matching PATTERN (check's negation).
lacks()  { ! grep -q -- "$2" <<<"$1"; }
diag()   { echo "# $*"; }

# ---- NanoKVM simulators (tests/sim) -----------------------------------------

# The simulator of the build under test.
sim_bin=${KVMGATE_BIN_DIR%/bin}/tests/sim-nanokvm
[ -x "$sim_bin" ] || sim_bin=$top/build/release/tests/sim-nanokvm
sims=()

# run_sim NAME PORT ARGS...: a simulator on PORT with ARGS, its output in
# $work/NAME.out and .err; returns once it listens. Sets NAME_pid.
run_sim() {
  local name=$1 port=$2
  shift 2
  # Its libwebsockets leaks once at exit (tests/sim/lsan.supp).
  LSAN_OPTIONS=suppressions=$top/tests/sim/lsan.supp:print_suppressions=0 \
    "$sim_bin" --port "$port" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  sims+=($!)
  printf -v "${name}_pid" '%s' "$!"
  for _ in $(seq 1 50); do grep -qs "listening on 127.0.0.1:$port$" "$work/$name.out" && break; sleep 0.1; done
}

# with_sims NAME: $work, a directory for simulators' files, removed with the
# simulators and every stack when the test ends.
with_sims() {
  work=$(mktemp -d "/tmp/kvmgate-$1.XXXXXX")
  chmod 755 "$work"
  trap 'stop_sims; rm -rf "$work"; finish' EXIT
}

# stop_sims: stops every simulator run_sim started.
stop_sims() {
  local p
  for p in "${sims[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  sims=()
}

# Picks a TCP port nothing listens on.
# Below the kernel's ephemeral range (ip_local_port_range, 32768 up by default):
# a port picked from inside it can be taken as the local port of any outgoing
# connection (curl, wrk, a device session) before the server binds it.
free_port() {
  local p low
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$low" -gt 12000 ] 2>/dev/null || low=32768
  while :; do
    p=$(( 10000 + RANDOM % (low - 10010) ))	# room for a stack's port + 1..3
    ss -Hatn "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
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
    # What each process said last, so a start that fails once in a while
    # can be understood from the test output alone.
    for f in "$var"/log/*.log; do
      echo "--- ${f##*/}" >&2
      tail -n 8 "$f" >&2
    done
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

# ---- MCP over HTTP: requests go to $mcp with token $tok, session $sid and
# protocol version header $ver (each left out when empty); sql runs on the
# private cluster of stack "a".

# psql on the stack's private cluster.
sql() {
  local run=()
  [ "$(id -u)" -eq 0 ] && run=(runuser -u kvmgate --)
  "${run[@]}" psql -h "$a_var/pg/run" -U kvmgate -d kvmgate -XAtq -v ON_ERROR_STOP=1 -c "$1"
}

# jqc FILTER: jq -c on the last body.
jqc() { printf '%s' "$body" | jq -c "$1" 2>/dev/null; }

# quiet CMD...: runs CMD without its output.
quiet() { "$@" >/dev/null; }

# hdr NAME: the value of a header of the last response ("" when absent).
hdr() { grep -i "^$1:" <<<"$headers" | head -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'; }

# post BODY [curl args...]: POSTs a body with the token, no other header.
post() { local data=$1; shift; http POST "$mcp" -H "Authorization: Bearer $tok" --data-binary "$data" "$@"; }

# rpc BODY [curl args...]: POSTs one JSON-RPC message the way an MCP client
# does, with the current session ($sid) and protocol version header ($ver);
# $accept replaces the usual Accept header.
rpc() {
  local data=$1 args=(-H 'Content-Type: application/json' -H "Accept: ${accept:-application/json, text/event-stream}")
  shift
  [ -n "$sid" ] && args+=(-H "Mcp-Session-Id: $sid")
  [ -n "$ver" ] && args+=(-H "MCP-Protocol-Version: $ver")
  post "$data" "${args[@]}" "$@"
}

# call METHOD [PARAMS] [curl args...]: a JSON-RPC request with a fresh id.
rpc_id=0
call() {
  local method=$1 params=${2:-'{}'}
  shift 2 2>/dev/null || shift
  rpc_id=$((rpc_id + 1))
  rpc "{\"jsonrpc\":\"2.0\",\"id\":$rpc_id,\"method\":\"$method\",\"params\":$params}" "$@"
}

# tool NAME [ARGS]: tools/call.
tool() { local args=${2:-'{}'}; call tools/call "{\"name\":\"$1\",\"arguments\":$args}"; }

# expect_rpc_error STATUS CODE WHAT [MESSAGE]: a JSON-RPC error of that code.
expect_rpc_error() {
  local want=$1 code=$2 what=$3 msg=${4:-}
  if [ "$status" = "$want" ] && [ "$(jqr .jsonrpc)" = 2.0 ] && [ "$(jqr .error.code)" = "$code" ] &&
     [ -n "$(jqr .error.message)" ] && { [ -z "$msg" ] || [ "$(jqr .error.message)" = "$msg" ]; }; then
    ok "$what: $want $code"
  else
    not_ok "$what: want $want $code${msg:+ \"$msg\"}, got $status $body"
  fi
}

# init_body VERSION [CLIENT_NAME] [CAPABILITIES]: an initialize request.
init_body() {
  local caps=${3:-}
  [ -n "$caps" ] || caps='{"elicitation":{}}'
  printf '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"%s","capabilities":%s,"clientInfo":{"name":"%s","version":"1.0"}}}' \
    "$1" "$caps" "${2:-it-client}"
}

# open_session [CAPABILITIES]: initializes a fresh session into $sid and
# sends notifications/initialized.
open_session() {
  sid=
  rpc "$(init_body 2025-11-25 it-client "${1:-}")"
  sid=$(hdr Mcp-Session-Id)
  rpc '{"jsonrpc":"2.0","method":"notifications/initialized"}'
}

finish() {
  cleanup_stacks
  echo "1..$count"
  [ "$failures" -eq 0 ] || exit 1
  exit 0
}
