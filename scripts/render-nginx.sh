#!/bin/sh
# Renders nginx/kvmgate.conf.in and nginx/fastcgi.conf.in into <var>/nginx/.
# Usage: render-nginx.sh TEMPLATE_DIR VAR_DIR STATIC_DIR BIND PORT FCGI_UPSTREAM MAX_BODY USER_LINE
# Plain sh and sed, so the nginx container can run it too.
set -eu
tpl=$1 var=$2 static=$3 bind=$4 port=$5 upstream=$6 max_body=$7 user_line=$8
mime=/etc/nginx/mime.types
# nginx keeps up to KEEP idle connections to the FastCGI workers per nginx
# process instead of opening one per request. A worker serves one connection
# at a time and waits on it while nginx keeps it idle; long calls (MCP
# streams, waits) may take all workers but a quarter (fcgi/stream.c), so the
# idle connections of all nginx processes together stay below that quarter
# and a short call always finds a worker that accepts. With too few workers
# (KVMGATE_WORKERS, default 16) every request has a connection of its own.
workers=${KVMGATE_WORKERS:-16}
procs=$(nproc 2>/dev/null || echo 1)
[ "$procs" -le 4 ] || procs=4
reserve=$((workers / 4 > 1 ? workers / 4 : 1))
keep=$(((reserve - 1) / procs))
keepalive="" keep_conn=""
if [ "$keep" -ge 1 ]; then
  keepalive="keepalive $keep; keepalive_timeout 30s;"
  keep_conn="fastcgi_keep_conn on;"
fi
mkdir -p "$var/nginx/client_body" "$var/nginx/fastcgi" "$var/nginx/proxy" \
         "$var/nginx/uwsgi" "$var/nginx/scgi" "$var/log" "$var/run"
esc() { printf '%s' "$1" | sed 's/[&|\\]/\\&/g'; }
for f in kvmgate.conf fastcgi.conf; do
  sed -e "s|@VAR@|$(esc "$var")|g" \
      -e "s|@STATIC@|$(esc "$static")|g" \
      -e "s|@BIND@|$(esc "$bind")|g" \
      -e "s|@PORT@|$(esc "$port")|g" \
      -e "s|@FCGI_UPSTREAM@|$(esc "$upstream")|g" \
      -e "s|@MAX_BODY@|$(esc "$max_body")|g" \
      -e "s|@MIME_TYPES@|$(esc "$mime")|g" \
      -e "s|@USER_LINE@|$(esc "$user_line")|g" \
      -e "s|@NGINX_PROCS@|$procs|g" \
      -e "s|@FCGI_KEEPALIVE@|$keepalive|g" \
      -e "s|@FCGI_KEEP_CONN@|$keep_conn|g" \
      "$tpl/$f.in" > "$var/nginx/$f.tmp"
  mv "$var/nginx/$f.tmp" "$var/nginx/$f"
done
