#!/usr/bin/env bash
# Several Posterr app servers behind nginx on one machine (loopback only), sharing one PostgreSQL
# and one Redis: what "more copies behind a load balancer" looks like without Docker.
#
#   scripts/cluster.sh run      start everything, stay in the foreground; Ctrl-C (or SIGTERM) stops
#                               it gracefully (nginx finishes its requests, gunicorn drains)
#   scripts/cluster.sh up       start everything and return (detached); `down` stops it
#   scripts/cluster.sh down     stop what `up`/`run` started from this cluster folder
#   scripts/cluster.sh status   say what runs
#   scripts/cluster.sh restart [PORT...]
#                               rolling restart of the instances on those ports (default: all), one at
#                               a time, without a failed request: nginx stops sending it requests
#                               first, then it drains and restarts, then nginx takes it back
#   scripts/cluster.sh render   write the nginx config from deploy/nginx.conf.template, print its path
#   scripts/cluster.sh nginx    print the nginx binary (installing the Debian package when missing)
#   scripts/cluster.sh compose  print the compose command, one word per line (docker compose, or
#                               docker-compose: Debian's package is installed when neither is there)
#
# Settings (environment):
#   POSTERR_CLUSTER_DIR        cluster folder: nginx prefix, config, pid and log files (.data/cluster)
#   POSTERR_CLUSTER_PORT       where nginx listens on 127.0.0.1 (5000)
#   POSTERR_CLUSTER_APP_PORTS  one gunicorn instance per port, on 127.0.0.1 ("5001 5002 5003")
#   WEB_CONCURRENCY            gunicorn workers per instance (2 here: three instances share the CPUs)
#   DATABASE_URL / REDIS_URL   the shared servers; unset: scripts/services.sh starts the local pair
#   POSTERR_SECRET_KEY         must be the same on every instance (cursors made by one are read by
#                              another); unset: a random key kept in the cluster folder
#   POSTERR_CLUSTER_DOWN_PORTS `render` marks these instances `down` (nginx sends them nothing)
# Everything the servers print goes to $POSTERR_CLUSTER_DIR/logs; this script's messages go to stderr.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${POSTERR_CLUSTER_DIR:-$root/.data/cluster}
case "$dir" in /*) ;; *) dir=$root/$dir ;; esac
listen_port=${POSTERR_CLUSTER_PORT:-5000}
read -r -a app_ports <<<"${POSTERR_CLUSTER_APP_PORTS:-5001 5002 5003}"
logs=$dir/logs
stop_deadline=40  # seconds: gunicorn's graceful_timeout (20) plus margin

say() { echo "cluster: $*" >&2; }
die() { echo "cluster: error: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# apt_install PACKAGE — as root on Debian/Ubuntu, with its output in the cluster folder's install.log
apt_install() {
  is_root && command -v apt-get >/dev/null 2>&1 \
    || die "$1 is not installed. Install the Debian/Ubuntu package '$1' (or your system's equivalent)."
  mkdir -p "$dir"
  say "installing $1 with apt-get (log: $dir/install.log)"
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$1"; } \
    >>"$dir/install.log" 2>&1 || die "apt-get install $1 failed; see $dir/install.log"
}

nginx_bin() {
  local found
  found=$(command -v nginx 2>/dev/null || true)
  [ -z "$found" ] && [ -x /usr/sbin/nginx ] && found=/usr/sbin/nginx
  if [ -z "$found" ]; then
    apt_install nginx
    found=/usr/sbin/nginx
  fi
  echo "$found"
}

# The compose tool, one word per line: Docker's plugin when it answers, else docker-compose (Debian's
# package, installed when missing). Both check a file with `config` without a Docker engine.
compose_tool() {
  if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    printf 'docker\ncompose\n'
    return
  fi
  command -v docker-compose >/dev/null 2>&1 || apt_install docker-compose
  command -v docker-compose
}

render() {
  [ "${#app_ports[@]}" -ge 1 ] || die "POSTERR_CLUSTER_APP_PORTS names no port"
  mkdir -p "$logs" "$dir/tmp"
  local servers="" port user_line="" down
  for port in "${app_ports[@]}"; do
    down=""
    case " ${POSTERR_CLUSTER_DOWN_PORTS:-} " in *" $port "*) down=" down" ;; esac
    servers+="        server 127.0.0.1:$port max_fails=2 fail_timeout=5s$down;"$'\n'
  done
  # As root, nginx's workers switch to an unprivileged user; they write no files (see the template).
  is_root && user_line="user nobody $(id -gn nobody 2>/dev/null || echo nobody);"
  awk -v dir="$dir" -v listen="127.0.0.1:$listen_port" -v servers="${servers%$'\n'}" -v user="$user_line" '
    $0 == "@UPSTREAM_SERVERS@" { print servers; next }
    $0 == "@USER@" { print user; next }
    { gsub(/@CLUSTER_DIR@/, dir); gsub(/@LISTEN@/, listen); print }
  ' "$root/deploy/nginx.conf.template" >"$dir/nginx.conf"
  echo "$dir/nginx.conf"
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# The pid in a pid file, if that process still runs and is ours (its command line has WORD), not
# another program that got the pid later.
live_pid() {  # live_pid FILE nginx|gunicorn
  local pid word
  [ -f "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null || true)
  case "$2" in nginx) word="$dir/nginx.conf" ;; *) word="posterr/gunicorn_conf.py" ;; esac
  alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$word" && echo "$pid"
}

wait_exit() {  # wait_exit PID SECONDS — true when the process is gone in time
  local deadline=$((SECONDS + $2))
  while alive "$1"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

healthy() {  # healthy PORT — /healthz answers 200
  "$root/.venv/bin/python" - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=1) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}

wait_healthy() {  # wait_healthy PORT PID LOG
  local deadline=$((SECONDS + 30))
  until healthy "$1"; do
    alive "$2" || { tail -n 20 "$3" >&2; die "the server for port $1 exited; see $3"; }
    [ "$SECONDS" -lt "$deadline" ] || die "port $1 did not answer /healthz within 30 s; see $3"
    sleep 0.1
  done
}

secret_key() {
  if [ -n "${POSTERR_SECRET_KEY:-}" ]; then echo "$POSTERR_SECRET_KEY"; return; fi
  if [ ! -s "$dir/secret_key" ]; then
    (umask 077 && "$root/.venv/bin/python" -c 'import secrets; print(secrets.token_hex(32))' >"$dir/secret_key")
  fi
  cat "$dir/secret_key"
}

running_anything() {
  local port
  live_pid "$dir/nginx.pid" nginx >/dev/null && return 0
  for port in "${app_ports[@]}"; do live_pid "$dir/app-$port.pid" gunicorn >/dev/null && return 0; done
  for f in "$dir"/app-*.pid; do [ -f "$f" ] && live_pid "$f" gunicorn >/dev/null && return 0; done
  return 1
}

up() {
  [ -x "$root/.venv/bin/gunicorn" ] || die "no .venv with gunicorn: run 'make venv' (or 'make cluster')"
  mkdir -p "$logs"
  running_anything && die "a cluster from $dir is already running; stop it with 'make cluster-down'"
  trap down EXIT  # a failed start leaves nothing running
  local nginx port pid
  nginx=$(nginx_bin)
  for port in "$listen_port" "${app_ports[@]}"; do
    port_busy "$port" && die "port $port is taken by another program: stop it, or choose other ports with POSTERR_CLUSTER_PORT / POSTERR_CLUSTER_APP_PORTS"
  done
  if [ -z "${DATABASE_URL:-}" ] || [ -z "${REDIS_URL:-}" ]; then
    eval "$("$root/scripts/services.sh" up)"
  fi
  for port in "${app_ports[@]}"; do start_instance "$port"; done
  for port in "${app_ports[@]}"; do
    wait_healthy "$port" "$(cat "$dir/app-$port.pid")" "$logs/app-$port.log"
  done
  render >/dev/null
  "$nginx" -t -p "$dir/" -c "$dir/nginx.conf" -e "$logs/nginx-error.log" >>"$logs/nginx-start.log" 2>&1 \
    || { tail -n 5 "$logs/nginx-start.log" >&2; die "nginx rejected $dir/nginx.conf; see $logs/nginx-start.log"; }
  say "starting nginx on 127.0.0.1:$listen_port (logs: $logs/nginx-*.log)"
  "$nginx" -p "$dir/" -c "$dir/nginx.conf" -e "$logs/nginx-error.log" >>"$logs/nginx-start.log" 2>&1 \
    || { tail -n 5 "$logs/nginx-start.log" >&2; die "nginx did not start; see $logs/nginx-start.log"; }
  pid=$(live_pid "$dir/nginx.pid" nginx) || die "nginx did not start; see $logs/nginx-error.log"
  wait_healthy "$listen_port" "$pid" "$logs/nginx-error.log"
  trap - EXIT
  say "serving on http://127.0.0.1:$listen_port: nginx → ${#app_ports[*]} gunicorn instances (ports ${app_ports[*]})"
}

stop_pid() {  # stop_pid PID SIGNAL NAME
  kill "-$2" "$1" 2>/dev/null || return 0
  wait_exit "$1" "$stop_deadline" && return 0
  say "$3 (pid $1) did not stop within ${stop_deadline} s; killing it"
  kill -KILL "$1" 2>/dev/null || true
  wait_exit "$1" 5 || true
}

down() {
  local pid f pids=()
  # nginx first, gracefully (QUIT: it finishes the requests it holds), then the instances (TERM:
  # gunicorn stops accepting, finishes in-flight requests, then exits), all at once.
  if pid=$(live_pid "$dir/nginx.pid" nginx); then
    say "stopping nginx (pid $pid)"
    stop_pid "$pid" QUIT nginx
  fi
  rm -f "$dir/nginx.pid"
  for f in "$dir"/app-*.pid; do
    [ -f "$f" ] || continue
    if pid=$(live_pid "$f" gunicorn); then
      say "stopping gunicorn on port $(basename "$f" .pid | cut -d- -f2) (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
    rm -f "$f"
  done
  for pid in "${pids[@]}"; do
    wait_exit "$pid" "$stop_deadline" || { say "gunicorn (pid $pid) did not stop in time; killing it"; kill -KILL "$pid" 2>/dev/null || true; }
  done
}

status() {
  local pid port
  if pid=$(live_pid "$dir/nginx.pid" nginx); then say "nginx: running (pid $pid) on port $listen_port"; else say "nginx: stopped"; fi
  for port in "${app_ports[@]}"; do
    if pid=$(live_pid "$dir/app-$port.pid" gunicorn); then say "gunicorn: running (pid $pid) on port $port"
    else say "gunicorn on port $port: stopped"; fi
  done
}

nginx_workers() {  # the pids of the worker processes of nginx's master ($master_pid)
  local stat line fields
  for stat in /proc/[0-9]*/stat; do
    { line=$(<"$stat"); } 2>/dev/null || continue  # gone meanwhile
    read -r -a fields <<<"${line##*) }"  # state, ppid, ...
    [ "${fields[1]}" = "$master_pid" ] && [ "${fields[0]}" != Z ] && echo "${stat//[^0-9]/}"
  done
  return 0
}

