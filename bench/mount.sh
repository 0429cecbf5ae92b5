#!/usr/bin/env bash
# bench/mount.sh: reading backups through FUSE: pgtimefs mount against restic 0.14 mount and
# borg 1.2 mount, on the same stopped PostgreSQL 15 data directory (initdb + pgbench -i -s
# $SCALE), snapshotted by each tool in one run (issue 3, "Speed and memory").
#
#   sudo bench/mount.sh                  # SCALE=50 (about 1.4 GB), 3-4 minutes
#   SCALE=2 bench/mount.sh               # smoke test
#
# Environment (and those of bench/lib.sh: SCALE, BENCH_DIR, PGTIMEFS, PGBIN, KEEP):
#   PGDATA_DIR     an existing stopped data directory to use in place (read only) instead of
#                  running initdb + pgbench (default: none, a fresh one is made)
#   REPEAT         times each of the measures 1-3 is taken per tool, on a fresh mount each
#                  time; the median is reported (default 3). Measures 1 and 2 run in REPEAT
#                  rounds of every tool once, the order turning each round
#   SNAPSHOTS      snapshots in the pgtimefs catalog for measure 4 (default 100)
#   READY_REPEAT   times measure 4 is taken; the median is reported (default 5)
#   READ_TARGET    bytes read through the pgtimefs mount for measure 5 (default 2 GB)
#   COPY_DIR       where measure 1 copies to (default: a directory in /dev/shm when it has
#                  room for three copies, else the work directory)
#   CACHE          the decoded-chunk cache of every pgtimefs mount, given as -o cache=CACHE
#                  (default 64M, the mount's own default); measure 5's limit is 64 MiB + CACHE
#
# The tools, each with its default settings: pgtimefs (three zones, as bench/ingest.sh);
# restic 0.14 (repository v2, default compression); borg 1.2 (encryption repokey, so that
# all three encrypt, and --compression zstd,3).
#
# Measures. Every timed step runs on a freshly started mount, after the page cache has been
# dropped (sync; echo 3 > /proc/sys/vm/drop_caches), so no tool serves anything from a cache
# warmed by an earlier step. Before measures 1 and 2 the path being read is looked up once
# (stat), then the cache is dropped: they time reading data, not the tool's loading of a
# snapshot's metadata (borg loads a whole archive's item list on first use of its directory).
# Measure 3 includes that loading: it is the first thing done on the new mount.
#   1. cp -a of the whole node directory out of the mount: logical bytes / seconds (MB/s).
#      The copy is then compared with the original: contents with diff -r (a difference is a
#      correctness failure), metadata (type, mode, owner, size, mtime, link target) reported.
#   2. cat of the largest file (a relation file) to /dev/null: MB/s; then cmp with the original.
#   1 and 2 also time the same command on the original directory, cold ("local", no tool): a
#   reference for what this machine's page cache and copies cost, not part of any target.
#   Its ratio columns compare it with borg and restic as pgtimefs' do: where the local copy
#   itself stays under 3x borg, target 1a asks more of the mount than the local disk gives.
#   3. ls -lR of the snapshot: seconds; the listing must show every regular file.
#   4. pgtimefs only: with SNAPSHOTS snapshots in the catalog (the first, then unchanged
#      re-snapshots of the same directory), the time from starting `pgtimefs mount -f` to the
#      first successful `ls MNT/CLUSTER`, page cache dropped before each start.
#   5. pgtimefs only: peak RSS (VmHWM) of the mount process while READ_TARGET bytes are read
#      through it: passes over every file of the node directory (4 readers at once), page
#      cache dropped before each pass.
# Targets (each reported PASS/FAIL; a failed target does not change the exit status):
#   1. cp -a MB/s: pgtimefs >= 3 x borg and >= 5 x restic
#   2. cold cat MB/s: pgtimefs >= 2.5 x borg
#   3. ls -lR: pgtimefs >= 2 x faster than restic (time ratio <= 0.5)
#   4. mount ready <= 0.3 s with SNAPSHOTS snapshots
#   5. peak RSS <= 64 MiB + the chunk cache size
# The exit status is non-zero on any correctness failure: a failing command, a mount that does
# not answer, a copy whose contents differ from the original, a listing that misses files.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
ROW_FMT='%-28s %12s %12s %12s %8s %8s  %s'
REPEAT=${REPEAT:-3}
SNAPSHOTS=${SNAPSHOTS:-100}
READY_REPEAT=${READY_REPEAT:-5}
READ_TARGET=${READ_TARGET:-2000000000}
CACHE=${CACHE:-64M}
# CACHE in bytes: a number with an optional K, M, G suffix (powers of 1024, "iB" or "B" may follow)
CACHE_BYTES=$(echo "$CACHE" | awk 'match($0, /^[0-9]+/) { n = substr($0, 1, RLENGTH); u = toupper(substr($0, RLENGTH + 1)); sub(/I?B$/, "", u)
	m = (u == "") ? 1 : (u == "K") ? 1024 : (u == "M") ? 1048576 : (u == "G") ? 1073741824 : -1; if (m > 0) printf "%.0f", n * m }')
