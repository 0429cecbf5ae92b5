#!/usr/bin/env bash
# archive_command = 'pgtimefs wal-push ...' on a real PostgreSQL 15 server under pgbench, and
# restore_command = 'pgtimefs wal-fetch ...': every archived segment reads back byte for byte,
# a second push of the same file succeeds, another file under an archived name is refused
# loudly, a file truncated under its push ends it with exit 1 and nothing recorded (SIGBUS),
# a missing name exits 1 in silence, and a base backup taken with -X none recovers
# from the archive alone to the last row written before the final switch.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"

# archive_command runs as the server's user: the repository, the state directory, the
# configuration and a wrapper carrying the passphrase all belong to it, and every pgtimefs
# command below runs as that user too (one owner for the catalog and its lock)
pg_repo_wrapper
mkdir -p "$T/scratch"
pg_repo_own "$T/scratch"
wp init >/dev/null
ok "repository owned by the server's user ($PG_USER)"

P=$(free_port)
pg_init main "$P"
cat >>"$PGROOT/main/postgresql.conf" <<PGCONF
archive_mode = on
archive_command = '$W wal-push c n %p'
archive_timeout = 0
PGCONF
pg_start main
"$PG_BIN/pgbench" -h "$SOCK" -p "$P" -U postgres -i -s 2 -q postgres >/dev/null 2>&1 || fail "pgbench -i"
sql "$P" "CREATE TABLE marks(id int PRIMARY KEY)"

# wait_archived N: until pg_stat_archiver counts at least N archived files, with no failure
wait_archived() {
	local want=$1 i got
	for i in $(seq 1 300); do
		got=$(sql "$P" "SELECT archived_count || ' ' || failed_count FROM pg_stat_archiver")
		[ "${got#* }" = 0 ] || { tail -20 "$PGROOT/main.log" >&2; fail "archiver failures: $got"; }
		[ "${got% *}" -ge "$want" ] && return 0
		sleep 0.2
	done
	fail "only ${got% *} of $want files archived"
}
for round in 1 2 3 4; do
	"$PG_BIN/pgbench" -h "$SOCK" -p "$P" -U postgres -n -c 2 -t 300 postgres >/dev/null 2>&1 || fail "pgbench"
	sql "$P" "INSERT INTO marks VALUES ($round)"
	sql "$P" "SELECT pg_switch_wal()" >/dev/null
done
wait_archived 4
ok "pgbench writing, four switches: pg_stat_archiver shows $(sql "$P" "SELECT archived_count FROM pg_stat_archiver") files archived, none failed"

# every archived segment still in pg_wal reads back byte for byte
n=0
for f in "$PGROOT/main/pg_wal/"*; do
	name=$(basename "$f")
	[ -f "$PGROOT/main/pg_wal/archive_status/$name.done" ] || continue
	wp wal-fetch c n "$name" "$T/scratch/$name" || fail "wal-fetch $name"
	cmp -s "$f" "$T/scratch/$name" || fail "fetched $name differs from the server's pg_wal copy"
	rm -f "$T/scratch/$name"
	n=$((n + 1))
done
[ "$n" -ge 3 ] || fail "only $n archived segments left in pg_wal to compare"
ok "$n archived segments fetched with wal-fetch equal the server's pg_wal copies"

