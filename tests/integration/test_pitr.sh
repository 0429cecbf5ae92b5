#!/usr/bin/env bash
# Point-in-time restore of a whole three-node cluster into a new cluster, through the mount.
# WAL is archived by `pgtimefs wal-push`; a backup, writes, a restore point, more writes, then
# T1 is noted; after T1 a table is emptied and another dropped on every node. `pgtimefs
# restore --time T1` from the mount brings back every table as it was at T1 (checksums taken
# at T1), on new ports, with default parameters and pg_hba shut to TCP; `--consistent` lands
# on the restore point; a time inside a WAL gap, outside the window, or of an unknown cluster
# is refused with a clear message; a non-empty target is refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
. "$(dirname "$0")/mount_lib.sh"
need_fuse

# archive_command runs as the server's user: the repository, the state directory and the
# configuration belong to it, and every pgtimefs writer runs as that user (one owner for the
# catalog and its lock); the mount and the restore run as root
pg_repo_wrapper
mkdir -p "$T/mnt"

NODES=(coord w1 w2)
declare -A PORT
for n in "${NODES[@]}"; do
	PORT[$n]=$(free_port)
	pg_init "$n" "${PORT[$n]}"
	cat >>"$PGROOT/$n/postgresql.conf" <<PGCONF
archive_mode = on
archive_command = '$W wal-push prod $n %p'
PGCONF
done
cat >>"$PGTIMEFS_CONFIG" <<CONF

[cluster prod]

[node prod/coord]
conninfo = host=$SOCK port=${PORT[coord]} user=postgres dbname=postgres

[node prod/w1]
conninfo = host=$SOCK port=${PORT[w1]} user=postgres dbname=postgres

[node prod/w2]
conninfo = host=$SOCK port=${PORT[w2]} user=postgres dbname=postgres
data-dir = $PGROOT/w2
CONF
pg_repo_own
wp init >/dev/null
for n in "${NODES[@]}"; do pg_start "$n"; done
ok "three PostgreSQL 15 servers archiving with pgtimefs wal-push"

# each_node SQL: runs SQL on every node
each_node() {
	local n
	for n in "${NODES[@]}"; do sql "${PORT[$n]}" "$1" >/dev/null || fail "$n: $1"; done
}
# sums PORT [HOST]: a checksum of every table the test compares
SUMS_SQL="SELECT 'accounts ' || count(*) || ' ' || sum(abalance) FROM pgbench_accounts
		UNION ALL SELECT 'history ' || count(*) || ' ' || coalesce(sum(delta), 0) FROM pgbench_history
		UNION ALL SELECT 'keep ' || count(*) || ' ' || md5(coalesce(string_agg(v, ',' ORDER BY id), '')) FROM keep
		UNION ALL SELECT 'victim ' || count(*) || ' ' || md5(coalesce(string_agg(v, ',' ORDER BY id), '')) FROM victim"
sums() { as_pg "$PG_BIN/psql" -h "${2:-$SOCK}" -p "$1" -U postgres -d postgres -X -Atq -v ON_ERROR_STOP=1 -c "$SUMS_SQL"; }
# pgbench_all ARGS...: pgbench on every node at once
pgbench_all() {
	local n pids=()
	for n in "${NODES[@]}"; do
		"$PG_BIN/pgbench" -h "$SOCK" -p "${PORT[$n]}" -U postgres -n "$@" postgres >/dev/null 2>&1 &
		pids+=($!)
	done
	for n in "${pids[@]}"; do wait "$n" || fail "pgbench $*"; done
}
# archive_all: switches WAL on every node and waits until that segment is archived
archive_all() {
	local n
	for n in "${NODES[@]}"; do pg_switch_archived "$n" "${PORT[$n]}"; done
}
now_utc() { date -u +%Y-%m-%dT%H:%M:%SZ; }

for n in "${NODES[@]}"; do
	"$PG_BIN/pgbench" -h "$SOCK" -p "${PORT[$n]}" -U postgres -i -s 1 -q postgres >/dev/null 2>&1 || fail "pgbench -i on $n"
