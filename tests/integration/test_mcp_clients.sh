#!/usr/bin/env bash
# The MCP endpoint through the real clients people use, installed from npm with
# the lockfile in tests/e2e and run on Node 22 (scripts/e2e-deps.sh): the SDK 1.x
# client, the v2 client (plain and with protocol-era negotiation), the inspector
# CLI, the mcp-remote stdio bridge, and the official conformance suite, 0.1.16
# and the 0.2.0 prerelease, against baselines of the scenarios that fail today.
# The suite sends no token: it runs through tests/e2e/token-proxy.mjs, a
# loopback proxy that adds one. If the clients or Node 22 cannot be installed,
# this test fails; it never skips.
. "$(dirname "$0")/lib.sh"

e2e=$top/tests/e2e
proxy_pid=
trap 'stop_proxy; finish' EXIT

node22=$("$top/scripts/e2e-deps.sh") || { not_ok "npm clients and Node 22 installed (scripts/e2e-deps.sh)"; exit 1; }
export PATH=$node22:$PATH
check "Node 22 from npm runs: $(node --version)" [ "$(node --version | cut -d. -f1)" = v22 ]

new_stack a || { not_ok "stack starts"; exit 1; }
mcp=$a_url/mcp
tok=$a_token
out=$a_var/clients
mkdir -p "$out" "$a_var/home"
# The test build with the conformance fixtures, for streaming and the suite.
KVMGATE_FCGI_PROGRAM=$bin/../tests/kvmgate-fcgi-fixtures new_stack f ||
  { not_ok "stack with fixtures starts"; exit 1; }

# [want=N] js NAME SCRIPT ARGS...: runs a tests/e2e driver (or any node
# program) on Node 22 with a scratch HOME; stdout to $out/NAME, stderr to
# $out/NAME.err. Sets rc to its exit status, and shows the end of its stderr
# when that is not the expected N (default 0). Nothing waits over three minutes.
js() {
  local name=$1
  shift
  (cd "$e2e" && HOME=$a_var/home MCP_REMOTE_CONFIG_DIR=$a_var/home/mcp-auth \
     timeout 180 node "$@" </dev/null >"$out/$name" 2>"$out/$name.err")
  rc=$?
  [ "$rc" = "${want:-0}" ] ||
    diag "$name exited $rc: $(tail -n 3 "$out/$name.err" | tr '\n' ' ' | cut -c1-400)"
}

# jl NAME FILTER: jq -r over the JSON lines NAME printed, slurped into an array.
jl() { jq -rs "$2" "$out/$1" 2>/dev/null; }

# step NAME STEP FILTER: FILTER applied to the first line of that step.
step() { jl "$1" "map(select(.step == \"$2\"))[0] | $3"; }

# inspector NAME ARGS...: the inspector CLI against $mcp; like js.
inspector() {
  local name=$1
  shift
  js "$name" node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js \
    --cli "$mcp" "$@"
}

stack_sql "$a_var" "INSERT INTO devices (org_id, name, kind, base_url, tags)
  SELECT id, 'rack1-pikvm', 'pikvm', 'https://10.0.0.5', '{rack1}' FROM organisations
  WHERE name = 'default'" >/dev/null

# What every client must list, in this order: the admin token sees every tool.
all_tools=get_server_info,list_devices,query_audit_log,verify_audit_integrity,get_audit_chain_head,get_screenshot,read_screen_text,wait_for_screen,get_device_health,type_text,send_keys,mouse_move,mouse_click,mouse_scroll,reset_hid,power_action,get_power_state,hdmi_reset,list_isos,mount_iso,unmount_iso,get_mounted_iso

# ---- SDK client 1.x ------------------------------------------------------------

CALL=get_server_info js sdk client.mjs "$mcp" "$tok"
check "SDK client: connect, list, ping, call, end the session: exit 0" [ "$rc" = 0 ]
check "SDK client: negotiated 2025-11-25 with kvmgate" \
  [ "$(step sdk connect '"\(.protocol) \(.server.name)"')" = "2025-11-25 kvmgate" ]
