#!/usr/bin/env bash
# wal-stream resumed across a timeline switch it did not see, on real PostgreSQL 15 servers
# with 1 MiB WAL segments: a streaming standby (pg_basebackup -R) streamed by wal-stream; the
# streamer is killed with -9; the primary writes segments the standby receives but the
# streamer does not; the standby is promoted (timeline 2) and writes on; wal-stream starts
# again. It must fetch the rest of timeline 1 up to the switch point (START_REPLICATION ...
# TIMELINE 1), store it as a final .partial, store 00000002.history, and go on with timeline 2:
# every file byte for byte the standby's, each once, and the node's restorable window (`list
# --json`) without a gap up to a commit made after the promotion. Then the old primary, still
# on timeline 1 and written past the archive's end, answers at the node's conninfo: nothing of
# its diverged WAL is stored. A new node on the promoted server stores the history first. A
# node whose archive went on on timeline 1 past the switch (streamed from the old primary),
# then pointed at the promoted server, streams timeline 2 from the switch point's segment.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"

mkdir -p "$T/scratch"
SEG=1048576
P=$(free_port)
P2=$(free_port)
pg_stream_server main "$P"
as_pg "$PG_BIN/pg_basebackup" -h "$SOCK" -p "$P" -U postgres -D "$PGROOT/standby" -R -X stream -c fast >/dev/null 2>&1 ||
	fail "pg_basebackup of the standby"
printf 'port = %s\nwal_keep_size = 256MB\n' "$P2" >>"$PGROOT/standby/postgresql.conf" # section 6 streams its first segments late
pg_start standby
SW=$PGROOT/standby/pg_wal

# The standby is node s. pgtimefs cannot back a standby up (a backup makes a restore point,
# refused during recovery), so node s's backup is taken from the primary: the same system, and
# timeline 1 holds the same bytes on both. It gives the node a window to check.
cp "$PGTIMEFS_CONFIG" "$T/backup.conf"
cat >>"$T/backup.conf" <<CONF
[cluster c]
[node c/s]
conninfo = host=$SOCK port=$P user=postgres dbname=postgres
data-dir = $PGROOT/main
CONF
cat >>"$PGTIMEFS_CONFIG" <<CONF
[cluster c]
wal-partial-interval = 1
[node c/s]
conninfo = host=$SOCK port=$P2 user=postgres dbname=postgres
CONF
"$PGT" init >/dev/null

