#!/usr/bin/env bash
# PostgreSQL that fails over by itself, on loopback: three PostgreSQL members under Patroni (one
# primary, two streaming replicas, synchronous replication), with etcd as Patroni's store.
#
#   scripts/ha.sh up           start etcd and the members (the cluster is made on first use), wait for a
#                              primary and two streaming replicas, create the database and apply the
#                              migrations; print the `export DATABASE_URL=… DATABASE_REPLICA_URLS=…` lines
#   scripts/ha.sh down         stop the members (each Patroni stops its PostgreSQL), then etcd
#   scripts/ha.sh status       `patronictl list`: members, role, state, timeline, lag
#   scripts/ha.sh primary      the port of the current primary (none: exit 1)
#   scripts/ha.sh members      every member's PostgreSQL port
#   scripts/ha.sh kill-primary SIGKILL the primary's postmaster (Patroni restarts it or fails over)
#   scripts/ha.sh switchover   a planned switchover to a synchronous standby (`patronictl switchover`)
#   scripts/ha.sh stop-member PORT | start-member PORT
#                              stop one member's Patroni (and so its PostgreSQL), start it again
#   scripts/ha.sh wait-ready   wait until there is a primary, every member runs and one is its synchronous standby
#   scripts/ha.sh freeze-primary | thaw-member PORT
#                              SIGSTOP the primary's Patroni (its PostgreSQL goes on: a primary cut off from
#                              etcd), print its port; SIGCONT it again
#   scripts/ha.sh cut-standbys SIGSTOP the primary's WAL senders (it goes on, cut off from its standbys:
#                              its commits wait for one, and none gets their WAL), print the primary's port
#   scripts/ha.sh lose-primary PORT
#                              the cut primary on PORT lost: its Patroni SIGSTOPped and its PostgreSQL stopped
#                              (immediate; PostgreSQL SIGKILLs the stopped WAL senders after 5 s), so a standby
#                              without its last commits is promoted; `thaw-member PORT` then makes it rejoin,
#                              rewound
#   scripts/ha.sh reset        stop everything and delete the cluster's data (the next `up` makes a new one)
#   scripts/ha.sh patronictl ARGS...
#                              patronictl with this cluster's configuration
#
# Settings (environment):
#   POSTERR_HA_DIR         the cluster's folder: configuration, data, logs (.data/ha)
#   POSTERR_HA_PG_PORTS    one PostgreSQL member per port ("25431 25432 25433")
#   POSTERR_HA_API_PORTS   each member's Patroni REST API, in the same order ("25441 25442 25443")
#   POSTERR_HA_ETCD_PORT   etcd's client port (25450; its peer port is the next one)
#   POSTERR_HA_TTL         Patroni's leader key time to live, in seconds (10; loop_wait is 2, retry_timeout 3)
# As root, Patroni and PostgreSQL run as the `postgres` OS user. Patroni, etcd and PostgreSQL 15 come
# from Debian's packages (patroni, etcd-server, postgresql); as root they are installed when missing.
# Everything the servers print goes to $POSTERR_HA_DIR/logs; this script's messages go to stderr, so
# stdout carries only the `export` lines.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${POSTERR_HA_DIR:-$root/.data/ha}
case "$dir" in /*) ;; *) dir=$root/$dir ;; esac
read -r -a pg_ports <<<"${POSTERR_HA_PG_PORTS:-25431 25432 25433}"
read -r -a api_ports <<<"${POSTERR_HA_API_PORTS:-25441 25442 25443}"
etcd_port=${POSTERR_HA_ETCD_PORT:-25450}
ttl=${POSTERR_HA_TTL:-10}
scope=posterr
logs=$dir/logs
database=posterr

say() { echo "ha: $*" >&2; }
die() { echo "ha: error: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
# Running, not a zombie (a Patroni that has exited but whose parent, runuser, has not reaped it yet).
running() { alive "$1" && ! grep -q '^[^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

[ "${#pg_ports[@]}" = "${#api_ports[@]}" ] || die "POSTERR_HA_PG_PORTS and POSTERR_HA_API_PORTS must name as many ports"

# PostgreSQL's files must be reachable by the postgres OS user; when the checkout is not (a private
# home folder), they live in a folder of their own under /tmp, named after this cluster's folder.
pg_home=$dir
if is_root; then
  mkdir -p "$dir"
  if id postgres >/dev/null 2>&1 && ! runuser -u postgres -- test -x "$dir"; then
    pg_home=/tmp/posterr-ha-$(printf %s "$dir" | cksum | cut -d' ' -f1)
  fi
fi
# A Unix socket's path must fit in 107 bytes.
socket_dir=$pg_home/run
[ $((${#socket_dir} + 21)) -le 107 ] || socket_dir=/tmp/posterr-ha-run-$(printf %s "$dir" | cksum | cut -d' ' -f1)

as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

install_missing() {  # install_missing COMMAND PACKAGE...
  command -v "$1" >/dev/null 2>&1 && return 0
  local command=$1; shift
  if is_root && command -v apt-get >/dev/null 2>&1; then
    mkdir -p "$logs"
    say "installing $* with apt-get (log: $logs/install.log)"
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"; } \
      >>"$logs/install.log" 2>&1 || die "apt-get install $* failed; see $logs/install.log"
  else
    die "$command is not installed: install the Debian/Ubuntu package(s) $* (or your system's equivalent)"
  fi
}

pg_bindir() {
  local found
  for found in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$found/initdb" ] && { echo "$found"; return; }
  done
  return 1
}

member_dir() { echo "$pg_home/member-$1"; }
config_of() { echo "$(member_dir "$1")/patroni.yml"; }

# The pid of the Patroni process serving this member's configuration, if it runs.
patroni_pid() {  # patroni_pid PG_PORT
  local config cmdline
  config=$(config_of "$1")
  for cmdline in /proc/[0-9]*/cmdline; do
    { tr '\0' ' ' <"$cmdline"; } 2>/dev/null | grep -q "^[^ ]*python[^ ]* [^ ]*patroni $config " \
      && { cmdline=${cmdline%/cmdline}; echo "${cmdline#/proc/}"; return 0; }
  done
  return 1
}

