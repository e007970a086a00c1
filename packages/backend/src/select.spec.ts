import * as tf from '@tensorflow/tfjs-core';
import { BackendError } from '@skd/core';
import { WASM_BUDGET_BYTES, assertSingleTfjsCore, nodeResolver, selectBackend, type ModuleResolver } from './select';

describe('selectBackend', () => {
  it('auto skips the node backends that are not installed and says why', async () => {
    const choice = await selectBackend({ backend: 'auto' });
    const installed = (pkg: string) => nodeResolver.resolve(`${pkg}/package.json`) !== undefined;
    if (installed('@tensorflow/tfjs-node-gpu') || installed('@tensorflow/tfjs-node')) {
      expect(choice.name).toBe('tensorflow');
    } else {
      expect(choice.name).toBe('wasm');
      // webgpu: passed over when its packages are missing, when Dawn finds no adapter, and for a software adapter.
      expect(choice.attempts.map((a) => a.backend)).toEqual(['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm']);
      expect(choice.attempts[0]?.reason).toContain('@tensorflow/tfjs-node-gpu is not installed');
      expect(choice.summary).toMatch(/^backend wasm \(cpu\)/);
      expect(choice.native?.kernels).toContain('UnsortedSegmentSum');
      expect(choice.summary).toContain(choice.native?.summary);
    }
    expect(tf.getBackend()).toBe(choice.name);
    const sum = tf.tidy(() => tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4])).arraySync());
    expect(sum).toEqual([4, 6]);
  });

  it('registers native kernels on wasm unless told not to', async () => {
    const off = await selectBackend({ backend: 'wasm', nativeKernels: false });
    expect(off.native).toBeUndefined();
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeUndefined(); // stock wasm has none
    const on = await selectBackend({ backend: 'wasm' });
    expect(on.native?.kernels).toContain('UnsortedSegmentSum');
  });

  it("selects native (skd kernels over tfjs-backend-cpu storage) explicitly, and in auto's wasm place for models past the wasm budget", async () => {
    const native = await selectBackend({ backend: 'native' });
    expect(native.name).toBe('native');
    expect(native.native?.kernels).toEqual(expect.arrayContaining(['SkdLinear', 'SkdAttention', 'Add', 'Transpose', 'Slice', 'SplitV']));
    const small = await selectBackend({ backend: 'auto', modelBytes: WASM_BUDGET_BYTES / 2 });
    expect(small.name).toBe('wasm');
    const large = await selectBackend({ backend: 'auto', modelBytes: 2 * WASM_BUDGET_BYTES });
    expect(large.name).toBe('native');
    expect(large.summary).toContain(
      `the models need ~${((2 * WASM_BUDGET_BYTES) / 1e9).toFixed(1)} GB for weights and optimizer state, more than wasm's heap holds`,
    );
    await selectBackend({ backend: 'wasm' });
  });

  it('selects cpu explicitly', async () => {
    const choice = await selectBackend({ backend: 'cpu' });
    expect(choice.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
  });

  it('fails an explicit unavailable backend with every reason and a fix', async () => {
    const absent: ModuleResolver = { resolve: () => undefined, load: () => ({}) };
    await expect(selectBackend({ backend: 'tensorflow', resolver: absent })).rejects.toThrow(
      /backend "tensorflow" is not available: tensorflow: @tensorflow\/tfjs-node is not installed.*Fix: use "backend": "auto"/,
    );
    await expect(selectBackend({ backend: 'tpu' as never })).rejects.toThrow('unknown backend "tpu"');
  });

  it('refuses a second copy of tfjs-core, naming both', () => {
    const duplicated: ModuleResolver = {
      resolve: (request, fromDir) => {
        if (request === '@tensorflow/tfjs-core') return fromDir ? '/x/node_modules/@tensorflow/tfjs-node/node_modules/tfjs-core' : '/x/node_modules/tfjs-core';
        return `/x/node_modules/${request}`;
      },
      load: () => ({}),
    };
    expect(() => assertSingleTfjsCore(['@tensorflow/tfjs-node'], duplicated)).toThrow(BackendError);
    expect(() => assertSingleTfjsCore(['@tensorflow/tfjs-node'], duplicated)).toThrow(/second copy.*npm dedupe/);
    expect(() => assertSingleTfjsCore(['@tensorflow/tfjs-backend-wasm'])).not.toThrow();
  });
});
