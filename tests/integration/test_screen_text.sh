#!/usr/bin/env bash
# The screen's text end to end: a stack, a NanoKVM simulator at 1920x1080
# whose screen shows what it is typed. Two random words typed on it are read
# back by read_screen_text (whole screen, and the region of their line) and
# GET .../screen/text; wait_for_screen started before they are typed finds
# them and reports progress on the way (curl with a progressToken, and the
# official SDK client, which also cancels a wait); a change of the screen is
# noticed; a wait that cannot succeed ends at its timeout with found false
# and the text last read. Bad arguments (neither or both of text and change,
# a region off the screen, a language not installed, an invalid regular
# expression) are refused with a sentence, over MCP and REST; an auditor may
# not read screens; every call is audited.
. "$(dirname "$0")/lib.sh"

work=$(mktemp -d /tmp/kvmgate-screen.XXXXXX)
chmod 755 "$work"
cleanup() {
  [ -n "${bg_pid:-}" ] && { kill "$bg_pid" 2>/dev/null; wait "$bg_pid" 2>/dev/null; }
  stop_sims
  rm -rf "$work"
  finish
}
trap cleanup EXIT

new_stack a || { not_ok "stack starts"; exit 1; }
api=$a_url/api/v1 mcp=$a_url/mcp tok=$a_token sid= ver=2025-11-25

sim_port=$(free_port)
run_sim sim "$sim_port" --password admin --time-scale 0.05 --fps 10
simstate() { curl -s "http://127.0.0.1:$sim_port/sim/state"; }

# rest METHOD PATH [curl args...]: a REST call with $tok.
rest() { local m=$1 p=$2; shift 2; http "$m" "$api$p" -H "Authorization: Bearer $tok" "$@"; }
rest POST /devices -H 'Content-Type: application/json' \
  --data-binary "{\"name\":\"kvm-a\",\"kind\":\"nanokvm\",\"url\":\"http://127.0.0.1:$sim_port\",\"username\":\"admin\",\"password\":\"admin\"}"
kvm=$(jqr .id)
check "a simulated NanoKVM added" [ -n "$kvm" ]

# tool NAME [ARGS]: tools/call; an event stream is reduced to its last message.
tool() {
  local args=${2:-'{}'}
  call tools/call "{\"name\":\"$1\",\"arguments\":$args}"
  if [[ "$(hdr Content-Type)" == text/event-stream* ]]; then
    events=$(sed -n 's/^data: //p' <<<"$body")
    body=$(tail -n 1 <<<"$events")
  fi
}
# is_error_with TEXT: the last tool result is an error whose first text contains TEXT.
is_error_with() { [ "$(jqr .result.isError)" = true ] && grep -qF -- "$1" <<<"$(jqr '.result.content[0].text')"; }
# sc FILTER: jq -r on the last tool result's structured content.
sc() { jqr ".result.structuredContent | $1"; }

# Dictionary words read best on the simulator's 5x7 font; none with a descender
# it draws ambiguously (g, j, p, q, y). A number after them makes the line new.
# Every one is read right in a region at 3x too (circle read "clrcle" and
# hammer "hanner" there, every time).
dict=(rabbit doctor castle candle kernel ocean basket butter letter dinner cotton bottle
      school rocket rubber turtle little donkey sister header cables hotel island
      mother window)
pick() { printf '%s %s %s' "${dict[RANDOM % ${#dict[@]}]}" "${dict[RANDOM % ${#dict[@]}]}" "$RANDOM"; }
words=$(pick)
want=${words% *}

open_session '{}'
call tools/list
check "read_screen_text and wait_for_screen are listed: read-only, open-world, console.read" \
  [ "$(jqc '[.result.tools[] | select(.name == "read_screen_text" or .name == "wait_for_screen") | [.name, .annotations.readOnlyHint, .annotations.destructiveHint, .annotations.openWorldHint, ._meta["kvmgate/action"], (.inputSchema.required | join(","))]]')" = \
    '[["read_screen_text",true,false,true,"console.read","device"],["wait_for_screen",true,false,true,"console.read","device"]]' ]

# ---- reading ----------------------------------------------------------------------------