etcd_pid() {
  local pid
  pid=$(cat "$dir/etcd.pid" 2>/dev/null) || return 1
  alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--data-dir $dir/etcd" && echo "$pid"
}

etcd_up() {
  install_missing etcd etcd-server
  etcd_pid >/dev/null && return 0
  port_busy "$etcd_port" && die "port $etcd_port is taken by another program: choose another with POSTERR_HA_ETCD_PORT"
  mkdir -p "$logs" "$dir/etcd"
  say "starting etcd on 127.0.0.1:$etcd_port (log: $logs/etcd.log)"
  local peer=http://127.0.0.1:$((etcd_port + 1)) client=http://127.0.0.1:$etcd_port
  setsid etcd --name posterr-ha --data-dir "$dir/etcd" --enable-v2 --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" --initial-cluster "posterr-ha=$peer" \
    </dev/null >>"$logs/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  local deadline=$((SECONDS + 30))
  until http_ok "$client/health"; do
    alive "$(cat "$dir/etcd.pid")" || { tail -n 5 "$logs/etcd.log" >&2; die "etcd exited; see $logs/etcd.log"; }
    [ "$SECONDS" -lt "$deadline" ] || die "etcd did not answer within 30 s; see $logs/etcd.log"
    sleep 0.1
  done
}

http_ok() {  # http_ok URL — a 200 within a second
  python3 - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=1) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}

