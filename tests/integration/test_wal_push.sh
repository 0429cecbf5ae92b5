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
# pg_waldump (the reference) shows for the transaction records that end in it. pg_waldump
# reads the segment with the one before it (fetched from the archive), and a record ends in
# the segment where the record after it starts (past that segment's 40-byte long header)
SEGB=$(sql "$P" "SELECT setting::bigint * (CASE unit WHEN 'MB' THEN 1048576 WHEN '8kB' THEN 8192 ELSE 1 END) FROM pg_settings WHERE name = 'wal_segment_size'")
checked=0
for f in "$PGROOT/main/pg_wal/"*; do
	name=${f##*/}
	[ -f "$PGROOT/main/pg_wal/archive_status/$name.done" ] || continue
	rm -rf "$T/scratch/pair" && mkdir "$T/scratch/pair" && cp "$f" "$T/scratch/pair/" && chown -R "$PG_USER" "$T/scratch/pair"
	prev=$(python3 -c 'import sys; n, s = sys.argv[1], int(sys.argv[2]); per = 0x100000000 // s
g = int(n[8:16], 16) * per + int(n[16:24], 16) - 1
print("%s%08X%08X" % (n[:8], g // per, g % per))' "$name" "$SEGB")
	first=$name
	wp wal-fetch c n "$prev" "$T/scratch/pair/$prev" 2>/dev/null && first=$prev
	want=$("$PG_BIN/pg_waldump" -p "$T/scratch/pair" "$first" "$name" 2>/dev/null | python3 -c '
import re, sys, datetime
seg, this = int(sys.argv[1]), sys.argv[2]
want = (int(this[8:16], 16) * (0x100000000 // seg) + int(this[16:24], 16))
recs = []
for line in sys.stdin:
    l = re.search(r"lsn: ([0-9A-F]+)/([0-9A-F]+),", line)
    if not l:
        continue
    m = re.search(r"rmgr: Transaction .* desc: (COMMIT|ABORT|COMMIT_PREPARED|ABORT_PREPARED) .*?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?) UTC", line)
    ts = None
    if m:
        d = datetime.datetime.strptime(m.group(2) + ("" if m.group(3) else ".0"), "%Y-%m-%d %H:%M:%S.%f")
        ts = int(d.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000000)
    recs.append((int(l.group(1), 16) << 32 | int(l.group(2), 16), ts))
ts = []
for i, (lsn, t) in enumerate(recs):
    if t is None:
        continue
    nxt = recs[i + 1][0] if i + 1 < len(recs) else lsn
    end = nxt // seg if i + 1 == len(recs) or nxt % seg > 40 else nxt // seg - 1
    if end == want:
        ts.append(t)
print("%d %d" % (min(ts), max(ts)) if ts else "0 0")' "$SEGB" "$name")
	got=$(python3 -c 'import sqlite3, sys
r = sqlite3.connect(sys.argv[1]).execute("SELECT coalesce(first_commit_us, 0), coalesce(last_commit_us, 0) FROM wal WHERE name = ?", (sys.argv[2],)).fetchone()
print("%d %d" % r if r else "missing")' "$T/state/catalog.db" "$name")
	[ "$got" = "$want" ] || fail "time index of $name: $got, pg_waldump says $want (first last, Unix us)"
	[ "$want" = "0 0" ] || checked=$((checked + 1))
done
[ "$checked" -ge 2 ] || fail "only $checked archived segments with commits to compare with pg_waldump"
ok "time index: first and last commit times of $checked segments agree with pg_waldump (read with the segment before)"

# a commit record that begins in one segment and ends in the next counts in the next one's
# time index (wal-push reads the archived previous segment's tail first, more of it for a
# record that began before its last 64 KiB)
sql "$P" "CREATE TABLE span(i int)"
# spanning SUBXACTS PADS: a transaction of SUBXACTS subtransactions (its commit record lists them,
# 4 bytes each) placed across a segment boundary with non-transactional logical messages as
# padding, each of PADS leaving that many bytes to the boundary (and room for page headers)
spanning() {
	local out lsn0 lsn1 s0 s1 cts got
	sql "$P" "SELECT pg_switch_wal()" >/dev/null
	out=$("$PG_BIN/psql" -h "$SOCK" -p "$P" -U postgres -d postgres -X -Atq -v ON_ERROR_STOP=1 <<SQL
BEGIN;
DO \$\$ DECLARE r bigint; BEGIN
	FOR i IN 1..$1 LOOP BEGIN INSERT INTO span VALUES (i); EXCEPTION WHEN others THEN NULL; END; END LOOP;
	FOREACH r IN ARRAY ARRAY[$2] LOOP
		r := $SEGB - ((pg_current_wal_insert_lsn() - '0/0'::pg_lsn) % $SEGB)::bigint - r;
		IF r > 0 THEN PERFORM pg_logical_emit_message(false, 'pad', repeat('x', r::int)); END IF;
	END LOOP;
END \$\$;
SELECT pg_current_wal_insert_lsn();
COMMIT;
SELECT pg_current_wal_insert_lsn();
SQL
	) || fail "the spanning transaction of $1 subtransactions"
	lsn0=${out%%$'\n'*} lsn1=${out##*$'\n'}
	s0=$(sql "$P" "SELECT pg_walfile_name('$lsn0')") s1=$(sql "$P" "SELECT pg_walfile_name('$lsn1')")
	[ "$s0" != "$s1" ] || fail "test setup: the commit record ($lsn0 to $lsn1) does not cross a segment boundary ($s0)"
	SPAN_BEFORE=$(sql "$P" "SELECT $SEGB - (('$lsn0'::pg_lsn - '0/0'::pg_lsn) % $SEGB)::bigint")
	sql "$P" "SELECT pg_switch_wal()" >/dev/null
	for i in $(seq 1 300); do [ "$(sql "$P" "SELECT last_archived_wal >= '$s1' FROM pg_stat_archiver")" = t ] && break; sleep 0.1; done
	cts=$("$PG_BIN/pg_waldump" -p "$PGROOT/main/pg_wal" -s "$lsn0" -n 1 2>/dev/null | python3 -c '
import re, sys, datetime
m = re.search(r"desc: COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) UTC", sys.stdin.read())
d = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f") if m else None
print(int(d.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000000) if d else "none")')
	[ "$cts" != none ] || fail "pg_waldump shows no commit at $lsn0"
	got=$(cat_q "SELECT coalesce(first_commit_us, 0) || ' ' || coalesce(last_commit_us, 0) FROM wal WHERE name = '$s1'")
	[ "${got% *}" = "$cts" ] || fail "$s1's first commit is ${got% *}, not the commit that began in $s0 ($cts), $SPAN_BEFORE bytes before the boundary"
	[ "$(cat_q "SELECT coalesce(last_commit_us, 0) < $cts FROM wal WHERE name = '$s0'")" = 1 ] || fail "$s0 counts the commit that ends in $s1"
	ok "a commit record from $lsn0 ($s0, $SPAN_BEFORE bytes before its end) to $lsn1 ($s1): in $s1's time index, not in $s0's"
}
# about 4 KB, begun about 2 KB before the boundary
spanning 1000 "200000, 20000, 2000"
# about 80 KB, begun more than 64 KiB before the boundary
spanning 20000 "400000, 72000"
[ "$SPAN_BEFORE" -gt 65536 ] || fail "test setup: the long commit record began $SPAN_BEFORE bytes before the boundary, not more than 64 KiB"

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
