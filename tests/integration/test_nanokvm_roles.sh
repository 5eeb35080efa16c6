#!/usr/bin/env bash
# The head firmware's multi-user roles (protocols/nanokvm.md §1, §3): a
# NanoKVM account of the role "user" streams, types and presses power, and
# gets 403 "forbidden" on the admin routes (images, HID reset). Such a device
# gives a clear error naming the account and the role it lacks, at once,
# over `kvmgate capture op` and MCP; its session stays up; the same device
# with the admin account does it.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || { echo "# jq missing"; exit 77; }
with_sims roles

port=$(free_port)
mkdir -p "$work/data"; : >"$work/data/debian.iso"
run_sim h "$port" --firmware head --password pw --user viewer:vpw --width 640 --height 480 \
  --time-scale 0.05 --fps 10 --state-dir "$work/data"

KVMGATE_FRAME_TIMEOUT_MS=8000 new_stack s || { not_ok "stack starts"; exit 1; }
cli() { KVMGATE_VAR_DIR=$s_var "$bin/kvmgate" capture "$@"; }
op() { local d=$1; shift; out=$(cli op "$d" "$@" 2>"$work/op.err"); local rc=$?; err=$(cat "$work/op.err"); return $rc; }
sj() { curl -s "http://127.0.0.1:$port/sim/state" | jq -r "$1"; }
on_screen() { curl -s "http://127.0.0.1:$port/sim/state" | jq -e --arg w "$1" '.screen.text | any(contains($w))' >/dev/null; }
add() {
  http POST "$s_url/api/v1/devices" -H "Authorization: Bearer $s_token" -H 'Content-Type: application/json' \
    --data-binary "{\"name\":\"$1\",\"kind\":\"nanokvm\",\"url\":\"http://127.0.0.1:$port\",\"username\":\"$2\",\"password\":\"$3\"}"
  jqr .id
}
v=$(add kvm-viewer viewer vpw)
a=$(add kvm-admin admin pw)

out=$(cli frame --device "$v" --out "$work/f.jpg" --timeout-ms 10000 2>&1)
check "a user-role account streams" grep -q '^frame [0-9]* 640x480 ' <<<"$out"
w=$(tr -dc a-z </dev/urandom | head -c 8)
op "$v" text $'\n'"$w"
check "and types (paste is a user route)" on_screen "$w"
op "$v" keys enter r o l e
check "and sends keys over /api/ws" on_screen "role"
op "$v" power reset
check "and presses the reset button (GPIO is a user route)" [ "$(jq -c .presses <<<"$out")" = '["reset"]' ]

t0=$SECONDS
! op "$v" iso-list
check "images as a user-role account: the role named, not a password problem" \
  grep -q "storage/image: the device answered 403 forbidden: the NanoKVM account 'viewer' lacks the admin role this needs" <<<"$err"
check "at once" [ $((SECONDS - t0)) -lt 3 ]
! op "$v" hid-reset
check "HID reset: the same" grep -q "403 forbidden: the NanoKVM account 'viewer' lacks the admin role" <<<"$err"
check "the device really answered 403" [ "$(sj '.requests["/api/storage/image"]')" -ge 1 ]
check "the session stays up" grep -q "^device $v: streaming" <<<"$(cli status --device "$v")"
op "$v" power-state
check "and the next operation works" [ "$(jq -r .power <<<"$out")" = on ]

mcp=$s_url/mcp tok=$s_token sid= ver=2025-11-25
open_session
tool list_isos '{"device":"kvm-viewer"}'
check "MCP list_isos: an error saying the account lacks the admin role" \
  bash -c '[ "$1" = true ] && grep -q "lacks the admin role" <<<"$2" && ! grep -q "refused its stored username and password" <<<"$2"' \
  _ "$(jqr .result.isError)" "$(jqr '.result.content[0].text')"
diag "$(jqr '.result.content[0].text')"

op "$a" iso-list
check "the admin account of the same device lists the images" [ "$(jq -c .images <<<"$out")" = '["/data/debian.iso"]' ]
check "no crash in the capture worker" bash -c "! grep -q 'AddressSanitizer\|runtime error' '$s_var/log/capture.log'"
