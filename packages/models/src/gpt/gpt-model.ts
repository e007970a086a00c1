import * as tf from '@tensorflow/tfjs-core';
import { runBlock } from '../checkpoint-layers';
import { SkdError, type DecodeOptions, type DecodeState, type GenerationLoop, type ForwardOptions, type LanguageModel, type OutputLayer } from '@skd/core';
import {
  causalSelfAttention,
  createKvCache,
  gelu,
  layerNorm,
  linear,
  transformerDecode,
  transformerGenerate,
  type KvCache,
  type TransformerWeights,
} from '@skd/ops';
import { checkGptConfig, gptParameterShapes, type GptConfig } from './config';
import { applyRotary } from './layers';

/** Attention of layer `layer` over packed projections qkv (B*S, 3d) → (B*S, d). */
type Attend = (layer: number, qkv: tf.Tensor2D) => tf.Tensor2D;

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
    return this.trunk(tokens, options, 'logits');
  }

  /** The final LayerNorm's output (B, T, d): what the output layer reads (see LanguageModel.features). */
  features(tokens: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    return this.trunk(tokens, options, 'features');
  }

  /** The output layer apart from the network: its weight (V, d), and logits of hidden states through it. */
  get outputLayer(): OutputLayer {
    const head = this.p<tf.Rank.R2>(this.config.tiedHead ? 'wte.weight' : 'lm_head.weight');
    return { weight: head, project: (hidden, weight) => tf.matMul(hidden, weight ?? head, false, true) as tf.Tensor2D }; // (n, V)
  }

  private trunk(tokens: tf.Tensor2D, options: ForwardOptions, output: 'logits' | 'features'): tf.Tensor3D {
    const [B, T] = tokens.shape;
    this.checkLength(T);
    return tf.tidy(() => {
      const mask = options.mask ? (tf.cast(options.mask, 'float32') as tf.Tensor2D) : undefined; // (B, T)
      const positions = positionsFrom(mask ?? (tf.ones([B, T]) as tf.Tensor2D)); // (B, T)
      const dropoutSeed = options.training === true && this.config.dropout > 0 ? (options.seed ?? 0) : undefined;
      const attend: Attend = (layer, qkv) =>
        causalSelfAttention(qkv, {
          batch: B,
          heads: this.config.heads,
          ...(mask ? { mask } : {}),
          ...(dropoutSeed !== undefined ? { dropout: { rate: this.config.dropout, seed: dropoutSeed * 131 + 10 + layer } } : {}),
        });
      return this.forward(
        tokens,
        positions,
        attend,
        dropoutSeed,
        false,
        options.checkpointLayers === true ? [positions, ...(mask ? [mask] : [])] : undefined,
        output,
      );
    });
  }

  readonly checkpointsLayers = true;

  /** The parameters whose names start with `prefix` (one block's). */
  private paramsWithPrefix(prefix: string): tf.Tensor[] {
    return [...this.params.entries()].filter(([name]) => name.startsWith(prefix)).map(([, value]) => value);
  }

  startDecoding(batchSize: number, maxTokens: number): GptDecodeState {
    if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > this.contextLength) {
      throw new SkdError(`cannot decode ${maxTokens} tokens per row: the model's context is ${this.contextLength}`, {
        hint: 'shorten the prompts or the new tokens (sampler.options.maxNewTokens when sampling, training.maxNewTokens when evaluating), or use a model with a longer context (student.options.contextLength, for a model the config defines)',
      });
    }
    const { layers, heads, dModel } = this.config;
    return new GptDecodeState(this, createKvCache({ batchSize, capacity: maxTokens, layers, heads, headSize: dModel / heads }));
  }

  decode(tokens: tf.Tensor2D, state: DecodeState, options: DecodeOptions = {}): tf.Tensor3D {
    if (!(state instanceof GptDecodeState) || state.owner !== this) {
      throw new SkdError("decode state was not created by this model's startDecoding");
    }
    const [B, S] = tokens.shape;
    if (B !== state.batchSize) throw new SkdError(`decode got ${B} rows, the state was started for ${state.batchSize}`);
    if (options.mask && (options.mask.shape[0] !== B || options.mask.shape[1] !== S)) {
      throw new SkdError(`decode mask has shape [${options.mask.shape.join(', ')}], expected [${B}, ${S}]`);
    }
    const mask = options.mask?.dataSync(); // (B*S): which slots are real decides where they go in the cache
    const lastOnly = options.lastOnly === true;
    return state.cache.advance(mask, S, (step) => {
      const fused = transformerDecode(step, tokens, this.transformerWeights(), { heads: this.config.heads, epsilon: this.config.layerNormEpsilon, lastOnly });
      return fused ?? tf.tidy(() => this.forward(tokens, tf.tensor2d(step.positions, [B, S], 'int32'), step.attend, undefined, lastOnly));
    });
  }

  /** A whole sampling loop as one native kernel where the backend has it (see LanguageModel.generateTokens). */
  async generateTokens(state: DecodeState, loop: GenerationLoop): Promise<number[][] | undefined> {
    if (!(state instanceof GptDecodeState) || state.owner !== this) {
      throw new SkdError("decode state was not created by this model's startDecoding");
    }
    return transformerGenerate(state.cache, this.transformerWeights(), { heads: this.config.heads, epsilon: this.config.layerNormEpsilon }, loop);
  }

  /** The parameters in the order of a whole-network decode kernel (@skd/ops transformerDecode). */
  private transformerWeights(): TransformerWeights {
    const names = [
      'ln_1.weight',
      'ln_1.bias',
      'attn.c_attn.weight',
      'attn.c_attn.bias',
      'attn.c_proj.weight',
      'attn.c_proj.bias',
      'ln_2.weight',
      'ln_2.bias',
      'mlp.c_fc.weight',
      'mlp.c_fc.bias',
      'mlp.c_proj.weight',
      'mlp.c_proj.bias',
    ];
    return {
      embedding: this.p('wte.weight'),
      positions: this.config.positions === 'learned' ? this.p('wpe.weight') : undefined,
      blocks: Array.from({ length: this.config.layers }, (_, i) => names.map((n) => this.p(`h.${i}.${n}`))),
      finalNorm: [this.p('ln_f.weight'), this.p('ln_f.bias')],
      head: this.p(this.config.tiedHead ? 'wte.weight' : 'lm_head.weight'),
    };
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
        hint: 'filter or truncate long examples (training.onTooLong: "skip" skips them), or use a model with a longer context (student.options.contextLength, for a model the config defines)',
      });
    }
  }

  /**
   * The network for tokens (B, S) at positions (B, S), with `attend` supplying each layer's attention
   * (over the sequence itself when training, over the KV cache when decoding) → logits (B, S, V).
   */
  private forward(
    tokens: tf.Tensor2D,
    positions: tf.Tensor2D,
    attend: Attend,
    seed: number | undefined,
    lastOnly = false,
    checkpointKeep?: readonly tf.Tensor[],
    output: 'logits' | 'features' = 'logits',
  ): tf.Tensor3D {
    const { layers, heads, layerNormEpsilon: eps, dropout } = this.config;
    const [B, S] = tokens.shape;
    const drop = (x: tf.Tensor2D, salt: number) => (seed === undefined ? x : (tf.dropout(x, dropout, undefined, seed * 131 + salt) as tf.Tensor2D));
    // h + dropout(x w + b): one fused kernel (matmul, bias, residual add) unless dropout sits between.
    const residual = (h: tf.Tensor2D, x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D, salt: number): tf.Tensor2D =>
      seed === undefined ? linear(x, w, b, h) : tf.add(h, drop(linear(x, w, b), salt));
    const flatPositions = tf.reshape(positions, [B * S]) as tf.Tensor1D; // (B*S)
    let h = tf.gather(this.p<tf.Rank.R2>('wte.weight'), tf.cast(tf.reshape(tokens, [B * S]), 'int32')) as tf.Tensor2D; // (B*S, d)
    if (this.config.positions === 'learned') h = tf.add(h, tf.gather(this.p<tf.Rank.R2>('wpe.weight'), flatPositions)); // (B*S, d)
    h = drop(h, 1);
    for (let i = 0; i < layers; i++) {
      const p = `h.${i}`;
      const block = (x: tf.Tensor2D): tf.Tensor2D => {
        const a = layerNorm(x, this.p(`${p}.ln_1.weight`), this.p(`${p}.ln_1.bias`), eps); // (B*S, d)
        let qkv = linear(a, this.p(`${p}.attn.c_attn.weight`), this.p(`${p}.attn.c_attn.bias`)); // (B*S, 3d), q|k|v per row
        if (this.config.positions === 'rotary') qkv = applyRotary(qkv, flatPositions, heads);
        const attended = attend(i, qkv); // (B*S, d)
        const y = residual(x, attended, this.p(`${p}.attn.c_proj.weight`), this.p(`${p}.attn.c_proj.bias`), 100 + i); // (B*S, d)
        const m = layerNorm(y, this.p(`${p}.ln_2.weight`), this.p(`${p}.ln_2.bias`), eps); // (B*S, d)
        const hidden = gelu(linear(m, this.p(`${p}.mlp.c_fc.weight`), this.p(`${p}.mlp.c_fc.bias`))); // (B*S, ff)
        return residual(y, hidden, this.p(`${p}.mlp.c_proj.weight`), this.p(`${p}.mlp.c_proj.bias`), 1000 + i); // (B*S, d)
      };
      // Dropout masks come from seeds, so the block run again in the backward draws the same ones.
      h = runBlock(block, h, checkpointKeep ? { params: this.paramsWithPrefix(`${p}.`), keep: [...checkpointKeep, flatPositions] } : undefined);
    }
    if (lastOnly) h = tf.reshape(tf.slice(tf.reshape(h, [B, S, -1]), [0, S - 1, 0], [B, 1, -1]), [B, -1]) as tf.Tensor2D; // (B, d)
    const final = layerNorm(h, this.p('ln_f.weight'), this.p('ln_f.bias'), eps); // (B*S or B, d)
    if (output === 'features') return tf.reshape(final, [B, lastOnly ? 1 : S, this.config.dModel]) as tf.Tensor3D; // (B, S or 1, d)
    const head = this.p<tf.Rank.R2>(this.config.tiedHead ? 'wte.weight' : 'lm_head.weight'); // (V, d)
    return tf.reshape(tf.matMul(final, head, false, true), [B, lastOnly ? 1 : S, this.config.vocabSize]) as tf.Tensor3D; // (B, S or 1, V)
  }
}

