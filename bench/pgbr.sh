# bench/pgbr.sh: pgBackRest 2.45 as the benches set it up (sourced, not run): the issues'
# settings (compress-type=zst, repo1-cipher-type=aes-256-cbc, process-max=2, start-fast=y),
# a local repository, quiet logs, stanza "bench".

# pgbr_conf CONF DIR PGDATA PORT SOCK: writes CONF, with the repository, logs, locks and spool
# under DIR (made here), all owned by postgres
pgbr_conf() {
	local conf=$1 dir=$2 pgdata=$3 port=$4 sock=$5
	mkdir -p "$dir/repo" "$dir/log" "$dir/lock" "$dir/spool"
	cat >"$conf" <<CONF
[global]
repo1-path=$dir/repo
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=bench-cipher-pass
repo1-retention-full=2
compress-type=zst
process-max=2
start-fast=y
log-path=$dir/log
lock-path=$dir/lock
spool-path=$dir/spool
log-level-console=warn
log-level-file=off

[bench]
pg1-path=$pgdata
pg1-port=$port
pg1-socket-path=$sock
CONF
	chown -R postgres "$dir" "$conf"
}
