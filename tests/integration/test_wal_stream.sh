#!/usr/bin/env bash
# pgtimefs wal-stream against a real PostgreSQL 15 server with 1 MiB WAL segments under
# pgbench: every segment from the slot's start to a forced switch is in the catalog with the
# server's bytes (wal-fetch + cmp), contiguous, once; the commit times carried across
# segments agree with pg_waldump; a .partial appears within the interval with the server's
# bytes as prefix and zeros after; the slot's restart_lsn follows the stored segments; kill -9
# of the streamer and a crash restart of the server lose nothing; SIGTERM stops it cleanly;
# a standby's stream follows its promotion to timeline 2 and stores 00000002.history.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"

mkdir -p "$T/scratch"
P=$(free_port)
pg_stream_server main "$P"
cat >>"$PGTIMEFS_CONFIG" <<CONF
[cluster c]
wal-partial-interval = 1
[node c/n]
conninfo = host=$SOCK port=$P user=postgres dbname=postgres
CONF
"$PGT" init >/dev/null
PGW=$PGROOT/main/pg_wal

SP=
stop_streamer() { [ -z "$SP" ] || { kill -9 "$SP" 2>/dev/null; wait "$SP" 2>/dev/null; } || true; SP=; }
cleanup_hooks+=("stop_streamer")
start_streamer() {
	"$PGT" --json wal-stream c "$@" >>"$T/stream.jsonl" 2>>"$T/stream.err" &
	SP=$!
}
q() { cat_q "$1"; }
wait_seg() { wait_stored "$1"; }
bench() { "$PG_BIN/pgbench" -h "$SOCK" -p "$P" -U postgres -n -c 2 "$@" postgres >/dev/null 2>&1 || fail "pgbench $*"; }

start_streamer
for i in $(seq 1 100); do
	[ "$(sql "$P" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgtimefs_n' AND active")" = 1 ] && break
	sleep 0.1
done
[ "$i" -lt 100 ] || { cat "$T/stream.err" >&2; fail "the streamer never created and used its slot pgtimefs_n"; }
grep -q "created the physical replication slot pgtimefs_n" "$T/stream.err" || fail "no message about the new slot"
ok "the streamer created the physical slot pgtimefs_n and streams from it"

bench -T 3
sql "$P" "INSERT INTO marks VALUES (1)"
seg=$(sql "$P" "SELECT pg_walfile_name(pg_current_wal_lsn())")
# a .partial of the segment in progress within the interval (1 s), with the server's bytes
for i in $(seq 1 50); do
	grep -q "\"file\":\"$seg.partial\"" "$T/stream.jsonl" && break
	sleep 0.1
done
grep -q "\"file\":\"$seg.partial\"" "$T/stream.jsonl" || { cat "$T/stream.err" >&2; fail "no $seg.partial within 5 s"; }
sleep 1.5 # the partial stops growing: nothing is written
got=$(grep "\"file\":\"$seg.partial\"" "$T/stream.jsonl" | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["received_bytes"])')
"$PGT" wal-fetch c n "$seg.partial" "$T/scratch/p" || fail "wal-fetch $seg.partial"
[ "$(stat -c %s "$T/scratch/p")" = 1048576 ] || fail "the partial is not a full segment (zero-padded)"
# (the partial may have grown since that line: the server's bytes for at least $got bytes, then zeros)
python3 -c 'import sys
p, s, got = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), int(sys.argv[3])
k = next((i for i in range(len(p)) if p[i] != s[i]), len(p))
sys.exit("%d bytes equal, %d wanted" % (k, got) if k < got else "not zero after byte %d" % k if any(p[k:]) else 0)' \
	"$T/scratch/p" "$PGW/$seg" "$got" || fail "$seg.partial does not hold the server's bytes then zeros"
