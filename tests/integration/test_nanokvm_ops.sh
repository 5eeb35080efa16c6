#!/usr/bin/env bash
# NanoKVM device operations end to end, for every firmware profile of the
# simulator (2.3.1-legacy: JSON input on /api/ws; 2.4.x and 2.5.0: binary;
# head: cookie-only login), through `kvmgate capture op` and the capture
# worker: typed text and keys appear on the simulated host's screen, the
# pointer lands on the pixel clicked, a power cycle shows on the LED and the
# host's boot count, images mount and unmount, long text is split into
# several pastes, and each documented edge case gives its error. Frame
# detection is switched off, so a static screen keeps streaming. Faults: a
# WebSocket broken in the middle of keys, the device killed during a paste;
# both fail the operation clearly and the session recovers.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || { echo "# jq missing"; exit 77; }
with_sims ops

# start_sim NAME PORT FIRMWARE: an 800x600 simulator with images and frame
# detection on; sets NAME_pid.
start_sim() {
  local name=$1 port=$2
  mkdir -p "$work/$name.data/sub"
  : >"$work/$name.data/debian.iso"; : >"$work/$name.data/sub/tools.img"
  run_sim "$name" "$port" --firmware "$3" --password 'pw' --width 800 --height 600 \
    --time-scale 0.05 --fps 10 --usb-offline-ms 1000 --frame-detect --ws-deadline 12 \
    --state-dir "$work/$name.data"
}

KVMGATE_FRAME_TIMEOUT_MS=8000 KVMGATE_SESSION_IDLE_MS=15000 new_stack s || { not_ok "stack starts"; exit 1; }
cli() { KVMGATE_VAR_DIR=$s_var "$bin/kvmgate" capture "$@"; }
# op DEV ARGS...: sets out (stdout) and err (stderr), returns the exit status.
op() { local d=$1; shift; out=$(cli op "$d" "$@" 2>"$work/op.err"); local rc=$?; err=$(cat "$work/op.err"); return $rc; }
state() { curl -s "http://127.0.0.1:$1/sim/state"; }
sj() { state "$1" | jq -r "$2"; }
on_screen() { state "$1" | jq -e --arg w "$2" '.screen.text | any(contains($w))' >/dev/null; }
word() { tr -dc a-z </dev/urandom | head -c 8; }
add() {
  http POST "$s_url/api/v1/devices" -H "Authorization: Bearer $s_token" -H 'Content-Type: application/json' \
    --data-binary "{\"name\":\"$1\",\"kind\":\"nanokvm\",\"url\":\"http://127.0.0.1:$2\",\"username\":\"admin\",\"password\":\"pw\"}"
  jqr .id
}
# wait_for SECONDS CMD...: polls until CMD succeeds.
wait_for() { local t=$1; shift; for _ in $(seq 1 $((t * 10))); do "$@" && return 0; sleep 0.1; done; return 1; }

