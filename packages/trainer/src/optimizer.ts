import * as tf from '@tensorflow/tfjs-core';
import { SkdError } from '@skd/core';
import { adamWUpdate } from '@skd/ops';

export interface AdamWOptions {
  readonly learningRate: number;
  readonly weightDecay: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
}

/**
 * AdamW (decoupled weight decay, as PyTorch's): p <- p (1 - lr wd), then the bias-corrected Adam
 * step. Decay applies to matrices only (rank >= 2), not to biases or LayerNorm gains. Its moments
 * are plain tensors that checkpoints save and restore.
 */
export class AdamW {
  private t = 0;
  private readonly m: tf.Tensor[];
  private readonly v: tf.Tensor[];

  constructor(
    private readonly variables: readonly tf.Variable[],
    private readonly options: AdamWOptions,
  ) {
    this.m = variables.map((x) => tf.keep(tf.zerosLike(x)));
    this.v = variables.map((x) => tf.keep(tf.zerosLike(x)));
  }

  get stepCount(): number {
    return this.t;
  }

  /** Applies one update with gradients in variable order. */
  apply(grads: readonly tf.Tensor[], learningRate: number): void {
    if (grads.length !== this.variables.length) throw new SkdError(`AdamW got ${grads.length} gradients for ${this.variables.length} variables`);
    this.t += 1;
    const { beta1, beta2, epsilon, weightDecay } = this.options;
    const c1 = 1 - Math.pow(beta1, this.t);
    const c2 = 1 - Math.pow(beta2, this.t);
    this.variables.forEach((variable, i) => {
      const decay = variable.rank >= 2 ? weightDecay : 0;
      const [p, m, v] = adamWUpdate(
        variable,
        grads[i] as tf.Tensor,
        this.m[i] as tf.Tensor,
        this.v[i] as tf.Tensor,
        {
          learningRate,
          beta1,
          beta2,
          epsilon,
          weightDecay: decay,
          correction1: c1,
          correction2: c2,
        },
        // The old values are dropped right below: the kernel may write the new ones over them.
        { inPlace: true },
      );
      variable.assign(p);
      p.dispose();
      (this.m[i] as tf.Tensor).dispose();
      (this.v[i] as tf.Tensor).dispose();
      this.m[i] = tf.keep(m);
      this.v[i] = tf.keep(v);
    });
  }

  /** Moments by index, plus the step count (for checkpoints). */
  state(): { step: number; tensors: Map<string, tf.Tensor> } {
    const tensors = new Map<string, tf.Tensor>();
    this.m.forEach((t, i) => tensors.set(`adam/m/${String(i).padStart(4, '0')}`, t));
    this.v.forEach((t, i) => tensors.set(`adam/v/${String(i).padStart(4, '0')}`, t));
    return { step: this.t, tensors };
  }

  load(step: number, tensors: ReadonlyMap<string, tf.Tensor>): void {
    this.t = step;
    this.variables.forEach((variable, i) => {
      for (const [moments, key] of [
        [this.m, 'm'],
        [this.v, 'v'],
      ] as const) {
        const saved = tensors.get(`adam/${key}/${String(i).padStart(4, '0')}`);
        if (!saved || saved.shape.join() !== variable.shape.join()) {
          throw new SkdError(`optimizer state lacks a matching adam/${key} for variable ${i} (shape [${variable.shape.join(', ')}])`);
        }
        (moments[i] as tf.Tensor).dispose();
        moments[i] = tf.keep(tf.clone(saved));
      }
    });
  }

  dispose(): void {
    [...this.m, ...this.v].forEach((t) => t.dispose());
  }
}

/** Learning rate at a step: linear warmup from 0, then constant, linear or cosine decay to 0. */
export function learningRateAt(
  step: number,
  totalSteps: number,
  options: { learningRate: number; warmupSteps: number; schedule: 'constant' | 'linear' | 'cosine' },
): number {
  const { learningRate: lr, warmupSteps: warmup, schedule } = options;
  if (step < warmup) return (lr * (step + 1)) / warmup;
  if (schedule === 'constant') return lr;
  const progress = Math.min(1, (step - warmup) / Math.max(1, totalSteps - warmup));
  return schedule === 'linear' ? lr * (1 - progress) : lr * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/**
 * Scales gradients so their global L2 norm is at most `maxNorm` (0: no clipping); returns the norm
 * before clipping. Reads the norm asynchronously: a GPU backend (WebGPU) cannot read synchronously.
 */
export async function clipByGlobalNorm(grads: tf.Tensor[], maxNorm: number): Promise<{ grads: tf.Tensor[]; norm: number }> {
  // Summed one by one, not with addN: WebGPU binds every input of a kernel at once, and a model's
  // hundreds of gradients exceed its limit on storage buffers per shader stage (8 to 16).
  const normTensor = tf.tidy(() => tf.sqrt(grads.map((g) => tf.sum(tf.square(g))).reduce((a, b) => tf.add(a, b))));
  const norm = (await normTensor.data())[0] as number;
  normTensor.dispose();
  if (!(maxNorm > 0) || norm <= maxNorm || !Number.isFinite(norm)) return { grads, norm };
  const scale = maxNorm / (norm + 1e-6);
  const clipped = grads.map((g) => tf.mul(g, scale));
  grads.forEach((g) => g.dispose());
  return { grads: clipped, norm };
}
