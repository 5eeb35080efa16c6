#!/usr/bin/env bash
# The vnc device kind against real VNC servers: TigerVNC's Xvnc with an
# xterm (security None, VNC authentication, VeNCrypt TLS), each encoding
# forced in turn, websockify in front (ws://), a resolution change with
# xrandr, QEMU's VNC server when installed, and fake servers that lie or
# stall. Screenshots go through MCP get_screenshot and are compared with an
# independent capture (xwd); typing goes through `kvmgate capture type` into
# an xterm running `cat > file`, an exact check. (Xvnc blacklists a client after a few
# failed logins; the wrong-password cases would lock out the others, so its threshold is raised.)
. "$(dirname "$0")/lib.sh"

# Packages this test needs, installed when missing (as root; else skip).
need=(tigervnc-standalone-server tigervnc-tools xterm x11-apps x11-xserver-utils websockify
      imagemagick python3 qemu-system-x86)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "# skip: needs ${missing[*]}"; exit 77; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    { echo "# skip: cannot install ${missing[*]}"; exit 77; }
fi
# ImageMagick, not a stand-in that happens to be first on PATH.
convert=/usr/bin/convert

work=$(mktemp -d /tmp/kvmgate-vnc.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$work"
  finish
}
trap cleanup EXIT

# free_display: an X display number with neither a lock file nor its VNC port in use.
free_display() {
  local d
  while :; do
    d=$(( 100 + RANDOM % 400 ))
    [ -e "/tmp/.X$d-lock" ] && continue
    ss -Hltn "sport = :$((5900 + d))" 2>/dev/null | grep -q . && continue
    echo "$d"; return
  done
}

# xvnc NAME WxH ARGS...: an Xvnc with an xterm running `cat > $work/NAME.typed`
# that fills the screen; sets NAME_disp and NAME_port.
xvnc() {
  local name=$1 geom=$2 d port
  shift 2
  d=$(free_display)
  port=$((5900 + d))
  Xvnc ":$d" -geometry "$geom" -depth 24 -rfbport "$port" -localhost -nolisten tcp -AlwaysShared -BlacklistThreshold 100000 \
    -desktop "kvmgate-$name" "$@" >"$work/$name.xvnc.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 50); do ss -Hltn "sport = :$port" | grep -q . && break; sleep 0.1; done
  DISPLAY=:$d xterm -geometry 300x100+0+0 -fa '' -fn fixed -e sh -c "cat > '$work/$name.typed'" \
    >"$work/$name.xterm.log" 2>&1 &
  pids+=($!)
  printf -v "${name}_disp" '%s' "$d"
  printf -v "${name}_port" '%s' "$port"
  sleep 1
}

KVMGATE_FRAME_TIMEOUT_MS=3000 new_stack s || { not_ok "stack starts"; exit 1; }
cli() { KVMGATE_VAR_DIR=$s_var "$bin/kvmgate" capture "$@"; }
mcp=$s_url/mcp tok=$s_token sid= ver=2025-11-25
open_session

# add NAME URL [PASSWORD]: a vnc device over REST; prints its id.
add() {
  local pw=""
  [ -n "${3:-}" ] && pw=",\"password\":\"$3\""
  http POST "$s_url/api/v1/devices" -H "Authorization: Bearer $s_token" -H 'Content-Type: application/json' \
    --data-binary "{\"name\":\"$1\",\"kind\":\"vnc\",\"url\":\"$2\"$pw}"
  jqr .id
}

# shot NAME FILE: get_screenshot over MCP (a fresh frame) into FILE; sets shot_text.
shot() {
  local try
  for try in 1 2; do
    tool get_screenshot "{\"device\":\"$1\",\"max_age_ms\":0}"
    shot_text=$(jqr '.result.content[0].text')
    grep -q ' JPEG ' <<<"$shot_text" && break
    diag "get_screenshot $1 (try $try): $shot_text"
  done
  jqr '.result.content[1].data' | base64 -d >"$2" 2>/dev/null
}

