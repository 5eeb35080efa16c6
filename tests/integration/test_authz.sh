#!/usr/bin/env bash
# The one authorisation step and the audit of every call: the role matrix,
# every cell, for every route and tool (driven from the matrix the server
# publishes in its API document and the tools' _meta); one audit event per
# read, a committed intent before every write and nothing done when it
# cannot be written; organisations kept apart (404, never 200); bad input
# changes nothing; device credentials never leave the server.
. "$(dirname "$0")/lib.sh"
trap finish EXIT

new_stack a || { not_ok "stack starts"; exit 1; }
mcp=$a_url/mcp
api=$a_url/api/v1
tok=$a_token
sid=
ver=2025-11-25

# token_row ORG USER SCOPES [EXTRA_COLUMNS EXTRA_VALUES]: a new token row; prints the token.
token_row() {
  local t cols=${4:-} vals=${5:-}
  t="kvmg_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' | cut -c1-43)"
  sql "INSERT INTO api_tokens (org_id, user_id, name, shown, hash, scopes${cols:+, $cols})
       VALUES ($1, $2, 'it-$RANDOM', '${t:0:12}', '\\x$(printf %s "$t" | sha256sum | cut -c1-64)', '$3'${vals:+, $vals})" >/dev/null
  printf '%s' "$t"
}
# member ORG NAME ROLE: a user with that role in ORG; prints its id.
member() {
  local u
  u=$(sql "INSERT INTO users (username) VALUES ('$2') RETURNING id")
  sql "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $u, '$3')" >/dev/null
  printf '%s' "$u"
}
# events: how many audit events organisation $org1 has.
events() { sql "SELECT count(*) FROM audit_events WHERE org_id = $org1"; }
# last_event COLUMNS: those columns of the organisation's last event, |-separated.
last_event() { sql "SELECT $1 FROM audit_events WHERE org_id = $org1 ORDER BY seq DESC LIMIT 1"; }
# rest METHOD PATH [curl args...]: a REST call with $tok.
rest() { local m=$1 p=$2; shift 2; http "$m" "$api$p" -H "Authorization: Bearer $tok" "$@"; }

org1=$(sql "SELECT id FROM organisations WHERE name = 'default'")
admin=$(sql "SELECT id FROM users WHERE username = 'admin'")
declare -A tokens users
for role in org_admin operator viewer auditor; do
  users[$role]=$(member "$org1" "u-$role" "$role")
  tokens[$role]=$(token_row "$org1" "${users[$role]}" '{read,write}')
  tokens[$role-read]=$(token_row "$org1" "${users[$role]}" '{read}')
done

# ---- audit events of MCP calls ------------------------------------------------

open_session
n0=$(events)
call ping
call tools/list
check "initialize, ping and tools/list write no audit event" [ "$(events)" = "$n0" ]
tool list_devices '{"limit":5}'
check "list_devices answers" [ "$(jqr .result.isError)" = false ]
check "a tool call writes one event" [ "$(events)" = $((n0 + 1)) ]
check "the event: tool, actor, MCP client, session, args, outcome, latency" \
  [ "$(last_event "action, actor_kind, actor_user, actor_token, client_kind, client_name, client_version, mcp_session_id = '$sid', args::text, outcome, latency_ms >= 0, source_ip IS NOT NULL, request_id IS NOT NULL")" = 'list_devices|token|admin|admin|mcp|it-client|1.0|t|{"limit": 5}|ok|t|t|t' ]
tool list_devices '{"limit":0}'
check "a call with bad arguments: one event, outcome error, reason" \
  [ "$(events)/$(last_event "outcome, reason LIKE '%limit%'")" = "$((n0 + 2))/error|t" ]

tok=${tokens[org_admin]}
open_session
tok=${tokens[auditor]}
sid_aud=
open_session
tool list_devices
check "an auditor may list devices" [ "$(jqr .result.isError)" = false ]

# ---- nothing happens without its audit event --------------------------------------

