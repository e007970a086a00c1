import * as tf from '@tensorflow/tfjs-core';
import { SkdError, endsGeneration, type DecodeState, type LanguageModel, type Rng } from '@skd/core';
import { checkSampling, chooseToken, decodeLast, leftPadded, warpedDistribution, type SamplingOptions } from '@skd/models';
import { logSoftmax, sampleTokens } from '@skd/ops';

/** How a drafted token is judged against the teacher's distribution at its position. */
export type Acceptance = { readonly kind: 'top-k'; readonly k: number } | { readonly kind: 'top-p'; readonly p: number };

export interface SpeculativeOptions {
  readonly maxNewTokens: number;
  readonly eos: number;
  /** Ids besides `eos` that end a row (the tokenizer's `special.stop`, and the tokens holding a stop string: `generationStops`). */
  readonly stop?: readonly number[];
  readonly pad: number;
  /** Drafted tokens per round (the paper's gamma). 1 is token-by-token verification. */
  readonly draftBlock: number;
  /**
   * Adaptive blocks: above draftBlock, the block doubles (up to this) after a round in which every
   * row kept all its drafts, and falls back to draftBlock after any rejection. What is sampled is
   * unchanged (each token is still drafted by the student and judged by the teacher); only the
   * number of teacher forwards changes. Unset: always draftBlock.
   */
  readonly maxDraftBlock?: number;
  readonly acceptance: Acceptance;
  /**
   * The acceptance set at each verification round (0-based, counted within this call, so it starts
   * over with every batch of prompts), in place of `acceptance`: K decaying per round, as the SKD
   * authors' code decays it.
   */
  readonly acceptanceAt?: (round: number) => Acceptance;
  /** Judge drafts on the raw teacher distribution (paper) or the one warped by teacherSampling (reference code). */
  readonly acceptOn: 'raw' | 'warped';
  /** Replace a rejected draft with a teacher sample (paper) or the teacher's argmax. */
  readonly replace: 'resample' | 'argmax';
  /**
   * What is tested against the acceptance set at each drafted position: the draft itself (paper;
   * the default), or a fresh sample of the student's drafting distribution at that position, the
   * draft being kept when the fresh sample passes (the authors' `_speculative_kd_sampling`). Both
   * accept at the same rate on average; with "resample" a kept draft can lie outside the set.
   */
  readonly acceptTest?: 'draft' | 'resample';
  /** The student's settings for drafting. */
  readonly studentSampling: SamplingOptions;
  /** The teacher's settings for replacement samples (and for warped acceptance). */
  readonly teacherSampling: SamplingOptions;
  /** Keep the teacher's log-probabilities at every generated position (for the loss). */
  readonly keepTeacherLogProbs: boolean;
  readonly rng: Rng;
}

export interface SpeculativeStats {
  /** Drafts judged: accepted ones plus the first rejected one of each round (later drafts are discarded unjudged). */
  readonly judged: number;
  readonly accepted: number;
  /** Teacher replacements (rejections). */
  readonly corrections: number;
  /** Row-rounds, for the mean accepted run length. */
  readonly rowRounds: number;
  readonly tokensGenerated: number;
  /** Batched forward calls, prompt prefill included. */
  readonly teacherForwards: number;
  readonly studentForwards: number;
  /** The mean draft block over the rounds (draftBlock unless blocks adapt). */
  readonly meanDraftBlock: number;
  /** With top-K acceptance: the mean K over the rounds (K itself unless it decays per round). */
  readonly meanTopK: number | undefined;
}

export interface SpeculativeResult {
  /** Generated tokens per row (ends with EOS when the row finished by EOS). */
  readonly tokens: number[][];
  /** Per generated token: 'draft' (accepted student token) or 'teacher' (replacement). */
  readonly origins: ('draft' | 'teacher')[][];
  /** Per generated token: the teacher's raw log-probabilities at its position (when kept). */
  readonly teacherLogProbs: Float32Array[][] | undefined;
  readonly stats: SpeculativeStats;
}

