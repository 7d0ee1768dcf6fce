#!/bin/sh
# Assemble the default module store and its trust store, signed:
#   OUT/modules/<name>/{<name>.so, payloads, profile.yaml, manifest.json, manifest.sig}
#   OUT/trust/keys/publisher/aik-local.pub
#   OUT/trust/keys/evolution/aik-evolution.pub   (when adapters are packaged)
#   OUT/trust/manifests/<digest>.{json,sig}      every signed manifest, for lineage checks
#   OUT/signing/aik-local.key, aik-evolution.key (private keys stay with the build)
# A real distribution signs with its own publisher key; a build signs with
# keys it generates once (kept in OUT/signing, reused on rebuilds).
#
# ADAPTER_DIR (optional) holds distilled capability adapters, one directory
# per capability module (docs/distillation.md):
#   ADAPTER_DIR/<module>/{capability, adapter.alr1, eval-sidecar.json,
#                         cases.jsonl, min-pass-rate, trajectories.sha256}
# Each becomes a derived module: the capability module plus its adapter,
# parents = the module and the base, signed with the evolution key; it is
# refused unless the sidecar names exactly this base, adapter and cases and
# passed (aikctl distill --package-only).
# Usage: make-module-store.sh AIKCTL MODULE_DIR PROFILE_DIR BASE_PAYLOAD OUT [STAMP [ADAPTER_DIR]]
set -eu
aikctl=$1 moddir=$2 profiles=$3 payload=$4 out=$5
stamp=${6:-}
adapters=${7:-}
mkdir -p "$out/signing" "$out/trust/keys/publisher" "$out/trust/manifests" "$out/modules"
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
    "$aikctl" sign "$d.tmp" --key "$key.key" --store "$out/trust/manifests" >/dev/null
    rm -rf "$d"
    mv "$d.tmp" "$d"
}
add aik-base "$moddir/llama/aik-base.so" "$payload"
for cap in define synonyms example; do
    add "aik-lexicon-$cap" "$moddir/lexicon/aik-lexicon-$cap.so"
done

if [ -n "$adapters" ] && [ -d "$adapters" ]; then
    evo="$out/signing/aik-evolution"
    if [ ! -f "$evo.key" ]; then
        "$aikctl" keygen --out "$evo" >/dev/null
    fi
    mkdir -p "$out/trust/keys/evolution" "$out/staging"
    cp "$evo.pub" "$out/trust/keys/evolution/aik-evolution.pub"
    for a in "$adapters"/*/; do
        a=${a%/}
        name=$(basename "$a")
        [ -f "$a/adapter.alr1" ] || continue
        rm -rf "$out/staging/$name"
        "$aikctl" distill --package-only --store "$out/modules" --trust "$out/trust" \
            --capability "$(cat "$a/capability")" --cases "$a/cases.jsonl" \
            --adapter "$a/adapter.alr1" --sidecar "$a/eval-sidecar.json" \
            --min-pass-rate "$(cat "$a/min-pass-rate")" --data "trajectories=$(cat "$a/trajectories.sha256")" \
            --key "$evo.key" --out "$out/staging/$name" --manifest-store "$out/trust/manifests" >/dev/null
        rm -rf "$out/modules/$name"
        mv "$out/staging/$name" "$out/modules/$name"
    done
    rmdir "$out/staging" 2>/dev/null || true
fi
if [ -n "$stamp" ]; then touch "$stamp"; fi