/**
 * Positions of a right- or left-padded batch: each real token's index among its row's real tokens,
 * so padding never shifts positions (padding slots repeat a neighbour's). (B, T) int32.
 */
function positionsFrom(mask: tf.Tensor2D): tf.Tensor2D {
  return tf.cast(tf.maximum(tf.sub(tf.cumsum(mask, 1), 1), 0), 'int32') as tf.Tensor2D; // (B, T)
}

/** GPT-2 initialisation: N(0, 0.02) weights, residual projections scaled by 1/sqrt(2 layers), LayerNorm 1/0. */
function initialValue(name: string, shape: number[], seed: number, layers: number): tf.Tensor {
  if (/ln_\w+\.weight$/.test(name)) return tf.ones(shape);
  if (name.endsWith('.bias')) return tf.zeros(shape);
  const std = name.endsWith('c_proj.weight') ? 0.02 / Math.sqrt(2 * layers) : name === 'wpe.weight' ? 0.01 : 0.02;
  return tf.truncatedNormal(shape, 0, std, 'float32', seed);
}

/** A GPT decode: its KV cache (native when the backend has the kernel) and per-row lengths. */
export class GptDecodeState implements DecodeState {
  constructor(
    readonly owner: GptModel,
    readonly cache: KvCache,
  ) {}

  get batchSize(): number {
    return this.cache.batchSize;
  }

  get lengths(): readonly number[] {
    return this.cache.lengths;
  }

  rollback(keep: readonly (number | undefined)[]): void {
    this.cache.rollback(keep);
  }

  dispose(): void {
    this.cache.dispose();
  }
}
