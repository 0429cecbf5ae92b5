#!/usr/bin/env bash
# Tablespaces, backed up on both paths and restored through the mount. Two PostgreSQL 15
# servers archiving with wal-push, each with a tablespace in a directory outside its data
# directory holding a table and its indexes (and a table in the default tablespace): `s` is
# backed up over the replication protocol (BASE_BACKUP's tablespace archive), `l` on the local
# path (the pg_tblspc symlink followed). Checks: the snapshot stores pg_tblspc/<oid> as a
# directory whose relation files equal the original tablespace's right after the backup, and
# no tablespace_map; rows are written after the backup, T1 noted, then the tables emptied;
# the original servers are stopped and their tablespace directories moved away; `pgtimefs
# restore --time T1 --start` from the mount gives servers that reach consistency (backup_label,
# no tablespace_map, a directory in pg_tblspc: PostgreSQL 15 PANICs there unless
# allow_in_place_tablespaces is on), with the tablespace in pg_tablespace, an in-place
# location, the tables' checksums of T1, a usable index, no link to the original directory,
# and a tablespace that takes writes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
. "$(dirname "$0")/mount_lib.sh"
need_fuse

pg_repo_wrapper
NODES=(s l)
declare -A PORT TS OID
for n in "${NODES[@]}"; do
	PORT[$n]=$(free_port)
	pg_init "$n" "${PORT[$n]}"
	cat >>"$PGROOT/$n/postgresql.conf" <<PGCONF
archive_mode = on
archive_command = '$W wal-push prod $n %p'
PGCONF
	TS[$n]=$T/ts_$n # outside the data directory
	mkdir -m 0700 "${TS[$n]}"
	chown "$PG_USER" "${TS[$n]}"
done
cat >>"$PGTIMEFS_CONFIG" <<CONF

[cluster prod]

[node prod/s]
conninfo = host=$SOCK port=${PORT[s]} user=postgres dbname=postgres

[node prod/l]
conninfo = host=$SOCK port=${PORT[l]} user=postgres dbname=postgres
data-dir = $PGROOT/l
CONF
pg_repo_own
wp init >/dev/null
for n in "${NODES[@]}"; do pg_start "$n"; done

SUMS_SQL="SELECT 'tt ' || count(*) || ' ' || md5(coalesce(string_agg(id || ':' || v, ',' ORDER BY id), '')) FROM tt
	UNION ALL SELECT 'dt ' || count(*) || ' ' || md5(coalesce(string_agg(v, ',' ORDER BY id), '')) FROM dt"
for n in "${NODES[@]}"; do
	p=${PORT[$n]}
	sql "$p" "CREATE TABLESPACE tsp LOCATION '${TS[$n]}'"
	sql "$p" "CREATE TABLE tt(id int, v text NOT NULL) WITH (autovacuum_enabled = off) TABLESPACE tsp;
		ALTER TABLE tt ADD PRIMARY KEY (id) USING INDEX TABLESPACE tsp;
		CREATE INDEX tt_v ON tt(v) TABLESPACE tsp;
		CREATE TABLE dt(id int PRIMARY KEY, v text NOT NULL);
		INSERT INTO tt SELECT g, md5('$n' || g) FROM generate_series(1, 3000) g;
		INSERT INTO dt SELECT g, md5((-g)::text) FROM generate_series(1, 500) g"
	sql "$p" "VACUUM (FREEZE) tt" # hint bits and the visibility map now: the files stay as they are
	OID[$n]=$(sql "$p" "SELECT oid FROM pg_tablespace WHERE spcname = 'tsp'")
	[ "$(readlink "$PGROOT/$n/pg_tblspc/${OID[$n]}")" = "${TS[$n]}" ] || fail "$n: pg_tblspc/${OID[$n]} is not a link to ${TS[$n]}"
	[ -n "$(find "${TS[$n]}" -type f -name '[0-9]*')" ] || fail "$n: no relation file in ${TS[$n]}"
done
ok "two servers with tablespace tsp (table tt, its primary key and index tt_v) outside the data directory"

wp --json backup prod >"$T/backup.json" || fail "backup"
python3 - "$T/backup.json" <<'PY' || fail "backup paths"
import json, sys
r = json.load(open(sys.argv[1]))
paths = {n["node"]: n["path"] for n in r["nodes"]}
assert paths == {"s": "stream", "l": "local"}, paths
PY
# the tablespaces as the backup read them: nothing writes to tt until the rows below
for n in "${NODES[@]}"; do cp -a "${TS[$n]}" "$T/ts_$n.at-backup"; done
S1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["snapshot"])' "$T/backup.json")
ok "backup $S1: s over the replication protocol, l on the local path"

declare -A SUM_T1
for n in "${NODES[@]}"; do
	sql "${PORT[$n]}" "INSERT INTO tt SELECT g, 'after backup ' || g FROM generate_series(3001, 3200) g;
		UPDATE tt SET v = 'updated ' || id WHERE id % 100 = 0;
		INSERT INTO dt SELECT g, 'after backup' FROM generate_series(501, 550) g"
	SUM_T1[$n]=$(sql "${PORT[$n]}" "$SUMS_SQL")
