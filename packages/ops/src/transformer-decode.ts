import * as tf from '@tensorflow/tfjs-core';
import { hasKernel, KERNELS, runKernel } from './kernels';
import type { DecodeStep } from './kv-cache';

/**
 * The weights of a pre-LayerNorm GPT (GPT-2's layout): token embedding (V, d), learned position
 * embedding (context, d) or none (rotary), per block [ln_1 w, ln_1 b, c_attn w (d, 3d), c_attn b,
 * c_proj w (d, d), c_proj b, ln_2 w, ln_2 b, c_fc w (d, ff), c_fc b, mlp c_proj w (ff, d),
 * mlp c_proj b], the final LayerNorm, and the head (V, d).
 */
export interface TransformerWeights {
  readonly embedding: tf.Tensor;
  readonly positions: tf.Tensor | undefined;
  readonly blocks: readonly (readonly tf.Tensor[])[];
  readonly finalNorm: readonly [tf.Tensor, tf.Tensor];
  readonly head: tf.Tensor;
}

export interface TransformerDecodeOptions {
  readonly heads: number;
  readonly epsilon: number;
  /** Logits of each row's last slot only: (B, 1, V) instead of (B, S, V). */
  readonly lastOnly: boolean;
}

/**
 * One decode step of the whole network in a single kernel call, over the native KV cache: tokens
 * (B, S) → logits (B, S or 1, V). Returns undefined where that is not available (no kernel, or a
 * portable cache): the caller then runs its op-by-op forward, which computes the same function.
 *
 * Kernel `SkdTransformerDecode`: inputs { tokens, positions (B, S) int32, lengths, mask, p0..pN (the
 * weights in TransformerWeights order), k0.., v0.. (the caches) }, attrs { layers, heads, dModel,
 * dFf, vocab, capacity, contextRows, epsilon, rotary, lastOnly }.
 */
export function transformerDecode(step: DecodeStep, tokens: tf.Tensor2D, weights: TransformerWeights, options: TransformerDecodeOptions): tf.Tensor3D | undefined {
  const native = step.native;
  if (!native || !hasKernel(KERNELS.transformerDecode)) return undefined;
  const [B, S] = tokens.shape;
  const [vocab, dModel] = weights.embedding.shape as [number, number];
  const params = [weights.embedding, ...(weights.positions ? [weights.positions] : []), ...weights.blocks.flat(), ...weights.finalNorm, weights.head];
  const positions = tf.tensor2d(step.positions, [B, S], 'int32');
  const inputs: Record<string, tf.Tensor> = { tokens: tokens.dtype === 'int32' ? tokens : tf.cast(tokens, 'int32'), positions, lengths: native.lengths, mask: native.mask };
  params.forEach((p, i) => (inputs[`p${i}`] = p));
  native.keys.forEach((k, i) => (inputs[`k${i}`] = k));
  native.values.forEach((v, i) => (inputs[`v${i}`] = v));
  try {
    const logits = runKernel<tf.Tensor>(KERNELS.transformerDecode, inputs, {
      layers: weights.blocks.length,
      heads: options.heads,
      dModel,
      dFf: (weights.blocks[0]?.[9]?.shape[0] as number | undefined) ?? 4 * dModel,
      vocab,
      capacity: native.keys[0]?.shape[2] ?? 0,
      contextRows: weights.positions?.shape[0] ?? 0,
      epsilon: options.epsilon,
      rotary: weights.positions === undefined,
      lastOnly: options.lastOnly,
      parameterCount: params.length,
    });
    const out = tf.reshape(logits, [B, options.lastOnly ? 1 : S, vocab]) as tf.Tensor3D; // (B, S or 1, V)
    logits.dispose();
    return out;
  } finally {
    positions.dispose();
    if (inputs['tokens'] !== tokens) inputs['tokens']?.dispose();
  }
}
