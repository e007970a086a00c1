import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { FormatError } from '@skd/core';
import { GptModel, gptConfigSchema, type GptConfig } from '../gpt';
import { readSafetensors } from './safetensors';

/** The fields of a Hugging Face GPT-2 `config.json` that shape the network. */
interface HfGpt2Config {
  model_type?: string;
  vocab_size: number;
  n_positions?: number;
  n_ctx?: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  n_inner?: number | null;
  layer_norm_epsilon?: number;
  activation_function?: string;
  tie_word_embeddings?: boolean;
}

/** Buffers GPT-2 checkpoints may carry that are not parameters (the causal mask). */
const BUFFERS = /\.attn\.(bias|masked_bias)$/;

/** Our config for a Hugging Face GPT-2 config, or a FormatError saying what is unsupported. */
export function gptConfigFromHuggingFace(hf: HfGpt2Config, source: string): GptConfig {
  if (hf.model_type !== undefined && hf.model_type !== 'gpt2') {
    throw new FormatError(source, `model_type ${JSON.stringify(hf.model_type)} is not supported; skd loads GPT-2-style checkpoints (model_type "gpt2")`);
  }
  const activation = hf.activation_function ?? 'gelu_new';
  if (!['gelu_new', 'gelu_pytorch_tanh'].includes(activation)) {
    throw new FormatError(source, `activation_function ${JSON.stringify(activation)} is not supported; skd's GPT uses the tanh GELU ("gelu_new")`);
  }
  const parsed = gptConfigSchema.safeParse({
    vocabSize: hf.vocab_size,
    contextLength: hf.n_positions ?? hf.n_ctx,
    layers: hf.n_layer,
    heads: hf.n_head,
    dModel: hf.n_embd,
    ...(hf.n_inner ? { dFf: hf.n_inner } : {}),
    positions: 'learned',
    tiedHead: hf.tie_word_embeddings ?? true,
    dropout: 0,
    layerNormEpsilon: hf.layer_norm_epsilon ?? 1e-5,
  });
  if (!parsed.success) throw new FormatError(source, `config does not describe a GPT-2: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

/**
 * Loads a Hugging Face GPT-2 checkpoint folder (`config.json` + `model.safetensors`): the path to
 * real pretrained teachers. Names with a `transformer.` prefix and the attention-mask buffers are
 * handled; with a tied head, a separate `lm_head.weight` must equal `wte`, and is dropped.
 */
export function loadHuggingFaceGpt2(dir: string): GptModel {
  const configFile = path.join(dir, 'config.json');
  const weightsFile = path.join(dir, 'model.safetensors');
  for (const file of [configFile, weightsFile]) {
    if (!fs.existsSync(file)) throw new FormatError(dir, `not a Hugging Face GPT-2 folder: ${path.basename(file)} is missing`);
  }
  let hf: HfGpt2Config;
  try {
    hf = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  } catch (cause) {
    throw new FormatError(configFile, `not valid JSON: ${(cause as Error).message}`, { cause });
  }
  const config = gptConfigFromHuggingFace(hf, configFile);
  const { arrays } = readSafetensors(weightsFile);
  const tensors = new Map<string, tf.Tensor>();
  try {
    for (const [rawName, array] of arrays) {
      const name = rawName.replace(/^transformer\./, '');
      if (BUFFERS.test(name)) continue;
      if (name === 'lm_head.weight' && config.tiedHead) {
        const wte = arrays.get('transformer.wte.weight') ?? arrays.get('wte.weight');
        if (wte && wte.data.some((v, i) => v !== array.data[i])) {
          throw new FormatError(weightsFile, 'lm_head.weight differs from wte.weight although tie_word_embeddings is true', {
            hint: 'set "tie_word_embeddings": false in config.json to load a separate head',
          });
        }
        continue;
      }
      tensors.set(name, tf.tensor(array.data, [...array.shape]));
    }
    try {
      return new GptModel(config, { weights: tensors });
    } catch (cause) {
      throw new FormatError(weightsFile, (cause as Error).message, { cause });
    }
  } finally {
    tensors.forEach((t) => t.dispose());
  }
}
