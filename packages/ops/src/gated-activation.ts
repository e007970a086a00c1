import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '@skd/core';
import { hasKernel, KERNELS, runKernel } from './kernels';

/** The activation of a gated MLP's gate: SwiGLU's SiLU, GeGLU's exact (erf) or tanh GELU. */
export type GateActivation = 'silu' | 'gelu' | 'gelu_tanh';

export const GATE_ACTIVATIONS: readonly GateActivation[] = ['silu', 'gelu', 'gelu_tanh'];

const GELU_C = Math.sqrt(2 / Math.PI);

/**
 * A gated MLP's hidden layer from packed projections: x (N, 2f) holding gate | up per row →
 * act(gate) * up (N, f). SwiGLU (Llama, Qwen2) with `silu`, GeGLU (Gemma) with a GELU.
 *
 * Kernel `SkdGatedActivation`: inputs { x }, attrs { activation: 0 silu, 1 gelu, 2 gelu_tanh } → y;
 * `SkdGatedActivationGrad`: inputs { dy, x }, same attrs → dx (N, 2f).
 */
export function gatedActivation(x: tf.Tensor2D, activation: GateActivation): tf.Tensor2D {
  if (x.shape[1] % 2 !== 0) throw new ShapeError('gated activation input', '(N, 2 * hidden)', x.shape);
  if (!hasKernel(KERNELS.gatedActivation)) return gatedActivationComposite(x, activation);
  const attrs = { activation: GATE_ACTIVATIONS.indexOf(activation) };
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    save([xs]);
    return {
      value: runKernel<tf.Tensor2D>(KERNELS.gatedActivation, { x: xs }, attrs),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => runKernel<tf.Tensor>(KERNELS.gatedActivationGrad, { dy, x: saved[0] as tf.Tensor }, attrs),
    };
  });
  return op(x) as tf.Tensor2D;
}

/** The composite form (any backend). */
export function gatedActivationComposite(x: tf.Tensor2D, activation: GateActivation): tf.Tensor2D {
  return tf.tidy(() => {
    const [gate, up] = tf.split(x, 2, 1) as [tf.Tensor2D, tf.Tensor2D]; // (N, f) each
    return tf.mul(activate(gate, activation), up) as tf.Tensor2D; // (N, f)
  });
}

function activate(x: tf.Tensor2D, activation: GateActivation): tf.Tensor2D {
  switch (activation) {
    case 'silu':
      return tf.mul(x, tf.sigmoid(x));
    case 'gelu':
      return tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
    case 'gelu_tanh':
      return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(tf.mul(GELU_C, tf.add(x, tf.mul(0.044715, tf.mul(x, tf.mul(x, x))))))));
  }
}
