#!/usr/bin/env bash
# bench/restore.sh: restore of a PostgreSQL 15 node, pgtimefs (through its mount's at/T view)
# against pgBackRest 2.45, from backups of the same server and the same archived WAL, in one
# run (issue 6, "Speed").
#
#   sudo bench/restore.sh                          # SCALE=50, PGBENCH_SECONDS=60: about 3-4 min
#   SCALE=5 PGBENCH_SECONDS=10 REPEAT=1 bench/restore.sh    # smoke test
#
# Setup: one server (initdb, pgbench -i -s $SCALE, as bench/lib.sh makes it), running with
# archive_command = a script that runs `pgbackrest archive-push %p` and then
# `pgtimefs wal-push bench n1 %p`, and fails when either fails: both tools hold the same WAL.
# pgBackRest has its configuration of bench/backup.sh (compress-type=zst,
# repo1-cipher-type=aes-256-cbc, process-max=2, start-fast=y); pgtimefs a repository of three
# zones (bench/lib.sh's pgt_repo) with [cluster bench] and [node bench/n1] (conninfo and
# data-dir). Every pgtimefs writer (wal-push, backup) runs as postgres, the owner of the
# repository; the mount and the restore run as root.
# Steps: full backups (pgBackRest full, then pgtimefs backup), then pgbench -c 2 for
# PGBENCH_SECONDS in two parts: 2/3 of it, then the tables' checksums are taken and T is
# noted (a whole second with no commit around it), then the last 1/3 (commits after T). Then
# pg_switch_wal, wait until that segment is archived by both, and stop the server.
#
# Measures, each taken REPEAT times (median reported, every run printed). Page cache dropped
# (sync; echo 3 > /proc/sys/vm/drop_caches) before each timed step; every pgtimefs step on a
# freshly started mount.
#   (a) base files: the backup's files restored to a new directory, no server start.
#       pgBackRest: `restore --type=immediate` (the backup's consistent point: the copy is
#       the same for every --type; immediate writes no time target). pgtimefs:
#       `restore --time <the snapshot's exact time, the start of the window>` without --start,
#       on a mount started before the step (mount startup excluded; it is measured in (b)).
#       (The snapshot's directory name is cut to the second, before the window: at/<name> is
#       refused, so the exact time is taken from `list --json`.) The pgtimefs copy holds the
#       WAL segments the view shows up to the first commit after that time (a few of 16 MiB);
#       the pgBackRest copy holds none (they come with archive-get at start). Wall time.
#   (b) to a promoted server at T: pgBackRest `restore --type=time --target=T
#       --target-action=promote`, then its postgresql.conf replaced by the installed
#       postgresql.conf.sample (plus port, socket directory, listen_addresses = ''), then
#       `pg_ctl start` and a poll (every 0.1 s) until pg_is_in_recovery() is false; replay
#       fetches each segment with `pgbackrest archive-get`. pgtimefs: `pgtimefs mount` started
#       inside the timed step (mount startup INCLUDED), then `pgtimefs restore --time T
#       --start` (which gives the node postgresql.conf.sample and polls every 0.2 s). Both
#       servers replay with the same parameters: PostgreSQL's defaults plus port, socket
#       directory, and the recovery settings. Wall time, from the first command to the
#       promoted server answering. The split into copy and replay is read from each server's
#       log (its first line, "redo starts", "redo done", "ready to accept connections").
#   Correctness: after (b) both servers must hold exactly the checksums taken at T (row
#   counts and sums of every pgbench table), which also differ from the final ones; after
#   (a) both directories must hold the same relation files (name list).
# Targets (PASS/FAIL; a missed target does not change the exit status, a failing command or a
# checksum mismatch does):
#   (a) pgtimefs base-files restore wall time <= 1.0 x pgBackRest's
#   (b) pgtimefs time to a promoted server at T <= 1.0 x pgBackRest's
# Environment (and bench/lib.sh's: SCALE, BENCH_DIR, PGTIMEFS, PGBIN, KEEP, PGDATA_DIR,
# PGT_REPO_EXTRA): PGBENCH_SECONDS (60), REPEAT (rounds of (a) and of (b), each tool once per
# round, the first tool alternating; medians are reported; default 3), CACHE (the pgtimefs
# mount's -o cache=, default 64M).
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
ROW_FMT='%-38s %12s %12s %8s %8s  %s'
PGBENCH_SECONDS=${PGBENCH_SECONDS:-60}
REPEAT=${REPEAT:-3}
CACHE=${CACHE:-64M}
NODE=n1
PGDATA_COPY=1 # the server runs and writes in the data directory
T_START=$(date +%s)