check "SDK client: one initialize, without MCP-Protocol-Version: 200" \
  [ "$(jl sdk '[.[] | select(.rpc == "initialize")] | "\(length) \(.[0].status) \(.[0].version)"')" = "1 200 null" ]
check "SDK client: notifications/initialized answered 202" \
  [ "$(jl sdk 'map(select(.rpc == "notifications/initialized"))[0].status')" = 202 ]
check "SDK client: its GET for a standalone stream gets 405, which it accepts" \
  [ "$(jl sdk 'map(select(.method == "GET"))[0].status')" = 405 ]
check "SDK client: lists every tool in one page" \
  [ "$(step sdk tools '"\(.names | join(",")) \(.pages)"')" = "$all_tools 1" ]
check "SDK client: ping" [ "$(step sdk ping .ok)" = true ]
check "SDK client: get_server_info names the caller" \
  [ "$(step sdk call '.result | "\(.isError) \(.structuredContent.name) \(.structuredContent.caller.user)"')" = "false kvmgate admin" ]
check "SDK client: every request after initialize carried the session and version" \
  [ "$(jl sdk '[.[] | select(.step == "http" and .rpc != "initialize")] | all(.session and .version == "2025-11-25")')" = true ]
check "SDK client: DELETE ends the session: 204" \
  [ "$(jl sdk 'map(select(.method == "DELETE"))[0].status')/$(step sdk terminate .ok)" = 204/true ]
sid=$(step sdk connect .session)
http POST "$mcp" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
  -H 'Accept: application/json, text/event-stream' -H "Mcp-Session-Id: $sid" \
  -H 'MCP-Protocol-Version: 2025-11-25' --data-binary '{"jsonrpc":"2.0","id":1,"method":"ping"}'
check "the session the SDK client ended is dead: 404" [ "$status/$(jqr .error.code)" = 404/-32001 ]

CALL=list_devices ARGS='{"tag":"rack1"}' js sdk-devices client.mjs "$mcp" "$tok"
check "SDK client: list_devices, structured content checked against its outputSchema" \
  [ "$rc/$(step sdk-devices call '[.result.structuredContent.devices[].name] | join(",")')" = 0/rack1-pikvm ]
CALL=list_devices ARGS='{"limit":0}' js sdk-bad client.mjs "$mcp" "$tok"
check "SDK client: a bad argument comes back as isError with the reason" \
  [ "$rc/$(step sdk-bad call '"\(.result.isError) \(.result.content[0].text)"' | grep -c 'true.*limit')" = 0/1 ]
want=1 CALL=no_such_tool js sdk-unknown client.mjs "$mcp" "$tok"
check "SDK client: an unknown tool is a JSON-RPC error -32602" \
  [ "$rc/$(step sdk-unknown error '"\(.where) \(.code)"')" = "1/call -32602" ]

want=1 js sdk-badtoken client.mjs "$mcp" kvmg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
check "SDK client, wrong token: connect fails with HTTP 401" \
  [ "$rc/$(step sdk-badtoken error '"\(.where) \(.error) \(.code)"')" = "1/connect StreamableHTTPError 401" ]
want=1 js sdk-notoken client.mjs "$mcp" ''
check "SDK client, no token: connect fails with HTTP 401" \
  [ "$rc/$(step sdk-notoken error .code)" = 1/401 ]

# Progress, cancellation and elicitation, on the stack with the fixtures.
fmcp=$f_url/mcp
PROGRESS=1 CALL=test_tool_with_progress js sdk-progress client.mjs "$fmcp" "$f_token"
check "SDK client, progress: exit 0, not an error" \
  [ "$rc/$(step sdk-progress call '.result.isError // false')" = 0/false ]
check "SDK client, progress: the call is answered as text/event-stream" \
  [ "$(jl sdk-progress 'map(select(.rpc == "tools/call"))[0].type')" = text/event-stream ]
check "SDK client, progress: 0, 50, 100 of 100 before the result" \
  [ "$(jl sdk-progress '[.[] | select(.step == "progress") | "\(.progress)/\(.total)"] | join(" ")')" = "0/100 50/100 100/100" ]

