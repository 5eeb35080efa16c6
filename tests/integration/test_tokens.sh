#!/usr/bin/env bash
# API tokens over REST: the clear token shown once and working, never a hash;
# a token creates only tokens with equal or fewer rights (scopes, device tag,
# expiry); revocation refuses the token at once on every worker; members see
# and revoke only their own, an org_admin everyone's in the organisation,
# another organisation's not at all; bad input is refused or kept verbatim.
. "$(dirname "$0")/lib.sh"
trap finish EXIT

# A long cache: revocation through the API must not wait for it to expire.
export KVMGATE_AUTH_CACHE_MS=${KVMGATE_AUTH_CACHE_MS:-3000}
WORKERS=4 new_stack a || { not_ok "stack starts"; exit 1; }
api=$a_url/api/v1
tok=$a_token

# rest METHOD PATH [curl args...]: a REST call with $tok.
rest() { local m=$1 p=$2; shift 2; http "$m" "$api$p" -H "Authorization: Bearer $tok" "$@"; }
# create BODY: POST /tokens with $tok.
create() { rest POST /tokens -H 'Content-Type: application/json' --data-binary "$1"; }
# member ORG NAME ROLE: a user with that role in ORG; prints its id.
member() {
  local u
  u=$(sql "INSERT INTO users (username) VALUES ('$2') RETURNING id")
  sql "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $u, '$3')" >/dev/null
  printf '%s' "$u"
}
# works TOKEN: GET /me with TOKEN answers 200.
works() { http GET "$api/me" -H "Authorization: Bearer $1"; [ "$status" = 200 ]; }
# all_401 TOKEN N: N requests with TOKEN all answer 401.
all_401() {
  local n=0
  for _ in $(seq 1 "$2"); do
    http GET "$api/me" -H "Authorization: Bearer $1"
    [ "$status" = 401 ] && n=$((n + 1))
  done
  [ "$n" = "$2" ]
}

org1=$(sql "SELECT id FROM organisations WHERE name = 'default'")
member "$org1" u-operator operator >/dev/null
member "$org1" u-viewer viewer >/dev/null

# ---- creation: the clear token once, working; never a hash ------------------------

create '{"name":"op-main","scopes":["read","write"],"user":"u-operator"}'
op=$(jqr .token); op_id=$(jqr .id)
check "POST /tokens: 201 with the clear token, its prefix, scopes and user" \
  [ "$status/$(jqr .name)/$(jqr .user)/$(jqc .scopes)/$(jqr .prefix)" = "201/op-main/u-operator/[\"read\",\"write\"]/${op:0:12}" ]
check "the clear token has the kvmg_ form" grep -qE '^kvmg_[A-Za-z0-9_-]{43}$' <<<"$op"
check "the response has no hash" [ "$(jqr 'has("hash")')" = false ]
check "the token is stored only as its SHA-256" \
  [ "$(sql "SELECT encode(hash, 'hex') FROM api_tokens WHERE id = $op_id")" = "$(printf %s "$op" | sha256sum | cut -c1-64)" ]
check "no column holds the clear token" \
  [ "$(sql "SELECT count(*) FROM api_tokens t WHERE t::text LIKE '%${op:12}%'")" = 0 ]
check "the new token works" works "$op"
http GET "$api/me" -H "Authorization: Bearer $op"
check "and speaks for its user" [ "$(jqr .user)/$(jqr .role)" = u-operator/operator ]
rest GET /tokens
check "GET /tokens: never a clear token or a hash" \
  [ "$status/$(jqr '[.tokens[] | has("token") or has("hash")] | any')" = 200/false ]
check "the clear token appears nowhere in the list" lacks "$body" "${op:12}"
check "the list shows the fields" \
  [ "$(jqc '.tokens[0] | keys')" = '["created_at","device_tag","expires_at","id","last_used_at","name","prefix","revoked_at","scopes","user"]' ]
rest GET "/tokens/$op_id"
check "GET /tokens/{id}: the token, no clear token" [ "$status/$(jqr .name)/$(jqr 'has("token")')" = 200/op-main/false ]
check "the clear token is in no audit event and no log line" \
  [ "$(sql "SELECT count(*) FROM audit_events WHERE position('${op:12}' in convert_from(canon, 'UTF8')) > 0")" = 0 ] 
