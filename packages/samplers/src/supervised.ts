import { z } from 'zod';
import { defineComponent, type KdBatch, type KdSampler, type PromptBatch } from '@skd/core';
import { assembleBatch } from './assemble';

export interface SupervisedSamplerArgs {
  readonly pad: number;
  readonly contextLength: number;
}

/**
 * Trains on the ground-truth responses: with cross-entropy this is supervised fine-tuning, with a
 * divergence it is supervised KD. Never generates.
 */
export class SupervisedSampler implements KdSampler {
  static readonly kind = 'supervised';

  constructor(private readonly args: SupervisedSamplerArgs) {}

  async sample(batch: PromptBatch): Promise<KdBatch> {
    const rows = batch.prompts.map((prompt, i) => ({ prompt, response: batch.references[i] ?? [] }));
    const assembled = assembleBatch(rows, this.args.pad, this.args.contextLength);
    return {
      tokens: assembled.tokens,
      attentionMask: assembled.attentionMask,
      targetMask: assembled.targetMask,
      sources: rows.map(() => 'reference'),
      stats: { targetTokens: assembled.targetCount, tokensGenerated: 0 },
      dispose: () => {
        assembled.tokens.dispose();
        assembled.attentionMask.dispose();
        assembled.targetMask.dispose();
      },
    };
  }
}

export const supervisedSamplerEntry = defineComponent({
  component: 'sampler',
  kind: SupervisedSampler.kind,
  summary: 'ground-truth responses (supervised FT with cross-entropy, supervised KD with a divergence)',
  options: z.strictObject({}),
  create: (_options, deps) => new SupervisedSampler({ pad: deps.tokenizer.special.pad, contextLength: deps.student.contextLength }),
});
