import * as tf from '@tensorflow/tfjs-core';
import { SkdError, type AlignedLoss, type AlignedResponse, type Divergence, type DivergenceInput } from '@skd/core';
import { sparseCrossEntropy } from '@skd/ops';
import { detached } from './detached';
import { teacherInput } from './teacher-input';
import { pairedGroups, withCrossEntropy, withoutEnd } from './uld';

/**
 * Chunk likelihood matching across tokenizers, after Approximate Likelihood Matching (ALM; Minixhofer,
 * Vulić and Ponti, 2025, arXiv 2503.20083): the two tokenizations of one response are cut into chunks
 * that end where both split at the same byte (the alignment ULD and GOLD use), each side's likelihood of
 * a chunk's text is the chain rule over its own tokens of it, and the two likelihoods are compared as
 * the success probabilities of two coin flips ("this chunk comes next", a binarised divergence). Unlike
 * ULD's sorted probabilities, the comparison is of one named event, the chunk's text, so it says which
 * number the teacher meant whatever the two tokenizers make of it; unlike GOLD's matched tokens, it
 * never compares a token of one side with a different text on the other.
 *
 * The divergence here is the binarised forward KL, KL(Bern(p_T) || Bern(p_S)) per chunk, with the
 * teacher's probability detached, at a temperature T that takes both likelihoods to the power 1/T first
 * (log-likelihoods divided by T). At T = 1 it compares the chunks' probabilities themselves; as T grows
 * it compares their log-likelihoods relative to each other, T times the value tending to
 * (a - b) + a log(b / a) for a = log p_T, b = log p_S, which long chunks' tiny probabilities do not
 * flatten. The authors' released code binarises with a temperature (100 in its default config), skd
 * defaults to 1. The paper's chunk debiasing (dropping chunks whose tokenizations carry different biases
 * about what comes after them) is not built: every byte-aligned chunk counts.
 */
export interface AlmOptions {
  /** Keep each response's end tokens as a last chunk (the probability of ending there), or leave them out. */
  readonly eos: 'skip' | 'keep';
  /** Adds this times the student's mean cross-entropy on its response tokens to each response's value. */
  readonly crossEntropyWeight?: number;
  /** Both chunk log-likelihoods are divided by this before they are binarised (1 when left out). */
  readonly temperature?: number;
}

/**
 * log(1 - e^x) for log-probabilities x <= 0, with 1 - e^x floored at 1e-7 (float32 cannot tell e^x from
 * 1 closer than that; a certain chunk's log-probability rounds to 0): expm1 near 0, log1p below log 1/2.
 */
function logOneMinusExp(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const near = tf.log(tf.maximum(tf.neg(tf.expm1(tf.minimum(x, 0))), 1e-7));
    const far = tf.log1p(tf.neg(tf.exp(tf.minimum(x, -Math.LN2))));
    return tf.where(tf.greater(x, -Math.LN2), near, far);
  });
}

/**
 * The binarised forward KL between chunk log-likelihoods, elementwise: with p = e^teacher and
 * q = e^student, p (log p - log q) + (1 - p) (log(1 - p) - log(1 - q)). Zero where they agree; the
 * gradient in the student's log-likelihood is (q - p) / (1 - q).
 */
export function binarisedKl(teacherLogProb: tf.Tensor, studentLogProb: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const p = tf.exp(teacherLogProb);
    const hit = tf.mul(p, tf.sub(teacherLogProb, studentLogProb));
    const miss = tf.mul(tf.sub(1, p), tf.sub(logOneMinusExp(teacherLogProb), logOneMinusExp(studentLogProb)));
    return tf.add(hit, miss);
  });
}

/**
 * Each chunk's log-likelihood on one side: the log-probabilities of the side's tokens (row k scores
 * token k) summed over each group of positions. Differentiable in `logits`.
 */
