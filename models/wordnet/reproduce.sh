#!/bin/sh
# Reproduce the embedded default model from Debian's wordnet-base:
#   corpus (deterministic) -> BPE tokenizer -> 3.2 M parameter llama model,
#   trained in two stages (recipe.json, then recipe-stage2.json).
# Usage: models/wordnet/reproduce.sh [BUILD_DIR]   (default: build)
# Resumes from build/checkpoint.bin if a previous run was interrupted.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${1:-$top/build}
sh "$top/scripts/install-deps.sh"
[ -f "$build/build.ninja" ] || meson setup "$build" "$top"
meson compile -C "$build" aikctl
python3 "$here/build_corpus.py" "$here/corpus"
mkdir -p "$here/build"
# stage 1: tokenizer + 1500 steps from scratch; stage 2: 2600 more steps
"$build/tools/aikctl/aikctl" train "$here/recipe.json" --resume
cp "$here/aik-wordnet.slm" "$here/build/stage1.slm"
"$build/tools/aikctl/aikctl" train "$here/recipe-stage2.json" --resume
"$build/tools/aikctl/aikctl" check "$here/aik-wordnet.slm"
