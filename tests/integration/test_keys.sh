#!/usr/bin/env bash
# Key rotation: add a key, open with it, remove the old one; the last key is never removed.
# A generated machine key (key add --generate FILE): a random secret in FILE (0600, never
# overwritten), the repository opens with passphrase-file = FILE alone, wal-push works with it.
. "$(dirname "$0")/lib.sh"

make_tree "$T/data" 4
pgt init >/dev/null
pgt snapshot prod n1 "$T/data" >/dev/null
old=$(pgt --json key list | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
new=$(PGTIMEFS_NEW_PASSPHRASE=second-secret pgt --json key add | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for z in "$Z1" "$Z2" "$Z3"; do [ -f "$z/keys/$new" ] || fail "new key missing in $z"; done
ok "key add writes the new key file to every zone"
PGTIMEFS_PASSPHRASE=second-secret verify_cat_bulk "$T/data" prod/latest/n1
ok "the new passphrase opens the repository"
# with a zone away, removing a key is refused: the zone would keep it, and repair would copy it
# back to the others
mv "$Z3" "$T/z3.away"
PGTIMEFS_PASSPHRASE=second-secret expect_fail "key remove with zone 3 away" 1 pgt key remove "$old"
err_has "zone 3"
err_has "nothing is written"
for z in "$Z1" "$Z2"; do [ -f "$z/keys/$old" ] || fail "key remove with zone 3 away removed the key from $z"; done
mv "$T/z3.away" "$Z3"
ok "key remove with a zone away is refused and removes nothing"
# the same with zone 3 present but read-only (a bind mount): refused before any zone loses it
if mount --bind "$Z3" "$Z3" 2>/dev/null; then
	cleanup_hooks+=("umount -l '$Z3' 2>/dev/null")
	if mount -o remount,ro,bind "$Z3" 2>/dev/null; then
		PGTIMEFS_PASSPHRASE=second-secret expect_fail "key remove with zone 3 read-only" 1 pgt key remove "$old"
		err_has "zone 3"
		err_has "nothing was removed"
		for z in "$Z1" "$Z2" "$Z3"; do [ -f "$z/keys/$old" ] || fail "key remove with zone 3 read-only removed the key from $z"; done
		# the removal is recorded before the zones lose the key, and taken back when none did
		PGTIMEFS_PASSPHRASE=second-secret pgt check >"$T/out" 2>&1 || { cat "$T/out"; fail "check after a refused key remove names the key as removed"; }
		ok "key remove with a read-only zone is refused and removes nothing"
	else
		echo "SKIP part: cannot remount a bind mount read-only here: key remove with a read-only zone not tested" >&2
	fi
	umount "$Z3" || fail "cannot undo the bind mount of zone 3"
else
	echo "SKIP part: cannot bind-mount here (not root?): key remove with a read-only zone not tested" >&2
fi
cp "$Z3/keys/$old" "$T/old.key"
PGTIMEFS_PASSPHRASE=second-secret pgt key remove "$old" >/dev/null
for z in "$Z1" "$Z2" "$Z3"; do [ ! -e "$z/keys/$old" ] || fail "the removed key is still in $z"; done
# the removed key file back in one zone (a zone restored from before the removal): check names
# it, repair deletes it instead of copying it to the others
cp "$T/old.key" "$Z3/keys/$old"
PGTIMEFS_PASSPHRASE=second-secret expect_fail "check with a removed key file back in zone 3" 1 pgt check
grep -q "zone 3 holds key file $old, which 'key remove' removed" "$T/out" || { cat "$T/out"; fail "check does not name the removed key file"; }
PGTIMEFS_PASSPHRASE=second-secret pgt repair >"$T/out" || { cat "$T/out"; fail "repair of a removed key file"; }
for z in "$Z1" "$Z2" "$Z3"; do [ ! -e "$z/keys/$old" ] || fail "repair left or spread the removed key file in $z"; done
ok "a removed key file that comes back with a zone: check names it, repair deletes it"
expect_fail "old passphrase after removal" 1 pgt list
err_has "wrong passphrase"
ok "after removing the old key its passphrase no longer opens the repository"
PGTIMEFS_PASSPHRASE=second-secret expect_fail "remove last key" 2 pgt key remove "$new"
err_has "last key"
# an id typed wrong (a trailing space, another id) is refused and recorded nowhere: check stays
# clean and repair deletes no key
PGTIMEFS_PASSPHRASE=second-secret expect_fail "key remove with a trailing space" 2 pgt key remove "$new "
err_has "is not a key id"
PGTIMEFS_PASSPHRASE=second-secret expect_fail "key remove of an id no zone holds" 1 pgt key remove 0123456789abcdef
PGTIMEFS_PASSPHRASE=second-secret pgt check >"$T/out" 2>&1 || { cat "$T/out"; fail "check after refused key removals is not clean"; }
PGTIMEFS_PASSPHRASE=second-secret pgt repair >/dev/null || fail "repair after refused key removals"
for z in "$Z1" "$Z2" "$Z3"; do [ -f "$z/keys/$new" ] || fail "a refused key remove led repair to delete the key from $z"; done
# the key in use recorded as removed (a catalog from elsewhere): check names it, repair keeps it
python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("update meta set value = value || ? where key = ?", (" " + sys.argv[2], "removed-keys")); c.commit()' \
	"$T/state/catalog.db" "$new"
PGTIMEFS_PASSPHRASE=second-secret expect_fail "check with the key in use recorded as removed" 1 pgt check
grep -q "is recorded as removed, but it opened the repository" "$T/out" || { cat "$T/out"; fail "check does not name the key in use"; }
PGTIMEFS_PASSPHRASE=second-secret expect_fail "repair with the key in use recorded as removed" 1 pgt repair
for z in "$Z1" "$Z2" "$Z3"; do [ -f "$z/keys/$new" ] || fail "repair deleted the key in use from $z"; done
PGTIMEFS_PASSPHRASE=second-secret pgt list >/dev/null || fail "the repository no longer opens"
ok "key remove of a mistyped or unknown id: refused, not recorded; the key in use is never deleted by repair"
expect_fail "key add without a new passphrase" 2 env PGTIMEFS_PASSPHRASE=second-secret "$PGT" key add
# key operations take the writer lock: with it held, they refuse (--wait 0) and change nothing
flock "$T/state/writer.lock" sleep 3 &
holder=$!
sleep 0.3
PGTIMEFS_NEW_PASSPHRASE=third PGTIMEFS_PASSPHRASE=second-secret expect_fail "key add under the lock" 1 "$PGT" --wait 0 key add
err_has "is writing to this repository"
PGTIMEFS_PASSPHRASE=second-secret expect_fail "key remove under the lock" 1 "$PGT" --wait 0 key remove "$new"
err_has "is writing to this repository"
wait $holder
[ "$(ls "$Z1/keys" | wc -l)" = 1 ] || fail "a refused key operation changed keys/"
ok "the last key cannot be removed; key add needs a new passphrase"

# a generated machine key
export PGTIMEFS_PASSPHRASE=second-secret
gen=$(pgt --json key add --generate "$T/machine.key" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["id"], d["secret_file"])')
gid=${gen%% *}
[ "${gen#* }" = "$T/machine.key" ] || fail "key add --generate --json names ${gen#* }"
[ "$(stat -c %a "$T/machine.key")" = 600 ] || fail "the secret file is mode $(stat -c %a "$T/machine.key"), not 600"
grep -qxE '[0-9a-f]{64}' "$T/machine.key" || fail "the secret file does not hold 64 hex digits"
for z in "$Z1" "$Z2" "$Z3"; do [ -f "$z/keys/$gid" ] || fail "generated key missing in $z"; done
python3 - "$Z1/keys/$gid" <<'PY' || fail "the generated key file does not use scrypt N = 2^10, r = 1, p = 1"
import struct, sys
b = open(sys.argv[1], "rb").read()
assert len(b) == 156 and b[:8] == b"PGTFKEY1" and struct.unpack("<III", b[12:24]) == (10, 1, 1)
PY
ok "key add --generate: a 0600 file with a 256-bit secret, and its key file (scrypt 2^10, r 1) in every zone"
n_before=$(ls "$Z1/keys" | wc -l)
sum_before=$(sha256sum "$T/machine.key")
expect_fail "generate over an existing file" 1 pgt key add --generate "$T/machine.key"
err_has "never overwrites"
[ "$(ls "$Z1/keys" | wc -l)" = "$n_before" ] || fail "a refused key add --generate still added a key file"
[ "$(sha256sum "$T/machine.key")" = "$sum_before" ] || fail "a refused key add --generate changed the secret file"
expect_fail "generate into a missing directory" 1 pgt key add --generate "$T/no/such/dir/key"
[ "$(ls "$Z1/keys" | wc -l)" = "$n_before" ] || fail "a failed key add --generate still added a key file"
ok "key add --generate refuses an existing file and a missing directory; nothing is added"
sed -i "s|^\[repository\]\$|[repository]\npassphrase-file = $T/machine.key|" "$PGTIMEFS_CONFIG"
unset PGTIMEFS_PASSPHRASE
[ "$(pgt --json key list | python3 -c 'import json,sys; print([k["id"] for k in json.load(sys.stdin) if k["current"]][0])')" = "$gid" ] ||
	fail "the repository did not open with the generated key"
verify_cat_bulk "$T/data" prod/latest/n1
head -c 1048576 /dev/urandom >"$T/000000010000000000000001"
head -c $((16 * 1048576 - 1048576)) /dev/zero >>"$T/000000010000000000000001"
pgt wal-push prod n1 "$T/000000010000000000000001"
pgt wal-fetch prod n1 000000010000000000000001 "$T/back"
cmp -s "$T/back" "$T/000000010000000000000001" || fail "wal-push/wal-fetch with the generated key: bytes differ"
ok "passphrase-file = the generated secret opens the repository alone: cat and wal-push/wal-fetch work"
echo "$CHECKS passed, 0 failed"