# audit_broken on|off: makes every audit append fail (a trigger refusing inserts).
audit_broken() {
  if [ "$1" = on ]; then
    sql "CREATE FUNCTION it_refuse() RETURNS trigger LANGUAGE plpgsql AS \$\$
         BEGIN RAISE EXCEPTION 'test: audit refused'; END \$\$;
         CREATE TRIGGER it_refuse BEFORE INSERT ON audit_events
         FOR EACH ROW EXECUTE FUNCTION it_refuse()" >/dev/null
  else
    sql "DROP TRIGGER it_refuse ON audit_events; DROP FUNCTION it_refuse()" >/dev/null
  fi
}
tok=$a_token
open_session
n0=$(events)
audit_broken on
tool list_devices
check "a read whose event cannot be written: isError 'Not done', no device list" \
  [ "$(jqr .result.isError)/$(jqr '.result.content[0].text | startswith("Not done")')/$(jqr '.result | has("structuredContent")')" = true/true/false ]
rest GET /me
expect_error 503 audit_unavailable "GET /api/v1/me when its event cannot be written"
check "and the answer is withheld" lacks "$body" '"organisation"'
audit_broken off
check "no event was written meanwhile" [ "$(events)" = "$n0" ]
rest GET /me
check "REST reads are audited: GET /api/v1/me" \
  [ "$status/$(last_event "action, client_kind, outcome")" = "200/GET /api/v1/me|rest|ok" ]

# ---- the audit log through REST and MCP ---------------------------------------------

tok=$a_token
rest GET /audit/head
head_seq=$(jqr .seq)
# The head is read before the call's own event is appended: that event follows it.
check "GET /audit/head: seq, hash, time of the last event before the call's own" \
  [ "$status/$(jqr '.hash | length')/$(jqr .organisation)" = "200/64/default" -a "$head_seq" = "$(sql "SELECT max(seq) - 1 FROM audit_events WHERE org_id = $org1")" ]
rest GET /audit/integrity
check "GET /audit/integrity: intact" [ "$status/$(jqr .chain_ok)" = 200/true ]
rest GET '/audit?limit=2'
check "GET /audit: newest first, limited, with a cursor" \
  [ "$status/$(jqr '.events | length')/$(jqr '.events[0].seq > .events[1].seq')" = 200/2/true -a -n "$(jqr .next_cursor)" ]
cur=$(jqr .next_cursor); last=$(jqr '.events[1].seq')
rest GET "/audit?limit=2&cursor=$cur"
check "the next page starts after the cursor" [ "$(jqr '.events[0].seq')" = $((last - 1)) ]
rest GET '/audit?tool=list_devices&outcome=error'
check "filters: tool and outcome" \
  [ "$(jqr '[.events[] | "\(.action)/\(.outcome)"] | unique | join(",")')" = "list_devices/error" ]
rest GET '/audit?actor=admin&limit=500'
check "filter: actor" [ "$(jqr '[.events[].actor.user] | unique | join(",")')" = admin ]
rest GET "/audit?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z"
check "filter: time range" [ "$status/$(jqr '.events | length')/$(jqr .next_cursor)" = 200/0/null ]
n0=$(events)
for inj in "' OR 1=1 --" "x'; DROP TABLE audit_events; --" '"; SELECT pg_sleep(5); --' "%' OR '%'='" "1 OR 1=1"; do
  for f in actor tool device; do
    rest GET "/audit" --get --data-urlencode "$f=$inj"
    [ "$status/$(jqr '.events | length')" = 200/0 ] || not_ok "injection in $f: $status $body"
  done
  for f in from to outcome cursor limit; do
    rest GET "/audit" --get --data-urlencode "$f=$inj"
    [ "$status/$(jqr .error.code)" = 400/bad_request ] || not_ok "injection in $f: $status $body"
  done
done
ok "SQL injection strings in every filter: empty results or 400 naming the filter"
check "the audit table is intact after them" [ "$(sql "SELECT count(*) > 0 FROM audit_events")" = t ]
rest GET '/audit?colour=red'
expect_error 400 bad_request "an unknown filter"
rest GET /audit/export
check "GET /audit/export: JSON lines, header to trailer" \
  [ "$status/$(hdr Content-Type)/$(head -n1 <<<"$body" | jq -r .format 2>/dev/null)" = "200/application/jsonl/kvmgate-audit-export" ]
printf '%s\n' "$body" >"$a_var/export.jsonl"
check "the export verifies offline" quiet env KVMGATE_VAR_DIR="$a_var" "$bin/kvmgate" audit verify --file "$a_var/export.jsonl"

open_session
tool query_audit_log '{"tool":"GET /api/v1/audit/export","limit":1}'
check "query_audit_log filters by route" \
  [ "$(jqr .result.isError)/$(jqr '.result.structuredContent.events[0] | "\(.action)/\(.client.kind)/\(.outcome)"')" = "false/GET /api/v1/audit/export/rest/ok" ]
