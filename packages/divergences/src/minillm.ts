import * as tf from '@tensorflow/tfjs-core';
import { SkdError, type Divergence, type DivergenceInput } from '@skd/core';
import { klFromLogProbs, logSoftmax, sparseCrossEntropy } from '@skd/ops';
import { detached } from './detached';
import { teacherInput } from './teacher-input';

/** MiniLLM's settings, named after TRL's `MiniLLMConfig` fields; the defaults are TRL's. */
export interface MiniLlmOptions {
  /** Divides teacher and student logits before the softmax (`kd_temperature`). */
  readonly temperature: number;
  /** Discount of later tokens' rewards (`gamma`); 0: each token's reward alone. */
  readonly gamma: number;
  /** Divide the discounted reward by the discounted count of tokens it sums (`length_normalization`). */
  readonly lengthNormalization: boolean;
  /** The policy-gradient term with the reverse-KL reward (`rkl_advantage`). */
  readonly rklAdvantage: boolean;
  /** The single-step term: the exact reverse KL of each position's next-token distribution (`single_step_decomposition`). */
  readonly singleStep: boolean;
  /**
   * `fixed`: the reward is a constant to the gradient, as a policy gradient takes it. `through`: the
   * student's log-probability inside the reward keeps its gradient, as TRL's trainer computes it (its
   * reward is built from the student's outputs with their graph); the values are the same.
   */
  readonly rewardGradient: 'fixed' | 'through';
}

export const MINILLM_DEFAULTS: MiniLlmOptions = {
  temperature: 1,
  gamma: 0,
  lengthNormalization: true,
  rklAdvantage: true,
  singleStep: true,
  rewardGradient: 'fixed',
};

/**
 * MiniLLM (Gu et al., ICLR 2024): sequence-level reverse KL, KL(q_student || p_teacher) over whole
 * responses, trained by policy gradient on the student's own samples (pair it with an on-policy
 * sampler). Each sampled token y_t earns the reward r_t = log p(y_t) - log q(y_t); its advantage is
 *   A_t = sum_{i >= t} gamma^(i - t) r_i, divided by sum_{i >= t} gamma^(i - t) m_i with length normalisation
 * (m_i the loss mask, 1e-4 where it is 0; with gamma 0, A_t = r_t). The per-token value is
 *   -A_t (policy term; its gradient -A_t grad log q(y_t), the reward held fixed)
 *   + KL(q_t || p_t) over the vocabulary (single-step term; its exact gradient),
 * so a batch's loss, the mean over its targets, is TRL's `MiniLLMTrainer` loss on the same logits
 * (on-policy, one iteration per generation, the GRPO reward absent).
 */
export class MiniLlmDivergence implements Divergence {
  readonly name = 'minillm';
  readonly needsTeacher = true;
  readonly options: MiniLlmOptions;

  constructor(options: Partial<MiniLlmOptions> = {}) {
    this.options = { ...MINILLM_DEFAULTS, ...options };
    const { temperature, gamma, rklAdvantage, singleStep } = this.options;
    if (!(temperature > 0)) throw new SkdError(`minillm: temperature must be > 0, got ${temperature}`);
    if (!(gamma >= 0 && gamma <= 1)) throw new SkdError(`minillm: gamma must be in [0, 1], got ${gamma}`);
    if (!rklAdvantage && !singleStep)
      throw new SkdError('minillm: rklAdvantage and singleStep are both off, so there is no loss', { hint: 'turn one of them on' });
  }

  perToken(input: DivergenceInput): tf.Tensor2D {
    const { studentLogits, targets, lossMask } = input;
    const teacher = teacherInput('minillm', input, 'add teacher to the config; MiniLLM distils a teacher on the student\'s samples (sampler "on-policy")');
    const [B, T, V] = studentLogits.shape;
    if (!targets) throw new SkdError('minillm needs the sampled tokens (targets)');
    const { temperature, gamma, lengthNormalization, rklAdvantage, singleStep } = this.options;
    if (rklAdvantage && gamma > 0 && !lossMask) {
      throw new SkdError("minillm with gamma > 0 sums each response's later rewards, so it needs whole sequences", {
        hint: 'unset training.lossChunk (the chunked loss takes positions apart), or set divergence.options.gamma to 0',
      });
    }
    return tf.tidy(() => {
      const scale = (x: tf.Tensor3D) => (temperature === 1 ? x : (tf.div(x, temperature) as tf.Tensor3D));
      const logP = logSoftmax(scale(teacher)); // (B, T, V); cached log-probs re-tempered the same way
      let value = tf.zeros([B, T]) as tf.Tensor2D;
      if (rklAdvantage) {
        // log q(y_t) by the fused cross-entropy (no (B, T, V) one-hot); log p(y_t) read from the flattened rows.
        const chosenQ = tf.neg(sparseCrossEntropy(scale(studentLogits), targets)) as tf.Tensor2D; // (B, T)
        const at = tf.add(tf.range(0, B * T * V, V, 'int32'), tf.reshape(tf.cast(targets, 'int32'), [B * T])); // (B*T)
        const chosenP = tf.reshape(tf.gather(tf.reshape(logP, [B * T * V]), at), [B, T]) as tf.Tensor2D; // (B, T)
        const mask: tf.Tensor2D = lossMask ? tf.cast(lossMask, 'float32') : tf.onesLike(chosenQ);
        const fixedQ = detached(chosenQ);
        const ownQ = this.options.rewardGradient === 'through' ? chosenQ : fixedQ;
        const reward = tf.mul(tf.sub(detached(chosenP), ownQ), mask) as tf.Tensor2D; // (B, T)
        const advantage = gamma > 0 ? discounted(reward, mask, gamma, lengthNormalization) : reward; // (B, T)
        // exp(log q - stop(log q)) is 1 with gradient grad log q: the policy gradient's surrogate.
        value = tf.add(value, tf.neg(tf.mul(advantage, tf.exp(tf.sub(chosenQ, fixedQ))))) as tf.Tensor2D;
      }
      if (singleStep) value = tf.add(value, klFromLogProbs(logSoftmax(scale(studentLogits)), logP)) as tf.Tensor2D; // KL(q_t || p_t)
      return value;
    });
  }
}

/**
 * sum_{i >= t} gamma^(i - t) r_i per row, divided with length normalisation by sum_{i >= t} gamma^(i - t) m'_i
 * (m' the mask with its zeros raised to 1e-4, as MiniLLM's reference does, and 0 at the last column, which
 * predicts nothing): one (T, T) product each.
 */
function discounted(reward: tf.Tensor2D, mask: tf.Tensor2D, gamma: number, lengthNormalization: boolean): tf.Tensor2D {
  const T = reward.shape[1];
  const weights = new Float32Array(T * T); // weights[i, t] = gamma^(i - t) for i >= t
  for (let i = 0; i < T; i++) for (let t = 0; t <= i; t++) weights[i * T + t] = gamma ** (i - t);
  const future = tf.tensor2d(weights, [T, T]);
  const sums = tf.matMul(reward, future) as tf.Tensor2D; // (B, T)
  if (!lengthNormalization) return sums;
  // The last column predicts nothing in any layout (TRL's completion window ends before it): weight 0.
  const raised = tf.where(tf.less(mask, 0.5), tf.fill(mask.shape, 1e-4), mask);
  const lastOff = tf.concat([tf.ones([1, T - 1]), tf.zeros([1, 1])], 1);
  const lengths = tf.matMul(tf.mul(raised, lastOff), future) as tf.Tensor2D; // (B, T)
  return tf.div(sums, lengths) as tf.Tensor2D;
}
