#!/usr/bin/env bash
# The dashboard in a real browser: Debian's chromium (scripts/deps.sh test
# installs it) driven by playwright-core from tests/e2e (scripts/e2e-deps.sh).
# Signs in through the page, sees who it is and the organisation's devices,
# keeps the session across a reload, signs out; the page loads under its
# Content-Security-Policy without a refused resource or a script error, and
# its script never sees the HttpOnly cookie. Saves a screenshot in the var
# dir (KEEP_STACKS=1 keeps it). Skips when chromium is not installed.
. "$(dirname "$0")/lib.sh"
trap finish EXIT

chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { echo "# skip: no chromium at $chromium (apt-get install chromium)"; exit 77; }
node22=$("$top/scripts/e2e-deps.sh") || { not_ok "npm packages and Node 22 installed (scripts/e2e-deps.sh)"; exit 1; }
export PATH=$node22:$PATH CHROMIUM=$chromium

new_stack a || { not_ok "stack starts"; exit 1; }
org1=$(sql "SELECT id FROM organisations WHERE name = 'default'")
sql "INSERT INTO devices (org_id, name, kind, base_url, tags) VALUES
     ($org1, 'rack1-srv01', 'nanokvm', 'http://10.0.0.11', '{lab,rack1}'),
     ($org1, 'rack1-srv02', 'pikvm', 'https://10.0.0.12', '{rack1}'),
     ($org1, 'edge-<b>x</b>', 'vnc', 'vnc://10.0.0.13', '{}')" >/dev/null
printf '%s\n' 'browser-pass-1' | KVMGATE_VAR_DIR=$a_var "$bin/kvmgate" user passwd admin >/dev/null

http GET "$a_url/"
check "GET /: the sign-in page" grep -q 'id="signin-form"' <<<"$body"
csp=$(hdr Content-Security-Policy)
check "served with a strict Content-Security-Policy" \
  bash -c "grep -q \"default-src 'none'\" <<<\"$csp\" && grep -q \"script-src 'self'\" <<<\"$csp\" && grep -q \"frame-ancestors 'none'\" <<<\"$csp\""
check "and no inline script in the page" bash -c "! grep -qE '<script>|<script [^>]*>[^<]' '$top/static/index.html'"

out=$a_var/browser.jsonl
shot=$a_var/dashboard.png
(cd "$top/tests/e2e" && HOME=$a_var timeout 120 node dashboard.mjs "$a_url/" admin browser-pass-1 "$shot" >"$out" 2>"$a_var/browser.err")
rc=$?
[ $rc = 0 ] || diag "dashboard.mjs exited $rc: $(tail -n 5 "$a_var/browser.err" | tr '\n' ' ' | cut -c1-600)"
step() { jq -c "select(.step == \"$1\")" "$out" 2>/dev/null; }
check "the browser drove the page to the end" [ "$rc" = 0 ]
check "a wrong password shows the gateway's message" \
  [ "$(step wrong-password | jq -r .error)" = 'the username or password is wrong' ]
check "signed in: who you are" [ "$(step signin | jq -r .who)" = 'admin · org_admin in default' ]
check "and the organisation's devices, names shown as text" \
  [ "$(step signin | jq -c '.devices | sort')" = '["edge-<b>x</b>","rack1-srv01","rack1-srv02"]' ]
check "the cookie is HttpOnly and SameSite=Strict in the browser" \
  [ "$(step signin | jq -c .cookie)" = '{"httpOnly":true,"sameSite":"Strict"}' ]
check "the page's script cannot read it" [ "$(step signin | jq -r .script_sees_cookie)" = false ]
check "a reload keeps the session" [ "$(step reload | jq -r .still_signed_in)" = true ]
check "sign-out shows the sign-in form and drops the cookie" \
  [ "$(step signout | jq -r '"\(.signin_visible)/\(.cookie_left)"')" = true/false ]
check "no resource refused by the policy, no script error" [ "$(step done | jq -c .problems)" = '[]' ]
check "a screenshot was taken" [ -s "$shot" ]
check "the browser's sign-in and sign-out are in the audit log" \
  [ "$(sql "SELECT count(*) FILTER (WHERE action = 'auth.login' AND outcome = 'ok'), count(*) FILTER (WHERE action = 'DELETE /api/v1/session' AND outcome = 'ok') FROM audit_events WHERE client_kind = 'dashboard'")" = '1|1' ]
[ "${KEEP_STACKS:-0}" = 1 ] && diag "screenshot: $shot"