write_config() {  # write_config INDEX — deploy/patroni.yml with this member's own settings laid over it
  local i=$1 port=${pg_ports[$1]} api=${api_ports[$1]} bindir member
  bindir=$(pg_bindir) || { install_missing initdb postgresql; bindir=$(pg_bindir); }
  member=$(member_dir "$port")
  mkdir -p "$member" "$socket_dir"
  cat >"$member/patroni-member.yml" <<YAML
name: member-$port
restapi:
  listen: 127.0.0.1:$api
  connect_address: 127.0.0.1:$api
etcd:
  hosts: 127.0.0.1:$etcd_port
bootstrap:
  dcs:
    ttl: $ttl
postgresql:
  listen: 127.0.0.1:$port
  connect_address: 127.0.0.1:$port
  data_dir: $member/data
  bin_dir: $bindir
  pgpass: $member/pgpass
  parameters:
    unix_socket_directories: $socket_dir
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
YAML
  { echo "# Written by scripts/ha.sh: member $((i + 1)) of the Patroni cluster '$scope', deploy/patroni.yml with"
    echo "# $member/patroni-member.yml laid over it."
    "$(patroni_python)" - "$root/deploy/patroni.yml" "$member/patroni-member.yml" <<'PY'
import sys, yaml

def laid_over(base, top):
    if isinstance(base, dict) and isinstance(top, dict):
        return {**base, **{key: laid_over(base.get(key), value) for key, value in top.items()}}
    return top

with open(sys.argv[1]) as base, open(sys.argv[2]) as top:
    print(yaml.safe_dump(laid_over(yaml.safe_load(base), yaml.safe_load(top)), sort_keys=False), end="")
PY
  } >"$(config_of "$port")" || die "could not write $(config_of "$port")"
  is_root && chown -R postgres: "$member" "$socket_dir"
  chmod 755 "$socket_dir"
  return 0
}

# The Python that runs Patroni has PyYAML (Patroni needs it), whichever python3 comes first in PATH.
patroni_python() { sed -n '1s/^#! *//p' "$(command -v patroni)" | cut -d' ' -f1; }

member_up() {  # member_up INDEX
  local port=${pg_ports[$1]} api=${api_ports[$1]}
  install_missing patroni patroni
  patroni_pid "$port" >/dev/null && return 0
  for p in "$port" "$api"; do
    port_busy "$p" && die "port $p is taken by another program: choose others with POSTERR_HA_PG_PORTS / POSTERR_HA_API_PORTS"
  done
  write_config "$1"
  mkdir -p "$logs"; touch "$logs/patroni-$port.log"
  is_root && chown postgres: "$logs/patroni-$port.log"
  say "starting Patroni for PostgreSQL on port $port (REST API $api; log: $logs/patroni-$port.log)"
  local as_postgres=()
  is_root && as_postgres=(runuser -u postgres --)  # PostgreSQL refuses to run as root
  # setsid: a terminal's Ctrl-C does not reach the members; `down` stops them.
  ( cd / && exec setsid "${as_postgres[@]}" patroni "$(config_of "$port")" ) </dev/null >>"$logs/patroni-$port.log" 2>&1 &
}

member_status() {  # member_status API_PORT — the member's role and state from its REST API, as JSON
  python3 - "$1" <<'PY' 2>/dev/null
import json, sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/patroni", timeout=1) as r:
        print(r.read().decode())
except urllib.error.HTTPError as e:  # 503 from a member that is not running PostgreSQL yet
    print(e.read().decode())
PY
}

primary_port() {  # the PostgreSQL port of the member whose REST API says it is the primary
  local i
  for i in "${!api_ports[@]}"; do
    http_ok "http://127.0.0.1:${api_ports[$i]}/primary" && { echo "${pg_ports[$i]}"; return 0; }
  done
  return 1
}

# Wait until the cluster, as Patroni's REST API reports it (/cluster, from any member), has a running
# leader, every other member running as its replica, and a synchronous standby.
wait_ready() {
  say "waiting for a primary, $((${#pg_ports[@]} - 1)) streaming replicas and a synchronous standby"
  python3 - "${POSTERR_HA_START_SECONDS:-120}" "${#pg_ports[@]}" "${api_ports[@]}" <<'PY' \
    || die "the cluster was not ready in time; see $logs/patroni-*.log and 'scripts/ha.sh status'"
import json, sys, time, urllib.request
seconds, members, apis = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    for api in apis:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api}/cluster", timeout=1) as answer:
                found = json.load(answer)["members"]
        except (OSError, ValueError, KeyError):
            continue
        running = [m for m in found if m.get("state") in ("running", "streaming")]
        roles = sorted(m["role"] for m in running)
        if len(running) == members and roles.count("leader") == 1 and "sync_standby" in roles:
            sys.exit(0)
        break
    time.sleep(0.2)
