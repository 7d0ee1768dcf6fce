#!/bin/sh
# Assemble the default module store and its trust store, signed:
#   OUT/modules/<name>/{<name>.so, payloads, profile.yaml, manifest.json, manifest.sig}
#   OUT/trust/keys/publisher/aik-local.pub
#   OUT/signing/aik-local.key   (the private key stays with the build)
# A real distribution signs with its own publisher key; a build signs with a
# key it generates once (kept in OUT/signing, reused on rebuilds).
# Usage: make-module-store.sh AIKCTL MODULE_DIR PROFILE_DIR BASE_PAYLOAD OUT [STAMP]
set -eu
aikctl=$1 moddir=$2 profiles=$3 payload=$4 out=$5
mkdir -p "$out/signing" "$out/trust/keys/publisher" "$out/modules"
key="$out/signing/aik-local"
if [ ! -f "$key.key" ]; then
    "$aikctl" keygen --out "$key" >/dev/null
fi
cp "$key.pub" "$out/trust/keys/publisher/aik-local.pub"

add() { # name so-path [payload]
    d="$out/modules/$1"
    rm -rf "$d.tmp"
    mkdir -p "$d.tmp"
    cp "$2" "$d.tmp/$1.so"
    cp "$profiles/$1.yaml" "$d.tmp/profile.yaml"
    [ $# -ge 3 ] && cp "$3" "$d.tmp/"
    "$aikctl" sign "$d.tmp" --key "$key.key" >/dev/null
    rm -rf "$d"
    mv "$d.tmp" "$d"
}
add aik-base "$moddir/llama/aik-base.so" "$payload"
for cap in define synonyms example; do
    add "aik-lexicon-$cap" "$moddir/lexicon/aik-lexicon-$cap.so"
done
if [ $# -ge 6 ]; then touch "$6"; fi
