import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { FormatError, SkdError, VocabularyMismatchError, defineComponent, type AnyComponentEntry, type LanguageModel, type Tokenizer } from '@skd/core';
import { BpeTokenizer, type BpeTokenizerConfig } from './bpe-tokenizer';
import { loadCheckpoint, loadHuggingFaceModel, readBpeTokenizer, readHuggingFaceConfig, tokenizerFromJSON } from './io';
import { HfTokenizer, tokenizerDifference } from './tokenizers';
import { BigramModel } from './bigram-model';
import { ByteTokenizer } from './byte-tokenizer';
import { DecoderModel, checkDecoderConfig, decoderConfigSchema, decoderParameterShapes, loraConfigSchema, type LoraConfig } from './decoder';
import { HalfMatrix } from '@skd/ops';
import { GptModel, checkGptConfig, gptConfigSchema, gptParameterShapes } from './gpt';

export const byteTokenizerEntry = defineComponent({
  component: 'tokenizer',
  kind: ByteTokenizer.kind,
  summary: 'UTF-8 bytes plus pad/eos/bos (vocabulary 259); no training needed',
  options: z.strictObject({}),
  create: () => new ByteTokenizer(),
});

export const bigramModelEntry = defineComponent({
  component: 'model',
  kind: BigramModel.kind,
  summary: 'a trainable next-token table (V x V): the smallest real language model',
  options: z.strictObject({
    contextLength: z.number().int().min(2).default(256).describe('longest sequence accepted'),
    initScale: z.number().positive().default(0.02).describe('std of the normal initial weights'),
  }),
  create: (options, deps) => new BigramModel({ vocabSize: deps.tokenizer.vocabSize, seed: deps.rng.tfSeed(), ...options }),
});

export const gptModelEntry = defineComponent({
  component: 'model',
  kind: GptModel.kind,
  summary: 'GPT-style decoder (pre-LayerNorm, GELU, learned or rotary positions, KV cache); vocabulary from the tokenizer',
  options: gptConfigSchema.omit({ vocabSize: true }).superRefine((config, ctx) => {
    for (const message of checkGptConfig({ ...config, vocabSize: 2 })) ctx.addIssue({ code: 'custom', message });
  }),
  create: (options, deps) => new GptModel({ ...options, vocabSize: deps.tokenizer.vocabSize }, { seed: deps.rng.tfSeed() }),
});

/**
 * `lora`: train low-rank adapters over the frozen weights instead of every weight (students of the
 * Llama family). Writing `{}` takes every default: rank 8, alpha 16, no dropout, all seven projections.
 */
const loraOption = loraConfigSchema
  .optional()
  .describe('train LoRA adapters over frozen weights instead of every weight: { rank, alpha, dropout, targets } (students of the Llama family)');

/** How a model holds its weight matrices (`dtype`). */
const dtypeOption = z
  .enum(['float32', 'bfloat16', 'float16'])
  .optional()
  .describe(
    "how frozen weight matrices are held: a teacher's, or a LoRA student's base (its adapters stay float32); bfloat16 or float16 halve their memory and the reads of each decode step, products stay float32 (default: a teacher as its checkpoint stores them, a student float32)",
  );

type ModelDtype = z.infer<typeof dtypeOption>;

/** A student's weights train in float32: 16 bits are refused for it in one line, unless they are a LoRA base. */
function checkDtype(dtype: ModelDtype, role: string, lora: LoraConfig | undefined): void {
  if (dtype && dtype !== 'float32' && role === 'student' && !lora) {
    throw new SkdError(`a student that trains every weight trains them in float32; ${dtype} weights are for frozen ones`, {
      hint: `remove student.options.dtype, or train LoRA adapters over a ${dtype} base (student.options.lora)`,
    });
  }
}

/** A loaded model held in `dtype` instead (a teacher from an skd checkpoint); the original is disposed. */
function withDtype(model: LanguageModel, dtype: ModelDtype): LanguageModel {
  if (!dtype || (model instanceof DecoderModel ? model.dtype === dtype : dtype === 'float32')) return model;
  if (!(model instanceof DecoderModel)) {
    model.dispose();
    throw new SkdError(`${dtype} weights are held by Llama-family decoders; this model is a GPT`, { hint: 'set dtype "float32" or leave it out' });
  }
  try {
    return new DecoderModel(model.config, {
      weights: model.heldWeights,
      dtype,
      outputVocab: model.vocabSize,
      ...(model.lora ? { lora: model.lora.config, adapters: model.lora.variables } : {}),
      ...(model.loraBase ? { loraBase: model.loraBase } : {}),
    });
  } finally {
    model.dispose();
  }
}

