#!/usr/bin/env bash
# The FUSE mount under change and trouble: snapshots taken and deleted while mounted, unmount
# while a copy runs (SIGTERM, fusermount3 -u -z), SIGINT and SIGHUP, a killed mount, a deleted
# zone, and the mount's errors (issue 3, item 4).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mount_lib.sh"
need_fuse
command -v unshare >/dev/null || skip "unshare (util-linux) is missing"

snap_of() { pgt --json list "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"][-1]["snapshot"])'; }
# the snapshots and latest (the at/ and wal/ views are left out)
listing() { timeout 20 ls "$M/prod" 2>&1 | grep -vxE 'at|wal' | tr '\n' ' '; }
# within SECONDS COND...: polls COND every 0.1 s; prints the milliseconds it took; false on timeout
within() {
	local secs=$1 t0 i
	shift
	t0=$(date +%s%N)
	for ((i = 0; i <= secs * 10; i++)); do
		if "$@"; then
			echo $((($(date +%s%N) - t0) / 1000000))
			return 0
		fi
		sleep 0.1
	done
	return 1
}

make_tree "$T/data" 2
mkdir "$T/big"
head -c 256M /dev/urandom >"$T/big/large"
sleep 1.1 # files newer than a snapshot's start are always re-read (racy-timestamp rule)
pgt init >/dev/null
pgt snapshot prod node1 "$T/data" >/dev/null
pgt snapshot big n1 "$T/big" >/dev/null
S1=$(snap_of prod)
M=$T/mnt
mkdir "$M"

# --- 10. errors, before anything is mounted
rc=0
LC_ALL=C timeout 20 "$PGT" mount "$T/nope" -f >"$T/out" 2>"$T/err" || rc=$?
[ $rc = 1 ] || [ $rc = 2 ] || { cat "$T/err" >&2; fail "mount on a missing mountpoint: exit $rc"; }
err_has "$T/nope"
err_has "does not exist"
: >"$T/a-file"
expect_fail "mountpoint is a file" 2 timeout 20 "$PGT" mount "$T/a-file" -f
err_has "not a directory"
expect_fail "-o rw" 2 timeout 20 "$PGT" mount "$M" -f -o rw
err_has "read-only"
# libfuse reads backslash escapes where the list was split before it (r\w would be rw), and a
# list cut short could drop allow_other or a digit: both refused
expect_fail "-o r\\w" 2 timeout 20 "$PGT" mount "$M" -f -o 'r\w'
err_has "backslash"
expect_fail "-o with 2000 characters" 2 timeout 20 "$PGT" mount "$M" -f -o "fsname=$(head -c 2000 /dev/zero | tr '\0' a),allow_other"
err_has "too long"
! mounted "$M" || fail "a refused mount left a mount"
# over the state directory, a directory above it, or a zone: the mount would read through
# itself and hang (and every wal-push with it)
expect_fail "mount on the state directory" 2 timeout 20 "$PGT" mount "$T/state" -f
err_has "would hide the state directory"
err_has "HINT"
expect_fail "mount on the directory above the state directory" 2 timeout 20 "$PGT" mount "$T" -f
err_has "would hide"
expect_fail "mount on zone 2" 2 timeout 20 "$PGT" mount "$Z2" -f
err_has "would hide zone 2"
for d in "$T/state" "$T" "$Z2"; do ! mounted "$d" || fail "a refused mount left a mount on $d"; done
ok "missing mountpoint (exit $rc, named), a file as mountpoint, -o rw, the state directory, a directory above it, a zone: clear errors, nothing mounted"

for mode in -f ""; do
	rc=0
	PGTIMEFS_PASSPHRASE=wrong timeout 60 "$PGT" mount "$M" $mode >"$T/out" 2>"$T/err" || rc=$?
	[ $rc = 1 ] || { cat "$T/err" >&2; fail "wrong passphrase (mount $mode): exit $rc, expected 1"; }
	err_has "wrong passphrase"
	! mounted "$M" || { fusermount3 -u -z "$M"; fail "wrong passphrase (mount $mode) left a mount"; }
	! mount_pid "$M" >/dev/null || fail "wrong passphrase (mount $mode) left a process"