bench_prereqs
need_pkg pgbackrest command -v pgbackrest
need_pkg fuse3 command -v fusermount3
[ -e /dev/fuse ] || fatal "no /dev/fuse"
bench_workdir
bench_machine "pgbackrest: $(pgbackrest version)" "scale: $SCALE, pgbench: -c 2 for $PGBENCH_SECONDS s, pgtimefs mount -o cache=$CACHE"
bench_pgdata

SOCK=$W/pg/sock
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PGTIMEFS_PASSPHRASE=bench-passphrase
export PGTIMEFS_CONFIG=$W/pgtimefs.conf
PGBR_CONF=$W/pgbr/pgbackrest.conf
SAMPLE=$("$PGBIN/pg_config" --sharedir 2>/dev/null || echo /usr/share/postgresql/15)/postgresql.conf.sample
[ -f "$SAMPLE" ] || fatal "no postgresql.conf.sample of PostgreSQL 15"
BAD=0

as_pg() { runuser -u postgres -- "$@"; }
psql_at() { as_pg "$PGBIN/psql" -h "$1" -p "$2" -U postgres -d postgres -X -Atq -v ON_ERROR_STOP=1 -c "$3"; }
q() { psql_at "$SOCK" "$PORT" "$1"; }
SUMS_SQL="SELECT 'accounts ' || count(*) || ' ' || sum(abalance) FROM pgbench_accounts
	UNION ALL SELECT 'branches ' || count(*) || ' ' || sum(bbalance) FROM pgbench_branches
	UNION ALL SELECT 'tellers ' || count(*) || ' ' || sum(tbalance) FROM pgbench_tellers
	UNION ALL SELECT 'history ' || count(*) || ' ' || coalesce(sum(delta), 0) FROM pgbench_history"
load() { cut -d' ' -f1-3 /proc/loadavg; }

# ---------------------------------------------------------------- mount and restored servers
MNT=$W/mnt
MPID=
RESTORED=() # data directories of restored servers that may be running
mount_start() {
	local t0
	mkdir -p "$MNT"
	LAST_LOG=$L/mount
	t0=$(now)
	"$PGT" mount "$MNT" -f -o "cache=$CACHE" >>"$L/mount" 2>&1 &
	MPID=$!
	# shellcheck disable=SC2010 # the answer of ls is what is waited for
	until ls "$MNT/$CLUSTER" 2>/dev/null | grep -x latest >/dev/null; do
		kill -0 "$MPID" 2>/dev/null || fatal "the pgtimefs mount exited before answering (log $L/mount)"
		awk "BEGIN { exit !($(now) - $t0 > 60) }" && fatal "the pgtimefs mount did not answer within 60 s"
		sleep 0.002
	done
	T_READY=$(calc "$(now) - $t0")
}
mount_stop() {
	local i
	[ -n "$MPID" ] || return 0
	fusermount3 -u "$MNT" 2>>"$L/umount.err" || echo "note: fusermount3 -u $MNT failed"
	for ((i = 0; i < 200; i++)); do
		kill -0 "$MPID" 2>/dev/null || break
		sleep 0.1
	done
	kill "$MPID" 2>/dev/null || true
	wait "$MPID" 2>/dev/null || true
	MPID=
}
stop_restored() {
	local d
	for d in "${RESTORED[@]}"; do
		[ -f "$d/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
	done
	RESTORED=()
	return 0
}
# shellcheck disable=SC2317 # called by lib.sh's exit trap
bench_cleanup_hook() {
	stop_restored
	if [ -n "$MPID" ]; then
		fusermount3 -u -z "$MNT" 2>/dev/null || true
		kill "$MPID" 2>/dev/null || true
	fi
}

# log_split LOG T0: from a restored server's log (default log_line_prefix '%m [%p] ', GMT),
# seconds from T0 (epoch) to its first line, from there to "redo starts", the replay ("redo
# starts" to "redo done"), and from "redo done" to "ready to accept connections" after it;
# plus the segments it restored from an archive
log_split() {
	python3 - "$1" "$2" <<'PY'
import datetime, re, sys
log, t0 = sys.argv[1], float(sys.argv[2])
def ts(line):
    m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) (\S+)", line)
    if not m:
        return None
    d = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()
first = redo0 = redo1 = ready = None
fetched = 0
for line in open(log, errors="replace"):
    t = ts(line)
    if t is None:
        continue
    if first is None:
        first = t
    if "redo starts at" in line:
        redo0 = t
    elif "redo done at" in line:
        redo1 = t
    elif "ready to accept connections" in line and "read-only" not in line and redo1 is not None:
        ready = ready or t
    if "restored log file" in line and "from archive" in line:
        fetched += 1
f = lambda a, b: "%.2f" % (b - a) if a is not None and b is not None else "?"
print(f(t0, first), f(first, redo0), f(redo0, redo1), f(redo1, ready), fetched)
PY
}

