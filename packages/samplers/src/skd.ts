import { ConfigError, cutAtStopStrings, generationStops, type KdBatch, type KdSampler, type PromptBatch, type SamplerContext } from '@skd/core';
import type { SamplingOptions, TokenizerBridge } from '@skd/models';
import { toKdBatch } from './batch';
import { crossTokenizerSpeculative } from './cross-speculative';
import { bridgeOf, requireTeacher, rowsOf, type SamplerModels } from './generating';
import { speculativeGenerate, type Acceptance } from './speculative';

export interface SkdSamplerOptions {
  readonly topK: number;
  readonly acceptance: 'top-k' | 'top-p';
  readonly topP: number;
  readonly acceptOn: 'raw' | 'warped';
  readonly replace: 'resample' | 'argmax';
  /** Test the draft (paper) or a fresh student sample at its position (the authors' code); see SpeculativeOptions.acceptTest. */
  readonly acceptTest: 'draft' | 'resample';
  readonly draftBlock: number;
  /** Adaptive blocks up to this many drafts (see SpeculativeOptions.maxDraftBlock); unset: fixed. */
  readonly maxDraftBlock?: number;
  readonly kDecay: boolean;
  /** What K decays over: training steps, or verification rounds within each generation (the authors' code). */
  readonly kDecayUnit: 'steps' | 'rounds';
  /** Units over which K decays to 1; unset: the run's steps, or maxNewTokens rounds. */
  readonly kDecayHorizon?: number;
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
    /** The kind the config named ("skd" or "mixed-skd"), for error messages. */
    private readonly kind: string = SkdSampler.kind,
  ) {
    requireTeacher(models, kind);
    if (models.teacherTokenizer) checkCrossTokenizer(options, kind);
    const vocab = models.student.vocabSize;
    // K >= |V| accepts every draft: on-policy KD under SKD's name. (With kDecay, K shrinks below |V| as training goes.)
    if (options.acceptance === 'top-k' && !options.kDecay && options.topK >= vocab) {
      throw new ConfigError('sampler', [
        {
          path: 'sampler.options.topK',
          message: `topK ${options.topK} is not below the vocabulary size ${vocab}: the teacher accepts every draft, which is on-policy KD (use the "on-policy" sampler for that, or a topK below ${vocab})`,
        },
      ]);
    }
  }

  /**
   * K at a training step: the configured K, or with kDecay over steps, decayed by `decayedTopK`
   * (with kDecay over rounds, K starts over at the configured value in every generation).
   */
  topKAt(step: number, totalSteps: number): number {
    const o = this.options;
    if (!o.kDecay || o.kDecayUnit === 'rounds') return o.topK;
    return decayedTopK(o.topK, step, o.kDecayHorizon ?? totalSteps, 'steps');
  }

  async sample(batch: PromptBatch, context: SamplerContext): Promise<KdBatch> {
    const { student, tokenizer, rng } = this.models;
    const teacher = requireTeacher(this.models, this.kind);
    if (this.options.ratio < 1 && !rng.bernoulli(this.options.ratio)) {
      return toKdBatch({
        rows: rowsOf(batch, batch.references),
        sources: batch.prompts.map(() => 'reference'),
        stats: { skdRows: 0, tokensGenerated: 0 },
        pad: tokenizer.special.pad,
        contextLength: student.contextLength,
      });
    }
    const o = this.options;
    const k = this.topKAt(context.step, context.totalSteps);
    const acceptance: Acceptance = o.acceptance === 'top-k' ? { kind: 'top-k', k } : { kind: 'top-p', p: o.topP };
    const perRound = o.acceptance === 'top-k' && o.kDecay && o.kDecayUnit === 'rounds';
    const horizon = o.kDecayHorizon ?? o.maxNewTokens;
    const acceptanceAt = (round: number): Acceptance => (perRound ? { kind: 'top-k', k: decayedTopK(k, round, horizon, 'rounds') } : acceptance);
    const bridge = bridgeOf(this.models);
    if (bridge) return this.sampleAcross(batch, bridge, acceptanceAt, k);
    const longest = Math.max(...batch.prompts.map((p) => p.length)) + this.options.maxNewTokens;
    const keep = this.options.cacheTeacherLogProbs && batch.prompts.length * longest * teacher.vocabSize <= this.options.maxCachedTeacherFloats;
    const stop = generationStops(tokenizer, batch.stopStrings); // rows end at a stop string's token: the cut drops the rest
    const result = await speculativeGenerate(student, teacher, batch.prompts, {
      maxNewTokens: this.options.maxNewTokens,
      eos: tokenizer.special.eos,
      ...(stop ? { stop } : {}),
      pad: tokenizer.special.pad,
      draftBlock: this.options.draftBlock,
      ...(this.options.maxDraftBlock !== undefined ? { maxDraftBlock: this.options.maxDraftBlock } : {}),
      acceptance,
      ...(perRound ? { acceptanceAt } : {}),
      acceptOn: this.options.acceptOn,
      replace: this.options.replace,
      acceptTest: this.options.acceptTest,
      studentSampling: this.options.studentSampling,
      teacherSampling: this.options.teacherSampling,
      keepTeacherLogProbs: keep,
      rng,
    });
    const s = result.stats;
    const B = batch.prompts.length;
    const { responses, teacherLogProbs } = cutSamples(result.tokens, result.teacherLogProbs, (row) => cutAtStopStrings(tokenizer, row, batch.stopStrings));
    return toKdBatch({
      rows: rowsOf(batch, responses),
      sources: batch.prompts.map(() => 'skd'),
      stats: {
        skdRows: B,
        topK: s.meanTopK ?? k,
        acceptanceRate: s.judged ? s.accepted / s.judged : 0,
        correctionsPerSequence: s.corrections / B,
        meanAcceptedRun: s.rowRounds ? s.accepted / s.rowRounds : 0,
        teacherPassesPerToken: s.tokensGenerated ? s.teacherForwards / (s.tokensGenerated / B) : 0,
        tokensGenerated: s.tokensGenerated,
        teacherCached: teacherLogProbs ? 1 : 0,
        meanDraftBlock: s.meanDraftBlock,
      },
      pad: tokenizer.special.pad,
      contextLength: student.contextLength,
      ...(teacherLogProbs ? { teacherLogProbs, vocabSize: teacher.vocabSize } : {}),
    });
  }

  /** SKD with a teacher that reads its own tokenizer (see `crossTokenizerSpeculative`). */
  private async sampleAcross(batch: PromptBatch, bridge: TokenizerBridge, acceptanceAt: (round: number) => Acceptance, k: number): Promise<KdBatch> {
    const { student, tokenizer, rng } = this.models;
    const o = this.options;
    const stop = generationStops(tokenizer, batch.stopStrings);
    const result = await crossTokenizerSpeculative(student, requireTeacher(this.models, this.kind), bridge, batch.prompts, {
      maxNewTokens: o.maxNewTokens,
      ...(stop ? { stop } : {}),
      draftBlock: o.draftBlock,
      acceptanceAt,
      acceptOn: o.acceptOn,
      replace: o.replace,
      studentSampling: o.studentSampling,
      teacherSampling: o.teacherSampling,
      rng,
    });
    const s = result.stats;
    const B = batch.prompts.length;
    const responses = result.tokens.map((row) => cutAtStopStrings(tokenizer, row, batch.stopStrings) ?? row);
    return toKdBatch({
      rows: rowsOf(batch, responses),
      sources: batch.prompts.map(() => 'skd'),
      stats: {
        skdRows: B,
        topK: k,
        acceptanceRate: s.judged ? s.accepted / s.judged : 0,
        teacherAcceptanceRate: s.teacherJudged ? s.teacherAccepted / s.teacherJudged : 0,
        correctionsPerSequence: s.corrections / B,
        meanAcceptedRun: s.rowRounds ? s.accepted / s.rowRounds : 0,
        teacherPassesPerToken: s.tokensGenerated ? s.teacherForwards / (s.tokensGenerated / B) : 0,
        tokensGenerated: s.tokensGenerated,
        teacherCached: 0,
      },
      pad: tokenizer.special.pad,
      contextLength: student.contextLength,
    });
  }
}

