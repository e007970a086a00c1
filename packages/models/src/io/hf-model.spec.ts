import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@skd/core';
import { maxAbsDiff, referenceModel, runReference, tensorsLeakedBy, useBackend, type ReferenceFamily } from '@skd/testing';
import { DecoderModel } from '../decoder';
import { generate } from '../generation';
import { GptModel } from '../gpt';
import { HfTokenizer } from '../tokenizers';
import { exportHuggingFace } from './hf-export';
import { loadHuggingFaceModel } from './hf-model';

// Each family's model is written by transformers (random weights at a tiny shape, its real
// architecture), then loaded by skd: logits on a padded batch within 1e-4 of transformers', and the
// same 32-token greedy generations, on the native kernels (wasm) and the composite forms (cpu).
const FAMILIES: ReferenceFamily[] = ['llama', 'qwen2', 'qwen3', 'mistral', 'phi3', 'olmo2', 'gemma', 'gemma2', 'gemma3', 'gpt2'];

function batch(vocab: number, seed: number) {
  const rng = Rng.create(seed);
  const lengths = [19, 12, 7];
  const T = Math.max(...lengths);
  const ids = lengths.map((n) => Array.from({ length: T }, (_, t) => (t < n ? 3 + Math.floor(rng.random() * (vocab - 3)) : 0)));
  const right: number[][] = lengths.map((n) => Array.from({ length: T }, (_, t) => (t < n ? 1 : 0)));
  // The last row left-padded, as generation pads prompts.
  ids[2] = [...(ids[2] as number[]).slice(lengths[2]), ...(ids[2] as number[]).slice(0, lengths[2])];
  right[2] = [...(right[2] as number[]).slice(lengths[2]), ...(right[2] as number[]).slice(0, lengths[2])];
  return { ids, mask: right };
}