done
ok "wrong passphrase (foreground and background): exit 1, clear error, no mount, no process"

rc=0
LC_ALL=C timeout 60 unshare -m bash -c 'mount -t tmpfs none /dev && exec "$@"' _ "$PGT" mount "$M" -f >"$T/out" 2>"$T/err" || rc=$?
[ $rc = 1 ] || { cat "$T/err" >&2; fail "mount without /dev/fuse: exit $rc, expected 1"; }
err_has "/dev/fuse"
err_has "absent"
! mounted "$M" || fail "mount without /dev/fuse left a mount"
ok "no /dev/fuse (private mount namespace): exit 1, names /dev/fuse"

# --- busy
mount_fg main "$M"
rc=0
LC_ALL=C timeout 20 "$PGT" mount "$M" -f >"$T/out" 2>"$T/err" || rc=$?
[ $rc = 1 ] || { cat "$T/err" >&2; fail "mount on a busy mountpoint: exit $rc, expected 1"; }
err_has "busy"
[ "$(awk -v m="$M" '$5 == m' /proc/self/mountinfo | wc -l)" = 1 ] || fail "a second mount was stacked on $M"
timeout 60 cmp "$M/prod/$S1/node1/random.bin" "$T/data/random.bin" || fail "the first mount no longer serves"
ok "mountpoint already mounted: exit 1, 'busy', the first mount serves on"

# --- 6. a snapshot taken while mounted appears; deleted ones vanish
has_s() { [[ " $(listing) " == *" $1 "* ]]; }
latest_is() { [ "$(timeout 20 readlink "$M/prod/latest")" = "$1" ]; }
appears() { has_s "$1" && latest_is "$1"; }
gone() { ! has_s "$1" && ! timeout 20 stat "$M/prod/$1" >/dev/null 2>&1; }
[ "$(listing)" = "$S1 latest " ] || fail "prod lists '$(listing)'"
echo "new in snapshot 2" >"$T/data/new-in-s2"
pgt snapshot prod node1 "$T/data" >/dev/null
S2=$(snap_of prod)
[ "$S2" != "$S1" ] || fail "no new snapshot"
ms=$(within 2 appears "$S2") || fail "snapshot $S2 not listed with latest -> it within 2 s (prod lists '$(listing)', latest -> $(readlink "$M/prod/latest"))"
[ "$(timeout 20 cat "$M/prod/latest/node1/new-in-s2")" = "new in snapshot 2" ] || fail "latest/node1/new-in-s2 does not read"
diff_tree "snapshot taken while mounted" "$T/data" "$M/prod/$S2/node1"
ok "a snapshot taken while mounted is listed, and latest points to it, after $ms ms; its tree matches"

# held_reader FILE ORIGINAL STATE HEAD: reads HEAD bytes of FILE, says STATE.ready, waits for
# STATE.go, reads on to the end (then fstat and SEEK_END), and writes to STATE.result "same"
# (the bytes of ORIGINAL), "DIFFERENT bytes" or "errno N text". Run it with &: it execs, so $!
# is the reader's own timeout (the cleanup's kill reaches it)
held_reader() {
	exec timeout 120 python3 - "$@" <<'PY'
import os, sys, time
p, src, st, want = sys.argv[1:]
f = open(p, "rb", buffering=0)
head = b""
while len(head) < int(want):
    head += f.read(min(1 << 20, int(want) - len(head)))
open(st + ".ready", "w").close()
while not os.path.exists(st + ".go"):
    time.sleep(0.05)
try:
    rest = []
    while True:
        b = f.read(1 << 20)
        if not b:
            break
        rest.append(b)
    os.fstat(f.fileno())
    f.seek(0, os.SEEK_END)
    with open(src, "rb") as s:
        res = "same" if head + b"".join(rest) == s.read() else "DIFFERENT bytes"
except OSError as e:
    res = "errno %d %s" % (e.errno, e.strerror)
open(st + ".result", "w").write(res)
PY
}
# held_result WHAT: the reader's result, which must be the same bytes or EIO
held_result() {
	within 60 test -e "$T/held.result" >/dev/null || fail "the held-open reader hangs after the delete ($1)"
	res=$(cat "$T/held.result")
	case $res in
	same | "errno 5 "*) ;;
	*) fail "reading on from $1: '$res' (expected the same bytes, or EIO)" ;;
	esac
}