/**
 * The model with LoRA adapters over its weights (which it gives up: the adapted model holds them
 * frozen, in 16 bits when `dtype` says so), or the model itself when no adapters are asked for.
 * Adapters over a saved run's adapters sit on its merged weights.
 */
function withLora(
  model: LanguageModel,
  lora: LoraConfig | undefined,
  deps: { readonly role: string; readonly rng: { tfSeed(): number } },
  options: { readonly base?: string; readonly dtype?: ModelDtype } = {},
): LanguageModel {
  const { base, dtype } = options;
  if (!lora) return model;
  if (deps.role !== 'student') {
    model.dispose();
    throw new SkdError(`LoRA adapters train a student; the ${deps.role} is frozen already`, { hint: `remove ${deps.role}.options.lora` });
  }
  if (!(model instanceof DecoderModel)) {
    model.dispose();
    throw new SkdError(
      'LoRA adapters sit on Llama-family decoders (Llama, Qwen2, Qwen3, Mistral, Phi-3, OLMo 2, Gemma, Gemma 2, Gemma 3); this student is a GPT',
      {
        hint: 'remove student.options.lora to train every weight, or distil into a Llama-family student',
      },
    );
  }
  const weights: ReadonlyMap<string, tf.Tensor | HalfMatrix> = model.lora ? model.mergedWeights() : model.heldWeights;
  try {
    return new DecoderModel(model.config, {
      weights,
      lora,
      ...(dtype ? { dtype } : { dtype: model.dtype }),
      seed: deps.rng.tfSeed(),
      outputVocab: model.vocabSize,
      ...((base ?? model.loraBase) ? { loraBase: (base ?? model.loraBase) as string } : {}),
    });
  } finally {
    if (model.lora) weights.forEach((t) => (t instanceof HalfMatrix ? undefined : t.dispose()));
    model.dispose();
  }
}

export const decoderModelEntry = defineComponent({
  component: 'model',
  kind: 'llama',
  summary: 'a Llama-family decoder from scratch (RMSNorm, rotary, grouped-query attention, gated MLP; random weights); vocabulary from the tokenizer',
  options: decoderConfigSchema
    .omit({ vocabSize: true })
    .extend({ lora: loraOption })
    .superRefine(({ lora: _lora, ...config }, ctx) => {
      for (const message of checkDecoderConfig({ ...config, vocabSize: 2 })) ctx.addIssue({ code: 'custom', message });
    }),
  create: ({ lora, ...options }, deps) =>
    withLora(new DecoderModel({ ...options, vocabSize: deps.tokenizer.vocabSize }, { seed: deps.rng.tfSeed() }), lora, deps),
});

export const bpeTokenizerEntry = defineComponent({
  component: 'tokenizer',
  kind: BpeTokenizer.kind,
  summary: 'byte-level BPE from a Hugging Face tokenizer.json (GPT-2 style)',
  options: z.strictObject({
    path: z.string().min(1).describe('tokenizer.json, relative to the config file'),
    eos: z.string().optional().describe("EOS token string (default: tokenizer_config.json's eos_token, else <|endoftext|> or the first added token)"),
    pad: z.string().optional().describe("padding token string (default: tokenizer_config.json's pad_token, else the EOS token)"),
    bos: z.string().optional().describe("BOS token string (default: tokenizer_config.json's bos_token, else none)"),
  }),
  create: ({ path: file, ...special }, deps) => readBpeTokenizer(path.resolve(deps.baseDir, file), special),
});