describe.each(['wasm', 'cpu'] as const)('Hugging Face checkpoints on %s, against transformers', (backend) => {
  beforeAll(() => useBackend(backend));

  it.each(FAMILIES)('%s: logits of a padded batch within 1e-4, and the same 32-token greedy generations', async (family) => {
    const dir = referenceModel(family);
    const model = loadHuggingFaceModel(dir);
    expect(model).toBeInstanceOf(family === 'gpt2' ? GptModel : DecoderModel);
    const { ids, mask } = batch(model.vocabSize, 3);
    const reference = runReference<{ logits: number[][][] }>(['logits', dir], { ids, mask }).logits;
    const ours = tf.tidy(() => model.logits(tf.tensor2d(ids, undefined, 'int32'), { mask: tf.tensor2d(mask) }).arraySync());
    const real = (values: number[][][]) =>
      values.flatMap((row, b) =>
        row
          .filter((_, t) => mask[b]?.[t] === 1)
          .flat()
          .slice(0, model.vocabSize * 1000),
      );
    const theirs = reference.map((row) => row.map((col) => col.slice(0, model.vocabSize)));
    expect(maxAbsDiff(real(ours), real(theirs))).toBeLessThan(1e-4);

    const prompts = ids.map((row, b) => row.filter((_, t) => mask[b]?.[t] === 1).slice(0, 4 + 3 * b));
    const expected = runReference<{ tokens: number[][] }>(['generate', dir], { prompts, max_new_tokens: 32 }).tokens;
    const eos = JSON.parse(require('node:fs').readFileSync(`${dir}/generation_config.json`, 'utf8')).eos_token_id;
    const stops: number[] = Array.isArray(eos) ? eos : [eos];
    const { tokens } = await generate(model, prompts, { maxNewTokens: 32, eos: stops[0] as number, stop: stops, pad: 0, rng: Rng.create(0), greedy: true });
    expect(tokens).toEqual(expected);
    model.dispose();
  });

  it.each(FAMILIES.filter((f) => f !== 'gpt2'))(
    '%s: exported by skd, transformers reads the same model back (logits within 1e-5 of the original folder)',
    async (family) => {
      const dir = referenceModel(family);
      const model = loadHuggingFaceModel(dir) as DecoderModel;
      const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'skd-family-export-')), family);
      await exportHuggingFace(out, { model, tokenizer: HfTokenizer.fromFolder(dir) });
      const exported = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
      expect(exported.architectures).toEqual(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).architectures);
      const { ids, mask } = batch(model.vocabSize, 7);
      const original = runReference<{ logits: number[][][] }>(['logits', dir], { ids, mask }).logits;
      const again = runReference<{ logits: number[][][] }>(['logits', out], { ids, mask }).logits;
      const real = (values: number[][][]) => values.flatMap((row, b) => row.filter((_, t) => mask[b]?.[t] === 1).flat());
      expect(maxAbsDiff(real(again), real(original))).toBeLessThan(1e-5);
      const reloaded = loadHuggingFaceModel(out);
      const x = tf.tensor2d(ids, undefined, 'int32');
      expect(tf.tidy(() => tf.max(tf.abs(tf.sub(reloaded.logits(x), model.logits(x)))).dataSync()[0])).toBe(0);
      [x, reloaded, model].forEach((t) => t.dispose());
    },
  );

  it.each([
    ['bfloat16', 60_000],
    ['float16', 0],
  ] as const)("a %s checkpoint (shards of %i bytes; 0: one file) loads to transformers' logits", (dtype, shardBytes) => {
    const dir = referenceModel('llama', { dtype, shardBytes, seed: 4 });
    const files = require('node:fs').readdirSync(dir) as string[];
    expect(files.includes('model.safetensors.index.json')).toBe(shardBytes > 0);
    const model = loadHuggingFaceModel(dir);
    const { ids, mask } = batch(model.vocabSize, 5);
    const theirs = runReference<{ logits: number[][][] }>(['logits', dir], { ids, mask }).logits;
    const ours = tf.tidy(() => model.logits(tf.tensor2d(ids, undefined, 'int32'), { mask: tf.tensor2d(mask) }).arraySync());
    const real = (values: number[][][]) => values.flatMap((row, b) => row.filter((_, t) => mask[b]?.[t] === 1).flat());
    expect(maxAbsDiff(real(ours), real(theirs))).toBeLessThan(1e-4);
    model.dispose();
  });

  describe.each([
    ['bfloat16', 'llama', 0.05],
    ['float16', 'qwen3', 0.01],
    ['bfloat16', 'gemma2', 0.05],
  ] as const)('a %s %s checkpoint held in 16 bits (dtype "stored", a teacher\'s default)', (dtype, family, tolerance) => {
    const dir = referenceModel(family, { dtype, seed: 6 });
    const real = (values: number[][][], mask: number[][]) => values.flatMap((row, b) => row.filter((_, t) => mask[b]?.[t] === 1).flat());

    it("holds every weight matrix in 2 bytes and gives transformers' float32 logits on those weights within 1e-4", () => {
      const model = loadHuggingFaceModel(dir, { dtype: 'stored' }) as DecoderModel;
      expect(model.dtype).toBe(dtype);
      const matrices = [...model.halves.values()];
      expect(matrices.length).toBeGreaterThan(4);
      expect([...model.params.values()].every((p) => p.shape.length === 1)).toBe(true);
      expect(model.parameterCount).toBe((loadHuggingFaceModel(dir) as DecoderModel).parameterCount);
      const { ids, mask } = batch(model.vocabSize, 9);
      const reference = runReference<{ logits: number[][][] }>(['logits', dir], { ids, mask }).logits;
      const ours = tf.tidy(() => model.logits(tf.tensor2d(ids, undefined, 'int32'), { mask: tf.tensor2d(mask) }).arraySync());
      const theirs = reference.map((row) => row.map((col) => col.slice(0, model.vocabSize)));
      expect(maxAbsDiff(real(ours, mask), real(theirs, mask))).toBeLessThan(1e-4);
      model.dispose();
    });

    it(`stays within ${tolerance} of transformers computing in ${dtype}, and greedy text equals it wherever transformers' ${dtype} and float32 agree`, async () => {
      const model = loadHuggingFaceModel(dir, { dtype: 'stored' });
      const { ids, mask } = batch(model.vocabSize, 9);
      const native = runReference<{ logits: number[][][] }>(['logits', dir, '--compute', 'stored'], { ids, mask }).logits;
      const ours = tf.tidy(() => model.logits(tf.tensor2d(ids, undefined, 'int32'), { mask: tf.tensor2d(mask) }).arraySync());
      const theirs = native.map((row) => row.map((col) => col.slice(0, model.vocabSize)));
      const scale = Math.max(...real(theirs, mask).map(Math.abs));
      expect(maxAbsDiff(real(ours, mask), real(theirs, mask)) / scale).toBeLessThan(tolerance);

      const prompts = ids.map((row, b) => row.filter((_, t) => mask[b]?.[t] === 1).slice(0, 4 + 3 * b));
      const inFloat32 = runReference<{ tokens: number[][] }>(['generate', dir], { prompts, max_new_tokens: 24 }).tokens;
      const inHalf = runReference<{ tokens: number[][] }>(['generate', dir, '--compute', 'stored'], { prompts, max_new_tokens: 24 }).tokens;
      const eos = JSON.parse(fs.readFileSync(`${dir}/generation_config.json`, 'utf8')).eos_token_id;
      const stops: number[] = Array.isArray(eos) ? eos : [eos];
      const { tokens } = await generate(model, prompts, { maxNewTokens: 24, eos: stops[0] as number, stop: stops, pad: 0, rng: Rng.create(0), greedy: true });
      // skd computes in float32 on the 16-bit weights: always transformers' float32 text.
      expect(tokens).toEqual(inFloat32);
      const agreeing = inHalf.map((row, i) => (JSON.stringify(row) === JSON.stringify(inFloat32[i]) ? i : -1)).filter((i) => i >= 0);
      for (const i of agreeing) expect(tokens[i]).toEqual(inHalf[i]);
      model.dispose();
    });
  });

  it('keeps numTensors flat across forward passes and generation', async () => {
    const model = loadHuggingFaceModel(referenceModel('gemma2'));
    const leaked = await tensorsLeakedBy(async () => {
      tf.tidy(() => void model.logits(tf.tensor2d([[5, 6, 7]], undefined, 'int32')));
      await generate(model, [[5, 6, 7]], { maxNewTokens: 4, eos: 1, pad: 0, rng: Rng.create(0), greedy: true });
    });
    expect(leaked).toBe(0);
    model.dispose();
  });
});
