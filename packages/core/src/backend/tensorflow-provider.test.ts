// The libtensorflow provider against stand-ins for @tensorflow/tfjs-node(-gpu)'s import (the real packages
// download libtensorflow at install, which CI cannot): each does what tfjs-node 4.22's index does on import —
// register a 'tensorflow' backend flagged isGPUPackage/isUsingGpuDevice and activate it — with tfjs-cpu's
// kernels doing the arithmetic, so the activated backend really computes.
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PackageImporter } from './providers.js';

/** providers.js holds which libtensorflow package this process loaded: each test gets a fresh copy. */
async function freshProviders(): Promise<typeof import('./providers.js')> {
  vi.resetModules();
  return import('./providers.js');
}

function importLikeTfjsNode(cudaDevice: boolean): PackageImporter {
  return async (packageName) => {
    class LibtensorflowStandIn extends MathBackendCPU {
      readonly isGPUPackage = packageName === '@tensorflow/tfjs-node-gpu';
      readonly isUsingGpuDevice = cudaDevice;
    }
    if (tf.findBackend('tensorflow')) tf.removeBackend('tensorflow'); // a fresh "process" per test
    tf.registerBackend('tensorflow', () => new LibtensorflowStandIn(), 3);
    for (const kernel of tf.getKernelsForBackend('cpu')) {
      if (!tf.getKernel(kernel.kernelName, 'tensorflow'))
        tf.registerKernel({ ...kernel, backendName: 'tensorflow' });
    }
    await tf.setBackend('tensorflow');
  };
}

/** A 2×2 product on the active backend, against numbers worked out by hand. */
async function productOnActiveBackend(): Promise<number[]> {
  const c = tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2]));
  const values = Array.from(await c.data());
  c.dispose();
  return values;
}

const hasPackage = (name: string) => {
  try {
    import.meta.resolve(name);
    return true;
  } catch {
    return false;
  }
};

afterEach(async () => {
  await import('@tensorflow/tfjs-backend-cpu');
  await tf.setBackend('cpu');
});

describe('tensorflowProvider (tfjs-node-gpu / tfjs-node)', () => {
  it('activates tfjs-node-gpu when it imports and reports the CUDA device it found', async () => {
    const { tensorflowProvider } = await freshProviders();
    await tf.setBackend('cpu');
    const result = await tensorflowProvider(true, importLikeTfjsNode(true)).load();
    expect(result).toEqual({ ok: true, gpu: true, detail: 'libtensorflow 2.9.1 on a CUDA device' });
    expect(tf.getBackend()).toBe('tensorflow');
    expect(await productOnActiveBackend()).toEqual([19, 22, 43, 50]);
  });

  it('says when the GPU build runs on CPU because CUDA 11.2 + cuDNN 8.1 were not found', async () => {
    const { tensorflowProvider } = await freshProviders();
    const result = await tensorflowProvider(true, importLikeTfjsNode(false)).load();
    expect(result.ok && result.gpu).toBe(false);
    expect(result.ok && result.detail).toMatch(
      /no usable CUDA device .*CUDA 11\.2 \+ cuDNN 8\.1.*running on CPU/,
    );
    expect(tf.getBackend()).toBe('tensorflow');
  });

  it('refuses tfjs-node once tfjs-node-gpu is loaded (one libtensorflow per process)', async () => {
    const { tensorflowProvider } = await freshProviders();
    expect((await tensorflowProvider(true, importLikeTfjsNode(true)).load()).ok).toBe(true);
    await tf.setBackend('cpu');
    const importCalls: string[] = [];
    const second = await tensorflowProvider(false, async (name) => {
      importCalls.push(name);
    }).load();
    expect(second).toEqual({
      ok: false,
      reason: '@tensorflow/tfjs-node-gpu is already loaded in this process (one libtensorflow per process)',
    });
    expect(importCalls).toEqual([]);
    expect(tf.getBackend()).toBe('cpu');
  });

  it('names the missing native parts and the rebuild that fetches them', async () => {
    const { tensorflowProvider } = await freshProviders();
    // What tfjs-node 4.22's index throws when its install script could not download the binding.
    const bindingNeverDownloaded: PackageImporter = async (name) => {
      const path = `/app/node_modules/${name}/lib/napi-v8/tfjs_binding.node`;
      throw new Error(
        `The Node.js native addon module (tfjs_binding.node) can not be found at path: ${path}. \nPlease run command 'npm rebuild ${name} --build-addon-from-source' to rebuild the native addon module.`,
      );
    };
    const result = await tensorflowProvider(true, bindingNeverDownloaded).load();
    expect(!result.ok && result.reason).toMatch(
      /^@tensorflow\/tfjs-node-gpu is installed but its native parts are missing .*`npm rebuild @tensorflow\/tfjs-node-gpu` with network access/,
    );
    // The binding's own load failure when libtensorflow beside it is missing.
    const libtensorflowMissing: PackageImporter = async () => {
      throw new Error('libtensorflow.so.2: cannot open shared object file: No such file or directory');
    };
    const second = await tensorflowProvider(false, libtensorflowMissing).load();
    expect(!second.ok && second.reason).toMatch(/^@tensorflow\/tfjs-node is installed but its native parts/);
    expect(tf.getBackend()).toBe('cpu');
  });

  it.skipIf(hasPackage('@tensorflow/tfjs-node-gpu'))(
    'reports tfjs-node-gpu as not installed through the real import',
    async () => {
      const { tensorflowProvider } = await freshProviders();
      expect(await tensorflowProvider(true).load()).toEqual({
        ok: false,
        reason: '@tensorflow/tfjs-node-gpu is not installed',
      });
    },
  );
});
