import * as tf from '@tensorflow/tfjs-core';
import { SkdError, type DecodeOptions, type DecodeState, type ForwardOptions, type LanguageModel, type OutputLayer } from '@skd/core';
import { runBlock } from '../checkpoint-layers';
import {
  causalSelfAttention,
  createKvCache,
  gatedActivation,
  gatherHalf,
  HalfMatrix,
  linear,
  linearFrozen,
  linearHalf,
  rmsNorm,
  rotary,
  rotaryFrequencies,
  softcapped,
  spreadRows,
  type HalfDtype,
  type KvCache,
} from '@skd/ops';
import { checkDecoderConfig, decoderParameterShapes, decoderShape, layerWindows, type DecoderConfig } from './config';
import { LoraAdapters, type LoraConfig } from './lora';

/** Attention of layer `layer` over packed projections qkv (N, (H + 2 Hkv) dh) → (N, H dh). */
type Attend = (layer: number, qkv: tf.Tensor2D) => tf.Tensor2D;

let modelCounter = 0;

export interface DecoderInit {
  /** Random initial weights from this seed (normal, std 0.02; norms at their identity). */
  readonly seed?: number;
  /**
   * Or these tensors, by `decoderParameterShapes` name and shape (float32 tensors are shared, not copied:
   * dispose yours after). A 16-bit model's matrices may come as HalfMatrix values of its dtype already,
   * its layers' projections then (out, in): their checkpoints' layout, the parameter shape reversed.
   */
  readonly weights?: ReadonlyMap<string, tf.Tensor | HalfMatrix>;
  /**
   * Hold the weight matrices (projections, embedding, head) in 16 bits: frozen weights only (a
   * teacher's, or the base under a LoRA student's adapters, which stay float32). Products stay float32
   * (see linearHalf); norms and biases stay float32. Default float32.
   */
  readonly dtype?: 'float32' | HalfDtype;
  /**
   * Logit columns: the first `outputVocab` ids only. For an embedding padded past its tokenizer
   * (Qwen's), so that no id without a token is ever scored, sampled or distilled. Default: every row.
   */
  readonly outputVocab?: number;
  /**
   * Low-rank adapters: the weights above are frozen, and only the adapters train (see LoraAdapters).
   * New adapters start from `seed`; `adapters` gives their values instead (a saved run's).
   */
  readonly lora?: LoraConfig;
  readonly adapters?: ReadonlyMap<string, tf.Tensor>;
  /** The Hugging Face folder the frozen weights came from, when they did (a PEFT adapter's base). */
  readonly loraBase?: string;
}

/**
 * A Llama-family decoder (Llama, Qwen2, Qwen3, Mistral, Phi-3, OLMo 2, Gemma, Gemma 2, Gemma 3): token embedding, blocks of RMSNorm →
 * grouped-query attention with rotary positions → residual, RMSNorm → gated MLP → residual, a final
 * RMSNorm and the head. Everything runs through @skd/ops (native kernels where registered), with a
 * KV cache for generation and SKD's block verification. No dropout (pretrained checkpoints set none).
 */
export class DecoderModel implements LanguageModel {
  static readonly kind = 'decoder';
  readonly config: DecoderConfig;
  readonly params: ReadonlyMap<string, tf.Variable>;
  /**
   * The weight matrices of a 16-bit model (in place of their variables in `params`). Projections are
   * held as (out, in), their checkpoints' layout: a decode step then reads each output's weights as
   * one contiguous run (see linearHalf). The embedding (and head) as (vocab, d), as always.
   */
  readonly halves: ReadonlyMap<string, HalfMatrix>;
  /** How the weight matrices are held. */
  readonly dtype: 'float32' | HalfDtype;
  /** Logit columns (the tokenizer's ids); at most config.vocabSize. */
  readonly vocabSize: number;
  /** The adapters, when the model trains LoRA adapters over frozen weights. */
  readonly lora: LoraAdapters | undefined;
  /** The Hugging Face folder the frozen weights came from, when known. */
  readonly loraBase: string | undefined;
  private readonly id = ++modelCounter;
  private readonly frequencies: tf.Tensor1D;
  /** LongRoPE's frequencies for forward passes past its original context (the others use `frequencies`). */
  private readonly longFrequencies: tf.Tensor1D | undefined;
  /** The sliding-window layers' own rotary frequencies (Gemma 3), when they have their own base. */
  private readonly slidingFrequencies: tf.Tensor1D | undefined;

