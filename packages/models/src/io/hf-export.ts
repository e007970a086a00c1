import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { SkdError, type Tokenizer } from '@skd/core';
import { BpeTokenizer } from '../bpe-tokenizer';
import { DecoderModel, loraNames, loraPieces } from '../decoder';
import { GptModel } from '../gpt';
import { HfTokenizer } from '../tokenizers';
import { writeFileAtomic, writeFolderAtomic } from './atomic';
import { huggingFaceConfigText, huggingFaceDecoderConfig } from './hf-config';
import { exportHuggingFaceGpt2 } from './hf-gpt2';
import { decoderWeightPlans } from './hf-model';
import { writeSafetensorsStreaming, type StreamedArray } from './safetensors';
import { writeBpeTokenizer } from './tokenizer-files';

export interface HuggingFaceExportOptions {
  readonly model: GptModel | DecoderModel;
  readonly tokenizer: Tokenizer;
  /** Replace an existing folder (default: refuse). */
  readonly overwrite?: boolean;
}

/**
 * Writes a model as a Hugging Face folder transformers loads: GPT-2 for a GptModel, its own family
 * (Llama, Qwen2, Qwen3, Mistral, Phi-3, OLMo 2, Gemma, Gemma 2, Gemma 3) for a DecoderModel, with the tokenizer's files: a Hugging Face
 * tokenizer's as they were read (the same BOS framing, chat template and stop ids), an skd BPE
 * tokenizer's with a post-processor that adds BOS where skd's prompts have it.
 */
export async function exportHuggingFace(dir: string, options: HuggingFaceExportOptions): Promise<void> {
  if (options.model instanceof GptModel) return exportHuggingFaceGpt2(dir, { ...options, model: options.model });
  return exportHuggingFaceDecoder(dir, { ...options, model: options.model });
}

/**
 * A DecoderModel as a Hugging Face folder: config.json of its family, model.safetensors (float32,
 * Hugging Face's names and (out, in) layouts, written one tensor at a time), the tokenizer files and
 * generation_config.json. Written under a temporary name, then renamed.
 */
export async function exportHuggingFaceDecoder(dir: string, options: HuggingFaceExportOptions & { readonly model: DecoderModel }): Promise<void> {
  if (options.model.lora) {
    // Adapters are written merged into the weights they sit on: an ordinary folder of the family.
    const weights = options.model.mergedWeights();
    let merged: DecoderModel;
    try {
      merged = new DecoderModel(options.model.config, { weights, outputVocab: options.model.vocabSize });
    } finally {
      weights.forEach((t) => t.dispose());
    }
    try {
      return await exportHuggingFaceDecoder(dir, { ...options, model: merged });
    } finally {
      merged.dispose();
    }
  }
  const { model, tokenizer } = options;
  if (!(tokenizer instanceof HfTokenizer) && !(tokenizer instanceof BpeTokenizer)) {
    throw new SkdError(`a ${tokenizer.kind} tokenizer has no Hugging Face form (tokenizer.json)`, { hint: 'train the model with an "hf" or "bpe" tokenizer' });
  }
  const target = path.resolve(dir);
  if (fs.existsSync(target) && !options.overwrite) throw new SkdError(`${target} already exists`, { hint: 'choose another --out, or remove it' });
  const special = tokenizer.special;
  const stops = [special.eos, ...(special.stop ?? [])];
  const generation = (tokenizer instanceof HfTokenizer ? tokenizer.files.generation : undefined) ?? {
    ...(special.bos !== undefined ? { bos_token_id: special.bos } : {}),
    eos_token_id: stops.length > 1 ? stops : special.eos,
    pad_token_id: special.pad,
  };
  const config = huggingFaceDecoderConfig(model.config, { bos: special.bos, eos: stops.length > 1 ? stops : special.eos, pad: special.pad });
  await writeFolderAtomic(
    target,
    async (tmp) => {
      writeFileAtomic(path.join(tmp, 'config.json'), huggingFaceConfigText(config));
      await writeSafetensorsStreaming(path.join(tmp, 'model.safetensors'), huggingFaceTensors(model), { format: 'pt' });
      if (tokenizer instanceof HfTokenizer) {
        writeFileAtomic(path.join(tmp, 'tokenizer.json'), `${JSON.stringify(tokenizer.files.tokenizer)}\n`);
        if (tokenizer.files.config !== undefined)
          writeFileAtomic(path.join(tmp, 'tokenizer_config.json'), `${JSON.stringify(tokenizer.files.config, null, 2)}\n`);
      } else {
        writeBpeTokenizer(path.join(tmp, 'tokenizer.json'), tokenizer);
      }
      writeFileAtomic(path.join(tmp, 'generation_config.json'), `${JSON.stringify(generation, null, 2)}\n`);
    },
    { replace: true },
  );
}

