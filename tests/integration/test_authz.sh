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
check "the export verifies offline" quiet "$bin/kvmgate" audit verify --file "$a_var/export.jsonl"

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