rest POST "/devices/$kvm/text" -H 'Content-Type: application/json' --data-binary "{\"text\":\"echo hello\\n$words\\n\"}"
check "two words typed on the machine ($words)" [ "$status" = 200 ]
row=$(simstate | jq --arg w "$words" '[.screen.text | to_entries[] | select(.value | contains($w)) | .key][0]')
check "and shown on its screen, row $row" [ "$row" != null ]

tool read_screen_text '{"device":"kvm-a","max_age_ms":0}'
first=$(jqr '.result.content[0].text')
check "read_screen_text: the words are read back from the whole screen" \
  grep -qiF "$want" <<<"$(sc .text)"
[ "$(jqr .result.isError)" = false ] || diag "$body"
check "with the screen size, frame and language: 1920x1080, eng, lines counted" \
  [ "$(sc '"\(.screen_width)x\(.screen_height) \(.language) \(.lines > 0) \(.frame > 0) \(.truncated)"')" = "1920x1080 eng true true false" ]
check "the first text block says what was read: lines, screen, frame" \
  grep -qE '^kvm-a: [0-9]+ lines? read from the 1920x1080 screen, frame [0-9]+' <<<"$first"
check "the second block is the text itself, lines kept" \
  [ "$(jqr '.result.content[1].text | split("\n") | length')" = "$(sc .lines)" ]
init_ms=$(sc .ocr_init_ms) ocr_ms=$(sc .ocr_ms)
diag "whole screen: ocr $ocr_ms ms, engine load $init_ms ms (0: loaded before by this worker)"

# The cell's first pixel row is empty, and the row below is: the region holds that line only.
y=$((row * 16))
tool read_screen_text "{\"device\":\"kvm-a\",\"region\":{\"x\":0,\"y\":$y,\"width\":640,\"height\":24}}"
check "a region around their line: only that line, the words in it" \
  [ "$(sc '.lines')/$(sc '.region | "\(.x),\(.y),\(.width),\(.height)"')/$(grep -ciF "$want" <<<"$(sc .text)")" = "1/0,$y,640,24/1" ] ||
  diag "read: $(sc .text)"
tool read_screen_text '{"device":"kvm-a","region":{"x":0,"y":900,"width":400,"height":100}}'
check "a region where nothing is written: no text, not an error" \
  [ "$(jqr .result.isError)/$(sc .lines)/$(sc .text)" = "false/0/" ]

rest GET "/devices/$kvm/screen/text?region=0,$y,640,24"
check "REST GET .../screen/text?region=...: 200 JSON with the words" \
  [ "$status/$(jqr .device)/$(jqr .screen_width)/$(grep -ciF "$want" <<<"$(jqr .text)")" = "200/kvm-a/1920/1" ]

# ---- refusals ----------------------------------------------------------------------------

tool read_screen_text '{"device":"kvm-a","region":{"x":1900,"y":0,"width":100,"height":10}}'
check "a region off the screen: isError naming the screen size" \
  is_error_with "is not inside the screen of 'kvm-a', which is 1920x1080"
tool read_screen_text '{"device":"kvm-a","language":"zzz"}'
check "a language not installed: isError listing those that are" \
  is_error_with "The OCR language 'zzz' is not installed on this gateway; installed: eng"
tool read_screen_text '{"device":"kvm-a","language":"eng+../x"}'
check "a language name that is no name: the same refusal" is_error_with "is not installed"
rest GET "/devices/$kvm/screen/text?language=zzz"
check "REST: 400 with the list" \
  [ "$status/$(jqr .error.code)/$(jqr '.error.message | contains("installed: eng")')" = "400/bad_request/true" ]
rest GET "/devices/$kvm/screen/text?region=0,0,5000,10"
check "REST: a region off the screen is 400" [ "$status/$(jqr .error.code)" = "400/bad_request" ]
rest GET "/devices/$kvm/screen/text?lang=eng"
check "REST: an unknown parameter is 400" [ "$status" = 400 ]

tool wait_for_screen '{"device":"kvm-a"}'
check "wait_for_screen with neither text nor change: isError saying to give one" \
  is_error_with "exactly one of 'text'"
