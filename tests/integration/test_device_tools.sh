#!/usr/bin/env bash
# The device tools and routes end to end: a stack, a NanoKVM simulator at
# 1920x1080, a device of a kind without a driver (ami) and another
# organisation's device. Tools listed with schemas and annotations; bad
# input (unknown or foreign device, coordinates off the screen, empty or
# oversized text, bad actions and parameters) refused with a sentence and
# nothing sent to any device; a viewer may look but not type; destructive
# power actions wait for confirmation; a kind that cannot do something says
# so over MCP (isError) and REST (501); screenshots passed through, as PNG,
# scaled by max_width or mcp.md section 7, cropped to a region, enhanced.
#
# Then the NanoKVM simulator carries out keys, text (in parts, with progress),
# mouse, power and media through its driver, and shows it.
. "$(dirname "$0")/lib.sh"

sim_bin=${KVMGATE_BIN_DIR%/bin}/tests/sim-nanokvm
[ -x "$sim_bin" ] || sim_bin=$top/build/release/tests/sim-nanokvm
work=$(mktemp -d /tmp/kvmgate-devtools.XXXXXX)
sim_pid=
cleanup() {
  [ -n "$sim_pid" ] && { kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null; }
  rm -rf "$work"
  finish
}
trap cleanup EXIT

new_stack a || { not_ok "stack starts"; exit 1; }
api=$a_url/api/v1 mcp=$a_url/mcp tok=$a_token sid= ver=2025-11-25

sim_port=$(free_port)
LSAN_OPTIONS=suppressions=$top/tests/sim/lsan.supp:print_suppressions=0 \
  "$sim_bin" --port "$sim_port" --password admin --time-scale 0.05 --fps 10 \
  >"$work/sim.out" 2>"$work/sim.err" &
sim_pid=$!
for _ in $(seq 1 50); do grep -qs "^listening on 127.0.0.1:$sim_port$" "$work/sim.out" && break; sleep 0.1; done
simstate() { curl -s "http://127.0.0.1:$sim_port/sim/state"; }

# rest METHOD PATH [curl args...]: a REST call with $tok.
rest() { local m=$1 p=$2; shift 2; http "$m" "$api$p" -H "Authorization: Bearer $tok" "$@"; }
# add NAME KIND URL: a device over REST; prints its id.
add() {
  rest POST /devices -H 'Content-Type: application/json' \
    --data-binary "{\"name\":\"$1\",\"kind\":\"$2\",\"url\":\"$3\",\"username\":\"admin\",\"password\":\"admin\"}"
  jqr .id
}
kvm=$(add kvm-a nanokvm "http://127.0.0.1:$sim_port")
bmc=$(add bmc-1 ami "https://127.0.0.1:1")
check "a NanoKVM (simulated) and an AMI BMC added" [ -n "$kvm" -a -n "$bmc" ]

org1=$(sql "SELECT id FROM organisations WHERE name = 'default'")
org2=$(sql "INSERT INTO organisations (name) VALUES ('other-org') RETURNING id")
foreign=$(sql "INSERT INTO devices (org_id, name, kind, base_url) VALUES ($org2, 'theirs', 'nanokvm', 'http://127.0.0.1:$sim_port') RETURNING id")
# token_for ROLE: a read-write token of a new member with that role.
token_for() {
  local u t
  u=$(sql "INSERT INTO users (username) VALUES ('u-$1-$RANDOM') RETURNING id")
  sql "INSERT INTO memberships (org_id, user_id, role) VALUES ($org1, $u, '$1')" >/dev/null
  t="kvmg_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' | cut -c1-43)"
  sql "INSERT INTO api_tokens (org_id, user_id, name, shown, hash, scopes)
       VALUES ($org1, $u, 'it', '${t:0:12}', '\\x$(printf %s "$t" | sha256sum | cut -c1-64)', '{read,write}')" >/dev/null
  printf '%s' "$t"
}
viewer=$(token_for viewer)
auditor=$(token_for auditor)

