#!/usr/bin/env bash
# demo.sh: installs what is missing, builds, and runs the main job on a demo it makes itself:
# a repository with three zones in a temporary directory, two snapshots of a generated tree
# (the second after changes), then list, ls, cat, the FUSE mount (cp -a out of it); then the
# main job on a demo PostgreSQL 15 cluster it starts (a coordinator and a worker): WAL streamed
# continuously (wal-stream), two online backups while pgbench writes, list, ls; then an
# "accident" (a DELETE and a DROP TABLE) and a point-in-time restore of the whole cluster from
# the mount to the second before it, into a new cluster that is started and checked; and check.
set -euo pipefail
PGT_TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$PGT_TOP/tools/deps.sh"
pgt_deps
pgt_build "$PGT_TOP/build"
PGT=$PGT_TOP/build/pgtimefs

D=$(mktemp -d "${TMPDIR:-/tmp}/pgtimefs-demo.XXXXXX")
demo_exit() {
	mountpoint -q "$D/mnt" 2>/dev/null && fusermount3 -u "$D/mnt"
	[ -n "${KEEP:-}" ] || rm -rf "$D"
}
trap demo_exit EXIT
export PGTIMEFS_CONFIG=$D/pgtimefs.conf
cat >"$PGTIMEFS_CONFIG" <<CONF
[repository]
zones = $D/zone-a $D/zone-b $D/zone-c
passphrase-file = $D/passphrase
state-dir = $D/state
CONF
head -c 32 /dev/urandom | base64 >"$D/passphrase"
chmod 600 "$D/passphrase"

run() { printf '\n$ pgtimefs %s\n' "$*"; "$PGT" "$@"; }

# a data directory that looks like PostgreSQL's: relation files, WAL, config, a symlink
mkdir -p "$D/data/base/5" "$D/data/global" "$D/data/pg_wal"
python3 - "$D/data" <<'PY'
import os, random, sys
d = sys.argv[1]; r = random.Random(1)
for rel in ("16384", "16390", "16402"):
    with open(os.path.join(d, "base/5", rel), "wb") as f:
        for i in range(1500):
            f.write((b"%06d|" % i + r.randbytes(40).hex().encode()).ljust(8192, b" "))
with open(os.path.join(d, "global/1262"), "wb") as f: f.write(r.randbytes(8192 * 4))
with open(os.path.join(d, "pg_wal/000000010000000000000001"), "wb") as f: f.write(r.randbytes(4 << 20))
with open(os.path.join(d, "PG_VERSION"), "w") as f: f.write("15\n")
with open(os.path.join(d, "postgresql.conf"), "w") as f: f.write("".join("#setting_%d = on\n" % i for i in range(500)))
PY
ln -s /var/lib/postgresql/15/tblspc "$D/data/pg_tblspc_link"
sleep 1.1

run init
run snapshot demo coordinator "$D/data"
# change 2% of the pages of one relation, add a file
python3 - "$D/data/base/5/16390" <<'PY'
import random, sys
r = random.Random(2)
with open(sys.argv[1], "r+b") as f:
    for p in r.sample(range(1500), 30):
        f.seek(p * 8192); f.write(r.randbytes(8192))
PY
echo "hello from the second snapshot" >"$D/data/NEW_FILE"
run snapshot demo coordinator "$D/data"
run list
run ls demo
run ls demo/latest/coordinator
run ls demo/latest/coordinator/base/5
run cat demo/latest/coordinator/NEW_FILE
printf '\n$ pgtimefs cat demo/latest/coordinator/base/5/16390 | cmp - data/base/5/16390\n'
"$PGT" cat demo/latest/coordinator/base/5/16390 | cmp - "$D/data/base/5/16390" && echo "identical"
if [ -c /dev/fuse ] && command -v fusermount3 >/dev/null; then
	mkdir -p "$D/mnt"
	run mount "$D/mnt"
	printf '\n$ ls -l mnt/demo  (the FUSE mount: one folder per snapshot)\n'
	ls -l "$D/mnt/demo"
	printf '\n$ cp -a mnt/demo/latest/coordinator restored && diff -r restored data\n'
	cp -a "$D/mnt/demo/latest/coordinator" "$D/restored"
	diff -r --no-dereference "$D/restored" "$D/data" && echo "identical"
	printf '\n$ fusermount3 -u mnt\n'
	fusermount3 -u "$D/mnt"
else
	printf '\n(no /dev/fuse or fusermount3 here: the mount part of the demo is skipped)\n'
fi
# the main job: an online backup of a running PostgreSQL cluster (a coordinator and a worker)
PGBIN=/usr/lib/postgresql/15/bin
if [ -x "$PGBIN/initdb" ] && { [ "$(id -u)" != 0 ] || id postgres >/dev/null 2>&1; }; then
	as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
	chmod 0711 "$D"
	mkdir -p "$D/pg/sock"
	[ "$(id -u)" != 0 ] || chown -R postgres "$D/pg"
	port=$((20000 + RANDOM % 20000))
	PG_NODES=()
	for node in coordinator worker1; do
		as_pg "$PGBIN/initdb" -D "$D/pg/$node" -U postgres -A trust --no-sync >/dev/null
		cat >>"$D/pg/$node/postgresql.conf" <<PGCONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$D/pg/sock'