[ -n "$CACHE_BYTES" ] || { echo "FATAL: CACHE=$CACHE: give a size like 64M or 1G" >&2; exit 1; }
ARCHIVE=pgbench
TOOLS=(pgtimefs borg restic)
T_START=$(date +%s)

bench_prereqs
need_pkg borgbackup command -v borg
need_pkg python3-pyfuse3 /usr/bin/python3 -c 'import pyfuse3' # what Debian's borg runs
need_pkg fuse3 command -v fusermount3
[ -e /dev/fuse ] || fatal "no /dev/fuse"
bench_workdir
bench_machine "borg: $(borg --version)" \
	"scale: $SCALE, repeat: $REPEAT, snapshots for mount ready: $SNAPSHOTS, pgtimefs mount -o cache=$CACHE ($CACHE_BYTES bytes)"
bench_pgdata

# ---------------------------------------------------------------- mounts
# mount_start TOOL [EXTRA-ARGS...]: starts TOOL's mount in the foreground in the background
# and waits until it answers (its probe directory lists its probe name). Sets MPID and
# T_READY (seconds from the start to the first answer).
declare -A MPIDS=()
MNT_N=0
mount_start() {
	local tool=$1 mnt=$W/mnt-$1 dir name t0 t1 log
	shift
	mkdir -p "$mnt"
	MNT_N=$((MNT_N + 1))
	log=$L/mount-$tool-$MNT_N
	LAST_LOG=$log
	case $tool in
	pgtimefs) dir=$mnt/$CLUSTER name=latest ;;
	restic) dir=$mnt/snapshots name=latest ;;
	borg) dir=$mnt name=$ARCHIVE ;;
	esac
	t0=$(now)
	case $tool in
	pgtimefs) "$PGT" mount "$mnt" -f -o "cache=$CACHE" "$@" >"$log" 2>&1 & ;;
	restic) restic mount "$mnt" "$@" >"$log" 2>&1 & ;;
	borg) borg mount -f "$@" "$BORG_REPO" "$mnt" >"$log" 2>&1 & ;;
	esac
	MPID=$!
	MPIDS[$tool]=$MPID
	# shellcheck disable=SC2010 # the answer of ls is what is timed
	until ls "$dir" 2>/dev/null | grep -x -- "$name" >/dev/null; do
		if ! kill -0 "$MPID" 2>/dev/null; then
			wait "$MPID" || true
			echo "FATAL: $tool mount exited before answering; its output:" >&2
			cat "$log" >&2
			exit 1
		fi
		if awk "BEGIN { exit !($(now) - $t0 > 120) }"; then
			fatal "$tool mount did not answer within 120 s (log $log)"
		fi
		sleep 0.002
	done
	t1=$(now)
	T_READY=$(calc "$t1 - $t0")
}

