import * as tf from '@tensorflow/tfjs-core';
import { SkdError, type DecodeState, type LanguageModel, type Rng } from '@skd/core';
import { chooseToken, checkSampling, lastLogits, warpedDistribution, type SamplingOptions } from '@skd/models';

/** How a drafted token is judged against the teacher's distribution at its position. */
export type Acceptance = { readonly kind: 'top-k'; readonly k: number } | { readonly kind: 'top-p'; readonly p: number };

export interface SpeculativeOptions {
  readonly maxNewTokens: number;
  readonly eos: number;
  readonly pad: number;
  /** Drafted tokens per round (gamma). 1 is token-by-token verification. */
  readonly draftBlock: number;
  readonly acceptance: Acceptance;
  /** Judge drafts on the raw teacher distribution (paper) or the one warped by teacherSampling (reference code). */
  readonly acceptOn: 'raw' | 'warped';
  /** Replace a rejected draft with a teacher sample (paper) or the teacher's argmax. */
  readonly replace: 'resample' | 'argmax';
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

function logSoftmax(row: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of row) if (v > max) max = v;
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  const logZ = max + Math.log(sum);
  return row.map((v) => v - logZ);
}

/** Is `token` inside the teacher's acceptance set for this logit row? Ties at the K-th value are broken by token id. */
export function accepts(logits: Float32Array, token: number, acceptance: Acceptance, warp: SamplingOptions | undefined): boolean {
  const probs = warp ? warpedDistribution(logits, warp) : warpedDistribution(logits, {});
  const p = probs[token] as number;
  if (!(p > 0)) return false; // zero-probability tokens are never "inside" (the reference code's ties at zero)
  if (acceptance.kind === 'top-k') {
    let above = 0;
    for (let v = 0; v < probs.length; v++) {
      const q = probs[v] as number;
      if (q > p || (q === p && v < token)) above++;
      if (above >= acceptance.k) return false;
    }
    return true;
  }
  // top-p: inside the smallest most-likely set whose mass reaches p (ties broken by id).
  let before = 0;
  for (let v = 0; v < probs.length; v++) {
    const q = probs[v] as number;
    if (q > p || (q === p && v < token)) before += q;
  }
  return before < acceptance.p;
}

/**
 * Speculative KD sampling, batched. Each round the student drafts up to gamma tokens per row; ONE
 * teacher forward over [pending replacement, drafts] scores them all; each row keeps its drafts up
 * to the first outside the acceptance set and replaces that one with a teacher token. Rows accept
 * different numbers of tokens, so rolled-back columns are masked per row (caches stay shared). The
 * replacement is not run through the teacher at once: it rides as the first column of the next
 * round's block, which keeps the teacher at one forward per round.
 */