wal_level = replica
fsync = off
PGCONF
		as_pg "$PGBIN/pg_ctl" -D "$D/pg/$node" -l "$D/pg/$node.log" -w start >/dev/null
		PG_NODES+=("$node")
		eval "port_$node=$port"
		port=$((port + 1))
	done
	pg_demo_stop() { for n in "${PG_NODES[@]}"; do as_pg "$PGBIN/pg_ctl" -D "$D/pg/$n" -m fast -w stop >/dev/null 2>&1 || true; done; }
	trap 'pg_demo_stop; demo_exit' EXIT
	# shellcheck disable=SC2154 # port_coordinator and port_worker1 are set by eval above
	{
		"$PGBIN/pgbench" -i -s 5 -q -h "$D/pg/sock" -p "$port_coordinator" -U postgres postgres >/dev/null 2>&1
		"$PGBIN/psql" -X -q -h "$D/pg/sock" -p "$port_worker1" -U postgres -d postgres \
			-c "CREATE TABLE orders AS SELECT g AS id, now() AS at FROM generate_series(1, 100000) g"
		# the coordinator lives here (data-dir: the local path); the worker is reached over
		# a replication connection (BASE_BACKUP: the streaming path)
		cat >>"$PGTIMEFS_CONFIG" <<CONF

[cluster demo-pg]
[node demo-pg/coordinator]
conninfo = host=$D/pg/sock port=$port_coordinator user=postgres dbname=postgres
data-dir = $D/pg/coordinator
[node demo-pg/worker1]
conninfo = host=127.0.0.1 port=$port_worker1 user=postgres dbname=postgres
CONF
	}
	# WAL of both nodes streamed into the repository from now on (a slot per node); partial
	# segments stored every second, so the restorable window reaches the last second
	printf '\n$ pgtimefs wal-stream demo-pg --partial-interval 1 &\n'
	"$PGT" wal-stream demo-pg --partial-interval 1 2>"$D/wal-stream.log" &
	WS_PID=$!
	trap 'kill $WS_PID 2>/dev/null || true; wait $WS_PID 2>/dev/null || true; pg_demo_stop; demo_exit' EXIT
	for _ in $(seq 1 100); do
		[ "$("$PGBIN/psql" -X -Atq -h "$D/pg/sock" -p "$port_worker1" -U postgres -d postgres \
			-c "SELECT count(*) FROM pg_replication_slots WHERE active")" = 1 ] && break
		sleep 0.1
	done
	run backup demo-pg
	# writes go on; a second backup reads only what changed on the local node
	"$PGBIN/pgbench" -T 3 -h "$D/pg/sock" -p "$port_coordinator" -U postgres postgres >/dev/null 2>&1
	run backup demo-pg
	run list demo-pg
	run ls demo-pg/latest
	printf '\n$ pgtimefs cat demo-pg/latest/coordinator/backup_label\n'
	"$PGT" cat demo-pg/latest/coordinator/backup_label

	# the accident, one second after T
	pq() { "$PGBIN/psql" -X -Atq -h "$D/pg/sock" -p "$1" -U postgres -d postgres -c "$2"; }
	before="orders: $(pq "$port_worker1" "SELECT count(*) FROM orders"), pgbench_history: $(pq "$port_coordinator" "SELECT count(*) FROM pgbench_history")"
	sleep 1.1
	T=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	sleep 1.1
	printf '\nat %s: %s\n' "$T" "$before"
	printf '\n$ psql worker1: DELETE FROM orders;  psql coordinator: DROP TABLE pgbench_history;   (the accident)\n'
	pq "$port_worker1" "DELETE FROM orders"
	pq "$port_coordinator" "DROP TABLE pgbench_history"
	# the window reaches past T once both nodes' WAL after the accident is stored
	for _ in $(seq 1 100); do "$PGT" ls "demo-pg/at/$T" >/dev/null 2>&1 && break; sleep 0.2; done
	run list demo-pg
	if [ -c /dev/fuse ] && command -v fusermount3 >/dev/null && [ "$(id -u)" = 0 ]; then
		run mount "$D/mnt"
		printf '\n$ ls mnt/demo-pg/at/%s\n' "$T"
		ls "$D/mnt/demo-pg/at/$T"
		mkdir -p "$D/restored-pg/sock" && chown -R postgres "$D/restored-pg"
		rport=$((port + 10))
		run restore --from "$D/mnt" --cluster demo-pg --time "$T" --target "$D/restored-pg/cluster" \
			--start --port "$rport" --socket-dir "$D/restored-pg/sock"
		rq() { runuser -u postgres -- "$PGBIN/psql" -X -Atq -h "$D/restored-pg/sock" -p "$1" -U postgres -d postgres -c "$2"; }
		after="orders: $(rq $((rport + 1)) "SELECT count(*) FROM orders"), pgbench_history: $(rq "$rport" "SELECT count(*) FROM pgbench_history")"
		printf '\nthe restored cluster (ports %d, %d) at %s: %s\n' "$rport" $((rport + 1)) "$T" "$after"
		[ "$after" = "$before" ] && echo "identical to the original at $T" || { echo "DIFFERENT from the original at $T: $before" >&2; exit 1; }
		for n in coordinator worker1; do
			runuser -u postgres -- "$PGBIN/pg_ctl" -D "$D/restored-pg/cluster/$n" -m fast -w stop >/dev/null
		done
		fusermount3 -u "$D/mnt"
	else
		printf '\n(no /dev/fuse, fusermount3 or root here: the restore part of the demo is skipped)\n'
	fi
	kill "$WS_PID" && wait "$WS_PID" || true
else
	printf '\n(PostgreSQL 15 is not installed here: the online backup part of the demo is skipped)\n'
fi
run check --read-data
printf '\ndemo done: repository in %s (three zones); rerun with KEEP=1 to keep it\n' "$D"
