#!/usr/bin/env bash
# Delta blocks: changed blocks of relation files are stored as deltas against the same block of
# the node's previous snapshot. Snapshots with deltas read back byte for byte through cat and the
# mount, old snapshots stay intact, deltas never chain (a base is never a delta), check
# --read-data is clean, a base pack lost in one zone fails over and is repaired, a recovered
# catalog still reads them; online backups (local and streaming path) store deltas and the
# snapshot starts as a consistent server.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mount_lib.sh"
need_fuse
. "$(dirname "$0")/pglib.sh"

pgt init >/dev/null
# rows of a table: pages of 100-byte rows, a number per row that an update changes
python3 - "$T/src" <<'PY'
import os, random, sys
d = sys.argv[1]
os.makedirs(d + "/base/5", exist_ok=True)
r = random.Random(7)
rows = b"".join(b"%020d|%08d|%s\n" % (i, r.randrange(10**8), b" " * 69) for i in range(20000))
with open(d + "/base/5/16400", "wb") as f:
    f.write(rows.ljust(2 * 1024 * 1024, b"\0"))
with open(d + "/base/5/16401", "wb") as f:  # an index-like file, random: no delta helps
    f.write(r.randbytes(256 * 1024))
with open(d + "/notes.txt", "wb") as f:  # not a relation file: never a delta
    f.write(rows[:300000])
PY
# update COUNT SEED: new numbers in COUNT random rows of the table, one byte in 16401, a page more
update() {
	python3 - "$T/src" "$1" "$2" <<'PY'
import random, sys
d, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed)
with open(d + "/base/5/16400", "r+b") as f:
    for _ in range(n):
        f.seek(r.randrange(20000) * 100 + 21)
        f.write(b"%08d" % r.randrange(10**8))
    f.seek(0, 2)
    f.write(bytes(8192))
with open(d + "/base/5/16401", "r+b") as f:
    f.seek(1000)
    f.write(b"x")
with open(d + "/notes.txt", "r+b") as f:
    f.seek(10)
    f.write(b"changed")
PY
}
snap() { pgt --json snapshot c n1 "$T/src" >"$T/$1.json" || fail "snapshot $1"; json "$1" snapshot; }
json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$T/$1.json" "$2"; }
db() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$T/state/catalog.db" "$1"; }

S1=$(snap s1)
[ "$(json s1 delta_chunks)" = 0 ] || fail "a first snapshot stored deltas"
cp -a "$T/src" "$T/src1"
update 300 1
S2=$(snap s2)
cp -a "$T/src" "$T/src2"
d2=$(json s2 delta_chunks)
[ "$d2" -ge 30 ] || fail "snapshot 2 stored $d2 deltas, expected the 32 changed blocks of the table"
# what the deltas cost against their bases: far less than storing the blocks again
read -r dsum bsum < <(db "SELECT sum(c.len) || ' ' || sum(b.len) FROM chunks c JOIN chunks b ON b.id = c.base")
[ $((dsum * 4)) -lt "$bsum" ] || fail "deltas take $dsum bytes against bases of $bsum: not clearly smaller"
[ "$(db "SELECT count(*) FROM chunks WHERE base IS NOT NULL AND length(blob_id) = 32 AND id IN (SELECT chunk FROM content_chunks cc JOIN entries e ON e.content = cc.content WHERE e.name = 'notes.txt')")" = 0 ] ||
	fail "a file that is not a relation file got deltas"
ok "snapshot 2: $d2 changed blocks stored as deltas, $dsum bytes against $bsum for their bases"

update 300 2
S3=$(snap s3)
d3=$(json s3 delta_chunks)
[ "$d3" -ge 30 ] || fail "snapshot 3 stored $d3 deltas"
[ "$(db "SELECT count(*) FROM chunks c JOIN chunks b ON b.id = c.base WHERE b.base IS NOT NULL")" = 0 ] ||
	fail "a delta's base is itself a delta"
[ "$(db "SELECT count(*) FROM chunks c JOIN chunks b ON b.id = c.base JOIN content_chunks cc ON cc.chunk = b.id
	JOIN entries e ON e.content = cc.content JOIN node_backups nb ON nb.id = e.nb JOIN snapshots s ON s.id = nb.snapshot
	WHERE s.name = '$S1' AND c.id IN (SELECT chunk FROM content_chunks WHERE content =
	(SELECT content FROM entries e2 JOIN node_backups nb2 ON nb2.id = e2.nb JOIN snapshots s2 ON s2.id = nb2.snapshot
	 WHERE s2.name = '$S3' AND e2.name = '16400'))")" -gt 0 ] || fail "snapshot 3's deltas do not go back to snapshot 1's blocks"
ok "snapshot 3: $d3 deltas, against snapshot 1's blocks where snapshot 2 had a delta (depth 1)"

verify_cat "$T/src1" "c/$S1/n1"
verify_cat "$T/src2" "c/$S2/n1"
verify_cat "$T/src" "c/$S3/n1"
ok "cat: all three snapshots read back byte for byte"