# a file of S1 held open while S1 is deleted: keeps reading or fails with EIO
drop_caches
rm -f "$T/held".*
held_reader "$M/prod/$S1/node1/random.bin" "$T/data/random.bin" "$T/held" 65536 &
HPID=$!
cleanup_hooks+=("kill $HPID 2>/dev/null")
within 20 test -e "$T/held.ready" >/dev/null || fail "the held-open reader did not start"
pgt delete prod "$S1" >/dev/null || fail "delete $S1 failed"
ms=$(within 2 gone "$S1") || fail "deleted snapshot $S1 still there after 2 s (prod lists '$(listing)')"
touch "$T/held.go"
held_result "a file of a deleted snapshot"
wait $HPID || fail "the held-open reader failed"
alive "$MPID" || fail "the mount process died after a snapshot was deleted under an open file"
diff_tree "the other snapshot after a delete" "$T/data" "$M/prod/$S2/node1"
ok "a deleted snapshot vanishes after $ms ms; a file held open from it reads on ($res); the mount serves on"

# the same for a file read as a stream (48 MiB in order: the mount drops the pages behind the
# reader, which makes the kernel ask for its attributes again) and a directory listing held
# open: the file reads on or fails with EIO, never ENOENT; the listing gives every name or an
# error, never a short listing that looks complete
mkdir -p "$T/stream/many"
head -c 48M /dev/urandom >"$T/stream/big"
for i in $(seq 3000); do echo "$i" >"$T/stream/many/f$i"; done
pgt snapshot stream n1 "$T/stream" >/dev/null
SS=$(snap_of stream)
within 5 test -d "$M/stream/$SS/n1/many" >/dev/null || fail "snapshot $SS of cluster stream not listed"
drop_caches
rm -f "$T/held".* "$T/dir".*
held_reader "$M/stream/$SS/n1/big" "$T/stream/big" "$T/held" $((40 << 20)) &
HPID=$!
timeout 120 python3 - "$M/stream/$SS/n1/many" "$T/dir" <<'PY' &
import os, sys, time
p, st = sys.argv[1:]
it = os.scandir(p)
names = [next(it).name for _ in range(100)]
open(st + ".ready", "w").close()
while not os.path.exists(st + ".go"):
    time.sleep(0.05)
try:
    names += [e.name for e in it]
    res = "all" if sorted(names) == sorted("f%d" % i for i in range(1, 3001)) else "%d of 3000 names, no error" % len(names)
except OSError as e:
    res = "errno %d %s" % (e.errno, e.strerror)
open(st + ".result", "w").write(res)
PY
DPID=$!
cleanup_hooks+=("kill $HPID $DPID 2>/dev/null")
within 30 test -e "$T/held.ready" >/dev/null || fail "the streaming reader did not start"
within 30 test -e "$T/dir.ready" >/dev/null || fail "the lister did not start"
sleep 1 # the watcher sends the drops behind the reader
pgt delete stream "$SS" >/dev/null || fail "delete $SS failed"
within 5 bash -c "! test -e '$M/stream/$SS'" >/dev/null || fail "deleted snapshot $SS of cluster stream still there after 5 s"
sleep 1.5 # past the attributes' timeout of a file that is not immutable
touch "$T/held.go" "$T/dir.go"
held_result "a file streamed out of a deleted snapshot"
within 60 test -e "$T/dir.result" >/dev/null || fail "the lister hangs after the delete"
dres=$(cat "$T/dir.result")
case $dres in
all | "errno 5 "*) ;;
*) fail "listing on a directory of a deleted snapshot: '$dres' (expected every name, or EIO)" ;;
esac
wait $HPID || fail "the streaming reader failed"
wait $DPID || fail "the lister failed"
alive "$MPID" || fail "the mount process died"
ok "a file streamed from a deleted snapshot reads on ($res, also fstat and SEEK_END); a listing held open across the delete: $dres"

