#!/bin/sh
# Single-batch decode against the memory roofline, on the SmolLM2-135M shape
# (width 576, 30 layers, 9 heads, 3 kv heads, FFN 1536, vocabulary 49152,
# random weights) in f32, q8_0 and q4_0:
#   roofline tg t/s = measured read bandwidth / weight bytes per token
# (every decoded token reads every weight once; the tied embedding is read
# whole by the output head). Prints pp512 / tg128 with their ratio to it.
# Usage: benchmarks/roofline/decode-roofline.sh [BUILD_DIR] [THREADS]
set -eu
build=${1:-build} threads=${2:-2}
aikctl="$build/tools/aikctl/aikctl"
work=${AIK_BENCH_DIR:-$build/bench-135m}
mkdir -p "$work"
bw=$("$build/benchmarks/roofline/membw" "$threads" 1024)
echo "memory read bandwidth ($threads threads): $bw GB/s"
printf '%-6s %10s %10s %10s %12s %10s\n' dtype "weights" "pp512 t/s" "tg128 t/s" "roofline t/s" "tg/roof"
for dt in f32 q8_0 q4_0; do
    pkg="$work/smollm2-135m-$dt.slm"
    [ -f "$pkg" ] || "$aikctl" init-model "$pkg" --shape smollm2-135m --dtype "$dt" --seed 1 >/dev/null
    json=$("$aikctl" bench "$pkg" -t "$threads" -r 5 --json)
    python3 - "$dt" "$bw" <<PY
import json, sys
j = json.loads('''$json''')
dt, bw = sys.argv[1], float(sys.argv[2])
wb = j["weight_bytes"]
roof = bw * 1e9 / wb
tg = j["tg"]["tps_median"]
print("%-6s %8.1fMB %10.1f %10.2f %12.2f %9.0f%%" % (dt, wb / 1e6, j["pp"]["tps_median"], tg, roof, 100 * tg / roof))
PY
done
