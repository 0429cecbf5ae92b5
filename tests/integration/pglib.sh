# pglib.sh: real PostgreSQL servers for the integration tests (sourced after lib.sh).
# Servers run as the user postgres when the tests run as root (PostgreSQL refuses root), on
# loopback TCP ports and on a socket directory inside the test's temporary directory; every
# server started here is stopped at exit. Skips (exit 77) when PostgreSQL 15 is missing.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
[ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/initdb" ] || skip "PostgreSQL 15 binaries not found in $PG_BIN (set PG_BIN)"
PG_USER=$(id -un)
if [ "$(id -u)" = 0 ]; then
	id postgres >/dev/null 2>&1 || skip "running as root and there is no 'postgres' user to run the servers"
	command -v runuser >/dev/null || skip "runuser is missing"
	PG_USER=postgres
fi
chmod 0711 "$T"
PGROOT=$T/pg
SOCK=$PGROOT/sock
mkdir -p "$SOCK"
[ "$PG_USER" = "$(id -un)" ] || chown -R "$PG_USER" "$PGROOT"
PG_STARTED=()
cleanup_hooks+=("pg_stop_all")

# as_pg CMD...: runs a command as the server's user
as_pg() {
	if [ "$PG_USER" = "$(id -un)" ]; then "$@"; else runuser -u "$PG_USER" -- "$@"; fi
}
# free_port [N]: a free TCP port on loopback; with N, the first of N consecutive free ports
# (a restore's nodes take --port, --port + 1, ...: a port after the first, taken by a server
# of a test running alongside, made a restore fail with "port in use")
free_port() {
	python3 - "${1:-1}" <<'PY'
import socket, sys
n = int(sys.argv[1])
for _ in range(200):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    base = s.getsockname()[1]
    held = [s]
    try:
        for p in range(base + 1, base + n):
            t = socket.socket()
            held.append(t)
            t.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        for t in held:
            t.close()
    print(base)
    sys.exit(0)
sys.exit("no run of %d free ports" % n)
PY
}
# pg_init NAME PORT [initdb options...]: a new data directory $PGROOT/NAME for a server on PORT
pg_init() {
	local name=$1 port=$2
	shift 2
	as_pg "$PG_BIN/initdb" -D "$PGROOT/$name" -U postgres -A trust --no-sync "$@" >"$PGROOT/$name.initdb.log" 2>&1 ||
		{ cat "$PGROOT/$name.initdb.log" >&2; fail "initdb $name"; }
	cat >>"$PGROOT/$name/postgresql.conf" <<PGCONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCK'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
fsync = off
shared_buffers = 16MB
max_wal_size = 256MB
log_min_messages = warning
PGCONF
}
# pg_start NAME [pg_ctl -o options]
pg_start() {
	local name=$1
	as_pg "$PG_BIN/pg_ctl" -D "$PGROOT/$name" -l "$PGROOT/$name.log" -w -t 60 ${2:+-o "$2"} start >/dev/null ||
		{ tail -20 "$PGROOT/$name.log" >&2; fail "cannot start server $name"; }
	PG_STARTED+=("$name")
}
pg_stop() { as_pg "$PG_BIN/pg_ctl" -D "$PGROOT/$1" -m fast -w stop >/dev/null 2>&1 || true; }
pg_stop_all() {
	local n
	for n in "${PG_STARTED[@]}"; do pg_stop "$n"; done
}
# sql PORT SQL: one value per line, no headers
sql() { "$PG_BIN/psql" -h "$SOCK" -p "$1" -U postgres -d postgres -X -Atq -v ON_ERROR_STOP=1 -c "$2"; }

# extract SNAPPATH DEST: writes the stored tree SNAPPATH (CLUSTER/TIME/NODE) into DEST with
# `pgtimefs ls --json` per directory and one `pgtimefs cat` for all files (no FUSE)
extract() {
	python3 - "$PGT" "$1" "$2" <<'PY'
import json, os, subprocess, sys
pgt, snap, dest = sys.argv[1:]
files, dirs, links = [], [], []
def walk(rel):
    path = snap + ("/" + rel if rel else "")
    for e in json.loads(subprocess.check_output([pgt, "--json", "ls", path])):
        r = (rel + "/" if rel else "") + e["name"]
        if e["type"] == "dir":
            dirs.append((r, e["mode"])); walk(r)
        elif e["type"] == "file":
            files.append((r, e["mode"], e["size"]))
        elif e["type"] == "symlink":
            links.append((r, e["target"]))
walk("")
os.makedirs(dest, exist_ok=True)
for r, m in dirs:
    os.makedirs(os.path.join(dest, r), exist_ok=True)
for r, t in links:
    os.symlink(t, os.path.join(dest, r))
p = subprocess.Popen([pgt, "cat"] + [snap + "/" + r for r, _, _ in files], stdout=subprocess.PIPE)
for r, m, size in files:
    with open(os.path.join(dest, r), "wb") as f:
        left = size
        while left:
            b = p.stdout.read(min(left, 1 << 20))
            if not b:
                sys.exit("short read of " + r)
            f.write(b); left -= len(b)
    os.chmod(os.path.join(dest, r), m & 0o7777)
if p.wait() != 0:
    sys.exit("pgtimefs cat failed")
print(len(files), "files,", len(dirs), "dirs")
PY
}

# start_copy SRC NAME PORT: a snapshot copy in $PGROOT/NAME, owned by the server user, started
# on PORT with no restore_command: it must reach consistency with the WAL it holds
start_copy() {
	local src=$1 name=$2 port=$3
	mv "$src" "$PGROOT/$name"
	[ "$PG_USER" = "$(id -un)" ] || chown -R "$PG_USER" "$PGROOT/$name"
	chmod 0700 "$PGROOT/$name"
	pg_start "$name" "-p $port -c listen_addresses='' -c archive_mode=off"
}

# A repository that servers archive into (archive_command runs as the servers' user):
# pg_repo_wrapper makes $W, a wrapper running this pgtimefs with the test's configuration and
# passphrase, and wp runs it as the servers' user; pg_repo_own [PATH...] gives the zones, the
# state directory, the configuration (and PATHs) to that user once the configuration is
# complete: one owner for the catalog and its lock.
pg_repo_wrapper() {
	mkdir -p "$Z1" "$Z2" "$Z3" "$T/state" "$T/bin"
	cp "$PGT" "$T/bin/pgtimefs"
	cat >"$T/bin/pgt" <<SH
#!/bin/sh
PGTIMEFS_CONFIG=$PGTIMEFS_CONFIG PGTIMEFS_PASSPHRASE=$PGTIMEFS_PASSPHRASE exec $T/bin/pgtimefs "\$@"
SH
	chmod 0755 "$T/bin/pgt" "$T/bin/pgtimefs"
	W=$T/bin/pgt
}
wp() { as_pg "$W" "$@"; }
# conf_node CLUSTER NODE PORT [USER] [DATA-DIR]: a [node] section (on stdout) for a server here
conf_node() {
	printf '\n[node %s/%s]\nconninfo = host=%s port=%s user=%s dbname=postgres\n' "$1" "$2" "$SOCK" "$3" "${4:-postgres}"
	[ -z "${5:-}" ] || printf 'data-dir = %s\n' "$5"
}
# pg_init_archiving NAME PORT CLUSTER NODE [initdb options...]: pg_init, archiving to the
# repository with `wal-push CLUSTER NODE` through the wrapper $W (pg_repo_wrapper first)
pg_init_archiving() {
	local name=$1 port=$2 cluster=$3 node=$4
	shift 4
	pg_init "$name" "$port" "$@"
	printf "archive_mode = on\narchive_command = '%s wal-push %s %s %%p'\n" "$W" "$cluster" "$node" \
		>>"$PGROOT/$name/postgresql.conf"
}
# pg_archiving_node PORT: server n on PORT with 1 MiB segments, archiving with wal-push into
# cluster c, node n (a restore_command that fails: an archive recovery ends at the end of
# pg_wal), the repository initialised, the server started (after pg_repo_wrapper)
pg_archiving_node() {
	pg_init_archiving n "$1" c n --wal-segsize=1
	echo "restore_command = 'false'" >>"$PGROOT/n/postgresql.conf"
	{
		printf '\n[cluster c]\n'
		conf_node c n "$1"
	} >>"$PGTIMEFS_CONFIG"
	pg_repo_own
	wp init >/dev/null
	pg_start n
}
# pg_promote_by_crash NAME PORT: a crash, then archive recovery to the end and a promotion:
# the server goes on on a new timeline (waits until it takes writes)
pg_promote_by_crash() {
	local k
	as_pg "$PG_BIN/pg_ctl" -D "$PGROOT/$1" -m immediate -w stop >/dev/null
	as_pg touch "$PGROOT/$1/recovery.signal"
	pg_start "$1"
	for k in $(seq 1 100); do [ "$(sql "$2" 'SELECT pg_is_in_recovery()')" = f ] && return 0; sleep 0.1; done
	fail "$1 is still in recovery after 10 s"
}
# restore_rows TIME DIR: restores cluster c (node n) from the mount at $T/mnt to TIME into DIR
# and starts it (stopped at cleanup); ROWS gets table t's ids in order, comma-separated
restore_rows() {
	local port
	port=$(free_port)
	"$PGT" restore --from "$T/mnt" --cluster c --time "$1" --target "$2" --start --port "$port" --socket-dir "$SOCK" \
		>"$2.out" 2>"$2.err" || { cat "$2.err" >&2; fail "restore to $1"; }
	cleanup_hooks+=("as_pg '$PG_BIN/pg_ctl' -D '$2/n' -m fast stop >/dev/null 2>&1")
	ROWS=$(as_pg "$PG_BIN/psql" -h "$SOCK" -p "$port" -U postgres -d postgres -XAtq \
		-c "SELECT string_agg(id::text, ',' ORDER BY id) FROM t")
}
pg_repo_own() {
	[ "$PG_USER" = "$(id -un)" ] || chown -R "$PG_USER" "$Z1" "$Z2" "$Z3" "$T/state" "$PGTIMEFS_CONFIG" "$@"
}

# pg_switch_archived NAME PORT: switches the server's WAL and waits (30 s at most) until that
# segment is archived; fails with the end of the server's log otherwise
pg_switch_archived() {
	local name=$1 port=$2 seg i
	seg=$(sql "$port" "SELECT pg_walfile_name(pg_switch_wal())")
	for ((i = 0; i < 300; i++)); do
		[ "$(sql "$port" "SELECT coalesce(last_archived_wal, '') >= '$seg' FROM pg_stat_archiver")" = t ] && return 0
		sleep 0.1
	done
	tail -5 "$PGROOT/$name.log" >&2
	fail "$name: $seg not archived after 30 s"
}
# next_second: sleeps until just after the next whole second
next_second() { sleep "$(python3 -c 'import time; print(1.05 - time.time() % 1)')"; }

# cat_q SQL: the catalog's answer, one row per line (fields joined by |); it may be read while
# a writer (a streamer) commits
cat_q() { python3 -c 'import sqlite3, sys
for r in sqlite3.connect(sys.argv[1], timeout=30).execute(sys.argv[2]): print("|".join(str(v) for v in r))' "$T/state/catalog.db" "$1"; }

# wait_stored NAME: until the catalog holds the WAL file NAME, while the streamer $SP lives
# (its stderr in $T/stream.err, shown when it dies or NAME never comes)
wait_stored() {
	local i
	for i in $(seq 1 300); do
		[ -f "$T/state/catalog.db" ] && [ "$(cat_q "SELECT count(*) FROM wal WHERE name = '$1'")" = 1 ] && return 0
		kill -0 "$SP" 2>/dev/null || { cat "$T/stream.err" >&2; fail "the streamer died waiting for $1"; }
		sleep 0.1
	done
	cat "$T/stream.err" >&2
	fail "$1 never stored"
}

# pg_stream_server NAME PORT: a server for the streaming tests, started: 1 MiB WAL segments,
# WAL kept (wal_keep_size), no autovacuum, pgbench -i -s 1 and a table marks(id)
pg_stream_server() {
	pg_init "$1" "$2" --wal-segsize=1
	cat >>"$PGROOT/$1/postgresql.conf" <<PGCONF
wal_keep_size = 1GB
autovacuum = off
PGCONF
	pg_start "$1"
	"$PG_BIN/pgbench" -h "$SOCK" -p "$2" -U postgres -i -s 1 -q postgres >/dev/null 2>&1 || fail "pgbench -i"
	sql "$2" "CREATE TABLE marks(id int PRIMARY KEY)"
}
