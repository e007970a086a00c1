#!/usr/bin/env bash
# The webgpu backend's device check, for a GPU machine that has no package registry (and no Node):
#   bash tools/gpu-check.sh pack         here, after `npm run build`: writes .gpu-check/bundle.tar.xz
#                                        (Node, the built CLI's packages, tfjs-backend-webgpu, dawn.node
#                                        for linux-x64, the Vulkan loader; at most 64 MiB)
#   bash tools/gpu-check.sh run [--quick] there, from the repository root with .gpu-check beside it:
#                                        unpacks, finds the GPU's Vulkan driver, runs tools/gpu-check/check.cjs
# With the device tool: run({command: "bash tools/gpu-check.sh run", carry: [".gpu-check"]}).
# `run` also works here (Mesa's software adapter), which is how the script itself is tested.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  pack)
    node tools/gpu-check/pack.cjs --out=.gpu-check
    ;;
  run)
    shift
    root=/tmp/skd-gpu-check
    rm -rf "$root" && mkdir -p "$root"
    tar -C "$root" -xJf .gpu-check/bundle.tar.xz
    cat "$root/VERSION"
    command -v nvidia-smi >/dev/null && nvidia-smi -L || true
    # The NVIDIA driver's Vulkan ICD where GPU images mount it; otherwise the loader's default search.
    for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
      if [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then export VK_DRIVER_FILES="$icd"; fi
    done
    echo "Vulkan driver files: ${VK_DRIVER_FILES:-none named, the loader searches its default folders}"
    # The carried loader only where the machine has none of its own.
    if ! ldconfig -p | grep -q 'libvulkan\.so\.1 '; then export LD_LIBRARY_PATH="$root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
    NODE_PATH="$root/node_modules" "$root/bin/node" tools/gpu-check/check.cjs "$@"
    ;;
  *)
    echo "usage: bash tools/gpu-check.sh pack | run [--quick] [--skip-135m]" >&2
    exit 2
    ;;
esac
