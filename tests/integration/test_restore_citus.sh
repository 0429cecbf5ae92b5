#!/usr/bin/env bash
# Point-in-time restore of a Citus cluster (a coordinator and two workers) through the mount:
# WAL archived by wal-push, a backup (its restore point made by citus_create_restore_point),
# rows added, T noted, the distributed table emptied; `pgtimefs restore --consistent --start`
# and `--time T --start` give a new cluster whose coordinator's pg_dist_node points at the
# restored workers (citus_update_node) and whose distributed table, read through the
# coordinator, holds what it held at the restore point and at T. Runs only where the citus
# extension is installed for PostgreSQL 15 (Debian does not package it); elsewhere it is
# skipped, and says so.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
. "$(dirname "$0")/mount_lib.sh"
PKGLIB=$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)
SHARE=$("$PG_BIN/pg_config" --sharedir 2>/dev/null || echo /usr/share/postgresql/15)
[ -f "$PKGLIB/citus.so" ] && [ -f "$SHARE/extension/citus.control" ] ||
	skip "citus is not installed for PostgreSQL 15 ($PKGLIB/citus.so): the Citus restore path is not tested here"
need_fuse

# the repository belongs to the servers' user, who runs archive_command (as in test_pitr)
pg_repo_wrapper
mkdir -p "$T/mnt"

NODES=(coord w1 w2)
declare -A PORT
echo "" >>"$PGTIMEFS_CONFIG"
echo "[cluster ctest]" >>"$PGTIMEFS_CONFIG"
for n in "${NODES[@]}"; do
	PORT[$n]=$(free_port)
	pg_init "$n" "${PORT[$n]}"
	cat >>"$PGROOT/$n/postgresql.conf" <<PGCONF
shared_preload_libraries = 'citus'
archive_mode = on
archive_command = '$W wal-push ctest $n %p'
PGCONF
	printf '\n[node ctest/%s]\nconninfo = host=%s port=%s user=postgres dbname=postgres\n' "$n" "$SOCK" "${PORT[$n]}" >>"$PGTIMEFS_CONFIG"
done
pg_repo_own
wp init >/dev/null
for n in "${NODES[@]}"; do
	pg_start "$n"
	sql "${PORT[$n]}" "CREATE EXTENSION citus" >/dev/null || fail "CREATE EXTENSION citus on $n"
done
C=${PORT[coord]}
sql "$C" "SELECT citus_set_coordinator_host('127.0.0.1', $C)" >/dev/null
sql "$C" "SELECT citus_add_node('127.0.0.1', ${PORT[w1]})" >/dev/null
sql "$C" "SELECT citus_add_node('127.0.0.1', ${PORT[w2]})" >/dev/null
sql "$C" "CREATE TABLE dist(id int PRIMARY KEY, v text); SELECT create_distributed_table('dist', 'id');
	INSERT INTO dist SELECT g, md5(g::text) FROM generate_series(1, 10000) g" >/dev/null || fail "a distributed table"
distsum() { "$PG_BIN/psql" -h "${2:-$SOCK}" -p "$1" -U postgres -d postgres -X -Atq -v ON_ERROR_STOP=1 \
	-c "SELECT count(*) || ':' || md5(string_agg(v, '' ORDER BY id)) FROM dist"; }
wp --json backup ctest >"$T/backup.json" || fail "backup of the Citus cluster"
rp=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["restore_point"])' "$T/backup.json")
SUM_RP=$(distsum "$C")
ok "a Citus cluster archiving with wal-push, backed up (restore point $rp)"

sql "$C" "INSERT INTO dist SELECT g, md5(g::text) FROM generate_series(10001, 12000) g" >/dev/null
SUM_T=$(distsum "$C")
next_second
TT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sleep 1.1
sql "$C" "DELETE FROM dist" >/dev/null
for n in "${NODES[@]}"; do pg_switch_archived "$n" "${PORT[$n]}"; done
ok "2000 rows more, T = $TT, then DELETE FROM dist; WAL archived"

mount_fg m "$T/mnt"
conf_port() { sed -n "/^\[node [^/]*\/$2\]/,/^\[/s/.*port=\([0-9]*\).*/\1/p" "$1/pgtimefs-cluster.conf" | head -1; }
conf_host() { sed -n 's/.*conninfo *=.*host=\([^ ]*\).*/\1/p' "$1/pgtimefs-cluster.conf" | head -1; }
stop_restored() {
	local n
	for n in "${NODES[@]}"; do
		[ -f "$1/$n/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$1/$n" -m fast -w stop >/dev/null 2>&1
	done
	return 0
}
# check_restored DIR WANT WHAT: the coordinator's pg_dist_node names the restored workers, and
# the distributed table read through it equals WANT
check_restored() {
	local d=$1 want=$2 host p got n
	host=$(conf_host "$d")
	p=$(conf_port "$d" coord)
	for n in w1 w2; do
		[ "$(as_pg "$PG_BIN/psql" -h "$host" -p "$p" -U postgres -d postgres -XAtq \
			-c "SELECT count(*) FROM pg_dist_node WHERE nodeport = $(conf_port "$d" "$n")")" = 1 ] ||
			fail "$3: pg_dist_node does not point at the restored $n"
	done
	got=$(as_pg "$PG_BIN/psql" -h "$host" -p "$p" -U postgres -d postgres -X -Atq -v ON_ERROR_STOP=1 \
		-c "SELECT count(*) || ':' || md5(string_agg(v, '' ORDER BY id)) FROM dist") || fail "$3: the distributed query failed"
	[ "$got" = "$want" ] || fail "$3: dist is $got through the restored coordinator, expected $want"
}

"$PGT" restore --from "$T/mnt" --cluster ctest --time "$TT" --target "$T/r1" --consistent --start --port "$(free_port 4)" \
	>"$T/r1.out" 2>&1 || { cat "$T/r1.out" >&2; fail "restore --consistent of the Citus cluster"; }
cleanup_hooks=("stop_restored '$T/r1'" "${cleanup_hooks[@]}")
check_restored "$T/r1" "$SUM_RP" "--consistent"
stop_restored "$T/r1"
ok "restore --consistent: every node at $rp, pg_dist_node repointed, the distributed table as at the backup"

"$PGT" restore --from "$T/mnt" --cluster ctest --time "$TT" --target "$T/r2" --start --port "$(free_port 4)" \
	>"$T/r2.out" 2>&1 || { cat "$T/r2.out" >&2; fail "restore to $TT of the Citus cluster"; }
cleanup_hooks=("stop_restored '$T/r2'" "${cleanup_hooks[@]}")
check_restored "$T/r2" "$SUM_T" "--time $TT"
stop_restored "$T/r2"
ok "restore to $TT: the distributed table as it was at T, through the repointed coordinator"

stop_mount "$T/mnt" "$MPID"
finish
