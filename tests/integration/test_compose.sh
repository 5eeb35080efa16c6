#!/usr/bin/env bash
# test_compose.sh - checks the container deployment without a Docker engine:
#   - the shell scripts of the images parse (bash -n, sh -n);
#   - docker-compose.yml validates (`docker-compose config -q`) and its resolved form
#     has the three services with what they need (volumes, health checks, shm, ports);
#   - the Dockerfile's runtime packages exist in Debian and cover the programs' libraries;
#   - the nginx container's start script renders the templates the way it will in the
#     container, and the machine's nginx accepts the result (`nginx -t`).
# Installs Debian's docker-compose when it is missing (as root); otherwise skips (77).
#
# The bash -c '...' snippets below take their values as "$1"... on purpose.
# shellcheck disable=SC2016
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$top" || exit 1

count=0 failures=0
ok()     { count=$((count + 1)); echo "ok $count - $*"; }
not_ok() { count=$((count + 1)); failures=$((failures + 1)); echo "not ok $count - $*"; }
skip()   { count=$((count + 1)); echo "ok $count - # skip $*"; }
check()  { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
diag()   { echo "# $*"; }

tmp=$(mktemp -d /tmp/kvmgate-compose.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# ---- docker-compose --------------------------------------------------------

if ! command -v docker-compose >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "# skip: docker-compose is not installed; install it with:"
    echo "#   sudo apt-get update && sudo apt-get install -y --no-install-recommends docker-compose"
    exit 77
  fi
  diag "installing docker-compose"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends docker-compose; } \
       >"$tmp/apt.log" 2>&1; then
    cat "$tmp/apt.log" >&2
    not_ok "install docker-compose"
    exit 1
  fi
fi
diag "$(docker-compose version --short 2>/dev/null || docker-compose version 2>/dev/null | head -n 1)"

# ---- the scripts parse -------------------------------------------------------

for f in docker/entrypoint.sh docker/healthcheck.sh tests/integration/test_compose.sh; do
  check "bash -n $f" bash -n "$f"
done
for f in docker/nginx-start.sh scripts/render-nginx.sh; do
  check "sh -n $f" sh -n "$f"
done

# ---- docker-compose.yml ---------------------------------------------------------

# The checks use the defaults: settings from the caller's environment stay out.
compose() {
  env -u KVMGATE_PORT -u KVMGATE_DB_PASSWORD -u KVMGATE_DB_USER -u KVMGATE_DB_NAME \
      -u KVMGATE_WORKERS -u KVMGATE_MAX_BODY -u KVMGATE_SHM_SIZE \
      docker-compose -f docker-compose.yml "$@"
}

if compose config -q 2>"$tmp/config.err"; then
  ok "docker-compose config -q accepts docker-compose.yml"
else
  sed 's/^/# /' "$tmp/config.err"
  not_ok "docker-compose config -q accepts docker-compose.yml"
fi
compose config >"$tmp/resolved.yml" 2>"$tmp/config.err" || sed 's/^/# /' "$tmp/config.err"
services=$(compose config --services 2>/dev/null)
volumes=$(compose config --volumes 2>/dev/null)

# block SERVICE: the lines of one service in the resolved file, and below it
# block SERVICE KEY: the lines of one of its keys (healthcheck, ports, ...).
block() {
  awk -v svc="$1" -v key="${2:-}" '
    /^[^ ]/        { in_services = ($0 == "services:"); in_svc = 0; next }
    !in_services   { next }
    /^  [^ ]/      { in_svc = ($0 == "  " svc ":"); in_key = 0; next }
    !in_svc        { next }
    key == ""      { print; next }
    /^    [^ -]/   { in_key = ($0 ~ "^    " key ":"); if (in_key) print; next }
    in_key         { print }
  ' "$tmp/resolved.yml"
}
has() { grep -Eq -- "$2" <<<"$1"; }

for s in postgres app nginx; do
  check "service $s exists" grep -qx "$s" <<<"$services"
done

pg_vol=$(block postgres volumes)
check "postgres keeps its data in a volume" has "$pg_vol" ':/var/lib/postgresql/data(:rw)?$'
pg_src=$(sed -n 's|^ *- \([^:]*\):/var/lib/postgresql/data.*|\1|p' <<<"$pg_vol")
check "postgres's volume ($pg_src) is a named volume" grep -qx -- "$pg_src" <<<"$volumes"
check "postgres has a pg_isready health check" has "$(block postgres healthcheck)" 'pg_isready'
check "postgres password defaults to change-me" has "$(block postgres environment)" 'POSTGRES_PASSWORD: change-me'

app=$(block app)
check "app is built from the Dockerfile here" has "$(block app build)" "context: $top\$"
check "app has a health check" has "$(block app healthcheck)" 'kvmgate-healthcheck'
check "app has shm_size" has "$app" '^    shm_size: [0-9]+[kmg]?b?$'
check "app shm_size is at least 1 GB" has "$app" '^    shm_size: ([1-9][0-9]*gb?|[0-9]{4,}mb?)$'
check "app waits for postgres to be healthy" \
  has "$(block app depends_on)" 'condition: service_healthy'
check "app keeps its var dir in a named volume" has "$(block app volumes)" ':/var/lib/kvmgate(:rw)?$'
app_env=$(block app environment)
check "app's DATABASE_URL points at postgres" has "$app_env" 'DATABASE_URL: .*host=postgres( |$)'
check "app leaves nginx out (KVMGATE_NGINX=off)" has "$app_env" 'KVMGATE_NGINX: "?off"?$'
check "app logs to stderr (KVMGATE_LOG_STDERR=1)" has "$app_env" "KVMGATE_LOG_STDERR: '?1'?\$"
check "app listens for FastCGI on 0.0.0.0:9000" has "$app_env" 'KVMGATE_FCGI_LISTEN: 0\.0\.0\.0:9000$'
check "app restarts unless stopped" has "$app" '^    restart: unless-stopped$'

nginx_ports=$(block nginx ports)
check "nginx publishes a port (127.0.0.1:8080 -> 8080)" has "$nginx_ports" '127\.0\.0\.1:8080:8080'
check "nginx waits for app to be healthy" has "$(block nginx depends_on)" 'condition: service_healthy'
check "nginx has a /healthz health check" has "$(block nginx healthcheck)" '/healthz'
nginx_vol=$(block nginx volumes)
for m in "nginx:/etc/kvmgate/nginx:ro" "scripts/render-nginx.sh:/etc/kvmgate/render-nginx.sh:ro" \
         "docker/nginx-start.sh:/etc/kvmgate/nginx-start.sh:ro" "static:/usr/share/kvmgate/static:ro"; do
  check "nginx mounts ./${m%%:*} read-only at ${m#*:}" has "$nginx_vol" "- $top/$m\$"
  check "./${m%%:*} exists" test -e "${m%%:*}"
done
check "nginx starts with docker/nginx-start.sh" has "$(block nginx entrypoint)" '/etc/kvmgate/nginx-start.sh'

# Settings reach every service that needs them.
KVMGATE_PORT=18443 KVMGATE_DB_PASSWORD=s3cret KVMGATE_SHM_SIZE=2gb \
  docker-compose -f docker-compose.yml config >"$tmp/override.yml" 2>/dev/null
check "KVMGATE_PORT moves the published port" grep -q '127\.0\.0\.1:18443:8080' "$tmp/override.yml"
check "KVMGATE_DB_PASSWORD reaches postgres" grep -q 'POSTGRES_PASSWORD: s3cret$' "$tmp/override.yml"
check "KVMGATE_DB_PASSWORD reaches app's DATABASE_URL" grep -q "password='s3cret'" "$tmp/override.yml"
check "KVMGATE_SHM_SIZE sets app's shm_size" grep -q 'shm_size: 2gb$' "$tmp/override.yml"

# ---- Dockerfile (static checks: no Docker engine needed) -------------------------

check "Dockerfile builds and runs on debian:12-slim" \
  test "$(grep -c '^FROM debian:12-slim' Dockerfile)" -eq 2
check "Dockerfile runs as the user kvmgate" grep -q '^USER kvmgate$' Dockerfile
check "Dockerfile has a HEALTHCHECK" grep -q '^HEALTHCHECK ' Dockerfile
check "Dockerfile sets KVMGATE_BIN_DIR and KVMGATE_SQL_DIR" \
  bash -c 'grep -q "KVMGATE_BIN_DIR=/usr/local/bin" Dockerfile && grep -q "KVMGATE_SQL_DIR=/usr/share/kvmgate/sql" Dockerfile'
while read -r f; do
  check "Dockerfile's $f exists" test -f "$f"
done < <(sed -n 's/^COPY \(docker\/[^ ]*\) .*/\1/p' Dockerfile)
check ".dockerignore keeps build/, bin/, var/ and .git out" \
  bash -c 'for p in build bin var .git; do grep -qx "/\\?$p/\\?" .dockerignore || exit 1; done'

# The runtime stage's package list: the words of its `apt-get install`.
runtime_pkgs=$(awk '/^FROM /{n++} n == 2' Dockerfile | sed -e ':a' -e '/\\$/{N;s/\\\n/ /;ba}' |
  grep -o 'apt-get install[^&]*' | tr -s ' ' '\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' |
  grep -vx -e apt-get -e install)
if [ -z "$runtime_pkgs" ]; then
  not_ok "Dockerfile's runtime stage installs packages"
elif ! command -v apt-cache >/dev/null 2>&1 || ! apt-cache show bash >/dev/null 2>&1; then
  skip "runtime packages exist in Debian (no apt-cache or no package lists here)"
else
  missing=""
  for p in $runtime_pkgs; do
    apt-cache show --no-all-versions "$p" >/dev/null 2>&1 || missing+=" $p"
  done
  check "runtime packages exist in Debian:${missing:- all $(wc -w <<<"$runtime_pkgs")}" test -z "$missing"
fi
check "no build tools in the runtime stage" \
  bash -c '! grep -qwE "build-essential|gcc|make|[a-z0-9-]+-dev" <<<"$1"' _ "$runtime_pkgs"

# Every library the built programs need comes from a runtime package (or libc).
if [ -x bin/kvmgate-fcgi ] && command -v dpkg >/dev/null 2>&1; then
  uncovered=""
  progs=(bin/kvmgate bin/kvmgate-fcgi bin/kvmgate-capture)
  # Direct dependencies only (NEEDED); theirs come with the packages' own dependencies.
  needed=$(objdump -p "${progs[@]}" 2>/dev/null | awk '$1 == "NEEDED" {print $2}' | sort -u)
  for lib in $(ldd "${progs[@]}" 2>/dev/null |
               awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u); do
    grep -qx "$(basename "$lib")" <<<"$needed" || continue
    pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n 1 | cut -d: -f1)
    [ -z "$pkg" ] && pkg=$(dpkg -S "$lib" 2>/dev/null | head -n 1 | cut -d: -f1)
    case " $(tr '\n' ' ' <<<"$runtime_pkgs") libc6 " in
      *" $pkg "*) ;;
      *) uncovered+=" $(basename "$lib")($pkg)" ;;
    esac
  done
  check "the programs' libraries come from runtime packages:${uncovered:- yes}" test -z "$uncovered"
