import * as tf from '@tensorflow/tfjs-core';
import { SkdError, endsGeneration, type DecodeState, type LanguageModel, type Rng } from '@skd/core';
import { checkSampling, sampleTokens, type SamplingOptions } from '@skd/ops';

export { checkSampling, chooseToken, chooseTokenWith, warpedDistribution, type SamplingOptions } from '@skd/ops';

export interface GenerateOptions extends SamplingOptions {
  readonly maxNewTokens: number;
  readonly eos: number;
  /** Ids besides `eos` that end a row (the tokenizer's `special.stop`). */
  readonly stop?: readonly number[];
  readonly pad: number;
  readonly rng: Rng;
}

export interface Generation {
  /** Generated token ids per row, ending with the stop id when the row finished by one. */
  readonly tokens: number[][];
  /** True for rows that produced EOS (or another stop id) within maxNewTokens. */
  readonly finished: boolean[];
  /** Decode forward passes run (1 for the prompts, then 1 per generated column). */
  readonly forwardPasses: number;
}

/**
 * Batched generation with a KV cache. Prompts of different lengths are left-padded (masked) so
 * every row's next token lands in the same column; rows that finish (EOS) feed masked padding until
 * all are done or maxNewTokens is reached. Where the model runs whole loops natively
 * (`generateTokens`), the loop after the prompt is one call; otherwise tokens are chosen on the
 * device step by step (`sampleTokens`, with the run's Rng) and only B ids are read back per step.
 * Both give the same tokens for the same seed.
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
  let next: tf.Tensor2D | undefined;
  try {
    const { ids, mask } = leftPadded(prompts, options.pad);
    next = decodeLast(model, state, tf.tensor2d(ids, [B, P], 'int32'), tf.tensor2d(mask, [B, P]));
    passes += 1;
    const { greedy, temperature, topK, topP } = options;
    const stop = options.stop ?? [];
    const native = await model.generateTokens?.(state, {
      steps: maxNew,
      eos: options.eos,
      stop,
      sampling: { greedy, temperature, topK, topP },
      rng: options.rng,
      logits: next,
    });
    if (native) {
      const longest = Math.max(0, ...native.map((row) => row.length));
      return {
        tokens: native,
        finished: native.map((row) => row.length > 0 && endsGeneration(row[row.length - 1] as number, options.eos, stop)),
        forwardPasses: passes + Math.max(0, longest - 1),
      };
    }
    for (let step = 0; step < maxNew; step++) {
      const live = finished.map((f) => !f);
      const chosen = await sampleTokens(next, options, options.rng, live);
      next.dispose();
      next = undefined;
      const column = new Int32Array(B).fill(options.pad);
      const liveMask = new Float32Array(B);
      for (let b = 0; b < B; b++) {
        if (!live[b]) continue;
        const token = chosen[b] as number;
        (out[b] as number[]).push(token);
        column[b] = token;
        liveMask[b] = 1;
        if (endsGeneration(token, options.eos, stop)) finished[b] = true;
      }
      if (finished.every(Boolean) || step === maxNew - 1) break;
      next = decodeLast(model, state, tf.tensor2d(column, [B, 1], 'int32'), tf.tensor2d(liveMask, [B, 1]));
      passes += 1;
    }
  } finally {
    next?.dispose();
    state.dispose();
  }
  return { tokens: out, finished, forwardPasses: passes };
}

/** Prompts left-padded to one length: ids (B * P) and mask (B * P), row-major. */
export function leftPadded(prompts: readonly (readonly number[])[], pad: number): { ids: Int32Array; mask: Float32Array } {
  const P = Math.max(...prompts.map((p) => p.length));
  const ids = new Int32Array(prompts.length * P).fill(pad);
  const mask = new Float32Array(prompts.length * P);
  prompts.forEach((prompt, b) => {
    ids.set(prompt, b * P + (P - prompt.length));
    mask.fill(1, b * P + (P - prompt.length), (b + 1) * P);
  });
  return { ids, mask };
}

/**
 * Runs one decode step and returns the last column's logits (B, V), kept on the device. Frees its
 * inputs. Shared by generation and SKD's drafting.
 */
export function decodeLast(model: LanguageModel, state: DecodeState, tokens: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor2D {
  try {
    const logits = model.decode(tokens, state, { mask, lastOnly: true }); // (B, 1, V)
    const [B, , V] = logits.shape;
    const last = tf.reshape(logits, [B, V]) as tf.Tensor2D; // (B, V)
    logits.dispose();
    return last;
  } finally {
    tokens.dispose();
    mask.dispose();
  }
}