sys.exit(1)
PY
}

migrate() {
  local primary url
  primary=$(primary_port) || die "no primary"
  psql -X -q -h 127.0.0.1 -p "$primary" -U posterr -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'" \
    | grep -q 1 || psql -X -q -h 127.0.0.1 -p "$primary" -U posterr -d postgres -c "CREATE DATABASE $database" >/dev/null
  [ -x "$root/.venv/bin/dbmate" ] || die "no .venv with dbmate: run 'make venv' (or 'make ha')"
  url="postgres://posterr@127.0.0.1:$primary/$database?sslmode=disable"
  "$root/.venv/bin/dbmate" --url "$url" --migrations-dir "$root/db/migrations" --no-dump-schema --wait up \
    >>"$logs/migrate.log" 2>&1 || die "the migrations failed; see $logs/migrate.log"
}

urls() {
  local hosts="" port replicas=""
  for port in "${pg_ports[@]}"; do
    hosts+="127.0.0.1:$port,"
    replicas+="postgres://posterr@127.0.0.1:$port/$database?sslmode=disable&target_session_attrs=standby,"
  done
  # libpq tries the hosts in turn and keeps the one that takes writes: after a fail-over, new
  # connections find the new primary. Each member also serves reads while it is a standby.
  echo "export DATABASE_URL='postgres://posterr@${hosts%,}/$database?sslmode=disable&target_session_attrs=read-write'"
  echo "export DATABASE_REPLICA_URLS='${replicas%,}'"
}

up() {
  install_missing psql postgresql-client
  etcd_up
  local i
  for i in "${!pg_ports[@]}"; do member_up "$i"; done
  wait_ready
  migrate
  say "primary on port $(primary_port); 'scripts/ha.sh status' shows the members"
  urls
}

stop_patroni() {  # stop_patroni PG_PORT
  local pid deadline
  pid=$(patroni_pid "$1") || return 0
  say "stopping Patroni and PostgreSQL on port $1"
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$((SECONDS + 60))
  while running "$pid"; do
    [ "$SECONDS" -lt "$deadline" ] || { say "Patroni (pid $pid) did not stop in 60 s; killing it"; kill -KILL "$pid"; break; }
    sleep 0.1
  done
}

down() {
  local port pid primary
  resume_senders  # a WAL sender left stopped (cut-standbys) would hold its member's shutdown
  # The replicas first: a primary stopped before them hands its leader key over, and one of them
  # would be promoted on the way down.
  primary=$(primary_port) || primary=""
  for port in "${pg_ports[@]}"; do [ "$port" = "$primary" ] || stop_patroni "$port" & done
  wait
  [ -z "$primary" ] || stop_patroni "$primary"
  if pid=$(etcd_pid); then
    say "stopping etcd"
    kill -TERM "$pid"
    while alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$dir/etcd.pid"
}

patronictl_here() {
  local port=${pg_ports[0]}
  [ -f "$(config_of "$port")" ] || die "no cluster was made in $dir ('scripts/ha.sh up' makes one)"
  patronictl -c "$(config_of "$port")" "$@"
}

kill_primary() {
  local port pid
  port=$(primary_port) || die "no primary to kill"
  pid=$(head -n 1 "$(member_dir "$port")/data/postmaster.pid" 2>/dev/null) || die "no postmaster.pid for port $port"
  say "SIGKILL to the primary's postmaster (port $port, pid $pid)"
  kill -KILL "$pid"
  echo "$port"
}

switchover() {
  local leader
  leader=$(primary_port) || die "no primary to switch over from"
  patronictl_here switchover --leader "member-$leader" --force "$scope" >>"$logs/switchover.log" 2>&1 \
    || { tail -n 5 "$logs/switchover.log" >&2; die "the switchover failed; see $logs/switchover.log"; }
  say "switched over from port $leader"
}

freeze_primary() {
  local port pid
  port=$(primary_port) || die "no primary to freeze"
  pid=$(patroni_pid "$port") || die "no Patroni for port $port"
  kill -STOP "$pid"
  say "SIGSTOP to the Patroni of the primary on port $port (pid $pid); its PostgreSQL goes on"
  echo "$port"
}