export async function speculativeGenerate(
  student: LanguageModel,
  teacher: LanguageModel,
  prompts: readonly (readonly number[])[],
  options: SpeculativeOptions,
): Promise<SpeculativeResult> {
  const { draftBlock: gamma, eos, pad, rng } = options;
  checkSampling(options.studentSampling);
  checkSampling(options.teacherSampling);
  if (!Number.isInteger(gamma) || gamma < 1) throw new SkdError(`draftBlock must be an integer >= 1, got ${gamma}`);
  if (student.vocabSize !== teacher.vocabSize) throw new SkdError(`student vocabulary ${student.vocabSize} differs from the teacher's ${teacher.vocabSize}`);
  if (prompts.some((p) => p.length === 0)) throw new SkdError('every prompt needs at least one token (start with BOS)');
  const B = prompts.length;
  const V = student.vocabSize;
  const P = Math.max(...prompts.map((p) => p.length));
  const context = Math.min(student.contextLength, teacher.contextLength);
  const maxNew = Math.min(options.maxNewTokens, context - P);
  if (maxNew <= 0) throw new SkdError(`prompts of ${P} tokens leave no room to generate in a context of ${context}`);

  const studentState = student.startDecoding(B, P + maxNew * gamma + 1);
  const teacherState = teacher.startDecoding(B, P + maxNew * (gamma + 1) + 1);
  const tokens: number[][] = prompts.map(() => []);
  const origins: ('draft' | 'teacher')[][] = prompts.map(() => []);
  const kept: Float32Array[][] | undefined = options.keepTeacherLogProbs ? prompts.map(() => []) : undefined;
  const done = prompts.map(() => false);
  const budget = prompts.map(() => maxNew);
  const pendingStudent: (number | undefined)[] = new Array(B).fill(undefined);
  const pendingTeacher: (number | undefined)[] = new Array(B).fill(undefined);
  let judged = 0;
  let accepted = 0;
  let corrections = 0;
  let rowRounds = 0;
  let teacherForwards = 0;
  let studentForwards = 0;
  const warp = options.acceptOn === 'warped' ? options.teacherSampling : undefined;

  try {
    const ids = new Int32Array(B * P).fill(pad);
    const mask = new Float32Array(B * P);
    prompts.forEach((prompt, b) => {
      ids.set(prompt, b * P + P - prompt.length);
      mask.fill(1, b * P + P - prompt.length, (b + 1) * P);
    });
    let studentNext = splitRows(await lastColumn(student, studentState, ids, mask, B, P), B, V);
    const teacherNext: (Float32Array | undefined)[] = splitRows(await lastColumn(teacher, teacherState, ids, mask, B, P), B, V);
    studentForwards += 1;
    teacherForwards += 1;

    while (done.some((d) => !d)) {
      // 1. The student sees the tokens appended last round that it has not seen (a replacement, or an accepted final draft).
      if (pendingStudent.some((t, b) => t !== undefined && !done[b])) {
        const column = pendingStudent.map((t, b) => (t !== undefined && !done[b] ? t : undefined));
        const fresh = splitRows(await stepColumn(student, studentState, column, pad, B), B, V);
        studentForwards += 1;
        studentNext = studentNext.map((row, b) => (column[b] !== undefined ? (fresh[b] as Float32Array) : row));
      }
      pendingStudent.fill(undefined);

      // 2. Draft up to gamma tokens per live row; all but each row's last draft are fed to the student.
      const drafts: number[][] = prompts.map(() => []);
      const fedColumn: (number | undefined)[][] = prompts.map(() => []); // student cache column of each fed draft
      const drafting = done.map((d) => !d);
      for (let j = 0; j < gamma; j++) {
        for (let b = 0; b < B; b++) {
          if (!drafting[b]) continue;
          const token = chooseToken(studentNext[b] as Float32Array, options.studentSampling, rng);
          (drafts[b] as number[]).push(token);
          if (token === eos || (drafts[b] as number[]).length >= (budget[b] as number)) drafting[b] = false;
        }
        if (j === gamma - 1 || !drafting.some(Boolean)) break;
        const column = drafts.map((d, b) => (drafting[b] ? (d[d.length - 1] as number) : undefined));
        const at = studentState.length;
        const fresh = splitRows(await stepColumn(student, studentState, column, pad, B), B, V);
        studentForwards += 1;
        column.forEach((t, b) => {
          if (t !== undefined) {
            (fedColumn[b] as (number | undefined)[])[j] = at;
            studentNext[b] = fresh[b] as Float32Array;
          }
        });
      }

      // 3. One teacher forward over [pending replacement, d_1..d_gamma] scores every draft.
      const blockIds = new Int32Array(B * (gamma + 1)).fill(pad);
      const blockMask = new Float32Array(B * (gamma + 1));
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        const pending = pendingTeacher[b];
        if (pending !== undefined) {
          blockIds[b * (gamma + 1)] = pending;
          blockMask[b * (gamma + 1)] = 1;
        }
        (drafts[b] as number[]).forEach((t, j) => {
          blockIds[b * (gamma + 1) + 1 + j] = t;
          blockMask[b * (gamma + 1) + 1 + j] = 1;
        });
      }
      const base = teacherState.length;
      const scores = await allColumns(teacher, teacherState, blockIds, blockMask, B, gamma + 1); // (B, gamma+1, V)
      teacherForwards += 1;

      // 4. Judge each row's drafts in order; keep up to the first rejection and replace it.
      const rollbackTeacher: (number | undefined)[] = new Array(B).fill(undefined);
      const rollbackStudent: (number | undefined)[] = new Array(B).fill(undefined);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        rowRounds += 1;
        const row = drafts[b] as number[];
        // The distribution for draft i: the block's output after its previous column. For the first
        // draft that column is this round's pending replacement, or, without one, last round's output.
        const hadPending = pendingTeacher[b] !== undefined;
        pendingTeacher[b] = undefined;
        const distAt = (i: number): Float32Array =>
          i === 0 && !hadPending
            ? (teacherNext[b] as Float32Array)
            : scores.subarray((b * (gamma + 1) + i) * V, (b * (gamma + 1) + i + 1) * V);
        let i = 0;
        for (; i < row.length; i++) {
          const dist = distAt(i);
          const token = row[i] as number;
          if (!accepts(dist, token, options.acceptance, warp)) break;
          judged += 1;
          accepted += 1;
          append(b, token, 'draft', dist);
          if (token === eos || budget[b] === 0) break;
        }
        if (done[b]) continue;
        if (i < row.length) {
          // Draft i (0-based) was rejected: roll back from its column, then the teacher supplies this position.
          judged += 1;
          corrections += 1;
          rollbackTeacher[b] = base + 1 + i;
          rollbackStudent[b] = (fedColumn[b] as (number | undefined)[])[i];
          const dist = distAt(i);
          const replacement = options.replace === 'argmax' ? chooseToken(dist, { greedy: true }, rng) : chooseToken(dist, options.teacherSampling, rng);
          append(b, replacement, 'teacher', dist);
          if (!done[b]) {
            pendingTeacher[b] = replacement;
            pendingStudent[b] = replacement;
            teacherNext[b] = undefined;
          }
        } else {
          // Every draft accepted: the teacher's output at the last draft predicts the next position.
          teacherNext[b] = Float32Array.from(distAt(row.length));
          pendingStudent[b] = row[row.length - 1];
        }
      }
      teacherState.maskFrom(rollbackTeacher);
      studentState.maskFrom(rollbackStudent);
    }
  } finally {
    studentState.dispose();
    teacherState.dispose();
  }

  function append(b: number, token: number, origin: 'draft' | 'teacher', dist: Float32Array): void {
    (tokens[b] as number[]).push(token);
    (origins[b] as ('draft' | 'teacher')[]).push(origin);
    if (kept) (kept[b] as Float32Array[]).push(logSoftmax(Float32Array.from(dist)));
    budget[b] = (budget[b] as number) - 1;
    if (token === eos || budget[b] === 0) done[b] = true;
  }

  const tokensGenerated = tokens.reduce((n, row) => n + row.length, 0);
  return {
    tokens,
    origins,
    teacherLogProbs: kept,
    stats: { judged, accepted, corrections, rowRounds, tokensGenerated, teacherForwards, studentForwards },
  };
}

