import * as tf from '@tensorflow/tfjs-core';
import { ShapeError, SkdError, type Divergence, type DivergenceInput } from '@skd/core';
import { logSoftmax, sparseCrossEntropy } from '@skd/ops';
import { type LogProbDivergence } from './divergences';
import { bucketize, compressTeacher } from './sparse';

export interface TokenDivergenceArgs {
  readonly name: string;
  readonly fn: LogProbDivergence;
  /** Divides teacher and student logits before the softmax. */
  readonly temperature?: number;
  /** Multiplies the values by temperature^2 (keeps gradient scale comparable across temperatures). */
  readonly scaleByTemperatureSquared?: boolean;
  /** Compare over the teacher's top-k tokens plus one tail bucket instead of the full vocabulary. */
  readonly sparseTopK?: number;
}

/**
 * A divergence between teacher and student next-token distributions at every position:
 * logits (B, T, V) → values (B, T). Masking and reduction happen in `tokenLoss`.
 */
export class TokenDivergence implements Divergence {
  readonly needsTeacher = true;
  readonly name: string;
  private readonly temperature: number;

  constructor(private readonly args: TokenDivergenceArgs) {
    this.name = args.name;
    this.temperature = args.temperature ?? 1;
    if (!(this.temperature > 0)) throw new SkdError(`temperature must be > 0, got ${this.temperature}`);
    if (args.sparseTopK !== undefined && !(Number.isInteger(args.sparseTopK) && args.sparseTopK >= 1)) {
      throw new SkdError(`sparseTopK must be an integer >= 1, got ${args.sparseTopK}`);
    }
  }

  perToken(input: DivergenceInput): tf.Tensor2D {
    const { studentLogits } = input;
    checkRank3('student logits', studentLogits);
    return tf.tidy(() => {
      const logP = this.teacherLogProbs(input, studentLogits.shape); // (B, T, V)
      const { fn, sparseTopK } = this.args;
      // The student's log-probs are materialised only where no fused or closed-form path takes the logits.
      const needsLogQ = sparseTopK !== undefined || (!fn.fromLogits && !fn.studentGrad);
      const logQ = needsLogQ ? logSoftmax(this.scaled(studentLogits)) : undefined; // (B, T, V)
      let values: tf.Tensor;
      if (sparseTopK !== undefined) {
        const k = Math.min(sparseTopK, logP.shape[2]);
        const buckets = bucketize(compressTeacher(logP, k), logQ as tf.Tensor3D); // (B, T, k+1) each
        values = fn(buckets.logP, buckets.logQ); // (B, T)
      } else if (fn.fromLogits) {
        values = fn.fromLogits(logP, this.scaled(studentLogits)); // (B, T)
      } else if (fn.studentGrad) {
        values = closedFormDivergence(fn, logP, this.scaled(studentLogits)); // (B, T)
      } else {
        values = fn(logP, logQ as tf.Tensor3D); // (B, T)
      }
      if (this.args.scaleByTemperatureSquared) values = tf.mul(values, this.temperature ** 2);
      return values as tf.Tensor2D;
    });
  }

  private scaled(logits: tf.Tensor3D): tf.Tensor3D {
    return this.temperature === 1 ? logits : (tf.div(logits, this.temperature) as tf.Tensor3D);
  }

  private teacherLogProbs(input: DivergenceInput, shape: readonly number[]): tf.Tensor3D {
    if (input.teacherLogits) {
      checkSame('teacher logits', input.teacherLogits.shape, shape);
      return logSoftmax(this.scaled(input.teacherLogits));
    }
    if (input.teacherLogProbs) {
      checkSame('teacher log-probs', input.teacherLogProbs.shape, shape);
      // Cached log-probs were taken at temperature 1; re-temper them (log-softmax of logP / tau).
      return this.temperature === 1 ? input.teacherLogProbs : logSoftmax(this.scaled(input.teacherLogProbs));
    }
    throw new SkdError(`divergence "${this.name}" needs teacher logits or cached teacher log-probs`, {
      hint: 'add teacher to the config, or set divergence.kind: "cross-entropy" for supervised fine-tuning',
    });
  }
}

/** Cross-entropy to the next tokens: -log Q(target). Supervised fine-tuning; no teacher. */
export class CrossEntropy implements Divergence {
  readonly name = 'cross-entropy';
  readonly needsTeacher = false;

  perToken(input: DivergenceInput): tf.Tensor2D {
    const { studentLogits, targets } = input;
    checkRank3('student logits', studentLogits);
    if (!targets) throw new SkdError('cross-entropy needs next-token targets');
    const [B, T] = studentLogits.shape;
    checkSame('targets', targets.shape, [B, T]);
    return sparseCrossEntropy(studentLogits, targets) as tf.Tensor2D; // (B, T)
  }
}

function checkRank3(what: string, t: tf.Tensor): void {
  if (t.rank !== 3) throw new ShapeError(what, '(B, T, V)', t.shape);
}

function checkSame(what: string, actual: readonly number[], expected: readonly number[]): void {
  if (actual.length !== expected.length || actual.some((d, i) => d !== expected[i])) {
    throw new ShapeError(what, `[${expected.join(', ')}] (like the student logits)`, actual);
  }
}

/**
 * Value from `fn`, gradient in the (tempered) student logits from `fn.studentGrad`. Only the
 * student logits and teacher log-probs are kept for backprop; the teacher gets no gradient (frozen).
 */
function closedFormDivergence(fn: LogProbDivergence, logP: tf.Tensor3D, studentLogits: tf.Tensor3D): tf.Tensor2D {
  const studentGrad = fn.studentGrad as NonNullable<LogProbDivergence['studentGrad']>;
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [s, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([s, logP]);
    const value = tf.tidy(() => fn(logP, logSoftmax(s))); // (B, T)
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [x, teacher] = saved as [tf.Tensor, tf.Tensor];
        return tf.mul(tf.expandDims(dy, -1), studentGrad(teacher, logSoftmax(x))); // (B, T, V)
      },
    };
  });
  return run(studentLogits) as tf.Tensor2D;
}
