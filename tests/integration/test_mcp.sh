#!/usr/bin/env bash
# The MCP endpoint as a client meets it over HTTP: initialize and version
# negotiation, the session header, notifications, ping, tools/list and
# tools/call on real database rows, every transport refusal of the
# Streamable HTTP rules (406, 415, 413, 400, 404, 405, 401, 403, 421),
# sessions kept apart between organisations and users, DELETE and expiry.
. "$(dirname "$0")/lib.sh"
trap finish EXIT

# Rows are changed behind the gateway's back here (expiry, other users):
# workers must not answer from their short-lived lookup cache.
KVMGATE_AUTH_CACHE_MS=0 new_stack a || { not_ok "stack starts"; exit 1; }
mcp=$a_url/mcp
tok=$a_token
sid=
ver=2025-11-25

# ---- initialize and version negotiation --------------------------------------

for v in 2025-11-25 2025-06-18 2025-03-26; do
  sid=
  rpc "$(init_body "$v")"
  check "initialize $v: 200 application/json, version echoed" \
    [ "$status/$(hdr Content-Type)/$(jqr .result.protocolVersion)/$(jqr .id)" = "200/application/json/$v/0" ]
done
for v in 2024-11-05 1999-01-01 2026-07-28; do
  rpc "$(init_body "$v")"
  check "initialize $v: answered with 2025-11-25" \
    [ "$status/$(jqr .result.protocolVersion)" = 200/2025-11-25 ]
done
check "serverInfo names kvmgate and its version" \
  [ "$(jqr '.result.serverInfo | "\(.name) \(.version)"')" = "kvmgate $("$bin/kvmgate" version | cut -d' ' -f2)" ]
check "capabilities: tools, resources, prompts without change notifications or subscriptions; completions; logging" \
  [ "$(jqc .result.capabilities)" = '{"tools":{"listChanged":false},"resources":{"subscribe":false,"listChanged":false},"prompts":{"listChanged":false},"completions":{},"logging":{}}' ]
check "instructions describe kvmgate" grep -q 'list_devices' <<<"$(jqr .result.instructions)"
sid=$(hdr Mcp-Session-Id)
check "Mcp-Session-Id is 32 random hex characters" grep -qE '^[0-9a-f]{32}$' <<<"$sid"
check "the session is stored with client info and capabilities" \
  [ "$(sql "SELECT protocol_version || ' ' || client_name || ' ' || client_version || ' ' || (client_capabilities ? 'elicitation')::text FROM mcp_sessions WHERE id = '$sid'")" = "2025-11-25 it-client 1.0 true" ]
first=$sid; sid=
rpc "$(init_body 2025-11-25)"
check "every initialize opens another session" [ "$(hdr Mcp-Session-Id)" != "$first" ]

sid=$first
rpc '{"jsonrpc":"2.0","method":"notifications/initialized"}'
check "notifications/initialized: 202 with an empty body" [ "$status/${#body}" = 202/0 ]
check "202 carries no Content-Type" [ -z "$(hdr Content-Type)" ]
rpc '{"jsonrpc":"2.0","id":"srv-1","result":{}}'
check "a client response: 202, empty" [ "$status/${#body}" = 202/0 ]
rpc '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}'
check "another notification: 202" [ "$status" = 202 ]

call ping
check "ping answers an empty result with the request id" \
  [ "$status/$(jqc .result)/$(jqr .id)" = "200/{}/$rpc_id" ]
rpc '{"jsonrpc":"2.0","id":"abc","method":"ping"}'
check "string ids are echoed" [ "$(jqr .id)" = abc ]
rpc "$(init_body 2025-11-25)"
expect_rpc_error 400 -32600 "initialize again on a live session"

call logging/setLevel '{"level":"warning"}'
check "logging/setLevel answers {} and stores the level" \
  [ "$status/$(jqc .result)/$(sql "SELECT log_level FROM mcp_sessions WHERE id = '$sid'")" = "200/{}/warning" ]