profiles=(2.3.1-legacy 2.4.x 2.5.0 head)
for p in "${profiles[@]}"; do
  n=${p//[.-]/_}
  port=$(free_port)
  printf -v "port_$n" '%s' "$port"
  start_sim "s_$n" "$port" "$p"
  printf -v "dev_$n" '%s' "$(add "kvm-$p" "$port")"
done
# The 2.5.0 device is kept warm: its session never goes idle.
stack_sql "$s_var" "UPDATE devices SET keep_warm = true WHERE id = $dev_2_5_0" >/dev/null

for p in "${profiles[@]}"; do
  n=${p//[.-]/_}
  eval "port=\$port_$n d=\$dev_$n"
  diag "---- firmware profile $p (device $d, port $port)"
  cli frame --device "$d" --out "$work/f.jpg" --timeout-ms 10000 >/dev/null
  check "$p: streaming" grep -q "^device $d: streaming" <<<"$(cli status --device "$d")"
  check "$p: frame detection switched off on the device" [ "$(sj "$port" .stream.frame_detect)" = false ]
  seq=$(cli frame --device "$d" --out "$work/f.jpg" | awk '{print $2}')
  diag "frame $seq"
  sleep 7	# > 60 unchanged frames at 10 fps: with detection on, the stream would stop
  check "$p: a static screen keeps streaming" quiet cli frame --device "$d" --out "$work/f2.jpg" --after "$seq" --timeout-ms 3000

  w=$(word)
  op "$d" text $'\n'"$w"
  check "$p: text typed: the word is on the host's screen" on_screen "$port" "$w"
  check "$p: one paste" [ "$(jq -c . <<<"$out")" = '{"characters":9,"pastes":1}' ]
  op "$d" keys enter k e y s shift+x
  check "$p: keys pressed and released: on the screen" on_screen "$port" "keysX"
  check "$p: the last report releases everything" [ "$(sj "$port" '.hid.last[-1]')" = 0000000000000000 ]
  op "$d" click 123 45
  check "$p: click at (123,45): the pointer is there, one click" \
    [ "$(sj "$port" '[.pointer.x,.pointer.y,.pointer.clicks,.pointer.buttons] | @csv')" = '123,45,1,0' ]
  op "$d" click 700 500 left 2
  check "$p: double click at (700,500)" [ "$(sj "$port" '[.pointer.x,.pointer.y,.pointer.clicks] | @csv')" = '700,500,3' ]
  op "$d" move 0 599
  check "$p: move to the bottom-left pixel" [ "$(sj "$port" '[.pointer.x,.pointer.y] | @csv')" = '0,599' ]
  op "$d" click 799 0 right
  check "$p: right click at the top-right pixel" [ "$(sj "$port" '[.pointer.x,.pointer.y,.pointer.clicks] | @csv')" = '799,0,3' ]
  op "$d" scroll 3
  check "$p: scroll 3 down: wheel -3" [ "$(sj "$port" .pointer.wheel)" = -3 ]
  op "$d" scroll -1 10 10
  check "$p: scroll 1 up at (10,10)" [ "$(sj "$port" '[.pointer.wheel,.pointer.x,.pointer.y] | @csv')" = '-2,10,10' ]

  op "$d" power-state
  check "$p: power state: on" [ "$(jq -c . <<<"$out")" = '{"power":"on","led":{"pwr":true,"hdd":false}}' ]
  boots=$(sj "$port" .boots)
  op "$d" power cycle
  check "$p: power cycle: long press, short press, LED on" \
    [ "$(jq -c '[.presses, .power_before, .power]' <<<"$out")" = '[["power_long","power_short"],"on","on"]' ]
  check "$p: the host booted again" [ "$(sj "$port" .boots)" = $((boots + 1)) ]
  op "$d" power off
  check "$p: power off: LED off" [ "$(jq -r .power <<<"$out")/$(sj "$port" .led)" = off/false ]
  op "$d" power off
  check "$p: power off again: no press" [ "$(jq -c .presses <<<"$out")" = '[]' ]
  op "$d" power on
  check "$p: power on: LED on" [ "$(jq -r .power <<<"$out")/$(sj "$port" .led)" = on/true ]
  op "$d" power reset
  check "$p: reset: the host reboots" [ "$(sj "$port" .boots)" = $((boots + 3)) ]
  op "$d" power off_hard
  check "$p: off_hard: long press, off" [ "$(jq -c '[.presses,.power]' <<<"$out")" = '[["power_long"],"off"]' ]
  op "$d" power on
  cli frame --device "$d" --out "$work/f.jpg" --timeout-ms 10000 >/dev/null

  op "$d" iso-list
  check "$p: iso-list: both images" [ "$(jq -c '.images | sort' <<<"$out")" = '["/data/debian.iso","/data/sub/tools.img"]' ]
  op "$d" iso-mount debian.iso
  check "$p: mounted as a CD-ROM" [ "$(sj "$port" '[.iso,.cdrom] | @csv')" = '"/data/debian.iso",true' ]
  op "$d" iso-mounted
  check "$p: iso-mounted says so" [ "$(jq -c . <<<"$out")" = '{"image":"/data/debian.iso","cdrom":true}' ]
  w=$(word)
  op "$d" text $'\n'"$w"
  check "$p: text right after a mount (USB re-enumerating) is not lost" on_screen "$port" "$w"
  ! op "$d" iso-mount nothing.iso
  check "$p: missing image: its error" grep -q 'missing ISO: the device could not mount /data/nothing.iso (mount image failed)' <<<"$err"
  op "$d" iso-unmount
  op "$d" iso-mounted
  check "$p: unmounted" [ "$(jq -c . <<<"$out")/$(sj "$port" .iso)" = '{"image":null,"cdrom":false}/' ]
  op "$d" iso-mount sub/tools.img --disk
  check "$p: mounted as a disk" [ "$(sj "$port" '[.iso,.cdrom] | @csv')" = '"/data/sub/tools.img",false' ]
  op "$d" iso-unmount

  enum=$(sj "$port" .hid.usb_enumerations)
  op "$d" hid-reset
  check "$p: hid-reset re-enumerates the USB gadget" [ "$(sj "$port" .hid.usb_enumerations)" = $((enum + 1)) ]
  check "$p: hdmi-reset" op "$d" hdmi-reset
  op "$d" info
  check "$p: info: firmware, protocol, hardware" \
    [ "$(jq -r '[.info.application, .hid_protocol, .hardware.version, .websocket] | @csv' <<<"$out")" = \
      "\"$(sj "$port" .application)\",\"$([ "$p" = 2.3.1-legacy ] && echo json || echo binary)\",\"Beta\",\"open\"" ]

  # Long text: split to the firmware's limit, typed in order.
  long=$(head -c 1500 /dev/zero | tr '\0' 'a')
  w=$(word)
  op "$d" --timeout-ms 60000 text "$long"$'\n'"$w"
  check "$p: 1509 characters in two pastes" [ "$(jq -c . <<<"$out")" = '{"characters":1509,"pastes":2}' ]
  check "$p: and the end is on the screen" on_screen "$port" "$w"

  # Edge cases: each with its error, nothing typed.
  reports=$(sj "$port" .hid.reports)
  ! op "$d" text 'café'
  check "$p: a character US cannot type is refused" grep -q 'character U+00E9 ("é") at byte 3 cannot be typed with the US layout; nothing was typed' <<<"$err"
  ! op "$d" text 'x' es
  check "$p: unknown layout refused (the device would type US)" grep -q 'layout es is not one NanoKVM pastes with' <<<"$err"
  if [ "$p" = 2.3.1-legacy ]; then
    ! op "$d" text 'x' fr
    check "$p: fr needs 2.4.1" grep -q 'layout fr needs NanoKVM firmware 2.4.1 or later' <<<"$err"
    ! op "$d" keys meta
    check "$p: a modifier alone cannot be sent as JSON" grep -q 'cannot press a modifier alone' <<<"$err"
  else
    op "$d" text 'zy' de
    check "$p: de layout: the device types z and y with the swapped keys" \
      [ "$(sj "$port" '[.hid.last[-5], .hid.last[-3]] | @csv')" = '"00001c0000000000","00001d0000000000"' ]
  fi
  ! op "$d" keys ctrl+nosuchkey
  check "$p: unknown key name refused" grep -qi 'nosuchkey' <<<"$err"
  ! op "$d" click 800 10
  check "$p: click outside the screen refused" grep -q 'point (800, 10) is outside the 800x600 screen' <<<"$err"
  ! op "$d" power explode
  check "$p: unknown power action refused" grep -q 'power action "explode"' <<<"$err"
  check "$p: no input reached the host for refused operations" \
    [ "$(sj "$port" .hid.reports)" = "$([ "$p" = 2.3.1-legacy ] && echo "$reports" || echo $((reports + 5)))" ]
  if [ "$p" != 2.3.1-legacy ]; then
    check "$p: heartbeats on /api/ws" [ "$(sj "$port" .ws_heartbeats)" -ge 1 ]
  fi
done

# ---- a long paste on one device does not hold up another
long=$(head -c 2000 /dev/zero | tr '\0' 'c')
cli op "$dev_2_4_x" --timeout-ms 60000 text "$long" >"$work/paste.out" 2>&1 &
paster=$!
sleep 0.5
t0=$(date +%s%N)
op "$dev_head" click 5 5
t1=$(date +%s%N)
check "a click on another device during a 3 s paste answers at once" [ $(( (t1 - t0) / 1000000 )) -lt 1500 ]
diag "click took $(( (t1 - t0) / 1000000 )) ms"
wait "$paster"
check "and the paste finishes: 2000 characters in 2 pastes" [ "$(jq -c . "$work/paste.out")" = '{"characters":2000,"pastes":2}' ]

# ---- faults, on 2.5.0 and on the legacy profile
for p in 2.5.0 2.3.1-legacy; do
  n=${p//[.-]/_}
  eval "port=\$port_$n d=\$dev_$n pid=\$s_${n}_pid"
  curl -s -X POST "http://127.0.0.1:$port/sim/set" -H 'Content-Type: application/json' --data '{"ws_drop_after":1}' >/dev/null
  ! op "$d" keys a b c d e
  check "$p: WebSocket broken mid-keys: the operation fails clearly" grep -q 'device offline: the input WebSocket closed during the operation' <<<"$err"
  w=$(word)
  wait_for 10 bash -c "curl -s http://127.0.0.1:$port/sim/state | jq -e '.ws_clients == 1' >/dev/null"
  op "$d" keys enter ${w:0:1} ${w:1:1} ${w:2:1} ${w:3:1}
  check "$p: the WebSocket reconnects: keys work again" on_screen "$port" "${w:0:4}"
  check "$p: the session stayed up" grep -q "^device $d: streaming" <<<"$(cli status --device "$d")"

  # The device dies during a long paste.
  long=$(head -c 800 /dev/zero | tr '\0' 'b')
  # Killed once the paste is under way (a fixed delay could fall before it
  # starts on a busy machine, and then the operation waits for a login).
  ( for _ in $(seq 1 100); do
      [ "$(curl -s "http://127.0.0.1:$port/sim/state" | jq -r '.hid.paste_busy')" = true ] && break
      sleep 0.05
    done
    kill "$pid" ) &
  killer=$!
  t0=$SECONDS
  ! op "$d" --timeout-ms 60000 text "$long"
  wait "$killer"
  check "$p: device killed during a paste: the operation fails as offline" grep -q 'device offline' <<<"$err"
  check "$p: at once, not at the timeout" [ $((SECONDS - t0)) -lt 10 ]
  diag "$err"
  start_sim "s_$n" "$port" "$p"
  w=$(word)
  wait_for 20 bash -c "KVMGATE_VAR_DIR=$s_var $bin/kvmgate capture status --device $d | grep -q streaming"
  op "$d" text $'\n'"$w"
  check "$p: the session recovers: text typed on the restarted device" on_screen "$port" "$w"
done

# ---- 2.5.0: another client holds the HID with its own paste
port=$port_2_5_0 d=$dev_2_5_0
enc=$(printf '%s' pw | openssl enc -aes-256-cbc -md md5 -pass pass:nanokvm-sipeed-2024 -a -A 2>/dev/null |
      sed -e 's/+/%2B/g' -e 's,/,%2F,g' -e 's/=/%3D/g')
other=$(curl -s "http://127.0.0.1:$port/api/auth/login" -H 'Content-Type: application/json' \
        --data-binary "{\"username\":\"admin\",\"password\":\"$enc\"}" | jq -r .data.token)
long=$(head -c 800 /dev/zero | tr '\0' 'd')
curl -s "http://127.0.0.1:$port/api/hid/paste" -b "nano-kvm-token=$other" -H 'Content-Type: application/json' \
  --data-binary "{\"content\":\"$long\"}" >"$work/other.out" &
other_pid=$!
sleep 0.2
! op "$d" text 'mine'
check "2.5.0: a paste while another client pastes: HID control is busy" \
  grep -q 'paste: the device refused: HID control is busy (code -3)' <<<"$err"
! op "$d" hid-reset
check "2.5.0: HID reset during that paste: busy too" grep -q 'device refused: HID control is busy (code -1)' <<<"$err"
wait "$other_pid"
check "the other client's paste finished" [ "$(jq -r .code "$work/other.out")" = 0 ]

# ---- every token dies under a live session (a logout elsewhere on <= 2.5.0): one new login
port=$port_2_4_x d=$dev_2_4_x
op "$d" power-state
curl -s -X POST "http://127.0.0.1:$port/sim/set" -H 'Content-Type: application/json' --data '{"new_secret":true}' >/dev/null
op "$d" power-state
check "tokens revoked: the next operation logs in again and succeeds" [ "$(jq -r .power <<<"$out")" = on ]
w=$(word)
op "$d" text $'\n'"$w"
check "and typing works with the new token" on_screen "$port" "$w"
check "the new login is logged" grep -q "device $d: logged in again after a 401" "$s_var/log/capture.log"

# ---- device state in PostgreSQL, keep-warm; the heartbeat keeps /api/ws open
ws_opened=$(sj "$port_2_5_0" '.requests["/api/ws"]')
sleep 16	# past the idle period and the 12 s WebSocket deadline, with no demand for any device
check "2.5.0: heartbeats keep /api/ws open past the device's read deadline" \
  [ "$(sj "$port_2_5_0" '[.ws_clients, .requests["/api/ws"]] | @csv')" = "1,$ws_opened" ]
dev=$dev_2_5_0
states=$(stack_sql "$s_var" "SELECT string_agg(session_state, ',' ORDER BY device_id) FROM device_state WHERE device_id IN ($dev_2_4_x, $dev_2_5_0)")
check "idle period over: 2.4.x idle, 2.5.0 (keep_warm) still streaming" [ "$states" = idle,streaming ]
row=$(stack_sql "$s_var" "SELECT online, session_state, firmware, width, height, power_led, last_frame_at IS NOT NULL FROM device_state WHERE device_id = $dev" 2>/dev/null)
check "device_state: online, streaming, firmware, size, LED, last frame" [ "$row" = "t|streaming|2.5.0|800|600|t|t" ]
diag "device_state row: $row"
check "no crash in the capture worker" bash -c "! grep -q 'AddressSanitizer\|runtime error' '$s_var/log/capture.log'"
