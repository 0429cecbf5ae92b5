#!/usr/bin/env bash
# bench/backup.sh: online backups of a running PostgreSQL 15 node, pgtimefs (both paths)
# against pgBackRest 2.45 (Debian), on the same server in the same run.
#
#   sudo bench/backup.sh            # SCALE=50 (about 800 MB), a few minutes
#   SCALE=2 bench/backup.sh         # smoke test
#
# Setup: one server (initdb, pgbench -i -s $SCALE), running, archive_command pushing WAL to
# pgBackRest (its normal configuration: compress-type=zst, repo1-cipher-type=aes-256-cbc,
# process-max=2, start-fast=y). pgtimefs gets two repositories of its own (three zones each,
# as configured in production), one per path, so neither dedups against the other:
#   stream: the node by conninfo only (BASE_BACKUP over a replication connection)
#   local:  the same node with data-dir (pg_backup_start/stop, a walk, unchanged files reused)
# Steps: full backups (pgBackRest full, pgtimefs stream, pgtimefs local), then
# pgbench -T $PGBENCH_SECONDS, then pgBackRest incr and pgtimefs local and stream again.
# Targets (PASS/FAIL; a missed target does not change the exit status, a failing command does):
#   1. full wall time, each pgtimefs path <= 0.5 x pgBackRest full
#   2. after pgbench: local path wall time <= 0.5 x pgBackRest incr
#   3. after pgbench: new bytes stored by the local path (one zone) <= 0.5 x what pgBackRest's
#      incr adds to its repository (WAL archived meanwhile included, as it is part of the
#      restorable backup there; the pgtimefs snapshot holds its WAL in the snapshot)
#   4. peak RSS of every pgtimefs backup <= 256 MiB
# Environment: PGT_REPO_EXTRA (extra [repository] lines, "\n" between them, as bench/lib.sh),
# SCALE (50), PGBENCH_SECONDS (30), BENCH_DIR (/var/tmp), PGTIMEFS (the binary,
# default build/pgtimefs), PGBIN (/usr/lib/postgresql/15/bin), KEEP=1 keeps the work directory.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCALE=${SCALE:-50}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-30}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGTIMEFS=${PGTIMEFS:-$HERE/../build/pgtimefs}
[ "$(id -u)" = 0 ] || { echo "run as root (runuser, package installs)" >&2; exit 1; }
need=()
[ -x "$PGBIN/postgres" ] || need+=(postgresql-15)
command -v pgbackrest >/dev/null || need+=(pgbackrest)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -x "$PGTIMEFS" ] || { echo "no pgtimefs binary at $PGTIMEFS (build first)" >&2; exit 1; }