done
each_node "CREATE TABLE keep(id int PRIMARY KEY, v text NOT NULL);
	CREATE TABLE victim(id int PRIMARY KEY, v text NOT NULL);
	INSERT INTO keep SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
	INSERT INTO victim SELECT g, md5((-g)::text) FROM generate_series(1, 3000) g"
each_node "ALTER SYSTEM SET work_mem = '7MB'"
each_node "SELECT pg_reload_conf()"
wp --json backup prod >"$T/backup.json" || fail "backup"
ok "pgbench tables, keep and victim tables on every node; online backup taken"

pgbench_all -c 2 -T 2
wp --json restore-point prod before-t1 >"$T/rp.json" || fail "restore-point"
declare -A SUM_RP SUM_T1
for n in "${NODES[@]}"; do SUM_RP[$n]=$(sums "${PORT[$n]}"); done
pgbench_all -c 2 -t 100
each_node "INSERT INTO keep SELECT g, 'after rp ' || g FROM generate_series(5001, 5100) g"
for n in "${NODES[@]}"; do SUM_T1[$n]=$(sums "${PORT[$n]}"); done
[ "${SUM_T1[coord]}" != "${SUM_RP[coord]}" ] || fail "the writes after the restore point changed nothing"
next_second
T1=$(now_utc)
next_second
each_node "DELETE FROM keep; DROP TABLE victim"
pgbench_all -c 2 -t 50
archive_all
ok "writes, restore point before-t1, more writes, T1 = $T1, then DELETE FROM keep and DROP TABLE victim on every node"

mount_fg m "$T/mnt"
# at/<a snapshot's name> is that snapshot's consistent point (the name is cut to the second)
S1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["snapshot"])' "$T/backup.json")
got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["snapshot"])' "$T/mnt/prod/at/$S1/restore.json") ||
	fail "at/$S1 (the snapshot's own name) is not a view"
[ "$got" = "$S1" ] || fail "at/$S1 is a view of snapshot $got"
ok "at/$S1, the backup's own name, is a view of that snapshot"

