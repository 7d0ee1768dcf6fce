#!/bin/sh
# aikctl devices over a plug-in directory signed with aikctl itself: the
# reference plug-in's device is listed, an unsigned copy is refused with
# its reason (and listed, marked UNSIGNED, with --developer), and a missing
# plug-in directory is explained; aikctl bench --override runs a split plan
# with a layer on the signed plug-in's device (plugin0), and refuses plugin0
# when no plug-in directory is given.
# Usage: test_devices_cli.sh AIKCTL REF.so REF-PROFILE MODEL.slm
set -eu
# (a "! cmd" line would not stop the script under set -e: negations are spelled "if cmd; then exit 1")
aikctl=$1 so=$2 profile=$3 model=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/trust/keys/publisher"
"$aikctl" keygen --out "$tmp/key" >/dev/null
cp "$tmp/key.pub" "$tmp/trust/keys/publisher/test.pub"
for d in ref unsigned; do
    mkdir -p "$tmp/plugins/$d"
    cp "$so" "$tmp/plugins/$d/aik-backend-ref.so"
    cp "$profile" "$tmp/plugins/$d/profile.yaml"
    "$aikctl" sign "$tmp/plugins/$d" --key "$tmp/key.key" >/dev/null
done
rm "$tmp/plugins/unsigned/manifest.sig"

devices() {
    "$aikctl" devices --accel-dir /nonexistent-accel --trust "$tmp/trust" "$@"
}
out=$(devices --plugin-dir "$tmp/plugins")
printf '%s\n' "$out" >&2
printf '%s\n' "$out" | grep -q '^cpu0: '
printf '%s\n' "$out" | grep -q '^plugin0: reference CPU device 0 (aik-backend-ref) \[cpu\]$'
printf '%s\n' "$out" | grep -q 'detail:  plug-in aik-backend-ref 1.0.0, backend "ref"'
printf '%s\n' "$out" | grep -q '^plugin: refused: .*/unsigned: manifest.sig: unsigned module'
if printf '%s\n' "$out" | grep -q '^plugin1: '; then echo "line 34: expected to fail" >&2; exit 1; fi

out=$(devices --plugin-dir "$tmp/plugins" --developer)
printf '%s\n' "$out" >&2
printf '%s\n' "$out" | grep -q '^plugin1: .*aik-backend-ref'
printf '%s\n' "$out" | grep -q 'UNSIGNED, developer mode'
if printf '%s\n' "$out" | grep -q '^plugin: refused: '; then echo "line 40: expected to fail" >&2; exit 1; fi

out=$(AIK_BACKEND_DIR="$tmp/missing" devices)
printf '%s\n' "$out" >&2
printf '%s\n' "$out" | grep -q "^plugin: none: $tmp/missing: .*No such file"

if "$aikctl" devices --plugin-dir 2>/dev/null; then echo "line 46: expected to fail" >&2; exit 1; fi

# a split plan over cpu0 and the plug-in's device
out=$("$aikctl" bench "$model" -p 8 -n 4 -r 1 -t 1 --override "embedding:cpu0,layers=0:plugin0,output:cpu0" \
      --plugin-dir "$tmp/plugins" --trust "$tmp/trust")
printf '%s\n' "$out" >&2
printf '%s\n' "$out" | grep -Eq '^  plugin0 +layer 0 .*ms per run'
printf '%s\n' "$out" | grep -Eq '^  cpu0 +embedding'
if printf '%s\n' "$out" | grep -q '^fallback:'; then echo "line 54: expected to fail" >&2; exit 1; fi
if "$aikctl" bench "$model" -p 8 -n 4 -r 1 -t 1 --override "layers=0:plugin0" 2>/dev/null; then echo "line 55: expected to fail" >&2; exit 1; fi