[ "$(q "SELECT count(*) FROM wal WHERE name LIKE '%.partial'")" = 1 ] || fail "more than one partial row for the node"
ok "$seg.partial stored within the interval: $got bytes equal the server's, zeros after, one partial row"
# its time index covers the page in progress: its last commit is the server's last one
want=$({ "$PG_BIN/pg_waldump" "$PGW/$seg" 2>/dev/null || true; } | sed -n 's/.*desc: COMMIT \([0-9-]* [0-9:.]*\) UTC.*/\1/p' | tail -1)
[ -n "$want" ] || fail "pg_waldump finds no commit in $seg"
want_us=$(python3 -c 'import sys, datetime; print(round(datetime.datetime.fromisoformat(sys.argv[1] + "+00:00").timestamp() * 1e6))' "$want")
got_us=$(q "SELECT last_commit_us FROM wal WHERE name = '$seg.partial'")
[ "$got_us" = "$want_us" ] || fail "$seg.partial's last commit is $got_us, pg_waldump says $want ($want_us)"
ok "$seg.partial's last commit time is the server's last commit ($want), read from the page in progress"

# the mount's CLUSTER/wal/NODE/ shows a streamed .partial as it is now: the file is replaced
# as it grows (its row may even get the old row's number), and a read after that must not
# come from the pages of the read before
if [ "$(id -u)" = 0 ] && [ -c /dev/fuse ] && command -v fusermount3 >/dev/null; then
	. "$(dirname "$0")/mount_lib.sh"
	mkdir -p "$T/mnt"
	mount_fg partial "$T/mnt"
	cat "$T/mnt/c/wal/n/$seg.partial" >"$T/scratch/m1" || fail "cat of $seg.partial through the mount"
	"$PGT" wal-fetch c n "$seg.partial" "$T/scratch/f1" || fail "wal-fetch $seg.partial"
	cmp -s "$T/scratch/m1" "$T/scratch/f1" || fail "$seg.partial through the mount differs from wal-fetch"
	before=$(grep -c "\"file\":\"$seg.partial\"" "$T/stream.jsonl")
	sql "$P" "INSERT INTO marks VALUES (1000)"
	# (30 s: under ASan with other tests beside it, the store took more than 10 s once)
	for i in $(seq 1 300); do
		[ "$(grep -c "\"file\":\"$seg.partial\"" "$T/stream.jsonl")" -gt "$before" ] && break
		sleep 0.1
	done
	[ "$i" -lt 300 ] || fail "$seg.partial was not stored again after a commit"
	sleep 1.5 # nothing written: the partial stays as it is now
	"$PGT" wal-fetch c n "$seg.partial" "$T/scratch/f2" || fail "wal-fetch $seg.partial"
	! cmp -s "$T/scratch/f1" "$T/scratch/f2" || fail "the commit did not change $seg.partial"
	cat "$T/mnt/c/wal/n/$seg.partial" >"$T/scratch/m2" || fail "second cat of $seg.partial"
	cmp -s "$T/scratch/m2" "$T/scratch/f2" || fail "a second read of $seg.partial through the mount returns its old bytes"
	stop_mount "$T/mnt" "$MPID"
	ok "the mount shows a growing .partial as it is now, not the pages of an earlier read"
else
	echo "SKIP part: no FUSE here (root, /dev/fuse, fusermount3): the mount's view of a growing .partial not tested" >&2
fi

# the slot follows what is stored
w=$(sql "$P" "SELECT pg_walfile_name(pg_current_wal_lsn() - 1048576)")
wait_seg "$w"
sleep 0.5
r=$(sql "$P" "SELECT pg_walfile_name(restart_lsn) >= '$w' FROM pg_replication_slots WHERE slot_name = 'pgtimefs_n'")
[ "$r" = t ] || fail "the slot's restart_lsn did not follow the stored segments: $(sql "$P" "SELECT restart_lsn FROM pg_replication_slots")"
ok "the slot's restart_lsn is at the end of the last stored segment"

# kill -9 of the streamer in the middle of writes, then a restart
bench -T 2 &
BP=$!
sleep 1
kill -9 "$SP"
wait "$SP" 2>/dev/null || true
SP=
wait "$BP" || fail "pgbench during the kill"
start_streamer
bench -T 2
ok "streamer killed with -9 during pgbench and restarted"