# Load a new config: nginx starts new workers and lets the old ones finish their requests; done when
# no old worker is left, so from then on every request follows the new config.
reload_nginx() {  # reload_nginx NGINX
  local old new deadline=$((SECONDS + stop_deadline))
  master_pid=$(live_pid "$dir/nginx.pid" nginx) || die "nginx from $dir is not running"
  old=$(nginx_workers | sort)
  "$1" -p "$dir/" -c "$dir/nginx.conf" -e "$logs/nginx-error.log" -s reload >>"$logs/nginx-start.log" 2>&1 \
    || die "nginx did not reload; see $logs/nginx-error.log"
  while :; do
    new=$(nginx_workers | sort)
    [ -n "$new" ] && [ -z "$(comm -12 <(echo "$old") <(echo "$new"))" ] && return 0
    [ "$SECONDS" -lt "$deadline" ] || die "nginx's old workers did not exit within ${stop_deadline} s"
    sleep 0.05
  done
}

start_instance() {  # start_instance PORT
  local port=$1 key
  key=$(secret_key)
  say "starting gunicorn on 127.0.0.1:$port (log: $logs/app-$port.log)"
  # setsid: a terminal's Ctrl-C reaches this script only, which then stops the servers gracefully.
  ( cd "$root" && HOST=127.0.0.1 PORT=$port WEB_CONCURRENCY=${WEB_CONCURRENCY:-2} POSTERR_SECRET_KEY=$key \
      DATABASE_URL=$DATABASE_URL REDIS_URL=$REDIS_URL \
      POSTERR_TRUSTED_PROXIES=${POSTERR_TRUSTED_PROXIES:-127.0.0.1} POSTERR_AUTH=${POSTERR_AUTH:-required} \
      exec setsid "$root/.venv/bin/gunicorn" -c posterr/gunicorn_conf.py ) \
    </dev/null >>"$logs/app-$port.log" 2>&1 &
  echo $! >"$dir/app-$port.pid"
}

