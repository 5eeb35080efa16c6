#!/bin/sh
# Renders nginx/kvmgate.conf.in and nginx/fastcgi.conf.in into <var>/nginx/.
# Usage: render-nginx.sh TEMPLATE_DIR VAR_DIR STATIC_DIR BIND PORT FCGI_UPSTREAM MAX_BODY USER_LINE
# Plain sh and sed, so the nginx container can run it too.
set -eu
tpl=$1 var=$2 static=$3 bind=$4 port=$5 upstream=$6 max_body=$7 user_line=$8
mime=/etc/nginx/mime.types
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
      "$tpl/$f.in" > "$var/nginx/$f.tmp"
  mv "$var/nginx/$f.tmp" "$var/nginx/$f"
done
