#!/usr/bin/env bash
# The capture worker with a fleet streaming: BENCH_FLEET (default "50 200")
# simulated NanoKVMs (640x480, BENCH_FLEET_FPS frames/s each, default 5),
# every one with an open session; prints the capture worker's CPU (per cent
# of one core), resident memory and the frames per second it published, over
# BENCH_SECONDS. Figures, not assertions. Sourced by run.sh or run alone.
set -euo pipefail
. "$(dirname "$0")/../integration/lib.sh"
export KVMGATE_BIN_DIR=${KVMGATE_BIN_DIR:-$top/bin}
bin=$KVMGATE_BIN_DIR
duration=${BENCH_SECONDS:-5}
fps=${BENCH_FLEET_FPS:-5}
sim=$bin/kvmgate-sim-nanokvm
[ -x "$sim" ] || sim=$top/build/release/tests/sim-nanokvm
sims=()
stop_sims() { local p; for p in "${sims[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; sims=(); }
trap 'stop_sims; cleanup_stacks' EXIT

# ticks PID: CPU time (utime + stime) of PID in clock ticks.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# frames: the sum of the latest frame numbers of every session.
frames() {
  local id sum=0 f
  for id in "${ids[@]}"; do
    f=$(KVMGATE_VAR_DIR=$f_var "$bin/kvmgate" capture status --device "$id" | sed -n 's/.* frame \([0-9]*\),.*/\1/p')
    sum=$((sum + ${f:-0}))
  done
  echo "$sum"
}

echo
echo "capture worker with a streaming fleet (640x480 MJPEG at $fps frames/s per device):"
printf '  %-8s %10s %10s %12s %10s\n' devices "CPU %" "RSS MB" "frames/s" streaming
for n in ${BENCH_FLEET:-50 200}; do
  KVMGATE_SHM_SLOTS=$((n + 8)) KVMGATE_SHM_FRAME_MAX=1048576 KVMGATE_SESSION_IDLE_MS=600000 \
    WORKERS=2 new_stack f >/dev/null
  ids=()
  for i in $(seq 1 "$n"); do
    port=$(free_port)
    "$sim" --port "$port" --firmware 2.4.x --password bench --width 640 --height 480 --fps "$fps" \
      >"$f_var/sim.out" 2>/dev/null &
    sims+=($!)
    # Listening before the next port is picked, so no two get the same.
    for _ in $(seq 1 100); do grep -qs "^listening on 127.0.0.1:$port$" "$f_var/sim.out" && break; sleep 0.02; done
    http POST "$f_url/api/v1/devices" -H "Authorization: Bearer $f_token" -H 'Content-Type: application/json' \
      --data-binary "{\"name\":\"sim-$i\",\"kind\":\"nanokvm\",\"url\":\"http://127.0.0.1:$port\",\"username\":\"admin\",\"password\":\"bench\"}"
    ids+=("$(jqr .id)")
  done
  # Open every session, then wait until they all stream (at most a minute).
  for _ in $(seq 1 60); do
    up=0
    for id in "${ids[@]}"; do
      KVMGATE_VAR_DIR=$f_var "$bin/kvmgate" capture status --device "$id" | grep -q ': streaming,' && up=$((up + 1))
    done
    [ "$up" = "$n" ] && break
    sleep 1
  done
  [ "$up" = "$n" ] || for id in "${ids[@]}"; do KVMGATE_VAR_DIR=$f_var "$bin/kvmgate" capture status --device "$id" | grep -v ": streaming," | sed "s/^/  # /"; done
  pid=$(stack_child "$f_var" kvmgate-capture)
  f0=$(frames); t0=$(ticks "$pid"); s0=$(date +%s%N)
  sleep "$duration"
  f1=$(frames); t1=$(ticks "$pid"); s1=$(date +%s%N)
  rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
  awk -v n="$n" -v dt="$(( s1 - s0 ))" -v tk="$(( t1 - t0 ))" -v hz="$(getconf CLK_TCK)" \
      -v fr="$(( f1 - f0 ))" -v rss="$rss" -v up="$up" \
    'BEGIN { s = dt / 1e9; printf "  %-8s %10.1f %10s %12.0f %7s/%s\n", n, 100 * tk / hz / s, rss, fr / s, up, n }'
  stop_sims
  stack_cmd "$f_var" "$f_port" stop >/dev/null 2>&1
done
