#!/bin/sh
# Single-batch decode against the memory roofline, on the SmolLM2-135M shape
# (width 576, 30 layers, 9 heads, 3 kv heads, FFN 1536, vocabulary 49152,
# random weights) in f32, q8_0 and q4_0:
#   roofline tg t/s = measured read bandwidth / weight bytes per token
# (every decoded token reads every weight once; the tied embedding is read
# whole by the output head). Prints pp512 / tg128 with their ratio to it.
#
# The read bandwidth of a shared VM moves by 20% and more from one minute
# to the next, and decode with it, so the two are measured together: tg128
# runs in ROUNDS rounds (default 5) of 3 repetitions, each round between
# two bandwidth readings, and the higher reading is that round's roofline
# (the conservative choice: a higher bandwidth gives a lower ratio). Each
# repetition's ratio is its t/s over its own round's roofline; "tg/roof" is
# the median of those ratios, "best/roof" the highest. "GB/s" and "roof t/s"
# are the medians over the rounds; "tg128 t/s" the median repetition;
# "steal" the median over the rounds of the host's steal time during the
# repetitions (aikctl bench reads /proc/stat; -1: not known).
# AIK_ROOF_ROUNDS=1 in the environment also prints every round (stderr).
# Usage: benchmarks/roofline/decode-roofline.sh [BUILD_DIR] [THREADS] [DTYPES] [ROUNDS]
set -eu
build=${1:-build} threads=${2:-2} dtypes=${3:-f32 q8_0 q4_0} rounds=${4:-5}
aikctl="$build/tools/aikctl/aikctl"
membw="$build/benchmarks/roofline/membw"
work=${AIK_BENCH_DIR:-$build/bench-135m}
mkdir -p "$work"
printf '%-6s %9s %8s %10s %10s %9s %10s %8s %9s %7s\n' dtype weights "GB/s" "pp512 t/s" "tg128 t/s" "best t/s" \
    "roof t/s" "tg/roof" "best/roof" steal
for dt in $dtypes; do
    pkg="$work/smollm2-135m-$dt.slm"
    [ -f "$pkg" ] || "$aikctl" init-model "$pkg" --shape smollm2-135m --dtype "$dt" --seed 1 >/dev/null
    pp=$("$aikctl" bench "$pkg" -t "$threads" -p 512 -n 0 -r 5 --json)
    runs=""
    for r in $(seq "$rounds"); do
        bw0=$("$membw" "$threads" 1024)
        tg=$("$aikctl" bench "$pkg" -t "$threads" -p 0 -n 128 -r 3 --json)
        bw1=$("$membw" "$threads" 1024)
        runs="$runs$bw0 $bw1 $(printf '%s' "$tg" | python3 -c \
            'import json, sys; j = json.load(sys.stdin); print(j.get("host_steal_pct", -1), j["weight_bytes"], *j["tg"]["tps_samples"])')
"
    done
    python3 - "$dt" "$pp" "$runs" <<'PY'
import json, os, statistics, sys
dt, pp, runs = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
tps, ratios, bws, roofs, steals = [], [], [], [], []
for line in runs.strip().splitlines():
    bw0, bw1, steal, wb, *samples = (float(v) for v in line.split())
    steals.append(steal)
    bw = max(bw0, bw1)
    roof = bw * 1e9 / wb
    bws.append(bw)
    roofs.append(roof)
    tps += samples
    ratios += [s / roof for s in samples]
    if os.environ.get("AIK_ROOF_ROUNDS") == "1":
        print("  %s round: GB/s %.2f %.2f, roof %.1f t/s, steal %.0f%%, tg128 %s" % (dt, bw0, bw1, roof, steal,
              " ".join("%.1f (%.0f%%)" % (s, 100 * s / roof) for s in samples)), file=sys.stderr)
print("%-6s %7.1fMB %8.2f %10.1f %10.2f %9.2f %10.2f %7.0f%% %8.0f%% %6.0f%%"
      % (dt, wb / 1e6, statistics.median(bws), pp["pp"]["tps_median"], statistics.median(tps), max(tps),
         statistics.median(roofs), 100 * statistics.median(ratios), 100 * max(ratios), statistics.median(steals)))
PY
done