check "nor in the logs" bash -c "! grep -rqF -e '${op:12}' '$a_var/log'"

# ---- equal or fewer rights ---------------------------------------------------------

tok=$a_token
create '{"name":"w-only","scopes":["write"],"user":"u-operator"}'
wonly=$(jqr .token)
tok=$wonly
create '{"name":"more","scopes":["read"]}'
expect_error 403 forbidden "a write-only token cannot create a read token"
create '{"name":"same","scopes":["write"]}'
check "a write-only token creates a write-only token" [ "$status" = 201 ]

tok=$a_token
create '{"name":"tagged","scopes":["read","write"],"device_tag":"lab","user":"u-operator"}'
tagged=$(jqr .token)
check "a tagged token: 201 with its tag" [ "$status/$(jqr .device_tag)" = 201/lab ]
tok=$tagged
create '{"name":"untagged","scopes":["read"]}'
expect_error 403 forbidden "a tagged token cannot create an untagged one"
create '{"name":"othertag","scopes":["read"],"device_tag":"prod"}'
expect_error 403 forbidden "nor one with another tag"
create '{"name":"sametag","scopes":["read"],"device_tag":"lab"}'
check "it creates one with the same tag" [ "$status/$(jqr .device_tag)" = 201/lab ]

tok=$a_token
create '{"name":"day","scopes":["read","write"],"expires_in_days":1,"user":"u-operator"}'
day=$(jqr .token); day_exp=$(jqr .expires_at)
check "expires_in_days sets expires_at" [ "$status" = 201 -a -n "$day_exp" -a "$day_exp" != null ]
tok=$day
create '{"name":"forever","scopes":["read"]}'
expect_error 403 forbidden "an expiring token cannot create one that never expires"
create '{"name":"later","scopes":["read"],"expires_in_days":2}'
expect_error 403 forbidden "nor one expiring later"
create "{\"name\":\"sooner\",\"scopes\":[\"read\"],\"expires_at\":\"$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)\"}"
check "it creates one expiring sooner" [ "$status" = 201 ]
create '{"name":"past","scopes":["read"],"expires_at":"2001-01-01T00:00:00Z"}'
expect_error 400 bad_request "an expiry in the past"
create '{"name":"feb31","scopes":["read"],"expires_at":"2026-02-31T00:00:00Z"}'
expect_error 400 bad_request "an expiry that is no date"
create '{"name":"both","scopes":["read"],"expires_at":"2030-01-01T00:00:00Z","expires_in_days":1}'
expect_error 400 bad_request "expires_at and expires_in_days together"

tok=$a_token
create '{"name":"offset","scopes":["read"],"expires_at":"2031-06-01T12:00:00.5+02:00"}'
check "expires_at with an offset and a fraction, shown in UTC" [ "$status/$(jqr .expires_at)" = 201/2031-06-01T10:00:00Z ]

tok=$op
create '{"name":"for-viewer","scopes":["read"],"user":"u-viewer"}'
expect_error 403 forbidden "an operator cannot create a token for another member"
check "the refusal names tokens.manage_all" grep -q tokens.manage_all <<<"$(jqr .error.message)"

# ---- revocation: at once, on every worker -------------------------------------------

tok=$a_token
create '{"name":"short","scopes":["read"],"user":"u-operator"}'
short=$(jqr .token); short_id=$(jqr .id)
check "16 requests with the token before revocation: all 200 (every worker caches it)" \
  [ "$(count_ok 16 "$api/me" -H "Authorization: Bearer $short")" = 16 ]
rest DELETE "/tokens/$short_id"
check "DELETE /tokens/{id}: 204" [ "$status" = 204 ]
check "16 requests after revocation: all 401" all_401 "$short" 16
rest GET "/tokens/$short_id"
check "the revoked token shows revoked_at" [ "$status/$(jqr '.revoked_at != null')" = 200/true ]

# ---- members see and revoke their own; the org_admin everyone's ---------------------

