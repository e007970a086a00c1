import * as tf from '@tensorflow/tfjs-core';
import {
  ShapeError,
  alignByByteOffsets,
  SkdError,
  type AlignedLoss,
  type AlignedResponse,
  type ByteSpan,
  type Divergence,
  type DivergenceInput,
  type TokenVocabularies,
} from '@skd/core';
import { sparseCrossEntropy } from '@skd/ops';
import { teacherInput } from './teacher-input';

export { alignByByteOffsets, type ByteAlignment, type ByteSpan } from '@skd/core';

/**
 * The arithmetic of distillation between models with different tokenizers (Universal Logit
 * Distillation, and GOLD's hybrid of it), as TRL's `ULDLoss` computes it: the two token sequences of
 * one text are aligned into groups that end where both tokenizations split at the same byte, each
 * group's distributions are merged into one row per side, and the rows are compared without any
 * vocabulary mapping (sorted probabilities) or, for tokens whose strings both vocabularies hold, by
 * the generalised JSD.
 */

/**
 * How a group of several tokens becomes one distribution. `observed`: the first position's
 * distribution times the probabilities of the group's later tokens; `bayesian`: the last position's
 * distribution times the probabilities of its earlier tokens (the chain rule). Unnormalised either way.
 */
export type MergeStrategy = 'observed' | 'bayesian';

/**
 * One row per group from a side's probabilities (n, V): a one-token group's row as it is, a longer
 * group's merged by `strategy` (each token probability floored at 1e-8), an empty group's zeros.
 * `tokens[k]` is the token at position k. Differentiable in `probs`.
 */
export function mergeAligned(probs: tf.Tensor2D, groups: readonly number[][], tokens: readonly number[], strategy: MergeStrategy): tf.Tensor2D {
  const [n, V] = probs.shape;
  if (tokens.length < n) throw new SkdError(`mergeAligned: ${tokens.length} token ids for ${n} positions`);
  return tf.tidy(() => {
    const rows = groups.map((group) => {
      if (group.length === 0) return tf.zeros([1, V]) as tf.Tensor2D;
      if (group.some((k) => !(k >= 0 && k < n))) throw new SkdError(`mergeAligned: a group holds positions outside 0..${n - 1}: ${group.join(', ')}`);
      const base = strategy === 'bayesian' ? (group[group.length - 1] as number) : (group[0] as number);
      let row = tf.slice(probs, [base, 0], [1, V]) as tf.Tensor2D;
      for (const k of strategy === 'bayesian' ? group.slice(0, -1) : group.slice(1)) {
        const p = tf.maximum(tf.slice(probs, [k, tokens[k] as number], [1, 1]), 1e-8); // (1, 1)
        row = tf.mul(row, p) as tf.Tensor2D;
      }
      return row;
    });
    return tf.concat(rows, 0) as tf.Tensor2D; // (groups, V)
  });
}

/** Each row's values in descending order; the gradient goes back to each value's own position. */
function sortedDescending(x: tf.Tensor2D): tf.Tensor2D {
  const [N, V] = x.shape;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const { values, indices } = tf.topk(input, V, true); // (N, V) each
    const flat = tf.reshape(tf.add(indices, tf.expandDims(tf.range(0, N * V, V, 'int32'), 1)), [N * V]); // into the flattened rows
    indices.dispose();
    save([flat]);
    return {
      value: values,
      gradFunc: (dy: tf.Tensor, [positions]: tf.Tensor[]) =>
        tf.reshape(tf.unsortedSegmentSum(tf.reshape(dy, [N * V]), positions as tf.Tensor1D, N * V), [N, V]),
    };
  });
  return op(x) as tf.Tensor2D;
}

/** Rows padded with zeros on the right to `width` columns. */
function padColumns(x: tf.Tensor2D, width: number): tf.Tensor2D {
  return x.shape[1] === width
    ? x
    : (tf.pad(x, [
        [0, 0],
        [0, width - x.shape[1]],
      ]) as tf.Tensor2D);
}

/**
 * ULD's distance between aligned rows (g, Vs) and (g, Vt): each row sorted in descending order, the
 * narrower side padded with zeros, the absolute differences summed and divided by the rows' count.
 */
