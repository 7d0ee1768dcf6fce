#!/bin/sh
# aikctl place on in-tree device inventories: exit codes, text and JSON output.
# usage: test_place_cli.sh AIKCTL  (AIK_SOURCE_ROOT set by meson)
set -u
aikctl=$1
src=${AIK_SOURCE_ROOT:-.}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

check() { # name expected-rc command...
    name=$1 want=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "FAIL $name: exit $rc, want $want"; cat "$tmp/out" "$tmp/err"; fails=$((fails + 1))
    fi
}
expect() { # name file pattern
    if ! grep -q -- "$3" "$tmp/$2"; then
        echo "FAIL $1: no '$3' in $2"; cat "$tmp/out" "$tmp/err"; fails=$((fails + 1))
    fi
}

D=$src/profiles/devices
check init 0 "$aikctl" init-model "$tmp/m.slm" --shape tiny
check cpu 0 "$aikctl" place "$tmp/m.slm" --devices "$D/cpu-only.yaml"
expect cpu out "plan: 1 segment(s)"
check gpu 0 "$aikctl" place "$tmp/m.slm" --devices "$D/cpu-gpu-npu.yaml" --explain
expect gpu out "vulkan0"
expect gpu out "npu0: op get_rows with f32 unsupported"
check override 0 "$aikctl" place "$tmp/m.slm" --devices "$D/cpu-gpu-npu.yaml" --override "layers=0-1:cpu,output:cpu0,embedding:cpu"
expect override out "plan: 1 segment(s)"
check json 0 "$aikctl" place "$tmp/m.slm" --devices "$D/two-gpus.yaml" --json --without vulkan0
expect json out '"note": "vulkan0 failed'
check profile 0 "$aikctl" place "$tmp/m.slm" --devices "$D/cpu-gpu-npu.yaml" --backends cpu
expect profile out "plan: 1 segment(s)"
check badov 1 "$aikctl" place "$tmp/m.slm" --devices "$D/cpu-gpu-npu.yaml" --override "layers=0-9:vulkan0"
expect badov err "layers must be within"
printf 'schema: 1\nname: x\ndevices: []\n' >"$tmp/bad.yaml"
check badinv 1 "$aikctl" place "$tmp/m.slm" --devices "$tmp/bad.yaml"
expect badinv err "bad.yaml:3:10: devices"
check usage 2 "$aikctl" place "$tmp/m.slm"
[ "$fails" -eq 0 ] || exit 1
echo ok