# another writer (a backup) holds the lock: the stream waits, then stores everything
command -v flock >/dev/null || skip "flock(1) is missing"
# counted once the lock is ours: a store the restarted streamer was still finishing when
# the flock was asked for commits before it is granted (under load it did, after the count)
# held until the check below is done (at most 60 s): a fixed 5 s ran out under load before the
# check, and the streamer then stored, rightly
rm -f "$T/locked" "$T/unlock"
flock -x "$T/state/writer.lock" sh -c "touch '$T/locked'; i=0; while [ ! -e '$T/unlock' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i + 1)); done" &
LP=$!
cleanup_hooks+=("touch '$T/unlock'")
for i in $(seq 1 600); do [ -e "$T/locked" ] && break; sleep 0.05; done
[ -e "$T/locked" ] || fail "flock never got the writer lock"
w0=$(q "SELECT count(*) FROM wal WHERE length(name) = 24")
bench -T 2
sw=$(sql "$P" "SELECT pg_walfile_name(pg_switch_wal())")
sleep 1.5
[ "$(q "SELECT count(*) FROM wal WHERE length(name) = 24")" = "$w0" ] || fail "a segment was stored while another writer held the lock"
# the lock stays taken until the streamer has come for it (under load that can take a while)
for i in $(seq 1 600); do
	grep -q "waiting for another pgtimefs writer" "$T/stream.err" && break
	sleep 0.05
done
[ "$(q "SELECT count(*) FROM wal WHERE length(name) = 24")" = "$w0" ] || fail "a segment was stored while another writer held the lock"
touch "$T/unlock"
wait "$LP"
wait_seg "$sw"
grep -q "waiting for another pgtimefs writer" "$T/stream.err" || fail "no message while waiting for the lock"
ok "another writer held the lock: nothing stored meanwhile, the stream caught up after"

# a crash of the server (immediate stop) and its restart: the streamer reconnects by itself
as_pg "$PG_BIN/pg_ctl" -D "$PGROOT/main" -m immediate -w stop >/dev/null
sleep 1
pg_start main
bench -T 2
sql "$P" "INSERT INTO marks VALUES (2)"
for i in $(seq 1 100); do
	[ "$(sql "$P" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgtimefs_n' AND active")" = 1 ] && break
	sleep 0.1
done
[ "$i" -lt 100 ] || { cat "$T/stream.err" >&2; fail "the streamer did not reconnect after the server restart"; }
grep -q "reconnecting" "$T/stream.err" || fail "no reconnect message"
ok "the server crashed and restarted: the streamer reconnected by itself"

# a restore point made while streaming: the stream's reader records it with its segment
rp_end=$(sql "$P" "SELECT pg_create_restore_point('rp-streamed') - '0/0'::pg_lsn")
last=$(sql "$P" "SELECT pg_walfile_name(pg_switch_wal())")
end=$(sql "$P" "SELECT pg_current_wal_lsn()")
wait_seg "$last"
kill -TERM "$SP"
rc=0
wait "$SP" || rc=$?
SP=
[ "$rc" = 0 ] || { cat "$T/stream.err" >&2; fail "wal-stream exited $rc on SIGTERM"; }
ok "SIGTERM: wal-stream stopped cleanly (exit 0)"

# every segment from the first stored to the last is there once, with the server's bytes
first=$(q "SELECT min(name) FROM wal WHERE length(name) = 24")
segs=$(q "SELECT segno FROM wal WHERE length(name) = 24 AND timeline = 1 ORDER BY segno")
python3 -c 'import sys; s=[int(x) for x in sys.argv[1].split()]; sys.exit(0 if s == list(range(s[0], s[0] + len(s))) else "segments not contiguous: %s" % s)' "$segs" ||
	fail "a segment is missing"
n=$(echo "$segs" | wc -l)
[ "$n" -ge 8 ] || fail "only $n segments stored"
for f in $(q "SELECT name FROM wal WHERE length(name) = 24 ORDER BY name"); do
	[ -f "$PGW/$f" ] || fail "$f is no longer in the server's pg_wal to compare (wal_keep_size)"
	"$PGT" wal-fetch c n "$f" "$T/scratch/$f" || fail "wal-fetch $f"
	cmp -s "$PGW/$f" "$T/scratch/$f" || fail "$f differs from the server's pg_wal copy"
	rm -f "$T/scratch/$f"
done
[ "$(q "SELECT count(*) FROM wal WHERE name LIKE '%.partial' AND segno <= (SELECT max(segno) FROM wal WHERE length(name) = 24)")" = 0 ] ||
	fail "a partial row was left behind by its complete segment"
