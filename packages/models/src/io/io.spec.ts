import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { FormatError, type LanguageModel } from '@skd/core';
import { useBackend } from '@skd/testing';
import { BpeTokenizer } from '../bpe-tokenizer';
import { ByteTokenizer } from '../byte-tokenizer';
import { GptModel, gptConfigSchema } from '../gpt';
import { writeFolderAtomic } from './atomic';
import { loadCheckpoint, saveCheckpoint } from './checkpoint';
import { loadHuggingFaceGpt2 } from './hf-gpt2';
import { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors } from './safetensors';
import { readBpeTokenizer, writeBpeTokenizer } from './tokenizer-files';

beforeAll(() => useBackend('cpu'));

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'skd-io-'));
const config = (over: object = {}) => gptConfigSchema.parse({ vocabSize: 259, contextLength: 16, layers: 1, heads: 2, dModel: 8, ...over });
const logitsOf = (model: LanguageModel) => tf.tidy(() => Array.from(model.logits(tf.tensor2d([[1, 2, 3]], [1, 3], 'int32')).dataSync()));

describe('safetensors', () => {
  const arrays = new Map([
    ['b', { shape: [2], data: Float32Array.from([1.5, -2]) }],
    ['a', { shape: [2, 3], data: Int32Array.from([1, 2, 3, 4, 5, 6]) }],
  ]);

  it('round-trips arrays and metadata, with an 8-byte aligned data block', () => {
    const bytes = encodeSafetensors(arrays, { note: 'x' });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const back = decodeSafetensors(bytes, 'mem');
    expect(back.metadata).toEqual({ note: 'x' });
    expect(Array.from(back.arrays.get('b')?.data ?? [])).toEqual([1.5, -2]);
    expect(back.arrays.get('a')).toEqual({ shape: [2, 3], data: Int32Array.from([1, 2, 3, 4, 5, 6]) });
  });

  it('reads F16, BF16 and F64 as float32', () => {
    const header = JSON.stringify({
      h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
      g: { dtype: 'BF16', shape: [1], data_offsets: [4, 6] },
      d: { dtype: 'F64', shape: [1], data_offsets: [6, 14] },
    });
    const body = new Uint8Array(14);
    const view = new DataView(body.buffer);
    view.setUint16(0, 0x3c00, true); // 1.0 in half precision
    view.setUint16(2, 0xc000, true); // -2.0
    view.setUint16(4, 0x4049, true); // bf16 of 3.140625
    view.setFloat64(6, 0.25, true);
    const bytes = new Uint8Array(8 + header.length + 14);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(Buffer.from(header), 8);
    bytes.set(body, 8 + header.length);
    const { arrays: read } = decodeSafetensors(bytes, 'mem');
    expect(Array.from(read.get('h')?.data ?? [])).toEqual([1, -2]);
    expect(read.get('g')?.data[0]).toBeCloseTo(3.140625, 6);
    expect(read.get('d')?.data[0]).toBe(0.25);
  });

  it('names the file and the problem for truncated or corrupted files', () => {
    const dir = tmp();
    const file = path.join(dir, 'w.safetensors');
    writeSafetensors(file, arrays);
    const good = fs.readFileSync(file);
    fs.writeFileSync(file, good.subarray(0, good.length - 3));
    expect(() => readSafetensors(file)).toThrow(
      /w\.safetensors: not a valid safetensors file: tensor "b" spans bytes .* past the .*-byte data block \(truncated file\?\)/,
    );
    fs.writeFileSync(file, good.subarray(0, 5));
    expect(() => readSafetensors(file)).toThrow('too short');
    const broken = Buffer.from(good);
    broken.write('#', 9);
    fs.writeFileSync(file, broken);
    expect(() => readSafetensors(file)).toThrow('header is not JSON');
    expect(() => readSafetensors(path.join(dir, 'missing.safetensors'))).toThrow(FormatError);
  });
});