# close_to JPEG DISPLAY: the JPEG matches xwd's capture of DISPLAY in size, and its
# mean absolute difference per channel is small (JPEG loses a little).
close_to() {
  local jpg=$1 d=$2 diff
  xwd -root -silent -display ":$d" >"$work/root.xwd" || return 1
  "$convert" "$work/root.xwd" -depth 8 "$work/root.ppm" && "$convert" "$jpg" -depth 8 "$work/shot.ppm" || return 1
  diff=$(python3 - "$work/root.ppm" "$work/shot.ppm" <<'PY'
import sys
def ppm(path):
    data = open(path, 'rb').read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos+1].isspace(): pos += 1
        if data[pos:pos+1] == b'#':
            pos = data.index(b'\n', pos); continue
        end = pos
        while not data[end:end+1].isspace(): end += 1
        fields.append(data[pos:end]); pos = end
    return int(fields[1]), int(fields[2]), data[pos+1:]
w1, h1, a = ppm(sys.argv[1]); w2, h2, b = ppm(sys.argv[2])
if (w1, h1) != (w2, h2):
    print("size %dx%d vs %dx%d" % (w1, h1, w2, h2)); sys.exit()
print("%.2f" % (sum(abs(x - y) for x, y in zip(a[::7], b[::7])) / len(a[::7])))
PY
)
  diag "screenshot vs xwd of :$d: mean difference $diff"
  [[ "$diff" =~ ^[0-9.]+$ ]] && awk -v d="$diff" 'BEGIN { exit !(d < 6) }'
}

# differ A B: two JPEGs of the same size differ (mean difference > 0.3: more than a
# blinking text cursor).
differ() {
  "$convert" "$1" -depth 8 "$work/d1.ppm" && "$convert" "$2" -depth 8 "$work/d2.ppm" || return 1
  python3 - "$work/d1.ppm" "$work/d2.ppm" <<'PY'
import sys
a, b = (open(p, 'rb').read() for p in sys.argv[1:3])
d = sum(abs(x - y) for x, y in zip(a[64::5], b[64::5])) / max(1, len(a[64::5]))
print("# screens differ by %.2f" % d)
sys.exit(0 if len(a) == len(b) and d > 0.3 else 1)
PY
}

same() { ! differ "$@"; }

# typed NAME TEXT: TEXT then Enter through the CLI; the xterm's cat wrote exactly TEXT.
typed_ok() {
  local name=$1 dev=$2 text=$3 f
  f="$work/$name.typed"
  : >"$f.before"; [ -f "$f" ] && cp "$f" "$f.before"
  cli op "$dev" text "$text" >/dev/null && cli op "$dev" keys enter >/dev/null || return 1
  for _ in $(seq 1 50); do [ "$(wc -l <"$f" 2>/dev/null)" -gt "$(wc -l <"$f.before")" ] && break; sleep 0.1; done
  [ "$(tail -n 1 "$f")" = "$text" ] || { diag "typed: $(tail -n 1 "$f" | od -c | head -3)"; return 1; }
}

word=$(tr -dc 'a-z' </dev/urandom | head -c 8)
text="$word ABC xyz 123 !@#\$%^&*()_+{}|:\"<>?~ -=[]\\;',./\`"

# ---- security None, every encoding -------------------------------------------------
xvnc a 1024x768 -SecurityTypes None
a=$(add vnc-a "vnc://127.0.0.1:$a_port")
check "device added (kind vnc)" [ -n "$a" ]
shot vnc-a "$work/a.jpg"
check "get_screenshot: 1024x768 JPEG" grep -q '^vnc-a: 1024x768 JPEG' <<<"$shot_text"
check "the screenshot matches xwd's" close_to "$work/a.jpg" "$a_disp"
check "status: streaming, the server's RFB version and desktop name as firmware" grep -q "^device $a: streaming, .*firmware RFB 3.8 kvmgate-a" <<<"$(cli status --device "$a")"
cli op "$a" move 500 300 >/dev/null
check "typing: a random word and every shifted symbol arrive exactly" typed_ok a "$a" "$text"

# The same through MCP: type_text, send_keys, and a click outside the screen.
f="$work/a.typed"
n0=$(wc -l <"$f")
# (type_text may answer as an event stream; a client that accepts only JSON gets JSON.)
accept=application/json tool type_text "{\"device\":\"vnc-a\",\"text\":\"mcp $word ~!@#\"}"
check "MCP type_text: done" [ "$(jqr .result.isError)" = false ]
[ "$(jqr .result.isError)" = false ] || diag "type_text: $status $body"
tool send_keys '{"device":"vnc-a","keys":["enter"]}'
check "MCP send_keys enter: done" [ "$(jqr .result.isError)" = false ]
for _ in $(seq 1 50); do [ "$(wc -l <"$f")" -gt "$n0" ] && break; sleep 0.1; done
check "and the xterm got exactly that line" [ "$(tail -n 1 "$f")" = "mcp $word ~!@#" ]
# The real thing for OCR: Xvnc's xterm (black on white, the "fixed" font) read back.
accept=application/json tool type_text '{"device":"vnc-a","text":"ocr check kernel rabbit castle\n"}'
tool read_screen_text '{"device":"vnc-a","max_age_ms":0}'
check "read_screen_text: the xterm's line is read back from the real screen" \
  grep -qiF "kernel rabbit castle" <<<"$(jqr .result.structuredContent.text)"