export function sortedL1(student: tf.Tensor2D, teacher: tf.Tensor2D): tf.Scalar {
  if (student.shape[0] !== teacher.shape[0]) throw new ShapeError('teacher rows', `${student.shape[0]} rows like the student's`, teacher.shape);
  return tf.tidy(() => {
    const width = Math.max(student.shape[1], teacher.shape[1]);
    const diff = tf.sub(padColumns(sortedDescending(student), width), padColumns(sortedDescending(teacher), width));
    return tf.div(tf.sum(tf.abs(diff)), student.shape[0]) as tf.Scalar;
  });
}

/** The tokens whose strings both vocabularies hold: teacher ids ascending, and the student id of each. */
export interface VocabularyMatch {
  readonly teacherIds: readonly number[];
  readonly studentIds: readonly number[];
}

/** Matches two vocabularies (token string → id) by string. */
export function matchVocabularies(student: ReadonlyMap<string, number>, teacher: ReadonlyMap<string, number>): VocabularyMatch {
  const pairs: [number, number][] = [];
  for (const [token, teacherId] of teacher) {
    const studentId = student.get(token);
    if (studentId !== undefined) pairs.push([teacherId, studentId]);
  }
  pairs.sort((a, b) => a[0] - b[0]);
  return { teacherIds: pairs.map(([t]) => t), studentIds: pairs.map(([, s]) => s) };
}

/**
 * The generalised JSD(beta) between probability rows (not renormalised; each floored at 1e-8 first),
 * summed over columns and rows and divided by the rows' count: beta 0 is KL(teacher || student),
 * beta 1 KL(student || teacher), between them beta KL(p || m) + (1 - beta) KL(q || m) with
 * m = beta p + (1 - beta) q.
 */
export function probabilityJsd(student: tf.Tensor2D, teacher: tf.Tensor2D, beta: number): tf.Scalar {
  if (!(beta >= 0 && beta <= 1)) throw new SkdError(`beta must be in [0, 1], got ${beta}`);
  return tf.tidy(() => tf.div(tf.sum(jsdRows(student, teacher, beta)), student.shape[0]) as tf.Scalar);
}

/** Each row's generalised JSD(beta) of probability rows (see `probabilityJsd`): (N). */
function jsdRows(student: tf.Tensor2D, teacher: tf.Tensor2D, beta: number): tf.Tensor1D {
  return tf.tidy(() => {
    const q = tf.maximum(student, 1e-8);
    const p = tf.maximum(teacher, 1e-8);
    const [logQ, logP] = [tf.log(q), tf.log(p)];
    let terms: tf.Tensor;
    if (beta === 0) terms = tf.mul(p, tf.sub(logP, logQ));
    else if (beta === 1) terms = tf.mul(q, tf.sub(logQ, logP));
    else {
      const logM = tf.log(tf.add(tf.mul(q, 1 - beta), tf.mul(p, beta)));
      terms = tf.add(tf.mul(tf.mul(p, tf.sub(logP, logM)), beta), tf.mul(tf.mul(q, tf.sub(logQ, logM)), 1 - beta));
    }
    return tf.sum(terms, 1) as tf.Tensor1D;
  });
}

export interface HybridOptions {
  readonly match: VocabularyMatch;
  /** JSD's beta on the matched tokens. */
  readonly beta: number;
  /** Fixed weights of the matched and unmatched parts; default: the matched share of the teacher's vocabulary, and the rest. */
  readonly weights?: { readonly matched: number; readonly unmatched: number };
  /**
   * Which aligned groups take the hybrid: `all` (TRL's GOLD), or `one-to-one`: only groups of one token
   * on each side, the others ULD's sorted L1 over whole rows. Matching a group that merges several
   * tokens compares unlike events (the teacher's digit "3" against the student's number "32").
   */
  readonly groups?: HybridGroups;
}

export type HybridGroups = 'all' | 'one-to-one';

/**
 * GOLD's hybrid: the matched tokens' columns compared directly by the generalised JSD, the other
 * columns of each side by the sorted L1, weighted by the matched share of the teacher's vocabulary
 * (or fixed weights).
 */