  constructor(config: DecoderConfig, init: DecoderInit) {
    const problems = checkDecoderConfig(config);
    if (problems.length) throw new SkdError(`invalid decoder config: ${problems.join('; ')}`);
    const outputVocab = init.outputVocab ?? config.vocabSize;
    if (!Number.isInteger(outputVocab) || outputVocab < 2 || outputVocab > config.vocabSize) {
      throw new SkdError(`outputVocab must be between 2 and the embedding's ${config.vocabSize} rows, got ${outputVocab}`);
    }
    this.config = config;
    this.vocabSize = outputVocab;
    this.dtype = init.dtype ?? 'float32';
    const half = this.dtype === 'float32' ? undefined : this.dtype;
    const shapes = decoderParameterShapes(config);
    const params = new Map<string, tf.Variable>();
    const halves = new Map<string, HalfMatrix>();
    // A 16-bit model holds its matrices as HalfMatrix values (projections transposed to (out, in));
    // everything else is a float32 variable. Values arrive in the parameters' own (in, out) shapes.
    const place = (name: string, value: tf.Tensor | HalfMatrix) => {
      if (half && value.shape.length === 2) {
        if (value instanceof HalfMatrix) {
          // Already (out, in) for a projection; another 16-bit format is converted through float32.
          halves.set(name, value.dtype === half ? value : HalfMatrix.fromFloat32(value.toFloat32(), value.shape, half));
          return;
        }
        const matrix = HalfMatrix.fromFloat32(float32Values(value), value.shape as [number, number], half);
        halves.set(name, isProjection(name) ? matrix.transposed() : matrix);
        return;
      }
      if (value instanceof HalfMatrix) {
        // Widened (exactly) for a float32 model; a projection back to its (in, out) parameter shape.
        params.set(name, this.ownedVariable(name, widened(name, value), !init.lora));
        return;
      }
      params.set(name, this.ownedVariable(name, tf.cast(value, 'float32'), !init.lora));
    };
    try {
      if (init.weights) {
        for (const [name, shape] of shapes) {
          const tensor = init.weights.get(name);
          if (!tensor) throw new SkdError(`weights lack parameter "${name}" (shape [${shape.join(', ')}])`);
          const expected = tensor instanceof HalfMatrix && isProjection(name) ? [...shape].reverse() : shape;
          if (tensor.shape.join() !== expected.join())
            throw new SkdError(`parameter "${name}" must have shape [${expected.join(', ')}], got [${tensor.shape.join(', ')}]`);
          place(name, tensor);
        }
        const extra = [...init.weights.keys()].filter((name) => !shapes.has(name));
        if (extra.length) throw new SkdError(`weights hold parameters this config does not have: ${extra.slice(0, 5).join(', ')}`);
      } else {
        let i = 0;
        for (const [name, shape] of shapes) {
          const initial = initialValue(name, shape, (init.seed ?? 0) + 7919 * i++, config);
          if (half && shape.length === 2) {
            place(name, initial);
            initial.dispose();
          } else params.set(name, this.ownedVariable(name, initial, !init.lora));
        }
      }
    } catch (error) {
      params.forEach((p) => p.dispose());
      throw error;
    }
    this.params = params;
    this.halves = halves;
    try {
      this.lora = init.lora
        ? new LoraAdapters(config, init.lora, {
            seed: (init.seed ?? 0) + 15485863,
            prefix: `decoder${this.id}`,
            ...(init.adapters ? { values: init.adapters } : {}),
          })
        : undefined;
    } catch (error) {
      params.forEach((p) => p.dispose());
      throw error;
    }
    this.loraBase = init.lora ? init.loraBase : undefined;
    if (init.adapters && !init.lora) {
      params.forEach((p) => p.dispose());
      throw new SkdError('adapter weights were given without a LoRA config');
    }
    const { headDim } = decoderShape(config);
    this.frequencies = tf.keep(tf.tensor1d(rotaryFrequencies(headDim, config.ropeTheta, config.ropeScaling)));
    this.longFrequencies =
      config.ropeScaling?.type === 'longrope'
        ? tf.keep(tf.tensor1d(rotaryFrequencies(headDim, config.ropeTheta, config.ropeScaling, config.ropeScaling.originalContext + 1)))
        : undefined;
    this.slidingFrequencies = config.slidingRopeTheta !== undefined ? tf.keep(tf.tensor1d(rotaryFrequencies(headDim, config.slidingRopeTheta))) : undefined;
  }

