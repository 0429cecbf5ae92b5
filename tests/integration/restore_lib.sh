# restore_lib.sh: a directory laid out like the mount's at/ view, for the restore tests
# (sourced after lib.sh and pglib.sh, not run). MNT/C/at/TV/<node> are real PostgreSQL base
# backups (pg_basebackup -X stream) of origin servers plus the WAL written after them, with
# the view's recovery.signal, recovery block and restore.json; the variables below say what
# each node held at each point, for the checks.
#   origin NODE ROWS     a server with ROWS rows in t (shared_buffers 16MB, ALTER SYSTEM work_mem)
#   views                the at/TV views of every node in NODES (target: end of WAL)
#   view_at T2 PG_TIME   another view at/T2 stopping at recovery_target_time PG_TIME
#   restore_json ...     (re)writes restore.json of a view
#   rsql PORT SQL        a query to a restored node, as the servers' user
MNT=$T/mnt                       # stands for the mount
C=prod
TV=2026-11-25T03:00:00Z          # the time the fixture's view stands for
NODES=(coord w1)
declare -A PORT ROWS ROWS_RP

# origin NODE ROWS: a server with ROWS rows in t, shared_buffers 16MB and an ALTER SYSTEM
origin() {
	local n=$1 rows=$2
	PORT[$n]=$(free_port)
	pg_init "o_$n" "${PORT[$n]}"
	# a limit above PostgreSQL's default, as production servers have: the restored server
	# (every parameter at its default) must keep it, or recovery refuses to run
	[ "$n" != w1 ] || echo "max_connections = 150" >>"$PGROOT/o_$n/postgresql.conf"
	pg_start "o_$n"
	sql "${PORT[$n]}" "CREATE TABLE t(id int PRIMARY KEY, pad text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, $rows) g"
	sql "${PORT[$n]}" "ALTER SYSTEM SET work_mem = '7MB'"
	sql "${PORT[$n]}" "SELECT pg_reload_conf()" >/dev/null
	[ "$(sql "${PORT[$n]}" "SHOW work_mem")" = 7MB ] || fail "ALTER SYSTEM on the origin"
}

# basebackup NODE: a base backup of NODE's origin server into PGROOT/bb_NODE
basebackup() {
	as_pg "$PG_BIN/pg_basebackup" -h "$SOCK" -p "${PORT[$1]}" -U postgres -D "$PGROOT/bb_$1" -X stream -c fast --no-sync ||
		fail "pg_basebackup $1"
}

# view_of NODE: PGROOT/bb_NODE, with the WAL its origin has written since (newer copies of
# the streamed segments too), recovery.signal and the recovery block (target: end of WAL),
# becomes MNT/C/at/TV/NODE
view_of() {
	local d=$PGROOT/bb_$1
	mkdir -p "$MNT/$C/at/$TV"
	cp "$PGROOT/o_$1/pg_wal/"0000000* "$d/pg_wal/"
	: >"$d/recovery.signal"
	printf "# pgtimefs recovery (at/%s)\nrecovery_target_action = 'promote'\nrestore_command = ''\n" "$TV" \
		>>"$d/postgresql.auto.conf"
	mv "$d" "$MNT/$C/at/$TV/$1"
}

# views: MNT/C/at/TV/NODE for every node as the at/ view shows it: a base backup, then the
# WAL after it (rows added, restore point 'rp1' on every node, TMID noted, more rows, a
# switch), recovery.signal and the recovery block (target: end of WAL)
views() {
	local n p
	for n in "${NODES[@]}"; do basebackup "$n"; done
	for n in "${NODES[@]}"; do
		p=${PORT[$n]}
		sql "$p" "INSERT INTO t SELECT g, 'after backup' FROM generate_series(1000001, 1000100) g"
		sql "$p" "SELECT pg_create_restore_point('rp1')" >/dev/null
		ROWS_RP[$n]=$(sql "$p" "SELECT count(*) FROM t")
	done
	sleep 0.1
	TMID=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
	sleep 0.1
	for n in "${NODES[@]}"; do
		p=${PORT[$n]}
		sql "$p" "INSERT INTO t SELECT g, 'after rp1' FROM generate_series(2000001, 2000050) g"
		ROWS[$n]=$(sql "$p" "SELECT count(*) FROM t")
		sql "$p" "SELECT pg_switch_wal()" >/dev/null
	done
	for n in "${NODES[@]}"; do view_of "$n"; done
}

# view_at T2 PG_TIME: another view, at/T2, with recovery_target_time = PG_TIME on every node
view_at() {
	local t2=$1 n f
	mkdir -p "$MNT/$C/at/$t2"
	for n in "${NODES[@]}"; do
		cp -a "$MNT/$C/at/$TV/$n" "$MNT/$C/at/$t2/$n"
		f=$MNT/$C/at/$t2/$n/postgresql.auto.conf
		sed -i '/^# pgtimefs recovery/,$d' "$f"
		printf "# pgtimefs recovery (at/%s)\nrecovery_target_time = '%s'\nrecovery_target_action = 'promote'\nrestore_command = ''\n" \
			"$t2" "$2" >>"$f"
	done
	restore_json rp1 "" "" "$t2" time
}

# restore_json [RP_NAME] [PG_VERSION] [CITUS] [T] [TARGET]: MNT/C/at/T/restore.json (T: TV)
restore_json() {
	local t=${4:-$TV}
	python3 - "$MNT/$C/at/$t/restore.json" "$C" "$t" "${1:-}" "${2:-$(sql "${PORT[coord]}" "SHOW server_version" | cut -d' ' -f1)}" "${3:-}" "${5:-end}" "${NODES[@]}" <<'PY'
import json, sys
path, c, t, rp, ver, citus, target, *nodes = sys.argv[1:]
doc = {"cluster": c, "time": t, "time_us": 1795575600000000, "snapshot": "2026-11-25T02:00:00Z", "target": target,
       "restore_point": {"name": rp, "time": t, "time_us": 1795575600000000} if rp else None,
       "nodes": [{"name": n, "pg_version": ver, "citus_version": citus or None, "system_id": "1", "timeline": 1}
                 for n in nodes]}
open(path, "w").write(json.dumps(doc, indent=1))
PY
}

# rsql PORT SQL: a query to a restored node, as the server's OS user (pg_hba lets only it in)
rsql() { as_pg "$PG_BIN/psql" -h "$SOCK" -p "$1" -U postgres -d postgres -X -Atq -v ON_ERROR_STOP=1 -c "$2"; }
# restored_port NODE DIR: the port the restore gave NODE
restored_port() { sed -n "s/^port = '\(.*\)'/\1/p" "$2/$1/postgresql.auto.conf"; }
# stop_restored DIR: stops every node of a restored cluster: each DIR/NODE with a
# postmaster.pid (not NODES: a cleanup hook runs after later sections have changed it)
stop_restored() {
	local d
	for d in "$1"/*/; do
		[ -e "$d/postmaster.pid" ] || continue
		as_pg "$PG_BIN/pg_ctl" -D "${d%/}" -m fast -w stop >/dev/null 2>&1 || true
	done
}

