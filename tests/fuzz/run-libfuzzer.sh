#!/bin/sh
# Run a libFuzzer target for a fixed time over a scratch copy of its corpus
# (libFuzzer writes new inputs into the first directory; the source tree's
# corpus stays read-only). Usage: run-libfuzzer.sh FUZZER SECONDS CORPUS_DIR
set -eu
fuzzer=$1 seconds=$2 corpus=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
exec_status=0
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "$scratch" "$corpus" || exec_status=$?
exit $exec_status