export function hybridUld(student: tf.Tensor2D, teacher: tf.Tensor2D, options: HybridOptions): tf.Scalar {
  const { match, beta } = options;
  const [Vs, Vt] = [student.shape[1], teacher.shape[1]];
  if (match.teacherIds.some((id) => id >= Vt) || match.studentIds.some((id) => id >= Vs)) {
    throw new SkdError(`hybridUld: matched ids outside the vocabularies (student ${Vs}, teacher ${Vt})`);
  }
  return tf.tidy(() => {
    const rest = (V: number, ids: readonly number[]) => {
      const matched = new Set(ids);
      return Array.from({ length: V }, (_, i) => i).filter((i) => !matched.has(i));
    };
    const columns = (x: tf.Tensor2D, ids: readonly number[]) => tf.gather(x, tf.tensor1d(ids as number[], 'int32'), 1) as tf.Tensor2D;
    const count = match.teacherIds.length;
    const matchedLoss = count > 0 ? probabilityJsd(columns(student, match.studentIds), columns(teacher, match.teacherIds), beta) : tf.scalar(0);
    const [studentRest, teacherRest] = [rest(Vs, match.studentIds), rest(Vt, match.teacherIds)];
    const unmatchedLoss =
      studentRest.length > 0 && teacherRest.length > 0 ? sortedL1(columns(student, studentRest), columns(teacher, teacherRest)) : tf.scalar(0);
    const matchedWeight = options.weights?.matched ?? count / Math.max(1, Vt);
    const unmatchedWeight = options.weights?.unmatched ?? 1 - matchedWeight;
    return tf.add(tf.mul(matchedLoss, matchedWeight), tf.mul(unmatchedLoss, unmatchedWeight)) as tf.Scalar;
  });
}

/** The byte-aligned groups of two tokenizations that hold tokens on both sides, as (student, teacher) position lists. */
export function pairedGroups(studentSpans: readonly ByteSpan[], teacherSpans: readonly ByteSpan[]): (readonly [number[], number[]])[] {
  const aligned = alignByByteOffsets(studentSpans, teacherSpans);
  return aligned.student.map((g, i) => [g, aligned.teacher[i] as number[]] as const).filter(([s, t]) => s.length > 0 && t.length > 0);
}

/** One response on both sides: the logit rows that score it, its tokens, and their byte spans. */
export interface UldSequence {
  /** (n, Vs) the student's logits, row k scoring token k as the merge strategy reads it. */
  readonly studentLogits: tf.Tensor2D;
  readonly teacherLogits: tf.Tensor2D;
  readonly studentTokens: readonly number[];
  readonly teacherTokens: readonly number[];
  /** Byte spans of the tokens in the shared text; without them, rows are paired position by position. */
  readonly studentSpans?: readonly ByteSpan[];
  readonly teacherSpans?: readonly ByteSpan[];
}

export interface UldOptions {
  readonly studentTemperature: number;
  readonly teacherTemperature: number;
  readonly merge: MergeStrategy;
  /** GOLD's hybrid; without it, ULD's sorted L1 over whole rows. */
  readonly hybrid?: HybridOptions;
}

/**
 * One response's ULD (or GOLD hybrid) loss: softmax at each side's temperature, groups by byte spans
 * (pairs with an empty side dropped) merged into rows, the distance of the rows: their mean over the
 * groups, and how many groups there were. Without spans, the first min(n_s, n_t) rows pair up.
 */