restart() {
  local nginx port pid ports=("$@")
  [ "${#ports[@]}" -gt 0 ] || ports=("${app_ports[@]}")
  nginx=$(nginx_bin)
  live_pid "$dir/nginx.pid" nginx >/dev/null || die "no cluster runs from $dir ('make cluster' starts one)"
  if [ -z "${DATABASE_URL:-}" ] || [ -z "${REDIS_URL:-}" ]; then
    eval "$("$root/scripts/services.sh" up 2>/dev/null)"
  fi
  for port in "${ports[@]}"; do
    case " ${app_ports[*]} " in *" $port "*) ;; *) die "port $port is not one of the instances (${app_ports[*]})" ;; esac
    say "restarting the instance on port $port: out of nginx, drain, start, back into nginx"
    POSTERR_CLUSTER_DOWN_PORTS=$port render >/dev/null
    reload_nginx "$nginx"
    if pid=$(live_pid "$dir/app-$port.pid" gunicorn); then
      kill -TERM "$pid"
      wait_exit "$pid" "$stop_deadline" || { say "gunicorn (pid $pid) did not drain in time; killing it"; kill -KILL "$pid" 2>/dev/null || true; }
    fi
    start_instance "$port"
    wait_healthy "$port" "$(cat "$dir/app-$port.pid")" "$logs/app-$port.log"
    render >/dev/null
    reload_nginx "$nginx"
  done
  say "restarted: ${ports[*]}"
}

run() {
  up
  trap down EXIT
  trap 'say "stopping"; exit 0' INT TERM
  say "Ctrl-C stops the cluster (the databases keep running: 'make services-down' stops the local ones, 'make ha-down' everything 'make ha' started)"
  local pid
  pid=$(live_pid "$dir/nginx.pid" nginx)
  while alive "$pid"; do
    sleep 1 &
    wait $! || true
  done
  say "nginx exited; see $logs/nginx-error.log"
  exit 1
}

cmd=${1:-run}
case "$cmd" in
  run) run ;;
  up) up ;;
  down) down ;;
  status) status ;;
  restart) shift; restart "$@" ;;
  render) render ;;
  nginx) nginx_bin ;;
  compose) compose_tool ;;
  *) die "unknown command '$cmd' (run, up, down, status, restart, render, nginx, compose)" ;;
esac
