#!/usr/bin/env bash
# test.sh: installs what is missing, builds (plain and ASan+UBSan), and runs every test with ctest.
# Usage: ./tools/test.sh [ctest args...]   (e.g. -L unit, -R faults)
set -euo pipefail
PGT_TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$PGT_TOP/tools/deps.sh"
pgt_deps

echo "== build (plain)"
pgt_build "$PGT_TOP/build"
echo "== build (AddressSanitizer + UndefinedBehaviorSanitizer)"
pgt_build "$PGT_TOP/build-asan" -DPGTIMEFS_SANITIZE=ON

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rc=0
echo "== tests (plain)"
(cd "$PGT_TOP/build" && ctest --output-on-failure --no-tests=error -j 2 "$@") || rc=1
echo "== tests (sanitizers)"
(cd "$PGT_TOP/build-asan" && ctest --output-on-failure --no-tests=error -j 2 "$@") || rc=1
if [ $rc = 0 ]; then echo "all tests passed (plain and sanitizer builds)"; else echo "TESTS FAILED" >&2; fi
exit $rc
