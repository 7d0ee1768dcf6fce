#!/bin/sh
# A/B of two bench_train binaries on a shared machine: runs them in turn,
# ROUNDS times each (A, B, A, B, ...), and prints for each the median and
# the best of: wall time per step, CPU time per step, and the fastest step
# of a run; then the ratios B/A. Interleaving spreads whatever else the
# machine does over both alike.
#
#   benchmarks/train/ab.sh BENCH_A BENCH_B [ROUNDS (5)] [bench_train arguments]
#   e.g. benchmarks/train/ab.sh old/bench_train build/benchmarks/train/bench_train 5 \
#            models/wordnet/aik-wordnet.slm --steps 5
set -eu
a=$1
b=$2
rounds=${3:-5}
[ $# -ge 3 ] && shift 3 || shift $#
[ $# -gt 0 ] || set -- models/wordnet/aik-wordnet.slm --steps 5 --warmup 1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
i=0
while [ "$i" -lt "$rounds" ]; do
    for side in A B; do
        if [ "$side" = A ]; then bin=$a; else bin=$b; fi
        "$bin" "$@" | awk -v s="$side" '/^wall per step/ { w = $4; c = $9 } /^best step/ { f = $3 }
                                          END { print s, w, c, f }' >>"$out"
    done
    i=$((i + 1))
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
best() { sort -n | head -n 1; }
echo "runs (side, wall ms/step, CPU ms/step, fastest step ms):"
cat "$out"
# the median says what a run typically saw; the best, what the code does in
# the quietest moment the machine gave each side
for stat in median best; do
    set --
    for side in A B; do
        for col in 2 3 4; do
            set -- "$@" "$(awk -v s="$side" -v c="$col" '$1 == s { print $c }' "$out" | $stat)"
        done
    done
    echo "$stat: A wall $1 CPU $2 fastest $3 ms/step; B wall $4 CPU $5 fastest $6 ms/step"
    awk -v wa="$1" -v ca="$2" -v fa="$3" -v wb="$4" -v cb="$5" -v fb="$6" -v s="$stat" \
        'BEGIN { printf "%s B/A: wall %.3f (throughput x%.2f), CPU %.3f, fastest step %.3f (x%.2f)\n",
                 s, wb / wa, wa / wb, cb / ca, fb / fa, fa / fb }'
done
