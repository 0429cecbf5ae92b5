# lib.sh: shared setup and assertions for the integration tests (sourced, not run).
# Each test gets a fresh temporary directory with a three-zone repository configuration.
# Exit codes: 0 pass, 1 fail, 77 skip (ctest SKIP_RETURN_CODE); a skip always says why.
set -euo pipefail

PGT=${PGTIMEFS_BIN:?PGTIMEFS_BIN must name the pgtimefs binary}
T=$(mktemp -d "${TMPDIR:-/tmp}/pgtimefs-it.XXXXXX")
CHECKS=0
cleanup_hooks=()
cleanup() {
	local h
	for h in "${cleanup_hooks[@]}"; do eval "$h" || true; done
	rm -rf "$T"
}
trap cleanup EXIT

export PGTIMEFS_CONFIG=$T/pgtimefs.conf
export PGTIMEFS_PASSPHRASE=correct-horse-battery
Z1=$T/zone-a Z2=$T/zone-b Z3=$T/zone-c
cat >"$PGTIMEFS_CONFIG" <<CONF
[repository]
zones = $Z1 $Z2 $Z3
state-dir = $T/state
kdf-log2n = 10      ; fast key derivation for tests only
CONF

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
ok() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }

# expect_fail "what" CODE CMD... : the command must exit with CODE; its stderr is kept in $T/err
expect_fail() {
	local what=$1 code=$2 rc=0
	shift 2
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" = "$code" ] || { cat "$T/err" >&2; fail "$what: exit $rc, expected $code"; }
}
# err_has TEXT: the last expect_fail's stderr mentions TEXT
err_has() { grep -qF -- "$1" "$T/err" || { cat "$T/err" >&2; fail "stderr lacks '$1'"; }; }

# make_tree DIR SEED: regular, empty, sparse and large files, symlinks, a fifo, odd modes
# and owners, nested directories and a relation-like layout
make_tree() {
	local d=$1 seed=$2
	mkdir -p "$d/base/16384" "$d/global" "$d/pg_wal" "$d/deep/a/b/c" "$d/conf"
	python3 - "$d" "$seed" <<'PY'
import os, random, sys
d, seed = sys.argv[1], int(sys.argv[2])
r = random.Random(seed)
def w(p, data):
    with open(os.path.join(d, p), "wb") as f:
        f.write(data)
# relation files: pages with some structure, plus a compressible one
w("base/16384/16385", b"".join(r.randbytes(100) + bytes(8092) for _ in range(300)))
w("base/16384/16385_fsm", bytes(24576))
w("base/16384/16386", b"".join((b"row %08d filler" % i).ljust(8192, b" ") for i in range(500)))
w("base/16384/16386.1", r.randbytes(200000))
w("global/1262", r.randbytes(8192 * 3))
w("pg_wal/000000010000000000000001", r.randbytes(1 << 20))
w("conf/postgresql.conf", b"".join(b"# line %d\n" % i for i in range(2000)))
w("PG_VERSION", b"15\n")
w("random.bin", r.randbytes(3 * 1024 * 1024 + 17))
w("deep/a/b/c/tiny", b"x")
w("empty", b"")
for i in range(40):
    w("deep/a/f%03d" % i, r.randbytes(r.randrange(0, 20000)))
PY
	truncate -s 20M "$d/sparse"
	printf 'end' >>"$d/sparse"
	dd if=/dev/urandom of="$d/sparse" bs=4096 seek=100 count=3 conv=notrunc status=none
	ln -s PG_VERSION "$d/link-to-version"
	ln -s /nonexistent/target "$d/dangling"
	mkfifo "$d/fifo"
	chmod 0600 "$d/base/16384/16385"
	chmod 0750 "$d/deep"
	chmod 4755 "$d/random.bin"
	chown 65534:65534 "$d/conf/postgresql.conf" 2>/dev/null || true
	touch -h -d '2001-02-03 04:05:06.123456789' "$d/link-to-version"
	touch -d '1999-12-31 23:59:59.5' "$d/PG_VERSION"
}

# files_of DIR: relative paths of regular files, sorted
files_of() { (cd "$1" && find . -type f -printf '%P\n' | LC_ALL=C sort); }

# verify_cat DIR SNAPPATH: every regular file of DIR reads back byte for byte via `pgtimefs cat`
verify_cat() {
	local dir=$1 snap=$2 f n=0
	while IFS= read -r f; do
		"$PGT" cat "$snap/$f" | cmp -s - "$dir/$f" || fail "cat $snap/$f differs from $dir/$f"
		n=$((n + 1))
	done < <(files_of "$dir")
	[ "$n" -gt 0 ] || fail "no files compared"
}

# all_in_one_digest DIR SNAPPATH: one `cat` of every file, compared as one stream (fast)
verify_cat_bulk() {
	local dir=$1 snap=$2
	local -a paths=() orig=()
	while IFS= read -r f; do paths+=("$snap/$f"); orig+=("$dir/$f"); done < <(files_of "$dir")
	local a b
	a=$("$PGT" cat "${paths[@]}" | sha256sum)
	b=$(cat "${orig[@]}" | sha256sum)
	[ "$a" = "$b" ] || fail "bulk cat of $snap differs from $dir"
}

pgt() { "$PGT" "$@"; }