  get contextLength(): number {
    return this.config.contextLength;
  }

  /** Every weight; with LoRA, only the adapters (the weights they sit on are frozen). */
  get trainableVariables(): readonly tf.Variable[] {
    return [...(this.lora ? this.lora.variables : this.params).values()];
  }

  /** Number of parameters (the tied head counted once), adapters included. */
  get parameterCount(): number {
    let n = 0;
    for (const p of this.params.values()) n += p.size;
    for (const h of this.halves.values()) n += h.data.length;
    for (const p of this.lora?.variables.values() ?? []) n += p.size;
    return n;
  }

  /** Number of parameters that train: all of them, or the adapters'. */
  get trainableParameterCount(): number {
    return this.trainableVariables.reduce((n, v) => n + v.size, 0);
  }

  /**
   * The weights with the adapters merged in (W + (alpha / r) A B), under the weights' own names:
   * new tensors, the caller's to dispose. Without adapters, copies of the weights.
   */
  mergedWeights(): Map<string, tf.Tensor> {
    const merged = new Map<string, tf.Tensor>();
    for (const [name, value] of [...this.halves, ...this.params] as [string, tf.Tensor | HalfMatrix][]) {
      const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
      if (!(this.lora && m && this.lora.covers(m[2] as string))) {
        merged.set(name, value instanceof HalfMatrix ? widened(name, value) : tf.clone(value));
        continue;
      }
      const base = value instanceof HalfMatrix ? widened(name, value) : (value as tf.Tensor2D);
      merged.set(name, this.lora.merged(Number(m[1]), m[2] as string, base));
      if (base !== value) base.dispose();
    }
    return merged;
  }

  /**
   * Every weight as the model holds it, adapters aside: float32 variables and 16-bit matrices (the
   * latter in their held layout). What a model of the same config is built from (`DecoderInit.weights`)
   * to change how it holds its weights or to add adapters; shared, not copied.
   */
  get heldWeights(): ReadonlyMap<string, tf.Tensor | HalfMatrix> {
    return new Map<string, tf.Tensor | HalfMatrix>([...this.params, ...this.halves]);
  }

  logits(tokens: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    return this.trunk(tokens, options, 'logits');
  }

  /** The final norm's output (B, T, d): what the output layer reads (see LanguageModel.features). */
  features(tokens: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    return this.trunk(tokens, options, 'features');
  }

  /**
   * The output layer apart from the network: logits of hidden states through it, and its weight (V', d)
   * when it trains (a float32 model without adapters). A LoRA student's head or a 16-bit one is frozen:
   * `project` reads it, and no gradient is taken for it.
   */
  get outputLayer(): OutputLayer {
    const name = this.config.tiedHead ? 'model.embed_tokens.weight' : 'lm_head.weight';
    const head = this.halves.get(name) ?? this.p<tf.Rank.R2>(name);
    if (head instanceof HalfMatrix || this.lora) return { project: (hidden) => this.project(hidden, head) };
    return { weight: head, project: (hidden, weight) => this.project(hidden, weight ?? head) };
  }