# tool NAME [ARGS]: tools/call; a response sent as an event stream is reduced to its
# last message, the result (streaming tools answer that way).
tool() {
  local args=${2:-'{}'}
  call tools/call "{\"name\":\"$1\",\"arguments\":$args}"
  if [[ "$(hdr Content-Type)" == text/event-stream* ]]; then
    body=$(sed -n 's/^data: //p' <<<"$body" | tail -n 1)
  fi
}
# is_error_with TEXT: the last tool result is an error whose first text contains TEXT.
is_error_with() { [ "$(jqr .result.isError)" = true ] && grep -qF -- "$1" <<<"$(jqr '.result.content[0].text')"; }
# ops_seen: device operations the capture worker has answered so far.
ops_seen() { grep -c '"msg":"device [0-9]*: [a-z_]* ' "$a_var/log/capture.log" 2>/dev/null || true; }

# ---- the tools, listed ----------------------------------------------------------------

open_session '{}'
call tools/list
for t in get_device_health type_text send_keys mouse_move mouse_click mouse_scroll reset_hid \
         power_action get_power_state hdmi_reset list_isos mount_iso unmount_iso get_mounted_iso \
         get_screenshot; do
  [ "$(jqr ".result.tools[] | select(.name == \"$t\") | .inputSchema.required | index(\"device\") != null")" = true ] ||
    not_ok "$t: listed with a required device argument"
done
ok "15 device tools listed, each with a required device argument"
check "annotations: power_action and mount_iso destructive, get_power_state read-only, all open-world" \
  [ "$(jqc '[.result.tools[] | select(.name == "power_action" or .name == "mount_iso" or .name == "get_power_state" or .name == "send_keys") | [.name, .annotations.destructiveHint, .annotations.readOnlyHint, .annotations.openWorldHint]]')" = \
    '[["send_keys",false,false,true],["power_action",true,false,true],["get_power_state",false,true,true],["mount_iso",true,false,true]]' ]
check "send_keys takes a string or a list; get_screenshot a region object" \
  [ "$(jqc '[(.result.tools[] | select(.name == "send_keys") | .inputSchema.properties.keys.type), (.result.tools[] | select(.name == "get_screenshot") | .inputSchema.properties.region.required)]')" = '[["string","array"],["x","y","width","height"]]' ]
check "power actions are listed with their actions (power.write, power.read, media.read, devices.health)" \
  [ "$(jqc '[.result.tools[] | select(.name == "power_action" or .name == "get_power_state" or .name == "list_isos" or .name == "get_device_health") | ._meta["kvmgate/action"]]')" = '["devices.health","power.write","power.read","media.read"]' ]

# ---- screenshots -------------------------------------------------------------------------

# shot ARGS FILE: get_screenshot into FILE; prints "mime | text".
shot() {
  tool get_screenshot "$1"
  jqr '.result.content[1].data' | base64 -d >"$2" 2>/dev/null
  echo "$(jqr '.result.content[1].mimeType') | $(jqr '.result.content[0].text')"
}
# png_ok FILE W H: a PNG of that size whose chunks, CRCs and zlib data are sound.
png_ok() {
  python3 - "$1" "$2" "$3" <<'PY'
import struct, sys, zlib
d = open(sys.argv[1], 'rb').read()
assert d[:8] == b'\x89PNG\r\n\x1a\n'
off, idat, w = 8, b'', None
while off < len(d):
    n, = struct.unpack('>I', d[off:off + 4]); t = d[off + 4:off + 8]; body = d[off + 8:off + 8 + n]
    assert zlib.crc32(t + body) == struct.unpack('>I', d[off + 8 + n:off + 12 + n])[0]
    if t == b'IHDR': w, h, depth, colour = struct.unpack('>IIBB', body[:10])
    if t == b'IDAT': idat += body
    off += 12 + n
raw = zlib.decompress(idat)
assert (w, h, depth, colour) == (int(sys.argv[2]), int(sys.argv[3]), 8, 2), (w, h)
assert len(raw) == (w * 3 + 1) * h
PY
}
out=$(shot '{"device":"kvm-a"}' "$work/pass.jpg")
check "get_screenshot with nothing asked: the device's 1920x1080 JPEG as it is" \
  grep -q '^image/jpeg | kvm-a: 1920x1080 JPEG captured' <<<"$out"
check "the image is that JPEG" grep -q 'JPEG image data.*1920x1080' <<<"$(file "$work/pass.jpg")"
out=$(shot '{"device":"kvm-a","format":"png"}' "$work/s7.png")
check "format png: section 7 downscale to 1464x824" grep -q '^image/png | kvm-a: 1464x824 PNG (screen 1920x1080, scaled)' <<<"$out"
check "the PNG decodes (chunks, CRCs, zlib) at 1464x824" png_ok "$work/s7.png" 1464 824
out=$(shot '{"device":"kvm-a","max_width":640}' "$work/w.jpg")
check "max_width 640: 640x360 JPEG" grep -q 'JPEG image data.*640x360' <<<"$(file "$work/w.jpg")"
out=$(shot '{"device":"kvm-a","region":{"x":100,"y":50,"width":300,"height":200},"format":"png"}' "$work/r.png")
check "a region at native resolution: 300x200" png_ok "$work/r.png" 300 200
out=$(shot '{"device":"kvm-a","region":{"x":0,"y":0,"width":1920,"height":1080},"max_width":800}' "$work/rw.jpg")
check "region and max_width together: 800x450" grep -q 'JPEG image data.*800x450' <<<"$(file "$work/rw.jpg")"
out=$(shot '{"device":"kvm-a","enhance":"llm"}' "$work/e.jpg")
check "enhance llm: re-encoded, section 7 applies: 1464x824" grep -q 'JPEG image data.*1464x824' <<<"$(file "$work/e.jpg")"
tool get_screenshot '{"device":"kvm-a","region":{"x":1900,"y":0,"width":100,"height":10}}'
check "a region off the screen: an error naming the screen size" is_error_with "which is 1920x1080"
tool get_screenshot '{"device":"kvm-a","region":{"x":0,"y":0}}'
check "a region without its size: an error naming region.width" is_error_with "region.width"
tool get_screenshot '{"device":"kvm-a","format":"gif"}'
check "an unknown format: an error listing jpeg, png" is_error_with "jpeg, png"

http GET "$api/devices/kvm-a/screenshot" -H "Authorization: Bearer $tok" 2>/dev/null
check "REST screenshot: image/jpeg, 1920x1080, screen size header" \
  [ "$status/$(hdr Content-Type)/$(hdr X-Screen-Size)" = "200/image/jpeg/1920x1080" ]
curl -s -o "$work/rest.jpg" "$api/devices/kvm-a/screenshot" -H "Authorization: Bearer $tok"
check "REST screenshot is the JPEG" grep -q 'JPEG image data.*1920x1080' <<<"$(file "$work/rest.jpg")"
curl -s -o "$work/rest.png" "$api/devices/$kvm/screenshot?format=png&max_width=800" -H "Authorization: Bearer $tok"
check "REST ?format=png&max_width=800: a PNG of 800x450" png_ok "$work/rest.png" 800 450
curl -s -o "$work/rest-r.png" "$api/devices/$kvm/screenshot?format=png&region=10,20,64,32" -H "Authorization: Bearer $tok"
check "REST ?region=10,20,64,32: 64x32" png_ok "$work/rest-r.png" 64 32
for bad in 'format=gif:format' 'max_width=3:max_width' 'region=1,2,3:region' 'region=0,0,0,5:region' \
           'enhance=more:enhance' 'colour=red:colour' 'region=1900,0,100,100:1920x1080'; do
  rest GET "/devices/$kvm/screenshot?${bad%:*}"
  [ "$status/$(jqr .error.code)" = 400/bad_request ] && grep -q "${bad##*:}" <<<"$(jqr .error.message)" ||
    not_ok "REST screenshot ?${bad%:*}: want 400 naming ${bad##*:}, got $status $body"
done
ok "REST screenshot: bad parameters answered 400 naming them"

# ---- health --------------------------------------------------------------------------------

tool get_device_health '{"device":"kvm-a"}'
check "get_device_health: streaming, 1920x1080, firmware" \
  [ "$(jqc '[.result.structuredContent.state, .result.structuredContent.healthy, .result.structuredContent.screen_width, .result.structuredContent.screen_height, (.result.structuredContent.firmware | length > 0)]')" = '["streaming",true,1920,1080,true]' ]
rest GET /devices/bmc-1/health
check "REST health of the AMI BMC (no driver): failed, unsupported" \
  [ "$status/$(jqr .state)/$(jqr .error)" = "200/failed/unsupported by this device kind" ]

# ---- bad input changes nothing -----------------------------------------------------------------

n0=$(ops_seen)
s0=$(simstate | jq -c '[.power, .boots, .iso, .hid]' 2>/dev/null)
tool send_keys '{"device":"no-such","keys":"enter"}'
check "unknown device: an error pointing to list_devices" is_error_with "list_devices"
tool send_keys "{\"device\":\"$foreign\",\"keys\":\"enter\"}"
check "another organisation's device by id: not found" is_error_with "There is no device '$foreign'"
tool send_keys '{"device":"theirs","keys":"enter"}'
check "another organisation's device by name: not found" is_error_with "There is no device 'theirs'"
tool mouse_move '{"device":"kvm-a","x":1920,"y":10}'
check "x off the screen: an error naming the valid range" is_error_with "x must be from 0 to 1919 and y from 0 to 1079"
tool mouse_click '{"device":"kvm-a","x":5,"y":4000}'
check "y off the screen (click)" is_error_with "1920x1080"
tool mouse_scroll '{"device":"kvm-a","x":-1,"y":5}'
check "a negative coordinate: refused by the schema" is_error_with "'x' must be at least 0"
tool mouse_click '{"device":"kvm-a","x":5}'
check "x without y: refused" is_error_with "both 'x' and 'y'"
tool type_text '{"device":"kvm-a","text":""}'
check "empty text: refused" is_error_with "'text' must be at least 1 character"
tool type_text "{\"device\":\"kvm-a\",\"text\":\"$(head -c 16385 /dev/zero | tr '\0' a)\"}"
check "16385 characters of text: refused naming the limit" is_error_with "at most 16384 characters"
tool send_keys '{"device":"kvm-a","keys":[]}'
check "an empty list of keys: refused" is_error_with "at least 1 item"
tool send_keys '{"device":"kvm-a","keys":["a\nb"]}'
check "a key with a line break: refused" is_error_with "without line breaks"
tool power_action '{"device":"kvm-a","action":"explode"}'
check "a bad power action: the list of actions" is_error_with "on, off, off_hard, reset, cycle, power_short, power_long"
tool mount_iso '{"device":"kvm-a","image":"../etc/passwd","confirm":true}'
check "an image name with a directory: refused" is_error_with "without a directory"
tool power_action '{"device":"kvm-a","action":"reset"}'
check "power reset without confirmation: not done, asks for the user's confirmation" \
  is_error_with "This needs the user's confirmation"
tool power_action '{"device":"kvm-a","action":"off_hard","confirm":false}'
check "off_hard with confirm false: not done" is_error_with "This needs the user's confirmation"
tool mount_iso '{"device":"kvm-a","image":"x.iso"}'
check "mount_iso without confirmation: not done" is_error_with "This needs the user's confirmation"
rest POST "/devices/$kvm/mouse" -H 'Content-Type: application/json' --data-binary '{"action":"move","x":1920,"y":0}'
expect_error 400 bad_request "REST mouse off the screen"
check "and the message names the range" grep -q "from 0 to 1919" <<<"$(jqr .error.message)"
for bad in '/mouse|{"action":"jump"}|action' '/mouse|{"action":"move","x":-3,"y":0}|x' \
           '/keys|{"keys":""}|keys' '/keys|{"keys":[]}|keys' '/keys|{"keys":5}|keys' \
           '/text|{"text":""}|text' '/text|{}|text' '/power|{"action":"explode"}|action' \
           '/media|{"as":"floppy","image":"a.iso"}|as' '/media|{}|image' ; do
  IFS='|' read -r path data field <<<"$bad"
  rest POST "/devices/$kvm$path" -H 'Content-Type: application/json' --data-binary "$data"
  [ "$status/$(jqr .error.code)" = 400/bad_request ] && grep -q "$field" <<<"$(jqr .error.message)" ||
    not_ok "REST POST $path $data: want 400 naming $field, got $status $body"
done
ok "REST: bad bodies answered 400 naming the field"
rest POST "/devices/$kvm/text" -H 'Content-Type: application/json' --data-binary "{\"text\":\"$(head -c 16385 /dev/zero | tr '\0' a)\"}"
expect_error 400 bad_request "REST text of 16385 characters"
rest POST "/devices/$kvm/power" -H 'Content-Type: application/json' --data-binary '{"action":"reset"}'
expect_error 400 confirm_required "REST power reset without confirm"
rest POST "/devices/$foreign/keys" -H 'Content-Type: application/json' --data-binary '{"keys":"enter"}'
expect_error 404 not_found "REST keys to another organisation's device"
check "none of it reached the capture worker" [ "$(ops_seen)" = "$n0" ]
check "nor the device: power, boots, ISO and HID as before" [ "$(simstate | jq -c '[.power, .boots, .iso, .hid]' 2>/dev/null)" = "$s0" ]

# ---- confirmation through elicitation -------------------------------------------------

# stream NAME BODY: POSTs BODY in the background, the raw event stream into $work/NAME.
stream() {
  rm -f "$work/$1"
  curl -sN -o "$work/$1" "$mcp" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' -H "Mcp-Session-Id: $sid" \
    -H "MCP-Protocol-Version: $ver" --data-binary "$2" &
  eval "pid_$1=$!"
}
wait_for() { for _ in $(seq 1 200); do grep -q -- "$2" "$work/$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }
events() { sed -n 's/^data: //p' "$work/$1"; }
sid=; open_session '{"elicitation":{}}'
n0=$(ops_seen)
stream pw '{"jsonrpc":"2.0","id":"pw-1","method":"tools/call","params":{"name":"power_action","arguments":{"device":"kvm-a","action":"reset","confirm":true}}}'
wait_for pw elicitation/create
check "power reset, client with elicitation: the user is asked, naming the device and the loss" \
  grep -q "Power action 'reset' on 'kvm-a' restarts it at once; unsaved work is lost" <<<"$(events pw | jq -r 'select(.method == "elicitation/create") | .params.message')"
rpc "{\"jsonrpc\":\"2.0\",\"id\":\"$(events pw | jq -r 'select(.method == "elicitation/create") | .id')\",\"result\":{\"action\":\"decline\"}}"
wait "$pid_pw"
check "declined: not done, although the model passed confirm true" \
  grep -q '^true Not done: the user did not confirm (declined)' <<<"$(events pw | jq -r 'select(.id == "pw-1") | "\(.result.isError) \(.result.content[0].text)"')"
check "and nothing reached the capture worker or the device" \
  [ "$(ops_seen)/$(simstate | jq -c '[.power, .boots, .iso, .hid]' 2>/dev/null)" = "$n0/$s0" ]
stream mi '{"jsonrpc":"2.0","id":"mi-1","method":"tools/call","params":{"name":"mount_iso","arguments":{"device":"bmc-1","image":"debian.iso"}}}'
wait_for mi elicitation/create
rpc "{\"jsonrpc\":\"2.0\",\"id\":\"$(events mi | jq -r 'select(.method == "elicitation/create") | .id')\",\"result\":{\"action\":\"accept\",\"content\":{\"confirm\":true}}}"
wait "$pid_mi"
check "mount_iso accepted by the user: the operation goes to the device (an ami device cannot)" \
  grep -q "kvmgate cannot mount an image on an ami device ('bmc-1')" <<<"$(events mi | jq -r 'select(.id == "mi-1") | .result.content[0].text')"
sid=; open_session '{}'

# ---- roles ----------------------------------------------------------------------------------------

tok=$viewer; sid=; open_session '{}'
tool send_keys '{"device":"kvm-a","keys":"enter"}'
check "a viewer may not press keys" is_error_with "Permission denied: input.write"
tool type_text '{"device":"kvm-a","text":"x"}'
check "nor type" is_error_with "Permission denied: input.write"
tool power_action '{"device":"kvm-a","action":"on"}'
check "nor use power" is_error_with "Permission denied: power.write"
tool get_screenshot '{"device":"kvm-a","max_width":320}'
check "but sees the screen" [ "$(jqr .result.isError)/$(jqr '.result.content[1].mimeType')" = false/image/jpeg ]
tool get_power_state '{"device":"kvm-a"}'
check "and may ask for the power state (not denied)" lacks "$(jqr '.result.content[0].text')" "Permission denied"
rest POST "/devices/$kvm/keys" -H 'Content-Type: application/json' --data-binary '{"keys":"enter"}'
expect_error 403 forbidden "a viewer's REST keys"
rest GET "/devices/$kvm/screenshot?max_width=100" 2>/dev/null
check "a viewer's REST screenshot" [ "$status/$(hdr Content-Type)" = "200/image/jpeg" ]
tok=$auditor; sid=; open_session '{}'
tool get_screenshot '{"device":"kvm-a"}'
check "an auditor sees no screen" is_error_with "Permission denied: console.read"
tool get_device_health '{"device":"kvm-a"}'
check "nor a device's health" is_error_with "Permission denied: devices.health"
rest GET "/devices/$kvm/media"
expect_error 403 forbidden "an auditor's REST media list"
tok=$a_token; sid=; open_session '{}'

# ---- a kind that cannot: the refusal end to end -----------------------------------------------------

n0=$(sql "SELECT count(*) FROM audit_events WHERE org_id = $org1")
tool send_keys '{"device":"bmc-1","keys":"ctrl+alt+delete"}'
check "keys to an AMI BMC (no driver): kvmgate cannot press keys on an ami device" \
  is_error_with "kvmgate cannot press keys on an ami device ('bmc-1')"
check "audited: the intent, then the outcome with the reason" \
  [ "$(sql "SELECT string_agg(outcome || ':' || (coalesce(reason, '') LIKE 'kvmgate cannot press keys on an ami device%')::text, ',' ORDER BY seq) FROM audit_events WHERE org_id = $org1 AND seq > (SELECT max(seq) - 2 FROM audit_events WHERE org_id = $org1)")" = "pending:false,error:true" ]
tool get_screenshot '{"device":"bmc-1"}'
check "a screenshot of it: kvmgate cannot show the screen of an ami device" is_error_with "cannot show the screen of an ami device"
for r in "POST /keys {\"keys\":\"enter\"}" "POST /text {\"text\":\"hi\"}" "POST /mouse {\"action\":\"move\",\"x\":1,\"y\":1}" \
         "GET /power" "POST /power {\"action\":\"on\"}" "GET /media" "POST /media {\"image\":\"a.iso\"}" "DELETE /media" \
         "POST /hid/reset" "POST /hdmi/reset"; do
  read -r m p data <<<"$r"
  rest "$m" "/devices/bmc-1$p" -H 'Content-Type: application/json' ${data:+--data-binary "$data"}
  [ "$status/$(jqr .error.code)" = 501/unsupported ] && grep -q "kvmgate cannot .* on an ami device ('bmc-1')" <<<"$(jqr .error.message)" ||
    not_ok "REST $m $p on the AMI BMC: want 501 unsupported, got $status $body"
done
ok "REST on the AMI BMC: 501 unsupported with the sentence, for every route"
rest GET /devices/bmc-1/screenshot
expect_error 501 unsupported "REST screenshot of the AMI BMC"

# The NanoKVM simulator carries the operations out (its driver's ops): what it shows after.
tool send_keys '{"device":"kvm-a","keys":"ctrl+nosuchkey"}'
check "a bad key name: refused with the driver's reason" is_error_with "'nosuchkey' in 'ctrl+nosuchkey' is not a key name"
tool type_text '{"device":"kvm-a","text":"hello kvmgate"}'
check "type_text: done" [ "$(jqr .result.isError)/$(jqr '.result.content[0].text')" = "false/Typed 13 characters on 'kvm-a'." ]
check "and the text is on the simulator's screen" grep -q 'hello kvmgate' <<<"$(simstate | jq -r '.screen.text | if type == "array" then join("\n") else . end')"
tool mouse_move '{"device":"kvm-a","x":300,"y":200}'
check "mouse_move: the simulator's pointer is at 300,200" \
  [ "$(jqr .result.isError)/$(simstate | jq -c '[.pointer.x, .pointer.y]')" = "false/[300,200]" ]
c0=$(simstate | jq .pointer.clicks)
tool mouse_click '{"device":"kvm-a","x":100,"y":100,"double":true}'
check "mouse_click double at 100,100: done, two clicks there" \
  [ "$(jqr '.result.content[0].text')/$(simstate | jq -c "[.pointer.x, .pointer.y, .pointer.clicks - $c0]")" = "Double-clicked left at 100,100 on 'kvm-a'./[100,100,2]" ]
w0=$(simstate | jq .pointer.wheel)
tool mouse_scroll '{"device":"kvm-a","x":100,"y":100,"amount":2,"direction":"up"}'
check "mouse_scroll: done, the wheel moved" \
  [ "$(jqr .result.isError)/$(simstate | jq ".pointer.wheel != $w0")" = "false/true" ]
tool get_power_state '{"device":"kvm-a"}'
check "get_power_state: on, as structured content" [ "$(jqr .result.isError)/$(jqc .result.structuredContent.power)" = 'false/"on"' ]
rest GET "/devices/$kvm/power"
check "REST GET power: the same" [ "$status/$(jqc .power)" = '200/"on"' ]
tool list_isos '{"device":"kvm-a"}'
check "list_isos: a list of images" [ "$(jqr .result.isError)/$(jqr '.result.structuredContent.images | type')" = "false/array" ]
rest GET "/devices/$kvm/media"
check "REST GET media: images and what is mounted" [ "$status/$(jqr '.images | type')/$(jqr '.mounted | type')" = "200/array/object" ]
tool mount_iso '{"device":"kvm-a","image":"no-such.iso","confirm":true}'
check "mount_iso of an image the device does not have: refused with its reason" is_error_with "no-such.iso"
b0=$(simstate | jq .boots)
tool power_action '{"device":"kvm-a","action":"reset","confirm":true}'
check "power reset with confirm true (no elicitation): done, the machine booted again" \
  [ "$(jqr '.result.content[0].text')/$(simstate | jq ".boots > $b0")" = "Power action 'reset' done on 'kvm-a'./true" ]
rest POST "/devices/$kvm/keys" -H 'Content-Type: application/json' --data-binary '{"keys":["shift+a","enter"]}'
check "REST keys: 200 with what was done" [ "$status/$(jqr .done)" = "200/Pressed shift+a enter on 'kvm-a'." ]
rest POST "/devices/$kvm/text" -H 'Content-Type: application/json' --data-binary '{"text":"a\tb"}'
check "REST text with a tab: 200" [ "$status/$(jqr .done)" = "200/Typed 3 characters on 'kvm-a'." ]
rest POST "/devices/$kvm/keys" -H 'Content-Type: application/json' --data-binary '{"keys":"ctrl+nosuchkey"}'
check "REST keys with a bad name: 400 with the driver's reason" \
  [ "$status/$(jqr .error.code)/$(jqr '.error.message | contains("is not a key name")')" = "400/bad_request/true" ]
long=$(head -c 4500 /dev/zero | tr '\0' x)
call tools/call "{\"name\":\"type_text\",\"arguments\":{\"device\":\"kvm-a\",\"text\":\"$long\"},\"_meta\":{\"progressToken\":\"p-long\"}}"
events=$body
body=$(sed -n 's/^data: //p' <<<"$events" | tail -n 1)
check "a long type_text: typed in three parts, progress 2048 and 4096 of 4500, then the result" \
  [ "$(sed -n 's/^data: //p' <<<"$events" | jq -sc '[.[] | select(.method == "notifications/progress") | .params | [.progressToken, .progress, .total]]')/$(jqr '.result.content[0].text')" = \
    '[["p-long",2048,4500],["p-long",4096,4500]]/Typed 4500 characters on '"'"'kvm-a'"'"'.' ]
tool reset_hid '{"device":"kvm-a"}'
check "reset_hid: done" [ "$(jqr '.result.content[0].text')" = "Reset the keyboard and mouse of 'kvm-a'." ]
rest POST "/devices/$kvm/hid/reset"
check "REST POST hid/reset: 200" [ "$status/$(jqr .done)" = "200/Reset the keyboard and mouse of 'kvm-a'." ]
rest POST "/devices/$kvm/hdmi/reset"
check "REST POST hdmi/reset: 200" [ "$status" = 200 ]
tool get_device_health '{"device":"kvm-a"}'
check "get_device_health: what the device says of itself (info)" [ "$(jqr '.result.structuredContent.info | type')" = object ]

check "the chain is intact after all of it" quiet env KVMGATE_VAR_DIR="$a_var" "$bin/kvmgate" audit verify