export function chunkLogLikelihoods(logits: tf.Tensor2D, tokens: readonly number[], groups: readonly (readonly number[])[]): tf.Tensor1D {
  const n = logits.shape[0];
  if (tokens.length < n) throw new SkdError(`chunkLogLikelihoods: ${tokens.length} token ids for ${n} positions`);
  const segment = new Int32Array(n).fill(groups.length); // positions outside every group go to a dropped segment
  groups.forEach((group, g) => {
    for (const k of group) {
      if (!(k >= 0 && k < n)) throw new SkdError(`chunkLogLikelihoods: a group holds positions outside 0..${n - 1}: ${group.join(', ')}`);
      segment[k] = g;
    }
  });
  return tf.tidy(() => {
    const logProbs = tf.neg(sparseCrossEntropy(logits, tf.tensor1d(tokens.slice(0, n) as number[], 'int32'))); // (n)
    const sums = tf.unsortedSegmentSum(logProbs, tf.tensor1d(segment, 'int32'), groups.length + 1);
    return tf.slice(sums, [0], [groups.length]) as tf.Tensor1D;
  });
}

/**
 * One response's chunk likelihood matching: the byte-aligned groups with tokens on both sides, each
 * side's log-likelihood of each, the binarised KL of the pair: their mean over the chunks, and how many
 * chunks there were (0: the value is 0, still connected to the student's logits).
 */
export function almResponseLoss(response: Omit<AlignedResponse, 'ended'>, temperature = 1): { readonly loss: tf.Scalar; readonly chunks: number } {
  const kept = pairedGroups(response.studentSpans, response.teacherSpans);
  const loss = tf.tidy(() => {
    if (kept.length === 0) return tf.mul(tf.sum(response.studentLogits), 0) as tf.Scalar;
    const student = chunkLogLikelihoods(
      response.studentLogits,
      response.studentTokens,
      kept.map(([s]) => s),
    );
    const teacher = chunkLogLikelihoods(
      response.teacherLogits,
      response.teacherTokens,
      kept.map(([, t]) => t),
    );
    return tf.mean(binarisedKl(tf.div(detached(teacher), temperature), tf.div(student, temperature))) as tf.Scalar;
  });
  return { loss, chunks: kept.length };
}

/**
 * The `alm` divergence. Across tokenizers (`aligned`) it compares each response's byte-aligned chunks;
 * with one tokenizer (`perToken`) every token is its own chunk, so it compares the two models'
 * probabilities of the sequence's next token at each position.
 */
export class AlmDivergence implements Divergence {
  readonly name = 'alm';
  readonly needsTeacher = true;

  constructor(readonly options: AlmOptions) {
    if (!((options.crossEntropyWeight ?? 0) >= 0)) throw new SkdError(`alm: crossEntropyWeight must be at least 0, got ${options.crossEntropyWeight}`);
    const temperature = options.temperature ?? 1;
    if (!(temperature > 0 && Number.isFinite(temperature))) throw new SkdError(`alm: temperature must be a positive number, got ${options.temperature}`);
  }

  perToken(input: DivergenceInput): tf.Tensor2D {
    const teacher = teacherInput(this.name, input, 'add "teacher" to the config');
    if (!input.targets) throw new SkdError("alm: needs the sequence's targets (the tokens whose probabilities it compares)");
    const targets = input.targets;
    const ceWeight = this.options.crossEntropyWeight ?? 0;
    const temperature = this.options.temperature ?? 1;
    return tf.tidy(() => {
      const studentCe = sparseCrossEntropy(input.studentLogits, targets); // (B, T): -log q
      const teacherCe = detached(sparseCrossEntropy(teacher, targets));
      const value = binarisedKl(tf.div(teacherCe, -temperature), tf.div(studentCe, -temperature)) as tf.Tensor2D;
      return ceWeight > 0 ? (tf.add(value, tf.mul(studentCe, ceWeight)) as tf.Tensor2D) : value;
    });
  }

  aligned(responses: readonly AlignedResponse[]): AlignedLoss {
    const { eos, crossEntropyWeight, temperature } = this.options;
    const groups: number[] = [];
    const values = tf.tidy(() =>
      tf.stack(
        responses.map((response) => {
          const { loss, chunks } = almResponseLoss(eos === 'skip' && response.ended ? withoutEnd(response) : response, temperature);
          groups.push(chunks);
          return withCrossEntropy(loss, response, crossEntropyWeight);
        }),
      ),
    ) as tf.Tensor1D;
    return { values, groups };
  }
}