else
  skip "library coverage (bin/ not built or no dpkg)"
fi

# ---- the nginx container's configuration -----------------------------------------

# docker/nginx-start.sh as the container runs it (its defaults are the container's
# mounts; here they point at the repository), with a stand-in nginx that only
# records its arguments.
mkdir -p "$tmp/fakebin"
cat >"$tmp/fakebin/nginx" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >"$tmp/nginx-args"
EOF
chmod +x "$tmp/fakebin/nginx"
var=$tmp/var
start_env=(KVMGATE_NGINX_TEMPLATES="$top/nginx" KVMGATE_NGINX_RENDER="$top/scripts/render-nginx.sh"
           KVMGATE_NGINX_VAR_DIR="$var" KVMGATE_NGINX_STATIC="$top/static" KVMGATE_MAX_BODY=1048576)
if env -u KVMGATE_NGINX_UPSTREAM PATH="$tmp/fakebin:$PATH" "${start_env[@]}" \
     sh docker/nginx-start.sh >"$tmp/start.out" 2>&1; then
  ok "docker/nginx-start.sh renders the templates"
else
  sed 's/^/# /' "$tmp/start.out"
  not_ok "docker/nginx-start.sh renders the templates"
fi
conf=$var/nginx/kvmgate.conf
check "nginx runs with -c <var>/nginx/kvmgate.conf -p <var>/nginx -e stderr" \
  test "$(cat "$tmp/nginx-args" 2>/dev/null)" = "-c $conf -p $var/nginx -e stderr"
