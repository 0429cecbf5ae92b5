#!/usr/bin/env bash
# pgtimefs restore against a directory laid out like the mount's at/ view (MOUNT/C/at/T/...),
# built by restore_lib.sh from real PostgreSQL 15 base backups plus the WAL after them.
# Checks: two nodes restored with --start on new ports promote with the origin's rows;
# parameters are back to defaults (shared_buffers, an ALTER SYSTEM setting gone); pg_hba
# rejects TCP and lets the socket in; --consistent stops every node at the restore point, a
# time target at that time; a node that cannot reach its target fails the restore with its
# log; a non-empty target, a time outside the window, a missing cluster, an empty or missing
# mount, a major-version mismatch, a missing Citus, --consistent without a restore point, a
# target the servers' user cannot enter are refused clearly; a full target (ENOSPC while
# copying) leaves RESTORE-INCOMPLETE and exit 1; --json parses; recovery paused before the
# target (paused by hand) fails restore --start at once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
. "$(dirname "$0")/restore_lib.sh"

# --- the fixture ---
origin coord 5000
origin w1 3000
# a logical subscription on coord to a publisher outside the cluster: the restored coord must
# not connect to it at its promotion (its apply worker would take the subscription's slot)
PPUB=$(free_port)
pg_init pub "$PPUB"
echo "wal_level = logical" >>"$PGROOT/pub/postgresql.conf"
pg_start pub
sql "$PPUB" "CREATE TABLE s(id int PRIMARY KEY); CREATE PUBLICATION pub FOR TABLE s"
sql "${PORT[coord]}" "CREATE TABLE s(id int PRIMARY KEY)"
sql "${PORT[coord]}" "CREATE SUBSCRIPTION sub CONNECTION 'host=$SOCK port=$PPUB user=postgres dbname=postgres' PUBLICATION pub"
slot_active() { sql "$PPUB" "SELECT coalesce((SELECT active FROM pg_replication_slots WHERE slot_name = 'sub'), false)"; }
for i in $(seq 1 100); do [ "$(slot_active)" = t ] && break; sleep 0.1; done
[ "$(slot_active)" = t ] || fail "the origin's subscription never took its slot"
views
# the origin lets the slot go, after the WAL the views hold: a restored coord that started its
# apply worker would take it
sql "${PORT[coord]}" "ALTER SUBSCRIPTION sub DISABLE"
for i in $(seq 1 100); do [ "$(slot_active)" = f ] && break; sleep 0.1; done
[ "$(slot_active)" = f ] || fail "the origin's subscription did not let its slot go"
restore_json rp1
ok "fixture: ${#NODES[@]} nodes at $MNT/$C/at/$TV, rows coord=${ROWS[coord]} w1=${ROWS[w1]}"

# --- refusals (fast, nothing copied) ---
R=$T/r-bad
expect_fail "time outside the window" 1 pgt restore --from "$MNT" --cluster $C --time 2026-11-24T00:00:00Z --target "$R"
err_has "outside the restorable window of cluster $C"
err_has "pgtimefs list $C"
ok "a time outside the window: clear error, pointing at pgtimefs list"
expect_fail "missing cluster" 1 pgt restore --from "$MNT" --cluster gone --time $TV --target "$R"
err_has "cluster gone is not in the mount"
err_has "deleted cluster cannot be restored"
mkdir -p "$T/empty-mnt"
expect_fail "empty mount" 1 pgt restore --from "$T/empty-mnt" --cluster $C --time $TV --target "$R"
err_has "no pgtimefs mount is running there"
expect_fail "missing mount" 1 pgt restore --from "$T/no-such" --cluster $C --time $TV --target "$R"
err_has "pgtimefs mount"
ok "a missing cluster, an empty and a missing mount: clear errors"
mkdir -p "$T/full"
echo x >"$T/full/file"
expect_fail "non-empty target" 1 pgt restore --from "$MNT" --cluster $C --time $TV --target "$T/full"
err_has "is not empty"
[ "$(ls "$T/full")" = file ] || fail "the non-empty target was changed"
ok "a non-empty target is refused and left alone"
expect_fail "--name with a newline" 2 pgt restore --from "$MNT" --cluster $C --time $TV --target "$R" --name "$(printf 'a\nb')"
err_has "--name must be"
expect_fail "--socket-dir with a blank" 2 pgt restore --from "$MNT" --cluster $C --time $TV --target "$R" --socket-dir "$T/a b"
err_has "--socket-dir must be"
[ ! -e "$R" ] || fail "a refused restore made its target"
ok "a --name or --socket-dir that would not survive pgtimefs-cluster.conf: usage error, nothing made"
restore_json "" 
expect_fail "--consistent without a restore point" 1 pgt restore --from "$MNT" --cluster $C --time $TV --target "$R" --consistent
err_has "no cluster-wide restore point"
restore_json rp1 14.9
expect_fail "major mismatch" 1 pgt restore --from "$MNT" --cluster $C --time $TV --target "$R"
err_has "the backup is PostgreSQL 14"
err_has "postgresql-14"
restore_json rp1 "" 11.3-1
if [ ! -e /usr/lib/postgresql/15/lib/citus.so ]; then
	expect_fail "citus missing" 1 pgt restore --from "$MNT" --cluster $C --time $TV --target "$R"
	err_has "the backup uses Citus 11.3-1, but Citus is not installed"
