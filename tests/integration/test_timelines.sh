#!/usr/bin/env bash
# Two promotions inside one WAL segment (timeline 1 -> 2 -> 3, each a crash and an archive
# recovery), archived with wal-push: the window reaches the last commit, the at/ view of its
# end shows every history file up to timeline 3 (PostgreSQL looks for timelines one number at a
# time: without 00000002.history replay stayed on timeline 1 and promoted with the rows missing),
# and a restore from the mount holds every row.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
. "$(dirname "$0")/mount_lib.sh"
need_fuse
pg_repo_wrapper
mkdir -p "$T/mnt"
P=$(free_port)
pg_archiving_node "$P"
sql "$P" "CREATE TABLE t(id int)"
pg_switch_archived n "$P"
wp backup c >/dev/null || fail "backup"
pg_switch_archived n "$P"
sql "$P" "INSERT INTO t VALUES (1)"
seg=$(sql "$P" "SELECT pg_walfile_name(pg_current_wal_lsn())")
for i in 2 3; do
	pg_promote_by_crash n "$P"
	sql "$P" "INSERT INTO t VALUES ($i)"
done
[ "$(sql "$P" "SELECT timeline_id FROM pg_control_checkpoint()")" = 3 ] || fail "the server is not on timeline 3"
now=$(sql "$P" "SELECT pg_walfile_name(pg_current_wal_lsn())")
[ "${now:8}" = "${seg:8}" ] || fail "the promotions left segment ${seg:8} (now $now): the test needs them in one"
pg_switch_archived n "$P"
for k in $(seq 1 50); do [ -n "$(cat_q "SELECT name FROM wal WHERE name = '00000003.history'")" ] && break; sleep 0.1; done
ok "two promotions inside segment ${seg:16}: timeline 3, its WAL and history archived"

LATEST=$(wp --json list c | python3 -c 'import json,sys; print(json.load(sys.stdin)["window"]["latest"])')
mount_fg m "$T/mnt"
V=$T/mnt/c/at/$LATEST/n/pg_wal
ls "$V" >"$T/shown" || fail "cannot list the view's pg_wal"
for h in 00000002.history 00000003.history; do grep -qx "$h" "$T/shown" || { cat "$T/shown"; fail "the view lacks $h"; }; done
ok "the view at the window's end ($LATEST) shows 00000002.history and 00000003.history"

restore_rows "$LATEST" "$T/r1"
[ "$ROWS" = "1,2,3" ] || { cat "$T/r1.err"; fail "the restored table holds '$ROWS', not 1,2,3"; }
ok "the restore to the window's end holds every row of timelines 1, 2 and 3"
# the snapshot's name means its own microsecond; the same second spelled otherwise (an offset)
# means that whole second, before the snapshot ended: outside the window, not the snapshot
S=$(wp --json list c | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"][0]["snapshot"])')
case $S in *.*) echo "SKIP part: the snapshot's name has microseconds ($S)" >&2 ;; *)
	OFF=$(python3 -c 'import sys, datetime as d; t = d.datetime.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%SZ")
print((t + d.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+01:00"))' "$S")
	expect_fail "restore to the snapshot's second spelled with an offset" 1 "$PGT" restore --from "$T/mnt" --cluster c \
		--time "$OFF" --target "$T/r2" --port "$(free_port)" --socket-dir "$SOCK"
	err_has "${S%Z}.000000Z"
	"$PGT" --json restore --from "$T/mnt" --cluster c --time "$S" --target "$T/r3" --port "$(free_port)" \
		--socket-dir "$SOCK" >"$T/r3.json" 2>"$T/r3.err" || { cat "$T/r3.err"; fail "restore to the snapshot's name"; }
	ok "--time: the snapshot's name is its own time; its second with an offset is that exact second" ;;
esac
stop_mount "$T/mnt" "$MPID"
echo "$CHECKS passed, 0 failed"
