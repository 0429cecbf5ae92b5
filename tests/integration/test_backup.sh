#!/usr/bin/env bash
# Online backups of a three-node cluster under write load, both paths; every node's snapshot,
# copied out and started on its own, reaches a consistent state (no restore_command).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"

P1=$(free_port) P2=$(free_port) P3=$(free_port)
pg_init coord "$P1"
pg_init w1 "$P2"
# w2 keeps its WAL outside its data directory (pg_wal a symlink, initdb --waldir), as many
# installations do: the snapshot must hold pg_wal as a directory of its own, never the link
pg_init w2 "$P3" --waldir "$PGROOT/w2-wal"
pg_start coord
pg_start w1
pg_start w2
cat >>"$PGTIMEFS_CONFIG" <<CONF

[cluster prod]

[node prod/coord]
conninfo = host=127.0.0.1 port=$P1 user=postgres dbname=postgres

[node prod/w1]
conninfo = host=$SOCK port=$P2 user=postgres dbname=postgres

[node prod/w2]
conninfo = host=$SOCK port=$P3 user=postgres dbname=postgres
data-dir = $PGROOT/w2
CONF
pgt init >/dev/null
ok "three PostgreSQL 15 servers (citus absent: plain PostgreSQL), repository ready"

for p in $P1 $P2 $P3; do
	"$PG_BIN/pgbench" -h "$SOCK" -p "$p" -U postgres -i -s 1 -q postgres >/dev/null 2>&1 || fail "pgbench -i on $p"
	sql "$p" "CREATE TABLE pre AS SELECT g, md5(g::text) AS h FROM generate_series(1, 200000) g;
		CREATE TABLE log(id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());"
	sql "$p" "VACUUM FREEZE pre" # hint bits and visibility map set now, not by autovacuum later
	sql "$p" "CHECKPOINT"
done
pre_sum=$(sql "$P1" "SELECT count(*) || ':' || md5(string_agg(h, '' ORDER BY g)) FROM pre")
ok "pgbench tables, a table written before the backup, an append-only log table"

# writers: pgbench, and one client appending ids in order
writers=()
start_writers() {
	local p
	for p in $P1 $P2 $P3; do
		"$PG_BIN/pgbench" -h "$SOCK" -p "$p" -U postgres -n -c 2 -T 60 postgres >/dev/null 2>&1 &
		writers+=($!)
		python3 - "$PG_BIN/psql" "$SOCK" "$p" <<'PY' >/dev/null 2>&1 &
import subprocess, sys, itertools
psql, sock, port = sys.argv[1:]
p = subprocess.Popen([psql, "-h", sock, "-p", port, "-U", "postgres", "-d", "postgres", "-X", "-q"],
                     stdin=subprocess.PIPE, text=True)
for i in itertools.count(1):
    p.stdin.write("INSERT INTO log(id) VALUES (%d);\n" % i)
    if i % 50 == 0:
        p.stdin.flush()
PY
		writers+=($!)
	done
}
stop_writers() {
	local w
	for w in "${writers[@]}"; do kill "$w" 2>/dev/null || true; done
	for w in "${writers[@]}"; do wait "$w" 2>/dev/null || true; done
	writers=()
}
cleanup_hooks=("stop_writers" "${cleanup_hooks[@]}")
start_writers
sleep 2
pgt --json backup prod >"$T/b1.json" || fail "backup under load"
n_during=$(sql "$P3" "SELECT count(*) FROM log")
stop_writers
S1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["snapshot"])' "$T/b1.json")
python3 - "$T/b1.json" <<'PY' || fail "backup result"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["restore_point"].startswith("pgtimefs-"), r["restore_point"]
paths = {n["node"]: n["path"] for n in r["nodes"]}
assert paths == {"coord": "stream", "w1": "stream", "w2": "local"}, paths
for n in r["nodes"]:
    assert n["start_lsn"] != n["stop_lsn"] and n["timeline"] == 1 and n["system_id"], n
    assert n["pg_version"].startswith("15"), n
    assert n["damaged_pages"] == [], n