export const checkpointTokenizerEntry = defineComponent({
  component: 'tokenizer',
  kind: 'checkpoint',
  summary: 'the tokenizer saved in an skd checkpoint folder',
  options: z.strictObject({ path: z.string().min(1).describe('checkpoint folder, relative to the config file') }),
  create: (options, deps) => {
    const configFile = path.join(path.resolve(deps.baseDir, options.path), 'config.json');
    if (!fs.existsSync(configFile)) throw new FormatError(configFile, 'not a checkpoint folder: config.json is missing');
    const saved = JSON.parse(fs.readFileSync(configFile, 'utf8')) as { tokenizer?: unknown; tokenizerConfig?: Partial<BpeTokenizerConfig> };
    return tokenizerFromJSON(saved.tokenizer, configFile, saved.tokenizerConfig);
  },
});

/** For a teacher: the other way, distilling across tokenizers. */
function crossHint(role: string, kind: string, source: string): string {
  return role === 'teacher'
    ? `; or, to distil across tokenizers, set "teacherTokenizer": { "kind": "${kind}", "options": { "path": "${source}" } } with divergence uld, gold or alm`
    : '';
}

/** A model saved with another tokenizer would read every token id as a different string. */
function checkTokenizer(role: string, source: string, saved: Tokenizer, run: Tokenizer): void {
  if (saved.fingerprint !== run.fingerprint) {
    throw new VocabularyMismatchError(
      `the ${role} checkpoint ${source} was trained with tokenizer ${saved.fingerprint} (vocabulary ${saved.vocabSize}), the run uses ${run.fingerprint} (vocabulary ${run.vocabSize})`,
      {
        hint: `set "tokenizer": { "kind": "checkpoint", "options": { "path": "${source}" } } and give teacher and student the same tokenizer${crossHint(role, 'checkpoint', source)}`,
      },
    );
  }
}

export const checkpointModelEntry = defineComponent({
  component: 'model',
  kind: 'checkpoint',
  summary: "a GPT saved by skd (config.json + model.safetensors); its tokenizer must be the run's",
  options: z.strictObject({
    path: z.string().min(1).describe('checkpoint folder, relative to the config file'),
    lora: loraOption,
    dtype: dtypeOption,
  }),
  create: (options, deps) => {
    checkDtype(options.dtype, deps.role, options.lora);
    const loaded = loadCheckpoint(path.resolve(deps.baseDir, options.path));
    loaded.optimizerState?.forEach((t) => t.dispose());
    try {
      checkTokenizer(deps.role, options.path, loaded.tokenizer, deps.tokenizer);
    } catch (error) {
      loaded.model.dispose();
      throw error;
    }
    // A student trains float32 weights unless they sit under adapters; a teacher keeps how the checkpoint holds them.
    const dtype = options.dtype ?? (deps.role === 'student' && !options.lora ? 'float32' : undefined);
    return options.lora ? withLora(loaded.model, options.lora, deps, { ...(dtype ? { dtype } : {}) }) : withDtype(loaded.model, dtype);
  },
  parameterCount: (options, deps) => {
    try {
      const saved = JSON.parse(fs.readFileSync(path.join(path.resolve(deps.baseDir, options.path), 'config.json'), 'utf8')) as {
        model?: { kind?: string; config?: unknown };
      };
      const config = saved.model?.config;
      const shapes =
        saved.model?.kind === 'decoder' ? decoderParameterShapes(decoderConfigSchema.parse(config)) : gptParameterShapes(gptConfigSchema.parse(config));
      return [...shapes.values()].reduce((n, shape) => n + shape.reduce((a, b) => a * b, 1), 0);
    } catch {
      return undefined;
    }
  },
});

export const huggingFaceTokenizerEntry = defineComponent({
  component: 'tokenizer',
  kind: HfTokenizer.kind,
  summary: 'a Hugging Face tokenizer folder (tokenizer.json with tokenizer_config.json and generation_config.json): Llama, Qwen, Gemma, GPT-2, ...',
  options: z.strictObject({ path: z.string().min(1).describe('folder holding tokenizer.json (usually the model folder), relative to the config file') }),
  create: (options, deps) => HfTokenizer.fromFolder(folderOf(path.resolve(deps.baseDir, options.path))),
});

/** A path to a folder, or to a file inside one (tokenizer.json, config.json). */
function folderOf(target: string): string {
  return fs.existsSync(target) && fs.statSync(target).isFile() ? path.dirname(target) : target;
}

/**
 * A Hugging Face model folder as a teacher or student. Its own tokenizer (when the folder has one)
 * must read ids as the run's tokenizer does; an embedding padded past the tokenizer (Qwen's) is
 * distilled over the tokenizer's ids only, and said so.
 */