/**
 * Is `token` inside the teacher's acceptance set for this logit row? Ties at the boundary are
 * broken by token id. Tokens without probability mass are never inside (the reference code's ties
 * at zero). On the raw distribution this is one pass over the row: the rank of a token by
 * probability is its rank by logit, and top-p only needs the mass of the tokens ranked above it.
 */
export function accepts(logits: Float32Array, token: number, acceptance: Acceptance, warp: SamplingOptions | undefined): boolean {
  if (warp) return acceptsWarped(warpedDistribution(logits, warp), token, acceptance);
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  const own = logits[token] as number;
  if (!(Math.exp(own - max) > 0)) return false;
  if (acceptance.kind === 'top-k') {
    let above = 0;
    for (let v = 0; v < logits.length; v++) {
      const l = logits[v] as number;
      if (l > own || (l === own && v < token)) above++;
      if (above >= acceptance.k) return false;
    }
    return true;
  }
  let total = 0;
  let before = 0;
  for (let v = 0; v < logits.length; v++) {
    const l = logits[v] as number;
    const q = Math.exp(l - max);
    total += q;
    if (l > own || (l === own && v < token)) before += q;
  }
  return before / total < acceptance.p;
}

function acceptsWarped(probs: Float64Array, token: number, acceptance: Acceptance): boolean {
  const p = probs[token] as number;
  if (!(p > 0)) return false;
  let above = 0;
  let before = 0;
  for (let v = 0; v < probs.length; v++) {
    const q = probs[v] as number;
    if (q > p || (q === p && v < token)) {
      above += 1;
      before += q;
    }
  }
  return acceptance.kind === 'top-k' ? above < acceptance.k : before < acceptance.p;
}

/**
 * Speculative KD sampling, batched. Each round the student drafts up to a block of tokens per row; ONE
 * teacher forward over [pending replacement, drafts] scores them all; each row keeps its drafts up
 * to the first outside the acceptance set and replaces that one with a teacher token, then both
 * caches roll back per row. The replacement is not run through the teacher at once: it rides as
 * the first column of the next round's block, which keeps the teacher at one forward per round.
 */
export async function speculativeGenerate(
  student: LanguageModel,
  teacher: LanguageModel,
  prompts: readonly (readonly number[])[],
  options: SpeculativeOptions,
): Promise<SpeculativeResult> {
  checkSampling(options.studentSampling);
  checkSampling(options.teacherSampling);
  if (!Number.isInteger(options.draftBlock) || options.draftBlock < 1) throw new SkdError(`draftBlock must be an integer >= 1, got ${options.draftBlock}`);
  if (options.maxDraftBlock !== undefined && (!Number.isInteger(options.maxDraftBlock) || options.maxDraftBlock < options.draftBlock)) {
    throw new SkdError(`maxDraftBlock must be an integer >= draftBlock (${options.draftBlock}), got ${options.maxDraftBlock}`);
  }
  if (student.vocabSize !== teacher.vocabSize) throw new SkdError(`student vocabulary ${student.vocabSize} differs from the teacher's ${teacher.vocabSize}`);
  if (prompts.some((p) => p.length === 0)) throw new SkdError('every prompt needs at least one token (start with BOS)');
  const P = Math.max(...prompts.map((p) => p.length));
  const context = Math.min(student.contextLength, teacher.contextLength);
  const maxNew = Math.min(options.maxNewTokens, context - P);
  if (maxNew <= 0) throw new SkdError(`prompts of ${P} tokens leave no room to generate in a context of ${context}`);
  const run = new SpeculativeRun(student, teacher, prompts, maxNew, options);
  try {
    await run.prefill();
    // The native loop returns drafts only; a resampled test needs the distribution at each draft.
    const native = (options.acceptTest ?? 'draft') === 'draft';
    while (run.live()) {
      let drafts = native ? await run.catchUpAndDraft() : undefined;
      if (!drafts) {
        run.catchUpStudent();
        drafts = await run.draft();
      }
      const verified = await run.verify(drafts);
      run.judge(drafts, verified);
    }
    return run.result();
  } finally {
    run.dispose();
  }
}

