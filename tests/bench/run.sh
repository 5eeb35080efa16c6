#!/usr/bin/env bash
# make bench: starts a release stack on a free port and measures it with wrk
# (keep-alive, 2 threads). Prints requests/s and p50/p99 latency per route, for
# the default 16 workers and for a single worker, and the ratio between them;
# audited list_devices calls from 1 and 8 clients with the chain verified after;
# then the audit chain's append and verification rates (BENCH_AUDIT_EVENTS).
# Figures, not assertions: nothing here fails on a slow machine.
set -euo pipefail
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
export KVMGATE_BIN_DIR=$top/bin
duration=${BENCH_SECONDS:-5}
conns=${BENCH_CONNECTIONS:-16}
trap 'cleanup_stacks' EXIT

command -v wrk >/dev/null || { echo "wrk is missing (scripts/deps.sh test installs it)"; exit 1; }
[ "${BENCH_ONLY:-}" != vnc ] || exec "$(dirname "$0")/vnc.sh"

# start_sim: a NanoKVM simulator (1920x1080, 5 frames/s) on $sim_port, its
# output in a file of its own, stopped with the stacks; stop_sim ends it.
start_sim() {
  sim_port=$(free_port)
  "$top/build/release/tests/sim-nanokvm" --port "$sim_port" --password admin --fps 5 \
    >/tmp/kvmgate-bench-sim.$$ 2>&1 &
  sim_pid=$!
  trap 'kill $sim_pid 2>/dev/null || true; rm -f /tmp/kvmgate-bench-sim.$$; cleanup_stacks' EXIT
  for _ in $(seq 1 50); do grep -qs "^listening" /tmp/kvmgate-bench-sim.$$ && break; sleep 0.1; done
}
stop_sim() { kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null || true; }
# add_sim NAME: the simulator as device NAME of stack s.
add_sim() {
  curl -s "$s_url/api/v1/devices" -H "Authorization: Bearer $s_token" -H 'Content-Type: application/json' \
    -d "{\"name\":\"$1\",\"kind\":\"nanokvm\",\"url\":\"http://127.0.0.1:$sim_port\",\"username\":\"admin\",\"password\":\"admin\"}" >/dev/null
}


# audited CLIENTS: MCP tools/call list_devices from CLIENTS connections, each
# call writing its audit event; prints "calls/s p50 p99 cpu_us steal events
# per_batch batch_ms wait_ms chain" (events per appender transaction, the
# appender's mean time writing one, the workers' mean wait for their event's
# commit, from /metrics).
audit_metrics() {
  curl -s "$s_url/metrics" | awk '$1 ~ /^kvmgate_audit_(batches_total|batch_events_total|batch_seconds_total|wait_seconds_sum|wait_seconds_count)$/ { printf "%s ", $2 }'
}
audited_calls() {
  local n0 n1 out m0 m1
  n0=$(stack_sql "$s_var" "SELECT count(*) FROM audit_events")
  m0=$(audit_metrics)
  out=$(conns=$1 measure "$s_url/mcp" "$(mcp_script "$s_var" "$s_url" "$s_token" '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_devices","arguments":{}}}')")
  m1=$(audit_metrics)
  n1=$(stack_sql "$s_var" "SELECT count(*) FROM audit_events")
  echo "$out $((n1 - n0)) $(awk -v a="$m0" -v b="$m1" 'BEGIN { split(a, x); split(b, y)
      printf "%.1f %.2f %.2f", (y[2] - x[2]) / (y[1] - x[1]), (y[3] - x[3]) / (y[1] - x[1]) * 1000,
        (y[4] - x[4]) / (y[5] - x[5]) * 1000 }') \
    $(KVMGATE_VAR_DIR=$s_var "$KVMGATE_BIN_DIR/kvmgate" audit verify >/dev/null && echo intact || echo BROKEN)"
}

if [ -z "${BENCH_ONLY:-}" ]; then
printf '%-34s %8s %10s %9s %9s\n' route workers "req/s" "p50 ms" "p99 ms"
declare -A rps
for w in 16 1; do
  WORKERS=$w new_stack s >/dev/null
  for route in "/index.html (nginx static)|/index.html|" \
               "/metrics (no I/O)|/metrics|" \
               "/api/v1/me (token lookup in PG)|/api/v1/me|Authorization: Bearer $s_token" \
               "/healthz (PG + capture ping)|/healthz|" \
               "MCP ping|/mcp|$(mcp_script "$s_var" "$s_url" "$s_token" '{"jsonrpc":"2.0","id":2,"method":"ping"}')" \
               "MCP tools/call list_devices|/mcp|$(mcp_script "$s_var" "$s_url" "$s_token" '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_devices","arguments":{}}}')"; do
    IFS='|' read -r name path hdr <<<"$route"
    read -r r p50 p99 _ < <(measure "$s_url$path" "$hdr")
    rps["$name/$w"]=$r
    printf '%-34s %8s %10s %9s %9s\n' "$name" "$w" "$r" "$p50" "$p99"
  done
  stack_cmd "$s_var" "$s_port" stop >/dev/null 2>&1