/** The model's parameters under Hugging Face's names and layouts: the loader's plans, run backwards. */
function huggingFaceTensors(model: DecoderModel): StreamedArray[] {
  const out: StreamedArray[] = [];
  // A layer's packed parameters are each read once, however the written tensors interleave (few kept).
  const cache = new Map<string, Float32Array>();
  const valuesOf = async (name: string): Promise<Float32Array> => {
    let values = cache.get(name);
    if (!values) {
      values = (await (model.params.get(name) as tf.Variable).data()) as Float32Array;
      cache.set(name, values);
      if (cache.size > 4) cache.delete(cache.keys().next().value as string);
    }
    return values;
  };
  for (const [name, plan] of decoderWeightPlans(model.config)) {
    for (const piece of plan.pieces) {
      out.push({
        name: piece.source,
        shape: piece.shape,
        dtype: 'F32',
        data: async () => {
          const values = await valuesOf(name);
          if (!piece.transpose) return plan.pieces.length === 1 ? values : values.slice(piece.at, piece.at + (piece.shape[0] as number));
          const [rows, cols] = piece.shape as [number, number];
          const total = plan.shape[1] as number;
          const stored = new Float32Array(rows * cols);
          for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) stored[r * cols + c] = values[c * total + piece.at + r] as number;
          return stored;
        },
      });
    }
  }
  return out;
}

export interface PeftAdapterExportOptions {
  readonly model: DecoderModel;
  /** What adapter_config.json names as the base model (default: the folder the frozen weights were read from). */
  readonly base?: string;
  /** Replace an existing folder (default: refuse). */
  readonly overwrite?: boolean;
}

/**
 * A LoRA student's adapters as a PEFT adapter folder (adapter_config.json, adapter_model.safetensors):
 * each adapter under the module it sits on, A as (r, in) and B as (out, r), scaled by alpha / r as
 * PEFT's LoRA layers scale them, so `PeftModel.from_pretrained(base, folder)` on the frozen weights
 * gives the student's logits.
 */
export async function exportPeftAdapter(dir: string, options: PeftAdapterExportOptions): Promise<void> {
  const { model } = options;
  const lora = model.lora;
  if (!lora) throw new SkdError('this model has no LoRA adapters to export', { hint: 'export it whole (without --adapter)' });
  if (model.config.architecture === 'phi3') {
    throw new SkdError("a Phi-3 folder fuses q|k|v and gate|up into single modules, so skd's per-projection adapters have no PEFT form there", {
      hint: 'export the merged model (without --adapter)',
    });
  }
  const target = path.resolve(dir);
  if (fs.existsSync(target) && !options.overwrite) throw new SkdError(`${target} already exists`, { hint: 'choose another --out, or remove it' });
  const pieces = loraPieces(model.config).filter((piece) => lora.config.targets.includes(piece.target));
  const config = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: options.base ?? model.loraBase ?? null,
    inference_mode: true,
    r: lora.config.rank,
    lora_alpha: lora.config.alpha,
    lora_dropout: lora.config.dropout,
    target_modules: pieces.map((piece) => piece.module.split('.').pop() as string),
    bias: 'none',
    fan_in_fan_out: false,
    use_rslora: false,
    use_dora: false,
    modules_to_save: null,
    init_lora_weights: true,
  };
  const tensors: StreamedArray[] = [];
  for (let layer = 0; layer < model.config.layers; layer++) {
    for (const piece of pieces) {
      const names = loraNames(layer, piece);
      const module = `base_model.model.model.layers.${layer}.${piece.module}`;
      // skd holds A as (in, r) and B as (r, out), products from the left; PEFT's Linear weights are (out, in).
      for (const [name, source] of [
        [`${module}.lora_A.weight`, names.a],
        [`${module}.lora_B.weight`, names.b],
      ] as const) {
        const variable = lora.variables.get(source) as tf.Variable;
        const [rows, cols] = variable.shape as [number, number];
        tensors.push({
          name,
          shape: [cols, rows],
          dtype: 'F32',
          data: async () => {
            const values = (await variable.data()) as Float32Array;
            const out = new Float32Array(rows * cols);
            for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c] as number;
            return out;
          },
        });
      }
    }
  }
  await writeFolderAtomic(
    target,
    async (tmp) => {
      writeFileAtomic(path.join(tmp, 'adapter_config.json'), `${JSON.stringify(config, null, 2)}\n`);
      await writeSafetensorsStreaming(path.join(tmp, 'adapter_model.safetensors'), tensors, { format: 'pt' });
    },
    { replace: true },
  );
}