admin_tid=$(sql "SELECT id FROM api_tokens WHERE name = 'admin'")
tok=$op
rest DELETE "/tokens/$admin_tid"
expect_error 403 forbidden "an operator cannot revoke another member's token"
check "and the token still works" works "$a_token"
rest GET "/tokens/$admin_tid"
expect_error 403 forbidden "nor read it"
rest GET /tokens
check "an operator lists only its own" [ "$status/$(jqr '[.tokens[].user] | unique | join(",")')" = 200/u-operator ]

tok=$a_token
create '{"name":"viewer-1","scopes":["read","write"],"user":"u-viewer"}'
vw=$(jqr .token)
tok=$vw
rest GET /tokens
check "a viewer lists only its own" [ "$status/$(jqr '[.tokens[].user] | unique | join(",")')" = 200/u-viewer ]
rest GET '/tokens?user=admin'
expect_error 403 forbidden "a viewer asking for another member's tokens"
create '{"name":"viewer-2","scopes":["read"]}'
v2_id=$(jqr .id)
rest DELETE "/tokens/$v2_id"
check "a viewer revokes its own" [ "$status" = 204 ]

tok=$a_token
rest GET /tokens
check "the org_admin lists every member's" \
  [ "$(jqr '[.tokens[].user] | unique | join(",")')" = admin,u-operator,u-viewer ]
rest GET '/tokens?user=u-viewer'
check "filtered by user" [ "$(jqr '[.tokens[].user] | unique | join(",")')" = u-viewer ]
rest DELETE "/tokens/$(sql "SELECT id FROM api_tokens WHERE name = 'w-only'")"
check "the org_admin revokes a member's token" [ "$status" = 204 ]
check "which stops at once" all_401 "$wonly" 4

# ---- organisations apart ---------------------------------------------------------------

org2=$(sql "INSERT INTO organisations (name) VALUES ('other-org') RETURNING id")
member "$org2" mallory org_admin >/dev/null
tok=$a_token
# An org_admin of org2 gets its first token from the CLI-free path: SQL here.
t2="kvmg_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' | cut -c1-43)"
sql "INSERT INTO api_tokens (org_id, user_id, name, shown, hash, scopes)
     SELECT $org2, id, 'm', '${t2:0:12}', '\\x$(printf %s "$t2" | sha256sum | cut -c1-64)', '{read,write}'
     FROM users WHERE username = 'mallory'" >/dev/null
tok=$t2
for m in GET DELETE; do
  rest "$m" "/tokens/$op_id"
  expect_error 404 not_found "$m another organisation's token"
done
rest GET /tokens
check "GET /tokens lists none of the other organisation's" [ "$(jqr '[.tokens[].user] | unique | join(",")')" = mallory ]
create '{"name":"x","scopes":["read"],"user":"u-operator"}'
expect_error 400 bad_request "a token for a member of another organisation"
check "the operator's token still works" works "$op"

# ---- bad input -----------------------------------------------------------------------------

tok=$a_token
for bad in '{"name":"a\u0007b","scopes":["read"]}:name' \
           '{"name":"a\nb","scopes":["read"]}:name' \
           '{"name":"","scopes":["read"]}:name' \
           "{\"name\":\"$(printf 'x%.0s' $(seq 1 101))\",\"scopes\":[\"read\"]}:name" \
           '{"name":"x","scopes":["admin"]}:scopes' \
           '{"name":"x","scopes":["read","read"]}:scopes' \
           '{"name":"x","scopes":[]}:scopes' \
           '{"name":"x","scopes":"read"}:scopes' \
           '{"name":"x"}:scopes' \
           '{"name":"x","scopes":["read"],"expires_in_days":0}:expires_in_days' \
           '{"name":"x","scopes":["read"],"expires_at":"tomorrow"}:expires_at' \
           '{"name":"x","scopes":["read"],"expires_at":"2030-01-01T00:00:00+23:00"}:expires_at' \
           '{"name":"x","scopes":["read"],"expires_at":"2030- 1-01T00:00:00Z"}:expires_at' \
           '{"name":"x","scopes":["read"],"expires_at":"0000-01-01T00:00:00Z"}:expires_at' \
           '{"name":"x","scopes":["read"],"expires_at":"2030-01-01T00:00:00"}:expires_at' \
           "{\"name\":\"x\",\"scopes\":[\"read\"],\"expires_at\":\"2030-01-01T00:00:00Z'; DROP TABLE api_tokens; --\"}:expires_at" \
           '{"name":"x","scopes":["read"],"device_tag":""}:device_tag' \
           '{"name":"x","scopes":["read"],"user":"nobody"}:user' \
           '{"name":"x","scopes":["read"],"hash":"00"}:hash' \
           'not json:JSON'; do
  create "${bad%:*}"
  [ "$status/$(jqr .error.code)" = 400/bad_request ] && grep -q "${bad##*:}" <<<"$(jqr .error.message)" ||
    not_ok "bad token body ${bad%:*}: $status $body"