/** A round's drafts per row, and where each fed draft sits in the student's cache (for rollback). */
interface Drafts {
  readonly tokens: readonly (readonly number[])[];
  /** With acceptTest "resample": per row, a fresh sample of the distribution each draft came from, tested in its place. */
  readonly probes?: readonly (readonly number[])[];
  /** studentLength[b][j]: the row's student length before draft j was fed; undefined if never fed. */
  readonly studentLength: readonly (readonly (number | undefined)[])[];
}

/** The teacher's verdict material for a round: its log-probabilities over the block, and where each row's block began. */
interface Verification {
  /** (B, width, V) log-probabilities, row-major: column c is the teacher's distribution after row b's c-th fed token. */
  readonly scores: Float32Array;
  /** Columns per row: the longest row's fed tokens (its pending replacement, if any, and its drafts). */
  readonly width: number;
  /** Each row's teacher length before the block, and whether the block began with a pending replacement. */
  readonly teacherLength: readonly number[];
  readonly hadPending: readonly boolean[];
}

/** Where each row's caches go back to after a round (undefined: the row keeps everything). */
interface Rollback {
  readonly teacher: (number | undefined)[];
  readonly student: (number | undefined)[];
}

/** The state of one speculativeGenerate call; its methods are the steps of a round. */
class SpeculativeRun {
  private readonly B: number;
  private readonly V: number;
  /** This round's draft block; adapts between draftBlock and maxDraftBlock. */
  private block: number;
  private readonly studentState: DecodeState;
  private readonly teacherState: DecodeState;
  private readonly tokens: number[][];
  private readonly origins: ('draft' | 'teacher')[][];
  private readonly kept: Float32Array[][] | undefined;
  private readonly done: boolean[];
  private readonly budget: number[];
  /** The token each row appended last round that the student has not seen (a replacement, or its final accepted draft). */
  private readonly pendingStudent: (number | undefined)[];
  /** The replacement each row appended last round that the teacher has not seen. */
  private readonly pendingTeacher: (number | undefined)[];
  /** The student's next-token logits per row (B, V), on the device. */
  private studentNext: tf.Tensor2D | undefined;
  /** The teacher's distribution for each row's next position, when known without a forward (prefill, or every draft accepted). */
  private readonly teacherNext: (Float32Array | undefined)[];
  private readonly warp: SamplingOptions | undefined;
  private judged = 0;
  private accepted = 0;
  private corrections = 0;
  private rowRounds = 0;
  private teacherForwards = 0;
  private studentForwards = 0;
  private rounds = 0;
  private blockSum = 0;
  private kSum = 0;

  constructor(
    private readonly student: LanguageModel,
    private readonly teacher: LanguageModel,
    private readonly prompts: readonly (readonly number[])[],
    maxNew: number,
    private readonly options: SpeculativeOptions,
  ) {
    this.B = prompts.length;
    this.V = student.vocabSize;
    this.block = options.draftBlock;
    const P = Math.max(...prompts.map((p) => p.length));
    this.studentState = student.startDecoding(this.B, P + maxNew);
    this.teacherState = teacher.startDecoding(this.B, P + maxNew);
    this.tokens = prompts.map(() => []);
    this.origins = prompts.map(() => []);
    this.kept = options.keepTeacherLogProbs ? prompts.map(() => []) : undefined;
    this.done = prompts.map(() => false);
    this.budget = prompts.map(() => maxNew);
    this.pendingStudent = new Array(this.B).fill(undefined);
    this.pendingTeacher = new Array(this.B).fill(undefined);
    this.teacherNext = new Array(this.B).fill(undefined);
    this.warp = options.acceptOn === 'warped' ? options.teacherSampling : undefined;
  }

  live(): boolean {
    return this.done.some((d) => !d);
  }

