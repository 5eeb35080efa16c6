#!/usr/bin/env bash
# The stack as a user meets it: health, metrics, token, CLI, static files,
# JSON errors for bad input, structured logs, two stacks side by side, and a
# foreground stack that stops cleanly on Ctrl-C.
. "$(dirname "$0")/lib.sh"
trap finish EXIT

new_stack a || { not_ok "stack starts"; exit 1; }
ok "stack starts on a free port"

http GET "$a_url/healthz"
check "healthz 200 when everything runs" [ "$status" = 200 ]
check "healthz reports database and capture ok" \
  [ "$(jqr '.status, .database.ok, .capture.ok' | tr '\n' ' ')" = "ok true true " ]

http GET "$a_url/api/v1/me" -H "Authorization: Bearer $a_token"
check "the printed admin token is accepted by the API" \
  [ "$status/$(jqr .role)/$(jqr '.scopes|join(",")')" = "200/org_admin/read,write" ]

out=$(KVMGATE_VAR_DIR=$a_var "$bin/kvmgate" whoami 2>&1)
check "bin/kvmgate whoami accepts the admin token from var/admin-token" \
  grep -q "user 'admin' (org_admin) in organisation 'default'" <<<"$out"
out=$(KVMGATE_VAR_DIR=$a_var "$bin/kvmgate" whoami "kvmg_${a_token:5:10}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" 2>&1)
check "bin/kvmgate whoami refuses a wrong token" grep -q "not accepted" <<<"$out"
check "admin-token has mode 0600" [ "$(stat -c %a "$a_var/admin-token")" = 600 ]

out=$(KVMGATE_VAR_DIR=$a_var "$bin/kvmgate" migrate 2>&1)
check "migrate again applies nothing" grep -q "^0 migrations applied" <<<"$out"
out=$(KVMGATE_VAR_DIR=$a_var "$bin/kvmgate" init 2>&1)
check "init again makes no new token" grep -q "already initialised" <<<"$out"
check "init again leaves the token file alone" [ "$(cat "$a_var/admin-token")" = "$a_token" ]
check "kvmgate version" grep -q '^kvmgate [0-9]' <<<"$("$bin/kvmgate" version)"

# Authentication failures.
http GET "$a_url/api/v1/me"
expect_error 401 unauthorized "no token"
check "401 carries WWW-Authenticate: Bearer" grep -qi '^WWW-Authenticate: Bearer realm="kvmgate"' <<<"$headers"
http GET "$a_url/api/v1/me" -H "Authorization: Bearer kvmg_nonsense"
expect_error 401 unauthorized "malformed token"
check "invalid token says invalid_token" grep -qi 'error="invalid_token"' <<<"$headers"
http GET "$a_url/api/v1/me" -H "Authorization: Basic YWRtaW46YWRtaW4="
expect_error 401 unauthorized "Basic instead of Bearer"
http GET "$a_url/api/v1/me" -H "Authorization: Bearer ' OR '1'='1"
expect_error 401 unauthorized "SQL in the token"

# Bad requests: each a JSON error with the right status.
http GET "$a_url/api/v1/nothing-here"
expect_error 404 not_found "unknown route"
http POST "$a_url/healthz"
expect_error 405 method_not_allowed "wrong method"
check "405 names the allowed methods" grep -qi '^Allow: GET' <<<"$headers"
http GET "$a_url/api/v1/me%zz"
expect_error 400 bad_request "malformed percent-encoding"
http GET "$a_url/api/v1/me%00"
expect_error 400 bad_request "NUL in the path"
http GET "$a_url/healthz?verbose=1"
expect_error 400 bad_request "unknown query parameter"
http GET "$a_url/healthz?a=1&a=2"
expect_error 400 bad_request "duplicate query parameter"
head -c 1100000 /dev/zero | tr '\0' x >"$a_var/big.json"
http POST "$a_url/api/v1/me" -H 'Content-Type: application/json' --data-binary @"$a_var/big.json"
expect_error 413 body_too_large "oversized body"
http GET "$a_url/$(head -c 20000 /dev/zero | tr '\0' a)"
check "over-long URL answers 414 or 400 in JSON" \
  [ "$(jqr .error.code)" = uri_too_long -o "$(jqr .error.code)" = headers_too_large -o "$(jqr .error.code)" = bad_request ]
