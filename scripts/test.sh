#!/bin/sh
# The whole test suite, as CI runs it:
#   1. a normal build: suites unit, integration, fuzz-smoke (and slow when
#      AIK_SLOW=1);
#   2. the unit suite again under AddressSanitizer + UBSan;
#   3. a clang libFuzzer build running every fuzz target for a fixed time.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
jobs=$(nproc)

meson setup build --reconfigure >/dev/null 2>&1 || meson setup build
meson compile -C build -j "$jobs"
suites="--suite unit --suite integration --suite fuzz-smoke"
[ "${AIK_SLOW:-0}" = 1 ] && suites="$suites --suite slow"
# shellcheck disable=SC2086
meson test -C build $suites --print-errorlogs --num-processes "$jobs"

meson setup build-asan -Dsanitizers=enabled -Db_lundef=false --reconfigure >/dev/null 2>&1 ||
    meson setup build-asan -Dsanitizers=enabled -Db_lundef=false
meson compile -C build-asan -j "$jobs"
meson test -C build-asan --suite unit --print-errorlogs --num-processes "$jobs"

if [ "${AIK_SKIP_LIBFUZZER:-0}" != 1 ]; then
    CC=clang meson setup build-fuzz -Dfuzzing=enabled -Db_lundef=false --reconfigure >/dev/null 2>&1 ||
        CC=clang meson setup build-fuzz -Dfuzzing=enabled -Db_lundef=false
    meson compile -C build-fuzz -j "$jobs"
    meson test -C build-fuzz --suite fuzz --print-errorlogs --num-processes "$jobs"
fi
echo "all tests passed"