export function uldResponseLoss(sequence: UldSequence, options: UldOptions): { readonly loss: tf.Scalar; readonly groups: number } {
  let groups = 0;
  /** Per kept group (with byte spans): one token on each side. */
  let singles: boolean[] | undefined;
  const loss = tf.tidy(() => {
    const studentProbs = tf.softmax(tf.div(sequence.studentLogits, options.studentTemperature)) as tf.Tensor2D;
    const teacherProbs = tf.softmax(tf.div(sequence.teacherLogits, options.teacherTemperature)) as tf.Tensor2D;
    let student: tf.Tensor2D;
    let teacher: tf.Tensor2D;
    if (sequence.studentSpans && sequence.teacherSpans) {
      const kept = pairedGroups(sequence.studentSpans, sequence.teacherSpans);
      groups = kept.length;
      singles = kept.map(([s, t]) => s.length === 1 && t.length === 1);
      if (groups === 0) return tf.mul(tf.sum(sequence.studentLogits), 0) as tf.Scalar;
      student = mergeAligned(
        studentProbs,
        kept.map(([s]) => s),
        sequence.studentTokens,
        options.merge,
      );
      teacher = mergeAligned(
        teacherProbs,
        kept.map(([, t]) => t),
        sequence.teacherTokens,
        options.merge,
      );
    } else {
      groups = Math.min(sequence.studentTokens.length, sequence.teacherTokens.length);
      if (groups === 0) return tf.mul(tf.sum(sequence.studentLogits), 0) as tf.Scalar;
      student = tf.slice(studentProbs, [0, 0], [groups, -1]);
      teacher = tf.slice(teacherProbs, [0, 0], [groups, -1]);
    }
    if (!options.hybrid) return sortedL1(student, teacher);
    if ((options.hybrid.groups ?? 'all') === 'all' || !singles) return hybridUld(student, teacher, options.hybrid);
    // One-to-one groups take the hybrid, the others the sorted L1: the mean over all groups.
    const part = (rows: number[], loss: (s: tf.Tensor2D, t: tf.Tensor2D) => tf.Scalar) => {
      if (rows.length === 0) return tf.scalar(0);
      const at = tf.tensor1d(rows, 'int32');
      return tf.mul(loss(tf.gather(student, at) as tf.Tensor2D, tf.gather(teacher, at) as tf.Tensor2D), rows.length);
    };
    const [one, many] = [singles.flatMap((single, g) => (single ? [g] : [])), singles.flatMap((single, g) => (single ? [] : [g]))];
    const hybrid = options.hybrid;
    return tf.div(
      tf.add(
        part(one, (s, t) => hybridUld(s, t, hybrid)),
        part(many, sortedL1),
      ),
      singles.length,
    ) as tf.Scalar;
  });
  return { loss, groups };
}

/** The ULD (or GOLD hybrid) loss of a batch of responses: the mean of `uldResponseLoss` over them, as TRL's `ULDLoss` reduces. */
export function uldLoss(sequences: readonly UldSequence[], options: UldOptions): tf.Scalar {
  if (sequences.length === 0) throw new SkdError('uldLoss: no sequences');
  return tf.tidy(() => tf.mean(tf.stack(sequences.map((sequence) => uldResponseLoss(sequence, options).loss))) as tf.Scalar);
}

/** The `uld` and `gold` divergences' settings. */
export interface UldDivergenceOptions {
  readonly studentTemperature: number;
  readonly teacherTemperature: number;
  readonly merge: MergeStrategy;
  /** GOLD: the generalised JSD on tokens both vocabularies hold, the sorted L1 on the rest; absent: ULD. */
  readonly hybrid?: {
    readonly beta: number;
    /** Fixed weights of the two parts; absent: the matched share of the teacher's vocabulary, and the rest. */
    readonly weights?: { readonly matched: number; readonly unmatched: number };
    /** Which aligned groups take the hybrid (see HybridOptions.groups); default all. */
    readonly groups?: HybridGroups;
  };
  /** Across tokenizers: leave the end tokens out of the alignment (TRL's default), or keep them as a last group. */
  readonly eos?: 'skip' | 'keep';
  /** Adds this times the student's mean cross-entropy on its own response tokens to each response's value. */
  readonly crossEntropyWeight?: number;
}

/**
 * Universal Logit Distillation (and GOLD's hybrid of it) as a divergence. Across tokenizers (a run
 * with `teacherTokenizer`), `aligned` compares each response's byte-aligned groups. With one shared
 * tokenizer, `perToken` compares each position's two distributions: ULD's sorted L1, or for GOLD the
 * generalised JSD of the probabilities (every token is in both vocabularies; weighted by the matched
 * weight when the weights are fixed). `crossEntropyWeight` adds the student's cross-entropy on the
 * sequence's tokens either way.
 */
export class UldDivergence implements Divergence {
  readonly needsTeacher = true;
  private match: VocabularyMatch | undefined;

