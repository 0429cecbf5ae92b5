#!/bin/bash
# walread_gen.sh OUT: WAL from a real PostgreSQL 15 server for test_walread.c. Writes the
# segments to OUT/wal, pg_waldump's listing of them to OUT/waldump.txt and the first and last
# segment numbers to OUT/segs. The server runs as postgres when run as root, on loopback and a
# socket in a temporary directory, and is stopped at exit. Exit 77 (skip) without PostgreSQL 15.
set -euo pipefail
OUT=$1
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
skip() { echo "SKIP: $*" >&2; exit 77; }
[ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_waldump" ] ||
	skip "PostgreSQL 15 binaries not found in $PG_BIN (set PG_BIN)"
as_pg() { "$@"; }
D=$(mktemp -d "${TMPDIR:-/tmp}/pgt-walgen.XXXXXX")
if [ "$(id -u)" = 0 ]; then
	id postgres >/dev/null 2>&1 || skip "running as root and there is no 'postgres' user to run the server"
	command -v runuser >/dev/null || skip "runuser is missing"
	as_pg() { runuser -u postgres -- "$@"; }
	chmod 0711 "$D"
	chown postgres "$D"
fi
trap 'as_pg "$PG_BIN/pg_ctl" -D "$D/data" -m immediate -w stop >/dev/null 2>&1 || true; rm -rf "$D"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg "$PG_BIN/initdb" -D "$D/data" -U postgres -A trust --no-sync >"$D/initdb.log" 2>&1 || { cat "$D/initdb.log" >&2; exit 1; }
cat >>"$D/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$D'
wal_level = logical
max_prepared_transactions = 5
wal_keep_size = 2GB
max_wal_size = 2GB
fsync = off
full_page_writes = on
log_min_messages = warning
CONF
as_pg "$PG_BIN/pg_ctl" -D "$D/data" -l "$D/log" -w -t 60 start >/dev/null || { tail -20 "$D/log" >&2; exit 1; }
sql() { "$PG_BIN/psql" -h "$D" -p "$PORT" -U postgres -d postgres -X -Atq -v ON_ERROR_STOP=1 -c "$1"; }
sql "create table t (a int primary key, b text)"
for i in $(seq 1 12); do sql "insert into t select g, 'row' from generate_series($i * 1000, $i * 1000 + 99) g"; done
sql "begin; insert into t values (1, 'rolled back'); rollback;"
sql "begin; insert into t values (2, 'p1'); prepare transaction 'p1';"
sql "commit prepared 'p1'"
sql "begin; insert into t values (3, 'p2'); prepare transaction 'p2';"
sql "rollback prepared 'p2'"
sql "select pg_create_restore_point('before-big')" >/dev/null
sql "checkpoint"
sql "update t set b = repeat('u', 200)" # full-page images of every page after the checkpoint
sql "select pg_logical_emit_message(true, 'pgtimefs', repeat('x', 40000000))" >/dev/null
sql "begin; insert into t values (4, 'after big'); rollback;"
sql "select pg_logical_emit_message(false, 'pgtimefs', repeat('y', 3000000))" >/dev/null
sql "insert into t values (5, 'last')"
sql "select pg_create_restore_point('after-big')" >/dev/null
LAST=$(sql "select pg_walfile_name(pg_switch_wal())")
mkdir -p "$OUT/wal"
for s in $(seq 1 $((16#${LAST:16:8}))); do
	f=$(printf '%08X%08X%08X' 1 0 "$s")
	cp "$D/data/pg_wal/$f" "$OUT/wal/$f"
done
echo "1 $((16#${LAST:16:8}))" >"$OUT/segs"
TZ=UTC "$PG_BIN/pg_waldump" -p "$OUT/wal" 000000010000000000000001 "$LAST" >"$OUT/waldump.txt" 2>"$OUT/waldump.err" || true
grep -q . "$OUT/waldump.txt" || { cat "$OUT/waldump.err" >&2; exit 1; }
