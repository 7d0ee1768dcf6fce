#!/bin/sh
# Single-batch decode against the memory roofline, on the SmolLM2-135M shape
# (width 576, 30 layers, 9 heads, 3 kv heads, FFN 1536, vocabulary 49152,
# random weights) in f32, q8_0 and q4_0:
#   roofline tg t/s = measured read bandwidth / weight bytes per token
# (every decoded token reads every weight once; the tied embedding is read
# whole by the output head). Prints pp512 / tg128 with their ratio to it.
#
# The read bandwidth of a shared VM moves by 20% from one minute to the
# next, so it is measured right before and right after each package's
# bench, and the higher of the two is the roofline (the conservative
# choice: a higher bandwidth gives a lower ratio). tg128 is the median of
# 5 runs; "best" is the fastest run against the same roofline.
# Usage: benchmarks/roofline/decode-roofline.sh [BUILD_DIR] [THREADS] [DTYPES]
set -eu
build=${1:-build} threads=${2:-2} dtypes=${3:-f32 q8_0 q4_0}
aikctl="$build/tools/aikctl/aikctl"
work=${AIK_BENCH_DIR:-$build/bench-135m}
mkdir -p "$work"
printf '%-6s %9s %8s %10s %10s %9s %10s %8s %8s\n' dtype weights "GB/s" "pp512 t/s" "tg128 t/s" "best t/s" \
    "roof t/s" "tg/roof" "best/roof"
for dt in $dtypes; do
    pkg="$work/smollm2-135m-$dt.slm"
    [ -f "$pkg" ] || "$aikctl" init-model "$pkg" --shape smollm2-135m --dtype "$dt" --seed 1 >/dev/null
    bw0=$("$build/benchmarks/roofline/membw" "$threads" 1024)
    json=$("$aikctl" bench "$pkg" -t "$threads" -r 5 --json)
    bw1=$("$build/benchmarks/roofline/membw" "$threads" 1024)
    python3 - "$dt" "$bw0" "$bw1" <<PY
import json, sys
j = json.loads('''$json''')
dt, bw = sys.argv[1], max(float(sys.argv[2]), float(sys.argv[3]))
wb = j["weight_bytes"]
roof = bw * 1e9 / wb
tg, best = j["tg"]["tps_median"], j["tg"]["tps_max"]
print("%-6s %7.1fMB %8.2f %10.1f %10.2f %9.2f %10.2f %7.0f%% %8.0f%%"
      % (dt, wb / 1e6, bw, j["pp"]["tps_median"], tg, best, roof, 100 * tg / roof, 100 * best / roof))
PY
done
