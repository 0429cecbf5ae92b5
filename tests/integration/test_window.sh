#!/usr/bin/env bash
# The time index and the point-in-time views, on a real PostgreSQL 15 server (1 MiB segments)
# archiving with wal-push: an online backup, rows inserted in batches with a time T1 noted
# between two of them, a pg_create_restore_point, pg_switch_wal. `list --json` shows the
# window and the restore point (its LSN checked against the server and pg_waldump);
# CLUSTER/wal/NODE/FILE reads back the server's segment; a `cp -a` of the mounted
# CLUSTER/at/T1/NODE, started on its own, promotes and holds exactly the rows committed at
# T1; a copy of at/<end of the window> holds every row; a T outside the window is ENOENT in
# the mount and in `pgtimefs ls`.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
. "$(dirname "$0")/mount_lib.sh"
need_fuse

# archive_command runs as the server's user: repository, state and a wrapper belong to it
pg_repo_wrapper
mkdir -p "$T/mnt"

P=$(free_port)
pg_init main "$P" --wal-segsize=1
cat >>"$PGROOT/main/postgresql.conf" <<PGCONF
archive_mode = on
archive_command = '$W wal-push c n %p'
PGCONF
cat >>"$PGTIMEFS_CONFIG" <<CONF

[cluster c]

[node c/n]
conninfo = host=$SOCK port=$P user=postgres dbname=postgres
data-dir = $PGROOT/main
CONF
pg_repo_own
wp init >/dev/null
pg_start main
sql "$P" "CREATE TABLE t(id int PRIMARY KEY, batch int NOT NULL)"
sql "$P" "INSERT INTO t SELECT g, 1 FROM generate_series(1, 100) g"

