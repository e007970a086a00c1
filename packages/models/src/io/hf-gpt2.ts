import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { FormatError, SkdError, type Tokenizer } from '@skd/core';
import { BpeTokenizer } from '../bpe-tokenizer';
import { GptModel, gptConfigSchema, type GptConfig } from '../gpt';
import { writeFileAtomic, writeFolderAtomic } from './atomic';
import { encodeSafetensors, readSafetensors, type NamedArray } from './safetensors';
import { writeBpeTokenizer } from './tokenizer-files';

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

export interface ExportOptions {
  readonly model: GptModel;
  readonly tokenizer: Tokenizer;
  /** Replace an existing folder (default: refuse). */
  readonly overwrite?: boolean;
}

/** The Hugging Face GPT-2 `config.json` for one of our GPTs, or an SkdError naming what GPT-2 cannot express. */
export function huggingFaceGpt2Config(config: GptConfig, tokenizer: BpeTokenizer): Record<string, unknown> {
  if (config.positions !== 'learned') {
    throw new SkdError(`a GPT with ${config.positions} positions has no GPT-2 equivalent (GPT-2 learns its position embeddings)`, { hint: 'export a model trained with "positions": "learned"' });
  }
  const special = tokenizer.special;
  return {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: config.vocabSize,
    n_positions: config.contextLength,
    n_ctx: config.contextLength,
    n_embd: config.dModel,
    n_layer: config.layers,
    n_head: config.heads,
    n_inner: config.dFf ?? null,
    activation_function: 'gelu_new',
    layer_norm_epsilon: config.layerNormEpsilon,
    tie_word_embeddings: config.tiedHead,
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    bos_token_id: special.bos ?? special.eos,
    eos_token_id: special.eos,
    pad_token_id: special.pad,
    torch_dtype: 'float32',
  };
}

/**
 * Writes a model as a Hugging Face GPT-2 folder: `config.json`, `model.safetensors` (GPT-2's names
 * under `transformer.`, Conv1D layouts: our parameters already use both), `tokenizer.json` with
 * `tokenizer_config.json`, and `generation_config.json`. `transformers`' `GPT2LMHeadModel` and
 * skd's own `loadHuggingFaceGpt2` read it back. Written under a temporary name, then renamed.
 */
export async function exportHuggingFaceGpt2(dir: string, options: ExportOptions): Promise<void> {
  const { model, tokenizer } = options;
  if (!(tokenizer instanceof BpeTokenizer)) {
    throw new SkdError('only models with a BPE tokenizer can be exported as GPT-2 (a tokenizer.json other tools read)', { hint: 'train the model with a "bpe" tokenizer' });
  }
  const hfConfig = huggingFaceGpt2Config(model.config, tokenizer);
  const target = path.resolve(dir);
  if (fs.existsSync(target) && !options.overwrite) throw new SkdError(`${target} already exists`, { hint: 'choose another --out, or remove it' });
  const arrays = new Map<string, NamedArray>();
  for (const [name, variable] of model.params) {
    arrays.set(name === 'lm_head.weight' ? name : `transformer.${name}`, { shape: variable.shape, data: Float32Array.from(await variable.data()) });
  }
  const special = tokenizer.special;
  await writeFolderAtomic(
    target,
    async (tmp) => {
      writeFileAtomic(path.join(tmp, 'config.json'), `${JSON.stringify(hfConfig, null, 2)}\n`);
      writeFileAtomic(path.join(tmp, 'model.safetensors'), encodeSafetensors(arrays, { format: 'pt' }));
      writeBpeTokenizer(path.join(tmp, 'tokenizer.json'), tokenizer);
      const generation = { bos_token_id: special.bos ?? special.eos, eos_token_id: special.eos, pad_token_id: special.pad };
      writeFileAtomic(path.join(tmp, 'generation_config.json'), `${JSON.stringify(generation, null, 2)}\n`);
    },
    { replace: true },
  );
}
