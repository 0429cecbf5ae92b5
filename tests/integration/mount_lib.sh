# mount_lib.sh: helpers for the FUSE mount tests (sourced after lib.sh, not run).
# Every mount made here is run in the foreground (-f) with its stderr in $T/mount-NAME.log, so
# that sanitizer reports of the mount process are seen; a cleanup hook unmounts it lazily and
# kills it by its pid, so a failing test leaves no mount and no process behind.

# the test cannot run here: say why and exit 77
need_fuse() {
	[ "$(id -u)" = 0 ] || skip "needs root (drop_caches, runuser, files owned by other users)"
	[ -c /dev/fuse ] || skip "/dev/fuse is missing (load the fuse module, or pass the device to the container)"
	command -v fusermount3 >/dev/null || skip "fusermount3 is missing (install fuse3)"
	command -v mountpoint >/dev/null || skip "mountpoint (util-linux) is missing"
	(exec 3<>/dev/fuse) 2>/dev/null || skip "/dev/fuse cannot be opened here"
	# nobody must be able to walk to the mountpoints under $T (the permission checks)
	chmod 0711 "$T"
}

# alive PID: the process exists and is not a zombie
alive() {
	local s
	s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$s" ] && [ "$s" != Z ]
}

# wait_gone PID SECONDS: waits until PID has exited; false if it is still there
wait_gone() {
	local pid=$1 i n=$(($2 * 10))
	for ((i = 0; i < n; i++)); do
		alive "$pid" || return 0
		sleep 0.1
	done
	! alive "$pid"
}

# unmount_hard MNT PID: the cleanup path; never fails
unmount_hard() {
	fusermount3 -u -z "$1" 2>/dev/null || umount -l "$1" 2>/dev/null || true
	wait_gone "$2" 5 || kill -9 "$2" 2>/dev/null || true
}

# mounted DIR: something is mounted on DIR (from mountinfo: also true for a dead FUSE mount,
# where `mountpoint` cannot stat the directory)
mounted() {
	local d
	d=$(realpath -m "$1")
	awk -v m="$d" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo
}

# mount_pid MNT: the pid of the `pgtimefs mount MNT [OPTIONS...]` process, if any
mount_pid() {
	local p want c
	want=$(printf '%s\n' "$PGT" mount "$1")
	for p in /proc/[0-9]*; do
		c=$(tr '\0' '\n' <"$p/cmdline" 2>/dev/null) || continue
		case $c in "$want" | "$want"$'\n'*) echo "${p#/proc/}" && return 0 ;; esac
	done
	return 1
}

