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

# measure URL [header-or-lua-script]: prints "req/s p50_ms p99_ms"; $wrk_timeout
# (default 2s) is how long wrk waits for one answer.
measure() {
  local url=$1 hdr=${2:-} out args=()
  case "$hdr" in
    *.lua) args=(-s "$hdr") ;;
    ?*)    args=(-H "$hdr") ;;
  esac
  # Warm-up: every worker opens its PostgreSQL connection and prepares its
  # statements before anything is counted.
  wrk -t"$(( conns < 2 ? 1 : 2 ))" -c"$conns" -d1s --timeout "${wrk_timeout:-2s}" "${args[@]}" "$url" >/dev/null
  out=$(wrk -t"$(( conns < 2 ? 1 : 2 ))" -c"$conns" -d"${duration}s" --timeout "${wrk_timeout:-2s}" --latency "${args[@]}" "$url")
  if grep -q 'Non-2xx' <<<"$out"; then echo "non-2xx answers: $out" >&2; exit 1; fi
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /^Requests\/sec/ { rps = $2 }
    END { printf "%.0f %.2f %.2f\n", rps, p50, p99 }' <<<"$out"
}
