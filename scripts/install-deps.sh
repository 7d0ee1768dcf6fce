#!/bin/sh
# Install the Debian 12 packages AIKernel builds and tests with (only the
# missing ones; uses sudo when not root).
set -eu
pkgs="meson ninja-build pkg-config gcc clang libclang-rt-14-dev
      libelf-dev libssl-dev libyaml-dev libjansson-dev libsqlite3-dev libpcre2-dev check
      libvulkan-dev glslc mesa-vulkan-drivers wordnet-base"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
