#!/usr/bin/env bash
# stack.sh - runs a whole kvmgate stack: PostgreSQL (a private cluster under the
# var dir unless DATABASE_URL is set), kvmgate-capture, kvmgate-fcgi and nginx.
#
#   stack.sh run      foreground; Ctrl-C stops everything
#   stack.sh start    background; returns once /healthz is green
#   stack.sh stop     stops a background stack
#   stack.sh status   says whether the stack of this var dir runs
#   stack.sh db-stop | db-start   the private PostgreSQL alone (fault tests, maintenance)
#
# KVMGATE_VAR_DIR and KVMGATE_PORT keep several stacks apart. KVMGATE_DEMO=auto (what
# make run and make start set) adds a demo fleet when no devices are configured: two
# simulated NanoKVMs on different firmware, on KVMGATE_PORT+1 and +2, and when TigerVNC
# is installed an Xvnc display with a terminal on KVMGATE_PORT+3. KVMGATE_NGINX=off
# leaves nginx out (a container deployment runs it in its own container). While it runs,
# the capture worker, the FastCGI supervisor and nginx are restarted if they die.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
var=${KVMGATE_VAR_DIR:-$top/var}
mkdir -p "$var/run" "$var/log"
var=$(cd "$var" && pwd)
export KVMGATE_VAR_DIR=$var
export KVMGATE_SQL_DIR=${KVMGATE_SQL_DIR:-$top/sql}
export KVMGATE_FCGI_LISTEN=${KVMGATE_FCGI_LISTEN:-$var/run/fcgi.sock}
port=${KVMGATE_PORT:-8080}
bind=${KVMGATE_BIND:-127.0.0.1}
bin=${KVMGATE_BIN_DIR:-$top/bin}
max_body=${KVMGATE_MAX_BODY:-1048576}
with_nginx=${KVMGATE_NGINX:-on}
pidfile=$var/run/stack.pid
url="http://$bind:$port"