call logging/setLevel '{"level":"loud"}'
expect_rpc_error 200 -32602 "logging/setLevel with an unknown level"

# ---- tools -------------------------------------------------------------------

call tools/list
check "tools/list: every tool, in table order" \
  [ "$status/$(jqr '[.result.tools[].name] | join(",")')" = "200/get_server_info,list_devices,query_audit_log,verify_audit_integrity,get_audit_chain_head,get_screenshot,read_screen_text,wait_for_screen,get_device_health,type_text,send_keys,mouse_move,mouse_click,mouse_scroll,reset_hid,power_action,get_power_state,hdmi_reset,list_isos,mount_iso,unmount_iso,get_mounted_iso" ]
check "every tool names its action of the role matrix" \
  [ "$(jqr '[.result.tools[]._meta["kvmgate/action"]] | join(",")')" = "server.read,devices.read,audit.read,audit.read,audit.read,console.read,console.read,console.read,devices.health,input.write,input.write,input.write,input.write,input.write,input.write,power.write,power.read,power.write,media.read,media.write,media.write,media.read" ]
check "every tool has a description, an object inputSchema and annotations" \
  [ "$(jqr '[.result.tools[] | (.description|length > 20) and .inputSchema.type == "object" and (.annotations | has("readOnlyHint") and has("destructiveHint") and has("idempotentHint") and has("openWorldHint"))] | all')" = true ]
check "read-only exactly when the action needs only the read scope" \
  [ "$(jqr '[.result.tools[] | .annotations.readOnlyHint == (._meta["kvmgate/action"] | endswith(".write") | not)] | all')" = true ]
check "list_devices declares an outputSchema" \
  [ "$(jqr '.result.tools[] | select(.name == "list_devices") | .outputSchema.required | join(",")')" = "devices,truncated" ]
check "one page: no nextCursor" [ "$(jqr '.result | has("nextCursor")')" = false ]
call tools/list '{"cursor":"not-a-cursor"}'
expect_rpc_error 200 -32602 "tools/list with a bad cursor"

tool list_devices
check "list_devices with no devices: an empty list, not an error" \
  [ "$status/$(jqr .result.isError)/$(jqc .result.structuredContent)" = '200/false/{"devices":[],"truncated":false}' ]
check "the text block is the structured content as JSON" \
  [ "$(printf '%s' "$body" | jq -c '.result.content[0].text | fromjson')" = "$(jqc .result.structuredContent)" ]

org1=$(sql "SELECT id FROM organisations WHERE name = 'default'")
sql "INSERT INTO devices (org_id, name, kind, base_url, tags) VALUES
     ($org1, 'rack1-web', 'pikvm', 'https://10.0.0.5', '{rack1,web}'),
     ($org1, 'db-bmc', 'ami', 'https://10.0.0.9/', '{}');
     INSERT INTO devices (org_id, name, kind, base_url, enabled) VALUES
     ($org1, 'old-nano', 'nanokvm', 'http://10.0.0.7', false)" >/dev/null
tool list_devices
check "list_devices lists the organisation's enabled devices by name" \
  [ "$(jqr '[.result.structuredContent.devices[].name] | join(",")')" = "db-bmc,rack1-web" ]
check "a device shows id, kind, url, tags, enabled and whether it has credentials" \
  [ "$(jqc '.result.structuredContent.devices[1] | [(.id|type), .kind, .url, .tags, .enabled, .has_credentials]')" = '["number","pikvm","https://10.0.0.5",["rack1","web"],true,false]' ]
tool list_devices '{"include_disabled":true,"kind":"nanokvm"}'
check "include_disabled and kind filter" \
  [ "$(jqr '[.result.structuredContent.devices[] | "\(.name):\(.enabled)"] | join(",")')" = "old-nano:false" ]