describe('checkpoints', () => {
  it('round-trip: save, load, identical logits, tokenizer and extra state', async () => {
    const model = new GptModel(config(), { seed: 3 });
    const dir = path.join(tmp(), 'ckpt');
    const optimizerState = new Map([['adam/m/wte', tf.ones([2, 2])]]);
    await saveCheckpoint(dir, { model, tokenizer: new ByteTokenizer(), optimizerState, extra: { step: 7 } });
    expect(fs.readdirSync(path.dirname(dir))).toEqual(['ckpt']); // no temporary folder left behind
    const loaded = loadCheckpoint(dir);
    expect(logitsOf(loaded.model)).toEqual(logitsOf(model));
    expect(loaded.tokenizer.fingerprint).toBe(new ByteTokenizer().fingerprint);
    expect(loaded.extra).toEqual({ step: 7 });
    expect(Array.from(loaded.optimizerState?.get('adam/m/wte')?.dataSync() ?? [])).toEqual([1, 1, 1, 1]);
    loaded.model.dispose();
    loaded.optimizerState?.forEach((t) => t.dispose());
    optimizerState.forEach((t) => t.dispose());
    model.dispose();
  });

  it('refuses to overwrite unless asked, and replaces atomically when asked', async () => {
    const a = new GptModel(config(), { seed: 1 });
    const b = new GptModel(config(), { seed: 2 });
    const dir = path.join(tmp(), 'ckpt');
    await saveCheckpoint(dir, { model: a, tokenizer: new ByteTokenizer() });
    await expect(saveCheckpoint(dir, { model: b, tokenizer: new ByteTokenizer() })).rejects.toThrow('already exists');
    await saveCheckpoint(dir, { model: b, tokenizer: new ByteTokenizer(), overwrite: true });
    const loaded = loadCheckpoint(dir);
    expect(logitsOf(loaded.model)).toEqual(logitsOf(b));
    expect(fs.readdirSync(path.dirname(dir))).toEqual(['ckpt']);
    [a, b, loaded.model].forEach((m) => m.dispose());
  });

  it('gives clear errors for missing, mismatched and corrupted files, never a crash inside tfjs', async () => {
    const model = new GptModel(config(), { seed: 1 });
    const dir = path.join(tmp(), 'ckpt');
    await saveCheckpoint(dir, { model, tokenizer: new ByteTokenizer() });
    expect(() => loadCheckpoint(path.join(dir, 'nope'))).toThrow(`${path.join(dir, 'nope')}: no such checkpoint folder`);
    expect(() => loadCheckpoint(path.dirname(dir))).toThrow('not a checkpoint folder: config.json is missing');
    const configFile = path.join(dir, 'config.json');
    const good = JSON.parse(fs.readFileSync(configFile, 'utf8'));
    fs.writeFileSync(configFile, JSON.stringify({ ...good, model: { kind: 'gpt', config: { ...good.model.config, dModel: 16 } } }));
    expect(() => loadCheckpoint(dir)).toThrow(/model\.safetensors: parameter "wte\.weight" must have shape \[259, 16\], got \[259, 8\]/);
    fs.writeFileSync(configFile, JSON.stringify({ ...good, model: { kind: 'gpt', config: { ...good.model.config, vocabSize: 300 } } }));
    expect(() => loadCheckpoint(dir)).toThrow("tokenizer vocabulary 259 does not match the model's 300");
    fs.writeFileSync(configFile, '{"format": "something-else"}');
    expect(() => loadCheckpoint(dir)).toThrow('not an skd checkpoint config');
    const { sha256: _sums, ...withoutChecksums } = good; // as written before checksums: the format check still names the file
    fs.writeFileSync(configFile, JSON.stringify(withoutChecksums));
    fs.writeFileSync(path.join(dir, 'model.safetensors'), 'garbage!');
    expect(() => loadCheckpoint(dir)).toThrow('model.safetensors: not a valid safetensors file');
    model.dispose();
  });

  it('records a checksum of each weights file and refuses one flipped bit, rather than load another model', async () => {
    const model = new GptModel(config(), { seed: 1 });
    const dir = path.join(tmp(), 'ckpt');
    await saveCheckpoint(dir, { model, tokenizer: new ByteTokenizer() });
    const weights = path.join(dir, 'model.safetensors');
    const bytes = fs.readFileSync(weights);
    bytes[bytes.length - 3] = (bytes[bytes.length - 3] as number) ^ 0x10; // inside the tensor data: still a valid file
    fs.writeFileSync(weights, bytes);
    expect(() => readSafetensors(weights)).not.toThrow();
    expect(() => loadCheckpoint(dir)).toThrow(/model\.safetensors: checksum mismatch: the file changed after it was written/);
    model.dispose();
  });
});

describe('atomic folder writes', () => {
  it('a folder write that fails removes its partial folder and leaves the previous checkpoint loadable', async () => {
    const model = new GptModel(config(), { seed: 1 });
    const dir = path.join(tmp(), 'ckpt');
    await saveCheckpoint(dir, { model, tokenizer: new ByteTokenizer() });
    await expect(
      writeFolderAtomic(
        dir,
        () => {
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        },
        { replace: true },
      ),
    ).rejects.toThrow(`cannot write ${dir}: no space left on device (ENOSPC)`);
    expect(fs.readdirSync(path.dirname(dir))).toEqual(['ckpt']);
    const loaded = loadCheckpoint(dir);
    expect(logitsOf(loaded.model)).toEqual(logitsOf(model));
    [model, loaded.model].forEach((m) => m.dispose());
  });
});