say() { printf 'kvmgate: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# ---- PostgreSQL ------------------------------------------------------------

pg_init_vars() {
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$pgbin/initdb" ] || die "the PostgreSQL server is not installed (scripts/deps.sh run)"
  pgdir=$var/pg
  pgdata=$pgdir/data
  pgsock=$pgdir/run
  if [ "$(id -u)" -eq 0 ]; then
    # PostgreSQL refuses to run as root: it runs as the system user kvmgate.
    id -u kvmgate >/dev/null 2>&1 ||
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kvmgate
    as_pg() { runuser -u kvmgate -- "$@"; }
  else
    as_pg() { "$@"; }
  fi
}

pg_setup() {
  if [ ! -e "$pgdir" ]; then
    if [ "$(id -u)" -eq 0 ] && ! runuser -u kvmgate -- test -x "$var"; then
      # The var dir is out of the kvmgate user's reach (a checkout under /root,
      # say): the cluster lives under /var/lib/kvmgate, var/pg points to it.
      local ext
      ext=/var/lib/kvmgate/pg-$(printf '%s' "$var" | sha256sum | cut -c1-16)
      mkdir -p "$ext"
      ln -s "$ext" "$pgdir"
    else
      mkdir -p "$pgdir"
    fi
    [ "$(id -u)" -eq 0 ] && chown kvmgate: "$pgdir/"
    chmod 700 "$pgdir/"
  fi
  [ -f "$pgdata/PG_VERSION" ] && return 0
  say "creating a private PostgreSQL cluster in $pgdir"
  as_pg mkdir -p "$pgsock" "$pgdir/log"
  as_pg "$pgbin/initdb" -D "$pgdata" -U kvmgate --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$var/log/initdb.log" 2>&1 || { cat "$var/log/initdb.log" >&2; die "initdb failed"; }
  as_pg tee -a "$pgdata/postgresql.conf" >/dev/null <<CONF
# kvmgate: unix socket only, in a directory only the cluster's owner can enter.
listen_addresses = ''
unix_socket_directories = '$pgsock'
unix_socket_permissions = 0700
max_connections = 200
CONF
}

db_start() {
  if as_pg "$pgbin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    return 0
  fi
  as_pg "$pgbin/pg_ctl" -D "$pgdata" -l "$pgdir/log/postgres.log" -w -t 60 start >/dev/null ||
    { tail -n 20 "$pgdir/log/postgres.log" >&2; die "PostgreSQL did not start"; }
  if ! as_pg "$pgbin/psql" -h "$pgsock" -U kvmgate -d postgres -Atqc \
        "SELECT 1 FROM pg_database WHERE datname = 'kvmgate'" | grep -q 1; then
    as_pg "$pgbin/createdb" -h "$pgsock" -U kvmgate kvmgate
  fi
}

db_stop() {
  as_pg "$pgbin/pg_ctl" -D "$pgdata" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

# ---- the kvmgate processes -------------------------------------------------

declare -A pid=() started=() fails=()

# Logs go to <var>/log/<process>.log, or to the stack's stderr with KVMGATE_LOG_STDERR=1
# (containers). KVMGATE_LOG_FILE, when set, wins over both.
logto() { if [ "${KVMGATE_LOG_STDERR:-0}" = 1 ]; then echo /dev/stderr; else echo "$var/log/$1.log"; fi; }
start_capture() { "$bin/kvmgate-capture" 2>>"$(logto capture)" & pid[capture]=$!; }
# Tests point KVMGATE_FCGI_PROGRAM at the build with the MCP test fixtures.
fcgi_program=${KVMGATE_FCGI_PROGRAM:-$bin/kvmgate-fcgi}
start_fcgi()    { "$fcgi_program" 2>>"$(logto fcgi)" & pid[fcgi]=$!; }
start_nginx() {
  "$nginx" -c "$var/nginx/kvmgate.conf" -p "$var/nginx" -e "$var/log/nginx-error.log" \
    2>>"$var/log/nginx-error.log" &
  pid[nginx]=$!
}

# ---- the demo fleet ------------------------------------------------------------

# Two simulated NanoKVMs (bin/kvmgate-sim-nanokvm), registered as devices tagged
# "demo" the first time; later starts find them and only start the simulators.
# A fleet with any device of its own gets no demo.
demo_rows=("demo-nanokvm-a|2.4.x|1" "demo-nanokvm-b|2.5.0|2")
demo=${KVMGATE_DEMO:-off}
demo_on=""
# Installed next to the programs by make; a build tree has it under tests/.
sim_nanokvm=$bin/kvmgate-sim-nanokvm
[ -x "$sim_nanokvm" ] || sim_nanokvm=$bin/../tests/sim-nanokvm
demo_setup() {
  [ "$demo" = auto ] || return 0
  [ -x "$sim_nanokvm" ] || { say "demo fleet: $sim_nanokvm is missing"; return 0; }
  local own total row name fw off
  total=$("$bin/kvmgate" device list --json | jq '.devices | length')
  own=$("$bin/kvmgate" device list --json | jq '[.devices[] | select(.tags | index("demo") | not)] | length')
  [ "$own" = 0 ] || return 0
  for row in "${demo_rows[@]}"; do
    IFS='|' read -r name fw off <<<"$row"
    if [ "$total" = 0 ]; then
      printf 'demo\n' | "$bin/kvmgate" device add "$name" --kind nanokvm \
        --url "http://127.0.0.1:$((port + off))" --username admin --password-file - \
        --tags demo >/dev/null || { say "demo fleet: $name not added"; return 0; }
    fi
  done
  demo_on=1
  say "demo fleet: ${#demo_rows[@]} simulated NanoKVMs (firmware 2.4.x and 2.5.0) on ports $((port + 1))-$((port + ${#demo_rows[@]}))"
  demo_vnc_setup "$total"
}

# An Xvnc display with an xterm (a shell of the user running the stack), on
# loopback only, with VNC authentication: the vnc device "demo-vnc".
vnc_port=$((port + 3))
vnc_display=$((vnc_port % 400 + 100))
demo_vnc=""
demo_vnc_setup() {
  command -v Xvnc >/dev/null && command -v vncpasswd >/dev/null && command -v xterm >/dev/null ||
    { say "demo fleet: TigerVNC or xterm is not installed; no VNC demo"; return 0; }
  mkdir -p "$var/demo/vnc"
  if [ ! -s "$var/demo/vnc/passwd" ]; then
    head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$var/demo/vnc/password"
    vncpasswd -f <"$var/demo/vnc/password" >"$var/demo/vnc/passwd"
    chmod 600 "$var/demo/vnc/password" "$var/demo/vnc/passwd"
  fi
  if ! "$bin/kvmgate" device list --json | jq -e '.devices[] | select(.name == "demo-vnc")' >/dev/null; then
    [ "$1" = 0 ] || "$bin/kvmgate" device list --json | jq -e '.devices | length == 2' >/dev/null || return 0
    "$bin/kvmgate" device add demo-vnc --kind vnc --url "vnc://127.0.0.1:$vnc_port" \
      --password-file "$var/demo/vnc/password" --tags demo >/dev/null ||
      { say "demo fleet: demo-vnc not added"; return 0; }
  fi
  demo_vnc=1
  say "demo fleet: Xvnc display :$vnc_display with a terminal on port $vnc_port (device demo-vnc)"
}
start_demo_xvnc() {
  Xvnc ":$vnc_display" -geometry 1280x800 -depth 24 -rfbport "$vnc_port" -localhost \
    -nolisten tcp -AlwaysShared -SecurityTypes VncAuth -PasswordFile "$var/demo/vnc/passwd" \
    2>>"$(logto demo-xvnc)" &
  pid[demo-xvnc]=$!
}
start_demo_xterm() {
  local _
  for _ in $(seq 1 50); do [ -S "/tmp/.X11-unix/X$vnc_display" ] && break; sleep 0.1; done
  DISPLAY=:$vnc_display xterm -geometry 140x45+0+0 -fa '' -fn fixed -title "kvmgate demo" \
    -e "${SHELL:-/bin/sh}" 2>>"$(logto demo-xterm)" &
  pid[demo-xterm]=$!
}
demo_start() {
  local row name fw off
  row=${demo_rows[$1]}
  IFS='|' read -r name fw off <<<"$row"
  mkdir -p "$var/demo/$name"
  "$sim_nanokvm" --port $((port + off)) --firmware "$fw" --password demo \
    --state-dir "$var/demo/$name" 2>>"$(logto "$name")" &
  pid[$name]=$!
}
for i in "${!demo_rows[@]}"; do
  eval "start_$(cut -d'|' -f1 <<<"${demo_rows[$i]}" | tr - _)() { demo_start $i; }"
done

start_one() {
  started[$1]=$SECONDS
  "start_${1//-/_}"
}

render_nginx() {
  local user_line=""
  nginx=$(command -v nginx || echo /usr/sbin/nginx)
  [ -x "$nginx" ] || die "nginx is not installed (scripts/deps.sh run)"
  # As root, nginx workers would drop to 'nobody', who may not reach the sockets
  # under the var dir; they run as the invoking user, like the other processes.
  [ "$(id -u)" -eq 0 ] && user_line="user root;"
  "$top/scripts/render-nginx.sh" "$top/nginx" "$var" "$top/static" "$bind" "$port" \
    "unix:$KVMGATE_FCGI_LISTEN" "$max_body" "$user_line"
  "$nginx" -t -q -c "$var/nginx/kvmgate.conf" -p "$var/nginx" -e "$var/log/nginx-error.log" ||
    die "nginx refused the rendered configuration"
}

wait_healthy() {
  local i
  for i in $(seq 1 "${1:-300}"); do
    curl -fsS -o /dev/null --max-time 2 "$url/healthz" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

banner() {
  say "running: $url"
  say "  dashboard  $url/"
  say "  MCP        $url/mcp"
  say "  REST       $url/api/v1/"
  say "  health     $url/healthz   metrics $url/metrics"
  # The token goes to a person's terminal, never into a log file.
  if [ -t 2 ] || [ "${1:-}" = token ]; then
    [ -f "$var/admin-token" ] && say "  admin token ($var/admin-token): $(cat "$var/admin-token")"
  else
    say "  admin token in $var/admin-token"
  fi
  say "  logs       $var/log/"
}

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

shutdown() {
  trap '' INT TERM
  trap - EXIT
  say "stopping"
  local n
  for n in "${!pid[@]}"; do
    [ -n "${pid[$n]:-}" ] && kill -TERM "${pid[$n]}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ -n "${pgbin:-}" ]; then db_stop; fi
  rm -f "$pidfile"
  say "stopped"
}

# PostgreSQL up, migrations applied, and on first start the admin token made
# and printed once, to whoever started the stack.
setup() {
  if [ -z "${DATABASE_URL:-}" ]; then
    pg_init_vars
    pg_setup
    db_start
  fi
  "$bin/kvmgate" init | sed 's/^/kvmgate: /' >&2
}

cmd_run() {
  running && die "a stack already runs for $var (pid $(cat "$pidfile")); stop it first"
  for p in kvmgate-capture kvmgate-fcgi kvmgate; do
    [ -x "$bin/$p" ] || die "$bin/$p is missing; build with make"
  done
  echo $$ >"$pidfile"
  stopping=""
  trap shutdown EXIT
  trap 'stopping=1' INT TERM
  setup
  demo_setup
  [ "$with_nginx" = on ] && render_nginx
  if [ -n "$demo_on" ]; then
    for row in "${demo_rows[@]}"; do start_one "${row%%|*}"; done
  fi
  if [ -n "$demo_vnc" ]; then
    start_one demo-xvnc
    start_one demo-xterm
  fi
  start_one capture
  start_one fcgi
  if [ "$with_nginx" = on ]; then
    start_one nginx
    if wait_healthy 300; then banner; else say "not healthy yet; see $var/log/"; fi
  else
    say "running: capture worker and FastCGI on $KVMGATE_FCGI_LISTEN (nginx runs elsewhere)"
  fi

  while [ -z "$stopping" ]; do
    local dead="" name=""
    wait -n -p dead "${pid[@]}" 2>/dev/null || true
    [ -n "$stopping" ] && break
    [ -n "$dead" ] || continue
    for n in "${!pid[@]}"; do [ "${pid[$n]}" = "$dead" ] && name=$n; done
    [ -n "$name" ] || continue
    # Restart at once; a process that keeps dying within seconds backs off.
    if [ $((SECONDS - ${started[$name]})) -lt 5 ]; then
      fails[$name]=$(( ${fails[$name]:-0} + 1 ))
    else
      fails[$name]=0
    fi
    say "$name (pid $dead) exited; restarting"
    [ "${fails[$name]}" -gt 2 ] && sleep "$(( fails[$name] < 10 ? fails[$name] : 10 ))"
    [ -n "$stopping" ] && break
    start_one "$name"
  done
  shutdown
}

cmd_start() {
  running && { say "already running (pid $(cat "$pidfile"))"; banner token; return 0; }
  # Setup runs here, so a first start's token reaches this terminal, not the log.
  setup
  setsid "$0" run >"$var/log/stack.log" 2>&1 </dev/null &
  local child=$!
  for _ in $(seq 1 600); do
    if ! kill -0 "$child" 2>/dev/null; then
      tail -n 30 "$var/log/stack.log" >&2
      if [ -n "${pgbin:-}" ]; then db_stop; fi
      die "the stack did not start"
    fi
    if grep -q '^kvmgate: running:' "$var/log/stack.log" 2>/dev/null; then
      banner token
      return 0
    fi
    sleep 0.1
  done
  die "the stack did not become healthy in 60 s; see $var/log/"
}

cmd_stop() {
  if ! running; then
    say "not running ($var)"
    return 0
  fi
  local p
  p=$(cat "$pidfile")
  kill -TERM "$p"
  for _ in $(seq 1 600); do
    kill -0 "$p" 2>/dev/null || { say "stopped"; return 0; }
    sleep 0.1
  done
  die "pid $p did not stop in 60 s"
}

case "${1:-}" in
  run)      cmd_run ;;
  start)    cmd_start ;;
  stop)     cmd_stop ;;
  status)   if running; then say "running (pid $(cat "$pidfile")) at $url"; else say "not running"; exit 3; fi ;;
  db-stop)  pg_init_vars; db_stop ;;
  db-start) pg_init_vars; db_start ;;
  *) echo "usage: $0 run|start|stop|status|db-stop|db-start" >&2; exit 2 ;;
esac
