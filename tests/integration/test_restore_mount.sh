#!/usr/bin/env bash
# pgtimefs restore reading through a real FUSE mount. A fixture view's directory (with a large
# sparse file added) is snapshotted (pgtimefs snapshot) and MOUNT/C/at/T/<node> is a symlink
# into the mounted snapshot (test_pitr covers the mount's own at/ view end to end): the copy reads every byte, hole (SEEK_DATA/SEEK_HOLE), mode and
# mtime through FUSE. Checks: the restored tree equals the view (bytes, modes, mtimes; the
# configuration files excepted), a 64 MiB sparse file stays sparse, the node starts and has
# the origin's rows; a dead mount (its process killed) gives the clear ENOTCONN error.
# Prints the restore's copy time against `cp -a` from the same mount.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mount_lib.sh"
need_fuse
. "$(dirname "$0")/pglib.sh"
. "$(dirname "$0")/restore_lib.sh"
NODES=(coord)

origin coord 20000
views
restore_json rp1
V=$MNT/$C/at/$TV/coord
# a sparse file (PostgreSQL ignores it): 64 MiB with 8 KiB of data in the middle
truncate -s 64M "$V/base/sparse-probe"
dd if=/dev/urandom of="$V/base/sparse-probe" bs=8192 seek=4096 count=1 conv=notrunc status=none
chown -R postgres:postgres "$V"
sleep 1.1 # files newer than a snapshot's start are re-read (racy-timestamp rule)
pgt init >/dev/null
pgt snapshot $C coord "$V" >/dev/null
S=$(pgt --json list $C | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"][-1]["snapshot"])')
F=$T/fuse
mkdir "$F"
mount_fg main "$F"
# the fixture root seen through the mount: restore.json and a symlink per node
VIA=$T/via
mkdir -p "$VIA/$C/at/$TV"
cp "$MNT/$C/at/$TV/restore.json" "$VIA/$C/at/$TV/"
ln -s "$F/$C/$S/coord" "$VIA/$C/at/$TV/coord"
ok "view of $(du -sh --apparent-size "$V" | cut -f1) snapshotted as $C/$S and mounted"

# --- the copy through FUSE: equal to the view but for the files a restore rewrites
drop_caches
R=$T/restored
t0=$(date +%s%N)
pgt restore --from "$VIA" --cluster $C --time $TV --target "$R" --socket-dir "$SOCK" >"$T/out" 2>"$T/err" ||
	{ cat "$T/err" >&2; fail "restore through the mount"; }
t1=$(date +%s%N)
drop_caches
t2=$(date +%s%N)
cp -a "$F/$C/$S/coord" "$T/cp-a"
sync -f "$T/cp-a"
t3=$(date +%s%N)
echo "# copy from the mount, $(du -sh --apparent-size "$V" | cut -f1), cold cache: restore (copy, configure, fsync) $(((t1 - t0) / 1000000)) ms; cp -a + sync $(((t3 - t2) / 1000000)) ms"
for f in postgresql.conf postgresql.auto.conf pg_hba.conf pg_ident.conf; do
	rm -f "$T/cp-a/$f" "$R/coord/$f"
done
rm -rf "$T/cp-a"
(cd "$V" && rm -f postgresql.conf postgresql.auto.conf pg_hba.conf pg_ident.conf)
# the view had the owner postgres everywhere, as the restore gives it; the restore rewrote
# recovery.signal and changed the top and global/ directories (markers, pg_control's rename)
rewritten='^(\.|\./global|\./recovery\.signal)\|'
tree_sig "$V" | grep -vE "$rewritten" >"$T/sig.a"
tree_sig "$R/coord" | grep -vE "$rewritten" >"$T/sig.b"
[ "$(wc -l <"$T/sig.a")" -gt 1000 ] || fail "only $(wc -l <"$T/sig.a") lines of tree signature"
diff "$T/sig.a" "$T/sig.b" >&2 || fail "the restored tree differs from the view (above: < view, > restored)"
blocks=$(stat -c %b "$R/coord/base/sparse-probe")
[ "$blocks" -le 256 ] || fail "the sparse file takes $blocks blocks after the restore"
ok "restored tree = the view (bytes, modes, owners, mtimes); the 64 MiB sparse file takes $blocks blocks"

# --- it starts, with the origin's rows (the configuration files removed above: restore again)
R2=$T/restored2
pgt restore --from "$VIA" --cluster $C --time $TV --target "$R2" --socket-dir "$SOCK" --start --port "$(free_port 4)" >"$T/out" 2>"$T/err" ||
	{ cat "$T/err" "$R2"/*.log >&2; fail "restore --start through the mount"; }
cleanup_hooks+=("stop_restored $R2")
got=$(rsql "$(restored_port coord "$R2")" "SELECT count(*) FROM t")
[ "$got" = "${ROWS[coord]}" ] || fail "restored node has $got rows, the origin ${ROWS[coord]}"
stop_restored "$R2"
ok "restore --start through the mount: promoted with the origin's ${ROWS[coord]} rows"

# --- a dead mount: ENOTCONN, said plainly
kill -9 "$MPID"
wait_gone "$MPID" 5 || fail "the mount process did not die"
expect_fail "dead mount" 1 pgt restore --from "$F" --cluster $C --time $TV --target "$T/r-dead"
cat "$T/err"
err_has "is dead"
err_has "fusermount3 -u"
fusermount3 -u -z "$F" 2>/dev/null || umount -l "$F" 2>/dev/null || true
ok "a dead mount: the error says so and how to remount"
finish