tool query_audit_log '{"from":"yesterday"}'
check "query_audit_log with a bad time: isError naming 'from'" \
  [ "$(jqr .result.isError)/$(jqr '.result.content[0].text | contains("from")')" = true/true ]
tool verify_audit_integrity
check "verify_audit_integrity: intact" [ "$(jqr .result.structuredContent.chain_ok)" = true ]
tool get_audit_chain_head
check "get_audit_chain_head: the head" \
  [ "$(jqr .result.structuredContent.seq)" = "$(sql "SELECT max(seq) - 1 FROM audit_events WHERE org_id = $org1")" ]

# ---- devices over REST: credentials sealed, never shown --------------------------------

tok=$a_token
secret_user="admin-$RANDOM-login"
secret_pass="pa55-$RANDOM-Zq!x\"'<>"
dev_body=$(jq -cn --arg u "$secret_user" --arg p "$secret_pass" \
  '{name:"rack1-bmc",kind:"ami",url:"https://10.1.0.5",username:$u,password:$p,tags:["rack1","lab"],screen_width:1024,screen_height:768}')
n0=$(events)
rest POST /devices -H 'Content-Type: application/json' --data-binary "$dev_body"
dev=$(jqr .id)
check "POST /devices: 201 with has_credentials, tags, screen hints" \
  [ "$status/$(jqc '[.name, .kind, .url, .tags, .has_credentials, .screen_width, .screen_height]')" = '201/["rack1-bmc","ami","https://10.1.0.5",["rack1","lab"],true,1024,768]' ]
check "a write writes two events: pending, then ok" \
  [ "$(events)/$(sql "SELECT string_agg(outcome, ',' ORDER BY seq) FROM audit_events WHERE org_id = $org1 AND seq > (SELECT max(seq) - 2 FROM audit_events WHERE org_id = $org1)")" = "$((n0 + 2))/pending,ok" ]
check "the pending event was committed before the device existed" \
  [ "$(sql "SELECT e.occurred_at < d.created_at OR e.occurred_at <= clock_timestamp() FROM audit_events e, devices d WHERE d.id = $dev AND e.org_id = $org1 AND e.outcome = 'pending' ORDER BY e.seq DESC LIMIT 1")" = t ]
check "the credentials are stored sealed: nonce, ciphertext, key id" \
  [ "$(sql "SELECT length(cred_nonce), length(cred_ciphertext) > 16, cred_key_id ~ '^[0-9a-f]{8}$' FROM devices WHERE id = $dev")" = "12|t|t" ]
check "no plain credential in the devices row" \
  lacks "$(sql "SELECT d::text, encode(cred_ciphertext, 'escape') FROM devices d WHERE id = $dev")" "$secret_user"
check "the master key is a 0600 file, not in the database" \
  [ "$(stat -c %a "$a_var/master.key")" = 600 -a "$(sql "SELECT count(*) FROM devices WHERE cred_key_id IS NOT NULL")" = 1 ]
rest GET "/devices/$dev"
check "GET /devices/{id}: the device, no credentials" \
  [ "$status/$(jqr .name)/$(jqr 'has("password") or has("username")')" = "200/rack1-bmc/false" ]
rest GET /devices/rack1-bmc
check "GET /devices/{name} finds it too" [ "$status/$(jqr .id)" = "200/$dev" ]
rest PATCH "/devices/$dev" -H 'Content-Type: application/json' --data-binary '{"password":"new-pass-1","enabled":false}'
check "PATCH: the password changes, the username stays sealed, enabled false" \
  [ "$status/$(jqr .enabled)/$(jqr .has_credentials)" = "200/false/true" ]
rest PATCH "/devices/$dev" -H 'Content-Type: application/json' --data-binary '{"keep_warm":true}'
check "PATCH keep_warm: stored, shown" \
  [ "$status/$(jqr .keep_warm)/$(sql "SELECT keep_warm FROM devices WHERE id = $dev")" = "200/true/t" ]
