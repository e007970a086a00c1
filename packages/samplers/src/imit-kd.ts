import type { KdBatch, KdSampler, PromptBatch, SamplerContext } from '@skd/core';
import type { SamplingOptions } from '@skd/models';
import { batchOf, promptsOf, respond, rowsOf, type SamplerModels } from './generating';

/**
 * ImitKD: each row is the student's own sample with probability share(step), else the ground
 * truth. The share grows linearly from `initialStudentShare` to `finalStudentShare` over the first
 * `rampFraction` of training, so the student trains on its own outputs more as it improves.
 */
export class ImitKdSampler implements KdSampler {
  static readonly kind = 'imit-kd';

  constructor(
    private readonly models: SamplerModels,
    private readonly options: {
      readonly initialStudentShare: number;
      readonly finalStudentShare: number;
      readonly rampFraction: number;
      readonly maxNewTokens: number;
      readonly sampling: SamplingOptions;
    },
  ) {}

  /** The probability that a row uses the student's sample at `step` of `totalSteps`. */
  studentShare(step: number, totalSteps: number): number {
    const { initialStudentShare: a, finalStudentShare: b, rampFraction } = this.options;
    const progress = Math.min(1, step / Math.max(1, totalSteps * rampFraction));
    return a + (b - a) * progress;
  }

  async sample(batch: PromptBatch, context: SamplerContext): Promise<KdBatch> {
    const share = this.studentShare(context.step, context.totalSteps);
    const useStudent = batch.prompts.map(() => this.models.rng.bernoulli(share));
    const chosen = useStudent.flatMap((u, i) => (u ? [i] : []));
    const generated = chosen.length
      ? await respond(this.models.student, promptsOf(batch, chosen), this.models, this.options.maxNewTokens, this.options.sampling)
      : [];
    const responses = batch.references.map((r) => [...r]);
    chosen.forEach((i, k) => (responses[i] = generated[k] as number[]));
    return batchOf(
      this.models,
      rowsOf(batch, responses),
      useStudent.map((u) => (u ? 'student' : 'reference')),
      {
        tokensGenerated: generated.reduce((n, r) => n + r.length, 0),
        studentRows: chosen.length,
        studentShare: share,
      },
    );
  }
}
