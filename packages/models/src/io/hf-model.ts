import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { FormatError, SkdError } from '@skd/core';
import { HalfMatrix, type HalfDtype } from '@skd/ops';
import { DecoderModel, decoderParameterShapes, decoderShape, type DecoderArchitecture, type DecoderConfig } from '../decoder';
import { GptModel, gptParameterShapes, type GptConfig } from '../gpt';
import { readJson } from './atomic';
import { decoderConfigFromHuggingFace, gptConfigFromHuggingFace, hfModelType } from './hf-config';
import { loadPlannedWeights, readWeightIndex, storedMatrixDtype, type StoredTensor, type WeightPiece, type WeightPlan } from './hf-weights';

/** What a Hugging Face folder's config.json describes. */
export type HfModelConfig = { readonly kind: 'gpt'; readonly config: GptConfig } | { readonly kind: 'decoder'; readonly config: DecoderConfig };

/** Reads and checks `config.json` of a Hugging Face model folder (no weights are read). */
export function readHuggingFaceConfig(dir: string): HfModelConfig {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory())
    throw new FormatError(dir, 'no such model folder', {
      hint: 'point at a folder with config.json and safetensors weights (relative paths resolve from the config file)',
    });
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) throw new FormatError(dir, 'not a Hugging Face model folder: config.json is missing');
  const hf = readJson(file, 'config.json') as Record<string, unknown>;
  if (hf === null || typeof hf !== 'object' || Array.isArray(hf)) throw new FormatError(file, 'not a JSON object');
  const type = hfModelType(hf, file);
  if (type === 'gpt2') return { kind: 'gpt', config: gptConfigFromHuggingFace(hf as never, file) };
  return { kind: 'decoder', config: decoderConfigFromHuggingFace(hf, type as DecoderArchitecture, file) };
}

/**
 * How each decoder parameter is assembled from a Hugging Face checkpoint: q, k and v (stored
 * (out, in)) become the columns of one (in, q + k + v) matrix, gate and up of one (in, 2 ff); the
 * other projections are transposed; the embedding, the head and the norms are taken as stored.
 */
export function decoderWeightPlans(config: DecoderConfig): Map<string, WeightPlan> {
  const { headDim, kvHeads, dFf } = decoderShape(config);
  const d = config.dModel;
  const q = config.heads * headDim;
  const kv = kvHeads * headDim;
  const plans = new Map<string, WeightPlan>();
  const whole = (source: string, shape: readonly number[]): WeightPiece => ({ source, shape, transpose: false, at: 0 });
  for (const [name, shape] of decoderParameterShapes(config)) {
    const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
    const p = m ? `model.layers.${m[1]}` : '';
    const part = m?.[2];
    const columns = (sources: [string, number][]): WeightPiece[] => {
      let at = 0;
      return sources.map(([source, out]) => {
        const piece = { source, shape: [out, d], transpose: true, at };
        at += out;
        return piece;
      });
    };
    const packed = (sources: [string, number][]): WeightPiece[] => {
      let at = 0;
      return sources.map(([source, out]) => {
        const piece = { source, shape: [out], transpose: false, at };
        at += out;
        return piece;
      });
    };
    let pieces: WeightPiece[];
    switch (part) {
      case 'self_attn.qkv_proj.weight':
        // Phi-3 stores q|k|v fused, as skd packs them (transposed).
        pieces =
          config.architecture === 'phi3'
            ? columns([[`${p}.self_attn.qkv_proj.weight`, q + 2 * kv]])
            : columns([
                [`${p}.self_attn.q_proj.weight`, q],
                [`${p}.self_attn.k_proj.weight`, kv],
                [`${p}.self_attn.v_proj.weight`, kv],
              ]);
        break;
      case 'self_attn.qkv_proj.bias':
        pieces = packed([
          [`${p}.self_attn.q_proj.bias`, q],
          [`${p}.self_attn.k_proj.bias`, kv],
          [`${p}.self_attn.v_proj.bias`, kv],
        ]);
        break;
      case 'self_attn.o_proj.weight':
        pieces = [{ source: `${p}.self_attn.o_proj.weight`, shape: [d, q], transpose: true, at: 0 }];
        break;
      case 'mlp.gate_up_proj.weight':
        // Phi-3 stores gate|up fused in that order, as skd packs them (transposed).
        pieces =
          config.architecture === 'phi3'
            ? columns([[`${p}.mlp.gate_up_proj.weight`, 2 * dFf]])
            : columns([
                [`${p}.mlp.gate_proj.weight`, dFf],
                [`${p}.mlp.up_proj.weight`, dFf],
              ]);
        break;
      case 'mlp.gate_up_proj.bias':
        pieces = packed([
          [`${p}.mlp.gate_proj.bias`, dFf],
          [`${p}.mlp.up_proj.bias`, dFf],
        ]);
        break;
      case 'mlp.down_proj.weight':
        pieces = [{ source: `${p}.mlp.down_proj.weight`, shape: [d, dFf], transpose: true, at: 0 }];
        break;
      default:
        pieces = [whole(name, shape)];
    }
    plans.set(name, { shape, pieces });
  }
  return plans;
}

