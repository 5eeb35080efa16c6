#!/usr/bin/env bash
# The NanoKVM simulator (tests/sim/) against protocols/nanokvm.md, for each
# firmware profile: login with the web UI's password encryption and its
# failure modes, tokens, paste limits, HID over /api/ws in both protocols,
# power, storage, MJPEG framing, no HDMI signal. No stack: just the simulator.
. "$(dirname "$0")/lib.sh"

sim_bin=${KVMGATE_BIN_DIR%/bin}/tests/sim-nanokvm
[ -x "$sim_bin" ] || sim_bin=$top/build/release/tests/sim-nanokvm
node_dir=$("$top/scripts/e2e-deps.sh" 2>/dev/null) || { echo "# no Node 22: skip"; exit 77; }
node=$node_dir/node
client=$top/tests/integration/nanokvm-client.mjs
sims=()
work=$(mktemp -d /tmp/kvmgate-sim.XXXXXX)

cleanup() {
  local p
  for p in "${sims[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  if grep -l -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$work"/*.err 2>/dev/null; then
    not_ok "no sanitizer report from the simulator"
    grep -h -A 30 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$work"/*.err | head -60
  fi
  rm -rf "$work"
  finish
}
trap cleanup EXIT

# start_sim NAME ARGS...: runs the simulator on a free port; sets NAME_url.
start_sim() {
  local name=$1 port
  shift
  port=$(free_port)
  # libwebsockets 4.1 can lose a 72-byte buffer of a connection that closes
  # mid-request; that leak is the library's (tests/sim/lsan.supp).
  LSAN_OPTIONS=suppressions=$top/tests/sim/lsan.supp:print_suppressions=0 \
    "$sim_bin" --port "$port" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  sims+=($!)
  for _ in $(seq 1 50); do grep -q "^listening on 127.0.0.1:$port$" "$work/$name.out" && break; sleep 0.1; done
  printf -v "${name}_url" '%s' "http://127.0.0.1:$port"
}

# encrypt PASSWORD [SALT_HEX]: the web UI's recipe (section 2.2), percent-encoded.
# With a fixed salt openssl leaves out the Salted__ header, so it is added here.
b64_of() {
  if [ -n "${2:-}" ]; then
    { printf 'Salted__'; printf "$(sed 's/../\\x&/g' <<<"$2")"
      printf '%s' "$1" | openssl enc -aes-256-cbc -md md5 -pass pass:nanokvm-sipeed-2024 -S "$2" 2>/dev/null; } | base64 -w0
  else
    printf '%s' "$1" | openssl enc -aes-256-cbc -md md5 -pass pass:nanokvm-sipeed-2024 -a -A 2>/dev/null
  fi
}
pct() { sed -e 's/+/%2B/g' -e 's,/,%2F,g' -e 's/=/%3D/g' <<<"$1"; }
encrypt() { pct "$(b64_of "$@")"; }

# api METHOD PATH [BODY]: a call with the cookie $tok to $url.
api() {
  local args=(-H 'Content-Type: application/json')
  [ -n "${tok:-}" ] && args+=(-b "nano-kvm-token=$tok")
  [ -n "${3:-}" ] && args+=(--data-binary "$3")
  http "$1" "$url$2" "${args[@]}"
}
login() {
  http POST "$url/api/auth/login" -H 'Content-Type: application/json' \
    --data-binary "{\"username\":\"admin\",\"password\":\"$1\"}"
}
# token_of: the token of the last login, from Set-Cookie or data.token (section 11).
token_of() {
  local c
  c=$(hdr Set-Cookie | sed -n 's/^nano-kvm-token=\([^;]*\);.*/\1/p')
  [ -n "$c" ] && echo "$c" || jqr .data.token
}
state() { curl -s "$url/sim/state" | jq -r "$1"; }
envelope() { [ "$status" = 200 ] && [ "$(jqc '[.code,.msg]')" = "$1" ]; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

check "known-answer test of the password recipe" \
  [ "$(encrypt admin 0001020304050607)" = "U2FsdGVkX18AAQIDBAUGB7RQW%2Bo4DxJ1XwZq5sFeCig%3D" ]

mkdir -p "$work/data/sub"
: >"$work/data/debian.iso"; : >"$work/data/sub/tools.IMG"; : >"$work/data/notes.txt"

for fw in 2.3.1-legacy 2.4.x 2.5.0 head; do
  diag "firmware profile $fw"
  case $fw in
    2.3.1-legacy) app=2.3.1 ;; 2.4.x) app=2.4.3 ;; head) app=2.5.1 ;; *) app=$fw ;;
  esac
  v=${app//./}
  start_sim s --firmware "$fw" --password 's3cret pw' --width 800 --height 600 \
    --state-dir "$work/data" --time-scale 0.05 --usb-offline-ms 1500 --ws-deadline 2
  url=$s_url tok=

  # Login (sections 2.2, 2.3, 10.1-2).
  login "$(encrypt 's3cret pw')"
  if [ "$fw" = head ]; then
    check "$fw: login answers data:null" envelope '[0,"success"]'
    check "$fw: login sets an HttpOnly SameSite=Strict cookie" \
      grep -qi '^set-cookie: nano-kvm-token=[^;]*; Path=/; Max-Age=2678400; HttpOnly; SameSite=Strict' <<<"$headers"
  else
    check "$fw: login answers data.token, no cookie" \
      [ "$(jqr '.code')/$(hdr Set-Cookie)" = 0/ -a -n "$(jqr .data.token)" ]
  fi
  tok=$(token_of)
  api GET /api/vm/info
  check "$fw: vm/info application $app" [ "$(jqr .data.application)" = "$app" ]
  check "$fw: vm/info has ips[]" [ "$(jqr '.data.ips[0].version')" = IPv4 ]

  t0=$(date +%s%N); saved=$tok; tok=
  login "$(encrypt 'wrong')"
  check "$fw: wrong password -2 after the delay" \
    [ "$(jqc '[.code,.msg,.data]')" = '[-2,"invalid username or password",null]' -a "$(ms_since "$t0")" -ge 90 ]
  while b=$(b64_of 's3cret pw'); [[ $b != *+* ]]; do :; done
  login "$b"
  check "$fw: unescaped base64 with + is a wrong password" envelope '[-2,"invalid username or password"]'
  login "$(pct "$(printf 'Salted__12345678abcdefghijklmnopq' | base64 -w0)")"
  check "$fw: ciphertext not a multiple of 16 is HTTP 500, empty body" [ "$status/$body" = 500/ ]
  login "$(printf 'plaintext')"
  check "$fw: a plaintext password is a wrong password" envelope '[-2,"invalid username or password"]'
  http POST "$url/api/auth/login" -H 'Content-Type: application/json' --data-binary '{"username":"admin"}'
  check "$fw: missing field -1 invalid parameters" envelope '[-1,"invalid parameters"]'

  # Tokens (section 10.3-4).
  api GET /api/vm/gpio
  check "$fw: no token: 401 \"unauthorized\"" [ "$status/$body" = '401/"unauthorized"' ]
  tok=garbage.token.here; api GET /api/vm/gpio
  check "$fw: garbage token: 401" [ "$status/$body" = '401/"unauthorized"' ]
  tok=$saved
  api GET /api/vm/gpio/led
  check "$fw: /api/vm/gpio/led is 404 page not found" [ "$status/$body" = '404/404 page not found' ]
  api GET /api/vm/hdmi
  case $fw in
    head)  want='{"enabled":true,"signal":true,"idleTimeout":0}' ;;
    2.5.0) want='{"enabled":true,"idleTimeout":0}' ;;
    *)     want='{"enabled":true}' ;;
  esac
  check "$fw: GET /api/vm/hdmi is $want" [ "$(jqc .data)" = "$want" ]

  # Paste (section 7).
  api POST /api/hid/paste '{"content":"echo Hello, World! 123\n"}'
  check "$fw: paste answers 0" envelope '[0,"success"]'
  check "$fw: pasted text is on the screen" [ "$(state '.screen.text[1]')" = "echo Hello, World! 123" ]
  api POST /api/hid/paste '{"Content":"ls -l /tmp | wc\temoji\ud83d\ude00 skipped\n","langue":"es"}'
  check "$fw: unknown langue typed as US, unmappable runes skipped" \
    [ "$(jqr .code)/$(state '.screen.text[2]')" = "0/ls -l /tmp | wc emoji skipped" ]
  api POST /api/hid/paste '{"content":""}'
  check "$fw: empty paste -1" envelope '[-1,"invalid arguments"]'
  long1025=$(head -c 1025 /dev/zero | tr '\0' a)
  api POST /api/hid/paste "{\"content\":\"$long1025\"}"
  check "$fw: 1025 bytes: -2 content too long" envelope '[-2,"content too long"]'
  e600=$(for _ in $(seq 600); do printf 'é'; done)
  api POST /api/hid/paste "{\"content\":\"$e600\"}"
  l834=$(head -c 834 /dev/zero | tr '\0' b)
  if [ "$v" -ge 250 ]; then
    check "$fw: 600 two-byte runes fit the 833-rune limit" envelope '[0,"success"]'
    api POST /api/hid/paste "{\"content\":\"$l834\"}"
    check "$fw: 834 runes: -2 content too long" envelope '[-2,"content too long"]'
  else
    check "$fw: 600 two-byte runes exceed 1024 bytes: -2" envelope '[-2,"content too long"]'
  fi
  if [ "$fw" = 2.4.x ]; then
    api POST /api/hid/paste '{"content":"zy@\n","langue":"de"}'
    check "$fw: de layout sends QWERTZ usages (a US host shows yz, AltGr+q nothing)" \
      [ "$(state '.screen.text[3]')" = "yz" ]
  fi

  # HID over /api/ws (sections 4, 5).
  ws="ws://${url#http://}/api/ws"
  if [ "$fw" = 2.3.1-legacy ]; then
    steps=('t:[1,11,0,2,0,0]' 't:[1,0,0,0,0,0]' 't:[1,12,0,0,0,0]' 't:[1,0,0,0,0,0]' 't:[1,40,0,0,0,0]'
           't:[1,0,0,0,0,0]' "t:[2,2,0,16384,16384]" 't:not json' 'b:010000050000000000')
  else
    # H (Shift+h), i, Enter; wrong lengths, JSON and unknown types are dropped.
    steps=(b:0102000b0000000000 b:010000000000000000 b:0100000c0000000000 b:0100000c00000000
           b:010000000000000000 b:01000028000000000000 b:010000280000000000 b:010000000000000000
           b:0200004000400000 b:02000040004000 't:[1,4,0,0,0,0]' b:0900)
  fi
  out=$("$node" "$client" ws "$ws" "$tok" "${steps[@]}")
  check "$fw: ws sends capture-status on connect" grep -q '"type":"capture-status","data":{"ok":true,"result":0' <<<"$out"
  if [ "$v" -ge 250 ]; then
    check "$fw: ws sends hid-led-status on connect" grep -q '"type":"hid-led-status"' <<<"$out"
  else
    check "$fw: no hid-led-status before 2.5.0" lacks "$out" hid-led-status
  fi
  check "$fw: keyboard reports typed Hi and Enter; wrong lengths dropped" \
    [ "$(state '[.screen.text[-1], .screen.cursor_col, (.screen.cursor_row == (.screen.text|length))]|join("|")')" = "Hi|0|true" ]
  check "$fw: absolute pointer 16384,16384 is the middle pixel" \
    [ "$(state '[.pointer.x,.pointer.y]|join(",")')" = "399,299" ]
  check "$fw: no reply frames to input" [ "$(grep -c . <<<"$out")" -le 3 ]

  # Power (section 10.5).
  api POST /api/vm/gpio '{"type":"power"}'
  api GET /api/vm/gpio
  check "$fw: short power press turns the host off (pwr false)" [ "$(jqc .data)" = '{"pwr":false,"hdd":false}' ]
  check "$fw: no HDMI signal while the host is off" [ "$(state .hdmi.signal)" = false ]
  api POST /api/vm/gpio '{"type":"power","duration":5000}'
  check "$fw: long press turns it back on" [ "$(state '.power,.led' | tr '\n' ' ')" = "true true " ]
  boots=$(state .boots)
  api POST /api/vm/gpio '{"type":"reset"}'
  check "$fw: reset reboots the host (screen cleared)" \
    [ "$(state .boots)" = $((boots + 1)) -a "$(state '.screen.text|length')" = 1 ]
  api POST /api/vm/gpio '{"type":"sleep"}'
  check "$fw: bad gpio type: -2 invalid power event" envelope '[-2,"invalid power event: sleep"]'
  api POST /api/vm/gpio '{"duration":100}'
  check "$fw: missing gpio type: -1" [ "$(jqr .code)" = -1 ]

  # Storage (section 10.10).
  api GET /api/storage/image
  check "$fw: image list recursive, .iso/.img only" \
    [ "$(jqc '.data.files|sort')" = '["/data/debian.iso","/data/sub/tools.IMG"]' ]
  api POST /api/storage/image/mount '{"file":"/data/missing.iso","cdrom":true}'
  check "$fw: mounting a missing file: -2 mount image failed" envelope '[-2,"mount image failed"]'
  n=$(state .hid.usb_enumerations)
  api POST /api/storage/image/mount '{"file":"/data/debian.iso","cdrom":true}'
  check "$fw: mount answers 0" envelope '[0,"success"]'
  check "$fw: mount re-enumerates USB, HID offline" \
    [ "$(state '[.hid.usb_enumerations,.hid.online]|join(",")')" = "$((n + 1)),false" ]
  api GET /api/storage/image/mounted
  check "$fw: mounted file" [ "$(jqc .data)" = '{"file":"/data/debian.iso"}' ]
  api GET /api/storage/cdrom
  check "$fw: cdrom flag 1" [ "$(jqc .data)" = '{"cdrom":1}' ]
  check "$fw: the status line names the ISO" grep -q 'debian.iso' <<<"$(state .iso)"
  api POST /api/storage/image/mount '{}'
  api GET /api/storage/image/mounted
  check "$fw: unmount with {} empties mounted.file" [ "$(jqc .data)" = '{"file":""}' ]

  # MJPEG (sections 6.1, 10.7).
  out=$("$node" "$client" mjpeg "$url/api/stream/mjpeg?n=1" "$tok")
  check "$fw: MJPEG multipart boundary=frame, chunked" \
    [ "$(jq -r '[.status,.contentType,.chunked]|join(" ")' <<<"$out")" = "200 multipart/x-mixed-replace; boundary=frame true" ]
  check "$fw: part has Content-Length matching the JPEG, CRLF after it" \
    [ "$(jq -r '[.contentLength==.jpegBytes, .soi, .crlfAfter]|join(",")' <<<"$out")" = "true,true,true" ]
  check "$fw: the JPEG is 800x600 (SOF0)" [ "$(jq -r '"\(.width)x\(.height)"' <<<"$out")" = 800x600 ]

  # Expired token, logout (section 10.3).
  # The expiry is whole seconds (as the device's JWT), so a 4 s token lives
  # at least 3 s: enough for a loaded machine to use it once.
  start_sim e --firmware "$fw" --token-ttl 4 --time-scale 0.05
  url=$e_url; login "$(encrypt admin)"; tok=$(token_of)
  api GET /api/vm/gpio
  check "$fw: fresh short-lived token accepted" [ "$status" = 200 ]
  sleep 5.1
  api GET /api/vm/gpio
  check "$fw: expired token: 401" [ "$status/$body" = '401/"unauthorized"' ]
  url=$s_url tok=$saved
  login "$(encrypt 's3cret pw')"; other=$(token_of)
  api POST /api/auth/logout
  tok=$other; api GET /api/vm/gpio
  if [ "$fw" = head ]; then
    check "$fw: logout revokes that user's tokens" [ "$status" = 401 ]
  else
    check "$fw: logout kills every client's token" [ "$status" = 401 ]
  fi