describe('Hugging Face GPT-2 checkpoints', () => {
  /** Writes a GPT-2 folder the way transformers does: prefixed names, mask buffers, a tied lm_head. */
  function writeHfCheckpoint(dir: string, model: GptModel, hfConfig: object) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(hfConfig));
    const arrays = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, p] of model.params) arrays.set(`transformer.${name}`, { shape: p.shape, data: Float32Array.from(p.dataSync()) });
    arrays.set('transformer.h.0.attn.bias', { shape: [1, 1, 2, 2], data: Float32Array.from([1, 0, 1, 1]) });
    arrays.set('lm_head.weight', { ...(arrays.get('transformer.wte.weight') as { shape: number[]; data: Float32Array }) });
    writeSafetensors(path.join(dir, 'model.safetensors'), arrays);
  }
  const hfConfig = {
    model_type: 'gpt2',
    vocab_size: 259,
    n_positions: 16,
    n_embd: 8,
    n_layer: 1,
    n_head: 2,
    n_inner: null,
    activation_function: 'gelu_new',
    layer_norm_epsilon: 1e-5,
  };

  it('loads by name: transformer. prefix, mask buffers and the tied head handled; same logits', () => {
    const source = new GptModel(config(), { seed: 9 });
    const dir = path.join(tmp(), 'gpt2');
    writeHfCheckpoint(dir, source, hfConfig);
    const loaded = loadHuggingFaceGpt2(dir);
    expect(loaded.config).toMatchObject({ vocabSize: 259, contextLength: 16, layers: 1, heads: 2, dModel: 8, tiedHead: true });
    expect(logitsOf(loaded)).toEqual(logitsOf(source));
    loaded.dispose();
    source.dispose();
  });

  it('refuses what it cannot run, saying what and why', () => {
    const source = new GptModel(config(), { seed: 9 });
    const dir = path.join(tmp(), 'gpt2');
    writeHfCheckpoint(dir, source, { ...hfConfig, activation_function: 'relu' });
    expect(() => loadHuggingFaceGpt2(dir)).toThrow('activation_function "relu" is not supported');
    writeHfCheckpoint(dir, source, { ...hfConfig, model_type: 'bert' });
    expect(() => loadHuggingFaceGpt2(dir)).toThrow(
      'model_type "bert" (and no architectures) is not supported; skd reads LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, MistralForCausalLM, Phi3ForCausalLM, Olmo2ForCausalLM, GemmaForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, GPT2LMHeadModel',
    );
    writeHfCheckpoint(dir, source, { ...hfConfig, model_type: 'llama' });
    expect(() => loadHuggingFaceGpt2(dir)).toThrow('hidden_size: missing');
    writeHfCheckpoint(dir, source, { ...hfConfig, n_layer: 2 });
    expect(() => loadHuggingFaceGpt2(dir)).toThrow(
      `${path.join(dir, 'model.safetensors')}: tensor "transformer.h.1.ln_1.weight" is missing (the config implies one of shape [8])`,
    );
    expect(() => loadHuggingFaceGpt2(path.join(dir, 'missing'))).toThrow('missing: no such model folder');
    fs.mkdirSync(path.join(dir, 'empty'));
    expect(() => loadHuggingFaceGpt2(path.join(dir, 'empty'))).toThrow('config.json is missing');
    source.dispose();
  });
});