# a restored node lets in only its OS user on its socket (peer): queries run as that user
# node_port DIR NODE: the port restore gave NODE (from the config snippet it writes)
node_port() {
	python3 - "$1/pgtimefs-cluster.conf" "$2" <<'PY'
import re, sys
conf, node = sys.argv[1:]
cur = None
for line in open(conf):
    m = re.match(r"\s*\[node [^/\]]+/([^\]]+)\]", line)
    if m:
        cur = m.group(1)
        continue
    m = re.search(r"\bport=(\d+)", line)
    if m and cur == node and line.strip().startswith("conninfo"):
        print(m.group(1))
        sys.exit(0)
sys.exit("no port for node " + node)
PY
}
node_host() { sed -n 's/.*conninfo *=.*host=\([^ ]*\).*/\1/p' "$1/pgtimefs-cluster.conf" | head -1; }
rsql() { as_pg "$PG_BIN/psql" -h "$3" -p "$2" -U postgres -d postgres -X -Atq -v ON_ERROR_STOP=1 -c "$1"; }
# stop_restored DIR: stops every node restore started in DIR
stop_restored() {
	local n
	for n in "${NODES[@]}"; do
		[ -f "$1/$n/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$1/$n" -m fast -w stop >/dev/null 2>&1
	done
	return 0
}

# restore to T1
P0=$(free_port 4)
"$PGT" --json restore --from "$T/mnt" --cluster prod --time "$T1" --target "$T/r1" --start --port "$P0" \
	>"$T/r1.json" 2>"$T/r1.err" || { cat "$T/r1.err" >&2; fail "restore to $T1"; }
cleanup_hooks=("stop_restored '$T/r1'" "${cleanup_hooks[@]}")
[ ! -e "$T/r1/RESTORE-INCOMPLETE" ] || fail "a finished restore left RESTORE-INCOMPLETE"
host=$(node_host "$T/r1")
for n in "${NODES[@]}"; do
	p=$(node_port "$T/r1" "$n")
	[ "$(rsql "SELECT pg_is_in_recovery()" "$p" "$host")" = f ] || fail "$n: still in recovery"
	got=$(sums "$p" "$host") ||
		fail "$n: the restored node does not answer (or lacks a table)"
	[ "$got" = "${SUM_T1[$n]}" ] || { printf 'want:\n%s\ngot:\n%s\n' "${SUM_T1[$n]}" "$got" >&2; fail "$n: tables differ from T1"; }
	[ "$p" != "${PORT[$n]}" ] || fail "$n: restored on the original's port"
	[ "$(rsql "SHOW shared_buffers" "$p" "$host")" = 128MB ] || fail "$n: shared_buffers is not the default"
	[ "$(rsql "SHOW work_mem" "$p" "$host")" = 4MB ] || fail "$n: the original's ALTER SYSTEM work_mem survived"
	out=$("$PG_BIN/psql" "host=127.0.0.1 port=$p user=postgres dbname=postgres connect_timeout=5" -Atc 'SELECT 1' 2>&1) &&
		fail "$n: a TCP connection to the restored node was accepted"
	echo "  $n: port $p, TCP refused: ${out##*FATAL:  }" | head -1
done
python3 - "$T/r1.json" <<'PY' || fail "restore --json"
import json, sys
r = json.load(open(sys.argv[1]))
s = json.dumps(r)
assert "coord" in s and "w1" in s and "w2" in s, r
PY
ok "restore to T1: every node promoted on a new port, tables equal T1's, defaults, TCP refused"
stop_restored "$T/r1"

# --consistent: the restore point before T1
P0=$(free_port 4)
"$PGT" --json restore --from "$T/mnt" --cluster prod --time "$T1" --target "$T/r2" --consistent --start --port "$P0" \
	>"$T/r2.json" 2>"$T/r2.err" || { cat "$T/r2.err" >&2; fail "restore --consistent"; }
cleanup_hooks=("stop_restored '$T/r2'" "${cleanup_hooks[@]}")
grep -q before-t1 "$T/r2.json" || fail "the --consistent report does not name the restore point"
host=$(node_host "$T/r2")
for n in "${NODES[@]}"; do
	p=$(node_port "$T/r2" "$n")
	got=$(sums "$p" "$host")
	[ "$got" = "${SUM_RP[$n]}" ] || { printf 'want:\n%s\ngot:\n%s\n' "${SUM_RP[$n]}" "$got" >&2; fail "$n: --consistent did not land on the restore point"; }
done
ok "restore --consistent: every node at restore point before-t1"
stop_restored "$T/r2"

# refusals
mkdir -p "$T/full" && touch "$T/full/x"
expect_fail "non-empty target" 1 "$PGT" restore --from "$T/mnt" --cluster prod --time "$T1" --target "$T/full"
err_has "empty"
expect_fail "time before the window" 1 "$PGT" restore --from "$T/mnt" --cluster prod --time 2001-01-01T00:00:00Z --target "$T/r3"
err_has "pgtimefs list"
[ ! -e "$T/r3/coord" ] || fail "a refused restore left a node directory"
expect_fail "unknown cluster" 1 "$PGT" restore --from "$T/mnt" --cluster nosuch --time "$T1" --target "$T/r4"
ok "non-empty target, a time outside the window and an unknown cluster are refused clearly"

# a gap: segments of coord lost (archive_command that discards), then archiving resumes
sql "${PORT[coord]}" "ALTER SYSTEM SET archive_command = 'true'" >/dev/null
sql "${PORT[coord]}" "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
next_second
each_node "INSERT INTO keep VALUES (1, 'in the gap')"
next_second
TGAP=$(now_utc)
next_second
archive_all
sql "${PORT[coord]}" "ALTER SYSTEM SET archive_command = '$W wal-push prod coord %p'" >/dev/null
sql "${PORT[coord]}" "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
each_node "INSERT INTO keep VALUES (2, 'after the gap')"
archive_all
expect_fail "time inside a WAL gap" 1 "$PGT" restore --from "$T/mnt" --cluster prod --time "$TGAP" --target "$T/r5"
err_has "pgtimefs list"
ok "a time inside coord's WAL gap is refused"

stop_mount "$T/mnt" "$MPID"
finish
