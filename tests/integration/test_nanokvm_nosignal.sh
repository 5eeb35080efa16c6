#!/usr/bin/env bash
# A NanoKVM whose host is switched off (no HDMI signal) stays connected: the
# session keeps streaming, reports no signal, does not log in or open the
# stream again and again, and a screenshot says "no signal" at once; when the
# host comes back its frames flow on the same session. For the firmware that
# reports the signal on /api/ws (capture-status) and on /api/vm/hdmi.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || { echo "# jq missing"; exit 77; }
with_sims nosig

# A short frame timeout: without a signal, several would pass during the test.
KVMGATE_FRAME_TIMEOUT_MS=2500 new_stack s || { not_ok "stack starts"; exit 1; }
mcp=$s_url/mcp tok=$s_token sid= ver=2025-11-25 accept=application/json
cli() { KVMGATE_VAR_DIR=$s_var "$bin/kvmgate" capture "$@"; }
sj() { curl -s "http://127.0.0.1:$1/sim/state" | jq -r "$2"; }
set_sim() {
  curl -s -X POST "http://127.0.0.1:$1/sim/set" -H 'Content-Type: application/json' --data "$2" >/dev/null
}
dev_state() { stack_sql "$s_var" "SELECT online || ' ' || session_state || ' ' || coalesce(hdmi_signal::text, '-') FROM device_state WHERE device_id = $1"; }
wait_for() { local t=$1; shift; for _ in $(seq 1 $((t * 10))); do "$@" && return 0; sleep 0.1; done; return 1; }
frame() { cli frame --device "$1" --out "$work/f.jpg" --timeout-ms 15000 "${@:2}" >/dev/null; }
sim_no_signal() { [ "$(sj "$1" .hdmi.signal)" = false ]; }
says_no_signal() { cli status --device "$1" | grep -q 'streaming.*no video signal'; }
signal_back() { [ "$(stack_sql "$s_var" "SELECT hdmi_signal FROM device_state WHERE device_id = $1")" = t ]; }
open_session

for fw in 2.5.0 head; do
  port=$(free_port)
  run_sim "sim_${fw//./_}" "$port" --firmware "$fw" --password pw --width 800 --height 600 --fps 10
  http POST "$s_url/api/v1/devices" -H "Authorization: Bearer $s_token" -H 'Content-Type: application/json' \
    --data-binary "{\"name\":\"kvm-$fw\",\"kind\":\"nanokvm\",\"url\":\"http://127.0.0.1:$port\",\"username\":\"admin\",\"password\":\"pw\",\"keep_warm\":true}"
  id=$(jqr .id)
  check "$fw: a first frame" frame "$id"

  set_sim "$port" '{"power":false}'
  check "$fw: the host off: the device reports no signal" wait_for 10 sim_no_signal "$port"
  check "$fw: the session says no signal and stays streaming" wait_for 10 says_no_signal "$id"
  logins=$(sj "$port" '.requests["/api/auth/login"] // 0')
  streams=$(sj "$port" '.requests["/api/stream/mjpeg"] // 0')
  sockets=$(sj "$port" '.requests["/api/ws"] // 0')
  sleep 6	# two frame timeouts and more
  check "$fw: over 6 s without a signal: no new login, stream or WebSocket" \
    [ "$(sj "$port" '[(.requests["/api/auth/login"] // 0), (.requests["/api/stream/mjpeg"] // 0), (.requests["/api/ws"] // 0)] | @csv')" = "$logins,$streams,$sockets" ]
  check "$fw: still online and streaming, no signal, in the database" [ "$(dev_state "$id")" = "true streaming false" ]
  t0=$SECONDS
  tool get_screenshot "{\"device\":\"kvm-$fw\"}"
  text=$(jqr '.result.content[0].text')
  check "$fw: a screenshot says no signal at once" \
    bash -c '[ "$1" = true ] && grep -q "no signal" <<<"$2" && [ "$3" -lt 3 ]' _ "$(jqr .result.isError)" "$text" $((SECONDS - t0))
  diag "$text"

  seq=$(cli status --device "$id" | sed -n 's/.* seq \([0-9]*\).*/\1/p')
  set_sim "$port" '{"power":true}'
  check "$fw: the host back: a new frame on the same session" \
    frame "$id" --after "${seq:-0}"
  check "$fw: without a new login" [ "$(sj "$port" '.requests["/api/auth/login"] // 0')" = "$logins" ]
  check "$fw: the signal is back in the database" wait_for 10 signal_back "$id"
done