diag "xterm OCR: $(jqr '.result.structuredContent | "\(.ocr_ms) ms, \(.lines) lines, confidence \(.confidence)"')"
accept=application/json tool wait_for_screen '{"device":"vnc-a","text":"rabbit castle","timeout_ms":10000}'
check "wait_for_screen finds it there" [ "$(jqr .result.structuredContent.found)" = true ]
tool mouse_click '{"device":"vnc-a","x":2000,"y":10}'
check "MCP mouse_click outside the screen: an error naming the screen size" \
  bash -c "[ '$(jqr .result.isError)' = true ] && grep -q '1024x768' <<<'$(jqr '.result.content[0].text')'"

for enc in raw copyrect hextile zrle tight; do
  id=$(add "vnc-a-$enc" "vnc://127.0.0.1:$a_port?encodings=$enc$([ $enc = copyrect ] && echo ,raw)")
  shot "vnc-a-$enc" "$work/a-$enc.jpg"
  check "encodings=$enc: a 1024x768 screenshot" grep -q "^vnc-a-$enc: 1024x768 JPEG" <<<"$shot_text"
  check "encodings=$enc: it matches xwd's" close_to "$work/a-$enc.jpg" "$a_disp"
done
check "typing through a tight-only session" typed_ok a "$id" "tight $word"

# A click and a scroll go through (the xterm ignores them; the server must not complain).
check "click, double click, right click, scroll" bash -c \
  "$(declare -f cli); s_var=$s_var bin=$bin; cli op $a click 10 10 >/dev/null && cli op $a click 10 10 left 2 >/dev/null &&
   cli op $a click 10 10 right >/dev/null && cli op $a click >/dev/null && cli op $a scroll -3 10 10 >/dev/null &&
   cli op $a scroll 2 >/dev/null && cli op $a hid-reset >/dev/null"
out=$(cli op "$a" click 5000 10 2>&1)
check "a click outside the screen is refused with the screen's size" grep -q 'outside the 1024x768 screen' <<<"$out"

# ---- VNC authentication ------------------------------------------------------------
echo 'vnc-pw-1' | vncpasswd -f >"$work/passwd"
xvnc b 800x600 -SecurityTypes VncAuth -PasswordFile "$work/passwd"
b=$(add vnc-b "vnc://127.0.0.1:$b_port" 'vnc-pw-1')
shot vnc-b "$work/b.jpg"
check "VncAuth: an 800x600 screenshot" grep -q '^vnc-b: 800x600 JPEG' <<<"$shot_text"
check "VncAuth: it matches xwd's" close_to "$work/b.jpg" "$b_disp"
cli op "$b" move 400 300 >/dev/null
check "VncAuth: typing arrives" typed_ok b "$b" "auth $word"
bad=$(add vnc-b-bad "vnc://127.0.0.1:$b_port" 'wrong-pw')
out=$(cli frame --device "$bad" --out "$work/bad.jpg" --timeout-ms 5000 2>&1)
check "a wrong password: authentication failed, with the server's reason" grep -q 'authentication failed' <<<"$out"
nopw=$(add vnc-b-nopw "vnc://127.0.0.1:$b_port")
cli frame --device "$nopw" --out "$work/nopw.jpg" --timeout-ms 3000 >/dev/null 2>&1
check "no password stored: failed, with a reason that says so" \
  grep -q "device $nopw: connecting -> failed (configuration error: .*no password is stored" "$s_var/log/capture.log"

