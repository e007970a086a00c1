import * as tf from '@tensorflow/tfjs-core';
import {
  SkdError,
  type DecodeOptions,
  type DecodeState,
  type ForwardOptions,
  type LanguageModel,
} from '@skd/core';
import { checkGptConfig, gptParameterShapes, type GptConfig } from './config';
import { applyRotary, attentionBias, gelu, layerNorm, linear, mergeHeads, splitHeads } from './layers';

// Type aliases, not interfaces: tf.tidy may return them only if they fit tfjs's TensorContainer.
type LayerKv = {
  readonly k: tf.Tensor4D; // (B, H, L, dh)
  readonly v: tf.Tensor4D; // (B, H, L, dh)
};

type ForwardResult = {
  readonly logits: tf.Tensor3D; // (B, S, V)
  readonly present: LayerKv[];
};

let modelCounter = 0;

/**
 * A GPT-style decoder: pre-LayerNorm blocks, tanh-GELU MLP, learned or rotary positions, tied or
 * separate output head. Parameters use GPT-2's (Hugging Face) names and layouts, so a GPT-2
 * checkpoint loads by name.
 */
export class GptModel implements LanguageModel {
  static readonly kind = 'gpt';
  readonly config: GptConfig;
  readonly params: ReadonlyMap<string, tf.Variable>;
  private readonly id = ++modelCounter;

  /** Random initial weights (GPT-2 scheme) from `seed`, or the given tensors (copied, checked by name and shape). */
  constructor(config: GptConfig, init: { readonly seed: number } | { readonly weights: ReadonlyMap<string, tf.Tensor> }) {
    const problems = checkGptConfig(config);
    if (problems.length) throw new SkdError(`invalid GPT config: ${problems.join('; ')}`);
    this.config = config;
    const shapes = gptParameterShapes(config);
    const params = new Map<string, tf.Variable>();
    try {
      if ('weights' in init) {
        for (const [name, shape] of shapes) {
          const tensor = init.weights.get(name);
          if (!tensor) throw new SkdError(`weights lack parameter "${name}" (shape [${shape.join(', ')}])`);
          if (tensor.shape.join() !== shape.join()) {
            throw new SkdError(`parameter "${name}" must have shape [${shape.join(', ')}], got [${tensor.shape.join(', ')}]`);
          }
          params.set(name, this.ownedVariable(name, tf.cast(tensor, 'float32')));
        }
        const extra = [...init.weights.keys()].filter((name) => !shapes.has(name));
        if (extra.length) throw new SkdError(`weights hold parameters this config does not have: ${extra.slice(0, 5).join(', ')}`);
      } else {
        let i = 0;
        for (const [name, shape] of shapes) {
          params.set(name, this.ownedVariable(name, initialValue(name, shape, init.seed + 7919 * i++, config.layers)));
        }
      }
    } catch (error) {
      params.forEach((p) => p.dispose());
      throw error;
    }
    this.params = params;
  }

  get vocabSize(): number {
    return this.config.vocabSize;
  }

  get contextLength(): number {
    return this.config.contextLength;
  }

  get trainableVariables(): readonly tf.Variable[] {
    return [...this.params.values()];
  }

  /** Number of parameters (the tied head counted once). */
  get parameterCount(): number {
    let n = 0;
    for (const p of this.params.values()) n += p.size;
    return n;
  }

  logits(tokens: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    const [B, T] = tokens.shape;
    this.checkLength(T);
    return tf.tidy(() => {
      const mask = options.mask ? tf.cast(options.mask, 'float32') : tf.ones([B, T]); // (B, T)
      const positions = positionsFrom(mask, undefined); // (B, T)
      const bias = attentionBias(mask as tf.Tensor2D, undefined); // (B, 1, T, T)
      const training = options.training === true && this.config.dropout > 0;
      return this.forward(tokens, positions, bias, undefined, training ? (options.seed ?? 0) : undefined).logits;
    });
  }

