// Browser-only helpers of @vistune/core/browser: backends without Node, and model folders fetched over HTTP into
// the in-memory file system the browser build's loaders read.
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import { registerAllGradients } from '../backend/gradients.js';
import { initBackend } from '../backend/init.js';
import { mountFiles } from './fs.js';

export { collectFiles, memoryFs, memoryFsPromises, mountFiles } from './fs.js';
export { nodeOnly, nodeShims } from './node-shims.js';

export interface BrowserBackendOptions {
  /** Default wasm. webgpu needs @tensorflow/tfjs-backend-webgpu imported by the page (navigator.gpu present). */
  backend?: 'wasm' | 'webgpu' | 'cpu';
  /** URL prefix of tfjs-backend-wasm's .wasm files (tfjs-backend-wasm{,-simd,-threaded-simd}.wasm). */
  wasmPaths?: string;
}

/** Starts a tfjs backend in a page and registers the gradients and kernel shims training needs. */
export async function initBrowserBackend(opts: BrowserBackendOptions = {}): Promise<string> {
  const backend = opts.backend ?? 'wasm';
  if (backend === 'webgpu') {
    if (tf.findBackendFactory('webgpu') == null)
      throw new Error(
        "initBrowserBackend: no webgpu backend registered: import '@tensorflow/tfjs-backend-webgpu' in the page first (it registers only where navigator.gpu exists)",
      );
    await registerAllGradients();
    if (!(await tf.setBackend('webgpu')))
      throw new Error('initBrowserBackend: the webgpu backend failed to start');
    return 'webgpu';
  }
  if (backend === 'wasm' && opts.wasmPaths) setWasmPaths(opts.wasmPaths);
  const info = await initBackend({ backend, native: false });
  return `${info.name} (${info.detail.split(';')[0]})`; // the native-matmul note is about Node
}

/** Files a Hugging Face model folder may hold; config.json and tokenizer.json are required. */
const MODEL_FILES = [
  'config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'chat_template.json',
  'chat_template.jinja',
  'generation_config.json',
  'preprocessor_config.json',
  'processor_config.json',
  'model.safetensors',
  'model.safetensors.index.json',
];

async function fetchOptional(url: string): Promise<Uint8Array | undefined> {
  const res = await fetch(url);
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`fetchModelFolder: GET ${url} answered ${res.status} ${res.statusText}`);
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * Fetches a model folder served over HTTP (a Hugging Face folder or one `vlm.save` wrote) into the in-memory
 * file system at `dir`, shards included, and returns `dir` for loadPretrained / Tokenizer.fromDir.
 */
export async function fetchModelFolder(baseUrl: string, dir = '/models/model'): Promise<string> {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const fetched = await Promise.all(
    MODEL_FILES.map(async (name) => [name, await fetchOptional(base + name)] as const),
  );
  const files: Record<string, Uint8Array> = {};
  for (const [name, bytes] of fetched) if (bytes) files[name] = bytes;
  for (const required of ['config.json', 'tokenizer.json'])
    if (!files[required])
      throw new Error(`fetchModelFolder: ${base}${required} not found (404): is ${base} a model folder?`);
  const index = files['model.safetensors.index.json'];
  if (index) {
    const weightMap =
      (JSON.parse(new TextDecoder().decode(index)) as { weight_map?: Record<string, string> }).weight_map ??
      {};
    for (const shard of new Set(Object.values(weightMap))) {
      const bytes = await fetchOptional(base + shard);
      if (!bytes)
        throw new Error(
          `fetchModelFolder: shard ${base}${shard} named by model.safetensors.index.json not found`,
        );
      files[shard] = bytes;
    }
  } else if (!files['model.safetensors'])
    throw new Error(`fetchModelFolder: ${base}model.safetensors (or model.safetensors.index.json) not found`);
  return mountFiles(dir, files);
}