  constructor(
    readonly name: string,
    readonly options: UldDivergenceOptions,
  ) {
    for (const key of ['studentTemperature', 'teacherTemperature'] as const) {
      if (!(options[key] > 0)) throw new SkdError(`${name}: ${key} must be positive, got ${options[key]}`);
    }
    const beta = options.hybrid?.beta;
    if (beta !== undefined && !(beta >= 0 && beta <= 1)) throw new SkdError(`${name}: beta must be in [0, 1], got ${beta}`);
    if (!((options.crossEntropyWeight ?? 0) >= 0)) throw new SkdError(`${name}: crossEntropyWeight must be at least 0, got ${options.crossEntropyWeight}`);
  }

  perToken(input: DivergenceInput): tf.Tensor2D {
    const teacher = teacherInput(this.name, input, 'add "teacher" to the config');
    const [B, T, V] = input.studentLogits.shape;
    const { studentTemperature, teacherTemperature, hybrid } = this.options;
    const ceWeight = this.options.crossEntropyWeight ?? 0;
    if (ceWeight > 0 && !input.targets) throw new SkdError(`${this.name}: crossEntropyWeight needs the sequence's targets`);
    return tf.tidy(() => {
      const q = tf.reshape(tf.softmax(tf.div(input.studentLogits, studentTemperature)), [B * T, V]) as tf.Tensor2D;
      const p = tf.reshape(tf.softmax(tf.div(teacher, teacherTemperature)), [B * T, V]) as tf.Tensor2D;
      const distance = hybrid
        ? tf.mul(jsdRows(q, p, hybrid.beta), hybrid.weights?.matched ?? 1)
        : tf.sum(tf.abs(tf.sub(sortedDescending(q), sortedDescending(p))), 1);
      const value = tf.reshape(distance, [B, T]) as tf.Tensor2D;
      return ceWeight > 0 ? (tf.add(value, tf.mul(sparseCrossEntropy(input.studentLogits, input.targets as tf.Tensor2D), ceWeight)) as tf.Tensor2D) : value;
    });
  }

  aligned(responses: readonly AlignedResponse[], vocabularies: () => TokenVocabularies): AlignedLoss {
    const { hybrid, eos, crossEntropyWeight, ...rest } = this.options;
    if (hybrid && !this.match) {
      const { student, teacher } = vocabularies();
      this.match = matchVocabularies(student, teacher);
    }
    const options: UldOptions = {
      ...rest,
      ...(hybrid && this.match
        ? {
            hybrid: {
              match: this.match,
              beta: hybrid.beta,
              ...(hybrid.weights ? { weights: hybrid.weights } : {}),
              ...(hybrid.groups ? { groups: hybrid.groups } : {}),
            },
          }
        : {}),
    };
    const groups: number[] = [];
    const values = tf.tidy(() =>
      tf.stack(
        responses.map((response) => {
          const trimmed = (eos ?? 'skip') === 'skip' && response.ended ? withoutEnd(response) : response;
          const { loss, groups: count } = uldResponseLoss(trimmed, options);
          groups.push(count);
          return withCrossEntropy(loss, response, crossEntropyWeight);
        }),
      ),
    ) as tf.Tensor1D;
    return { values, groups };
  }
}

/** A response's aligned value plus `weight` times the student's mean cross-entropy on its own tokens (none at weight 0). */
export function withCrossEntropy(loss: tf.Scalar, response: AlignedResponse, weight: number | undefined): tf.Scalar {
  if (!weight || response.studentTokens.length === 0) return loss;
  return tf.tidy(() => {
    const targets = tf.tensor1d(response.studentTokens as number[], 'int32');
    return tf.add(loss, tf.mul(tf.mean(sparseCrossEntropy(response.studentLogits, targets)), weight)) as tf.Scalar;
  });
}

/** The response without its end token on either side (it covers no bytes). */
export function withoutEnd(response: AlignedResponse): Omit<AlignedResponse, 'ended'> {
  const [ns, nt] = [response.studentTokens.length - 1, response.teacherTokens.length - 1];
  return {
    studentLogits: tf.slice(response.studentLogits, [0, 0], [ns, -1]),
    teacherLogits: tf.slice(response.teacherLogits, [0, 0], [nt, -1]),
    studentTokens: response.studentTokens.slice(0, ns),
    teacherTokens: response.teacherTokens.slice(0, nt),
    studentSpans: response.studentSpans.slice(0, ns),
    teacherSpans: response.teacherSpans.slice(0, nt),
  };
}