done
ok "bad token bodies: 400 naming the field"
n0=$(sql "SELECT count(*) FROM api_tokens")
for inj in "' OR 1=1 --" "x'); DROP TABLE api_tokens; --" "сервер-东京-🖥"; do
  create "$(jq -cn --arg n "$inj" '{name:$n,scopes:["read"]}')"
  [ "$status/$(jqr .name)" = "201/$inj" ] || not_ok "name $inj: $status $body"
done
ok "SQL-injection strings and unicode in names are kept verbatim"
check "and the table is intact" [ "$(sql "SELECT count(*) FROM api_tokens")" = $((n0 + 3)) ]
for id in abc 0 -1 "1%20OR%201=1" "1'" 99999999999999999999; do
  rest GET "/tokens/$id"
  [ "$status" = 404 ] || not_ok "GET /tokens/$id: $status $body"
done
ok "malformed token ids: 404"
rest GET "/tokens" --get --data-urlencode "user=' OR 1=1 --"
check "an injection string as the user filter: empty" [ "$status/$(jqr '.tokens | length')" = 200/0 ]

# ---- members of the organisation; the last org_admin stays ----------------------------------

tok=$a_token
# user BODY / user_patch ID BODY: POST /users, PATCH /users/{id} with $tok.
user() { rest POST /users -H 'Content-Type: application/json' --data-binary "$1"; }
user_patch() { rest PATCH "/users/$1" -H 'Content-Type: application/json' --data-binary "$2"; }
rest GET /users
check "GET /users: members with their roles" \
  [ "$status/$(jqr '[.users[] | "\(.username):\(.role)"] | join(",")')" = "200/admin:org_admin,u-operator:operator,u-viewer:viewer" ]
user '{"username":"carol","email":"carol@example.org","role":"auditor"}'
carol=$(jqr .id)
check "POST /users: a new user and its membership" \
  [ "$status/$(jqr .username)/$(jqr .email)/$(jqr .role)/$(jqr .disabled)" = "201/carol/carol@example.org/auditor/false" ]
check "the audit event names the member added (a username is no credential here)" \
  [ "$(sql "SELECT args->'body'->>'username' FROM audit_events WHERE action = 'POST /api/v1/users' AND outcome = 'ok' ORDER BY seq DESC LIMIT 1")" = carol ]
user '{"username":"carol","role":"viewer"}'
expect_error 409 conflict "adding a member twice"
user '{"username":"mallory","role":"viewer"}'
check "an existing user of another organisation is added by username" [ "$status/$(jqr .role)" = 201/viewer ]
mal_here=$(jqr .id)
for bad in '{"username":"a b","role":"viewer"}:username' '{"username":"x","role":"root"}:role' \
           '{"username":"x"}:role' '{"role":"viewer"}:username' \
           "{\"username\":\"x'; DROP TABLE users; --\",\"role\":\"viewer\"}:username" \
           '{"username":"дима","role":"viewer"}:username' \
           "{\"username\":\"$(printf 'u%.0s' $(seq 1 65))\",\"role\":\"viewer\"}:username"; do
  user "${bad%:*}"
  [ "$status/$(jqr .error.code)" = 400/bad_request ] && grep -q "${bad##*:}" <<<"$(jqr .error.message)" ||
    not_ok "bad user body ${bad%:*}: $status $body"