# ---- resolution change -------------------------------------------------------------
DISPLAY=:$b_disp xrandr -s 1024x768 >/dev/null 2>&1 || DISPLAY=:$b_disp xrandr --fb 1024x768 >/dev/null 2>&1
sleep 0.5
shot vnc-b "$work/b2.jpg"
check "xrandr to 1024x768: the next screenshot has the new size" grep -q '^vnc-b: 1024x768 JPEG' <<<"$shot_text"
check "and matches xwd's" close_to "$work/b2.jpg" "$b_disp"
out=$(cli op "$b" click 1023 767 2>&1; cli op "$b" click 1024 700 2>&1)
check "coordinates follow the new size (1023,767 taken, 1024 refused)" grep -q 'outside the 1024x768 screen' <<<"$out"

# ---- bad URL options ---------------------------------------------------------------
u=$(add vnc-badopt "vnc://127.0.0.1:$a_port?encodings=rre")
out=$(cli frame --device "$u" --out "$work/u.jpg" --timeout-ms 3000 2>&1)
check "an unknown encoding in the URL: a configuration error naming it" grep -q "'rre' is not an encoding" <<<"$out"


# ---- VeNCrypt TLS ------------------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=kvmgate-test -keyout "$work/key.pem" \
  -out "$work/cert.pem" >/dev/null 2>&1
xvnc c 640x480 -SecurityTypes TLSNone
c=$(add vnc-c "vnc://127.0.0.1:$c_port")
shot vnc-c "$work/c.jpg"
check "VeNCrypt TLSNone (anonymous TLS): a 640x480 screenshot" grep -q '^vnc-c: 640x480 JPEG' <<<"$shot_text"
check "TLSNone: it matches xwd's" close_to "$work/c.jpg" "$c_disp"
cli op "$c" move 300 200 >/dev/null
check "TLSNone: typing arrives" typed_ok c "$c" "tls $word"
check "the log says TLS was used" grep -q "device $c: VeNCrypt TLS up" "$s_var/log/capture.log"

xvnc d 640x480 -SecurityTypes X509Vnc -X509Cert "$work/cert.pem" -X509Key "$work/key.pem" -PasswordFile "$work/passwd"
d=$(add vnc-d "vnc://127.0.0.1:$d_port?tls=insecure" 'vnc-pw-1')
shot vnc-d "$work/d.jpg"
check "VeNCrypt X509Vnc with ?tls=insecure: a screenshot" grep -q '^vnc-d: 640x480 JPEG' <<<"$shot_text"
check "X509Vnc: it matches xwd's" close_to "$work/d.jpg" "$d_disp"
dv=$(add vnc-d-verify "vnc://127.0.0.1:$d_port" 'vnc-pw-1')
cli frame --device "$dv" --out "$work/dv.jpg" --timeout-ms 3000 >/dev/null 2>&1
check "X509 with a self-signed certificate and no ?tls=insecure: refused, saying why" \
  grep -q "^device $dv: backing_off, .*certificate not accepted" <<<"$(cli status --device "$dv")"

# ---- websockify (ws://, wss://) ----------------------------------------------------
ws_port=$(free_port)
websockify 127.0.0.1:"$ws_port" 127.0.0.1:"$a_port" >"$work/websockify.log" 2>&1 &
pids+=($!)
wss_port=$(free_port)
websockify --cert "$work/cert.pem" --key "$work/key.pem" --ssl-only 127.0.0.1:"$wss_port" 127.0.0.1:"$b_port" \
  >"$work/websockify-ssl.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do ss -Hltn "sport = :$wss_port" | grep -q . && ss -Hltn "sport = :$ws_port" | grep -q . && break; sleep 0.1; done
w=$(add vnc-ws "ws://127.0.0.1:$ws_port/websockify")
shot vnc-ws "$work/w.jpg"
check "websockify ws://: a 1024x768 screenshot" grep -q '^vnc-ws: 1024x768 JPEG' <<<"$shot_text"
check "ws://: it matches xwd's" close_to "$work/w.jpg" "$a_disp"
check "ws://: typing arrives" typed_ok a "$w" "ws $word"
ws2=$(add vnc-wss "wss://127.0.0.1:$wss_port/?tls=insecure" 'vnc-pw-1')
shot vnc-wss "$work/w2.jpg"
check "websockify wss:// (TLS) with VNC auth: a 1024x768 screenshot" grep -q '^vnc-wss: 1024x768 JPEG' <<<"$shot_text"
check "wss://: it matches xwd's" close_to "$work/w2.jpg" "$b_disp"
grep -q '^vnc-wss: 1024x768' <<<"$shot_text" || { grep "device $ws2:" "$s_var/log/capture.log" | tail -3; tail -5 "$work/websockify-ssl.log"; }

