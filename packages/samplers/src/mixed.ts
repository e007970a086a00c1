import type { KdBatch, KdSampler, PromptBatch } from '@skd/core';
import type { SamplingOptions } from '@skd/models';
import { batchOf, requireTeacher, respond, rowsOf, teacherResponses, type SamplerModels } from './generating';

/**
 * Mixed / GKD: per batch, with probability `lambda` the student's own samples, otherwise the
 * ground truth (or the teacher's outputs with `offPolicy: "teacher"`). lambda 0 is supervised KD,
 * lambda 1 on-policy KD.
 */
export class MixedSampler implements KdSampler {
  static readonly kind = 'mixed';

  constructor(
    private readonly models: SamplerModels,
    private readonly options: {
      readonly lambda: number;
      readonly offPolicy: 'reference' | 'teacher';
      readonly maxNewTokens: number;
      readonly studentSampling: SamplingOptions;
      readonly teacherSampling: SamplingOptions;
    },
  ) {
    if (options.offPolicy === 'teacher') requireTeacher(models, MixedSampler.kind);
  }

  async sample(batch: PromptBatch): Promise<KdBatch> {
    const onPolicy = this.models.rng.bernoulli(this.options.lambda);
    let responses: readonly (readonly number[])[];
    let source: string;
    if (onPolicy) {
      responses = await respond(this.models.student, batch, this.models, this.options.maxNewTokens, this.options.studentSampling);
      source = 'student';
    } else if (this.options.offPolicy === 'teacher') {
      responses = await teacherResponses(this.models, MixedSampler.kind, batch, this.options.maxNewTokens, this.options.teacherSampling);
      source = 'teacher';
    } else {
      responses = batch.references;
      source = 'reference';
    }
    const generated = source === 'reference' ? 0 : responses.reduce((n, r) => n + r.length, 0);
    return batchOf(
      this.models,
      rowsOf(batch, responses),
      responses.map(() => source),
      { tokensGenerated: generated, studentRows: onPolicy ? responses.length : 0 },
    );
  }
}
