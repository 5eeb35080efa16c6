#!/usr/bin/env bash
# nginx keeps idle connections to the FastCGI workers (scripts/render-nginx.sh
# sizes the pool). Requests reuse them; a worker dying on one costs no
# request; long calls holding every worker they may take still leave short
# calls a worker that accepts.
. "$(dirname "$0")/lib.sh"
trap finish EXIT

# The test build with the fixtures: test_long_operation holds a worker.
WORKERS=16 KVMGATE_FCGI_PROGRAM=$bin/../tests/kvmgate-fcgi-fixtures new_stack s ||
  { not_ok "stack starts"; exit 1; }
auth=(-H "Authorization: Bearer $s_token")
sup=$(stack_child "$s_var" kvmgate-fcgi)
procs=$(grep -oE '^worker_processes [0-9]+' "$s_var/nginx/kvmgate.conf" | awk '{print $2}')
keep=$(grep -oE 'keepalive [0-9]+;' "$s_var/nginx/kvmgate.conf" | awk '{print $2 + 0}')
[ -n "$keep" ] && [ "$keep" -ge 1 ] && [ $((keep * procs)) -lt 4 ]
check "16 workers: nginx keeps idle connections, fewer than a quarter of the workers in all" [ $? = 0 ]
check "and asks the workers to keep theirs open" grep -q 'fastcgi_keep_conn on;' "$s_var/nginx/fastcgi.conf"

# pids_of N: the worker pids that answered the last N requests (fcgi.log).
pids_of() { grep '"msg":"request"' "$s_var/log/fcgi.log" | tail -n "$1" | jq -r .pid | sort -u; }
for _ in $(seq 1 30); do curl -s -o /dev/null "$s_url/api/v1/me" "${auth[@]}"; done
n=$(pids_of 30 | wc -l)
check "30 requests one after another reuse nginx's kept connections (answered by $n workers, at most $procs)" \
  [ "$n" -le "$procs" ]

# The workers holding the kept connections die: nginx drops the dead
# connections and every request is still answered.
kill -KILL $(pids_of 5)
check "requests succeed after the workers holding the kept connections die (40/40)" \
  [ "$(count_ok 40 "$s_url/api/v1/me" "${auth[@]}")" = 40 ]
check "MCP calls too (POST, not retried by nginx: 20/20)" \
  [ "$(for _ in $(seq 1 20); do curl -s -o /dev/null -w '%{http_code}\n' "$s_url/mcp" "${auth[@]}" \
         -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
         -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"keepalive","version":"1"}}}'; done |
       grep -c '^200$')" = 20 ]

# Long calls take every worker they may (three quarters: 12 of 16); kept
# idle connections must not take the rest.
sid=$(curl -s -D - -o /dev/null "$s_url/mcp" "${auth[@]}" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' \
        -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"keepalive","version":"1"}}}' |
      tr -d '\r' | awk -F': ' 'tolower($1) == "mcp-session-id" { print $2 }')
long=()
for i in $(seq 1 12); do
  curl -s -o /dev/null -m 20 "$s_url/mcp" "${auth[@]}" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' -H "Mcp-Session-Id: $sid" \
    -H 'MCP-Protocol-Version: 2025-11-25' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":$((100 + i)),\"method\":\"tools/call\",\"params\":{\"name\":\"test_long_operation\",\"arguments\":{\"steps\":60},\"_meta\":{\"progressToken\":\"p$i\"}}}" &
  long+=($!)
done
sleep 1.5
short=$(count_ok 30 "$s_url/api/v1/me" "${auth[@]}")
running=0
for p in "${long[@]}"; do kill -0 "$p" 2>/dev/null && running=$((running + 1)); done
check "with 12 long calls running, 30 short calls are answered before any long one ends ($short/30, $running/12 still running)" \
  [ "$short/$running" = 30/12 ]
wait "${long[@]}" 2>/dev/null || true