done
echo
echo "scaling, 16 workers vs 1 (same machine, same run):"
for name in "/metrics (no I/O)" "/api/v1/me (token lookup in PG)" "/healthz (PG + capture ping)" \
            "MCP ping" "MCP tools/call list_devices"; do
  awk -v a="${rps[$name/16]}" -v b="${rps[$name/1]}" -v n="$name" \
    'BEGIN { printf "  %-34s %.2fx\n", n, a / b }'
done
echo "($(nproc) cores, wrk -t2 -c$conns -d${duration}s, keep-alive to nginx, FastCGI over a unix socket)"

fi

# Screenshots: warm get_screenshot over MCP through nginx on the NanoKVM
# simulator's 1920x1080 JPEG, passed through and with crop + scale + enhance;
# then the cold first screenshot of a device whose session is not open.
if [ -z "${BENCH_ONLY:-}" ] || [ "${BENCH_ONLY:-}" = screenshot ]; then
start_sim
WORKERS=16 new_stack s >/dev/null
# shot_call ARGS: one get_screenshot on a fresh session; prints seconds and the image's size.
shot_call() {
  local sid
  sid=$(curl -s -D - -o /dev/null "$s_url/mcp" -H "Authorization: Bearer $s_token" \
          -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
          -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}' |
        tr -d '\r' | awk -F': ' 'tolower($1) == "mcp-session-id" { print $2 }')
  curl -s -o /tmp/kvmgate-bench-shot.$$ -w '%{time_total}' "$s_url/mcp" -H "Authorization: Bearer $s_token" \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H "Mcp-Session-Id: $sid" -H 'MCP-Protocol-Version: 2025-11-25' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"get_screenshot\",\"arguments\":$1}}"
  echo " $(jq -r '.result.content[0].text' /tmp/kvmgate-bench-shot.$$ | cut -d' ' -f2-3)"
  rm -f /tmp/kvmgate-bench-shot.$$
}
add_sim cold-1
read -r cold what < <(shot_call '{"device":"cold-1"}')
echo
echo "get_screenshot over MCP via nginx, NanoKVM simulator 1920x1080 JPEG, 16 workers:"
printf '  %-44s %8s ms  (%s; login and first frame of the simulator, delays as on the device)\n' \
  "cold: first screenshot, session not open" "$(awk -v t="$cold" 'BEGIN { printf "%.0f", t * 1000 }')" "$what"
printf '  %-44s %8s %9s %9s\n' "warm (max_age_ms 60000: the frame in memory)" "calls/s" "p50 ms" "p99 ms"
for c in 1 8; do
  for variant in 'passthrough|{"device":"cold-1","max_age_ms":60000}' \
                 'crop + scale + enhance|{"device":"cold-1","max_age_ms":60000,"region":{"x":0,"y":0,"width":1600,"height":900},"max_width":1024,"enhance":"llm"}' \
                 'PNG, section 7 scale|{"device":"cold-1","max_age_ms":60000,"format":"png"}'; do
    IFS='|' read -r name args <<<"$variant"
    read -r r p50 p99 _ < <(conns=$c measure "$s_url/mcp" "$(mcp_script "$s_var" "$s_url" "$s_token" "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"get_screenshot\",\"arguments\":$args}}")")
    printf '  %-44s %8s %9s %9s\n' "$name, $c client$([ "$c" = 1 ] || echo s)" "$r" "$p50" "$p99"
  done
done
read -r t what < <(shot_call '{"device":"cold-1","max_age_ms":60000}')
printf '  %-44s %s\n' "one passthrough answer" "$what"
stack_cmd "$s_var" "$s_port" stop >/dev/null 2>&1
stop_sim
[ "${BENCH_ONLY:-}" != screenshot ] || exit 0
fi

# OCR: read_screen_text over MCP via nginx on the simulator's 1920x1080 screen
# with a few lines of text, the whole screen and a region of it; one worker, so
# every call after the first finds its Tesseract engine loaded. The one-time
# load is what the first call of a fresh worker reports (ocr_init_ms).
if [ -z "${BENCH_ONLY:-}" ] || [ "${BENCH_ONLY:-}" = ocr ]; then
start_sim
echo
echo "read_screen_text over MCP via nginx, NanoKVM simulator 1920x1080, 1 worker:"
inits=()
for run in 1 2 3; do
  WORKERS=1 new_stack s >/dev/null
  add_sim ocr-1
  [ "$run" -gt 1 ] || curl -s "$s_url/api/v1/devices/ocr-1/text" -H "Authorization: Bearer $s_token" \
    -H 'Content-Type: application/json' \
    -d '{"text":"kvmgate login: root\nPassword:\nroot@srv-01:~# uname -a\nLinux srv-01 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian x86_64 GNU/Linux\nroot@srv-01:~# echo kernel rabbit castle\nkernel rabbit castle\n"}' >/dev/null
  inits+=("$(curl -s "$s_url/api/v1/devices/ocr-1/screen/text" -H "Authorization: Bearer $s_token" | jq -r .ocr_init_ms)")
  [ "$run" = 3 ] || stack_cmd "$s_var" "$s_port" stop >/dev/null 2>&1
