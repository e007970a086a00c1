import { z } from 'zod';

/** Sampling settings in configs (student drafting, teacher replacement, on-policy generation). */
export const samplingSchema = z.strictObject({
  greedy: z.boolean().default(false).describe('argmax decoding (ignores the other settings)'),
  temperature: z.number().positive().default(1).describe('divides the logits'),
  topK: z.number().int().min(0).default(0).describe('keep the k most likely tokens (0: off)'),
  topP: z.number().gt(0).max(1).default(1).describe('nucleus: keep the smallest set reaching this mass (1: off)'),
});

export const maxNewTokensSchema = z.number().int().min(1).default(64).describe('longest generated response');

/** Options every generating sampler shares. */
export const generationOptions = {
  maxNewTokens: maxNewTokensSchema,
};
