#!/usr/bin/env bash
# bench/ingest.sh: pgtimefs vs restic 0.14 (repository v2, default compression) on a
# PostgreSQL 15 data directory made by initdb + pgbench -i -s $SCALE, measured side by side.
#
#   sudo bench/ingest.sh                 # SCALE=50 (about 1.4 GB of data with its WAL), a few minutes
#   SCALE=2 bench/ingest.sh              # smoke test
#
# Environment:
#   SCALE          pgbench scale factor (default 50)
#   BENCH_DIR      parent of the temporary work directory (default /var/tmp)
#   PGTIMEFS       the pgtimefs binary (default: build/pgtimefs of this repository; built if missing)
#   PAGE_FRACTION  fraction of the 8 KiB pages of each relation file overwritten before the
#                  second snapshot (default 0.02)
#   SEED           random seed of that modification (default 1)
#   PAGE_CONTENT   what an overwritten page gets (default random): "random", 8 KiB of random
#                  bytes (no delta and no compression can shrink them: the floor of target 2a
#                  is then the random bytes themselves, about 0.31 x restic); "edit", the page
#                  as PostgreSQL changes it: a new LSN in its header and 64 random bytes at a
#                  random place in its body (a tuple updated in place)
#   SETTLE         seconds to wait between the page modification and the second snapshot
#                  (default 2; see below)
#   PGDATA_DIR     an existing stopped data directory, copied instead of running initdb +
#                  pgbench (default: none, a fresh one is made)
#   PGBIN          PostgreSQL 15 binaries (default /usr/lib/postgresql/15/bin)
#   KEEP=1         keep the work directory
# Shared functions are in bench/lib.sh.
#
# pgtimefs opens its repository with a generated machine key (`key add --generate`, named as
# passphrase-file), as unattended scheduled backups run; restic with its password (scrypt,
# its only way). The time each key takes to open is printed.
#
# Targets (each reported PASS/FAIL; a failed target does not change the exit status):
#   1. first snapshot wall time: pgtimefs <= 0.5 x restic
#   2. after overwriting PAGE_FRACTION of every relation file's pages: bytes added to one
#      pgtimefs zone <= 0.25 x bytes added to the restic repository; wall time <= 0.5 x restic.
#      The issue's "new bytes stored ... what restic adds" is measured three ways, each its
#      own PASS/FAIL line: stored bytes (zone growth, catalog copy included, against restic's
#      repository growth) with the pages PAGE_CONTENT gives; raw new bytes (pgtimefs'
#      new_bytes against the figure restic prints as "Added to the repository"); and both
#      again after a fourth snapshot that overwrites other pages with the other content
#      (OTHER_CONTENT=0 leaves it out). With random page bytes the stored-bytes target is
#      out of reach of any tool: the bench prints those bytes' own ratio, the floor.
#   3. unchanged third snapshot: pgtimefs time < 10% of its first; state dir growth < 1 MiB
#   4. reading every file back: pgtimefs cat MB/s >= 2 x restic restore MB/s (pgtimefs
#      cat >/dev/null timed; a second cold cat | sha256sum gives the digest)
#   5. peak RSS of pgtimefs snapshot <= 256 MiB, for the data directory and for it doubled
# The exit status is non-zero on any correctness failure: a command that fails, or a
# digest of the data read back by either tool that differs from the original's.
#
# Rounding of the page modification: a file of n pages gets floor(n*f) pages overwritten,
# plus one more with probability frac(n*f), so every relation file (small ones included)
# has in expectation exactly the fraction f of its pages overwritten.
#
# SETTLE: pgtimefs re-reads a file whose mtime is less than 1 s before the start of the
# previous snapshot (a "racily clean" file, backup/walk.c). Without a pause the files just
# modified would be read again by the unchanged third snapshot or not, depending on how
# long the measuring between modification and second snapshot took; the pause makes
# target 3 measure the unchanged path. SETTLE=0 shows the re-read.
#
# The binary is copied into the work directory first, so a rebuild of build/ during the
# run does not mix two versions.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PAGE_FRACTION=${PAGE_FRACTION:-0.02}
PAGE_CONTENT=${PAGE_CONTENT:-random}
case $PAGE_CONTENT in random | edit) ;; *) echo "PAGE_CONTENT must be random or edit" >&2; exit 2 ;; esac
SEED=${SEED:-1}
PGDATA_COPY=1 # the pages are modified: a PGDATA_DIR is copied, not used in place
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