# deleting the newest: latest points back
dmt=$(stat -c %y "$T/data")
echo "new in snapshot 3" >"$T/data/new-in-s3"
pgt snapshot prod node1 "$T/data" >/dev/null
S3=$(snap_of prod)
within 2 appears "$S3" >/dev/null || fail "snapshot $S3 not listed with latest -> it within 2 s"
pgt delete prod "$S3" >/dev/null || fail "delete $S3 failed"
ms=$(within 2 eval 'gone "$S3" && latest_is "$S2"') || fail "after deleting the newest $S3: prod lists '$(listing)', latest -> $(readlink "$M/prod/latest") (expected $S2) after 2 s"
[ "$(listing)" = "$S2 latest " ] || fail "prod lists '$(listing)', expected '$S2 latest '"
rm "$T/data/new-in-s3"
touch -d "$dmt" "$T/data" # the tree of $S2 again
[ ! -e "$M/prod/latest/node1/new-in-s3" ] || fail "latest/node1 still shows a file of the deleted snapshot"
ok "deleting the newest snapshot: latest points back to $S2 after $ms ms"

# a listing read a few entries at a time (each getdents64 stops inside a reply, so the next one
# resumes at an offset the mount did not end its last reply at) while a snapshot before the
# reading position is deleted: every other entry once, none skipped (the mount goes on after
# the name at that offset, not after as many entries counted again from the start)
mkdir "$T/many"
for i in $(seq 12); do
	echo "$i" >"$T/many/f$i"
	pgt snapshot many n1 "$T/many" >/dev/null