W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/pgtimefs-bench-backup.XXXXXX")
chmod 0711 "$W"
cp "$PGTIMEFS" "$W/pgtimefs"
PGT=$W/pgtimefs
cleanup() {
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg/data" -m fast -w stop >/dev/null 2>&1 || true
	[ "${KEEP:-0}" = 1 ] && echo "kept $W" || rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/pg/sock" "$W/pgbr/repo" "$W/pgbr/log" "$W/pgbr/lock" "$W/pgbr/spool"
chown -R postgres "$W/pg" "$W/pgbr"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PGDATA=$W/pg/data
SOCK=$W/pg/sock
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
archive_mode = on
archive_command = 'pgbackrest --config=$W/pgbr/pgbackrest.conf --stanza=bench archive-push %p'
shared_buffers = 256MB
max_wal_size = 2GB
CONF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "$W/pg/log" -w start >/dev/null
echo "== pgbench -i -s $SCALE"
runuser -u postgres -- "$PGBIN/pgbench" -h "$SOCK" -p "$PORT" -U postgres -i -s "$SCALE" -q postgres >/dev/null 2>&1
runuser -u postgres -- "$PGBIN/psql" -h "$SOCK" -p "$PORT" -U postgres -Atqc "CHECKPOINT" postgres
"${PGBR[@]}" stanza-create >/dev/null

# two pgtimefs repositories: one per path
for k in stream local; do
	mkdir -p "$W/$k"
	cat >"$W/$k/pgtimefs.conf" <<CONF
[repository]
zones = $W/$k/zone-a $W/$k/zone-b $W/$k/zone-c
state-dir = $W/$k/state
$(printf '%b' "${PGT_REPO_EXTRA:-}")

[cluster bench]

[node bench/n1]
conninfo = host=127.0.0.1 port=$PORT user=postgres dbname=postgres
CONF
	[ "$k" = local ] && echo "data-dir = $PGDATA" >>"$W/$k/pgtimefs.conf"
	PGTIMEFS_CONFIG=$W/$k/pgtimefs.conf PGTIMEFS_PASSPHRASE=bench "$PGT" init >/dev/null
done

declare -A SEC RSS
# timed NAME CMD...: wall seconds into SEC[NAME], peak RSS (KiB) into RSS[NAME]
timed() {
	local name=$1 t0 t1
	shift
	t0=$(date +%s.%N)
	/usr/bin/time -f %M -o "$W/rss" "$@" >"$W/out.$name" 2>"$W/err.$name" || { cat "$W/err.$name" >&2; echo "FAILED: $name" >&2; exit 1; }
	t1=$(date +%s.%N)
	SEC[$name]=$(python3 -c "print('%.2f' % ($t1 - $t0))")
	RSS[$name]=$(tail -1 "$W/rss")
	printf '  %-22s %8s s   peak RSS %6d MiB\n' "$name" "${SEC[$name]}" $((RSS[$name] / 1024))
}
zone_bytes() { du -sb "$W/$1/zone-a" | cut -f1; }
repo_bytes() { du -sb "$W/pgbr/repo" | cut -f1; }

echo "== machine: $(nproc) CPUs, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -r); $("$PGBIN/postgres" --version); pgbackrest $(pgbackrest version | awk '{print $2}'); pgtimefs $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo ?)"
echo "== data: $(du -sh "$PGDATA" | cut -f1) (scale $SCALE)"
echo "== full backups (page cache warm for all three)"
timed pgbr_full "${PGBR[@]}" --type=full backup
timed pgt_stream_full env PGTIMEFS_CONFIG="$W/stream/pgtimefs.conf" PGTIMEFS_PASSPHRASE=bench "$PGT" --json backup bench
timed pgt_local_full env PGTIMEFS_CONFIG="$W/local/pgtimefs.conf" PGTIMEFS_PASSPHRASE=bench "$PGT" --json backup bench
PGBR_AFTER_FULL=$(repo_bytes)
LOCAL_AFTER_FULL=$(zone_bytes local)
STREAM_AFTER_FULL=$(zone_bytes stream)

echo "== pgbench -c 2 -T $PGBENCH_SECONDS"
runuser -u postgres -- "$PGBIN/pgbench" -h "$SOCK" -p "$PORT" -U postgres -n -c 2 -T "$PGBENCH_SECONDS" postgres >/dev/null 2>&1
echo "== incremental backups"
timed pgbr_incr "${PGBR[@]}" --type=incr backup
timed pgt_local_incr env PGTIMEFS_CONFIG="$W/local/pgtimefs.conf" PGTIMEFS_PASSPHRASE=bench "$PGT" --json backup bench
timed pgt_stream_incr env PGTIMEFS_CONFIG="$W/stream/pgtimefs.conf" PGTIMEFS_PASSPHRASE=bench "$PGT" --json backup bench
PGBR_INCR_BYTES=$(($(repo_bytes) - PGBR_AFTER_FULL))
LOCAL_INCR_BYTES=$(($(zone_bytes local) - LOCAL_AFTER_FULL))
STREAM_INCR_BYTES=$(($(zone_bytes stream) - STREAM_AFTER_FULL))
read -r reused files < <(python3 -c 'import json,sys; n=json.load(open(sys.argv[1]))["nodes"][0]; print(n["files_reused"], n["files"])' "$W/out.pgt_local_incr")
echo "  local incr reused $reused of $files files unread"
echo "== sizes: pgBackRest repo after full $((PGBR_AFTER_FULL >> 20)) MiB, incr adds $((PGBR_INCR_BYTES >> 20)) MiB;" \
	"pgtimefs one zone: local full $((LOCAL_AFTER_FULL >> 20)) MiB + incr $((LOCAL_INCR_BYTES >> 20)) MiB," \
	"stream full $((STREAM_AFTER_FULL >> 20)) MiB + incr $((STREAM_INCR_BYTES >> 20)) MiB"

maxrss=0
for k in pgt_stream_full pgt_local_full pgt_local_incr pgt_stream_incr; do
	[ "${RSS[$k]}" -gt "$maxrss" ] && maxrss=${RSS[$k]}
done
echo
printf '%-44s %12s %12s %7s %8s %s\n' MEASUREMENT PGTIMEFS PGBACKREST RATIO TARGET RESULT
row() { # name pgt pgbr target unit
	local r res
	r=$(python3 -c "print('%.2f' % ($2 / $3 if $3 else float('inf')))")
	res=$(python3 -c "print('PASS' if $2 <= $4 * $3 else 'FAIL')")
	printf '%-44s %12s %12s %7s %8s %s\n' "$1" "$2$5" "$3$5" "$r" "<=$4x" "$res"
}
row "full, streaming path (s)" "${SEC[pgt_stream_full]}" "${SEC[pgbr_full]}" 0.5 ""
row "full, local path (s)" "${SEC[pgt_local_full]}" "${SEC[pgbr_full]}" 0.5 ""
row "after pgbench: local path vs incr (s)" "${SEC[pgt_local_incr]}" "${SEC[pgbr_incr]}" 0.5 ""
row "after pgbench: new bytes, local vs incr (MiB)" "$((LOCAL_INCR_BYTES >> 20))" "$((PGBR_INCR_BYTES >> 20))" 0.5 ""
printf '%-44s %12s %12s %7s %8s %s\n' "peak RSS of pgtimefs backup (MiB)" "$((maxrss / 1024))" "-" "-" "<=256" \
	"$([ $((maxrss / 1024)) -le 256 ] && echo PASS || echo FAIL)"
printf '%-44s %12s %12s\n' "(info) after pgbench: streaming path (s)" "${SEC[pgt_stream_incr]}" "${SEC[pgbr_incr]}"
printf '%-44s %12s %12s\n' "(info) after pgbench: new bytes, stream (MiB)" "$((STREAM_INCR_BYTES >> 20))" "$((PGBR_INCR_BYTES >> 20))"