describe('BPE tokenizer', () => {
  const corpus = ['the cat sat on the mat', 'the dog sat on the log', 'অসমীয়া ভাষা অসমীয়া', 'numbers 1234 and 1234!'];

  it('trains deterministically, round-trips any text, and compresses the corpus', () => {
    const a = BpeTokenizer.train(corpus, { vocabSize: 300, minFrequency: 1 });
    const b = BpeTokenizer.train(corpus, { vocabSize: 300, minFrequency: 1 });
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(a.vocabSize).toBe(300);
    // With the default minFrequency (2) this small corpus runs out of repeated pairs first.
    expect(BpeTokenizer.train(corpus, { vocabSize: 300 }).vocabSize).toBe(284);
    for (const text of [...corpus, 'unseen wörds ✓ and emoji 🎉', '  leading spaces\n\ttabs']) expect(a.decode(a.encode(text))).toBe(text);
    expect(a.encode(corpus[0] as string).length).toBeLessThan(new ByteTokenizer().encode(corpus[0] as string).length / 2);
    expect(a.special).toEqual({ pad: 297, eos: 298, bos: 299 });
    expect(a.decode([a.special.bos as number, ...a.encode('the cat'), a.special.eos])).toBe('the cat');
    expect(a.decode([a.special.eos], { keepSpecial: true })).toBe('<|eos|>');
  });

  it('writes standard Hugging Face files: tokenizer.json and the roles of its special tokens in tokenizer_config.json', () => {
    const trained = BpeTokenizer.train(corpus, { vocabSize: 280 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-bpe-'));
    const file = path.join(dir, 'tokenizer.json');
    writeBpeTokenizer(file, trained);
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(Object.keys(json).sort()).toEqual([
      'added_tokens',
      'decoder',
      'model',
      'normalizer',
      'padding',
      'post_processor',
      'pre_tokenizer',
      'truncation',
      'version',
    ]);
    expect(json.added_tokens.map((t: { content: string; special: boolean }) => [t.content, t.special])).toEqual([
      ['<|pad|>', true],
      ['<|eos|>', true],
      ['<|bos|>', true],
    ]);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'))).toEqual({
      tokenizer_class: 'PreTrainedTokenizerFast',
      eos_token: '<|eos|>',
      pad_token: '<|pad|>',
      bos_token: '<|bos|>',
    });
    const back = readBpeTokenizer(file);
    expect(back.fingerprint).toBe(trained.fingerprint);
    expect(back.special).toEqual(trained.special); // EOS is <|eos|>, not the first added token
    expect(back.encode('the mat sat')).toEqual(trained.encode('the mat sat'));
    // Without its config (a file from elsewhere), the roles default as documented; a legacy skd key still works.
    expect(BpeTokenizer.fromJSON(json).special.eos).toBe(trained.special.pad);
    expect(BpeTokenizer.fromJSON({ ...json, skd: { special: { pad: '<|pad|>', eos: '<|eos|>' } } }).special).toEqual({
      pad: trained.special.pad,
      eos: trained.special.eos,
    });
    const pairs = { ...json, model: { ...json.model, merges: json.model.merges.map((m: string) => m.split(' ')) } };
    const fromPairs = BpeTokenizer.fromJSON(pairs, 'tokenizer.json', { eos: '<|eos|>', pad: '<|pad|>' });
    expect(fromPairs.encode('the mat sat')).toEqual(trained.encode('the mat sat'));
  });

  it('reads added tokens written in the text as those tokens, as Hugging Face does', () => {
    const trained = BpeTokenizer.train(corpus, { vocabSize: 280 });
    const ids = trained.encode('the cat<|eos|> sat<|pad|>');
    expect(ids.filter((id) => id === trained.special.eos || id === trained.special.pad)).toEqual([trained.special.eos, trained.special.pad]);
    expect(trained.decode(ids, { keepSpecial: true })).toBe('the cat<|eos|> sat<|pad|>');
    expect(trained.encode('<|eos')).toEqual(trained.encode('<|').concat(trained.encode('eos'))); // a partial marker is plain text
  });

  it('splits every digit into its own token when asked, and says so in tokenizer.json', () => {
    const digits = BpeTokenizer.train(corpus, { vocabSize: 300, minFrequency: 1, splitDigits: true });
    const plain = BpeTokenizer.train(corpus, { vocabSize: 300, minFrequency: 1 });
    const one = (t: BpeTokenizer, text: string) => t.encode(text).map((id) => t.decode([id]));
    expect(one(digits, 'numbers 1234')).toEqual(['numbers', ' ', '1', '2', '3', '4']);
    expect(one(plain, 'numbers 1234').length).toBeLessThan(4); // 1234 was merged into a token or two
    const json = digits.toJSON() as { pre_tokenizer: unknown };
    expect(json.pre_tokenizer).toEqual({
      type: 'Sequence',
      pretokenizers: [
        { type: 'Digits', individual_digits: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    });
    const back = BpeTokenizer.fromJSON(json);
    expect(back.encode('a 9876 b')).toEqual(digits.encode('a 9876 b'));
    expect(back.fingerprint).toBe(digits.fingerprint);
    expect(back.fingerprint).not.toBe(BpeTokenizer.fromJSON({ ...json, pre_tokenizer: { type: 'ByteLevel' } }).fingerprint);
  });

  it('rejects tokenizer.json files it cannot reproduce', () => {
    expect(() => BpeTokenizer.fromJSON({ model: { type: 'WordPiece', vocab: {} } })).toThrow('unsupported tokenizer: model type "WordPiece"');
    expect(() => BpeTokenizer.fromJSON({ model: { type: 'BPE', vocab: {}, merges: [] }, pre_tokenizer: { type: 'Metaspace' } })).toThrow(
      'unsupported pre_tokenizer Metaspace',
    );
    expect(() => BpeTokenizer.train(corpus, { vocabSize: 100 })).toThrow('vocabSize must be at least 259');
    const trained = BpeTokenizer.train(corpus, { vocabSize: 270 });
    expect(() => BpeTokenizer.fromJSON(trained.toJSON(), 'x', { eos: '<|nope|>' })).toThrow('special token "<|nope|>" (eos) is not in the vocabulary');
  });
});