# ---- QEMU's VNC server: SeaBIOS with its boot menu prompt, no disk ----------------------
if command -v qemu-system-x86_64 >/dev/null; then
  qport=$(( 5900 + $(free_display) ))
  qemu-system-x86_64 -display none -vnc "127.0.0.1:$((qport - 5900))" -m 64 -nodefaults -vga std \
    -boot menu=on,splash-time=60000 -no-reboot >"$work/qemu.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 50); do ss -Hltn "sport = :$qport" | grep -q . && break; sleep 0.1; done
  q=$(add vnc-qemu "vnc://127.0.0.1:$qport")
  sleep 2	# SeaBIOS draws its prompt
  shot vnc-qemu "$work/q1.jpg"
  check "QEMU: a screenshot of the BIOS screen" grep -q '^vnc-qemu: [0-9]*x[0-9]* JPEG' <<<"$shot_text"
  check "QEMU confirms extended key events: keys go as scancodes" \
    grep -q "device $q: the server takes QEMU extended key events" "$s_var/log/capture.log"
  sleep 1.5
  shot vnc-qemu "$work/q1b.jpg"
  check "QEMU: without input the screen stays as it is" same "$work/q1.jpg" "$work/q1b.jpg"
  cli op "$q" keys esc >/dev/null
  sleep 1.5
  shot vnc-qemu "$work/q2.jpg"
  check "QEMU: Esc opens SeaBIOS's boot menu: the screen changed" differ "$work/q1.jpg" "$work/q2.jpg"
else
  diag "qemu-system-x86_64 is not installed: QEMU part skipped"
fi

# ---- servers that lie or stall -------------------------------------------------------
capture_pid=$(stack_child "$s_var" kvmgate-capture)
for mode in stall midupdate bigrect unknown; do
  p=$(free_port)
  python3 "$top/tests/integration/fake_rfb.py" "$mode" "$p" >"$work/fake-$mode.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 50); do grep -qs listening "$work/fake-$mode.out" && break; sleep 0.1; done
  printf -v "fake_$mode" '%s' "$(add "fake-$mode" "vnc://127.0.0.1:$p")"
done
for mode in stall midupdate bigrect unknown; do
  id=fake_$mode
  cli frame --device "${!id}" --out "$work/f.jpg" --timeout-ms 1000 >/dev/null 2>&1
done
sleep 3.5
check "a server that never finishes the handshake: timed out, backing off" \
  grep -q "device $fake_stall: connecting -> backing_off (timeout: no frame within 3000 ms" "$s_var/log/capture.log"
check "a server that closes mid-update: offline, backing off" \
  grep -q "^device $fake_midupdate: backing_off, .*closed the connection (during the session)" <<<"$(cli status --device "$fake_midupdate")"
check "a rectangle larger than the screen: a protocol error naming it" \
  grep -q "^device $fake_bigrect: backing_off, .*rectangle 1000x1000+0+0 (encoding 0) outside the 640x480" <<<"$(cli status --device "$fake_bigrect")"
check "an unknown server message: a protocol error naming it" \
  grep -q "^device $fake_unknown: backing_off, .*unknown server message type 99" <<<"$(cli status --device "$fake_unknown")"
p=$(free_port)
python3 "$top/tests/integration/fake_rfb.py" empty "$p" >"$work/fake-empty.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do grep -qs listening "$work/fake-empty.out" && break; sleep 0.1; done
e=$(add fake-empty "vnc://127.0.0.1:$p")
out=$(cli frame --device "$e" --out "$work/e.jpg" --timeout-ms 5000 2>&1)
check "a server answering every request with an empty update: frames" grep -q '^frame [0-9]* 640x480 ' <<<"$out"
sleep 2.5
rate=$(grep '^requests' "$work/fake-empty.out" | tail -n 1 | awk '{print $2}')
diag "requests per second to a server that always answers empty: $rate"
check "and the client does not spin (at most 50 requests a second)" [ "${rate:-999}" -le 50 ]
shot vnc-a "$work/a3.jpg"
check "meanwhile the other devices keep working" grep -q '^vnc-a: 1024x768 JPEG' <<<"$shot_text"
check "the capture worker never restarted" [ "$(stack_child "$s_var" kvmgate-capture)" = "$capture_pid" ]

check "the capture worker logged no password" bash -c "! grep -qF -e 'vnc-pw-1' -e 'wrong-pw' '$s_var/log/capture.log'"
