#!/usr/bin/env bash
# bench/wal.sh: WAL archiving figures, pgtimefs against pgBackRest 2.45 (Debian), in one run.
#
#   sudo bench/wal.sh                      # PUSHES=10, DURATION=60, SCALE=10: about 3 minutes
#   PUSHES=5 DURATION=20 bench/wal.sh      # shorter
#
# Setup: one PostgreSQL 15 server (16 MiB segments, wal_keep_size so nothing is recycled,
# synchronous_commit = off so that pgbench writes WAL as fast as the machine allows),
# pgbench -i -s $SCALE, then pgbench until $PUSHES complete segments of pgbench WAL exist;
# they are copied aside and every tool pushes those same files.
#   1. wal-push latency (each push starting with the segment in the page cache, read just
#      before, as an archive_command finds it): each segment pushed by `pgtimefs wal-push` (a
#      process per segment, run as the archiver runs archive_command: /bin/sh -c, as the postgres
#      user, repository open included; timed by bench/archtime.py) into three zones
#      with fsync, against `pgbackrest archive-push` (compress-type=zst, repo1-cipher-type=
#      aes-256-cbc, local repository, synchronous), also run as postgres. Median wall time of
#      the $PUSHES pushes. Target: pgtimefs <= 0.5 x pgBackRest. The pushing repository opens
#      with a generated key (`key add --generate`, passphrase-file in its config), as an
#      archive_command is set up: pgBackRest's cipher pass is likewise a string in its config
#      file. For reference, the same pushes opened with a typed passphrase's key file (scrypt
#      at the default kdf-log2n 15) are printed too.
#   2. streaming: `pgtimefs wal-stream` during pgbench -c 4 -T $DURATION. Each second the
#      slot's lag (pg_current_wal_lsn() - restart_lsn of pgtimefs_n1) is sampled: max < 64 MiB.
#      (Sampled once the stream has caught up with the slot's start.) For each segment, the delay between its last byte arriving and its being durable and
#      recorded (received_us -> stored_us in the --json lines): max <= 2 s. Every segment the
#      server wrote in the run must be stored, contiguous (a correctness check).
#   3. the time index's cost: the CPU time the WAL reader takes inside each store (wal-push
#      --json "index_microseconds", the reading thread's CPU clock) over the CPU time of the
#      rest of that store ("cpu_microseconds", every thread of the process, repository open
#      excluded), median: < 10%. CPU, not wall time: the reader runs beside the workers, and
#      on a machine with fewer cores than threads a wall clock around it also counts the time
#      it waits for a core. Also printed, as an A/B check: the same segments stored into two
#      fresh repositories with and without the reader (PGTIMEFS_WAL_NO_INDEX=1), median
#      in-process store time (noisy: fsyncs).
# A missed target prints FAIL but does not change the exit status; a failing command does.
# Environment: PUSHES (10), DURATION (60), SCALE (10), BENCH_DIR (/var/tmp), PGTIMEFS (binary,
# default build/pgtimefs), PGBIN (/usr/lib/postgresql/15/bin), KEEP=1 keeps the work directory.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PUSHES=${PUSHES:-10}
DURATION=${DURATION:-60}
SCALE=${SCALE:-10}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGTIMEFS=${PGTIMEFS:-$HERE/../build/pgtimefs}
[ "$(id -u)" = 0 ] || { echo "run as root (runuser, package installs)" >&2; exit 1; }
need=()
[ -x "$PGBIN/postgres" ] || need+=(postgresql-15)
command -v pgbackrest >/dev/null || need+=(pgbackrest)
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -x "$PGTIMEFS" ] || { echo "no pgtimefs binary at $PGTIMEFS (build first)" >&2; exit 1; }

