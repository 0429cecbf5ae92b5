#!/usr/bin/env bash
# Two timelines that fork off timeline 1 at different points, archived into one node (a
# promotion, then an old copy of the data directory promoted from the same archive, as after
# a failover to a stale standby): the window after a backup on timeline 2 follows timeline 2
# only. Timeline 3 is newer and its segments carry the same numbers, but it does not descend
# from 2: PostgreSQL refuses to recover a timeline-2 backup along it ("requested timeline 3 is
# not a child of this server's history"). So the window ends at timeline 2's last commit, the
# at/ view shows no 00000003.history, and a restore to the window's end holds timeline 2's rows.
# And wal-stream of a node archived on timeline 2 refuses timeline 3's server.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
. "$(dirname "$0")/mount_lib.sh"
need_fuse
pg_repo_wrapper
mkdir -p "$T/mnt"
P=$(free_port)
pg_archiving_node "$P"
hline() { cat_q "SELECT h.parent FROM wal_history h JOIN nodes d ON d.id = h.node WHERE d.name = 'n' AND h.tli = $1"; }
sql "$P" "CREATE TABLE t(id int); INSERT INTO t VALUES (1)"
pg_switch_archived n "$P"
pg_stop n
cp -a "$PGROOT/n" "$PGROOT/old" # timeline 1 as it was: the stale copy
pg_start n
sql "$P" "INSERT INTO t VALUES (10)"
pg_switch_archived n "$P"
pg_promote_by_crash n "$P" # timeline 2
[ "$(sql "$P" "SELECT timeline_id FROM pg_control_checkpoint()")" = 2 ] || fail "the server is not on timeline 2"
sql "$P" "INSERT INTO t VALUES (2)"
wp backup c >/dev/null || fail "backup on timeline 2"
sql "$P" "INSERT INTO t VALUES (22)"
pg_switch_archived n "$P"
pg_switch_archived n "$P"
last2=$(sql "$P" "SELECT pg_walfile_name(pg_current_wal_lsn())")
# node s2: timeline 2 streamed by wal-stream (checked against timeline 3's server below)
printf '[node c/s2]\nconninfo = host=%s port=%s user=postgres dbname=postgres\n' "$SOCK" "$P" >>"$PGTIMEFS_CONFIG"
wp wal-stream c s2 --until-lsn "$(sql "$P" "SELECT pg_current_wal_lsn()")" >/dev/null 2>"$T/s2.err" ||
	{ cat "$T/s2.err"; fail "wal-stream c s2 on timeline 2"; }
pg_stop n
fork_after=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ) # every commit of timeline 3 comes later
ok "timeline 2 archived to segment ${last2:16}, a backup on it"

# the copy, promoted at once from the same archive: it finds 00000002.history there and takes 3
as_pg rm -f "$PGROOT/old/postmaster.pid"
cat >>"$PGROOT/old/postgresql.conf" <<EOF
restore_command = '$W wal-fetch c n %f %p'
recovery_target = 'immediate'
recovery_target_timeline = '1'
recovery_target_action = 'promote'
EOF
as_pg touch "$PGROOT/old/recovery.signal"
sleep 1.1 # timeline 3's commits must come after fork_after in whole microseconds and more
pg_start old
for k in $(seq 1 100); do [ "$(sql "$P" 'SELECT pg_is_in_recovery()')" = f ] && break; sleep 0.1; done
[ "$(sql "$P" "SELECT timeline_id FROM pg_control_checkpoint()")" = 3 ] ||
	{ tail -20 "$PGROOT/old.log" >&2; fail "the old copy did not promote to timeline 3"; }
sql "$P" "INSERT INTO t VALUES (3)"
for k in $(seq 1 40); do # timeline 3 past timeline 2's segments
	now=$(sql "$P" "SELECT pg_walfile_name(pg_current_wal_lsn())")
	[[ "${now:8}" > "${last2:8}" ]] && break
	sql "$P" "INSERT INTO t VALUES (3)"
	pg_switch_archived old "$P"
done
pg_switch_archived old "$P"
[ "$(cat_q "SELECT count(*) FROM wal WHERE timeline = 3 AND segno IS NOT NULL AND name > '00000003${last2:8}'")" -ge 1 ] ||
	fail "timeline 3 has no archived segment after ${last2:8}"
