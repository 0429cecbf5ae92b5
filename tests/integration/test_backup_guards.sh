#!/usr/bin/env bash
# Online backups refuse, before any data moves, what cannot give a restorable snapshot: a node
# that is a standby, and a data-dir of another server (also for a least-privilege backup role,
# which may not read data_directory). They outlast a server's idle_session_timeout, which
# would end the idle session that ran pg_backup_start.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"

P1=$(free_port) P2=$(free_port) P3=$(free_port)
pg_init prim "$P1"
pg_init other "$P3"
pg_start prim
pg_start other
"$PG_BIN/pgbench" -h "$SOCK" -p "$P1" -U postgres -i -s 3 -q postgres >/dev/null 2>&1 || fail "pgbench -i"
# a backup role with no more than the backup needs: no superuser, no pg_read_all_settings
sql "$P1" "CREATE ROLE bk LOGIN REPLICATION;
GRANT EXECUTE ON FUNCTION pg_backup_start(text, boolean) TO bk;
GRANT EXECUTE ON FUNCTION pg_backup_stop(boolean) TO bk;
GRANT EXECUTE ON FUNCTION pg_create_physical_replication_slot(name, boolean, boolean) TO bk;
GRANT EXECUTE ON FUNCTION pg_create_restore_point(text) TO bk;
GRANT EXECUTE ON FUNCTION pg_control_checkpoint() TO bk;
GRANT EXECUTE ON FUNCTION pg_control_system() TO bk;" >/dev/null
as_pg "$PG_BIN/pg_basebackup" -h "$SOCK" -p "$P1" -U postgres -D "$PGROOT/stby" -R -X stream -c fast >/dev/null 2>&1 ||
	fail "pg_basebackup of the standby"
sed -i "s/^port = .*/port = $P2/" "$PGROOT/stby/postgresql.conf"
pg_start stby
[ "$(sql "$P2" "SELECT pg_is_in_recovery()")" = t ] || fail "the standby is not in recovery"
# conf CLUSTER PORT USER [DATA-DIR]: a cluster of one node, n1
conf() {
	printf '\n[cluster %s]\n' "$1"
	conf_node "$1" n1 "$2" "$3" "${4:-}"
}
{
	conf wrongdir "$P1" bk "$PGROOT/other"
	conf standby "$P2" postgres
	conf standbylocal "$P2" postgres "$PGROOT/stby"
	conf prod "$P1" bk "$PGROOT/prim"
	conf prodnet "$P1" bk
} >>"$PGTIMEFS_CONFIG"
pgt init >/dev/null
packs() { find "$Z1/packs" -type f | wc -l; }
nsnap() { pgt --json list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

before=$(packs)
expect_fail "backup with another server's data-dir" 1 pgt backup wrongdir
err_has "belongs to another server"
err_has "fix data-dir"
[ "$(nsnap)" = 0 ] || fail "a refused backup was listed"
[ "$(packs)" = "$before" ] || fail "a backup refused for its data-dir stored data"
ok "a data-dir of another server is refused for a role that cannot read data_directory, nothing stored"

for c in standby standbylocal; do
	expect_fail "backup of a standby ($c)" 1 pgt backup "$c"
	err_has "is a standby"
	err_has "primary"
done
[ "$(nsnap)" = 0 ] || fail "a refused standby backup was listed"
[ "$(packs)" = "$before" ] || fail "a standby's refused backup stored data"
ok "a standby is refused before any data moves, over the network and locally"

# the server ends sessions idle for 100 ms; both paths keep the session of pg_backup_start
# idle far longer while they read the data
sql "$P1" "ALTER SYSTEM SET idle_session_timeout = '100ms'" >/dev/null
sql "$P1" "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
[ "$(sql "$P1" "SHOW idle_session_timeout")" = 100ms ] || fail "idle_session_timeout not in effect"
for c in prod prodnet; do
	pgt backup "$c" >"$T/out" 2>"$T/err" || { cat "$T/err"; fail "backup $c under idle_session_timeout"; }
done
[ "$(nsnap)" = 2 ] || fail "the backups under idle_session_timeout are not listed"
rows=$(sql "$P1" "SELECT count(*) FROM pgbench_accounts")
extract prod/latest/n1 "$T/copy"
[ "$(cat "$T/copy/PG_VERSION")" = 15 ] || fail "the snapshot's PG_VERSION"
[ "$rows" = 300000 ] || fail "pgbench_accounts has $rows rows"
ok "backups over the network and locally outlast idle_session_timeout (100 ms) on the server"

# a node that stops sending (here its checkpointer stopped: BASE_BACKUP waits on it for ever)
# fails the backup after backup-stall-timeout instead of holding the writer lock for ever
ckpt=$(sql "$P1" "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
[ -n "$ckpt" ] || fail "no checkpointer found"
sed -i 's|^\[repository\]$|[repository]\nbackup-stall-timeout = 2s|' "$PGTIMEFS_CONFIG"
kill -STOP "$ckpt"
cleanup_hooks+=("kill -CONT $ckpt 2>/dev/null")
t0=$(date +%s)
expect_fail "backup of a node that stops sending" 1 timeout 60 "$PGT" backup prodnet
err_has "sent nothing for 2 s: the backup stalled"
[ $(($(date +%s) - t0)) -lt 30 ] || fail "the stalled backup took $(($(date +%s) - t0)) s to fail"
# the local path: pg_backup_start waits on the stopped checkpointer; the server cancels it
t0=$(date +%s)
expect_fail "local backup of a node whose checkpointer stopped" 1 timeout 60 "$PGT" backup prod
kill -CONT "$ckpt"
err_has "node n1: pg_backup_start (its checkpoint) did not return within 2 s: the backup stalled"
err_has "backup-stall-timeout"
[ $(($(date +%s) - t0)) -lt 30 ] || fail "the stalled local backup took $(($(date +%s) - t0)) s to fail"
[ "$(nsnap)" = 2 ] || fail "a stalled backup was listed"
pgt backup prodnet >/dev/null || fail "a backup after the stall"
pgt backup prod >/dev/null || fail "a local backup after the stall"
ok "a node that sends nothing, or whose pg_backup_start does not return, for backup-stall-timeout (2 s) fails the backup, over the network and locally; the next ones succeed"

echo "$CHECKS passed, 0 failed"