http GET "$a_url/does-not-exist.html"
expect_error 404 not_found "missing static file"
http GET "$a_url/healthz"
check "still healthy after the bad requests" [ "$status" = 200 ]

http GET "$a_url/"
check "static dashboard served at /" [ "$status" = 200 ]
check "responses carry a request id" grep -qi '^X-Request-Id: [0-9a-f]\{32\}' <<<"$headers"

# Metrics in Prometheus text format, counting what happened above.
http GET "$a_url/metrics"
check "metrics 200 text/plain" [ "$status" = 200 ]
check "metrics count healthz 200s" grep -qE '^kvmgate_http_requests_total\{route="/healthz",status="200"\} [1-9]' <<<"$body"
check "metrics count 401s on /api/v1/me" grep -qE '^kvmgate_http_requests_total\{route="/api/v1/me",status="401"\} [1-9]' <<<"$body"
check "metrics count unknown routes" grep -qE '^kvmgate_http_requests_total\{route="other",status="404"\} [1-9]' <<<"$body"
check "metrics have a latency histogram" grep -qE '^kvmgate_http_request_duration_seconds_bucket\{route="/healthz",le="\+Inf"\} [1-9]' <<<"$body"
check "metrics report workers and restarts" grep -qE '^kvmgate_fcgi_workers 4$' <<<"$body"
check "metrics report the capture worker" grep -qE '^kvmgate_capture_up 1$' <<<"$body"
check "metrics report capture sessions" grep -qE '^kvmgate_capture_sessions 0$' <<<"$body"
bad=$(grep -vE '^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+)$' <<<"$body" | head -3)
check "every metrics line is valid exposition format" [ -z "$bad" ]

# Logs: one JSON object per line with time, level, process and request id.
check "fcgi log lines are JSON objects" \
  jq -e -s 'length > 0 and all(has("time") and has("level") and has("process") and has("msg"))' "$a_var/log/fcgi.log" >/dev/null
check "request log lines carry the request id" \
  jq -e -s 'any(.request_id != null)' "$a_var/log/fcgi.log" >/dev/null
check "the token never appears in a log" bash -c "! grep -rqF -- '$a_token' '$a_var/log'"
check "the token was shown to the one who started the stack" grep -qF -- "$a_token" "$a_var/start.out"

# A second stack side by side on its own port and var dir.
new_stack b || not_ok "second stack starts"
http GET "$b_url/healthz"
check "second stack healthy beside the first" [ "$status" = 200 ]
http GET "$b_url/api/v1/me" -H "Authorization: Bearer $a_token"
check "the first stack's token means nothing to the second" [ "$status" = 401 ]
http GET "$a_url/healthz"
check "first stack still healthy" [ "$status" = 200 ]
stack_cmd "$b_var" "$b_port" stop >/dev/null 2>&1
check "stop leaves no process of the second stack" no_process "$b_var/"

# make run's foreground mode: Ctrl-C (SIGINT) stops everything.
c_var=$(mktemp -d /tmp/kvmgate-it.XXXXXX); chmod 755 "$c_var"; stacks+=("$c_var")
c_port=$(free_port)
# A background job of a script starts with SIGINT ignored; a terminal's would not.
KVMGATE_VAR_DIR=$c_var KVMGATE_PORT=$c_port KVMGATE_WORKERS=2 \
  setsid env --default-signal=INT "$top/scripts/stack.sh" run \
  >"$c_var/run.out" 2>&1 &
runpid=$!
for _ in $(seq 1 300); do grep -q '^kvmgate: running:' "$c_var/run.out" && break; sleep 0.1; done
check "foreground run prints the URLs and the token" \
  bash -c "grep -q 'http://127.0.0.1:$c_port/mcp' '$c_var/run.out' && grep -q 'kvmg_' '$c_var/run.out'"
kill -INT -- -"$runpid"
for _ in $(seq 1 300); do kill -0 "$runpid" 2>/dev/null || break; sleep 0.1; done
check "Ctrl-C stops the foreground stack" bash -c "! kill -0 $runpid 2>/dev/null"
check "nothing of it is left running (PostgreSQL included)" no_process "$c_var/"
