#!/bin/sh
# Start command of the nginx container (docker-compose.yml): renders the kvmgate
# templates with scripts/render-nginx.sh, sends nginx's logs to the container's
# output and runs nginx in the foreground. Extra arguments go to nginx (e.g. -t).
#
# The defaults are the container's mounts; the variables exist so the very same
# script can be checked elsewhere (tests/integration/test_compose.sh):
#   KVMGATE_NGINX_TEMPLATES  templates (nginx/ of the repository)  /etc/kvmgate/nginx
#   KVMGATE_NGINX_RENDER     render-nginx.sh                       /etc/kvmgate/render-nginx.sh
#   KVMGATE_NGINX_VAR_DIR    rendered config, temp files, logs     /tmp/kvmgate
#   KVMGATE_NGINX_STATIC     the dashboard's static files          /usr/share/kvmgate/static
#   KVMGATE_NGINX_UPSTREAM   the app container's FastCGI port      app:9000
#   KVMGATE_MAX_BODY         largest request body in bytes         1048576
set -eu
tpl=${KVMGATE_NGINX_TEMPLATES:-/etc/kvmgate/nginx}
render=${KVMGATE_NGINX_RENDER:-/etc/kvmgate/render-nginx.sh}
var=${KVMGATE_NGINX_VAR_DIR:-/tmp/kvmgate}
static=${KVMGATE_NGINX_STATIC:-/usr/share/kvmgate/static}
upstream=${KVMGATE_NGINX_UPSTREAM:-app:9000}
max_body=${KVMGATE_MAX_BODY:-1048576}

# Listens on 8080 on every address of the container; docker-compose.yml decides what
# is published. The user line stays empty: the image's master runs as root and its
# workers as the image's nginx user.
sh "$render" "$tpl" "$var" "$static" 0.0.0.0 8080 "$upstream" "$max_body" ""

# The template logs to files under the var dir; in a container they go to its output.
ln -sf /dev/stderr "$var/log/nginx-error.log"
ln -sf /dev/stdout "$var/log/nginx-access.log"

exec nginx -c "$var/nginx/kvmgate.conf" -p "$var/nginx" -e stderr "$@"