# the time index: each archived segment's first and last commit/abort times are those that
# pg_waldump (the reference) shows for the transaction records that start and end in it
checked=0
for f in "$PGROOT/main/pg_wal/"*; do
	name=${f##*/}
	[ -f "$PGROOT/main/pg_wal/archive_status/$name.done" ] || continue
	want=$("$PG_BIN/pg_waldump" "$f" 2>/dev/null | python3 -c '
import re, sys, datetime
ts = []
for line in sys.stdin:
    m = re.search(r"rmgr: Transaction .* desc: (COMMIT|ABORT|COMMIT_PREPARED|ABORT_PREPARED) .*?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?) UTC", line)
    if m:
        d = datetime.datetime.strptime(m.group(2) + ("" if m.group(3) else ".0"), "%Y-%m-%d %H:%M:%S.%f")
        ts.append(int(d.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000000))
print("%d %d" % (ts[0], ts[-1]) if ts else "0 0")')
	got=$(python3 -c 'import sqlite3, sys
r = sqlite3.connect(sys.argv[1]).execute("SELECT coalesce(first_commit_us, 0), coalesce(last_commit_us, 0) FROM wal WHERE name = ?", (sys.argv[2],)).fetchone()
print("%d %d" % r if r else "missing")' "$T/state/catalog.db" "$name")
	[ "$got" = "$want" ] || fail "time index of $name: $got, pg_waldump says $want (first last, Unix us)"
	[ "$want" = "0 0" ] || checked=$((checked + 1))
done
[ "$checked" -ge 2 ] || fail "only $checked archived segments with commits to compare with pg_waldump"
ok "time index: first and last commit times of $checked segments agree with pg_waldump"

# idempotence and refusal
seg=$(sql "$P" "SELECT last_archived_wal FROM pg_stat_archiver")
wp wal-push c n "$PGROOT/main/pg_wal/$seg" || fail "second wal-push of $seg"
wp wal-push c n "$PGROOT/main/pg_wal/$seg" || fail "third wal-push of $seg"
ok "wal-push of an archived segment again exits 0"
head -c 16777216 /dev/urandom >"$T/scratch/$seg"
chown "$PG_USER" "$T/scratch/$seg" 2>/dev/null || true
expect_fail "wal-push of other bytes under an archived name" 1 as_pg "$W" wal-push c n "$T/scratch/$seg"
err_has "a different segment $seg is already archived for c/n: refusing to overwrite it"
err_has "HINT:"
wp wal-fetch c n "$seg" "$T/scratch/back" || fail "wal-fetch after the refusal"
cmp -s "$T/scratch/back" "$PGROOT/main/pg_wal/$seg" || fail "the refused push changed $seg"
ok "other bytes under an archived name: exit 1, loud message and HINT, archive unchanged"

# hold_lock WHAT: another process holds the writer lock (in the background, $holder) until
# $T/scratch/release exists
hold_lock() {
	rm -f "$T/scratch/locked" "$T/scratch/release"
	(
		flock 9
		touch "$T/scratch/locked"
		while [ ! -e "$T/scratch/release" ]; do sleep 0.05; done
	) 9>>"$T/state/writer.lock" &
	holder=$!
	for i in $(seq 1 200); do [ -e "$T/scratch/locked" ] && break; sleep 0.05; done
	[ -e "$T/scratch/locked" ] || fail "could not take the writer lock for $1"
}

# a file cut short under a push (someone truncates it while it is mapped): the read raises
# SIGBUS, which must end the push with exit 1 and a message, recording nothing. wal-push maps
# its file before it waits for the writer lock, so holding the lock opens the window.
sig=000000010000000000000F00
cp "$PGROOT/main/pg_wal/$seg" "$T/scratch/$sig"
chown "$PG_USER" "$T/scratch/$sig" 2>/dev/null || true
hold_lock "the SIGBUS check"
as_pg "$W" --wait 60 wal-push c n "$T/scratch/$sig" >"$T/out" 2>"$T/err" &
pusher=$!
mapped=
for i in $(seq 1 200); do
	for pid in $(pgrep -f "wal-push c n $T/scratch/$sig" || true); do
		grep -q "$T/scratch/$sig" "/proc/$pid/maps" 2>/dev/null && mapped=$pid
	done
	[ -n "$mapped" ] && break
	sleep 0.05
done
[ -n "$mapped" ] || { touch "$T/scratch/release"; fail "wal-push never mapped $sig while the lock was held"; }
truncate -s 8192 "$T/scratch/$sig"
touch "$T/scratch/release"
wait "$holder"
rc=0
wait "$pusher" || rc=$?
[ "$rc" = 1 ] || { cat "$T/err" >&2; fail "a push of a file truncated under it exited $rc, not 1"; }
err_has "could not be read (truncated, or a read error): nothing was recorded"
expect_fail "wal-fetch of the segment whose push died" 1 as_pg "$W" wal-fetch c n "$sig" "$T/scratch/none"
cp "$PGROOT/main/pg_wal/$seg" "$T/scratch/$sig"
chown "$PG_USER" "$T/scratch/$sig" 2>/dev/null || true
wp wal-push c n "$T/scratch/$sig" || fail "a push after the SIGBUS"
wp wal-fetch c n "$sig" "$T/scratch/back" || fail "wal-fetch after the SIGBUS"
cmp -s "$T/scratch/back" "$T/scratch/$sig" || fail "$sig does not read back after the SIGBUS"
ok "a file truncated under its push: SIGBUS ends it with exit 1 and a message, nothing recorded; the next push stores it"

# a wrong passphrase: refused with its message whether the writer lock is free (wal-push then
# takes the lock and opens the catalog before the key) or held by another process (the key
# comes first: said at once, not after --wait), and nothing is archived either way
wrong=000000010000000000000F01
cp "$PGROOT/main/pg_wal/$seg" "$T/scratch/$wrong"
chown "$PG_USER" "$T/scratch/$wrong" 2>/dev/null || true
expect_fail "wal-push with a wrong passphrase" 1 as_pg env PGTIMEFS_CONFIG="$PGTIMEFS_CONFIG" PGTIMEFS_PASSPHRASE=wrong \
	"$T/bin/pgtimefs" wal-push c n "$T/scratch/$wrong"
err_has "wrong passphrase"
hold_lock "the passphrase check"
t0=$(date +%s)
expect_fail "wal-push with a wrong passphrase, the lock held" 1 as_pg env PGTIMEFS_CONFIG="$PGTIMEFS_CONFIG" \
	PGTIMEFS_PASSPHRASE=wrong "$T/bin/pgtimefs" --wait 60 wal-push c n "$T/scratch/$wrong"
t1=$(date +%s)
touch "$T/scratch/release"
wait "$holder"
err_has "wrong passphrase"
[ $((t1 - t0)) -lt 20 ] || fail "a wrong passphrase was said only after $((t1 - t0)) s of waiting for the lock"
expect_fail "wal-fetch of the segment pushed with a wrong passphrase" 1 as_pg "$W" wal-fetch c n "$wrong" "$T/scratch/none"
ok "a wrong passphrase: exit 1 and its message at once, lock free or held; nothing archived"

expect_fail "wal-fetch of a missing segment" 1 as_pg "$W" wal-fetch c n 0000000100000000000000FF "$T/scratch/none"
[ ! -s "$T/err" ] || { cat "$T/err" >&2; fail "wal-fetch of a missing segment wrote to stderr"; }
[ ! -e "$T/scratch/none" ] || fail "wal-fetch of a missing segment created its destination"
expect_fail "wal-fetch of a missing history file" 1 as_pg "$W" wal-fetch c n 00000002.history "$T/scratch/none"
[ ! -s "$T/err" ] || fail "wal-fetch of a missing history file wrote to stderr"
expect_fail "wal-fetch for an unknown node" 126 as_pg "$W" wal-fetch c nosuch "$seg" "$T/scratch/none"
err_has "no node named 'nosuch'"
expect_fail "wal-push of a non-WAL name" 2 as_pg "$W" wal-push c n "$PGTIMEFS_CONFIG"
ok "missing names exit 1 with empty stderr; an unknown node is fatal (126) with a message"

# restore: a base backup with no WAL, then more writes; recovery fetches everything it needs
as_pg "$PG_BIN/pg_basebackup" -h "$SOCK" -p "$P" -U postgres -D "$PGROOT/copy" -X none -c fast >/dev/null 2>&1 ||
	fail "pg_basebackup"
for i in 11 12 13; do
	"$PG_BIN/pgbench" -h "$SOCK" -p "$P" -U postgres -n -c 2 -t 200 postgres >/dev/null 2>&1 || fail "pgbench"
	sql "$P" "INSERT INTO marks VALUES ($i)"
	sql "$P" "SELECT pg_switch_wal()" >/dev/null
done
want=$(sql "$P" "SELECT count(*) || ':' || max(id) FROM marks")
final=$(sql "$P" "SELECT pg_walfile_name(pg_current_wal_lsn() - 1)")
for i in $(seq 1 300); do
	got=$(sql "$P" "SELECT coalesce(last_archived_wal, '') || ' ' || failed_count FROM pg_stat_archiver")
	[ "${got#* }" = 0 ] || fail "archiver failures: $got"
	[ "${got% *}" \< "$final" ] || break
	sleep 0.2
done
[ "$i" -lt 300 ] || fail "the final segment $final was never archived (last: $got)"
pg_stop main
P2=$(free_port)
cat >>"$PGROOT/copy/postgresql.conf" <<PGCONF
port = $P2
archive_mode = off
restore_command = '$W wal-fetch c n %f %p'
recovery_target_action = promote
PGCONF
touch "$PGROOT/copy/recovery.signal"
[ "$PG_USER" = "$(id -un)" ] || chown -R "$PG_USER" "$PGROOT/copy"
pg_start copy
for i in $(seq 1 300); do
	[ "$(sql "$P2" "SELECT pg_is_in_recovery()")" = f ] && break
	sleep 0.2
done
[ "$(sql "$P2" "SELECT pg_is_in_recovery()")" = f ] || fail "the restored copy never finished recovery"
got=$(sql "$P2" "SELECT count(*) || ':' || max(id) FROM marks")
[ "$got" = "$want" ] || { tail -20 "$PGROOT/copy.log" >&2; fail "restored copy has marks $got, expected $want"; }
grep -q "restored log file" "$PGROOT/copy.log" || fail "the copy's log shows no file restored from the archive"
ok "pg_basebackup -X none + restore_command wal-fetch: recovered to the last row ($want) and promoted"
echo "all $CHECKS checks passed"
