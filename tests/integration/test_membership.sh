#!/usr/bin/env bash
# A node leaves the cluster: nodes a and b archive with wal-push and are backed up together;
# then b leaves the configuration and the next backup is of a alone. The cluster's window goes
# on past that backup with a's WAL (b no longer holds it back), the at/ view of a later time
# holds a alone, and a restore to it holds a's newest rows; before the second backup, both
# nodes are in the view.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
. "$(dirname "$0")/mount_lib.sh"
need_fuse
pg_repo_wrapper
mkdir -p "$T/mnt"
declare -A PORT
for n in a b; do
	PORT[$n]=$(free_port)
	pg_init_archiving "$n" "${PORT[$n]}" c "$n" --wal-segsize=1
done
cp "$PGTIMEFS_CONFIG" "$T/base.conf"
{
	printf '\n[cluster c]\n'
	conf_node c a "${PORT[a]}"
	conf_node c b "${PORT[b]}"
} >>"$PGTIMEFS_CONFIG"
pg_repo_own
wp init >/dev/null
for n in a b; do
	pg_start "$n"
	sql "${PORT[$n]}" "CREATE TABLE t(id int)"
done
wp backup c >/dev/null || fail "the backup of a and b"
for n in a b; do
	sql "${PORT[$n]}" "INSERT INTO t VALUES (1)"
	pg_switch_archived "$n" "${PORT[$n]}"
done
T1=$(wp --json list c | python3 -c 'import json,sys; print(json.load(sys.stdin)["window"]["latest"])')
ok "a and b backed up together and archiving; the window reaches $T1"

# b leaves: the configuration names a alone, b stops
{
	cat "$T/base.conf"
	printf '\n[cluster c]\n'
	conf_node c a "${PORT[a]}"
} >"$PGTIMEFS_CONFIG"
pg_stop b
next_second
wp backup c >/dev/null || fail "the backup of a alone"
sql "${PORT[a]}" "INSERT INTO t VALUES (2)"
pg_switch_archived a "${PORT[a]}"
sleep 0.2
sql "${PORT[a]}" "INSERT INTO t VALUES (3)"
pg_switch_archived a "${PORT[a]}"
LATEST=$(wp --json list c | python3 -c 'import json,sys; print(json.load(sys.stdin)["window"]["latest"])')
wp --json list c | python3 -c 'import json, sys
d = json.load(sys.stdin)
second = max(s["time_us"] for s in d["snapshots"])
sys.exit(0 if d["window"]["latest_us"] > second else 1)' ||
	fail "the window ends at $LATEST, not past the backup of a alone (b holds it back)"
ok "with b gone, the window goes on with a's WAL: $LATEST"

mount_fg m "$T/mnt"
ls "$T/mnt/c/at/$LATEST" >"$T/later" || fail "cannot list at/$LATEST"
grep -qx a "$T/later" && ! grep -qx b "$T/later" || { cat "$T/later"; fail "at/$LATEST does not hold a alone"; }
ls "$T/mnt/c/at/$T1" >"$T/earlier" || fail "cannot list at/$T1"
grep -qx a "$T/earlier" && grep -qx b "$T/earlier" || { cat "$T/earlier"; fail "at/$T1 does not hold a and b"; }
ok "at/ of a later time holds a alone; at/ of a time before b left holds both"

P0=$(free_port)
"$PGT" restore --from "$T/mnt" --cluster c --time "$LATEST" --target "$T/r1" --start --port "$P0" --socket-dir "$SOCK" \
	>"$T/r1.out" 2>"$T/r1.err" || { cat "$T/r1.err"; fail "restore to $LATEST"; }
cleanup_hooks+=("as_pg '$PG_BIN/pg_ctl' -D '$T/r1/a' -m fast stop >/dev/null 2>&1")
got=$(as_pg "$PG_BIN/psql" -h "$SOCK" -p "$P0" -U postgres -d postgres -XAtq -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM t")
[ "$got" = "1,2,3" ] || fail "the restored a holds '$got', not 1,2,3"
[ ! -e "$T/r1/b" ] || fail "the restore made a node b"
ok "a restore to $LATEST: node a alone, with every row"
stop_mount "$T/mnt" "$MPID"
echo "$CHECKS passed, 0 failed"
