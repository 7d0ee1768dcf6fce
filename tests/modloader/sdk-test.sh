#!/bin/sh
# SPDX-License-Identifier: MIT
# The module SDK end to end: install this build into a temporary prefix,
# build examples/hello-module out of tree against it with pkg-config, then
# keygen / sign / verify / modinfo --load it with aikctl, and check that
# tampering is refused.
# Usage: sdk-test.sh BUILD_ROOT SOURCE_ROOT AIKCTL
set -eu

build=$1
src=$2
aikctl=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/aik-sdk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() { echo "sdk-test: FAIL: $*" >&2; exit 1; }

# 1. Install the current build's development files (headers, .pc files:
#    install tag "devel") into a staging root.
meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet --tags devel >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "meson install"; }
pcfile=$(find "$tmp/root" -name aik-module.pc | head -n 1)
[ -n "$pcfile" ] || fail "aik-module.pc not installed"
[ -n "$(find "$tmp/root" -path '*/aik/module.h')" ] || fail "aik/module.h not installed"

# 2. Build the example out of tree; pkg-config relocates -I into the stage.
PKG_CONFIG_PATH=$(dirname "$pcfile")
PKG_CONFIG_SYSROOT_DIR="$tmp/root"
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
cflags=$(pkg-config --cflags aik-module)
case "$cflags" in *"$tmp/root"*) ;; *) fail "pkg-config --cflags aik-module does not point into the stage: $cflags" ;; esac
# The example gets plain flags: this test's own sanitizer settings must not
# leak into the out-of-tree build.
env -u CFLAGS -u LDFLAGS meson setup "$tmp/hello-build" "$src/examples/hello-module" >"$tmp/setup.log" 2>&1 ||
    { cat "$tmp/setup.log" >&2; fail "meson setup of the example"; }
meson compile -C "$tmp/hello-build" >"$tmp/compile.log" 2>&1 ||
    { cat "$tmp/compile.log" >&2; fail "compiling the example"; }
if grep -q "warning:" "$tmp/compile.log"; then cat "$tmp/compile.log" >&2; fail "the example compiles with warnings"; fi

# 3. A trust store with a publisher key, and the module directory.
mkdir -p "$tmp/trust/keys/publisher" "$tmp/mod"
(cd "$tmp" && "$aikctl" keygen --out pub >keygen.out) || fail "keygen"
grep -q "^key id: *[0-9a-f]\{64\}$" "$tmp/keygen.out" || fail "keygen prints no key id"
[ "$(stat -c %a "$tmp/pub.key")" = 600 ] || fail "private key is not mode 0600"
cp "$tmp/pub.pub" "$tmp/trust/keys/publisher/"
cp "$tmp/hello-build/hello.so" "$tmp/mod/"

# 4. Sign (identity comes from the ELF note), verify, modinfo, load.
"$aikctl" sign "$tmp/mod" --key "$tmp/pub.key" >"$tmp/sign.out" || fail "sign"
grep -q "signed hello 1.0.0 (capability)" "$tmp/sign.out" || { cat "$tmp/sign.out"; fail "sign output"; }
"$aikctl" verify "$tmp/mod" --trust "$tmp/trust" >"$tmp/verify.out" || { cat "$tmp/verify.out"; fail "verify"; }
grep -q "^PASS signature" "$tmp/verify.out" || fail "verify: no PASS signature line"
grep -q "^PASS elf" "$tmp/verify.out" || fail "verify: no PASS elf line"
grep -q "^VERIFIED: .* GB/s" "$tmp/verify.out" || fail "verify: no timing line"
"$aikctl" verify "$tmp/mod" --trust "$tmp/trust" --json >"$tmp/verify.json" || fail "verify --json"
grep -q '"ok": true' "$tmp/verify.json" || fail "verify --json not ok"
"$aikctl" modinfo "$tmp/mod/hello.so" >"$tmp/modinfo.out" || fail "modinfo on the .so"
grep -q "note.name: *hello" "$tmp/modinfo.out" || fail "modinfo: note name"
"$aikctl" modinfo "$tmp/mod" --load --trust "$tmp/trust" >"$tmp/load.out" || { cat "$tmp/load.out"; fail "modinfo --load"; }
grep -q "loaded descriptor" "$tmp/load.out" || fail "modinfo --load: no descriptor"
grep -q "ops_size: *16" "$tmp/load.out" || fail "modinfo --load: ops_size"
[ "$(cat "$tmp/trust/versions/hello")" = "1.0.0" ] || fail "highest version not recorded"