rest GET '/devices?include_disabled=true&tag=lab'
check "GET /devices with filters" [ "$status/$(jqr '[.devices[].name] | join(",")')" = "200/rack1-bmc" ]
rest GET '/devices'
check "a disabled device is left out by default" [ "$(jqr '.devices | length')" = 0 ]
rest POST /devices -H 'Content-Type: application/json' --data-binary "$dev_body"
expect_error 409 conflict "a second device of the same name"
for bad in '{"name":"x","kind":"ilo","url":"https://h"}:kind' \
           '{"name":"x","kind":"vnc","url":"vnc://u:p@h:5900"}:url' \
           '{"name":"x","kind":"vnc"}:url' \
           '{"name":"x","kind":"vnc","url":"vnc://h","colour":1}:colour' \
           '{"name":"a\u0007b","kind":"vnc","url":"vnc://h"}:name' \
           '{"name":"a\nb","kind":"vnc","url":"vnc://h"}:name' \
           '{"name":"","kind":"vnc","url":"vnc://h"}:name' \
           '{"name":"x","kind":"vnc","url":"vnc://h","tags":"a"}:tags' \
           '{"name":"x","kind":"vnc","url":"vnc://h","screen_width":0}:screen_width' \
           'not json:JSON' '[1]:JSON'; do
  rest POST /devices -H 'Content-Type: application/json' --data-binary "${bad%:*}"
  [ "$status/$(jqr .error.code)" = 400/bad_request ] && grep -q "${bad##*:}" <<<"$(jqr .error.message)" ||
    not_ok "bad device ${bad%:*}: $status $body"
done
ok "bad device bodies: 400 naming the field"
check "and none was stored" [ "$(sql "SELECT count(*) FROM devices WHERE org_id = $org1")" = 1 ]
rest POST /devices -H 'Content-Type: application/json' --data-binary '{"name":"сервер-东京-🖥","kind":"vnc","url":"vnc://10.0.0.9:5901"}'
uni=$(jqr .id)
check "unicode names are kept as given" [ "$status/$(jqr .name)" = "201/сервер-东京-🖥" ]

# A write whose intent cannot be written does not happen.
audit_broken on
rest POST /devices -H 'Content-Type: application/json' --data-binary '{"name":"never","kind":"vnc","url":"vnc://h"}'
expect_error 503 audit_unavailable "POST /devices when its intent cannot be written"
rest DELETE "/devices/$uni"
expect_error 503 audit_unavailable "DELETE /devices/{id} when its intent cannot be written"
audit_broken off
check "nothing was created or deleted" \
  [ "$(sql "SELECT count(*) FROM devices WHERE name = 'never'")/$(sql "SELECT count(*) FROM devices WHERE id = $uni")" = 0/1 ]
rest DELETE "/devices/$uni"
check "DELETE /devices/{id}: 204, gone" [ "$status/$(sql "SELECT count(*) FROM devices WHERE id = $uni")" = 204/0 ]
rest GET "/devices/$uni"
expect_error 404 not_found "the deleted device"

# ---- organisations apart: another organisation's ids are not found ---------------------

org2=$(sql "INSERT INTO organisations (name) VALUES ('other-org') RETURNING id")
u2=$(member "$org2" mallory org_admin)
tok2=$(token_row "$org2" "$u2" '{read,write}')
tok=$tok2
for m in GET PATCH DELETE; do
  rest "$m" "/devices/$dev" -H 'Content-Type: application/json' --data-binary '{"enabled":true}'
  expect_error 404 not_found "$m another organisation's device by id"
  rest "$m" "/devices/rack1-bmc" -H 'Content-Type: application/json' --data-binary '{"enabled":true}'
  expect_error 404 not_found "$m another organisation's device by name"
done
rest GET '/devices?include_disabled=true'
check "GET /devices lists none of the other organisation's" [ "$status/$(jqr '.devices | length')" = 200/0 ]
rest GET "/audit?device=$dev"
check "GET /audit shows none of the other organisation's events" [ "$status/$(jqr '.events | length')" = 200/0 ]
rest GET '/audit?limit=500'
check "the other organisation's log holds only its own events" \
  [ "$(jqr '[.events[].actor.user] | unique | join(",")')" = mallory ]
sid=; open_session
tool list_devices '{"include_disabled":true}'
check "list_devices over MCP: none of the other organisation's" [ "$(jqc .result.structuredContent.devices)" = '[]' ]
tool query_audit_log "{\"device\":\"$dev\"}"
check "query_audit_log: none of the other organisation's events" [ "$(jqc .result.structuredContent.events)" = '[]' ]
check "the device is untouched" [ "$(sql "SELECT enabled FROM devices WHERE id = $dev")" = f ]
check "its events went to its own chain" \
  [ "$(sql "SELECT count(*) FROM audit_events WHERE org_id = $org2 AND actor_user = 'mallory'")" -gt 10 ]