check "rendered upstream is app:9000" grep -q '^ *server app:9000;' "$conf"
check "rendered listen is 0.0.0.0:8080" grep -q '^ *listen 0\.0\.0\.0:8080;' "$conf"
check "rendered root is the static mount" grep -q "^ *root $top/static;" "$conf"
check "rendered body limit is 1048576" grep -q '^ *client_max_body_size 1048576;' "$conf"
check "the user line is empty" bash -c '! grep -q "^ *user " "$1"' _ "$conf"
check "no placeholder is left" \
  bash -c '! grep -hv "^ *#" "$1" "$2" | grep -q "@[A-Z_]\+@"' _ "$conf" "$var/nginx/fastcgi.conf"
check "nginx's error log goes to the container's stderr" \
  test "$(readlink "$var/log/nginx-error.log")" = /dev/stderr
check "nginx's access log goes to the container's stdout" \
  test "$(readlink "$var/log/nginx-access.log")" = /dev/stdout

# The real nginx on the result. app:9000 resolves only on the compose network, and
# nginx resolves upstreams when it reads its configuration: this check renders with
# upstream 127.0.0.1:9000 instead; everything else is as in the container.
nginx_bin=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
if [ -x "$nginx_bin" ] && [ -f /etc/nginx/mime.types ]; then
  mkdir -p "$tmp/realbin" && ln -sf "$nginx_bin" "$tmp/realbin/nginx"
  if env PATH="$tmp/realbin:$PATH" "${start_env[@]}" KVMGATE_NGINX_UPSTREAM=127.0.0.1:9000 \
       sh docker/nginx-start.sh -t -q >"$tmp/nginx-t.out" 2>&1; then
    ok "nginx -t accepts the rendered configuration ($nginx_bin)"
  else
    sed 's/^/# /' "$tmp/nginx-t.out"
    not_ok "nginx -t accepts the rendered configuration ($nginx_bin)"
  fi
else
  skip "nginx -t (nginx or /etc/nginx/mime.types not installed here)"
fi

echo "1..$count"
[ "$failures" -eq 0 ]