function splitRows(flat: Float32Array, B: number, V: number): Float32Array[] {
  return Array.from({ length: B }, (_, b) => flat.slice(b * V, (b + 1) * V));
}

/** Decodes (B, S) tokens and reads back only the last column's logits (B * V). */
function lastColumn(model: LanguageModel, state: DecodeState, ids: Int32Array, mask: Float32Array, B: number, S: number): Promise<Float32Array> {
  return lastLogits(model, state, tf.tensor2d(ids, [B, S], 'int32'), tf.tensor2d(mask, [B, S]));
}

/** Decodes one column: rows with undefined feed masked padding. */
function stepColumn(model: LanguageModel, state: DecodeState, column: readonly (number | undefined)[], pad: number, B: number): Promise<Float32Array> {
  const ids = Int32Array.from(column, (t) => t ?? pad);
  const mask = Float32Array.from(column, (t) => (t === undefined ? 0 : 1));
  return allColumns(model, state, ids, mask, B, 1);
}

/** Decodes (B, S) tokens and reads back all logits (B * S * V). */
async function allColumns(model: LanguageModel, state: DecodeState, ids: Int32Array, mask: Float32Array, B: number, S: number): Promise<Float32Array> {
  const tokens = tf.tensor2d(ids, [B, S], 'int32');
  const maskTensor = tf.tensor2d(mask, [B, S]);
  const logits = model.decode(tokens, state, { mask: maskTensor }); // (B, S, V)
  tokens.dispose();
  maskTensor.dispose();
  const data = (await logits.data()) as Float32Array;
  logits.dispose();
  return data;
}