tool list_devices '{"tag":"web"}'
check "tag filter" [ "$(jqr '[.result.structuredContent.devices[].name] | join(",")')" = rack1-web ]
tool list_devices '{"limit":1}'
check "limit cuts the list and says so" \
  [ "$(jqr '.result.structuredContent | "\(.devices | length) \(.truncated)"')" = "1 true" ]
out=$(sql "INSERT INTO devices (org_id, name, kind, base_url) VALUES ($org1, 'x', 'vnc', 'vnc://u:p@h')" 2>&1)
check "a base_url with credentials in it is refused by the schema" grep -q 'check constraint' <<<"$out"

tool get_server_info
check "get_server_info: version, session protocol, caller" \
  [ "$(jqr '.result.structuredContent | "\(.name) \(.protocol_version) \(.caller.organisation) \(.caller.user) \(.caller.role) \(.caller.scopes | join("+"))"')" = "kvmgate 2025-11-25 default admin org_admin read+write" ]
check "get_server_info reports the capture worker's uptime" \
  [ "$(jqr '.result.structuredContent.capture | "\(.running) \(.uptime_s | type)"')" = "true number" ]
check "get_server_info is not an error" [ "$(jqr .result.isError)" = false ]

# Bad arguments are tool errors the model can read and fix.
for a in '{"limit":0}:limit' '{"limit":"5"}:limit' '{"kind":"ilo"}:kind' '{"colour":"red"}:colour' \
         '{"include_disabled":"yes"}:include_disabled' '{"tag":""}:tag'; do
  tool list_devices "${a%:*}"
  check "list_devices ${a%:*}: isError naming '${a##*:}'" \
    [ "$status/$(jqr .result.isError)/$(jqr '.result.content[0].text | contains("'"'${a##*:}'"'")')" = 200/true/true ]
done
tool get_server_info '{"verbose":true}'
check "get_server_info with an argument: isError" [ "$(jqr .result.isError)" = true ]
call tools/call '{"name":"list_devices","arguments":[1]}'
expect_rpc_error 200 -32602 "arguments that are not an object"
tool no_such_tool
expect_rpc_error 200 -32602 "unknown tool" "Unknown tool: no_such_tool"
call tools/call '{}'
expect_rpc_error 200 -32602 "tools/call without a name"
call resources/lists
expect_rpc_error 200 -32601 "unknown method"
call resources/subscribe '{"uri":"kvmgate://devices"}'
expect_rpc_error 200 -32601 "resources/subscribe: no subscriptions are offered"
call ping '[1,2]'
expect_rpc_error 200 -32602 "params that are not an object"

# ---- malformed messages --------------------------------------------------------

rpc '{"jsonrpc":"2.0","id":1,"method":'
expect_rpc_error 400 -32700 "truncated JSON"
check "a parse error answers id null" [ "$(jqc .id)" = null ]
rpc '{"jsonrpc":"2.0","id":1,"method":"ping"} trailing'
expect_rpc_error 400 -32700 "trailing garbage"
rpc "$(printf '{"jsonrpc":"2.0","id":1,"method":"\xff"}')"
expect_rpc_error 400 -32700 "invalid UTF-8"
rpc ''
expect_rpc_error 400 -32700 "empty body"
rpc '[{"jsonrpc":"2.0","id":1,"method":"ping"}]'
expect_rpc_error 400 -32600 "a batch"
rpc '{"jsonrpc":"1.0","id":7,"method":"ping"}'
expect_rpc_error 400 -32600 "jsonrpc 1.0"
check "the invalid request's id is echoed" [ "$(jqr .id)" = 7 ]
rpc '{"id":1,"method":"ping"}'
expect_rpc_error 400 -32600 "no jsonrpc member"
rpc '{"jsonrpc":"2.0","id":null,"method":"ping"}'
expect_rpc_error 400 -32600 "id null"
rpc '{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}'
expect_rpc_error 400 -32600 "id an object"
rpc '{"jsonrpc":"2.0","id":1,"method":5}'
expect_rpc_error 400 -32600 "method not a string"
rpc '{"jsonrpc":"2.0","id":1}'
expect_rpc_error 400 -32600 "neither request nor response"
rpc '"ping"'
expect_rpc_error 400 -32600 "a JSON string"

# ---- transport rules -----------------------------------------------------------

post '{"jsonrpc":"2.0","id":1,"method":"ping"}' -H 'Content-Type: application/json' \
  -H "Mcp-Session-Id: $sid" -H 'Accept: text/html'
expect_rpc_error 406 -32000 "Accept without application/json or text/event-stream"
post '{"jsonrpc":"2.0","id":1,"method":"ping"}' -H 'Content-Type: application/json' \
  -H "Mcp-Session-Id: $sid" -H 'Accept:'
check "no Accept at all: 406" [ "$status" = 406 ]
post '{"jsonrpc":"2.0","id":1,"method":"ping"}' -H 'Content-Type: application/json; charset=utf-8' \
  -H "Mcp-Session-Id: $sid" -H 'Accept: application/json'
check "Accept application/json alone and a charset on Content-Type: 200" [ "$status" = 200 ]
post '{"jsonrpc":"2.0","id":9,"method":"ping"}' -H 'Content-Type: application/json' \
  -H "Mcp-Session-Id: $sid" -H 'Accept: text/event-stream'
check "Accept text/event-stream alone: the response as one SSE event" \
  [ "$status/$(hdr Content-Type)/$(sed -n 's/^data: //p' <<<"$body" | jq -c '[.id, .result]')" = '200/text/event-stream/[9,{}]' ]
post '{"jsonrpc":"2.0","id":1,"method":"ping"}' -H 'Accept: application/json' -H "Mcp-Session-Id: $sid" \
  -H 'Content-Type: text/plain'
expect_rpc_error 415 -32000 "Content-Type text/plain"
post '{"jsonrpc":"2.0","id":1,"method":"ping"}' -H 'Accept: application/json' -H "Mcp-Session-Id: $sid" \
  -H 'Content-Type:'
check "no Content-Type: 415" [ "$status" = 415 ]
head -c 1100000 /dev/zero | tr '\0' ' ' >"$a_var/big.json"
http POST "$mcp" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
  -H 'Accept: application/json' --data-binary @"$a_var/big.json"
check "a body over the limit: 413" [ "$status" = 413 ]

ver=1999-01-01 rpc '{"jsonrpc":"2.0","id":1,"method":"ping"}'
expect_rpc_error 400 -32000 "unsupported MCP-Protocol-Version"
check "the refusal names the version" grep -q '1999-01-01' <<<"$(jqr .error.message)"
for v in 2025-06-18 2025-03-26; do
  ver=$v rpc '{"jsonrpc":"2.0","id":1,"method":"ping"}'
  check "MCP-Protocol-Version $v is accepted" [ "$status" = 200 ]
done

keep=$sid; sid=
call ping
expect_rpc_error 400 -32000 "no Mcp-Session-Id" "Bad Request: Mcp-Session-Id header is required"
rpc '{"jsonrpc":"2.0","method":"notifications/initialized"}'
check "a notification without a session: 400" [ "$status" = 400 ]
# A 2026-07-28 client probes first and must get a plain 4xx to fall back.
ver=2026-07-28 rpc '{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}'
expect_rpc_error 400 -32000 "a 2026-07-28 server/discover probe"
sid=0123456789abcdef0123456789abcdef
call ping
expect_rpc_error 404 -32001 "an unknown session" "Session not found"
sid="not a session id at all"
call ping
expect_rpc_error 404 -32001 "a malformed session id"
sid=$keep

http GET "$mcp" -H "Authorization: Bearer $tok" -H 'Accept: text/event-stream' -H "Mcp-Session-Id: $sid"
check "GET: 405 with Allow: POST, DELETE" [ "$status/$(hdr Allow)" = "405/POST, DELETE" ]
check "GET's 405 is a JSON-RPC error" [ "$(jqr .error.code)" = -32000 ]
http PUT "$mcp" -H "Authorization: Bearer $tok"
check "PUT: 405" [ "$status" = 405 ]

# Authentication comes from the bearer token, as for the API.
http POST "$mcp" -H 'Content-Type: application/json' -H 'Accept: application/json' \
  --data-binary "$(init_body 2025-11-25)"
check "no token: 401 with WWW-Authenticate" \
  [ "$status/$(grep -ci '^WWW-Authenticate: Bearer' <<<"$headers")" = 401/1 ]
tok_saved=$tok; tok=kvmg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
call ping
check "an unknown token: 401 invalid_token" \
  [ "$status/$(grep -ci 'error="invalid_token"' <<<"$headers")" = 401/1 ]
tok=$tok_saved

# DNS rebinding and cross-site pages.
call ping '{}' -H 'Origin: http://evil.example.com'
check "Origin of another site: 403" [ "$status/$(jqr .error.code)" = 403/forbidden_origin ]
call ping '{}' -H 'Origin: null'
check "Origin null: 403" [ "$status" = 403 ]
call ping '{}' -H "Origin: http://127.0.0.1:$a_port"
check "Origin of the gateway itself: 200" [ "$status" = 200 ]
call ping '{}' -H "Origin: http://localhost:$a_port"
check "Origin on another allowed host name: 200" [ "$status" = 200 ]
call ping '{}' -H 'Host: evil.example.com'
check "Host of another site: 421" [ "$status/$(jqr .error.code)" = 421/misdirected_request ]
sid=; rpc "$(init_body 2025-11-25)" -H 'Host: evil.example.com' -H 'Origin: http://evil.example.com'
check "initialize through DNS rebinding (conformance): 4xx" [ "${status:0:1}" = 4 ]
rpc "$(init_body 2025-11-25)" -H "Host: localhost:$a_port" -H "Origin: http://localhost:$a_port"
check "the same initialize with our host: 200" [ "$status" = 200 ]
sid=$keep

# ---- sessions belong to one user of one organisation -----------------------------

# token_row ORG USER SCOPES: a new token row for (org, user); prints the token.
token_row() {
  local t
  t="kvmg_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' | cut -c1-43)"
  sql "INSERT INTO api_tokens (org_id, user_id, name, shown, hash, scopes)
       VALUES ($1, $2, 'it-$RANDOM', '${t:0:12}', '\\x$(printf %s "$t" | sha256sum | cut -c1-64)', '$3')" >/dev/null
  printf '%s' "$t"
}
org2=$(sql "INSERT INTO organisations (name) VALUES ('other-org') RETURNING id")
user2=$(sql "INSERT INTO users (username) VALUES ('mallory') RETURNING id")
sql "INSERT INTO memberships (org_id, user_id, role) VALUES ($org2, $user2, 'org_admin')" >/dev/null
tok2=$(token_row "$org2" "$user2" '{read,write}')
admin=$(sql "SELECT id FROM users WHERE username = 'admin'")
user3=$(sql "INSERT INTO users (username) VALUES ('colleague') RETURNING id")
sql "INSERT INTO memberships (org_id, user_id, role) VALUES ($org1, $user3, 'viewer')" >/dev/null
tok3=$(token_row "$org1" "$user3" '{read}')
tokw=$(token_row "$org1" "$admin" '{write}')

tok=$tok2
call ping
expect_rpc_error 404 -32001 "another organisation's token with this session"
tool list_devices
check "nor can it call tools in it" [ "$status" = 404 ]
open_session
tool list_devices
check "the other organisation sees none of this one's devices" \
  [ "$status/$(jqc .result.structuredContent.devices)" = "200/[]" ]
tool get_server_info
check "and acts as itself" [ "$(jqr '.result.structuredContent.caller | "\(.organisation) \(.user)"')" = "other-org mallory" ]
org2_sid=$sid; sid=$keep

tok=$tok3
call ping
expect_rpc_error 404 -32001 "another user of the same organisation with this session"
tok=$tokw
call ping
check "the same user's other token may use the session" [ "$status" = 200 ]
call tools/list
check "a token without the read scope sees no read tools, only the 10 write tools" \
  [ "$(jqr '.result.tools | length')/$(jqr '[.result.tools[]._meta["kvmgate/action"] | endswith(".write")] | all')" = 10/true ]
tool list_devices
check "a token without the read scope calls a read tool: isError naming the scope" \
  [ "$status/$(jqr .result.isError)/$(jqr '.result.content[0].text | contains("read scope")')" = 200/true/true ]
tok=$tok_saved

# ---- DELETE and expiry -------------------------------------------------------------

http DELETE "$mcp" -H "Authorization: Bearer $tok"
expect_rpc_error 400 -32000 "DELETE without a session"
http DELETE "$mcp" -H "Authorization: Bearer $tok" -H "Mcp-Session-Id: $org2_sid"
expect_rpc_error 404 -32001 "DELETE of another organisation's session"
http DELETE "$mcp" -H "Authorization: Bearer $tok" -H "Mcp-Session-Id: $sid"
check "DELETE ends the session: 204, no body" [ "$status/${#body}" = 204/0 ]
check "204 carries neither Content-Length nor Content-Type" \
  [ -z "$(hdr Content-Length)$(hdr Content-Type)" ]
call ping
expect_rpc_error 404 -32001 "the session after DELETE"
rpc '{"jsonrpc":"2.0","method":"notifications/initialized"}'
check "notifications to an ended session: 404" [ "$status" = 404 ]
http DELETE "$mcp" -H "Authorization: Bearer $tok" -H "Mcp-Session-Id: $sid"
check "DELETE again: 404" [ "$status" = 404 ]
rpc "$(init_body 2025-11-25)"
new=$(hdr Mcp-Session-Id)
check "initialize with the dead session's id opens a new session" \
  [ "$status" = 200 -a -n "$new" -a "$new" != "$sid" ]

open_session
call ping
check "a fresh session works" [ "$status" = 200 ]
sql "UPDATE mcp_sessions SET last_seen_at = now() - interval '29 minutes' WHERE id = '$sid'" >/dev/null
call ping
check "a session idle for 29 minutes still works" [ "$status" = 200 ]
check "and using it moves last_seen_at forward" \
  [ "$(sql "SELECT last_seen_at > now() - interval '1 minute' FROM mcp_sessions WHERE id = '$sid'")" = t ]
sql "UPDATE mcp_sessions SET last_seen_at = now() - interval '31 minutes' WHERE id = '$sid'" >/dev/null
call ping
expect_rpc_error 404 -32001 "a session idle for 31 minutes"

sql "DELETE FROM api_tokens WHERE org_id = $org2" >/dev/null
check "sessions go with their token" \
  [ "$(sql "SELECT count(*) FROM mcp_sessions WHERE id = '$org2_sid'")" = 0 ]

# ---- what the operator sees ------------------------------------------------------

http GET "$a_url/metrics"
check "metrics count /mcp once per status" \
  grep -qE '^kvmgate_http_requests_total\{route="/mcp",status="200"\} [1-9]' <<<"$body"
check "no metrics series appears twice" [ -z "$(grep -v '^#' <<<"$body" | sed 's/ [^ ]*$//' | sort | uniq -d)" ]
check "fcgi logs each tool call on its request line with the session and result" \
  quiet jq -e -s 'any(.msg == "request" and .tool == "list_devices" and .result == "ok" and (.session | length) == 8)' "$a_var/log/fcgi.log"
check "no token in the logs" bash -c "! grep -rqF -e '$a_token' -e '$tok2' '$a_var/log'"
