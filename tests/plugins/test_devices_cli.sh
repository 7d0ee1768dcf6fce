#!/bin/sh
# aikctl devices over a plug-in directory signed with aikctl itself: the
# reference plug-in's device is listed, an unsigned copy is refused with
# its reason (and listed, marked UNSIGNED, with --developer), and a missing
# plug-in directory is explained.
# Usage: test_devices_cli.sh AIKCTL REF.so REF-PROFILE
set -eu
aikctl=$1 so=$2 profile=$3
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
! printf '%s\n' "$out" | grep -q '^plugin1: '

out=$(devices --plugin-dir "$tmp/plugins" --developer)
printf '%s\n' "$out" >&2
printf '%s\n' "$out" | grep -q '^plugin1: .*aik-backend-ref'
printf '%s\n' "$out" | grep -q 'UNSIGNED, developer mode'
! printf '%s\n' "$out" | grep -q '^plugin: refused: '

out=$(AIK_BACKEND_DIR="$tmp/missing" devices)
printf '%s\n' "$out" >&2
printf '%s\n' "$out" | grep -q "^plugin: none: $tmp/missing: .*No such file"

! "$aikctl" devices --plugin-dir 2>/dev/null