function createHuggingFaceModel(
  options: { path: string; lora?: LoraConfig | undefined; dtype?: ModelDtype },
  deps: Parameters<(typeof checkpointModelEntry)['create']>[1],
) {
  checkDtype(options.dtype, deps.role, options.lora);
  const dir = folderOf(path.resolve(deps.baseDir, options.path));
  const described = readHuggingFaceConfig(dir);
  if (fs.existsSync(path.join(dir, 'tokenizer.json'))) {
    const own = HfTokenizer.fromFolder(dir);
    const difference = tokenizerDifference(own, deps.tokenizer);
    if (difference) {
      throw new VocabularyMismatchError(`the ${deps.role} ${options.path} has its own tokenizer, which differs from the run's: ${difference}`, {
        hint: `set "tokenizer": { "kind": "hf", "options": { "path": "${options.path}" } }, and give teacher and student models that share a tokenizer${crossHint(deps.role, 'hf', options.path)}`,
      });
    }
  }
  const rows = described.config.vocabSize;
  const tokens = deps.tokenizer.vocabSize;
  if (rows < tokens)
    throw new VocabularyMismatchError(`the ${deps.role} ${options.path} has ${rows} embedding rows, fewer than the tokenizer's ${tokens} tokens`);
  if (rows > tokens && described.kind === 'gpt')
    throw new VocabularyMismatchError(`the ${deps.role} ${options.path} (GPT-2) has ${rows} embedding rows, the tokenizer ${tokens} tokens`);
  if (rows > tokens)
    deps.note?.(
      `${options.path}: the embedding has ${rows} rows for ${tokens} tokens; logits, sampling and the divergence use ids 0..${tokens - 1} only (the ${rows - tokens} rows past them have no token)`,
    );
  const dtype = options.dtype ?? (deps.role === 'teacher' ? 'stored' : 'float32');
  return withLora(loadHuggingFaceModel(dir, { dtype, ...(rows > tokens ? { outputVocab: tokens } : {}) }), options.lora, deps, { base: dir });
}

const huggingFaceModelOptions = z.strictObject({
  path: z.string().min(1).describe('model folder (config.json and safetensors), relative to the config file'),
  lora: loraOption,
  dtype: dtypeOption,
});

/** Parameters of a Hugging Face folder from its config.json; undefined when it cannot be read (create reports why). */
function huggingFaceParameters(options: { path: string }, deps: { readonly baseDir: string }): number | undefined {
  try {
    const described = readHuggingFaceConfig(folderOf(path.resolve(deps.baseDir, options.path)));
    const shapes = described.kind === 'decoder' ? decoderParameterShapes(described.config) : gptParameterShapes(described.config);
    return [...shapes.values()].reduce((n, shape) => n + shape.reduce((a, b) => a * b, 1), 0);
  } catch {
    return undefined;
  }
}

export const huggingFaceModelEntry = defineComponent({
  component: 'model',
  kind: 'hf',
  summary:
    'a Hugging Face model folder: Llama, Qwen2, Qwen3, Mistral, Phi-3, OLMo 2, Gemma, Gemma 2, Gemma 3 or GPT-2 (config.json + safetensors, sharded or not, F32/F16/BF16)',
  options: huggingFaceModelOptions,
  create: createHuggingFaceModel,
  parameterCount: huggingFaceParameters,
});

export const huggingFaceGpt2Entry = defineComponent({
  component: 'model',
  kind: 'hf-gpt2',
  summary: 'the same as "hf" (kept for configs written before it read other architectures)',
  options: huggingFaceModelOptions,
  create: createHuggingFaceModel,
  parameterCount: huggingFaceParameters,
});

export const tokenizerEntries: readonly AnyComponentEntry<'tokenizer'>[] = [
  byteTokenizerEntry,
  bpeTokenizerEntry,
  huggingFaceTokenizerEntry,
  checkpointTokenizerEntry,
];
export const modelEntries: readonly AnyComponentEntry<'model'>[] = [
  bigramModelEntry,
  gptModelEntry,
  decoderModelEntry,
  checkpointModelEntry,
  huggingFaceModelEntry,
  huggingFaceGpt2Entry,
];