CANCEL_MS=500 CALL=test_long_operation ARGS='{"steps":100}' js sdk-cancel client.mjs "$fmcp" "$f_token"
check "SDK client, cancel: the call is abandoned, the session then ended cleanly" \
  [ "$rc/$(step sdk-cancel cancelled .name)/$(step sdk-cancel terminate .ok)" = 0/test_long_operation/true ]
check "SDK client, cancel: notifications/cancelled names the call and is accepted (202)" \
  [ "$(step sdk-cancel cancel-sent '"\(.requestId) \(.delivered)"')/$(jl sdk-cancel 'map(select(.rpc == "notifications/cancelled"))[0].status')" = \
    "$(jl sdk-cancel 'map(select(.rpc == "tools/call"))[0].id') true/202" ]
check "SDK client, cancel: the server stopped the call" \
  grep -q '"tool":"test_long_operation".*"result":"cancelled"' "$f_var/log/fcgi.log"

for a in accept decline cancel; do
  ELICIT=$a CALL=test_elicitation ARGS='{"message":"Confirm the e2e test"}' \
    js "sdk-elicit-$a" client.mjs "$fmcp" "$f_token"
  check "SDK client, elicitation answered $a: one form request, the result reports $a" \
    [ "$rc/$(jl "sdk-elicit-$a" '[.[] | select(.step == "elicitation")] | "\(length) \(.[0].mode)"')/$(step "sdk-elicit-$a" call '.result.content[0].text' | grep -c "action=$a")" = "0/1 form/1" ]
done

# ---- v2 client ------------------------------------------------------------------

js v2 client2.mjs "$mcp" "$tok"
check "v2 client: connects on 2025-11-25 (legacy era), lists, calls: exit 0" \
  [ "$rc/$(step v2 connect '"\(.protocol) \(.era)"')" = "0/2025-11-25 legacy" ]
check "v2 client: every tool, get_server_info answers" \
  [ "$(step v2 tools '.names | join(",")')/$(step v2 call .result.structuredContent.name)" = "$all_tools/kvmgate" ]
AUTO=1 js v2-auto client2.mjs "$mcp" "$tok"
check "v2 client, auto: probes with server/discover at 2026-07-28 and gets 400" \
  [ "$(jl v2-auto 'map(select(.step == "http"))[0] | "\(.rpc) \(.version) \(.status)"')" = "server/discover 2026-07-28 400" ]
check "v2 client, auto: falls back to initialize and ends on 2025-11-25" \
  [ "$rc/$(step v2-auto connect '"\(.protocol) \(.era)"')" = "0/2025-11-25 legacy" ]

# ---- inspector CLI ------------------------------------------------------------------

auth=(--header "Authorization: Bearer $tok")
inspector insp-list --method tools/list --format json "${auth[@]}"
check "inspector: tools/list as JSON" \
  [ "$rc/$(jq -r '[.result.tools[].name] | join(",")' "$out/insp-list")" = 0/$all_tools ]
inspector insp-call --method tools/call --tool-name get_server_info --format json "${auth[@]}"
check "inspector: tools/call get_server_info" \
  [ "$rc/$(jq -r .result.structuredContent.caller.organisation "$out/insp-call")" = 0/default ]
inspector insp-args --method tools/call --tool-name list_devices --tool-arg tag=rack1 --format json "${auth[@]}"
check "inspector: tools/call with --tool-arg" \
  [ "$rc/$(jq -r '.result.structuredContent.devices[0].name' "$out/insp-args")" = 0/rack1-pikvm ]
want=3 inspector insp-noauth --method tools/list
check "inspector without the header: exit 3 (auth required)" [ "$rc" = 3 ]
want=5 inspector insp-unknown --method tools/call --tool-name no_such_tool "${auth[@]}"
check "inspector, unknown tool: exit 5" [ "$rc" = 5 ]
want=5 inspector insp-iserror --method tools/call --tool-name list_devices --tool-arg limit=0 "${auth[@]}"
check "inspector, a tool answering isError: exit 5" [ "$rc" = 5 ]

# ---- mcp-remote ---------------------------------------------------------------------

