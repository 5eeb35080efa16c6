#!/usr/bin/env bash
# A machine's console through kvmgate as a model uses it: the official MCP SDK
# client (tests/e2e/console.mjs, Node 22 from the lockfile) against a NanoKVM
# simulator of every firmware profile, through nginx. A random word typed with
# type_text is on the machine's screen, keys too; wait_for_screen started
# before two words are typed finds them and read_screen_text reads them back
# (OCR of the simulated screen); a click lands on its pixel;
# a power cycle shows on the power LED and the boot count; an image mounts
# and unmounts. Then the same device through the REST routes (screenshot,
# text, keys, screen/text, mouse, power, media, health). What the machine
# shows is read from the simulator's state.
. "$(dirname "$0")/lib.sh"

e2e=$top/tests/e2e
with_sims console

node22=$("$top/scripts/e2e-deps.sh") || { not_ok "npm clients and Node 22 installed (scripts/e2e-deps.sh)"; exit 1; }
export PATH=$node22:$PATH

KVMGATE_FRAME_TIMEOUT_MS=8000 new_stack s || { not_ok "stack starts"; exit 1; }

# line STEP JQ: JQ applied to the client's output line of STEP.
line() { jq -c "select(.step == \"$1\") | $2" "$work/$p.out"; }

for p in 2.3.1-legacy 2.4.x 2.5.0 head; do
  port=$(free_port)
  mkdir -p "$work/$p.data"
  : >"$work/$p.data/debian.iso"
  run_sim "sim_${p//[.-]/_}" "$port" --firmware "$p" --password pw --width 800 --height 600 \
    --time-scale 0.05 --fps 10 --usb-offline-ms 500 --state-dir "$work/$p.data"
  http POST "$s_url/api/v1/devices" -H "Authorization: Bearer $s_token" -H 'Content-Type: application/json' \
    --data-binary "{\"name\":\"kvm-$p\",\"kind\":\"nanokvm\",\"url\":\"http://127.0.0.1:$port\",\"username\":\"admin\",\"password\":\"pw\"}"
  diag "---- firmware $p"
  (cd "$e2e" && HOME=$work timeout 300 node console.mjs "$s_url/mcp" "$s_token" "kvm-$p" \
     "http://127.0.0.1:$port" </dev/null >"$work/$p.out" 2>"$work/$p.err")
  check "$p: the SDK client went through every step" [ "$(line done '.step')" = '"done"' ] ||
    diag "$(tail -n 3 "$work/$p.err" | cut -c1-300)"
  check "$p: get_screenshot: a JPEG image block, 800x600" \
    [ "$(line screenshot '[.error, .mime, .jpeg, (.text | test("^kvm-.*: 800x600 JPEG"))]')" = '[false,"image/jpeg",true,true]' ]
  check "$p: type_text: the random word is on the machine's screen" \
    [ "$(line type '[.error, .on_screen]')" = '[false,true]' ]
  check "$p: send_keys enter, shift+h, i: 'Hi' on the screen" [ "$(line keys '[.error, .on_screen]')" = '[false,true]' ]
  check "$p: wait_for_screen started before typing finds the words once typed" \
    [ "$(line wait '[.error, .found]')" = '[false,true]' ]
  check "$p: read_screen_text reads them back" [ "$(line read '[.error, .read]')" = '[false,true]' ]
  check "$p: mouse_click at (321,123): the pointer is there" \
    [ "$(line click '[.error, .x, .y, .clicks >= 1]')" = '[false,321,123,true]' ]
  check "$p: power_action cycle (confirm true): LED on, the machine booted again" \
    [ "$(line power '[.error, .led, .booted_again]')" = '[false,true,true]' ]
  check "$p: get_power_state says on" grep -qi '"power": *"on"\|power.*on' <<<"$(line power_state .text)"
  check "$p: list_isos names the image" grep -q 'debian.iso' <<<"$(line isos .text)"
  check "$p: mount_iso (confirm true): mounted as a CD-ROM" \
    [ "$(line mount '[.error, .iso, .cdrom]')" = '[false,"/data/debian.iso",true]' ]
  check "$p: get_mounted_iso names it" grep -q 'debian.iso' <<<"$(line mounted .text)"
  check "$p: unmount_iso: nothing mounted" [ "$(line unmount '[.error, .iso]')" = '[false,""]' ]

  # The same device through the REST routes, as a script would use them.
  simst() { curl -s "http://127.0.0.1:$port/sim/state" | jq -r "$1"; }
  rest() { local m=$1 path=$2; shift 2; http "$m" "$s_url/api/v1/devices/kvm-$p$path" -H "Authorization: Bearer $s_token" -H 'Content-Type: application/json' "$@"; }
  curl -s -o "$work/$p.jpg" "$s_url/api/v1/devices/kvm-$p/screenshot" -H "Authorization: Bearer $s_token"
  check "$p REST: screenshot, a JPEG of 800x600" grep -q 'JPEG image data.*800x600' <<<"$(file "$work/$p.jpg")"
  # Dictionary words: they read best by OCR in the simulator's 5x7 font.
  dict=(rabbit doctor castle candle kernel ocean basket butter letter dinner cotton bottle)
  w="${dict[RANDOM % ${#dict[@]}]} ${dict[RANDOM % ${#dict[@]}]}"
  rest POST /text --data-binary "{\"text\":\"\\n$w\"}"
  check "$p REST: text typed is on the screen" bash -c '[ "$1" = 200 ] && grep -qF "$2" <<<"$3"' _ "$status" "$w" "$(simst '.screen.text[]')"
  rest POST /keys --data-binary '{"keys":["enter","shift+o","k"]}'
  check "$p REST: keys pressed show 'Ok'" bash -c '[ "$1" = 200 ] && grep -qx "Ok\|.*Ok" <<<"$2"' _ "$status" "$(simst '.screen.text[]')"
  rest GET /screen/text
  check "$p REST: screen/text reads the typed words" bash -c '[ "$1" = 200 ] && grep -qF "$2" <<<"$3"' _ "$status" "$w" "$(jqr .text)"
  rest POST /mouse --data-binary '{"action":"click","x":100,"y":200}'
  check "$p REST: the click lands on its pixel" [ "$status $(simst '[.pointer.x, .pointer.y] | @csv')" = "200 100,200" ]
  rest POST /power --data-binary '{"action":"reset","confirm":true}'
  check "$p REST: power reset" [ "$status" = 200 ]
  rest GET /power
  check "$p REST: the power state" bash -c '[ "$1" = 200 ] && grep -q "on" <<<"$2"' _ "$status" "$body"
  rest POST /media --data-binary '{"image":"debian.iso"}'
  check "$p REST: mount an image" [ "$status $(simst .iso)" = "200 /data/debian.iso" ]
  rest GET /media
  check "$p REST: the media lists and names what is mounted" bash -c '[ "$1" = 200 ] && grep -q debian.iso <<<"$2"' _ "$status" "$body"
  rest DELETE /media
  check "$p REST: unmount" [ "$status $(simst .iso)" = "204 " ]
  rest GET /health
  check "$p REST: health, streaming" [ "$status $(jqr .state)" = "200 streaming" ]
done
check "every call was audited" \
  [ "$(stack_sql "$s_var" "SELECT count(*) FROM audit_events WHERE action IN ('type_text','send_keys','wait_for_screen','read_screen_text','mouse_click','power_action','mount_iso','unmount_iso') AND outcome = 'ok'")" = 36 ]
