#!/usr/bin/env bash
# MCP calls answered as event streams, on the test build with fixtures:
# progress and log notifications flushed through nginx as they happen,
# notifications/cancelled and elicitation or sampling answers arriving as
# separate POSTs at other workers, the confirmation helper with and without
# elicitation, a session ended under a waiting call; then resources,
# prompts and completion, and the production build without any fixture.
. "$(dirname "$0")/lib.sh"
trap finish EXIT

KVMGATE_FCGI_PROGRAM=$bin/../tests/kvmgate-fcgi-fixtures new_stack a ||
  { not_ok "stack with fixtures starts"; exit 1; }
mcp=$a_url/mcp
tok=$a_token
ver=2025-11-25
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; finish' EXIT

# stream NAME BODY: POSTs BODY in the current session in the background,
# the raw response (headers, then events) going to $tmp/NAME.
stream() {
  rm -f "$tmp/$1" "$tmp/$1.h"
  curl -sN -D "$tmp/$1.h" -o "$tmp/$1" "$mcp" -H "Authorization: Bearer $tok" \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H "Mcp-Session-Id: $sid" -H "MCP-Protocol-Version: $ver" --data-binary "$2" &
  eval "pid_$1=$!"
}

# wait_for NAME PATTERN: waits (up to 20 s) until $tmp/NAME holds PATTERN.
wait_for() {
  for _ in $(seq 1 400); do
    grep -q -- "$2" "$tmp/$1" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# finished NAME: waits for the background request NAME to end.
finished() { local p="pid_$1"; wait "${!p}"; }

# events NAME: the JSON of every data line of the stream, one per line.
events() { sed -n 's/^data: //p' "$tmp/$1"; }

# request_id NAME: the id of the request the server sent on stream NAME.
request_id() { events "$1" | jq -r 'select(.method != null and .id != null) | .id' | head -n 1; }

# has_all TEXT PATTERN...: TEXT contains every PATTERN.
has_all() {
  local text=$1 p
  shift
  for p; do grep -q -- "$p" <<<"$text" || return 1; done
}

# answer ID RESULT_JSON: the client's response to a server request.
answer() { rpc "{\"jsonrpc\":\"2.0\",\"id\":\"$1\",\"result\":$2}"; }

open_session '{"elicitation":{},"sampling":{}}'
check "a session with elicitation and sampling" [ ${#sid} = 32 ]

# ---- progress ----------------------------------------------------------------

call tools/call '{"name":"test_tool_with_progress","arguments":{},"_meta":{"progressToken":"p-1"}}'
ev=$(printf '%s' "$body" | sed -n 's/^data: //p')
check "a call with a progressToken answers text/event-stream" \
  grep -qi '^content-type: text/event-stream' <<<"$headers"
check "the stream is not cached" grep -qi '^cache-control: no-cache' <<<"$headers"
check "three progress notifications 0, 50, 100 of 100 for the token" \
  [ "$(jq -sc '[.[] | select(.method == "notifications/progress") | .params | "\(.progressToken):\(.progress)/\(.total)"]' <<<"$ev")" = '["p-1:0/100","p-1:50/100","p-1:100/100"]' ]
check "then the response, last" \
  [ "$(jq -sc '.[-1] | [.id, .result.content[0].text]' <<<"$ev")" = "[$rpc_id,\"Tool with progress executed successfully\"]" ]
check "no event carries an id: line (the stream is not resumable)" lacks "$body" '^id:'

accept=application/json call tools/call \
  '{"name":"test_tool_with_progress","arguments":{},"_meta":{"progressToken":12}}'
check "a client accepting only JSON gets one JSON response, no notifications" \
  [ "$(hdr Content-Type)/$(jqr .result.content[0].text)" = "application/json/Tool with progress executed successfully" ]

# ---- logging -------------------------------------------------------------------

tool test_tool_with_logging
check "log notifications stream while the tool runs" \
  [ "$(printf '%s' "$body" | sed -n 's/^data: //p' | jq -r 'select(.method == "notifications/message") | .params.data' | paste -sd,)" = "Tool execution started,Tool processing data,Tool execution completed" ]
call logging/setLevel '{"level":"warning"}'
tool test_tool_with_logging
check "below the session's level (warning) nothing is sent" \
  [ "$(printf '%s' "$body" | grep -c notifications/message)" = 0 ]

# ---- cancellation ----------------------------------------------------------------

stream long '{"jsonrpc":"2.0","id":"long-1","method":"tools/call","params":{"name":"test_long_operation","arguments":{"steps":200},"_meta":{"progressToken":"lp"}}}'
check "the first progress event arrives while the call runs (nothing buffers it)" \
  wait_for long '"progress":1,'
rpc '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"long-1","reason":"user stop"}}'
check "notifications/cancelled: 202" [ "$status" = 202 ]
finished long
check "the cancelled call's stream ends without a response" \
  [ "$(events long | jq -s '[.[] | select(.id == "long-1")] | length')" = 0 ]
check "and well before its 200 steps" [ "$(events long | grep -c progress)" -lt 100 ]
check "the worker logged the cancellation" \
  grep -q '"result":"cancelled"' "$a_var/log/fcgi.log"
check "nothing of the call stays in flight" [ "$(sql "SELECT count(*) FROM mcp_inflight")" = 0 ]

rpc '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"never-ran"}}'
check "cancelling an unknown request: 202, nothing else" [ "$status" = 202 ]

# A cancellation from another session of the same user does not reach the call.
stream short '{"jsonrpc":"2.0","id":"short-1","method":"tools/call","params":{"name":"test_long_operation","arguments":{"steps":8},"_meta":{"progressToken":"sp"}}}'
wait_for short '"progress":1,' >/dev/null
mine=$sid
open_session
rpc '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"short-1"}}'
sid=$mine
finished short
check "a cancel sent in another session is ignored: the call finishes" \
  [ "$(events short | jq -r 'select(.id == "short-1") | .result.content[0].text')" = "Counted to 8" ]

# ---- confirmation through elicitation ------------------------------------------------

stream el '{"jsonrpc":"2.0","id":"c-1","method":"tools/call","params":{"name":"test_confirm_action","arguments":{"confirm":true}}}'
wait_for el elicitation/create >/dev/null
req=$(request_id el)
check "a destructive tool asks the user through elicitation/create on its stream" \
  [ "$(events el | jq -r 'select(.method == "elicitation/create") | .params.requestedSchema.required[0]')" = confirm ]
check "the server's request id is its own" grep -q '^kvmgate-[0-9a-f]\{16\}$' <<<"$req"
answer "$req" '{"action":"accept","content":{"confirm":true}}'
check "the answer, POSTed separately: 202" [ "$status" = 202 ]
finished el
check "accepted: the action goes ahead (the confirm argument alone was not enough)" \
  [ "$(events el | jq -r 'select(.id == "c-1") | .result.content[0].text')" = "Confirmed: the test action was carried out." ]

for how in decline:declined cancel:cancelled; do
  said=${how#*:} how=${how%:*}
  stream el "{\"jsonrpc\":\"2.0\",\"id\":\"c-$how\",\"method\":\"tools/call\",\"params\":{\"name\":\"test_confirm_action\",\"arguments\":{}}}"
  wait_for el elicitation/create >/dev/null
  answer "$(request_id el)" "{\"action\":\"$how\"}"
  finished el
  check "answer $how: not done, isError saying so" \
    has_all "$(events el | jq -r "select(.id == \"c-$how\") | .result | \"\(.isError) \(.content[0].text)\"")" \
    '^true Not done: the user did not confirm' "($said)"
done

stream el '{"jsonrpc":"2.0","id":"c-unchecked","method":"tools/call","params":{"name":"test_confirm_action","arguments":{}}}'
wait_for el elicitation/create >/dev/null
answer "$(request_id el)" '{"action":"accept","content":{"confirm":false}}'
finished el
check "accepted with confirm unticked: not done" \
  [ "$(events el | jq -r 'select(.id == "c-unchecked") | .result.isError')" = true ]

stream el '{"jsonrpc":"2.0","id":"c-err","method":"tools/call","params":{"name":"test_confirm_action","arguments":{"confirm":true}}}'
wait_for el elicitation/create >/dev/null
rpc "{\"jsonrpc\":\"2.0\",\"id\":\"$(request_id el)\",\"error\":{\"code\":-32602,\"message\":\"form not supported\"}}"
finished el
check "a client that refuses the form: the confirm argument decides" \
  [ "$(events el | jq -r 'select(.id == "c-err") | .result.content[0].text')" = "Confirmed: the test action was carried out." ]

stream el '{"jsonrpc":"2.0","id":"c-stray","method":"tools/call","params":{"name":"test_confirm_action","arguments":{}}}'
wait_for el elicitation/create >/dev/null
req=$(request_id el)
mine=$sid
open_session
answer "$req" '{"action":"accept","content":{"confirm":true}}'
check "an answer from another session: 202 but not taken" [ "$status" = 202 ]
sid=$mine
answer "wrong-$req" '{"action":"accept","content":{"confirm":true}}'
check "an answer to an unknown request: 202 but not taken" \
  [ "$status/$(sql "SELECT count(*) FROM mcp_inflight WHERE answer IS NOT NULL")" = 202/0 ]
rpc "{\"jsonrpc\":\"2.0\",\"id\":\"$req\",\"method\":\"x\"}"
answer "$req" '{"action":"decline"}'
finished el
check "the right answer still decides" \
  [ "$(events el | jq -r 'select(.id == "c-stray") | .result.isError')" = true ]

# Ending the session wakes a call that waits for the person.
stream el '{"jsonrpc":"2.0","id":"c-end","method":"tools/call","params":{"name":"test_confirm_action","arguments":{}}}'
wait_for el elicitation/create >/dev/null
http DELETE "$mcp" -H "Authorization: Bearer $tok" -H "Mcp-Session-Id: $sid"
check "DELETE while a call waits: 204" [ "$status" = 204 ]
finished el
check "the waiting call ends without acting" \
  [ "$(events el | jq -s '[.[] | select(.id == "c-end")] | length')/$(sql "SELECT count(*) FROM mcp_inflight")" = 0/0 ]

# Without the elicitation capability the argument is the confirmation.
open_session '{}'
tool test_confirm_action
check "no elicitation: not done, asks for confirm: true" \
  has_all "$(jqr '"\(.result.isError) \(.result.content[0].text)"')" '^true ' '"confirm": true'
check "and answers plain JSON (no stream was needed)" [ "$(hdr Content-Type)" = application/json ]
tool test_confirm_action '{"confirm":true}'
check "no elicitation, confirm: true: done" \
  [ "$(jqr .result.content[0].text)" = "Confirmed: the test action was carried out." ]
tool test_elicitation '{"message":"who?"}'
check "elicitation needs the capability" \
  [ "$(printf '%s' "$body" | sed -n 's/^data: //p' | jq -r .result.isError)" = true ]

# ---- sampling and the conformance elicitation fixtures -------------------------------

open_session '{"elicitation":{},"sampling":{}}'
stream sm '{"jsonrpc":"2.0","id":"s-1","method":"tools/call","params":{"name":"test_sampling","arguments":{"prompt":"Say hi"}}}'
wait_for sm sampling/createMessage >/dev/null
check "sampling/createMessage carries the prompt" \
  [ "$(events sm | jq -r 'select(.method == "sampling/createMessage") | .params.messages[0].content.text')" = "Say hi" ]
answer "$(request_id sm)" '{"role":"assistant","content":{"type":"text","text":"hi there"},"model":"m","stopReason":"endTurn"}'
finished sm
check "the model's answer comes back in the result" \
  [ "$(events sm | jq -r 'select(.id == "s-1") | .result.content[0].text')" = "LLM response: hi there" ]

# ---- several streams of one session at once ------------------------------------------

for i in 1 2 3; do
  stream "m$i" "{\"jsonrpc\":\"2.0\",\"id\":\"m-$i\",\"method\":\"tools/call\",\"params\":{\"name\":\"test_long_operation\",\"arguments\":{\"steps\":5},\"_meta\":{\"progressToken\":$i}}}"
done
for i in 1 2 3; do finished "m$i"; done
check "three concurrent streams of one session each get their own progress and response" \
  [ "$(for i in 1 2 3; do events "m$i" | jq -r "select(.id == \"m-$i\" or .params.progressToken == $i) | .id // \"p\""; done | sort | uniq -c | tr -s ' ' | paste -sd,)" = " 1 m-1, 1 m-2, 1 m-3, 15 p" ]

# ---- streams may not take every worker -----------------------------------------------------

# 4 workers: 3 may stream, one always stays for short calls.
for i in 1 2 3; do
  stream "h$i" "{\"jsonrpc\":\"2.0\",\"id\":\"h-$i\",\"method\":\"tools/call\",\"params\":{\"name\":\"test_long_operation\",\"arguments\":{\"steps\":600},\"_meta\":{\"progressToken\":\"h$i\"}}}"
done
for i in 1 2 3; do wait_for "h$i" '"progress":1,' >/dev/null; done
call tools/call '{"name":"test_tool_with_progress","arguments":{},"_meta":{"progressToken":"late"}}'
check "with three streams open the fourth worker still answers, as plain JSON" \
  [ "$status/$(hdr Content-Type)/$(jqr .result.content[0].text)" = "200/application/json/Tool with progress executed successfully" ]
http GET "$a_url/metrics"
check "the refused stream is counted" grep -qE '^kvmgate_mcp_streams_refused_total [1-9]' <<<"$body"
for i in 1 2 3; do
  rpc "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":\"h-$i\"}}"
done
for i in 1 2 3; do finished "h$i"; done
call tools/call '{"name":"test_tool_with_progress","arguments":{},"_meta":{"progressToken":"again"}}'
check "once they end, calls stream again" grep -qi '^content-type: text/event-stream' <<<"$headers"

# ---- resources, prompts, completion -----------------------------------------------------

org1=$(sql "SELECT id FROM organisations WHERE name = 'default'")
org2=$(sql "INSERT INTO organisations (name) VALUES ('elsewhere') RETURNING id")
sql "INSERT INTO devices (org_id, name, kind, base_url) VALUES
  ($org1, 'srv-01', 'nanokvm', 'http://10.0.0.1'), ($org1, 'srv-02', 'pikvm', 'https://10.0.0.2'),
  ($org1, 'web-1', 'vnc', 'vnc://10.0.0.3:5900'), ($org2, 'srv-other', 'ami', 'https://10.9.9.9')" >/dev/null
call resources/list
check "resources/list: the device list (and the fixtures)" \
  [ "$(jqc '[.result.resources[].uri] | sort')" = '["kvmgate://devices","test://static-binary","test://static-text","test://watched-resource"]' ]
call resources/templates/list
check "resources/templates/list: each device's screenshot" \
  jq -e '.result.resourceTemplates[] | select(.uriTemplate == "kvmgate://devices/{device}/screenshot")' <<<"$body" >/dev/null
call resources/read '{"uri":"kvmgate://devices"}'
check "the device list resource: JSON of this organisation's devices" \
  [ "$(jqr '.result.contents[0] | "\(.mimeType) \(.text | fromjson | [.devices[].name] | join(","))"')" = "application/json srv-01,srv-02,web-1" ]
call resources/read '{"uri":"kvmgate://devices/srv-01/screenshot"}'
expect_rpc_error 200 -32002 "a device without a console session has no screenshot yet"
call resources/read '{"uri":"kvmgate://devices/srv-other/screenshot"}'
expect_rpc_error 200 -32002 "another organisation's device" "Resource not found: no device srv-other"
call resources/read '{"uri":"kvmgate://devices/../screenshot"}'
expect_rpc_error 200 -32002 "a template part with a slash is no device"
call resources/read '{"uri":"kvmgate://nothing"}'
expect_rpc_error 200 -32002 "an unknown URI"
call resources/read '{}'
expect_rpc_error 200 -32602 "resources/read without a uri"
call resources/subscribe '{"uri":"test://watched-resource"}'
check "the watched fixture takes a subscription" [ "$(jqc .result)" = '{}' ]
call resources/subscribe '{"uri":"kvmgate://devices"}'
expect_rpc_error 200 -32602 "the device list takes none"

call prompts/list
check "prompts for boot failures, OS installations and kernel panics, each taking a device" \
  [ "$(jqc '[.result.prompts[] | select(.name | startswith("test_") | not) | "\(.name):\(.arguments[0].name):\(.arguments[0].required)"]')" = '["diagnose_boot_failure:device:true","confirm_os_install:device:true","recover_kernel_panic:device:true"]' ]
call prompts/get '{"name":"diagnose_boot_failure","arguments":{"device":"srv-02","symptom":"black screen"}}'
text=$(jqr '.result.messages[0].content.text')
check "a prompt names the device, the symptom and the tools to use" \
  has_all "$text" srv-02 'black screen' get_screenshot read_screen_text power_action
id=$(sql "SELECT id FROM devices WHERE name = 'web-1'")
call prompts/get "{\"name\":\"recover_kernel_panic\",\"arguments\":{\"device\":\"$id\"}}"
check "a device given by id is named in the prompt" grep -q 'web-1' <<<"$(jqr '.result.messages[0].content.text')"
call prompts/get '{"name":"confirm_os_install","arguments":{"device":"srv-01"}}'
check "an optional argument left out reads naturally" \
  grep -q 'operating system not named' <<<"$(jqr '.result.messages[0].content.text')"
call prompts/get '{"name":"diagnose_boot_failure","arguments":{}}'
expect_rpc_error 200 -32602 "a prompt without its required device"
call prompts/get '{"name":"diagnose_boot_failure","arguments":{"device":"srv-other"}}'
expect_rpc_error 200 -32602 "a prompt for another organisation's device"
call prompts/get '{"name":"diagnose_boot_failure","arguments":{"device":"srv-01","extra":"x"}}'
expect_rpc_error 200 -32602 "a prompt with an unknown argument"
call prompts/get '{"name":"diagnose_boot_failure","arguments":{"device":7}}'
expect_rpc_error 200 -32602 "a prompt argument that is not a string"
call prompts/get '{"name":"no_such_prompt"}'
expect_rpc_error 200 -32602 "an unknown prompt"

# Reads of resources and prompts are audited like tool calls.
check "resources/read is audited: the URI, the device, the outcome" \
  [ "$(sql "SELECT outcome || ' ' || coalesce(device, '-') || ' ' || (args->>'uri') FROM audit_events WHERE action = 'resources/read' ORDER BY seq" | head -2 | tr '\n' '|')" = "ok - kvmgate://devices|error srv-01 kvmgate://devices/srv-01/screenshot|" ]
check "prompts/get is audited with its prompt, arguments and device" \
  [ "$(sql "SELECT outcome || ' ' || coalesce(device, '-') || ' ' || (args->>'name') || ' ' || (args->'arguments'->>'symptom') FROM audit_events WHERE action = 'prompts/get' ORDER BY seq LIMIT 1")" = "ok srv-02 diagnose_boot_failure black screen" ]
check "a refused prompts/get is audited as an error" \
  [ "$(sql "SELECT count(*) FROM audit_events WHERE action = 'prompts/get' AND outcome = 'error'")" = 4 ]

call completion/complete '{"ref":{"type":"ref/prompt","name":"diagnose_boot_failure"},"argument":{"name":"device","value":"SRV"}}'
check "completion of a prompt's device: this organisation's names, any case" \
  [ "$(jqc .result.completion)" = '{"values":["srv-01","srv-02"],"hasMore":false}' ]
call completion/complete '{"ref":{"type":"ref/resource","uri":"kvmgate://devices/{device}/screenshot"},"argument":{"name":"device","value":"w"}}'
check "completion of the screenshot template's device" [ "$(jqc .result.completion.values)" = '["web-1"]' ]
call completion/complete '{"ref":{"type":"ref/prompt","name":"diagnose_boot_failure"},"argument":{"name":"device","value":"%"}}'
check "a % in the value is a character, not a wildcard" [ "$(jqc .result.completion.values)" = '[]' ]
call completion/complete '{"ref":{"type":"ref/prompt","name":"confirm_os_install"},"argument":{"name":"os","value":"deb"}}'
check "an argument that is not a device completes to nothing" [ "$(jqc .result.completion.values)" = '[]' ]
call completion/complete '{"ref":{"type":"ref/tool","name":"x"},"argument":{"name":"a","value":""}}'
expect_rpc_error 200 -32602 "completion for an unknown kind of ref"

# ---- the production build has none of the fixtures ----------------------------------------

new_stack b || { not_ok "production stack starts"; exit 1; }
mcp=$b_url/mcp
tok=$b_token
open_session
call tools/list
check "production tools/list: no test_ tool" [ "$(jqr '[.result.tools[].name | select(startswith("test_"))] | length')" = 0 ]
tool test_simple_text
expect_rpc_error 200 -32602 "production: a fixture tool is unknown" "Unknown tool: test_simple_text"
call resources/list
check "production resources/list: only kvmgate resources" [ "$(jqc '[.result.resources[].uri]')" = '["kvmgate://devices"]' ]
call prompts/list
check "production prompts/list: no test_ prompt" [ "$(jqr '[.result.prompts[].name | select(startswith("test_"))] | length')" = 0 ]
check "the production program contains no fixture" lacks "$(strings "$bin/kvmgate-fcgi")" test_simple_text
