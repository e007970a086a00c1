import type { JsonValue, KdBatch, KdSampler, PromptBatch, SamplerContext, SamplerFeedback } from '@skd/core';
import type { SamplingOptions } from '@skd/models';
import { batchOf, promptsOf, requireTeacher, respond, rowsOf, type SamplerModels } from './generating';

/**
 * SeqKD: trains on teacher-generated responses. With `cache`, each example's response is generated
 * once and reused across epochs (the classic recipe: distil the teacher's outputs into a dataset).
 */
export class SeqKdSampler implements KdSampler {
  static readonly kind = 'seq-kd';
  private readonly cache = new Map<string, number[]>();

  constructor(
    private readonly models: SamplerModels,
    private readonly options: { readonly maxNewTokens: number; readonly sampling: SamplingOptions; readonly cache: boolean },
  ) {
    requireTeacher(models, SeqKdSampler.kind);
  }

  async sample(batch: PromptBatch): Promise<KdBatch> {
    const teacher = requireTeacher(this.models, SeqKdSampler.kind);
    const missing = batch.ids.map((id, i) => (this.options.cache && this.cache.has(id) ? -1 : i)).filter((i) => i >= 0);
    const fresh = missing.length
      ? await respond(teacher, promptsOf(batch, missing), this.models, this.options.maxNewTokens, this.options.sampling)
      : [];
    const responses: number[][] = batch.ids.map((id) => this.cache.get(id) ?? []);
    missing.forEach((i, k) => {
      responses[i] = fresh[k] as number[];
      if (this.options.cache) this.cache.set(batch.ids[i] as string, fresh[k] as number[]);
    });
    const generated = fresh.reduce((n, r) => n + r.length, 0);
    return batchOf(this.models, rowsOf(batch, responses), responses.map(() => 'teacher'), {
      tokensGenerated: generated,
      cacheHits: batch.ids.length - missing.length,
    });
  }

  getState(): JsonValue {
    return { cache: [...this.cache] };
  }

  setState(state: JsonValue): void {
    this.cache.clear();
    for (const [id, tokens] of (state as { cache: [string, number[]][] }).cache) this.cache.set(id, tokens);
  }
}

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
      responses = await respond(requireTeacher(this.models, MixedSampler.kind), batch, this.models, this.options.maxNewTokens, this.options.teacherSampling);
      source = 'teacher';
    } else {
      responses = batch.references;
      source = 'reference';
    }
    const generated = source === 'reference' ? 0 : responses.reduce((n, r) => n + r.length, 0);
    return batchOf(this.models, rowsOf(batch, responses), responses.map(() => source), { tokensGenerated: generated, studentRows: onPolicy ? responses.length : 0 });
  }
}

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
    return batchOf(this.models, rowsOf(batch, responses), useStudent.map((u) => (u ? 'student' : 'reference')), {
      tokensGenerated: generated.reduce((n, r) => n + r.length, 0),
      studentRows: chosen.length,
      studentShare: share,
    });
  }
}

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
      return batchOf(this.models, rowsOf(batch, batch.references), batch.prompts.map(() => 'reference'), {
        tokensGenerated: 0,
        studentProbability: p,
        threshold: this.threshold,
        replayBuffer: this.buffer.length,
      });
    }
    const responses = await respond(this.models.student, batch, this.models, this.options.maxNewTokens, this.options.sampling);
    responses.forEach((response, i) => this.buffer.push({ prompt: [...(batch.prompts[i] as number[])], response }));
    if (this.buffer.length > this.options.bufferSize) this.buffer.splice(0, this.buffer.length - this.options.bufferSize);
    const rows = batch.prompts.map(() => this.buffer[this.models.rng.int(this.buffer.length)] as { prompt: number[]; response: number[] });
    return batchOf(this.models, rows, rows.map(() => 'student-replay'), {
      tokensGenerated: responses.reduce((n, r) => n + r.length, 0),
      studentProbability: p,
      threshold: this.threshold,
      replayBuffer: this.buffer.length,
    });
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
