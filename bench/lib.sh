# shellcheck shell=bash disable=SC2034 # the variables set here are used by the scripts
# bench/lib.sh: shared by the bench scripts (sourced, not run). It sets strict mode and the
# error and exit traps, and gives: prerequisites, the work directory, the machine summary,
# the pgbench data directory, a pgtimefs repository, timing, page-cache dropping, digests,
# and the summary table with PASS/FAIL per target.
#
# A script sets its own defaults, sources this file, then calls in order:
#   bench_prereqs; bench_workdir; bench_machine EXTRA-LINES...; bench_pgdata
# and ends with bench_summary. A script that needs more cleanup on exit defines
# bench_cleanup_hook (called first, errors ignored).
#
# Environment read here:
#   SCALE       pgbench scale factor (default 50)
#   BENCH_DIR   parent of the temporary work directory (default /var/tmp)
#   PGTIMEFS    the pgtimefs binary (default: build/pgtimefs of this repository; built if missing)
#   PGBIN       PostgreSQL 15 binaries (default /usr/lib/postgresql/15/bin)
#   KEEP=1      keep the work directory
#   PGT_REPO_EXTRA  extra lines for the [repository] section of every repository pgt_repo
#               makes, "\n" between lines (default: none, pgtimefs's defaults), e.g.
#               PGT_REPO_EXTRA='block-size = 16K\nzstd-level = 3'
set -euo pipefail
set -o errtrace

BENCH_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_LIB/.." && pwd)
PGT=${PGTIMEFS:-$REPO/build/pgtimefs}
SCALE=${SCALE:-50}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
CLUSTER=bench
NODE=pg15

LAST_LOG=
W=
PG_RUNNING=0
DATA=

fatal() {
	echo "FATAL: $*" >&2
	exit 1
}

on_err() {
	local rc=$? line=$1 cmd=$2
	echo "FATAL: command failed (exit $rc) at line $line: $cmd" >&2
	if [ -n "$LAST_LOG" ]; then
		for f in "$LAST_LOG" "$LAST_LOG.out" "$LAST_LOG.err"; do
			if [ -s "$f" ]; then
				echo "---- last lines of $(basename "$f") ----" >&2
				tail -n 20 "$f" >&2
			fi
		done
	fi
}
trap 'on_err $LINENO "$BASH_COMMAND"' ERR

cleanup() {
	if declare -F bench_cleanup_hook >/dev/null; then
		bench_cleanup_hook || true
	fi
	if [ "$PG_RUNNING" = 1 ]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ -n "$W" ] && [ -d "$W" ]; then
		if [ "${KEEP:-0}" = 1 ]; then
			echo "work directory kept: $W"
		else
			rm -rf "$W"
		fi
	fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- prerequisites
APT_UPDATED=0
need_pkg() { # need_pkg PACKAGE TEST-COMMAND...
	local pkg=$1
	shift
	if ! "$@" >/dev/null 2>&1; then
		[ "$(id -u)" = 0 ] || fatal "$pkg is missing and this is not root: apt-get install -y $pkg"
		if [ "$APT_UPDATED" = 0 ]; then
			apt-get update -qq >/dev/null
			APT_UPDATED=1
		fi
		echo "installing $pkg"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
	fi
}

# root, postgresql-15, restic, GNU time, python3 and the pgtimefs binary (built if missing)
bench_prereqs() {
	[ "$(id -u)" = 0 ] || fatal "run as root (runuser, drop_caches)"
	need_pkg postgresql-15 test -x "$PGBIN/pgbench"
	need_pkg restic command -v restic
	need_pkg time test -x /usr/bin/time
	command -v python3 >/dev/null || fatal "python3 is needed"
	if [ ! -x "$PGT" ]; then
		echo "building pgtimefs"
		mkdir -p "$REPO/build"
		(cd "$REPO/build" && cmake .. >/dev/null && make -j"$(nproc)" >/dev/null)
	fi
	[ -x "$PGT" ] || fatal "no pgtimefs binary at $PGT"
}

# ---------------------------------------------------------------- helpers
calc() { awk "BEGIN { printf \"%.3f\", $* }"; }
mib() { awk "BEGIN { printf \"%.1f\", $1 / 1048576 }"; }
dub() { du -sb "$1" | cut -f1; }
jfield() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
now() { date +%s.%N; }