ok "$n segments $first..$last: contiguous, each once, byte for byte the server's; no stale partial"
got=$(q "SELECT lsn || ' ' || length(wal) FROM wal_restore_points WHERE name = 'rp-streamed'")
[ -n "$got" ] || fail "the restore point made while streaming is not in the time index"
python3 -c 'import sys; l, n, end = map(int, sys.argv[1:]); sys.exit(0 if n == 24 and 0 < end - l < 256 else "rp-streamed at %d (wal name length %d), record ends at %d" % (l, n, end))' $got "$rp_end" ||
	fail "rp-streamed recorded at the wrong place"
ok "a restore point made while streaming is in the time index at its record's LSN, with its complete segment"

# commit times carried across segments: each segment's first/last commit is what pg_waldump
# shows for the transaction records that end in it
python3 - "$PG_BIN/pg_waldump" "$PGW" "$first" "$last" "$T/state/catalog.db" <<'PY' || fail "time index differs from pg_waldump"
import re, sqlite3, subprocess, sys, datetime
waldump, pgw, first, last, db = sys.argv[1:]
SEG, PAGE = 1 << 20, 8192
out = subprocess.run([waldump, "-p", pgw, first, last], capture_output=True, text=True).stdout
want = {}
for line in out.splitlines():
    m = re.search(r"len \(rec/tot\):\s*\d+/\s*(\d+), .*lsn: ([0-9A-F]+)/([0-9A-F]+),.*desc: (COMMIT|ABORT|COMMIT_PREPARED|ABORT_PREPARED) .*?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?) UTC", line)
    if not m:
        continue
    tot, start = int(m.group(1)), int(m.group(2), 16) << 32 | int(m.group(3), 16)
    room = PAGE - start % PAGE
    end = start + tot if tot <= room else start + room + (40 if (start + room) % SEG == 0 else 24) + tot - room
    d = datetime.datetime.strptime(m.group(5) + ("" if m.group(6) else ".0"), "%Y-%m-%d %H:%M:%S.%f")
    us = int(d.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000000)
    s = (end - 1) // SEG
    f, l = want.get(s, (0, 0))
    want[s] = (f or us, us)
bad = checked = 0
for segno, f, l in sqlite3.connect(db).execute("SELECT segno, coalesce(first_commit_us, 0), coalesce(last_commit_us, 0) FROM wal WHERE length(name) = 24 ORDER BY segno"):
    w = want.get(segno, (0, 0))
    if (f, l) != w:
        print("segment %d: catalog %s, pg_waldump %s" % (segno, (f, l), w), file=sys.stderr)
        bad += 1
    elif w != (0, 0):
        checked += 1
if bad or checked < 4:
    sys.exit("%d segments differ, %d agree" % (bad, checked))
print(checked)
PY
ok "time index: first/last commit of every segment agrees with pg_waldump (records ending in it)"

# a second start resumes after the last stored segment: nothing stored twice

start_streamer --until-lsn "$end"
rc=0
wait "$SP" || rc=$?
SP=
[ "$rc" = 0 ] || { cat "$T/stream.err" >&2; fail "wal-stream --until-lsn exited $rc"; }
[ "$(q "SELECT count(*) FROM wal WHERE length(name) = 24")" = "$n" ] || fail "segments stored twice or more after a restart"
ok "a restart with --until-lsn at the archive's end stores nothing again and exits 0"

# a standby's stream: its promotion ends timeline 1, the stream stores that timeline's last
# segment as a final .partial and 00000002.history, and goes on with timeline 2
P2=$(free_port)
as_pg "$PG_BIN/pg_basebackup" -h "$SOCK" -p "$P" -U postgres -D "$PGROOT/standby" -R -X stream -c fast >/dev/null 2>&1 ||
	fail "pg_basebackup of the standby"
