#!/bin/sh
# Compare AIKernel with llama.cpp on the same GGUF files.
#
#   benchmarks/llamacpp/compare.sh -l LLAMA_BIN_DIR [-a AIKCTL] [-t THREADS]
#                                  [-r REPS] [-P PROMPT] [-N N] MODEL.gguf...
#
# LLAMA_BIN_DIR is a llama.cpp build supplied by whoever runs this (its
# bin/ directory with llama-bench and llama-simple or llama-cli); nothing
# here downloads or builds llama.cpp. For each GGUF file the script:
#   1. imports it with `aikctl import` (conversions, if any, are shown: a
#      converted tensor makes the speed comparison unequal, and is flagged);
#   2. runs llama-bench -p 512 -n 128 and `aikctl bench -p 512 -n 128
#      --json` with the same thread count, and prints pp512 / tg128 tokens
#      per second for each engine and the ratio aikernel / llama.cpp;
#   3. when every tensor of the imported package is f32, runs both engines
#      greedily (llama-simple, or llama-cli --temp 0) on the same prompt and
#      checks that the generated text is identical.
# Exit status: 0 when every greedy check that ran agreed, 1 otherwise.
# Needs: sh, python3 (JSON parsing), a built aikctl. Run by its author against
# llama.cpp c392e50 (Feb 2025, CPU build): see docs/interop.md.
set -eu

usage() {
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

llama_dir="" aikctl="" threads="" reps=3 prompt="The capital of France is" n_gen=32
while getopts l:a:t:r:P:N:h opt; do
    case $opt in
    l) llama_dir=$OPTARG ;;
    a) aikctl=$OPTARG ;;
    t) threads=$OPTARG ;;
    r) reps=$OPTARG ;;
    P) prompt=$OPTARG ;;
    N) n_gen=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
if [ -z "$llama_dir" ] || [ $# -eq 0 ]; then usage; fi
here=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "$aikctl" ]; then
    for c in "$here"/build*/tools/aikctl/aikctl; do
        [ -x "$c" ] && aikctl=$c && break
    done
fi
if [ -z "$aikctl" ] || [ ! -x "$aikctl" ]; then echo "compare.sh: no aikctl found (use -a)" >&2; exit 2; fi
bench="$llama_dir/llama-bench"
[ -x "$bench" ] || { echo "compare.sh: $bench not found" >&2; exit 2; }
simple=""
[ -x "$llama_dir/llama-simple" ] && simple="$llama_dir/llama-simple"
cli=""
[ -x "$llama_dir/llama-cli" ] && cli="$llama_dir/llama-cli"
[ -n "$threads" ] || threads=$(nproc)
command -v python3 >/dev/null || { echo "compare.sh: python3 is needed to read JSON" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0

printf '%-28s %-6s %12s %12s %8s  %s\n' "model" "test" "llama.cpp" "aikernel" "ratio" "notes"
for gguf in "$@"; do
    name=$(basename "$gguf" .gguf)
    pkg="$work/$name.slm"
    notes=""
    if ! "$aikctl" import "$gguf" -o "$pkg" --no-profile >"$work/import.out" 2>"$work/import.err"; then
        printf '%-28s import failed: %s\n' "$name" "$(tail -n 1 "$work/import.err")"
        status=1
        continue
    fi
    grep -q 'warning' "$work/import.err" && notes="converted tensors (see aikctl import)"

    "$bench" -m "$gguf" -p 512 -n 128 -t "$threads" -r "$reps" -o json >"$work/llama.json" 2>"$work/llama.err" ||
        { echo "compare.sh: llama-bench failed on $gguf: $(tail -n 1 "$work/llama.err")" >&2; status=1; continue; }
    "$aikctl" bench "$pkg" -p 512 -n 128 -t "$threads" -r "$reps" --json >"$work/aik.json" 2>"$work/aik.err" ||
        { echo "compare.sh: aikctl bench failed on $pkg: $(tail -n 1 "$work/aik.err")" >&2; status=1; continue; }
    python3 - "$work/llama.json" "$work/aik.json" "$name" "$notes" <<'PY'
import json, sys
llama = json.load(open(sys.argv[1]))
aik = json.load(open(sys.argv[2]))
name, notes = sys.argv[3], sys.argv[4]
def llama_ts(pp):
    for r in llama:
        if pp and r.get("n_prompt") == 512 and r.get("n_gen") == 0:
            return r["avg_ts"]
        if not pp and r.get("n_gen") == 128 and r.get("n_prompt") == 0:
            return r["avg_ts"]
    return None
for test, pp in (("pp512", True), ("tg128", False)):
    l = llama_ts(pp)
    a = aik.get("pp" if pp else "tg", {}).get("tps_median")
    ratio = "%.3f" % (a / l) if l and a else "-"
    print("%-28s %-6s %12s %12s %8s  %s" % (name, test, "%.2f" % l if l else "-", "%.2f" % a if a else "-", ratio, notes))
PY

    # Greedy agreement only makes sense bit-for-bit on f32 weights.
    all_f32=$("$aikctl" inspect "$pkg" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print("yes" if all(t["dtype"] == "f32" for t in d["tensors"]) else "no")')
    [ "$all_f32" = yes ] || continue
    "$aikctl" generate "$pkg" -p "$prompt" -n "$n_gen" --temp 0 -t "$threads" --no-stats >"$work/aik.txt" 2>/dev/null || true
    if [ -n "$simple" ]; then
        "$simple" -m "$gguf" -n "$n_gen" "$prompt" >"$work/llama.txt" 2>/dev/null || true
    elif [ -n "$cli" ]; then
        "$cli" -m "$gguf" -p "$prompt" -n "$n_gen" --temp 0 -t "$threads" -no-cnv --no-warmup --simple-io \
            >"$work/llama.txt" 2>/dev/null </dev/null || true
    else
        echo "compare.sh: neither llama-simple nor llama-cli in $llama_dir: greedy check skipped" >&2
        continue
    fi
    if python3 - "$work/aik.txt" "$work/llama.txt" <<'PY'
import sys
a = open(sys.argv[1], encoding="utf-8", errors="replace").read().strip()
b = open(sys.argv[2], encoding="utf-8", errors="replace").read().strip()
sys.exit(0 if a == b else 1)
PY
    then
        printf '%-28s greedy f32 output: identical\n' "$name"
    else
        printf '%-28s greedy f32 output: DIFFERENT\n  aikernel:  %s\n  llama.cpp: %s\n' "$name" \
            "$(head -c 300 "$work/aik.txt")" "$(head -c 300 "$work/llama.txt")"
        status=1
    fi
done
exit $status