  private trunk(tokens: tf.Tensor2D, options: ForwardOptions, output: 'logits' | 'features'): tf.Tensor3D {
    const [B, T] = tokens.shape;
    this.checkLength(T);
    const { heads } = this.config;
    const { kvHeads } = decoderShape(this.config);
    const windows = layerWindows(this.config);
    return tf.tidy(() => {
      const mask = options.mask ? (tf.cast(options.mask, 'float32') as tf.Tensor2D) : undefined; // (B, T)
      const positions = positionsFrom(mask ?? (tf.ones([B, T]) as tf.Tensor2D)); // (B*T) int32
      const attend: Attend = (layer, qkv) =>
        causalSelfAttention(qkv, {
          batch: B,
          heads,
          kvHeads,
          scale: this.attentionScale,
          ...(this.config.attentionSoftcap ? { softcap: this.config.attentionSoftcap } : {}),
          ...(windows[layer] ? { window: windows[layer] } : {}),
          ...(mask ? { mask } : {}),
        });
      const keep = options.checkpointLayers === true ? [positions, ...(mask ? [mask] : [])] : undefined;
      // LongRoPE picks its factors by the pass's largest position + 1: the longest row's real length.
      const length = this.longFrequencies && options.mask ? longestRow(options.mask) : T;
      return this.forward(tokens, positions, attend, false, keep, output, options.training === true ? (options.seed ?? 0) : undefined, length);
    });
  }

  readonly checkpointsLayers = true;