  /** Both models read the prompts; the teacher's last column gives the distribution of the first draft. */
  async prefill(): Promise<void> {
    const { ids, mask } = leftPadded(this.prompts, this.options.pad);
    const P = ids.length / this.B;
    this.studentNext = decodeLast(this.student, this.studentState, tf.tensor2d(ids, [this.B, P], 'int32'), tf.tensor2d(mask, [this.B, P]));
    const teacherLast = decodeLast(this.teacher, this.teacherState, tf.tensor2d(ids, [this.B, P], 'int32'), tf.tensor2d(mask, [this.B, P]));
    const logProbs = logSoftmax(teacherLast); // (B, V)
    teacherLast.dispose();
    const rows = (await logProbs.data()) as Float32Array;
    logProbs.dispose();
    for (let b = 0; b < this.B; b++) this.teacherNext[b] = rows.slice(b * this.V, (b + 1) * this.V);
    this.studentForwards += 1;
    this.teacherForwards += 1;
  }

  /** 1. The student reads the token each row appended last round that it has not seen. */
  catchUpStudent(): void {
    const column = this.pendingStudent.map((t, b) => (t !== undefined && !this.done[b] ? t : undefined));
    this.pendingStudent.fill(undefined);
    if (column.every((t) => t === undefined)) return;
    this.feedStudent(column);
  }

  /**
   * 1 and 2 in one call where the student runs whole loops natively: it reads each row's pending
   * token, then drafts. Returns undefined where it cannot (the two steps then run one by one).
   */
  async catchUpAndDraft(): Promise<Drafts | undefined> {
    const live = this.done.map((d) => !d);
    const feed = this.pendingStudent.map((t, b) => (live[b] ? t : undefined));
    const before = [...this.studentState.lengths];
    const tokens = await this.student.generateTokens?.(this.studentState, {
      steps: this.block,
      eos: this.options.eos,
      ...(this.options.stop ? { stop: this.options.stop } : {}),
      sampling: this.options.studentSampling,
      rng: this.options.rng,
      live,
      budgets: this.budget,
      feed,
      ...(this.studentNext ? { logits: this.studentNext } : {}),
    });
    if (!tokens) return undefined;
    this.pendingStudent.fill(undefined);
    // Every row that goes on will have a pending token to read next round: no logits are kept.
    this.studentNext?.dispose();
    this.studentNext = undefined;
    this.studentForwards += (feed.some((t) => t !== undefined) ? 1 : 0) + Math.max(0, ...tokens.map((row) => row.length - 1));
    return {
      tokens,
      // All but each row's last draft were read: draft j sits after the row's earlier tokens.
      studentLength: tokens.map((row, b) => row.map((_, j) => (j < row.length - 1 ? (before[b] as number) + (feed[b] !== undefined ? 1 : 0) + j : undefined))),
    };
  }

  /** 2. Up to a block of drafts per live row, sampled on the device; all but each row's last are fed to the student. */
  async draft(): Promise<Drafts> {
    const B = this.B;
    const probes = this.options.acceptTest === 'resample' ? this.prompts.map((): number[] => []) : undefined;
    const drafts = {
      tokens: this.prompts.map((): number[] => []),
      studentLength: this.prompts.map((): (number | undefined)[] => []),
      ...(probes ? { probes } : {}),
    };
    const drafting = this.done.map((d) => !d);
    for (let j = 0; j < this.block; j++) {
      const chosen = await sampleTokens(this.studentNext as tf.Tensor2D, this.options.studentSampling, this.options.rng, drafting);
      const probe = probes ? await sampleTokens(this.studentNext as tf.Tensor2D, this.options.studentSampling, this.options.rng, drafting) : undefined;
      for (let b = 0; b < B; b++) {
        if (!drafting[b]) continue;
        const row = drafts.tokens[b] as number[];
        row.push(chosen[b] as number);
        if (probe) (probes?.[b] as number[]).push(probe[b] as number);
        if (endsGeneration(chosen[b] as number, this.options.eos, this.options.stop) || row.length >= (this.budget[b] as number)) drafting[b] = false;
      }
      if (j === this.block - 1 || !drafting.some(Boolean)) break;
      const column = drafts.tokens.map((row, b) => (drafting[b] ? (row[row.length - 1] as number) : undefined));
      column.forEach((t, b) => {
        if (t !== undefined) (drafts.studentLength[b] as (number | undefined)[])[j] = this.studentState.lengths[b];
      });
      this.feedStudent(column);
    }
    return drafts;
  }