/** GPT-2's parameters are stored as skd holds them (Conv1D layout), under `transformer.` or not. */
function gptWeightPlans(config: GptConfig, tensors: ReadonlyMap<string, StoredTensor>): Map<string, WeightPlan> {
  const prefixed = [...tensors.keys()].some((n) => n.startsWith('transformer.'));
  const plans = new Map<string, WeightPlan>();
  for (const [name, shape] of gptParameterShapes(config)) {
    const source = prefixed && name !== 'lm_head.weight' ? `transformer.${name}` : name;
    plans.set(name, { shape, pieces: [{ source, shape, transpose: false, at: 0 }] });
  }
  return plans;
}

/** Tensors a checkpoint may hold that are not parameters: GPT-2's causal-mask buffers, cached rotary frequencies. */
const BUFFERS = /(\.attn\.(bias|masked_bias)|rotary_emb\.inv_freq)$/;

export interface LoadHuggingFaceOptions {
  /** Logit columns to keep (the tokenizer's size, when the embedding is padded past it). */
  readonly outputVocab?: number;
  /**
   * How the weight matrices are held: float32 (the default), a 16-bit format (a frozen Llama-family
   * model: see DecoderInit.dtype), or "stored": as the checkpoint stores them (storedMatrixDtype).
   */
  readonly dtype?: 'float32' | HalfDtype | 'stored';
}

/**
 * Loads a Hugging Face model folder: `config.json` and safetensors weights (one file or shards,
 * F32, F16 or BF16, converted to float32 on load, one parameter at a time). Llama, Qwen2, Gemma and
 * Gemma 2 become a DecoderModel, GPT-2 a GptModel. A head stored beside a tied embedding must equal
 * it (it is then dropped).
 */
export function loadHuggingFaceModel(dir: string, options: LoadHuggingFaceOptions = {}): GptModel | DecoderModel {
  const described = readHuggingFaceConfig(dir);
  const index = readWeightIndex(dir);
  const { tensors } = index;
  const tied = described.config.tiedHead;
  const plans = described.kind === 'decoder' ? decoderWeightPlans(described.config) : gptWeightPlans(described.config, tensors);
  const storedHead = tied ? [...tensors.keys()].find((n) => n === 'lm_head.weight') : undefined;
  if (storedHead)
    plans.set(storedHead, {
      shape: [described.config.vocabSize, described.config.dModel],
      pieces: [{ source: storedHead, shape: [described.config.vocabSize, described.config.dModel], transpose: false, at: 0 }],
    });
  const asked = options.dtype ?? 'float32';
  const dtype = asked === 'stored' ? (described.kind === 'gpt' ? 'float32' : storedMatrixDtype(index)) : asked;
  if (dtype !== 'float32' && described.kind === 'gpt')
    throw new SkdError(`${dir}: GPT-2 models are held in float32; ${dtype} weights are for Llama-family teachers`, { hint: 'set dtype "float32"' });
  const half = dtype === 'float32' ? undefined : dtype;
  const weights = loadPlannedWeights(index, plans, (name) => BUFFERS.test(name), half ? { half } : {});
  const release = () => weights.forEach((t) => (t instanceof HalfMatrix ? undefined : t.dispose()));
  try {
    if (storedHead) {
      const embedding = weights.get(described.kind === 'decoder' ? 'model.embed_tokens.weight' : 'wte.weight') as tf.Tensor | HalfMatrix;
      const head = weights.get(storedHead) as tf.Tensor | HalfMatrix;
      const same =
        embedding instanceof HalfMatrix || head instanceof HalfMatrix
          ? embedding instanceof HalfMatrix && head instanceof HalfMatrix && Buffer.from(embedding.data.buffer).equals(Buffer.from(head.data.buffer))
          : sameValues(embedding.dataSync(), head.dataSync());
      if (!same) {
        throw new FormatError(
          (tensors.get(storedHead) as StoredTensor).file,
          'lm_head.weight differs from the token embedding although tie_word_embeddings is true',
          {
            hint: 'set "tie_word_embeddings": false in config.json to load a separate head',
          },
        );
      }
      if (!(head instanceof HalfMatrix)) head.dispose();
      weights.delete(storedHead);
    }
    try {
      if (described.kind === 'gpt') return new GptModel(described.config, { weights: weights as Map<string, tf.Tensor> });
      return new DecoderModel(described.config, {
        weights,
        ...(half ? { dtype: half } : {}),
        ...(options.outputVocab !== undefined ? { outputVocab: options.outputVocab } : {}),
      });
    } catch (cause) {
      throw new FormatError(dir, (cause as Error).message, { cause });
    }
  } finally {
    release();
  }
}

/** Element-wise equality of two loaded tensors' values (read on the host: no device work at load). */
function sameValues(a: tf.backend_util.TypedArray | string[] | Uint8Array[], b: tf.backend_util.TypedArray | string[] | Uint8Array[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
