#!/usr/bin/env bash
# Page checksums: a server with data checksums (initdb -k) and one damaged page; both backup
# paths report exactly that page (file, block) and succeed. Also: wal_level too low is refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"

P=$(free_port)
pg_init n "$P" -k
pg_start n
sql "$P" "CREATE TABLE t AS SELECT g, repeat(md5(g::text), 4) AS pad FROM generate_series(1, 20000) g" >/dev/null
sql "$P" "VACUUM FREEZE t"
sql "$P" "CHECKPOINT"
rel=$(sql "$P" "SELECT pg_relation_filepath('t')")
[ "$(sql "$P" "SHOW data_checksums")" = on ] || fail "checksums are not on"
pg_stop n
# damage block 3 in the middle of its tuples: the page header (and its LSN) stays as it was
printf 'DAMAGE' | dd of="$PGROOT/n/$rel" bs=1 seek=$((8192 * 3 + 5000)) conv=notrunc status=none
pg_start n
cat >>"$PGTIMEFS_CONFIG" <<CONF

[cluster chk]

[node chk/stream]
conninfo = host=127.0.0.1 port=$P user=postgres dbname=postgres

[node chk/local]
conninfo = host=$SOCK port=$P user=postgres dbname=postgres
data-dir = $PGROOT/n
CONF
pgt init >/dev/null
pgt --json backup chk >"$T/b.json" || fail "backup of a server with a damaged page must succeed"
python3 - "$T/b.json" "$rel" <<'PY' || fail "damaged page report"
import json, sys
r, rel = json.load(open(sys.argv[1])), sys.argv[2]
for n in r["nodes"]:
    print("  %s: %d pages verified, damaged: %s" % (n["node"], n["pages_checked"], n["damaged_pages"][:5]))
    assert n["data_checksums"] is True, n
    assert n["pages_checked"] > 100, n
    assert n["damaged_pages"] == [{"file": rel, "block": 3}], n
PY
ok "both paths verify every page and report exactly the damaged one ($rel block 3), without failing"
# the whole output first: grep -q would stop reading at the first match, and the backup
# still writing would meet a closed pipe (under load this left the second backup unfinished)
pgt backup chk >"$T/b.txt" || fail "second backup of a server with a damaged page must succeed"
grep -q "WARNING: damaged page: $rel block 3" "$T/b.txt" || fail "text output lacks the warning"
ok "the text output warns about the damaged page"
pgt --json list chk >"$T/list.json"
# the first snapshot: both paths read every page. In the second, the local path reads only
# the files changed since the first (as incremental backups do): whether the damaged file
# counts as changed depends on how soon after its damage the first backup started
[ "$(python3 -c 'import json,sys; print(sum(n["damaged_pages"] for n in json.load(open(sys.argv[1]))["snapshots"][0]["node_backups"]))' "$T/list.json")" = 2 ] ||
	fail "list does not record damaged pages: $(python3 -c 'import json,sys; print([(s["snapshot"], [(n["node"], n["damaged_pages"]) for n in s["node_backups"]]) for s in json.load(open(sys.argv[1]))["snapshots"]])' "$T/list.json")"
ok "list records the damaged page count per node backup"

pg_stop n
pg_start n "-c wal_level=minimal -c max_wal_senders=0"
expect_fail "backup with wal_level=minimal" 1 pgt backup chk
err_has "wal_level = minimal"
err_has "HINT: set wal_level = replica"
ok "wal_level too low: refused with the setting to change"
echo "$CHECKS passed, 0 failed"
