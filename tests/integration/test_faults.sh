#!/usr/bin/env bash
# Faults: a worker killed, the capture worker killed, PostgreSQL stopped and
# started again. The stack must notice, report, recover, and never crash.
. "$(dirname "$0")/lib.sh"
trap finish EXIT

new_stack s || { not_ok "stack starts"; exit 1; }
auth=(-H "Authorization: Bearer $s_token")
sup=$(stack_child "$s_var" kvmgate-fcgi)

# A FastCGI worker killed with SIGKILL is replaced.
workers() { pgrep -P "$sup" -x kvmgate-fcgi | sort; }
before=$(workers)
victim=$(head -1 <<<"$before")
kill -KILL "$victim"
for _ in $(seq 1 50); do
  [ "$(workers | wc -l)" -eq 4 ] && ! workers | grep -qx "$victim" && break
  sleep 0.1
done
check "a killed worker is replaced (4 workers again, the victim gone)" \
  bash -c "[ \$(pgrep -P $sup -x kvmgate-fcgi | wc -l) -eq 4 ] && ! pgrep -P $sup | grep -qx $victim"
check "requests succeed while and after a worker dies (40/40)" \
  [ "$(count_ok 40 "$s_url/api/v1/me" "${auth[@]}")" = 40 ]
http GET "$s_url/metrics"
check "metrics count the worker restart" \
  grep -qE '^kvmgate_fcgi_worker_restarts_total [1-9]' <<<"$body"

# The audit appender killed with SIGKILL: audited calls go on (a worker that
# cannot reach it appends by itself), it is replaced, the chain stays whole.
appender=$(pgrep -P "$sup" -x kvmgate-audit)
check "the audit appender runs beside the workers" [ -n "$appender" ]
kill -KILL "$appender"
check "audited calls succeed while and after the appender dies (20/20)" \
  [ "$(count_ok 20 "$s_url/api/v1/me" "${auth[@]}")" = 20 ]
for _ in $(seq 1 50); do
  new=$(pgrep -P "$sup" -x kvmgate-audit) && [ "$new" != "$appender" ] && break
  sleep 0.1
done
check "the appender is replaced" [ -n "$new" -a "$new" != "$appender" ]
check "audited calls go through the new appender (10/10)" \
  [ "$(count_ok 10 "$s_url/api/v1/me" "${auth[@]}")" = 10 ]
check "the audit chain is intact" quiet env KVMGATE_VAR_DIR="$s_var" "$bin/kvmgate" audit verify

# The capture worker killed: healthz says so within a second, then it is back.
cap=$(stack_child "$s_var" kvmgate-capture)
kill -KILL "$cap"
t0=$(date +%s%N)
seen=0
while [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 1000 ]; do
  http GET "$s_url/healthz"
  if [ "$status" = 503 ] && [ "$(jqr .capture.ok)" = false ]; then seen=1; break; fi
  # Restarted already: it died, and was replaced, between two polls.
  cap2=$(stack_child "$s_var" kvmgate-capture)
  [ -n "$cap2" ] && [ "$cap2" != "$cap" ] && [ "$status" = 200 ] && { seen=2; break; }
  sleep 0.02
done
check "healthz reports the capture worker down (503) within a second" [ "$seen" -ge 1 ]
[ "$seen" = 1 ] && diag "503 seen $(( ($(date +%s%N) - t0) / 1000000 )) ms after the kill"
back=0
for _ in $(seq 1 100); do
  http GET "$s_url/healthz"
  [ "$status" = 200 ] && [ "$(jqr .capture.ok)" = true ] && { back=1; break; }
  sleep 0.1
done
check "the capture worker is restarted and healthz is green again" [ "$back" = 1 ]
check "the restart is logged" grep -q 'capture (pid [0-9]*) exited; restarting' "$s_var/log/stack.log"

# PostgreSQL stopped: 503s with a clear JSON error, no crash; back without a restart.
fcgi_before=$(stack_child "$s_var" kvmgate-fcgi)
stack_cmd "$s_var" "$s_port" db-stop
http GET "$s_url/healthz"
check "healthz 503 with the database down" \
  [ "$status/$(jqr .database.ok)/$(jqr .capture.ok)" = "503/false/true" ]
# A token the workers have not seen lately can only be checked in PostgreSQL.
http GET "$s_url/api/v1/me" -H "Authorization: Bearer kvmg_$(printf 'A%.0s' $(seq 1 43))"
expect_error 503 database_unavailable "a request needing the database"
http GET "$s_url/metrics"
check "metrics still answer without the database" [ "$status" = 200 ]
stack_cmd "$s_var" "$s_port" db-start
check "requests succeed again once PostgreSQL is back (8/8, every worker reconnects)" \
  [ "$(count_ok 8 "$s_url/api/v1/me" "${auth[@]}")" = 8 ]
http GET "$s_url/healthz"
check "healthz green again" [ "$status" = 200 ]
check "no part of the stack restarted for it" \
  [ "$(stack_child "$s_var" kvmgate-fcgi)" = "$fcgi_before" ]
check "no worker crashed while the database was away" \
  bash -c "! grep -q 'killed by signal [^9]' '$s_var/log/fcgi.log'"