tool wait_for_screen '{"device":"kvm-a","text":"x","change":true}'
check "with both: isError, not both" is_error_with "not both"
tool wait_for_screen '{"device":"kvm-a","change":false}'
check "change false and no text: the same" is_error_with "exactly one of 'text'"
tool wait_for_screen '{"device":"kvm-a","text":"([a-z","regex":true}'
check "an invalid regular expression: isError saying why" \
  is_error_with "'text' is not a valid regular expression (POSIX extended):"
tool wait_for_screen '{"device":"kvm-a","change":true,"regex":true}'
check "regex without text: isError" is_error_with "apply to 'text' only"
tool wait_for_screen '{"device":"kvm-a","text":"x","timeout_ms":600001}'
check "a timeout above 600000: isError from the schema" is_error_with "'timeout_ms' must be at most 600000"
tool wait_for_screen '{"device":"kvm-a","text":"x","interval_ms":10}'
check "an interval below 100 ms: isError" is_error_with "'interval_ms' must be at least 100"
tool wait_for_screen "{\"device\":\"kvm-a\",\"text\":\"$(head -c 201 /dev/zero | tr '\0' a)\"}"
check "text over 200 characters: isError" is_error_with "at most 200 characters"
rest POST "/devices/$kvm/screen/wait" -H 'Content-Type: application/json' --data-binary '{"text":"(","regex":true}'
check "REST wait: an invalid regular expression is 400 saying why" \
  [ "$status/$(jqr '.error.message | contains("not a valid regular expression")')" = "400/true" ]
rest POST "/devices/$kvm/screen/wait" -H 'Content-Type: application/json' --data-binary '{}'
check "REST wait: neither text nor change is 400" [ "$status/$(jqr '.error.message | contains("exactly one")')" = "400/true" ]
rest POST "/devices/$kvm/screen/wait" -H 'Content-Type: application/json' --data-binary '{"change":true,"timeout_ms":240001}'
check "REST wait: a timeout above 240000 is 400" [ "$status" = 400 ]

# ---- waiting -----------------------------------------------------------------------------

t0=$(date +%s%N)
tool wait_for_screen "{\"device\":\"kvm-a\",\"text\":\"${want^^}\"}"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "text already on the screen (asked in capitals): found at once, with its line" \
  [ "$(sc .found)/$(sc .waited_for)/$(grep -ciF "$want" <<<"$(sc .line)")" = "true/text/1" ]
