import type { KdBatch, KdSampler, PromptBatch, SamplerContext } from '@skd/core';
import type { SamplingOptions } from '@skd/models';
import { batchOf, respond, rowsOf, type SamplerModels } from './generating';

/** Trains on what the student generates (on-policy KD). */
export class OnPolicySampler implements KdSampler {
  static readonly kind = 'on-policy';

  constructor(
    private readonly models: SamplerModels,
    private readonly options: { readonly maxNewTokens: number; readonly sampling: SamplingOptions },
  ) {}

  async sample(batch: PromptBatch, _context?: SamplerContext): Promise<KdBatch> {
    const responses = await respond(this.models.student, batch, this.models, this.options.maxNewTokens, this.options.sampling);
    const generated = responses.reduce((n, r) => n + r.length, 0);
    return batchOf(
      this.models,
      rowsOf(batch, responses),
      responses.map(() => 'student'),
      { tokensGenerated: generated, studentRows: responses.length },
    );
  }
}