done

diag "older firmware and special cases"
start_sim o --firmware 2.2.0 --width 640 --height 480 --time-scale 0.05
url=$o_url; login "$(encrypt admin)"; tok=$(token_of)
out=$("$node" "$client" mjpeg "$url/api/stream/mjpeg" "$tok")
check "2.2.0: MJPEG parts without Content-Length" \
  [ "$(jq -r '[.contentLength, .soi, .width, .height]|join(",")' <<<"$out")" = ",true,640,480" ]
api GET /api/vm/hdmi
check "2.2.0: no GET /api/vm/hdmi (404)" [ "$status" = 404 ]
api GET /api/vm/info
check "2.2.0: vm/info has an ip string" [ "$(jqr .data.ip)" = 127.0.0.1 ]
api POST /api/hid/paste "{\"content\":\"$long1025\"}"
check "2.2.0: too long paste: -2 with an empty message" envelope '[-2,""]'
out=$("$node" "$client" ws "ws://${url#http://}/api/ws" "$tok" 't:[1,4]')
check "legacy JSON: a too-short array kills the server's socket" grep -q '"close"' <<<"$out"
api GET /api/vm/gpio
check "legacy JSON: the crash restarted the device (tokens dead)" [ "$status" = 401 ]

start_sim n --firmware head --no-hdmi --time-scale 0.05 --ws-deadline 2
url=$n_url; login "$(encrypt admin)"; tok=$(token_of)
api GET /api/vm/hdmi
check "no HDMI: head reports signal:false" [ "$(jqr .data.signal)" = false ]
out=$("$node" "$client" mjpeg "$url/api/stream/mjpeg" "$tok" --timeout 1500)
check "no HDMI: MJPEG sends no headers and no parts" [ "$(jq -r '[.status,.timeout]|join(",")' <<<"$out")" = "0,true" ]
out=$("$node" "$client" ws "ws://${url#http://}/api/ws" "$tok" --wait 50)
check "no HDMI: capture-status ok:false result -1 severity error" \
  grep -q '"ok":false,"result":-1,"message":"No image captured","mode":"mjpeg","severity":"error"' <<<"$out"
out=$("$node" "$client" ws "ws://${url#http://}/api/ws" "$tok" --origin http://elsewhere.example)
check "head: a foreign Origin is refused" grep -q refused <<<"$out"
out=$("$node" "$client" ws "ws://${url#http://}/api/ws" "$tok" --wait 5000 sleep:10)
check "2.5.0+: the socket closes after the read deadline without messages" grep -q '"close"' <<<"$out"