tok=$a_token

# ---- tokens that must not work ----------------------------------------------------------

expired=$(token_row "$org1" "$admin" '{read,write}' expires_at "now() - interval '1 second'")
revoked=$(token_row "$org1" "$admin" '{read,write}' revoked_at "now()")
for t in expired revoked; do
  http GET "$api/devices" -H "Authorization: Bearer ${!t}"
  expect_error 401 unauthorized "a $t token"
done
http GET "$api/devices" -u "admin:$a_token"
expect_error 401 unauthorized "the token presented as a password (Basic)"
http POST "$api/devices" -u "admin:$a_token" -H 'Content-Type: application/json' --data-binary '{"name":"basic","kind":"vnc","url":"vnc://h"}'
check "and nothing was created by it" [ "$status/$(sql "SELECT count(*) FROM devices WHERE name = 'basic'")" = 401/0 ]

# ---- secrets: device credentials appear nowhere ----------------------------------------

sleep 0.2
check "no device credential in any audit event" \
  [ "$(sql "SELECT count(*) FROM audit_events WHERE position('$secret_user' in convert_from(canon, 'UTF8')) > 0 OR position('new-pass-1' in convert_from(canon, 'UTF8')) > 0 OR args::text LIKE '%pa55-%'")" = 0 ]
check "the audit events record them as [redacted]" \
  [ "$(sql "SELECT count(*) FROM audit_events WHERE action = 'POST /api/v1/devices' AND args->'body'->>'password' = '[redacted]' AND args->'body'->>'username' = '[redacted]'")" -ge 2 ]
check "no device credential in any log line" \
  bash -c "! grep -rqF -e '$secret_user' -e 'pa55-' -e 'new-pass-1' '$a_var/log'"

# ---- the API document matches the routes -------------------------------------------------

http GET "$api/openapi.json"
printf '%s' "$body" >"$a_var/openapi.json"
check "GET /api/v1/openapi.json: OpenAPI 3.1, no token needed" [ "$status/$(jqr .openapi)" = 200/3.1.0 ]
documented=$(jq -r '.paths | to_entries[] | .key as $p | .value | keys[] | "\(ascii_upcase) \($p)"' "$a_var/openapi.json" | sort)
expected=$(sort <<'ROUTES'
GET /healthz
GET /metrics
GET /api/v1/openapi.json
POST /api/v1/session
GET /api/v1/session
DELETE /api/v1/session
GET /api/v1/me
GET /api/v1/devices
POST /api/v1/devices
GET /api/v1/devices/{id}
PATCH /api/v1/devices/{id}
DELETE /api/v1/devices/{id}
GET /api/v1/devices/{id}/screenshot
GET /api/v1/devices/{id}/screen/text
POST /api/v1/devices/{id}/screen/wait
POST /api/v1/devices/{id}/keys
POST /api/v1/devices/{id}/text
POST /api/v1/devices/{id}/mouse
GET /api/v1/devices/{id}/power
POST /api/v1/devices/{id}/power
GET /api/v1/devices/{id}/media
POST /api/v1/devices/{id}/media
DELETE /api/v1/devices/{id}/media
POST /api/v1/devices/{id}/hid/reset
POST /api/v1/devices/{id}/hdmi/reset
GET /api/v1/devices/{id}/health
GET /api/v1/tokens
POST /api/v1/tokens
GET /api/v1/tokens/{id}
DELETE /api/v1/tokens/{id}
GET /api/v1/users
POST /api/v1/users
PATCH /api/v1/users/{id}
DELETE /api/v1/users/{id}
GET /api/v1/org
GET /api/v1/audit
GET /api/v1/audit/head
GET /api/v1/audit/integrity
GET /api/v1/audit/export
POST /mcp
GET /mcp
DELETE /mcp
ROUTES
)
check "every route is documented, and every documented route is one" [ "$documented" = "$expected" ]
[ "$documented" = "$expected" ] || diff <(echo "$documented") <(echo "$expected") | sed 's/^/# /'
while read -r m p; do
  path=${p//\{id\}/999999999}
  http "$m" "$a_url$path" -H "Authorization: Bearer $a_token"
  case "$status/$(jqr .error.code)" in
    404/not_found) [ "$(jqr .error.message)" != "no route for $path" ] || not_ok "$m $p: no route" ;;
    405/method_not_allowed) not_ok "$m $p: 405 from the router" ;;
  esac
