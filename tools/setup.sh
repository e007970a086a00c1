#!/usr/bin/env bash
# Sets up a fresh Debian machine (as root) for skd: system packages, npm dependencies, a build.
# Safe to re-run: installs only what is missing. Works offline except for the two package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: a C toolchain, Python for node-gyp, oneDNN (and OpenBLAS, its fallback) for the
# native CPU kernels, Chromium (headless) to check that reports render, PyTorch: the CPU
# yardstick of `npm run bench`, and Redis for queued sweeps (the tests start their own server).
APT_PACKAGES=(build-essential python3 python3-venv libdnnl-dev libopenblas-dev chromium redis-server)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "skd setup: missing system packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "skd setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# Mesa 25's Vulkan drivers from bookworm-backports: their software rasteriser (lavapipe) gives Dawn,
# and so skd's `webgpu` backend, an adapter on a machine without a GPU, so CI tests that backend.
# Bookworm's own Mesa (22.3) lacks a feature Dawn requires. Only this package and what it needs come
# from backports (apt prefers bookworm for everything else); never a newer release.
if ! dpkg-query -W -f '${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q '^25\.'; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "skd setup: Mesa 25's Vulkan drivers are missing (the webgpu backend's software adapter); as root: add bookworm-backports and apt-get install -t bookworm-backports mesa-vulkan-drivers" >&2
    exit 1
  fi
  echo "skd setup: installing mesa-vulkan-drivers from bookworm-backports"
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > /etc/apt/sources.list.d/bookworm-backports.sources
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers
fi

export NX_DAEMON=false NX_NO_CLOUD=true
# Not `npm ci`: the registry reachable here lacks some other platforms' optional binaries (e.g.
# @swc/core for darwin), so npm cannot record them in the lockfile and `npm ci` rejects it as out of
# sync. `npm install` with the committed lockfile installs exactly the locked versions (checked: the
# lockfile is unchanged afterwards) and skips the unavailable optional packages.
echo "skd setup: npm install (locked versions)"
npm install --no-audit --no-fund
# The reference environment: PyTorch 2 and transformers from the machine's local wheel store (the
# public index is unreachable; `pip config list` names the store's folders). Tests compare skd's
# Hugging Face models, tokenizers and chat templates with it, and `npm run bench` measures PyTorch 2.
if ! .venv/bin/python -c 'import torch, transformers' >/dev/null 2>&1 || ! cmp -s tools/reference/requirements.txt .venv/requirements.txt; then
  echo "skd setup: reference Python environment (.venv) from the local wheel store"
  rm -rf .venv
  python3 -m venv .venv
  links=()
  for folder in $(pip config list 2>/dev/null | sed -n "s/.*find-links='\(.*\)'/\1/p" | sort -u) $(pip config list 2>/dev/null | sed -n "s/.*index-url='\(.*\)'/\1/p" | tr ' ' '\n' | sed -n 's|^file://\(.*\)/simple$|\1/files|p'); do
    [ -d "$folder" ] && links+=(--find-links "$folder")
  done
  if ! .venv/bin/pip install --quiet --no-index "${links[@]}" -r tools/reference/requirements.txt > /tmp/skd-setup-pip.log 2>&1; then
    tail -n 20 /tmp/skd-setup-pip.log >&2
    echo "skd setup: could not install the reference environment from the local wheel store (${links[*]:-no folders found by pip config list})" >&2
    exit 1
  fi
  cp tools/reference/requirements.txt .venv/requirements.txt
fi
echo "skd setup: building packages"
if ! npx nx run-many -t build --outputStyle=static > /tmp/skd-setup-build.log 2>&1; then
  tail -n 60 /tmp/skd-setup-build.log >&2
  echo "skd setup: the build failed (full log: /tmp/skd-setup-build.log)" >&2
  exit 1
fi
echo "skd setup: done"