done
ok "bad user bodies: 400 naming the field"
check "the users table is intact" [ "$(sql "SELECT count(*) FROM users")" -ge 5 ]

tok=$a_token
create '{"name":"carol-t","scopes":["read"],"user":"carol"}'
carol_tok=$(jqr .token)
check "a token for the new member works" works "$carol_tok"
http GET "$api/me" -H "Authorization: Bearer $carol_tok"
user_patch "$carol" '{"role":"viewer"}'
check "PATCH /users/{id}: the role changes" [ "$status/$(jqr .role)" = 200/viewer ]
http GET "$api/me" -H "Authorization: Bearer $carol_tok"
check "and the member's token speaks with the new role at once" [ "$(jqr .role)" = viewer ]
user_patch "$carol" '{"disabled":true}'
check "PATCH disabled: the user's tokens stop at once" [ "$status/$(jqr .disabled)" = 200/true ] 
check "16 requests with the disabled user's token: all 401" all_401 "$carol_tok" 16
user_patch "$mal_here" '{"disabled":true}'
expect_error 409 conflict "disabling a user who belongs to another organisation too"

admin_id=$(sql "SELECT id FROM users WHERE username = 'admin'")
user_patch "$admin_id" '{"role":"operator"}'
expect_error 409 last_admin "demoting the last org_admin"
user_patch "$admin_id" '{"disabled":true}'
expect_error 409 last_admin "disabling the last org_admin"
rest DELETE "/users/$admin_id"
expect_error 409 last_admin "removing the last org_admin"
check "the admin token still works" works "$a_token"
user_patch "$carol" '{"role":"org_admin","disabled":false}'
check "with a second org_admin" [ "$status/$(jqr .role)" = 200/org_admin ]
rest DELETE "/users/$carol"
check "a non-last org_admin can be removed" [ "$status" = 204 ]
check "its tokens in the organisation went with the membership" \
  [ "$(sql "SELECT count(*) FROM api_tokens WHERE name = 'carol-t'")" = 0 ]
rest DELETE "/users/$carol"
expect_error 404 not_found "removing it again"
rest DELETE "/users/$(sql "SELECT id FROM users WHERE username = 'mallory'")"
check "removing mallory's membership here" [ "$status" = 204 ]
check "leaves mallory's own organisation alone" \
  [ "$(sql "SELECT count(*) FROM memberships WHERE org_id = $org2")" = 1 ]
tok=$t2
rest DELETE "/users/$(sql "SELECT id FROM users WHERE username = 'u-operator'")"
expect_error 404 not_found "another organisation's member"
user_patch "$admin_id" '{"role":"viewer"}'
expect_error 404 not_found "PATCH another organisation's member"
tok=$op
rest GET /users
expect_error 403 forbidden "an operator cannot list members"
rest GET /org
expect_error 403 forbidden "nor read the organisation"
tok=$a_token
rest GET /org
check "GET /org: the caller's organisation" [ "$status/$(jqr .name)/$(jqr .members)" = 200/default/3 ]

# ---- the CLI: kvmgate token, user, org ------------------------------------------------------

# cli ARGS...: the kvmgate command on this stack; sets out and rc.
cli() { out=$(env KVMGATE_VAR_DIR="$a_var" "$bin/kvmgate" "$@" 2>&1); rc=$?; }
cli org create cli-org
[ "$rc" = 0 ] && grep -q "user add --org 'cli-org'" <<<"$out"
check "org create: exit 0, says what to do next" [ $? = 0 ]
cli org create cli-org
check "org create of a taken name: exit 1" [ "$rc" = 1 ]
cli org create "x'; DROP TABLE organisations; --" --json
check "org create --json keeps an injection string verbatim" [ "$rc/$(jq -r .name <<<"$out")" = "0/x'; DROP TABLE organisations; --" ]
cli org create $'a\x01b'
check "org create with a control character: exit 2" [ "$rc" = 2 ]
cli org list --json
check "org list --json" [ "$rc/$(jq -r '[.organisations[].name] | sort | join(",")' <<<"$out")" = "0/cli-org,default,other-org,x'; DROP TABLE organisations; --" ]
cli org list
check "org list for people" grep -q "cli-org .*members=0" <<<"$out"