SP=
stop_streamer() { [ -z "$SP" ] || { kill -9 "$SP" 2>/dev/null; wait "$SP" 2>/dev/null; } || true; SP=; }
cleanup_hooks+=("stop_streamer")
# start_streamer RUN: wal-stream of node s, its --json lines in $T/RUN.jsonl
start_streamer() {
	"$PGT" --json wal-stream c s >>"$T/$1.jsonl" 2>>"$T/stream.err" &
	SP=$!
}
q() { cat_q "$1"; }
wait_s() { wait_stored "$1"; }
# wait_replay: until the standby has replayed everything the primary wrote so far
wait_replay() {
	local lsn i
	lsn=$(sql "$P" "SELECT pg_current_wal_lsn()")
	for i in $(seq 1 300); do
		[ "$(sql "$P2" "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ] && return 0
		sleep 0.1
	done
	fail "the standby did not replay up to $lsn"
}
bench() { "$PG_BIN/pgbench" -h "$SOCK" -p "$P" -U postgres -n -c 2 "$@" postgres >/dev/null 2>&1 || fail "pgbench $*"; }
segno() { echo $((16#${1:8:8} * 4096 + 16#${1:16:8})); }
segname() { printf '%08X%08X%08X' "$1" $(($2 / 4096)) $(($2 % 4096)); }
# equal_prefix A B N: the first N bytes of A and B are equal, and A holds only zeros after them
equal_prefix() {
	python3 -c 'import sys
a, b, n = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), int(sys.argv[3])
sys.exit("differ in the first %d bytes" % n if a[:n] != b[:n] else "not zero after byte %d" % n if any(a[n:]) else 0)' "$1" "$2" "$3"
}

# 1. streaming the standby; a backup; writes the streamer stores
start_streamer run1
for i in $(seq 1 100); do
	[ "$(sql "$P2" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgtimefs_s' AND active")" = 1 ] && break
	sleep 0.1
done
[ "$i" -lt 100 ] || { cat "$T/stream.err" >&2; fail "the streamer never used its slot on the standby"; }
PGTIMEFS_CONFIG=$T/backup.conf "$PGT" backup c >/dev/null || fail "backup of node s (from the primary)"
bench -T 2
sql "$P" "INSERT INTO marks VALUES (1)"
w=$(sql "$P" "SELECT pg_walfile_name(pg_switch_wal())")
wait_s "$w"
ok "wal-stream on the standby stored $w; a backup of the node exists"

# 2. kill -9; the primary writes on (the standby receives it, the streamer does not); promotion
kill -9 "$SP"
wait "$SP" 2>/dev/null || true
SP=
K=$(q "SELECT max(segno) FROM wal WHERE timeline = 1 AND length(name) = 24")
rows1=$(q "SELECT count(*) FROM wal")
bench -T 1
sql "$P" "INSERT INTO marks VALUES (2)"
sql "$P" "SELECT pg_switch_wal()" >/dev/null
sql "$P" "INSERT INTO marks SELECT generate_series(3, 2000)"
sql "$P" "SELECT pg_switch_wal()" >/dev/null
sql "$P" "INSERT INTO marks VALUES (2001)"
wait_replay
as_pg "$PG_BIN/pg_ctl" -D "$PGROOT/standby" -w promote >/dev/null || fail "promote"
[ -f "$SW/00000002.history" ] || fail "the promoted standby has no 00000002.history"
read -r _ S _ <"$SW/00000002.history"
S=$(python3 -c 'import sys; a, b = sys.argv[1].split("/"); print(int(a, 16) << 32 | int(b, 16))' "$S")
M=$((S / SEG)) OFF=$((S % SEG))
[ "$M" -ge $((K + 2)) ] || fail "test setup: the switch point's segment $M is not past the next segment after $K"
[ "$OFF" -gt 0 ] || fail "test setup: the switch point is at a segment start"
# writes on timeline 2, two segment switches
before=$(sql "$P2" "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint")
sql "$P2" "INSERT INTO marks VALUES (3001)"
a=$(sql "$P2" "SELECT pg_walfile_name(pg_switch_wal())")
sql "$P2" "INSERT INTO marks VALUES (3002)"
b=$(sql "$P2" "SELECT pg_walfile_name(pg_switch_wal())")
[ "$a" = "$(segname 2 "$M")" ] || fail "test setup: the first timeline 2 segment is $a, not segment $M"
ok "streamer killed at segment $K; the standby received up to the switch point in segment $M (+$OFF) and was promoted; $a and $b written on timeline 2"

# 3. wal-stream again: the rest of timeline 1, the history, timeline 2
start_streamer run2
wait_s "$b"
kill -TERM "$SP"
rc=0
wait "$SP" || rc=$?
SP=
[ "$rc" = 0 ] || { cat "$T/stream.err" >&2; fail "wal-stream exited $rc on SIGTERM"; }
grep -q "streaming from .* on timeline 1 .*after the last archived segment" "$T/stream.err" ||
	{ cat "$T/stream.err" >&2; fail "the resumed stream did not start on timeline 1"; }
grep -q "timeline 1 ended at .*; following timeline 2" "$T/stream.err" || { cat "$T/stream.err" >&2; fail "no end of timeline 1"; }
ok "the resumed stream started on timeline 1 after segment $K, the server ended it, the stream followed timeline 2"

# timeline 1: every complete segment from the first stored up to the switch point's, the
# standby's bytes, each once
segs=$(q "SELECT segno FROM wal WHERE timeline = 1 AND length(name) = 24 ORDER BY segno")
F=${segs%%$'\n'*}
python3 -c 'import sys; s = [int(x) for x in sys.argv[1].split()]; f, m = int(sys.argv[2]), int(sys.argv[3])
sys.exit(0 if s == list(range(f, m)) else "timeline 1 segments %s, wanted %d..%d" % (s, f, m - 1))' "$segs" "$F" "$M" ||
	fail "timeline 1 is not complete up to the switch point"
for f in $(q "SELECT name FROM wal WHERE timeline = 1 AND length(name) = 24 ORDER BY name"); do
	[ -f "$SW/$f" ] || fail "$f is no longer in the standby's pg_wal to compare"
	"$PGT" wal-fetch c s "$f" "$T/scratch/$f" || fail "wal-fetch $f"
	cmp -s "$SW/$f" "$T/scratch/$f" || fail "$f differs from the standby's"
	rm -f "$T/scratch/$f"
done
ok "timeline 1: segments $(segname 1 "$F")..$(segname 1 $((M - 1))) contiguous, byte for byte the standby's"

# timeline 1's last segment: a final .partial with the standby's bytes up to the switch point
p1=$(segname 1 "$M").partial
[ "$(q "SELECT group_concat(name) FROM wal WHERE name LIKE '%.partial' AND timeline = 1")" = "$p1" ] ||
	fail "timeline 1's partials: $(q "SELECT group_concat(name) FROM wal WHERE name LIKE '%.partial'"), wanted $p1 alone"
fin=$(python3 -c 'import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d["final"]: print(d["file"], d["received_bytes"])' "$T/run2.jsonl")
[ "$fin" = "$p1 $OFF" ] || fail "the final partial event is '$fin', wanted '$p1 $OFF'"
"$PGT" wal-fetch c s "$p1" "$T/scratch/p1" || fail "wal-fetch $p1"
[ "$(stat -c %s "$T/scratch/p1")" = "$SEG" ] || fail "$p1 is not a full segment"
o=$SW/$(segname 1 "$M")
[ -f "$o" ] || o=$o.partial
equal_prefix "$T/scratch/p1" "$o" "$OFF" || fail "$p1 against the standby's $(basename "$o")"
equal_prefix "$T/scratch/p1" "$SW/$a" "$OFF" || fail "$p1 against the start of $a"
ok "$p1: the only timeline 1 partial, $OFF bytes (the switch point) equal to the standby's, zeros after"

# the history and timeline 2
"$PGT" wal-fetch c s 00000002.history "$T/scratch/h" || fail "wal-fetch 00000002.history"
cmp -s "$SW/00000002.history" "$T/scratch/h" || fail "00000002.history differs from the standby's"
segs2=$(q "SELECT segno FROM wal WHERE timeline = 2 AND length(name) = 24 ORDER BY segno")
python3 -c 'import sys; s = [int(x) for x in sys.argv[1].split()]; m, l = int(sys.argv[2]), int(sys.argv[3])
sys.exit(0 if s == list(range(m, l + 1)) else "timeline 2 segments %s, wanted %d..%d" % (s, m, l))' "$segs2" "$M" "$(segno "$b")" ||
	fail "timeline 2 is not complete from the switch point's segment"
for f in $(q "SELECT name FROM wal WHERE timeline = 2 AND length(name) = 24 ORDER BY name"); do
	"$PGT" wal-fetch c s "$f" "$T/scratch/$f" || fail "wal-fetch $f"
	cmp -s "$SW/$f" "$T/scratch/$f" || fail "$f differs from the promoted standby's"
done
ok "00000002.history and timeline 2 segments $a..$b: byte for byte the promoted standby's"

# nothing stored twice: the resumed stream stored nothing the first run had stored, no file
# (but partials, replaced) twice, nothing it found archived already; the rows add up
python3 - "$T/run1.jsonl" "$T/run2.jsonl" "$K" <<'PY' || fail "a file was stored twice (above)"
import json, sys
r1 = [json.loads(l) for l in open(sys.argv[1])]
r2 = [json.loads(l) for l in open(sys.argv[2])]
k = int(sys.argv[3])
full = [d["file"] for d in r1 + r2 if d["kind"] != "partial"]
assert len(full) == len(set(full)), "stored twice: %s" % sorted(f for f in set(full) if full.count(f) > 1)
assert not any(d["already_archived"] for d in r1 + r2 if d["kind"] != "partial"), "a store found its file archived already"
first = [d["file"] for d in r2 if d["kind"] == "segment"][0]
assert first == "00000001%08X%08X" % ((k + 1) // 4096, (k + 1) % 4096), "the resumed stream's first segment is %s" % first
PY
n1=$(echo "$segs" | wc -l) n2=$(echo "$segs2" | wc -l)
got=$(q "SELECT count(*) || ' ' || count(DISTINCT name) || ' ' || sum(name LIKE '%.partial') || ' ' || sum(name LIKE '%.history') FROM wal")
p2=$(q "SELECT count(*) FROM wal WHERE timeline = 2 AND name LIKE '%.partial'")
[ "$got" = "$((n1 + n2 + 2 + p2)) $((n1 + n2 + 2 + p2)) $((1 + p2)) 1" ] ||
	fail "wal rows (all, distinct, partials, histories): $got; wanted $n1 + $n2 segments, a partial per timeline at most, one history"
[ "$p2" -le 1 ] || fail "$p2 partial rows on timeline 2"
ok "nothing stored twice: the resumed stream began at segment $((K + 1)); $n1 + $n2 segments, $((1 + p2)) partials, 1 history (was $rows1 rows at the kill)"

# the window: the backup's run goes through timeline 1, the switch, and timeline 2 without a gap
"$PGT" --json list c >"$T/list.json" || fail "list c"
python3 - "$T/list.json" "$before" <<'PY' || fail "the window of node s (above)"
import json, sys
d, before = json.load(open(sys.argv[1])), int(sys.argv[2])
s = [x for x in d["nodes"] if x["node"] == "s"][0]
w = s["window"]
assert s["backups"] == 1, s
assert len(w["intervals"]) == 1 and w["gaps"] == [], w
assert w["earliest_us"] == d["snapshots"][-1]["time_us"], (w, d["snapshots"][-1])
assert w["latest_us"] >= before, "the window ends at %s, before the commit after the promotion (%d)" % (w["latest"], before)
assert d["window"]["latest_us"] == w["latest_us"], d["window"]
print(w["earliest"], w["latest"])
PY
ok "list c: node s's window is one interval from its backup through the switch to a commit after the promotion, no gap"
! grep -qE "warning|runtime error|Sanitizer" "$T/stream.err" || { cat "$T/stream.err" >&2; fail "wal-stream warned"; }
ok "no warning (nor sanitizer report) from wal-stream"

# a new node on the promoted server starts on timeline 2 without seeing the switch: the
# history of its timeline is stored first, as pg_receivewal does (the same path serves a
# resume whose archive ends exactly at a switch point on a segment start)
cat >>"$PGTIMEFS_CONFIG" <<CONF
[node c/t]
conninfo = host=$SOCK port=$P2 user=postgres dbname=postgres
CONF
sql "$P2" "CHECKPOINT" # the new slot's restart_lsn on timeline 2, not at a restartpoint of timeline 1
sql "$P2" "INSERT INTO marks VALUES (3003)"
c=$(sql "$P2" "SELECT pg_walfile_name(pg_switch_wal())")
"$PGT" --json wal-stream c t --until-lsn "$(sql "$P2" "SELECT pg_current_wal_lsn()")" >"$T/t.jsonl" 2>"$T/t.err" ||
	{ cat "$T/t.err" >&2; fail "wal-stream of node t"; }
[ "$(python3 -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["file"])' "$T/t.jsonl")" = 00000002.history ] ||
	{ cat "$T/t.jsonl" >&2; fail "node t: 00000002.history is not the first file stored"; }
"$PGT" wal-fetch c t 00000002.history "$T/scratch/ht" || fail "wal-fetch c t 00000002.history"
cmp -s "$SW/00000002.history" "$T/scratch/ht" || fail "node t's 00000002.history differs from the server's"
"$PGT" wal-fetch c t "$c" "$T/scratch/c" || fail "node t: $c not stored"
cmp -s "$SW/$c" "$T/scratch/c" || fail "node t's $c differs from the server's"
ok "a new node on the promoted server: 00000002.history stored first (the server's bytes), then timeline 2 ($c)"

# 4. the reverse: the old primary (the same system, still on timeline 1) answers at the node's
# conninfo, and its timeline 1 goes on past the archive's end, diverged from timeline 2 at
# the switch point. Nothing of it may be stored.
last=$(segno "$b")
for i in $(seq 1 20); do
	[ "$(segno "$(sql "$P" "SELECT pg_walfile_name(pg_current_wal_lsn())")")" -gt $((last + 1)) ] && break
	sql "$P" "INSERT INTO marks VALUES ($((5000 + i)))"
	sql "$P" "SELECT pg_switch_wal()" >/dev/null
done
sed "s/port=$P2 user=/port=$P user=/" "$PGTIMEFS_CONFIG" >"$T/old.conf"
grep -q "port=$P " "$T/old.conf" || fail "test setup: no conninfo rewritten"
n0=$(q "SELECT count(*) FROM wal")
rc=0
PGTIMEFS_CONFIG=$T/old.conf "$PGT" wal-stream c s --duration 2 >/dev/null 2>"$T/old.err" || rc=$?
[ "$(q "SELECT count(*) FROM wal")" = "$n0" ] || { cat "$T/old.err" >&2; fail "WAL of the old primary was stored: $(q "SELECT name FROM wal ORDER BY rowid DESC LIMIT 3")"; }
grep -q "timeline 1.*archive.*timeline 2" "$T/old.err" || { cat "$T/old.err" >&2; fail "no message naming the timelines"; }
grep -q "HINT:" "$T/old.err" || { cat "$T/old.err" >&2; fail "no hint"; }
grep -q "reconnecting" "$T/old.err" || { cat "$T/old.err" >&2; fail "no retry"; }
[ "$rc" = 0 ] || { cat "$T/old.err" >&2; fail "wal-stream --duration exited $rc while it waited"; }
[ "$(sql "$P" "SELECT count(*) FROM pg_replication_slots")" = 0 ] || fail "a slot was created on the old primary"
ok "the old primary on timeline 1, past the archive's end: nothing stored, no slot made, the timelines named with a hint, retried until --duration"

# 5. a stream begun again holds less of its segment than the .partial stored before (a restart
# that stops early, a connection that breaks at once): the longer partial stays
sql "$P2" "INSERT INTO marks SELECT g FROM generate_series(8000, 12000) g"
lsn1=$(sql "$P2" "SELECT pg_current_wal_lsn()")
seg=$(sql "$P2" "SELECT pg_walfile_name('$lsn1')")
segsize=$(sql "$P2" "SELECT setting::bigint * (CASE unit WHEN 'MB' THEN 1048576 WHEN '8kB' THEN 8192 ELSE 1 END) FROM pg_settings WHERE name = 'wal_segment_size'")
lsn0=$(sql "$P2" "SELECT '$lsn1'::pg_lsn - (('$lsn1'::pg_lsn - '0/0'::pg_lsn) % $segsize) + 16384")
[ "$(sql "$P2" "SELECT '$lsn0'::pg_lsn < '$lsn1'::pg_lsn")" = t ] || fail "test setup: $lsn0 is not before $lsn1 in segment $seg"
"$PGT" wal-stream c t --until-lsn "$lsn1" >/dev/null 2>"$T/t1.err" || { cat "$T/t1.err" >&2; fail "wal-stream c t --until-lsn $lsn1"; }
"$PGT" wal-fetch c t "$seg.partial" "$T/scratch/p1" || fail "node t: $seg.partial not stored"
"$PGT" wal-stream c t --until-lsn "$lsn0" >/dev/null 2>"$T/t0.err" || { cat "$T/t0.err" >&2; fail "wal-stream c t --until-lsn $lsn0"; }
"$PGT" wal-fetch c t "$seg.partial" "$T/scratch/p0" || fail "node t: $seg.partial gone after a shorter stream"
cmp -s "$T/scratch/p1" "$T/scratch/p0" || { cat "$T/t0.err" >&2; fail "a stream that stopped at $lsn0 replaced $seg.partial (to $lsn1) with a shorter one"; }
ok "a stream begun again that stops before the stored .partial's end leaves that partial as it was"

# 6. the other way round: node u's archive is the old primary's timeline 1, which went on past
# the switch point (its last writes after the failover), then node u is pointed at the
# promoted server. Timeline 2 must be stored from the switch point's segment (the window can
# only follow it there), not from the archive's end, with a warning naming the fork.
cat "$PGTIMEFS_CONFIG" >"$T/u-old.conf"
printf '[node c/u]\nconninfo = host=%s port=%s user=postgres dbname=postgres\n' "$SOCK" "$P" >>"$T/u-old.conf"
sed "s/port=$P user=/port=$P2 user=/" "$T/u-old.conf" | grep -v "^$" >"$T/u-new.conf"
# from_old_primary NODE IDS: a checkpoint (the node's new slot starts there, past the switch's
# segment), three segments of the old primary's own WAL (rows IDS+1..3), streamed into NODE
# with its config $T/NODE-old.conf; prints the last complete timeline 1 segment archived
from_old_primary() {
	local i
	sql "$P" "CHECKPOINT"
	for i in 1 2 3; do
		sql "$P" "INSERT INTO marks VALUES ($(($2 + i)))"
		sql "$P" "SELECT pg_switch_wal()" >/dev/null
	done
	PGTIMEFS_CONFIG=$T/$1-old.conf "$PGT" wal-stream c "$1" --until-lsn "$(sql "$P" "SELECT pg_current_wal_lsn()")" \
		>/dev/null 2>"$T/$1-1.err" || { cat "$T/$1-1.err" >&2; fail "wal-stream c $1 from the old primary"; }
	q "SELECT max(segno) FROM wal w JOIN nodes n ON n.id = w.node WHERE n.name = '$1' AND w.timeline = 1 AND length(w.name) = 24"
}
E=$(from_old_primary u 9000)
[ -n "$E" ] && [ "$E" -gt "$M" ] || fail "test setup: node u's archive ends at segment '$E', not past the switch's segment $M"
PGTIMEFS_CONFIG=$T/u-new.conf "$PGT" wal-stream c u --until-lsn "$(sql "$P2" "SELECT pg_current_wal_lsn()")" >/dev/null \
	2>"$T/u2.err" || { cat "$T/u2.err" >&2; fail "wal-stream c u from the promoted server"; }
grep -q "warning: the archive's timeline 1 goes on to .* past .* where the server's timeline 2 left it" "$T/u2.err" ||
	{ cat "$T/u2.err" >&2; fail "no warning naming the fork"; }
segs_u=$(q "SELECT w.segno FROM wal w JOIN nodes n ON n.id = w.node WHERE n.name = 'u' AND w.timeline = 2 AND length(w.name) = 24 ORDER BY w.segno")
[ "${segs_u%%$'\n'*}" = "$M" ] || { cat "$T/u2.err" >&2; fail "node u's timeline 2 begins at segment ${segs_u%%$'\n'*}, not at the switch's $M"; }
python3 -c 'import sys; s = [int(x) for x in sys.argv[1].split()]
sys.exit(0 if s == list(range(s[0], s[0] + len(s))) else "not contiguous: %s" % s)' "$segs_u" || fail "node u's timeline 2"
for f in $(segname 2 "$M") $(segname 2 $((M + 1))); do
	"$PGT" wal-fetch c u "$f" "$T/scratch/u-$f" || fail "wal-fetch c u $f"
	"$PGT" wal-fetch c s "$f" "$T/scratch/s-$f" || fail "wal-fetch c s $f"
	cmp -s "$T/scratch/u-$f" "$T/scratch/s-$f" || fail "node u's $f differs from node s's"
done
[ "$(q "SELECT count(*) FROM wal w JOIN nodes n ON n.id = w.node WHERE n.name = 'u' AND w.name = '$(segname 1 "$M").partial'")" = 1 ] ||
	fail "node u has no final $(segname 1 "$M").partial (timeline 1 up to the switch)"
ok "node u, archived on the old primary's timeline 1 to segment $E, then at the promoted server: a warning names the fork; timeline 2 stored from segment $M (node s's bytes), contiguous"

# 7. the same, but the promoted server no longer has the switch point's segment (wal_keep_size
# 0, a checkpoint) while node v's slot there still holds the WAL from before the archive's end:
# the first try fails ("already been removed"); the retry streams timeline 2 from the
# archive's end (a gap, with a warning) rather than asking for that segment forever
sql "$P2" "ALTER SYSTEM SET wal_keep_size = 0"
sql "$P2" "SELECT pg_reload_conf()" >/dev/null
sql "$P2" "CHECKPOINT"
sql "$P2" "SELECT pg_create_physical_replication_slot('pgtimefs_v', true)" >/dev/null
vslot=$(sql "$P2" "SELECT pg_walfile_name(restart_lsn) FROM pg_replication_slots WHERE slot_name = 'pgtimefs_v'")
sed "s/c\/u\]/c\/v]/" "$T/u-old.conf" >"$T/v-old.conf"
sed "s/c\/u\]/c\/v]/" "$T/u-new.conf" >"$T/v-new.conf"
EV=$(from_old_primary v 30100)
[ -n "$EV" ] && [ "$EV" -gt "$M" ] && [ "$(segno "$vslot")" -le "$EV" ] && [ "$(segno "$vslot")" -gt "$M" ] ||
	fail "test setup: node v's archive ends at segment '$EV', its slot on the promoted server starts at $vslot (switch in $M)"
for i in $(seq 1 60); do # the promoted server past node v's archive, and its switch segment recycled
	[ "$(segno "$(sql "$P2" "SELECT pg_walfile_name(pg_current_wal_lsn())")")" -gt $((EV + 2)) ] && break
	sql "$P2" "INSERT INTO marks VALUES ($((30200 + i)))"
	sql "$P2" "SELECT pg_switch_wal()" >/dev/null
done
sql "$P2" "CHECKPOINT"
[ ! -e "$SW/$(segname 2 "$M")" ] || fail "test setup: the promoted server still has $(segname 2 "$M")"
PGTIMEFS_CONFIG=$T/v-new.conf timeout 60 "$PGT" wal-stream c v --until-lsn "$(sql "$P2" "SELECT pg_current_wal_lsn()")" \
	>/dev/null 2>"$T/v2.err" || { cat "$T/v2.err" >&2; fail "wal-stream c v from the promoted server (without the switch's segment)"; }
[ "$(grep -c "already been removed" "$T/v2.err")" = 1 ] || { cat "$T/v2.err" >&2; fail "not one refused try for the switch's segment"; }
grep -q "the server no longer has the segment of .*timeline 2 is stored from" "$T/v2.err" ||
	{ cat "$T/v2.err" >&2; fail "no warning naming the gap"; }
first_v=$(q "SELECT min(w.segno) FROM wal w JOIN nodes n ON n.id = w.node WHERE n.name = 'v' AND w.timeline = 2 AND length(w.name) = 24")
[ "$first_v" = $((EV + 1)) ] || { cat "$T/v2.err" >&2; fail "node v's timeline 2 begins at segment '$first_v', not at the archive's end $((EV + 1))"; }
ok "without the switch's segment on the server: one refused try, then timeline 2 from the archive's end (segment $first_v) with a warning naming the gap"
