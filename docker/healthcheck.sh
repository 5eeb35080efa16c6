#!/usr/bin/env bash
# Health check of the kvmgate image: sends GET /healthz straight to the FastCGI
# workers (no nginx needed). They answer 200 only when the database and the capture
# worker's control socket both answer, so this covers all three.
set -uo pipefail

listen=${KVMGATE_FCGI_LISTEN:-${KVMGATE_VAR_DIR:-/var/lib/kvmgate}/run/fcgi.sock}
case $listen in
  0.0.0.0:*) addr=127.0.0.1:${listen#*:} ;;
  :*)        addr=127.0.0.1$listen ;;
  *)         addr=$listen ;;
esac

# A clean environment: cgi-fcgi passes every variable on as a FastCGI parameter.
out=$(env -i REQUEST_METHOD=GET REQUEST_URI=/healthz DOCUMENT_URI=/healthz \
        SERVER_PROTOCOL=HTTP/1.1 REMOTE_ADDR=127.0.0.1 \
        timeout 8 cgi-fcgi -bind -connect "$addr" </dev/null 2>&1)
rc=$?
# The body (JSON: database and capture status) lands in `docker inspect`.
printf '%s\n' "$out" | tr -d '\r' | sed -n '/^$/,$p' | sed '/^$/d'
if [ $rc -ne 0 ]; then
  echo "kvmgate-healthcheck: no FastCGI answer on $addr (exit $rc)"
  exit 1
fi
printf '%s\n' "$out" | head -n 1 | grep -q '^Status: 200' || exit 1
exit 0
