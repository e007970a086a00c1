import { z } from 'zod';
import { ConfigError, optionsFactory } from '@skd/core';

/** Architecture of a GPT-style decoder. Defaults give a small model that trains on a CPU. */
export const gptConfigSchema = z.strictObject({
  vocabSize: z.number().int().min(2).describe('number of token ids (from the tokenizer when built from a config)'),
  contextLength: z.number().int().min(2).default(256).describe('longest sequence, prompt plus generated tokens'),
  layers: z.number().int().min(1).default(2).describe('transformer blocks'),
  heads: z.number().int().min(1).default(4).describe('attention heads per block'),
  dModel: z.number().int().min(2).default(128).describe('residual stream width'),
  dFf: z.number().int().min(1).optional().describe('MLP hidden width (default 4 * dModel)'),
  positions: z.enum(['learned', 'rotary']).default('learned').describe('learned position embeddings or rotary (RoPE) on q and k'),
  tiedHead: z.boolean().default(true).describe('output head shares the token embedding matrix'),
  dropout: z.number().min(0).lt(1).default(0).describe('dropout rate on attention weights and residual branches when training'),
  layerNormEpsilon: z.number().positive().default(1e-5).describe('LayerNorm epsilon'),
});

export type GptConfig = z.infer<typeof gptConfigSchema>;

const parseGptConfig = optionsFactory(gptConfigSchema, 'gptConfig');

/**
 * A complete GPT config from the fields that differ from the defaults, checked like a config file
 * (`gptConfig({ vocabSize: 259, layers: 4 })`): a ConfigError names every bad or unknown field and
 * every cross-field problem.
 */
export function gptConfig(options: z.input<typeof gptConfigSchema>): GptConfig {
  const config = parseGptConfig(options);
  const problems = checkGptConfig(config);
  if (problems.length)
    throw new ConfigError(
      'gptConfig()',
      problems.map((message) => ({ path: '', message })),
    );
  return config;
}

/** Checks the cross-field constraints the schema cannot express; messages quote the values. */
export function checkGptConfig(config: GptConfig): string[] {
  const problems: string[] = [];
  if (config.dModel % config.heads !== 0) {
    problems.push(`dModel must be divisible by heads, got dModel ${config.dModel} and heads ${config.heads}`);
  }
  const headDim = config.dModel / config.heads;
  if (config.positions === 'rotary' && headDim % 2 !== 0) {
    problems.push(`rotary positions need an even head dimension, got dModel / heads = ${headDim}`);
  }
  return problems;
}

/** The parameter names and shapes of a config, in GPT-2 (Hugging Face) naming, Conv1D layout (in, out). */
export function gptParameterShapes(config: GptConfig): Map<string, number[]> {
  const d = config.dModel;
  const ff = config.dFf ?? 4 * d;
  const shapes = new Map<string, number[]>();
  shapes.set('wte.weight', [config.vocabSize, d]);
  if (config.positions === 'learned') shapes.set('wpe.weight', [config.contextLength, d]);
  for (let i = 0; i < config.layers; i++) {
    const p = `h.${i}`;
    shapes.set(`${p}.ln_1.weight`, [d]);
    shapes.set(`${p}.ln_1.bias`, [d]);
    shapes.set(`${p}.attn.c_attn.weight`, [d, 3 * d]);
    shapes.set(`${p}.attn.c_attn.bias`, [3 * d]);
    shapes.set(`${p}.attn.c_proj.weight`, [d, d]);
    shapes.set(`${p}.attn.c_proj.bias`, [d]);
    shapes.set(`${p}.ln_2.weight`, [d]);
    shapes.set(`${p}.ln_2.bias`, [d]);
    shapes.set(`${p}.mlp.c_fc.weight`, [d, ff]);
    shapes.set(`${p}.mlp.c_fc.bias`, [ff]);
    shapes.set(`${p}.mlp.c_proj.weight`, [ff, d]);
    shapes.set(`${p}.mlp.c_proj.bias`, [d]);
  }
  shapes.set('ln_f.weight', [d]);
  shapes.set('ln_f.bias', [d]);
  if (!config.tiedHead) shapes.set('lm_head.weight', [config.vocabSize, d]); // nn.Linear layout, like wte
  return shapes;
}