cli user add --org cli-org alice --role org_admin --email alice@example.org --json
check "user add --json" [ "$rc/$(jq -r .role <<<"$out")" = 0/org_admin ]
cli user add --org cli-org alice --role viewer
check "user add twice: exit 1" [ "$rc" = 1 ]
for bad in "a b" "x';--" "дима"; do
  cli user add --org cli-org "$bad" --role viewer
  [ "$rc" = 2 ] || not_ok "user add '$bad': exit $rc $out"
done
ok "user add with a bad username: exit 2"
cli user add --org cli-org bob --role root
check "user add with a bad role: exit 2" [ "$rc" = 2 ]
cli user add --org nowhere bob --role viewer
[ "$rc" = 1 ] && grep -q nowhere <<<"$out"
check "an unknown --org: exit 1 naming it" [ $? = 0 ]
cli user list --org cli-org --json
check "user list --json" [ "$rc/$(jq -c '[.users[] | [.username, .role]]' <<<"$out")" = '0/[["alice","org_admin"]]' ]

cli token create --org cli-org --user alice --name cli-t --scopes read,write --json
clitok=$(jq -r .token <<<"$out"); cli_id=$(jq -r .id <<<"$out")
[ "$rc" = 0 ] && grep -qE '^kvmg_' <<<"$clitok"
check "token create --json: the clear token once" [ $? = 0 ]
http GET "$api/me" -H "Authorization: Bearer $clitok"
check "a token created by the CLI works over HTTP" [ "$status/$(jqr .organisation)/$(jqr .user)" = 200/cli-org/alice ]
cli token create --org cli-org --user alice --name human --scopes read --expires-in-days 7 --device-tag lab
[ "$rc" = 0 ] && grep -qE '^kvmg_[A-Za-z0-9_-]{43}$' <<<"$out"
check "token create for people: the token on its own line" [ $? = 0 ]
for bad in "--scopes admin" "--scopes read,root" "--expires-in-days 0" "--name $(printf 'n%.0s' $(seq 1 101))" "--user nobody"; do
  cli token create --org cli-org --user alice --name x $bad
  [ "$rc" != 0 ] || not_ok "token create $bad: exit 0"
done
ok "token create with bad options: refused"
cli token list --org cli-org --json
check "token list --json: never a clear token or a hash" \
  [ "$rc/$(jq '[.tokens[] | has("token") or has("hash")] | any' <<<"$out")/$(jq '.tokens | length' <<<"$out")" = 0/false/2 ]
check "the clear token is not in the list" lacks "$out" "${clitok:12}"
cli token list --org cli-org
check "token list for people" grep -q "cli-t .*live" <<<"$out"

check "16 requests before the CLI revokes it: all 200" \
  [ "$(count_ok 16 "$api/me" -H "Authorization: Bearer $clitok")" = 16 ]
cli token revoke --org default "$cli_id"
check "token revoke of another organisation's token: exit 1" [ "$rc" = 1 ]
cli token revoke --org cli-org "$cli_id" --json
check "token revoke --json" [ "$rc/$(jq -r .revoked <<<"$out")" = 0/true ]
sleep "$(awk "BEGIN { print $KVMGATE_AUTH_CACHE_MS / 1000 + 0.3 }")"
check "revoked by the CLI: 16 requests after KVMGATE_AUTH_CACHE_MS all 401" all_401 "$clitok" 16
cli token revoke --org cli-org "$cli_id"
check "revoking it again: exit 1" [ "$rc" = 1 ]

