#!/usr/bin/env bash
# The demo fleet (KVMGATE_DEMO=auto, what make run sets): a stack without
# devices registers two simulated NanoKVMs on different firmware, starts
# them with the stack and serves their screens; a restart reuses them; a
# stack with a device of its own gets no demo; the simulators stop with it.
. "$(dirname "$0")/lib.sh"

[ -x "${KVMGATE_BIN_DIR%/bin}/tests/sim-nanokvm" ] || [ -x "$bin/kvmgate-sim-nanokvm" ] ||
  { echo "# no simulator built"; exit 77; }
# The simulator's libwebsockets leaks once at exit (tests/sim/lsan.supp).
export LSAN_OPTIONS=suppressions=$top/tests/sim/lsan.supp:print_suppressions=0
trap finish EXIT

KVMGATE_DEMO=auto new_stack d || { not_ok "a stack with the demo fleet starts"; exit 1; }
kv() { KVMGATE_VAR_DIR=$d_var "$bin/kvmgate" "$@"; }
out=$(kv device list --json)
want='["demo-nanokvm-a nanokvm demo true","demo-nanokvm-b nanokvm demo true","demo-vnc vnc demo true"]'
ndemo=3
command -v Xvnc >/dev/null || { want='["demo-nanokvm-a nanokvm demo true","demo-nanokvm-b nanokvm demo true"]'; ndemo=2; }
check "the demo devices ($ndemo), tagged demo, with credentials" \
  [ "$(jq -c '[.devices[] | "\(.name) \(.kind) \(.tags | join(",")) \(.has_credentials)"]' <<<"$out")" = "$want" ]

mcp=$d_url/mcp tok=$d_token
sid= ver=2025-11-25
open_session
for dev in demo-nanokvm-a demo-nanokvm-b; do
  tool get_screenshot "{\"device\":\"$dev\"}"
  jqr '.result.content[1].data' | base64 -d >"$d_var/$dev.jpg" 2>/dev/null
  check "$dev: a 1920x1080 screenshot" grep -q "^$dev: 1920x1080 JPEG" <<<"$(jqr '.result.content[0].text')"
  check "$dev: the picture is a JPEG" [ "$(head -c 2 "$d_var/$dev.jpg" | od -An -tx1 | tr -d ' ')" = ffd8 ]
done
if [ "$ndemo" = 3 ]; then
  tool get_screenshot '{"device":"demo-vnc"}'
  check "demo-vnc: the Xvnc display's screen, 1280x800" grep -q "^demo-vnc: 1280x800 JPEG" <<<"$(jqr '.result.content[0].text')"
  word=demo$RANDOM
  tool type_text "{\"device\":\"demo-vnc\",\"text\":\"echo $word > $d_var/typed.txt\\n\"}"
  for _ in $(seq 1 50); do [ -s "$d_var/typed.txt" ] && break; sleep 0.1; done
  check "demo-vnc: text typed into the demo terminal runs in its shell" [ "$(cat "$d_var/typed.txt" 2>/dev/null)" = "$word" ]
fi
check "the two simulators run different firmware" \
  [ "$(kv capture status --device 1 | grep -o 'firmware 2\.[0-9]*')/$(kv capture status --device 2 | grep -o 'firmware 2\.[0-9.]*')" = "firmware 2.4/firmware 2.5.0" ]

stack_cmd "$d_var" "$d_port" stop >/dev/null 2>&1
check "the simulators stop with the stack" [ "$(pgrep -f "sim-nanokvm --port $((d_port + 1)) " | wc -l)" = 0 ]
check "so does the demo display" [ "$(pgrep -f "Xvnc :$(( (d_port + 3) % 400 + 100 )) " | wc -l)" = 0 ]
KVMGATE_DEMO=auto stack_cmd "$d_var" "$d_port" start >/dev/null 2>&1
check "a restart keeps the same devices" [ "$(kv device list --json | jq '.devices | length')" = "$ndemo" ]
tool get_screenshot '{"device":"demo-nanokvm-a"}'
check "after a restart the demo screens are served again" grep -q "^demo-nanokvm-a: 1920x1080 JPEG" <<<"$(jqr '.result.content[0].text')"

new_stack o || { not_ok "a second stack starts"; exit 1; }
printf 'pw\n' | KVMGATE_VAR_DIR=$o_var "$bin/kvmgate" device add rack-1 --kind vnc --url vnc://127.0.0.1:5999 --password-file - >/dev/null
stack_cmd "$o_var" "$o_port" stop >/dev/null 2>&1
KVMGATE_DEMO=auto stack_cmd "$o_var" "$o_port" start >/dev/null 2>&1
check "a fleet with a device of its own gets no demo" \
  [ "$(KVMGATE_VAR_DIR=$o_var "$bin/kvmgate" device list --json | jq -c '[.devices[].name]')" = '["rack-1"]' ]