  startDecoding(batchSize: number, maxColumns: number): GptDecodeState {
    return new GptDecodeState(this, batchSize, maxColumns);
  }

  decode(tokens: tf.Tensor2D, state: DecodeState, options: DecodeOptions = {}): tf.Tensor3D {
    if (!(state instanceof GptDecodeState) || state.owner !== this) {
      throw new SkdError('decode state was not created by this model\'s startDecoding');
    }
    const [B, S] = tokens.shape;
    if (B !== state.batchSize) throw new SkdError(`decode got ${B} rows, the state was started for ${state.batchSize}`);
    if (state.length + S > state.capacity) {
      throw new SkdError(`decoding ${S} more tokens exceeds the ${state.capacity} positions the state was started for (now ${state.length})`);
    }
    const result = tf.tidy(() => {
      const mask = options.mask ? (tf.cast(options.mask, 'float32') as tf.Tensor2D) : (tf.ones([B, S]) as tf.Tensor2D); // (B, S)
      const positions = positionsFrom(mask, state.counts); // (B, S)
      const bias = attentionBias(mask, state.mask); // (B, 1, S, L+S)
      const { logits, present } = this.forward(tokens, positions, bias, state.layers, undefined);
      const counts = tf.add(state.counts ?? tf.zeros([B]), tf.sum(mask, 1)) as tf.Tensor1D; // (B)
      const nextMask = (state.mask ? tf.concat([state.mask, mask], 1) : mask) as tf.Tensor2D; // (B, L+S)
      return { logits, present, counts, nextMask };
    });
    state.replace(result.present, result.nextMask, result.counts);
    return result.logits;
  }

  dispose(): void {
    for (const p of this.params.values()) p.dispose();
  }

  /** A trainable variable holding `initial`'s values; `initial` is disposed (tf.variable does not take it over). */
  private ownedVariable(name: string, initial: tf.Tensor): tf.Variable {
    const variable = tf.variable(initial, true, `gpt${this.id}/${name}`);
    initial.dispose();
    return variable;
  }

  private p<R extends tf.Rank>(name: string): tf.Tensor<R> {
    const value = this.params.get(name);
    if (!value) throw new SkdError(`missing parameter ${name}`);
    return value as unknown as tf.Tensor<R>;
  }

  private checkLength(T: number): void {
    if (T > this.contextLength) {
      throw new SkdError(`sequence of ${T} tokens exceeds the model's context of ${this.contextLength}`, {
        hint: 'filter or truncate long examples, or raise contextLength',
      });
    }
  }