# ---------------------------------------------------------------- the server, both tools
mkdir -p "$W/pgt" "$W/bin"
. "$HERE/pgbr.sh"
pgbr_conf "$PGBR_CONF" "$W/pgbr" "$DATA" "$PORT" "$SOCK"
PGBR=(runuser -u postgres -- pgbackrest --config="$PGBR_CONF" --stanza=bench)

pgt_repo "$PGTIMEFS_CONFIG" "$W/pgt"
cat >>"$PGTIMEFS_CONFIG" <<CONF

[cluster $CLUSTER]

[node $CLUSTER/$NODE]
conninfo = host=$SOCK port=$PORT user=postgres dbname=postgres
data-dir = $DATA
CONF
cp "$PGT" "$W/bin/pgtimefs"
cat >"$W/bin/archive-pgbackrest-pgtimefs" <<SH
#!/bin/sh
# archive_command: both tools, fails when either fails (pgBackRest's backup wants
# "pgbackrest" in archive_command, hence the name)
rc=0
pgbackrest --config=$PGBR_CONF --stanza=bench archive-push "\$1" || rc=1
PGTIMEFS_CONFIG=$PGTIMEFS_CONFIG PGTIMEFS_PASSPHRASE=$PGTIMEFS_PASSPHRASE $W/bin/pgtimefs --quiet wal-push $CLUSTER $NODE "\$1" || rc=1
exit \$rc
SH
chmod 0755 "$W/bin" "$W/bin/archive-pgbackrest-pgtimefs" "$W/bin/pgtimefs"
chown -R postgres:postgres "$W/pgbr" "$W/pgt" "$PGTIMEFS_CONFIG"
PGTW=(runuser -u postgres -- env PGTIMEFS_CONFIG="$PGTIMEFS_CONFIG" PGTIMEFS_PASSPHRASE="$PGTIMEFS_PASSPHRASE" "$W/bin/pgtimefs")

cat >>"$DATA/postgresql.conf" <<CONF
# bench/restore.sh
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCK'
wal_level = replica
max_wal_senders = 10
archive_mode = on
archive_command = '$W/bin/archive-pgbackrest-pgtimefs %p'
shared_buffers = 256MB
max_wal_size = 2GB
CONF
LAST_LOG=$W/pg/server.log
as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$W/pg/server.log" -w start >"$L/pg_ctl" 2>&1
PG_RUNNING=1
q CHECKPOINT
LAST_LOG=$L/stanza
"${PGBR[@]}" stanza-create >"$L/stanza" 2>&1

echo "== full backups"
run_timed "$L/pgbr-backup" "${PGBR[@]}" --type=full backup
echo "pgBackRest full backup: $T_WALL s, repository $(mib "$(dub "$W/pgbr/repo")") MiB"
run_timed "$L/pgt-backup" "${PGTW[@]}" --json backup "$CLUSTER"
echo "pgtimefs backup: $T_WALL s, one zone $(mib "$(dub "$W/pgt/zone-a")") MiB"
# the snapshot's exact time (the earliest of the window): its directory name is cut to the
# second and lies before the window, so at/<name> is refused
read -r SNAP SNAP_TIME < <("${PGTW[@]}" --json list "$CLUSTER" |
	python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["snapshots"][-1]["snapshot"], d["window"]["earliest"])')