/** What SKD across tokenizers does not do, refused in one message. */
function checkCrossTokenizer(options: SkdSamplerOptions, kind: string): void {
  const issues = [
    ...(options.acceptTest === 'resample'
      ? [{ path: 'sampler.options.acceptTest', message: 'across tokenizers a draft group is judged on its own tokens: use acceptTest "draft"' }]
      : []),
    ...(options.maxDraftBlock !== undefined
      ? [{ path: 'sampler.options.maxDraftBlock', message: `adaptive blocks are not built for ${kind} across tokenizers: leave maxDraftBlock unset` }]
      : []),
  ];
  if (issues.length) throw new ConfigError('sampler', issues);
}

/**
 * K after `index` units of the linear decay the SKD authors use: over a horizon of L units, K falls
 * by ceil(K0 / L) every max(floor(L / K0), 1) units, and never below 1. Over `steps`, K0 holds for
 * the first such span of training steps. Over `rounds` (verification rounds of one generation), as
 * in the authors' generation loop, the first decrease follows the very first round: round r uses
 * K0 - ceil(r / span) decrements.
 */
export function decayedTopK(k0: number, index: number, horizon: number, unit: 'steps' | 'rounds'): number {
  const L = Math.max(1, horizon);
  const span = Math.max(Math.floor(L / k0), 1);
  const decrement = Math.ceil(k0 / L);
  const decreases = unit === 'steps' ? Math.floor(index / span) : Math.ceil(index / span);
  return Math.max(1, k0 - decreases * decrement);
}

/**
 * SKD samples cut at their stop strings, with the teacher distributions kept while sampling where
 * they still hold: a cut row whose ids are its sampled prefix and EOS keeps the distributions of
 * those positions (each was computed on that same prefix); if any row's ids changed in re-encoding,
 * the batch keeps none and the trainer runs the teacher on the final rows.
 */
export function cutSamples(
  rows: readonly (readonly number[])[],
  kept: readonly (readonly Float32Array[])[] | undefined,
  cut: (row: readonly number[]) => number[] | undefined,
): { responses: (readonly number[])[]; teacherLogProbs: (readonly Float32Array[])[] | undefined } {
  const responses = rows.map((row) => cut(row) ?? row);
  if (!kept) return { responses, teacherLogProbs: undefined };
  const teacherLogProbs: (readonly Float32Array[])[] = [];
  for (const [b, row] of rows.entries()) {
    const response = responses[b] as readonly number[];
    const dists = kept[b] as readonly Float32Array[];
    if (response === row) {
      teacherLogProbs.push(dists);
      continue;
    }
    const n = response.length - 1; // the kept prefix; its EOS sits where the sampled row went on
    if (n >= row.length || response.slice(0, n).some((t, i) => t !== row[i])) return { responses, teacherLogProbs: undefined };
    teacherLogProbs.push(dists.slice(0, n + 1));
  }
  return { responses, teacherLogProbs };
}
