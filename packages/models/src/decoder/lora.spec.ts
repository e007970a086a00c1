import * as tf from '@tensorflow/tfjs-core';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tensorsLeakedBy, useBackend } from '@skd/testing';
import { loadCheckpoint, saveCheckpoint } from '../io';
import { ByteTokenizer } from '../byte-tokenizer';
import { decoderConfig, type DecoderConfig } from './config';
import { DecoderModel } from './decoder-model';
import { loraConfigSchema, loraParameterShapes, type LoraConfig } from './lora';

const CONFIG: DecoderConfig = decoderConfig({
  vocabSize: 23,
  contextLength: 16,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  dModel: 16,
  dFf: 24,
  qkvBias: true,
  mlpBias: true,
  tiedHead: false,
});
const tokens = () =>
  tf.tensor2d(
    [
      [1, 5, 2, 9, 3, 3, 7, 11],
      [8, 2, 2, 13, 5, 1, 15, 9],
    ],
    undefined,
    'int32',
  );
const mask = () =>
  tf.tensor2d([
    [1, 1, 1, 1, 1, 1, 1, 1],
    [0, 0, 1, 1, 1, 1, 1, 1],
  ]);
/** Largest absolute difference of two tensors. */
const diff = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] as number);
const lora = (overrides: Partial<LoraConfig> = {}): LoraConfig => loraConfigSchema.parse({ rank: 3, alpha: 6, ...overrides });

/** A LoRA model over `base`'s weights whose B matrices are random too (a fresh adapter's are zero). */
function adapted(base: DecoderModel, config: LoraConfig, seed = 11): DecoderModel {
  const adapters = new Map<string, tf.Tensor>();
  let i = 0;
  for (const [name, shape] of loraParameterShapes(base.config, config)) adapters.set(name, tf.randomNormal(shape, 0, 0.2, 'float32', seed + i++));
  const model = new DecoderModel(base.config, { weights: base.heldWeights, dtype: base.dtype, lora: config, adapters });
  adapters.forEach((t) => t.dispose());
  return model;
}

/** The merged weights as an ordinary model. */
function merged(model: DecoderModel): DecoderModel {
  const weights = model.mergedWeights();
  const plain = new DecoderModel(model.config, { weights });
  weights.forEach((t) => t.dispose());
  return plain;
}

/** Tensors a second training step (dropout, checkpointed layers) over adapters on `base` leaves behind; disposes `base`. */
async function trainingStepLeaks(base: DecoderModel): Promise<number> {
  const model = adapted(base, lora({ dropout: 0.1 }));
  const x = tokens();
  const step = () => {
    const { value, grads } = tf.variableGrads(
      () => tf.mean(model.logits(x, { training: true, seed: 1, checkpointLayers: true })) as tf.Scalar,
      [...model.trainableVariables],
    );
    value.dispose();
    Object.values(grads).forEach((g) => g.dispose());
  };
  step();
  const leaked = await tensorsLeakedBy(step);
  [x, model, base].forEach((t) => t.dispose());
  return leaked;
}

