import * as tf from '@tensorflow/tfjs-core';
import { NonFiniteError, SkdError, type LanguageModel, type Rng } from '@skd/core';

/** How the next token is chosen from a logit row. */
export interface SamplingOptions {
  /** Argmax (ties: lowest id). Ignores the other options. */
  readonly greedy?: boolean;
  /** Divides logits; < 1 sharpens, > 1 flattens. Default 1. */
  readonly temperature?: number;
  /** Keep only the k most likely tokens (0: off). */
  readonly topK?: number;
  /** Keep the smallest set of most likely tokens whose mass reaches p (1: off). */
  readonly topP?: number;
}

export function checkSampling(options: SamplingOptions): void {
  const { temperature = 1, topK = 0, topP = 1 } = options;
  if (!(temperature > 0)) throw new SkdError(`temperature must be > 0, got ${temperature}`, { hint: 'use greedy: true for argmax decoding' });
  if (!Number.isInteger(topK) || topK < 0) throw new SkdError(`topK must be an integer >= 0 (0 = off), got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new SkdError(`topP must be in (0, 1], got ${topP}`);
}

/**
 * The distribution sampling draws from, after temperature, top-k and top-p, as probabilities
 * (float64, summing to 1, zeros outside the kept set). Ties at the top-k/top-p boundary are kept
 * by token id order, so the result is deterministic.
 */
export function warpedDistribution(logits: ArrayLike<number>, options: SamplingOptions = {}): Float64Array {
  const V = logits.length;
  const { temperature = 1, topK = 0, topP = 1 } = options;
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => (logits[b] as number) - (logits[a] as number) || a - b);
  const top = order[0] as number;
  const maxLogit = logits[top] as number;
  const probs = new Float64Array(V);
  if (maxLogit === -Infinity) throw new SkdError('every logit is -inf: no token can be sampled');
  let total = 0;
  for (let i = 0; i < V; i++) {
    const p = Math.exp(((logits[i] as number) - maxLogit) / temperature);
    probs[i] = p;
    total += p;
  }
  for (let i = 0; i < V; i++) probs[i] = (probs[i] as number) / total;
  const keep = new Uint8Array(V);
  const limit = topK > 0 ? Math.min(topK, V) : V;
  let mass = 0;
  for (let r = 0; r < limit; r++) {
    const id = order[r] as number;
    keep[id] = 1;
    mass += probs[id] as number;
    if (topP < 1 && mass >= topP) break;
  }
  let kept = 0;
  for (let i = 0; i < V; i++) {
    if (!keep[i]) probs[i] = 0;
    kept += probs[i] as number;
  }
  for (let i = 0; i < V; i++) probs[i] = (probs[i] as number) / kept;
  return probs;
}

/** Chooses one token id from a logit row with the run's Rng. */
export function chooseToken(logits: ArrayLike<number>, options: SamplingOptions, rng: Rng): number {
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
  return rng.categorical(warpedDistribution(logits, options));
}

export interface GenerateOptions extends SamplingOptions {
  readonly maxNewTokens: number;
  readonly eos: number;
  readonly pad: number;
  readonly rng: Rng;
}

export interface Generation {
  /** Generated token ids per row, ending with EOS when the row finished by EOS. */
  readonly tokens: number[][];
  /** True for rows that produced EOS within maxNewTokens. */
  readonly finished: boolean[];
  /** Decode forward passes run (1 for the prompts, then 1 per generated column). */
  readonly forwardPasses: number;
}

/**
 * Batched generation with a KV cache. Prompts of different lengths are left-padded (masked) so
 * every row's next token lands in the same column; rows that finish (EOS) feed masked padding until
 * all are done or maxNewTokens is reached. One logit row per sequence is read back per step, to
 * sample with the run's Rng.
 */
export async function generate(model: LanguageModel, prompts: readonly (readonly number[])[], options: GenerateOptions): Promise<Generation> {
  checkSampling(options);
  if (prompts.length === 0) return { tokens: [], finished: [], forwardPasses: 0 };
  if (prompts.some((p) => p.length === 0)) throw new SkdError('every prompt needs at least one token (start with BOS)');
  const B = prompts.length;
  const P = Math.max(...prompts.map((p) => p.length));
  const maxNew = Math.min(options.maxNewTokens, model.contextLength - P);
  if (maxNew <= 0) {
    throw new SkdError(`prompts of ${P} tokens leave no room to generate in a context of ${model.contextLength}`);
  }
  const state = model.startDecoding(B, P + maxNew);
  const out: number[][] = prompts.map(() => []);
  const finished = prompts.map(() => false);
  let passes = 0;
  try {
    const ids = new Int32Array(B * P).fill(options.pad);
    const mask = new Float32Array(B * P);
    prompts.forEach((prompt, b) => {
      ids.set(prompt, b * P + (P - prompt.length));
      mask.fill(1, b * P + (P - prompt.length), (b + 1) * P);
    });
    let next = await lastLogits(model, state, tf.tensor2d(ids, [B, P], 'int32'), tf.tensor2d(mask, [B, P]));
    passes += 1;
    for (let step = 0; step < maxNew; step++) {
      const column = new Int32Array(B).fill(options.pad);
      const live = new Float32Array(B);
      for (let b = 0; b < B; b++) {
        if (finished[b]) continue;
        const token = chooseToken(next.subarray(b * model.vocabSize, (b + 1) * model.vocabSize), options, options.rng);
        (out[b] as number[]).push(token);
        column[b] = token;
        live[b] = 1;
        if (token === options.eos) finished[b] = true;
      }
      if (finished.every(Boolean) || step === maxNew - 1) break;
      next = await lastLogits(model, state, tf.tensor2d(column, [B, 1], 'int32'), tf.tensor2d(live, [B, 1]));
      passes += 1;
    }
  } finally {
    state.dispose();
  }
  return { tokens: out, finished, forwardPasses: passes };
}

/**
 * Runs one decode step through the cache and reads back only the last column's logits (B * V
 * floats), sliced on the device. Frees its inputs. Shared by generation and SKD's verification.
 */
export async function lastLogits(
  model: LanguageModel,
  state: ReturnType<LanguageModel['startDecoding']>,
  tokens: tf.Tensor2D,
  mask: tf.Tensor2D,
): Promise<Float32Array> {
  const logits = model.decode(tokens, state, { mask }); // (B, S, V)
  tokens.dispose();
  mask.dispose();
  const [B, S, V] = logits.shape;
  const last = tf.tidy(() => tf.reshape(tf.slice(logits, [0, S - 1, 0], [B, 1, V]), [B * V])); // (B*V)
  logits.dispose();
  const data = (await last.data()) as Float32Array;
  last.dispose();
  return data;
}
