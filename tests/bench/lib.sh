# lib.sh - what the bench scripts share: wrk scripts for MCP calls and one
# measurement. Sourced after tests/integration/lib.sh; uses $conns and $duration.

# mcp_script VAR URL TOKEN BODY: writes a wrk script POSTing one JSON-RPC message
# on a fresh MCP session, in a file of its own (several are made before any runs).
mcp_script() {
  local var=$1 url=$2 token=$3 body=$4 sid lua
  lua=$(mktemp "$var/bench-XXXXXX.lua")
  sid=$(curl -s -D - -o /dev/null "$url/mcp" -H "Authorization: Bearer $token" \
          -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
          -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}' |
        tr -d '\r' | awk -F': ' 'tolower($1) == "mcp-session-id" { print $2 }')
  cat >"$lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Mcp-Session-Id"] = "$sid"
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
LUA
  echo "$lua"
}

# machine_ticks: the machine's busy and stolen time so far, in clock ticks: "busy steal".
# Busy is user + nice + system + irq + softirq of every process (wrk included).
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat; }

# measure URL [header-or-lua-script]: prints "req/s p50_ms p99_ms cpu_us steal_pct":
# cpu_us is the whole machine's busy CPU time per request (the cost of one
# request however fast the machine is; 2 cores serve at most 2,000,000/cpu_us
# per second), steal_pct the share of the run's CPU time the hypervisor gave
# to other guests (rates fall by that much). $wrk_timeout (default 2s) is how
# long wrk waits for one answer.
measure() {
  local url=$1 hdr=${2:-} out args=() t0 t1 hz
  case "$hdr" in
    *.lua) args=(-s "$hdr") ;;
    ?*)    args=(-H "$hdr") ;;
  esac
  # Warm-up: every worker opens its PostgreSQL connection and prepares its
  # statements before anything is counted.
  wrk -t"$(( conns < 2 ? 1 : 2 ))" -c"$conns" -d1s --timeout "${wrk_timeout:-2s}" "${args[@]}" "$url" >/dev/null
  t0=$(machine_ticks)
  out=$(wrk -t"$(( conns < 2 ? 1 : 2 ))" -c"$conns" -d"${duration}s" --timeout "${wrk_timeout:-2s}" --latency "${args[@]}" "$url")
  t1=$(machine_ticks)
  hz=$(getconf CLK_TCK)
  if grep -q 'Non-2xx' <<<"$out"; then echo "non-2xx answers: $out" >&2; exit 1; fi
  awk -v t0="$t0" -v t1="$t1" -v hz="$hz" -v secs="$duration" -v cores="$(nproc)" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /^Requests\/sec/ { rps = $2 }
    /requests in/ { n = $1 }
    END {
      split(t0, a, " "); split(t1, b, " ")
      printf "%.0f %.2f %.2f %.0f %.0f\n", rps, p50, p99,
        (n > 0 ? (b[1] - a[1]) / hz * 1e6 / n : 0), (b[2] - a[2]) / hz / (secs * cores) * 100
    }' <<<"$out"
}