describe.each(['cpu', 'wasm'] as const)('LoRA adapters on a decoder, %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('a new adapter leaves the logits as they were, and only the adapters train', () => {
    const base = new DecoderModel(CONFIG, { seed: 2 });
    const weights = new Map([...base.params].map(([name, v]) => [name, v as tf.Tensor]));
    const model = new DecoderModel(CONFIG, { weights, lora: lora(), seed: 4 });
    const x = tokens();
    expect(tf.tidy(() => diff(model.logits(x), base.logits(x)))).toBe(0);
    // 7 targets x 2 layers x (A, B); every frozen weight is left out of training.
    expect(model.trainableVariables).toHaveLength(28);
    expect(model.trainableVariables.every((v) => /lora_[AB]$/.test(v.name))).toBe(true);
    expect([...model.params.values()].every((v) => !v.trainable)).toBe(true);
    const A = model.lora?.variables.get('model.layers.0.self_attn.q_proj.lora_A') as tf.Variable;
    const B = model.lora?.variables.get('model.layers.1.mlp.down_proj.lora_B') as tf.Variable;
    expect(A.shape).toEqual([16, 3]);
    expect(B.shape).toEqual([3, 16]);
    expect(tf.tidy(() => tf.max(tf.abs(A)).dataSync()[0] as number)).toBeLessThanOrEqual(1 / 4);
    expect(tf.tidy(() => tf.max(tf.abs(B)).dataSync()[0] as number)).toBe(0);
    // Per layer: q (16x3 + 3x16), k and v (16x3 + 3x8 each), o (16x3 + 3x16), gate and up (16x3 + 3x24 each), down (24x3 + 3x16).
    expect(model.trainableParameterCount).toBe(2 * (96 + 72 + 72 + 96 + 120 + 120 + 120));
    [x, model, base].forEach((t) => t.dispose());
  });

  it.each([
    ['every target', lora()],
    ['q and v only', lora({ targets: ['q', 'v'] })],
    ['k, up and down', lora({ targets: ['k', 'up', 'down'], rank: 2, alpha: 1 })],
  ])('%s: logits equal the merged weights, and the decoded cache equals the full pass', (_name, config) => {
    const base = new DecoderModel(CONFIG, { seed: 2 });
    const model = adapted(base, config);
    const plain = merged(model);
    const x = tokens();
    const m = mask();
    expect(tf.tidy(() => diff(model.logits(x, { mask: m }), plain.logits(x, { mask: m })))).toBeLessThan(1e-5);
    // The adapters move the model: the check above is not comparing the base with itself.
    expect(tf.tidy(() => diff(model.logits(x), base.logits(x)))).toBeGreaterThan(1e-2);
    const state = model.startDecoding(2, 8);
    const decoded = tf.tidy(() => model.decode(x, state));
    expect(tf.tidy(() => diff(decoded, model.logits(x)))).toBeLessThan(1e-4);
    state.dispose();
    [x, m, decoded, model, plain, base].forEach((t) => t.dispose());
  });

  it("the adapters' gradients follow from the merged weights' by the chain rule (dA = s dW Bᵀ, dB = s Aᵀ dW), with and without checkpointed layers", () => {
    const base = new DecoderModel(CONFIG, { seed: 2 });
    const config = lora({ targets: ['q', 'k', 'o', 'gate', 'down'] });
    const model = adapted(base, config);
    const plain = merged(model);
    const x = tokens();
    const m = mask();
    const target = tf.randomNormal([2, 8, 23], 0, 1, 'float32', 5);
    const loss = (logits: tf.Tensor) => tf.mean(tf.mul(logits, target)) as tf.Scalar;
    const gradients = (of: DecoderModel, checkpointLayers: boolean) =>
      tf.variableGrads(() => loss(of.logits(x, { mask: m, training: true, seed: 1, checkpointLayers })), [...of.trainableVariables]);
    const reference = gradients(plain, false); // dL/dW of every merged weight
    const s = config.alpha / config.rank;
    const { headDim, kvHeads, dFf } = { headDim: 4, kvHeads: 2, dFf: 24 };
    const columns: Record<string, [string, number, number]> = {
      q: ['self_attn.qkv_proj.weight', 0, 4 * headDim],
      k: ['self_attn.qkv_proj.weight', 4 * headDim, kvHeads * headDim],
      o: ['self_attn.o_proj.weight', 0, 16],
      gate: ['mlp.gate_up_proj.weight', 0, dFf],
      down: ['mlp.down_proj.weight', 0, 16],
    };
    const modules: Record<string, string> = {
      q: 'self_attn.q_proj',
      k: 'self_attn.k_proj',
      o: 'self_attn.o_proj',
      gate: 'mlp.gate_proj',
      down: 'mlp.down_proj',
    };
    for (const checkpointLayers of [false, true]) {
      const { value, grads } = gradients(model, checkpointLayers);
      for (let layer = 0; layer < 2; layer++) {
        for (const target of config.targets) {
          const [weight, at, width] = columns[target] as [string, number, number];
          const dW = tf.slice(reference.grads[(plain.params.get(`model.layers.${layer}.${weight}`) as tf.Variable).name] as tf.Tensor2D, [0, at], [-1, width]);
          const A = model.lora?.variables.get(`model.layers.${layer}.${modules[target]}.lora_A`) as tf.Variable;
          const B = model.lora?.variables.get(`model.layers.${layer}.${modules[target]}.lora_B`) as tf.Variable;
          const wantA = tf.mul(tf.matMul(dW, B as tf.Tensor2D, false, true), s);
          const wantB = tf.mul(tf.matMul(A as tf.Tensor2D, dW, true, false), s);
          const scale = Math.max(1e-4, tf.max(tf.abs(wantA)).dataSync()[0] as number, tf.max(tf.abs(wantB)).dataSync()[0] as number);
          expect(diff(grads[A.name] as tf.Tensor, wantA) / scale).toBeLessThan(1e-4);
          expect(diff(grads[B.name] as tf.Tensor, wantB) / scale).toBeLessThan(1e-4);
          [dW, wantA, wantB].forEach((t) => t.dispose());
        }
      }
      expect(Math.abs((value.dataSync()[0] as number) - (reference.value.dataSync()[0] as number))).toBeLessThan(1e-5);
      [value, ...Object.values(grads)].forEach((t) => t.dispose());
    }
    [x, m, target, reference.value, ...Object.values(reference.grads), model, plain, base].forEach((t) => t.dispose());
  });

  it('dropout on the adapters: the same seed gives the same logits, another seed others, and evaluation none', () => {
    const base = new DecoderModel(CONFIG, { seed: 2 });
    const model = adapted(base, lora({ dropout: 0.5 }));
    const x = tokens();
    const run = (training: boolean, seed: number) => model.logits(x, { training, seed });
    tf.tidy(() => {
      expect(diff(run(true, 3), run(true, 3))).toBe(0);
      expect(diff(run(true, 3), run(true, 4))).toBeGreaterThan(1e-3);
      expect(diff(run(false, 3), run(false, 4))).toBe(0);
      const plain = merged(model);
      expect(diff(run(false, 3), plain.logits(x))).toBeLessThan(1e-5);
      plain.dispose();
    });
    [x, model, base].forEach((t) => t.dispose());
  });

  it('a training step leaks no tensors', async () => expect(await trainingStepLeaks(new DecoderModel(CONFIG, { seed: 2 }))).toBe(0));

  it('refuses adapters of the wrong shape or without a config', () => {
    const base = new DecoderModel(CONFIG, { seed: 2 });
    const weights = new Map([...base.params].map(([name, v]) => [name, v as tf.Tensor]));
    const wrong = new Map([['model.layers.0.self_attn.q_proj.lora_A', tf.zeros([16, 2])]]);
    const before = tf.memory().numTensors;
    expect(() => new DecoderModel(CONFIG, { weights, lora: lora(), adapters: wrong })).toThrow(/must have shape \[16, 3\]/);
    expect(() => new DecoderModel(CONFIG, { weights, adapters: wrong })).toThrow(/without a LoRA config/);
    expect(tf.memory().numTensors).toBe(before);
    wrong.forEach((t) => t.dispose());
    base.dispose();
  });
});

