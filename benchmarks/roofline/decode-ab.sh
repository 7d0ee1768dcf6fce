#!/bin/bash
# Interleaved before/after decode comparison of two builds, for a machine
# shared with other jobs: per round, the read bandwidth (membw), then
# aikctl bench tgN of each build (which one goes first alternates) on the
# 135M-shaped q8_0 and q4_0 packages of decode-roofline.sh. Prints t/s, the
# share of that round's roofline, and new/old per round; compare ratios.
# Usage: benchmarks/roofline/decode-ab.sh OLD_BUILD NEW_BUILD [ROUNDS] [THREADS] [TOKENS]
set -eu
old=$1 new=$2 rounds=${3:-5} threads=${4:-2} n=${5:-128}
work=${AIK_BENCH_DIR:-$new/bench-135m}
mkdir -p "$work"
for dt in q8_0 q4_0; do
    pkg="$work/smollm2-135m-$dt.slm"
    [ -f "$pkg" ] || "$new/tools/aikctl/aikctl" init-model "$pkg" --shape smollm2-135m --dtype "$dt" --seed 1 >/dev/null
done
tg() {
    "$1/tools/aikctl/aikctl" bench "$work/smollm2-135m-$2.slm" -p 0 -n "$n" -r 5 -t "$threads" --json |
        python3 -c 'import json, sys; j = json.load(sys.stdin); print("%.2f %d" % (j["tg"]["tps_median"], j["weight_bytes"]))'
}
for r in $(seq "$rounds"); do
    bw=$("$new/benchmarks/roofline/membw" "$threads" 1024)
    for dt in q8_0 q4_0; do
        if [ $((r % 2)) = 1 ]; then a=$(tg "$old" $dt); b=$(tg "$new" $dt); else b=$(tg "$new" $dt); a=$(tg "$old" $dt); fi
        python3 - "$r" "$dt" "$bw" $a $b "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import sys
r, dt, bw, a, wb, b, _, load = sys.argv[1:]
bw, a, wb, b = float(bw), float(a), float(wb), float(b)
roof = bw * 1e9 / wb
print("round %s %-5s bw %5.2f GB/s roofline %6.1f t/s | old %6.1f (%3.0f%%) new %6.1f (%3.0f%%) new/old %.2f | load %s"
      % (r, dt, bw, roof, a, 100 * a / roof, b, 100 * b / roof, b / a, load))
PY
    done
done
