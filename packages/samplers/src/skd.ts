import { ConfigError, type KdBatch, type KdSampler, type PromptBatch, type SamplerContext } from '@skd/core';
import type { SamplingOptions } from '@skd/models';
import { toKdBatch } from './batch';
import { requireTeacher, rowsOf, type SamplerModels } from './generating';
import { speculativeGenerate, type Acceptance } from './speculative';

export interface SkdSamplerOptions {
  readonly topK: number;
  readonly acceptance: 'top-k' | 'top-p';
  readonly topP: number;
  readonly acceptOn: 'raw' | 'warped';
  readonly replace: 'resample' | 'argmax';
  readonly draftBlock: number;
  /** Adaptive blocks up to this many drafts (see SpeculativeOptions.maxDraftBlock); unset: fixed. */
  readonly maxDraftBlock?: number;
  readonly kDecay: boolean;
  /** Probability that a batch is an SKD sample; otherwise the ground truth (mixed-SKD). */
  readonly ratio: number;
  readonly maxNewTokens: number;
  readonly studentSampling: SamplingOptions;
  readonly teacherSampling: SamplingOptions;
  readonly cacheTeacherLogProbs: boolean;
  /** Above this many floats (B * T * V) the teacher's log-probs are not kept; the trainer recomputes them. */
  readonly maxCachedTeacherFloats: number;
}

/**
 * Speculative KD (Xu et al., 2024): the student drafts, the teacher keeps drafts inside its top-K
 * and replaces the first one outside with its own token. Early in training most tokens are replaced
 * (close to SeqKD); as the student improves more are accepted (close to on-policy KD); K = |V| is
 * exactly on-policy KD.
 */
export class SkdSampler implements KdSampler {
  static readonly kind = 'skd';

  constructor(
    private readonly models: SamplerModels,
    private readonly options: SkdSamplerOptions,
  ) {
    requireTeacher(models, SkdSampler.kind);
    const vocab = models.student.vocabSize;
    // K >= |V| accepts every draft: on-policy KD under SKD's name. (With kDecay, K shrinks below |V| as training goes.)
    if (options.acceptance === 'top-k' && !options.kDecay && options.topK >= vocab) {
      throw new ConfigError('sampler', [
        { path: 'sampler.options.topK', message: `topK ${options.topK} is not below the vocabulary size ${vocab}: the teacher accepts every draft, which is on-policy KD (use the "on-policy" sampler for that, or a topK below ${vocab})` },
      ]);
    }
  }

  /**
   * K at a training step. With kDecay, K shrinks linearly over training: by ceil(K/L) every
   * max(floor(L/K), 1) steps (L = total steps), never below 1.
   */
  topKAt(step: number, totalSteps: number): number {
    const k0 = this.options.topK;
    if (!this.options.kDecay) return k0;
    const L = Math.max(1, totalSteps);
    const every = Math.max(Math.floor(L / k0), 1);
    const decrement = Math.ceil(k0 / L);
    return Math.max(1, k0 - Math.floor(step / every) * decrement);
  }

  async sample(batch: PromptBatch, context: SamplerContext): Promise<KdBatch> {
    const { student, tokenizer, rng } = this.models;
    const teacher = requireTeacher(this.models, SkdSampler.kind);
    if (this.options.ratio < 1 && !rng.bernoulli(this.options.ratio)) {
      return toKdBatch({
        rows: rowsOf(batch, batch.references),
        sources: batch.prompts.map(() => 'reference'),
        stats: { skdRows: 0, tokensGenerated: 0 },
        pad: tokenizer.special.pad,
        contextLength: student.contextLength,
      });
    }
    const k = this.topKAt(context.step, context.totalSteps);
    const acceptance: Acceptance = this.options.acceptance === 'top-k' ? { kind: 'top-k', k } : { kind: 'top-p', p: this.options.topP };
    const longest = Math.max(...batch.prompts.map((p) => p.length)) + this.options.maxNewTokens;
    const keep = this.options.cacheTeacherLogProbs && batch.prompts.length * longest * teacher.vocabSize <= this.options.maxCachedTeacherFloats;
    const result = await speculativeGenerate(student, teacher, batch.prompts, {
      maxNewTokens: this.options.maxNewTokens,
      eos: tokenizer.special.eos,
      ...(tokenizer.special.stop ? { stop: tokenizer.special.stop } : {}),
      pad: tokenizer.special.pad,
      draftBlock: this.options.draftBlock,
      ...(this.options.maxDraftBlock !== undefined ? { maxDraftBlock: this.options.maxDraftBlock } : {}),
      acceptance,
      acceptOn: this.options.acceptOn,
      replace: this.options.replace,
      studentSampling: this.options.studentSampling,
      teacherSampling: this.options.teacherSampling,
      keepTeacherLogProbs: keep,
      rng,
    });
    const s = result.stats;
    const B = batch.prompts.length;
    return toKdBatch({
      rows: rowsOf(batch, result.tokens),
      sources: batch.prompts.map(() => 'skd'),
      stats: {
        skdRows: B,
        topK: k,
        acceptanceRate: s.judged ? s.accepted / s.judged : 0,
        correctionsPerSequence: s.corrections / B,
        meanAcceptedRun: s.rowRounds ? s.accepted / s.rowRounds : 0,
        teacherPassesPerToken: s.tokensGenerated ? s.teacherForwards / (s.tokensGenerated / B) : 0,
        tokensGenerated: s.tokensGenerated,
        teacherCached: keep ? 1 : 0,
        meanDraftBlock: s.meanDraftBlock,
      },
      pad: tokenizer.special.pad,
      contextLength: student.contextLength,
      ...(result.teacherLogProbs ? { teacherLogProbs: result.teacherLogProbs, vocabSize: teacher.vocabSize } : {}),
    });
  }
}