done <<<"$documented"
ok "every documented operation is served (no 'no route', no 405)"
check "every authenticated operation names its action of the matrix" \
  [ "$(jq '. as $d | [.paths[][] | select(.security != []) | .["x-kvmgate-action"] as $a | $a != null and ($d["x-kvmgate-matrix"] | has($a))] | all' "$a_var/openapi.json")" = true ]

# ---- the role matrix, every cell, for every route and every tool ---------------------------

# allowed ACTION ROLE SCOPES: whether the published matrix lets ROLE with a
# token of SCOPES ("read,write" or "read") do ACTION.
allowed() {
  jq -e --arg a "$1" --arg r "$2" --arg s "$3" '.["x-kvmgate-matrix"][$a] as $m |
    ($m.roles | index($r)) != null and ($m.scope == "none" or ($s | split(",") | index($m.scope)) != null)' \
    "$a_var/openapi.json" >/dev/null
}
# A device to act on for each call that may change or remove it; [KIND URL]
# for one the capture worker refuses at once (a kind without a driver, a
# closed port), so that a device operation answers without waiting.
# The name is unique per cell ($cell, counted in the loop's own shell: $RANDOM in a
# command substitution repeats the parent's sequence, and names collided).
fresh_device() { sql "INSERT INTO devices (org_id, name, kind, base_url) VALUES ($org1, 'm-$cell', '${1:-vnc}', '${2:-vnc://10.9.9.9}') RETURNING id"; }
# fresh_token USER: the id of a new token of USER in $org1 (the caller's own, for the token routes).
fresh_token() {
  sql "INSERT INTO api_tokens (org_id, user_id, name, shown, hash, scopes)
       VALUES ($org1, $1, 'cell', 'kvmg_cell', '\\x$(head -c 32 /dev/urandom | xxd -p -c 64)', '{read}') RETURNING id"
}
cells=0 bad=0 cell=0
# Routes a token can call (the dashboard's session routes take its cookie only: test_web_session.sh).
ops=$(jq -r '.paths | to_entries[] | .key as $p | .value | to_entries[] | select(.value["x-kvmgate-action"] != null and ($p | startswith("/api/")) and (.value.security | any(has("bearer")))) | "\(.key | ascii_upcase) \($p) \(.value["x-kvmgate-action"])"' "$a_var/openapi.json")
for role in org_admin operator viewer auditor; do
  for kind in rw read; do
    tok=${tokens[$role]}; scopes=read,write
    [ "$kind" = read ] && { tok=${tokens[$role-read]}; scopes=read; }
    while read -r m p action; do
      cell=$((cell + 1))
      case "$p" in
        /api/v1/tokens/*) id=$(fresh_token "${users[$role]}") ;;
        /api/v1/users/*) id=$(member "$org1" "m-$cell" viewer) ;;
        /api/v1/devices/*/*) id=$(fresh_device ami https://127.0.0.1:1) ;;
        *) id=$(fresh_device) ;;
      esac
      path=${p//\{id\}/$id}
      data=()
      case "$m $p" in
        "POST /api/v1/tokens") data=(--data-binary '{"name":"cell","scopes":["read"]}') ;;
        "POST /api/v1/users") data=(--data-binary "{\"username\":\"n-$cell\",\"role\":\"viewer\"}") ;;
        "PATCH /api/v1/users/"*) data=(--data-binary '{"role":"operator"}') ;;
        "POST /api/v1/devices") data=(--data-binary "{\"name\":\"new-$cell\",\"kind\":\"vnc\",\"url\":\"vnc://h\"}") ;;
        "POST /api/v1/devices/{id}/keys") data=(--data-binary '{"keys":"enter"}') ;;
        "POST /api/v1/devices/{id}/text") data=(--data-binary '{"text":"x"}') ;;
        "POST /api/v1/devices/{id}/screen/wait") data=(--data-binary '{"change":true,"timeout_ms":100}') ;;
        "POST /api/v1/devices/{id}/mouse") data=(--data-binary '{"action":"move","x":1,"y":1}') ;;
        "POST /api/v1/devices/{id}/power") data=(--data-binary '{"action":"on"}') ;;
        "POST /api/v1/devices/{id}/media") data=(--data-binary '{"image":"a.iso"}') ;;
        "PATCH "*) data=(--data-binary '{"enabled":true}') ;;
      esac
      n0=$(events)
      http "$m" "$a_url$path" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' "${data[@]}"
      cells=$((cells + 1))
      if allowed "$action" "$role" "$scopes"; then
        case "$p" in
          # Allowed through to the device, which cannot: the kind's refusal (501), not 403
          # (its health says so with a 200).
          /api/v1/devices/*/health)
            [ "$status/$(jqr .error)" = "200/unsupported by this device kind" ] ||
              { bad=$((bad + 1)); not_ok "$role/$kind $m $p ($action): want 200 unsupported, got $status $body"; } ;;
          /api/v1/devices/*/*)
            [ "$status/$(jqr .error.code)" = 501/unsupported ] && [ "$(last_event outcome)" = error ] ||
              { bad=$((bad + 1)); not_ok "$role/$kind $m $p ($action): want 501 unsupported, got $status $body"; } ;;
          *)
            [[ "$status" == 2* ]] || { bad=$((bad + 1)); not_ok "$role/$kind $m $p ($action): want 2xx, got $status $body"; } ;;
        esac
      else
        [ "$status/$(jqr .error.code)" = 403/forbidden ] && grep -q "$action" <<<"$(jqr .error.message)" ||
          { bad=$((bad + 1)); not_ok "$role/$kind $m $p ($action): want 403 naming $action, got $status $body"; }
        [ "$(last_event outcome)" = denied ] || { bad=$((bad + 1)); not_ok "$role/$kind $m $p: no denied event"; }
      fi
      [ "$(events)" -gt "$n0" ] || { bad=$((bad + 1)); not_ok "$role/$kind $m $p: no audit event"; }
    done <<<"$ops"
  done