# 5. An execution profile: verified bytes, decoded by capgraph, checked
#    against this host (the memory need of the second one cannot be met).
mkdir "$tmp/prof"
cp "$tmp/hello-build/hello.so" "$tmp/prof/"
write_profile() {
    cat >"$tmp/prof/profile.yaml" <<EOF
schema: 1
module:
  name: hello
  version: 1.0.0
  kind: capability
  description: Greets.
  base: text.complete
capabilities:
  - id: greeting.hello
    version: 1.0.0
    description: Say hello.
    intents:
      - say hello to {name}
requires:
  - capability: text.complete
    version: ^1.0
execution:
  memory: $1
  backends: [cpu]
EOF
}
write_profile "1 MiB"
"$aikctl" sign "$tmp/prof" --key "$tmp/pub.key" >/dev/null || fail "sign with profile"
"$aikctl" verify "$tmp/prof" --trust "$tmp/trust" >"$tmp/prof.out" || { cat "$tmp/prof.out"; fail "verify with profile"; }
grep -q "^PASS profile.host" "$tmp/prof.out" || { cat "$tmp/prof.out"; fail "no PASS profile.host"; }
write_profile "64 TiB"
"$aikctl" sign "$tmp/prof" --key "$tmp/pub.key" >/dev/null || fail "re-sign with profile"
if "$aikctl" verify "$tmp/prof" --trust "$tmp/trust" >"$tmp/prof2.out"; then fail "impossible profile verified"; fi
grep -q "^FAIL profile.host .*execution.memory" "$tmp/prof2.out" || { cat "$tmp/prof2.out"; fail "profile: wrong reason"; }
if "$aikctl" modinfo "$tmp/prof" --load --trust "$tmp/trust" --no-record 2>/dev/null; then fail "impossible profile loaded"; fi

# 6. Refusals: one flipped byte in the code, an unknown signer, no signature.
cp -r "$tmp/mod" "$tmp/bad"
printf '\001' | dd of="$tmp/bad/hello.so" bs=1 seek=4000 conv=notrunc status=none
if "$aikctl" verify "$tmp/bad" --trust "$tmp/trust" >"$tmp/bad.out"; then fail "tampered module verified"; fi
grep -q "^FAIL object.sha256" "$tmp/bad.out" || { cat "$tmp/bad.out"; fail "tamper: wrong reason"; }
(cd "$tmp" && "$aikctl" keygen --out other >/dev/null)
cp -r "$tmp/mod" "$tmp/other"
"$aikctl" sign "$tmp/other" --key "$tmp/other.key" >/dev/null
if "$aikctl" verify "$tmp/other" --trust "$tmp/trust" >"$tmp/other.out"; then fail "unknown signer verified"; fi
grep -q "^FAIL signature .*unavailable key" "$tmp/other.out" || { cat "$tmp/other.out"; fail "unknown signer: wrong reason"; }
rm "$tmp/other/manifest.sig"
if "$aikctl" modinfo "$tmp/other" --load --trust "$tmp/trust" 2>/dev/null; then fail "unsigned module loaded"; fi
"$aikctl" modinfo "$tmp/other" --load --trust "$tmp/trust" --developer --no-record >/dev/null 2>"$tmp/dev.err" ||
    fail "developer mode refused an unsigned module"
grep -q "WARNING: UNSIGNED" "$tmp/dev.err" || fail "developer mode: no warning"
echo "sdk-test: all passed"
