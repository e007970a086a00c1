import { z } from 'zod';
import { defineComponent, type AnyComponentEntry } from '@skd/core';
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

export const tokenizerEntries: readonly AnyComponentEntry<'tokenizer'>[] = [byteTokenizerEntry];
export const modelEntries: readonly AnyComponentEntry<'model'>[] = [bigramModelEntry, gptModelEntry];
