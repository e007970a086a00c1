import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, type ModuleResolver } from './select';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Rng } from '@skd/core';
import {
  chooseTokenWith,
  createKvCache,
  forwardKlFromLogits,
  NativeKvCache,
  sampleTokens,
  sparseCrossEntropy,
  TensorKvCache,
  type KvCacheOptions,
  type SamplingOptions,
} from '@skd/ops';
import { describeAdapter, gpuDeviceNodes } from './webgpu';
import { setScoreBudget } from './webgpu-kernels';

// tools/setup.sh installs Dawn (npm `webgpu`), tfjs-backend-webgpu and Mesa 25's software Vulkan
// (lavapipe), so every machine that ran it has an adapter: these tests need one.
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);

/** The same computation on the plain-JS CPU backend and on WebGPU. */
async function onBoth(compute: () => tf.Tensor): Promise<[Float32Array, Float32Array]> {
  await selectBackend({ backend: 'cpu' });
  const cpu = compute();
  const expected = (await cpu.data()) as Float32Array;
  cpu.dispose();
  await selectBackend({ backend: 'webgpu' });
  const gpu = compute();
  const actual = (await gpu.data()) as Float32Array;
  gpu.dispose();
  return [expected, actual];
}

describe('webgpu backend (tfjs-backend-webgpu on Dawn)', () => {
  afterAll(async () => {
    await selectBackend({ backend: 'cpu' });
  });

  it('finds an adapter, names it in the backend line, and computes what the CPU computes', async () => {
    const choice = await selectBackend({ backend: 'webgpu' });
    expect(choice.name).toBe('webgpu');
    expect(tf.getBackend()).toBe('webgpu');
    const adapter = choice.adapter;
    if (!adapter) throw new Error('no adapter reported');
    expect(choice.summary).toContain(`backend webgpu (${describeAdapter(adapter)}): tfjs-backend-webgpu on Dawn`);
    expect(choice.short.startsWith(`backend webgpu (${describeAdapter(adapter)})`)).toBe(true);
    expect(choice.device).toBe(adapter.software ? 'cpu' : 'gpu');
    const a = Array.from({ length: 64 * 48 }, (_, i) => Math.sin(i));
    const b = Array.from({ length: 48 * 40 }, (_, i) => Math.cos(3 * i));
    const [expected, actual] = await onBoth(() => tf.softmax(tf.matMul(tf.tensor2d(a, [64, 48]), tf.tensor2d(b, [48, 40]))));
    expect(maxAbsDiff(actual, expected)).toBeLessThan(1e-5);
    expect(maxAbsDiff(expected, new Float32Array(expected.length))).toBeGreaterThan(0.01); // not a vacuous comparison
  });

  it("runs skd's fused losses as its own WebGPU programs, equal to the CPU backend's composite ops (values and gradients)", async () => {
    await selectBackend({ backend: 'webgpu' });
    expect(['SkdCrossEntropy', 'SkdCrossEntropyGrad', 'SkdForwardKl', 'SkdForwardKlGrad'].map((k) => tf.getKernel(k, 'webgpu') !== undefined)).toEqual([
      true,
      true,
      true,
      true,
    ]);
    // (3, 5, V) rows with a vocabulary that is not a multiple of the workgroup, one teacher token without mass.
    const V = 203;
    const logits = Array.from({ length: 15 * V }, (_, i) => 3 * Math.sin(i * 0.37) + (i % 7) * 0.1);
    const teacher = Array.from({ length: 15 * V }, (_, i) => 2 * Math.cos(i * 0.11));
    const targets = Array.from({ length: 15 }, (_, i) => (i * 37) % V);
    const dy = Array.from({ length: 15 }, (_, i) => 0.5 + i / 10);
    for (const loss of ['crossEntropy', 'forwardKl'] as const) {
      const compute = (which: 'value' | 'grad') => () =>
        tf.tidy(() => {
          const x = tf.tensor3d(logits, [3, 5, V]);
          const logP = tf.logSoftmax(tf.tensor3d(teacher, [3, 5, V]));
          const masked = tf.where(tf.equal(tf.range(0, V, 1, 'int32'), 4), tf.fill([3, 5, V], -Infinity), logP);
          const f = (input: tf.Tensor) =>
            loss === 'crossEntropy' ? sparseCrossEntropy(input, tf.tensor2d(targets, [3, 5], 'int32')) : forwardKlFromLogits(masked, input);
          if (which === 'value') return f(x);
          return tf.grad((input: tf.Tensor) => tf.sum(tf.mul(f(input), tf.tensor2d(dy, [3, 5]))))(x);
        });
      for (const which of ['value', 'grad'] as const) {
        const [expected, actual] = await onBoth(compute(which));
        expect({ loss, which, diff: maxAbsDiff(actual, expected) < 1e-4 }).toEqual({ loss, which, diff: true });
        expect(actual.every(Number.isFinite)).toBe(true);
      }
    }
    // The composite path on the CPU backend does not use these kernels: the comparison is against tfjs's own ops.
    expect(tf.getKernel('SkdCrossEntropy', 'cpu')).toBeUndefined();
  });

  it.each([
    ['grouped-query heads', { batchSize: 3, capacity: 12, layers: 2, heads: 4, kvHeads: 2, headSize: 8 }, undefined],
    ['a sliding window and soft-capped scores', { batchSize: 3, capacity: 12, layers: 2, heads: 2, headSize: 4, softcap: 0.7, windows: [3, 0] }, undefined],
    // A scores budget of 5 query rows (of up to 12 a step): each step's queries run in chunks.
    ['queries in chunks', { batchSize: 3, capacity: 12, layers: 2, heads: 4, kvHeads: 2, headSize: 8 }, 5 * 4 * 12],
  ] as [string, KvCacheOptions, number | undefined][])(
    "decodes through skd's cached-attention programs (in-place cache writes) as the CPU's portable cache does: %s",
    async (_name, options, budget) => {
      const width = (options.heads + 2 * (options.kvHeads ?? options.heads)) * options.headSize;
      // Ragged blocks as SKD makes them: left padding, rows advancing by different amounts, rollbacks.
      const steps: { mask: number[]; rollback?: (number | undefined)[] }[] = [
        { mask: [1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1] }, // (B, S) row-major: 4 columns, row 1 left-padded by 3
        { mask: [1, 1, 0, 1, 0, 1, 1, 1, 1], rollback: [3, undefined, 4] },
        { mask: [0, 1, 1, 1, 1, 1, 1, 0, 0] },
        { mask: [1, 1, 1] },
      ];
      const run = async (backend: 'cpu' | 'webgpu') => {
        await selectBackend({ backend });
        const before = tf.memory().numTensors;
        const cache = createKvCache(options);
        const kind = cache instanceof NativeKvCache ? 'kernel' : cache instanceof TensorKvCache ? 'tensor' : 'other';
        const outputs: tf.Tensor[] = [];
        for (const [index, step] of steps.entries()) {
          const S = step.mask.length / options.batchSize;
          cache.advance(Float32Array.from(step.mask), S, (decode) => {
            for (let layer = 0; layer < options.layers; layer++) {
              const values = Array.from({ length: options.batchSize * S * width }, (_, i) => Math.sin(0.7 * i + 1.3 * layer + index));
              const qkv = tf.tensor2d(values, [options.batchSize * S, width]);
              outputs.push(tf.tidy(() => decode.attend(layer, qkv))); // as a model runs it
              qkv.dispose();
            }
          });
          if (step.rollback) cache.rollback(step.rollback);
        }
        const lengths = [...cache.lengths];
        // Read after the steps (a GPU backend reads computed values asynchronously).
        const read = await Promise.all(outputs.map(async (t) => Array.from(await t.data())));
        tf.dispose(outputs);
        cache.dispose();
        expect(tf.memory().numTensors).toBe(before); // the programs' scratch (the scores) is freed with each call
        return { kind, outputs: read, lengths };
      };
      const cpu = await run('cpu');
      const saved = budget === undefined ? undefined : setScoreBudget(budget);
      const gpu = await run('webgpu').finally(() => saved !== undefined && setScoreBudget(saved));
      expect([cpu.kind, gpu.kind]).toEqual(['tensor', 'kernel']);
      expect(gpu.lengths).toEqual(cpu.lengths);
      const d = options.heads * options.headSize;
      let compared = 0;
      let layerStep = 0;
      for (const step of steps)
        for (let layer = 0; layer < options.layers; layer++, layerStep++) {
          const [a, b] = [cpu.outputs[layerStep] as number[], gpu.outputs[layerStep] as number[]];
          step.mask.forEach((real, slot) => {
            const [x, y] = [a.slice(slot * d, (slot + 1) * d), b.slice(slot * d, (slot + 1) * d)];
            if (real) {
              expect(maxAbsDiff(y, x)).toBeLessThan(1e-5);
              compared += 1;
            } else {
              expect(maxAbsDiff(y, new Array(d).fill(0))).toBe(0); // padding slots: 0, as the native kernel's
            }
          });
        }
      expect(compared).toBe(2 * 25);
    },
  );

  it('samples on the GPU the tokens the host reference samples, reading back only ids, and leaves doubtful draws to the host', async () => {
    await selectBackend({ backend: 'webgpu' });
    expect(tf.getKernel('SkdSampleTokens', 'webgpu')).toBeDefined();
    // 96 rows over a vocabulary that is not a multiple of the workgroup: ties at the maximum, masked
    // (-inf) ids, flat and peaked rows.
    const [B, V] = [96, 1003];
    const values = Array.from({ length: B * V }, (_, i) => {
      const [b, v] = [Math.floor(i / V), i % V];
      if (v % 97 === b % 5) return -Infinity;
      if (b % 7 === 0 && (v === 9 || v === 10 || v === 640)) return 9; // ids share the maximum, within a chunk and across chunks
      return (b % 3 === 0 ? 6 : 1.5) * Math.sin(0.37 * i + b);
    });
    const logits = tf.tensor2d(values, [B, V]);
    const settings: SamplingOptions[] = [{ greedy: true }, { temperature: 1 }, { temperature: 0.7 }, { temperature: 1.3, topK: 5 }, { topP: 0.9 }];
    for (const options of settings) {
      const [gpu, host] = [Rng.create(11), Rng.create(11)];
      const ids = await sampleTokens(logits, options, gpu);
      const expected = Array.from({ length: B }, (_, b) => chooseTokenWith(values.slice(b * V, (b + 1) * V), options, options.greedy ? 0 : host.random()));
      expect({ options, ids: Array.from(ids) }).toEqual({ options, ids: expected });
      // What the kernel decided by itself: greedy and plain temperature draws nearly always, top-k/top-p never.
      const raw = tf.engine().runKernel('SkdSampleTokens', { logits }, {
        uniforms: Array.from({ length: B }, () => Rng.create(3).random()),
        temperature: options.temperature ?? 1,
        topK: options.topK ?? 0,
        topP: options.topP ?? 1,
        greedy: options.greedy ?? false,
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
      const undecided = Array.from(await raw.data()).filter((id) => id === -4).length;
      raw.dispose();
      if (options.topK || options.topP) expect(undecided).toBe(B);
      else expect(undecided).toBeLessThan(B / 10);
    }
    logits.dispose();
    const bad = tf.tensor2d([0, 1, Number.NaN, 2, -Infinity, -Infinity, -Infinity, -Infinity], [2, 4]);
    await expect(sampleTokens(bad, { temperature: 1 }, Rng.create(1), [true, false])).rejects.toThrow("the model's logits contain NaN (at token 2)");
    await expect(sampleTokens(bad, { greedy: true }, Rng.create(1), [false, true])).rejects.toThrow('every logit is -inf');
    bad.dispose();
  });

  it('reads host-made masks and token ids synchronously after the GPU used them; computed values asynchronously', async () => {
    await selectBackend({ backend: 'webgpu' });
    const mask = tf.tensor2d(
      [
        [1, 1, 0],
        [1, 0, 0],
      ],
      [2, 3],
      'int32',
    );
    const weights = tf.tensor1d([0.5, 0.25, 2]);
    const used = tf.sum(tf.mul(tf.cast(mask, 'float32'), weights)); // uploads both to the GPU
    expect(Array.from(mask.dataSync())).toEqual([1, 1, 0, 1, 0, 0]);
    expect(Array.from(weights.dataSync())).toEqual([0.5, 0.25, 2]);
    expect((await used.data())[0]).toBeCloseTo(1.25, 6);
    tf.dispose([mask, weights, used]);
  });

  it("auto passes a software adapter over (slower than skd's CPU kernels) and says why", async () => {
    const explicit = await selectBackend({ backend: 'webgpu' });
    const auto = await selectBackend({ backend: 'auto' });
    const attempt = auto.attempts.find((a) => a.backend === 'webgpu');
    if (gpuDeviceNodes().length === 0) {
      expect(auto.name).not.toBe('webgpu');
      expect(attempt?.reason).toMatch(/^no GPU device node .*only a software adapter could be found/);
    } else if (explicit.adapter?.software) {
      expect(auto.name).not.toBe('webgpu');
      expect(attempt?.reason).toContain(`its adapter is a software rasteriser (${describeAdapter(explicit.adapter)})`);
    } else {
      expect(auto.name).toBe('webgpu');
    }
  });

  it('finds GPU device nodes where a hardware adapter would come from', () => {
    const dev = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-dev-'));
    expect(gpuDeviceNodes(dev)).toEqual([]);
    fs.mkdirSync(path.join(dev, 'dri'));
    ['card0', 'renderD128', 'nvidia0', 'nvidiactl', 'null'].forEach((n) =>
      fs.writeFileSync(path.join(dev, n === 'card0' || n === 'renderD128' ? `dri/${n}` : n), ''),
    );
    expect(gpuDeviceNodes(dev).sort()).toEqual([path.join(dev, 'dri/renderD128'), path.join(dev, 'nvidia0')]);
    fs.rmSync(dev, { recursive: true });
  });

  it('says why it is unavailable when Dawn or the backend is not installed', async () => {
    const absent: ModuleResolver = { resolve: () => undefined, load: () => ({}) };
    await expect(selectBackend({ backend: 'webgpu', resolver: absent })).rejects.toThrow(
      /backend "webgpu" is not available: webgpu: webgpu is not installed \(optional: npm install webgpu@0.6.2 @tensorflow\/tfjs-backend-webgpu@4.22.0/,
    );
  });

  // Last: a failed kernel poisons this backend's reads for the rest of the process, by design.
  it('fails reads after a kernel fails instead of returning whatever its buffer held', async () => {
    await selectBackend({ backend: 'webgpu' });
    const many = Array.from({ length: 40 }, (_, i) => tf.fill([4], i));
    const sum = tf.addN(many); // binds 40 storage buffers at once: more than a shader stage may
    await expect(sum.data()).rejects.toThrow(/a WebGPU kernel failed, so results are not valid/);
    tf.dispose([...many, sum]);
  });
});
