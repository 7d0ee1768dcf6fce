#!/bin/sh
# The main job on a fresh Debian 12 machine: install what is missing, build,
# and serve a few intents with the embedded default model through the
# verified module loader.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build
meson compile -C build
aikctl=build/tools/aikctl/aikctl
set -x
"$aikctl" verify build/store/modules/aik-base --trust build/store/trust
"$aikctl" resolve "what does this word mean" --explain --profiles profiles
"$aikctl" run lexicon.define "harbor"
"$aikctl" run "give me another word for" "happy"
"$aikctl" run lexicon.example "river"
"$aikctl" run text.complete 'The word "lantern" (noun) means'
