import * as tf from '@tensorflow/tfjs-core';
import { SkdError, type Divergence, type DivergenceFeedback, type DivergenceInput, type JsonValue } from '@skd/core';
import { forwardKlFromLogits, logSoftmax } from '@skd/ops';
import { detached } from './detached';
import { teacherInput } from './teacher-input';

/** TAID's settings (Shing et al., ICLR 2025); the defaults are the authors' released code's. */
export interface TaidOptions {
  /** The interpolation weight at the first step. */
  readonly tStart: number;
  /** Its ceiling, and where the linear floor ends at the last step. */
  readonly tEnd: number;
  /** Step size of the adaptive increase. */
  readonly alpha: number;
  /** Momentum of the loss's relative change. */
  readonly beta: number;
  /** false: t follows the linear floor from tStart to tEnd alone. */
  readonly adaptive: boolean;
  /**
   * What the per-token value (and so the loss the schedule reads) is: `kl`, KL(p_t || q) as the paper
   * writes the objective; or `cross-entropy`, -sum p_t log q as the authors' released code reports it
   * (the same gradient; the values differ by the entropy of p_t).
   */
  readonly objective: 'kl' | 'cross-entropy';
}

export const TAID_DEFAULTS: TaidOptions = { tStart: 0.4, tEnd: 1, alpha: 5e-4, beta: 0.99, adaptive: true, objective: 'kl' };

/** What TAID's schedule carries from step to step. */
export interface TaidState {
  readonly t: number;
  /** Momentum of the relative change of the loss. */
  readonly momentum: number;
  /** The last step's loss; null before the first. */
  readonly previousLoss: number | null;
}

/**
 * TAID: Temporally Adaptive Interpolated Distillation. The student is trained toward an intermediate
 * distribution p_t = softmax((1 - t) s' + t l_T), where s' are the student's own logits, detached (no
 * gradient reaches the student through the target), and l_T the teacher's logits (its log-probabilities
 * give the same p_t: a per-position constant leaves a softmax unchanged). The per-token value is
 * KL(p_t || softmax(s)) and its gradient in the student's logits softmax(s) - p_t.
 *
 * t starts at tStart and rises after every optimizer step n (counted from 0) with loss J_n:
 *   delta_n = (J_{n-1} - J_n) / (J_{n-1} + 1e-15),  m_n = beta m_{n-1} + (1 - beta) delta_n,
 *   t <- min(tEnd, max(tStart + (tEnd - tStart) n / N, t + alpha sigmoid(m_n) (1 - t)))
 * (N the run's steps; the first step only records J_0). So t never falls below the linear floor, and
 * rises faster while the loss is falling fast. With `adaptive: false`, t is the floor alone.
 */
export class TaidDivergence implements Divergence {
  readonly name = 'taid';
  readonly needsTeacher = true;
  readonly options: TaidOptions;
  private state: TaidState;

  constructor(options: Partial<TaidOptions> = {}) {
    this.options = { ...TAID_DEFAULTS, ...options };
    const { tStart, tEnd, alpha, beta } = this.options;
    if (!(tStart >= 0 && tStart < 1)) throw new SkdError(`taid: tStart must be in [0, 1), got ${tStart}`);
    if (!(tEnd > 0 && tEnd <= 1)) throw new SkdError(`taid: tEnd must be in (0, 1], got ${tEnd}`);
    if (!(tEnd >= tStart)) throw new SkdError(`taid: tEnd (${tEnd}) must be at least tStart (${tStart})`);
    if (!(alpha >= 0 && alpha <= 1)) throw new SkdError(`taid: alpha must be in [0, 1], got ${alpha}`);
    if (!(beta >= 0 && beta < 1)) throw new SkdError(`taid: beta must be in [0, 1), got ${beta}`);
    this.state = { t: tStart, momentum: 0, previousLoss: null };
  }

  /** The interpolation weight the next step uses. */
  get t(): number {
    return this.state.t;
  }

  perToken(input: DivergenceInput): tf.Tensor2D {
    const { studentLogits } = input;
    const teacher = teacherInput('taid', input, 'add teacher to the config, or set divergence.kind: "cross-entropy" for supervised fine-tuning');
    const { t } = this.state;
    return tf.tidy(() => {
      // The target, from the student's logits detached: no gradient flows back through it.
      const target = logSoftmax(tf.add(tf.mul(detached(studentLogits), 1 - t), tf.mul(teacher, t))); // (B, T, V)
      const kl = forwardKlFromLogits(target, studentLogits) as tf.Tensor2D; // (B, T)
      if (this.options.objective === 'kl') return kl;
      // Cross-entropy = KL + H(p_t); the entropy is a constant to the student's gradient.
      const entropy = tf.neg(tf.sum(tf.mul(tf.exp(target), target), -1)); // (B, T)
      return tf.add(kl, entropy) as tf.Tensor2D;
    });
  }

  observe({ step, totalSteps, loss }: DivergenceFeedback): void {
    if (!Number.isFinite(loss)) return;
    const { tStart, tEnd, alpha, beta, adaptive } = this.options;
    const previous = this.state.previousLoss;
    if (previous === null) {
      this.state = { ...this.state, previousLoss: loss };
      return;
    }
    const change = (previous - loss) / (previous + 1e-15);
    const momentum = beta * this.state.momentum + (1 - beta) * change;
    const floor = tStart + ((tEnd - tStart) * step) / Math.max(totalSteps, 1);
    const rise = alpha * sigmoid(momentum) * (1 - this.state.t);
    const t = adaptive ? Math.min(tEnd, Math.max(floor, this.state.t + rise)) : Math.min(tEnd, floor);
    this.state = { t, momentum, previousLoss: loss };
  }

  stats(): Readonly<Record<string, number>> {
    return { t: this.state.t };
  }

  getState(): JsonValue {
    return { ...this.state };
  }

  setState(state: JsonValue): void {
    const s = state as Partial<TaidState> | null;
    if (!s || typeof s.t !== 'number' || typeof s.momentum !== 'number' || !(s.previousLoss === null || typeof s.previousLoss === 'number')) {
      throw new SkdError(`taid: not a saved TAID state: ${JSON.stringify(state)}`);
    }
    this.state = { t: s.t, momentum: s.momentum, previousLoss: s.previousLoss };
  }
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}