CAN_DROP=0
if (sync && echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
	CAN_DROP=1
fi
drop_caches() {
	sync
	if [ "$CAN_DROP" = 1 ]; then
		echo 3 >/proc/sys/vm/drop_caches
	fi
}
cache_state() { [ "$CAN_DROP" = 1 ] && echo cold || echo WARM; }

# run_timed LOG CMD...: runs CMD with stdout to LOG.out (or /dev/null when LOG ends in
# -null), stderr to LOG.err; sets T_WALL (seconds, measured outside) and T_RSS (peak RSS, KiB)
run_timed() {
	local log=$1 out=$1.out t0 t1
	shift
	if [ "$log" != "${log%-null}" ]; then out=/dev/null; fi
	LAST_LOG=$log
	t0=$(now)
	/usr/bin/time -f '%M' -o "$log.rss" "$@" >"$out" 2>"$log.err"
	t1=$(now)
	T_WALL=$(calc "$t1 - $t0")
	T_RSS=$(tail -n 1 "$log.rss")
}

# the regular files of a directory, relative, in C order
list_files() { (cd "$1" && find . -type f -printf '%P\n' | LC_ALL=C sort); }
# sha256 of the concatenation of the files listed in $2 (relative to $1)
concat_sha() { (cd "$1" && tr '\n' '\0' <"$2" | xargs -0 -r cat -- | sha256sum | cut -d' ' -f1); }
# the apparent bytes of the files listed in $2 (relative to $1)
list_bytes() { (cd "$1" && tr '\n' '\0' <"$2" | du -cb --files0-from=- --apparent-size | tail -n 1 | cut -f1); }

# ---------------------------------------------------------------- summary table and targets
TARGET_NAMES=()
TARGET_RESULTS=()
TABLE=()
ROW_FMT=${ROW_FMT:-'%-34s %14s %14s %9s  %s'}
target() { # target NAME PASS-CONDITION(awk expression)
	local r
	if awk "BEGIN { exit !($2) }"; then r=PASS; else r=FAIL; fi
	TARGET_NAMES+=("$1")
	TARGET_RESULTS+=("$r")
}
# shellcheck disable=SC2059
row() { TABLE+=("$(printf "$ROW_FMT" "$@")"); }

# bench_summary TITLE COLUMN-HEADERS...: the table, then PASS/FAIL per target
bench_summary() {
	local title=$1 i nfail=0
	shift
	echo
	echo "== summary ($title)"
	# shellcheck disable=SC2059
	printf "$ROW_FMT\n" "$@"
	printf '%s\n' "${TABLE[@]}"
	echo
	echo "== targets"
	for i in "${!TARGET_NAMES[@]}"; do
		printf '%-4s %s\n' "${TARGET_RESULTS[$i]}" "${TARGET_NAMES[$i]}"
		[ "${TARGET_RESULTS[$i]}" = PASS ] || nfail=$((nfail + 1))
	done
	if [ "${BAD:-0}" = 0 ]; then
		echo "$((${#TARGET_NAMES[@]} - nfail)) of ${#TARGET_NAMES[@]} targets met; correctness checks passed"
	else
		echo "$((${#TARGET_NAMES[@]} - nfail)) of ${#TARGET_NAMES[@]} targets met; CORRECTNESS FAILURE (see FATAL above)"
	fi
}

# ---------------------------------------------------------------- work directory
# W (work dir, mode 755), L (logs), PGT (the binary, copied into W so that a rebuild of
# build/ during the run does not mix two versions; PGT_SRC is the original)
bench_workdir() {
	local base=${BENCH_DIR:-/var/tmp}
	mkdir -p "$base"
	W=$(mktemp -d "$base/pgtimefs-bench.XXXXXX")
	chmod 755 "$W"
	PGT_SRC=$PGT
	cp "$PGT_SRC" "$W/pgtimefs"
	PGT=$W/pgtimefs
	mkdir -p "$W/logs" "$W/pg/sock"
	chown -R postgres:postgres "$W/pg"
	L=$W/logs
}

# bench_machine LINE...: the machine, versions and cache mode; each LINE is printed after
# the versions
bench_machine() {
	echo "== machine"
	echo "nproc: $(nproc)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "kernel: $(uname -r)"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "pgtimefs: repository at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' (work tree modified)'), binary $PGT_SRC built $(date -r "$PGT_SRC" '+%F %T'), sha256 $(sha256sum "$PGT" | cut -c1-16)"
	echo "restic: $(restic version | awk 'NR == 1')"
	echo "postgres: $("$PGBIN/postgres" --version)"
	local line
	for line in "$@"; do echo "$line"; done
	if [ "$CAN_DROP" = 1 ]; then
		echo "page cache: dropped before every timed step (cold)"
	else
		echo "page cache: NOT dropped (writing /proc/sys/vm/drop_caches failed: no permission); runs are WARM"
	fi
}

