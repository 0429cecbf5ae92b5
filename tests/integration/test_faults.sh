#!/usr/bin/env bash
# Bad input and damaged zones: a clear error, nothing lost, and repair heals what it can.
. "$(dirname "$0")/lib.sh"

make_tree "$T/data" 2
pgt init >/dev/null
pgt snapshot prod n1 "$T/data" >/dev/null
nsnap() { pgt --json list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

# --- wrong passphrase
PGTIMEFS_PASSPHRASE=wrong expect_fail "wrong passphrase" 1 pgt list
err_has "wrong passphrase"
ok "wrong passphrase: clear error"

# --- garbage configuration
printf '[repository]\nzones = %s\nthis is not a setting\n' "$Z1" >"$T/bad.conf"
expect_fail "garbage config" 1 pgt -c "$T/bad.conf" list
err_has "line 3"
head -c 300 /dev/urandom >"$T/bad2.conf"
expect_fail "binary config" 1 pgt -c "$T/bad2.conf" list
expect_fail "missing config" 1 pgt -c "$T/none.conf" list
err_has "cannot load configuration"
sed "s|$Z2|$Z1/|" "$PGTIMEFS_CONFIG" >"$T/dup.conf"
expect_fail "a zone named twice" 1 pgt -c "$T/dup.conf" list
err_has "zones 1 and 2"
err_has "are one directory"
ln -s "$Z1" "$T/z1-link"
sed "s|$Z3|$T/z1-link|" "$PGTIMEFS_CONFIG" >"$T/dup.conf"
expect_fail "a zone and a symlink to it" 1 pgt -c "$T/dup.conf" snapshot prod n1 "$T/data"
err_has "zones 1 and 3"
rm "$T/z1-link"
ok "garbage, binary and missing configs, and one directory named as two zones: clear errors"

# --- sections and keys pgtimefs does not know, names it cannot use, numbers with garbage
conf_with() { { cat "$PGTIMEFS_CONFIG"; printf '%b' "$1"; } >"$T/shape.conf"; }
# a section that cannot be used: a warning for every command (wal-push must go on archiving),
# and a backup refuses (a misspelled [node] would leave its node out)
shape_case() { # WHAT TEXT-IN-STDERR SECTION...
	local what=$1 text=$2
	shift 2
	conf_with "$*"
	pgt -c "$T/shape.conf" list >/dev/null 2>"$T/err" || { cat "$T/err"; fail "list with $what"; }
	err_has "$text"
	expect_fail "backup with $what" 1 pgt -c "$T/shape.conf" backup prod
	err_has "cannot be used"
}
shape_case "a section in capitals" "unknown section [Node prod/n2]" '\n[Node prod/n2]\nconninfo = host=/tmp\n'
shape_case "a node section with a space before /" "'prod ' cannot name a cluster" '\n[node prod /n3]\nconninfo = host=/tmp\n'
shape_case "a node section with two slashes" "is not [node CLUSTER/NAME]" '\n[node prod/a/b]\nconninfo = host=/tmp\n'
shape_case "a node named latest" "cannot name a node" '\n[node prod/latest]\nconninfo = host=/tmp\n'
conf_with '\n[cluster my prod]\n\n[node my prod/worker 1]\nconninfo = host=/tmp\n'
pgt -c "$T/shape.conf" list >/dev/null 2>"$T/err" || { cat "$T/err"; fail "list with names holding spaces"; }
if grep -q "warning" "$T/err"; then cat "$T/err"; fail "names with inner spaces were warned of"; fi
conf_with '\n[cluster prod]\n\n[node prod/n1]\nconninfo = host=/tmp password=hunter2 port=5\ndata_dir = /x\n'
pgt -c "$T/shape.conf" list >"$T/out" 2>"$T/err" || { cat "$T/err"; fail "list with an unknown key"; }
err_has "unknown key 'data_dir' in [node prod/n1]"
grep -q "password=\*\*\*" "$T/out" || { cat "$T/out"; fail "list does not mask the password"; }
if grep -q hunter2 "$T/out"; then fail "list shows the conninfo's password"; fi
conf_with '\n[cluster prod]\n\n[node prod/n1]\nconninfo = "host=/tmp password=se #cret"\n'
pgt -c "$T/shape.conf" list >"$T/out" 2>&1 || fail "list with a quoted value holding ' #'"
grep -q 'password=\*\*\*' "$T/out" && ! grep -q 'se #cret\|"host' "$T/out" ||
	{ cat "$T/out"; fail "a ' #' inside quotes was taken for a comment"; }
sed 's|^\[repository\]$|[repository]\npassphrase-file = secret.txt|' "$PGTIMEFS_CONFIG" >"$T/shape.conf"
expect_fail "a relative passphrase-file that is not here" 1 pgt -c "$T/shape.conf" list
err_has "passphrase-file 'secret.txt' is not an absolute path: it is read from the current directory"
shape_case "a relative data-dir" "data-dir 'pgdata' is not an absolute path" '\n[node prod/n9]\nconninfo = host=/tmp\ndata-dir = pgdata\n'
expect_fail "--wait with garbage" 2 pgt --wait abc list
err_has "--wait takes seconds"
sed -e "s|^state-dir = .*|state-dir = $T/state-kdf|" -e "s|$Z1|$T/kdf-a|; s|$Z2|$T/kdf-b|; s|$Z3|$T/kdf-c|" \
	-e 's/^kdf-log2n = .*/kdf-log2n = 12x/' "$PGTIMEFS_CONFIG" >"$T/kdf.conf"
expect_fail "init with kdf-log2n = 12x" 1 pgt -c "$T/kdf.conf" init
err_has "kdf-log2n is 10..22"
[ ! -e "$T/kdf-a/config" ] || fail "init with a bad kdf-log2n wrote a config"
if [ -w /dev/full ]; then
	rc=0; pgt --json list >/dev/full 2>"$T/err" || rc=$?
	[ "$rc" = 1 ] || fail "--json list into /dev/full exits $rc"
	err_has "cannot write the output"
else
	echo "SKIP part: no /dev/full here: output errors not tested" >&2
fi
ok "unusable sections and names warned of (backup refuses), unknown keys warned of, passwords masked, quoted ' #' kept, numbers checked, output errors fail"

# --- garbage key files (every copy): refused as damaged, not as a wrong passphrase
mkdir "$T/keys-save"
cp -a "$Z1/keys" "$T/keys-save/1"; cp -a "$Z2/keys" "$T/keys-save/2"; cp -a "$Z3/keys" "$T/keys-save/3"
for z in "$Z1" "$Z2" "$Z3"; do for k in "$z"/keys/*; do head -c 156 /dev/urandom >"$k"; done; done
expect_fail "garbage keys" 1 pgt list
err_has "damaged"
rm -rf "$Z1/keys" "$Z2/keys" "$Z3/keys"
cp -a "$T/keys-save/1" "$Z1/keys"; cp -a "$T/keys-save/2" "$Z2/keys"; cp -a "$T/keys-save/3" "$Z3/keys"
pgt list >/dev/null || fail "keys restored but list fails"
ok "garbage key files: reported as damaged"

# --- a key file damaged inside (its header intact) in zone 1 and missing in zone 2: check names
# both, repair writes the copy that opened the repository (zone 3's), not zone 1's damaged one;
# a second key's copy damaged in one zone is mended from the copy the two others hold
kid=$(ls "$Z1/keys")
second=$(PGTIMEFS_NEW_PASSPHRASE=second-secret pgt --json key add | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
printf '\377' | dd of="$Z1/keys/$kid" bs=1 seek=100 conv=notrunc 2>/dev/null
rm "$Z2/keys/$kid"
printf '\377' | dd of="$Z3/keys/$second" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_fail "check with damaged key copies" 1 pgt check
grep -q "zone 1's key file $kid differs from the good copy" "$T/out" || { cat "$T/out"; fail "check misses zone 1's damaged key file"; }
grep -q "zone 2 lacks key file $kid" "$T/out" || { cat "$T/out"; fail "check misses zone 2's missing key file"; }
grep -q "zone 3's key file $second differs from the good copy" "$T/out" || { cat "$T/out"; fail "check misses the second key's damaged copy"; }
pgt repair >"$T/out" || { cat "$T/out"; fail "repair of the key files"; }
for z in "$Z1" "$Z2"; do cmp -s "$z/keys/$kid" "$Z3/keys/$kid" || fail "$z's key file is not zone 3's good copy"; done
cmp -s "$Z3/keys/$second" "$Z1/keys/$second" || fail "the second key's copy in zone 3 was not mended"
PGTIMEFS_PASSPHRASE=second-secret pgt list >/dev/null || fail "the second key does not open the repository after repair"
pgt check >/dev/null || fail "check after the key repair is not clean"
PGTIMEFS_PASSPHRASE=second-secret pgt key remove "$second" >/dev/null
ok "key files damaged inside: check names them, repair writes the good copy (the one that opened, or the majority's)"

# --- the repository config altered in zone 1 (its MAC no longer verifies): zone 2's is used,
# check names zone 1, repair rewrites it, a second check is clean; altered everywhere: refused
cp "$Z1/config" "$T/config.save"
# every_config CMD...: runs CMD with each zone's config file as its last argument
every_config() { local z; for z in "$Z1" "$Z2" "$Z3"; do "$@" "$z/config"; done; }
sed -i 's/^zstd-level = .*/zstd-level = 19/' "$Z1/config"
grep -q '^zstd-level = 19' "$Z1/config" || fail "the test could not alter the config"
verify_cat_bulk "$T/data" prod/latest/n1
expect_fail "check with an altered config" 1 pgt check
grep -q "zone 1's config is altered" "$T/out" || { cat "$T/out"; fail "check does not name zone 1's config"; }
pgt repair >/dev/null || fail "repair of the config failed"
cmp -s "$Z1/config" "$T/config.save" || fail "repair did not restore zone 1's config"
pgt check >/dev/null || fail "check after repairing the config is not clean"
ok "an altered config in zone 1: not used, check names it, repair restores it"
every_config sed -i 's/^cdc-min = .*/cdc-min = 4096/'
expect_fail "config altered in every zone" 1 pgt list
err_has "altered"
every_config cp "$T/config.save"
pgt check >/dev/null || fail "check with the config put back is not clean"
ok "a config altered in every zone: refused with a clear error"
every_config sed -i '/^mac = /d'
expect_fail "config MAC removed in every zone" 1 pgt list
err_has "it was removed"
every_config cp "$T/config.save"
pgt list >/dev/null || fail "list with the config put back fails"
ok "the config's MAC removed in every zone: refused (the catalog remembers the repository had one)"

# --- a config sealed as a pgtimefs before the config-MAC key sealed it (HMAC under the id key)
[ -x "${PGT_OLDSEAL:-}" ] || fail "PGT_OLDSEAL (the test helper that writes such a config) is not set"
"$PGT_OLDSEAL" "$PGTIMEFS_PASSPHRASE" "$Z1" "$Z2" "$Z3" || fail "oldseal failed"
cmp -s "$Z1/config" "$T/config.save" && fail "oldseal left the config as it was"
# this catalog has seen the current seal: an older one now means the config was replaced
expect_fail "an old-sealed config after the current seal" 1 pgt list
err_has "it was replaced"
# a catalog as an older pgtimefs left it (config-sealed 1): readers use the config, check names
# every zone, and the first writer reseals them all
meta() { python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
if len(sys.argv) > 2:
    c.execute("update meta set value = ? where key = ?", (sys.argv[2], "config-sealed")); c.commit()
print(c.execute("select value from meta where key = ?", ("config-sealed",)).fetchone()[0])' "$T/state/catalog.db" "$@"; }
[ "$(meta 1)" = 1 ] || fail "could not set the catalog's config-sealed"
verify_cat_bulk "$T/data" prod/latest/n1
expect_fail "check with old-sealed configs" 1 pgt check
for z in 1 2 3; do
	grep -q "zone $z.s config is sealed with the old key" "$T/out" || { cat "$T/out" "$T/err"; fail "check does not name zone $z's old seal"; }
done
# key add on a machine without the catalog: the KDF settings cannot be checked, so refused
sed "s|^state-dir = .*|state-dir = $T/state-other|" "$PGTIMEFS_CONFIG" >"$T/other.conf"
expect_fail "key add without a catalog, old-sealed config" 1 pgt -c "$T/other.conf" key add --generate "$T/other.secret"
err_has "no catalog here to check it against"
[ ! -e "$T/other.secret" ] || fail "a refused key add left its secret file"
# the first writer reseals every zone it can. Zone 3 read-only (a read-only bind mount): zones
# 1 and 2 are resealed, the writer warns, and a later writer finishes the job
cp "$Z3/config" "$T/config.old3"
if mount --bind "$Z3" "$Z3" 2>/dev/null && { mount -o remount,ro,bind "$Z3" 2>/dev/null || { umount "$Z3"; false; }; }; then
	cleanup_hooks+=("umount '$Z3' 2>/dev/null")
	# every writer needs every zone: the key add fails (on its key file), after the reseal
	expect_fail "key add with zone 3 read-only" 1 pgt key add --generate "$T/k1.secret"
	err_has "resealing the repository config with the current key failed in 1 zone"
	err_has "Read-only file system"
	cmp -s "$Z1/config" "$T/config.save" && cmp -s "$Z2/config" "$T/config.save" || fail "zones 1 and 2 not resealed"
	cmp -s "$Z3/config" "$T/config.old3" || fail "zone 3's config changed on a read-only mount"
	[ "$(meta)" = 2 ] || fail "the catalog does not remember the current seal (config-sealed $(meta))"
	umount "$Z3"
else
	echo "SKIP part: cannot bind-mount a zone read-only here (not root?): a reseal that fails in one zone not tested" >&2
fi
pgt snapshot prod n1 "$T/data" >/dev/null || fail "a snapshot (a writer) failed"
cmp -s "$Z3/config" "$T/config.save" || fail "the next writer did not reseal zone 3's config"
pgt check >/dev/null || fail "check after the reseal is not clean"
# a writer that raises the level pushes a catalog copy that records it (key add pushes none
# of its own)
every_config cp "$T/config.old3"
[ "$(meta 1)" = 1 ] || fail "could not set the catalog's config-sealed"
newest=$(ls "$Z1/catalog" | tail -n 1)
pgt key add --generate "$T/k2b.secret" >/dev/null || fail "key add (a writer) with old-sealed configs failed"
[ "$(meta)" = 2 ] || fail "key add did not raise config-sealed ($(meta))"
every_config cmp -s "$T/config.save" || fail "key add did not reseal every zone's config"
[ "$(ls "$Z1/catalog" | tail -n 1)" != "$newest" ] || fail "raising the seal level pushed no catalog copy"
# recovery checks the seal as a writer does: from copies at level 2, old-sealed configs refused
mv "$T/state" "$T/state.before-recover"
every_config cp "$T/config.old3"
expect_fail "init --recover with old-sealed configs" 1 pgt init --recover
err_has "recovered the catalog from zone 1"
err_has "it was replaced"
[ "$(meta)" = 2 ] || fail "the recovered catalog lost the current seal (config-sealed $(meta))"
expect_fail "an old-sealed config after recovery" 1 pgt list
err_has "it was replaced"
expect_fail "key add with an old-sealed config" 1 pgt key add --generate "$T/k3.secret"
err_has "it was replaced"
every_config cp "$T/config.save"
# a level this pgtimefs does not know (a newer one's): refused, and never lowered
meta 3 >/dev/null
expect_fail "an unknown config-sealed level" 1 pgt list
err_has "a newer pgtimefs wrote it"
[ "$(meta)" = 3 ] || fail "config-sealed was changed by a refused command"
meta 2 >/dev/null
pgt list >/dev/null || fail "list with the config put back fails"
ok "a config sealed by an older pgtimefs: read, named by check, resealed by the writers zone by zone, then required (also after init --recover)"

# --- a byte flipped in a pack of zone 1: reads fall over, check names it, repair heals it
pack=$(cd "$Z1" && find packs -type f | head -n 1)
python3 - "$Z1/$pack" <<'PY'
import os, sys
p = sys.argv[1]
with open(p, "r+b") as f:
    f.seek(os.path.getsize(p) // 2); b = f.read(1); f.seek(-1, 1); f.write(bytes([b[0] ^ 0x40]))
PY
verify_cat_bulk "$T/data" prod/latest/n1
ok "a flipped byte in zone 1: every file still reads right (from zone 2)"
expect_fail "check --read-data" 1 pgt check --read-data
grep -q "$(basename "$pack")" "$T/out" && grep -q "zone 1" "$T/out" || { cat "$T/out"; fail "check does not name the pack and zone"; }
ok "check --read-data names the damaged pack and zone 1"
pgt repair >/dev/null || fail "repair failed"
pgt check --read-data >/dev/null || fail "check after repair is not clean"
ok "repair heals it; a second check is clean"

# --- zones 1 and 2 deleted entirely: everything reads from zone 3; repair refills them
rm -rf "$Z1" "$Z2"
verify_cat_bulk "$T/data" prod/latest/n1
ok "zones 1 and 2 gone: every file reads from zone 3"
expect_fail "check without zones" 1 pgt check
pgt repair >/dev/null || fail "repair of two zones failed"
pgt check --read-data >/dev/null || fail "check after refilling is not clean"
rm -rf "$Z3"
verify_cat_bulk "$T/data" prod/latest/n1
pgt repair >/dev/null
pgt check --read-data >/dev/null || fail "check after refilling zone 3 is not clean"
ok "repair refills deleted zones; then zone 3 can go and zone 1 serves"

# --- a zone missing at write time: the snapshot fails cleanly, nothing recorded
before=$(nsnap)
mv "$Z2" "$T/z2-away"
echo change >>"$T/data/PG_VERSION"
expect_fail "snapshot without zone 2" 1 pgt snapshot prod n1 "$T/data"
err_has "zone 2"
[ "$(nsnap)" = "$before" ] || fail "a failed snapshot was listed"
mv "$T/z2-away" "$Z2"
pgt check --read-data >/dev/null || fail "check after a failed snapshot is not clean"
pgt snapshot prod n1 "$T/data" >/dev/null || fail "snapshot after the zone came back failed"
verify_cat_bulk "$T/data" prod/latest/n1
ok "a missing zone fails the snapshot cleanly; the next one succeeds"

# --- a full zone (ENOSPC) and a read-only zone, on a small tmpfs
# room for what zone 3 holds now plus 1 MiB: the next snapshot (6 MiB of new data) cannot fit
room=$(( $(du -sk "$Z3" | cut -f1) + 1024 ))k
if mkdir -p "$T/small" && mount -t tmpfs -o size=$room tmpfs "$T/small" 2>/dev/null; then
	cleanup_hooks+=("umount -l '$T/small'")
	cp -a "$Z3/." "$T/small/"
	mv "$Z3" "$T/z3-real"
	ln -s "$T/small" "$Z3"
	head -c $((6 * 1024 * 1024)) /dev/urandom >"$T/data/bigger.bin"
	before=$(nsnap)
	expect_fail "snapshot into a full zone" 1 pgt snapshot prod n1 "$T/data"
	err_has "No space left"
	err_has "zone 3"
	[ "$(nsnap)" = "$before" ] || fail "a snapshot that hit ENOSPC was listed"
	mount -o remount,ro "$T/small"
	expect_fail "snapshot into a read-only zone" 1 pgt snapshot prod n1 "$T/data"
	err_has "zone 3"
	[ "$(nsnap)" = "$before" ] || fail "a snapshot into a read-only zone was listed"
	# zone 2 without catalog copies, zone 3 read-only: the copy repair pushes reaches zones 1
	# and 2 (each zone is written on its own), and repair says zone 3 failed
	mkdir "$T/z2-copies"
	mv "$Z2"/catalog/* "$T/z2-copies/"
	expect_fail "repair with a read-only zone" 1 pgt repair
	ls "$Z2/catalog" | grep -qE '^[0-9]{20}$' || fail "zone 2 got no catalog copy while zone 3 was read-only"
	grep -q "zone 2 holds no catalog copy" "$T/out" || { cat "$T/out"; fail "repair does not name zone 2's missing copy"; }
	grep -q "the catalog copy did not reach every zone: zone 3" "$T/out" || { cat "$T/out"; fail "repair does not name the zone the copy did not reach"; }
	grep -q "2 problems found, 1 repaired, 1 could not be repaired" "$T/out" || { cat "$T/out" "$T/err"; fail "repair does not count zone 2's copy as repaired and zone 3's as not"; }
	rm -rf "$T/z2-copies"
	rm "$Z3"
	mv "$T/z3-real" "$Z3"
	pgt check --read-data >/dev/null || fail "check after ENOSPC is not clean"
	pgt snapshot prod n1 "$T/data" >/dev/null
	verify_cat_bulk "$T/data" prod/latest/n1
	ok "a full zone and a read-only zone fail the snapshot cleanly; nothing half recorded"
else
	echo "SKIP part: cannot mount a tmpfs here (not root?): ENOSPC and read-only zone not tested" >&2
fi

# --- the local catalog deleted: recovered from a zone, every snapshot readable
pgt --json list >"$T/list-before"
rm -f "$T/state/catalog.db" "$T/state/catalog.db-wal" "$T/state/catalog.db-shm"
expect_fail "list without catalog" 1 pgt list
err_has "init --recover"
pgt init --recover >/dev/null
pgt --json list >"$T/list-after"
cmp -s "$T/list-before" "$T/list-after" || fail "recovered catalog lists other snapshots"
verify_cat_bulk "$T/data" prod/latest/n1
ok "catalog deleted: recovered from a zone with every snapshot"
# the newest copy damaged in zone 1 only: recovery takes the next zone
rm -f "$T/state/catalog.db"*
newest=$(ls "$Z1/catalog" | tail -n 1)
head -c 100 /dev/urandom >"$Z1/catalog/$newest"
pgt init --recover >"$T/out"
grep -q "zone 2" "$T/out" || { cat "$T/out"; fail "recovery did not fall over to zone 2"; }
expect_fail "check --read-data with zone 1's newest copy damaged" 1 pgt check --read-data
grep -q "zone 1's newest catalog copy ($newest) cannot be read" "$T/out" || { cat "$T/out"; fail "check --read-data does not name the damaged copy"; }
pgt repair >/dev/null || fail "repair of a damaged catalog copy"
pgt check --read-data >/dev/null || fail "check --read-data after repairing the catalog copy is not clean"
ok "a damaged catalog copy in zone 1: recovery uses zone 2; check --read-data names it; repair replaces it"
# --- a local catalog that fails its own check: repair says so and pushes no copy of it (a
# copy would push the good ones out of the zones); init --recover brings the good one back
pgt check >/dev/null || pgt repair >/dev/null || true
pgt check >/dev/null || fail "check not clean before the catalog damage"
newest=$(ls "$Z1/catalog" | tail -n 1)
python3 - "$T/state/catalog.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA foreign_keys = OFF")
db.execute("DELETE FROM chunks WHERE id = (SELECT min(chunk) FROM content_chunks)")
# as if a raised config seal still had to go out in a copy: repair must not push it either
db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('config-sealed-pushed', '0')")
db.commit()
PY
rc=0
pgt repair >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] || { cat "$T/out" "$T/err"; fail "repair of a damaged catalog: exit $rc, expected 1"; }
grep -q "no copy of it was pushed" "$T/out" || { cat "$T/out"; fail "repair does not say the copy was held back"; }
err_has "init --recover"
for z in "$Z1" "$Z2" "$Z3"; do
	[ "$(ls "$z/catalog" | tail -n 1)" = "$newest" ] || fail "repair pushed a copy of a damaged catalog to $z"
done
mv "$T/state/catalog.db" "$T/state/catalog.db.damaged"
rm -f "$T/state/catalog.db-wal" "$T/state/catalog.db-shm"
pgt init --recover >/dev/null
pgt check >/dev/null || fail "check after recovering from the held-back copies is not clean"
verify_cat_bulk "$T/data" prod/latest/n1
ok "a damaged local catalog: repair exits 1, says so, pushes no copy; init --recover restores a clean one"

# --- a catalog that passes its own check but contradicts a pack's sealed trailer: every zone
# holds the same trailer, so repair cannot mend it: it exits 1, counts it, pushes no copy
newest=$(ls "$Z1/catalog" | tail -n 1)
chunk_raw() { # chunk_raw DELTA: adds DELTA to the raw length the catalog records for one chunk
	python3 - "$T/state/catalog.db" "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE chunks SET raw = raw + ? WHERE id = (SELECT min(chunk) FROM content_chunks)", (int(sys.argv[2]),))
db.commit()
PY
}
chunk_raw 1
expect_fail "check of a catalog contradicting a trailer" 1 pgt check --read-data
err_has "contradicts a pack, which no zone can mend"
err_has "init --recover"
rc=0
pgt repair >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] || { cat "$T/out" "$T/err"; fail "repair of a catalog contradicting a trailer: exit $rc, expected 1"; }
grep -q "not repaired: pack .*: the catalog disagrees with the pack's own trailer" "$T/out" || { cat "$T/out"; fail "repair does not name the trailer it cannot mend"; }
grep -q "no copy of it was pushed" "$T/out" || { cat "$T/out"; fail "repair does not say the copy was held back"; }
grep -q "1 could not be repaired" "$T/out" || { cat "$T/out"; fail "repair does not count the trailer as not repaired"; }
err_has "init --recover"
for z in "$Z1" "$Z2" "$Z3"; do
	[ "$(ls "$z/catalog" | tail -n 1)" = "$newest" ] || fail "repair pushed a copy of a catalog contradicting a trailer to $z"
done
chunk_raw -1
pgt check --read-data >/dev/null || fail "check after undoing the catalog edit is not clean"
ok "a catalog contradicting a pack's trailer: repair exits 1, counts it as not repaired, pushes no copy"

# --- init --recover keeps an orphaned -wal aside, and names zones it cannot read
mv "$T/state/catalog.db" "$T/state/catalog.db.keep"
rm -f "$T/state/catalog.db-shm"
echo "the newest commits, maybe" >"$T/state/catalog.db-wal"
pgt init --recover >/dev/null 2>"$T/err" || { cat "$T/err"; fail "init --recover with an orphaned -wal"; }
err_has "moved to"
grep -qx "the newest commits, maybe" "$T"/state/catalog.db-wal.orphaned-* || fail "the orphaned -wal was not kept aside"
rm -f "$T"/state/catalog.db-wal.orphaned-* "$T/state/catalog.db.keep"
for z in "$Z1" "$Z2" "$Z3"; do mv "$z/catalog" "$z/catalog.moved" && : >"$z/catalog"; done
mv "$T/state/catalog.db" "$T/state/catalog.db.keep"
rm -f "$T/state/catalog.db-wal" "$T/state/catalog.db-shm"
expect_fail "init --recover with no zone's catalog/ readable" 1 pgt init --recover
err_has "no catalog copy could be read"
err_has "zone 3: cannot list catalog"
for z in "$Z1" "$Z2" "$Z3"; do rm "$z/catalog" && mv "$z/catalog.moved" "$z/catalog"; done
mv "$T/state/catalog.db.keep" "$T/state/catalog.db"
pgt check >/dev/null || fail "check after the recovery tests is not clean"
ok "init --recover: an orphaned -wal is moved aside, not deleted; unreadable zones are named, not 'nothing to recover'"

# --- a zone that is another repository's (a wrong 'zones' setting): every writer refuses,
# nothing of either repository changes; check names it and says to correct the setting
mkdir -p "$T/other/data"
echo "another repository" >"$T/other/data/f"
printf '[repository]\nzones = %s %s %s\nstate-dir = %s\n' "$T/other/z1" "$T/other/z2" "$T/other/z3" \
	"$T/other/state" >"$T/other.conf"
pgt -c "$T/other.conf" init >/dev/null
pgt -c "$T/other.conf" snapshot o n "$T/other/data" >/dev/null
sed "s|$Z3|$T/other/z3|" "$PGTIMEFS_CONFIG" >"$T/mixed.conf"
grep -q "$T/other/z3" "$T/mixed.conf" || fail "the mixed config does not name the other repository's zone"
tree_sums() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); }
tree_sums "$T/other" >"$T/other.before"
tree_sums "$Z1" >"$T/z1.before"
for cmd in "repair" "snapshot prod n1 $T/data" "delete prod 2000-01-01T00:00:00Z"; do
	# shellcheck disable=SC2086 # the command's words
	expect_fail "$cmd with a zone of another repository" 1 pgt -c "$T/mixed.conf" $cmd
	err_has "zone 3 ($T/other/z3) holds another repository"
	err_has "correct 'zones'"
done
expect_fail "check with a zone of another repository" 1 pgt -c "$T/mixed.conf" check
grep -q "zone 3's config is of another repository" "$T/out" || { cat "$T/out"; fail "check does not name the foreign zone"; }
err_has "correct 'zones' in the configuration first"
tree_sums "$T/other" | cmp -s - "$T/other.before" || fail "a command changed the other repository"
tree_sums "$Z1" | cmp -s - "$T/z1.before" || fail "a command changed zone 1 while zone 3 was another repository's"
pgt -c "$T/other.conf" check --read-data >/dev/null || fail "the other repository's check is not clean"
ok "a zone of another repository: repair, snapshot and delete refuse and change nothing; check names it"
# a zone of ours whose config's id line is damaged (it still holds our key file) is no other
# repository's: writers go on, and repair rewrites the config
cp "$Z3/config" "$T/z3-config.good"
python3 - "$Z3/config" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
t = re.sub(r"^id = (.)", lambda m: "id = " + ("1" if m.group(1) == "0" else "0"), t, count=1, flags=re.M)
open(sys.argv[1], "w").write(t)
PY
cmp -s "$Z3/config" "$T/z3-config.good" && fail "the id line of zone 3's config was not changed"
pgt snapshot prod n1 "$T/data" >/dev/null || fail "a snapshot with a damaged id line in zone 3's config"
pgt repair >"$T/out" || { cat "$T/out"; fail "repair of a damaged id line"; }
cmp -s "$Z3/config" "$Z1/config" || fail "repair did not rewrite zone 3's config"
ok "a damaged id line in one zone's config: not taken for another repository; repair rewrites it"

# --- a rolled-back catalog (its state directory restored from an old backup, or a second
# state directory for one repository): its copies would push the newer ones out of the zones,
# so its pushes are refused until init --recover
cp -a "$T/state" "$T/state.old"
pgt snapshot prod n1 "$T/data" >/dev/null
pgt --json list >"$T/list-newer"
newest=$(ls "$Z1/catalog" | tail -n 1)
ls "$Z1/catalog" >"$T/copies.before"
mv "$T/state" "$T/state.newer"
mv "$T/state.old" "$T/state"
for i in 1 2 3; do
	expect_fail "snapshot $i from a rolled-back catalog" 1 pgt snapshot prod n1 "$T/data"
	err_has "holds catalog copy generation ${newest#"${newest%%[1-9]*}"}, newer than this catalog's last"
	err_has "init --recover"
done
ls "$Z1/catalog" | cmp -s - "$T/copies.before" || fail "a rolled-back catalog changed the zones' copies"
rm -rf "$T/state" "$T/state.newer"
pgt init --recover >/dev/null || fail "init --recover after the rolled-back catalog"
pgt --json list | cmp -s - "$T/list-newer" || fail "the newest copy no longer holds the newest snapshot"
pgt snapshot prod n1 "$T/data" >/dev/null || fail "a snapshot after init --recover"
ok "a rolled-back catalog: its copy pushes are refused and the zones keep the newer copies; init --recover resumes"

# --- init --recover into a full state directory (a real ENOSPC, on a small tmpfs): it stops
# with the reason and where room is needed and installs nothing; with room it recovers (that
# it does not go on to an older copy is unit_catalog's, with a file size limit)
pgt --json list >"$T/list-before"
mkdir -p "$T/state.keep"
mv "$T"/state/* "$T/state.keep/"
if mount -t tmpfs -o size=16k tmpfs "$T/state" 2>/dev/null; then
	cleanup_hooks+=("umount -l '$T/state'")
	expect_fail "init --recover into a full state directory" 1 pgt init --recover
	err_has "No space left on device"
	err_has "make room beside"
	err_has "nothing was installed"
	[ ! -e "$T/state/catalog.db" ] || fail "a catalog was installed in a full state directory"
	if ls "$T"/state/catalog.db.recover* >/dev/null 2>&1; then fail "a temporary was left in the full state directory"; fi
	mount -o remount,size=64m "$T/state" || fail "cannot grow the tmpfs"
	pgt init --recover >/dev/null || fail "init --recover once there is room"
	pgt --json list | cmp -s - "$T/list-before" || fail "the catalog recovered after ENOSPC lists other snapshots"
	umount "$T/state" || fail "cannot unmount the state tmpfs"
	ok "init --recover into a full state directory: ENOSPC named with a hint, nothing installed; recovers once there is room"
else
	echo "SKIP part: cannot mount a tmpfs here (not root?): init --recover on a full disk not tested" >&2
fi
mv "$T"/state.keep/* "$T/state/"
rmdir "$T/state.keep"
pgt check >/dev/null || fail "check after the full-state-directory test is not clean"

# --- a zone that holds no repository (an unmounted zone's mount point, an emptied zone):
# writers refuse, nothing lands in it, readers read the others, repair refills it
before=$(nsnap)
mv "$Z2" "$T/z2-real"
mkdir "$Z2"
echo change-empty >>"$T/data/PG_VERSION"
expect_fail "snapshot into an empty zone 2" 1 pgt snapshot prod n1 "$T/data"
err_has "zone 2"
err_has "holds no repository config"
err_has "mount it"
[ -z "$(ls -A "$Z2")" ] || { ls -laR "$Z2"; fail "a refused writer left files in the empty zone"; }
[ "$(nsnap)" = "$before" ] || fail "a refused snapshot was listed"
expect_fail "key add with an empty zone 2" 1 pgt key add --generate "$T/k-empty.secret"
err_has "holds no repository config"
[ -z "$(ls -A "$Z2")" ] || fail "a refused key add left files in the empty zone"
pgt cat prod/latest/n1/PG_VERSION >/dev/null || fail "readers do not read the other zones while zone 2 is empty"
rmdir "$Z2"
mv "$T/z2-real" "$Z2"
pgt snapshot prod n1 "$T/data" >/dev/null || fail "snapshot with zone 2 back failed"
verify_cat_bulk "$T/data" prod/latest/n1
# a lost zone replaced by an empty directory: repair refills it, then writers go on
mv "$Z3" "$T/z3-lost"
mkdir "$Z3"
expect_fail "snapshot with zone 3 emptied" 1 pgt snapshot prod n1 "$T/data"
err_has "repair"
pgt repair >/dev/null || fail "repair of an emptied zone failed"
pgt check --read-data >/dev/null || fail "check after refilling the emptied zone is not clean"
pgt snapshot prod n1 "$T/data" >/dev/null || fail "snapshot after repair refilled zone 3 failed"
rm -rf "$T/z3-lost"
ok "a zone holding no repository (empty): writers refuse and write nothing there; repair refills it"

# --- configs that cannot be read are not "no repository": no init hint, and init refuses
for z in "$Z1" "$Z2" "$Z3"; do mv "$z/config" "$z/config.away"; mkdir "$z/config"; done
expect_fail "list with unreadable configs" 1 pgt list
err_has "no zone's repository config can be read"
if grep -q "to create one" "$T/err"; then cat "$T/err"; fail "unreadable configs are reported as no repository"; fi
# init with a state directory of its own (the usual one already holds this catalog)
sed "s|^state-dir = .*|state-dir = $T/state-fresh|" "$PGTIMEFS_CONFIG" >"$T/fresh.conf"
expect_fail "init over unreadable configs" 1 pgt -c "$T/fresh.conf" init
err_has "already holds a repository"
for z in "$Z1" "$Z2" "$Z3"; do rmdir "$z/config"; done
expect_fail "init over zones whose configs are gone but keys remain" 1 pgt -c "$T/fresh.conf" init
err_has "holds files of a repository"
for z in "$Z1" "$Z2" "$Z3"; do
	[ ! -e "$z/config" ] || fail "a refused init wrote a config to $z"
	mv "$z/config.away" "$z/config"
done
pgt check >/dev/null || fail "check after the refused inits is not clean"
ok "unreadable configs: named, no init hint; init refuses over them and over a zone with keys but no config"

# --- a key file of another master key under the same passphrase (an init cut short, or one
# copied from another repository), named to be tried first: the repository still opens with
# its own key; check names the stranger and repair deletes it
sed -e "s|$Z1|$T/other-a|; s|$Z2|$T/other-b|; s|$Z3|$T/other-c|; s|^state-dir = .*|state-dir = $T/other-state|" \
	"$PGTIMEFS_CONFIG" >"$T/other.conf"
pgt -c "$T/other.conf" init >/dev/null || fail "init of a second repository failed"
cp "$T"/other-a/keys/* "$Z1/keys/0000000000000000"
pgt list >/dev/null || fail "a stranger key file tried first keeps the repository from opening"
verify_cat_bulk "$T/data" prod/latest/n1
expect_fail "check with a stranger key file" 1 pgt check
grep -q "holds key file 0000000000000000, which opens with this passphrase but holds another master key" "$T/out" ||
	{ cat "$T/out"; fail "check does not name the stranger key file"; }
pgt repair >/dev/null || fail "repair with a stranger key file failed"
for z in "$Z1" "$Z2" "$Z3"; do [ ! -e "$z/keys/0000000000000000" ] || fail "the stranger key file is in $z after repair"; done
pgt check >/dev/null || fail "check after repair deleted the stranger key file is not clean"
ok "a key file of another master key tried first: the repository opens; check names it, repair deletes it"

# --- names the mount gives its own entries cannot name a cluster or a node
pgt --json list >"$T/names-before"
for n in latest at wal restore.json . .. "a/b"; do
	expect_fail "snapshot with node name '$n'" 2 pgt snapshot prod "$n" "$T/data"
	err_has "restore.json"
	expect_fail "snapshot with cluster name '$n'" 2 pgt snapshot "$n" n1 "$T/data"
done
pgt --json list | cmp -s - "$T/names-before" || fail "a refused name changed what list shows"
ok "reserved names (latest, at, wal, restore.json, ., .., a '/') refused for clusters and nodes with exit 2"

echo "$CHECKS passed, 0 failed"
