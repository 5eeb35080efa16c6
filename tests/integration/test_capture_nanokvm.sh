#!/usr/bin/env bash
# The capture worker against two NanoKVM simulators on different firmware
# (2.2.0: MJPEG parts without Content-Length, login by data.token; head:
# with Content-Length, login by cookie only): devices added over REST with
# sealed credentials, sessions opened through the control socket
# (kvmgate capture), frames read from shared memory; a wrong password
# reports an authentication failure and backs off; a device that goes
# away is retried and recovers while the other keeps streaming.
. "$(dirname "$0")/lib.sh"

with_sims capture

# start_sim NAME PORT FIRMWARE WIDTH HEIGHT: runs a simulator; sets NAME_pid.
start_sim() {
  run_sim "$1" "$2" --firmware "$3" --password 'pa55 +/=word' --width "$4" --height "$5" \
    --time-scale 0.05 --fps 10
}

KVMGATE_FRAME_TIMEOUT_MS=3000 new_stack s || { not_ok "stack starts"; exit 1; }
cli() { KVMGATE_VAR_DIR=$s_var "$bin/kvmgate" capture "$@"; }

a_port=$(free_port); b_port=$(free_port)
start_sim a "$a_port" 2.2.0 640 480
start_sim b "$b_port" head 800 600

# add NAME PORT PASSWORD: a NanoKVM device over REST; prints its id.
add() {
  http POST "$s_url/api/v1/devices" -H "Authorization: Bearer $s_token" -H 'Content-Type: application/json' \
    --data-binary "{\"name\":\"$1\",\"kind\":\"nanokvm\",\"url\":\"http://127.0.0.1:$2\",\"username\":\"admin\",\"password\":\"$3\"}"
  jqr .id
}
a=$(add kvm-a "$a_port" 'pa55 +/=word')
b=$(add kvm-b "$b_port" 'pa55 +/=word')
c=$(add kvm-c "$b_port" 'wrong')
check "three devices added with credentials" [ -n "$a" -a -n "$b" -a -n "$c" ]

# frame ID FILE [AFTER]: a frame newer than AFTER into FILE; sets out.
frame() { out=$(cli frame --device "$1" --out "$2" --after "${3:-0}" --timeout-ms 10000 2>&1); }
seq_of() { awk '{print $2}' <<<"$out"; }

frame "$a" "$work/a.jpg"
check "2.2.0 (no Content-Length): a 640x480 JPEG frame" grep -q '^frame [0-9]* 640x480 .* format 1$' <<<"$out"
check "it is a JPEG of that size" grep -q 'JPEG image data.*640x480' <<<"$(file "$work/a.jpg")"
frame "$b" "$work/b.jpg"
check "head (cookie login): an 800x600 JPEG frame" grep -q '^frame [0-9]* 800x600 ' <<<"$out"
check "it is a JPEG of that size" grep -q 'JPEG image data.*800x600' <<<"$(file "$work/b.jpg")"
b_seq=$(seq_of)
frame "$b" "$work/b2.jpg" "$b_seq"
check "a newer frame on request" [ "$(seq_of)" -gt "$b_seq" ]
check "status: streaming, firmware reported" grep -q "^device $a: streaming, .*firmware 2.2.0$" <<<"$(cli status --device "$a")"

# Wrong password: a clear error, backoff, no crash.
t0=$SECONDS
frame "$c" "$work/c.jpg"
check "wrong password: no frame, authentication failed" grep -q 'authentication failed: login refused: -2' <<<"$out"
check "and the answer comes without waiting for the timeout" [ $((SECONDS - t0)) -lt 8 ]
check "status: backing off" grep -q "^device $c: backing_off, .*error authentication failed" <<<"$(cli status --device "$c")"

# The MCP tool get_screenshot: the same frames through a FastCGI worker.
mcp=$s_url/mcp tok=$s_token sid= ver=2025-11-25
# tool_error_says TEXT: the last tool result is an error whose text contains TEXT.
tool_error_says() { [ "$(jqr .result.isError)" = true ] && grep -qF -- "$1" <<<"$(jqr '.result.content[0].text')"; }
open_session
tool get_screenshot '{"device":"kvm-b"}'
check "get_screenshot: a text block and a JPEG image block" \
  [ "$(jqc '[.result.isError, .result.content[0].type, .result.content[1].type, .result.content[1].mimeType]')" = '[false,"text","image","image/jpeg"]' ]