  /**
   * 3. One teacher forward scores every draft: each row feeds its pending replacement (if any) and
   * its drafts, left-aligned; the block is as wide as the longest row, so a round where no row has a
   * replacement pending, or where rows draft fewer than a block near their end, feeds no padding
   * column through the teacher. Returns (B, width, V) log-probabilities, read back.
   */
  async verify(drafts: Drafts): Promise<Verification> {
    const fed = this.pendingTeacher.map((t, b) => (this.done[b] ? [] : [...(t !== undefined ? [t] : []), ...(drafts.tokens[b] as readonly number[])]));
    const width = Math.max(1, ...fed.map((row) => row.length));
    const ids = new Int32Array(this.B * width).fill(this.options.pad);
    const mask = new Float32Array(this.B * width);
    const teacherLength = [...this.teacherState.lengths];
    const hadPending = this.pendingTeacher.map((t, b) => t !== undefined && !this.done[b]);
    this.pendingTeacher.fill(undefined);
    fed.forEach((row, b) => {
      ids.set(row, b * width);
      mask.fill(1, b * width, b * width + row.length);
    });
    const tokens = tf.tensor2d(ids, [this.B, width], 'int32');
    const maskTensor = tf.tensor2d(mask, [this.B, width]);
    try {
      const logits = this.teacher.decode(tokens, this.teacherState, { mask: maskTensor }); // (B, width, V)
      const logProbs = logSoftmax(logits); // (B, width, V): what the loss keeps, and ranks like the logits
      logits.dispose();
      const scores = (await logProbs.data()) as Float32Array;
      logProbs.dispose();
      this.teacherForwards += 1;
      return { scores, width, teacherLength, hadPending };
    } finally {
      tokens.dispose();
      maskTensor.dispose();
    }
  }

  /**
   * 4. Each row keeps its drafts up to the first outside the acceptance set (accept), replaces that
   * one with a teacher token (replace), and both caches roll back past what was dropped (rollBack).
   */
  judge(drafts: Drafts, verification: Verification): void {
    const acceptance = this.options.acceptanceAt?.(this.rounds) ?? this.options.acceptance;
    if (acceptance.kind === 'top-k') this.kSum += acceptance.k;
    const rollback: Rollback = { teacher: new Array(this.B).fill(undefined), student: new Array(this.B).fill(undefined) };
    let rejected = false;
    for (let b = 0; b < this.B; b++) {
      if (this.done[b]) continue;
      this.rowRounds += 1;
      const row = drafts.tokens[b] as readonly number[];
      const distAt = this.distributions(b, verification);
      const kept = this.accept(b, row, drafts.probes?.[b] ?? row, distAt, acceptance);
      if (this.done[b]) continue;
      if (kept < row.length) {
        rejected = true;
        this.replace(b, distAt(kept));
        rollback.teacher[b] = (verification.teacherLength[b] as number) + (verification.hadPending[b] ? 1 : 0) + kept;
        rollback.student[b] = drafts.studentLength[b]?.[kept];
      } else {
        // Every draft accepted: the teacher's output at the last draft predicts the next position.
        this.teacherNext[b] = Float32Array.from(distAt(row.length));
        this.pendingStudent[b] = row[row.length - 1];
      }
    }
    this.rollBack(rollback, rejected);
  }

  /**
   * Row b's teacher distribution for draft i (i = the row's draft count: the position after its
   * last draft): the block's output after the token before it. For the first draft that token is
   * this round's pending replacement (column 0), or, without one, the distribution is known from
   * before and draft j sits in column j.
   */
  private distributions(b: number, { scores, width, hadPending }: Verification): (i: number) => Float32Array {
    const { V } = this;
    const shift = hadPending[b] ? 0 : 1;
    return (i) => {
      if (i === 0 && !hadPending[b]) return this.teacherNext[b] as Float32Array;
      const column = b * width + i - shift;
      return scores.subarray(column * V, (column + 1) * V);
    };
  }