PY
[ "$n_during" -gt 0 ] || fail "the log writer wrote nothing"
ok "backup of 3 nodes under pgbench load: snapshot $S1, restore point, LSNs, versions recorded"

pgt list prod | grep -q "$S1" || fail "list lacks the snapshot"
pgt list prod | grep -q "coord .*tli 1, PostgreSQL 15" || fail "list lacks the node positions"
pgt list | grep -q "w2 .*$PGROOT/w2" || fail "list lacks the configured nodes"
ok "list shows the snapshot, its node positions and the configured cluster"

# every node's root directory and backup_label belong to the server's user, on both paths
pg_uid=$(id -u "$PG_USER")
for node in coord w1 w2; do
	got=$(pgt --json ls "prod/$S1" | python3 -c 'import json,sys; print([e["uid"] for e in json.load(sys.stdin) if e["name"] == sys.argv[1]][0])' "$node")
	[ "$got" = "$pg_uid" ] || fail "$node's root directory has uid $got, expected $pg_uid ($PG_USER)"
	got=$(pgt --json ls "prod/$S1/$node" | python3 -c 'import json,sys; print([e["uid"] for e in json.load(sys.stdin) if e["name"] == "backup_label"][0])')
	[ "$got" = "$pg_uid" ] || fail "$node's backup_label has uid $got, expected $pg_uid ($PG_USER)"
done
ok "each node's root directory and backup_label belong to $PG_USER"

# every node's snapshot starts alone and is consistent
check_node() {
	local node=$1 port=$2
	extract "prod/$S1/$node" "$T/x-$node" >/dev/null || fail "extract $node"
	[ -f "$T/x-$node/backup_label" ] || fail "$node: no backup_label in the snapshot"
	[ -d "$T/x-$node/pg_wal" ] && [ ! -L "$T/x-$node/pg_wal" ] || fail "$node: pg_wal in the snapshot is not a directory"
	ls "$T/x-$node/pg_wal" | grep -q '^[0-9A-F]\{24\}$' || fail "$node: no WAL in the snapshot"
	[ ! -e "$T/x-$node/postmaster.pid" ] || fail "$node: postmaster.pid was stored"
	start_copy "$T/x-$node" "r-$node" "$port"
	[ "$(sql "$port" "SELECT count(*) || ':' || md5(string_agg(h, '' ORDER BY g)) FROM pre")" = "$pre_sum" ] ||
		fail "$node: the table written before the backup differs"
	[ "$(sql "$port" "SELECT count(*) = coalesce(max(id), 0) FROM log")" = t ] || fail "$node: the log has gaps"
	[ "$(sql "$port" "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)
		AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)")" = t ] ||
		fail "$node: pgbench balances disagree with the history"
	"$PG_BIN/pg_amcheck" -h "$SOCK" -p "$port" -U postgres --install-missing --heapallindexed -d postgres >"$T/amcheck-$node" 2>&1 ||
		{ cat "$T/amcheck-$node" >&2; fail "$node: pg_amcheck"; }
	echo "  $node: $(sql "$port" "SELECT count(*) FROM log") log rows, gap-free; pgbench balanced; pg_amcheck clean"
	pg_stop "r-$node"
	rm -rf "${PGROOT:?}/r-$node"
}
PR=$(free_port)
check_node coord "$PR"
check_node w1 "$PR"
check_node w2 "$PR"
ok "each node's snapshot starts on its own WAL and is consistent (pre table intact, log gap-free, balances, pg_amcheck)"

# local path: a second backup reads only what changed
sleep 1.1
pgt --json backup prod >"$T/b2.json" || fail "second backup"
python3 - "$T/b2.json" <<'PY' || fail "second backup did not reuse unchanged files"
import json, sys
r = json.load(open(sys.argv[1]))
w2 = [n for n in r["nodes"] if n["node"] == "w2"][0]
print("  w2: %d of %d files reused, %d of %d bytes read" % (w2["files_reused"], w2["files"], w2["bytes_read"], w2["bytes"]))
assert w2["files_reused"] >= 0.8 * w2["files"], w2
assert w2["bytes_read"] < 0.75 * w2["bytes"], w2
PY
ok "local path: the second backup reuses unchanged files unread"
pgt --json backup prod --full >"$T/b3.json" || fail "full backup"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); w=[n for n in r["nodes"] if n["node"]=="w2"][0]; assert w["files_reused"]==0, w' "$T/b3.json" ||
	fail "--full reused files"