# mount_stop TOOL: fusermount3 -u, then waits up to 20 s for the process to end (killed after)
mount_stop() {
	local tool=$1 mnt=$W/mnt-$1 pid=${MPIDS[$1]:-} i
	[ -n "$pid" ] || return 0
	if ! fusermount3 -u "$mnt" 2>>"$L/umount.err"; then
		echo "note: fusermount3 -u $mnt failed: $(tail -n 1 "$L/umount.err")"
	fi
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "note: the $tool mount (pid $pid) had not ended 20 s after fusermount3 -u: killed"
		kill "$pid" 2>/dev/null || true
		sleep 1
		fusermount3 -u -z "$mnt" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	unset "MPIDS[$tool]"
}

# shellcheck disable=SC2317 # called by lib.sh's exit trap
bench_cleanup_hook() {
	local t
	[ -z "${SHM_COPY_DIR:-}" ] || rm -rf "$SHM_COPY_DIR"
	for t in "${!MPIDS[@]}"; do
		fusermount3 -u -z "$W/mnt-$t" 2>/dev/null || true
		kill "${MPIDS[$t]}" 2>/dev/null || true
	done
}

# the node directory and the snapshot directory inside each tool's mount
node_path() {
	case $1 in
	pgtimefs) echo "$W/mnt-pgtimefs/$CLUSTER/$PGT_TIME/$NODE" ;;
	restic) echo "$W/mnt-restic/snapshots/$RESTIC_TIME$DATA" ;;
	borg) echo "$W/mnt-borg/$ARCHIVE$DATA" ;;
	local) echo "$DATA" ;;
	esac
}
snap_path() {
	case $1 in
	pgtimefs) echo "$W/mnt-pgtimefs/$CLUSTER/$PGT_TIME" ;;
	restic) echo "$W/mnt-restic/snapshots/$RESTIC_TIME" ;;
	borg) echo "$W/mnt-borg/$ARCHIVE" ;;
	esac
}

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { printf "%.3f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# ---------------------------------------------------------------- snapshots
echo "== snapshots of the data directory"
list_files "$DATA" >"$W/files.orig"
NFILES=$(wc -l <"$W/files.orig")
READ_BYTES=$(list_bytes "$DATA" "$W/files.orig")
# (no head in pipelines: with pipefail, a writer killed by SIGPIPE fails the script)
BIG_REL=$(cd "$DATA" && find . -type f -printf '%s %P\n' | sort -k1,1nr -k2 | awk 'NR == 1 { sub(/^[0-9]+ /, ""); print }')
BIG_BYTES=$(stat -c %s "$DATA/$BIG_REL")
echo "regular files: $NFILES, $READ_BYTES bytes; largest: $BIG_REL, $BIG_BYTES bytes"
# type, mode, owner, size, mtime and link target of every entry, for comparing copies
# a directory's size is the filesystem's own (4096 on ext4, small on tmpfs): not compared
meta_list() { (cd "$1" && find . \( -type d -printf '%P|%y|%m|%u|%g|-|%T@|\n' \) -o -printf '%P|%y|%m|%u|%g|%s|%T@|%l\n' | LC_ALL=C sort); }
meta_list "$DATA" >"$W/meta.orig"

export PGTIMEFS_PASSPHRASE=bench-passphrase
PG_CONF=$W/pgtimefs.conf
pgt_repo "$PG_CONF" "$W/pgt"
export PGTIMEFS_CONFIG=$PG_CONF

export RESTIC_PASSWORD=bench-passphrase
export RESTIC_REPOSITORY=$W/restic-repo
export RESTIC_CACHE_DIR=$W/restic-cache
LAST_LOG=$L/restic-init
restic init --repository-version 2 >"$L/restic-init" 2>&1

export BORG_PASSPHRASE=bench-passphrase
export BORG_REPO=$W/borg-repo
export BORG_BASE_DIR=$W/borg-base
LAST_LOG=$L/borg-init
borg init --encryption repokey "$BORG_REPO" >"$L/borg-init" 2>&1

drop_caches
run_timed "$L/pgt-snap" "$PGT" --json snapshot "$CLUSTER" "$NODE" "$DATA"
echo "pgtimefs snapshot: ${T_WALL} s, one zone $(mib "$(dub "$W/pgt/zone-a")") MiB"
drop_caches
run_timed "$L/restic-snap" restic backup "$DATA"
echo "restic backup: ${T_WALL} s, repository $(mib "$(dub "$RESTIC_REPOSITORY")") MiB"
drop_caches
run_timed "$L/borg-snap" borg create --compression zstd,3 "::$ARCHIVE" "$DATA"
echo "borg create: ${T_WALL} s, repository $(mib "$(dub "$BORG_REPO")") MiB"

# the snapshot directory names, as each mount shows them
mount_start pgtimefs
PGT_TIME=$(readlink "$W/mnt-pgtimefs/$CLUSTER/latest")
mount_stop pgtimefs
mount_start restic
RESTIC_TIME=$(readlink "$W/mnt-restic/snapshots/latest")
mount_stop restic
if [ -z "$PGT_TIME" ] || [ -z "$RESTIC_TIME" ]; then fatal "no latest snapshot in a mount"; fi
echo "snapshot directories: pgtimefs $CLUSTER/$PGT_TIME, restic snapshots/$RESTIC_TIME, borg $ARCHIVE"

BAD=0
declare -A CP_T=() CAT_T=() LS_T=() READY=()

# ---------------------------------------------------------------- 3. ls -lR
# (first, as every measure runs on a fresh mount the order does not matter)
echo "== 3. ls -lR of the snapshot, first thing on a fresh mount"
for tool in "${TOOLS[@]}"; do
	ts=()
	for ((r = 1; r <= REPEAT; r++)); do
		mount_start "$tool"
		READY[$tool]=$T_READY
		snap=$(snap_path "$tool")
		drop_caches
		LAST_LOG=$L/ls-$tool
		t0=$(now)
		ls -lR "$snap" >"$L/ls-$tool.out" 2>"$L/ls-$tool.err"
		t1=$(now)
		ts+=("$(calc "$t1 - $t0")")
		mount_stop "$tool"
		n=$(grep -c '^-' "$L/ls-$tool.out" || true)
		if [ "$n" != "$NFILES" ]; then
			echo "FATAL: ls -lR through $tool shows $n regular files, not $NFILES" >&2
			BAD=1
		fi
	done
	LS_T[$tool]=$(median "${ts[@]}")
	echo "$tool: ls -lR ${LS_T[$tool]} s ($(wc -l <"$L/ls-$tool.out") lines; runs: ${ts[*]}); mount answered in ${READY[$tool]} s"
done

# Measures 1 and 2 run in rounds: each round takes every tool once, the order turning by one
# each round, so that a slow spell of the machine (on a VM, the host's own load and its
# paging of the guest's memory) falls on every tool alike rather than on one tool's runs.
# "local" is no tool: the same directory read straight from its own filesystem by the same
# command, cold. It is a reference (what the machine's page cache and copy cost with no backup
# tool in the way) and is not part of any target.
CMP_TOOLS=(pgtimefs borg restic local)
# round_order R: CMP_TOOLS turned left by R - 1
round_order() {
	local r=$1 n=${#CMP_TOOLS[@]} i
	for ((i = 0; i < n; i++)); do echo "${CMP_TOOLS[$(((i + r - 1) % n))]}"; done
}
declare -A RUNS=()

# ---------------------------------------------------------------- 2. cat of the largest file
# measure_cat TOOL: one cold cat of the largest file through TOOL, then cmp with the original
measure_cat() {
	local tool=$1 f t0 t1
	[ "$tool" = local ] || mount_start "$tool"
	f=$(node_path "$tool")/$BIG_REL
	stat "$f" >/dev/null
	drop_caches
	LAST_LOG=$L/cat-$tool
	t0=$(now)
	cat "$f" >/dev/null 2>"$L/cat-$tool.err"
	t1=$(now)
	RUNS[cat-$tool]+=" $(calc "$t1 - $t0")"
	if [ "$tool" != local ] && ! cmp "$f" "$DATA/$BIG_REL" >"$L/cat-$tool.cmp" 2>&1; then
		echo "FATAL: $BIG_REL read through $tool differs from the original: $(head -n 1 "$L/cat-$tool.cmp")" >&2
		BAD=1
	fi
	[ "$tool" = local ] || mount_stop "$tool"
}
echo "== 2. cat of the largest file ($BIG_REL, $(mib "$BIG_BYTES") MiB) to /dev/null, $REPEAT rounds"
# Untimed first: one pass of each command over the original directory. On a VM the first
# copy of a run into memory nothing has touched for a while can be much slower (the host
# maps those pages on first touch: 2-3 times slower seen here), and it would fall on
# whichever tool comes first in round 1. (It does not always help: round 1 is still often
# the slowest, and the median of REPEAT >= 3 leaves it out.)
drop_caches
cat "$DATA/$BIG_REL" >/dev/null
for ((r = 1; r <= REPEAT; r++)); do
	for tool in $(round_order "$r"); do measure_cat "$tool"; done
done
for tool in "${CMP_TOOLS[@]}"; do
	# shellcheck disable=SC2086 # the runs, one word each
	CAT_T[$tool]=$(median ${RUNS[cat-$tool]})
	echo "$tool: $(calc "$BIG_BYTES / 1000000 / ${CAT_T[$tool]}") MB/s (${CAT_T[$tool]} s; runs:${RUNS[cat-$tool]})"
done

# How this kernel's page cache holds the largest file read through each tool's mount and
# read locally (bench/folios.py: single 4 KiB pages or large folios). Information only: it
# says whether a FUSE mount pays a page allocation per 4 KiB where the local disk does not.
echo "== page cache folios of $BIG_REL (first 64 MiB, cold; information)"
for tool in pgtimefs borg local; do
	[ "$tool" = local ] || mount_start "$tool"
	f=$(node_path "$tool")/$BIG_REL
	stat "$f" >/dev/null
	drop_caches
	echo "$tool: $(python3 "$HERE/folios.py" "$f" 2>&1 | sed 's/^.*: \([0-9]* pages\)/\1/')"
	[ "$tool" = local ] || mount_stop "$tool"
done

# ---------------------------------------------------------------- 1. cp -a of the node directory
# The copy goes to a tmpfs when it has room (COPY_DIR overrides): every tool then pays the same
# small cost of writing, and the measure is of the mount rather than of ext4's allocator.
if [ -z "${COPY_DIR:-}" ]; then
	COPY_DIR=$W
	shm_free=$(df -B1 --output=avail /dev/shm 2>/dev/null | awk 'NR == 2 { print $1 }')
	if [ -n "$shm_free" ] && [ "$shm_free" -gt $((3 * READ_BYTES)) ]; then
		COPY_DIR=$(mktemp -d /dev/shm/pgtimefs-bench-copy.XXXXXX)
		SHM_COPY_DIR=$COPY_DIR
	fi
fi
declare -A META=()
# measure_cp TOOL: one cold cp -a of the node directory out of TOOL, then the copy compared
measure_cp() {
	local tool=$1 src dst t0 t1 nd
	[ "$tool" = local ] || mount_start "$tool"
	src=$(node_path "$tool")
	dst=$COPY_DIR/copy-$tool
	rm -rf "$dst"
	stat "$src" >/dev/null
	drop_caches
	LAST_LOG=$L/cp-$tool
	t0=$(now)
	cp -a "$src" "$dst" 2>"$L/cp-$tool.err"
	t1=$(now)
	RUNS[cp-$tool]+=" $(calc "$t1 - $t0")"
	[ "$tool" = local ] || mount_stop "$tool"
	if ! diff -r --no-dereference "$DATA" "$dst" >"$L/diff-$tool" 2>&1; then
		echo "FATAL: the cp -a copy out of $tool differs from the original:" >&2
		head -n 20 "$L/diff-$tool" >&2
		BAD=1
	fi
	meta_list "$dst" >"$W/meta.$tool"
	nd=$(diff "$W/meta.orig" "$W/meta.$tool" | grep -c '^>' || true)
	if [ "$nd" = 0 ]; then
		META[$tool]=identical
	else
		META[$tool]="$nd of $(wc -l <"$W/meta.orig") entries differ, e.g. $({ diff "$W/meta.orig" "$W/meta.$tool" || true; } | awk '/^[<>]/ && n++ < 2' | tr '\n' ' ')"
	fi
	rm -rf "$dst"
}
echo "== 1. cp -a of the node directory ($NFILES files, $READ_BYTES bytes) into $COPY_DIR ($(df --output=fstype "$COPY_DIR" | awk 'NR == 2')), $REPEAT rounds"
drop_caches
cp -a "$DATA" "$COPY_DIR/warm-up" && rm -rf "$COPY_DIR/warm-up" # untimed (see measure 2)
for ((r = 1; r <= REPEAT; r++)); do
	for tool in $(round_order "$r"); do measure_cp "$tool"; done
done
for tool in "${CMP_TOOLS[@]}"; do
	# shellcheck disable=SC2086 # the runs, one word each
	CP_T[$tool]=$(median ${RUNS[cp-$tool]})
	echo "$tool: $(calc "$READ_BYTES / 1000000 / ${CP_T[$tool]}") MB/s (${CP_T[$tool]} s; runs:${RUNS[cp-$tool]}); contents $(grep -q . "$L/diff-$tool" && echo DIFFER || echo identical); metadata (type|mode|owner|group|size|mtime|link): ${META[$tool]}"
done
[ "$BAD" = 0 ] || fatal "correctness failure above: no speed is reported"

mbs() { calc "$1 / 1000000 / $2"; }
P1=$(mbs "$READ_BYTES" "${CP_T[pgtimefs]}") B1=$(mbs "$READ_BYTES" "${CP_T[borg]}") R1=$(mbs "$READ_BYTES" "${CP_T[restic]}")
P2=$(mbs "$BIG_BYTES" "${CAT_T[pgtimefs]}") B2=$(mbs "$BIG_BYTES" "${CAT_T[borg]}") R2=$(mbs "$BIG_BYTES" "${CAT_T[restic]}")
row "1 cp -a node dir (MB/s)" "$P1" "$B1" "$R1" "$(calc "$P1 / $B1")" "$(calc "$P1 / $R1")" ">= 3 borg, >= 5 restic"
target "1a cp -a MB/s >= 3x borg" "$P1 >= 3 * $B1"
target "1b cp -a MB/s >= 5x restic" "$P1 >= 5 * $R1"
L1=$(mbs "$READ_BYTES" "${CP_T[local]}")
row "  cp -a, local dir (MB/s)" "$L1" "-" "-" "$(calc "$L1 / $B1")" "$(calc "$L1 / $R1")" "(reference: no tool)"
row "2 cat largest file (MB/s)" "$P2" "$B2" "$R2" "$(calc "$P2 / $B2")" "$(calc "$P2 / $R2")" ">= 2.5 borg"
target "2 cold cat MB/s >= 2.5x borg" "$P2 >= 2.5 * $B2"
L2=$(mbs "$BIG_BYTES" "${CAT_T[local]}")
row "  cat, local file (MB/s)" "$L2" "-" "-" "$(calc "$L2 / $B2")" "$(calc "$L2 / $R2")" "(reference: no tool)"
row "3 ls -lR snapshot (s)" "${LS_T[pgtimefs]}" "${LS_T[borg]}" "${LS_T[restic]}" "$(calc "${LS_T[pgtimefs]} / ${LS_T[borg]}")" "$(calc "${LS_T[pgtimefs]} / ${LS_T[restic]}")" "<= 0.5 restic"
target "3 ls -lR >= 2x faster than restic" "${LS_T[pgtimefs]} * 2 <= ${LS_T[restic]}"
row "  mount answers, 1 snap (s)" "${READY[pgtimefs]}" "${READY[borg]}" "${READY[restic]}" "-" "-" "(info)"

# ---------------------------------------------------------------- 4. mount ready, many snapshots
echo "== 4. pgtimefs mount ready with $SNAPSHOTS snapshots in the catalog"
t0=$(now)
for ((i = 2; i <= SNAPSHOTS; i++)); do
	LAST_LOG=$L/pgt-resnap
	"$PGT" --quiet snapshot "$CLUSTER" "$NODE" "$DATA" >"$L/pgt-resnap" 2>&1
done
echo "$((SNAPSHOTS - 1)) unchanged snapshots took $(calc "$(now) - $t0") s"
NSNAP=$("$PGT" --json list | python3 -c 'import json, sys; d = json.load(sys.stdin); print(len(d) if isinstance(d, list) else len(d.get("snapshots", [])))' 2>/dev/null || echo '?')
echo "pgtimefs list: $NSNAP snapshots"
ts=()
for ((r = 1; r <= READY_REPEAT; r++)); do
	drop_caches
	mount_start pgtimefs
	ts+=("$T_READY")
	# the cluster directory: the snapshots, latest, and the at/ and wal/ views
	n=$(find "$W/mnt-pgtimefs/$CLUSTER" -mindepth 1 -maxdepth 1 ! -name at ! -name wal -printf x | wc -c)
	mount_stop pgtimefs
done
P4=$(median "${ts[@]}")
echo "mount ready (start to first ls MNT/$CLUSTER): median $P4 s, runs: ${ts[*]}; ls MNT/$CLUSTER shows $n entries besides at/ and wal/"
if [ "$n" != $((SNAPSHOTS + 1)) ]; then
	echo "FATAL: ls MNT/$CLUSTER should show $SNAPSHOTS snapshots and latest, not $n entries" >&2
	BAD=1
fi
row "4 mount ready, $SNAPSHOTS snaps (s)" "$P4" "-" "-" "-" "-" "<= 0.3"
target "4 mount ready <= 0.3 s with $SNAPSHOTS snapshots" "$P4 <= 0.3"

# ---------------------------------------------------------------- 5. RSS while reading
echo "== 5. pgtimefs mount peak RSS while $READ_TARGET bytes are read through it"
mount_start pgtimefs
PID=$MPID
src=$(node_path pgtimefs)
read_bytes=0 passes=0 rss=()
t0=$(now)
while [ "$read_bytes" -lt "$READ_TARGET" ]; do
	drop_caches
	LAST_LOG=$L/rss-read
	(cd "$src" && tr '\n' '\0' <"$W/files.orig" | xargs -0 -r -P 4 -n 16 cat -- >/dev/null 2>"$L/rss-read.err")
	read_bytes=$((read_bytes + READ_BYTES)) passes=$((passes + 1))
	rss+=("$(awk '/VmRSS/ { print $2 }' "/proc/$PID/status")")
done
HWM=$(awk '/VmHWM/ { print $2 }' "/proc/$PID/status")
echo "read $read_bytes bytes in $passes passes, $(calc "$(now) - $t0") s; VmRSS after each pass (KiB): ${rss[*]}"
echo "peak RSS (VmHWM): $HWM KiB ($(mib $((HWM * 1024))) MiB); limit 64 MiB + cache $(mib "$CACHE_BYTES") MiB"
mount_stop pgtimefs
LIMIT=$((64 * 1048576 + CACHE_BYTES))
row "5 peak RSS reading (MiB)" "$(mib $((HWM * 1024)))" "-" "-" "-" "-" "<= 64 + $(mib "$CACHE_BYTES")"
target "5 peak RSS <= 64 MiB + cache ($(mib "$CACHE_BYTES") MiB)" "$HWM * 1024 <= $LIMIT"

# ---------------------------------------------------------------- summary
echo
echo "== sizes (du -sb)"
echo "data dir:               $(dub "$DATA") bytes ($(mib "$(dub "$DATA")") MiB)"
echo "pgtimefs one zone:      $(mib "$(dub "$W/pgt/zone-a")") MiB (after $SNAPSHOTS snapshots); state dir $(mib "$(dub "$W/pgt/state")") MiB"
echo "restic repository:      $(mib "$(dub "$RESTIC_REPOSITORY")") MiB"
echo "borg repository:        $(mib "$(dub "$BORG_REPO")") MiB"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench wall time: $(($(date +%s) - T_START)) s"
bench_summary "scale $SCALE, $(nproc) CPUs, page cache $(cache_state), median of $REPEAT" \
	measurement pgtimefs borg restic pgt/borg pgt/restic target
exit "$BAD"