M=$T/mnt
mkdir -p "$M"
mount_fg main "$M"
for pair in "src1:$S1" "src2:$S2" "src:$S3"; do
	dir=$T/${pair%%:*} s=${pair#*:}
	while IFS= read -r f; do
		cmp -s "$M/c/$s/n1/$f" "$dir/$f" || late_fail "mount: c/$s/n1/$f differs"
	done < <(files_of "$dir")
done
# random reads inside a delta block (the base comes through the mount's cache)
python3 - "$M/c/$S3/n1/base/5/16400" "$T/src/base/5/16400" <<'PY' || late_fail "mount: random reads differ"
import os, random, sys
a, b = open(sys.argv[1], "rb"), open(sys.argv[2], "rb")
r = random.Random(3)
size = os.path.getsize(sys.argv[2])
for _ in range(300):
    off, n = r.randrange(size), r.randrange(1, 20000)
    a.seek(off); b.seek(off)
    if a.read(n) != b.read(n):
        sys.exit("differs at %d" % off)
PY
stop_mount "$M" "$MPID"
ok "mount: the three snapshots read back byte for byte, random reads too"

pgt check --read-data >"$T/check" 2>&1 || { cat "$T/check" >&2; fail "check --read-data is not clean"; }
ok "check --read-data is clean"

# the pack of a base, gone from zone 1: reads fail over, check names it, repair puts it back
hex=$(db "SELECT hex(p.hash) FROM chunks c JOIN chunks b ON b.id = c.base JOIN packs p ON p.id = b.pack LIMIT 1" | tr A-F a-f)
[ -f "$Z1/packs/${hex:0:2}/$hex" ] || fail "no pack file for a base ($hex)"
rm "$Z1/packs/${hex:0:2}/$hex"
verify_cat "$T/src" "c/$S3/n1"
expect_fail "check with a base pack missing" 1 pgt check --read-data
grep -q "${hex:0:16}" "$T/out" "$T/err" || fail "check does not name the missing pack"
pgt repair >/dev/null || fail "repair"
pgt check --read-data >/dev/null || fail "check after repair is not clean"
ok "a base pack missing in zone 1: cat fails over, check names it, repair restores it"

rm -f "$T/state/catalog.db" "$T/state/catalog.db-wal" "$T/state/catalog.db-shm"
pgt init --recover >/dev/null 2>&1 || fail "init --recover"
verify_cat "$T/src" "c/$S3/n1"
verify_cat "$T/src1" "c/$S1/n1"
ok "a catalog recovered from a zone reads the deltas"

# online: two servers, one backed up by the local path, one by the streaming path (not one
# server by both: the two nodes would dedup each other's changed blocks, in a racy order)
PL=$(free_port) PS=$(free_port)
pg_init loc "$PL"
pg_init str "$PS"
pg_start loc
pg_start str
for p in $PL $PS; do
	"$PG_BIN/pgbench" -h "$SOCK" -p "$p" -U postgres -i -s 2 -q postgres >/dev/null 2>&1 || fail "pgbench -i"
	sql "$p" "CHECKPOINT"
done
cat >>"$PGTIMEFS_CONFIG" <<CONF

[cluster prod]

[node prod/loc]
conninfo = host=$SOCK port=$PL user=postgres dbname=postgres
data-dir = $PGROOT/loc

[node prod/str]
conninfo = host=127.0.0.1 port=$PS user=postgres dbname=postgres
CONF
pgt --json backup prod >"$T/b1.json" || fail "backup 1"
for p in $PL $PS; do
	"$PG_BIN/pgbench" -h "$SOCK" -p "$p" -U postgres -n -c 2 -t 500 postgres >/dev/null 2>&1 || fail "pgbench"
done
pgt --json backup prod >"$T/b2.json" || fail "backup 2"
B2=$(json b2 snapshot)
python3 - "$T/b1.json" "$T/b2.json" <<'PY' || fail "backup results"
import json, sys
b1, b2 = (json.load(open(p)) for p in sys.argv[1:])
assert all(n["delta_chunks"] == 0 for n in b1["nodes"]), b1
d = {n["node"]: n["delta_chunks"] for n in b2["nodes"]}
assert d["loc"] > 0 and d["str"] > 0, d
print("  deltas after pgbench:", d)
PY
for node in loc str; do
	extract "prod/$B2/$node" "$T/x-$node" >/dev/null || fail "extract $node"
	port=$(free_port)
	start_copy "$T/x-$node" "r-$node" "$port"
	[ "$(sql "$port" "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)
		AND (SELECT count(*) FROM pgbench_history) > 0")" = t ] || fail "$node: pgbench balances disagree with the history"
	pg_stop "r-$node"
done
pgt check --read-data >/dev/null || fail "check --read-data after the online backups"
ok "online backups: deltas on both paths; each node's snapshot starts consistent; check clean"
finish