done
next_second
T1=$(date -u +%Y-%m-%dT%H:%M:%SZ)
next_second
for n in "${NODES[@]}"; do
	sql "${PORT[$n]}" "DELETE FROM tt; DELETE FROM dt"
	pg_switch_archived "$n" "${PORT[$n]}"
done
ok "rows written after the backup, T1 = $T1, then tt and dt emptied; WAL archived"

# a tablespace created after the backup, on s: replaying its CREATE TABLESPACE would link the
# restored node to this directory (of the original server): restore refuses a time after it
mkdir -m 0700 "$T/ts2_s"
chown "$PG_USER" "$T/ts2_s"
sql "${PORT[s]}" "CREATE TABLESPACE ts2 LOCATION '$T/ts2_s'"
sql "${PORT[s]}" "CREATE TABLE t2(x int) TABLESPACE ts2; INSERT INTO t2 VALUES (1)"
next_second
T2=$(date -u +%Y-%m-%dT%H:%M:%SZ)
next_second
for n in "${NODES[@]}"; do # a commit after T2 on every node: T2 is inside the cluster's window
	sql "${PORT[$n]}" "CREATE TABLE after_t2(x int)"
	pg_switch_archived "$n" "${PORT[$n]}"
done

F=$T/mnt
mkdir "$F"
mount_fg m "$F"
for n in "${NODES[@]}"; do
	V=$F/prod/$S1/$n
	[ -d "$V/pg_tblspc/${OID[$n]}" ] && [ ! -L "$V/pg_tblspc/${OID[$n]}" ] ||
		late_fail "$n: the snapshot's pg_tblspc/${OID[$n]} is not a directory"
	[ ! -e "$V/tablespace_map" ] || late_fail "$n: the snapshot holds a tablespace_map"
	[ -f "$V/backup_label" ] || late_fail "$n: the snapshot has no backup_label"
	LC_ALL=C diff -r "$T/ts_$n.at-backup" "$V/pg_tblspc/${OID[$n]}" >&2 ||
		late_fail "$n: the snapshot's tablespace differs from the original's (above)"
	nf=$(find "$V/pg_tblspc/${OID[$n]}" -type f | wc -l)
	[ "$nf" -ge 5 ] || late_fail "$n: only $nf files in the snapshot's tablespace"
done
ok "the snapshot: pg_tblspc/<oid> a directory equal to the original tablespace after the backup, backup_label, no tablespace_map"
# where each tablespace was is kept in the catalog, on both paths ("<oid> <path>", as
# pg_backup_stop's tablespace_map gives it)
for n in "${NODES[@]}"; do
	map=$(cat_q "SELECT nb.tablespace_map FROM node_backups nb JOIN nodes d ON d.id = nb.node WHERE d.name = '$n' ORDER BY nb.id LIMIT 1")
	grep -qx "${OID[$n]} $(readlink -f "${TS[$n]}")" <<<"$map" || grep -qx "${OID[$n]} ${TS[$n]}" <<<"$map" ||
		late_fail "$n: the catalog's tablespace map is '$map', not '${OID[$n]} ${TS[$n]}'"
done
ok "the catalog keeps each tablespace's original location, over the network and locally"

# the originals go away, and so do their tablespace directories: the restore must not need them
for n in "${NODES[@]}"; do
	pg_stop "$n"
	mv "${TS[$n]}" "${TS[$n]}.moved"
done

# a copy of the at/ view, started by hand: its recovery block must let recovery finish
V=$F/prod/at/$T1/s
grep -qx "allow_in_place_tablespaces = 'on'" "$V/postgresql.auto.conf" || late_fail "s: the view's recovery block lacks allow_in_place_tablespaces"
[ ! -e "$V/tablespace_map" ] || late_fail "s: the at/ view shows a tablespace_map"
cp -a "$V" "$PGROOT/view_s"
chown -R "$PG_USER" "$PGROOT/view_s"
chmod 0700 "$PGROOT/view_s"
p=$(free_port)
pg_start view_s "-p $p -c listen_addresses='' -c archive_mode=off"
for i in $(seq 1 100); do [ "$(sql "$p" "SELECT pg_is_in_recovery()")" = f ] && break; sleep 0.1; done
got=$(sql "$p" "$SUMS_SQL") || late_fail "s: the copy of the at/ view does not answer"
[ "$got" = "${SUM_T1[s]}" ] || late_fail "s: the copy of at/$T1 has '$got', T1 had '${SUM_T1[s]}'"
pg_stop view_s
ok "a copy of the at/$T1 view (backup_label, no tablespace_map, pg_tblspc/<oid> a directory) recovers to T1's rows"

# restore to T2: the WAL to replay creates ts2 outside the new cluster: refused, before any
# server starts, naming the tablespace; the original's directory untouched
before=$(find "$T/ts2_s" | sort | md5sum)
expect_fail "restore to $T2 (after CREATE TABLESPACE)" 2 "$PGT" restore --from "$F" --cluster prod --time "$T2" \
	--target "$T/r2" --start --port "$(free_port 4)" --socket-dir "$SOCK"