thaw_member() {  # thaw_member PG_PORT
  local pid parent
  pid=$(patroni_pid "$1") || die "no Patroni for port $1"
  kill -CONT "$pid"
  # runuser, like su, stops itself when its child stops (job control): continue it too, or it would
  # never reap Patroni once it exits.
  parent=$(awk '{print $4}' "/proc/$pid/stat" 2>/dev/null || true)
  if [ -n "$parent" ] && tr '\0' ' ' <"/proc/$parent/cmdline" 2>/dev/null | grep -q '^runuser '; then
    kill -CONT "$parent"
  fi
}

postmaster_of() {  # postmaster_of PG_PORT — the pid of the member's running postmaster
  local pid
  pid=$(head -n 1 "$(member_dir "$1")/data/postmaster.pid" 2>/dev/null) && alive "$pid" && echo "$pid"
}

wal_senders() {  # the pids of every member's WAL senders (only a primary has some)
  local port pid
  for port in "${pg_ports[@]}"; do
    pid=$(postmaster_of "$port") || continue
    pgrep -P "$pid" -f walsender || true
  done
}

cut_standbys() {
  local port pids
  port=$(primary_port) || die "no primary to cut off"
  pids=$(wal_senders)
  [ -n "$pids" ] || die "no WAL sender to stop"
  # A stopped WAL sender sends nothing: stopping the receivers instead leaves the WAL in their
  # sockets' buffers, read as soon as they go on, and no commit would be lost.
  # shellcheck disable=SC2086
  kill -STOP $pids
  say "SIGSTOP to the WAL senders (pids $(echo $pids)): the primary on port $port is cut off from its standbys"
  echo "$port"
}

resume_senders() {
  local pids
  pids=$(wal_senders)
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -CONT $pids
}

lose_primary() {  # lose_primary PG_PORT
  local pid
  pid=$(patroni_pid "$1") || die "no Patroni for port $1"
  kill -STOP "$pid"
  as_pg "$(pg_bindir)/pg_ctl" -D "$(member_dir "$1")/data" stop -m immediate >>"$logs/lose-primary.log" 2>&1 \
    || die "could not stop PostgreSQL on port $1; see $logs/lose-primary.log"
  say "Patroni of port $1 SIGSTOPped, its PostgreSQL stopped with its WAL senders still stopped"
}

reset() {
  down
  local port
  for port in "${pg_ports[@]}"; do rm -rf "$(member_dir "$port")"; done
  rm -rf "$dir/etcd"
  say "deleted the cluster's data"
}

index_of() {  # index_of PG_PORT
  local i
  for i in "${!pg_ports[@]}"; do [ "${pg_ports[$i]}" = "$1" ] && { echo "$i"; return 0; }; done
  die "port $1 is not a member (${pg_ports[*]})"
}

cmd=${1:-up}
case "$cmd" in
  up) up ;;
  down) down ;;
  status) patronictl_here list ;;
  primary) primary_port ;;
  members) echo "${pg_ports[*]}" ;;
  kill-primary) kill_primary ;;
  switchover) switchover ;;
  stop-member) stop_patroni "${2:?stop-member needs the PostgreSQL port of a member}" ;;
  start-member) member_up "$(index_of "${2:?start-member needs the PostgreSQL port of a member}")" ;;
  wait-ready) wait_ready ;;
  freeze-primary) freeze_primary ;;
  thaw-member) thaw_member "${2:?thaw-member needs the PostgreSQL port of a member}" ;;
  cut-standbys) cut_standbys ;;
  lose-primary) lose_primary "${2:?lose-primary needs the PostgreSQL port of the cut primary}" ;;
  reset) reset ;;
  patronictl) shift; patronictl_here "$@" ;;
  *) die "unknown command '$cmd' (up, down, status, primary, members, kill-primary, switchover, wait-ready, freeze-primary, thaw-member PORT, reset, stop-member PORT, start-member PORT, patronictl ARGS)" ;;
esac