done
check "REST: $cells cells of the role matrix (4 roles x 2 token scopes x every route) as the matrix says, each audited" [ "$bad" = 0 ]

tok=$a_token; sid=; open_session
call tools/list
tools=$(jqr '.result.tools[] | "\(.name) \(._meta["kvmgate/action"])"')
cells=0 bad=0
for role in org_admin operator viewer auditor; do
  for kind in rw read; do
    tok=${tokens[$role]}; scopes=read,write
    [ "$kind" = read ] && { tok=${tokens[$role-read]}; scopes=read; }
    sid=; open_session
    call tools/list
    listed=$(jqr '[.result.tools[].name] | join(" ")')
    while read -r name action; do
      tool "$name"
      cells=$((cells + 1))
      if allowed "$action" "$role" "$scopes"; then
        [ "$(jqr '.result.content[0].text | startswith("Permission denied")')" = false ] && grep -qw "$name" <<<"$listed" ||
          { bad=$((bad + 1)); not_ok "$role/$kind $name ($action): want allowed and listed, got $body"; }
      else
        [ "$(jqr .result.isError)/$(jqr '.result.content[0].text | startswith("Permission denied")')" = true/true ] &&
          ! grep -qw "$name" <<<"$listed" && [ "$(last_event "action, outcome")" = "$name|denied" ] ||
          { bad=$((bad + 1)); not_ok "$role/$kind $name ($action): want denied, hidden, audited; got $body"; }
      fi
    done <<<"$tools"
  done
done
check "MCP: $cells cells of the role matrix (4 roles x 2 token scopes x every tool), tools/list showing exactly the allowed" [ "$bad" = 0 ]

# An operator cannot act on others' behalf beyond its role; a token tied to a device tag
# sees only those devices.
tagged=$(token_row "$org1" "${users[operator]}" '{read,write}' device_tag "'lab'")
tok=$tagged
rest GET "/devices/$dev"
check "a token tied to tag 'lab' reaches a device tagged lab" [ "$status" = 200 ]
cell=other other=$(fresh_device)
rest GET "/devices/$other"
expect_error 404 not_found "a token tied to tag 'lab': a device without the tag"
rest GET '/devices?include_disabled=true&limit=500'
check "and lists only tagged devices" [ "$(jqr '[.devices[].tags | index("lab") != null] | all')" = true ]
sid=; open_session
tool list_devices '{"include_disabled":true,"limit":500}'
check "list_devices over MCP too" \
  [ "$(jqr '.result.structuredContent.devices | length > 0 and ([.[].tags | index("lab") != null] | all)')" = true ]
tok=$a_token
check "the chain is intact after all of it" quiet env KVMGATE_VAR_DIR="$a_var" "$bin/kvmgate" audit verify