[ "$(hline 3)" = 1 ] || fail "00000003.history's line is not recorded"
[ "$(hline 2)" = 1 ] || fail "00000002.history's line is not recorded"
# wal-stream of node s2 (its archive on timeline 2) at timeline 3's server: refused, retried,
# nothing stored, no slot made
n0=$(cat_q "SELECT count(*) FROM wal")
wp wal-stream c s2 --duration 2 >/dev/null 2>"$T/s2b.err" || { cat "$T/s2b.err"; fail "wal-stream c s2 --duration 2 exited non-zero"; }
grep -q "the server is on timeline 3, which does not descend from timeline 2" "$T/s2b.err" || { cat "$T/s2b.err"; fail "no refusal naming the timelines"; }
grep -q "HINT:" "$T/s2b.err" && grep -q "reconnecting" "$T/s2b.err" || { cat "$T/s2b.err"; fail "no hint or no retry"; }
[ "$(cat_q "SELECT count(*) FROM wal")" = "$n0" ] || fail "wal-stream stored WAL of timeline 3 for node s2"
[ "$(sql "$P" "SELECT count(*) FROM pg_replication_slots")" = 0 ] || fail "a slot was made on timeline 3's server"
pg_stop old
ok "wal-stream of a node archived on timeline 2 at timeline 3's server: refused with a hint, retried, nothing stored, no slot"
ok "timeline 3 forked off timeline 1 and archived past timeline 2's segments; both histories' lines recorded"

latest() { wp --json list c | python3 -c 'import json,sys; print(json.load(sys.stdin)["window"]["latest"])'; }
before() {
	python3 -c 'import sys, datetime as d
t = [d.datetime.fromisoformat(a.replace("Z", "+00:00")) for a in sys.argv[1:]]
sys.exit(0 if t[0] < t[1] else 1)' "$1" "$2"
}
LATEST=$(latest)
before "$LATEST" "$fork_after" ||
	fail "the window ends at $LATEST, after timeline 2's last commit (before $fork_after): it followed timeline 3"
ok "the window ends on timeline 2 ($LATEST)"

# a catalog from before schema 9 has no lines: the window follows timeline 3 as it did then;
# the first writer reads the archived histories back from the store and records their lines
as_pg python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
db.execute("DELETE FROM wal_history"); db.execute("DELETE FROM meta WHERE key = ?", ("history-lines",)); db.commit()' \
	"$T/state/catalog.db"
old_latest=$(latest)
before "$fork_after" "$old_latest" || fail "without recorded lines the window ends at $old_latest, not on timeline 3"
wp wal-push c n "$PGROOT/n/pg_wal/00000002.history" 2>"$T/push.err" || { cat "$T/push.err"; fail "wal-push again"; }
[ "$(hline 3)" = 1 ] || fail "the writer did not record 00000003.history's line"
[ "$(latest)" = "$LATEST" ] || fail "after the lines are recorded again the window ends at $(latest), not $LATEST"
ok "without recorded lines the window follows timeline 3 ($old_latest); the next writer records them and it ends on 2 again"
# a history pushed again records its lines too (the catalog already read back: no backfill)
as_pg python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30); db.execute("DELETE FROM wal_history WHERE tli = 2"); db.commit()' \
	"$T/state/catalog.db"
wp wal-push c n "$PGROOT/n/pg_wal/00000002.history" 2>"$T/push.err" || { cat "$T/push.err"; fail "wal-push again"; }
[ "$(hline 2)" = 1 ] || fail "pushing 00000002.history again did not record its line"
ok "00000002.history pushed again records its line"

mount_fg m "$T/mnt"
V=$T/mnt/c/at/$LATEST/n/pg_wal
ls "$V" >"$T/shown" || fail "cannot list the view's pg_wal"
! grep -q '^00000003' "$T/shown" || { cat "$T/shown"; fail "the view at the window's end shows timeline 3's files"; }
grep -qx '00000002.history' "$T/shown" || { cat "$T/shown"; fail "the view lacks 00000002.history"; }
ok "the view at the window's end shows timeline 2's history and no file of timeline 3"

restore_rows "$LATEST" "$T/r1"
[ "$ROWS" = "1,2,10,22" ] || { cat "$T/r1.err"; fail "the restored table holds '$ROWS', not 1,2,10,22"; }
ok "the restore to the window's end holds timeline 2's rows (1,2,10,22)"
stop_mount "$T/mnt" "$MPID"
echo "$CHECKS passed, 0 failed"
