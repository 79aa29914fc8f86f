#!/usr/bin/env bash
# Builds a self-contained folder that runs tools/gpu-check.mjs on a machine without the repo or a registry
# (docs/gpu.md): the script bundled with vistune's dist, the tfjs packages and dawn.node beside it, and with
# --with-node an xz-compressed copy of this machine's node. --with-cli adds the `vistune` command itself
# (bin/vistune.mjs, with sharp for images) and the Vulkan loader's Debian libraries (vulkan/), for
# tools/gpu-device.sh. Needs `pnpm build` first and npm registry access (and apt for --with-cli).
# usage: tools/gpu-check-kit.sh <out-dir> [--with-node] [--with-cli]
set -euo pipefail
out=${1:?usage: tools/gpu-check-kit.sh <out-dir> [--with-node] [--with-cli]}
with_node=0
with_cli=0
for flag in "${@:2}"; do
  case $flag in
    --with-node) with_node=1 ;;
    --with-cli) with_cli=1 ;;
    *) echo "unknown option $flag (--with-node, --with-cli)" >&2; exit 2 ;;
  esac
done
repo=$(cd "$(dirname "$0")/.." && pwd)
for dist in core encoders adapters; do
  [[ -f $repo/packages/$dist/dist/index.js ]] || { echo "packages/$dist/dist is missing: run pnpm build" >&2; exit 1; }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The pinned optional peers of @vistune/core, installed flat (npm) in a scratch folder.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
(cd "$scratch" && npm init -y >/dev/null && npm i --no-audit --no-fund --ignore-scripts \
  webgpu@0.6.2 @tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-backend-cpu@4.22.0 \
  @tensorflow/tfjs-backend-wasm@4.22.0 @tensorflow/tfjs-backend-webgpu@4.22.0 \
  $( ((with_cli)) && echo sharp@0.35.5) >&2)

# Image decoding (sharp, native) is never called by the check: a module that says so replaces it.
cat >"$scratch/no-sharp.mjs" <<'EOF'
export default function sharp() {
  throw new Error('gpu-check kit: sharp (image decoding) is not carried; the check uses random pixels');
}
EOF
"$repo/node_modules/.bin/esbuild" "$repo/tools/gpu-check.mjs" --bundle --platform=node --format=esm \
  --target=node20 --ignore-annotations --outfile="$out/gpu-check.mjs" --log-level=warning \
  '--external:@tensorflow/*' --external:webgpu "--alias:sharp=$scratch/no-sharp.mjs" \
  "--banner:js=import { createRequire as vistuneKitRequire } from 'node:module'; const require = vistuneKitRequire(import.meta.url);"

# Only what Node loads at run time: each package.json, its node entry and native/wasm files.
nm="$out/node_modules"
rm -rf "$nm"
copy() { mkdir -p "$nm/$(dirname "$1")" && cp -r "$scratch/node_modules/$1" "$nm/$1"; }
for pkg in tfjs-core tfjs-backend-cpu tfjs-backend-wasm tfjs-backend-webgpu; do
  mkdir -p "$nm/@tensorflow/$pkg/dist"
  cp "$scratch/node_modules/@tensorflow/$pkg/package.json" "$nm/@tensorflow/$pkg/"
done
cp "$scratch"/node_modules/@tensorflow/tfjs-core/dist/tf-core.node.js "$nm/@tensorflow/tfjs-core/dist/"
cp "$scratch"/node_modules/@tensorflow/tfjs-backend-cpu/dist/tf-backend-cpu.node.js "$nm/@tensorflow/tfjs-backend-cpu/dist/"
cp "$scratch"/node_modules/@tensorflow/tfjs-backend-wasm/dist/{tf-backend-wasm.node.js,*.wasm} "$nm/@tensorflow/tfjs-backend-wasm/dist/"
cp "$scratch"/node_modules/@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.node.js "$nm/@tensorflow/tfjs-backend-webgpu/dist/"
for pkg in seedrandom node-fetch whatwg-url tr46 webidl-conversions debug ms; do copy "$pkg"; done
platform="$(node -p 'process.platform + "-" + process.arch')"
mkdir -p "$nm/webgpu/dist/$platform"
cp "$scratch"/node_modules/webgpu/{package.json,index.js} "$nm/webgpu/"
cp "$scratch/node_modules/webgpu/dist/$platform/dawn.node" "$nm/webgpu/dist/$platform/"

if ((with_cli)); then
  # The CLI, bundled like the check; program.ts reads ../package.json for --version.
  mkdir -p "$out/bin"
  "$repo/node_modules/.bin/esbuild" "$repo/apps/cli/dist/bin.js" --bundle --platform=node --format=esm \
    --target=node20 --ignore-annotations --outfile="$out/bin/vistune.mjs" --log-level=warning \
    '--external:@tensorflow/*' --external:webgpu --external:sharp --external:@vistune/native --external:readline/promises \
    "--banner:js=import { createRequire as vistuneKitRequire } from 'node:module'; const require = vistuneKitRequire(import.meta.url);"
  cp "$repo/apps/cli/package.json" "$out/package.json"
  copy sharp
  for pkg in detect-libc semver; do copy "$pkg"; done
  for pkg in "$scratch"/node_modules/@img/*; do copy "@img/$(basename "$pkg")"; done
  # The Vulkan loader and what NVIDIA's ICD links against, unpacked (the GPU machine has no apt).
  (cd "$scratch" && apt-get download libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libopengl0 libgles2 >&2)
  for deb in "$scratch"/*.deb; do dpkg -x "$deb" "$out/vulkan"; done
fi

if ((with_node)); then
  xz -9 -T0 -c "$(command -v node)" >"$out/node.xz"
fi
du -sh "$out" >&2