# ---------------------------------------------------------------- data
# bench_pgdata: sets DATA to a stopped data directory of initdb + pgbench -i -s $SCALE.
# With PGDATA_DIR set to an existing stopped data directory (a PG_VERSION, no
# postmaster.pid), that one is used instead: copied into the work directory when the
# caller sets PGDATA_COPY=1 (a script that modifies the data), used in place otherwise.
bench_pgdata() {
	if [ -n "${PGDATA_DIR:-}" ]; then
		[ -f "$PGDATA_DIR/PG_VERSION" ] || fatal "PGDATA_DIR=$PGDATA_DIR is not a data directory"
		[ ! -e "$PGDATA_DIR/postmaster.pid" ] || fatal "PGDATA_DIR=$PGDATA_DIR has a postmaster.pid: stop its server"
		if [ "${PGDATA_COPY:-0}" = 1 ]; then
			echo "== data: a copy of PGDATA_DIR=$PGDATA_DIR"
			DATA=$W/pg/data
			cp -a "$PGDATA_DIR" "$DATA"
		else
			echo "== data: PGDATA_DIR=$PGDATA_DIR (used in place, read only)"
			DATA=$(cd "$PGDATA_DIR" && pwd)
		fi
	else
		echo "== data: initdb + pgbench -i -s $SCALE"
		DATA=$W/pg/data
		local port t0
		port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
		LAST_LOG=$L/initdb
		runuser -u postgres -- "$PGBIN/initdb" -D "$DATA" -A trust -E UTF8 --locale=C >"$L/initdb" 2>&1
		LAST_LOG=$W/pg/server.log
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DATA" -l "$W/pg/server.log" -w \
			-o "-p $port -k $W/pg/sock -c listen_addresses=127.0.0.1" start >"$L/pg_ctl" 2>&1
		PG_RUNNING=1
		LAST_LOG=$L/pgbench
		t0=$(date +%s)
		runuser -u postgres -- "$PGBIN/pgbench" -i -s "$SCALE" -h "$W/pg/sock" -p "$port" postgres >"$L/pgbench" 2>&1
		echo "pgbench -i took $(($(date +%s) - t0)) s"
		LAST_LOG=$W/pg/server.log
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >>"$L/pg_ctl" 2>&1
		PG_RUNNING=0
		[ ! -e "$DATA/postmaster.pid" ] || fatal "the server did not stop"
	fi
	DATA_BYTES0=$(dub "$DATA")
	echo "data dir: $(mib "$DATA_BYTES0") MiB, $(find "$DATA" -type f | wc -l) files"
}

# ---------------------------------------------------------------- pgtimefs repository
# pgt_machine_key CONF DIR: a generated machine key (key add --generate DIR/machine.key) named
# as the config's passphrase-file, as scheduled, unattended runs are set up; prints how long
# opening the repository takes with it and with the typed passphrase's key file (scrypt at
# kdf-log2n 15), both measured here
pgt_machine_key() {
	local conf=$1 dir=$2 t0 t1 t2
	LAST_LOG=$L/$(basename "$conf").key
	PGTIMEFS_CONFIG=$conf "$PGT" key add --generate "$dir/machine.key" >"$LAST_LOG" 2>&1
	t0=$(now)
	PGTIMEFS_CONFIG=$conf "$PGT" key list >/dev/null
	t1=$(now)
	sed -i "s|^\[repository\]\$|[repository]\npassphrase-file = $dir/machine.key|" "$conf"
	PGTIMEFS_CONFIG=$conf "$PGT" key list >/dev/null
	t2=$(now)
	echo "pgtimefs opens the repository with its machine key in $(calc "$t2 - $t1") s (with the typed passphrase, scrypt 2^15: $(calc "$t1 - $t0") s); the runs below use the machine key"
}

# pgt_repo CONF DIR [EXTRA-LINES]: writes a config of three zones and a state dir under DIR
# (EXTRA-LINES, then PGT_REPO_EXTRA, appended to its [repository] section) and runs
# pgtimefs init with it
pgt_repo() {
	local conf=$1 dir=$2
	cat >"$conf" <<EOF
[repository]
zones = $dir/zone-a $dir/zone-b $dir/zone-c
state-dir = $dir/state
${3:-}
EOF
	if [ -n "${PGT_REPO_EXTRA:-}" ]; then
		printf '%b\n' "$PGT_REPO_EXTRA" >>"$conf"
	fi
	LAST_LOG=$L/$(basename "$conf").init
	PGTIMEFS_CONFIG=$conf "$PGT" init >"$LAST_LOG" 2>&1
}
