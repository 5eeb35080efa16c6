#!/usr/bin/env bash
# tests/bench/vnc.sh (run by tests/bench/run.sh, or alone): the vnc driver
# against TigerVNC's Xvnc at 1920x1080 with an xterm. Prints warm
# get_screenshot latency over MCP (a static screen, then max_age_ms 0), frames/s
# and capture-worker CPU per frame by encoding while the screen changes all the
# time, typing speed end to end (1000 characters into `cat > file`), and the
# same screenshot taken by a minimal Python RFB client with Raw encoding
# (rfb_raw_client.py), with the ratio. Figures, not assertions.
set -euo pipefail
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
export KVMGATE_BIN_DIR=${KVMGATE_BIN_DIR:-$top/bin}
duration=${BENCH_SECONDS:-5}
for c in Xvnc xterm wrk python3; do
  command -v "$c" >/dev/null || { echo "vnc bench: $c is missing (tests/integration/test_vnc.sh installs it)"; exit 0; }
done
work=$(mktemp -d /tmp/kvmgate-vncbench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  cleanup_stacks
  rm -rf "$work"
}
trap cleanup EXIT

d=$(( 600 + RANDOM % 300 ))
port=$((5900 + d))
Xvnc ":$d" -geometry 1920x1080 -depth 24 -rfbport "$port" -localhost -nolisten tcp -AlwaysShared \
  -SecurityTypes None >"$work/xvnc.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do ss -Hltn "sport = :$port" | grep -q . && break; sleep 0.1; done
DISPLAY=:$d xterm -geometry 200x40+0+0 -fn fixed -e sh -c "cat > '$work/typed'" >/dev/null 2>&1 &
pids+=($!)
sleep 1

KVMGATE_SESSION_IDLE_MS=3000 WORKERS=4 new_stack s >/dev/null
cli() { KVMGATE_VAR_DIR=$s_var "$KVMGATE_BIN_DIR/kvmgate" capture "$@"; }
add() {
  http POST "$s_url/api/v1/devices" -H "Authorization: Bearer $s_token" -H 'Content-Type: application/json' \
    --data-binary "{\"name\":\"$1\",\"kind\":\"vnc\",\"url\":\"$2\"}"
  jqr .id
}
# shot_rate NAME MAX_AGE CONNS: "req/s p50 p99" of get_screenshot over MCP.
shot_rate() {
  local lua
  lua=$(mcp_script "$s_var" "$s_url" "$s_token" \
        "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"get_screenshot\",\"arguments\":{\"device\":\"$1\",\"max_age_ms\":$2}}}")
  conns=$3 measure "$s_url/mcp" "$lua"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$(stack_child "$s_var" kvmgate-capture)/stat"; }

id=$(add vnc-bench "vnc://127.0.0.1:$port")
cli frame --device "$id" --out "$work/first.jpg" --timeout-ms 10000 >/dev/null
echo
echo "vnc: Xvnc 1920x1080, an xterm, MCP get_screenshot through nginx (wrk, ${duration}s):"
printf '  %-52s %8s %9s %9s\n' case "req/s" "p50 ms" "p99 ms"
read -r r p50 p99 _ < <(shot_rate vnc-bench 1000 1)
printf '  %-52s %8s %9s %9s\n' "warm, static screen, max_age_ms 1000, 1 client" "$r" "$p50" "$p99"
warm_p50=$p50
read -r r p50 p99 _ < <(shot_rate vnc-bench 0 1)
printf '  %-52s %8s %9s %9s\n' "static screen, max_age_ms 0 (re-published), 1 client" "$r" "$p50" "$p99"

# The screen changes all the time from here: a second xterm printing without pause.
DISPLAY=:$d xterm -geometry 200x30+0+500 -fn fixed -e sh -c 'while :; do date +%s%N; done' >/dev/null 2>&1 &
pids+=($!)
sleep 1
echo
echo "  busy screen (an xterm printing continuously), max_age_ms 0: each answer a new frame"
printf '  %-12s %10s %9s %9s %16s\n' encoding "frames/s" "p50 ms" "p99 ms" "CPU ms/frame"
for enc in tight zrle hextile raw; do
  eid=$(add "vnc-bench-$enc" "vnc://127.0.0.1:$port?encodings=$enc")
  cli frame --device "$eid" --out "$work/$enc.jpg" --timeout-ms 10000 >/dev/null
  t0=$(cpu_ticks)
  read -r r p50 p99 _ < <(shot_rate "vnc-bench-$enc" 0 1)
  t1=$(cpu_ticks)
  total=$(( (duration + 1) ))
  printf '  %-12s %10s %9s %9s %16s\n' "$enc" "$r" "$p50" "$p99" \
    "$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v r="$r" -v n="$total" 'BEGIN { printf "%.2f", (r > 0 ? t * 1000 / hz / (r * n) : 0) }')"
  sleep 4	# the session closes (idle 3 s): the next encoding runs alone
done
kill "${pids[-1]}" 2>/dev/null || true

# Typing, end to end: 1000 characters (letters, digits, shifted symbols) through the CLI.
text=$(python3 -c 'import random; random.seed(1); a="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!@#$%^&*()_+-=[]{};:,.<>/? "; print("".join(random.choice(a) for _ in range(1000)))')
cli op "$id" move 10 10 >/dev/null
: >"$work/typed.before"
t0=$(date +%s%N)
cli op "$id" text "$text" >/dev/null
sent=$(date +%s%N)
cli op "$id" keys enter >/dev/null
for _ in $(seq 1 300); do grep -qxF -- "$text" "$work/typed" 2>/dev/null && break; sleep 0.01; done
t1=$(date +%s%N)
echo
if grep -qxF -- "$text" "$work/typed"; then
  awk -v a=$((sent - t0)) -v b=$((t1 - t0)) 'BEGIN { printf "  typing 1000 characters: sent in %.0f ms, in the xterm after %.0f ms: %.0f chars/s end to end\n", a / 1e6, b / 1e6, 1000 / (b / 1e9) }'
else
  echo "  typing 1000 characters: the xterm did not get them exactly"
fi

# The reference: a minimal Python client taking the same screenshot with Raw encoding.
read -r cold p50 p99 size < <(python3 "$(dirname "$0")/rfb_raw_client.py" "$port" 20)
echo
printf '  Python stdlib RFB client, Raw encoding, %s: cold %s ms, warm full frame p50 %s ms, p99 %s ms\n' \
  "$size" "$cold" "$p50" "$p99"
awk -v c="$cold" -v a="$p50" -v b="$warm_p50" 'BEGIN {
  printf "  kvmgate warm get_screenshot (MCP, nginx, JPEG) p50 vs the Python client: %.1fx its cold screenshot, %.1fx its warm raw frame\n", c / b, a / b }'