W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/pgtimefs-bench-wal.XXXXXX")
chmod 0711 "$W"
cp "$PGTIMEFS" "$W/pgtimefs"
PGT=$W/pgtimefs
SP=
cleanup() {
	[ -z "$SP" ] || kill -9 "$SP" 2>/dev/null || true
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
	[ "${KEEP:-0}" = 1 ] && echo "kept $W" || rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/pg/sock" "$W/pgbr/repo" "$W/pgbr/log" "$W/pgbr/lock" "$W/pgbr/spool" "$W/segs"
chown -R postgres "$W/pg" "$W/pgbr" "$W/segs"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PGDATA=$W/pg/data
SOCK=$W/pg/sock
SEG=16777216
. "$HERE/pgbr.sh"
pgbr_conf "$W/pgbr/pgbackrest.conf" "$W/pgbr" "$PGDATA" "$PORT" "$SOCK"
PGBR=(runuser -u postgres -- pgbackrest --config="$W/pgbr/pgbackrest.conf" --stanza=bench)

runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust >/dev/null
cat >>"$PGDATA/postgresql.conf" <<CONF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCK'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 4GB
synchronous_commit = off
shared_buffers = 256MB
max_wal_size = 4GB
CONF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "$W/pg/log" -w start >/dev/null
psql_() { runuser -u postgres -- "$PGBIN/psql" -h "$SOCK" -p "$PORT" -U postgres -X -Atqc "$1" postgres; }
pgbench_() { runuser -u postgres -- "$PGBIN/pgbench" -h "$SOCK" -p "$PORT" -U postgres "$@" postgres >/dev/null 2>&1; }
echo "== machine: $(nproc) CPUs, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -r); $("$PGBIN/postgres" --version); pgbackrest $(pgbackrest version | awk '{print $2}'); pgtimefs $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo ?)"
echo "== pgbench -i -s $SCALE, then pgbench until $PUSHES segments of its WAL"
pgbench_ -i -s "$SCALE" -q
psql_ "CHECKPOINT" >/dev/null
"${PGBR[@]}" stanza-create >/dev/null
first=$(psql_ "SELECT pg_walfile_name(pg_current_wal_lsn())")
first_no=$((16#${first:8:8} * 256 + 16#${first:16:8}))
while [ "$(psql_ "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint / $SEG - $first_no")" -le "$PUSHES" ]; do
	pgbench_ -n -c 4 -T 3
done
psql_ "SELECT pg_switch_wal()" >/dev/null
ls "$PGDATA/pg_wal" | grep -E '^[0-9A-F]{24}$' | awk -v f="$first" '$0 > f' | head -n "$PUSHES" >"$W/seglist"
[ "$(wc -l <"$W/seglist")" = "$PUSHES" ] || { echo "only $(wc -l <"$W/seglist") segments to push" >&2; exit 1; }
while read -r s; do cp "$PGDATA/pg_wal/$s" "$W/segs/$s"; done <"$W/seglist"
chown postgres "$W/segs/"*

# pgtimefs repositories: a (wal-push, generated key), p (wal-push, passphrase), s (wal-stream),
# x / y (index off / on)
for k in a p s x y; do
	mkdir -p "$W/$k"
	cat >"$W/$k/pgtimefs.conf" <<CONF
[repository]
zones = $W/$k/zone-a $W/$k/zone-b $W/$k/zone-c
state-dir = $W/$k/state

[cluster bench]

[node bench/n1]
conninfo = host=$SOCK port=$PORT user=postgres dbname=postgres
CONF
	PGTIMEFS_CONFIG=$W/$k/pgtimefs.conf PGTIMEFS_PASSPHRASE=bench "$PGT" init >/dev/null
done
pgt() { local k=$1; shift; PGTIMEFS_CONFIG=$W/$k/pgtimefs.conf PGTIMEFS_PASSPHRASE=bench "$PGT" "$@"; }
# pushes run as archive_command does: as postgres, the key from the config's passphrase-file
pgt a key add --generate "$W/a/secret" >/dev/null
sed -i "s|^\[repository\]\$|[repository]\npassphrase-file = $W/a/secret|" "$W/a/pgtimefs.conf"
chown -R postgres "$W/a" "$W/p"
pgt_pg() { local k=$1; shift; runuser -u postgres -- env PGTIMEFS_CONFIG="$W/$k/pgtimefs.conf" PGTIMEFS_PASSPHRASE=bench "$PGT" "$@"; }
median_f() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "== 1. push $PUSHES segments, one process each"
# Each push runs as archive_command does: /bin/sh -c as postgres, the segment just read into
# the page cache (read before every timed push: memory reclaim between pushes would otherwise
# make whichever tool reads it first pay the disk read for all three). bench/archtime.py times
# them, started once as postgres; the pgtimefs pushes also print their in-process store time.
mkdir -p "$W/json"
: >"$W/push.jobs"
: >"$W/push.times"
chown postgres "$W/json" "$W/push.times"
while read -r s; do
	printf 'pgt\t%s\tPGTIMEFS_CONFIG=%s %s --json wal-push bench n1 %s >%s\n' "$W/segs/$s" "$W/a/pgtimefs.conf" \
		"$PGT" "$W/segs/$s" "$W/json/$s" >>"$W/push.jobs"
	printf 'pass\t%s\tPGTIMEFS_CONFIG=%s PGTIMEFS_PASSPHRASE=bench %s wal-push bench n1 %s\n' "$W/segs/$s" \
		"$W/p/pgtimefs.conf" "$PGT" "$W/segs/$s" >>"$W/push.jobs"
	printf 'pgbr\t%s\tpgbackrest --config=%s --stanza=bench archive-push %s\n' "$W/segs/$s" \
		"$W/pgbr/pgbackrest.conf" "$W/segs/$s" >>"$W/push.jobs"
done <"$W/seglist"
runuser -u postgres -- python3 - "$W/push.jobs" "$W/push.times" <"$HERE/archtime.py"
awk '$1 == "pgt" { print $2 }' "$W/push.times" >"$W/push.pgt"
awk '$1 == "pass" { print $2 }' "$W/push.times" >"$W/push.pass"
awk '$1 == "pgbr" { print $2 }' "$W/push.times" >"$W/push.pgbr"
for s in $(cat "$W/seglist"); do
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["milliseconds"])' "$W/json/$s"
done >"$W/push.pgt.in"
for s in $(cat "$W/seglist"); do
	pgt a wal-fetch bench n1 "$s" "$W/back" && cmp -s "$W/back" "$W/segs/$s" || { echo "FATAL: $s does not read back" >&2; exit 1; }
done
PUSH_PGT=$(median <"$W/push.pgt")
PUSH_PGT_IN=$(median <"$W/push.pgt.in")
PUSH_PGBR=$(median <"$W/push.pgbr")
PUSH_PASS=$(median <"$W/push.pass")
printf '  pgtimefs wal-push      median %5.0f ms (in-process store %.0f ms; the rest is start-up and opening the repository)\n' "$PUSH_PGT" "$PUSH_PGT_IN"
printf '  pgbackrest archive-push median %5.0f ms\n' "$PUSH_PGBR"
printf '  (pgtimefs wal-push opened with a typed passphrase, scrypt kdf-log2n 15: median %.0f ms)\n' "$PUSH_PASS"

echo "== 2. wal-stream during pgbench -c 4 -T $DURATION"
psql_ "CHECKPOINT" >/dev/null
PGTIMEFS_CONFIG=$W/s/pgtimefs.conf PGTIMEFS_PASSPHRASE=bench "$PGT" --json wal-stream bench >"$W/stream.jsonl" 2>"$W/stream.err" &
SP=$!
for i in $(seq 1 100); do
	[ "$(psql_ "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgtimefs_n1' AND active")" = 1 ] && break
	sleep 0.2
done
# the slot starts at the last checkpoint's redo point: the stream first catches up with that
for i in $(seq 1 300); do
	[ "$(psql_ "SELECT (pg_current_wal_lsn() - restart_lsn)::bigint < $SEG FROM pg_replication_slots WHERE slot_name = 'pgtimefs_n1'")" = t ] && break
	sleep 0.2
done
(
	while :; do
		psql_ "SELECT (pg_current_wal_lsn() - restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = 'pgtimefs_n1'" || true
		sleep 1
	done
) >"$W/lag" &
LP=$!
t0=$(date +%s.%N)
pgbench_ -n -c 4 -T "$DURATION"
t1=$(date +%s.%N)
kill "$LP" 2>/dev/null || true
wait "$LP" 2>/dev/null || true
end=$(psql_ "SELECT pg_switch_wal()" >/dev/null; psql_ "SELECT pg_current_wal_lsn()")
last=$(psql_ "SELECT pg_walfile_name('$end'::pg_lsn - 1)")
WAL_MB=$(psql_ "SELECT round((('$end'::pg_lsn - '0/0'::pg_lsn) / 1048576)::numeric)")
for i in $(seq 1 600); do
	grep -q "\"file\":\"$last\"" "$W/stream.jsonl" && break
	sleep 0.1
done
kill -TERM "$SP"
wait "$SP" || { cat "$W/stream.err" >&2; echo "FATAL: wal-stream failed" >&2; exit 1; }
SP=
read -r NSEG MAXDELAY MEDDELAY MISSING start_seg < <(python3 - "$W/stream.jsonl" "$last" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
segs = {r["file"]: r for r in rows if r["kind"] == "segment"}
no = lambda name: int(name[8:16], 16) * 256 + int(name[16:24], 16)
want = ["%s%08X%08X" % (sys.argv[2][:8], n // 256, n % 256) for n in range(min(no(f) for f in segs), no(sys.argv[2]) + 1)]
missing = [w for w in want if w not in segs]
d = sorted((r["stored_us"] - r["received_us"]) / 1e6 for r in segs.values() if not r["already_archived"])
print(len(segs), "%.2f" % d[-1], "%.2f" % d[len(d) // 2], len(missing), want[0])
PY
)
[ "$MISSING" = 0 ] || { echo "FATAL: $MISSING segments between $start_seg and $last were not stored" >&2; exit 1; }
MAXLAG=$(sort -n "$W/lag" | tail -1)
MAXLAG_MB=$(python3 -c "print('%.1f' % (${MAXLAG:-0} / 1048576))")
RATE=$(python3 -c "print('%.1f' % ($NSEG * 16 / ($t1 - $t0)))")
printf '  %d segments stored (%s .. %s, none missing), %s MiB/s of WAL while pgbench ran\n' "$NSEG" "$start_seg" "$last" "$RATE"
printf '  slot lag: max %s MiB over %d samples\n' "$MAXLAG_MB" "$(wc -l <"$W/lag")"
printf '  segment received -> stored: max %s s, median %s s\n' "$MAXDELAY" "$MEDDELAY"

echo "== 3. the time index: store with and without the WAL reader"
: >"$W/idx"
while read -r s; do
	x=$(PGTIMEFS_WAL_NO_INDEX=1 pgt x --json wal-push bench n1 "$W/segs/$s" | python3 -c 'import json,sys; print(json.load(sys.stdin)["milliseconds"])')
	y=$(pgt y --json wal-push bench n1 "$W/segs/$s" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["milliseconds"], d["index_microseconds"], d["cpu_microseconds"])')
	echo "$x $y" >>"$W/idx"
done <"$W/seglist"
IDX_OFF=$(cut -d' ' -f1 "$W/idx" | median)
IDX_ON=$(cut -d' ' -f2 "$W/idx" | median)
IDX_US=$(cut -d' ' -f3 "$W/idx" | median)
IDX_CPU=$(cut -d' ' -f4 "$W/idx" | median)
# the target: the reader's own CPU time inside each store, over the CPU time of the rest of
# that store (the A/B medians below are printed too, but fsyncs to three zones make them noisy)
EXTRA=$(awk '{ printf "%.2f\n", 100 * $3 / ($4 - $3) }' "$W/idx" | median_f)
printf '  the WAL reader inside a store: median %d us of CPU for a 16 MiB segment (the store: %d us of CPU), %s%% of the rest of the store\n' "$IDX_US" "$IDX_CPU" "$EXTRA"
printf '  (A/B, fresh repositories: median store %d ms without the reader, %d ms with it)\n' "$IDX_OFF" "$IDX_ON"
[ "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM wal WHERE last_commit_us IS NOT NULL").fetchone()[0])' "$W/y/state/catalog.db")" -gt 0 ] ||
	{ echo "FATAL: the indexed repository has no commit times" >&2; exit 1; }

echo
echo "== summary"
res() { python3 -c "import sys; print('PASS' if $1 else 'FAIL')"; }
printf '%-52s %10s %10s %8s  %s\n' "measurement" "pgtimefs" "pgBackRest" "ratio" "target"
printf '%-52s %10s %10s %8s  %s\n' "1. push one 16 MiB segment, median (ms)" "$PUSH_PGT" "$PUSH_PGBR" \
	"$(python3 -c "print('%.2f' % ($PUSH_PGT / $PUSH_PGBR))")" "<= 0.5  $(res "$PUSH_PGT <= 0.5 * $PUSH_PGBR")"
printf '%-52s %10s %10s %8s  %s\n' "2. wal-stream: max slot lag (MiB)" "$MAXLAG_MB" "-" "-" "< 64  $(res "$MAXLAG_MB < 64")"
printf '%-52s %10s %10s %8s  %s\n' "2. wal-stream: max received -> stored (s)" "$MAXDELAY" "-" "-" "<= 2  $(res "$MAXDELAY <= 2")"
printf '%-52s %10s %10s %8s  %s\n' "3. time index: extra store CPU (%)" "$EXTRA" "-" "-" "< 10  $(res "$EXTRA < 10")"