bench_prereqs
SETTLE=${SETTLE:-2}
bench_workdir
bench_machine "scale: $SCALE, page fraction: $PAGE_FRACTION ($PAGE_CONTENT), seed: $SEED"
bench_pgdata

# ---------------------------------------------------------------- repositories
export PGTIMEFS_PASSPHRASE=bench-passphrase
PG_CONF=$W/pgtimefs.conf
pgt_repo "$PG_CONF" "$W/pgt"
pgt_machine_key "$PG_CONF" "$W/pgt"
export PGTIMEFS_CONFIG=$PG_CONF
ZONE=$W/pgt/zone-a
STATE=$W/pgt/state

export RESTIC_PASSWORD=bench-passphrase
export RESTIC_REPOSITORY=$W/restic-repo
export RESTIC_CACHE_DIR=$W/restic-cache
LAST_LOG=$L/restic-init
restic init --repository-version 2 >"$L/restic-init" 2>&1

pgt_snapshot() { run_timed "$1" "$PGT" --json snapshot "$CLUSTER" "$NODE" "$DATA"; }
restic_backup() { run_timed "$1" restic backup "$DATA"; }

# both_snapshots N: snapshot N with each tool, cache dropped before each, and print what each
# reported. Sets P_T P_RSS R_T R_RSS (seconds, KiB) and DZ DR DS (bytes written to one zone,
# added to the restic repository, added to the pgtimefs state directory).
# A zone keeps its 3 newest catalog copies, so from the fourth snapshot on a snapshot also
# deletes one; DZ counts the bytes it wrote (new packs, the new catalog copy, and the growth of
# any file that grew), not the net growth.
zone_files() { find "$ZONE" -type f -printf '%P\t%s\n'; }
both_snapshots() {
	local n=$1 r0 s0
	zone_files >"$W/zone.before"
	r0=$(dub "$RESTIC_REPOSITORY") s0=$(dub "$STATE")
	drop_caches
	pgt_snapshot "$L/pgt-snap$n"
	P_T=$T_WALL P_RSS=$T_RSS
	DZ=$(zone_files | awk -F '\t' 'NR == FNR { had[$1] = $2; next }
		!($1 in had) { s += $2; next } $2 > had[$1] { s += $2 - had[$1] } END { printf "%d", s }' "$W/zone.before" -)
	DS=$(($(dub "$STATE") - s0))
	drop_caches
	restic_backup "$L/restic-snap$n"
	R_T=$T_WALL R_RSS=$T_RSS
	DR=$(($(dub "$RESTIC_REPOSITORY") - r0))
	echo "pgtimefs: $(cat "$L/pgt-snap$n.out")"
	echo "restic: $(grep -E '^(Added to the repository|processed)' "$L/restic-snap$n.out" | tr '\n' ' ')"
}

# ---------------------------------------------------------------- 1. first snapshot
echo "== 1. first snapshot"
both_snapshots 1
P1_T=$P_T P1_RSS=$P_RSS R1_T=$R_T R1_RSS=$R_RSS
RATIO1=$(calc "$P1_T / $R1_T")
echo "first snapshot wall time: pgtimefs ${P1_T} s (self-reported $(jfield "$L/pgt-snap1.out" milliseconds) ms), restic ${R1_T} s, ratio $RATIO1 (target <= 0.5)"
echo "first snapshot stored: pgtimefs one zone +$(mib $DZ) MiB, restic repo +$(mib $DR) MiB"
target "1 first snapshot time <= 0.5x restic" "$RATIO1 <= 0.5"
row "1 first snapshot (s)" "$P1_T" "$R1_T" "$RATIO1" "<= 0.5"
row "  stored (MiB)" "$(mib $DZ)" "$(mib $DR)" "$(calc "$DZ / $DR")" "(info)"

# ---------------------------------------------------------------- 2. modification
# modify_pages CONTENT SEED LOG: overwrite PAGE_FRACTION of the pages of every relation file of
# $DATA with CONTENT (random or edit, see PAGE_CONTENT), chosen with SEED; LOG gets the counts,
# and MOD_BYTES the bytes of the pages overwritten.
modify_pages() {
	LAST_LOG=$3
	python3 - "$DATA" "$PAGE_FRACTION" "$2" "$1" >"$3" 2>&1 <<'PY'
import os, random, re, sys
root, frac, seed, content = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rx = re.compile(r'^[0-9]+(_fsm|_vm|_init)?(\.[0-9]+)?$')
rng = random.Random(seed)
files = []
for top in ('base', 'global'):
    for d, dirs, names in os.walk(os.path.join(root, top)):
        dirs.sort()
        files += [os.path.join(d, n) for n in sorted(names) if rx.match(n)]
pages = touched = nfiles = 0
for p in files:
    n = os.path.getsize(p) // 8192
    pages += n
    want = n * frac
    k = int(want) + (1 if rng.random() < want - int(want) else 0)
    if not k:
        continue
    with open(p, 'r+b') as f:
        for pg in sorted(rng.sample(range(n), k)):
            if content == "random":
                f.seek(pg * 8192)
                f.write(rng.randbytes(8192))
            else:  # a new pd_lsn, and a tuple's 64 bytes changed somewhere after the header
                f.seek(pg * 8192)
                f.write(rng.randbytes(8))
                f.seek(pg * 8192 + rng.randrange(24, 8192 - 64))
                f.write(rng.randbytes(64))
    touched += k
    nfiles += 1
print(f"relation files: {len(files)}, pages: {pages}, overwritten: {touched} pages "
      f"({touched * 8192} bytes, {100.0 * touched / max(pages, 1):.2f}%) in {nfiles} files")
PY
	cat "$3"
	MOD_BYTES=$(sed -n 's/.* pages (\([0-9]*\) bytes.*/\1/p' "$3")
}

# restic_added FILE: the bytes of "Added to the repository: N UNIT (M UNIT stored)" in FILE,
# restic's raw (uncompressed) new data; stops the bench when FILE has no such line
restic_added() {
	local v
	v=$(sed -n 's/^Added to the repository: *\([0-9.]*\) *\([KMGT]*i*B\).*/\1 \2/p' "$1" | awk '
		{ m = 1; if ($2 == "KiB") m = 1024; else if ($2 == "MiB") m = 1048576
		  else if ($2 == "GiB") m = 1073741824; else if ($2 == "TiB") m = 1099511627776
		  printf "%.0f", $1 * m }')
	[ -n "$v" ] || fatal "no 'Added to the repository: N UNIT' line in $1: this restic prints its summary otherwise"
	echo "$v"
}

echo "== 2. overwrite ${PAGE_FRACTION} of the pages of every relation file ($PAGE_CONTENT), second snapshot"
modify_pages "$PAGE_CONTENT" "$SEED" "$L/modify"
MOD2_BYTES=$MOD_BYTES
sleep "$SETTLE"
echo "waited $SETTLE s after the modification"
both_snapshots 2
P2_T=$P_T R2_T=$R_T PB2=$DZ RB2=$DR
RATIO2B=$(calc "$PB2 / ($RB2 > 0 ? $RB2 : 1)")
RATIO2T=$(calc "$P2_T / $R2_T")
echo "second snapshot bytes added: pgtimefs $PB2 ($(mib $PB2) MiB, one zone), restic $RB2 ($(mib $RB2) MiB), ratio $RATIO2B (target <= 0.25)"
echo "second snapshot wall time: pgtimefs ${P2_T} s (self-reported $(jfield "$L/pgt-snap2.out" milliseconds) ms), restic ${R2_T} s, ratio $RATIO2T (target <= 0.5)"
# The same change counted as raw bytes, before compression: pgtimefs' new_bytes (the raw bytes of
# its new chunks) against restic's own "Added to the repository" figure (the raw bytes of its
# new blobs; the stored figure is in parentheses there).
PN2=$(jfield "$L/pgt-snap2.out" new_bytes)
RN2=$(restic_added "$L/restic-snap2.out")
RATIO2N=$(calc "$PN2 / ($RN2 > 0 ? $RN2 : 1)")
echo "second snapshot raw new bytes: pgtimefs new_bytes $PN2 ($(mib "$PN2") MiB), restic 'Added to the repository' $RN2 ($(mib "$RN2") MiB), ratio $RATIO2N"
if [ "$PAGE_CONTENT" = random ]; then
	# random page bytes neither compress nor dedup: no tool stores fewer bytes than were written
	echo "the $MOD2_BYTES bytes of random page contents alone are $(calc "$MOD2_BYTES / ($RB2 > 0 ? $RB2 : 1)")x restic's stored bytes: the floor of 2a for any tool"
fi
target "2a second snapshot bytes stored <= 0.25x restic ($PAGE_CONTENT pages)" "$RATIO2B <= 0.25"
target "2a raw new bytes <= 0.25x restic's 'Added to the repository' ($PAGE_CONTENT pages)" "$RATIO2N <= 0.25"
target "2b second snapshot time <= 0.5x restic" "$RATIO2T <= 0.5"
row "2a second snapshot stored (MiB)" "$(mib $PB2)" "$(mib $RB2)" "$RATIO2B" "<= 0.25"
[ "$PAGE_CONTENT" = random ] &&
	row "   random bytes written (MiB)" "$(mib "$MOD2_BYTES")" "-" "$(calc "$MOD2_BYTES / ($RB2 > 0 ? $RB2 : 1)")" "(floor of 2a)"
row "   raw new bytes (MiB)" "$(mib "$PN2")" "$(mib "$RN2")" "$RATIO2N" "<= 0.25"
row "2b second snapshot (s)" "$P2_T" "$R2_T" "$RATIO2T" "<= 0.5"

# ---------------------------------------------------------------- 3. unchanged
echo "== 3. third snapshot, nothing changed"
both_snapshots 3
P3_T=$P_T R3_T=$R_T SG=$DS
RATIO3=$(calc "$P3_T / $P1_T")
echo "third snapshot wall time: pgtimefs ${P3_T} s (self-reported $(jfield "$L/pgt-snap3.out" milliseconds) ms), restic ${R3_T} s, ratio to pgtimefs's first $RATIO3 (target < 0.1)"
echo "third snapshot state dir growth: pgtimefs $SG bytes (target < 1048576); one zone +$DZ bytes, restic repo +$DR bytes"
target "3a unchanged snapshot < 10% of first" "$RATIO3 < 0.1"
target "3b unchanged snapshot state growth < 1 MiB" "$SG < 1048576"
row "3a unchanged snapshot (s)" "$P3_T" "$R3_T" "$RATIO3" "< 0.1 of pgtimefs 1st"
row "3b state dir growth (bytes)" "$SG" "-" "-" "< 1048576"
row "   repository growth (bytes)" "$DZ" "$DR" "-" "(info)"

# ---------------------------------------------------------------- 2, other page contents
# Target 2a again on the other reading of "overwriting a page": the same fraction of other
# pages (the next seed), now written with the other PAGE_CONTENT, then a fourth snapshot by
# each tool. Left out with OTHER_CONTENT=0.
if [ "${OTHER_CONTENT:-1}" = 1 ]; then
	OTHER=edit
	[ "$PAGE_CONTENT" = edit ] && OTHER=random
	echo "== 2a again: overwrite ${PAGE_FRACTION} of the pages of every relation file ($OTHER), fourth snapshot"
	modify_pages "$OTHER" "$((SEED + 1))" "$L/modify-other"
	sleep "$SETTLE"
	both_snapshots 4
	PN4=$(jfield "$L/pgt-snap4.out" new_bytes)
	RN4=$(restic_added "$L/restic-snap4.out")
	RATIO4B=$(calc "$DZ / ($DR > 0 ? $DR : 1)")
	RATIO4N=$(calc "$PN4 / ($RN4 > 0 ? $RN4 : 1)")
	echo "fourth snapshot bytes added: pgtimefs $DZ ($(mib $DZ) MiB, one zone), restic $DR ($(mib $DR) MiB), ratio $RATIO4B; raw new bytes $(mib "$PN4") MiB against $(mib "$RN4") MiB, ratio $RATIO4N"
	target "2a fourth snapshot bytes stored <= 0.25x restic ($OTHER pages)" "$RATIO4B <= 0.25"
	target "2a raw new bytes <= 0.25x restic's 'Added to the repository' ($OTHER pages)" "$RATIO4N <= 0.25"
	row "2a, $OTHER pages: stored (MiB)" "$(mib $DZ)" "$(mib $DR)" "$RATIO4B" "<= 0.25"
	row "   raw new bytes (MiB)" "$(mib "$PN4")" "$(mib "$RN4")" "$RATIO4N" "<= 0.25"
	row "   fourth snapshot (s)" "$P_T" "$R_T" "$(calc "$P_T / $R_T")" "(info)"
fi

# ---------------------------------------------------------------- 4. read back
echo "== 4. read every file back"
list_files "$DATA" >"$W/files.orig"
NFILES=$(wc -l <"$W/files.orig")
[ "$(find "$DATA" ! -type f ! -type d | wc -l)" = 0 ] || echo "note: the data dir has entries that are neither files nor dirs"
READ_BYTES=$(list_bytes "$DATA" "$W/files.orig")
ORIG_SHA=$(concat_sha "$DATA" "$W/files.orig")
echo "original: $NFILES files, $READ_BYTES bytes, concatenated sha256 $ORIG_SHA"

# the regular files of the latest snapshot, from pgtimefs ls
LAST_LOG=$L/pgt-ls
python3 - "$PGT" "$CLUSTER/latest/$NODE" >"$W/files.pgt" 2>"$L/pgt-ls" <<'PY'
import json, subprocess, sys
pgt, top = sys.argv[1], sys.argv[2]
out = []
def walk(rel):
    path = top + ('/' + rel if rel else '')
    r = subprocess.run([pgt, '--json', 'ls', path], capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(f"pgtimefs --json ls {path}: exit {r.returncode}\n{r.stderr}")
        sys.exit(1)
    for e in json.loads(r.stdout):
        sub = (rel + '/' if rel else '') + e['name']
        if e['type'] == 'dir':
            walk(sub)
        elif e['type'] == 'file':
            out.append(sub)
walk('')
sys.stdout.write(''.join(p + '\n' for p in sorted(out, key=lambda s: s.encode())))
PY
if ! cmp -s "$W/files.orig" "$W/files.pgt"; then
	echo "FATAL: the files of pgtimefs's latest snapshot differ from the data directory's:" >&2
	diff "$W/files.orig" "$W/files.pgt" | head -n 20 >&2
	exit 1
fi
mapfile -t CAT_PATHS < <(sed "s|^|$CLUSTER/latest/$NODE/|" "$W/files.orig")

# timed: pgtimefs cat of every file to /dev/null (sha256sum runs at a few hundred MB/s
# on some machines and would be what is measured); then, cold again, the same piped to
# sha256sum for the digest, its time reported for information
drop_caches
run_timed "$L/pgt-cat-null" "$PGT" cat "${CAT_PATHS[@]}"
P4_T=$T_WALL
drop_caches
LAST_LOG=$L/pgt-cat
t0=$(date +%s.%N)
"$PGT" cat "${CAT_PATHS[@]}" 2>"$L/pgt-cat.err" | sha256sum >"$L/pgt-cat.out"
t1=$(date +%s.%N)
P4_TSHA=$(calc "$t1 - $t0")
PGT_SHA=$(cut -d' ' -f1 "$L/pgt-cat.out")

RT=$W/restic-restore
drop_caches
run_timed "$L/restic-restore" restic restore latest --target "$RT"
R4_T=$T_WALL
RROOT=$RT$DATA
[ -d "$RROOT" ] || fatal "restic restore left no $RROOT"
list_files "$RROOT" >"$W/files.restic"
if ! cmp -s "$W/files.orig" "$W/files.restic"; then
	echo "FATAL: the files restic restored differ from the data directory's:" >&2
	diff "$W/files.orig" "$W/files.restic" | head -n 20 >&2
	exit 1
fi
RESTIC_SHA=$(concat_sha "$RROOT" "$W/files.orig")
echo "pgtimefs cat sha256 $PGT_SHA"
echo "restic restore sha256 $RESTIC_SHA"
BAD=0
[ "$PGT_SHA" = "$ORIG_SHA" ] || { echo "FATAL: DIGEST MISMATCH: pgtimefs cat $PGT_SHA != original $ORIG_SHA" >&2; BAD=1; }
[ "$RESTIC_SHA" = "$ORIG_SHA" ] || { echo "FATAL: DIGEST MISMATCH: restic restore $RESTIC_SHA != original $ORIG_SHA" >&2; BAD=1; }
[ "$BAD" = 0 ] || exit 1
echo "digests: pgtimefs and restic both match the original"
P4_MBS=$(calc "$READ_BYTES / 1000000 / $P4_T")
R4_MBS=$(calc "$READ_BYTES / 1000000 / $R4_T")
RATIO4=$(calc "$P4_MBS / $R4_MBS")
P4_MBS_SHA=$(calc "$READ_BYTES / 1000000 / $P4_TSHA")
echo "read back: pgtimefs ${P4_MBS} MB/s (${P4_T} s, cat >/dev/null), restic ${R4_MBS} MB/s (${R4_T} s, restore to disk), ratio $RATIO4 (target >= 2)"
echo "read back with the digest: pgtimefs cat | sha256sum ${P4_MBS_SHA} MB/s (${P4_TSHA} s)"
target "4 read back MB/s >= 2x restic" "$RATIO4 >= 2"
row "4 read back (MB/s)" "$P4_MBS" "$R4_MBS" "$RATIO4" ">= 2"
row "  pgtimefs cat | sha256sum (MB/s)" "$P4_MBS_SHA" "-" "-" "(info)"
rm -rf "$RT"

# ---------------------------------------------------------------- 5. memory
echo "== 5. peak RSS of pgtimefs snapshot"
D2=$W/double
mkdir -p "$D2"
cp -a "$DATA" "$D2/a"
cp -a "$DATA" "$D2/b"
PG_CONF2=$W/pgtimefs2.conf
pgt_repo "$PG_CONF2" "$W/pgt2"
pgt_machine_key "$PG_CONF2" "$W/pgt2" >/dev/null
drop_caches
PGTIMEFS_CONFIG=$PG_CONF2 run_timed "$L/pgt2-snap" "$PGT" --json snapshot "$CLUSTER" "$NODE" "$D2"
P5_T=$T_WALL P5_RSS=$T_RSS
echo "pgtimefs (doubled, $(mib "$(dub "$D2")") MiB): $(cat "$L/pgt2-snap.out")"
echo "peak RSS: pgtimefs ${P1_RSS} KiB ($(mib $((P1_RSS * 1024))) MiB), restic ${R1_RSS} KiB ($(mib $((R1_RSS * 1024))) MiB) (first snapshot; target pgtimefs <= 256 MiB)"
echo "peak RSS, data dir doubled: pgtimefs ${P5_RSS} KiB ($(mib $((P5_RSS * 1024))) MiB), ${P5_T} s (target <= 256 MiB)"
target "5a peak RSS <= 256 MiB" "$P1_RSS <= 262144"
target "5b peak RSS, doubled <= 256 MiB" "$P5_RSS <= 262144"
row "5a peak RSS 1st snapshot (MiB)" "$(mib $((P1_RSS * 1024)))" "$(mib $((R1_RSS * 1024)))" "$(calc "$P1_RSS / $R1_RSS")" "pgtimefs <= 256"
row "5b peak RSS doubled (MiB)" "$(mib $((P5_RSS * 1024)))" "-" "-" "pgtimefs <= 256"
PGTIMEFS_CONFIG=$PG_CONF2 "$PGT" list >/dev/null
rm -rf "$D2" "$W/pgt2"

# ---------------------------------------------------------------- summary
DATA_BYTES=$(dub "$DATA")
ZONE_BYTES=$(dub "$ZONE")
ZONES_BYTES=$(du -sbc "$W/pgt/zone-a" "$W/pgt/zone-b" "$W/pgt/zone-c" | tail -n 1 | cut -f1)
STATE_BYTES=$(dub "$STATE")
RESTIC_BYTES=$(dub "$RESTIC_REPOSITORY")
echo
echo "== sizes (du -sb, after all snapshots)"
echo "data dir:               $DATA_BYTES bytes ($(mib "$DATA_BYTES") MiB)"
echo "pgtimefs one zone:      $ZONE_BYTES bytes ($(mib "$ZONE_BYTES") MiB); 3 zones $(mib "$ZONES_BYTES") MiB; state dir $(mib "$STATE_BYTES") MiB"
echo "restic repository:      $RESTIC_BYTES bytes ($(mib "$RESTIC_BYTES") MiB)"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_summary "scale $SCALE, $(nproc) CPUs, page cache $(cache_state)" measurement pgtimefs restic ratio target
exit 0