  startDecoding(batchSize: number, maxTokens: number): DecoderDecodeState {
    if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > this.contextLength) {
      throw new SkdError(`cannot decode ${maxTokens} tokens per row: the model's context is ${this.contextLength}`, {
        hint: 'shorten the prompts or the new tokens (sampler.options.maxNewTokens when sampling, training.maxNewTokens when evaluating), or use a model with a longer context (student.options.contextLength, for a model the config defines)',
      });
    }
    const { headDim, kvHeads } = decoderShape(this.config);
    const cache = createKvCache({
      batchSize,
      capacity: maxTokens,
      layers: this.config.layers,
      heads: this.config.heads,
      kvHeads,
      headSize: headDim,
      scale: this.attentionScale,
      ...(this.config.attentionSoftcap ? { softcap: this.config.attentionSoftcap } : {}),
      windows: layerWindows(this.config),
    });
    return new DecoderDecodeState(this, cache);
  }

  decode(tokens: tf.Tensor2D, state: DecodeState, options: DecodeOptions = {}): tf.Tensor3D {
    if (!(state instanceof DecoderDecodeState) || state.owner !== this) {
      throw new SkdError("decode state was not created by this model's startDecoding");
    }
    const [B, S] = tokens.shape;
    if (B !== state.batchSize) throw new SkdError(`decode got ${B} rows, the state was started for ${state.batchSize}`);
    if (options.mask && (options.mask.shape[0] !== B || options.mask.shape[1] !== S)) {
      throw new SkdError(`decode mask has shape [${options.mask.shape.join(', ')}], expected [${B}, ${S}]`);
    }
    const mask = options.mask?.dataSync(); // (B*S): which slots are real decides where they go in the cache
    if (this.longFrequencies) this.longRopeSwitch(tokens, mask, state);
    return state.cache.advance(mask, S, (step) =>
      tf.tidy(() =>
        // A cache rebuilt with LongRoPE's long factors keeps them, as transformers' does.
        this.forward(
          tokens,
          tf.tensor1d(step.positions, 'int32'),
          step.attend,
          options.lastOnly === true,
          undefined,
          'logits',
          undefined,
          state.longRope ? Infinity : maxOf(step.positions) + 1,
          mask ? realSlots(mask) : undefined,
        ),
      ),
    );
  }

  /**
   * LongRoPE in a cache: the tokens fed so far are kept per row, and when a pass first takes the
   * sequence past the original context while the cache holds keys rotated by the short factors, the
   * cache is rebuilt from those tokens with the long ones, as transformers' Phi-3 does when it
   * generates past that point (it drops its cache and encodes the whole sequence again). From then on
   * cached decoding equals a full pass over the sequence.
   */
  private longRopeSwitch(tokens: tf.Tensor2D, mask: ArrayLike<number> | undefined, state: DecoderDecodeState): void {
    // Once rebuilt, the cache keeps the long factors and the tokens are not needed again: nothing to read back.
    if (state.longRope) return;
    const [B, S] = tokens.shape;
    const ids = tokens.dataSync();
    const original = (this.config.ropeScaling as { originalContext: number }).originalContext;
    const real = (b: number) => Array.from({ length: S }, (_, s) => b * S + s).filter((i) => !mask || (mask[i] as number) > 0);
    const after = Math.max(...Array.from({ length: B }, (_, b) => (state.lengths[b] as number) + real(b).length));
    if (after > original && !state.longRope && Math.max(...state.lengths) > 0) {
      const history = state.history;
      const width = Math.max(...history.map((row) => row.length));
      state.cache.rollback(history.map(() => 0));
      const padded = history.map((row) => [...row, ...Array<number>(width - row.length).fill(0)]);
      const realSlots = Float32Array.from(history.flatMap((row) => [...row.map(() => 1), ...Array<number>(width - row.length).fill(0)]));
      const again = tf.tensor2d(padded, [B, width], 'int32');
      try {
        state.cache
          .advance(realSlots, width, (step) =>
            tf.tidy(() => this.forward(again, tf.tensor1d(step.positions, 'int32'), step.attend, true, undefined, 'logits', undefined, original + 1)),
          )
          .dispose();
      } finally {
        again.dispose();
      }
    }
    if (after > original) state.longRope = true;
    for (let b = 0; b < B; b++) state.history[b]?.push(...real(b).map((i) => ids[i] as number));
  }

  dispose(): void {
    for (const p of this.params.values()) p.dispose();
    this.lora?.dispose();
    this.frequencies.dispose();
    this.slidingFrequencies?.dispose();
    this.longFrequencies?.dispose();
  }

  /** The scores' scale; under yarn times its attention factor squared (cos and sin carry it, so q and k each do). */
  private get attentionScale(): number {
    const scale = this.config.attentionScale ?? 1 / Math.sqrt(decoderShape(this.config).headDim);
    const scaling = this.config.ropeScaling;
    return scaling?.type === 'yarn' || scaling?.type === 'longrope' ? scale * scaling.attentionFactor * scaling.attentionFactor : scale;
  }

  /** A trainable variable holding `initial`'s values; `initial` is disposed (tf.variable does not take it over). */
  private ownedVariable(name: string, initial: tf.Tensor, trainable: boolean): tf.Variable {
    const variable = tf.variable(initial, trainable, `decoder${this.id}/${name}`);
    initial.dispose();
    return variable;
  }

  private p<R extends tf.Rank>(name: string): tf.Tensor<R> {
    const value = this.params.get(name);
    if (!value) throw new SkdError(`missing parameter ${name}`);
    return value as unknown as tf.Tensor<R>;
  }

  private optional<R extends tf.Rank>(name: string): tf.Tensor<R> | undefined {
    return this.params.get(name) as unknown as tf.Tensor<R> | undefined;
  }

  /** The parameters whose names start with `prefix` (one block's), in a fixed order. */
  private paramsWithPrefix(prefix: string): tf.Tensor[] {
    return [...this.params.entries()].filter(([name]) => name.startsWith(prefix)).map(([, value]) => value);
  }

  private checkLength(T: number): void {
    if (T > this.contextLength) {
      throw new SkdError(`sequence of ${T} tokens exceeds the model's context of ${this.contextLength}`, {
        hint: 'filter or truncate long examples (training.onTooLong: "skip" skips them), or use a model with a longer context (student.options.contextLength, for a model the config defines)',
      });
    }
  }

  /**
   * The network for tokens (B, S) at positions (B*S), with `attend` supplying each layer's
   * attention (over the sequence itself when training, over the KV cache when decoding) → logits
   * (B, S or 1, vocabSize).
   */
  private forward(
    tokens: tf.Tensor2D,
    positions: tf.Tensor1D,
    attend: Attend,
    lastOnly = false,
    checkpointKeep?: readonly tf.Tensor[],
    output: 'logits' | 'features' = 'logits',
    dropoutSeed?: number,
    length = 0,
    slots?: RealSlots,
  ): tf.Tensor3D {
    const { layers, heads, normEpsilon: eps, normOffset: offset, sandwichNorms, postNorms, activation, dModel } = this.config;
    const { headDim, kvHeads } = decoderShape(this.config);
    const windows = layerWindows(this.config);
    const [B, S] = tokens.shape;
    // Padding slots of a decode (left padding, finished rows, unused draft slots) are left out of
    // every position-wise layer: the layers run on the real slots only, and the attention, which
    // addresses slots by (row, column), sees them in place with zeros in the padding.
    const real = slots && tf.tensor1d(slots.real, 'int32'); // (N)
    const spread = slots && tf.tensor1d(slots.spread, 'int32'); // (B*S) into N + 1 rows, the last zeros
    const inPlace = (x: tf.Tensor2D): tf.Tensor2D => (spread ? spreadRows(x, spread) : x);
    const compact = (x: tf.Tensor2D): tf.Tensor2D => (real ? (tf.gather(x, real) as tf.Tensor2D) : x);
    const norm = (x: tf.Tensor2D, name: string) => rmsNorm(x, this.p(name), eps, offset);
    // A projection of layer i by packed weight `weight` (and its bias), plus its adapters' part.
    const dense = (x: tf.Tensor2D, i: number, weight: string, residual?: tf.Tensor2D): tf.Tensor2D => {
      const bias = this.optional<tf.Rank.R1>(`model.layers.${i}.${weight.replace(/weight$/, 'bias')}`);
      const half = this.halves.get(`model.layers.${i}.${weight}`);
      // The adapters' part (with the residual) enters the frozen layer's kernel as its residual.
      const added = (outputs: number) => (this.lora ? (this.lora.delta(x, i, weight, outputs, dropoutSeed, residual) ?? residual) : residual);
      if (half) {
        const sum = added(half.shape[0]);
        return linearHalf(x, half, { transposed: true, ...(bias ? { bias } : {}), ...(sum ? { residual: sum } : {}) });
      }
      const w = this.p<tf.Rank.R2>(`model.layers.${i}.${weight}`);
      if (!this.lora) return linear(x, w, bias, residual);
      return linearFrozen(x, w, bias, added(w.shape[1]));
    };
    const ids = tf.reshape(compact(tf.cast(tf.reshape(tokens, [B * S, 1]), 'int32') as tf.Tensor2D), [-1]) as tf.Tensor1D; // (B*S or N)
    const at = real ? (tf.gather(positions, real) as tf.Tensor1D) : positions; // (B*S or N)
    const table = this.halves.get('model.embed_tokens.weight');
    let h = table ? gatherHalf(table, ids) : (tf.gather(this.p<tf.Rank.R2>('model.embed_tokens.weight'), ids) as tf.Tensor2D); // (B*S, d)
    if (this.config.embedScale) h = tf.mul(h, Math.fround(Math.sqrt(dModel))); // (B*S, d)
    for (let i = 0; i < layers; i++) {
      const p = `model.layers.${i}`;
      const block = (x: tf.Tensor2D): tf.Tensor2D => {
        let y = x;
        const a = postNorms ? y : norm(y, `${p}.input_layernorm.weight`); // (B*S, d)
        const projected = dense(a, i, 'self_attn.qkv_proj.weight'); // (B*S, (H + 2 Hkv) dh)
        const frequencies =
          windows[i] && this.slidingFrequencies
            ? this.slidingFrequencies
            : this.longFrequencies && length > (this.config.ropeScaling as { originalContext: number }).originalContext
              ? this.longFrequencies
              : this.frequencies;
        const qkv = rotary(this.config.qkNorm ? this.headNorms(projected, i) : projected, at, frequencies, {
          heads,
          kvHeads,
          headDim,
        }); // (B*S, (H + 2 Hkv) dh)
        const attended = compact(attend(i, inPlace(qkv))); // (B*S or N, H dh)
        y =
          sandwichNorms || postNorms
            ? tf.add(y, norm(dense(attended, i, 'self_attn.o_proj.weight'), `${p}.post_attention_layernorm.weight`))
            : dense(attended, i, 'self_attn.o_proj.weight', y); // (B*S, d)
        const m = postNorms ? y : norm(y, sandwichNorms ? `${p}.pre_feedforward_layernorm.weight` : `${p}.post_attention_layernorm.weight`); // (B*S, d)
        const hidden = gatedActivation(dense(m, i, 'mlp.gate_up_proj.weight'), activation); // (B*S, ff)
        y =
          sandwichNorms || postNorms
            ? tf.add(y, norm(dense(hidden, i, 'mlp.down_proj.weight'), `${p}.post_feedforward_layernorm.weight`))
            : dense(hidden, i, 'mlp.down_proj.weight', y); // (B*S, d)
        return y;
      };
      // With adapters, the block's trainable tensors are its adapters; its frozen weights are constants to it.
      const checkpoint = checkpointKeep && { params: this.lora ? this.lora.layerVariables(i) : this.paramsWithPrefix(`${p}.`), keep: checkpointKeep };
      h = runBlock(block, h, checkpoint);
    }
    h = inPlace(h); // (B*S, d), zeros at padding: their logits are 0
    if (lastOnly) h = tf.reshape(tf.slice(tf.reshape(h, [B, S, -1]), [0, S - 1, 0], [B, 1, -1]), [B, -1]) as tf.Tensor2D; // (B, d)
    const final = norm(h, 'model.norm.weight'); // (B*S or B, d)
    if (output === 'features') return tf.reshape(final, [B, lastOnly ? 1 : S, dModel]) as tf.Tensor3D; // (B, S or 1, d)
    const headName = this.config.tiedHead ? 'model.embed_tokens.weight' : 'lm_head.weight';
    const logits = this.project(final, this.halves.get(headName) ?? this.p<tf.Rank.R2>(headName)); // (B*S or B, vocab)
    return tf.reshape(logits, [B, lastOnly ? 1 : S, this.vocabSize]) as tf.Tensor3D; // (B, S or 1, vocab)
  }

  /**
   * The query and key norms on packed q|k|v (N, (H + 2 Hkv) dh), v as it was: RMSNorm over each head's
   * dh (Qwen3), or over the whole q and k projections (OLMo 2).
   */
  private headNorms(qkv: tf.Tensor2D, layer: number): tf.Tensor2D {
    const { headDim, kvHeads } = decoderShape(this.config);
    const { heads, normEpsilon: eps, normOffset: offset } = this.config;
    const N = qkv.shape[0];
    const [q, k, v] = tf.split(qkv, [heads * headDim, kvHeads * headDim, kvHeads * headDim], 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
    const perHead = this.config.qkNorm === 'head';
    const norm = (x: tf.Tensor2D, count: number, name: string) => {
      const weight = this.p<tf.Rank.R1>(`model.layers.${layer}.self_attn.${name}.weight`);
      if (!perHead) return rmsNorm(x, weight, eps, offset);
      return tf.reshape(rmsNorm(tf.reshape(x, [N * count, headDim]) as tf.Tensor2D, weight, eps, offset), [N, count * headDim]);
    };
    return tf.concat([norm(q, heads, 'q_norm'), norm(k, kvHeads, 'k_norm'), v], 1) as tf.Tensor2D;
  }

  /** Hidden states (n, d) through the output weight (V', d) → logits (n, vocab): the tokenizer's columns, soft-capped where the family does. */
  private project(hidden: tf.Tensor2D, head: tf.Tensor2D | HalfMatrix): tf.Tensor2D {
    let logits = head instanceof HalfMatrix ? linearHalf(hidden, head, { transposed: true }) : (tf.matMul(hidden, head, false, true) as tf.Tensor2D); // (n, V')
    if (this.vocabSize < this.config.vocabSize) logits = tf.slice(logits, [0, 0], [-1, this.vocabSize]); // (n, vocab)
    if (this.config.finalSoftcap) logits = softcapped(logits, this.config.finalSoftcap);
    return logits;
  }
}