fi
restore_json rp1
if [ "$(id -u)" = 0 ]; then
	mkdir -m 0700 "$T/private"
	expect_fail "unreachable target" 1 pgt restore --from "$MNT" --cluster $C --time $TV --target "$T/private/r"
	err_has "cannot enter"
fi
[ ! -e "$R" ] || [ -z "$(ls -A "$R")" ] || fail "a refused restore wrote into its target"
ok "--consistent without a restore point, a major-version mismatch, a missing Citus, a target the server user cannot reach: clear errors"

# --- a full target: ENOSPC while copying (few inodes) ---
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$T/tiny"
	mount -t tmpfs -o size=512M,nr_inodes=400 tmpfs "$T/tiny" || skip "cannot mount a tmpfs"
	cleanup_hooks+=("umount $T/tiny")
	expect_fail "ENOSPC" 1 pgt restore --from "$MNT" --cluster $C --time $TV --target "$T/tiny/r"
	err_has "No space left on device"
	err_has "the restore needs"
	[ -f "$T/tiny/r/RESTORE-INCOMPLETE" ] || fail "no RESTORE-INCOMPLETE after ENOSPC"
	grep -q "failed: .*No space left" "$T/tiny/r/RESTORE-INCOMPLETE" || fail "the marker does not say why"
	[ -f "$T/tiny/r/coord/RESTORE-INCOMPLETE" ] && [ -f "$T/tiny/r/w1/RESTORE-INCOMPLETE" ] || fail "no node markers"
	[ ! -e "$T/tiny/r/coord/global/pg_control" ] || fail "a node of a failed restore has its pg_control"
	umount "$T/tiny"
	mount -t tmpfs -o size=8M tmpfs "$T/tiny"
	expect_fail "too small" 1 pgt restore --from "$MNT" --cluster $C --time $TV --target "$T/tiny/r"
	err_has "the restore needs"
	ok "a full target: exit 1, RESTORE-INCOMPLETE with the reason, no pg_control; a too small one refused up front"
fi

# --- interrupted (SIGINT) while copying: exit 1, the marker says so, no pg_control ---
dd if=/dev/zero of="$MNT/$C/at/$TV/coord/base/big" bs=1M count=192 status=none
RI=$T/interrupted
rc=0
"$PGT" restore --from "$MNT" --cluster $C --time $TV --target "$RI" >"$T/out" 2>"$T/err" &
pid=$!
for i in $(seq 1 500); do [ -e "$RI/coord/RESTORE-INCOMPLETE" ] && break; sleep 0.01; done
kill -INT $pid
wait $pid || rc=$?
rm "$MNT/$C/at/$TV/coord/base/big"
[ "$rc" = 1 ] || { cat "$T/err"; fail "interrupted restore: exit $rc"; }
err_has "interrupted"
grep -q "failed: interrupted" "$RI/RESTORE-INCOMPLETE" || fail "the marker does not say interrupted"
[ ! -e "$RI/coord/global/pg_control" ] || fail "an interrupted restore put pg_control in place"
ok "interrupted by SIGINT while copying: exit 1, RESTORE-INCOMPLETE says why, no node can start"