done
mapfile -t MANY < <(pgt --json list many | python3 -c 'import json,sys; [print(s["snapshot"]) for s in json.load(sys.stdin)["snapshots"]]')
[ ${#MANY[@]} = 12 ] || fail "cluster many has ${#MANY[@]} snapshots, expected 12"
within 2 test -d "$M/many/${MANY[11]}" >/dev/null || fail "cluster many is not in the mount after 2 s"
# $T/lister.py DIR STATE BUFSIZE STOP TARGET (run in the background): reads DIR with getdents64 into
# a BUFSIZE-byte buffer (a few entries a call, each call resuming inside the mount's last
# reply) until STOP holds (plus2: TARGET and two entries after it were read; last: the last
# entry read is TARGET), then touches STATE.ready, waits for STATE.go, reads to the end and
# writes every name read to STATE.names; prints the number of calls
cat >"$T/lister.py" <<'PY'
import ctypes, os, platform, sys, time
path, st, bufsize, stop, target = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
libc = ctypes.CDLL(None, use_errno=True)
SYS_getdents64 = {"x86_64": 217, "aarch64": 61}.get(platform.machine())
if SYS_getdents64 is None:
    sys.exit("no getdents64 syscall number known for " + platform.machine())
fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
buf = ctypes.create_string_buffer(bufsize)
def batch():
    n = libc.syscall(SYS_getdents64, fd, buf, len(buf))
    if n < 0:
        raise OSError(ctypes.get_errno(), "getdents64")
    raw, pos, names = buf.raw[:n], 0, []
    while pos < n:
        reclen = int.from_bytes(raw[pos + 16:pos + 18], "little")
        names.append(raw[pos + 19:pos + reclen].split(b"\0", 1)[0].decode())
        pos += reclen
    return names
def stopped(names):
    if stop == "plus2":
        return target in names and len(names) >= names.index(target) + 3
    return bool(names) and names[-1] == target
names, calls = [], 0
while not stopped(names):
    b = batch()
    calls += 1
    if not b:
        sys.exit("the listing ended before the reading position was reached: %r" % names)
    names += b
open(st + ".ready", "w").close()
while not os.path.exists(st + ".go"):
    time.sleep(0.05)
while True:
    b = batch()
    calls += 1
    if not b:
        break
    names += b
open(st + ".names", "w").write("\n".join(names) + "\n")
print(calls)
PY
# list_across_delete CLUSTER BUFSIZE STOP SNAPSHOT: $T/lister.py reads CLUSTER's directory up to
# STOP, SNAPSHOT is deleted, and once a fresh listing no longer shows it the lister reads on
list_across_delete() {
	local cl=$1 size=$2 stop=$3 snap=$4 rpid
	rm -f "$T/rd.ready" "$T/rd.go" "$T/rd.names"
	timeout 60 python3 "$T/lister.py" "$M/$cl" "$T/rd" "$size" "$stop" "$snap" >"$T/rd.calls" &
	rpid=$!
	cleanup_hooks+=("kill $rpid 2>/dev/null")
	within 20 test -e "$T/rd.ready" >/dev/null || fail "the lister did not reach its position in $cl"
	pgt delete "$cl" "$snap" >/dev/null || fail "delete $snap failed"
	within 5 eval '! timeout 20 ls "$M/$cl" | grep -qxF -- "$snap"' >/dev/null ||
		fail "deleted snapshot $snap still listed in $M/$cl after 5 s"
	touch "$T/rd.go"
	wait $rpid || fail "the lister failed"
}
list_across_delete many 100 plus2 "${MANY[0]}" # two or three entries a call
calls=$(cat "$T/rd.calls")
for n in . .. latest at wal "${MANY[@]}"; do
	c=$(grep -cxF -- "$n" "$T/rd.names") || true
	[ "$c" = 1 ] || fail "a listing read in $calls getdents64 calls across a delete shows $n $c times (expected once): $(tr '\n' ' ' <"$T/rd.names")"
done
[ "$(wc -l <"$T/rd.names")" = 17 ] || fail "the listing has $(wc -l <"$T/rd.names") entries, expected 17: $(tr '\n' ' ' <"$T/rd.names")"
ok "a listing read in $calls small getdents64 calls, with a snapshot before its position deleted meanwhile: every entry once, none skipped"

# the same, resumed right after the very snapshot deleted meanwhile, one that shares its second
# with the next (a short name "...:58Z" then "...:58.310548Z": names do not sort by time): the
# listing goes on by the deleted one's time, nothing skipped or repeated
mkdir "$T/burst"
target=""
for i in $(seq 40); do
	echo "$i" >"$T/burst/f"
	pgt snapshot burst n1 "$T/burst" >/dev/null
	if [ "$i" -ge 4 ]; then
		mapfile -t B < <(pgt --json list burst | python3 -c 'import json,sys; [print(s["snapshot"]) for s in json.load(sys.stdin)["snapshots"]]')
		for ((j = 0; j + 1 < ${#B[@]}; j++)); do
			case ${B[j]} in *.*) continue ;; esac
			if [ "${B[j + 1]%%.*}Z" = "${B[j]}" ] && [ $((j + 2)) -lt ${#B[@]} ]; then target=${B[j]}; break; fi
		done
	fi
	[ -z "$target" ] || break
done
[ -n "$target" ] || fail "40 snapshots gave no two in one second: cannot test a listing resumed among them"
within 2 test -d "$M/burst/${B[${#B[@]} - 1]}" >/dev/null || fail "cluster burst is not in the mount after 2 s"
list_across_delete burst 48 last "$target" # one snapshot's entry a call (two need 80 bytes)
for n in . .. latest at wal "${B[@]}"; do
	c=$(grep -cxF -- "$n" "$T/rd.names") || true
	[ "$c" = 1 ] || fail "a listing resumed after deleted $target shows $n $c times (expected once): $(tr '\n' ' ' <"$T/rd.names")"
done
ok "a listing resumed right after a snapshot deleted meanwhile, among snapshots of one second: every entry once"

# --- 9. unmount while a cp of a large file runs
# cp writes into a pipe read slowly (1 MiB every 20 ms until $T/slow.fast exists), so it surely
# still runs when the mount goes, with little of the file in the page cache ahead of it
L=$M/big/latest/n1/large
slow_cp_start() {
	rm -f "$T/slow".* "$T/cp".*
	drop_caches
	(
		set +e +o pipefail
		timeout 120 cp "$L" /dev/stdout 2>"$T/cp.err" | timeout 120 python3 -c '
import hashlib, os, sys, time
st = sys.argv[1]
h, n = hashlib.sha256(), 0
while True:
    b = sys.stdin.buffer.read(1 << 20)
    if not b:
        break
    h.update(b)
    n += len(b)
    open(st + ".progress", "w").write(str(n))
    if not os.path.exists(st + ".fast"):
        time.sleep(0.02)
open(st + ".result", "w").write("%d %s\n" % (n, h.hexdigest()))
' "$T/slow"
		echo "${PIPESTATUS[0]}" >"$T/cp.rc"
	) &
	CPJOB=$!
	cleanup_hooks+=("kill $CPJOB 2>/dev/null")
	within 30 slow_at >/dev/null || fail "the copy did not get 4 MiB in 30 s"
}
slow_at() {
	local n
	n=$(cat "$T/slow.progress" 2>/dev/null) || true
	[ "${n:-0}" -ge $((4 << 20)) ]
}
# slow_cp_end: waits for cp (15 s at most); sets cprc, and got and sum (bytes through, their sha256)
slow_cp_end() {
	within 15 test -e "$T/cp.rc" >/dev/null || fail "cp hangs after the unmount"
	wait $CPJOB || true
	cprc=$(cat "$T/cp.rc")
	[ "$cprc" != 124 ] || fail "cp hung until its timeout"
	read -r got sum <"$T/slow.result"
	[ "$(head -c "$got" "$T/big/large" | sha256sum | cut -d' ' -f1)" = "$sum" ] || fail "the $got bytes cp gave are wrong"
}

# SIGTERM: the mount ends at once, cp fails, nothing is left mounted
slow_cp_start
kill -TERM "$MPID"
wait_gone "$MPID" 10 || fail "the mount process still runs 10 s after SIGTERM during a copy"
rc=0
wait "$MPID" || rc=$?
# a clean end: exit 0 (before 4ac983b it was 1, "the FUSE session ended with an error")
[ $rc = 0 ] || { cat "${MLOGS[-1]}" >&2; late_fail "the mount process exited $rc after SIGTERM (its stderr above)"; }
# no sanitizer report: handles the kernel never released (the connection ended first) are freed
# at the end of the session (a leak LeakSanitizer found here once)
check_logs
! mounted "$M" || fail "a mount is left on $M after SIGTERM during a copy"
slow_cp_end
[ "$cprc" != 0 ] || fail "cp succeeded although the mount went away under it"
[ "$got" -lt $((256 << 20)) ] || fail "the whole file came through after the unmount"
mount_fg after-term "$M"
timeout 60 cmp "$L" "$T/big/large" || fail "the large file differs through a new mount after SIGTERM"
ok "SIGTERM while cp runs: the mount process exits (exit $rc), no mount left, cp fails ($(head -c 60 "$T/cp.err")) after $((got >> 20)) MiB of right bytes; a new mount reads the 256 MiB file right"

# fusermount3 -u -z: the mount leaves the namespace at once, cp finishes right, then the process ends
slow_cp_start
timeout 20 fusermount3 -u -z "$M" || fail "fusermount3 -u -z failed"
! mounted "$M" || fail "still mounted after fusermount3 -u -z"
touch "$T/slow.fast"
slow_cp_end
[ "$cprc" = 0 ] || fail "cp failed after a lazy unmount (exit $cprc: $(cat "$T/cp.err"))"
[ "$got" = $((256 << 20)) ] || fail "cp gave $got bytes after a lazy unmount"
wait_gone "$MPID" 10 || fail "the mount process still runs 10 s after the last file of a lazy unmount was closed"
rc=0
wait "$MPID" || rc=$?
[ $rc = 0 ] || { cat "${MLOGS[-1]}" >&2; late_fail "the mount process exited $rc after fusermount3 -u -z (its stderr above)"; }
# no sanitizer report here either (the same leak, fixed)
check_logs
mount_fg after-lazy "$M"
timeout 60 cmp "$L" "$T/big/large" || fail "the large file differs through a new mount after a lazy unmount"
stop_mount "$M" "$MPID"
ok "fusermount3 -u -z while cp runs: cp finishes with all 256 MiB right, the process exits $rc, a new mount works"

# SIGINT and SIGHUP end it cleanly too
for sig in INT HUP; do
	mount_fg "sig$sig" "$M"
	kill -$sig "$MPID"
	wait_gone "$MPID" 10 || fail "the mount process still runs 10 s after SIG$sig"
	rc=0
	wait "$MPID" || rc=$?
	[ $rc = 0 ] || { cat "${MLOGS[-1]}" >&2; late_fail "the mount process exited $rc after SIG$sig (its stderr above)"; }
	! mounted "$M" || fail "a mount is left on $M after SIG$sig"
done
check_logs
# SIGTERM before the session loop runs: the mount is up, and the process is held in its
# announcement (stderr is a FIFO whose buffer is full); no mount may be left behind
mkfifo "$T/full"
exec 7<>"$T/full"
head -c 65536 /dev/zero >&7
env --default-signal=INT "$PGT" mount "$M" -f 2>"$T/full" &
pid=$!
for ((j = 0; j < 200; j++)); do mounted "$M" && break; sleep 0.05; done
mounted "$M" || fail "the mount held in its announcement did not mount"
kill -TERM "$pid"
sleep 0.5
cat <&7 >/dev/null & # let it write again (a clean end may say something)
drainer=$!
wait_gone "$pid" 10 || fail "the mount process still runs 10 s after SIGTERM before its session loop"
{ wait "$pid"; } 2>/dev/null || true
kill "$drainer" 2>/dev/null || true
exec 7>&-
if mounted "$M"; then
	fusermount3 -u "$M" 2>/dev/null || umount -l "$M"
	fail "SIGTERM before the session loop left a mount on $M"
fi
ok "SIGINT and SIGHUP: exit 0, no mount left; SIGTERM before the session loop runs: no mount left"

# a killed mount leaves a dead mount: the next mount names it; fusermount3 -u clears it
mount_fg killed "$M"
kill -9 "$MPID"
{ wait "$MPID"; } 2>/dev/null || true
mounted "$M" || fail "no dead mount left after kill -9 (the kernel keeps it)"
# at once (the kernel may still answer stat from its cache: busy) and once stat sees the dead
# connection (ENOTCONN): a clear error, and the way out
rc=0
LC_ALL=C timeout 20 "$PGT" mount "$M" -f >"$T/out" 2>"$T/err" || rc=$?
[ $rc = 1 ] || { cat "$T/err" >&2; fail "mount on a just-killed mount: exit $rc, expected 1"; }
err_has "fusermount3 -u"
enotconn() { ! LC_ALL=C stat "$M" >/dev/null 2>"$T/stat.err" && grep -q "not connected" "$T/stat.err"; }
within 5 enotconn >/dev/null || fail "stat of the killed mount does not fail with ENOTCONN within 5 s: $(cat "$T/stat.err")"
rc=0
LC_ALL=C timeout 20 "$PGT" mount "$M" -f >"$T/out" 2>"$T/err" || rc=$?
[ $rc = 1 ] || { cat "$T/err" >&2; fail "mount on a dead mount: exit $rc, expected 1"; }
err_has "dead mount"
err_has "fusermount3 -u"
timeout 20 fusermount3 -u "$M" || fail "fusermount3 -u of the dead mount failed"
! mounted "$M" || fail "the dead mount is still there"
ok "after kill -9 of the mount: the next mount says 'dead mount' and how to clear it"

# --- a file an at/ view makes (postgresql.auto.conf, from the stored one) when no zone has the
# stored bytes: the open fails with EIO and a line in the log, as a read of any file does (the
# file is listed: ENOENT would be a lie)
mkdir "$T/conf"
echo "shared_buffers = '16MB'" >"$T/conf/postgresql.auto.conf"
pgt snapshot confs n1 "$T/conf" >/dev/null
SC=$(snap_of confs)
mount_fg synth "$M"
grep -q "shared_buffers" "$M/confs/at/$SC/n1/postgresql.auto.conf" || fail "at/$SC/n1/postgresql.auto.conf lacks the stored setting"
# each spelling of one time in at/ (the snapshot's name, its exact microsecond, the same with an
# offset) is a directory of its own: the kernel moves a directory known under two names, so a
# shell in one would find its working directory renamed to the other
read -r EXACT OFFSET < <(pgt --json list confs | python3 -c '
import datetime, json, sys
t = json.load(sys.stdin)["snapshots"][-1]["time_us"]
d = datetime.datetime.fromtimestamp(t // 1000000, datetime.timezone.utc).replace(microsecond=t % 1000000)
o = d.astimezone(datetime.timezone(datetime.timedelta(hours=1)))
print(d.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), o.strftime("%Y-%m-%dT%H:%M:%S.%f+01:00"))')
declare -A SEEN=()
for n in "$SC" "$EXACT" "$OFFSET"; do
	i=$(stat -c %i "$M/confs/at/$n") || fail "at/$n cannot be looked up"
	[ -z "${SEEN[$i]:-}" ] || fail "at/$n has the inode of at/${SEEN[$i]} ($i)"
	SEEN[$i]=$n
	cmp -s "$M/confs/at/$n/n1/postgresql.auto.conf" "$M/confs/at/$SC/n1/postgresql.auto.conf" ||
		fail "at/$n/n1/postgresql.auto.conf differs from at/$SC's"
done
cwd=$(cd "$M/confs/at/$SC/n1" && ls "$M/confs/at/$OFFSET/n1" >/dev/null && readlink /proc/self/cwd)
[ "$cwd" = "$M/confs/at/$SC/n1" ] || fail "a shell in at/$SC/n1 finds itself in $cwd after at/$OFFSET/n1 is looked up"
stop_mount "$M" "$MPID"
for z in "$Z1" "$Z2" "$Z3"; do mv "$z/packs" "$z/packs.away"; done
mount_fg synth-nopacks "$M"
ls "$M/confs/at/$SC/n1" | grep -qx postgresql.auto.conf || fail "postgresql.auto.conf not listed in at/$SC/n1"
rc=0
LC_ALL=C cat "$M/confs/at/$SC/n1/postgresql.auto.conf" >/dev/null 2>"$T/err" || rc=$?
[ "$rc" != 0 ] || fail "at/$SC/n1/postgresql.auto.conf read although no zone has its bytes"
err_has "Input/output error"
grep -q "open of inode" "${MLOGS[-1]}" || { cat "${MLOGS[-1]}" >&2; fail "the failed open is not in the mount's log"; }
stop_mount "$M" "$MPID"
for z in "$Z1" "$Z2" "$Z3"; do mv "$z/packs.away" "$z/packs"; done
ok "each spelling of a time in at/ is a directory of its own; a synthesized at/ file whose stored bytes no zone has: EIO and a log line, not ENOENT"

# --- 7. zone 1 deleted: every read comes from the other zones
mount_fg zone1 "$M"
timeout 60 ls "$M/prod/$S2/node1" >/dev/null || fail "listing before zone 1 goes"
rm -rf "$Z1"
drop_caches
diff_tree "read with zone 1 deleted" "$T/data" "$M/prod/$S2/node1"
timeout 60 cmp "$L" "$T/big/large" || fail "the large file differs with zone 1 deleted"
stop_mount "$M" "$MPID"
# the mount says so, once per pack (the reads go on from zone 2)
nfb=$(grep -c "^pgtimefs mount: zone 1: no good copy of a blob of pack [0-9a-f]\{16\} (.*); read from zone 2 instead" "${MLOGS[-1]}") ||
	{ cat "${MLOGS[-1]}" >&2; fail "the mount's log does not say zone 1 lost its packs"; }
npk=$(grep -o "pack [0-9a-f]\{16\}" "${MLOGS[-1]}" | sort -u | wc -l)
[ "$nfb" = "$npk" ] || fail "the mount logged $nfb zone fallbacks for $npk packs: one line per pack expected"
grep -q "check --read-data" "${MLOGS[-1]}" || fail "the fallback's log line does not say what to do"
ok "zone 1 deleted under the mount: every file and the 256 MiB file read right; the log names each pack read from zone 2 once ($npk)"
mount_fg zone1-fresh "$M" -o cache=1M
drop_caches
same_tree "fresh mount, cache=1M, zone 1 deleted" "$T/data" "$M/prod/$S2/node1"
diff_tree "fresh mount, cache=1M, zone 1 deleted" "$T/data" "$M/prod/$S2/node1"
timeout 60 cmp "$L" "$T/big/large" || fail "the large file differs through a fresh mount with zone 1 deleted"
stop_mount "$M" "$MPID"
ok "zone 1 deleted, fresh mount with -o cache=1M: checksums match, the 256 MiB file reads right"
finish
