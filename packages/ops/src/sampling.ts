import type * as tf from '@tensorflow/tfjs-core';
import { NonFiniteError, SkdError, cumulativeIndex, type Rng, type SamplingOptions } from '@skd/core';
import { hasKernel, KERNELS, runKernel } from './kernels';

export type { SamplingOptions } from '@skd/core';

export function checkSampling(options: SamplingOptions): void {
  const { temperature = 1, topK = 0, topP = 1 } = options;
  if (!(temperature > 0))
    throw new SkdError(`temperature must be > 0, got ${temperature}`, {
      hint: 'for argmax decoding set greedy: true in the same sampling settings, e.g. sampler.options.sampling: { "greedy": true }',
    });
  if (!Number.isInteger(topK) || topK < 0) throw new SkdError(`topK must be an integer >= 0 (0 = off), got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new SkdError(`topP must be in (0, 1], got ${topP}`);
}

/**
 * The distribution sampling draws from, after temperature, top-k and top-p, as probabilities
 * (float64, summing to 1, zeros outside the kept set). Ties at the top-k/top-p boundary are kept
 * by token id order, so the result is deterministic. Without top-k and top-p nothing is sorted.
 */
export function warpedDistribution(logits: ArrayLike<number>, options: SamplingOptions = {}): Float64Array {
  const V = logits.length;
  const { temperature = 1, topK = 0, topP = 1 } = options;
  let maxLogit = -Infinity;
  for (let i = 0; i < V; i++) if ((logits[i] as number) > maxLogit) maxLogit = logits[i] as number;
  if (maxLogit === -Infinity) throw new SkdError('every logit is -inf: no token can be sampled');
  const probs = new Float64Array(V);
  let total = 0;
  for (let i = 0; i < V; i++) {
    const p = Math.exp(((logits[i] as number) - maxLogit) / temperature);
    probs[i] = p;
    total += p;
  }
  for (let i = 0; i < V; i++) probs[i] = (probs[i] as number) / total;
  const limit = topK > 0 ? Math.min(topK, V) : V;
  if (limit < V || topP < 1) {
    const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => (logits[b] as number) - (logits[a] as number) || a - b);
    const keep = new Uint8Array(V);
    let mass = 0;
    for (let r = 0; r < limit; r++) {
      const id = order[r] as number;
      keep[id] = 1;
      mass += probs[id] as number;
      if (topP < 1 && mass >= topP) break;
    }
    for (let i = 0; i < V; i++) if (!keep[i]) probs[i] = 0;
  }
  let kept = 0;
  for (let i = 0; i < V; i++) kept += probs[i] as number;
  for (let i = 0; i < V; i++) probs[i] = (probs[i] as number) / kept;
  return probs;
}

/**
 * The token a logit row gives under `options` for the uniform draw `u` in [0, 1): the argmax when
 * greedy, else the categorical draw from the warped distribution (cumulative in id order, as
 * `Rng.categorical`). This is the reference the device kernel reproduces.
 */
export function chooseTokenWith(logits: ArrayLike<number>, options: SamplingOptions, u: number): number {
  checkSampling(options);
  for (let i = 0; i < logits.length; i++) {
    if (Number.isNaN(logits[i]) || logits[i] === Infinity) {
      throw new NonFiniteError(`the model's logits contain ${logits[i]} (at token ${i}): its weights or inputs are not finite`);
    }
  }
  if (options.greedy) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if ((logits[i] as number) > (logits[best] as number)) best = i;
    return best;
  }
  const probs = warpedDistribution(logits, options);
  let total = 0;
  for (const p of probs) total += p;
  return cumulativeIndex(probs, u * total);
}

/** Chooses one token id from a logit row with the run's Rng (one draw unless greedy). */
export function chooseToken(logits: ArrayLike<number>, options: SamplingOptions, rng: Rng): number {
  return chooseTokenWith(logits, options, options.greedy ? 0 : rng.random());
}

/**
 * Chooses a token for every row of `logits` (B, V) on the device and reads back only the ids.
 * `rows` says which rows to sample (default all); each sampled, non-greedy row takes one draw from
 * `rng`, in row order, as `chooseToken` would; other rows get -1.
 *
 * Kernel `SkdSampleTokens`: inputs { logits }, attrs { uniforms (B), temperature, topK, topP,
 * greedy } → ids (B) int32, with -2 in a row whose logits hold NaN or +inf, -3 where every
 * logit is -inf, and -4 where the kernel leaves the row to the host (the WebGPU kernel, whose
 * float32 sums cannot settle a draw that falls within rounding of a boundary, or top-k/top-p).
 */
export async function sampleTokens(logits: tf.Tensor2D, options: SamplingOptions, rng: Rng, rows?: readonly boolean[]): Promise<Int32Array> {
  checkSampling(options);
  const [B, V] = logits.shape;
  const wanted = (b: number) => rows === undefined || rows[b] === true;
  const uniforms = Array.from({ length: B }, (_, b) => (wanted(b) && !options.greedy ? rng.random() : 0));
  if (!hasKernel(KERNELS.sampleTokens) || logits.dtype !== 'float32') {
    const data = await logits.data();
    return Int32Array.from({ length: B }, (_, b) => (wanted(b) ? chooseTokenWith(data.subarray(b * V, (b + 1) * V), options, uniforms[b] as number) : -1));
  }
  const { temperature = 1, topK = 0, topP = 1, greedy = false } = options;
  const idsTensor = runKernel<tf.Tensor>(KERNELS.sampleTokens, { logits }, { uniforms, temperature, topK, topP, greedy });
  const ids = Int32Array.from(await idsTensor.data());
  idsTensor.dispose();
  let host: Float32Array | undefined;
  for (let b = 0; b < B; b++) {
    if (!wanted(b)) ids[b] = -1;
    else if ((ids[b] as number) === -4) {
      host ??= (await logits.data()) as Float32Array;
      ids[b] = chooseTokenWith(host.subarray(b * V, (b + 1) * V), options, uniforms[b] as number);
    } else if ((ids[b] as number) === -2) {
      const row = (await logits.data()).subarray(b * V, (b + 1) * V);
      chooseTokenWith(row, options, 0); // throws the NonFiniteError naming the offending logit
    } else if ((ids[b] as number) === -3) throw new SkdError('every logit is -inf: no token can be sampled');
  }
  return ids;
}
