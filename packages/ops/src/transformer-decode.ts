import * as tf from '@tensorflow/tfjs-core';
import { NonFiniteError, SkdError, type GenerationLoop } from '@skd/core';
import { hasKernel, KERNELS, runKernel } from './kernels';
import type { DecodeStep, KvCache } from './kv-cache';
import { checkSampling } from './sampling';

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
export function transformerDecode(
  step: DecodeStep,
  tokens: tf.Tensor2D,
  weights: TransformerWeights,
  options: TransformerDecodeOptions,
): tf.Tensor3D | undefined {
  const native = step.native;
  if (!native || !hasKernel(KERNELS.transformerDecode)) return undefined;
  const [B, S] = tokens.shape;
  const model = modelInputs(weights, native.keys, native.values, options);
  const positions = tf.tensor2d(step.positions, [B, S], 'int32');
  const inputs: Record<string, tf.Tensor> = {
    ...model.inputs,
    tokens: tokens.dtype === 'int32' ? tokens : tf.cast(tokens, 'int32'),
    positions,
    lengths: native.lengths,
    mask: native.mask,
  };
  try {
    const logits = runKernel<tf.Tensor>(KERNELS.transformerDecode, inputs, { ...model.attrs, lastOnly: options.lastOnly });
    const out = tf.reshape(logits, [B, options.lastOnly ? 1 : S, model.attrs.vocab]) as tf.Tensor3D; // (B, S or 1, V)
    logits.dispose();
    return out;
  } finally {
    positions.dispose();
    if (inputs['tokens'] !== tokens) inputs['tokens']?.dispose();
  }
}

/** The weights and caches as named kernel inputs, and the shape attributes both kernels take. */
function modelInputs(
  weights: TransformerWeights,
  keys: readonly tf.Tensor[],
  values: readonly tf.Tensor[],
  options: { readonly heads: number; readonly epsilon: number },
) {
  const [vocab, dModel] = weights.embedding.shape as [number, number];
  const params = [weights.embedding, ...(weights.positions ? [weights.positions] : []), ...weights.blocks.flat(), ...weights.finalNorm, weights.head];
  const inputs: Record<string, tf.Tensor> = {};
  params.forEach((p, i) => (inputs[`p${i}`] = p));
  keys.forEach((k, i) => (inputs[`k${i}`] = k));
  values.forEach((v, i) => (inputs[`v${i}`] = v));
  const attrs = {
    layers: weights.blocks.length,
    heads: options.heads,
    dModel,
    dFf: (weights.blocks[0]?.[9]?.shape[0] as number | undefined) ?? 4 * dModel,
    vocab,
    capacity: values[0]?.shape[2] ?? 0,
    contextRows: weights.positions?.shape[0] ?? 0,
    epsilon: options.epsilon,
    rotary: weights.positions === undefined,
    parameterCount: params.length,
  };
  return { inputs, attrs };
}

/**
 * A whole generation loop in one kernel call over the native KV cache: each live row chooses a
 * token (temperature, top-k, top-p or greedy, as `chooseTokenWith`), reads it back in and goes on,
 * until EOS, its budget or `steps`; the token a row stops on is chosen but not read. Draws from
 * `rng` exactly as the step-by-step JavaScript loop does, so both give the same tokens. Returns the
 * tokens per row, or undefined where the kernel or the native cache is missing (the caller then
 * runs that loop itself).
 *
 * Kernel `SkdTransformerGenerate`: inputs { lengths, feed, live, budgets (B int32), rng (4 int32),
 * logits?, the weights and caches as transformerDecode } → [tokens (B, steps), counts (B),
 * lengths (B), rng (4), status (2): failed row and code] (int32 all).
 */
export async function transformerGenerate(
  cache: KvCache,
  weights: TransformerWeights,
  options: { readonly heads: number; readonly epsilon: number },
  loop: GenerationLoop,
): Promise<number[][] | undefined> {
  const native = cache.nativeLoop();
  // The kernel stops rows on one id: a loop with other stop ids runs step by step.
  if (!native || !hasKernel(KERNELS.transformerGenerate) || loop.stop?.some((t) => t !== loop.eos)) return undefined;
  checkSampling(loop.sampling);
  const B = cache.batchSize;
  const live = Array.from({ length: B }, (_, b) => loop.live?.[b] ?? true);
  const feed = Array.from({ length: B }, (_, b) => (live[b] ? (loop.feed?.[b] ?? -1) : -1));
  if (!loop.logits && live.some((l, b) => l && feed[b] === -1)) throw new SkdError('a live row needs a token to read or next-token logits');
  const budgets = Array.from({ length: B }, (_, b) => Math.min(loop.steps, loop.budgets?.[b] ?? loop.steps));
  const state = loop.rng.getState();
  const model = modelInputs(weights, native.keys, native.values, options);
  const inputs: Record<string, tf.Tensor> = {
    ...model.inputs,
    lengths: tf.tensor1d(native.lengths as number[], 'int32'),
    feed: tf.tensor1d(feed, 'int32'),
    live: tf.tensor1d(live.map(Number), 'int32'),
    budgets: tf.tensor1d(budgets, 'int32'),
    rng: tf.tensor1d(
      state.s.map((w) => w | 0),
      'int32',
    ),
    ...(loop.logits ? { logits: loop.logits } : {}),
  };
  const { sampling } = loop;
  const outputs = runKernel<tf.Tensor[]>(KERNELS.transformerGenerate, inputs, {
    ...model.attrs,
    steps: loop.steps,
    eos: loop.eos,
    temperature: sampling.temperature ?? 1,
    topK: sampling.topK ?? 0,
    topP: sampling.topP ?? 1,
    greedy: sampling.greedy ?? false,
  });
  tf.dispose(['lengths', 'feed', 'live', 'budgets', 'rng'].map((k) => inputs[k] as tf.Tensor));
  try {
    const [tokens, counts, lengths, rng, status] = (await Promise.all(outputs.map((t) => t.data()))) as Int32Array[];
    native.commit(Array.from(lengths as Int32Array));
    loop.rng.setState({ ...state, s: Array.from(rng as Int32Array, (w) => w >>> 0) as [number, number, number, number] });
    const [failedRow, code] = status as Int32Array;
    if ((failedRow as number) >= 0) {
      if (code === -3) throw new SkdError('every logit is -inf: no token can be sampled');
      throw new NonFiniteError(`the model's logits contain NaN or Infinity (row ${failedRow}): its weights or inputs are not finite`);
    }
    return Array.from({ length: B }, (_, b) =>
      Array.from((tokens as Int32Array).subarray(b * loop.steps, b * loop.steps + ((counts as Int32Array)[b] as number))),
    );
  } finally {
    tf.dispose(outputs);
  }
}