# --- the restore: two nodes, --start on new ports, --json ---
R=$T/restored
P0=$(free_port 4)
pgt --json restore --from "$MNT" --cluster $C --time $TV --target "$R" --start --port "$P0" --socket-dir "$SOCK" >"$T/r.json" 2>"$T/r.err" ||
	{ cat "$T/r.err" "$R"/*.log >&2; fail "restore --start"; }
cleanup_hooks+=("stop_restored $R")
python3 - "$T/r.json" "$C" "$P0" "$R" <<'PY' || fail "--json output"
import json, sys
d = json.load(open(sys.argv[1]))
c, p0, r = sys.argv[2], int(sys.argv[3]), sys.argv[4]
assert d["cluster"] == c and d["name"] == c + "-restored-20261125T030000Z", d
assert d["target"]["kind"] == "end" and d["started"] is True, d
assert [n["name"] for n in d["nodes"]] == ["coord", "w1"], d
assert [n["port"] for n in d["nodes"]] == [p0, p0 + 1], d
assert all(n["bytes"] > 1 << 20 and n["files"] > 100 for n in d["nodes"]), d
assert all(n["reached"] for n in d["nodes"]) and d["milliseconds"] > 0, d
assert any("listen_addresses" in x for x in d["next_steps"]), d
assert any("logical replication is off" in x for x in d["next_steps"]), d
assert d["config"] == r + "/pgtimefs-cluster.conf" or d["config"].endswith("/pgtimefs-cluster.conf"), d
PY
[ ! -e "$R/RESTORE-INCOMPLETE" ] && [ ! -e "$R/coord/RESTORE-INCOMPLETE" ] || fail "markers left after success"
if [ "$(id -u)" = 0 ]; then
	[ -z "$(find "$R" ! -user postgres | head -1)" ] || fail "files not owned by postgres: $(find "$R" ! -user postgres | head -3)"
fi
ok "restore --start --json: both nodes on ports $P0, $((P0 + 1)), JSON parsed, no markers left"
# the passphrase this restore ran with is not in the restored servers' environment
[ -n "${PGTIMEFS_PASSPHRASE:-}" ] || fail "the test runs without PGTIMEFS_PASSPHRASE"
for n in "${NODES[@]}"; do
	pm=$(head -n 1 "$R/$n/postmaster.pid")
	tr '\0' '\n' <"/proc/$pm/environ" >"$T/env-$n" || fail "cannot read the environment of $n's postmaster"
	grep -q '^PG' "$T/env-$n" || grep -q '^PATH=' "$T/env-$n" || fail "$n's postmaster environment looks empty"
	if grep -q '^PGTIMEFS_PASSPHRASE=' "$T/env-$n"; then fail "$n's postmaster has PGTIMEFS_PASSPHRASE"; fi
done
ok "the restored servers do not inherit PGTIMEFS_PASSPHRASE"
[ "$(rsql "$(restored_port w1 "$R")" "SHOW max_connections")" = 150 ] || fail "w1's max_connections is not the original's 150"
[ "$(rsql "$(restored_port coord "$R")" "SHOW max_connections")" = 100 ] || fail "coord's max_connections is not the default"
grep -q "^max_connections = '150'" "$R/w1/postgresql.auto.conf" || grep -q "^max_connections = 150" "$R/w1/postgresql.auto.conf" ||
	fail "w1's postgresql.auto.conf does not carry max_connections"
ok "a limit the original raised (max_connections 150) is kept, so recovery runs; the others stay at their defaults"
for n in "${NODES[@]}"; do
	p=$(restored_port "$n" "$R")
	[ "$(rsql "$p" "SELECT pg_is_in_recovery()")" = f ] || fail "$n still in recovery"
	got=$(rsql "$p" "SELECT count(*) FROM t")
	[ "$got" = "${ROWS[$n]}" ] || { cat "$R/$n.log"; ls -la "$R/$n/pg_wal"; fail "$n has $got rows, the origin ${ROWS[$n]}"; }
	[ "$(rsql "$p" "SHOW shared_buffers")" = 128MB ] || fail "$n: shared_buffers is not the default"
	[ "$(rsql "$p" "SHOW work_mem")" = 4MB ] || fail "$n: the ALTER SYSTEM work_mem survived"
	rsql "$p" "INSERT INTO t VALUES (-1, 'writable')"
done
ok "each node promoted, row counts equal the origin's, shared_buffers 128MB, ALTER SYSTEM gone, writable"
sleep 2 # a launcher that started an apply worker at the promotion would have connected by now
[ "$(slot_active)" = f ] || fail "the restored coord connected to the original's publisher (its subscription took the slot)"
[ "$(rsql "$(restored_port coord "$R")" "SHOW max_logical_replication_workers")" = 0 ] || fail "logical replication is on"
ok "logical replication off in the restored cluster: its subscription did not reach the original's publisher"
p=$(restored_port coord "$R")
rc=0
PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -h 127.0.0.1 -p "$p" -U postgres -d postgres -Atc "SELECT 1" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" != 0 ] || fail "a TCP connection was accepted"
err_has "pg_hba.conf rejects connection for host \"127.0.0.1\""
[ "$(as_pg "$PG_BIN/psql" -h "$SOCK" -p "$p" -d postgres -Atc "SELECT current_user")" = postgres ] || fail "socket"
ok "pg_hba: TCP rejected by the reject line, the server's user gets in over the socket"
grep -q "^\[cluster $C-restored-20261125T030000Z\]" "$R/pgtimefs-cluster.conf" &&
	grep -q "^\[node $C-restored-20261125T030000Z/w1\]" "$R/pgtimefs-cluster.conf" &&
	grep -q "^data-dir = .*/w1$" "$R/pgtimefs-cluster.conf" &&
	grep -q "port=$((P0 + 1))" "$R/pgtimefs-cluster.conf" || { cat "$R/pgtimefs-cluster.conf"; fail "cluster conf"; }
ok "pgtimefs-cluster.conf: [cluster] and [node] sections with conninfo and data-dir"
stop_restored "$R"

# --- --consistent: every node stops at the restore point; without --start, then started ---
R2=$T/consistent
pgt restore --from "$MNT" --cluster $C --time $TV --target "$R2" --consistent --name again --port "$(free_port 4)" >"$T/out" 2>"$T/err" ||
	{ cat "$T/err" >&2; fail "restore --consistent"; }
# without --socket-dir: no unix_socket_directories line, conninfo names the server's default
sockdef=$(as_pg "$PG_BIN/postgres" -D "$R2/coord" -C unix_socket_directories 2>/dev/null | cut -d, -f1)
grep -q "^conninfo = host=$sockdef port=" "$R2/pgtimefs-cluster.conf" || { cat "$R2/pgtimefs-cluster.conf"; fail "default socket dir"; }
! grep -q unix_socket_directories "$R2/coord/postgresql.auto.conf" || fail "a socket directory was set"
grep -q "^\[node again/coord\]" "$R2/pgtimefs-cluster.conf" || fail "--name"
grep -q "restore point 'rp1'" "$T/out" || { cat "$T/out"; fail "the summary does not name the restore point"; }
grep -q "^recovery_target_name = 'rp1'" "$R2/coord/postgresql.auto.conf" || fail "no recovery_target_name"
cleanup_hooks+=("stop_restored $R2")
for n in "${NODES[@]}"; do
	as_pg "$PG_BIN/pg_ctl" -D "$R2/$n" -l "$PGROOT/$n.r2.log" -o "-c unix_socket_directories=$SOCK" -w -t 60 start >/dev/null || { cat "$PGROOT/$n.r2.log"; fail "start $n"; }
	p=$(restored_port "$n" "$R2")
	for i in $(seq 1 100); do [ "$(rsql "$p" "SELECT pg_is_in_recovery()")" = f ] && break; sleep 0.1; done
	got=$(rsql "$p" "SELECT count(*) FROM t")
	[ "$got" = "${ROWS_RP[$n]}" ] || fail "$n has $got rows at rp1, expected ${ROWS_RP[$n]}"
done
stop_restored "$R2"
ok "--consistent: every node stops at restore point rp1 (rows coord=${ROWS_RP[coord]} w1=${ROWS_RP[w1]})"

# --- a time target: every node stops at TMID (between rp1 and the last rows) ---
view_at "$TMID" "$(sed 's/T/ /; s/Z$/+00/' <<<"$TMID")"
R3=$T/at-time
pgt restore --from "$MNT" --cluster $C --time "$TMID" --target "$R3" --start --socket-dir "$SOCK" >"$T/out" 2>"$T/err" ||
	{ cat "$T/err" >&2; fail "restore at $TMID"; }
cleanup_hooks+=("stop_restored $R3")
cat "$T/out"
grep -q "target: *time $TMID" "$T/out" || fail "the summary does not give the target time"
for n in "${NODES[@]}"; do
	got=$(rsql "$(restored_port "$n" "$R3")" "SELECT count(*) FROM t")
	[ "$got" = "${ROWS_RP[$n]}" ] || fail "$n has $got rows at $TMID, expected ${ROWS_RP[$n]}"
done
stop_restored "$R3"
ok "a time target: every node stops at $TMID (recovery_target_time from the view)"

# --- a node that cannot reach its target: exit 1, its log, the target marked incomplete ---
view_at 2099-01-01T00:00:00Z "2099-01-01 00:00:00+00"
R4=$T/never
expect_fail "target never reached" 1 pgt restore --from "$MNT" --cluster $C --time 2099-01-01T00:00:00Z --target "$R4" --start --socket-dir "$SOCK"
cleanup_hooks+=("stop_restored $R4")
err_has "stopped before it reached the target"
err_has "recovery ended before configured recovery target was reached"
err_has "HINT:"
[ -f "$R4/RESTORE-INCOMPLETE" ] && [ -f "$R4/coord/RESTORE-INCOMPLETE" ] || fail "no markers after a failed start"
for d in "$R4"/*/; do
	! as_pg "$PG_BIN/pg_ctl" -D "$d" status >/dev/null 2>&1 || fail "a server of the failed restore still runs in $d"
done
cat "$T/err"
ok "a node that cannot reach its target: exit 1 with the end of its log, RESTORE-INCOMPLETE kept"

# --- Ctrl-C while the nodes recover: the started nodes are stopped, exit 1, "interrupted" ---
# A pg_ctl that starts each server with recovery_min_apply_delay = 1h: recovery then waits at
# the first commit after the node became consistent, and the restore is still waiting for
# the promotion when the whole process group gets SIGINT, as from a terminal.
WB=$T/slow-bin
mkdir -m 755 "$WB"
for f in "$PG_BIN"/*; do ln -s "$f" "$WB/"; done
rm "$WB/pg_ctl"
printf '#!/bin/sh\nexec "%s/pg_ctl" -o "-c recovery_min_apply_delay=1h" "$@"\n' "$PG_BIN" >"$WB/pg_ctl"
chmod 755 "$WB/pg_ctl"
# interrupted_start NAME SIGNAL KILL-TARGET: a restore --start of the delayed nodes gets SIGNAL,
# sent to KILL-TARGET ("group": its whole process group, as a terminal's Ctrl-C; "parent": the
# restore process alone, as `kill PID` or a service manager)
interrupted_start() {
	local R6=$T/$1 sig=$2 to=$3 P6 pid rc=0
	P6=$(free_port 4)
	: >"$T/err" # the last restore's notes must not count for this one
	setsid "$PGT" restore --from "$MNT" --cluster $C --time "$TV" --target "$R6" --start --port "$P6" \
		--socket-dir "$SOCK" --pg-bin "$WB" >"$T/out" 2>"$T/err" &
	pid=$!
	cleanup_hooks+=("stop_restored $R6")
	started() { grep -c "started on port \($P6\|$((P6 + 1))\), recovering" "$T/err"; }
	for i in $(seq 1 1200); do [ "$(started)" = 2 ] && break; sleep 0.1; done
	[ "$(started)" = 2 ] || { cat "$T/err" >&2; fail "the nodes of $R6 did not start recovering within 120 s"; }
	sleep 2
	kill -0 $pid 2>/dev/null || { cat "$T/err" >&2; fail "the restore with a delayed recovery ended by itself"; }
	for d in "$R6"/*/; do
		as_pg "$PG_BIN/pg_ctl" -D "$d" status >/dev/null 2>&1 || fail "no server runs in $d before the $sig"
	done
	if [ "$to" = group ]; then kill -"$sig" -- -$pid; else kill -"$sig" $pid; fi
	wait $pid || rc=$?
	[ "$rc" = 1 ] || { cat "$T/err" >&2; fail "restore --start, SIG$sig to the $to while recovering: exit $rc, expected 1"; }
	err_has "interrupted while it recovered"
	err_has "every node started was stopped"
	for d in "$R6"/*/; do
		! as_pg "$PG_BIN/pg_ctl" -D "$d" status >/dev/null 2>&1 || fail "a server still runs in $d after SIG$sig to the $to"
	done
	[ -f "$R6/RESTORE-INCOMPLETE" ] || fail "no RESTORE-INCOMPLETE after an interrupted start"
}
interrupted_start ctrl-c INT group
ok "Ctrl-C (SIGINT to the process group) while the nodes recover: both stopped, exit 1, 'interrupted', the target marked incomplete"
interrupted_start term TERM parent
ok "SIGTERM to the restore process alone while the nodes recover: passed on, both stopped, exit 1"

# --- a limit raised on the original after the backup (its WAL carries the change, above what
# the backup's pg_control says): recovery would pause there for ever; restore reads the change
# from the WAL to replay and sets the limit as high
C=late
NODES=(l1)
origin l1 10
basebackup l1
pg_stop o_l1
echo "max_prepared_transactions = 5" >>"$PGROOT/o_l1/postgresql.conf"
pg_start o_l1
sql "${PORT[l1]}" "INSERT INTO t VALUES (100001, 'after the change')"
sql "${PORT[l1]}" "SELECT pg_switch_wal()" >/dev/null
view_of l1
restore_json "" "$(sql "${PORT[l1]}" "SHOW server_version" | cut -d' ' -f1)"
R7=$T/r_late
cleanup_hooks+=("stop_restored $R7")
timeout 120 "$PGT" restore --from "$MNT" --cluster $C --time "$TV" --target "$R7" --start --port "$(free_port 2)" \
	--socket-dir "$SOCK" >"$T/out" 2>"$T/err" || { cat "$T/err"; fail "restore --start past a raised max_prepared_transactions"; }
p7=$(restored_port l1 "$R7")
[ "$(rsql "$p7" "SHOW max_prepared_transactions")" = 5 ] || fail "max_prepared_transactions is not the WAL's 5"
[ "$(rsql "$p7" "SELECT count(*) FROM t WHERE id = 100001")" = 1 ] || fail "the row written after the change is missing"
ok "a limit raised after the backup: read from the WAL to replay, set as high; recovery runs through it"

# --- recovery paused before the target: restore --start must not wait for it for ever. Nothing
# the restore leaves in place makes recovery pause (the limits above are kept), so the test
# pauses it by hand (pg_wal_replay_pause, over the socket, while a long WAL is replayed): the
# restore fails within seconds, shows the server's log, and stops the server
C=paused
NODES=(p1)
origin p1 10
# the WAL after the backup stays in pg_wal for the view (above max_wal_size, it would be recycled)
sql "${PORT[p1]}" "ALTER SYSTEM SET wal_keep_size = '1GB'"
sql "${PORT[p1]}" "SELECT pg_reload_conf()" >/dev/null
basebackup p1
# about 250 MB of WAL after the backup: seconds of replay, time to pause it
sql "${PORT[p1]}" "CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g + 1)::text) AS pad FROM generate_series(1, 2000000) g"
sql "${PORT[p1]}" "SELECT pg_switch_wal()" >/dev/null
pg_stop o_p1
view_of p1
restore_json ""
R8=$T/r_paused
cleanup_hooks+=("stop_restored $R8")
P8=$(free_port 2)
"$PGT" restore --from "$MNT" --cluster $C --time "$TV" --target "$R8" --start --port "$P8" --socket-dir "$SOCK" \
	>"$T/out" 2>"$T/err" &
rpid=$!
paused=
for ((i = 0; i < 1200; i++)); do
	kill -0 $rpid 2>/dev/null || break
	# an error until the server accepts connections (at consistency), and after the promotion
	if rsql "$P8" "SELECT pg_wal_replay_pause()" >/dev/null 2>&1; then
		paused=$(date +%s%N)
		break
	fi
	sleep 0.05
done
rc=0
timeout 60 tail --pid=$rpid -f /dev/null || fail "restore --start still runs 60 s after recovery was paused"
wait $rpid || rc=$?
[ -n "$paused" ] || { cat "$T/err" >&2; fail "recovery ended before the test could pause it (exit $rc): the WAL replays too fast here"; }
done_ms=$((($(date +%s%N) - paused) / 1000000))
[ $rc = 1 ] || { cat "$T/err" "$R8"/*.log >&2; fail "restore --start with recovery paused: exit $rc, not 1"; }
err_has "node p1: recovery paused before the target"
[ ! -e "$R8/p1/postmaster.pid" ] || fail "the paused server was left running"
err_has "recovery has paused" # the end of the server's log, shown
ok "recovery paused before the target: restore --start fails $done_ms ms after the pause, with the server's log, and stops the server"

echo "all $CHECKS checks passed"
