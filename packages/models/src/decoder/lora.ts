import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { SkdError } from '@skd/core';
import { linear } from '@skd/ops';
import { decoderShape, type DecoderConfig } from './config';

/** The projections an adapter can sit on, by the module names Llama-family checkpoints use. */
export const LORA_TARGETS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export const loraConfigSchema = z.strictObject({
  rank: z.number().int().min(1).default(8).describe('rank r of each adapter: A is (in, r), B is (r, out)'),
  alpha: z.number().positive().default(16).describe('scale of the adapters: their product is multiplied by alpha / rank'),
  dropout: z.number().min(0).lt(1).default(0).describe("dropout on each adapter's input while training (the base layers see the undropped input)"),
  targets: z
    .array(z.enum(LORA_TARGETS))
    .min(1)
    .default([...LORA_TARGETS])
    .refine((targets) => new Set(targets).size === targets.length, 'targets must not repeat')
    .describe('projections that get an adapter: q, k, v, o (attention), gate, up, down (MLP)'),
});
export type LoraConfig = z.output<typeof loraConfigSchema>;

/** One adapter's place: the packed skd weight it adds to, the columns it covers there, and its input width. */
export interface LoraPiece {
  readonly target: LoraTarget;
  /** The Hugging Face module, e.g. `self_attn.q_proj` (PEFT names the adapter after it). */
  readonly module: string;
  /** The skd weight it adds to, e.g. `self_attn.qkv_proj.weight`. */
  readonly weight: string;
  readonly at: number;
  readonly width: number;
  readonly inputs: number;
}

/** Every target's piece, in the order of the packed weights' columns. */
export function loraPieces(config: DecoderConfig): readonly LoraPiece[] {
  const { headDim, kvHeads, dFf } = decoderShape(config);
  const d = config.dModel;
  const q = config.heads * headDim;
  const kv = kvHeads * headDim;
  return [
    { target: 'q', module: 'self_attn.q_proj', weight: 'self_attn.qkv_proj.weight', at: 0, width: q, inputs: d },
    { target: 'k', module: 'self_attn.k_proj', weight: 'self_attn.qkv_proj.weight', at: q, width: kv, inputs: d },
    { target: 'v', module: 'self_attn.v_proj', weight: 'self_attn.qkv_proj.weight', at: q + kv, width: kv, inputs: d },
    { target: 'o', module: 'self_attn.o_proj', weight: 'self_attn.o_proj.weight', at: 0, width: d, inputs: q },
    { target: 'gate', module: 'mlp.gate_proj', weight: 'mlp.gate_up_proj.weight', at: 0, width: dFf, inputs: d },
    { target: 'up', module: 'mlp.up_proj', weight: 'mlp.gate_up_proj.weight', at: dFf, width: dFf, inputs: d },
    { target: 'down', module: 'mlp.down_proj', weight: 'mlp.down_proj.weight', at: 0, width: d, inputs: dFf },
  ];
}

/** Names of layer `layer`'s adapter matrices for a piece: `model.layers.3.self_attn.q_proj.lora_A` (in, r) and `.lora_B` (r, out). */
export function loraNames(layer: number, piece: LoraPiece): { readonly a: string; readonly b: string } {
  const prefix = `model.layers.${layer}.${piece.module}`;
  return { a: `${prefix}.lora_A`, b: `${prefix}.lora_B` };
}

/** Every adapter matrix's name and shape, layer by layer. */
export function loraParameterShapes(config: DecoderConfig, lora: LoraConfig): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const pieces = loraPieces(config).filter((piece) => lora.targets.includes(piece.target));
  for (let layer = 0; layer < config.layers; layer++) {
    for (const piece of pieces) {
      const { a, b } = loraNames(layer, piece);
      shapes.set(a, [piece.inputs, lora.rank]);
      shapes.set(b, [lora.rank, piece.width]);
    }
  }
  return shapes;
}

/**
 * Low-rank adapters over a decoder's frozen projections (LoRA: W x + (alpha / r) B A x). skd packs
 * q|k|v and gate|up into one matrix each, so the adapters of one packed matrix run together: their
 * A matrices side by side, their B matrices placed at their own columns of a block matrix, one
 * product pair per packed matrix whichever of its parts are targeted. A starts uniform in
 * ±1/sqrt(in) and B at zero, so a new adapter leaves the model as it was.
 */
export class LoraAdapters {
  readonly scale: number;
  readonly variables: ReadonlyMap<string, tf.Variable>;
  private readonly pieces: readonly LoraPiece[];