err_has "creates tablespace"
err_has "$T/ts2_s"
err_has "--allow-tablespace-links"
[ "$(find "$T/ts2_s" | sort | md5sum)" = "$before" ] || late_fail "a refused restore changed the original's tablespace directory"
[ -e "$T/r2/RESTORE-INCOMPLETE" ] || late_fail "a refused restore left no RESTORE-INCOMPLETE marker"
! ls "$T/r2"/*/postmaster.pid >/dev/null 2>&1 || late_fail "a refused restore started a server"
ok "restore to $T2, after CREATE TABLESPACE ... LOCATION outside: refused before any server starts, the tablespace named"

R=$T/r
"$PGT" --json restore --from "$F" --cluster prod --time "$T1" --target "$R" --start --port "$(free_port 4)" --socket-dir "$SOCK" \
	>"$T/r.json" 2>"$T/r.err" || { cat "$T/r.err" "$R"/*.log >&2; fail "restore to $T1"; }
cleanup_hooks=("for n in ${NODES[*]}; do as_pg $PG_BIN/pg_ctl -D $R/\$n -m fast -w stop >/dev/null 2>&1; done" "${cleanup_hooks[@]}")
rsql() { as_pg "$PG_BIN/psql" -h "$SOCK" -p "$1" -U postgres -d postgres -X -Atq -v ON_ERROR_STOP=1 -c "$2"; }
for n in "${NODES[@]}"; do
	D=$R/$n
	p=$(sed -n "s/^port = '\(.*\)'/\1/p" "$D/postgresql.auto.conf")
	[ "$(rsql "$p" "SELECT pg_is_in_recovery()")" = f ] || fail "$n: still in recovery"
	[ -d "$D/pg_tblspc/${OID[$n]}" ] && [ ! -L "$D/pg_tblspc/${OID[$n]}" ] || fail "$n: restored pg_tblspc/${OID[$n]} is not a directory"
	[ -z "$(find "$D" -type l)" ] || fail "$n: symlinks in the restored node: $(find "$D" -type l | head -3)"
	[ ! -e "$D/tablespace_map" ] && [ ! -e "$D/tablespace_map.old" ] || fail "$n: a tablespace_map in the restored node"
	! grep -rqF "${TS[$n]}" "$D" --exclude-dir=pg_wal || fail "$n: the restored node names the original tablespace directory"
	[ "$(rsql "$p" "SELECT oid FROM pg_tablespace WHERE spcname = 'tsp'")" = "${OID[$n]}" ] || fail "$n: tsp missing from pg_tablespace"
	loc=$(rsql "$p" "SELECT pg_tablespace_location(${OID[$n]})")
	[ "$loc" = "pg_tblspc/${OID[$n]}" ] || fail "$n: pg_tablespace_location is '$loc'"
	f=$(rsql "$p" "SELECT pg_relation_filepath('tt')")
	case $f in pg_tblspc/${OID[$n]}/PG_15_*/*) ;; *) fail "$n: tt is at $f" ;; esac
	[ -f "$D/$f" ] || fail "$n: $D/$f is missing"
	got=$(rsql "$p" "$SUMS_SQL")
	[ "$got" = "${SUM_T1[$n]}" ] || { printf 'want:\n%s\ngot:\n%s\n' "${SUM_T1[$n]}" "$got" >&2; fail "$n: tables differ from T1"; }
	plan=$(rsql "$p" "SET enable_seqscan = off; SET enable_bitmapscan = off; EXPLAIN (COSTS off) SELECT id FROM tt WHERE v = 'updated 1500'")
	grep -q "Index.* Scan using tt_v on tt" <<<"$plan" || fail "$n: no index scan on tt_v: $plan"
	got=$(rsql "$p" "SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT string_agg(id::text, ',' ORDER BY id) FROM tt WHERE v IN ('updated 1500', 'after backup 3101', '$(printf '%s' "${n}7" | md5sum | cut -d' ' -f1)')")
	[ "$got" = "7,1500,3101" ] || fail "$n: the index scan on tt_v returns '$got'"
	got=$(rsql "$p" "SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM tt WHERE id BETWEEN 2990 AND 3010")
	[ "$got" = 21 ] || fail "$n: the primary key scan returns $got rows"
	rsql "$p" "INSERT INTO tt VALUES (-1, 'after restore'); CREATE TABLE tt2 TABLESPACE tsp AS SELECT 1 AS x; CHECKPOINT"
	f=$(rsql "$p" "SELECT pg_relation_filepath('tt2')")
	[ -f "$D/$f" ] && [ "${f#pg_tblspc/"${OID[$n]}"/}" != "$f" ] || fail "$n: tt2 is not in the restored tablespace ($f)"
	echo "  $n: port $p, tsp at '$loc', tt2 at $f"
done
ok "restore to $T1 (original tablespaces moved away): tsp in pg_tablespace at pg_tblspc/<oid>, tables equal T1's, index scans right, no link out, writable"
for n in "${NODES[@]}"; do as_pg "$PG_BIN/pg_ctl" -D "$R/$n" -m fast -w stop >/dev/null; done

stop_mount "$F" "$MPID"
finish
