#!/usr/bin/env bash
# NanoKVM paste with the de and fr layouts, per character: every character
# the device's table for the layout holds (umlauts and accents, the
# characters that move, such as @ { } | \ [ ] ~, the y/z and a/q swaps) is
# typed through `kvmgate capture op` and MCP type_text to a simulated host
# whose keymap is that layout (sim-nanokvm --host-layout), and the host
# receives exactly the same text. Characters outside the table are refused,
# naming the first one and the layout, and nothing is typed.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || { echo "# jq missing"; exit 77; }
with_sims layouts

new_stack s || { not_ok "stack starts"; exit 1; }
mcp=$s_url/mcp tok=$s_token sid= ver=2025-11-25 accept=application/json
cli() { KVMGATE_VAR_DIR=$s_var "$bin/kvmgate" capture "$@"; }
# op DEV ARGS...: sets out (stdout) and err (stderr), returns the exit status.
op() { local d=$1; shift; out=$(cli op "$d" "$@" 2>"$work/op.err"); local rc=$?; err=$(cat "$work/op.err"); return $rc; }
sj() { curl -s "http://127.0.0.1:$1/sim/state" | jq -r "$2"; }
typed() { curl -s "http://127.0.0.1:$1/sim/state" | jq -j .screen.typed; }
clear_typed() {
  curl -s -X POST "http://127.0.0.1:$1/sim/set" -H 'Content-Type: application/json' \
    --data '{"clear_typed":true}' >/dev/null
}

# The device's tables (protocols/nanokvm.md section 7), every character once.
letters='abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
declare -A chars=(
  [de]="$letters"$' \t!"§$%&/()=ß?\\üÜ+*~#\'öÖäÄ°,;.:-_<>|@{[]}€\nyz Zoo Yak'
  [fr]="$letters"$' \t&é"\'(-è_çà)=+$*ù%,?;.:/!<>~#{[|`\\^@]}€\naqzwm AQZWM'
)
# A character each table lacks, after some that it has.
declare -A bad=([de]='abcÅ' [fr]='abcß')
declare -A bad_cp=([de]='U+00C5 ("Å")' [fr]='U+00DF ("ß")')

open_session
for l in de fr; do
  port=$(free_port)
  run_sim "sim_$l" "$port" --firmware 2.5.0 --password pw --width 800 --height 600 \
    --time-scale 0.05 --fps 10 --usb-offline-ms 500 --host-layout "$l"
  http POST "$s_url/api/v1/devices" -H "Authorization: Bearer $s_token" -H 'Content-Type: application/json' \
    --data-binary "{\"name\":\"kvm-$l\",\"kind\":\"nanokvm\",\"url\":\"http://127.0.0.1:$port\",\"username\":\"admin\",\"password\":\"pw\"}"
  d=$(jqr .id)
  diag "---- layout $l (device $d, port $port)"
  check "$l: the simulated host decodes with $l" [ "$(sj "$port" .screen.layout)" = "$l" ]

  clear_typed "$port"
  op "$d" --timeout-ms 30000 text "${chars[$l]}" "$l"
  check "$l: capture op text: typed" [ "$(jq -r .characters <<<"$out")" = "$(printf '%s' "${chars[$l]}" | wc -m)" ] ||
    diag "out=$out err=$err"
  got=$(typed "$port")
  check "$l: capture op text: the host received exactly the text" [ "$got" = "${chars[$l]}" ] ||
    diag "got: $(printf '%q' "$got")"

  clear_typed "$port"
  tool type_text "$(jq -cn --arg t "${chars[$l]}" --arg l "$l" '{device: "kvm-\($l)", text: $t, layout: $l}')"
  check "$l: MCP type_text: done" [ "$(jqr .result.isError)" = false ] || diag "$body"
  got=$(typed "$port")
  check "$l: MCP type_text: the host received exactly the text" [ "$got" = "${chars[$l]}" ] ||
    diag "got: $(printf '%q' "$got")"

  # Outside the table: refused before anything is typed.
  clear_typed "$port"
  reports=$(sj "$port" .hid.reports)
  ! op "$d" text "${bad[$l]}" "$l"
  check "$l: capture op: a character outside the table is refused, named with the layout" \
    grep -qF "character ${bad_cp[$l]} at byte 3 cannot be typed with the $l layout; nothing was typed" <<<"$err" ||
    diag "err=$err"
  tool type_text "$(jq -cn --arg t "${bad[$l]}" --arg l "$l" '{device: "kvm-\($l)", text: $t, layout: $l}')"
  [ "$(jqr .result.isError)" = true ] && grep -qF "${bad_cp[$l]}" <<<"$(jqr '.result.content[0].text')" &&
    grep -qF "$l layout" <<<"$(jqr '.result.content[0].text')"
  check "$l: MCP type_text: refused with the character and the layout" [ $? = 0 ] || diag "$body"
  [ "$(sj "$port" .hid.reports)" = "$reports" ] && [ -z "$(typed "$port")" ]
  check "$l: nothing was typed" [ $? = 0 ]
done
