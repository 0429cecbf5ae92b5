#!/usr/bin/env bash
# kill -9 of snapshot at random moments leaves a consistent repository; two writers at once
# never corrupt the catalog: the second waits (or, with --wait 0, refuses clearly).
. "$(dirname "$0")/lib.sh"

make_tree "$T/data" 3
python3 - "$T/data/big" <<'PY'
import os, random, sys
os.makedirs(sys.argv[1])
r = random.Random(7)
for i in range(24):
    with open(os.path.join(sys.argv[1], "%d" % (20000 + i)), "wb") as f:
        f.write(r.randbytes(6 * 1024 * 1024))
PY
pgt init >/dev/null
nsnap() { pgt --json list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

kills=0
for i in 1 2 3 4 5 6 7 8; do
	# a different file changes each round so every run has new data to write
	head -c 1048576 /dev/urandom >"$T/data/big/$((20000 + i))"
	"$PGT" --quiet snapshot prod n1 "$T/data" --full >/dev/null 2>&1 &
	pid=$!
	sleep "0.$(printf '%02d' $(( (RANDOM % 60) + 2 )))"
	if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
	wait "$pid" 2>/dev/null || true
	[ "$(nsnap)" -le "$i" ] || fail "listing grew past the snapshots that completed"
done
ok "killed snapshot $kills times out of 8 at random moments"
pgt snapshot prod n1 "$T/data" >"$T/out" || fail "snapshot after kills failed"
pgt check --read-data >/dev/null || fail "check after kills is not clean"
verify_cat_bulk "$T/data" prod/latest/n1
ok "next snapshot succeeds, check --read-data is clean, data reads back"

# two writers at once: both succeed (the second waits for the lock)
echo a >>"$T/data/PG_VERSION"
before=$(nsnap)
"$PGT" --quiet snapshot prod n1 "$T/data" --full & p1=$!
"$PGT" --quiet snapshot prod n2 "$T/data" --full & p2=$!
wait "$p1" || fail "first concurrent snapshot failed"
wait "$p2" || fail "second concurrent snapshot failed"
[ "$(nsnap)" = $((before + 2)) ] || fail "two concurrent snapshots did not both land"
pgt check --read-data >/dev/null || fail "check after concurrent snapshots is not clean"
node=$(pgt --json ls prod/latest | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])')
verify_cat_bulk "$T/data" "prod/latest/$node"
ok "two snapshots at once: both succeed, catalog consistent"

# with --wait 0 the second refuses with a clear message
"$PGT" --quiet snapshot prod n1 "$T/data" --full & p1=$!
for _ in $(seq 100); do [ -s "$T/state/writer.lock" ] && break; sleep 0.01; done
expect_fail "second writer with --wait 0" 1 pgt --wait 0 snapshot prod n3 "$T/data"
err_has "another pgtimefs process"
wait "$p1" || fail "the first writer failed"
pgt check >/dev/null || fail "check is not clean"
ok "with --wait 0 the second writer refuses clearly"
echo "$CHECKS passed, 0 failed"
