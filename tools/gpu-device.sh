#!/usr/bin/env bash
# One short run for a session that has the GPU machine (docs/gpu.md, "Device check"), a few minutes:
# `vistune bench --config small.json` on webgpu, PyTorch eager CUDA on the same config and GPU
# (tools/torch_cuda_ref.py), and `vistune demo --quick` on webgpu, timed. Results go to $OUT.
# The kit (tools/gpu-check-kit.sh DIR --with-node --with-cli, plus torch_ref.py and small.json, tarred as
# below) travels with the command; the machine needs nothing but its NVIDIA driver and PyTorch.
# usage, from the repo root on the device: tools/gpu-device.sh .gpu-kit.tar.xz
set -uo pipefail
tarball=${1:?usage: tools/gpu-device.sh KIT.tar.xz}
out=${OUT:-$(mktemp -d)}
work=$(mktemp -d)
tar -C "$work" -xJf "$tarball"
kit="$work/kit"
node="$kit/node"
xz -dc "$kit/node.xz" >"$node" && chmod +x "$node"
icd=$(ls /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
  /etc/vulkan/icd.d/nvidia_icd.json 2>/dev/null | head -1)
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-$icd} # a preset one wins (e.g. lavapipe to try the script)
export LD_LIBRARY_PATH="$kit/vulkan/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
export VISTUNE_BACKEND=webgpu NO_COLOR=1
step() { # name, limit in s, command…: one line per step in summary.txt (exit status and wall seconds)
  local name=$1 limit=$2 started=$SECONDS
  shift 2
  timeout "$limit" "$@" >"$out/$name.out" 2>"$out/$name.err"
  echo "$name rc=$? ${limit}s-limit wall=$((SECONDS - started))s" | tee -a "$out/summary.txt"
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$out/gpu.txt" 2>&1
echo "icd=$icd" >>"$out/gpu.txt"
step backends 60 "$node" "$kit/bin/vistune.mjs" backends
step bench-webgpu 180 "$node" "$kit/bin/vistune.mjs" bench --config "$kit/small.json" --json
step bench-torch-cuda 120 python3 tools/torch_cuda_ref.py "$kit/torch_ref.py" "$kit/small.json"
step demo-quick-webgpu 270 "$node" "$kit/bin/vistune.mjs" demo --quick --json --out "$work/demo"
python3 - "$out" <<'PY' | tee -a "$out/summary.txt"
import json, sys
out = sys.argv[1]
try:
    v = json.loads(open(f"{out}/bench-webgpu.out").read().strip().splitlines()[-1])
    t = json.loads(open(f"{out}/bench-torch-cuda.out").read().strip().splitlines()[-1])
    print(f"train ms/step: webgpu {v['train']['median_ms_per_step']} vs torch cuda {t['train']['median_ms_per_step']}"
          f" -> {v['train']['median_ms_per_step'] / t['train']['median_ms_per_step']:.2f}x")
    print(f"decode tok/s: webgpu {v['generate']['decode_tokens_per_s']} vs torch cuda {t['generate']['decode_tokens_per_s']}")
    print(f"loss first/last: webgpu {v['train']['loss_first']}/{v['train']['loss_last']} torch {t['train']['loss_first']}/{t['train']['loss_last']}")
except Exception as e:  # a failed step leaves its .err file; say which comparison is missing
    print(f"no ratio: {e}")
PY