# late_fail MSG: a failed check after which the test can go on; the test still fails at its end
# (finish), so that one bug does not hide the checks after it
LATE=()
late_fail() {
	echo "FAIL (going on): $*" >&2
	LATE+=("$*")
}
# ok: as lib.sh's, but "not ok" when a late_fail came since the last ok
LATE_SEEN=0
ok() {
	if [ ${#LATE[@]} -gt $LATE_SEEN ]; then
		LATE_SEEN=${#LATE[@]}
		echo "not ok - $*"
	else
		CHECKS=$((CHECKS + 1))
		echo "ok $CHECKS - $*"
	fi
}
finish() {
	check_logs
	if [ ${#LATE[@]} -gt 0 ]; then
		printf 'FAIL: %s\n' "${LATE[@]}" >&2
		echo "$CHECKS passed, ${#LATE[@]} failed"
		exit 1
	fi
	echo "$CHECKS passed, 0 failed"
}

MLOGS=()
# mount_fg NAME MNT [ARGS...]: mounts in the foreground (as a job of this shell) and waits until
# the mount answers; the mount process's pid is left in MPID
mount_fg() {
	local name=$1 mnt=$2 i
	shift 2
	local log=$T/mount-$name.log
	! mounted "$mnt" || fail "mount $name: $mnt is mounted already"
	# a job of a non-interactive shell starts with SIGINT ignored, and libfuse keeps it so
	env --default-signal=INT "$PGT" mount "$mnt" -f "$@" 2>"$log" &
	MPID=$!
	MLOGS+=("$log")
	cleanup_hooks+=("unmount_hard '$mnt' $MPID")
	for ((i = 0; i < 100; i++)); do
		if mountpoint -q "$mnt" 2>/dev/null && timeout 20 stat "$mnt" >/dev/null 2>&1; then
			return 0
		fi
		alive "$MPID" || { cat "$log" >&2; fail "mount $name: the process exited before mounting"; }
		sleep 0.1
	done
	cat "$log" >&2
	fail "mount $name: $mnt not mounted after 10 s"
}

# sanitizer reports of any mount process so far fail the test
# sanitizer reports of any mount process so far fail the test (at its end, so that the checks
# after go on)
SANITIZER_RE='ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:'
declare -A REPORTED=()
check_logs() {
	local f
	for f in "${MLOGS[@]}" "$T"/asan-bg* "$T"/ubsan-bg*; do
		[ -e "$f" ] && [ -z "${REPORTED[$f]:-}" ] || continue
		if grep -qE "$SANITIZER_RE" "$f"; then
			REPORTED[$f]=1
			cat "$f" >&2
			late_fail "sanitizer report in $(basename "$f") (above)"
		fi
	done
}

# stop_mount MNT PID: fusermount3 -u; the process must exit 0 within 10 s and leave no mount
stop_mount() {
	local mnt=$1 pid=$2 rc=0
	timeout 20 fusermount3 -u "$mnt" || fail "fusermount3 -u $mnt failed"
	wait_gone "$pid" 10 || fail "mount process $pid still runs 10 s after fusermount3 -u"
	wait "$pid" || rc=$?
	[ "$rc" = 0 ] || { cat "${MLOGS[-1]}" >&2; late_fail "mount process $pid exited $rc after fusermount3 -u (stderr of the last mount above)"; }
	! mounted "$mnt" || fail "$mnt is still mounted after fusermount3 -u"
	check_logs
}

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches || fail "cannot drop the page cache"
}

# tree_sig DIR: one line per path (type, mode, owner, size, mtime in ns, link target) and the
# sha256 of every regular file; directory sizes differ between filesystems and are left out
tree_sig() {
	(cd "$1" && find . -print0 | LC_ALL=C sort -z | timeout 120 xargs -0 stat -c '%n|%F|%a|%u|%g|%s|%y|%N') |
		awk -F'|' 'BEGIN { OFS = "|" } $2 == "directory" { $6 = "-" } { print }'
	(cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | timeout 120 xargs -0 -r sha256sum)
}

# same_tree WHAT A B: tree_sig of A and B are equal
same_tree() {
	tree_sig "$2" >"$T/sig.a" || fail "$1: tree_sig $2 failed"
	tree_sig "$3" >"$T/sig.b" || fail "$1: tree_sig $3 failed"
	[ "$(wc -l <"$T/sig.a")" -gt 10 ] || fail "$1: only $(wc -l <"$T/sig.a") lines for $2"
	diff "$T/sig.a" "$T/sig.b" >&2 || fail "$1: $2 and $3 differ (above: < $2, > $3)"
}

# diff_tree WHAT A B: diff -r --no-dereference finds no difference but the fifos (diff cannot
# compare those), and the fifos are fifos on both sides
diff_tree() {
	local rc=0 nf
	LC_ALL=C timeout 120 diff -r --no-dereference "$2" "$3" >"$T/diff.out" 2>&1 || rc=$?
	[ "$rc" -le 1 ] || { cat "$T/diff.out" >&2; fail "$1: diff -r exited $rc"; }
	if grep -vE '^File .* is a fifo while file .* is a fifo$' "$T/diff.out" >&2; then
		fail "$1: diff -r $2 $3 finds differences (above)"
	fi
	nf=$(cd "$2" && find . -type p | wc -l)
	[ "$(grep -c 'is a fifo while' "$T/diff.out")" = "$nf" ] || fail "$1: $nf fifos in $2, diff saw $(grep -c 'is a fifo while' "$T/diff.out")"
	while IFS= read -r p; do
		[ "$(timeout 20 stat -c %F "$3/$p")" = fifo ] || fail "$1: $3/$p is not a fifo"
	done < <(cd "$2" && find . -type p)
}