echo "pgtimefs snapshot: $SNAP, at $SNAP_TIME"

# next_second: sleeps until just after the next whole second
next_second() { sleep "$(python3 -c 'import time; print(1.05 - time.time() % 1)')"; }
P1=$((PGBENCH_SECONDS * 2 / 3))
P2=$((PGBENCH_SECONDS - P1))
if [ "$P1" -lt 1 ] || [ "$P2" -lt 1 ]; then fatal "PGBENCH_SECONDS must be at least 3"; fi
LSN0=$(q "SELECT pg_current_wal_lsn()")
echo "== pgbench -c 2 -T $P1, T, pgbench -c 2 -T $P2"
LAST_LOG=$L/pgbench-run
as_pg "$PGBIN/pgbench" -h "$SOCK" -p "$PORT" -U postgres -n -c 2 -T "$P1" postgres >"$L/pgbench-run" 2>&1
SUMS_T=$(q "$SUMS_SQL")
next_second
T=$(date -u +%Y-%m-%dT%H:%M:%SZ)
T_PG=$(date -u -d "$T" '+%Y-%m-%d %H:%M:%S+00')
next_second
as_pg "$PGBIN/pgbench" -h "$SOCK" -p "$PORT" -U postgres -n -c 2 -T "$P2" postgres >>"$L/pgbench-run" 2>&1
SUMS_END=$(q "$SUMS_SQL")
[ "$SUMS_END" != "$SUMS_T" ] || fatal "no commit after T"
SEG=$(q "SELECT pg_walfile_name(pg_switch_wal())")
WAL_BYTES=$(q "SELECT pg_current_wal_lsn() - '$LSN0'::pg_lsn")
for ((i = 0; i < 1200; i++)); do
	[ "$(q "SELECT coalesce(last_archived_wal, '') >= '$SEG' FROM pg_stat_archiver")" = t ] && break
	sleep 0.5