/** A layer's projection weight (stored (in, out) as a parameter, (out, in) when held in 16 bits). */
function isProjection(name: string): boolean {
  return name.startsWith('model.layers.') && name.endsWith('_proj.weight');
}

/** A 16-bit matrix held as parameter `name` in the parameter's own layout: a projection back to (in, out) (a copy). */
export function halfAsParameter(name: string, value: HalfMatrix): HalfMatrix {
  return isProjection(name) ? value.transposed() : value;
}

/** A 16-bit matrix as the float32 parameter `name` (a new tensor): a projection back to (in, out). */
function widened(name: string, value: HalfMatrix): tf.Tensor2D {
  return isProjection(name) ? tf.tidy(() => tf.transpose(value.toTensor())) : value.toTensor();
}

/** The longest row's real length under a (B, T) attention mask, read from the mask's own values. */
function longestRow(mask: tf.Tensor2D): number {
  const [B, T] = mask.shape;
  const values = mask.dataSync();
  let longest = 0;
  for (let b = 0; b < B; b++) {
    let n = 0;
    for (let t = 0; t < T; t++) n += values[b * T + t] as number;
    longest = Math.max(longest, n);
  }
  return longest;
}

/** A tensor's values as float32 (read, not kept). */
function float32Values(value: tf.Tensor): Float32Array {
  if (value.dtype === 'float32') return value.dataSync() as Float32Array;
  const cast = tf.cast(value, 'float32');
  try {
    return cast.dataSync() as Float32Array;
  } finally {
    cast.dispose();
  }
}