  constructor(
    readonly model: DecoderConfig,
    readonly config: LoraConfig,
    options: { readonly seed: number; readonly prefix: string; readonly values?: ReadonlyMap<string, tf.Tensor> },
  ) {
    this.scale = config.alpha / config.rank;
    this.pieces = loraPieces(model).filter((piece) => config.targets.includes(piece.target));
    const shapes = loraParameterShapes(model, config);
    const variables = new Map<string, tf.Variable>();
    try {
      if (options.values) {
        const extra = [...options.values.keys()].filter((name) => !shapes.has(name));
        if (extra.length) throw new SkdError(`adapter weights hold matrices this LoRA config does not have: ${extra.slice(0, 4).join(', ')}`);
      }
      let i = 0;
      for (const [name, shape] of shapes) {
        const given = options.values?.get(name);
        if (options.values && !given) throw new SkdError(`adapter weights lack "${name}" (shape [${shape.join(', ')}])`);
        if (given && given.shape.join() !== shape.join())
          throw new SkdError(`adapter "${name}" must have shape [${shape.join(', ')}], got [${given.shape.join(', ')}]`);
        const bound = 1 / Math.sqrt(shape[0] as number);
        const initial = given
          ? tf.cast(given, 'float32')
          : name.endsWith('.lora_A')
            ? tf.randomUniform(shape, -bound, bound, 'float32', options.seed + 104729 * i)
            : tf.zeros(shape);
        variables.set(name, tf.variable(initial, true, `${options.prefix}/${name}`));
        initial.dispose();
        i++;
      }
    } catch (error) {
      variables.forEach((v) => v.dispose());
      throw error;
    }
    this.variables = variables;
  }

  /** Whether the packed weight `weight` (e.g. `self_attn.qkv_proj.weight`) has adapters. */
  covers(weight: string): boolean {
    return this.pieces.some((piece) => piece.weight === weight);
  }

  /** Layer `layer`'s adapter matrices, in a fixed order (what its checkpointed block differentiates). */
  layerVariables(layer: number): tf.Variable[] {
    return this.pieces.flatMap((piece) => {
      const { a, b } = loraNames(layer, piece);
      return [this.variable(a), this.variable(b)];
    });
  }

  /**
   * The adapters' addition to packed weight `weight` of layer `layer` for inputs x (N, in) → (N, out),
   * plus `residual` when given (one kernel: no separate sum is held for the backward pass), or
   * undefined where the weight has no adapters. With `dropoutSeed` (training), each adapter's input
   * is dropped out with its own mask, as separate LoRA modules do.
   */
  delta(x: tf.Tensor2D, layer: number, weight: string, total: number, dropoutSeed?: number, residual?: tf.Tensor2D): tf.Tensor2D | undefined {
    const pieces = this.pieces.filter((piece) => piece.weight === weight);
    if (pieces.length === 0) return undefined;
    return tf.tidy(() => {
      const dropping = this.config.dropout > 0 && dropoutSeed !== undefined;
      const as = pieces.map((piece) => this.variable(loraNames(layer, piece).a) as tf.Tensor2D);
      const low = dropping
        ? concatColumns(
            pieces.map((piece, k) =>
              tf.matMul(
                tf.dropout(x, this.config.dropout, undefined, seedOf(dropoutSeed, layer, LORA_TARGETS.indexOf(piece.target))) as tf.Tensor2D,
                as[k] as tf.Tensor2D,
              ),
            ),
          )
        : (tf.matMul(x, concatColumns(as)) as tf.Tensor2D); // (N, r · pieces)
      return linear(low, tf.mul(this.blockB(layer, pieces, total), this.scale) as tf.Tensor2D, undefined, residual); // (N, out)
    });
  }

  /** Weight W of layer `layer` with its adapters merged in: W + (alpha / r) A B. */
  merged(layer: number, weight: string, w: tf.Tensor2D): tf.Tensor2D {
    const pieces = this.pieces.filter((piece) => piece.weight === weight);
    if (pieces.length === 0) return tf.clone(w);
    return tf.tidy(() => {
      const a = concatColumns(pieces.map((piece) => this.variable(loraNames(layer, piece).a) as tf.Tensor2D));
      return tf.add(w, tf.mul(tf.matMul(a, this.blockB(layer, pieces, w.shape[1])), this.scale)) as tf.Tensor2D;
    });
  }

  dispose(): void {
    this.variables.forEach((v) => v.dispose());
  }

  /** The B matrices of `pieces` at their columns of a (r · pieces, total) block matrix, zero elsewhere. */
  private blockB(layer: number, pieces: readonly LoraPiece[], total: number): tf.Tensor2D {
    const rows = pieces.map((piece) => {
      const b = this.variable(loraNames(layer, piece).b) as tf.Tensor2D;
      return piece.at === 0 && piece.width === total
        ? b
        : (tf.pad(b, [
            [0, 0],
            [piece.at, total - piece.at - piece.width],
          ]) as tf.Tensor2D);
    });
    return rows.length === 1 ? (rows[0] as tf.Tensor2D) : (tf.concat(rows, 0) as tf.Tensor2D);
  }

  private variable(name: string): tf.Variable {
    const v = this.variables.get(name);
    if (!v) throw new SkdError(`missing adapter ${name}`);
    return v;
  }
}

function concatColumns(parts: readonly tf.Tensor2D[]): tf.Tensor2D {
  return parts.length === 1 ? (parts[0] as tf.Tensor2D) : (tf.concat(parts as tf.Tensor2D[], 1) as tf.Tensor2D);
}

/** A dropout seed per step, layer and adapter (int32-safe). */
function seedOf(seed: number, layer: number, target: number): number {
  return (Math.abs(Math.trunc(seed)) * 7919 + layer * 16 + target) % 2147483647;
}
