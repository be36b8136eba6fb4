#!/usr/bin/env bash
# Project-local PostgreSQL and Redis for development and tests.
#
#   scripts/services.sh up        start what is not configured, print `export` lines for the caller
#   scripts/services.sh down      stop what this data folder started
#   scripts/services.sh status    say what runs
#   scripts/services.sh stop-redis | start-redis | stop-postgres | start-postgres | restart-postgres
#                                 (the fault tests drive their own servers with these)
#   scripts/services.sh freeze-redis | thaw-redis | pause-redis MS [all|write] | unpause-redis
#                       | flush-redis | restart-redis | cap-redis BYTES | crash-postgres
#                                 more faults, for `make soak`: SIGSTOP/SIGCONT of Redis, CLIENT PAUSE
#                                 for MS milliseconds (of every command, or of writes), CLIENT UNPAUSE,
#                                 FLUSHALL, stop+start, maxmemory (writes refused
#                                 with OOM errors above it; 0 lifts it); pg_ctl -m immediate stop
#   scripts/services.sh replica-up    a streaming replica of the local PostgreSQL (pg_basebackup -R on
#                                 first use), started; prints the `export DATABASE_REPLICA_URLS` line
#   scripts/services.sh replica-down | replica-pause | replica-resume
#                                 stop it; stop and resume its WAL replay (a replica falling behind)
#   scripts/services.sh redis-cluster-up   a 3-master Redis Cluster on loopback (created on first use);
#                                 prints the `export REDIS_URL` line naming its first node
#   scripts/services.sh redis-cluster-down | redis-cluster-kill PORT | redis-cluster-start PORT
#                                 stop it; SIGKILL one master (its slots go dark); start it again
#   With POSTERR_REDIS_TOPOLOGY=cluster the Redis faults above strike every master of the cluster.
#
# DATABASE_URL / REDIS_URL, when set, name servers of your own: nothing is started for them.
# POSTERR_DATA_DIR (default .data), POSTERR_PG_PORT (54329) and POSTERR_REDIS_PORT (63799) choose
# where the local servers live, so the test suite can own a second pair beside `make run`'s.
# POSTERR_REPLICA_PG_PORT (the primary's port + 1) is the replica's; POSTERR_REPLICA_APPLY_DELAY
# (e.g. 2s; default 0) makes it apply each commit that long after the primary (recovery_min_apply_delay).
# POSTERR_REDIS_CLUSTER_PORTS ("7001 7002 7003" by default) are the Redis Cluster's masters (each also
# listens on its port + 100 for the cluster bus). POSTERR_REDIS_CLUSTER_ANNOUNCED_PORTS, one per master
# in the same order, are the ports the masters tell clients instead of their own (cluster-announce-port:
# proxies in front of them, as `make soak` puts there).
# Everything the servers print goes to log files in the data folder; this script's own messages
# go to stderr, so stdout carries only the `export` lines.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
data=${POSTERR_DATA_DIR:-$root/.data}
case "$data" in /*) ;; *) data=$root/$data ;; esac
pg_port=${POSTERR_PG_PORT:-54329}
redis_port=${POSTERR_REDIS_PORT:-63799}

# PostgreSQL runs as the postgres OS user when we are root. If that user cannot reach the data
# folder (a checkout under a private home folder), PostgreSQL's files live in a folder of their own
# under /tmp, named after the data folder so that every command finds the same one.
pg_home=$data
if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1; then
  mkdir -p "$data"
  if ! runuser -u postgres -- test -x "$data"; then
    pg_home=/tmp/posterr-pg-$(printf %s "$data" | cksum | cut -d' ' -f1)
    mkdir -p "$pg_home" && chmod 755 "$pg_home"
  fi
fi
pg_dir=$pg_home/postgres
pg_run=$pg_home/postgres-run
# A Unix socket's path must fit in 107 bytes (".s.PGSQL.<port>.lock" included): under a deep
# checkout the socket gets a short folder of its own under /tmp instead.
if [ $((${#pg_run} + 21)) -gt 107 ]; then
  pg_run=/tmp/posterr-pg-run-$(printf %s "$data" | cksum | cut -d' ' -f1)
fi
pg_log=$pg_home/postgres.log
replica_port=${POSTERR_REPLICA_PG_PORT:-$((pg_port + 1))}
replica_dir=$pg_home/postgres-replica
replica_log=$pg_home/postgres-replica.log
replica_slot=posterr_replica
redis_dir=$data/redis
read -r -a cluster_ports <<<"${POSTERR_REDIS_CLUSTER_PORTS:-7001 7002 7003}"
read -r -a announced_ports <<<"${POSTERR_REDIS_CLUSTER_ANNOUNCED_PORTS:-}"

say() { echo "services: $*" >&2; }
die() { echo "services: error: $*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {  # apt_install PACKAGE... — only as root on Debian/Ubuntu, output to a log file
  if is_root && command -v apt-get >/dev/null 2>&1; then
    mkdir -p "$data"
    say "installing $* with apt-get (log: $data/install.log)"
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"; } >>"$data/install.log" 2>&1 \
      || die "apt-get install $* failed; see $data/install.log"
  else
    die "$1 is not installed. Install the Debian/Ubuntu package '$*' (or your system's equivalent), or set ${2:-the URL} to a server of your own."
  fi
}

pg_bindir() {
  local dir
  if command -v pg_config >/dev/null 2>&1; then
    dir=$(pg_config --bindir 2>/dev/null || true)
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  done
  return 1
}

# Run a PostgreSQL binary: as the `postgres` OS user when we are root (PostgreSQL refuses root).
as_pg() {
  if is_root; then
    id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' OS user (useradd --system postgres)"
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

server_running() { [ -f "$1/PG_VERSION" ] && as_pg "$bindir/pg_ctl" -D "$1" status >/dev/null 2>&1; }
pg_running() { server_running "$pg_dir"; }

# pg_start WHAT DIR PORT LOG PORT_SETTING [SERVER_OPTIONS]: start the primary or the replica, with
# pg_stat_statements loaded (what `python -m posterr top` reads; given at each start, so a data folder
# made before it was added gets it too).
pg_start() {
  local what=$1 dir=$2 port=$3 log=$4
  if server_running "$dir"; then
    say "$what already running on port $port"
    return
  fi
  port_busy "$port" && die "port $port is taken by another program: stop it, or choose another port with $5"
  mkdir -p "$pg_run"; touch "$log"
  is_root && chown postgres: "$pg_run" "$log"
  say "starting $what on port $port (log: $log)"
  as_pg "$bindir/pg_ctl" -D "$dir" -l "$log" \
    -o "-p $port -k $pg_run -c shared_preload_libraries=pg_stat_statements ${6:-}" -w -t 60 start >/dev/null \
    || die "$what did not start; see $log"
}

pg_stop() {  # pg_stop WHAT DIR PORT
  bindir=$(pg_bindir) || return 0
  if server_running "$2"; then
    say "stopping $1 on port $3"
    as_pg "$bindir/pg_ctl" -D "$2" -m fast -w stop >/dev/null
  fi
}

postgres_up() {
  bindir=$(pg_bindir) || { apt_install postgresql DATABASE_URL; bindir=$(pg_bindir) || die "PostgreSQL installed but initdb not found"; }
  mkdir -p "$data"
  if [ ! -f "$pg_dir/PG_VERSION" ]; then
    say "initialising PostgreSQL in $pg_dir (log: $pg_log)"
    mkdir -p "$pg_dir" "$pg_run"; touch "$pg_log"
    is_root && chown postgres: "$pg_dir" "$pg_run" "$pg_log"
    is_root && ! runuser -u postgres -- test -x "$pg_dir" \
      && die "the postgres OS user cannot reach $pg_dir: make its parent folders world-executable (chmod o+x) or set DATABASE_URL"
    as_pg "$bindir/initdb" -D "$pg_dir" -U posterr --auth=trust -E UTF8 --locale=C.UTF-8 >>"$pg_log" 2>&1 \
      || die "initdb failed; see $pg_log"
    cat >>"$pg_dir/postgresql.conf" <<CONF
# posterr: a local server (port and socket folder are given at each start)
listen_addresses = '127.0.0.1'
max_connections = 200
shared_buffers = 256MB
CONF
    [ -n "${POSTERR_PG_EXTRA_CONF:-}" ] && printf '%s\n' "$POSTERR_PG_EXTRA_CONF" >>"$pg_dir/postgresql.conf"
  fi
  pg_start PostgreSQL "$pg_dir" "$pg_port" "$pg_log" POSTERR_PG_PORT
}

postgres_down() { pg_stop PostgreSQL "$pg_dir" "$pg_port"; }

system_id() { as_pg "$bindir/pg_controldata" -D "$1" 2>/dev/null | awk -F': *' '/system identifier/ {print $2}'; }
replica_running() { server_running "$replica_dir"; }

primary_sql() { psql -X -q -t -A -h 127.0.0.1 -p "$pg_port" -U posterr -d postgres -c "$1"; }

# A hot standby streaming from the local primary: its data folder is a base backup taken with -R
# (standby.signal plus primary_conninfo) and a replication slot, so that the primary keeps the WAL a
# stopped replica has yet to replay. Made again when the primary was re-initialised since.
replica_up() {
  postgres_up
  if [ -f "$replica_dir/PG_VERSION" ] && { [ "$(system_id "$replica_dir")" != "$(system_id "$pg_dir")" ] \
       || ! grep -q "primary_slot_name = '$replica_slot'" "$replica_dir/postgresql.auto.conf"; }; then
    replica_running && as_pg "$bindir/pg_ctl" -D "$replica_dir" -m immediate -w stop >/dev/null
    say "the replica in $replica_dir does not follow this primary: taking a new base backup"
    rm -rf "$replica_dir"
  fi
  if [ ! -f "$replica_dir/PG_VERSION" ]; then
    say "taking a base backup of the primary into $replica_dir (log: $replica_log)"
    mkdir -p "$replica_dir"; touch "$replica_log"
    is_root && chown postgres: "$replica_dir" "$replica_log"
    chmod 700 "$replica_dir"
    primary_sql "SELECT pg_drop_replication_slot('$replica_slot') FROM pg_replication_slots
                 WHERE slot_name = '$replica_slot'" >/dev/null || die "could not reach the primary on port $pg_port"
    as_pg "$bindir/pg_basebackup" -h 127.0.0.1 -p "$pg_port" -U posterr -D "$replica_dir" -R -X stream \
      -C -S "$replica_slot" -c fast >>"$replica_log" 2>&1 || die "pg_basebackup failed; see $replica_log"
  fi
  local delay=${POSTERR_REPLICA_APPLY_DELAY:-0}
  # primary_conninfo here, not only in the backup's postgresql.auto.conf: the primary's port may have
  # changed since the backup (make soak picks free ports), and a replica that cannot stream never catches up.
  pg_start "the PostgreSQL replica (applying commits $delay late)" "$replica_dir" "$replica_port" "$replica_log" \
    POSTERR_REPLICA_PG_PORT "-c hot_standby=on -c recovery_min_apply_delay=$delay \
    -c primary_conninfo='host=127.0.0.1 port=$pg_port user=posterr application_name=posterr_replica'"
}

replica_down() { pg_stop "the PostgreSQL replica" "$replica_dir" "$replica_port"; }

replica_sql() { psql -X -q -t -A -h 127.0.0.1 -p "$replica_port" -U posterr -d postgres -c "$1" >/dev/null; }

redis_cli() { redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }
# Running, and ours: a server on our port with another data folder is someone else's.
redis_running() { [ "$(redis_cli config get dir 2>/dev/null | tail -n 1)" = "$redis_dir" ]; }

redis_up() {
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server REDIS_URL
  mkdir -p "$redis_dir"
  if redis_running; then
    say "Redis already running on port $redis_port"
    return
  fi
  port_busy "$redis_port" && die "port $redis_port is taken by another program: stop it, or choose another port with POSTERR_REDIS_PORT"
  say "starting Redis on port $redis_port (log: $redis_dir/redis.log)"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --dir "$redis_dir" \
    --pidfile "$redis_dir/redis.pid" --logfile "$redis_dir/redis.log" \
    --appendonly yes --save "" >/dev/null
  # Ready means answering PING: while it loads its append-only file it answers LOADING instead.
  for _ in $(seq 1 300); do [ "$(redis_cli ping 2>/dev/null)" = PONG ] && return; sleep 0.1; done
  die "Redis did not start; see $redis_dir/redis.log"
}

# SIGSTOP/SIGCONT by the pid file: a frozen Redis accepts connections but never answers, so
# redis_running (a redis-cli round trip) would wait forever.
redis_signal() {  # redis_signal STOP|CONT
  local pid dir
  for dir in $(redis_dirs); do
    pid=$(cat "$dir/redis.pid" 2>/dev/null) || die "no Redis pid file in $dir"
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q redis-server || die "pid $pid is not our Redis"
    kill "-$1" "$pid"
  done
}

# The Redis faults (stop, start, freeze, pause, flush, restart, cap) strike the standalone server, or
# with POSTERR_REDIS_TOPOLOGY=cluster every master of the Redis Cluster (as `make soak` uses it).
on_cluster() { [ "${POSTERR_REDIS_TOPOLOGY:-}" = cluster ]; }
redis_dirs() { if on_cluster; then for port in "${cluster_ports[@]}"; do node_dir "$port"; done; else echo "$redis_dir"; fi; }
each_redis() {  # each_redis COMMAND...: redis-cli on the server, or on every master
  local port
  if ! on_cluster; then redis_cli "$@"; return; fi
  for port in "${cluster_ports[@]}"; do redis-cli -h 127.0.0.1 -p "$port" "$@"; done
}

redis_down() {
  if redis_running; then
    say "stopping Redis on port $redis_port"
    redis_cli shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do redis_running || return 0; sleep 0.1; done
  fi
}

# --- a Redis Cluster of three masters (no replicas: a killed master's slots stay dark until it is back) ---

node_dir() { echo "$data/redis-cluster/$1"; }
node_running() { [ "$(redis-cli -h 127.0.0.1 -p "$1" config get dir 2>/dev/null | tail -n 1)" = "$(node_dir "$1")" ]; }

announced_port() {  # the port the master on $1 tells clients (0: its own)
  local i
  for i in "${!cluster_ports[@]}"; do
    [ "${cluster_ports[$i]}" = "$1" ] && { echo "${announced_ports[$i]:-0}"; return; }
  done
  echo 0
}

node_up() {  # node_up PORT
  local port=$1 dir
  dir=$(node_dir "$port")
  mkdir -p "$dir"
  node_running "$port" && return 0
  port_busy "$port" && die "port $port is taken by another program: choose others with POSTERR_REDIS_CLUSTER_PORTS"
  # cluster-require-full-coverage no: while one master is down the others keep serving their slots.
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --dir "$dir" --pidfile "$dir/redis.pid" \
    --logfile "$dir/redis.log" --appendonly yes --save "" --cluster-enabled yes \
    --cluster-config-file nodes.conf --cluster-port $((port + 100)) --cluster-node-timeout 2000 \
    --cluster-announce-port "$(announced_port "$port")" \
    --cluster-require-full-coverage no >/dev/null
  for _ in $(seq 1 300); do [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] && return 0; sleep 0.1; done
  die "the Redis Cluster node on port $port did not start; see $dir/redis.log"
}

cluster_state() { redis-cli -h 127.0.0.1 -p "${cluster_ports[0]}" cluster info 2>/dev/null | tr -d '\r' | awk -F: '/^cluster_state/ {print $2}'; }

redis_cluster_up() {
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server REDIS_URL
  local port nodes=()
  for port in "${cluster_ports[@]}"; do node_up "$port"; nodes+=("127.0.0.1:$port"); done
  if [ "$(redis-cli -h 127.0.0.1 -p "${cluster_ports[0]}" cluster info | tr -d '\r' | awk -F: '/^cluster_known_nodes/ {print $2}')" != "${#cluster_ports[@]}" ]; then
    say "creating a Redis Cluster of ${#cluster_ports[@]} masters on ports ${cluster_ports[*]} (log: $data/redis-cluster/create.log)"
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >>"$data/redis-cluster/create.log" 2>&1 \
      || die "redis-cli --cluster create failed; see $data/redis-cluster/create.log"
  fi
  for _ in $(seq 1 100); do [ "$(cluster_state)" = ok ] && return 0; sleep 0.1; done
  die "the Redis Cluster on ports ${cluster_ports[*]} did not reach cluster_state:ok"
}

redis_cluster_down() {
  local port
  for port in "${cluster_ports[@]}"; do
    node_running "$port" && { say "stopping the Redis Cluster node on port $port"; redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true; }
  done
  return 0
}

node_kill() {  # SIGKILL, by the pid file: a crash, not a shutdown
  local pid
  pid=$(cat "$(node_dir "$1")/redis.pid" 2>/dev/null) || die "no Redis Cluster node on port $1"
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q redis-server || die "pid $pid is not our Redis"
  kill -KILL "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || { rm -f "$(node_dir "$1")/redis.pid"; return 0; }; sleep 0.05; done
}

cmd=${1:-up}
case "$cmd" in
  up)
    if [ -z "${DATABASE_URL:-}" ]; then
      postgres_up
      echo "export DATABASE_URL='postgres://posterr@127.0.0.1:$pg_port/posterr?sslmode=disable'"
    else
      echo "export DATABASE_URL='$DATABASE_URL'"
    fi
    if [ -z "${REDIS_URL:-}" ]; then
      redis_up
      echo "export REDIS_URL='redis://127.0.0.1:$redis_port/0'"
    else
      echo "export REDIS_URL='$REDIS_URL'"
    fi
    ;;
  down) redis_down; redis_cluster_down; replica_down; postgres_down ;;
  status)
    bindir=$(pg_bindir || true)
    if [ -n "$bindir" ] && pg_running; then say "PostgreSQL: running on port $pg_port"; else say "PostgreSQL: stopped"; fi
    if [ -n "$bindir" ] && replica_running; then say "PostgreSQL replica: running on port $replica_port"; fi
    if redis_running; then say "Redis: running on port $redis_port"; else say "Redis: stopped"; fi
    ;;
  replica-up)
    [ -z "${DATABASE_URL:-}" ] || die "DATABASE_URL names a server of your own: give its replicas in DATABASE_REPLICA_URLS"
    replica_up
    echo "export DATABASE_REPLICA_URLS='postgres://posterr@127.0.0.1:$replica_port/posterr?sslmode=disable'" ;;
  replica-down) replica_down ;;
  redis-cluster-up)
    [ -z "${REDIS_URL:-}" ] || die "REDIS_URL names a server of your own: point it at any node of your cluster instead"
    redis_cluster_up
    echo "export REDIS_URL='redis://127.0.0.1:${cluster_ports[0]}/0'" ;;
  redis-cluster-down) redis_cluster_down ;;
  redis-cluster-kill) [[ "${2:-}" =~ ^[0-9]+$ ]] || die "redis-cluster-kill needs a node's port"; node_kill "$2" ;;
  redis-cluster-start) [[ "${2:-}" =~ ^[0-9]+$ ]] || die "redis-cluster-start needs a node's port"; node_up "$2" ;;
  replica-pause) replica_sql "SELECT pg_wal_replay_pause()" ;;
  replica-resume) replica_sql "SELECT pg_wal_replay_resume()" ;;
  stop-redis) if on_cluster; then redis_cluster_down; else redis_down; fi ;;
  start-redis) if on_cluster; then redis_cluster_up; else redis_up; fi ;;
  restart-postgres) postgres_down; postgres_up ;;
  stop-postgres) postgres_down ;;
  start-postgres) postgres_up ;;
  freeze-redis) redis_signal STOP ;;
  thaw-redis) redis_signal CONT ;;
  pause-redis)
    [[ "${2:-}" =~ ^[0-9]+$ ]] || die "pause-redis needs the pause in milliseconds"
    [[ "${3:-all}" =~ ^(all|write)$ ]] || die "pause-redis pauses all commands or only writes: all or write"
    each_redis client pause "$2" "${3:-all}" >/dev/null ;;
  unpause-redis) each_redis client unpause >/dev/null ;;
  flush-redis) each_redis flushall >/dev/null ;;
  restart-redis) if on_cluster; then redis_cluster_down; redis_cluster_up; else redis_down; redis_up; fi ;;
  cap-redis)
    [[ "${2:-}" =~ ^[0-9]+$ ]] || die "cap-redis needs the maxmemory in bytes (0: no cap)"
    each_redis config set maxmemory "$2" >/dev/null ;;
  crash-postgres)  # no checkpoint, no goodbye to clients: the next start runs crash recovery
    bindir=$(pg_bindir) || die "PostgreSQL is not installed"
    if pg_running; then as_pg "$bindir/pg_ctl" -D "$pg_dir" -m immediate -w stop >/dev/null; fi ;;
  *) die "unknown command '$cmd' (up, down, status, stop-redis, start-redis, stop-postgres, start-postgres, restart-postgres, freeze-redis, thaw-redis, pause-redis MS [all|write], unpause-redis, flush-redis, restart-redis, cap-redis BYTES, crash-postgres, replica-up, replica-down, replica-pause, replica-resume, redis-cluster-up, redis-cluster-down, redis-cluster-kill PORT, redis-cluster-start PORT)" ;;
esac