# wait_archived: until the segment holding the current insert position is archived
wait_archived() {
	local seg i got
	seg=$(sql "$P" "SELECT pg_walfile_name(pg_switch_wal())")
	for i in $(seq 1 300); do
		got=$(sql "$P" "SELECT coalesce(last_archived_wal, '') || ' ' || failed_count FROM pg_stat_archiver")
		[ "${got#* }" = 0 ] || { tail -20 "$PGROOT/main.log" >&2; fail "archiver failures: $got"; }
		[ "${got% *}" \< "$seg" ] || return 0
		sleep 0.1
	done
	fail "segment $seg never archived (last: $got)"
}
wait_archived
wp backup c >/dev/null || fail "backup c"
S1=$(wp --json list c | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"][-1]["snapshot"])')
ok "a 1 MiB-segment server archiving with wal-push, an online backup $S1"

sleep 1.1
sql "$P" "INSERT INTO t SELECT g, 2 FROM generate_series(101, 150) g"
sleep 1.1
T1=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
sleep 1.1
sql "$P" "INSERT INTO t SELECT g, 3 FROM generate_series(151, 220) g"
before=$(sql "$P" "SELECT extract(epoch FROM clock_timestamp())::numeric * 1000000")
rp_lsn=$(sql "$P" "SELECT pg_create_restore_point('after_batch3')")
after=$(sql "$P" "SELECT extract(epoch FROM clock_timestamp())::numeric * 1000000")
rp_seg=$(sql "$P" "SELECT pg_walfile_name('$rp_lsn')")
sleep 1.1
sql "$P" "INSERT INTO t SELECT g, 4 FROM generate_series(221, 300) g"
wait_archived
ok "batches of 100, 50, 70 and 80 rows; T1=$T1 between the second and the third; restore point at $rp_lsn"

# list: the window, its end at the last commit, the restore point with its LSN and time
wp --json list c >"$T/list.json"
cat >"$T/check_list.py" <<'PY'
import json, sys, datetime
d = json.load(open(sys.argv[1]))
s1, rp_lsn, before, after, t1 = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
def us(s):
    return int(datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp() * 1e6)
snap = d["snapshots"][-1]
w = d["window"]
assert w["earliest_us"] == snap["time_us"], (w, snap["time_us"])
assert w["latest_us"] > us(t1), w
assert w["gaps"] == [], w
n = [x for x in d["nodes"] if x["node"] == "n"][0]
assert n["wal_files"] >= 3 and n["wal_bytes"] >= 3 << 20, n
assert n["window"]["earliest_us"] == w["earliest_us"] and n["window"]["latest_us"] == w["latest_us"], n
rps = [r for r in d["restore_points"] if r["name"] == "after_batch3"]
assert len(rps) == 1, d["restore_points"]
r = rps[0]
# pg_create_restore_point returns the end of the record; the index keeps its start
lsn = lambda t: int(t.split("/")[0], 16) << 32 | int(t.split("/")[1], 16)
assert lsn(rp_lsn) - 200 < lsn(r["lsn"]) < lsn(rp_lsn), (r, rp_lsn)
assert before <= r["time_us"] <= after, (r, before, after)
assert r["node"] == "n"
print(w["latest"], r["lsn"])
PY
out=$(python3 "$T/check_list.py" "$T/list.json" "$S1" "$rp_lsn" "${before%.*}" "${after%.*}" "$T1") || fail "list --json (above)"
T2=${out% *} rp_start=${out#* }
wp list c >"$T/list.txt"
grep -q "cluster .* \.\. " "$T/list.txt" && grep -q "after_batch3" "$T/list.txt" || { cat "$T/list.txt" >&2; fail "list c (text) lacks the window or the restore point"; }
ok "list c: window from the snapshot to $T2 (past T1) without gaps, restore point after_batch3 at $rp_start, in time"

mount_fg m "$T/mnt"
M=$T/mnt/c
# wal/: the archived segment holding the restore point reads back as the server wrote it
[ -f "$PGROOT/main/pg_wal/$rp_seg" ] || fail "$rp_seg is no longer in the server's pg_wal"
cmp "$M/wal/n/$rp_seg" "$PGROOT/main/pg_wal/$rp_seg" || fail "wal/n/$rp_seg differs from the server's"
[ "$(stat -c %s "$M/wal/n/$rp_seg")" = 1048576 ] || fail "wal/n/$rp_seg has the wrong size"
ls "$M/wal/n" | grep -qx "$rp_seg" || fail "wal/n does not list $rp_seg"
"$PG_BIN/pg_waldump" "$M/wal/n/$rp_seg" 2>/dev/null | grep "RESTORE_POINT after_batch3" >"$T/rp" || fail "pg_waldump finds no restore point in wal/n/$rp_seg"
grep -q "lsn: $(printf '%X/%08X' "0x${rp_start%/*}" "0x${rp_start#*/}")," "$T/rp" || { cat "$T/rp" >&2; fail "pg_waldump places the restore point elsewhere than $rp_start (list)"; }
ok "wal/n/$rp_seg: the server's bytes, 1 MiB, listed; pg_waldump finds after_batch3 at $rp_start as list says"

# at/T1: restore.json and the recovery block
python3 - "$M/at/$T1/restore.json" "$T1" "$S1" <<'PY' || fail "restore.json (above)"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["cluster"] == "c" and d["snapshot"] == sys.argv[3] and d["target"] == "time", d
assert d["time"] == sys.argv[2], d
assert [n["name"] for n in d["nodes"]] == ["n"] and d["nodes"][0]["pg_version"].startswith("15"), d
assert d["nodes"][0]["timeline"] == 1 and d["nodes"][0]["system_id"], d
# the newest restore point before T1: the one pgtimefs created to close the snapshot
assert d["restore_point"]["name"].startswith("pgtimefs-"), d
PY
tail -4 "$M/at/$T1/n/postgresql.auto.conf" >"$T/block"
grep -qx "# pgtimefs recovery (at/$T1)" "$T/block" && grep -q "^recovery_target_time = '" "$T/block" &&
	grep -qx "recovery_target_action = 'promote'" "$T/block" || { cat "$T/block" >&2; fail "the recovery block"; }
[ -f "$M/at/$T1/n/recovery.signal" ] && [ ! -s "$M/at/$T1/n/recovery.signal" ] || fail "recovery.signal"
ls "$M/at/$T1/n" | grep -qx recovery.signal || fail "the node's listing lacks recovery.signal"
[ "$(pgt cat "c/at/$T1/n/postgresql.auto.conf" | md5sum)" = "$(md5sum <"$M/at/$T1/n/postgresql.auto.conf")" ] ||
	fail "pgtimefs cat and the mount differ on postgresql.auto.conf"
[ "$(stat -c %s "$M/at/$T1/n/postgresql.auto.conf")" = "$(wc -c <"$M/at/$T1/n/postgresql.auto.conf")" ] ||
	fail "postgresql.auto.conf: stat size and bytes differ"
ls "$M/at/$T1/n/pg_wal" | grep -qx "$rp_seg" || fail "at/T1/n/pg_wal lacks $rp_seg"
cmp "$M/at/$T1/n/pg_wal/$rp_seg" "$PGROOT/main/pg_wal/$rp_seg" || fail "at/T1/n/pg_wal/$rp_seg differs"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["restore_point"]["name"] == "after_batch3" and d["target"] == "end", d' \
	"$M/at/$T2/restore.json" || fail "restore.json at T2 does not name after_batch3, or its target is not the end"
! grep -q "^recovery_target_time" "$M/at/$T2/n/postgresql.auto.conf" || fail "at/T2 (the last commit) sets recovery_target_time"
ok "at/T1: restore.json (naming the snapshot's restore point), the recovery block, recovery.signal, pg_wal with the archived segments; at/T2 names after_batch3"

# outside the window: ENOENT, in the mount and in pgtimefs ls
for bad in 2001-01-01T00:00:00Z 2099-01-01T00:00:00Z not-a-time; do
	if stat "$M/at/$bad" >/dev/null 2>"$T/err"; then fail "at/$bad exists"; fi
	grep -q "No such file or directory" "$T/err" || { cat "$T/err" >&2; fail "at/$bad: not ENOENT"; }
	expect_fail "pgtimefs ls c/at/$bad" 1 pgt ls "c/at/$bad"
	err_has "no such file or directory"
done
expect_fail "pgtimefs ls c/at/2099" 1 pgt ls c/at/2099-01-01T00:00:00Z
err_has "outside the restorable window"
ok "a T outside the window is ENOENT in the mount and in pgtimefs ls"

# the restore: cp -a of at/T1/n, started on its own, holds exactly the rows committed at T1
restore_at() { # NAME T: copies at/T/n out and starts it; echoes the port
	local name=$1 t=$2 port i
	port=$(free_port)
	cp -a "$M/at/$t/n" "$T/$name" || fail "cp -a at/$t/n"
	start_copy "$T/$name" "$name" "$port"
	for i in $(seq 1 300); do
		[ "$(sql "$port" "SELECT pg_is_in_recovery()" 2>/dev/null)" = f ] && break
		sleep 0.1
	done
	[ "$(sql "$port" "SELECT pg_is_in_recovery()")" = f ] || { tail -20 "$PGROOT/$name.log" >&2; fail "$name never promoted"; }
	echo "$port"
}
P1=$(restore_at r1 "$T1")
got=$(sql "$P1" "SELECT count(*) || ':' || max(id) || ':' || max(batch) FROM t")
[ "$got" = "150:150:2" ] || { tail -20 "$PGROOT/r1.log" >&2; fail "the copy of at/T1 holds $got, expected 150:150:2"; }
grep -q "recovery stopping before commit" "$PGROOT/r1.log" || grep -q "recovery stopping" "$PGROOT/r1.log" ||
	{ tail -20 "$PGROOT/r1.log" >&2; fail "r1: recovery did not stop at the target"; }
ok "cp -a of at/T1/n promoted with exactly the 150 rows committed at T1"
pg_stop r1

P2=$(restore_at r2 "$T2")
got=$(sql "$P2" "SELECT count(*) FROM t")
[ "$got" = 300 ] || { tail -20 "$PGROOT/r2.log" >&2; fail "the copy of at/T2 (end of the window) holds $got rows, expected 300"; }
ok "cp -a of at/T2 (the last commit: no target time) replayed to the end: 300 rows"
pg_stop r2

stop_mount "$T/mnt" "$MPID"
finish
