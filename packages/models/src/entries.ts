import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { FormatError, VocabularyMismatchError, defineComponent, type AnyComponentEntry, type Tokenizer } from '@skd/core';
import { BpeTokenizer, type BpeTokenizerConfig } from './bpe-tokenizer';
import { loadCheckpoint, loadHuggingFaceGpt2, readBpeTokenizer, tokenizerFromJSON } from './io';
import { BigramModel } from './bigram-model';
import { ByteTokenizer } from './byte-tokenizer';
import { GptModel, checkGptConfig, gptConfigSchema } from './gpt';

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
  create: (options, deps) =>
    new BigramModel({ vocabSize: deps.tokenizer.vocabSize, seed: deps.rng.tfSeed(), ...options }),
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

export const bpeTokenizerEntry = defineComponent({
  component: 'tokenizer',
  kind: BpeTokenizer.kind,
  summary: 'byte-level BPE from a Hugging Face tokenizer.json (GPT-2 style)',
  options: z.strictObject({
    path: z.string().min(1).describe('tokenizer.json, relative to the config file'),
    eos: z.string().optional().describe('EOS token string (default: tokenizer_config.json\'s eos_token, else <|endoftext|> or the first added token)'),
    pad: z.string().optional().describe('padding token string (default: tokenizer_config.json\'s pad_token, else the EOS token)'),
    bos: z.string().optional().describe('BOS token string (default: tokenizer_config.json\'s bos_token, else none)'),
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

/** A model saved with another tokenizer would read every token id as a different string. */
function checkTokenizer(role: string, source: string, saved: Tokenizer, run: Tokenizer): void {
  if (saved.fingerprint !== run.fingerprint) {
    throw new VocabularyMismatchError(
      `the ${role} checkpoint ${source} was trained with tokenizer ${saved.fingerprint} (vocabulary ${saved.vocabSize}), the run uses ${run.fingerprint} (vocabulary ${run.vocabSize})`,
      { hint: `set "tokenizer": { "kind": "checkpoint", "options": { "path": "${source}" } } and give teacher and student the same tokenizer` },
    );
  }
}

export const checkpointModelEntry = defineComponent({
  component: 'model',
  kind: 'checkpoint',
  summary: 'a GPT saved by skd (config.json + model.safetensors); its tokenizer must be the run\'s',
  options: z.strictObject({ path: z.string().min(1).describe('checkpoint folder, relative to the config file') }),
  create: (options, deps) => {
    const loaded = loadCheckpoint(path.resolve(deps.baseDir, options.path));
    loaded.optimizerState?.forEach((t) => t.dispose());
    try {
      checkTokenizer(deps.role, options.path, loaded.tokenizer, deps.tokenizer);
    } catch (error) {
      loaded.model.dispose();
      throw error;
    }
    return loaded.model;
  },
});

export const huggingFaceGpt2Entry = defineComponent({
  component: 'model',
  kind: 'hf-gpt2',
  summary: 'a Hugging Face GPT-2 folder (config.json + model.safetensors), e.g. a pretrained teacher',
  options: z.strictObject({ path: z.string().min(1).describe('model folder, relative to the config file') }),
  create: (options, deps) => {
    const model = loadHuggingFaceGpt2(path.resolve(deps.baseDir, options.path));
    if (model.vocabSize !== deps.tokenizer.vocabSize) {
      model.dispose();
      throw new VocabularyMismatchError(`the ${deps.role} ${options.path} has vocabulary ${model.vocabSize}, the run's tokenizer ${deps.tokenizer.vocabSize}`, {
        hint: 'use the model\'s own tokenizer.json ("tokenizer": { "kind": "bpe", "options": { "path": ... } })',
      });
    }
    return model;
  },
});

export const tokenizerEntries: readonly AnyComponentEntry<'tokenizer'>[] = [byteTokenizerEntry, bpeTokenizerEntry, checkpointTokenizerEntry];
export const modelEntries: readonly AnyComponentEntry<'model'>[] = [bigramModelEntry, gptModelEntry, checkpointModelEntry, huggingFaceGpt2Entry];
