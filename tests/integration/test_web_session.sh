#!/usr/bin/env bash
# Dashboard sign-in: passwords set with the CLI (stdin or a file, never argv),
# stored as scrypt; POST /api/v1/session sets an HttpOnly SameSite=Strict
# cookie stored only as its hash; the cookie works on the REST routes as the
# member's role, audited as the user through the dashboard; every change made
# with it needs the session's CSRF token; wrong password and unknown user are
# one answer; failures are throttled per username and per address (429 with
# Retry-After) and audited; sign-out, expiry, idleness, disabling and removing
# the member end a session; the cookie never reaches /mcp; organisations stay
# apart; a token is no password.
. "$(dirname "$0")/lib.sh"
trap finish EXIT

export KVMGATE_SIGNIN_MAX_FAILURES=5 KVMGATE_SIGNIN_WINDOW_S=900
new_stack a || { not_ok "stack starts"; exit 1; }
api=$a_url/api/v1
tok=$a_token

kv() { KVMGATE_VAR_DIR=$a_var "$bin/kvmgate" "$@"; }
# signin JSON [curl args...]: POST /session.
signin() { local d=$1; shift; http POST "$api/session" -H 'Content-Type: application/json' --data-binary "$d" "$@"; }
# cookie_of: the session cookie the last response set.
cookie_of() { hdr Set-Cookie | sed -n 's/^kvmgate_session=\([^;]*\);.*/\1/p'; }
# web METHOD PATH COOKIE [curl args...]: a request with the session cookie only.
web() { local m=$1 p=$2 c=$3; shift 3; http "$m" "$api$p" -H "Cookie: kvmgate_session=$c" "$@"; }
# login USER PASSWORD [ORG]: signs in, sets $cookie and $csrf.
login() {
  local org=${3:+,\"org\":\"$3\"}
  signin "{\"username\":\"$1\",\"password\":\"$2\"$org}"
  cookie=$(cookie_of); csrf=$(jqr .csrf_token)
}
# member ORG NAME ROLE: a user with that role in ORG; prints its id.
member() {
  local u
  u=$(sql "INSERT INTO users (username) VALUES ('$2') ON CONFLICT (username) DO UPDATE SET username = EXCLUDED.username RETURNING id")
  sql "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $u, '$3')" >/dev/null
  printf '%s' "$u"
}
# passwd USER PASSWORD [ORG]: sets the password with the CLI, from stdin.
passwd() { printf '%s\n' "$2" | kv user passwd "$1" ${3:+--org "$3"} >/dev/null; }
last_login() { sql "SELECT $2 FROM audit_events WHERE action = 'auth.login' AND actor_user = '$1' ORDER BY id DESC LIMIT 1"; }
reset_failures() { sql "DELETE FROM signin_failures" >/dev/null; }

org1=$(sql "SELECT id FROM organisations WHERE name = 'default'")
sql "INSERT INTO devices (org_id, name, kind, base_url) VALUES ($org1, 'srv-a1', 'vnc', 'vnc://10.0.0.1')" >/dev/null

# ---- passwords with the CLI ----------------------------------------------------------

check "user passwd reads the password from stdin" quiet passwd admin 'admin-pass-1'
check "it is stored as scrypt, never in clear" \
  [ "$(sql "SELECT password_hash LIKE 'scrypt\$32768\$8\$1\$%' AND position('admin-pass-1' in password_hash) = 0 FROM users WHERE username = 'admin'")" = t ]
kv user passwd admin --password admin-pass-2 >/dev/null 2>&1
check "a password on the command line is refused (usage error)" [ $? = 2 ]
printf 'short\n' | kv user passwd admin >/dev/null 2>&1
check "a password shorter than 8 characters is refused" [ $? = 2 ]
printf '%s\n' 'viewer-pass-1' >"$a_var/alice.pw"
check "user add --password-file sets the new member's password" \
  quiet kv user add alice --role viewer --password-file "$a_var/alice.pw"
printf '%s\n' 'operator-pass-1' | kv user add bob --role operator --password-stdin >/dev/null
check "user add --password-stdin too" [ $? = 0 ]
check "the CLI's changes are audited, without the password" \
  [ "$(sql "SELECT count(*) FROM audit_events WHERE action IN ('kvmgate user passwd', 'kvmgate user add') AND outcome = 'ok'")" -ge 3 ]
check "no audit event holds a password" \
  [ "$(sql "SELECT count(*) FROM audit_events WHERE position('pass-1' in convert_from(canon, 'UTF8')) > 0")" = 0 ]

# ---- sign-in --------------------------------------------------------------------------

login admin admin-pass-1
set_cookie=$(hdr Set-Cookie)
check "POST /session: 200 with user, organisation, role and a CSRF token" \
  [ "$status/$(jqr .user)/$(jqr .organisation)/$(jqr .role)/${#csrf}" = 200/admin/default/org_admin/43 ]
check "the cookie is 32 random bytes in base64url" grep -qE '^[A-Za-z0-9_-]{43}$' <<<"$cookie"
check "cookie attributes: HttpOnly, SameSite=Strict, Path=/, Max-Age 12 h" \
  bash -c "grep -q 'HttpOnly' <<<'$set_cookie' && grep -q 'SameSite=Strict' <<<'$set_cookie' && grep -q 'Path=/;' <<<'$set_cookie' && grep -q 'Max-Age=43200' <<<'$set_cookie'"
check "no Secure attribute over plain HTTP" lacks "$set_cookie" Secure
check "Cache-Control: no-store" [ "$(hdr Cache-Control)" = no-store ]
check "only the cookie's SHA-256 is stored" \
  [ "$(sql "SELECT count(*) FROM web_sessions WHERE hash = sha256('$cookie'::bytea)")" = 1 ]
check "the sign-in is audited: auth.login ok, actor user, client dashboard, no password" \
  [ "$(last_login admin "outcome, actor_kind, client_kind, actor_token IS NULL, args::text")" = 'ok|user|dashboard|t|{"username": "admin"}' ]
admin_cookie=$cookie admin_csrf=$csrf

web GET /session "$cookie"
check "GET /session: who is signed in, with the same CSRF token" \
  [ "$status/$(jqr .user)/$(jqr .role)/$(jqr .csrf_token)/$(jqr .idle_timeout_s)" = "200/admin/org_admin/$csrf/1800" ]
web GET /devices "$cookie"
check "GET /devices with the cookie: the organisation's devices" [ "$status/$(jqr '.devices[0].name')" = 200/srv-a1 ]
check "audited as the user through the dashboard" \
  [ "$(sql "SELECT action, actor_kind, actor_user, client_kind, actor_token IS NULL FROM audit_events WHERE org_id = $org1 ORDER BY seq DESC LIMIT 1")" = 'GET /api/v1/devices|user|admin|dashboard|t' ]
web GET /me "$cookie"
check "GET /me with the cookie: the member's role, both scopes" \
  [ "$status/$(jqr .role)/$(jqc .scopes)" = '200/org_admin/["read","write"]' ]

# ---- CSRF --------------------------------------------------------------------------------

n_dev=$(sql "SELECT count(*) FROM devices")
newdev='{"name":"csrf-dev","kind":"vnc","url":"vnc://10.0.0.9"}'
web POST /devices "$cookie" -H 'Content-Type: application/json' --data-binary "$newdev"
expect_error 403 csrf "POST with the cookie and no CSRF token"
web POST /devices "$cookie" -H 'Content-Type: application/json' -H 'X-CSRF-Token: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' --data-binary "$newdev"
expect_error 403 csrf "POST with a wrong CSRF token"
web POST /devices "$cookie" -H 'Content-Type: application/json' -H "X-CSRF-Token: ${csrf}x" --data-binary "$newdev"
expect_error 403 csrf "POST with a longer CSRF token"
check "nothing was changed" [ "$(sql "SELECT count(*) FROM devices")" = "$n_dev" ]
check "the refusal is audited as denied" \
  [ "$(sql "SELECT action, outcome, client_kind FROM audit_events WHERE org_id = $org1 ORDER BY seq DESC LIMIT 1")" = 'POST /api/v1/devices|denied|dashboard' ]
web DELETE /session "$cookie"
expect_error 403 csrf "sign-out without the CSRF token"
web GET /session "$cookie"
check "and the session goes on" [ "$status" = 200 ]
web POST /devices "$cookie" -H 'Content-Type: application/json' -H "X-CSRF-Token: $csrf" --data-binary "$newdev"
check "POST with the right CSRF token: 201" [ "$status/$(jqr .name)" = 201/csrf-dev ]
dev_id=$(jqr .id)
web PATCH "/devices/$dev_id" "$cookie" -H 'Content-Type: application/json' --data-binary '{"enabled":false}'
expect_error 403 csrf "PATCH without the CSRF token"
web DELETE "/devices/$dev_id" "$cookie"
expect_error 403 csrf "DELETE without the CSRF token"
check "the device is still there, enabled" [ "$(sql "SELECT enabled FROM devices WHERE id = $dev_id")" = t ]
login alice viewer-pass-1
web DELETE "/devices/$dev_id" "$cookie" -H "X-CSRF-Token: $admin_csrf"
expect_error 403 csrf "another session's CSRF token"
web GET /devices "$admin_cookie" -H 'Origin: http://evil.example'
expect_error 403 forbidden_origin "a cookie request from another origin"
signin '{"username":"admin","password":"admin-pass-1"}' -H 'Origin: http://evil.example'
expect_error 403 forbidden_origin "a sign-in from another origin"
http POST "$api/session" -H 'Content-Type: text/plain' --data-binary '{"username":"admin","password":"admin-pass-1"}'
expect_error 415 unsupported_media_type "a sign-in that is not JSON (what a cross-site form sends)"

# ---- the role of the member, and the bearer paths unchanged -------------------------------

login alice viewer-pass-1
web POST /devices "$cookie" -H 'Content-Type: application/json' -H "X-CSRF-Token: $csrf" --data-binary '{"name":"v-dev","kind":"vnc","url":"vnc://h"}'
expect_error 403 forbidden "a viewer's session cannot add a device"
check "the denial names devices.write" grep -q devices.write <<<"$(jqr .error.message)"
http GET "$api/me" -H "Authorization: Bearer $a_token"
check "bearer tokens work as before" [ "$status/$(jqr .token)" = 200/admin ]
http GET "$api/session" -H "Authorization: Bearer $a_token"
expect_error 401 unauthorized "GET /session takes the cookie only"

# ---- the cookie never reaches /mcp ---------------------------------------------------------

http POST "$a_url/mcp" -H "Cookie: kvmgate_session=$admin_cookie" -H 'Content-Type: application/json' \
  -H 'Accept: application/json, text/event-stream' --data-binary "$(init_body 2025-11-25)"
expect_error 401 unauthorized "POST /mcp with the session cookie"
check "and it asks for a bearer token" grep -q Bearer <<<"$(hdr WWW-Authenticate)"

# ---- refusals: one answer for wrong password, unknown user, token, disabled ----------------

reset_failures
t_wrong=$(curl -s -o /dev/null -w '%{time_total}' -X POST "$api/session" -H 'Content-Type: application/json' --data-binary '{"username":"admin","password":"wrong-password"}')
signin '{"username":"admin","password":"wrong-password"}'
expect_error 401 invalid_credentials "a wrong password"
msg_wrong=$(jqr .error.message)
check "no cookie after a wrong password" [ -z "$(hdr Set-Cookie)" ]
t_unknown=$(curl -s -o /dev/null -w '%{time_total}' -X POST "$api/session" -H 'Content-Type: application/json' --data-binary '{"username":"nobody-here","password":"wrong-password"}')
signin '{"username":"nobody-here","password":"wrong-password"}'
expect_error 401 invalid_credentials "an unknown user"
check "the same message for both" [ "$(jqr .error.message)" = "$msg_wrong" ]
check "and about the same time (the KDF runs for unknown users too: $t_unknown s vs $t_wrong s)" \
  awk -v u="$t_unknown" -v w="$t_wrong" 'BEGIN { exit !(u > w / 3) }'
check "the wrong password is audited as denied in the user's organisation" \
  [ "$(last_login admin "outcome, reason, client_kind")" = 'denied|wrong password|dashboard' ]
check "the unknown user is in no organisation's log" \
  [ "$(sql "SELECT count(*) FROM audit_events WHERE actor_user = 'nobody-here' OR args::text LIKE '%nobody-here%'")" = 0 ]
check "but is logged" grep -q 'nobody-here' <(cat "$a_var"/log/*.log)
signin "{\"username\":\"admin\",\"password\":\"$a_token\"}"
expect_error 401 invalid_credentials "the admin's API token as its password"
check "no cookie for a token" [ -z "$(hdr Set-Cookie)" ]
reset_failures
kv user disable alice >/dev/null
signin '{"username":"alice","password":"viewer-pass-1"}'
expect_error 401 invalid_credentials "a disabled user with the right password"
check "audited with the reason" [ "$(last_login alice "outcome, reason")" = 'denied|user disabled' ]
check "no password in any log or event" \
  bash -c "! grep -rqE 'wrong-password|admin-pass-1|viewer-pass-1' '$a_var/log' && [ \"\$(KVMGATE_VAR_DIR=$a_var $bin/kvmgate audit export --org default 2>/dev/null | grep -cE 'wrong-password|admin-pass-1')\" = 0 ]"
check "nor the cookie" bash -c "! grep -rqF -e '$admin_cookie' '$a_var/log'"

# ---- sessions end: sign-out, expiry, idleness, disabled user, removed member --------------

login bob operator-pass-1
bob_cookie=$cookie bob_csrf=$csrf
web DELETE /session "$bob_cookie" -H "X-CSRF-Token: $bob_csrf"
[ "$status" = 204 ] && grep -q 'Max-Age=0' <<<"$(hdr Set-Cookie)"
check "DELETE /session: 204, the cookie cleared" [ $? = 0 ]
check "the row is gone" [ "$(sql "SELECT count(*) FROM web_sessions WHERE hash = sha256('$bob_cookie'::bytea)")" = 0 ]
web GET /devices "$bob_cookie"
expect_error 401 unauthorized "the signed-out cookie"
check "a refused cookie is cleared" grep -q 'Max-Age=0' <<<"$(hdr Set-Cookie)"

login bob operator-pass-1
sql "UPDATE web_sessions SET expires_at = now() - interval '1 second' WHERE hash = sha256('$cookie'::bytea)" >/dev/null
web GET /devices "$cookie"
expect_error 401 unauthorized "an expired session"
login bob operator-pass-1
sql "UPDATE web_sessions SET last_seen_at = now() - interval '31 minutes' WHERE hash = sha256('$cookie'::bytea)" >/dev/null
web GET /devices "$cookie"
expect_error 401 unauthorized "a session idle for 31 minutes"
login bob operator-pass-1
sql "UPDATE web_sessions SET last_seen_at = now() - interval '29 minutes' WHERE hash = sha256('$cookie'::bytea)" >/dev/null
web GET /devices "$cookie"
check "one idle for 29 minutes still works, and is marked seen" \
  [ "$status/$(sql "SELECT last_seen_at > now() - interval '1 minute' FROM web_sessions WHERE hash = sha256('$cookie'::bytea)")" = 200/t ]

sql "UPDATE users SET disabled = false WHERE username = 'alice'" >/dev/null
login alice viewer-pass-1
alice_cookie=$cookie
kv user disable alice >/dev/null
web GET /devices "$alice_cookie"
expect_error 401 unauthorized "the session of a user disabled since"

login bob operator-pass-1
bob_id=$(sql "SELECT id FROM users WHERE username = 'bob'")
http DELETE "$api/users/$bob_id" -H "Authorization: Bearer $a_token"
check "removing the member (204)" [ "$status" = 204 ]
web GET /devices "$cookie"
expect_error 401 unauthorized "the session of a removed member"
check "its sessions are deleted" [ "$(sql "SELECT count(*) FROM web_sessions WHERE user_id = $bob_id")" = 0 ]

# ---- organisations apart -------------------------------------------------------------------

kv org create other >/dev/null
org2=$(sql "SELECT id FROM organisations WHERE name = 'other'")
printf '%s\n' 'carol-pass-1' | kv user add carol --org other --role org_admin --password-stdin >/dev/null
sql "INSERT INTO devices (org_id, name, kind, base_url) VALUES ($org2, 'srv-b1', 'vnc', 'vnc://10.1.0.1')" >/dev/null
a1=$(sql "SELECT id FROM devices WHERE name = 'srv-a1'")
login carol carol-pass-1
check "carol signs in to her organisation" [ "$status/$(jqr .organisation)" = 200/other ]
web GET /devices "$cookie"
check "and sees only its devices" [ "$(jqc '[.devices[].name]')" = '["srv-b1"]' ]
web GET "/devices/$a1" "$cookie"
expect_error 404 not_found "another organisation's device by id"
web DELETE "/devices/$a1" "$cookie" -H "X-CSRF-Token: $csrf"
expect_error 404 not_found "deleting it"
check "which is still there" [ "$(sql "SELECT count(*) FROM devices WHERE id = $a1")" = 1 ]
check "her sign-in is in her organisation's log only" \
  [ "$(sql "SELECT string_agg(DISTINCT org_id::text, ',') FROM audit_events WHERE action = 'auth.login' AND actor_user = 'carol'")" = "$org2" ]
login carol carol-pass-1 default
expect_error 403 forbidden "signing in to an organisation one is not a member of"
member "$org1" carol viewer >/dev/null
login carol carol-pass-1
expect_error 400 org_required "a member of two organisations must say which"
login carol carol-pass-1 default
check "and then works in the one named, with that role" \
  [ "$status/$(jqr .organisation)/$(jqr .role)" = 200/default/viewer ]
web GET /devices "$cookie"
check "seeing that organisation's devices" [ "$(jqr '[.devices[].name] | index("srv-b1")')" = null ]

# ---- throttling ------------------------------------------------------------------------------

reset_failures
printf '%s\n' 'erin-pass-1' | kv user add erin --role viewer --password-stdin >/dev/null
for i in 1 2 3 4 5; do
  signin '{"username":"erin","password":"not-it"}'
  [ "$status" = 401 ] || not_ok "failure $i: want 401, got $status"
done
signin '{"username":"erin","password":"erin-pass-1"}'
expect_error 429 too_many_attempts "a sixth attempt, with the right password"
retry=$(hdr Retry-After)
check "Retry-After in seconds within the window ($retry)" [ "$retry" -ge 1 -a "$retry" -le 900 ]
check "no cookie while throttled" [ -z "$(hdr Set-Cookie)" ]
check "each failure and the throttling are audited as denied" \
  [ "$(sql "SELECT count(*) FILTER (WHERE reason = 'wrong password'), count(*) FILTER (WHERE reason LIKE 'too many%') FROM audit_events WHERE action = 'auth.login' AND actor_user = 'erin' AND outcome = 'denied'")" = '5|1' ]
check "the attempts are counted per username and address, without the password" \
  [ "$(sql "SELECT count(*) FROM signin_failures WHERE username = 'erin' AND source_ip = '127.0.0.1'")" = 5 ]
signin '{"username":"admin","password":"admin-pass-1"}'
expect_error 429 too_many_attempts "another user from the same address"

reset_failures
sql "INSERT INTO signin_failures (username, source_ip) SELECT 'erin', '192.0.2.7' FROM generate_series(1, 5)" >/dev/null
signin '{"username":"erin","password":"erin-pass-1"}'
expect_error 429 too_many_attempts "a username with 5 failures from elsewhere"
signin '{"username":"admin","password":"admin-pass-1"}'
check "while another username from this address signs in" [ "$status" = 200 ]
reset_failures
sql "INSERT INTO signin_failures (username, source_ip) SELECT 'guess' || g, '127.0.0.1' FROM generate_series(1, 5) g" >/dev/null
signin '{"username":"erin","password":"erin-pass-1"}'
expect_error 429 too_many_attempts "an address with 5 failures for other usernames"
sql "UPDATE signin_failures SET at = now() - interval '16 minutes'" >/dev/null
signin '{"username":"erin","password":"erin-pass-1"}'
check "failures older than the window no longer count" [ "$status" = 200 ]
signin '{"username":"erin","password":"erin-pass-1","extra":1}'
expect_error 400 bad_request "an unknown field"
signin '{"username":"erin"}'
expect_error 400 bad_request "no password"

check "the chain is intact after all of it" quiet kv audit verify
check "and the other organisation's too" quiet kv audit verify --org other