check "the text names the device, size and capture time" grep -q '^kvm-b: 800x600 JPEG captured 20' <<<"$(jqr '.result.content[0].text')"
jqr '.result.content[1].data' | base64 -d >"$work/mcp.jpg"
check "the image is the device's 800x600 JPEG" grep -q 'JPEG image data.*800x600' <<<"$(file "$work/mcp.jpg")"
tool get_screenshot "{\"device\":\"$a\",\"max_age_ms\":0}"
check "by id, waiting for the next frame" grep -q '^kvm-a: 640x480 JPEG' <<<"$(jqr '.result.content[0].text')"
tool get_screenshot '{"device":"kvm-c"}'
check "wrong credentials: an error that says what to fix" \
  tool_error_says "refused its stored username and password"
tool get_screenshot '{"device":"no-such"}'
check "unknown device: an error pointing to list_devices" tool_error_says "list_devices"

# The password corrected over REST: used at the next attempt, without waiting out the backoff.
http PATCH "$s_url/api/v1/devices/$c" -H "Authorization: Bearer $s_token" -H 'Content-Type: application/json' \
  --data-binary '{"password":"pa55 +/=word"}'
frame "$c" "$work/c.jpg"
check "password corrected: frames" grep -q '^frame [0-9]* 800x600 ' <<<"$out"

# Unknown device.
cli status --device 999999 >/dev/null 2>"$work/err"
check "unknown device: refused with a reason" grep -q 'no such device' "$work/err"

# Device a goes away: backoff, b unaffected; back again: recovery.
capture_pid=$(stack_child "$s_var" kvmgate-capture)
a_seq=$(frame "$a" "$work/a.jpg"; seq_of)
kill "$a_pid"; wait "$a_pid" 2>/dev/null
for _ in $(seq 1 50); do cli status --device "$a" | grep -q backing_off && break; sleep 0.1; done
check "device away: backing off, device offline" grep -q "^device $a: backing_off, .*device offline" <<<"$(cli status --device "$a")"
frame "$b" "$work/b3.jpg" "$(frame "$b" "$work/b.jpg"; seq_of)"
check "the other device keeps streaming meanwhile" grep -q '^frame [0-9]* 800x600 ' <<<"$out"
sleep 2
start_sim a "$a_port" 2.2.0 640 480
frame "$a" "$work/a2.jpg" "$a_seq"
check "device back: a newer frame after recovery" grep -q '^frame [0-9]* 640x480 ' <<<"$out"
# A device changed while its session streams: the session follows at once.
http PATCH "$s_url/api/v1/devices/$b" -H "Authorization: Bearer $s_token" -H 'Content-Type: application/json' \
  --data-binary '{"password":"not it"}'
for _ in $(seq 1 50); do cli status --device "$b" | grep -q 'authentication failed' && break; sleep 0.1; done
check "a streaming session takes a changed password at once: refused, backing off" \
  grep -q "^device $b: backing_off, .*authentication failed" <<<"$(cli status --device "$b")"
http PATCH "$s_url/api/v1/devices/$b" -H "Authorization: Bearer $s_token" -H 'Content-Type: application/json' \
  --data-binary '{"password":"pa55 +/=word"}'
frame "$b" "$work/b4.jpg"
check "the right password again: frames at once" grep -q '^frame [0-9]* 800x600 ' <<<"$out"
# The frame above may be the slot's last one: wait for the new connection to stream.
for _ in $(seq 1 50); do cli status --device "$b" | grep -q "^device $b: streaming" && break; sleep 0.1; done
http PATCH "$s_url/api/v1/devices/$b" -H "Authorization: Bearer $s_token" -H 'Content-Type: application/json' \
  --data-binary '{"enabled":false}'
for _ in $(seq 1 50); do grep -q "device $b: .* -> idle (device disabled or removed)" "$s_var/log/capture.log" && break; sleep 0.1; done
check "a disabled device's session closes at once" grep -q "device $b: streaming -> idle (device disabled or removed)" "$s_var/log/capture.log"
frame "$b" "$work/b5.jpg"
check "and it gives no frames" grep -q 'disabled\|no such device' <<<"$out"
http DELETE "$s_url/api/v1/devices/$c" -H "Authorization: Bearer $s_token"
for _ in $(seq 1 50); do grep -q "device $c: .* -> idle (device disabled or removed)" "$s_var/log/capture.log" && break; sleep 0.1; done
check "a removed device's session closes at once" grep -q "device $c: streaming -> idle (device disabled or removed)" "$s_var/log/capture.log"
check "the capture worker never restarted" [ "$(stack_child "$s_var" kvmgate-capture)" = "$capture_pid" ]
check "no password in the capture worker's log" bash -c "! grep -qF -e 'pa55' -e 'wrong' '$s_var/log/capture.log'"
grep -c 'backing_off' "$s_var/log/capture.log" | sed 's/^/# backoff transitions logged: /'
