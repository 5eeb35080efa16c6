#!/usr/bin/env bash
# A NanoKVM serving HTTPS (`proto: https`: TLS on its port, the plain port
# only redirects), simulated with a self-signed certificate made here: with
# ?tls=insecure in the device URL everything works over TLS (login, MJPEG
# frames, paste, keys over wss://); without it the certificate is refused
# with a reason that says what to change, and so is the plain port's
# redirect and an unknown URL option. No retry loop for any of them.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || { echo "# jq missing"; exit 77; }
with_sims https

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 \
  -subj /CN=nanokvm.test 2>/dev/null
port=$(free_port); plain=$(free_port)
run_sim tls "$port" --firmware head --password pw --width 640 --height 480 --time-scale 0.05 \
  --fps 10 --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --redirect-port "$plain"
check "the simulator serves HTTPS" \
  [ "$(curl -sk "https://127.0.0.1:$port/api/vm/info" -w ' %{http_code}')" = '"unauthorized" 401' ]
check "and its plain port redirects to it (307)" \
  [ "$(curl -s -o /dev/null "http://127.0.0.1:$plain/api/vm/info" -w '%{http_code} %{redirect_url}')" = \
    "307 https://127.0.0.1:$port/api/vm/info" ]

KVMGATE_FRAME_TIMEOUT_MS=8000 new_stack s || { not_ok "stack starts"; exit 1; }
cli() { KVMGATE_VAR_DIR=$s_var "$bin/kvmgate" capture "$@"; }
op() { local d=$1; shift; out=$(cli op "$d" "$@" 2>"$work/op.err"); local rc=$?; err=$(cat "$work/op.err"); return $rc; }
sj() { curl -sk "https://127.0.0.1:$port/sim/state" | jq -r "$1"; }
on_screen() { curl -sk "https://127.0.0.1:$port/sim/state" | jq -e --arg w "$1" '.screen.text | any(contains($w))' >/dev/null; }
add() {
  http POST "$s_url/api/v1/devices" -H "Authorization: Bearer $s_token" -H 'Content-Type: application/json' \
    --data-binary "{\"name\":\"$1\",\"kind\":\"nanokvm\",\"url\":\"$2\",\"username\":\"admin\",\"password\":\"pw\"}"
  jqr .id
}
tls=$(add kvm-tls "https://127.0.0.1:$port/?tls=insecure")
strict=$(add kvm-strict "https://127.0.0.1:$port")
redir=$(add kvm-plain "http://127.0.0.1:$plain")
badopt=$(add kvm-badopt "https://127.0.0.1:$port?tls=maybe")
check "four devices added" [ -n "$tls" -a -n "$strict" -a -n "$redir" -a -n "$badopt" ]

# ?tls=insecure: the whole device over TLS.
out=$(cli frame --device "$tls" --out "$work/f.jpg" --timeout-ms 10000 2>&1)
check "https with ?tls=insecure: a 640x480 frame" grep -q '^frame [0-9]* 640x480 ' <<<"$out"
check "status: streaming" grep -q "^device $tls: streaming, .*firmware 2.5.1$" <<<"$(cli status --device "$tls")"
w=$(tr -dc a-z </dev/urandom | head -c 8)
op "$tls" text $'\n'"$w"
check "paste over HTTPS: the word is on the host's screen" on_screen "$w"
op "$tls" keys enter t l s shift+k
check "keys over wss://: on the screen" on_screen "tlsK"
check "one WebSocket, opened over TLS" [ "$(sj '[.ws_clients, .requests["/api/ws"]] | @csv')" = '1,1' ]
op "$tls" power-state
check "power state over HTTPS" [ "$(jq -r .power <<<"$out")" = on ]

# The same device without the option: refused, with the fix in the reason.
t0=$SECONDS
out=$(cli frame --device "$strict" --out "$work/s.jpg" --timeout-ms 10000 2>&1)
check "a self-signed certificate is refused by default, saying what to do" \
  grep -q 'configuration error: TLS certificate not accepted (SSL certificate problem: self-signed certificate); a self-signed one needs ?tls=insecure' <<<"$out"
check "at once, not at the timeout" [ $((SECONDS - t0)) -lt 5 ]
check "status: failed, no retry loop" grep -q "^device $strict: failed, .*TLS certificate not accepted" <<<"$(cli status --device "$strict")"
mcp=$s_url/mcp tok=$s_token sid= ver=2025-11-25
open_session
tool get_screenshot '{"device":"kvm-strict"}'
check "get_screenshot: an error naming the option" \
  bash -c '[ "$1" = true ] && grep -qF "?tls=insecure" <<<"$2"' _ "$(jqr .result.isError)" "$(jqr '.result.content[0].text')"
check "and it says an administrator must fix the device, not to check its power" \
  bash -c 'grep -q "not set up correctly" <<<"$1" && ! grep -q "powered" <<<"$1"' _ "$(jqr '.result.content[0].text')"

out=$(cli frame --device "$redir" --out "$work/r.jpg" --timeout-ms 10000 2>&1)
check "the plain port of an HTTPS device: use an https:// URL" \
  grep -q "the device serves HTTPS only (HTTP 307 to https://127.0.0.1:$port/api/auth/login): use an https:// URL" <<<"$out"
out=$(cli frame --device "$badopt" --out "$work/b.jpg" --timeout-ms 10000 2>&1)
check "an unknown tls= value: refused, naming the choices" grep -q 'tls=maybe: use tls=verify or tls=insecure' <<<"$out"

# The option added over REST: the refused device works at once.
http PATCH "$s_url/api/v1/devices/$strict" -H "Authorization: Bearer $s_token" -H 'Content-Type: application/json' \
  --data-binary "{\"url\":\"https://127.0.0.1:$port?tls=insecure\"}"
out=$(cli frame --device "$strict" --out "$work/s.jpg" --timeout-ms 10000 2>&1)
check "?tls=insecure added: frames" grep -q '^frame [0-9]* 640x480 ' <<<"$out"
check "no crash in the capture worker" bash -c "! grep -q 'AddressSanitizer\|runtime error' '$s_var/log/capture.log'"