  /**
   * The whole network for S new tokens over optional cached keys/values: tokens (B, S), positions
   * (B, S), bias (B, 1, S, L + S). Returns logits (B, S, V) and every layer's keys/values (L + S).
   */
  private forward(tokens: tf.Tensor2D, positions: tf.Tensor2D, bias: tf.Tensor4D, past: readonly LayerKv[] | undefined, seed: number | undefined): ForwardResult {
    const { layers, heads, dModel: d, layerNormEpsilon: eps, dropout } = this.config;
    const [B, S] = tokens.shape;
    const drop = (x: tf.Tensor, salt: number) => (seed === undefined ? x : tf.dropout(x, dropout, undefined, seed * 131 + salt));
    const flatTokens = tf.reshape(tokens, [B * S]); // (B*S)
    let h = tf.gather(this.p<tf.Rank.R2>('wte.weight'), tf.cast(flatTokens, 'int32')) as tf.Tensor2D; // (B*S, d)
    if (this.config.positions === 'learned') {
      const wpe = this.p<tf.Rank.R2>('wpe.weight');
      h = tf.add(h, tf.gather(wpe, tf.reshape(positions, [B * S]))); // (B*S, d)
    }
    h = drop(h, 1) as tf.Tensor2D;
    const present: LayerKv[] = [];
    const scale = 1 / Math.sqrt(d / heads);
    for (let i = 0; i < layers; i++) {
      const p = `h.${i}`;
      const a = layerNorm(h, this.p(`${p}.ln_1.weight`), this.p(`${p}.ln_1.bias`), eps); // (B*S, d)
      // c_attn holds q, k and v side by side (GPT-2 layout). Slicing the (d, 3d) weight and running
      // three matmuls costs the same FLOPs as one and never slices the (B*S, 3d) activation, whose
      // column slices and their gradients were a fifth of a training step on wasm.
      const w = this.p<tf.Rank.R2>(`${p}.attn.c_attn.weight`);
      const b = this.p<tf.Rank.R1>(`${p}.attn.c_attn.bias`);
      const project = (j: number) =>
        linear(a, tf.slice(w, [0, j * d], [d, d]) as tf.Tensor2D, tf.slice(b, [j * d], [d]) as tf.Tensor1D); // (B*S, d)
      const [q2, k2, v2] = [project(0), project(1), project(2)];
      let q = splitHeads(q2, B, heads); // (B, H, S, dh)
      let k = splitHeads(k2, B, heads); // (B, H, S, dh)
      const v = splitHeads(v2, B, heads); // (B, H, S, dh)
      if (this.config.positions === 'rotary') {
        q = applyRotary(q, positions);
        k = applyRotary(k, positions);
      }
      const cached = past?.[i];
      const kAll = (cached ? tf.concat([cached.k, k], 2) : k) as tf.Tensor4D; // (B, H, L+S, dh)
      const vAll = (cached ? tf.concat([cached.v, v], 2) : v) as tf.Tensor4D; // (B, H, L+S, dh)
      present.push({ k: kAll, v: vAll });
      const scores = tf.add(tf.mul(tf.matMul(q, kAll, false, true), scale), bias); // (B, H, S, L+S)
      const weights = drop(tf.softmax(scores), 10 + i); // (B, H, S, L+S)
      const attended = mergeHeads(tf.matMul(weights, vAll) as tf.Tensor4D); // (B*S, d)
      const projected = linear(attended, this.p(`${p}.attn.c_proj.weight`), this.p(`${p}.attn.c_proj.bias`)); // (B*S, d)
      h = tf.add(h, drop(projected, 100 + i)) as tf.Tensor2D; // (B*S, d)
      const m = layerNorm(h, this.p(`${p}.ln_2.weight`), this.p(`${p}.ln_2.bias`), eps); // (B*S, d)
      const hidden = gelu(linear(m, this.p(`${p}.mlp.c_fc.weight`), this.p(`${p}.mlp.c_fc.bias`))) as tf.Tensor2D; // (B*S, ff)
      const out = linear(hidden, this.p(`${p}.mlp.c_proj.weight`), this.p(`${p}.mlp.c_proj.bias`)); // (B*S, d)
      h = tf.add(h, drop(out, 1000 + i)) as tf.Tensor2D; // (B*S, d)
    }
    const final = layerNorm(h, this.p('ln_f.weight'), this.p('ln_f.bias'), eps); // (B*S, d)
    const head = this.p<tf.Rank.R2>(this.config.tiedHead ? 'wte.weight' : 'lm_head.weight'); // (V, d)
    const logits = tf.reshape(tf.matMul(final, head, false, true), [B, S, this.config.vocabSize]) as tf.Tensor3D; // (B, S, V)
    return { logits, present };
  }
}

/**
 * Positions of S new tokens: row b continues from `counts[b]` real tokens, counting only real
 * (mask 1) slots, so left padding and masked-out slots do not shift positions. (B, S) int32.
 */
function positionsFrom(mask: tf.Tensor, counts: tf.Tensor1D | undefined): tf.Tensor2D {
  const running = tf.sub(tf.cumsum(mask, 1), 1); // (B, S)
  const offset = counts ? tf.add(running, tf.expandDims(counts, 1)) : running; // (B, S)
  return tf.cast(tf.maximum(offset, 0), 'int32') as tf.Tensor2D;
}