done
[ "$i" -lt 1200 ] || fatal "$SEG not archived after 10 min (log $W/pg/server.log)"
FAILED_ARCH=$(q "SELECT failed_count FROM pg_stat_archiver")
LAST_LOG=$W/pg/server.log
as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >>"$L/pg_ctl" 2>&1
PG_RUNNING=0
echo "T = $T; WAL written by pgbench: $(mib "$WAL_BYTES") MiB, archived up to $SEG by both ($FAILED_ARCH failed attempts)"
echo "checksums at T: $(echo "$SUMS_T" | tr '\n' ';')"
echo "pgBackRest repository: $(mib "$(dub "$W/pgbr/repo")") MiB; pgtimefs one zone: $(mib "$(dub "$W/pgt/zone-a")") MiB"

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { printf "%.3f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
declare -A RUNS=() # "a pgt", "a pgbr", "b pgt", "b pgbr", "copy pgt", ...: the times of every round

# ---------------------------------------------------------------- (a) base files
# a_pgt R, a_pgbr R: one timed base restore each into W/a-*-R
a_pgt() {
	mount_start
	drop_caches
	echo "load average before: $(load)"
	run_timed "$L/a-pgt-$1" "$PGT" --json restore --from "$MNT" --cluster "$CLUSTER" --time "$SNAP_TIME" --target "$W/a-pgt-$1"
	mount_stop
	RUNS[a pgt]+=" $T_WALL"
	A_PGT_BYTES=$(dub "$W/a-pgt-$1/$NODE")
	echo "pgtimefs restore --time $SNAP_TIME: $T_WALL s, $(mib "$A_PGT_BYTES") MiB ($(find "$W/a-pgt-$1/$NODE/pg_wal" -maxdepth 1 -type f -name '0*' | wc -l) WAL files in pg_wal)"
}
a_pgbr() {
	mkdir -m 0700 "$W/a-pgbr-$1"
	chown postgres:postgres "$W/a-pgbr-$1"
	drop_caches
	echo "load average before: $(load)"
	run_timed "$L/a-pgbr-$1" "${PGBR[@]}" --pg1-path="$W/a-pgbr-$1" --type=immediate restore
	RUNS[a pgbr]+=" $T_WALL"
	A_PGBR_BYTES=$(dub "$W/a-pgbr-$1")
	echo "pgBackRest restore --type=immediate: $T_WALL s, $(mib "$A_PGBR_BYTES") MiB"
}
# a_compare R: both hold the same relation files
a_compare() {
	(cd "$W/a-pgt-$1/$NODE/base" && find . -type f | LC_ALL=C sort) >"$W/a-pgt.files"
	(cd "$W/a-pgbr-$1/base" && find . -type f | LC_ALL=C sort) >"$W/a-pgbr.files"
	if ! cmp -s "$W/a-pgt.files" "$W/a-pgbr.files"; then
		echo "FATAL: the two base restores hold different relation files: $(diff "$W/a-pgt.files" "$W/a-pgbr.files" | head -n 4 | tr '\n' ' ')" >&2
		BAD=1
	else
		echo "both hold the same $(wc -l <"$W/a-pgt.files") files under base/"
	fi
	rm -rf "$W/a-pgt-$1" "$W/a-pgbr-$1"
}

# ---------------------------------------------------------------- (b) promoted server at T
# verify PORT NAME: the server's checksums must be those taken at T
verify() {
	local got
	got=$(psql_at "$SOCK" "$1" "$SUMS_SQL") || { echo "FATAL: $2: the restored server does not answer" >&2; BAD=1; return 0; }
	if [ "$got" != "$SUMS_T" ]; then
		printf 'FATAL: %s: the restored tables differ from those at T\nwant:\n%s\ngot:\n%s\n' "$2" "$SUMS_T" "$got" >&2
		BAD=1
	else
		echo "$2: tables equal those at T ($(echo "$got" | awk '{ printf "%s%s %s rows", (NR > 1 ? ", " : ""), $1, $2 }'))"
	fi
}
# b_pgt R, b_pgbr R: one timed restore to a promoted server each, checked, stopped, removed
b_pgt() {
	local port t0 t s_copy s_boot s_redo s_end s_fetch
	port=$(free_port)
	drop_caches
	echo "load average before: $(load)"
	t0=$(now)
	mount_start
	RESTORED+=("$W/b-pgt-$1/$NODE")
	run_timed "$L/b-pgt-$1" "$PGT" --json restore --from "$MNT" --cluster "$CLUSTER" --time "$T" --target "$W/b-pgt-$1" \
		--start --port "$port" --socket-dir "$SOCK"
	t=$(calc "$(now) - $t0")
	read -r s_copy s_boot s_redo s_end s_fetch < <(log_split "$W/b-pgt-$1/$NODE.log" "$t0")
	echo "pgtimefs mount + restore --time T --start: $t s (mount ready $T_READY s; to the server's first log line $s_copy s, to redo start $s_boot s, redo $s_redo s, redo done to ready $s_end s)"
	RUNS[b pgt]+=" $t" RUNS[copy pgt]+=" $s_copy" RUNS[redo pgt]+=" $s_redo"
	verify "$port" pgtimefs
	mount_stop
	stop_restored
	B_PGT_BYTES=$(jfield "$L/b-pgt-$1.out" bytes)
	rm -rf "$W/b-pgt-$1"
}
b_pgbr() {
	local port t0 t d=$W/b-pgbr-$1 log=$W/pg/b-pgbr-$1.log s_copy s_boot s_redo s_end s_fetch
	port=$(free_port)
	mkdir -m 0700 "$d"
	chown postgres:postgres "$d"
	drop_caches
	echo "load average before: $(load)"
	t0=$(now)
	run_timed "$L/b-pgbr-$1" "${PGBR[@]}" --pg1-path="$d" --type=time "--target=$T_PG" --target-action=promote restore
	# the same parameters as pgtimefs's restored node: the installed sample, port and socket
	cp "$SAMPLE" "$d/postgresql.conf"
	printf "port = %s\nlisten_addresses = ''\nunix_socket_directories = '%s'\n" "$port" "$SOCK" >>"$d/postgresql.conf"
	chown postgres:postgres "$d/postgresql.conf"
	RESTORED+=("$d")
	LAST_LOG=$log
	as_pg "$PGBIN/pg_ctl" -D "$d" -l "$log" -w -t 3600 start >"$L/b-pgbr-start" 2>&1
	until [ "$(psql_at "$SOCK" "$port" "SELECT pg_is_in_recovery()" 2>/dev/null || true)" = f ]; do
		[ -f "$d/postmaster.pid" ] || fatal "the server restored by pgBackRest stopped (log $log)"
		sleep 0.1
	done
	t=$(calc "$(now) - $t0")
	read -r s_copy s_boot s_redo s_end s_fetch < <(log_split "$log" "$t0")
	echo "pgBackRest restore --type=time + start: $t s (restore $T_WALL s; to the server's first log line $s_copy s, to redo start $s_boot s, redo $s_redo s with $s_fetch segments from archive-get, redo done to ready $s_end s)"
	RUNS[b pgbr]+=" $t" RUNS[copy pgbr]+=" $s_copy" RUNS[redo pgbr]+=" $s_redo"
	verify "$port" pgBackRest
	stop_restored
	rm -rf "$d"
}

mount_start
[ -d "$MNT/$CLUSTER/at/$SNAP_TIME/$NODE" ] || fatal "no at/$SNAP_TIME view in the mount"
[ -d "$MNT/$CLUSTER/at/$T/$NODE" ] || fatal "no at/$T view in the mount"
mount_stop
echo "== (a) base files restored, no server start ($REPEAT rounds, the tools alternating first)"
for ((r = 1; r <= REPEAT; r++)); do
	if ((r % 2)); then a_pgt "$r" && a_pgbr "$r"; else a_pgbr "$r" && a_pgt "$r"; fi
	a_compare "$r"
done
echo "== (b) to a promoted server at T = $T, same default parameters ($REPEAT rounds, the tools alternating first)"
for ((r = 1; r <= REPEAT; r++)); do
	if ((r % 2)); then b_pgt "$r" && b_pgbr "$r"; else b_pgbr "$r" && b_pgt "$r"; fi
done
grep -h "recovery stopping\|last completed transaction" "$W/pg/b-pgbr-1.log" | sed 's/^/pgBackRest server: /' | head -n 2

# ---------------------------------------------------------------- summary
echo
echo "load average at end: $(load)"
echo "bench wall time: $(($(date +%s) - T_START)) s"
[ "$BAD" = 0 ] || fatal "correctness failure above: no speed is reported"
declare -A MED=()
for k in "a pgt" "a pgbr" "b pgt" "b pgbr" "copy pgt" "copy pgbr" "redo pgt" "redo pgbr"; do
	# shellcheck disable=SC2086 # the runs are words
	MED[$k]=$(median ${RUNS[$k]})
	echo "runs, $k:${RUNS[$k]} (median ${MED[$k]})"
done
row "(a) base files restore (s)" "${MED[a pgt]}" "${MED[a pgbr]}" "$(calc "${MED[a pgt]} / ${MED[a pgbr]}")" "<= 1.0" "$(mib "$A_PGT_BYTES") / $(mib "$A_PGBR_BYTES") MiB"
target "(a) base files restore <= 1.0x pgBackRest" "${MED[a pgt]} <= ${MED[a pgbr]}"
row "(b) promoted server at T (s)" "${MED[b pgt]}" "${MED[b pgbr]}" "$(calc "${MED[b pgt]} / ${MED[b pgbr]}")" "<= 1.0" "pgtimefs incl. mount start"
target "(b) promoted server at T <= 1.0x pgBackRest" "${MED[b pgt]} <= ${MED[b pgbr]}"
row "  (b) copy: start to server's log (s)" "${MED[copy pgt]}" "${MED[copy pgbr]}" "-" "-" "(info) pgtimefs copied $(mib "$B_PGT_BYTES") MiB"
row "  (b) WAL replay, redo (s)" "${MED[redo pgt]}" "${MED[redo pgbr]}" "-" "-" "(info) from the server logs"
bench_summary "scale $SCALE, pgbench $PGBENCH_SECONDS s, $(nproc) CPUs, page cache $(cache_state), median of $REPEAT" \
	measurement pgtimefs pgBackRest ratio target note
exit "$BAD"
