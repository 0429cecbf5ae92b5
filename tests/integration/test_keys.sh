#!/usr/bin/env bash
# Key rotation: add a key, open with it, remove the old one; the last key is never removed.
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
PGTIMEFS_PASSPHRASE=second-secret pgt key remove "$old" >/dev/null
expect_fail "old passphrase after removal" 1 pgt list
err_has "wrong passphrase"
ok "after removing the old key its passphrase no longer opens the repository"
PGTIMEFS_PASSPHRASE=second-secret expect_fail "remove last key" 2 pgt key remove "$new"
err_has "last key"
expect_fail "key add without a new passphrase" 2 env PGTIMEFS_PASSPHRASE=second-secret "$PGT" key add
ok "the last key cannot be removed; key add needs a new passphrase"
echo "$CHECKS passed, 0 failed"
