#!/usr/bin/env bash
# Online backup of a Citus cluster (a coordinator and two workers): the restore point is taken
# with citus_create_restore_point on the coordinator, and reaches every node's WAL; each node
# records its Citus version; the coordinator's snapshot, started on its own, has the cluster's
# metadata and answers a distributed query. Runs only where the citus extension is installed
# for PostgreSQL 15 (Debian does not package it: postgresql-15-citus comes from the Citus or
# PGDG repositories); elsewhere it is skipped, and says so.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"

PKGLIB=$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)
SHARE=$("$PG_BIN/pg_config" --sharedir 2>/dev/null || echo /usr/share/postgresql/15)
[ -f "$PKGLIB/citus.so" ] && [ -f "$SHARE/extension/citus.control" ] ||
	skip "citus is not installed for PostgreSQL 15 ($PKGLIB/citus.so): the Citus backup path is not tested here"

P1=$(free_port) P2=$(free_port) P3=$(free_port)
for n in coord:$P1 w1:$P2 w2:$P3; do
	pg_init "${n%%:*}" "${n##*:}"
	echo "shared_preload_libraries = 'citus'" >>"$PGROOT/${n%%:*}/postgresql.conf"
	pg_start "${n%%:*}"
	sql "${n##*:}" "CREATE EXTENSION citus" >/dev/null || fail "CREATE EXTENSION citus on ${n%%:*}"
done
sql "$P1" "SELECT citus_set_coordinator_host('127.0.0.1', $P1)" >/dev/null
sql "$P1" "SELECT citus_add_node('127.0.0.1', $P2)" >/dev/null
sql "$P1" "SELECT citus_add_node('127.0.0.1', $P3)" >/dev/null
sql "$P1" "CREATE TABLE dist(id int PRIMARY KEY, v text); SELECT create_distributed_table('dist', 'id');
	INSERT INTO dist SELECT g, md5(g::text) FROM generate_series(1, 10000) g" >/dev/null ||
	fail "a distributed table"
want=$(sql "$P1" "SELECT count(*) || ':' || md5(string_agg(v, '' ORDER BY id)) FROM dist")
version=$(sql "$P1" "SELECT extversion FROM pg_extension WHERE extname = 'citus'")
ok "a Citus $version cluster: coordinator and two workers, a distributed table"

cat >>"$PGTIMEFS_CONFIG" <<CONF

[cluster ctest]

[node ctest/coord]
conninfo = host=$SOCK port=$P1 user=postgres dbname=postgres
data-dir = $PGROOT/coord

[node ctest/w1]
conninfo = host=127.0.0.1 port=$P2 user=postgres dbname=postgres

[node ctest/w2]
conninfo = host=$SOCK port=$P3 user=postgres dbname=postgres
data-dir = $PGROOT/w2
CONF
pgt init >/dev/null
pgt backup ctest >"$T/backup.out" 2>&1 || { cat "$T/backup.out" >&2; fail "backup of the Citus cluster"; }
rp=$(grep -o 'restore point [^;]*' "$T/backup.out" | awk '{print $3}')
[ -n "$rp" ] || { cat "$T/backup.out" >&2; fail "the backup names no restore point"; }
ok "backup of the Citus cluster, restore point $rp"

# citus_create_restore_point writes the restore point into every node's WAL
for n in coord:$P1 w1:$P2 w2:$P3; do
	port=${n##*:}
	seg=$(sql "$port" "SELECT pg_walfile_name(pg_current_wal_lsn())")
	sql "$port" "SELECT pg_switch_wal()" >/dev/null
	"$PG_BIN/pg_waldump" -p "$PGROOT/${n%%:*}/pg_wal" "$seg" 2>/dev/null | grep -q "RESTORE_POINT.*$rp" ||
		fail "restore point $rp is not in the WAL of ${n%%:*} (segment $seg)"
done
ok "the restore point is in the WAL of all three nodes"

pgt --json list ctest >"$T/list.json"
S=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["snapshots"][-1]["snapshot"])' "$T/list.json")
n=$(python3 -c 'import json,sys; print(sum(nb.get("citus_version") == sys.argv[2] for nb in json.load(open(sys.argv[1]))["snapshots"][-1]["node_backups"]))' "$T/list.json" "$version")
[ "$n" = 3 ] || { cat "$T/list.json" >&2; fail "list records Citus $version for $n nodes, expected 3"; }
ok "each node backup records Citus $version"

# the coordinator's snapshot, on its own, has the metadata and answers a distributed query
extract "ctest/$S/coord" "$T/x-coord" >/dev/null || fail "extract the coordinator"
P4=$(free_port)
start_copy "$T/x-coord" r-coord "$P4"
nodes=$(sql "$P4" "SELECT count(*) FROM pg_dist_node")
[ "$nodes" = 3 ] || fail "the restored coordinator knows $nodes nodes, expected 3"
got=$(sql "$P4" "SELECT count(*) || ':' || md5(string_agg(v, '' ORDER BY id)) FROM dist")
[ "$got" = "$want" ] || fail "the distributed table through the restored coordinator: $got, expected $want"
ok "the coordinator's snapshot starts alone with the Citus metadata and answers a distributed query"