/** A decode's real slots (indices into B*S), and for every slot its row among them (N for padding). */
interface RealSlots {
  readonly real: Int32Array;
  readonly spread: Int32Array;
}

/** The real slots of a decode mask, or undefined when every slot is real (nothing to leave out) or none is. */
function realSlots(mask: ArrayLike<number>): RealSlots | undefined {
  let n = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) n++;
  if (n === mask.length || n === 0) return undefined;
  const real = new Int32Array(n);
  const spread = new Int32Array(mask.length).fill(n);
  for (let i = 0, j = 0; i < mask.length; i++) {
    if (mask[i] === 0) continue;
    real[j] = i;
    spread[i] = j++;
  }
  return { real, spread };
}

function maxOf(values: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) max = Math.max(max, values[i] as number);
  return max;
}

/**
 * Positions of a right- or left-padded batch: each real token's index among its row's real tokens,
 * so padding never shifts positions (padding slots repeat a neighbour's). (B*T) int32.
 */
function positionsFrom(mask: tf.Tensor2D): tf.Tensor1D {
  const [B, T] = mask.shape;
  return tf.reshape(tf.cast(tf.maximum(tf.sub(tf.cumsum(mask, 1), 1), 0), 'int32'), [B * T]) as tf.Tensor1D; // (B*T)
}

