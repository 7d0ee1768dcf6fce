#!/bin/sh
# Training throughput against the machine's measured fp32 peak, in one go:
# bench_gemm measures the peak (per-core FMA rate by CPU time × threads, so
# other processes on a shared machine do not lower it), then bench_train
# runs the model's training steps and prints tokens/s, the whole step's
# GFLOP/s and the GFLOP/s inside the mat-muls, as % of that peak.
#
#   benchmarks/train/bench_train.sh [BUILD_DIR (build)] [PACKAGE] [bench_train options]
#   THREADS=N (default 2) sets the thread count of both.
set -eu
build=${1:-build}
pkg=${2:-models/wordnet/aik-wordnet.slm}
[ $# -ge 2 ] && shift 2 || shift $#
threads=${THREADS:-2}
line=$("$build/benchmarks/gemm/bench_gemm" "$threads" 0.2 3 | grep '^fp32 FMA peak')
echo "$line"
peak=$(echo "$line" | sed -n 's/.*(x [0-9]* = \([0-9.]*\)).*/\1/p')
exec "$build/benchmarks/train/bench_train" "$pkg" --threads "$threads" --peak "$peak" "$@"
