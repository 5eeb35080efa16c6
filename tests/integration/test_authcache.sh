#!/usr/bin/env bash
# The workers' short-lived memory of tokens and MCP sessions
# (KVMGATE_AUTH_CACHE_MS): a session ended through the gateway is dead on
# every worker at once; a token revoked behind the gateway's back stops
# working once the configured time has passed, on every worker.
. "$(dirname "$0")/lib.sh"
trap finish EXIT

KVMGATE_AUTH_CACHE_MS=1000 WORKERS=4 new_stack a || { not_ok "stack starts"; exit 1; }
mcp=$a_url/mcp
tok=$a_token
ver=2025-11-25

# statuses N BODY: the HTTP statuses of N identical requests, sorted and counted.
statuses() {
  local n=$1 data=$2
  for _ in $(seq 1 "$n"); do
    rpc "$data"
    echo "$status"
  done | sort | uniq -c | tr -s ' ' | paste -sd,
}

open_session
check "a session answers on every worker (warm every cache)" \
  [ "$(statuses 16 '{"jsonrpc":"2.0","id":1,"method":"ping"}')" = " 16 200" ]
http DELETE "$mcp" -H "Authorization: Bearer $tok" -H "Mcp-Session-Id: $sid"
check "DELETE: 204" [ "$status" = 204 ]
check "right after DELETE no worker answers from memory: 16 of 16 are 404" \
  [ "$(statuses 16 '{"jsonrpc":"2.0","id":2,"method":"ping"}')" = " 16 404" ]

open_session
statuses 16 '{"jsonrpc":"2.0","id":3,"method":"ping"}' >/dev/null
sql "UPDATE api_tokens SET revoked_at = now()" >/dev/null
sleep 1.2
check "a token revoked in the database is refused everywhere once the cache time passed" \
  [ "$(statuses 16 '{"jsonrpc":"2.0","id":4,"method":"ping"}')" = " 16 401" ]
