#!/usr/bin/env bash
# Makes a Vulkan device available for the `wgpu` feature's tests: the Vulkan loader
# (libvulkan1) and Mesa's lavapipe (mesa-vulkan-drivers), a Vulkan driver that runs on the CPU,
# from Debian/Ubuntu apt. Does nothing when a loader and a driver are already installed (a
# machine with a GPU driver needs nothing). Safe to run again.
#
# Without root (or sudo) and without the packages it prints what to install and exits 0, and
# the GPU tests skip with a message; with DCEM_REQUIRE_GPU=1 (as in CI) it exits 1 instead.
set -euo pipefail

have_vulkan() {
  ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' &&
    compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null
}

if have_vulkan; then
  exit 0
fi
packages=(libvulkan1 mesa-vulkan-drivers)
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "setup_vulkan: no Vulkan driver, and no root to install one: run" \
    "'apt-get install ${packages[*]}' as root; the wgpu tests skip until then" >&2
  [ "${DCEM_REQUIRE_GPU:-0}" = 1 ] && exit 1
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "setup_vulkan: no apt-get here: install a Vulkan loader and driver (on the CPU: Mesa's" \
    "lavapipe) with the system's package manager" >&2
  [ "${DCEM_REQUIRE_GPU:-0}" = 1 ] && exit 1
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine: update once if the install fails.
if ! "${as_root[@]}" apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null; then
  "${as_root[@]}" apt-get update >/dev/null
  "${as_root[@]}" apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null
fi
have_vulkan || {
  echo "setup_vulkan: installed ${packages[*]} but found no Vulkan loader and driver" >&2
  exit 1
}
echo "setup_vulkan: installed ${packages[*]} (lavapipe: Vulkan on the CPU)"