ok "--full reads every file"

# a node that is down fails the whole snapshot, and nothing is listed
before=$(pgt --json list prod | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["snapshots"]))')
pg_stop w1
expect_fail "backup with a node down" 1 pgt backup prod
err_has "node w1"
err_has "HINT:"
after=$(pgt --json list prod | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["snapshots"]))')
[ "$before" = "$after" ] || fail "a failed backup left a snapshot listed ($before -> $after)"
pg_start w1
ok "a node down fails the whole snapshot with its name; nothing half-done is listed"

# replication refused by pg_hba: the hint gives the line to add
cp "$PGROOT/coord/pg_hba.conf" "$T/hba.save"
grep -v replication "$T/hba.save" >"$PGROOT/coord/pg_hba.conf"
sql "$P1" "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
expect_fail "backup with replication refused" 1 pgt backup prod
err_has "node coord refuses the replication connection"
err_has "host replication postgres 127.0.0.1/32"
cp "$T/hba.save" "$PGROOT/coord/pg_hba.conf"
sql "$P1" "SELECT pg_reload_conf()" >/dev/null
ok "replication refused: the message names the node, the hint the pg_hba.conf line"

# a node that dies mid-backup
# (the table that makes w1's backup long is written first: a slow machine must not see the
# server die under this statement instead of under the backup)
sql "$P2" "CREATE TABLE big AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 200000) g" >/dev/null
start_writers
( sleep 1; as_pg "$PG_BIN/pg_ctl" -D "$PGROOT/w1" -m immediate stop >/dev/null 2>&1 ) &
killer=$!
expect_fail "backup with a node dying" 1 pgt backup prod
wait $killer || true
err_has "w1"
stop_writers
after=$(pgt --json list prod | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["snapshots"]))')
[ "$before" = "$after" ] || fail "a failed backup left a snapshot listed"
pg_start w1
ok "a node dying mid-backup fails the snapshot; nothing listed"

# a second backup while one runs: waits, or refuses clearly with --wait 0
flock "$T/state/writer.lock" sleep 5 &
holder=$!
sleep 0.3
expect_fail "concurrent backup" 1 pgt --wait 0 backup prod
err_has "is writing to this repository"
wait $holder
ok "a concurrent backup of the same repository refuses clearly (--wait 0)"

pgt restore-point prod before-upgrade >/dev/null || fail "restore-point"
for p in $P1 $P2 $P3; do
	grep -q "restore point \"before-upgrade\"" "$PGROOT/"*.log 2>/dev/null || true
done
# a name in use is refused before any server gets a second point of that name (recovery to a
# name stops at its first point); unnamed points are named to the microsecond, so two in one
# second differ
before=$(cat_q "SELECT count(*) FROM restore_points")
expect_fail "a restore point name used twice" 1 pgt restore-point prod before-upgrade
err_has "has a restore point called before-upgrade already"
[ "$(cat_q "SELECT count(*) FROM restore_points")" = "$before" ] || fail "the refused restore point was recorded"
pgt --json restore-point prod >"$T/rp1.json" && pgt --json restore-point prod >"$T/rp2.json" || fail "unnamed restore points"
python3 - "$T/rp1.json" "$T/rp2.json" <<'PY2' || fail "two unnamed restore points share a name"
import json, sys
a, b = (json.load(open(p))["restore_point"] for p in sys.argv[1:])
assert a != b and a.startswith("pgtimefs-") and "." in a, (a, b)
PY2
ok "restore-point CLUSTER NAME; a name in use refused; unnamed points named apart"
pgt check >/dev/null || fail "check is not clean"
ok "check is clean after failed and successful backups"
echo "$CHECKS passed, 0 failed"