done
printf '  %-44s %s ms  (first call of a fresh worker, 3 stacks)\n' "Tesseract engine load (eng)" "${inits[*]}"
printf '  %-44s %9s %9s\n' "warm (engine loaded, max_age_ms 60000)" "p50 ms" "p99 ms"
for variant in 'whole screen 1920x1080 (OCR at 2x)|{"device":"ocr-1","max_age_ms":60000}' \
               'region 960x160 (OCR at 3x)|{"device":"ocr-1","max_age_ms":60000,"region":{"x":0,"y":0,"width":960,"height":160}}'; do
  IFS='|' read -r name args <<<"$variant"
  read -r r p50 p99 _ < <(conns=1 wrk_timeout=30s duration=${BENCH_OCR_SECONDS:-20} measure "$s_url/mcp" "$(mcp_script "$s_var" "$s_url" "$s_token" "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"read_screen_text\",\"arguments\":$args}}")")
  printf '  %-44s %9s %9s\n' "$name" "$p50" "$p99"
done
echo "  ($(nproc) cores, wrk -t1 -c1 -d${BENCH_OCR_SECONDS:-20}s; Tesseract $(pkg-config --modversion tesseract 2>/dev/null))"
stack_cmd "$s_var" "$s_port" stop >/dev/null 2>&1
stop_sim
[ "${BENCH_ONLY:-}" != ocr ] || exit 0
fi

# Audited tool calls: every list_devices call appends its event to the chain
# (one transaction under the organisation's lock); the chain is verified after.
WORKERS=16 new_stack s >/dev/null
echo
echo "audited MCP tools/call list_devices (16 workers; one audit event per call):"
printf '  %-8s %8s %7s %7s %7s %8s %6s %8s %6s %8s %7s %s\n' clients "calls/s" "p50 ms" "p99 ms" \
  "CPU us" "2 cores" steal events batch "batch ms" "wait ms" chain
for c in 1 8; do
  read -r r p50 p99 cpu steal ev batch batch_ms wait chain < <(audited_calls "$c")
  printf '  %-8s %8s %7s %7s %7s %8s %5s%% %8s %6s %8s %7s %s\n' "$c" "$r" "$p50" "$p99" "$cpu" \
    "$(( cpu > 0 ? 2000000 / cpu : 0 ))" "$steal" "$ev" "$batch" "$batch_ms" "$wait" "$chain"
done
echo "  (CPU us: the whole machine's busy CPU time per call, wrk included; 2 cores: the"
echo "   calls/s that much CPU allows on two whole cores; steal: CPU time the hypervisor"
echo "   took for other guests during the run, which the measured rate lost; batch: events"
echo "   per appender transaction; batch ms: the appender's mean time writing one; wait: a"
echo "   worker's mean wait for its event's commit)"
stack_cmd "$s_var" "$s_port" stop >/dev/null 2>&1
[ "${BENCH_ONLY:-}" != audited ] || exit 0

# The audit chain: appends from 8 clients at once (each its own connection,
# one transaction per event), then verification of the whole chain from
# PostgreSQL and of its export without a database.
audit_events=${BENCH_AUDIT_EVENTS:-100000}
new_stack au >/dev/null
kv() { KVMGATE_VAR_DIR=$au_var "$KVMGATE_BIN_DIR/kvmgate" "$@"; }
# rate COUNT START_NS: COUNT per second since START_NS.
rate() { awk -v n="$1" -v t="$(( $(date +%s%N) - $2 ))" 'BEGIN { printf "%.0f", n / (t / 1e9) }'; }
echo
echo "audit chain, $audit_events events:"
t0=$(date +%s%N)
for i in 1 2 3 4 5 6 7 8; do
  kv audit append --action bench --count $(( audit_events / 8 )) \
    --args '{"device":"rack-1","text":"ls -la /var/log","password":"x"}' >/dev/null &
done
wait
printf '  %-34s %10s events/s\n' "append, 8 clients" "$(rate "$audit_events" "$t0")"
t0=$(date +%s%N)
kv audit verify >/dev/null
printf '  %-34s %10s events/s\n' "verify from PostgreSQL" "$(rate "$audit_events" "$t0")"
t0=$(date +%s%N)
kv audit export >"$au_var/export.jsonl"
printf '  %-34s %10s events/s  (%s MB)\n' "export" "$(rate "$audit_events" "$t0")" \
  "$(( $(stat -c %s "$au_var/export.jsonl") / 1048576 ))"
t0=$(date +%s%N)
kv audit verify --file "$au_var/export.jsonl" >/dev/null
printf '  %-34s %10s events/s\n' "verify an export (no database)" "$(rate "$audit_events" "$t0")"
stack_cmd "$au_var" "$au_port" stop >/dev/null 2>&1

# The capture worker with 50 and 200 simulated devices streaming.
bash "$(dirname "$0")/fleet.sh"

# The vnc driver against Xvnc (tests/bench/vnc.sh; BENCH_ONLY=vnc runs it alone).
"$(dirname "$0")/vnc.sh"