/** GPT-2 initialisation: N(0, 0.02) weights, residual projections scaled by 1/sqrt(2 layers), LayerNorm 1/0. */
function initialValue(name: string, shape: number[], seed: number, layers: number): tf.Tensor {
  if (/ln_\w+\.weight$/.test(name)) return tf.ones(shape);
  if (name.endsWith('.bias')) return tf.zeros(shape);
  const std = name.endsWith('c_proj.weight') ? 0.02 / Math.sqrt(2 * layers) : name === 'wpe.weight' ? 0.01 : 0.02;
  return tf.truncatedNormal(shape, 0, std, 'float32', seed);
}

/**
 * KV cache of a batched incremental decode. Every row has the same number of columns; a row whose
 * slot holds padding (left-padded prompt, finished row, rejected draft) has mask 0 there.
 */
export class GptDecodeState implements DecodeState {
  layers: LayerKv[] | undefined;
  /** (B, L) 1 for real cached tokens. */
  mask: tf.Tensor2D | undefined;
  /** (B) number of real tokens per row (the next position). */
  counts: tf.Tensor1D | undefined;

  constructor(
    readonly owner: GptModel,
    readonly batchSize: number,
    readonly capacity: number,
  ) {}

  get length(): number {
    return this.mask?.shape[1] ?? 0;
  }

  /**
   * Takes ownership of the tensors of a decode step, freeing the previous ones. They are kept
   * (tf.keep), so a caller's tf.tidy around decode cannot free the cache.
   */
  replace(layers: LayerKv[], mask: tf.Tensor2D, counts: tf.Tensor1D): void {
    this.free();
    for (const { k, v } of layers) {
      tf.keep(k);
      tf.keep(v);
    }
    this.layers = layers;
    this.mask = tf.keep(mask);
    this.counts = tf.keep(counts);
  }

  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.length) {
      throw new SkdError(`cannot truncate a decode state of ${this.length} columns to ${length}`);
    }
    if (length === this.length) return;
    if (length === 0) return this.free();
    const next = tf.tidy(() => {
      const layers = (this.layers ?? []).map(({ k, v }) => ({
        k: tf.slice(k, [0, 0, 0, 0], [-1, -1, length, -1]) as tf.Tensor4D, // (B, H, length, dh)
        v: tf.slice(v, [0, 0, 0, 0], [-1, -1, length, -1]) as tf.Tensor4D, // (B, H, length, dh)
      }));
      const mask = tf.slice(this.mask as tf.Tensor2D, [0, 0], [-1, length]) as tf.Tensor2D; // (B, length)
      return { layers, mask, counts: tf.sum(mask, 1) as tf.Tensor1D };
    });
    this.replace(next.layers, next.mask, next.counts);
  }

  maskFrom(fromColumns: readonly (number | undefined)[]): void {
    if (!this.mask || fromColumns.every((c) => c === undefined)) return;
    if (fromColumns.length !== this.batchSize) throw new SkdError(`maskFrom needs one entry per row (${this.batchSize}), got ${fromColumns.length}`);
    const limits = fromColumns.map((c) => c ?? this.length);
    const next = tf.tidy(() => {
      const keep = tf.less(tf.expandDims(tf.range(0, this.length), 0), tf.expandDims(tf.tensor1d(limits, 'int32'), 1)); // (B, L)
      const mask = tf.where(keep, this.mask as tf.Tensor2D, tf.zerosLike(this.mask as tf.Tensor2D)) as tf.Tensor2D; // (B, L)
      return { mask, counts: tf.sum(mask, 1) as tf.Tensor1D };
    });
    this.mask.dispose();
    this.counts?.dispose();
    this.mask = tf.keep(next.mask);
    this.counts = tf.keep(next.counts);
  }

  dispose(): void {
    this.free();
  }

  private free(): void {
    for (const { k, v } of this.layers ?? []) {
      k.dispose();
      v.dispose();
    }
    this.mask?.dispose();
    this.counts?.dispose();
    this.layers = undefined;
    this.mask = undefined;
    this.counts = undefined;
  }
}