  /**
   * Appends row b's drafts up to the first whose test token (the draft itself, or its resampled
   * probe) is outside the acceptance set, or the row's end; returns how many were kept.
   */
  private accept(b: number, row: readonly number[], tested: readonly number[], distAt: (i: number) => Float32Array, acceptance: Acceptance): number {
    let i = 0;
    for (; i < row.length; i++) {
      const dist = distAt(i);
      const token = row[i] as number;
      if (!accepts(dist, tested[i] as number, acceptance, this.warp)) break;
      this.judged += 1;
      this.accepted += 1;
      this.append(b, token, 'draft', dist);
      if (this.done[b]) break;
    }
    return i;
  }

  /** The rejected draft's position gets a teacher token, which both models read at the start of the next round. */
  private replace(b: number, dist: Float32Array): void {
    this.judged += 1;
    this.corrections += 1;
    const replacement =
      this.options.replace === 'argmax'
        ? chooseToken(dist, { greedy: true }, this.options.rng)
        : chooseToken(dist, this.options.teacherSampling, this.options.rng);
    this.append(b, replacement, 'teacher', dist);
    if (this.done[b]) return;
    this.pendingTeacher[b] = replacement;
    this.pendingStudent[b] = replacement;
    this.teacherNext[b] = undefined;
  }

  /** Both caches drop what each row did not keep; the next block doubles after a round with no rejection (up to maxDraftBlock) and starts over after one. */
  private rollBack(rollback: Rollback, rejected: boolean): void {
    this.teacherState.rollback(rollback.teacher);
    this.studentState.rollback(rollback.student);
    this.rounds += 1;
    this.blockSum += this.block;
    const most = this.options.maxDraftBlock ?? this.options.draftBlock;
    this.block = rejected ? this.options.draftBlock : Math.min(most, this.block * 2);
  }

  result(): SpeculativeResult {
    const tokensGenerated = this.tokens.reduce((n, row) => n + row.length, 0);
    return {
      tokens: this.tokens,
      origins: this.origins,
      teacherLogProbs: this.kept,
      stats: {
        judged: this.judged,
        accepted: this.accepted,
        corrections: this.corrections,
        rowRounds: this.rowRounds,
        tokensGenerated,
        teacherForwards: this.teacherForwards,
        studentForwards: this.studentForwards,
        meanDraftBlock: this.rounds ? this.blockSum / this.rounds : this.options.draftBlock,
        meanTopK: this.kSum > 0 ? this.kSum / this.rounds : this.options.acceptance.kind === 'top-k' ? this.options.acceptance.k : undefined,
      },
    };
  }

  dispose(): void {
    this.studentNext?.dispose();
    this.studentState.dispose();
    this.teacherState.dispose();
  }

  /** Decodes one student column (undefined rows feed masked padding) and takes its logits as those rows' next. */
  private feedStudent(column: readonly (number | undefined)[]): void {
    const fed = tf.tensor1d(
      column.map((t) => (t === undefined ? 0 : 1)),
      'bool',
    );
    const fresh = decodeLast(
      this.student,
      this.studentState,
      tf.tensor2d(
        Int32Array.from(column, (t) => t ?? this.options.pad),
        [this.B, 1],
        'int32',
      ),
      tf.tensor2d(
        Float32Array.from(column, (t) => (t === undefined ? 0 : 1)),
        [this.B, 1],
      ),
    );
    const merged = tf.tidy(() => tf.where(tf.expandDims(fed, 1), fresh, this.studentNext as tf.Tensor2D) as tf.Tensor2D); // (B, V)
    tf.dispose([fed, fresh, this.studentNext as tf.Tensor2D]);
    this.studentNext = merged;
    this.studentForwards += 1;
  }

  private append(b: number, token: number, origin: 'draft' | 'teacher', dist: Float32Array): void {
    (this.tokens[b] as number[]).push(token);
    (this.origins[b] as ('draft' | 'teacher')[]).push(origin);
    if (this.kept) (this.kept[b] as Float32Array[]).push(Float32Array.from(dist));
    this.budget[b] = (this.budget[b] as number) - 1;
    if (endsGeneration(token, this.options.eos, this.options.stop) || this.budget[b] === 0) this.done[b] = true;
  }
}