diag "found in $(sc .elapsed_ms) ms ($ms ms for the call)"
tool wait_for_screen "{\"device\":\"kvm-a\",\"text\":\"${want^^}\",\"match_case\":true,\"timeout_ms\":1000}"
check "the same in capitals with match_case: not found" [ "$(sc .found)" = false ]
w1=${want%% *} w2=${want#* }
tool wait_for_screen "{\"device\":\"kvm-a\",\"text\":\"^${w1}[[:space:]]+${w2}\",\"regex\":true,\"timeout_ms\":5000}"
check "a regular expression matching their line: found" [ "$(sc .found)" = true ]

t0=$(date +%s%N)
tool wait_for_screen '{"device":"kvm-a","text":"never shown here","timeout_ms":1500,"interval_ms":200}'
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "a wait for text that does not come: found false at its timeout, not an error" \
  [ "$(jqr .result.isError)/$(sc .found)/$(sc .timeout_ms)" = "false/false/1500" ]
check "it ends soon after the timeout (${ms} ms)" [ "$ms" -lt 6000 ]
check "and says so, with the text last read" \
  [ "$(jqr '.result.content[0].text | startswith("kvm-a: not found within 1500 ms")')/$(grep -ciF "$want" <<<"$(sc .text)")" = "true/1" ]

# A wait started before the words are typed, with a progress token, over curl.
words2=$(pick) want2=${words2% *}
( call tools/call "{\"name\":\"wait_for_screen\",\"arguments\":{\"device\":\"kvm-a\",\"text\":\"$want2\",\"timeout_ms\":60000,\"interval_ms\":300},\"_meta\":{\"progressToken\":\"pw-1\"}}"
  printf '%s' "$body" >"$work/wait.sse" ) &
bg_pid=$!
sleep 2.5
rest POST "/devices/$kvm/text" -H 'Content-Type: application/json' --data-binary "{\"text\":\"$words2\\n\"}"
wait "$bg_pid"; bg_pid=
events=$(sed -n 's/^data: //p' "$work/wait.sse")
body=$(tail -n 1 <<<"$events")
check "wait_for_screen started before typing: found once typed ($words2)" \
  [ "$(sc .found)/$(grep -ciF "$want2" <<<"$(sc .line)")" = "true/1" ]
check "it took the time until the typing (over 2 s)" [ "$(sc .elapsed_ms)" -gt 2000 ]
check "progress notifications came first: token pw-1, increasing elapsed ms of 60000, a message" \
  [ "$(jq -sc '[.[] | select(.method == "notifications/progress") | .params] | [length > 3, all(.progressToken == "pw-1" and .total == 60000), ([.[].progress] == ([.[].progress] | sort)), (.[0].message | startswith("Not on the screen yet after"))]' <<<"$events")" = '[true,true,true,true]' ]

( call tools/call '{"name":"wait_for_screen","arguments":{"device":"kvm-a","change":true,"timeout_ms":30000},"_meta":{"progressToken":7}}'
  printf '%s' "$body" >"$work/change.sse" ) &
bg_pid=$!
sleep 2
rest POST "/devices/$kvm/text" -H 'Content-Type: application/json' --data-binary '{"text":"something else\n"}'
wait "$bg_pid"; bg_pid=
events=$(sed -n 's/^data: //p' "$work/change.sse")
body=$(tail -n 1 <<<"$events")
check "wait_for_screen change: found when text appears, with how much changed" \
  [ "$(sc .found)/$(sc .waited_for)/$(sc '.changed_percent >= 0.01')/$(sc '.elapsed_ms > 1500')" = "true/change/true/true" ]
check "with progress saying nothing changed yet" \
  grep -q '"message":"No change yet after' <<<"$events"
tool wait_for_screen '{"device":"kvm-a","change":true,"region":{"x":1200,"y":700,"width":300,"height":200},"timeout_ms":1200}'
check "change in a region where nothing happens: found false at the timeout" \
  [ "$(jqr .result.isError)/$(sc .found)/$(sc .changed_percent)" = "false/false/0" ]

rest POST "/devices/$kvm/screen/wait" -H 'Content-Type: application/json' \
  --data-binary "{\"text\":\"$want2\",\"timeout_ms\":5000}"
check "REST POST .../screen/wait: 200, found, the line" \
  [ "$status/$(jqr .found)/$(grep -ciF "$want2" <<<"$(jqr .line)")" = "200/true/1" ]
rest POST "/devices/$kvm/screen/wait" -H 'Content-Type: application/json' \
  --data-binary '{"change":true,"region":"1200,700,300,200","timeout_ms":500}'
check "REST wait for a change that does not come: 200 found false" \
  [ "$status/$(jqr .found)/$(jqr .waited_for)" = "200/false/change" ]
# A client that leaves ends its wait: nginx closes the FastCGI connection and the
# worker stops waiting at once (not at the timeout), its event saying why.
curl -s -o /dev/null -m 1 "$api/devices/$kvm/screen/wait" -H "Authorization: Bearer $tok" \
  -H 'Content-Type: application/json' --data-binary '{"text":"never on this screen","timeout_ms":60000}'
for _ in $(seq 1 40); do
  [ "$(sql "SELECT count(*) FROM audit_events WHERE action = 'POST /api/v1/devices/{id}/screen/wait' AND reason LIKE 'client_closed: The client closed%'")" -ge 1 ] && break
  sleep 0.1
done
check "REST wait whose client leaves after 1 s: stopped within 5 s, audited as an error saying so" \
  [ "$(sql "SELECT outcome || ' ' || (latency_ms < 5000)::text FROM audit_events WHERE action = 'POST /api/v1/devices/{id}/screen/wait' AND reason LIKE 'client_closed: The client closed%'")" = "error true" ] ||
  diag "$(sql "SELECT outcome, reason, latency_ms FROM audit_events WHERE action = 'POST /api/v1/devices/{id}/screen/wait' ORDER BY id DESC LIMIT 1")"

# ---- the official SDK client: progress callback, and cancellation -----------------------

if node22=$("$top/scripts/e2e-deps.sh" 2>/dev/null); then
  words3=$(pick) want3=${words3% *}
  (cd "$top/tests/e2e" && HOME=$work PATH=$node22:$PATH timeout 200 node screen.mjs "$mcp" "$tok" kvm-a "$want3" \
     </dev/null >"$work/sdk.out" 2>"$work/sdk.err")
  line() { jq -c "select(.step == \"$1\") | $2" "$work/sdk.out"; }
  check "SDK: wait_for_screen found the words type_text typed meanwhile, progress increasing" \
    [ "$(line wait_text '[.error, .typed, .found, .progress > 0, .increasing, .total]')" = '[false,true,true,true,true,60000]' ] ||
    diag "$(tail -n 3 "$work/sdk.err" | cut -c1-300)"
  check "SDK: an aborted wait ends at once (rejected within 4 s of its start)" \
    [ "$(line cancel '[.rejected, .ms < 4000]')" = '[true,true]' ]
  # The server notices the cancellation: the call's event says cancelled.
  for _ in $(seq 1 30); do
    [ "$(sql "SELECT count(*) FROM audit_events WHERE action = 'wait_for_screen' AND reason = 'cancelled'")" -ge 1 ] && break
    sleep 0.2
  done
  diag "last waits (outcome, reason, ms): $(sql "SELECT outcome, reason, latency_ms FROM audit_events WHERE action = 'wait_for_screen' ORDER BY id DESC LIMIT 2" | tr '\n' ' ')"
  check "and the gateway stopped the wait: its audit event says cancelled, well before its timeout" \
    [ "$(sql "SELECT count(*) FROM audit_events WHERE action = 'wait_for_screen' AND reason = 'cancelled' AND latency_ms < 10000")" = 1 ]
else
  not_ok "npm clients and Node 22 installed (scripts/e2e-deps.sh)"
fi

# ---- who may read screens ------------------------------------------------------------------

org1=$(sql "SELECT id FROM organisations WHERE name = 'default'")
u=$(sql "INSERT INTO users (username) VALUES ('auditor-$RANDOM') RETURNING id")
sql "INSERT INTO memberships (org_id, user_id, role) VALUES ($org1, $u, 'auditor')" >/dev/null
auditor="kvmg_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' | cut -c1-43)"
sql "INSERT INTO api_tokens (org_id, user_id, name, shown, hash, scopes)
     VALUES ($org1, $u, 'it', '${auditor:0:12}', '\\x$(printf %s "$auditor" | sha256sum | cut -c1-64)', '{read,write}')" >/dev/null
keep=$tok; tok=$auditor; sid=
open_session '{}'
call tools/list
check "an auditor is not shown the screen tools" \
  [ "$(jqr '[.result.tools[].name] | map(select(. == "read_screen_text" or . == "wait_for_screen")) | length')" = 0 ]
tool read_screen_text '{"device":"kvm-a"}'
check "an auditor's read_screen_text: Permission denied naming console.read" \
  [ "$(jqr .result.isError)/$(jqr '.result.content[0].text | startswith("Permission denied") and contains("console.read")')" = true/true ]
tool wait_for_screen '{"device":"kvm-a","change":true,"timeout_ms":100}'
check "and wait_for_screen: the same" is_error_with "Permission denied"
rest GET "/devices/$kvm/screen/text"
check "REST: an auditor's GET .../screen/text is 403" [ "$status/$(jqr .error.code)" = 403/forbidden ]
rest POST "/devices/$kvm/screen/wait" -H 'Content-Type: application/json' --data-binary '{"change":true}'
check "and POST .../screen/wait too" [ "$status" = 403 ]
tok=$keep

check "every call audited: read_screen_text ok and refused, REST routes, the auditor denied" \
  [ "$(sql "SELECT count(*) FILTER (WHERE action = 'read_screen_text' AND outcome = 'ok') >= 3,
                   count(*) FILTER (WHERE action = 'read_screen_text' AND outcome = 'error') >= 3,
                   count(*) FILTER (WHERE action = 'GET /api/v1/devices/{id}/screen/text' AND outcome = 'ok') >= 1,
                   count(*) FILTER (WHERE action LIKE '%screen%' AND outcome = 'denied') = 4
            FROM audit_events")" = 't|t|t|t' ]