echo "port = $P2" >>"$PGROOT/standby/postgresql.conf"
pg_start standby
cat >>"$PGTIMEFS_CONFIG" <<CONF
[node c/s]
conninfo = host=$SOCK port=$P2 user=postgres dbname=postgres
CONF
# qs NAME: 1 when node s has WAL file NAME
qs() { q "SELECT count(*) FROM wal w JOIN nodes d ON d.id = w.node WHERE d.name = 's' AND w.name = '$1'"; }
wait_s() {
	local i
	for i in $(seq 1 300); do
		[ "$(qs "$1")" = 1 ] && return 0
		kill -0 "$SP" 2>/dev/null || { cat "$T/stream.err" >&2; fail "the streamer died waiting for $1"; }
		sleep 0.1
	done
	cat "$T/stream.err" >&2
	fail "$1 never stored for the standby"
}
start_streamer # both nodes at once: n on the primary, s on the standby
bench -T 1
sql "$P" "INSERT INTO marks VALUES (3)"
wait_s "$(sql "$P" "SELECT pg_walfile_name(pg_switch_wal())")"
sql "$P" "INSERT INTO marks VALUES (4)"
for i in $(seq 1 100); do
	[ "$(sql "$P2" "SELECT count(*) FROM marks WHERE id = 4")" = 1 ] && break
	sleep 0.1
done
as_pg "$PG_BIN/pg_ctl" -D "$PGROOT/standby" -w promote >/dev/null || fail "promote"
wait_s 00000002.history
"$PGT" wal-fetch c s 00000002.history "$T/scratch/h" || fail "wal-fetch 00000002.history"
cmp -s "$PGROOT/standby/pg_wal/00000002.history" "$T/scratch/h" || fail "00000002.history differs from the standby's"
# the old timeline's last segment, as far as the standby had it at the switch: a final partial
# (the promoted server keeps its own copy under the segment's name: archiving is off there)
old=$(python3 -c 'import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d["node"] == "s" and d["final"]: print(d["file"], d["received_bytes"])' "$T/stream.jsonl")
[ -n "$old" ] || fail "no final partial of timeline 1 stored at the promotion"
f=${old% *}
case $f in 00000001*.partial) ;; *) fail "the final partial is $f, not a timeline 1 partial" ;; esac
[ "$(qs "$f")" = 1 ] || fail "$f is not recorded"
"$PGT" wal-fetch c s "$f" "$T/scratch/o" || fail "wal-fetch $f"
cmp -s -n "${old#* }" "$T/scratch/o" "$PGROOT/standby/pg_wal/${f%.partial}" || fail "$f differs from the standby's segment"
cmp -s -n "${old#* }" "$T/scratch/o" "$PGROOT/standby/pg_wal/00000002${f:8:16}" ||
	fail "$f differs from the start of the same segment on timeline 2"
sql "$P2" "INSERT INTO marks VALUES (5)"
seg2=$(sql "$P2" "SELECT pg_walfile_name(pg_switch_wal())")
case $seg2 in 00000002*) ;; *) fail "the promoted standby writes $seg2, not timeline 2" ;; esac
wait_s "$seg2"
kill -TERM "$SP"
wait "$SP" || fail "wal-stream of the standby did not exit 0 on SIGTERM"
SP=
m=0
for g in $(q "SELECT w.name FROM wal w JOIN nodes d ON d.id = w.node WHERE d.name = 's' AND length(w.name) = 24 AND w.timeline = 2"); do
	"$PGT" wal-fetch c s "$g" "$T/scratch/$g" || fail "wal-fetch $g"
	cmp -s "$PGROOT/standby/pg_wal/$g" "$T/scratch/$g" || fail "$g differs from the promoted standby's"
	m=$((m + 1))
done
[ "$m" -ge 1 ] || fail "no timeline 2 segment stored"
segs=$(q "SELECT w.segno FROM wal w JOIN nodes d ON d.id = w.node WHERE d.name = 'n' AND length(w.name) = 24 ORDER BY w.segno")
python3 -c 'import sys; s=[int(x) for x in sys.argv[1].split()]; sys.exit(0 if s == list(range(s[0], s[0] + len(s))) else "segments not contiguous: %s" % s)' "$segs" ||
	fail "the primary's segments are not contiguous after streaming both nodes at once"