js remote mcp-remote.mjs "$mcp" "$tok"
check "mcp-remote http-only bridge: lists every tool, calls get_server_info" \
  [ "$rc/$(step remote tools '.names | join(",")')/$(step remote call .result.structuredContent.name)" = \
    "0/$all_tools/kvmgate" ]

# ---- conformance suite through the token proxy ------------------------------------------

# start_proxy: tests/e2e/token-proxy.mjs in front of the stack with the fixtures; sets proxy_url.
start_proxy() {
  (cd "$e2e" && TOKEN=$f_token exec node token-proxy.mjs "$f_url") >"$out/proxy.port" 2>"$out/proxy.err" &
  proxy_pid=$!
  for _ in $(seq 1 100); do
    [ -s "$out/proxy.port" ] && break
    sleep 0.1
  done
  proxy_url=http://127.0.0.1:$(head -n 1 "$out/proxy.port")/mcp
}
stop_proxy() { [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null; proxy_pid=; }

start_proxy
http POST "$proxy_url" -H 'Content-Type: application/json' -H 'Accept: text/event-stream' \
  --data-binary '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
check "token proxy: adds the token, passes an SSE answer through" \
  [ "$status/$(sed -n 's/^data: //p' <<<"$body" | jq -r .result.serverInfo.name)" = 200/kvmgate ]
http POST "$proxy_url" -H 'Authorization: Bearer kvmg_wrong' -H 'Content-Type: application/json' \
  -H 'Accept: application/json' --data-binary '{"jsonrpc":"2.0","id":1,"method":"ping"}'
check "token proxy: a request's own Authorization is kept (wrong token: 401)" [ "$status" = 401 ]
http POST "$proxy_url" -H 'Host: evil.example.com' -H 'Content-Type: application/json' \
  -H 'Accept: application/json' --data-binary '{"jsonrpc":"2.0","id":1,"method":"ping"}'
check "token proxy: Host goes through unchanged (421 for another host)" [ "$status" = 421 ]

# conformance NAME PACKAGE-DIR BASELINE ARGS...: one run of the server suite
# with a baseline; results in $out/NAME/<scenario>/checks.json. Reports the
# counts, and on failure what was unexpected.
conformance() {
  local name=$1 pkg=$2 baseline=$3 total fails
  shift 3
  js "$name.log" "node_modules/$pkg/dist/index.js" server --url "$proxy_url" \
    -o "$out/$name" --expected-failures "$e2e/$baseline" "$@"
  total=$(ls "$out/$name" 2>/dev/null | wc -l)
  fails=$(for f in "$out/$name"/*/checks.json; do
            jq -e 'any(.status == "FAILURE" or .status == "WARNING")' "$f" >/dev/null && echo x
          done | wc -l)
  diag "$name: $((total - fails)) of $total scenarios pass, $fails fail" \
       "($(jq -s '[.[][] | select(.status == "SUCCESS")] | length' "$out/$name"/*/checks.json) checks pass," \
       "$(jq -s '[.[][] | select(.status == "FAILURE" or .status == "WARNING")] | length' "$out/$name"/*/checks.json) fail)"
  diag "$name passes: $(for f in "$out/$name"/*/checks.json; do
    jq -e 'any(.status == "FAILURE" or .status == "WARNING") | not' "$f" >/dev/null &&
      basename "$(dirname "$f")" | sed -E 's/^server-//; s/-[0-9]{4}-[0-9]{2}-[0-9]{2}T.*//'
  done | tr '\n' ' ')"
  check "$name: every scenario ran ($total)" [ "$total" -ge 30 ]
  check "$name: exactly the baselined failures ($baseline)" [ "$rc" = 0 ]
  if [ "$rc" != 0 ]; then
    sed -n '/Unexpected failures\|Stale baseline/,/^$/p' "$out/$name.log" | sed 's/^/# /'
    diag "each scenario's checks.json is under $out/$name (KEEP_STACKS=1 keeps it)"
  fi
}

conformance conformance-0.1.16 @modelcontextprotocol/conformance conformance-baseline.yml
conformance conformance-0.2.0-alpha.12 conformance-next conformance-next-baseline.yml \
  --requirements 2025-11-25
stop_proxy
