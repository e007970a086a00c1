import type { JsonValue, KdBatch, KdSampler, PromptBatch, SamplerContext, SamplerFeedback } from '@skd/core';
import type { SamplingOptions } from '@skd/models';
import { batchOf, respond, rowsOf, type SamplerModels } from './generating';

/**
 * DistiLLM's adaptive off-policy sampling: with probability threshold * (1 - step / total) the batch
 * comes from student samples (freshly generated ones enter a FIFO replay buffer, and the batch is
 * drawn from the buffer), otherwise from the ground truth. The threshold rises by `thresholdStep`
 * whenever the validation loss rises by at least `lossRise`.
 */
export class DistillmSampler implements KdSampler {
  static readonly kind = 'distillm';
  private threshold: number;
  private lastValidationLoss: number | undefined;
  private buffer: { prompt: number[]; response: number[] }[] = [];

  constructor(
    private readonly models: SamplerModels,
    private readonly options: {
      readonly initialThreshold: number;
      readonly thresholdStep: number;
      readonly lossRise: number;
      readonly bufferSize: number;
      readonly maxNewTokens: number;
      readonly sampling: SamplingOptions;
    },
  ) {
    this.threshold = options.initialThreshold;
  }

  studentProbability(step: number, totalSteps: number): number {
    return Math.min(1, Math.max(0, this.threshold * (1 - step / Math.max(1, totalSteps))));
  }

  get currentThreshold(): number {
    return this.threshold;
  }

  get bufferLength(): number {
    return this.buffer.length;
  }

  async sample(batch: PromptBatch, context: SamplerContext): Promise<KdBatch> {
    const p = this.studentProbability(context.step, context.totalSteps);
    if (!this.models.rng.bernoulli(p)) {
      return batchOf(
        this.models,
        rowsOf(batch, batch.references),
        batch.prompts.map(() => 'reference'),
        {
          tokensGenerated: 0,
          studentProbability: p,
          threshold: this.threshold,
          replayBuffer: this.buffer.length,
        },
      );
    }
    const responses = await respond(this.models.student, batch, this.models, this.options.maxNewTokens, this.options.sampling);
    responses.forEach((response, i) => this.buffer.push({ prompt: [...(batch.prompts[i] as number[])], response }));
    if (this.buffer.length > this.options.bufferSize) this.buffer.splice(0, this.buffer.length - this.options.bufferSize);
    const rows = batch.prompts.map(() => this.buffer[this.models.rng.int(this.buffer.length)] as { prompt: number[]; response: number[] });
    return batchOf(
      this.models,
      rows,
      rows.map(() => 'student-replay'),
      {
        tokensGenerated: responses.reduce((n, r) => n + r.length, 0),
        studentProbability: p,
        threshold: this.threshold,
        replayBuffer: this.buffer.length,
      },
    );
  }

  observe(feedback: SamplerFeedback): void {
    const loss = feedback.validationLoss;
    if (loss === undefined) return;
    if (this.lastValidationLoss !== undefined && loss - this.lastValidationLoss >= this.options.lossRise) {
      this.threshold = Math.min(1, this.threshold + this.options.thresholdStep);
    }
    this.lastValidationLoss = loss;
  }

  getState(): JsonValue {
    return { threshold: this.threshold, lastValidationLoss: this.lastValidationLoss ?? null, buffer: this.buffer };
  }

  setState(state: JsonValue): void {
    const s = state as { threshold: number; lastValidationLoss: number | null; buffer: { prompt: number[]; response: number[] }[] };
    this.threshold = s.threshold;
    this.lastValidationLoss = s.lastValidationLoss ?? undefined;
    this.buffer = s.buffer.map((x) => ({ prompt: [...x.prompt], response: [...x.response] }));
  }
}