cli user set-role --org cli-org alice viewer
[ "$rc" = 1 ] && grep -q "last org_admin" <<<"$out"
check "user set-role of the last org_admin: exit 1" [ $? = 0 ]
cli user disable --org cli-org alice
check "user disable of the last org_admin: exit 1" [ "$rc" = 1 ]
cli user remove --org cli-org alice
check "user remove of the last org_admin: exit 1" [ "$rc" = 1 ]
cli user add --org cli-org carl --role org_admin
cli user set-role --org cli-org alice viewer --json
check "user set-role with another org_admin" [ "$rc/$(jq -r .role <<<"$out")" = 0/viewer ]
cli token create --org cli-org --user alice --name before-disable --json
dis_tok=$(jq -r .token <<<"$out")
cli user disable --org cli-org alice
check "user disable" [ "$rc" = 0 ]
sleep "$(awk "BEGIN { print $KVMGATE_AUTH_CACHE_MS / 1000 + 0.3 }")"
check "a disabled user's token is refused" all_401 "$dis_tok" 4
cli user remove --org cli-org alice
check "user remove" [ "$rc/$(sql "SELECT count(*) FROM memberships m JOIN organisations o ON o.id = m.org_id WHERE o.name = 'cli-org'")" = 0/1 ]
check "its tokens in the organisation went with it" \
  [ "$(sql "SELECT count(*) FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE u.username = 'alice'")" = 0 ]
cli user remove --org cli-org carl
check "and the last org_admin stays" [ "$rc" = 1 ]
cli user frobnicate
check "an unknown subcommand: exit 2" [ "$rc" = 2 ]

# ---- the CLI: kvmgate device, credentials sealed as REST seals them ---------------------------

printf 'cli-pa55-%s\n' "$RANDOM" >"$a_var/dev-pass"
chmod 600 "$a_var/dev-pass"
cli device add --org default cli-bmc --kind ami --url https://10.2.0.9 --username cli-login \
  --password-file "$a_var/dev-pass" --tags rack2,lab --json </dev/null
cli_dev=$(jq -r .id <<<"$out")
check "device add --json: sealed credentials" [ "$rc/$(jq -r .has_credentials <<<"$out")" = 0/true ]
check "stored sealed: nonce, ciphertext, key id; no plain credential" \
  [ "$(sql "SELECT length(cred_nonce), cred_key_id ~ '^[0-9a-f]{8}$', position('cli-login' in d::text) FROM devices d WHERE id = $cli_dev")" = "12|t|0" ]
tok=$a_token
rest GET "/devices/$cli_dev"
check "REST sees it, with credentials, never showing them" \
  [ "$status/$(jqr .has_credentials)/$(jqr .tags | tr -d '\n ')/$(jqr 'has("password")')" = '200/true/["rack2","lab"]/false' ]
rest PATCH "/devices/$cli_dev" -H 'Content-Type: application/json' --data-binary '{"password":"rest-pass"}'
check "REST opens what the CLI sealed (a new password keeps the stored username)" [ "$status" = 200 ]
cli device add --org default cli-bmc --kind ami --url https://10.2.0.9 --password-file - <<<"p"
check "device add of a taken name: exit 1" [ "$rc" = 1 ]
for bad in "--kind ilo --url https://h" "--kind vnc --url vnc://u:p@h" "--kind vnc --url nourl" "--kind vnc --url vnc://h --tags ,"; do
  cli device add --org default bad-dev $bad </dev/null
  [ "$rc" = 2 ] || not_ok "device add $bad: exit $rc"
done
ok "device add with a bad kind, URL or tags: exit 2"
cli device add --org default $'bad\x07name' --kind vnc --url vnc://h </dev/null
check "device add with a control character in the name: exit 2" [ "$rc" = 2 ]
cli device list --org default --json
[ "$rc/$(jq -r '[.devices[].name] | join(",")' <<<"$out")" = 0/cli-bmc ] && lacks "$out" cli-login
check "device list --json: no credentials" [ $? = 0 ]
cli device list --org default
check "device list for people" grep -q "cli-bmc .*credentials=yes" <<<"$out"
check "device list: keep_warm off by default" grep -q "cli-bmc .*keep_warm=off" <<<"$out"
cli device update --org default cli-bmc --keep-warm on --json
check "device update --keep-warm on" \
  [ "$rc/$(jq -c '[.name,.keep_warm]' <<<"$out")/$(sql "SELECT keep_warm FROM devices WHERE id = $cli_dev")" = '0/["cli-bmc",true]/t' ]