describe.each(['cpu', 'wasm'] as const)('LoRA adapters over a 16-bit base, %s', (backend) => {
  beforeAll(() => useBackend(backend));

  /** The same adapters over `half`'s weights widened to float32: what the 16-bit base must compute. */
  function widenedTwin(half: DecoderModel): DecoderModel {
    const base = new DecoderModel(half.config, { weights: half.heldWeights });
    const adapters = new Map([...(half.lora?.variables ?? [])].map(([name, v]) => [name, v as tf.Tensor]));
    const twin = new DecoderModel(half.config, { weights: base.params, lora: half.lora?.config as LoraConfig, adapters });
    base.dispose();
    return twin;
  }

  it.each(['bfloat16', 'float16'] as const)(
    "%s: logits, decoding and the adapters' gradients equal the widened float32 base's; only the adapters train; the head is frozen",
    (dtype) => {
      const config = lora({ targets: ['q', 'v', 'o', 'up', 'down'] });
      const base = new DecoderModel(CONFIG, { seed: 2, dtype });
      const model = adapted(base, config);
      expect(model.dtype).toBe(dtype);
      expect(model.halves.size).toBeGreaterThan(0);
      expect(model.trainableVariables.every((v) => /lora_[AB]$/.test(v.name))).toBe(true);
      expect(model.outputLayer.weight).toBeUndefined();
      const twin = widenedTwin(model);
      const x = tokens();
      const m = mask();
      expect(tf.tidy(() => diff(model.logits(x, { mask: m }), twin.logits(x, { mask: m })))).toBeLessThan(1e-5);
      const state = model.startDecoding(2, 8);
      expect(tf.tidy(() => diff(model.decode(x, state), model.logits(x)))).toBeLessThan(1e-4);
      state.dispose();
      const target = tf.randomNormal([2, 8, 23], 0, 1, 'float32', 5);
      for (const checkpointLayers of [false, true]) {
        const gradients = (of: DecoderModel) =>
          tf.variableGrads(
            () => tf.mean(tf.mul(of.logits(x, { mask: m, training: true, seed: 1, checkpointLayers }), target)) as tf.Scalar,
            [...of.trainableVariables],
          );
        const ours = gradients(model);
        const theirs = gradients(twin);
        expect(Object.keys(ours.grads)).toHaveLength(model.trainableVariables.length);
        model.trainableVariables.forEach((v, i) => {
          const want = theirs.grads[(twin.trainableVariables[i] as tf.Variable).name] as tf.Tensor;
          const scale = Math.max(
            1e-6,
            tf.tidy(() => tf.max(tf.abs(want)).dataSync()[0] as number),
          );
          expect(diff(ours.grads[v.name] as tf.Tensor, want) / scale).toBeLessThan(1e-4);
        });
        // Some gradient is not zero: the comparison above compares something.
        expect(Object.values(ours.grads).some((g) => tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0] as number) > 1e-6)).toBe(true);
        [ours.value, theirs.value, ...Object.values(ours.grads), ...Object.values(theirs.grads)].forEach((t) => t.dispose());
      }
      // Merged: the widened base plus the adapters, as the float32 twin merges them.
      const [mine, its] = [model.mergedWeights(), twin.mergedWeights()];
      for (const [name, value] of its) expect(diff(mine.get(name) as tf.Tensor, value)).toBeLessThan(1e-6);
      [...mine.values(), ...its.values()].forEach((t) => t.dispose());
      [x, m, target, model, twin, base].forEach((t) => t.dispose());
    },
  );

  it('a training step leaks no tensors', async () => expect(await trainingStepLeaks(new DecoderModel(CONFIG, { seed: 2, dtype: 'bfloat16' }))).toBe(0));

  it('a checkpoint keeps the base in 16 bits (BF16 in model.safetensors) and reads back to the same bits and adapters', async () => {
    const base = new DecoderModel({ ...CONFIG, vocabSize: new ByteTokenizer().vocabSize }, { seed: 2, dtype: 'bfloat16' });
    const model = adapted(base, lora());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-lora-half-'));
    try {
      await saveCheckpoint(path.join(dir, 'ckpt'), { model, tokenizer: new ByteTokenizer() });
      const header = fs.readFileSync(path.join(dir, 'ckpt', 'model.safetensors'));
      const json = JSON.parse(header.subarray(8, 8 + Number(header.readBigUInt64LE(0))).toString('utf8')) as Record<string, { dtype: string; shape: number[] }>;
      expect(json['model.layers.0.self_attn.o_proj.weight']).toMatchObject({ dtype: 'BF16', shape: [16, 16] });
      expect(json['model.norm.weight']).toMatchObject({ dtype: 'F32' });
      const loaded = loadCheckpoint(path.join(dir, 'ckpt')).model as DecoderModel;
      expect(loaded.dtype).toBe('bfloat16');
      for (const [name, half] of model.halves) expect(Array.from((loaded.halves.get(name) as typeof half).data)).toEqual(Array.from(half.data));
      for (const [name, v] of model.lora?.variables ?? []) expect(diff(loaded.lora?.variables.get(name) as tf.Tensor, v)).toBe(0);
      const x = tokens();
      expect(tf.tidy(() => diff(loaded.logits(x), model.logits(x)))).toBe(0);
      [x, loaded].forEach((t) => t.dispose());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      [model, base].forEach((t) => t.dispose());
    }
  });
});
