#!/usr/bin/env bash
# A generated tree goes in and comes back byte for byte, with its metadata, across snapshots.
. "$(dirname "$0")/lib.sh"

make_tree "$T/data" 1
sleep 1.1 # files newer than a snapshot's start are always re-read (racy-timestamp rule)
pgt init >/dev/null
ok "init"
for z in "$Z1" "$Z2" "$Z3"; do
	[ -f "$z/config" ] && [ "$(ls "$z/keys" | wc -l)" = 1 ] || fail "zone $z lacks config or key"
done
ok "every zone has config and a key"
expect_fail "second init" 1 pgt init
err_has "already"
ok "init refuses an existing repository"

pgt snapshot prod node1 "$T/data" >/dev/null
S1=$(pgt --json list prod | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"][-1]["snapshot"])')
verify_cat "$T/data" "prod/$S1/node1"
ok "every file of snapshot 1 reads back byte for byte"

# metadata: ls --json against stat, for every entry
python3 - "$PGT" "$T/data" "prod/$S1/node1" <<'PY'
import json, os, stat, subprocess, sys
pgt, root, snap = sys.argv[1:]
def ls(path):
    return {e["name"]: e for e in json.loads(subprocess.check_output([pgt, "--json", "ls", path]))}
n = 0
for dirpath, dirs, files in os.walk(root):
    rel = os.path.relpath(dirpath, root)
    listing = ls(snap if rel == "." else snap + "/" + rel)
    names = sorted(dirs + files)
    assert sorted(listing) == names, (rel, sorted(listing), names)
    for name in names:
        st = os.lstat(os.path.join(dirpath, name))
        e = listing[name]
        assert e["mode"] == stat.S_IMODE(st.st_mode), (name, e["mode"], st.st_mode)
        assert e["uid"] == st.st_uid and e["gid"] == st.st_gid, name
        assert e["mtime_ns"] == st.st_mtime_ns, (name, e["mtime_ns"], st.st_mtime_ns)
        kind = {stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "symlink", stat.S_IFIFO: "fifo"}[stat.S_IFMT(st.st_mode)]
        assert e["type"] == kind, (name, e["type"], kind)
        if kind in ("file", "symlink"):
            assert e["size"] == st.st_size, (name, e["size"], st.st_size)
        if kind == "symlink":
            assert e["target"] == os.readlink(os.path.join(dirpath, name)), name
        n += 1
assert n > 50, n
print("compared", n, "entries")
PY
ok "mode, owner, size, mtime (ns), type and link targets match for every entry"

# the sparse file keeps its holes as holes in the catalog: stored bytes stay small
stored=$(pgt --json list prod | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"][-1]["stored_bytes"])')
[ "$stored" -lt $((12 * 1024 * 1024)) ] || fail "stored $stored bytes: holes were stored as data?"
ok "holes are not stored ($stored bytes stored per zone)"

# second snapshot after changes: both snapshots read back as they were
cp -a "$T/data" "$T/data1"
sleep 1.1
python3 - "$T/data/base/16384/16386" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(8192 * 7); f.write(b"X" * 8192)
PY
echo "appended" >>"$T/data/conf/postgresql.conf"
rm "$T/data/deep/a/f005"
echo new >"$T/data/deep/new-file"
out=$(pgt --json snapshot prod node1 "$T/data")
new=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["new_bytes"])')
reused=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["files_reused"])')
[ "$new" -lt 200000 ] || fail "second snapshot stored $new new bytes for a few small changes"
[ "$reused" -gt 40 ] || fail "only $reused unchanged files were reused"
ok "second snapshot stores only what changed ($new new bytes, $reused files reused unread)"
verify_cat "$T/data" "prod/latest/node1"
verify_cat "$T/data1" "prod/$S1/node1"
ok "both snapshots read back as they were"
pgt ls prod/latest/node1/deep/a/f005 >/dev/null 2>&1 && fail "deleted file still in the new snapshot"
pgt ls "prod/$S1/node1/deep/a/f005" >/dev/null || fail "deleted file missing from the old snapshot"
ok "a deleted file is gone from the new snapshot only"

# a second cluster and node; names in the same second stay unique
pgt snapshot other n1 "$T/data" >/dev/null
pgt snapshot other n1 "$T/data" >/dev/null
[ "$(pgt --json list other | python3 -c 'import json,sys; l=json.load(sys.stdin)["snapshots"]; print(len(set(s["snapshot"] for s in l)))')" = 2 ] || fail "snapshot names collide"
ok "snapshot names are unique"
pgt ls | grep -q ' other$' && pgt ls | grep -q ' prod$' || fail "root listing lacks clusters"
[ "$(pgt --json ls prod | python3 -c 'import json,sys; print([e for e in json.load(sys.stdin) if e["name"]=="latest"][0]["type"])')" = symlink ] || fail "latest is not a symlink"
ok "root lists clusters; latest is a symlink"

expect_fail "cat of a directory" 2 pgt cat prod/latest/node1/deep
expect_fail "cat of a missing path" 1 pgt cat prod/latest/node1/nope
err_has "no such file"
expect_fail "cat of a missing cluster" 1 pgt cat nope/latest/node1/PG_VERSION
err_has "'pgtimefs list' shows the clusters"
expect_fail "ls of a time spelled other than a snapshot's name" 1 pgt ls prod/2000-01-01T00:00:00+00:00
err_has "prod/at/TIME"
pgt ls prod/at >"$T/out" 2>"$T/err" || fail "ls prod/at failed"
[ ! -s "$T/out" ] || fail "ls prod/at listed something: $(head -c 200 "$T/out")"
err_has "pgtimefs ls prod/at/TIME"
ok "cat and ls refuse directories and missing paths clearly, with what to do; ls of at/ says how to name a time"

# names that are not text: ls writes control characters as \ooo, --json keeps every byte
mkdir "$T/odd"
printf a >"$T/odd/$(printf 'new\nline')"
printf b >"$T/odd/$(printf 'bad\377name')"
pgt snapshot odd n1 "$T/odd" >/dev/null
pgt ls odd/latest/n1 >"$T/ls-odd"
[ "$(wc -l <"$T/ls-odd")" = 2 ] || { cat "$T/ls-odd"; fail "a newline in a name split ls's rows"; }
grep -qF 'new\012line' "$T/ls-odd" || { cat "$T/ls-odd"; fail "ls does not write the newline as \\012"; }
pgt --json ls odd/latest/n1 | python3 -c 'import json, os, sys
names = sorted(os.fsencode(e["name"]) for e in json.load(sys.stdin))
assert names == [b"bad\xffname", b"new\nline"], names' || fail "--json ls does not give the names' bytes back"
# a reader that has read enough (`| head`) is no failure; a full disk is
head -c 4194304 /dev/urandom >"$T/odd-big"
mkdir "$T/odd2" && mv "$T/odd-big" "$T/odd2/big"
pgt snapshot odd n2 "$T/odd2" >/dev/null
(set -o pipefail; pgt cat odd/latest/n2/big | head -c 1 >/dev/null) || fail "cat into a pipe closed early exits non-zero"
if [ -w /dev/full ]; then
	rc=0
	pgt cat odd/latest/n2/big >/dev/full 2>"$T/err" || rc=$?
	[ "$rc" = 1 ] || fail "cat into a full disk exits $rc"
	err_has "free space where the output goes"
fi
ok "odd names: one ls row each with \\ooo escapes; --json valid, bytes back through surrogateescape; cat: a closed pipe is no failure, a full disk is"

pgt check --read-data >/dev/null || fail "check is not clean"
ok "check --read-data is clean"
echo "$CHECKS passed, 0 failed"