rest GET "/devices/$cli_dev"
check "REST shows what the CLI set" [ "$(jqr .keep_warm)" = true ]
cli device show --org default cli-bmc --json
[ "$rc/$(jq -c '[.name,.keep_warm,.has_credentials]' <<<"$out")" = '0/["cli-bmc",true,true]' ] && lacks "$out" cli-login
check "device show --json: keep_warm, no credentials" [ $? = 0 ]
cli device list --org default --json
check "device list --json: keep_warm" [ "$(jq -c '[.devices[] | select(.name == "cli-bmc") | .keep_warm]' <<<"$out")" = '[true]' ]
cli device show --org default cli-bmc
check "device show for people" grep -q "cli-bmc .*keep_warm=on" <<<"$out"
rest PATCH "/devices/$cli_dev" -H 'Content-Type: application/json' --data-binary '{"keep_warm":false}'
cli device show --org default cli-bmc --json
check "the CLI shows what REST set" [ "$(jq -r .keep_warm <<<"$out")" = false ]
cli device update --org default cli-bmc --keep-warm maybe
check "device update --keep-warm with neither on nor off: exit 2" [ "$rc" = 2 ]
cli device update --org default cli-bmc
check "device update without a change: exit 2" [ "$rc" = 2 ]
cli device update --org default no-such-dev --keep-warm on
check "device update of an unknown device: exit 1" [ "$rc" = 1 ]
cli device show --org cli-org cli-bmc
check "device show in another organisation: exit 1" [ "$rc" = 1 ]
cli device add --org default cli-warm --kind vnc --url vnc://10.2.0.10 --keep-warm on --json </dev/null
check "device add --keep-warm on" \
  [ "$rc/$(jq -r .keep_warm <<<"$out")/$(sql "SELECT keep_warm FROM devices WHERE name = 'cli-warm'")" = 0/true/t ]
cli device remove --org default cli-warm
cli device remove --org cli-org cli-bmc
check "device remove in another organisation: exit 1" [ "$rc" = 1 ]
cli device remove --org default cli-bmc --json
check "device remove" [ "$rc/$(jq -r .removed <<<"$out")/$(sql "SELECT count(*) FROM devices WHERE id = $cli_dev")" = 0/true/0 ]

# ---- the CLI's changes are in the audit chain --------------------------------------------------

# cli_events ORG ACTION: outcomes of ACTION's events in ORG's chain, in order.
cli_events() {
  sql "SELECT string_agg(e.outcome, ',' ORDER BY e.seq) FROM audit_events e JOIN organisations o
       ON o.id = e.org_id WHERE o.name = '$1' AND e.action = '$2'"
}
check "an organisation's chain begins with its creation by the CLI" \
  [ "$(sql "SELECT e.action, e.actor_kind, e.client_kind, e.outcome FROM audit_events e JOIN organisations o ON o.id = e.org_id WHERE o.name = 'cli-org' AND e.seq = 1")" = "kvmgate org create|cli|cli|ok" ]
check "token revoke by the CLI: intent then outcome, a failure as error" \
  [ "$(cli_events cli-org 'kvmgate token revoke')" = pending,ok,pending,error ]
check "and the arguments it was given" \
  [ "$(sql "SELECT args->'args'->>0 FROM audit_events WHERE action = 'kvmgate token revoke' AND outcome = 'ok'")" = "$cli_id" ]
check "user changes by the CLI are recorded" \
  [ "$(cli_events cli-org 'kvmgate user set-role')" = pending,error,pending,ok ]
[ "$(cli_events default 'kvmgate device add' | cut -d, -f1-2)" = pending,ok ] &&
  [ "$(cli_events default 'kvmgate device update')" = pending,ok,pending,error ] &&
  [ "$(sql "SELECT count(*) FROM audit_events WHERE position('cli-pa55' in convert_from(canon, 'UTF8')) > 0")" = 0 ]
check "device add by the CLI is recorded, never the password" [ $? = 0 ]
check "reads are not recorded" [ "$(cli_events cli-org 'kvmgate token list')" = "" ]
cli audit verify --org cli-org
check "the organisation's chain is intact" [ "$rc" = 0 ]
cli audit verify --org default
check "and the default organisation's" [ "$rc" = 0 ]