ok "promotion followed: final partial $f (${old#* } bytes) of timeline 1, 00000002.history and $m timeline 2 segments equal the standby's"
! grep -qE "warning|runtime error|Sanitizer" "$T/stream.err" || { cat "$T/stream.err" >&2; fail "wal-stream warned"; }
ok "no warning (nor sanitizer report) from wal-stream in the whole run"

# another system at the node's conninfo (a server initialized again): refused before its WAL
# mixes with the node's archive, exit 1
P3=$(free_port)
pg_init other "$P3" --wal-segsize=1
pg_start other
sed "s/port=$P user=/port=$P3 user=/" "$PGTIMEFS_CONFIG" >"$T/other.conf"
grep -q "port=$P3" "$T/other.conf" || fail "test setup: no conninfo rewritten"
n0=$(q "SELECT count(*) FROM wal")
expect_fail "wal-stream against another system" 1 env PGTIMEFS_CONFIG="$T/other.conf" "$PGT" wal-stream c n --duration 20
err_has "holds WAL of system"
err_has "HINT:"
[ "$(q "SELECT count(*) FROM wal")" = "$n0" ] || fail "WAL of another system was stored"
[ "$(sql "$P3" "SELECT count(*) FROM pg_replication_slots")" = 0 ] || fail "a slot was created on the other system"
ok "a server of another system at the node's conninfo: refused (exit 1, message, hint), nothing stored, no slot made"

# a gap: the slot is dropped while the streamer is stopped and the server removes WAL the
# archive lacks; the stream tries the archive's end, then starts at its new slot, with a warning
cat >>"$PGTIMEFS_CONFIG" <<CONF
[node c/o]
conninfo = host=$SOCK port=$P3 user=postgres dbname=postgres
CONF
qo() { q "SELECT count(*) FROM wal w JOIN nodes d ON d.id = w.node WHERE d.name = 'o' AND w.name = '$1'"; }
sql "$P3" "CREATE TABLE t(x int)"
sql "$P3" "INSERT INTO t SELECT generate_series(1, 1000)"
a=$(sql "$P3" "SELECT pg_walfile_name(pg_switch_wal())")
# (bounded: a stream that never reaches --until-lsn fails here with its log, not at ctest's timeout)
timeout 180 "$PGT" wal-stream c o --until-lsn "$(sql "$P3" "SELECT pg_current_wal_lsn()")" >/dev/null 2>"$T/o.err" || { rc=$?; cat "$T/o.err" >&2; fail "wal-stream of node o (exit $rc, 124: did not reach --until-lsn in 180 s)"; }
[ "$(qo "$a")" = 1 ] || fail "node o: $a not stored"
sql "$P3" "SELECT pg_drop_replication_slot('pgtimefs_o')" >/dev/null
for i in 1 2 3 4; do
	sql "$P3" "INSERT INTO t SELECT generate_series(1, 1000)"
	sql "$P3" "SELECT pg_switch_wal()" >/dev/null
done
sql "$P3" "CHECKPOINT"
sql "$P3" "CHECKPOINT"
b=$(sql "$P3" "SELECT pg_walfile_name(pg_switch_wal())")
[ ! -e "$PGROOT/other/pg_wal/$(python3 -c 'import sys; n=int(sys.argv[1][8:16],16)*4096+int(sys.argv[1][16:],16)+1; print("00000001%08X%08X" % (n // 4096, n % 4096))' "$a")" ] ||
	skip "the server kept the WAL after the archive's end: no gap to test"
timeout 180 "$PGT" wal-stream c o --until-lsn "$(sql "$P3" "SELECT pg_current_wal_lsn()")" >/dev/null 2>"$T/o.err" || { rc=$?; cat "$T/o.err" >&2; fail "wal-stream of node o after the gap (exit $rc, 124: did not reach --until-lsn in 180 s)"; }
grep -q "has already been removed" "$T/o.err" || { cat "$T/o.err" >&2; fail "the archive's end was not tried first"; }
grep -q "warning: the archive ends at .* the WAL between is lost" "$T/o.err" || { cat "$T/o.err" >&2; fail "no gap warning"; }
[ "$(qo "$b")" = 1 ] || { cat "$T/o.err" >&2; fail "node o: $b not stored after the gap"; }
ok "a gap (slot dropped, WAL removed): the archive's end tried first, then the new slot's start, with a warning; $b stored"
