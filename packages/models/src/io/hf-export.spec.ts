import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodePrompt, type LanguageModel } from '@skd/core';
import * as tf from '@tensorflow/tfjs-core';
import { referencePython } from '@skd/testing';
import { Tokenizer as HfTokenizer } from 'tokenizers';
import { BpeTokenizer } from '../bpe-tokenizer';
import { ByteTokenizer } from '../byte-tokenizer';
import { GptModel, gptConfigSchema } from '../gpt';
import { loadCheckpoint } from './checkpoint';
import { exportHuggingFaceGpt2, loadHuggingFaceGpt2 } from './hf-gpt2';
import { readBpeTokenizer } from './tokenizer-files';

const repo = path.resolve(__dirname, '../../../..');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'skd-export-'));
const testPrompts = (count: number) =>
  fs
    .readFileSync(path.join(repo, 'data/arithmetic/test.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .slice(0, count)
    .map((l) => (JSON.parse(l) as { prompt: string }).prompt);

function logitsOf(model: LanguageModel, sequences: number[][]): number[][][] {
  return sequences.map((s) => tf.tidy(() => (model.logits(tf.tensor2d([s], undefined, 'int32')).arraySync() as number[][][])[0] as number[][]));
}

const maxAbsDiff = (a: number[][][], b: number[][][]) =>
  Math.max(...a.flatMap((s, i) => s.flatMap((row, j) => row.map((v, k) => Math.abs(v - (b[i]?.[j]?.[k] ?? Number.NaN))))));

describe('exportHuggingFaceGpt2', () => {
  const tokenizer = BpeTokenizer.train(testPrompts(200), { vocabSize: 300, splitDigits: true });
  const config = gptConfigSchema.parse({ vocabSize: tokenizer.vocabSize, contextLength: 64, layers: 2, heads: 2, dModel: 16 });

  it('writes a GPT-2 folder that the GPT-2 loader reads back to exactly the same logits', async () => {
    const model = new GptModel(config, { seed: 5 });
    const dir = path.join(tmp(), 'hf');
    await exportHuggingFaceGpt2(dir, { model, tokenizer });
    expect(fs.readdirSync(dir).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'))).toMatchObject({
      model_type: 'gpt2',
      architectures: ['GPT2LMHeadModel'],
      n_layer: 2,
      n_head: 2,
      n_embd: 16,
      n_positions: 64,
      vocab_size: tokenizer.vocabSize,
      activation_function: 'gelu_new',
      tie_word_embeddings: true,
      eos_token_id: tokenizer.special.eos,
    });
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'generation_config.json'), 'utf8'))).toEqual({
      bos_token_id: tokenizer.special.bos ?? tokenizer.special.eos,
      eos_token_id: tokenizer.special.eos,
      pad_token_id: tokenizer.special.pad,
    });
    const reloaded = loadHuggingFaceGpt2(dir);
    const sequences = testPrompts(3).map((p) => tokenizer.encode(p).slice(0, 64));
    expect(maxAbsDiff(logitsOf(model, sequences), logitsOf(reloaded, sequences))).toBe(0);
    expect(readBpeTokenizer(path.join(dir, 'tokenizer.json')).encode('Tom has 12 apples.')).toEqual(tokenizer.encode('Tom has 12 apples.'));
    await expect(exportHuggingFaceGpt2(dir, { model, tokenizer })).rejects.toThrow('already exists');
    model.dispose();
    reloaded.dispose();
  });

  it('refuses what GPT-2 cannot hold: rotary positions, a byte tokenizer', async () => {
    const rotary = new GptModel(gptConfigSchema.parse({ ...config, positions: 'rotary' }), { seed: 1 });
    await expect(exportHuggingFaceGpt2(path.join(tmp(), 'r'), { model: rotary, tokenizer })).rejects.toThrow('rotary positions has no GPT-2 equivalent');
    const bytes = new GptModel(gptConfigSchema.parse({ ...config, vocabSize: 259 }), { seed: 1 });
    await expect(exportHuggingFaceGpt2(path.join(tmp(), 'b'), { model: bytes, tokenizer: new ByteTokenizer() })).rejects.toThrow(
      'only models with a BPE tokenizer',
    );
    rotary.dispose();
    bytes.dispose();
  });

  // Verified against implementations that are not skd's: PyTorch running the GPT-2 definition on
  // the exported weights, and Hugging Face's tokenizers reading the exported tokenizer.json.
  describe('the committed arithmetic student, exported', () => {
    let dir: string;
    let student: ReturnType<typeof loadCheckpoint>;
    beforeAll(async () => {
      student = loadCheckpoint(path.join(repo, 'experiments/arithmetic/models/student-1k'));
      dir = path.join(tmp(), 'hf');
      await exportHuggingFaceGpt2(dir, { model: student.model as GptModel, tokenizer: student.tokenizer });
    });
    afterAll(() => student.model.dispose());

    it("gives PyTorch's logits (max abs diff <= 1e-4)", () => {
      const sequences = testPrompts(3).map((p) => student.tokenizer.encode(p));
      const run = spawnSync(referencePython(), [path.join(repo, 'tools/export/check_hf_gpt2.py'), dir], {
        input: JSON.stringify(sequences),
        encoding: 'utf8',
        maxBuffer: 1 << 28,
      });
      expect(run.stderr).toBe('');
      const theirs = JSON.parse(run.stdout) as number[][][];
      const diff = maxAbsDiff(logitsOf(student.model, sequences), theirs);
      expect(diff).toBeLessThanOrEqual(1e-4);
    });

    it('has a tokenizer.json that Hugging Face tokenizers encodes as skd does, over the test set', async () => {
      const theirs = HfTokenizer.fromFile(path.join(dir, 'tokenizer.json'));
      const texts = fs
        .readFileSync(path.join(repo, 'data/arithmetic/test.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .flatMap((l) => Object.values(JSON.parse(l) as Record<string, unknown>).filter((v): v is string => typeof v === 'string'));
      // With BOS first, as skd's prompts have it: transformers' tokenizer(text) gives skd's ids.
      for (const text of texts) expect({ text, ids: (await theirs.encode(text)).getIds() }).toEqual({ text, ids: encodePrompt(student.tokenizer, text) });
      expect(texts.length).toBeGreaterThanOrEqual(300);
    });
  });
});
