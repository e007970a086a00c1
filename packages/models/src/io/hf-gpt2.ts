import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError, SkdError, type Tokenizer } from '@skd/core';
import { BpeTokenizer } from '../bpe-tokenizer';
import { GptModel, type GptConfig } from '../gpt';
import { writeFileAtomic, writeFolderAtomic } from './atomic';
import { loadHuggingFaceModel } from './hf-model';
import { encodeSafetensors, type NamedArray } from './safetensors';
import { writeBpeTokenizer } from './tokenizer-files';

/**
 * Loads a Hugging Face GPT-2 checkpoint folder (`config.json` + safetensors weights): the path to
 * real pretrained teachers. Names with a `transformer.` prefix and the attention-mask buffers are
 * handled; with a tied head, a separate `lm_head.weight` must equal `wte`, and is dropped.
 */
export function loadHuggingFaceGpt2(dir: string): GptModel {
  const model = loadHuggingFaceModel(dir);
  if (model instanceof GptModel) return model;
  model.dispose();
  throw new FormatError(path.join(dir, 'config.json'), `describes a ${model.config.architecture} model, not GPT-2; load it with loadHuggingFaceModel`);
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
    throw new SkdError(`a GPT with ${config.positions} positions has no GPT-2 equivalent (GPT-2 learns its position embeddings)`, {
      hint: 'export a model trained with student.options.positions: "learned"',
    });
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
    throw new SkdError('only models with a BPE tokenizer can be exported as GPT-2 (a tokenizer.json other tools read)', {
      hint: 'train the model with a "bpe" tokenizer',
    });
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