/** Normal(0, 0.02) matrices and embeddings, zero biases, norms at identity ((offset + w) = 1). */
function initialValue(name: string, shape: number[], seed: number, config: DecoderConfig): tf.Tensor {
  if (name.endsWith('norm.weight')) return config.normOffset === 1 ? tf.zeros(shape) : tf.ones(shape);
  if (name.endsWith('.bias')) return tf.zeros(shape);
  return tf.truncatedNormal(shape, 0, 0.02, 'float32', seed);
}

/** A decoder's decode: its KV cache (native when the backend has the kernel) and per-row lengths. */
export class DecoderDecodeState implements DecodeState {
  /** The tokens each row holds (kept for LongRoPE, whose cache is rebuilt once past the original context). */
  readonly history: number[][];
  /** Whether the cache's keys are rotated by LongRoPE's long factors. */
  longRope = false;

  constructor(
    readonly owner: DecoderModel,
    readonly cache: KvCache,
  ) {
    this.history = Array.from({ length: cache.batchSize }, () => []);
  }

  get batchSize(): number {
    return this.cache.batchSize;
  }

  get lengths(): readonly number[] {
    return this.cache.lengths;
  }

  rollback(keep: readonly (number | undefined)[]): void {
    this.cache.rollback(keep);
    keep.forEach((n, b) => {
      if (n !== undefined) this.history[b]?.splice(n);
    });
  }

  dispose(): void {
    this.cache.dispose();
  }
}
